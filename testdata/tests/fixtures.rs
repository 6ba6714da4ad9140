//! Fixture tests. Each `testdata/{analyze,plan}/{ok,err}/NAME.txtar` is a whole app in one
//! file (`-- path/file.ts --` sections; `../x` writes beside the app root). Special sections:
//! `-- @args --` adds command-line arguments; `-- @expected.json --` is a hand-written model,
//! compared field by field with `busbar analyze --format json`.
//!
//! For every fixture: the command's output is snapshotted in `NAME.snap` beside it (for
//! `analyze/` the rendered summary and diagnostics, for `plan/` the plan JSON and the
//! diagnostics); the output is identical with 1 and 3 threads; `ok/` apps exit 0 without
//! errors, `err/` apps exit 1 (and `plan` prints no plan).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "support/harness.rs"]
mod harness;
#[path = "support/hcl_check.rs"]
mod hcl_check;

use harness::{materialize, no_model, run, run_dir, snapshot, tool};

fn testdata() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("analyze")
}

fn plan_testdata() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("plan")
}

/// Compares two JSON values field by field: the same keys, the same array lengths, equal
/// scalars. Returns the first difference with its path.
fn compare(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for key in e.keys() {
                if !a.contains_key(key) {
                    return Err(format!("{path}.{key}: missing in the output"));
                }
            }
            for key in a.keys() {
                if !e.contains_key(key) {
                    return Err(format!(
                        "{path}.{key}: in the output but not expected ({})",
                        a[key]
                    ));
                }
            }
            for (key, e) in e {
                compare(e, &a[key], &format!("{path}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{path}: expected {} elements, got {}: {}",
                    e.len(),
                    a.len(),
                    Value::Array(a.clone())
                ));
            }
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                compare(e, a, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{path}: expected {e}, got {a}")),
    }
}

fn check(path: &Path, expect_errors: bool) -> Result<(), String> {
    let fixture = materialize(path);
    harness::no_messages(&fixture)?;
    let mut human_args =
        vec!["analyze".to_string(), ".".to_string(), "--color".into(), "never".into()];
    human_args.extend(fixture.args.iter().cloned());
    let human = run(&fixture.app, &human_args);
    let mut json_args = human_args.clone();
    json_args.extend(["--format".into(), "json".into()]);
    let with_threads = |n: &str| {
        let mut a = json_args.clone();
        a.extend(["--threads".into(), n.into()]);
        run(&fixture.app, &a)
    };
    let one = with_threads("1");
    let three = with_threads("3");
    if one.stdout != three.stdout {
        return Err("JSON output differs between 1 and 3 threads".into());
    }
    let mut human3_args = human_args.clone();
    human3_args.extend(["--threads".into(), "3".into()]);
    let human3 = run(&fixture.app, &human3_args);
    if (&human.stdout, &human.stderr) != (&human3.stdout, &human3.stderr) {
        return Err("human output differs between thread counts".into());
    }
    if !one.stderr.is_empty() {
        return Err(format!("--format json wrote to stderr: {}", one.stderr));
    }
    if human.code != one.code {
        return Err(format!("exit codes differ: human {} json {}", human.code, one.code));
    }
    let want = if expect_errors { 1 } else { 0 };
    if human.code != want {
        return Err(format!(
            "exit code {} (expected {want})\n{}{}",
            human.code, human.stdout, human.stderr
        ));
    }
    let actual: Value =
        serde_json::from_str(&one.stdout).map_err(|e| format!("invalid JSON: {e}"))?;
    if let Some(expected) = &fixture.expected_json {
        let expected: Value = serde_json::from_str(expected)
            .map_err(|e| format!("@expected.json is not JSON: {e}"))?;
        compare(&expected, &actual, "$").map_err(|e| format!("JSON model differs: {e}"))?;
    }
    snapshot(path, &fixture.comment, &human_args, &human)
}

