//! Diagnostics for busbar: spans, the stable code registry, suppression and severity settings,
//! and the renderers (human with source snippets, JSON).
//!
//! Every stage reports problems as [`Diagnostic`] values; nothing prints directly. A diagnostic
//! names a [`Code`] from [`codes`], says what is wrong, points at the code with a [`Span`], and
//! says what to do in its help line.

pub mod codes;
mod render;
mod span;
mod suppress;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

pub use codes::Code;
pub use render::{HumanOptions, render_human, render_human_one};
pub use span::{FilePath, SourceFile, Span};
pub use suppress::{
    Level, Settings, SeverityOverride, Suppressed, SuppressedBy, Suppression, Triaged,
    apply_settings, scan_suppressions,
};

/// How serious a diagnostic is. Errors make commands exit 1 and stop files from being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// A secondary location with a message ("previously defined here").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One finding, with where it is and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: &'static Code,
    pub severity: Severity,
    pub message: String,
    /// The primary location, or `None` for a finding about the environment (a missing directory).
    pub span: Option<Span>,
    /// Text shown under the primary span in the human form.
    pub span_label: Option<String>,
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity and no location yet.
    pub fn new(code: &'static Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity,
            message: message.into(),
            span: None,
            span_label: None,
            labels: Vec::new(),
            help: None,
        }
    }

    pub fn at(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    /// The primary span with a short label under it.
    pub fn at_labelled(mut self, span: Span, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.span_label = Some(label.into());
        self
    }

    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { span, message: message.into() });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The order of the JSON contract: environment findings first, then by file, line, column,
    /// code, and message as a tie-breaker.
    pub fn sort_key_cmp(&self, other: &Self) -> Ordering {
        let key = |d: &Diagnostic| {
            d.span.as_ref().map(|s| (s.file.clone(), s.line, s.column, s.end_line, s.end_column))
        };
        key(self)
            .cmp(&key(other))
            .then_with(|| self.code.id.cmp(other.code.id))
            .then_with(|| self.message.cmp(&other.message))
    }
}

/// Sorts diagnostics in the contract's order and removes exact duplicates (the same finding
/// reached twice, e.g. through two import paths).
pub fn sort_diagnostics(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(Diagnostic::sort_key_cmp);
    diagnostics.dedup();
}

/// The JSON form of a diagnostic, as in the public contract.
#[derive(Serialize)]
pub struct DiagnosticJson<'a> {
    pub code: &'static str,
    pub severity: Severity,
    pub message: &'a str,
    pub help: Option<&'a str>,
    pub span: Option<&'a Span>,
    pub labels: &'a [Label],
}

impl<'a> From<&'a Diagnostic> for DiagnosticJson<'a> {
    fn from(d: &'a Diagnostic) -> Self {
        DiagnosticJson {
            code: d.code.id,
            severity: d.severity,
            message: &d.message,
            help: d.help.as_deref(),
            span: d.span.as_ref(),
            labels: &d.labels,
        }
    }
}

impl Serialize for Diagnostic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        DiagnosticJson::from(self).serialize(serializer)
    }
}

/// The texts of the files diagnostics point into, for rendering snippets.
#[derive(Clone, Debug, Default)]
pub struct SourceDb {
    files: BTreeMap<FilePath, SourceFile>,
}

impl SourceDb {
    pub fn new() -> Self {
        SourceDb::default()
    }

    pub fn insert(&mut self, file: SourceFile) {
        self.files.insert(file.path().clone(), file);
    }

    pub fn get(&self, path: &str) -> Option<&SourceFile> {
        self.files.get(path)
    }

    pub fn files(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.values()
    }

    pub fn extend(&mut self, other: SourceDb) {
        self.files.extend(other.files);
    }
}

/// Counts per severity, for the line that ends a human report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
}

impl Counts {
    pub fn of<'a>(diagnostics: impl IntoIterator<Item = &'a Diagnostic>) -> Counts {
        let mut counts = Counts::default();
        for d in diagnostics {
            match d.severity {
                Severity::Error => counts.errors += 1,
                Severity::Warning => counts.warnings += 1,
                Severity::Note => counts.notes += 1,
            }
        }
        counts
    }
}
