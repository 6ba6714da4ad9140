//! Pass 2: every function body and expression, with a scope stack so a local variable that
//! shadows an imported name is never mistaken for it.
//!
//! Records a [`Use`] for each reference to a module-level name that may be a topic (an import
//! or a local topic binding), classified by what the code does with it, and reports pubsub
//! constructors that are not module-level declarations. Types are skipped: they cannot hold
//! topic values.

use rustc_hash::{FxHashMap, FxHashSet};

use swc_atoms::Atom;
use swc_common::Spanned;
use swc_ecma_ast as ast;
use swc_ecma_visit::{Visit, VisitWith};

use super::{Ctor, Extractor, pat_names, unwrap};
use crate::diagnostics::{self as diag, DeclKind};
use crate::facts::{Local, RefPermission, Use, UseKind};

pub(super) fn visit(x: &mut Extractor, module: &ast::Module) {
    let mut interesting: FxHashSet<Atom> = FxHashSet::default();
    let mut use_names: FxHashSet<Atom> = FxHashSet::default();
    #[expect(clippy::iter_over_hash_type, reason = "fills sets; the order does not matter")]
    for (name, local) in &x.facts.locals {
        let atom = Atom::from(name.as_str());
        match local {
            Local::Topic(_) => {
                use_names.insert(atom.clone());
            }
            Local::Import(i) if !x.facts.imports[*i].type_only => {
                use_names.insert(atom.clone());
            }
            Local::Import(_) => continue,
            // In a file known to be in a service, references between its own declarations never
            // matter (they only carry reachability through shared files).
            Local::Function | Local::Other if x.ctx.in_service => continue,
            Local::Function | Local::Other => {}
        }
        interesting.insert(atom);
    }
    if use_names.is_empty() {
        // Nothing here can be a topic, and without imports nothing here can lead to a publish
        // elsewhere: references between this file's own declarations do not matter.
        return;
    }
    let occurrences =
        if x.ctx.in_service { occurrences(x.facts.source.text(), &interesting) } else { None };
    let mut v = Bodies {
        x,
        occurrences,
        interesting,
        use_names,
        shadowed: FxHashMap::default(),
        fn_depth: 0,
        block_depth: 0,
        owner: None,
        var_item: false,
        local_refs: FxHashSet::default(),
    };
    module.visit_with(&mut v);
    let mut refs: Vec<(Option<u32>, Atom)> = v.local_refs.into_iter().collect();
    refs.sort_by(|a, b| (a.0, &*a.1).cmp(&(b.0, &*b.1)));
    x.facts.local_refs = refs;
}

/// Byte offsets where one of `names` occurs as a whole word in `text`, sorted; `None` when the
/// text cannot be searched reliably (identifiers may be written with `\u` escapes) or there
/// are too many names for a search per name to pay off.
///
/// Everything pass 2 records involves an interesting identifier, so a subtree whose text holds
/// no occurrence is skipped without being visited: most function bodies never mention an import.
fn occurrences(text: &str, names: &FxHashSet<Atom>) -> Option<Vec<u32>> {
    const MAX_NAMES: usize = 24;
    if names.len() > MAX_NAMES || text.contains("\\u") {
        return None;
    }
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    let mut found = Vec::new();
    #[expect(clippy::iter_over_hash_type, reason = "the offsets are sorted afterwards")]
    for name in names {
        let needle = name.as_str().as_bytes();
        for at in memchr::memmem::find_iter(bytes, needle) {
            let before = at.checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(at + needle.len()).copied();
            if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
                found.push(at as u32);
            }
        }
    }
    found.sort_unstable();
    Some(found)
}