/// `busbar plan` on a fixture: the same output with 1 and 3 threads, nothing printed but
/// diagnostics when the app has errors, and the plan JSON snapshotted.
fn check_plan(path: &Path, expect_errors: bool) -> Result<(), String> {
    let fixture = materialize(path);
    no_model(&fixture)?;
    let mut args = vec!["plan".to_string(), ".".to_string(), "--color".into(), "never".into()];
    args.extend(fixture.args.iter().cloned());
    // `-- @before/... --` sections are the app as it was: its plan is what `--against` reads.
    let before = fixture.app.parent().unwrap().join("before");
    if before.is_dir() {
        let old = run(&before, &["plan".to_string(), ".".into(), "--out".into(), "../old".into()]);
        if old.code != 0 {
            return Err(format!("planning the @before app failed: {}", old.stderr));
        }
        args.extend(["--against".to_string(), "../old/plan.json".to_string()]);
    }
    let one = harness::run_on_1_and_3_threads(&fixture.app, &args, u8::from(expect_errors))?;
    if expect_errors && !one.stdout.is_empty() {
        return Err("a plan was printed although the app has errors".into());
    }
    let mut outcome = one;
    if !expect_errors {
        let plan: Value =
            serde_json::from_str(&outcome.stdout).map_err(|e| format!("invalid JSON: {e}"))?;
        no_wildcard_grants(&plan)?;
        // The same plan rendered as Terraform, read back and compared with the plan data.
        outcome.stdout.push_str(&terraform(&fixture.app, &fixture.args)?);
    }
    snapshot(path, &fixture.comment, &args, &outcome)
}

/// Renders the app's Terraform into a temporary directory, checks every module against the
/// `plan.json` written beside it with a real HCL parser, and returns the files for the
/// snapshot.
/// `busbar plan --format terraform --out OUT` on the app, with the fixture's extra arguments.
fn render(app: &Path, extra: &[String], out: &Path) -> Result<(), String> {
    let mut args: Vec<String> =
        ["plan", ".", "--color", "never", "--format", "terraform"].map(String::from).to_vec();
    args.extend(["--out".to_string(), out.to_string_lossy().into_owned()]);
    args.extend(extra.iter().cloned());
    let rendered = run(app, &args);
    if rendered.code != 0 {
        return Err(format!("--format terraform failed: {}", rendered.stderr));
    }
    Ok(())
}

fn terraform(app: &Path, extra: &[String]) -> Result<String, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = tmp.path().join("out");
    render(app, extra, &out)?;
    let set: Value = serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap())
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    for plan in set["plans"].as_array().unwrap() {
        let plan: busbar_plan::Plan =
            serde_json::from_value(plan.clone()).map_err(|e| format!("plan.json: {e}"))?;
        let module = match plan.target {
            busbar_plan::Target::Dapr => {
                let dir = out.join("dapr");
                check_dapr(&dir, &plan).map_err(|e| format!("dapr differs from the plan:\n{e}"))?;
                dir
            }
            target => {
                let module = out.join("terraform").join(target.as_str());
                hcl_check::check(&module, &plan).map_err(|e| {
                    format!("terraform/{} differs from the plan:\n{e}", target.as_str())
                })?;
                module
            }
        };
        let mut files: Vec<_> =
            std::fs::read_dir(&module).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let name = file.strip_prefix(&out).unwrap().to_string_lossy().replace('\\', "/");
            text.push_str(&format!("--- {name}\n{}", std::fs::read_to_string(&file).unwrap()));
        }
    }
    Ok(text)
}

