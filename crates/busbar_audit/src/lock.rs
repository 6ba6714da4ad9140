//! `busbar.lock`: the grants of every service, one line per grant, sorted, with nothing that
//! moves when unrelated code changes (no locations, no line numbers).
//!
//! ```toml
//! # busbar.lock: ...
//! version = 1
//!
//! [services.billing]
//! publish = [
//!   "invoice-created",
//! ]
//! consume = [
//!   { topic = "user-created", subscription = "send-welcome" },
//! ]
//!
//! [schemas]
//! invoice-created = '''
//! { ...the topic's JSON Schema, keys sorted, one key per line... }
//! '''
//! ```
//!
//! Each topic's message schema is recorded as its JSON Schema, pretty-printed with sorted keys
//! (normalised: reformatting the code or reordering fields changes nothing), for
//! [`crate::compat`] to compare.

use std::collections::{BTreeMap, BTreeSet};

use busbar_config::RuleAction;
use busbar_diagnostics::{Diagnostic, SourceFile, Span, codes};
use serde::Deserialize;
use toml::Spanned;

use crate::{Finding, Grant};

pub const FILE_NAME: &str = "busbar.lock";
pub const VERSION: u32 = 1;

/// One locked grant: (service, action, topic, subscription).
type Key = (String, RuleAction, String, Option<String>);

fn key(g: &Grant) -> Key {
    (g.service.clone(), g.action, g.topic.clone(), g.subscription.clone())
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be.
fn toml_key(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        s.to_string()
    } else {
        quote(s)
    }
}

/// The lockfile for `grants` and the topics' message schemas.
pub fn render(grants: &[Grant], model: &busbar_model::AppModel) -> String {
    // Service → (topics it publishes to, (topic, subscription) it consumes).
    type Entry<'a> = (BTreeSet<&'a str>, BTreeSet<(&'a str, &'a str)>);
    let mut by_service: BTreeMap<&str, Entry> = BTreeMap::new();
    for g in grants {
        let entry = by_service.entry(&g.service).or_default();
        match &g.subscription {
            None => {
                entry.0.insert(&g.topic);
            }
            Some(sub) => {
                entry.1.insert((&g.topic, sub));
            }
        }
    }
    let mut out = String::from(
        "# busbar.lock: what each service may publish to and consume, as the code needs it.\n\
         # Review every change to this file: a new line is a new permission.\n\
         # Written by `busbar audit --update`; `busbar audit` fails when the code needs more.\n",
    );
    out.push_str(&format!("version = {VERSION}\n"));
    for (service, (publish, consume)) in by_service {
        out.push_str(&format!("\n[services.{}]\n", toml_key(service)));
        if !publish.is_empty() {
            out.push_str("publish = [\n");
            for topic in publish {
                out.push_str(&format!("  {},\n", quote(topic)));
            }
            out.push_str("]\n");
        }
        if !consume.is_empty() {
            out.push_str("consume = [\n");
            for (topic, sub) in consume {
                out.push_str(&format!(
                    "  {{ topic = {}, subscription = {} }},\n",
                    quote(topic),
                    quote(sub)
                ));
            }
            out.push_str("]\n");
        }
    }
    let schemas: Vec<_> = model.topics.iter().filter(|t| t.schema.root.is_some()).collect();
    if !schemas.is_empty() {
        out.push_str("\n[schemas]\n");
        for topic in schemas {
            let json =
                serde_json::to_string_pretty(&topic.schema.to_json_schema()).unwrap_or_default();
            // A literal string keeps the JSON as it is; one holding `'''` is quoted instead.
            if json.contains("'''") {
                out.push_str(&format!("{} = {}\n", toml_key(&topic.name), quote(&json)));
            } else {
                out.push_str(&format!("{} = '''\n{json}\n'''\n", toml_key(&topic.name)));
            }
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: Spanned<u32>,
    #[serde(default)]
    services: BTreeMap<String, RawService>,
    #[serde(default)]
    schemas: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default)]
    publish: Vec<Spanned<String>>,
    #[serde(default)]
    consume: Vec<Spanned<RawConsume>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsume {
    topic: String,
    subscription: String,
}

