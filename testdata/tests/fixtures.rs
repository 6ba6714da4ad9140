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
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "support/hcl_check.rs"]
mod hcl_check;
#[path = "support/svg_check.rs"]
mod svg_check;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("analyze")
}

fn diagram_testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("diagram")
}

fn plan_testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plan")
}

struct Outcome {
    code: u8,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, args: &[String]) -> Outcome {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut all = vec!["busbar".to_string()];
    all.extend(args.iter().cloned());
    let code = busbar_cli::run(all, dir, &busbar_cli::Host::default(), &mut out, &mut err);
    Outcome {
        code,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    app: PathBuf,
    comment: String,
    args: Vec<String>,
    expected_json: Option<String>,
}

fn materialize(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap();
    let archive = simple_txtar::Archive::from(text.as_str());
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let mut args = Vec::new();
    let mut expected_json = None;
    for file in archive.iter() {
        match file.name.as_str() {
            "@args" => args.extend(file.content.split_whitespace().map(str::to_string)),
            "@expected.json" => expected_json = Some(file.content.clone()),
            name if name.starts_with("@before/") => {
                let target = tmp.path().join("before").join(&name["@before/".len()..]);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::write(target, &file.content).unwrap();
            }
            name if name.starts_with('@') => panic!("unknown special section {name}"),
            name => {
                let target = app.join(name);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::write(target, &file.content).unwrap();
            }
        }
    }
    Fixture { _tmp: tmp, app, comment: archive.comment().trim().to_string(), args, expected_json }
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

/// Snapshots a command's outcome in `NAME.snap` beside the fixture.
fn snapshot(path: &Path, comment: &str, args: &[String], outcome: &Outcome) -> Result<(), String> {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let snapshot = format!(
        "{comment}\n$ busbar {}\nexit {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        outcome.code,
        outcome.stdout,
        outcome.stderr
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(path.parent().unwrap());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_input_file(path);
    settings.set_omit_expression(true);
    let result = catch_unwind(AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(name, snapshot));
    }));
    result.map_err(|_| "snapshot differs (see above; `cargo insta review`)".to_string())
}

/// `busbar plan` on a fixture: the same output with 1 and 3 threads, nothing printed but
/// diagnostics when the app has errors, and the plan JSON snapshotted.
fn check_plan(path: &Path, expect_errors: bool) -> Result<(), String> {
    let fixture = materialize(path);
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
    let with_threads = |n: &str| {
        let mut a = args.clone();
        a.extend(["--threads".into(), n.into()]);
        run(&fixture.app, &a)
    };
    let one = with_threads("1");
    let three = with_threads("3");
    if (&one.stdout, &one.stderr, one.code) != (&three.stdout, &three.stderr, three.code) {
        return Err("plan output differs between 1 and 3 threads".into());
    }
    let want = if expect_errors { 1 } else { 0 };
    if one.code != want {
        return Err(format!(
            "exit code {} (expected {want})\n{}{}",
            one.code, one.stdout, one.stderr
        ));
    }
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
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
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
    settings.bind(|| {
        insta::assert_snapshot!("example-shop", first.stdout);
        insta::assert_snapshot!("example-shop-terraform", terraform);
    });
}

fn run_all(kind: &str, expect_errors: bool) {
    run_dir(&testdata().join(kind), |p| check(p, expect_errors));
}

fn run_dir(dir: &Path, check: impl Fn(&Path) -> Result<(), String>) {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txtar"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| check(p).err().map(|e| format!("{}: {e}", p.display())))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n\n")
    );
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

/// An external validator from `cargo xtask ci` (which installs them into a venv), or `None`
/// when running outside it. Under `BUSBAR_REQUIRE_TOOLS` a missing tool is a failure.
#[allow(clippy::print_stderr, reason = "a skipped check says so")]
fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("BUSBAR_REQUIRE_TOOLS").is_some() => {
            panic!("{var} is not set, and BUSBAR_REQUIRE_TOOLS says the tools are required")
        }
        None => {
            eprintln!("SKIPPED: {var} is not set; `cargo xtask ci` installs and sets it");
            None
        }
    }
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
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
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

