//! Extraction: one parsed module in, its [`FileFacts`] out.
//!
//! Pass 1 walks the module items: imports (to learn which local names are the pubsub API),
//! exports, module-level bindings, type declarations and the topic, subscription and service
//! declarations. Pass 2 ([`bodies`]) walks every function body and expression with a scope
//! stack, recording each use of a name that may be a topic and every pubsub constructor that
//! is not at module level. Pubsub names are recognised through their import bindings, never by
//! a bare identifier.

mod bodies;
mod config;
mod consts;
mod doc;
mod types;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use busbar_diagnostics::{SourceFile, Span, scan_suppressions};
use swc_atoms::Atom;
use swc_ecma_ast as ast;

use crate::diagnostics::{self as diag, DeclKind};
use crate::facts::{
    Export, ExportTarget, FileContext, FileFacts, Import, ImportKind, Local, ModuleRef,
    ServiceDecl, TypeDef,
};

/// Module specifiers of the pubsub API.
pub(crate) const PUBSUB_MODULES: &[&str] = &["encore.dev/pubsub", BUSBAR_SDK];
pub(crate) const SERVICE_MODULE: &str = "encore.dev/service";
/// busbar's own SDK, which has `Service` beside the pubsub API.
pub(crate) const BUSBAR_SDK: &str = "@busbar/pubsub";
pub(crate) const API_MODULE: &str = "encore.dev/api";

pub(crate) fn is_framework_module(specifier: &str) -> bool {
    PUBSUB_MODULES.contains(&specifier) || specifier == SERVICE_MODULE || specifier == API_MODULE
}

/// Local names bound to the framework API in this file.
#[derive(Default)]
struct Known {
    topic_ctor: HashSet<Atom>,
    subscription_ctor: HashSet<Atom>,
    publisher: HashSet<Atom>,
    attribute: HashSet<Atom>,
    pubsub_ns: HashSet<Atom>,
    service_ctor: HashSet<Atom>,
    service_ns: HashSet<Atom>,
    api_fn: HashSet<Atom>,
    api_ns: HashSet<Atom>,
    /// Every value name imported from a framework module: never a topic.
    framework: HashSet<Atom>,
}