struct Bodies<'x> {
    x: &'x mut Extractor,
    /// Where interesting names occur in the text (see [`occurrences`]), for files in services.
    occurrences: Option<Vec<u32>>,
    /// Module-level value names: imports, topics and the file's own declarations.
    interesting: FxHashSet<Atom>,
    /// The subset that may be topics (imports and topic bindings): their uses are recorded.
    use_names: FxHashSet<Atom>,
    /// How many enclosing scopes re-declare each interesting name.
    shadowed: FxHashMap<Atom, u32>,
    fn_depth: u32,
    /// Blocks (`{ ... }`) entered outside functions.
    block_depth: u32,
    /// The module-level declaration being visited (index into `owners`).
    owner: Option<u32>,
    /// The module item being visited is a variable declaration (owners are per declarator).
    var_item: bool,
    local_refs: FxHashSet<(Option<u32>, Atom)>,
}

/// Names a scope declares that matter (shadow an interesting module-level name). Usually
/// empty, and then it does not allocate.
type Shadows = Vec<Atom>;

impl Bodies<'_> {
    /// Can anything interesting be inside this span? (Always, when the text was not searched.)
    fn worth_visiting(&self, span: swc_common::Span) -> bool {
        let Some(found) = &self.occurrences else { return true };
        let raw = crate::parse::to_raw(span);
        let first = found.partition_point(|&at| at < raw.lo);
        found.get(first).is_some_and(|&at| at < raw.hi)
    }

    /// Does this name refer to the module-level binding here?
    fn live(&self, name: &Atom) -> bool {
        self.interesting.contains(name)
            && (self.shadowed.is_empty() || self.shadowed.get(name).is_none_or(|n| *n == 0))
    }

    /// Keeps the names that shadow something interesting.
    fn shadows<'a>(&self, names: impl IntoIterator<Item = &'a Atom>) -> Shadows {
        names.into_iter().filter(|n| self.interesting.contains(*n)).cloned().collect()
    }

    fn push_scope(&mut self, pushed: &Shadows) {
        for name in pushed {
            *self.shadowed.entry(name.clone()).or_default() += 1;
        }
    }

    fn pop_scope(&mut self, pushed: Shadows) {
        for name in pushed {
            if let Some(n) = self.shadowed.get_mut(&name) {
                *n -= 1;
                if *n == 0 {
                    self.shadowed.remove(&name);
                }
            }
        }
    }

    /// The declaration a use belongs to. Code that runs when the module loads (not inside a
    /// function) belongs to no declaration, except a `ref<...>()` whose value initializes one.
    fn owner_for(&self, kind: &UseKind) -> Option<u32> {
        if self.fn_depth > 0 || matches!(kind, UseKind::Ref(_)) { self.owner } else { None }
    }

    fn record(&mut self, name: &Atom, path: Vec<Atom>, kind: UseKind, span: swc_common::Span) {
        if !self.use_names.contains(name) {
            let owner = if self.fn_depth > 0 { self.owner } else { None };
            self.local_refs.insert((owner, name.clone()));
            return;
        }
        if self.x.known.framework.contains(name) {
            return;
        }
        let span = crate::parse::to_raw(span);
        let owner = self.owner_for(&kind);
        self.x.facts.uses.push(Use { name: name.clone(), path, kind, span, owner });
    }

    fn push_owner(&mut self, names: Vec<Atom>) -> Option<u32> {
        if names.is_empty() {
            return None;
        }
        self.x.facts.owners.push(names);
        Some(self.x.facts.owners.len() as u32 - 1)
    }

    /// `name.a.b` with a live root: the root and the property path.
    fn chain<'e>(&self, e: &'e ast::Expr) -> Option<(&'e Atom, Vec<Atom>)> {
        match unwrap(e) {
            ast::Expr::Ident(id) if self.live(&id.sym) => Some((&id.sym, Vec::new())),
            ast::Expr::Member(_) | ast::Expr::OptChain(_) => {
                let m = as_member(e)?;
                let (root, mut path) = self.chain(&m.obj)?;
                match &m.prop {
                    ast::MemberProp::Ident(p) => path.push(p.sym.clone()),
                    ast::MemberProp::Computed(c) => match unwrap(&c.expr) {
                        ast::Expr::Lit(ast::Lit::Str(s)) => {
                            path.push(Atom::from(&*s.value.to_string_lossy()));
                        }
                        _ => return None,
                    },
                    ast::MemberProp::PrivateName(_) => return None,
                }
                Some((root, path))
            }
            _ => None,
        }
    }

    /// A `x.publish(...)` / `x.ref<P>()` call on a name chain.
    fn publish_or_ref(
        &mut self,
        callee: &ast::Expr,
        type_args: Option<&ast::TsTypeParamInstantiation>,
        span: swc_common::Span,
    ) -> bool {
        let Some(m) = as_member(callee) else { return false };
        let ast::MemberProp::Ident(prop) = &m.prop else { return false };
        let kind = match &*prop.sym {
            "publish" => UseKind::Publish,
            "ref" => UseKind::Ref(match type_args.and_then(|t| t.params.first()) {
                None => RefPermission::Missing,
                Some(t) if self.x.is_publisher(t) => RefPermission::Publisher,
                Some(t) => RefPermission::Other(self.x.type_text(t.span())),
            }),
            _ => return false,
        };
        let Some((root, path)) = self.chain(&m.obj) else { return false };
        if !self.use_names.contains(root) {
            return false;
        }
        let root = root.clone();
        self.record(&root, path, kind, span);
        true
    }

    fn is_api_callee(&self, callee: &ast::Expr) -> bool {
        let k = &self.x.known;
        if k.api_fn.is_empty() && k.api_ns.is_empty() {
            return false;
        }
        match unwrap(callee) {
            ast::Expr::Ident(id) => k.api_fn.contains(&id.sym) && self.live(&id.sym),
            ast::Expr::Member(m) => match unwrap(&m.obj) {
                // api.raw(...), api.streamIn(...)
                ast::Expr::Ident(id) if k.api_fn.contains(&id.sym) => self.live(&id.sym),
                // ns.api(...)
                ast::Expr::Ident(id) if k.api_ns.contains(&id.sym) => {
                    self.live(&id.sym)
                        && matches!(&m.prop, ast::MemberProp::Ident(p) if &*p.sym == "api")
                }
                // ns.api.raw(...)
                ast::Expr::Member(inner) => matches!(
                    (unwrap(&inner.obj), &inner.prop),
                    (ast::Expr::Ident(id), ast::MemberProp::Ident(p))
                        if k.api_ns.contains(&id.sym) && &*p.sym == "api" && self.live(&id.sym)
                ),
                _ => false,
            },
            _ => false,
        }
    }

    fn visit_args_skipping_first(&mut self, new: &ast::NewExpr, skip_first: bool) {
        if let Some(args) = &new.args {
            for (i, arg) in args.iter().enumerate() {
                if !(skip_first && i == 0) {
                    arg.visit_with(self);
                }
            }
        }
    }

    /// Runs `f` with `names` declared in a new (block) scope.
    fn in_scope(&mut self, names: Vec<&Atom>, f: impl FnOnce(&mut Self)) {
        let pushed = self.shadows(names);
        self.push_scope(&pushed);
        f(self);
        self.pop_scope(pushed);
    }

    fn in_function<T>(&mut self, names: Vec<&Atom>, f: impl FnOnce(&mut Self) -> T) -> T {
        let pushed = self.shadows(names);
        self.push_scope(&pushed);
        self.fn_depth += 1;
        let result = f(self);
        self.fn_depth -= 1;
        self.pop_scope(pushed);
        result
    }
}

