//! Schema compatibility: each topic's message schema as `busbar.lock` records it against the
//! code's, every difference classified for the subscribers that read the messages (and the
//! backlog already in their queues):
//!
//! - **breaking**: a field removed (or renamed), a type changed or narrowed (`number` to
//!   `integer`), a field made required or a required one added, a field made optional, an enum
//!   or union narrowed, a tuple changed, an attribute removed that a filter or the ordering
//!   uses. An error (BB0614) until `busbar audit --update` accepts it.
//! - **compatible**: an optional field added, an enum or union widened, a type widened
//!   (`integer` to `number`), an attribute removed that nothing filters or orders on. A note
//!   (BB0615).
//!
//! The comparison walks the two JSON Schemas (each `$ref` followed within its own document), so
//! renaming a type or reordering fields changes nothing. Findings point at the field in the
//! code (at the topic's name for a field that is gone), with the old and new shape.

use std::collections::{BTreeMap, BTreeSet};

use busbar_diagnostics::{Diagnostic, Span, codes};
use busbar_model::schema::{ATTRIBUTE_KEYWORD, MessageSchema, Shape};
use busbar_model::{AppModel, Topic};
use serde_json::Value;

use crate::Finding;

/// How deep the walk follows references and nesting.
const MAX_DEPTH: usize = 48;

/// One difference between the locked and the current schema.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Change {
    /// The field path (`lines[].price.amount`), empty for the message itself.
    path: Vec<String>,
    breaking: bool,
    what: String,
    old: String,
    new: String,
}

/// Compares every topic's schema with the locked one (`locked`: topic → schema, with the span
/// of its entry in the lockfile). A topic without a locked schema is new to the lockfile: its
/// grants already say so.
pub fn compare(model: &AppModel, locked: &BTreeMap<String, (Value, Span)>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for topic in &model.topics {
        let Some((old, _)) = locked.get(&topic.name) else { continue };
        let new = topic.schema.to_json_schema();
        let mut walk =
            Walk { old_doc: old, new_doc: &new, changes: Vec::new(), seen: BTreeSet::new() };
        walk.compare(old, &new, &mut Vec::new(), 0);
        let uses = attribute_uses(topic);
        for mut change in walk.changes {
            if change.what.starts_with("attribute") && change.path.len() == 1 {
                let name = &change.path[0];
                if let Some(use_) = uses.get(name) {
                    change.breaking = true;
                    change.what = format!("{} ({use_} uses it)", change.what);
                }
            }
            findings.push(finding(topic, &change));
        }
    }
    findings
}

/// What uses each attribute of a topic: its ordering, a subscription's filter.
fn attribute_uses(topic: &Topic) -> BTreeMap<String, String> {
    let mut uses = BTreeMap::new();
    if let Some(attr) = &topic.ordering_attribute {
        uses.insert(attr.clone(), "the topic's ordering".to_string());
    }
    for sub in &topic.subscriptions {
        for key in sub.settings.filter.iter().flat_map(|f| f.keys()) {
            uses.entry(key.clone()).or_insert_with(|| format!("the filter of `{}`", sub.name));
        }
    }
    uses
}

fn finding(topic: &Topic, change: &Change) -> Finding {
    let field = if change.path.is_empty() {
        "the message".to_string()
    } else {
        format!("`{}`", change.path.join("."))
    };
    let span = field_span(&topic.schema, &change.path).unwrap_or_else(|| topic.name_span.clone());
    let (code, label, help) = if change.breaking {
        (
            &codes::AUDIT_SCHEMA_BREAKING,
            "breaks subscribers",
            "subscribers (and the messages already queued for them) expect the locked shape: make the change compatible (an optional field, a widened type), or accept it with `busbar audit --update` once every subscriber handles both",
        )
    } else {
        (
            &codes::AUDIT_SCHEMA_COMPATIBLE,
            "compatible",
            "run `busbar audit --update` to record the new schema in busbar.lock",
        )
    };
    let d = Diagnostic::new(
        code,
        format!(
            "topic `{}`: {field} {}: was {}, now {}",
            topic.name, change.what, change.old, change.new
        ),
    )
    .at_labelled(span, label)
    .with_help(help);
    Finding { service: topic.service.clone(), diagnostic: d }
}

