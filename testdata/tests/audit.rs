//! Audit tests. Each `testdata/audit/{ok,err}/NAME.txtar` is an app; `-- @before/PATH --`
//! sections are the app as it was when the team last ran `busbar audit --update`: its lockfile
//! becomes the app's `busbar.lock` (unless the fixture writes one itself). `-- @args --` adds
//! arguments (`--iam iam.json`). The human report and the GitHub commands are snapshotted; the
//! output is the same with 1 and 3 threads; `ok/` exits 0, `err/` exits 1; and every SARIF
//! output validates against the SARIF 2.1.0 schema.

use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "support/harness.rs"]
mod harness;

use harness::{Outcome, materialize, no_model, run, run_dir, snapshot, tool};

fn audit_testdata() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("audit")
}

fn args(extra: &[String], more: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["audit", ".", "--color", "never"].map(String::from).to_vec();
    a.extend(extra.iter().cloned());
    a.extend(more.iter().map(|s| s.to_string()));
    a
}

/// Writes the lockfile of the `@before/` app into the app, if there is one.
fn lock_from_before(app: &Path) -> Result<(), String> {
    let before = app.parent().unwrap().join("before");
    if !before.is_dir() {
        return Ok(());
    }
    let out = run(&before, &args(&[], &["--update"]));
    if out.code != 0 {
        return Err(format!("`audit --update` of the @before app failed:\n{}", out.stderr));
    }
    if !app.join("busbar.lock").exists() {
        std::fs::copy(before.join("busbar.lock"), app.join("busbar.lock")).unwrap();
    }
    Ok(())
}

fn check_audit(path: &Path, expect_errors: bool) -> Result<(), String> {
    let fixture = materialize(path);
    no_model(&fixture)?;
    lock_from_before(&fixture.app)?;
    let with_threads = |n: &str, format: &str| {
        run(&fixture.app, &args(&fixture.args, &["--threads", n, "--format", format]))
    };
    let one = with_threads("1", "human");
    let three = with_threads("3", "human");
    if (&one.stdout, &one.stderr, one.code) != (&three.stdout, &three.stderr, three.code) {
        return Err("audit output differs between 1 and 3 threads".into());
    }
    let want = if expect_errors { 1 } else { 0 };
    if one.code != want {
        return Err(format!(
            "exit code {} (expected {want})\n{}{}",
            one.code, one.stdout, one.stderr
        ));
    }
    let github = with_threads("1", "github");
    if github.code != one.code {
        return Err("--format github exits differently".into());
    }
    let json = with_threads("1", "json");
    let parsed: Value = serde_json::from_str(&json.stdout).map_err(|e| format!("json: {e}"))?;
    let errors = parsed["findings"]
        .as_array()
        .map(|f| f.iter().filter(|d| d["severity"] == "error").count())
        .unwrap_or(0);
    if (errors > 0) != expect_errors {
        return Err(format!("--format json lists {errors} errors"));
    }
    let outcome = Outcome {
        code: one.code,
        stdout: format!("{}--- github\n{}", one.stdout, github.stdout),
        stderr: one.stderr,
    };
    snapshot(path, &fixture.comment, &args(&fixture.args, &[]), &outcome)
}

#[test]
fn audit_ok_fixtures() {
    run_dir(&audit_testdata().join("ok"), |p| check_audit(p, false));
}

#[test]
fn audit_err_fixtures() {
    run_dir(&audit_testdata().join("err"), |p| check_audit(p, true));
}

