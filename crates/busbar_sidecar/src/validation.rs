//! Validation at publish: each topic's message schema (its JSON Schema, compiled once when the
//! sidecar starts) checks every published JSON body, or a CloudEvent's JSON `data`. A body that
//! does not match is refused with 400 and a body naming each failing JSON pointer and rule
//! (`/items/0/quantity: "one" is not of type "number"`); nothing is stored. Text and binary
//! bodies are not JSON and are not checked. `[dev] validate-messages = false` turns it off.

use std::collections::HashMap;

use busbar_model::runtime::RuntimeConfig;
use serde_json::Value;

/// Whether a schema has no constraint (`true`, or an object of annotations only): a topic
/// whose message type is unknown or `unknown`/`any`.
fn accepts_anything(schema: &Value) -> bool {
    const ANNOTATIONS: [&str; 5] = ["$schema", "$id", "title", "description", "$comment"];
    match schema {
        Value::Bool(true) => true,
        Value::Object(fields) => fields.keys().all(|k| ANNOTATIONS.contains(&k.as_str())),
        _ => false,
    }
}

/// At most this many failures are named in a refusal.
const MAX_REPORTED: usize = 10;
/// At most this many failures are collected (beyond, the count says "at least").
const MAX_COLLECTED: usize = 100;
/// A rule longer than this is cut (a failing value is quoted whole otherwise).
const MAX_RULE: usize = 240;

/// The compiled schema of every topic that has one to check.
pub(crate) struct Validators {
    by_topic: HashMap<String, jsonschema::Validator>,
}

/// One failure: where in the message, and which rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub pointer: String,
    pub rule: String,
}

impl Validators {
    /// None, for `validate-messages = false`.
    pub fn off() -> Self {
        Validators { by_topic: HashMap::new() }
    }

    /// Compiles every topic's schema. A topic whose schema is open (any value) is not checked;
    /// one that does not compile (a bug in busbar) is named in the warnings and not checked.
    pub fn compile(config: &RuntimeConfig) -> (Self, Vec<String>) {
        let mut by_topic = HashMap::new();
        let mut warnings = Vec::new();
        for topic in &config.topics {
            if accepts_anything(&topic.schema) {
                continue;
            }
            match jsonschema::draft202012::new(&topic.schema) {
                Ok(v) => {
                    by_topic.insert(topic.name.clone(), v);
                }
                Err(e) => warnings.push(format!(
                    "the message schema of `{}` does not compile ({e}): its messages are not validated",
                    topic.name
                )),
            }
        }
        (Validators { by_topic }, warnings)
    }

    /// Checks a message of `topic` with this content type: the failures, none when it matches
    /// (or the topic is not checked).
    pub fn check_message(&self, topic: &str, content_type: &str, data: &[u8]) -> Vec<Failure> {
        if !self.by_topic.contains_key(topic) {
            return Vec::new();
        }
        if !crate::payload::is_json(content_type) {
            let shown = if content_type.is_empty() { "no content type" } else { content_type };
            return vec![Failure {
                pointer: "/".to_string(),
                rule: format!(
                    "the topic's messages are JSON; a body of {shown} cannot match its schema"
                ),
            }];
        }
        self.check(topic, data)
    }

    /// Checks a JSON message of `topic`: the failures, none when it matches (or the topic is
    /// not checked). At most [`MAX_COLLECTED`] are collected: a huge message of wrong items
    /// costs no more than a few.
    fn check(&self, topic: &str, data: &[u8]) -> Vec<Failure> {
        let Some(validator) = self.by_topic.get(topic) else { return Vec::new() };
        // The body was checked as strict JSON when it was decoded.
        let Ok(value) = serde_json::from_slice::<Value>(data) else { return Vec::new() };
        if validator.is_valid(&value) {
            return Vec::new();
        }
        let mut failures: Vec<Failure> = validator
            .iter_errors(&value)
            .take(MAX_COLLECTED)
            .map(|e| {
                let pointer = e.instance_path().to_string();
                let pointer = if pointer.is_empty() { "/".to_string() } else { pointer };
                let mut rule = e.to_string();
                if rule.len() > MAX_RULE {
                    let cut = (0..=MAX_RULE).rev().find(|&i| rule.is_char_boundary(i)).unwrap_or(0);
                    rule.truncate(cut);
                    rule.push('…');
                }
                Failure { pointer, rule }
            })
            .collect();
        failures.sort_by(|a, b| a.pointer.cmp(&b.pointer));
        failures.dedup();
        failures
    }
}

/// The refusal message of a message with these failures.
pub(crate) fn message(topic: &str, failures: &[Failure]) -> String {
    let mut shown: Vec<String> =
        failures.iter().take(MAX_REPORTED).map(|f| format!("{}: {}", f.pointer, f.rule)).collect();
    if failures.len() > MAX_REPORTED {
        let more = failures.len() - MAX_REPORTED;
        let at_least = if failures.len() >= MAX_COLLECTED { "at least " } else { "" };
        shown.push(format!("and {at_least}{more} more"));
    }
    format!("the message does not match the schema of `{topic}`: {}", shown.join("; "))
}

/// The failures as JSON, for the refusal's body.
pub(crate) fn as_json(failures: &[Failure]) -> Value {
    failures
        .iter()
        .take(MAX_REPORTED)
        .map(|f| serde_json::json!({ "pointer": f.pointer, "rule": f.rule }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schema of annotations only accepts anything (and is not compiled); one constraint
    /// makes it a schema to check.
    #[test]
    fn only_constraints_make_a_schema_to_check() {
        let dialect = "https://json-schema.org/draft/2020-12/schema";
        assert!(accepts_anything(&serde_json::json!(true)));
        assert!(accepts_anything(&serde_json::json!({ "$schema": dialect, "title": "T" })));
        assert!(!accepts_anything(&serde_json::json!({ "$schema": dialect, "type": "object" })));
        assert!(!accepts_anything(&serde_json::json!(false)));
    }

    /// A message with thousands of failing items costs a bounded list: [`MAX_COLLECTED`]
    /// failures, ten named, and "at least" in the count.
    #[test]
    fn failures_are_collected_up_to_a_bound() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("svc")).unwrap();
        std::fs::write(
            tmp.path().join("svc/topics.ts"),
            "import { Topic } from \"encore.dev/pubsub\";\nexport const t = new Topic<number[]>(\"numbers\", { deliveryGuarantee: \"at-least-once\" });\n",
        )
        .unwrap();
        let config = busbar_config::Config::default();
        let options = busbar_analysis::Options { threads: 1, checker: None, parse_all: false };
        let frontends = [busbar_ts::FRONTEND];
        let model = busbar_analysis::analyze(tmp.path(), &config, &options, &frontends).model;
        let graph = busbar_graph::PermissionGraph::build(&model);
        let config = busbar_plan::runtime_config(&model, &graph, &busbar_plan::Settings::default());
        let (validators, warnings) = Validators::compile(&config);
        assert!(warnings.is_empty(), "{warnings:?}");
        let body = format!("[{}]", vec!["\"x\""; 5_000].join(","));
        let failures = validators.check_message("numbers", "application/json", body.as_bytes());
        assert_eq!(failures.len(), MAX_COLLECTED);
        let text = message("numbers", &failures);
        assert!(text.ends_with("and at least 90 more"), "{text}");
        assert_eq!(as_json(&failures).as_array().map(Vec::len), Some(MAX_REPORTED));
        assert!(validators.check_message("numbers", "application/json", b"[1, 2.5]").is_empty());
    }
}