/// The span of the property at `path` in the current schema (through references, arrays,
/// unions and intersections).
fn field_span(schema: &MessageSchema, path: &[String]) -> Option<Span> {
    let mut shapes: Vec<&Shape> = schema.root.iter().collect();
    let mut span = None;
    for name in path {
        let name = name.trim_end_matches("[]");
        let mut next = Vec::new();
        let mut found = None;
        let mut todo = shapes;
        let mut guard = 0;
        while let Some(shape) = todo.pop() {
            guard += 1;
            if guard > 4096 {
                break;
            }
            match schema.resolve(shape)? {
                Shape::Object(o) => {
                    if let Some(p) = o.properties.get(name) {
                        found = found.or(p.span.0.clone());
                        next.push(&p.shape);
                    }
                }
                Shape::Union(m) | Shape::AllOf(m) => todo.extend(m),
                Shape::Array(items) => todo.push(items),
                _ => {}
            }
        }
        span = Some(found?);
        shapes = next;
    }
    span
}

/// A short, one-line form of a schema for a message.
fn shown(v: &Value) -> String {
    if v.is_null() {
        return "absent".to_string();
    }
    let text = if let Some(t) = v.get("type").and_then(Value::as_str) {
        match v.get("format").and_then(Value::as_str) {
            Some(f) => format!("{t} ({f})"),
            None => t.to_string(),
        }
    } else {
        v.to_string()
    };
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

struct Walk<'a> {
    old_doc: &'a Value,
    new_doc: &'a Value,
    changes: Vec<Change>,
    /// (old `$ref`, new `$ref`) pairs already compared: recursion stops there.
    seen: BTreeSet<(String, String)>,
}

/// The schema a `$ref` (`#/$defs/NAME`) names in its document.
fn deref<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..64 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else { return v };
        let Some(name) = r.strip_prefix("#/$defs/") else { return v };
        match doc.get("$defs").and_then(|d| d.get(name)) {
            Some(target) => v = target,
            None => return v,
        }
    }
    v
}

/// The kind a schema describes, for comparing: `object`, `array`, `string`, `enum`...
fn kind(v: &Value) -> String {
    if v.get("enum").is_some() || v.get("const").is_some() {
        return "enum".into();
    }
    for k in ["anyOf", "oneOf"] {
        if v.get(k).is_some() {
            return "union".into();
        }
    }
    if v.get("allOf").is_some() {
        return "allOf".into();
    }
    if v.get("prefixItems").is_some() {
        return "tuple".into();
    }
    match v.get("type").and_then(Value::as_str) {
        Some(t) => match v.get("format").and_then(Value::as_str) {
            Some(f) => format!("{t}:{f}"),
            None => t.to_string(),
        },
        None if v
            .as_object()
            .is_some_and(|o| o.keys().all(|k| k == "description" || k.starts_with("x-"))) =>
        {
            "any".into()
        }
        None => v.to_string(),
    }
}

/// A schema without the keys that document it (`description`, `title`, `$schema`, the
/// attribute mark): what remains is its shape.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "description" | "title" | "$schema")
                        && k.as_str() != ATTRIBUTE_KEYWORD
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The literal values of an enum or const schema.
fn literals(v: &Value) -> Vec<Value> {
    match (v.get("enum"), v.get("const")) {
        (Some(Value::Array(values)), _) => values.clone(),
        (_, Some(c)) => vec![c.clone()],
        _ => Vec::new(),
    }
}

