//! Extraction: one parsed file's items, `use` bindings, busbar declarations, message types and
//! path references ([`crate::facts`]). Items under `#[cfg(test)]` are skipped.

use proc_macro2::Span as PmSpan;
use syn::spanned::Spanned;
use syn::visit::Visit;

use busbar_model::DeliveryGuarantee;

use crate::diagnostics as diag;
use crate::facts::*;
use crate::settings;

pub(crate) struct Extractor<'f> {
    pub facts: &'f mut RsFile,
    /// Bytes stripped before parsing (a BOM, a shebang line): added to every offset.
    pub base: u32,
    /// The file's `paths` by text, while it is extracted.
    path_ids: rustc_hash::FxHashMap<Box<str>, u32>,
    /// A path's text being made, reused from reference to reference.
    buf: String,
    /// The parsed code is ASCII: a span's line and column are then its byte offset (through
    /// the file's line starts), found without proc-macro2's character-to-byte map.
    ascii: bool,
    /// The index in the file's line starts of the line the parsed code begins on.
    first_line: usize,
}

impl<'f> Extractor<'f> {
    pub fn new(facts: &'f mut RsFile, base: u32) -> Self {
        let text = facts.source.text();
        let ascii = text.get(base as usize..).is_some_and(str::is_ascii);
        let first_line = if ascii {
            facts.source.line_starts().partition_point(|&s| s <= base).saturating_sub(1)
        } else {
            0
        };
        let (path_ids, buf) = (Default::default(), String::new());
        Extractor { facts, base, path_ids, buf, ascii, first_line }
    }

    pub fn raw(&self, span: PmSpan) -> RawSpan {
        if self.ascii {
            let starts = self.facts.source.line_starts();
            let byte = |lc: proc_macro2::LineColumn| {
                let start = match lc.line {
                    0 | 1 => self.base,
                    n => starts.get(self.first_line + n - 1).copied().unwrap_or(self.base),
                };
                start.saturating_add(u32::try_from(lc.column).unwrap_or(u32::MAX))
            };
            return RawSpan { lo: byte(span.start()), hi: byte(span.end()) };
        }
        let at = |x: usize| u32::try_from(x).unwrap_or(u32::MAX).saturating_add(self.base);
        let r = span.byte_range();
        RawSpan { lo: at(r.start), hi: at(r.end) }
    }

    /// Writes a path's text into `buf`: its segments without `r#`, joined by `::` (no
    /// allocation once `buf` has grown).
    fn path_text(&mut self, path: &syn::Path) {
        use std::fmt::Write as _;
        self.buf.clear();
        for (i, seg) in path.segments.iter().enumerate() {
            if i > 0 {
                self.buf.push_str("::");
            }
            let at = self.buf.len();
            let _ = write!(self.buf, "{}", seg.ident);
            if self.buf[at..].starts_with("r#") {
                self.buf.replace_range(at..at + 2, "");
            }
        }
    }

    /// The index of the path in `buf` in the file's `paths`.
    fn intern(&mut self) -> u32 {
        if let Some(&id) = self.path_ids.get(self.buf.as_str()) {
            return id;
        }
        let id = u32::try_from(self.facts.paths.len()).unwrap_or(u32::MAX);
        let text: Box<str> = self.buf.as_str().into();
        self.facts.paths.push(text.clone());
        self.path_ids.insert(text, id);
        id
    }

    pub fn sp(&self, span: PmSpan) -> busbar_diagnostics::Span {
        let raw = self.raw(span);
        self.facts.span_of(raw)
    }

