//! The Rust frontend through `busbar_analysis`, next to the TypeScript one: the same message
//! type written in both languages gives the same JSON Schema, and a publish in a library crate
//! is granted with the path that reaches it.

use std::path::Path;

use busbar_analysis::{Analysis, Options, analyze};

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn run(root: &Path) -> Analysis {
    let frontends = [busbar_ts::FRONTEND, busbar_rs::FRONTEND];
    analyze(
        root,
        &busbar_config::Config::default(),
        &Options { threads: 2, checker: None, parse_all: false },
        &frontends,
    )
}

const CARGO: &str = "[package]\nname = \"svc\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nbusbar = \"0.1\"\nserde = \"1\"\n";

#[test]
fn one_message_type_in_two_languages_is_one_schema() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("Cargo.toml", CARGO),
            (
                "src/main.rs",
                r#"
use busbar::Topic;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, busbar::Message)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub order_id: String,
    #[busbar(attribute)]
    pub risk_level: String,
    pub score: Option<f64>,
    #[serde(skip)]
    pub cache: Vec<u8>,
    #[serde(rename = "tags")]
    pub labels: Vec<String>,
    pub kind: Kind,
    pub extra: std::collections::BTreeMap<String, bool>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Kind {
    Clean,
    Suspicious { reasons: Vec<String> },
}

pub static RUST: Topic<Verdict> = Topic::new("rust-verdicts");
fn main() {}
"#,
            ),
            (
                "web/topics.ts",
                r#"
import { Topic, Attribute } from "encore.dev/pubsub";
export interface Verdict {
  orderId: string;
  riskLevel: Attribute<string>;
  score?: number | null;
  tags: string[];
  kind: Kind;
  extra: Record<string, boolean>;
}
export type Kind = { type: "clean" } | { type: "suspicious"; reasons: string[] };
export const ts = new Topic<Verdict>("ts-verdicts", { deliveryGuarantee: "at-least-once" });
"#,
            ),
        ],
    );
    let analysis = run(dir.path());
    let errors: Vec<_> = analysis.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let schema = |name: &str| {
        let t = analysis.model.topics.iter().find(|t| t.name == name).expect(name);
        t.schema.to_json_schema()
    };
    let (rust, ts) = (schema("rust-verdicts"), schema("ts-verdicts"));
    assert_eq!(rust, ts, "Rust:\n{rust:#}\nTypeScript:\n{ts:#}");
    let rust_topic = analysis.model.topics.iter().find(|t| t.name == "rust-verdicts").unwrap();
    assert_eq!(rust_topic.attributes, ["riskLevel"]);
    assert_eq!(rust_topic.service.as_deref(), Some("svc"));
}

#[test]
fn a_library_publish_is_granted_to_the_services_that_reach_it() {
    let dir = tempfile::tempdir().unwrap();
    let lib_cargo = "[package]\nname = \"lib-events\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nbusbar = \"0.1\"\n";
    let svc = |name: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nbusbar = \"0.1\"\nevents = {{ path = \"../lib\", package = \"lib-events\" }}\n"
        )
    };
    let (a, b) = (svc("sender"), svc("bystander"));
    write(
        dir.path(),
        &[
            ("lib/Cargo.toml", lib_cargo),
            (
                "lib/src/lib.rs",
                "pub mod send;\npub use send::*;\n#[derive(serde::Serialize, busbar::Message)]\npub struct E { pub x: String }\npub static T: busbar::Topic<E> = busbar::Topic::new(\"events\");\n",
            ),
            (
                "lib/src/send.rs",
                "pub async fn send() { let _ = crate::T.publish(&crate::E { x: String::new() }).await; }\npub fn other() {}\n",
            ),
            ("sender/Cargo.toml", &a),
            ("sender/src/main.rs", "use events::send as go;\nfn main() { let _ = go(); }\n"),
            ("bystander/Cargo.toml", &b),
            ("bystander/src/main.rs", "fn main() { events::other(); }\n"),
        ],
    );
    let analysis = run(dir.path());
    assert!(analysis.diagnostics.iter().all(|d| !d.is_error()), "{:?}", analysis.diagnostics);
    let topic = &analysis.model.topics[0];
    let publishers: Vec<&str> = topic.publishers.iter().map(|p| p.service.as_str()).collect();
    assert_eq!(publishers, ["sender"]);
    let access = &topic.publishers[0].accesses[0];
    assert_eq!(access.span.file.to_string(), "lib/src/send.rs");
    let chain: Vec<(String, u32)> =
        access.imported_at.iter().map(|s| (s.file.to_string(), s.line)).collect();
    assert_eq!(chain, [("sender/src/main.rs".to_string(), 1)]);
}

#[test]
fn a_file_that_is_not_utf8_is_a_diagnostic_and_the_rest_is_analyzed() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("Cargo.toml", CARGO),
            ("src/main.rs", "mod bad;\nmod topics;\nfn main() {}\n"),
            (
                "src/topics.rs",
                "#[derive(serde::Serialize, busbar::Message)]\npub struct E { pub x: String }\npub static T: busbar::Topic<E> = busbar::Topic::new(\"still-here\");\n",
            ),
        ],
    );
    std::fs::write(dir.path().join("src/bad.rs"), b"pub fn f() { let s = \"\xff\xfe\"; }\n")
        .unwrap();
    let analysis = run(dir.path());
    let bad: Vec<_> = analysis.diagnostics.iter().filter(|d| d.code.id == "BB0003").collect();
    assert_eq!(bad.len(), 1, "{:?}", analysis.diagnostics);
    let span = bad[0].span.as_ref().unwrap();
    assert_eq!((span.file.to_string(), span.line, span.column), ("src/bad.rs".to_string(), 1, 23));
    assert_eq!(analysis.model.topics.len(), 1);
    assert_eq!(analysis.model.topics[0].name, "still-here");
}

/// A field's doc comment is its description (read from the source only for message types):
/// `///` lines joined, across other attributes, and `#[doc = "..."]`.
#[test]
fn field_docs_become_descriptions() {
    let dir = tempfile::tempdir().unwrap();
    let main = r#"
/// Not a field's doc.
#[derive(serde::Serialize, busbar::Message)]
pub struct Documented {
    /// The order's id.
    pub order_id: String,
    /// First line.
    #[serde(rename = "n")]
    ///   Second line, after an attribute.
    pub count: u32,
    #[doc = "Written as an attribute."]
    pub plain: bool,
    pub bare: String,
}
pub static T: busbar::Topic<Documented> = busbar::Topic::new("documented");
fn main() {}
"#;
    write(dir.path(), &[("Cargo.toml", CARGO), ("src/main.rs", main)]);
    let analysis = run(dir.path());
    assert!(analysis.diagnostics.iter().all(|d| !d.is_error()), "{:?}", analysis.diagnostics);
    let schema = analysis.model.topics[0].schema.to_json_schema();
    let description =
        |field: &str| schema["$defs"]["Documented"]["properties"][field]["description"].clone();
    assert_eq!(description("order_id"), "The order's id.", "{schema:#}");
    assert_eq!(description("n"), "First line.\nSecond line, after an attribute.", "{schema:#}");
    assert_eq!(description("plain"), "Written as an attribute.", "{schema:#}");
    assert!(description("bare").is_null(), "{schema:#}");
}