impl Known {
    /// Whether this file imports any framework constructor at all.
    fn has_ctors(&self) -> bool {
        !(self.topic_ctor.is_empty()
            && self.subscription_ctor.is_empty()
            && self.service_ctor.is_empty()
            && self.pubsub_ns.is_empty()
            && self.service_ns.is_empty())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctor {
    Topic,
    Subscription,
    Service,
}

pub(crate) struct Extractor {
    facts: FileFacts,
    known: Known,
    /// `span.lo` of the `new Topic/Subscription(...)` expressions read in pass 1.
    module_level_ctors: HashSet<u32>,
    ctx: FileContext,
    /// Module-level `const` bindings of constant expressions declared so far, for
    /// configuration values that name them.
    consts: HashMap<Atom, consts::Const>,
}

/// Extracts the facts of a parsed module.
pub(crate) fn extract(source: SourceFile, module: &ast::Module, ctx: FileContext) -> FileFacts {
    let mut x = Extractor {
        facts: FileFacts::new(source),
        known: Known::default(),
        module_level_ctors: HashSet::default(),
        ctx,
        consts: HashMap::default(),
    };
    x.collect_imports(module);
    x.collect_items(module);
    if x.ctx.declares_service && x.facts.service.is_none() {
        let span = x.facts.source.span(0, 0);
        x.facts.diagnostics.push(diag::missing_service_declaration(span));
    }
    bodies::visit(&mut x, module);
    x.facts.suppressions = scan_suppressions(&x.facts.source);
    x.facts
}

/// Strips wrappers that do not change the value: parentheses, `as`, `satisfies`, `!`, `as const`.
pub(crate) fn unwrap(mut e: &ast::Expr) -> &ast::Expr {
    loop {
        e = match e {
            ast::Expr::Paren(p) => &p.expr,
            ast::Expr::TsAs(a) => &a.expr,
            ast::Expr::TsSatisfies(s) => &s.expr,
            ast::Expr::TsNonNull(n) => &n.expr,
            ast::Expr::TsConstAssertion(c) => &c.expr,
            ast::Expr::TsTypeAssertion(t) => &t.expr,
            _ => return e,
        }
    }
}

/// The original and the exported name of `export { orig as name }`.
fn export_names(n: &ast::ExportNamedSpecifier) -> (Atom, Atom) {
    let orig = export_name(&n.orig);
    let name = n.exported.as_ref().map(export_name).unwrap_or_else(|| orig.clone());
    (orig, name)
}

fn export_name(n: &ast::ModuleExportName) -> Atom {
    match n {
        ast::ModuleExportName::Ident(i) => i.sym.clone(),
        ast::ModuleExportName::Str(s) => Atom::from(&*s.value.to_string_lossy()),
    }
}

/// Names bound by a pattern.
pub(crate) fn pat_names<'a>(pat: &'a ast::Pat, out: &mut Vec<&'a Atom>) {
    match pat {
        ast::Pat::Ident(b) => out.push(&b.id.sym),
        ast::Pat::Array(a) => a.elems.iter().flatten().for_each(|p| pat_names(p, out)),
        ast::Pat::Rest(r) => pat_names(&r.arg, out),
        ast::Pat::Object(o) => {
            for prop in &o.props {
                match prop {
                    ast::ObjectPatProp::KeyValue(kv) => pat_names(&kv.value, out),
                    ast::ObjectPatProp::Assign(a) => out.push(&a.key.id.sym),
                    ast::ObjectPatProp::Rest(r) => pat_names(&r.arg, out),
                }
            }
        }
        ast::Pat::Assign(a) => pat_names(&a.left, out),
        ast::Pat::Invalid(_) | ast::Pat::Expr(_) => {}
    }
}

impl Extractor {
    fn sp(&self, span: swc_common::Span) -> Span {
        crate::parse::to_span(&self.facts.source, span)
    }

    fn push_module_ref(
        &mut self,
        src: &ast::Str,
        span: swc_common::Span,
        type_only: bool,
    ) -> usize {
        let specifier = src.value.to_string_lossy().into_owned();
        let span = crate::parse::to_raw(span);
        self.facts.module_refs.push(ModuleRef { specifier, span, type_only });
        self.facts.module_refs.len() - 1
    }

    fn collect_imports(&mut self, module: &ast::Module) {
        for item in &module.body {
            let ast::ModuleItem::ModuleDecl(decl) = item else { continue };
            match decl {
                ast::ModuleDecl::Import(import) => self.import_decl(import),
                ast::ModuleDecl::TsImportEquals(eq) => {
                    if let ast::TsModuleRef::TsExternalModuleRef(ext) = &eq.module_ref {
                        let module = self.push_module_ref(&ext.expr, eq.span, eq.is_type_only);
                        self.add_import(&eq.id.sym, module, ImportKind::Namespace, eq.is_type_only);
                        if eq.is_export {
                            self.facts.exports.push(Export {
                                name: eq.id.sym.clone(),
                                target: ExportTarget::Local(eq.id.sym.clone()),
                            });
                        }
                    } else {
                        // `import A = N.x`: an alias of a namespace member, not a topic.
                        self.set_local(&eq.id.sym, Local::Other);
                        if eq.is_export {
                            self.export_local(&eq.id.sym);
                        }
                    }
                }
                ast::ModuleDecl::ExportNamed(named) => {
                    let Some(src) = &named.src else { continue };
                    let all_types = named.type_only
                        || named
                            .specifiers
                            .iter()
                            .all(|s| matches!(s, ast::ExportSpecifier::Named(n) if n.is_type_only));
                    let module = self.push_module_ref(src, named.span, all_types);
                    for spec in &named.specifiers {
                        let (name, kind) = match spec {
                            ast::ExportSpecifier::Namespace(ns) => {
                                (export_name(&ns.name), ImportKind::Namespace)
                            }
                            ast::ExportSpecifier::Default(d) => {
                                (d.exported.sym.clone(), ImportKind::Default)
                            }
                            ast::ExportSpecifier::Named(n) => {
                                let (orig, name) = export_names(n);
                                let kind = if orig == "default" {
                                    ImportKind::Default
                                } else {
                                    ImportKind::Named(orig)
                                };
                                (name, kind)
                            }
                        };
                        self.facts
                            .exports
                            .push(Export { name, target: ExportTarget::From { module, kind } });
                    }
                }
                ast::ModuleDecl::ExportAll(all) => {
                    let module = self.push_module_ref(&all.src, all.span, all.type_only);
                    self.facts.star_exports.push(module);
                }
                _ => {}
            }
        }
    }

