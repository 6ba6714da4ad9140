//! Lowering a topic's message type ([`TypeExpr`]s of the files, linked across them) into a
//! language-neutral [`MessageSchema`]: named declarations (interfaces, aliases, enums, each
//! instance of a generic one) become `$defs`, referred to by name, so recursion terminates;
//! intersections are merged into one object (distributing over unions); the utility types
//! real apps use are evaluated. Whatever is not followed is an open shape (`Any`) with a note
//! at its span, never an error; a name declared nowhere is an error (TypeScript refuses it).

mod utility;

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use busbar_diagnostics::{Diagnostic, Span};
use busbar_model::schema::{self as model, Literal, MessageSchema, Object, Property, Shape, Tuple};
use swc_atoms::Atom;

use crate::diagnostics as diag;
use crate::facts::{Keyword, ObjectType, RawSpan, TypeDef, TypeExpr};
use crate::link::{Linker, TypeMiss};

/// How many intersections of union members one intersection may produce before it is left
/// as `allOf`.
const MAX_DISTRIBUTED: usize = 64;
/// How many named instances one message type may have (generic types instantiated with ever
/// larger arguments stop here).
const MAX_DEFS: usize = 512;
/// How deep lowering may nest.
const MAX_DEPTH: usize = 96;
/// How many instances of one generic declaration may be in progress at once: more is a generic
/// that instantiates itself with ever larger arguments (`type Grow<T> = { next: Grow<T[]> }`).
const MAX_NESTED_INSTANCES: usize = 8;
/// How many shapes the type arguments of one instance may hold (arguments that double at each
/// level of a chain of generics stop here).
const MAX_ARGUMENT_SIZE: usize = 4096;
/// How deep merging the properties of intersected objects may go.
const MAX_MERGE_DEPTH: usize = 24;

/// A message type, lowered.
pub(crate) struct Lowered {
    pub schema: MessageSchema,
    /// Notes on what was not followed, errors for names declared nowhere and circular aliases.
    pub diagnostics: Vec<Diagnostic>,
}

/// Lowers the message type `ty`, written in `file`, titled `title`.
pub(crate) fn lower_message(
    linker: &Linker<'_>,
    file: usize,
    ty: &TypeExpr,
    title: &str,
) -> Lowered {
    let mut l = Lowerer {
        linker,
        schema: MessageSchema { title: title.to_string(), root: None, defs: BTreeMap::new() },
        instances: HashMap::default(),
        in_progress: HashSet::default(),
        flags: HashMap::default(),
        alias_spans: HashMap::default(),
        nesting: HashMap::default(),
        merged: HashMap::default(),
        merging: HashSet::default(),
        merge_depth: 0,
        diagnostics: Vec::new(),
        depth: 0,
    };
    let root = l.lower(&Scope { file, params: Vec::new() }, ty).shape;
    l.check_cycles();
    l.schema.root = Some(root);
    l.prune();
    Lowered { schema: l.schema, diagnostics: l.diagnostics }
}

/// A lowered type with what its shape cannot say.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Low {
    pub shape: Shape,
    /// `undefined` is one of its values (a property of this type may be absent).
    pub undefined: bool,
    /// It is `Attribute<T>`.
    pub attribute: bool,
}

impl Low {
    pub fn of(shape: Shape) -> Self {
        Low { shape, undefined: false, attribute: false }
    }
}

/// Where a type is lowered: its file, and the type parameters in scope with their arguments.
pub(super) struct Scope {
    pub file: usize,
    pub params: Vec<(Atom, Low)>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct InstanceKey {
    file: usize,
    name: Atom,
    args: Vec<Low>,
}

pub(super) struct Lowerer<'l, 'a> {
    pub linker: &'l Linker<'a>,
    pub schema: MessageSchema,
    instances: HashMap<InstanceKey, String>,
    /// Defs being lowered (a reference to one is a recursion: it stays a reference).
    in_progress: HashSet<String>,
    /// `(undefined, attribute)` of each def, for references to it.
    flags: HashMap<String, (bool, bool)>,
    /// Where each alias def was first used, for reporting a circular one.
    alias_spans: HashMap<String, Span>,
    /// How many instances of each declaration are being lowered.
    nesting: HashMap<(usize, Atom), usize>,
    /// Intersections of two named types, merged (and those being merged).
    merged: HashMap<(String, String), Shape>,
    merging: HashSet<(String, String)>,
    merge_depth: usize,
    pub diagnostics: Vec<Diagnostic>,
    depth: usize,
}

impl Lowerer<'_, '_> {
    pub fn span(&self, file: usize, raw: RawSpan) -> Span {
        self.linker.files[file].span_of(raw)
    }