/// Every fixture's `--format sarif` output validates against the SARIF 2.1.0 schema, and
/// names its rules, levels and locations.
#[test]
fn sarif_output_validates_against_the_schema() {
    let Some(schema_path) = tool("BUSBAR_SARIF_SCHEMA") else { return };
    // The 2.1.0 schema's pattern for language tags (`run.language`, `toolComponent.language`)
    // has a stray `]` (`^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$`) that the meta-schema's
    // `format: regex` rejects; it is replaced by what it means (busbar never writes
    // `language`). Nothing else in the schema is touched.
    let text = std::fs::read_to_string(schema_path).unwrap();
    let broken = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    assert_eq!(text.matches(broken).count(), 2, "the schema changed: revisit this patch");
    let schema: Value =
        serde_json::from_str(&text.replace(broken, r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#)).unwrap();
    let validator = jsonschema::draft7::new(&schema).expect("the SARIF schema compiles");
    let mut checked = 0;
    let mut located = 0;
    for kind in ["ok", "err"] {
        for entry in std::fs::read_dir(audit_testdata().join(kind)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "txtar") {
                continue;
            }
            let fixture = materialize(&path);
            lock_from_before(&fixture.app).unwrap();
            let out = run(&fixture.app, &args(&fixture.args, &["--format", "sarif"]));
            let sarif: Value = serde_json::from_str(&out.stdout)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            let errors: Vec<String> = validator
                .iter_errors(&sarif)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: SARIF invalid:\n{}", path.display(), errors.join("\n"));
            let run0 = &sarif["runs"][0];
            assert_eq!(run0["columnKind"], "unicodeCodePoints");
            for result in run0["results"].as_array().unwrap() {
                let id = result["ruleId"].as_str().unwrap();
                let index = result["ruleIndex"].as_u64().unwrap() as usize;
                assert_eq!(run0["tool"]["driver"]["rules"][index]["id"], id);
                if result.get("locations").is_some() {
                    located += 1;
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 8 && located >= 10, "{checked} fixtures, {located} located results");
    // The validator is not a check that cannot fail: a result without a message is rejected.
    let broken = serde_json::json!({ "version": "2.1.0", "runs": [{ "tool": { "driver": { "name": "busbar" } }, "results": [{ "ruleId": "BB0603" }] }] });
    assert!(!validator.is_valid(&broken));
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn base_app(dir: &Path) {
    busbar_testdata::write_orders_billing_app(dir).unwrap();
}

fn audit(dir: &Path, more: &[&str]) -> Outcome {
    run(dir, &args(&[], more))
}

/// The drift cycle a team goes through: no lockfile fails; `--update` writes it and passes;
/// a new cross-service publish fails naming the service, topic and code; `--update` accepts
/// it; removing the publish warns and passes; `busbar build` never writes the lockfile.
#[test]
fn drift_cycle_with_update() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    base_app(app);
    let missing = audit(app, &[]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("no busbar.lock: review the grants and run `busbar audit --update`"),
        "{}",
        missing.stderr
    );
    let built = run(app, &["build".into(), ".".into(), "--out".into(), "out".into()]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(!app.join("busbar.lock").exists(), "build never writes the lockfile");
    let updated = audit(app, &["--update"]);
    assert_eq!(updated.code, 0, "{}", updated.stderr);
    let lock = std::fs::read_to_string(app.join("busbar.lock")).unwrap();
    assert!(lock.contains("[services.billing]") && lock.contains("\"order-placed\""), "{lock}");
    assert_eq!(audit(app, &[]).code, 0);

    write(
        app,
        "billing/refund.ts",
        "import { placed } from \"../orders/topics\";\n\nexport async function replay(id: string) {\n  await placed.publish({ id });\n}\n",
    );
    let drift = audit(app, &[]);
    assert_eq!(drift.code, 1, "{}", drift.stderr);
    assert!(
        drift
            .stderr
            .contains("service `billing` now publishes to `order-placed` (billing/refund.ts:4:9)"),
        "{}",
        drift.stderr
    );
    let github = audit(app, &["--format", "github"]);
    assert!(
        github.stdout.starts_with("::error file=billing/refund.ts,line=4,col=9,"),
        "{}",
        github.stdout
    );
    assert_eq!(audit(app, &["--update"]).code, 0);
    assert_eq!(audit(app, &[]).code, 0);

    std::fs::remove_file(app.join("billing/refund.ts")).unwrap();
    let stale = audit(app, &[]);
    assert_eq!(stale.code, 0, "a stale grant is a warning: {}", stale.stderr);
    assert!(
        stale.stderr.contains("warning[BB0604]") && stale.stderr.contains("busbar.lock:"),
        "{}",
        stale.stderr
    );
}

/// The lockfile does not change when code is reformatted or a publish call moves within its
/// file, and is written in sorted order, one grant per line.
#[test]
fn lockfile_is_stable_across_unrelated_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    base_app(app);
    assert_eq!(audit(app, &["--update"]).code, 0);
    let first = std::fs::read_to_string(app.join("busbar.lock")).unwrap();
    write(
        app,
        "orders/topics.ts",
        "import { Topic } from \"encore.dev/pubsub\";\n\n// A comment that moves everything down.\n\nexport async function place(id: string)\n{\n    // The publish moved above the declaration's use site and was reformatted.\n    await placed.publish(\n        { id },\n    );\n}\n\nexport const placed = new Topic<{ id: string }>(\n  \"order-placed\",\n  { deliveryGuarantee: \"at-least-once\" },\n);\n",
    );
    write(app, "billing/other.ts", "export const unrelated = 1;\n");
    assert_eq!(audit(app, &[]).code, 0, "the audit still passes");
    assert_eq!(audit(app, &["--update"]).code, 0);
    let second = std::fs::read_to_string(app.join("busbar.lock")).unwrap();
    assert_eq!(first, second);
    let grants = second.split("\n[schemas]\n").next().unwrap();
    let grant_lines: Vec<&str> = grants.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(grant_lines.len(), 2, "one line per grant:\n{second}");
}

/// The orders app with a richer message type, for the schema compatibility cycle.
fn schema_app(dir: &Path, order: &str) {
    base_app(dir);
    write(
        dir,
        "orders/topics.ts",
        &format!(
            "import {{ Topic, type Attribute }} from \"encore.dev/pubsub\";\n{order}\nexport const placed = new Topic<Order>(\"order-placed\", {{ deliveryGuarantee: \"at-least-once\" }});\nexport async function place(id: string) {{\n  await placed.publish({{ id }} as Order);\n}}\n"
        ),
    );
}

/// The cycle a team goes through when a message type changes: `--update` records the schema;
/// reordering fields changes nothing; an optional field is a compatible note; a type change,
/// a field made required and a removed field are errors at the field with the old and new
/// shape, in every report format; `--update` accepts them.
#[test]
fn schema_compatibility_cycle() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    schema_app(app, "interface Order { id: string; total: number; region: Attribute<string> }");
    assert_eq!(audit(app, &["--update"]).code, 0);
    let lock = std::fs::read_to_string(app.join("busbar.lock")).unwrap();
    assert!(lock.contains("\n[schemas]\norder-placed = '''\n{"), "{lock}");

    schema_app(
        app,
        "interface Order {\n  region: Attribute<string>;\n  total: number;\n  id: string;\n}",
    );
    let same = audit(app, &[]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert!(!same.stderr.contains("BB061"), "reordering is no change: {}", same.stderr);

    schema_app(
        app,
        "interface Order { id: string; total: number; region: Attribute<string>; note?: string }",
    );
    let compatible = audit(app, &[]);
    assert_eq!(compatible.code, 0, "a compatible change passes: {}", compatible.stderr);
    assert!(
        compatible
            .stderr
            .contains("note[BB0615]: topic `order-placed`: `note` was added (optional)"),
        "{}",
        compatible.stderr
    );

    schema_app(
        app,
        "interface Order { id: string;\n  total: string; region: Attribute<string>; note: string }",
    );
    let breaking = audit(app, &[]);
    assert_eq!(breaking.code, 1, "{}", breaking.stderr);
    for expected in [
        "error[BB0614]: topic `order-placed`: `total` changed type: was number, now string",
        "┌─ orders/topics.ts:3:3",
        "error[BB0614]: topic `order-placed`: `note` was added as a required field",
    ] {
        assert!(breaking.stderr.contains(expected), "{expected}\n{}", breaking.stderr);
    }
    let github = audit(app, &["--format", "github"]);
    assert!(
        github.stdout.contains("::error file=orders/topics.ts,line=3,col=3,"),
        "{}",
        github.stdout
    );
    let json = audit(app, &["--format", "json"]);
    assert!(json.stdout.contains("\"BB0614\""), "{}", json.stdout);
    let sarif = audit(app, &["--format", "sarif"]);
    assert!(sarif.stdout.contains("\"ruleId\": \"BB0614\""), "{}", sarif.stdout);
    assert_eq!(audit(app, &["--update"]).code, 0);
    assert_eq!(audit(app, &[]).code, 0);

    // A field removed, and an attribute that is no longer one (nothing filters on it).
    schema_app(app, "interface Order { id: string; region: string; note: string }");
    let removed = audit(app, &[]);
    assert_eq!(removed.code, 1, "{}", removed.stderr);
    assert!(
        removed.stderr.contains("error[BB0614]: topic `order-placed`: `total` was removed (or renamed): was string, now absent"),
        "{}",
        removed.stderr
    );
    assert!(
        removed.stderr.contains(
            "note[BB0615]: topic `order-placed`: `region` attribute is no longer an attribute"
        ),
        "{}",
        removed.stderr
    );
    assert!(
        !removed.stderr.contains("`region` changed"),
        "an attribute mark is not a type: {}",
        removed.stderr
    );

    // A doc comment is no change; `T` to `T | null` widens; a record's value type changes.
    schema_app(app, "interface Order { id: string; note: string; counts: Record<string, number> }");
    assert_eq!(audit(app, &["--update"]).code, 0);
    schema_app(
        app,
        "interface Order {\n  /** The order's id. */\n  id: string;\n  note: string | null; counts: Record<string, string> }",
    );
    let more = audit(app, &[]);
    assert_eq!(more.code, 1, "{}", more.stderr);
    assert!(!more.stderr.contains("`id`"), "a doc comment is no change: {}", more.stderr);
    assert!(
        more.stderr.contains("note[BB0615]: topic `order-placed`: `note` widened"),
        "{}",
        more.stderr
    );
    assert!(
        more.stderr.contains("error[BB0614]: topic `order-placed`: `counts.[key]` changed type: was number, now string"),
        "{}",
        more.stderr
    );
}

/// A lockfile whose schema entry is not a JSON object (edited by hand, merged badly) is
/// BB0602 at the entry, not a crash and not an empty comparison.
#[test]
fn a_broken_schema_in_the_lockfile_is_an_error_at_its_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    schema_app(app, "interface Order { id: string }");
    assert_eq!(audit(app, &["--update"]).code, 0);
    let lock = std::fs::read_to_string(app.join("busbar.lock")).unwrap();
    let (grants, _) = lock.split_once("\n[schemas]\n").unwrap();
    for broken in ["order-placed = \"{ not json\"\n", "order-placed = \"[1, 2]\"\n"] {
        std::fs::write(app.join("busbar.lock"), format!("{grants}\n[schemas]\n{broken}")).unwrap();
        let out = audit(app, &[]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stderr.contains(
                "error[BB0602]: busbar.lock: the schema of `order-placed` is not a JSON object"
            ),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("┌─ busbar.lock:"), "{}", out.stderr);
    }
}
