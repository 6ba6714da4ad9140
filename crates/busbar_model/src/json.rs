//! The public JSON contract, version 1 (`docs/json-contract.md`).

use busbar_diagnostics::{Diagnostic, Suppressed, SuppressedBy};
use serde::Serialize;

use crate::{Service, Topic};

/// The contract version; bump only when renaming or removing a field.
pub const MODEL_VERSION: u32 = 1;

/// What goes into the JSON besides the model.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonOptions<'a> {
    /// Silenced diagnostics, listed under `suppressed` (with `--show-suppressed`).
    pub suppressed: Option<&'a [Suppressed]>,
}

#[derive(Serialize)]
struct Document<'a> {
    version: u32,
    root: &'a str,
    services: &'a [Service],
    topics: &'a [Topic],
    diagnostics: &'a [Diagnostic],
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressed: Option<Vec<SuppressedJson<'a>>>,
}

#[derive(Serialize)]
struct SuppressedJson<'a> {
    #[serde(flatten)]
    diagnostic: &'a Diagnostic,
    #[serde(rename = "suppressedBy")]
    by: SuppressedByJson<'a>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum SuppressedByJson<'a> {
    Comment { span: &'a busbar_diagnostics::Span, reason: &'a str },
    Config { span: &'a busbar_diagnostics::Span },
}

/// Writes a model with its diagnostics as pretty-printed JSON, with a final newline.
pub fn write_json(
    model: &crate::AppModel,
    root: &str,
    diagnostics: &[Diagnostic],
    options: JsonOptions<'_>,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let suppressed = options.suppressed.map(|list| {
        list.iter()
            .map(|s| SuppressedJson {
                diagnostic: &s.diagnostic,
                by: match &s.by {
                    SuppressedBy::Comment { span, reason } => {
                        SuppressedByJson::Comment { span, reason }
                    }
                    SuppressedBy::Config { span } => SuppressedByJson::Config { span },
                },
            })
            .collect()
    });
    let doc = Document {
        version: MODEL_VERSION,
        root,
        services: &model.services,
        topics: &model.topics,
        diagnostics,
        suppressed,
    };
    let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, out);
    serde_json::to_writer_pretty(&mut buffered, &doc).map_err(std::io::Error::other)?;
    std::io::Write::write_all(&mut buffered, b"\n")?;
    std::io::Write::flush(&mut buffered)
}

/// The JSON of [`write_json`] as a string.
pub fn to_json(
    model: &crate::AppModel,
    root: &str,
    diagnostics: &[Diagnostic],
    options: JsonOptions<'_>,
) -> String {
    let mut out = Vec::new();
    // Writing plain data with string keys into memory cannot fail.
    let _ = write_json(model, root, diagnostics, options, &mut out);
    String::from_utf8(out).unwrap_or_default()
}