/// `busbar diagram` on an app: the Mermaid and DOT text (the same with 1 and 3 threads), and
/// the SVG, whose geometry is checked. Returns the text for a snapshot.
fn diagrams(app: &Path, extra: &[String]) -> Result<String, String> {
    let mut text = String::new();
    for format in ["mermaid", "dot", "svg"] {
        let mut args: Vec<String> =
            ["diagram", ".", "--color", "never", "--format", format].map(String::from).to_vec();
        args.extend(extra.iter().cloned());
        let with_threads = |n: &str| {
            let mut a = args.clone();
            a.extend(["--threads".into(), n.into()]);
            run(app, &a)
        };
        let one = with_threads("1");
        let three = with_threads("3");
        if one.code != 0 {
            return Err(format!("{format}: exit {}\n{}", one.code, one.stderr));
        }
        if one.stdout != three.stdout {
            return Err(format!("{format}: output differs between 1 and 3 threads"));
        }
        if format == "svg" {
            svg_check::check(&one.stdout).map_err(|e| format!("svg: {e}"))?;
        } else {
            text.push_str(&format!("$ busbar {}\n{}", args.join(" "), one.stdout));
        }
    }
    Ok(text)
}

fn check_diagram(path: &Path) -> Result<(), String> {
    let fixture = materialize(path);
    let text = diagrams(&fixture.app, &fixture.args)?;
    let outcome = Outcome { code: 0, stdout: text, stderr: String::new() };
    snapshot(path, &fixture.comment, &["diagram".to_string()], &outcome)
}

/// Every `diagram/*.txtar` fixture: Mermaid and DOT snapshotted, the SVG checked.
#[test]
fn diagram_fixtures() {
    run_dir(&diagram_testdata(), check_diagram);
}

/// The example app's diagrams, snapshotted; with `--dlq` and with each focus too.
#[test]
fn example_app_diagrams() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
    let mut text = diagrams(&example, &[]).unwrap();
    for extra in
        [&["--dlq"][..], &["--focus", "service=notifications"], &["--focus", "topic=order-placed"]]
    {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        text.push_str(&diagrams(&example, &extra).unwrap());
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(diagram_testdata());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("example-shop", text));
}

/// The SVG of every analyzable `analyze/ok` fixture passes the geometry check.
#[test]
fn svg_geometry_of_every_ok_fixture() {
    let mut checked = 0;
    for entry in std::fs::read_dir(testdata().join("ok")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "txtar") {
            continue;
        }
        let fixture = materialize(&path);
        let args = ["diagram", ".", "--format", "svg", "--dlq"].map(String::from);
        let out = run(&fixture.app, &args);
        if out.code != 0 {
            continue; // An app with errors draws nothing (checked below).
        }
        svg_check::check(&out.stdout).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures drawn");
}

/// The layout stays readable at 50 services and 80 topics: no overlapping boxes, no text on
/// another text or box, no edge through a box it does not connect.
#[test]
fn svg_geometry_at_50_services_and_80_topics() {
    let tmp = tempfile::tempdir().unwrap();
    for seed in [1, 2, 3] {
        let app = tmp.path().join(format!("app{seed}"));
        busbar_testdata::write_generated_app(&app, 50, 80, seed).unwrap();
        let analyzed =
            run(&app, &["analyze".to_string(), ".".into(), "--format".into(), "json".into()]);
        let model: Value = serde_json::from_str(&analyzed.stdout).unwrap();
        assert_eq!(model["services"].as_array().unwrap().len(), 50, "{}", analyzed.stderr);
        assert_eq!(model["topics"].as_array().unwrap().len(), 80);
        let subscriptions: usize = model["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["subscriptions"].as_array().unwrap().len())
            .sum();
        for extra in [&[][..], &["--dlq"]] {
            let mut args = ["diagram", ".", "--format", "svg"].map(String::from).to_vec();
            args.extend(extra.iter().map(|s| s.to_string()));
            let out = run(&app, &args);
            assert_eq!(out.code, 0, "{}", out.stderr);
            let counts = svg_check::check(&out.stdout)
                .unwrap_or_else(|e| panic!("seed {seed} {extra:?}: {e}"));
            let dlqs = if extra.is_empty() { 0 } else { subscriptions };
            assert_eq!(counts.boxes, 130 + dlqs, "every service, topic and DLQ is drawn");
            assert!(counts.edges > 250 && counts.segments > 2 * counts.edges, "{counts:?}");
            assert!(counts.texts >= counts.boxes + counts.edges, "{counts:?}");
        }
    }
}

/// `busbar diagram` refuses an app with errors and an unknown focus, and writes nothing.
#[test]
fn diagram_errors_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir_all(app.join("a")).unwrap();
    std::fs::write(
        app.join("a/encore.service.ts"),
        "import { Service } from \"encore.dev/service\";\nexport default new Service(\"a\");\n",
    )
    .unwrap();
    std::fs::write(app.join("a/t.ts"), "import { Topic } from \"encore.dev/pubsub\";\nexport const t = new Topic<{}>(\"t\", { deliveryGuarantee: \"at-least-once\" });\n").unwrap();
    let args = |focus: &str| -> Vec<String> {
        ["diagram", ".", "--format", "html", "--out", "d/x.html", "--focus", focus]
            .map(String::from)
            .to_vec()
    };
    let out = run(&app, &args("service=nope"));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no service `nope`") && out.stderr.contains("services are: a"),
        "{}",
        out.stderr
    );
    let out = run(&app, &args("topic=nope"));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("topics are: t"), "{}", out.stderr);
    let out = run(&app, &args("queue=x"));
    assert_eq!(out.code, 2);
    assert!(!app.join("d").exists());
    std::fs::write(app.join("a/bad.ts"), "export const = ;\n").unwrap();
    let out = run(&app, &args("service=a"));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("nothing written"), "{}", out.stderr);
    assert!(!app.join("d").exists());
}