    fn import_decl(&mut self, import: &ast::ImportDecl) {
        let all_types = import.type_only
            || (!import.specifiers.is_empty()
                && import
                    .specifiers
                    .iter()
                    .all(|s| matches!(s, ast::ImportSpecifier::Named(n) if n.is_type_only)));
        let module = self.push_module_ref(&import.src, import.span, all_types);
        let specifier = self.facts.module_refs[module].specifier.clone();
        let pubsub = PUBSUB_MODULES.contains(&specifier.as_str());
        let service = specifier == SERVICE_MODULE || specifier == BUSBAR_SDK;
        let api = specifier == API_MODULE;
        for spec in &import.specifiers {
            let (local, kind, type_only) = match spec {
                ast::ImportSpecifier::Named(n) => {
                    let imported =
                        n.imported.as_ref().map(export_name).unwrap_or_else(|| n.local.sym.clone());
                    (&n.local.sym, ImportKind::Named(imported), import.type_only || n.is_type_only)
                }
                ast::ImportSpecifier::Default(d) => {
                    (&d.local.sym, ImportKind::Default, import.type_only)
                }
                ast::ImportSpecifier::Namespace(ns) => {
                    (&ns.local.sym, ImportKind::Namespace, import.type_only)
                }
            };
            let k = &mut self.known;
            match (&kind, pubsub, service, api) {
                (ImportKind::Named(n), true, _, _) => match n.as_str() {
                    "Topic" => {
                        k.topic_ctor.insert(local.clone());
                    }
                    "Subscription" => {
                        k.subscription_ctor.insert(local.clone());
                    }
                    "Publisher" => {
                        k.publisher.insert(local.clone());
                    }
                    "Attribute" => {
                        k.attribute.insert(local.clone());
                    }
                    "Service" if service => {
                        k.service_ctor.insert(local.clone());
                    }
                    _ => {}
                },
                (ImportKind::Namespace, true, _, _) => {
                    k.pubsub_ns.insert(local.clone());
                    if service {
                        k.service_ns.insert(local.clone());
                    }
                }
                (ImportKind::Named(n), _, true, _) if n == "Service" => {
                    k.service_ctor.insert(local.clone());
                }
                (ImportKind::Namespace, _, true, _) => {
                    k.service_ns.insert(local.clone());
                }
                (ImportKind::Named(n), _, _, true) if n == "api" => {
                    k.api_fn.insert(local.clone());
                }
                (ImportKind::Namespace, _, _, true) => {
                    k.api_ns.insert(local.clone());
                }
                _ => {}
            }
            if pubsub || service || api {
                k.framework.insert(local.clone());
            }
            self.add_import(local, module, kind, type_only);
        }
    }

    fn add_import(&mut self, local: &Atom, module: usize, kind: ImportKind, type_only: bool) {
        self.facts.imports.push(Import { local: local.clone(), module, kind, type_only });
        self.facts.locals.insert(local.clone(), Local::Import(self.facts.imports.len() - 1));
    }

