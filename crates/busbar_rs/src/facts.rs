//! What one Rust file says, as far as busbar cares: its modules (the file's own and inline
//! ones) with their items and `use` bindings, busbar declarations, message types, and every
//! reference to a path from code. Produced per file in parallel; no syn type survives into it.

use rustc_hash::FxHashMap as HashMap;

use busbar_analysis::FilterEntry;
use busbar_diagnostics::{Diagnostic, SourceFile, Span, Suppression};
use busbar_model::{DeliveryGuarantee, SubscriptionSettings};

/// A byte range in the file the facts belong to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RawSpan {
    pub lo: u32,
    pub hi: u32,
}

#[derive(Debug)]
pub(crate) struct RsFile {
    pub source: SourceFile,
    pub bytes: usize,
    pub diagnostics: Vec<Diagnostic>,
    pub suppressions: Vec<Suppression>,
    /// The file's own module first, then inline modules (`mod x { ... }`) in source order.
    pub modules: Vec<ModFacts>,
    pub topics: Vec<TopicDecl>,
    pub subscriptions: Vec<SubscriptionDecl>,
    /// References to paths from code, each owned by a module-level item.
    pub refs: Vec<PathRef>,
    /// The paths references name, each once per file (`PathRef::path`): segments joined by
    /// `::`. Code names the same few paths again and again, so a reference is a number, not a
    /// vector of strings.
    pub paths: Vec<Box<str>>,
    /// The names of the module-level items that own references (`PathRef::owner`).
    pub owners: Vec<String>,
    /// The file could not be parsed (already reported): its modules are empty.
    pub broken: bool,
    /// The pre-filter skipped it: only its module's node stands in the tree (`prefilter`).
    pub skipped: bool,
}

/// A module of a file.
#[derive(Debug, Default)]
pub(crate) struct ModFacts {
    /// The enclosing inline module of this file (`None` for the file's own module).
    pub parent: Option<usize>,
    /// The inline module's name (empty for the file's own module).
    pub name: String,
    /// `mod x;` (a module in another file).
    pub file_mods: Vec<ModDecl>,
    /// Inline child modules by name: index into the file's modules.
    pub inline_mods: HashMap<String, usize>,
    /// Value items (statics, consts, functions) by name.
    pub values: HashMap<String, ValueItem>,
    /// Type items (structs, enums, type aliases, traits) by name.
    pub types: HashMap<String, TypeItem>,
    /// `use` bindings by the name they bind.
    pub uses: HashMap<String, UseBinding>,
    /// `use path::*`.
    pub globs: Vec<UseBinding>,
}