/// A member expression, plain (`a.b`) or optional (`a?.b`).
fn as_member(e: &ast::Expr) -> Option<&ast::MemberExpr> {
    match unwrap(e) {
        ast::Expr::Member(m) => Some(m),
        ast::Expr::OptChain(o) => match &*o.base {
            ast::OptChainBase::Member(m) => Some(m),
            ast::OptChainBase::Call(_) => None,
        },
        _ => None,
    }
}

/// Names a function body declares for its whole extent: `var` anywhere (not in nested
/// functions), and let/const/class/function at its top level.
fn function_scope_names<'a>(stmts: &'a [ast::Stmt], out: &mut Vec<&'a Atom>) {
    for stmt in stmts {
        lexical_names(stmt, out);
        var_names(stmt, out);
    }
}

fn lexical_names<'a>(stmt: &'a ast::Stmt, out: &mut Vec<&'a Atom>) {
    let ast::Stmt::Decl(decl) = stmt else { return };
    match decl {
        ast::Decl::Var(v) if v.kind != ast::VarDeclKind::Var => {
            v.decls.iter().for_each(|d| pat_names(&d.name, out));
        }
        ast::Decl::Using(u) => u.decls.iter().for_each(|d| pat_names(&d.name, out)),
        ast::Decl::Fn(f) => out.push(&f.ident.sym),
        ast::Decl::Class(c) => out.push(&c.ident.sym),
        ast::Decl::TsEnum(e) => out.push(&e.id.sym),
        ast::Decl::TsModule(m) => {
            if let ast::TsModuleName::Ident(id) = &m.id {
                out.push(&id.sym);
            }
        }
        _ => {}
    }
}