    /// Which framework constructor a `new` callee is, if any (at module level: no shadowing).
    fn ctor_kind(&self, callee: &ast::Expr, live: impl Fn(&Atom) -> bool) -> Option<Ctor> {
        match unwrap(callee) {
            ast::Expr::Ident(id) if live(&id.sym) => {
                let k = &self.known;
                if k.topic_ctor.contains(&id.sym) {
                    Some(Ctor::Topic)
                } else if k.subscription_ctor.contains(&id.sym) {
                    Some(Ctor::Subscription)
                } else if k.service_ctor.contains(&id.sym) {
                    Some(Ctor::Service)
                } else {
                    None
                }
            }
            ast::Expr::Member(m) => {
                let ast::Expr::Ident(ns) = unwrap(&m.obj) else { return None };
                let ast::MemberProp::Ident(prop) = &m.prop else { return None };
                if !live(&ns.sym) {
                    return None;
                }
                if self.known.pubsub_ns.contains(&ns.sym) {
                    match &*prop.sym {
                        "Topic" => Some(Ctor::Topic),
                        "Subscription" => Some(Ctor::Subscription),
                        "Service" if self.known.service_ns.contains(&ns.sym) => Some(Ctor::Service),
                        _ => None,
                    }
                } else if self.known.service_ns.contains(&ns.sym) && &*prop.sym == "Service" {
                    Some(Ctor::Service)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn module_ctor<'a>(&self, e: &'a ast::Expr) -> Option<(Ctor, &'a ast::NewExpr)> {
        match unwrap(e) {
            ast::Expr::New(new) => self.ctor_kind(&new.callee, |_| true).map(|k| (k, new)),
            _ => None,
        }
    }

    /// `Topic.declaredElsewhere<T>(...)` (or `pubsub.Topic.declaredElsewhere`), at module level.
    fn topic_handle_call<'a>(&self, e: &'a ast::Expr) -> Option<&'a ast::CallExpr> {
        let ast::Expr::Call(call) = unwrap(e) else { return None };
        let ast::Callee::Expr(callee) = &call.callee else { return None };
        let ast::Expr::Member(m) = unwrap(callee) else { return None };
        let ast::MemberProp::Ident(prop) = &m.prop else { return None };
        let is_topic = self.ctor_kind(&m.obj, |_| true) == Some(Ctor::Topic);
        (is_topic && &*prop.sym == "declaredElsewhere").then_some(call)
    }

    fn set_local(&mut self, name: &Atom, local: Local) {
        // An import keeps its binding; a later declaration of the same name is a TS error.
        self.facts.locals.entry(name.clone()).or_insert(local);
    }

    fn collect_items(&mut self, module: &ast::Module) {
        for item in &module.body {
            match item {
                ast::ModuleItem::Stmt(ast::Stmt::Decl(decl)) => {
                    self.decl(decl, false, item_lo(item));
                }
                ast::ModuleItem::Stmt(ast::Stmt::Expr(stmt)) => {
                    if let Some((ctor, new)) = self.module_ctor(&stmt.expr) {
                        self.declaration(ctor, new, new.span, item_lo(item));
                    }
                }
                ast::ModuleItem::ModuleDecl(decl) => match decl {
                    ast::ModuleDecl::ExportDecl(export) => {
                        self.decl(&export.decl, true, item_lo(item));
                    }
                    ast::ModuleDecl::ExportDefaultExpr(e) => {
                        self.export_default_expr(&e.expr, item_lo(item));
                    }
                    ast::ModuleDecl::ExportDefaultDecl(d) => self.export_default_decl(d),
                    ast::ModuleDecl::ExportNamed(named) if named.src.is_none() => {
                        for spec in &named.specifiers {
                            if let ast::ExportSpecifier::Named(n) = spec {
                                let (orig, name) = export_names(n);
                                self.facts
                                    .exports
                                    .push(Export { name, target: ExportTarget::Local(orig) });
                            }
                        }
                    }
                    _ => {}
                },
                ast::ModuleItem::Stmt(_) => {}
            }
        }
    }

    /// A module-level value name, exported under the same name when `exported`.
    fn bind(&mut self, name: &Atom, local: Local, exported: bool) {
        self.set_local(name, local);
        if exported {
            self.export_local(name);
        }
    }

    fn export_local(&mut self, name: &Atom) {
        self.facts
            .exports
            .push(Export { name: name.clone(), target: ExportTarget::Local(name.clone()) });
    }

    fn decl(&mut self, decl: &ast::Decl, exported: bool, stmt_lo: u32) {
        match decl {
            ast::Decl::Var(var) => {
                for declarator in &var.decls {
                    let ast::Pat::Ident(binding) = &declarator.name else {
                        let mut names = Vec::new();
                        pat_names(&declarator.name, &mut names);
                        for name in names {
                            self.set_local(name, Local::Other);
                            if exported {
                                self.export_local(name);
                            }
                        }
                        continue;
                    };
                    let name = &binding.id.sym;
                    let mut local = Local::Other;
                    if var.kind == ast::VarDeclKind::Const
                        && let Some(init) = &declarator.init
                        && let Some(value) = self.constant(init)
                    {
                        self.consts.insert(name.clone(), value);
                    }
                    if let Some(init) = &declarator.init {
                        if let Some((ctor, new)) = self.module_ctor(init) {
                            let span = swc_common::Span::new(declarator.span.lo, new.span.hi);
                            if let Some(topic) = self.declaration(ctor, new, span, stmt_lo) {
                                local = Local::Topic(topic);
                            }
                        } else if let Some(call) = self.topic_handle_call(init) {
                            let span = swc_common::Span::new(declarator.span.lo, call.span.hi);
                            local = Local::Topic(self.topic_handle(call, span, stmt_lo));
                        } else if matches!(unwrap(init), ast::Expr::Arrow(_) | ast::Expr::Fn(_)) {
                            local = Local::Function;
                        }
                    }
                    self.set_local(name, local);
                    if exported {
                        self.export_local(name);
                    }
                }
            }
            ast::Decl::Fn(f) => self.bind(&f.ident.sym, Local::Function, exported),
            ast::Decl::Class(c) => self.bind(&c.ident.sym, Local::Other, exported),
            ast::Decl::TsInterface(i) => {
                let def = self.interface(i);
                self.add_type(&i.id.sym, def);
                if exported {
                    self.export_local(&i.id.sym);
                }
            }
            ast::Decl::TsTypeAlias(a) => {
                let def = self.type_alias(a);
                self.add_type(&a.id.sym, def);
                if exported {
                    self.export_local(&a.id.sym);
                }
            }
            ast::Decl::TsEnum(e) => {
                let def = self.enum_def(e);
                self.add_type(&e.id.sym, def);
                self.bind(&e.id.sym, Local::Other, exported);
            }
            ast::Decl::TsModule(m) => {
                if let ast::TsModuleName::Ident(id) = &m.id {
                    self.bind(&id.sym, Local::Other, exported);
                }
            }
            ast::Decl::Using(u) => {
                for declarator in &u.decls {
                    let mut names = Vec::new();
                    pat_names(&declarator.name, &mut names);
                    for name in names {
                        self.set_local(name, Local::Other);
                    }
                }
            }
        }
    }

    /// Declares a module-level type; a second `interface` of a name merges into the first
    /// (TypeScript's declaration merging), members of the later one last.
    fn add_type(&mut self, name: &Atom, def: TypeDef) {
        use std::collections::hash_map::Entry;
        match (self.facts.types.entry(name.clone()), def) {
            (Entry::Occupied(mut e), TypeDef::Interface { body, extends, .. })
                if matches!(e.get(), TypeDef::Interface { .. }) =>
            {
                if let TypeDef::Interface { body: first, extends: first_extends, .. } = e.get_mut()
                {
                    first.members.extend(body.members);
                    if first.index.is_none() {
                        first.index = body.index;
                    }
                    first_extends.extend(extends);
                }
            }
            (Entry::Occupied(mut e), def) => {
                e.insert(def);
            }
            (Entry::Vacant(e), def) => {
                e.insert(def);
            }
        }
    }

    fn export_default_expr(&mut self, expr: &ast::Expr, stmt_lo: u32) {
        let target = if let Some((ctor, new)) = self.module_ctor(expr) {
            match self.declaration(ctor, new, new.span, stmt_lo) {
                Some(topic) => ExportTarget::Topic(topic),
                None => ExportTarget::Opaque,
            }
        } else if let ast::Expr::Ident(id) = unwrap(expr) {
            ExportTarget::Local(id.sym.clone())
        } else {
            ExportTarget::Opaque
        };
        self.facts.exports.push(Export { name: "default".into(), target });
    }

    fn export_default_decl(&mut self, d: &ast::ExportDefaultDecl) {
        let target = match &d.decl {
            ast::DefaultDecl::Fn(f) => match &f.ident {
                Some(id) => {
                    self.set_local(&id.sym, Local::Function);
                    ExportTarget::Local(id.sym.clone())
                }
                None => ExportTarget::Opaque,
            },
            ast::DefaultDecl::Class(c) => match &c.ident {
                Some(id) => {
                    self.set_local(&id.sym, Local::Other);
                    ExportTarget::Local(id.sym.clone())
                }
                None => ExportTarget::Opaque,
            },
            ast::DefaultDecl::TsInterfaceDecl(i) => {
                let def = self.interface(i);
                self.facts.types.insert(i.id.sym.clone(), def);
                ExportTarget::Local(i.id.sym.clone())
            }
        };
        self.facts.exports.push(Export { name: "default".into(), target });
    }

    /// A module-level `new Topic/Subscription/Service(...)`. Returns the topic index for topics.
    fn declaration(
        &mut self,
        ctor: Ctor,
        new: &ast::NewExpr,
        span: swc_common::Span,
        stmt_lo: u32,
    ) -> Option<usize> {
        self.module_level_ctors.insert(new.span.lo.0);
        match ctor {
            Ctor::Topic => Some(self.topic_decl(new, span, stmt_lo)),
            Ctor::Subscription => {
                self.subscription_decl(new, span);
                None
            }
            Ctor::Service => {
                self.service_decl(new);
                None
            }
        }
    }

    fn service_decl(&mut self, new: &ast::NewExpr) {
        let span = self.sp(new.span);
        if !self.ctx.declares_service {
            // `new Service` outside encore.service.ts has no meaning for Encore; ignore it.
            return;
        }
        let name = match new.args.as_deref().and_then(|a| a.first()) {
            Some(arg) if arg.spread.is_none() => match self.string_lit(&arg.expr) {
                Some(name) => Some(name),
                None => {
                    let s = self.sp(arg.expr_span());
                    self.facts.diagnostics.push(diag::name_not_literal(DeclKind::Service, s));
                    None
                }
            },
            _ => {
                self.facts
                    .diagnostics
                    .push(diag::name_not_literal(DeclKind::Service, span.clone()));
                None
            }
        };
        if self.facts.service.is_none() {
            self.facts.service = Some(ServiceDecl { name, span });
        }
    }
}

trait ExprSpan {
    fn expr_span(&self) -> swc_common::Span;
}

impl ExprSpan for ast::ExprOrSpread {
    fn expr_span(&self) -> swc_common::Span {
        use swc_common::Spanned;
        self.expr.span()
    }
}

fn item_lo(item: &ast::ModuleItem) -> u32 {
    use swc_common::Spanned;
    item.span().lo.0
}
