//! What one file says, as far as busbar cares: imports, exports, declarations and the uses of
//! names that may be topics. Produced per file in parallel; no swc type survives into it.

use rustc_hash::FxHashMap as HashMap;

use busbar_diagnostics::{Diagnostic, SourceFile, Span, Suppression};
use busbar_model::{DeliveryGuarantee, SubscriptionSettings};
use swc_atoms::Atom;

/// A byte range in the file the facts belong to. Turned into a [`Span`] (line, column) only
/// when something is reported about it: most uses never are, and most files never need a line
/// index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RawSpan {
    pub lo: u32,
    pub hi: u32,
}

/// What is known about a file before it is parsed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileContext {
    /// The file is an `encore.service.ts`.
    pub declares_service: bool,
    /// The file lies in a service already known from discovery (an `encore.service.ts`
    /// directory or a busbar.toml mapping), so it is not a shared file.
    pub in_service: bool,
}

/// The facts of one source file.
#[derive(Debug)]
pub(crate) struct FileFacts {
    /// Diagnostics found in this file alone (syntax, declarations, configuration).
    pub diagnostics: Vec<Diagnostic>,
    /// One entry per `import`/`export ... from` declaration, in source order.
    pub module_refs: Vec<ModuleRef>,
    pub imports: Vec<Import>,
    pub exports: Vec<Export>,
    /// `export * from "..."`: indexes into `module_refs`.
    pub star_exports: Vec<usize>,
    /// Module-level value bindings by name.
    pub locals: HashMap<Atom, Local>,
    /// Module-level interfaces, type aliases and enums by name.
    pub types: HashMap<Atom, TypeDef>,
    pub topics: Vec<TopicDecl>,
    pub subscriptions: Vec<SubscriptionDecl>,
    /// `export default new Service("name")` in an `encore.service.ts`.
    pub service: Option<ServiceDecl>,
    /// The first API endpoint (`api(...)` from `encore.dev/api`), which makes the file's
    /// directory an implicit service when it is outside every service.
    pub endpoint: Option<RawSpan>,
    /// Uses of module-level names that may be topics.
    pub uses: Vec<Use>,
    /// The module-level declarations uses belong to: each entry lists the names one
    /// declaration binds (`function f`, `const a = ...`, `export default`).
    pub owners: Vec<Vec<Atom>>,
    /// References from code inside a declaration (`None`: code that runs when the module is
    /// loaded) to other module-level declarations of the same file, deduplicated.
    pub local_refs: Vec<(Option<u32>, Atom)>,
    pub suppressions: Vec<Suppression>,
    /// The text and line index, for spans computed later and for rendering.
    pub source: SourceFile,
    /// The file's size in bytes, as read.
    pub bytes: usize,
    /// The pre-filter skipped it: it holds no facts (`crate::prefilter`).
    pub skipped: bool,
}

/// A module specifier as written in an `import` or `export ... from`.
#[derive(Debug, Clone)]
pub(crate) struct ModuleRef {
    pub specifier: String,
    /// The whole declaration.
    pub span: RawSpan,
    /// `import type` / `export type`: no code runs, so it is not an edge for attributing
    /// publishes in shared files.
    pub type_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImportKind {
    Named(Atom),
    Default,
    Namespace,
}

#[derive(Debug, Clone)]
pub(crate) struct Import {
    pub local: Atom,
    /// Index into `module_refs`.
    pub module: usize,
    pub kind: ImportKind,
    pub type_only: bool,
}

/// What a module-level value name is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Local {
    /// `const x = new Topic(...)`: index into `topics`.
    Topic(usize),
    /// An import: index into `imports`.
    Import(usize),
    /// A function declaration (a possible named handler).
    Function,
    Other,
}

#[derive(Debug, Clone)]
pub(crate) enum ExportTarget {
    /// A module-level name of this file (value or type).
    Local(Atom),
    /// `export default new Topic(...)`: index into `topics`.
    Topic(usize),
    /// `export default <anything else>`.
    Opaque,
    /// `export { x as y } from "m"`, `export * as ns from "m"`: index into `module_refs`.
    From { module: usize, kind: ImportKind },
}

#[derive(Debug, Clone)]
pub(crate) struct Export {
    pub name: Atom,
    pub target: ExportTarget,
}

/// A type as written, as far as busbar reads types: enough to lower a message type into a
/// [`busbar_model::schema::Shape`] once every file is read (`crate::schema`).
#[derive(Debug, Clone)]
pub(crate) enum TypeExpr {
    Keyword(Keyword),
    /// A literal type: `"a"`, `1`, `true`, `1n`.
    Lit(busbar_model::schema::Literal),
    /// A template literal type: some string.
    Template,
    /// `Foo`, `ns.Foo`, `Foo<A, B>`.
    Ref {
        path: Vec<Atom>,
        args: Vec<TypeExpr>,
        span: RawSpan,
    },
    /// `{ a: string; b?: number; [k: string]: V }`
    Object(ObjectType),
    /// `T[]`, `readonly T[]`.
    Array(Box<TypeExpr>),
    Tuple(Vec<TupleElement>),
    Union(Vec<TypeExpr>),
    Intersection(Vec<TypeExpr>),
    /// `Attribute<T>` from the pubsub module.
    Attribute(Box<TypeExpr>),
    /// `T[K]`.
    Index {
        object: Box<TypeExpr>,
        index: Box<TypeExpr>,
        span: RawSpan,
    },
    /// `keyof T`.
    KeyOf {
        of: Box<TypeExpr>,
        span: RawSpan,
    },
    /// A function type: `JSON.stringify` leaves such a property out.
    Function {
        span: RawSpan,
    },
    /// A construct busbar does not evaluate (`keyof`, a conditional or mapped type...).
    Unsupported {
        what: &'static str,
        span: RawSpan,
    },
}