    /// An open shape, with a note saying what was not followed.
    pub fn open(&mut self, file: usize, raw: RawSpan, what: &str) -> Low {
        let span = self.span(file, raw);
        self.diagnostics.push(diag::message_type_open(span, what));
        Low::of(Shape::Any)
    }

    pub fn lower(&mut self, scope: &Scope, t: &TypeExpr) -> Low {
        if self.depth > MAX_DEPTH {
            if self.depth == MAX_DEPTH + 1 {
                let span = self.span(scope.file, RawSpan::default());
                self.diagnostics.push(diag::message_type_open(
                    span,
                    &format!("the message type nests more than {MAX_DEPTH} levels deep"),
                ));
            }
            return Low::of(Shape::Any);
        }
        self.depth += 1;
        let low = self.lower_inner(scope, t);
        self.depth -= 1;
        low
    }

    fn lower_inner(&mut self, scope: &Scope, t: &TypeExpr) -> Low {
        match t {
            TypeExpr::Keyword(k) => match k {
                Keyword::String => Low::of(Shape::String),
                Keyword::Number => Low::of(Shape::Number),
                Keyword::Boolean => Low::of(Shape::Boolean),
                Keyword::BigInt => Low::of(Shape::Integer),
                Keyword::Null => Low::of(Shape::Null),
                Keyword::Undefined => {
                    Low { shape: Shape::Never, undefined: true, attribute: false }
                }
                // `unknown` and `any` include `undefined`: a property of this type may be absent.
                Keyword::Unknown => Low { shape: Shape::Any, undefined: true, attribute: false },
                Keyword::Never => Low::of(Shape::Never),
                Keyword::Object => Low::of(Shape::Object(Object::default())),
                // A symbol is left out of JSON; nothing is known of what is sent.
                Keyword::Symbol => Low::of(Shape::Any),
            },
            TypeExpr::Lit(l) => Low::of(Shape::Const(l.clone())),
            TypeExpr::Template => Low::of(Shape::String),
            TypeExpr::Object(o) => Low::of(Shape::Object(self.object(scope, o))),
            TypeExpr::Array(e) => {
                let low = self.lower(scope, e);
                Low::of(Shape::Array(Box::new(Self::nullable(low.shape, low.undefined))))
            }
            TypeExpr::Tuple(elements) => {
                let mut items = Vec::new();
                let mut required = 0;
                // `[A, ...B[], C]`: after the rest element, the elements are any of the rest's
                // and the trailing ones' types, and the trailing ones count as required.
                let mut rest: Option<Vec<Shape>> = None;
                for e in elements {
                    let low = self.lower(scope, &e.ty);
                    let shape = Self::nullable(low.shape, low.undefined);
                    match &mut rest {
                        Some(after) => {
                            after.push(shape);
                            required += 1;
                        }
                        None if e.rest => rest = Some(vec![self.element_of(&shape)]),
                        None => {
                            if !e.optional && required == items.len() {
                                required += 1;
                            }
                            items.push(shape);
                        }
                    }
                }
                let rest = rest.map(|all| Box::new(Shape::union(all)));
                Low::of(Shape::Tuple(Tuple { items, required, rest }))
            }
            TypeExpr::Union(members) => {
                let lows: Vec<Low> = members.iter().map(|m| self.lower(scope, m)).collect();
                Low {
                    undefined: lows.iter().any(|l| l.undefined),
                    attribute: lows.iter().any(|l| l.attribute),
                    shape: Shape::union(lows.into_iter().map(|l| l.shape)),
                }
            }
            TypeExpr::Intersection(parts) => {
                let lows: Vec<Low> = parts.iter().map(|p| self.lower(scope, p)).collect();
                let attribute = lows.iter().any(|l| l.attribute);
                let shapes: Vec<Shape> = lows.into_iter().map(|l| l.shape).collect();
                Low { shape: self.intersect(shapes), undefined: false, attribute }
            }
            TypeExpr::Attribute(inner) => {
                let low = self.lower(scope, inner);
                Low { attribute: true, ..low }
            }
            TypeExpr::Function { span } => {
                let open = self.open(
                    scope.file,
                    *span,
                    "a function is not sent (`JSON.stringify` leaves it out)",
                );
                Low { undefined: true, ..open }
            }
            TypeExpr::Unsupported { what, span } => {
                self.open(scope.file, *span, &format!("{what} is not evaluated"))
            }
            TypeExpr::Ref { path, args, span } => self.reference(scope, path, args, *span),
            TypeExpr::Index { object, index, span } => {
                let object = self.lower(scope, object).shape;
                let index = self.lower(scope, index).shape;
                self.indexed(scope, &object, &index, *span)
            }
            TypeExpr::KeyOf { of, span } => {
                let of = self.lower(scope, of).shape;
                self.key_of(scope, &of, *span)
            }
        }
    }