#[derive(Debug, Clone)]
pub(crate) struct ModDecl {
    pub name: String,
    /// `#[path = "..."]` and `#[cfg_attr(..., path = "...")]` values, in order.
    pub paths: Vec<String>,
    pub span: RawSpan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueItem {
    /// `static X: Topic<M> = Topic::new(...)`: index into the file's topics.
    Topic(usize),
    Fn,
    Other,
}

#[derive(Debug, Clone)]
pub(crate) enum TypeItem {
    Struct(TypeDef),
    Enum(TypeDef),
    Alias(RsType),
    /// A trait, union or something else busbar does not read as a message type.
    Other,
}

/// A struct or enum with its serde attributes.
#[derive(Debug, Clone)]
pub(crate) struct TypeDef {
    pub serde: SerdeContainer,
    pub body: TypeBody,
}

#[derive(Debug, Clone)]
pub(crate) enum TypeBody {
    /// Named fields.
    Fields(Vec<Field>),
    /// A tuple struct; one field is a newtype (serialized as its field).
    Tuple(Vec<RsType>),
    Unit,
    Variants(Vec<Variant>),
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: String,
    pub ty: RsType,
    pub serde: SerdeField,
    /// `#[busbar(attribute)]`.
    pub attribute: bool,
    pub span: RawSpan,
    /// Where the field's attributes with its doc comment are: the text is read only when a
    /// schema uses the field (most structs of a workspace are no message type).
    pub doc: Option<RawSpan>,
}

#[derive(Debug, Clone)]
pub(crate) struct Variant {
    pub name: String,
    pub serde: SerdeField,
    pub body: TypeBody,
}

/// `#[serde(...)]` on a struct or enum.
#[derive(Debug, Clone, Default)]
pub(crate) struct SerdeContainer {
    pub rename_all: Option<String>,
    pub tag: Option<String>,
    pub content: Option<String>,
    pub untagged: bool,
    pub default: bool,
    pub transparent: bool,
}

/// `#[serde(...)]` on a field or variant.
#[derive(Debug, Clone, Default)]
pub(crate) struct SerdeField {
    pub rename: Option<String>,
    pub skip: bool,
    pub default: bool,
    pub flatten: bool,
    pub skip_serializing_if: bool,
}

/// A type as written.
#[derive(Debug, Clone)]
pub(crate) enum RsType {
    Path {
        segments: Vec<String>,
        args: Vec<RsType>,
        span: RawSpan,
    },
    Tuple(Vec<RsType>),
    /// `[T; N]`, `[T]`.
    Slice(Box<RsType>),
    /// Anything else (a function pointer, `impl Trait`, a macro).
    Unsupported {
        what: &'static str,
        span: RawSpan,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct UseBinding {
    /// The path as written, without a leading `::` (kept in `absolute`).
    pub path: Vec<String>,
    pub absolute: bool,
    /// The whole `use` item.
    pub span: RawSpan,
}

#[derive(Debug, Clone)]
pub(crate) struct TopicDecl {
    /// The module (index into the file's modules).
    pub module: usize,
    /// `declared_elsewhere`: a handle, not a declaration.
    pub handle: bool,
    pub name: Option<(String, Span)>,
    pub message_type: Option<RsType>,
    pub message_type_text: String,
    pub delivery: DeliveryGuarantee,
    pub ordering_attribute: Option<(String, Span)>,
    /// The `Topic` type or constructor path, to check it is busbar's.
    pub topic_path: Vec<String>,
    pub span: Span,
    pub doc: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct SubscriptionDecl {
    pub module: usize,
    /// The attribute's path (`busbar::subscribe`, `subscribe`).
    pub attr_path: Vec<String>,
    pub name: Option<(String, Span)>,
    pub topic: Option<(Vec<String>, RawSpan)>,
    pub topic_span: Span,
    pub handler: String,
    /// Its settings, the filter as written (checked against the topic's attributes when the
    /// model is built).
    pub settings: SubscriptionSettings<Vec<FilterEntry>>,
    pub explicit: Vec<(String, Span)>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    /// `X.publish(...)`
    Publish,
    /// `X.publisher()`
    Publisher,
    /// `X.name()`: reading the name is fine.
    Name,
    /// Any other use of the path (a call, a value, a type).
    Other,
}

/// A reference to a path from code.
#[derive(Debug, Clone)]
pub(crate) struct PathRef {
    pub module: usize,
    /// Index into the file's `paths`.
    pub path: u32,
    pub absolute: bool,
    pub kind: RefKind,
    pub span: RawSpan,
    /// The module-level item whose code makes the reference: an index into the file's
    /// `owners` (one string per item, not per reference).
    pub owner: u32,
}

impl RsFile {
    pub fn span_of(&self, raw: RawSpan) -> Span {
        self.source.span(raw.lo, raw.hi)
    }

    /// The index of owner `name` in `owners`: the last one when it is the same (an item's
    /// bodies are visited together), else a new entry. A name may appear twice (two `impl`s of
    /// one type); the code graph keys its nodes by name, so both are the same node. No search:
    /// a generated file has thousands of items.
    pub fn owner(&mut self, name: &str) -> u32 {
        if self.owners.last().is_none_or(|last| last != name) {
            self.owners.push(name.to_string());
        }
        u32::try_from(self.owners.len() - 1).unwrap_or(u32::MAX)
    }

    /// The segments of a reference's path.
    pub fn segments_of(&self, re: &PathRef) -> impl Iterator<Item = &str> {
        self.paths.get(re.path as usize).map_or("", |p| &**p).split("::")
    }

    /// The owner of a reference.
    pub fn owner_of(&self, re: &PathRef) -> &str {
        self.owners.get(re.owner as usize).map_or("", String::as_str)
    }

    pub fn new(source: SourceFile) -> Self {
        let bytes = source.text().len();
        RsFile::with_size(source, bytes)
    }

    /// A file of `bytes` bytes whose text is not read now (`source` may be on disk).
    pub fn with_size(source: SourceFile, bytes: usize) -> Self {
        RsFile {
            bytes,
            source,
            diagnostics: Vec::new(),
            suppressions: Vec::new(),
            modules: vec![ModFacts::default()],
            topics: Vec::new(),
            subscriptions: Vec::new(),
            refs: Vec::new(),
            paths: Vec::new(),
            owners: Vec::new(),
            broken: false,
            skipped: false,
        }
    }
}
