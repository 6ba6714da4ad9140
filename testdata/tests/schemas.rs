//! Message schema fixtures: each `testdata/schema/{ok,err}/NAME.txtar` is an app whose topics'
//! message types exercise one family of TypeScript constructs. For each: `busbar schema`'s
//! output (every topic's JSON Schema) and diagnostics are snapshotted in `NAME.snap`, identical
//! with 1 and 3 threads; every schema is valid JSON Schema 2020-12 (checked against the
//! meta-schema) and compiles with all its `$ref`s resolved; and the messages listed in
//! `-- @valid.jsonl --` / `-- @invalid.jsonl --` (lines `TOPIC JSON`) are accepted / refused by
//! their topic's schema, so a snapshot is never the only thing that says a schema is right.

use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "support/harness.rs"]
mod harness;

use harness::{materialize, run, run_dir, snapshot};

fn testdata() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("schema")
}

/// Checks each `TOPIC JSON` line of `lines` against the schemas: accepted when `want`.
fn check_messages(schemas: &Value, lines: &str, want: bool) -> Result<usize, String> {
    let mut checked = 0;
    for line in lines.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (topic, message) =
            line.split_once(' ').ok_or_else(|| format!("`{line}`: not `TOPIC JSON`"))?;
        let schema = schemas.get(topic).ok_or_else(|| format!("`{line}`: no topic `{topic}`"))?;
        let message: Value =
            serde_json::from_str(message).map_err(|e| format!("`{line}`: not JSON: {e}"))?;
        let validator = jsonschema::draft202012::new(schema)
            .map_err(|e| format!("the schema of `{topic}` does not compile: {e}"))?;
        if validator.is_valid(&message) != want {
            let verdict = if want { "refused" } else { "accepted" };
            let why: Vec<String> = validator.iter_errors(&message).map(|e| e.to_string()).collect();
            return Err(format!("`{line}` was {verdict} by `{topic}`'s schema {}", why.join("; ")));
        }
        checked += 1;
    }
    Ok(checked)
}

fn check(path: &Path, expect_errors: bool) -> Result<(), String> {
    let fixture = materialize(path);
    if fixture.expected_json.is_some() {
        return Err("schema fixtures have no model to compare: drop @expected.json".into());
    }
    let mut args = vec!["schema".to_string(), ".".to_string(), "--color".into(), "never".into()];
    args.extend(fixture.args.iter().cloned());
    let one = harness::run_on_1_and_3_threads(&fixture.app, &args, u8::from(expect_errors))?;
    if !expect_errors {
        let schemas: Value =
            serde_json::from_str(&one.stdout).map_err(|e| format!("invalid JSON: {e}"))?;
        let Value::Object(map) = &schemas else { return Err("not an object of schemas".into()) };
        for (topic, schema) in map {
            jsonschema::meta::validate(schema)
                .map_err(|e| format!("the schema of `{topic}` is not valid JSON Schema: {e}"))?;
            jsonschema::draft202012::new(schema)
                .map_err(|e| format!("the schema of `{topic}` does not compile: {e}"))?;
        }
        let valid = check_messages(&schemas, fixture.valid.as_deref().unwrap_or(""), true)?;
        let invalid = check_messages(&schemas, fixture.invalid.as_deref().unwrap_or(""), false)?;
        if valid == 0 || invalid == 0 {
            return Err("a schema fixture lists messages its schemas accept and refuse".into());
        }
    }
    snapshot(path, &fixture.comment, &args, &one)
}

#[test]
fn schema_ok_fixtures() {
    run_dir(&testdata().join("ok"), |p| check(p, false));
}

#[test]
fn schema_err_fixtures() {
    run_dir(&testdata().join("err"), |p| check(p, true));
}

/// A chain of generics whose type arguments double at each step (`L0<T>` uses `L1<[T, T]>`...)
/// ends with a schema: at 4096 parts the argument is open, with a note saying so.
#[test]
fn doubling_type_arguments_stop_with_a_note() {
    let mut chain: String =
        (0..16).map(|i| format!("type L{i}<T> = {{ v: T; n?: L{}<[T, T]> }};\n", i + 1)).collect();
    chain.push_str("type L16<T> = { v: T };\n");
    let app = format!(
        "-- svc/encore.service.ts --\nimport {{ Service }} from \"encore.dev/service\";\nexport default new Service(\"svc\");\n-- svc/topics.ts --\nimport {{ Topic }} from \"encore.dev/pubsub\";\n{chain}export const t = new Topic<L0<string>>(\"chain\", {{ deliveryGuarantee: \"at-least-once\" }});\n"
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("chain.txtar");
    std::fs::write(&path, app).unwrap();
    let fixture = materialize(&path);
    let out = run(&fixture.app, &["schema".into(), ".".into(), "--color".into(), "never".into()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("grow beyond 4096 parts"), "{}", out.stderr);
    let schemas: Value = serde_json::from_str(&out.stdout).unwrap();
    jsonschema::draft202012::new(&schemas["chain"]).unwrap();
}

/// `--topic` prints one topic's schema; an unknown name is a usage error listing the topics.
#[test]
fn one_topic_and_an_unknown_topic() {
    let example = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../examples/shop");
    let args = |topic: &str| -> Vec<String> {
        ["schema", ".", "--topic", topic].iter().map(|s| s.to_string()).collect()
    };
    let one = run(&example, &args("order-placed"));
    assert_eq!(one.code, 0, "{}", one.stderr);
    let schema: Value = serde_json::from_str(&one.stdout).unwrap();
    assert_eq!(schema["title"], "OrderPlaced");
    let unknown = run(&example, &args("order-shipped"));
    assert_eq!(unknown.code, 2);
    assert!(unknown.stdout.is_empty());
    assert!(
        unknown.stderr.contains("--topic: the app has no topic `order-shipped`; its topics: audit-log, fraud-verdict, order-cancelled, order-placed"),
        "{}",
        unknown.stderr
    );
}
