//! What a frontend hands to the language-neutral half: its files, the service declarations it
//! found, topics, subscriptions and publisher accesses resolved to topic *names* (so that a
//! topic declared in one language and used from another is one topic), and the code graph
//! that says which code runs which (for attributing publishes in shared code to services).
//!
//! Every index here (`file`, `node`) is into the same [`Facts`]; the analysis renumbers them
//! when it merges the facts of several frontends.

use std::time::Duration;

use busbar_diagnostics::{Diagnostic, SourceFile, Span, Suppression};
use busbar_model::schema::MessageSchema;
use busbar_model::{AccessKind, DeliveryGuarantee, ServiceOrigin, SubscriptionSettings};

/// The language of a file, for messages that show how to write something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Language {
    TypeScript,
    Rust,
}

/// Everything a frontend found in the files it read.
#[derive(Debug, Default)]
pub struct Facts {
    /// Every file read, in the frontend's order (sorted discovery first).
    pub files: Vec<File>,
    /// Services declared in code or manifests (`encore.service.ts`, a Cargo binary package).
    pub services: Vec<ServiceClaim>,
    /// Topic declarations with a literal name, in file order: the first of a name wins.
    pub topics: Vec<TopicFact>,
    /// Handles on topics declared elsewhere (maybe in another language).
    pub topic_refs: Vec<TopicRefFact>,
    /// Subscriptions whose topic resolved to a topic name.
    pub subscriptions: Vec<SubscriptionFact>,
    /// Publishes and publisher refs resolved to a topic name.
    pub accesses: Vec<AccessFact>,
    pub code: CodeGraph,
    /// Findings that belong to no one file's facts (resolution, linking).
    pub diagnostics: Vec<Diagnostic>,
    /// Wall time of the frontend's phases, in order.
    pub phases: Vec<(&'static str, Duration)>,
}

/// One file a frontend read.
#[derive(Debug)]
pub struct File {
    pub source: SourceFile,
    pub language: Language,
    /// The file's size in bytes, as read.
    pub bytes: usize,
    /// Findings in this file alone (syntax, declarations, configuration).
    pub diagnostics: Vec<Diagnostic>,
    pub suppressions: Vec<Suppression>,
    /// The file makes its directory an implicit service when no service holds it (it
    /// subscribes, or serves an API endpoint).
    pub implies_service: bool,
    /// Parsed and read for facts; `false` when the frontend's pre-filter found it cannot hold
    /// one (see [`crate::Options::parse_all`]).
    pub parsed: bool,
}

/// A service declared by a file or a manifest: it owns the directory `dir` and everything
/// below it (the nearest claim wins for a file).
#[derive(Clone, Debug)]
pub struct ServiceClaim {
    /// The directory, relative to the app root (`.` for the root).
    pub dir: String,
    /// `None`: named after its directory.
    pub name: Option<String>,
    pub origin: ServiceOrigin,
    /// The declaration.
    pub span: Span,
}

/// A topic declaration.
#[derive(Clone, Debug)]
pub struct TopicFact {
    pub file: usize,
    pub name: String,
    pub name_span: Span,
    /// The whole declaration.
    pub span: Span,
    /// The message type as written, whitespace collapsed.
    pub message_type: String,
    /// The message type lowered to a schema; `None` when there is none (already reported).
    pub schema: Option<MessageSchema>,
    pub delivery: DeliveryGuarantee,
    pub ordering_attribute: Option<(String, Span)>,
    pub doc: Option<String>,
}

/// A handle on a topic declared elsewhere (`Topic::declared_elsewhere("name")` in Rust): the
/// name must be declared by some file of the app, in any language.
#[derive(Clone, Debug)]
pub struct TopicRefFact {
    pub file: usize,
    pub name: String,
    pub name_span: Span,
}

/// `filter` entry of a subscription: attribute key and accepted values.
#[derive(Clone, Debug)]
pub struct FilterEntry {
    pub key: String,
    pub key_span: Span,
    pub values: Vec<String>,
}

/// A subscription, its topic resolved to a name.
#[derive(Clone, Debug)]
pub struct SubscriptionFact {
    pub file: usize,
    pub topic: String,
    pub name: String,
    pub name_span: Span,
    pub handler: Option<String>,
    /// Its settings, the filter as written (checked against the topic's attributes when the
    /// model is built).
    pub settings: SubscriptionSettings<Vec<FilterEntry>>,
    /// The settings the code wrote, with the `key: value` span of each.
    pub explicit: Vec<(String, Span)>,
    pub span: Span,
}

/// One place in code that needs to publish to a topic.
#[derive(Clone, Debug)]
pub struct AccessFact {
    pub file: usize,
    pub topic: String,
    pub kind: AccessKind,
    pub span: Span,
    /// The code holding it, in [`Facts::code`]: which services run it when the file is in
    /// no service. `None`: no code reaches it (a frontend that does not track references).
    pub node: Option<u32>,
}

/// A byte range in a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteRange {
    pub lo: u32,
    pub hi: u32,
}

/// Which code runs which: a node is a piece of code of one file (a declaration, or the code
/// that runs when a module loads); its runners are the code that may run it.
#[derive(Clone, Debug, Default)]
pub struct CodeGraph {
    pub nodes: Vec<CodeNode>,
}

#[derive(Clone, Debug, Default)]
pub struct CodeNode {
    pub file: usize,
    /// In the order a breadth-first search should visit them: the first chain found to a
    /// service is the one reported.
    pub runners: Vec<Runner>,
}

/// Code that runs a node.
#[derive(Clone, Copy, Debug)]
pub struct Runner {
    pub node: u32,
    /// The import in the runner's file that the reference crosses (`None` within a file).
    pub via: Option<ByteRange>,
}

impl CodeGraph {
    /// Adds a node of `file` without runners; its index.
    pub fn add(&mut self, file: usize) -> u32 {
        let id = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        self.nodes.push(CodeNode { file, runners: Vec::new() });
        id
    }
}