    /// An element type of an array or tuple: `JSON.stringify` writes `undefined` there as
    /// `null`.
    fn nullable(shape: Shape, undefined: bool) -> Shape {
        if undefined { Shape::union([shape, Shape::Null]) } else { shape }
    }

    /// The element type of a rest element's array type.
    fn element_of(&self, shape: &Shape) -> Shape {
        match self.peek(shape) {
            Some(Shape::Array(items)) => (**items).clone(),
            _ => Shape::Any,
        }
    }

    /// The shape a reference names, when its def is done (not for a recursion in progress).
    pub fn peek<'s>(&'s self, shape: &'s Shape) -> Option<&'s Shape> {
        let mut shape = shape;
        for _ in 0..=self.schema.defs.len() {
            match shape {
                Shape::Ref(name) => shape = self.schema.defs.get(name)?,
                other => return Some(other),
            }
        }
        None
    }

    fn object(&mut self, scope: &Scope, o: &ObjectType) -> Object {
        let mut object = Object::default();
        for member in &o.members {
            let low = match &member.ty {
                Some(ty) => self.lower(scope, ty),
                None => Low::of(Shape::Any),
            };
            let attribute = low.attribute.then(|| model::attribute_kind(&self.schema, &low.shape));
            let property = Property {
                shape: low.shape,
                required: !member.optional && !low.undefined,
                attribute,
                doc: member.doc.clone(),
                span: model::At(Some(self.span(scope.file, member.span))),
            };
            object.properties.insert(member.name.to_string(), property);
        }
        if let Some(index) = &o.index {
            object.additional = Some(Box::new(self.lower(scope, index).shape));
        }
        object
    }

    fn reference(&mut self, scope: &Scope, path: &[Atom], args: &[TypeExpr], span: RawSpan) -> Low {
        if let [only] = path
            && let Some((_, bound)) = scope.params.iter().rev().find(|(name, _)| name == only)
        {
            return bound.clone();
        }
        let lowered: Vec<Low> = args.iter().map(|a| self.lower(scope, a)).collect();
        let facts = &self.linker.files[scope.file];
        if let [only] = path
            && !facts.types.contains_key(only)
            && !facts.imports.iter().any(|i| &i.local == only)
            && let Some(low) = self.builtin(scope, only, &lowered, span)
        {
            return low;
        }
        if let [head, member] = path
            && let Ok((_, TypeDef::Enum { members })) =
                self.linker.type_def(scope.file, std::slice::from_ref(head))
            && let Some((_, value)) = members.iter().find(|(name, _)| name == member)
        {
            // `Kind.Created`: an enum member as a type is its value.
            return Low::of(match value {
                Some(l) => Shape::Const(l.clone()),
                None => Shape::union([Shape::Number, Shape::String]),
            });
        }
        match self.linker.type_def(scope.file, path) {
            Ok((def_file, def)) => {
                let name = path.last().cloned().unwrap_or_default();
                self.instance(def_file, &name, def, lowered, self.span(scope.file, span))
            }
            Err(TypeMiss::Outside { specifier, name }) => {
                if specifier == "encore.dev/types" && name == "Decimal" {
                    // Encore sends a Decimal as its decimal string.
                    return Low::of(Shape::String);
                }
                self.open(
                    scope.file,
                    span,
                    &format!("`{name}` comes from `{specifier}`, which busbar does not read"),
                )
            }
            Err(TypeMiss::Unfollowed(what)) => self.open(scope.file, span, &what),
            Err(TypeMiss::Missing(why)) => {
                let shown = path.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(".");
                let span = self.span(scope.file, span);
                self.diagnostics.push(diag::unresolved_type_name(&shown, span, &why));
                Low::of(Shape::Any)
            }
        }
    }