/// Names a `let`/`const`/`using` declaration binds (not `var`, which is function-scoped).
fn block_scoped_names<'a>(v: &'a ast::VarDecl, out: &mut Vec<&'a Atom>) {
    if v.kind != ast::VarDeclKind::Var {
        v.decls.iter().for_each(|d| pat_names(&d.name, out));
    }
}

fn var_decl_names<'a>(v: &'a ast::VarDecl, out: &mut Vec<&'a Atom>) {
    if v.kind == ast::VarDeclKind::Var {
        v.decls.iter().for_each(|d| pat_names(&d.name, out));
    }
}

fn var_names<'a>(stmt: &'a ast::Stmt, out: &mut Vec<&'a Atom>) {
    match stmt {
        ast::Stmt::Decl(ast::Decl::Var(v)) => var_decl_names(v, out),
        ast::Stmt::Block(b) => b.stmts.iter().for_each(|s| var_names(s, out)),
        ast::Stmt::If(i) => {
            var_names(&i.cons, out);
            if let Some(alt) = &i.alt {
                var_names(alt, out);
            }
        }
        ast::Stmt::For(f) => {
            if let Some(ast::VarDeclOrExpr::VarDecl(v)) = &f.init {
                var_decl_names(v, out);
            }
            var_names(&f.body, out);
        }
        ast::Stmt::ForIn(f) => {
            if let ast::ForHead::VarDecl(v) = &f.left {
                var_decl_names(v, out);
            }
            var_names(&f.body, out);
        }
        ast::Stmt::ForOf(f) => {
            if let ast::ForHead::VarDecl(v) = &f.left {
                var_decl_names(v, out);
            }
            var_names(&f.body, out);
        }
        ast::Stmt::While(w) => var_names(&w.body, out),
        ast::Stmt::DoWhile(w) => var_names(&w.body, out),
        ast::Stmt::Labeled(l) => var_names(&l.body, out),
        ast::Stmt::With(w) => var_names(&w.body, out),
        ast::Stmt::Try(t) => {
            t.block.stmts.iter().for_each(|s| var_names(s, out));
            if let Some(h) = &t.handler {
                h.body.stmts.iter().for_each(|s| var_names(s, out));
            }
            if let Some(f) = &t.finalizer {
                f.stmts.iter().for_each(|s| var_names(s, out));
            }
        }
        ast::Stmt::Switch(s) => {
            s.cases.iter().flat_map(|c| &c.cons).for_each(|s| var_names(s, out));
        }
        _ => {}
    }
}

fn param_names<'a>(params: &'a [ast::Param], out: &mut Vec<&'a Atom>) {
    params.iter().for_each(|p| pat_names(&p.pat, out));
}