/// The keyword types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    String,
    Number,
    Boolean,
    BigInt,
    Null,
    /// `undefined` and `void`.
    Undefined,
    /// `unknown` and `any`.
    Unknown,
    Never,
    Object,
    Symbol,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ObjectType {
    pub members: Vec<Member>,
    /// `[key: string]: V` (the value type; a second index signature is ignored).
    pub index: Option<Box<TypeExpr>>,
}

/// A property of an object type or interface.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub name: Atom,
    /// `None`: no type annotation (any).
    pub ty: Option<TypeExpr>,
    pub optional: bool,
    /// The property's key.
    pub span: RawSpan,
    pub doc: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct TupleElement {
    pub ty: TypeExpr,
    pub optional: bool,
    pub rest: bool,
}

/// A type parameter of a generic interface or alias.
#[derive(Debug, Clone)]
pub(crate) struct TypeParam {
    pub name: Atom,
    pub default: Option<TypeExpr>,
}

/// A module-level type declaration.
#[derive(Debug, Clone)]
pub(crate) enum TypeDef {
    Interface {
        params: Vec<TypeParam>,
        body: ObjectType,
        extends: Vec<TypeExpr>,
    },
    Alias {
        params: Vec<TypeParam>,
        ty: TypeExpr,
    },
    /// `enum` and `const enum`: each member's value (`None`: computed, not known).
    Enum {
        members: Vec<(Atom, Option<busbar_model::schema::Literal>)>,
    },
}

impl TypeDef {
    pub fn params(&self) -> &[TypeParam] {
        match self {
            TypeDef::Interface { params, .. } | TypeDef::Alias { params, .. } => params,
            TypeDef::Enum { .. } => &[],
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TopicDecl {
    /// `None` when the name is not a literal (already reported).
    pub name: Option<(String, Span)>,
    pub message_type: Option<TypeExpr>,
    /// The message type as written, whitespace collapsed.
    pub message_type_text: String,
    pub delivery: DeliveryGuarantee,
    pub ordering_attribute: Option<(String, Span)>,
    pub span: Span,
    pub doc: Option<String>,
    /// `Topic.declaredElsewhere<T>("name")`: a handle on a topic some file of the app declares
    /// (maybe in another language); it has no configuration of its own.
    pub elsewhere: bool,
}

pub(crate) use busbar_analysis::FilterEntry;

#[derive(Debug, Clone)]
pub(crate) struct SubscriptionDecl {
    pub name: Option<(String, Span)>,
    /// Index into `uses` of the topic argument, or `None` when it is not a name (reported
    /// when the model is built).
    pub topic_use: Option<usize>,
    /// The topic argument expression.
    pub topic_span: Span,
    /// Why the topic argument is not a name that can lead to a topic, when it is not.
    pub topic_problem: Option<String>,
    pub handler: Option<String>,
    /// Its settings, the filter as written (checked against the topic's attributes when the
    /// model is built).
    pub settings: SubscriptionSettings<Vec<FilterEntry>>,
    /// The settings the code wrote, with the `key: value` span of each.
    pub explicit: Vec<(String, busbar_diagnostics::Span)>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub(crate) struct ServiceDecl {
    pub name: Option<(String, Span)>,
    pub span: Span,
}

/// What a `ref<...>()` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefPermission {
    Publisher,
    Other(String),
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UseKind {
    /// `x.publish(...)`
    Publish,
    /// `x.ref<P>()`
    Ref(RefPermission),
    /// The first argument of `new Subscription(x, ...)`: index into `subscriptions`.
    SubscriptionTopic(usize),
    /// Any other use of the value.
    Other,
}

/// A use of a module-level name (an import or a local topic binding), followed by a chain of
/// property names (`ns.topics.signups` is name `ns` with path `["topics", "signups"]`).
#[derive(Debug, Clone)]
pub(crate) struct Use {
    pub name: Atom,
    pub path: Vec<Atom>,
    pub kind: UseKind,
    pub span: RawSpan,
    /// The declaration whose code makes the use (index into `owners`), or `None` for code
    /// that runs when the module is loaded.
    pub owner: Option<u32>,
}

impl FileFacts {
    /// The span of a byte range of this file.
    pub fn span_of(&self, raw: RawSpan) -> Span {
        self.source.span(raw.lo, raw.hi)
    }

    /// The facts of a file whose text is in memory (its size is the text's).
    pub fn new(source: SourceFile) -> Self {
        let bytes = source.text().len();
        Self::sized(source, bytes)
    }

    /// The facts of a file of `bytes` bytes, its text untouched: a file the pre-filter skipped
    /// stays on disk.
    pub fn sized(source: SourceFile, bytes: usize) -> Self {
        FileFacts {
            diagnostics: Vec::new(),
            module_refs: Vec::new(),
            imports: Vec::new(),
            exports: Vec::new(),
            star_exports: Vec::new(),
            locals: HashMap::default(),
            types: HashMap::default(),
            topics: Vec::new(),
            subscriptions: Vec::new(),
            service: None,
            endpoint: None,
            uses: Vec::new(),
            owners: Vec::new(),
            local_refs: Vec::new(),
            suppressions: Vec::new(),
            bytes,
            skipped: false,
            source,
        }
    }
}