    /// A reference to the def of a declaration (with these type arguments), lowering it the
    /// first time.
    fn instance(
        &mut self,
        file: usize,
        name: &Atom,
        def: &TypeDef,
        args: Vec<Low>,
        used: Span,
    ) -> Low {
        let params = def.params();
        let key = InstanceKey { file, name: name.clone(), args: args.clone() };
        if let Some(existing) = self.instances.get(&key) {
            let (undefined, attribute) = self.flags.get(existing).copied().unwrap_or_default();
            return Low { shape: Shape::Ref(existing.clone()), undefined, attribute };
        }
        if self.instances.len() >= MAX_DEFS {
            self.diagnostics.push(diag::message_type_open(
                used,
                &format!("the message type has more than {MAX_DEFS} named types"),
            ));
            return Low::of(Shape::Any);
        }
        let mut size = 0;
        for arg in &args {
            arg.shape.visit(&mut |_| size += 1);
        }
        if size > MAX_ARGUMENT_SIZE {
            self.diagnostics.push(diag::message_type_open(
                used,
                &format!("the type arguments of `{name}` grow beyond {MAX_ARGUMENT_SIZE} parts"),
            ));
            return Low::of(Shape::Any);
        }
        let nested = self.nesting.entry((file, name.clone())).or_default();
        if *nested >= MAX_NESTED_INSTANCES {
            self.diagnostics.push(diag::message_type_open(
                used,
                &format!("`{name}` instantiates itself with ever larger type arguments"),
            ));
            return Low::of(Shape::Any);
        }
        *nested += 1;
        let def_name = self.def_name(name, &args);
        self.instances.insert(key, def_name.clone());
        self.in_progress.insert(def_name.clone());
        // A reference back to this def while it is lowered (a recursion) sees the flags the
        // declaration states outright (`type Maybe = Node | undefined`).
        self.flags.insert(def_name.clone(), (states_undefined(def), false));
        // Arguments bind in order; a missing one takes its default (which may use the
        // parameters before it), else any value.
        let mut scope = Scope { file, params: Vec::new() };
        let mut args = args.into_iter();
        for p in params {
            let bound = match (args.next(), &p.default) {
                (Some(arg), _) => arg,
                (None, Some(default)) => self.lower(&scope, default),
                (None, None) => Low::of(Shape::Any),
            };
            scope.params.push((p.name.clone(), bound));
        }
        let low = match def {
            TypeDef::Enum { members } => {
                let shapes = members.iter().map(|(_, v)| match v {
                    Some(l) => Shape::Const(l.clone()),
                    None => Shape::union([Shape::Number, Shape::String]),
                });
                Low::of(Shape::union(shapes))
            }
            TypeDef::Alias { ty, .. } => {
                self.alias_spans.insert(def_name.clone(), used);
                self.lower(&scope, ty)
            }
            TypeDef::Interface { body, extends, .. } => {
                let parents: Vec<Shape> =
                    extends.iter().map(|e| self.lower(&scope, e).shape).collect();
                let own = self.object(&scope, body);
                Low::of(self.extend(parents, own))
            }
        };
        self.in_progress.remove(&def_name);
        if let Some(n) = self.nesting.get_mut(&(file, name.clone())) {
            *n = n.saturating_sub(1);
        }
        self.flags.insert(def_name.clone(), (low.undefined, low.attribute));
        self.schema.defs.insert(def_name.clone(), low.shape);
        Low { shape: Shape::Ref(def_name), undefined: low.undefined, attribute: low.attribute }
    }

    /// An interface: its parents merged, then its own members over theirs.
    fn extend(&mut self, parents: Vec<Shape>, own: Object) -> Shape {
        if parents.is_empty() {
            return Shape::Object(own);
        }
        let merged = self.intersect(parents);
        match self.peek(&merged).cloned() {
            Some(Shape::Object(mut base)) => {
                base.properties.extend(own.properties);
                if own.additional.is_some() {
                    base.additional = own.additional;
                }
                Shape::Object(base)
            }
            _ => all_of(vec![merged, Shape::Object(own)]),
        }
    }