impl Visit for Bodies<'_> {
    // Types never hold values.
    fn visit_ts_type(&mut self, _: &ast::TsType) {}
    fn visit_ts_type_ann(&mut self, _: &ast::TsTypeAnn) {}
    fn visit_ts_type_param_instantiation(&mut self, _: &ast::TsTypeParamInstantiation) {}
    fn visit_ts_type_param_decl(&mut self, _: &ast::TsTypeParamDecl) {}
    fn visit_ts_interface_decl(&mut self, _: &ast::TsInterfaceDecl) {}
    fn visit_ts_type_alias_decl(&mut self, _: &ast::TsTypeAliasDecl) {}

    fn visit_module_item(&mut self, item: &ast::ModuleItem) {
        if !self.worth_visiting(item.span()) {
            return;
        }
        let decl_names = |d: &ast::Decl| -> Option<Vec<Atom>> {
            match d {
                ast::Decl::Fn(f) => Some(vec![f.ident.sym.clone()]),
                ast::Decl::Class(c) => Some(vec![c.ident.sym.clone()]),
                ast::Decl::TsEnum(e) => Some(vec![e.id.sym.clone()]),
                ast::Decl::Var(_) | ast::Decl::Using(_) => None,
                _ => Some(Vec::new()),
            }
        };
        let names = match item {
            ast::ModuleItem::Stmt(ast::Stmt::Decl(d)) => decl_names(d),
            ast::ModuleItem::ModuleDecl(ast::ModuleDecl::ExportDecl(e)) => decl_names(&e.decl),
            ast::ModuleItem::ModuleDecl(ast::ModuleDecl::ExportDefaultDecl(d)) => {
                let ident = match &d.decl {
                    ast::DefaultDecl::Fn(f) => f.ident.as_ref(),
                    ast::DefaultDecl::Class(c) => c.ident.as_ref(),
                    ast::DefaultDecl::TsInterfaceDecl(_) => None,
                };
                Some(
                    std::iter::once(Atom::from("default"))
                        .chain(ident.map(|i| i.sym.clone()))
                        .collect(),
                )
            }
            ast::ModuleItem::ModuleDecl(ast::ModuleDecl::ExportDefaultExpr(_)) => {
                Some(vec![Atom::from("default")])
            }
            _ => Some(Vec::new()),
        };
        let (saved_owner, saved_var) = (self.owner, self.var_item);
        match names {
            Some(names) => self.owner = self.push_owner(names),
            None => {
                self.owner = None;
                self.var_item = true;
            }
        }
        item.visit_children_with(self);
        self.owner = saved_owner;
        self.var_item = saved_var;
    }

    fn visit_var_declarator(&mut self, d: &ast::VarDeclarator) {
        if self.var_item && self.fn_depth == 0 {
            let mut names = Vec::new();
            pat_names(&d.name, &mut names);
            let names = names.into_iter().cloned().collect();
            let saved = self.owner;
            self.var_item = false;
            self.owner = self.push_owner(names);
            d.visit_children_with(self);
            self.owner = saved;
            self.var_item = true;
        } else {
            d.visit_children_with(self);
        }
    }

    fn visit_jsx_element_name(&mut self, n: &ast::JSXElementName) {
        match n {
            ast::JSXElementName::Ident(id) if self.live(&id.sym) => {
                let sym = id.sym.clone();
                self.record(&sym, Vec::new(), UseKind::Other, id.span);
            }
            ast::JSXElementName::JSXMemberExpr(m) => {
                let mut path = vec![m.prop.sym.clone()];
                let mut obj = &m.obj;
                while let ast::JSXObject::JSXMemberExpr(inner) = obj {
                    path.push(inner.prop.sym.clone());
                    obj = &inner.obj;
                }
                path.reverse();
                if let ast::JSXObject::Ident(id) = obj
                    && self.live(&id.sym)
                {
                    let sym = id.sym.clone();
                    self.record(&sym, path, UseKind::Other, id.span);
                }
            }
            _ => {}
        }
    }

    // Module items pass 1 fully understood.
    fn visit_module_decl(&mut self, n: &ast::ModuleDecl) {
        match n {
            ast::ModuleDecl::Import(_)
            | ast::ModuleDecl::ExportAll(_)
            | ast::ModuleDecl::ExportNamed(_) => {}
            ast::ModuleDecl::ExportDefaultExpr(e)
                if matches!(unwrap(&e.expr), ast::Expr::Ident(_)) => {}
            ast::ModuleDecl::TsImportEquals(_) => {}
            _ => n.visit_children_with(self),
        }
    }

    fn visit_function(&mut self, f: &ast::Function) {
        if !self.worth_visiting(f.span) {
            return;
        }
        let mut names = Vec::new();
        param_names(&f.params, &mut names);
        if let Some(body) = &f.body {
            function_scope_names(&body.stmts, &mut names);
        }
        self.in_function(names, |v| {
            f.decorators.visit_with(v);
            f.params.visit_with(v);
            if let Some(body) = &f.body {
                body.stmts.visit_with(v);
            }
        });
    }

    fn visit_fn_expr(&mut self, f: &ast::FnExpr) {
        let pushed = self.shadows(f.ident.iter().map(|i| &i.sym));
        self.push_scope(&pushed);
        f.function.visit_with(self);
        self.pop_scope(pushed);
    }

    fn visit_arrow_expr(&mut self, a: &ast::ArrowExpr) {
        if !self.worth_visiting(a.span) {
            return;
        }
        let mut names = Vec::new();
        a.params.iter().for_each(|p| pat_names(p, &mut names));
        if let ast::ArrowFunctionBody::FunctionBody(body) = &*a.body {
            function_scope_names(&body.stmts, &mut names);
        }
        self.in_function(names, |v| {
            a.params.visit_with(v);
            match &*a.body {
                ast::ArrowFunctionBody::FunctionBody(body) => body.stmts.visit_with(v),
                ast::ArrowFunctionBody::Expr(e) => e.visit_with(v),
            }
        });
    }

    fn visit_constructor(&mut self, c: &ast::Constructor) {
        if !self.worth_visiting(c.span) {
            return;
        }
        let mut names = Vec::new();
        for p in &c.params {
            match p {
                ast::ParamOrTsParamProp::Param(p) => pat_names(&p.pat, &mut names),
                ast::ParamOrTsParamProp::TsParamProp(p) => match &p.param {
                    ast::TsParamPropParam::Ident(b) => names.push(&b.id.sym),
                    ast::TsParamPropParam::Assign(a) => pat_names(&a.left, &mut names),
                },
            }
        }
        if let Some(body) = &c.body {
            function_scope_names(&body.stmts, &mut names);
        }
        self.in_function(names, |v| {
            c.params.visit_with(v);
            if let Some(body) = &c.body {
                body.stmts.visit_with(v);
            }
        });
    }

    fn visit_block_stmt(&mut self, b: &ast::BlockStmt) {
        if !self.worth_visiting(b.span) {
            return;
        }
        let mut names = Vec::new();
        b.stmts.iter().for_each(|s| lexical_names(s, &mut names));
        let pushed = self.shadows(names);
        self.push_scope(&pushed);
        self.block_depth += 1;
        b.stmts.visit_with(self);
        self.block_depth -= 1;
        self.pop_scope(pushed);
    }

    fn visit_static_block(&mut self, b: &ast::StaticBlock) {
        self.in_function(Vec::new(), |v| b.body.visit_with(v));
    }

    fn visit_switch_stmt(&mut self, s: &ast::SwitchStmt) {
        let mut names = Vec::new();
        s.cases.iter().flat_map(|c| &c.cons).for_each(|s| lexical_names(s, &mut names));
        s.discriminant.visit_with(self);
        let pushed = self.shadows(names);
        self.push_scope(&pushed);
        s.cases.visit_with(self);
        self.pop_scope(pushed);
    }

    fn visit_for_stmt(&mut self, f: &ast::ForStmt) {
        let mut names = Vec::new();
        if let Some(ast::VarDeclOrExpr::VarDecl(v)) = &f.init {
            block_scoped_names(v, &mut names);
        }
        self.in_scope(names, |v| f.visit_children_with(v));
    }

    fn visit_for_in_stmt(&mut self, f: &ast::ForInStmt) {
        let mut names = Vec::new();
        if let ast::ForHead::VarDecl(v) = &f.left {
            block_scoped_names(v, &mut names);
        }
        self.in_scope(names, |v| f.visit_children_with(v));
    }

    fn visit_for_of_stmt(&mut self, f: &ast::ForOfStmt) {
        let mut names = Vec::new();
        if let ast::ForHead::VarDecl(v) = &f.left {
            block_scoped_names(v, &mut names);
        }
        self.in_scope(names, |v| f.visit_children_with(v));
    }

    fn visit_catch_clause(&mut self, c: &ast::CatchClause) {
        let mut names = Vec::new();
        if let Some(p) = &c.param {
            pat_names(p, &mut names);
        }
        let pushed = self.shadows(names);
        self.push_scope(&pushed);
        c.body.visit_with(self);
        self.pop_scope(pushed);
    }

    fn visit_class_expr(&mut self, c: &ast::ClassExpr) {
        let pushed = self.shadows(c.ident.iter().map(|i| &i.sym));
        self.push_scope(&pushed);
        c.class.visit_with(self);
        self.pop_scope(pushed);
    }

    fn visit_new_expr(&mut self, n: &ast::NewExpr) {
        if !self.x.known.has_ctors() {
            n.visit_children_with(self);
            return;
        }
        let ctor = self.x.ctor_kind(&n.callee, |name| self.live(name));
        if self.x.module_level_ctors.contains(&n.span.lo.0) {
            // Read in pass 1; its topic argument is already a use.
            self.visit_args_skipping_first(n, ctor == Some(Ctor::Subscription));
            return;
        }
        match ctor {
            Some(kind @ (Ctor::Topic | Ctor::Subscription)) => {
                let decl_kind =
                    if kind == Ctor::Topic { DeclKind::Topic } else { DeclKind::Subscription };
                let span = self.x.sp(n.span);
                let nesting = if self.fn_depth > 0 {
                    diag::Nesting::Function
                } else if self.block_depth > 0 {
                    diag::Nesting::Block
                } else {
                    diag::Nesting::Expression
                };
                self.x.facts.diagnostics.push(diag::declared_in_function(decl_kind, span, nesting));
                self.visit_args_skipping_first(n, kind == Ctor::Subscription);
            }
            _ => n.visit_children_with(self),
        }
    }

    fn visit_call_expr(&mut self, c: &ast::CallExpr) {
        if let ast::Callee::Expr(callee) = &c.callee {
            if self.publish_or_ref(callee, c.type_args.as_deref(), c.span) {
                c.args.visit_with(self);
                return;
            }
            if self.x.facts.endpoint.is_none() && self.is_api_callee(callee) {
                self.x.facts.endpoint = Some(crate::parse::to_raw(c.span));
            }
        }
        c.visit_children_with(self);
    }

    fn visit_opt_chain_expr(&mut self, o: &ast::OptChainExpr) {
        if let ast::OptChainBase::Call(call) = &*o.base
            && self.publish_or_ref(&call.callee, call.type_args.as_deref(), o.span)
        {
            call.args.visit_with(self);
            return;
        }
        o.visit_children_with(self);
    }

    fn visit_unary_expr(&mut self, u: &ast::UnaryExpr) {
        // `typeof topic` reads nothing from the topic.
        if u.op == ast::UnaryOp::TypeOf && matches!(unwrap(&u.arg), ast::Expr::Ident(_)) {
            return;
        }
        u.visit_children_with(self);
    }

    fn visit_expr(&mut self, e: &ast::Expr) {
        match e {
            ast::Expr::Ident(id) if self.live(&id.sym) => {
                let sym = id.sym.clone();
                self.record(&sym, Vec::new(), UseKind::Other, id.span);
            }
            ast::Expr::Member(_) | ast::Expr::OptChain(_) => match self.chain(e) {
                Some((root, path)) => {
                    let root = root.clone();
                    self.record(&root, path, UseKind::Other, e.span());
                }
                None => e.visit_children_with(self),
            },
            _ => e.visit_children_with(self),
        }
    }

    fn visit_prop(&mut self, p: &ast::Prop) {
        if let ast::Prop::Shorthand(id) = p
            && self.live(&id.sym)
        {
            let sym = id.sym.clone();
            self.record(&sym, Vec::new(), UseKind::Other, id.span);
            return;
        }
        p.visit_children_with(self);
    }
}