/// A parsed lockfile: every grant with the span of its line.
#[derive(Debug, Default)]
pub struct Locked {
    grants: BTreeMap<Key, Span>,
    /// Each topic's message schema (JSON Schema), with the span of its entry.
    pub schemas: BTreeMap<String, (serde_json::Value, Span)>,
}

/// Reads a lockfile. `Err` is a BB0602 diagnostic pointing into it.
pub fn parse(file: &SourceFile) -> Result<Locked, Box<Diagnostic>> {
    let text = file.text();
    let raw: RawLock = toml::from_str(text).map_err(|e| {
        let range = e.span().unwrap_or(0..0);
        Box::new(Diagnostic::new(
            &codes::AUDIT_INVALID_LOCKFILE,
            format!("{}: {}", file.path(), e.message().trim()),
        )
        .at(file.span(range.start as u32, range.end as u32))
        .with_help(
            "restore the file from version control, or write it again with `busbar audit --update`",
        ))
    })?;
    let span_of = |r: std::ops::Range<usize>| file.span(r.start as u32, r.end as u32);
    if *raw.version.get_ref() != VERSION {
        return Err(Box::new(
            Diagnostic::new(
                &codes::AUDIT_INVALID_LOCKFILE,
                format!(
                    "{} has version {}; this busbar writes version {VERSION}",
                    file.path(),
                    raw.version.get_ref()
                ),
            )
            .at(span_of(raw.version.span()))
            .with_help("write it again with `busbar audit --update` and review the difference"),
        ));
    }
    let mut locked = Locked::default();
    for (topic, text) in raw.schemas {
        let span = span_of(text.span());
        match serde_json::from_str::<serde_json::Value>(text.get_ref()) {
            Ok(schema) if schema.is_object() => {
                locked.schemas.insert(topic, (schema, span));
            }
            _ => {
                return Err(Box::new(
                    Diagnostic::new(
                        &codes::AUDIT_INVALID_LOCKFILE,
                        format!("{}: the schema of `{topic}` is not a JSON object", file.path()),
                    )
                    .at(span)
                    .with_help("restore the file from version control, or write it again with `busbar audit --update`"),
                ));
            }
        }
    }
    for (service, entry) in raw.services {
        for topic in entry.publish {
            let span = span_of(topic.span());
            locked
                .grants
                .insert((service.clone(), RuleAction::Publish, topic.into_inner(), None), span);
        }
        for consume in entry.consume {
            let span = span_of(consume.span());
            let RawConsume { topic, subscription } = consume.into_inner();
            locked
                .grants
                .insert((service.clone(), RuleAction::Consume, topic, Some(subscription)), span);
        }
    }
    Ok(locked)
}

/// The drift between the code's grants and the lockfile.
pub fn compare(grants: &[Grant], locked: &Locked) -> Vec<Finding> {
    let mut findings = Vec::new();
    let needed: BTreeSet<Key> = grants.iter().map(key).collect();
    for g in grants {
        if locked.grants.contains_key(&key(g)) {
            continue;
        }
        let d = Diagnostic::new(
            &codes::AUDIT_UNLOCKED_GRANT,
            format!("service `{}` now {} ({})", g.service, g.describe(), g.location()),
        )
        .at_labelled(g.location().clone(), "needs the permission")
        .with_help(
            "busbar.lock does not grant this; if the change is intended, run `busbar audit --update` and commit busbar.lock so reviewers see the new permission",
        );
        findings.push(Finding::of(&g.service, d));
    }
    for (k, span) in &locked.grants {
        if needed.contains(k) {
            continue;
        }
        let (service, action, topic, sub) = k;
        let what = match (action, sub) {
            (RuleAction::Consume, Some(sub)) => {
                format!("consume subscription `{sub}` of `{topic}`")
            }
            _ => format!("publish to `{topic}`"),
        };
        let d = Diagnostic::new(
            &codes::AUDIT_STALE_GRANT,
            format!("busbar.lock lets service `{service}` {what}, which its code no longer needs"),
        )
        .at_labelled(span.clone(), "no longer needed")
        .with_help("run `busbar audit --update` to drop it");
        findings.push(Finding::of(service, d));
    }
    findings
}