    /// A readable, unique def name: the declaration's name, with the names of its type
    /// arguments (`Envelope_OrderPlaced`), numbered when two declarations share a name.
    fn def_name(&self, name: &Atom, args: &[Low]) -> String {
        let mut base: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
            .collect();
        for arg in args {
            base.push('_');
            base.push_str(&arg_name(&arg.shape));
        }
        let taken = |n: &str| self.instances.values().any(|v| v == n);
        if !taken(&base) {
            return base;
        }
        (2..).map(|i| format!("{base}_{i}")).find(|n| !taken(n)).unwrap_or(base)
    }

    /// `A & B & ...`: objects merged into one, distributing over unions
    /// (`(A | B) & C` is `(A & C) | (B & C)`); what cannot merge stays `allOf`.
    pub fn intersect(&mut self, shapes: Vec<Shape>) -> Shape {
        let mut combos: Vec<Vec<Shape>> = vec![Vec::new()];
        for shape in &shapes {
            let members: Vec<Shape> = match self.peek(shape) {
                Some(Shape::Union(members)) => members.clone(),
                _ => vec![shape.clone()],
            };
            if combos.len() * members.len() > MAX_DISTRIBUTED {
                return all_of(shapes);
            }
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    members.iter().map(move |m| {
                        let mut c = c.clone();
                        c.push(m.clone());
                        c
                    })
                })
                .collect();
        }
        let merged: Vec<Shape> = combos
            .into_iter()
            .map(|c| c.into_iter().reduce(|a, b| self.merge(a, b)).unwrap_or(Shape::Any))
            .collect();
        Shape::union(merged)
    }

    /// `a & b` for two shapes that are not unions. Two references are merged once (the result
    /// is kept), a pair met again while it is being merged (recursive types) stays `allOf`, and
    /// so does anything nested deeper than [`MAX_MERGE_DEPTH`].
    fn merge(&mut self, a: Shape, b: Shape) -> Shape {
        let key = match (&a, &b) {
            (Shape::Ref(x), Shape::Ref(y)) => Some((x.clone(), y.clone())),
            _ => None,
        };
        if let Some(k) = &key {
            if let Some(done) = self.merged.get(k) {
                return done.clone();
            }
            if self.merging.contains(k) {
                return all_of(vec![a, b]);
            }
        }
        if self.merge_depth >= MAX_MERGE_DEPTH {
            return all_of(vec![a, b]);
        }
        if let Some(k) = &key {
            self.merging.insert(k.clone());
        }
        self.merge_depth += 1;
        let result = self.merge_shapes(a, b);
        self.merge_depth -= 1;
        if let Some(k) = key {
            self.merging.remove(&k);
            self.merged.insert(k, result.clone());
        }
        result
    }

    fn merge_shapes(&mut self, a: Shape, b: Shape) -> Shape {
        let (pa, pb) = match (self.peek(&a), self.peek(&b)) {
            (Some(pa), Some(pb)) => (pa.clone(), pb.clone()),
            _ => return all_of(vec![a, b]),
        };
        match (pa, pb) {
            (Shape::Never, _) | (_, Shape::Never) => Shape::Never,
            (Shape::Object(x), Shape::Object(y)) => Shape::Object(self.merge_objects(x, y)),
            (x, y) if x == y => a,
            // A branded primitive (`string & { __brand: "Id" }`) is sent as the primitive.
            (x, Shape::Object(_)) if is_primitive(&x) => a,
            (Shape::Object(_), y) if is_primitive(&y) => b,
            (Shape::Const(l), base) | (base, Shape::Const(l)) if literal_of(&l, &base) => {
                Shape::Const(l)
            }
            _ => all_of(vec![a, b]),
        }
    }

    fn merge_objects(&mut self, mut x: Object, y: Object) -> Object {
        for (name, q) in y.properties {
            let merged = match x.properties.remove(&name) {
                None => q,
                Some(p) => {
                    let shape =
                        if p.shape == q.shape { p.shape } else { self.merge(p.shape, q.shape) };
                    Property {
                        shape,
                        required: p.required || q.required,
                        attribute: p.attribute.or(q.attribute),
                        doc: p.doc.or(q.doc),
                        span: if p.span.0.is_some() { p.span } else { q.span },
                    }
                }
            };
            x.properties.insert(name, merged);
        }
        x.additional = match (x.additional, y.additional) {
            (Some(a), Some(b)) => Some(Box::new(self.merge(*a, *b))),
            (a, b) => a.or(b),
        };
        x
    }

    /// Alias defs that reach themselves through references, unions and intersections only
    /// (not through an object or array) have no values: an error, and an open shape.
    fn check_cycles(&mut self) {
        let names: Vec<String> = self.alias_spans.keys().cloned().collect();
        let mut circular: Vec<String> = names.into_iter().filter(|n| self.reaches(n)).collect();
        circular.sort();
        for name in circular {
            if let Some(span) = self.alias_spans.get(&name).cloned() {
                let shown = name.split('_').next().unwrap_or(&name).to_string();
                self.diagnostics.push(diag::circular_type_alias(&shown, span));
            }
            self.schema.defs.insert(name, Shape::Any);
        }
    }

    fn reaches(&self, start: &str) -> bool {
        let mut stack: Vec<&Shape> = self.schema.defs.get(start).into_iter().collect();
        let mut seen: HashSet<&str> = HashSet::default();
        while let Some(shape) = stack.pop() {
            match shape {
                Shape::Ref(n) if n == start => return true,
                Shape::Ref(n) if seen.insert(n) => stack.extend(self.schema.defs.get(n)),
                Shape::Union(m) | Shape::AllOf(m) => stack.extend(m),
                _ => {}
            }
        }
        false
    }

    /// Drops the defs the root no longer reaches (parents merged into their children, the
    /// first lowering of a type used only inside an intersection).
    fn prune(&mut self) {
        let mut reached: HashSet<String> = HashSet::default();
        let mut stack: Vec<Shape> = self.schema.root.iter().cloned().collect();
        while let Some(shape) = stack.pop() {
            shape.visit(&mut |s| {
                if let Shape::Ref(n) = s
                    && reached.insert(n.clone())
                    && let Some(def) = self.schema.defs.get(n)
                {
                    stack.push(def.clone());
                }
            });
        }
        self.schema.defs.retain(|name, _| reached.contains(name));
    }
}

