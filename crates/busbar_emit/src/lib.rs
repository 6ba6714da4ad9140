//! Renderers of plans. Terraform modules come from handlebars templates under
//! `templates/terraform/{aws,gcp}/`, embedded at compile time and rendered in strict mode (a
//! field a template names but the data lacks is an error, never an empty string).
//!
//! The templates decide nothing: every name, value and grant comes from the plan. They are
//! written in `terraform fmt`'s canonical layout; the helpers here keep it where the data
//! decides the width (aligned object keys).

use busbar_plan::{Plan, Target};
use handlebars::{Handlebars, handlebars_helper};
use serde_json::Value;

/// One generated file: its path relative to the output directory, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub text: String,
}

/// A template failed to render: a bug in busbar (the plan lacks what a template names).
#[derive(Debug)]
pub struct RenderError(pub String);

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RenderError {}

macro_rules! templates {
    ($($target:literal / $file:literal),* $(,)?) => {
        &[$(($target, $file, include_str!(concat!("../../../templates/", $target, "/", $file, ".hbs")))),*]
    };
}

/// Every template: target, file name, text.
const TEMPLATES: &[(&str, &str, &str)] = templates![
    "terraform/aws" / "versions.tf",
    "terraform/aws" / "variables.tf",
    "terraform/aws" / "main.tf",
    "terraform/aws" / "iam.tf",
    "terraform/aws" / "outputs.tf",
    "terraform/gcp" / "versions.tf",
    "terraform/gcp" / "variables.tf",
    "terraform/gcp" / "main.tf",
    "terraform/gcp" / "iam.tf",
    "terraform/gcp" / "outputs.tf",
    "dapr" / "component.yaml",
    "dapr" / "subscriptions.yaml",
];

/// An HCL string literal: quoted, with `\`, `"`, newlines and template sequences (`${`, `%{`)
/// escaped.
pub fn hcl_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => hcl_string(s),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

handlebars_helper!(hcl: |v: Json| scalar(v));

// A YAML double-quoted scalar (a JSON string is one).
handlebars_helper!(yaml: |v: Json| match v {
    Value::String(s) => Value::String(s.clone()).to_string(),
    other => other.to_string(),
});

// `{ "k" = "v", ... }` on one line.
handlebars_helper!(hcl_map: |m: object| {
    let entries: Vec<String> =
        m.iter().map(|(k, v)| format!("{} = {}", hcl_string(k), scalar(v))).collect();
    format!("{{ {} }}", entries.join(", "))
});

// `["a", "b"]`.
handlebars_helper!(hcl_list: |v: array| {
    let items: Vec<String> = v.iter().map(scalar).collect();
    format!("[{}]", items.join(", "))
});

// `[aws_sqs_queue.x.arn, ...]` from addresses and an attribute.
handlebars_helper!(refs: |v: array, attr: str| {
    let items: Vec<String> =
        v.iter().map(|a| format!("{}.{attr}", a.as_str().unwrap_or_default())).collect();
    format!("[{}]", items.join(", "))
});

// `file:line:column` of an origin.
handlebars_helper!(at: |o: object| {
    format!(
        "{}:{}:{}",
        o.get("file").and_then(Value::as_str).unwrap_or_default(),
        o.get("line").and_then(Value::as_u64).unwrap_or_default(),
        o.get("column").and_then(Value::as_u64).unwrap_or_default()
    )
});

// The text after the first `.` of an address (`aws_sqs_queue.x` → `x`).
handlebars_helper!(local_name: |s: str| s.split_once('.').map_or(s, |(_, l)| l).to_string());

/// A multi-line object, keys aligned as `terraform fmt` aligns them, indented by `indent`
/// spaces (the closing brace by `indent - 2`). `entries` are `[key, raw HCL expression]`.
fn aligned_object(entries: &[(String, String)], indent: usize) -> String {
    if entries.is_empty() {
        return "{}".to_string();
    }
    let keys: Vec<String> = entries.iter().map(|(k, _)| hcl_string(k)).collect();
    let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
    let mut out = String::from("{\n");
    for (key, (_, value)) in keys.iter().zip(entries) {
        let pad = width - key.chars().count();
        out.push_str(&format!("{:indent$}{key}{:pad$} = {value}\n", "", ""));
    }
    out.push_str(&format!("{:1$}}}", "", indent.saturating_sub(2)));
    out
}