/// Invariant 5: no IAM action or resource in a plan has a `*`.
fn no_wildcard_grants(plan: &Value) -> Result<(), String> {
    let mut checked = 0;
    let mut stack = vec![plan];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (key, value) in map {
                    // Grants and IAM statements (`resources` is also the plan's own object).
                    let is_grant_field =
                        matches!(key.as_str(), "actions" | "resources" | "resource" | "role");
                    if is_grant_field && !value.is_object() {
                        let values = match value {
                            Value::Array(items) => items.iter().collect(),
                            other => vec![other],
                        };
                        for item in values {
                            let text = item.as_str().unwrap_or_default();
                            if text.is_empty() || text.contains('*') {
                                return Err(format!("`{key}` has a wildcard or is empty: {item}"));
                            }
                            checked += 1;
                        }
                    }
                    stack.push(value);
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    if checked == 0 {
        return Err("the plan has no grant to check".into());
    }
    Ok(())
}

/// The example app's plans, for every target, snapshotted; and no wildcard in them.
#[test]
fn example_app_plans() {
    let example = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../examples/shop");
    let args: Vec<String> = ["plan", ".", "--color", "never"].map(String::from).to_vec();
    let first = run(&example, &args);
    let again = run(&example, &args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!((&first.stdout, &first.stderr), (&again.stdout, &again.stderr), "deterministic");
    let plan: Value = serde_json::from_str(&first.stdout).unwrap();
    no_wildcard_grants(&plan).unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(plan_testdata());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let terraform = terraform(&example, &[]).unwrap();
    // The runtime contract `busbar build` writes, read back as the runtime reads it: it
    // loses nothing (written again, it is the same bytes).
    let out = tempfile::tempdir().unwrap();
    let out_arg = out.path().join("out").display().to_string();
    let built = run(&example, &["build".into(), ".".into(), "--out".into(), out_arg.clone()]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let contract =
        std::fs::read_to_string(Path::new(&out_arg).join("runtime-config.json")).unwrap();
    let read = busbar_plan::RuntimeConfig::from_json(&contract).unwrap();
    assert_eq!(read.to_json(), contract, "runtime-config.json reads back losslessly");
    settings.bind(|| {
        insta::assert_snapshot!("example-shop", first.stdout);
        insta::assert_snapshot!("example-shop-terraform", terraform);
        insta::assert_snapshot!("example-shop-runtime-config", contract);
    });
}

fn run_all(kind: &str, expect_errors: bool) {
    run_dir(&testdata().join(kind), |p| check(p, expect_errors));
}

#[test]
fn ok_fixtures() {
    run_all("ok", false);
}

#[test]
fn err_fixtures() {
    run_all("err", true);
}

#[test]
fn plan_ok_fixtures() {
    run_dir(&plan_testdata().join("ok"), |p| check_plan(p, false));
}

#[test]
fn plan_err_fixtures() {
    run_dir(&plan_testdata().join("err"), |p| check_plan(p, true));
}

/// At least ten fixtures carry a hand-written model.
#[test]
fn hand_written_models() {
    let mut count = 0;
    for kind in ["ok", "err"] {
        for entry in std::fs::read_dir(testdata().join(kind)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
            if text.contains("\n-- @expected.json --\n") {
                count += 1;
            }
        }
    }
    assert!(count >= 10, "only {count} fixtures have a hand-written @expected.json");
}

/// Reads the Dapr manifests back as YAML and compares them with the plan.
fn check_dapr(dir: &Path, plan: &busbar_plan::Plan) -> Result<(), String> {
    use serde::Deserialize;
    let busbar_plan::Resources::Dapr(dapr) = &plan.resources else {
        return Err("not a Dapr plan".into());
    };
    let docs = |file: &str| -> Result<Vec<serde_yaml_ng::Value>, String> {
        let text = std::fs::read_to_string(dir.join(file)).map_err(|e| e.to_string())?;
        serde_yaml_ng::Deserializer::from_str(&text)
            .map(|d| serde_yaml_ng::Value::deserialize(d).map_err(|e| format!("{file}: {e}")))
            .collect()
    };
    let component = docs("component.yaml")?;
    let [c] = &component[..] else { return Err("component.yaml: not one document".into()) };
    let meta: BTreeMap<String, String> = c["spec"]["metadata"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|m| {
            let field = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            (field("name"), field("value"))
        })
        .collect();
    let want = &dapr.component;
    let expected = [
        ("publishingScopes", &want.publishing_scopes),
        ("subscriptionScopes", &want.subscription_scopes),
        ("allowedTopics", &want.allowed_topics),
    ];
    for (key, value) in expected {
        if meta.get(key) != Some(value) {
            return Err(format!("component {key} is {:?}, the plan says {value:?}", meta.get(key)));
        }
    }
    if c["metadata"]["name"].as_str() != Some(want.name.as_str())
        || c["spec"]["type"].as_str() != Some(want.component_type.as_str())
    {
        return Err("component name or type differs from the plan".into());
    }
    let subs = docs("subscriptions.yaml")?;
    if subs.len() != dapr.subscriptions.len() {
        return Err(format!(
            "{} subscriptions, the plan has {}",
            subs.len(),
            dapr.subscriptions.len()
        ));
    }
    for (doc, want) in subs.iter().zip(&dapr.subscriptions) {
        let scopes: Vec<&str> =
            doc["scopes"].as_sequence().into_iter().flatten().filter_map(|v| v.as_str()).collect();
        let got = (
            doc["kind"].as_str(),
            doc["metadata"]["name"].as_str(),
            doc["spec"]["topic"].as_str(),
            doc["spec"]["routes"]["default"].as_str(),
            doc["spec"]["deadLetterTopic"].as_str(),
            doc["spec"]["pubsubname"].as_str(),
        );
        let expected = (
            Some("Subscription"),
            Some(want.name.as_str()),
            Some(want.topic.as_str()),
            Some(want.route.as_str()),
            Some(want.dead_letter_topic.as_str()),
            Some(dapr.component.name.as_str()),
        );
        if got != expected || scopes != want.scopes {
            return Err(format!(
                "subscription {}: {got:?} {scopes:?}, the plan says {expected:?} {:?}",
                want.name, want.scopes
            ));
        }
    }
    Ok(())
}

/// Every generated module (the example app's and every `plan/ok` fixture's) is
/// `terraform fmt -check` clean, and checkov finds nothing in the example app's AWS and GCP
/// modules; a check it skips is skipped inline, with a reason.
#[test]
fn generated_terraform_passes_terraform_fmt_and_checkov() {
    let (Some(terraform_bin), Some(checkov_bin)) =
        (tool("BUSBAR_TERRAFORM"), tool("BUSBAR_CHECKOV"))
    else {
        return;
    };
    let all = tempfile::tempdir().unwrap();
    let example = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../examples/shop");
    let example_out = all.path().join("example");
    render(&example, &[], &example_out).unwrap();
    let mut fixtures = 0;
    for entry in std::fs::read_dir(plan_testdata().join("ok")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txtar") {
            let fixture = materialize(&path);
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            render(&fixture.app, &fixture.args, &all.path().join(name)).unwrap();
            fixtures += 1;
        }
    }
    assert!(fixtures >= 4, "the plan fixtures were rendered");
    let fmt = std::process::Command::new(&terraform_bin)
        .args(["fmt", "-check", "-diff", "-recursive"])
        .arg(all.path())
        .output()
        .expect("terraform runs");
    assert!(
        fmt.status.success(),
        "terraform fmt -check failed:\n{}{}",
        String::from_utf8_lossy(&fmt.stdout),
        String::from_utf8_lossy(&fmt.stderr)
    );
    for target in ["aws", "gcp"] {
        let module = example_out.join("terraform").join(target);
        let out = std::process::Command::new(&checkov_bin)
            .args(["--framework", "terraform", "--skip-download", "-o", "json", "-d"])
            .arg(&module)
            .output()
            .expect("checkov runs");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("checkov printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr))
        });
        let summary = &report["summary"];
        let failed: Vec<String> = report["results"]["failed_checks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["check_name"]))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            summary["failed"],
            0,
            "checkov failed checks on {target}:\n{}",
            failed.join("\n")
        );
        assert!(
            summary["passed"].as_u64().unwrap_or(0) > 10,
            "checkov checked {target}: {summary}"
        );
        for skipped in report["results"]["skipped_checks"].as_array().into_iter().flatten() {
            let reason = skipped["check_result"]["suppress_comment"].as_str().unwrap_or_default();
            assert!(
                reason.len() > 20,
                "skip of {} without a reason: {skipped}",
                skipped["check_id"]
            );
        }
    }
}