/// Whether an alias's own text includes `undefined` (or `unknown`) among its members.
fn states_undefined(def: &TypeDef) -> bool {
    let TypeDef::Alias { ty, .. } = def else { return false };
    let direct =
        |t: &TypeExpr| matches!(t, TypeExpr::Keyword(Keyword::Undefined | Keyword::Unknown));
    match ty {
        TypeExpr::Union(members) => members.iter().any(direct),
        other => direct(other),
    }
}

/// `allOf`, flattened, deduplicated and sorted; one member is itself.
fn all_of(shapes: Vec<Shape>) -> Shape {
    let mut all = std::collections::BTreeSet::new();
    for s in shapes {
        match s {
            Shape::AllOf(inner) => all.extend(inner),
            other => {
                all.insert(other);
            }
        }
    }
    let mut all: Vec<Shape> = all.into_iter().collect();
    if all.len() == 1 { all.pop().unwrap_or(Shape::Any) } else { Shape::AllOf(all) }
}

fn is_primitive(s: &Shape) -> bool {
    matches!(
        s,
        Shape::String
            | Shape::Number
            | Shape::Integer
            | Shape::Boolean
            | Shape::DateTime
            | Shape::Const(_)
    )
}

/// Whether a literal is a value of `base`.
fn literal_of(l: &Literal, base: &Shape) -> bool {
    matches!(
        (l, base),
        (Literal::String(_), Shape::String)
            | (Literal::Number(_), Shape::Number | Shape::Integer)
            | (Literal::Bool(_), Shape::Boolean)
    )
}

/// A short name of a type argument, for the name of a generic instance.
fn arg_name(shape: &Shape) -> String {
    match shape {
        Shape::Ref(n) => n.clone(),
        Shape::String => "string".into(),
        Shape::Number => "number".into(),
        Shape::Integer => "bigint".into(),
        Shape::Boolean => "boolean".into(),
        Shape::DateTime => "Date".into(),
        Shape::Null => "null".into(),
        Shape::Any => "unknown".into(),
        Shape::Array(items) => format!("{}Array", arg_name(items)),
        Shape::Const(Literal::String(s))
            if !s.is_empty() && s.len() <= 24 && s.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            s.clone()
        }
        _ => "T".into(),
    }
}