    fn text(&self, span: PmSpan) -> String {
        let raw = self.raw(span);
        let text = self.facts.source.text().get(raw.lo as usize..raw.hi as usize).unwrap_or("");
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    pub fn items(&mut self, module: usize, items: &[syn::Item]) {
        for item in items {
            if is_cfg_test(item_attrs(item)) {
                continue;
            }
            self.item(module, item);
        }
    }

    fn item(&mut self, module: usize, item: &syn::Item) {
        match item {
            syn::Item::Mod(m) => self.module(module, m),
            syn::Item::Use(u) => {
                let span = self.raw(use_span(u));
                let absolute = u.leading_colon.is_some();
                flatten_use(&u.tree, Vec::new(), &mut |path, alias| {
                    let binding = UseBinding { path, absolute, span };
                    let m = &mut self.facts.modules[module];
                    match alias {
                        Some(name) => {
                            m.uses.insert(name, binding);
                        }
                        None => m.globs.push(binding),
                    }
                });
            }
            syn::Item::ExternCrate(e) => {
                let name = ident_name(e.rename.as_ref().map_or(&e.ident, |(_, r)| r));
                let binding = UseBinding {
                    path: vec![ident_name(&e.ident)],
                    absolute: true,
                    span: self.raw(extern_crate_span(e)),
                };
                self.facts.modules[module].uses.insert(name, binding);
            }
            syn::Item::Static(s) => {
                let name = ident_name(&s.ident);
                let value = match self.topic(module, s) {
                    Some(t) => ValueItem::Topic(t),
                    None => {
                        self.body(module, &name, |v| v.visit_expr(&s.expr));
                        ValueItem::Other
                    }
                };
                self.facts.modules[module].values.insert(name, value);
            }
            syn::Item::Const(c) => {
                let name = ident_name(&c.ident);
                self.body(module, &name, |v| v.visit_expr(&c.expr));
                self.facts.modules[module].values.insert(name, ValueItem::Other);
            }
            syn::Item::Fn(f) => {
                let name = ident_name(&f.sig.ident);
                if let Some(attr) = subscribe_attr(&f.attrs) {
                    let sub = settings::subscription(self, module, attr, f);
                    self.facts.subscriptions.push(sub);
                }
                self.body(module, &name, |v| {
                    v.params(&f.sig);
                    v.visit_signature(&f.sig);
                    v.visit_block(&f.block);
                });
                self.facts.modules[module].values.insert(name, ValueItem::Fn);
            }
            syn::Item::Impl(i) => {
                let owner = match &*i.self_ty {
                    syn::Type::Path(p) => p.path.segments.last().map(|s| ident_name(&s.ident)),
                    _ => None,
                };
                let owner = owner.unwrap_or_else(|| "<impl>".to_string());
                for inner in &i.items {
                    if let syn::ImplItem::Fn(f) = inner
                        && let Some(attr) = subscribe_attr(&f.attrs)
                    {
                        let span = self.sp(attr.span());
                        self.facts.diagnostics.push(diag::subscription_not_module_level(span));
                    }
                }
                self.body(module, &owner, |v| v.visit_item_impl(i));
            }
            syn::Item::Trait(t) => {
                let name = ident_name(&t.ident);
                self.body(module, &name, |v| v.visit_item_trait(t));
                self.facts.modules[module].types.insert(name, TypeItem::Other);
            }
            syn::Item::Struct(s) => {
                let def = crate::types::struct_def(self, s);
                self.facts.modules[module]
                    .types
                    .insert(ident_name(&s.ident), TypeItem::Struct(def));
            }
            syn::Item::Enum(e) => {
                let def = crate::types::enum_def(self, e);
                self.facts.modules[module].types.insert(ident_name(&e.ident), TypeItem::Enum(def));
            }
            syn::Item::Type(t) => {
                let ty = crate::types::rs_type(self, &t.ty);
                self.facts.modules[module].types.insert(ident_name(&t.ident), TypeItem::Alias(ty));
            }
            syn::Item::Union(u) => {
                self.facts.modules[module].types.insert(ident_name(&u.ident), TypeItem::Other);
            }
            syn::Item::Macro(m) => {
                let owner =
                    m.ident.as_ref().map_or_else(|| "<macro>".to_string(), |i| i.to_string());
                self.body(module, &owner, |v| v.visit_macro(&m.mac));
            }
            _ => {}
        }
    }

    fn module(&mut self, parent: usize, m: &syn::ItemMod) {
        let name = ident_name(&m.ident);
        match &m.content {
            Some((_, items)) => {
                let index = self.facts.modules.len();
                self.facts.modules.push(ModFacts {
                    parent: Some(parent),
                    name: name.clone(),
                    ..ModFacts::default()
                });
                self.facts.modules[parent].inline_mods.insert(name, index);
                self.items(index, items);
            }
            None => {
                let paths = path_attrs(&m.attrs);
                let span = self.raw(mod_decl_span(m));
                self.facts.modules[parent].file_mods.push(ModDecl { name, paths, span });
            }
        }
    }

    /// Visits code owned by the module-level item `owner`.
    fn body(&mut self, module: usize, owner: &str, f: impl FnOnce(&mut Refs<'_, '_>)) {
        let owner = self.facts.owner(owner);
        let mut v = Refs { x: self, module, owner, scopes: vec![Vec::new()] };
        f(&mut v);
    }

    /// A `static` whose initializer is `Topic::new(...)` or `Topic::declared_elsewhere(...)`,
    /// with its builder calls.
    fn topic(&mut self, module: usize, item: &syn::ItemStatic) -> Option<usize> {
        let (ty, expr, attrs) = (&*item.ty, &*item.expr, &item.attrs);
        let mut methods = Vec::new();
        let mut e = expr;
        while let syn::Expr::MethodCall(m) = e {
            methods.push(m);
            e = &m.receiver;
        }
        let syn::Expr::Call(call) = e else { return None };
        let syn::Expr::Path(func) = &*call.func else { return None };
        let (ctor, turbofish) = topic_ctor(&func.path)?;
        let message = match ty {
            syn::Type::Path(p) => p.path.segments.last().and_then(|s| first_type_arg(&s.arguments)),
            _ => None,
        }
        .or(turbofish);
        let mut decl = TopicDecl {
            module,
            handle: ctor == "declared_elsewhere",
            name: None,
            message_type: message.map(|t| crate::types::rs_type(self, t)),
            message_type_text: message.map(|t| self.text(t.span())).unwrap_or_default(),
            delivery: DeliveryGuarantee::AtLeastOnce,
            ordering_attribute: None,
            topic_path: func.path.segments.iter().map(|s| ident_name(&s.ident)).collect(),
            // The constructor call with its builder calls, as TypeScript's `new Topic(...)`
            // (not the item, whose span starts at its doc comment).
            span: self.sp(expr.span()),
            doc: doc_of(attrs),
        };
        match call.args.first().and_then(string_lit) {
            Some((name, lit)) => {
                let name_span = self.sp(lit);
                settings::check_name(self, "topic", &name, &name_span);
                decl.name = Some((name, name_span));
            }
            None => {
                let at = call.args.first().map_or(call.span(), |a| a.span());
                let span = self.sp(at);
                self.facts.diagnostics.push(diag::name_not_literal("topic", span));
            }
        }
        if decl.message_type.is_none() && !decl.handle {
            let span = self.sp(ty.span());
            self.facts.diagnostics.push(diag::missing_message_type(span));
        }
        for m in methods.iter().rev() {
            match m.method.to_string().as_str() {
                "delivery" => {
                    let variant = m.args.first().and_then(|a| match a {
                        syn::Expr::Path(p) => p.path.segments.last().map(|s| ident_name(&s.ident)),
                        _ => None,
                    });
                    match variant.as_deref() {
                        Some("AtLeastOnce") => decl.delivery = DeliveryGuarantee::AtLeastOnce,
                        Some("ExactlyOnce") => decl.delivery = DeliveryGuarantee::ExactlyOnce,
                        _ => {
                            let span = self.sp(m.args.span());
                            self.facts.diagnostics.push(diag::invalid_delivery_guarantee(span));
                        }
                    }
                }
                "ordering_attribute" => match m.args.first().and_then(string_lit) {
                    Some((attr, lit)) => decl.ordering_attribute = Some((attr, self.sp(lit))),
                    None => {
                        let span = self.sp(m.args.span());
                        let expected = "a string literal";
                        self.facts.diagnostics.push(diag::wrong_value_type(
                            "ordering_attribute",
                            expected,
                            span,
                        ));
                    }
                },
                _ => {}
            }
        }
        self.facts.topics.push(decl);
        Some(self.facts.topics.len() - 1)
    }
}

/// `Topic::new`, `Topic::<M>::new`, `busbar::Topic::declared_elsewhere`: the constructor's
/// name and the turbofish type.
fn topic_ctor(path: &syn::Path) -> Option<(String, Option<&syn::Type>)> {
    let n = path.segments.len();
    if n < 2 {
        return None;
    }
    let (ty, ctor) = (&path.segments[n - 2], &path.segments[n - 1]);
    let ctor_name = ident_name(&ctor.ident);
    if ty.ident != "Topic" || !(ctor_name == "new" || ctor_name == "declared_elsewhere") {
        return None;
    }
    Some((ctor_name, first_type_arg(&ty.arguments)))
}

fn first_type_arg(args: &syn::PathArguments) -> Option<&syn::Type> {
    let syn::PathArguments::AngleBracketed(a) = args else { return None };
    a.args.iter().find_map(|g| match g {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

pub(crate) fn string_lit(e: &syn::Expr) -> Option<(String, PmSpan)> {
    match e {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some((s.value(), s.span())),
        syn::Expr::Group(g) => string_lit(&g.expr),
        syn::Expr::Paren(p) => string_lit(&p.expr),
        _ => None,
    }
}

/// The files a `mod x;` may be in by its attributes: `#[path = "..."]`, then every
/// `#[cfg_attr(..., path = "...")]` (cfg is not evaluated: the first that exists is read).
fn path_attrs(attrs: &[syn::Attribute]) -> Vec<String> {
    let mut out = Vec::new();
    let mut conditional = Vec::new();
    for a in attrs {
        match &a.meta {
            syn::Meta::NameValue(nv) if nv.path.is_ident("path") => {
                out.extend(string_lit(&nv.value).map(|(s, _)| s));
            }
            syn::Meta::List(l) if l.path.is_ident("cfg_attr") => {
                let parser =
                    syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated;
                if let Ok(metas) = syn::parse::Parser::parse2(parser, l.tokens.clone()) {
                    for meta in metas.iter().skip(1) {
                        if let syn::Meta::NameValue(nv) = meta
                            && nv.path.is_ident("path")
                        {
                            conditional.extend(string_lit(&nv.value).map(|(s, _)| s));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out.extend(conditional);
    out
}

/// `#[busbar::subscribe(...)]` or `#[subscribe(...)]`.
pub(crate) fn subscribe_attr(attrs: &[syn::Attribute]) -> Option<&syn::Attribute> {
    attrs.iter().find(|a| a.path().segments.last().is_some_and(|s| s.ident == "subscribe"))
}

/// An identifier's name without `r#` (one allocation: syn's `unraw` makes a new identifier
/// first, and this runs for every path segment of every file).
pub(crate) fn ident_name(ident: &syn::Ident) -> String {
    let text = ident.to_string();
    match text.strip_prefix("r#") {
        Some(name) => name.to_string(),
        None => text,
    }
}

pub(crate) fn doc_of(attrs: &[syn::Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter_map(|a| {
            let syn::Meta::NameValue(nv) = &a.meta else { return None };
            if !nv.path.is_ident("doc") {
                return None;
            }
            string_lit(&nv.value).map(|(s, _)| s.trim().to_string())
        })
        .collect();
    let text = lines.join("\n").trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]` (also inside `all(...)`): code that is not part of the service.
pub(crate) fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>().is_ok_and(|m| match &m {
                syn::Meta::Path(p) => p.is_ident("test"),
                syn::Meta::List(l) => {
                    l.path.is_ident("all")
                        && l.tokens.clone().into_iter().any(|t| t.to_string() == "test")
                }
                syn::Meta::NameValue(_) => false,
            })
    })
}

/// Calls `out` with each path a use tree binds: `(path, Some(name))`, or `(path, None)` for a
/// glob.
fn flatten_use(
    tree: &syn::UseTree,
    prefix: Vec<String>,
    out: &mut impl FnMut(Vec<String>, Option<String>),
) {
    match tree {
        syn::UseTree::Path(p) => {
            let mut next = prefix;
            next.push(ident_name(&p.ident));
            flatten_use(&p.tree, next, out);
        }
        syn::UseTree::Name(n) => {
            let name = ident_name(&n.ident);
            if name == "self" {
                let bound = prefix.last().cloned().unwrap_or_default();
                out(prefix, Some(bound));
            } else {
                let mut path = prefix;
                path.push(name.clone());
                out(path, Some(name));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix;
            let name = ident_name(&r.ident);
            if name != "self" {
                path.push(name);
            }
            let alias = ident_name(&r.rename);
            if alias != "_" {
                out(path, Some(alias));
            }
        }
        syn::UseTree::Glob(_) => out(prefix, None),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten_use(t, prefix.clone(), out);
            }
        }
    }
}

/// The visitor of code: every path it uses, classified, with local bindings shadowing.
pub(crate) struct Refs<'x, 'f> {
    x: &'x mut Extractor<'f>,
    module: usize,
    /// Index into the file's `owners`.
    owner: u32,
    scopes: Vec<Vec<String>>,
}

impl Refs<'_, '_> {
    fn params(&mut self, sig: &syn::Signature) {
        for input in &sig.inputs {
            if let syn::FnArg::Typed(t) = input {
                self.bind(&t.pat);
            }
        }
    }

    fn bind(&mut self, pat: &syn::Pat) {
        let mut names = Vec::new();
        pat_idents(pat, &mut names);
        if let Some(scope) = self.scopes.last_mut() {
            scope.extend(names);
        }
    }

    fn is_local(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.iter().any(|n| n == name))
    }

    fn record(&mut self, path: &syn::Path, kind: RefKind, span: PmSpan) {
        self.x.path_text(path);
        if path.segments.len() == 1 {
            // Primitive types, the prelude and local bindings name no item of the app (a path
            // to them is no edge of the code graph).
            let name = self.x.buf.as_str();
            if (path.leading_colon.is_none() && is_prelude(name)) || self.is_local(name) {
                return;
            }
        }
        let path_id = self.x.intern();
        let r = PathRef {
            module: self.module,
            path: path_id,
            absolute: path.leading_colon.is_some(),
            kind,
            span: self.x.raw(span),
            owner: self.owner,
        };
        self.x.facts.refs.push(r);
    }
}

// The spans of the items every file has many of, as syn's `Spanned::span` gives them (from the
// first attribute to the `;`), without printing the item to a token stream and back: that cost
// showed in profiles on the registry corpus. `tests::item_spans_are_syns` holds them equal.

fn use_span(u: &syn::ItemUse) -> PmSpan {
    join(item_start(&u.attrs, &u.vis, u.use_token.span), u.semi_token.span)
}

fn extern_crate_span(e: &syn::ItemExternCrate) -> PmSpan {
    join(item_start(&e.attrs, &e.vis, e.extern_token.span), e.semi_token.span)
}

fn mod_decl_span(m: &syn::ItemMod) -> PmSpan {
    let keyword = m.unsafety.map_or(m.mod_token.span, |u| u.span);
    let end = m.semi.map_or_else(|| m.ident.span(), |s| s.span);
    join(item_start(&m.attrs, &m.vis, keyword), end)
}

/// Where an item's tokens start: its first attribute, else its visibility, else `keyword`.
fn item_start(attrs: &[syn::Attribute], vis: &syn::Visibility, keyword: PmSpan) -> PmSpan {
    match (attrs.first(), vis) {
        (Some(a), _) => a.pound_token.span,
        (None, syn::Visibility::Public(p)) => p.span,
        (None, syn::Visibility::Restricted(r)) => r.pub_token.span,
        (None, syn::Visibility::Inherited) => keyword,
    }
}

/// The span of a path from its first to its last segment's name, without making a token
/// stream of it (syn's `Spanned::span` does, at a cost in every visited expression).
pub(crate) fn path_span(path: &syn::Path) -> PmSpan {
    let first = match (&path.leading_colon, path.segments.first()) {
        (Some(colon), _) => colon.spans[0],
        (None, Some(seg)) => seg.ident.span(),
        (None, None) => PmSpan::call_site(),
    };
    let last = path.segments.last().map_or(first, |seg| seg.ident.span());
    join(first, last)
}

fn join(a: PmSpan, b: PmSpan) -> PmSpan {
    a.join(b).unwrap_or(a)
}

/// Names a one-segment path never resolves to an item of the app: primitive types, `Self`,
/// `self`, and the standard prelude.
fn is_prelude(name: &str) -> bool {
    matches!(
        name,
        "self"
            | "Self"
            | "bool"
            | "char"
            | "str"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "u128"
            | "usize"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "i128"
            | "isize"
            | "f32"
            | "f64"
            | "String"
            | "Vec"
            | "Option"
            | "Some"
            | "None"
            | "Result"
            | "Ok"
            | "Err"
            | "Box"
            | "ToString"
            | "ToOwned"
            | "Clone"
            | "Copy"
            | "Default"
            | "Send"
            | "Sync"
            | "Sized"
            | "Drop"
            | "Fn"
            | "FnMut"
            | "FnOnce"
            | "Iterator"
            | "IntoIterator"
            | "Into"
            | "From"
            | "AsRef"
            | "AsMut"
            | "PartialEq"
            | "Eq"
            | "PartialOrd"
            | "Ord"
    )
}

fn pat_idents(pat: &syn::Pat, out: &mut Vec<String>) {
    match pat {
        syn::Pat::Ident(i) => {
            out.push(ident_name(&i.ident));
            if let Some((_, sub)) = &i.subpat {
                pat_idents(sub, out);
            }
        }
        syn::Pat::Tuple(t) => t.elems.iter().for_each(|p| pat_idents(p, out)),
        syn::Pat::TupleStruct(t) => t.elems.iter().for_each(|p| pat_idents(p, out)),
        syn::Pat::Struct(s) => s.fields.iter().for_each(|f| pat_idents(&f.pat, out)),
        syn::Pat::Reference(r) => pat_idents(&r.pat, out),
        syn::Pat::Type(t) => pat_idents(&t.pat, out),
        syn::Pat::Slice(s) => s.elems.iter().for_each(|p| pat_idents(p, out)),
        syn::Pat::Or(o) => o.cases.iter().for_each(|p| pat_idents(p, out)),
        _ => {}
    }
}

impl<'ast> Visit<'ast> for Refs<'_, '_> {
    fn visit_block(&mut self, b: &'ast syn::Block) {
        self.scopes.push(Vec::new());
        syn::visit::visit_block(self, b);
        self.scopes.pop();
    }

    fn visit_local(&mut self, l: &'ast syn::Local) {
        if let Some(init) = &l.init {
            self.visit_expr(&init.expr);
            if let Some((_, diverge)) = &init.diverge {
                self.visit_expr(diverge);
            }
        }
        self.bind(&l.pat);
    }

    fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
        self.scopes.push(Vec::new());
        for p in &c.inputs {
            self.bind(p);
        }
        self.visit_expr(&c.body);
        self.scopes.pop();
    }

    fn visit_arm(&mut self, arm: &'ast syn::Arm) {
        self.scopes.push(Vec::new());
        self.bind(&arm.pat);
        if let Some((_, guard)) = &arm.guard {
            self.visit_expr(guard);
        }
        self.visit_expr(&arm.body);
        self.scopes.pop();
    }

    fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
        if let syn::Expr::Path(p) = &*m.receiver
            && p.qself.is_none()
        {
            let kind = match m.method.to_string().as_str() {
                "publish" => RefKind::Publish,
                "publisher" => RefKind::Publisher,
                "name" => RefKind::Name,
                _ => RefKind::Other,
            };
            let span = join(path_span(&p.path), m.paren_token.span.close());
            self.record(&p.path, kind, span);
        } else {
            self.visit_expr(&m.receiver);
        }
        for a in &m.args {
            self.visit_expr(a);
        }
    }

    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        if p.qself.is_none() {
            self.record(&p.path, RefKind::Other, path_span(&p.path));
        }
        syn::visit::visit_expr_path(self, p);
    }

    fn visit_type_path(&mut self, t: &'ast syn::TypePath) {
        if t.qself.is_none() {
            self.record(&t.path, RefKind::Other, path_span(&t.path));
        }
        syn::visit::visit_type_path(self, t);
    }

    fn visit_expr_call(&mut self, c: &'ast syn::ExprCall) {
        if let syn::Expr::Path(p) = &*c.func
            && topic_ctor(&p.path).is_some()
        {
            let span = self.x.sp(c.span());
            self.x.facts.diagnostics.push(diag::topic_in_function(span));
        }
        syn::visit::visit_expr_call(self, c);
    }

    fn visit_item(&mut self, i: &'ast syn::Item) {
        // Items nested in a function: their code is the enclosing item's.
        if !is_cfg_test(item_attrs(i)) {
            if let syn::Item::Fn(f) = i
                && let Some(attr) = subscribe_attr(&f.attrs)
            {
                let span = self.x.sp(attr.span());
                self.x.facts.diagnostics.push(diag::subscription_not_module_level(span));
            }
            syn::visit::visit_item(self, i);
        }
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        // A macro's tokens, where they are plain expressions (`tokio::join!(a, b)`,
        // `println!("{}", x)`, `vec![a, b]`). A `macro_rules!` body is patterns, not code.
        if m.path.is_ident("macro_rules") || !may_be_expressions(&m.tokens) {
            return;
        }
        let parser = syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated;
        if let Ok(exprs) = syn::parse::Parser::parse2(parser, m.tokens.clone()) {
            for e in &exprs {
                self.visit_expr(e);
            }
        }
    }
}

/// Whether a macro's tokens may be a comma-separated list of expressions: not when a `;` or a
/// `=>` stands outside every bracket (statements, items, `[x; n]`, match-like arms), which syn
/// would refuse only after building an error message.
fn may_be_expressions(tokens: &proc_macro2::TokenStream) -> bool {
    let mut after_eq = false;
    for t in tokens.clone() {
        let proc_macro2::TokenTree::Punct(p) = t else {
            after_eq = false;
            continue;
        };
        match p.as_char() {
            ';' => return false,
            '>' if after_eq => return false,
            _ => {}
        }
        after_eq = p.as_char() == '=' && p.spacing() == proc_macro2::Spacing::Joint;
    }
    true
}

#[cfg(test)]
mod tests {
    use busbar_diagnostics::{FilePath, SourceFile};

    use super::Extractor;
    use crate::facts::{RawSpan, RsFile};

    /// Every token's offsets found through lines and columns (ASCII code) are proc-macro2's
    /// own byte range, after a preamble too.
    #[test]
    fn ascii_offsets_are_byte_ranges() {
        let code = "fn main() {\r\n    let x = a::b(1, \"s\");\n\tmacro_rules! m { () => {} }\n}\n";
        // The preambles `parse::preamble` strips: a byte-order mark, a `#!` line without its
        // newline (and one with it).
        for base in ["", "\u{feff}", "#!/usr/bin/env run", "#!/usr/bin/env run\n"] {
            let text = format!("{base}{code}");
            let mut facts = RsFile::new(SourceFile::new(FilePath::from("a.rs"), text));
            let base = u32::try_from(base.len()).unwrap();
            let tokens: proc_macro2::TokenStream = code.parse().unwrap();
            let x = Extractor::new(&mut facts, base);
            assert!(x.ascii);
            let mut seen = 0;
            let mut stack: Vec<proc_macro2::TokenStream> = vec![tokens];
            while let Some(ts) = stack.pop() {
                for t in ts {
                    let span = t.span();
                    let r = span.byte_range();
                    let want = RawSpan {
                        lo: u32::try_from(r.start).unwrap() + base,
                        hi: u32::try_from(r.end).unwrap() + base,
                    };
                    assert_eq!(x.raw(span), want, "{t}");
                    seen += 1;
                    if let proc_macro2::TokenTree::Group(g) = t {
                        stack.push(g.stream());
                    }
                }
            }
            assert!(seen > 20, "{seen} tokens");
            proc_macro2::extra::invalidate_current_thread_spans();
        }
    }

    /// The spans made without a token stream are syn's own, for every form they cover.
    #[test]
    fn item_spans_are_syns() {
        use syn::spanned::Spanned;
        let code = r#"
            use a::b;
            pub use ::c::{d, e as f, g::*};
            /// docs
            #[cfg(x)]
            pub(crate) use h::i;
            extern crate j;
            #[macro_use] pub extern crate k as l;
            mod m;
            #[path = "n.rs"] pub(super) mod n;
            unsafe mod o;
            struct P { a: u8, b: ::std::vec::Vec<Option<String>>, c: std::collections::HashMap<K, V,>, d: F<'a>, e: crate::q::R, f: Box<dyn Fn(u8) -> u8> }
        "#;
        let file = syn::parse_file(code).unwrap();
        let range = |s: proc_macro2::Span| s.byte_range();
        let mut checked = 0;
        for item in &file.items {
            let (ours, theirs) = match item {
                syn::Item::Use(u) => (super::use_span(u), u.span()),
                syn::Item::ExternCrate(e) => (super::extern_crate_span(e), e.span()),
                syn::Item::Mod(m) => (super::mod_decl_span(m), m.span()),
                syn::Item::Struct(s) => {
                    let mut types: Vec<&syn::Type> = s.fields.iter().map(|f| &f.ty).collect();
                    while let Some(ty) = types.pop() {
                        let syn::Type::Path(p) = ty else { continue };
                        let ours = crate::types::type_path_span(p);
                        assert_eq!(range(ours), range(p.span()), "{}", quote::quote!(#p));
                        checked += 1;
                        if let Some(syn::PathArguments::AngleBracketed(a)) =
                            p.path.segments.last().map(|s| &s.arguments)
                        {
                            types.extend(a.args.iter().filter_map(|g| match g {
                                syn::GenericArgument::Type(t) => Some(t),
                                _ => None,
                            }));
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            assert_eq!(range(ours), range(theirs), "{}", quote::quote!(#item));
            checked += 1;
        }
        assert_eq!(checked, 18);
    }
}
