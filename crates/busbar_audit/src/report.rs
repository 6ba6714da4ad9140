//! The audit's findings in the four formats: human (grouped per service), JSON, SARIF 2.1.0,
//! and GitHub workflow commands.
//!
//! Paths in SARIF and GitHub output are prefixed with the app directory as the user wrote it
//! (`examples/shop/orders/api.ts`), so they are relative to where `busbar audit` ran: the
//! repository root in CI.

use std::collections::BTreeMap;

use busbar_diagnostics::{Diagnostic, HumanOptions, Severity, SourceDb, Span, codes, render_human};
use serde_json::{Value, json};

use crate::Finding;

/// `busbar audit --format json`.
pub fn json(findings: &[Finding], grants: usize) -> String {
    let items: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(&f.diagnostic).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("service".into(), json!(f.service));
            }
            v
        })
        .collect();
    let doc = json!({ "version": 1, "grants": grants, "findings": items });
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

/// The findings grouped per service (the app's own first), each group rendered with source
/// snippets.
pub fn human(findings: &[Finding], sources: &SourceDb, options: HumanOptions) -> String {
    let mut groups: BTreeMap<Option<&str>, Vec<Diagnostic>> = BTreeMap::new();
    for f in findings {
        groups.entry(f.service.as_deref()).or_default().push(f.diagnostic.clone());
    }
    let mut out = String::new();
    for (service, diagnostics) in groups {
        let counts = busbar_diagnostics::Counts::of(&diagnostics);
        let heading = match service {
            Some(s) => format!("service `{s}`"),
            None => "the app".to_string(),
        };
        let mut parts = Vec::new();
        for (n, word) in
            [(counts.errors, "error"), (counts.warnings, "warning"), (counts.notes, "note")]
        {
            if n > 0 {
                parts.push(format!("{n} {word}{}", if n == 1 { "" } else { "s" }));
            }
        }
        out.push_str(&format!("== {heading}: {}\n", parts.join(", ")));
        out.push_str(&render_human(&diagnostics, sources, options));
    }
    out
}

fn uri(root: &str, span: &Span) -> String {
    if root == "." || root.is_empty() || span.file.starts_with('/') {
        span.file.to_string()
    } else {
        format!("{}/{}", root.trim_end_matches('/'), span.file)
    }
}

/// SARIF 2.1.0: one run, a rule per diagnostic code that occurs, a result per finding with
/// its location (columns in Unicode code points, as busbar counts them).
pub fn sarif(findings: &[Finding], root: &str, version: &str) -> String {
    let mut rule_ids: Vec<&'static str> = findings.iter().map(|f| f.diagnostic.code.id).collect();
    rule_ids.sort_unstable();
    rule_ids.dedup();
    let rules: Vec<Value> = rule_ids
        .iter()
        .filter_map(|id| codes::by_id(id))
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "shortDescription": { "text": c.summary },
                "defaultConfiguration": { "level": c.severity.as_str() },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let d = &f.diagnostic;
            let mut text = d.message.clone();
            if let Some(help) = &d.help {
                text.push_str(&format!("\nhelp: {help}"));
            }
            let mut result = json!({
                "ruleId": d.code.id,
                "ruleIndex": rule_ids.iter().position(|id| *id == d.code.id).unwrap_or(0),
                "level": d.severity.as_str(),
                "message": { "text": text },
            });
            let mut locations = Vec::new();
            if let Some(span) = &d.span {
                locations.push(location(root, span, d.span_label.as_deref()));
            }
            if !locations.is_empty() {
                result["locations"] = Value::Array(locations);
            }
            let related: Vec<Value> = d
                .labels
                .iter()
                .enumerate()
                .map(|(k, l)| {
                    let mut v = location(root, &l.span, Some(&l.message));
                    v["id"] = json!(k);
                    v
                })
                .collect();
            if !related.is_empty() {
                result["relatedLocations"] = Value::Array(related);
            }
            if let Some(service) = &f.service {
                result["properties"] = json!({ "service": service });
            }
            result
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "busbar",
                "version": version,
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

fn location(root: &str, span: &Span, message: Option<&str>) -> Value {
    let mut v = json!({
        "physicalLocation": {
            "artifactLocation": { "uri": uri(root, span) },
            "region": {
                "startLine": span.line,
                "startColumn": span.column,
                "endLine": span.end_line,
                "endColumn": span.end_column,
            },
        },
    });
    if let Some(m) = message {
        v["message"] = json!({ "text": m });
    }
    v
}

/// A GitHub workflow command's data: `%`, CR and LF escaped.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub workflow commands (`::error file=...,line=...,col=...::message`), one per finding.
pub fn github(findings: &[Finding], root: &str) -> String {
    let mut out = String::new();
    for f in findings {
        let d = &f.diagnostic;
        let command = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "notice",
        };
        let mut props = Vec::new();
        if let Some(span) = &d.span {
            props.push(format!("file={}", escape_property(&uri(root, span))));
            props.push(format!("line={}", span.line));
            props.push(format!("col={}", span.column));
            props.push(format!("endLine={}", span.end_line));
            props.push(format!("endColumn={}", span.end_column));
        }
        props.push(format!("title={}", escape_property(&format!("{} {}", d.code.id, d.code.name))));
        let mut text = d.message.clone();
        if let Some(help) = &d.help {
            text.push_str(&format!("\nhelp: {help}"));
        }
        out.push_str(&format!("::{command} {}::{}\n", props.join(","), escape_data(&text)));
    }
    out
}