/// `busbar diagram --format dot` of the example app, every diagram fixture and the generated
/// app renders with Graphviz, with one node per diagram node.
#[test]
fn dot_output_renders_with_graphviz() {
    let Some(dot) = tool("BUSBAR_DOT") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let generated = tmp.path().join("generated");
    busbar_testdata::write_generated_app(&generated, 50, 80, 1).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
    let mut apps: Vec<(PathBuf, Vec<String>)> =
        vec![(example.clone(), vec![]), (example, vec!["--dlq".into()]), (generated, vec![])];
    let mut fixtures = Vec::new();
    for entry in std::fs::read_dir(diagram_testdata()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txtar") {
            let fixture = materialize(&path);
            apps.push((fixture.app.clone(), fixture.args.clone()));
            fixtures.push(fixture);
        }
    }
    for (app, extra) in &apps {
        let mut args = ["diagram", ".", "--format", "dot"].map(String::from).to_vec();
        args.extend(extra.iter().cloned());
        let out = run(app, &args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let file = tmp.path().join("diagram.dot");
        std::fs::write(&file, &out.stdout).unwrap();
        let rendered = std::process::Command::new(&dot).arg("-Tsvg").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&rendered.stderr);
        assert!(
            rendered.status.success() && stderr.is_empty(),
            "dot on {}: {stderr}",
            app.display()
        );
        let svg = String::from_utf8(rendered.stdout).unwrap();
        let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
        let doc = roxmltree::Document::parse_with_options(&svg, options).unwrap();
        let drawn = doc.descendants().filter(|n| n.attribute("class") == Some("node")).count();
        let declared = out
            .stdout
            .lines()
            .filter(|l| l.trim_start().contains(" [label=") && !l.contains(" -> "))
            .count();
        assert!(declared > 0);
        assert_eq!(drawn, declared, "Graphviz drew every node of {}", app.display());
    }
}

/// The HTML page in headless Chromium (`testdata/browser/check-diagram.mjs`): no console
/// error and no request, every node drawn, no overlap with the real font, search, the details
/// panel, zoom and pan; on the example app and on the generated one.
#[test]
fn html_page_works_in_chromium() {
    let (Some(node), Some(chromium), Some(playwright)) =
        (tool("BUSBAR_NODE"), tool("BUSBAR_CHROMIUM"), tool("BUSBAR_PLAYWRIGHT"))
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let generated = tmp.path().join("generated");
    busbar_testdata::write_generated_app(&generated, 50, 80, 2).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/check-diagram.mjs");
    let cases = [
        (example, 12, "order-placed", "orders", "orders/"),
        (generated, 130, "topic-07", "svc-03", "svc-03/"),
    ];
    for (app, nodes, topic, service, location) in cases {
        let html = tmp.path().join("page.html");
        let out = run(
            &app,
            &[
                "diagram".into(),
                ".".into(),
                "--format".into(),
                "html".into(),
                "--out".into(),
                html.to_string_lossy().into_owned(),
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let checked = std::process::Command::new(&node)
            .arg(&script)
            .arg("--playwright")
            .arg(&playwright)
            .arg("--chromium")
            .arg(&chromium)
            .arg("--html")
            .arg(&html)
            .args([
                "--nodes",
                &nodes.to_string(),
                "--search",
                topic,
                "--service",
                service,
                "--location",
                location,
            ])
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "the page of {} failed in Chromium:\n{}{}",
            app.display(),
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}