impl Walk<'_> {
    fn change(&mut self, path: &[String], breaking: bool, what: &str, old: &Value, new: &Value) {
        self.changes.push(Change {
            path: path.to_vec(),
            breaking,
            what: what.to_string(),
            old: shown(old),
            new: shown(new),
        });
    }

    fn compare(&mut self, old: &Value, new: &Value, path: &mut Vec<String>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        if let (Some(a), Some(b)) =
            (old.get("$ref").and_then(Value::as_str), new.get("$ref").and_then(Value::as_str))
            && !self.seen.insert((a.to_string(), b.to_string()))
        {
            return;
        }
        let old = deref(self.old_doc, old);
        let new = deref(self.new_doc, new);
        // Documentation and the attribute mark are not the shape (the attribute mark is
        // compared with the property that holds it).
        if strip(old) == strip(new) {
            return;
        }
        let (ko, kn) = (kind(old), kind(new));
        if ko == "any" && kn == "any" {
            return;
        }
        if ko != kn {
            let members = |doc: &Value, v: &Value| -> Vec<Value> {
                v.get("anyOf")
                    .or_else(|| v.get("oneOf"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|m| strip(deref(doc, m)))
                    .collect()
            };
            match (ko.as_str(), kn.as_str()) {
                (_, "any") => self.change(path, false, "is open now (any value)", old, new),
                ("integer", "number") => self.change(path, false, "widened", old, new),
                (_, "union") if members(self.new_doc, new).contains(&strip(old)) => {
                    self.change(path, false, "widened (now one of several types)", old, new);
                }
                _ => self.change(path, true, "changed type", old, new),
            }
            return;
        }
        match ko.as_str() {
            "object" => self.objects(old, new, path, depth),
            "array" => {
                path.push("[]".into());
                let (a, b) = (
                    old.get("items").unwrap_or(&Value::Null),
                    new.get("items").unwrap_or(&Value::Null),
                );
                self.compare(a, b, path, depth + 1);
                path.pop();
            }
            "enum" => {
                let (a, b) = (literals(old), literals(new));
                if a.iter().any(|v| !b.contains(v)) {
                    self.change(path, true, "narrowed (values removed)", old, new);
                } else if b.iter().any(|v| !a.contains(v)) {
                    self.change(path, false, "widened (values added)", old, new);
                }
            }
            "union" => self.unions(old, new, path),
            _ => self.change(path, true, "changed", old, new),
        }
    }

    fn unions(&mut self, old: &Value, new: &Value, path: &[String]) {
        let members = |doc: &Value, v: &Value| -> Vec<Value> {
            let list = v
                .get("anyOf")
                .or_else(|| v.get("oneOf"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            list.iter().map(|m| strip(deref(doc, m))).collect()
        };
        let (a, b) = (members(self.old_doc, old), members(self.new_doc, new));
        if a.iter().any(|m| !b.contains(m)) {
            self.change(path, true, "narrowed or changed (union members removed)", old, new);
        } else if b.iter().any(|m| !a.contains(m)) {
            self.change(path, false, "widened (union members added)", old, new);
        }
    }

    fn objects(&mut self, old: &Value, new: &Value, path: &mut Vec<String>, depth: usize) {
        let props =
            |v: &Value| v.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        let required = |v: &Value| -> BTreeSet<String> {
            v.get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        };
        let (po, pn) = (props(old), props(new));
        let (ro, rn) = (required(old), required(new));
        for (name, a) in &po {
            path.push(name.clone());
            match pn.get(name) {
                None => self.change(path, true, "was removed (or renamed)", a, &Value::Null),
                Some(b) => {
                    let attr = |v: &Value| v.get(ATTRIBUTE_KEYWORD) == Some(&Value::Bool(true));
                    if attr(a) && !attr(b) {
                        self.change(path, false, "attribute is no longer an attribute", a, b);
                    }
                    match (ro.contains(name), rn.contains(name)) {
                        (false, true) => self.change(path, true, "was made required", a, b),
                        (true, false) => self.change(
                            path,
                            true,
                            "was made optional (messages may lack it)",
                            a,
                            b,
                        ),
                        _ => {}
                    }
                    self.compare(a, b, path, depth + 1);
                }
            }
            path.pop();
        }
        if let (Some(a), Some(b)) =
            (old.get("additionalProperties"), new.get("additionalProperties"))
        {
            path.push("[key]".into());
            self.compare(a, b, path, depth + 1);
            path.pop();
        }
        for (name, b) in &pn {
            if po.contains_key(name) {
                continue;
            }
            path.push(name.clone());
            if rn.contains(name) {
                self.change(path, true, "was added as a required field", &Value::Null, b);
            } else {
                self.change(path, false, "was added (optional)", &Value::Null, b);
            }
            path.pop();
        }
    }
}