// `{{object items "key" "expr" 4}}`: an aligned multi-line object from an array of objects,
// keyed by each item's `key` field, valued by `expr` with each `$field` replaced by that field
// of the item, as it is (`aws_sns_topic.$address.arn`); with `unless="field"`, the items whose
// `field` is set (not null) are left out.
handlebars_helper!(object: |items: array, key: str, expr: str, indent: u64, {unless: str = ""}| {
    let entries: Vec<(String, String)> = items
        .iter()
        .filter(|item| unless.is_empty() || item.get(unless).is_none_or(Value::is_null))
        .map(|item| {
            let k = item.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
            let mut fields: Vec<(&String, &Value)> =
                item.as_object().map(|o| o.iter().collect()).unwrap_or_default();
            // Longer names first, so `$topic_x` is not read as `$topic` and `_x`.
            fields.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
            let mut value = expr.to_string();
            for (name, v) in fields {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                value = value.replace(&format!("${name}"), &text);
            }
            (k, value)
        })
        .collect();
    aligned_object(&entries, indent as usize)
});

fn registry() -> Result<Handlebars<'static>, RenderError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_helper("hcl", Box::new(hcl));
    hb.register_helper("yaml", Box::new(yaml));
    hb.register_helper("hcl_map", Box::new(hcl_map));
    hb.register_helper("hcl_list", Box::new(hcl_list));
    hb.register_helper("refs", Box::new(refs));
    hb.register_helper("at", Box::new(at));
    hb.register_helper("local_name", Box::new(local_name));
    hb.register_helper("object", Box::new(object));
    for (target, file, text) in TEMPLATES {
        hb.register_template_string(&format!("{target}/{file}"), *text)
            .map_err(|e| RenderError(format!("template {target}/{file}: {e}")))?;
    }
    Ok(hb)
}

/// The files of a plan: the Terraform module of an AWS or GCP plan (`terraform/<target>/*.tf`),
/// the Kubernetes manifests of a Dapr plan (`dapr/*.yaml`).
pub fn render(plan: &Plan) -> Result<Vec<File>, RenderError> {
    let hb = registry()?;
    let data = serde_json::to_value(plan).map_err(|e| RenderError(e.to_string()))?;
    let dir = match plan.target {
        Target::Aws => "terraform/aws",
        Target::Gcp => "terraform/gcp",
        Target::Dapr => "dapr",
    };
    let mut files = Vec::new();
    for (target, file, _) in TEMPLATES.iter().filter(|(t, _, _)| *t == dir) {
        let text = hb
            .render(&format!("{target}/{file}"), &data)
            .map_err(|e| RenderError(format!("rendering {target}/{file}: {e}")))?;
        files.push(File { path: format!("{target}/{file}"), text: tidy(&text) });
    }
    Ok(files)
}

/// Removes the blank lines template control lines leave: no trailing spaces, at most one blank
/// line in a row, none after an opening brace or before a closing one, one final newline.
fn tidy(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        let blank = line.is_empty();
        let prev_blank = out.last().is_none_or(|l| l.is_empty());
        let after_open = out.last().is_some_and(|l| l.ends_with('{'));
        if blank && (prev_blank || after_open) {
            continue;
        }
        if line.trim_start().starts_with('}') && out.last().is_some_and(|l| l.is_empty()) {
            out.pop();
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_objects_are_hcl() {
        assert_eq!(hcl_string(r#"a"b\c ${x} %{y} $z"#), r#""a\"b\\c $${x} %%{y} $z""#);
        let entries = vec![
            ("a".to_string(), "1".to_string()),
            ("long-key".to_string(), "aws_sns_topic.x.arn".to_string()),
        ];
        assert_eq!(
            aligned_object(&entries, 4),
            "{\n    \"a\"        = 1\n    \"long-key\" = aws_sns_topic.x.arn\n  }"
        );
        assert_eq!(tidy("a {\n\n  b = 1\n\n\n}\n\n"), "a {\n  b = 1\n}\n");
    }
}
