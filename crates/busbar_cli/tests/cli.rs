//! The `busbar` binary end to end: exit codes, what goes to stdout and stderr, environment
//! errors, inputs that are not errors (empty directories, symlink loops, huge files), bad
//! input that is (invalid UTF-8), and byte-identical output across runs and thread counts.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

mod support;
use support::{agent, free_port, generated_token, spawn_dev, wait_healthy};

fn busbar() -> Command {
    let mut cmd = Command::cargo_bin("busbar").unwrap();
    cmd.env_remove("RAYON_NUM_THREADS").env("NO_COLOR", "1");
    cmd
}

fn example() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../examples/shop")
    .canonicalize()
    .unwrap()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    busbar().current_dir(dir).args(args).output().unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn codes(doc: &Value) -> Vec<String> {
    doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect()
}

fn write(dir: &Path, rel: &str, text: impl AsRef<[u8]>) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const TOPIC: &str = "import { Topic, Subscription } from \"encore.dev/pubsub\";\nexport const t = new Topic<{ id: string }>(\"t\", { deliveryGuarantee: \"at-least-once\" });\nexport const go = () => t.publish({ id: \"1\" });\nnew Subscription(t, \"s\", { handler: async () => {} });\n";

#[test]
fn help_and_version_exit_zero() {
    let out = busbar().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("analyze"));
    let out = busbar().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("busbar "));
}

#[test]
fn bad_flag_is_a_usage_error() {
    let out = busbar().args(["analyze", "--frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
    let out = busbar().args(["analyze", ".", "--format", "yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = busbar().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn missing_directory_is_an_environment_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(tmp.path(), &["analyze", "no/such/app"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[BB0013]: `no/such/app` does not exist"), "{err}");

    let out = run(tmp.path(), &["analyze", "no/such/app", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc = json(&out);
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["root"], "no/such/app");
    assert_eq!(codes(&doc), ["BB0013"]);
    assert_eq!(doc["diagnostics"][0]["span"], Value::Null);

    write(tmp.path(), "file.ts", TOPIC);
    let out = run(tmp.path(), &["analyze", "file.ts"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));
}

#[test]
fn unreadable_config_is_an_environment_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("busbar.toml")).unwrap();
    let out = run(tmp.path(), &["analyze"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn clean_app_exits_zero_with_nothing_on_stderr() {
    let out = run(&example(), &["analyze"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("7 services, 7 topics, 10 subscriptions"), "{stdout}");
    // One finding is silenced in the example; the count line is the only stderr output.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "1 suppressed (--show-suppressed lists them)\n"
    );

    let out = run(&example(), &["analyze", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "JSON mode writes nothing to stderr");
    let doc = json(&out);
    assert_eq!(doc["services"].as_array().unwrap().len(), 7);
    assert_eq!(doc["topics"].as_array().unwrap().len(), 7);
}

#[test]
fn progress_goes_to_stderr_only_when_asked() {
    let plain = run(&example(), &["analyze", "--format", "json"]);
    let with = run(&example(), &["analyze", "--format", "json", "--progress"]);
    assert_eq!(plain.stdout, with.stdout);
    let err = String::from_utf8_lossy(&with.stderr);
    assert!(err.contains("busbar: analyzing") && err.contains("files"), "{err}");
}

#[test]
fn errors_exit_one() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "svc/a.ts", TOPIC.replace("\"t\", {", "\"Bad_Name\", {"));
    let out = run(tmp.path(), &["analyze"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[BB0103]"));
    // Warnings alone do not fail the run, unless --strict.
    write(tmp.path(), "svc/a.ts", TOPIC.replace("\"t\", {", "\"site.added\", {"));
    assert_eq!(run(tmp.path(), &["analyze"]).status.code(), Some(0));
    assert_eq!(run(tmp.path(), &["analyze", "--strict"]).status.code(), Some(1));
}

#[test]
fn a_panic_while_analyzing_a_file_is_a_diagnostic_not_a_crash_or_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "svc/good.ts", TOPIC);
    write(tmp.path(), "svc/cursed.ts", "import \"./good\";\nexport const x = 1;\n");
    let out = busbar()
        .current_dir(tmp.path())
        .env("BUSBAR_TEST_PANIC_ON", "svc/cursed.ts")
        .args(["analyze", "--format", "json", "--threads", "2"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    assert_eq!(codes(&doc), ["BB0001"]);
    assert_eq!(doc["diagnostics"][0]["span"]["file"], "svc/cursed.ts");
    assert_eq!(doc["topics"][0]["name"], "t", "the other files are analyzed");
}

#[test]
fn empty_directory_is_an_empty_model() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(tmp.path(), &["analyze", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let doc = json(&out);
    assert_eq!(doc["services"], Value::Array(vec![]));
    assert_eq!(doc["topics"], Value::Array(vec![]));
    assert_eq!(doc["diagnostics"], Value::Array(vec![]));
}

#[test]
fn invalid_utf8_is_an_error_and_the_rest_is_analyzed() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "svc/good.ts", TOPIC);
    let mut bad = b"export const a = 1;\nexport const b = \"caf".to_vec();
    bad.extend([0xff, 0xfe]);
    bad.extend(b"\";\n");
    write(tmp.path(), "svc/bad.ts", bad);
    let out = run(tmp.path(), &["analyze", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    assert_eq!(codes(&doc), ["BB0003"]);
    let span = &doc["diagnostics"][0]["span"];
    assert_eq!(
        (span["file"].as_str(), span["line"].as_u64(), span["column"].as_u64()),
        (Some("svc/bad.ts"), Some(2), Some(22))
    );
    assert_eq!(doc["topics"][0]["name"], "t", "the valid file is still analyzed");
    let human = run(tmp.path(), &["analyze"]);
    assert!(String::from_utf8_lossy(&human.stderr).contains("svc/bad.ts:2:22"));
}

#[test]
fn syntax_error_is_an_error_and_the_rest_is_analyzed() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "svc/good.ts", TOPIC);
    // On an import chain to a topic: a file that cannot hold a fact is not parsed.
    write(tmp.path(), "svc/bad.ts", "import \"./good\";\nexport const = ;\n");
    let out = run(tmp.path(), &["analyze", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    assert_eq!(codes(&doc), ["BB0002"]);
    assert_eq!(doc["diagnostics"][0]["span"]["file"], "svc/bad.ts");
    assert_eq!(doc["topics"][0]["name"], "t");
}

#[cfg(unix)]
#[test]
fn symlink_loop_and_links_out_of_the_root_are_skipped_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    write(&app, "svc/a.ts", TOPIC);
    write(tmp.path(), "outside/x.ts", TOPIC.replace("\"t\", {", "\"outside\", {"));
    std::os::unix::fs::symlink("..", app.join("svc/loop")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("outside"), app.join("linked-outside")).unwrap();
    // A link to nothing is skipped with a note.
    std::os::unix::fs::symlink(app.join("svc/missing.ts"), app.join("svc/dangling.ts")).unwrap();
    // A link to a file inside the root: the file is read once.
    std::os::unix::fs::symlink(app.join("svc/a.ts"), app.join("alias.ts")).unwrap();
    let out = run(&app, &["analyze", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let doc = json(&out);
    assert_eq!(codes(&doc), ["BB0005", "BB0006", "BB0014"], "{}", doc["diagnostics"]);
    assert!(doc["diagnostics"].as_array().unwrap().iter().all(|d| d["severity"] == "note"));
    let topics: Vec<_> =
        doc["topics"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(topics, ["t"], "nothing read twice, nothing read from outside");
}

#[test]
fn ten_megabyte_file_is_analyzed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut big = String::with_capacity(11 << 20);
    let mut i = 0;
    while big.len() < 10 << 20 {
        big.push_str(&format!(
            "export function f{i}(a: number, b: string): string {{ return `${{a}}-${{b}}-{i}`; }}\n"
        ));
        i += 1;
    }
    big.push_str(TOPIC);
    write(tmp.path(), "svc/big.ts", &big);
    let out = run(tmp.path(), &["analyze", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let doc = json(&out);
    assert_eq!(doc["topics"][0]["name"], "t");
    assert!(doc["topics"][0]["span"]["line"].as_u64().unwrap() > 100_000);
}

#[test]
fn files_nested_too_deeply_are_errors_not_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "svc/good.ts", TOPIC);
    // Each of these overflowed the parser's or the tree's recursion before files were checked.
    let deep = [
        (
            "svc/parens.ts",
            format!("export const p = {}1{};\n", "(".repeat(200_000), ")".repeat(200_000)),
        ),
        ("svc/nots.ts", format!("export const n = {}true;\n", "!".repeat(1_000_000))),
        ("svc/arrows.ts", format!("export const a = {}1;\n", "a=>".repeat(150_000))),
        ("svc/chain.ts", format!("export const c = a{};\n", ".b".repeat(4_000_000))),
    ];
    for (rel, text) in &deep {
        // Each imports the topic's file, so the pre-filter keeps it for the parser.
        write(tmp.path(), rel, format!("{text}import \"./good\";\n"));
    }
    // Deep, but within bounds: analyzed, the publish at the bottom is found.
    let callbacks = format!(
        "import {{ t }} from \"./good\";\nexport const h = (f: (g: unknown) => void) => {}t.publish({{ id: {} }}){};\n",
        "f(() => ".repeat(2_000),
        "\"1\"",
        ")".repeat(2_000)
    );
    write(tmp.path(), "svc/callbacks.ts", callbacks);
    let out = busbar()
        .current_dir(tmp.path())
        .args(["analyze", "--format", "json"])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    assert_eq!(codes(&doc), ["BB0012"; 4], "{}", doc["diagnostics"]);
    let files: Vec<_> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["span"]["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["svc/arrows.ts", "svc/chain.ts", "svc/nots.ts", "svc/parens.ts"]);
    assert_eq!(doc["topics"][0]["name"], "t", "the other files are analyzed");
    let publish_sites: Vec<_> = doc["topics"][0]["publishers"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file"].as_str().unwrap())
        .collect();
    assert_eq!(publish_sites, ["svc/callbacks.ts", "svc/good.ts"]);
    // A line of megabytes is located, not printed.
    let human = run(tmp.path(), &["analyze"]);
    let stderr = String::from_utf8_lossy(&human.stderr);
    assert!(stderr.contains("svc/parens.ts:1:1 (the line is too long to show)"), "{stderr}");
    assert!(stderr.len() < 10_000, "{} bytes of stderr", stderr.len());
}

#[test]
fn output_is_byte_identical_across_runs_and_thread_counts() {
    let dir = example();
    let reference = run(&dir, &["analyze", "--format", "json", "--threads", "1"]);
    assert_eq!(reference.status.code(), Some(0));
    for threads in ["2", "4", "8"] {
        let out = run(&dir, &["analyze", "--format", "json", "--threads", threads]);
        assert_eq!(out.stdout, reference.stdout, "--threads {threads}");
    }
    for env in ["1", "3"] {
        let out = busbar()
            .current_dir(&dir)
            .env("RAYON_NUM_THREADS", env)
            .args(["analyze", "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(out.stdout, reference.stdout, "RAYON_NUM_THREADS={env}");
    }
    let human_a = run(&dir, &["analyze", "--threads", "1"]);
    let human_b = run(&dir, &["analyze", "--threads", "5"]);
    assert_eq!((human_a.stdout, human_a.stderr), (human_b.stdout, human_b.stderr));
}

#[test]
fn show_suppressed_lists_silenced_findings() {
    let out = run(&example(), &["analyze", "--format", "json", "--show-suppressed"]);
    let doc = json(&out);
    let suppressed = doc["suppressed"].as_array().unwrap();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["code"], "BB0402");
    assert_eq!(suppressed[0]["suppressedBy"]["kind"], "comment");
    assert!(suppressed[0]["suppressedBy"]["reason"].as_str().unwrap().contains("compliance"));
    let plain = json(&run(&example(), &["analyze", "--format", "json"]));
    assert!(plain.get("suppressed").is_none(), "only with --show-suppressed");
}

#[test]
fn plan_writes_plan_json_and_nothing_on_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "svc/a.ts", TOPIC);
    let out = run(tmp.path(), &["plan", ".", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/plan.json")).unwrap())
            .unwrap();
    let targets: Vec<_> =
        plan["plans"].as_array().unwrap().iter().map(|p| p["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["aws", "gcp", "dapr"]);
    // The same plan on stdout.
    let printed = run(tmp.path(), &["plan", "."]);
    assert_eq!(
        printed.stdout,
        std::fs::read(tmp.path().join("out/plan.json")).unwrap(),
        "--out writes what stdout shows"
    );

    // An app with an error: exit 1, diagnostics, and no file at all.
    let bad = tempfile::tempdir().unwrap();
    write(
        bad.path(),
        "svc/a.ts",
        TOPIC.replace("handler: async () => {}", "handler: async () => {}, ackDeadline: \"13h\""),
    );
    let out = run(bad.path(), &["plan", ".", "--target", "aws", "--out", "out"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[BB0502]"), "{stderr}");
    assert!(stderr.contains("nothing written"), "{stderr}");
    assert!(!bad.path().join("out").exists(), "nothing is written when the app has errors");
    // GCP clamps the same deadline with a warning: a plan is written.
    let gcp = run(bad.path(), &["plan", ".", "--target", "gcp", "--out", "out"]);
    assert_eq!(gcp.status.code(), Some(0), "{}", String::from_utf8_lossy(&gcp.stderr));
    assert!(String::from_utf8_lossy(&gcp.stderr).contains("warning[BB0501]"));
    assert!(bad.path().join("out/plan.json").exists());
}

#[test]
fn plan_explain_lists_grants_with_their_code() {
    let dir = example();
    let out = run(&dir, &["plan", ".", "--explain", "payments"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sns:Publish on payment-captured.fifo"), "{text}");
    assert!(
        text.contains("roles/pubsub.subscriber, roles/pubsub.viewer on order-placed--charge-order"),
        "{text}"
    );
    assert!(text.contains("payments/charge.ts:12:14"), "{text}");
    let unknown = run(&dir, &["plan", ".", "--explain", "nobody"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("analytics, fraud, notifications"));
    // The Rust service: its grants point at its Rust code.
    let out = run(&dir, &["plan", ".", "--explain", "fraud"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sns:Publish on fraud-verdict.fifo"), "{text}");
    assert!(text.contains("fraud/src/screening.rs:66:5"), "{text}");
    assert!(
        text.contains("roles/pubsub.subscriber, roles/pubsub.viewer on order-placed--screen-order"),
        "{text}"
    );
    let missing = run(&dir, &["plan", "no/such/dir"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn build_writes_every_output_and_nothing_on_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = busbar()
        .current_dir(example())
        .args(["build", ".", "--out"])
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mut files: Vec<String> = Vec::new();
    let mut stack = vec![tmp.path().join("out")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(tmp.path().join("out")).unwrap();
                files.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    files.sort();
    assert_eq!(
        files,
        [
            "asyncapi.yaml",
            "dapr/component.yaml",
            "dapr/subscriptions.yaml",
            "diagram.dot",
            "diagram.html",
            "diagram.mmd",
            "diagram.svg",
            "plan.json",
            "runtime-config.json",
            "terraform/aws/iam.tf",
            "terraform/aws/main.tf",
            "terraform/aws/outputs.tf",
            "terraform/aws/variables.tf",
            "terraform/aws/versions.tf",
            "terraform/gcp/iam.tf",
            "terraform/gcp/main.tf",
            "terraform/gcp/outputs.tf",
            "terraform/gcp/variables.tf",
            "terraform/gcp/versions.tf",
        ]
    );
    let runtime_text = std::fs::read_to_string(tmp.path().join("out/runtime-config.json")).unwrap();
    // The runtime reads it back as its contract.
    let contract = busbar_model::runtime::RuntimeConfig::from_json(&runtime_text).unwrap();
    assert_eq!(contract.version, busbar_model::runtime::RUNTIME_CONFIG_VERSION);
    let dlq = &contract.topic("order-placed").unwrap().subscriptions[0].dead_letter_topic;
    assert!(dlq.starts_with("order-placed--") && dlq.ends_with("--dlq"), "{dlq}");
    let runtime: Value = serde_json::from_str(&runtime_text).unwrap();
    assert_eq!(runtime["topics"].as_array().unwrap().len(), 7);
    let users = runtime["services"].as_array().unwrap().iter().find(|s| s["service"] == "users");
    assert_eq!(users.unwrap()["publish"], serde_json::json!(["user-signed-up"]));
    // The AsyncAPI document is what `busbar asyncapi` prints.
    let printed = run(&example(), &["asyncapi", "."]);
    assert_eq!(printed.status.code(), Some(0));
    assert_eq!(printed.stdout, std::fs::read(tmp.path().join("out/asyncapi.yaml")).unwrap());
    // The diagrams are what `busbar diagram` prints.
    for (format, file) in [("mermaid", "mmd"), ("dot", "dot"), ("svg", "svg"), ("html", "html")] {
        let printed = run(&example(), &["diagram", ".", "--format", format]);
        assert_eq!(printed.status.code(), Some(0));
        assert_eq!(
            printed.stdout,
            std::fs::read(tmp.path().join("out").join(format!("diagram.{file}"))).unwrap(),
            "diagram.{file}"
        );
    }

    // Byte-identical across runs.
    let again = tempfile::tempdir().unwrap();
    let second = busbar()
        .current_dir(example())
        .args(["build", ".", "--out"])
        .arg(again.path())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(0));
    for file in &files {
        assert_eq!(
            std::fs::read(tmp.path().join("out").join(file)).unwrap(),
            std::fs::read(again.path().join(file)).unwrap(),
            "{file} differs between runs"
        );
    }

    let bad = tempfile::tempdir().unwrap();
    // A broken file that names the pubsub module (one that cannot hold a fact is not parsed).
    write(
        bad.path(),
        "svc/a.ts",
        "import { Topic } from \"encore.dev/pubsub\";\nexport const = ;\n",
    );
    let failed = run(bad.path(), &["build", ".", "--out", "out"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(!bad.path().join("out").exists(), "nothing is written when the app has errors");
}

#[test]
fn plan_against_a_bad_file_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "svc/a.ts", TOPIC);
    write(tmp.path(), "old.json", "{ not json");
    let out = run(tmp.path(), &["plan", ".", "--against", "old.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a busbar plan.json"));
    let missing = run(tmp.path(), &["plan", ".", "--against", "nope.json"]);
    assert_eq!(missing.status.code(), Some(2));
    // Against itself: nothing is lost, no warning.
    let first = run(tmp.path(), &["plan", ".", "--out", "old"]);
    assert_eq!(first.status.code(), Some(0));
    let same = run(tmp.path(), &["plan", ".", "--against", "old/plan.json"]);
    assert_eq!(same.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&same.stderr).contains("BB0505"));
}

/// The example app's committed busbar.lock matches its code: the audit passes, and writing the
/// lockfile again changes nothing.
#[test]
fn example_app_passes_its_audit() {
    let out = run(&example(), &["audit", "."]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 errors, 0 warnings"));
    let committed = std::fs::read_to_string(example().join("busbar.lock")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let lock = tmp.path().join("busbar.lock");
    let out = run(&example(), &["audit", ".", "--update", "--lock", lock.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(lock).unwrap(), committed);
    for format in ["json", "sarif", "github"] {
        let out = run(&example(), &["audit", ".", "--format", format]);
        assert_eq!(out.status.code(), Some(0), "{format}");
    }
}

/// `busbar dev` serves the Dapr API on the port it is given: a service may publish what its
/// code publishes (204 and a message id) and nothing else (403 naming the grant).
#[test]
fn dev_serves_the_dapr_api_and_enforces_the_graph() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = spawn_dev(&example(), port, Some(data.path()), &["--no-start"], None);
    let base = format!("http://127.0.0.1:{port}");
    let agent = agent();
    let up = wait_healthy(port);
    let publish = |app: &str, topic: &str| {
        agent
            .post(format!("{base}/v1.0/publish/pubsub/{topic}"))
            .header("dapr-api-token", generated_token(data.path(), app))
            .header("content-type", "application/json")
            .send(r#"{"userId":"u1","email":"a@b.c","source":"web"}"#)
            .unwrap()
    };
    let allowed = up.then(|| publish("users", "user-signed-up"));
    let denied = up.then(|| publish("shipping", "user-signed-up"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "busbar dev answered /v1.0/healthz");
    let allowed = allowed.unwrap();
    assert_eq!(allowed.status(), 204);
    assert!(allowed.headers().get("busbar-message-id").is_some());
    let mut denied = denied.unwrap();
    assert_eq!(denied.status(), 403);
    let text = denied.body_mut().read_to_string().unwrap();
    assert!(text.contains("service `shipping` may not publish to `user-signed-up`"), "{text}");
}

/// `busbar dev` prints each service's token (generated into the data dir unless busbar.toml has
/// one) and the port of its own, and both identify the service.
#[test]
fn dev_prints_tokens_and_serves_each_service_port() {
    let tmp = tempfile::tempdir().unwrap();
    let (port, own) = (free_port(), free_port());
    write(tmp.path(), "busbar.toml", format!("[dev.services.svc]\nport = {own}\n"));
    write(tmp.path(), "svc/topics.ts", TOPIC);
    let log = tmp.path().join("dev.log");
    let mut child = spawn_dev(tmp.path(), port, None, &[], Some(&log));
    let agent = agent();
    let up = wait_healthy(own);
    // The sidecar may answer before busbar dev has written its start lines: wait for them.
    let mut printed = String::new();
    for _ in 0..200 {
        printed = std::fs::read_to_string(&log).unwrap_or_default();
        if printed.contains("DAPR_API_TOKEN=") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let token = printed
        .split_once("DAPR_API_TOKEN=")
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let publish = |port: u16, token: Option<&str>| {
        let mut req = agent
            .post(format!("http://127.0.0.1:{port}/v1.0/publish/pubsub/t"))
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("dapr-api-token", t);
        }
        req.send(r#"{"id":"1"}"#).map(|r| r.status().as_u16()).unwrap_or(0)
    };
    let statuses = up.then(|| {
        [
            publish(own, Some(&token)),
            publish(own, None),
            publish(port, Some(&token)),
            publish(port, None),
        ]
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "busbar dev answered on the service's port\n{printed}");
    assert!(printed.contains(&format!("svc  DAPR_HTTP_PORT={own}  DAPR_API_TOKEN=")), "{printed}");
    assert!(printed.contains("(generated, in") && printed.contains("tokens.json"), "{printed}");
    assert_eq!(token.len(), 32, "{printed}");
    let stored = std::fs::read_to_string(tmp.path().join(".busbar/data/tokens.json")).unwrap();
    assert!(stored.contains(&token), "{stored}");
    assert_eq!(
        statuses,
        Some([204, 403, 204, 403]),
        "own port with its token and without, shared port with and without\n{printed}"
    );
}

/// A disk below `--min-free-disk` refuses publishes with 507 and stores nothing; the sidecar
/// keeps serving. (A petabyte of required free space stands in for a full disk.)
#[test]
fn dev_answers_507_when_the_disk_is_at_its_reserve() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = ["--min-free-disk", "1000000000", "--no-start"];
    let mut child = spawn_dev(&example(), port, Some(data.path()), &extra, None);
    let base = format!("http://127.0.0.1:{port}");
    let agent = agent();
    let up = wait_healthy(port);
    let answer = up.then(|| {
        let mut r = agent
            .post(format!("{base}/v1.0/publish/pubsub/user-signed-up"))
            .header("dapr-api-token", generated_token(data.path(), "users"))
            .header("content-type", "application/json")
            .send(r#"{"userId":"u1","email":"a@b.c","source":"web"}"#)
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    });
    let still_up = up && wait_healthy(port);
    let metrics = up
        .then(|| agent.get(format!("{base}/metrics")).call().unwrap().body_mut().read_to_string())
        .and_then(Result::ok)
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "busbar dev answered /v1.0/healthz");
    let (status, text) = answer.unwrap();
    assert_eq!(status, 507, "{text}");
    assert!(text.contains("the disk is full"), "{text}");
    assert!(still_up, "still serving after a 507");
    let backlogs: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("busbar_backlog{")).collect();
    assert!(
        !backlogs.is_empty() && backlogs.iter().all(|l| l.ends_with(" 0")),
        "nothing stored:\n{metrics}"
    );
}

/// A service that answers 404 to everything: its deliveries become dead letters.
fn answer_404() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    port
}

/// `busbar dlq list|release`: through the admin API of a running `busbar dev`, then on its data
/// directory once it is gone.
#[test]
fn dlq_lists_and_releases_dead_letters_online_and_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    busbar_testdata::write_orders_billing_app(&app).unwrap();
    write(
        &app,
        "busbar.toml",
        format!(
            "[dev.services.orders]\ntoken = \"orders-token\"\n[dev.services.billing]\nurl = \"http://127.0.0.1:{}\"\n",
            answer_404()
        ),
    );
    let data = tmp.path().join("data");
    let port = free_port().to_string();
    let log = tmp.path().join("dev.log");
    let mut child = spawn_dev(&app, port.parse().unwrap(), Some(&data), &[], Some(&log));
    let agent = agent();
    let base = format!("http://127.0.0.1:{port}");
    let mut published = None;
    for _ in 0..300 {
        if let Ok(r) = agent
            .post(format!("{base}/v1.0/publish/pubsub/order-placed"))
            .header("dapr-api-token", "orders-token")
            .send(r#"{"id":"1"}"#)
        {
            published = Some(r.status().as_u16());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let dlq = |args: &[&str]| {
        let mut all = vec!["dlq"];
        all.extend_from_slice(args);
        all.extend(["--port", port.as_str(), "--data", data.to_str().unwrap()]);
        run(&app, &all)
    };
    let mut online = None;
    for _ in 0..100 {
        let out = dlq(&["list"]);
        if String::from_utf8_lossy(&out.stdout).contains("1 dead letter") {
            online = Some(out);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(published, Some(204));
    let online = online.expect("the dead letter shows through the running sidecar");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("delivery failed: subscription order-placed/charge message ")
            && logged.contains("attempt 1: the service answered 404 (dead-lettered)"),
        "{logged}"
    );
    assert!(String::from_utf8_lossy(&online.stderr).contains("through busbar dev"));
    assert!(
        String::from_utf8_lossy(&online.stdout).contains("404"),
        "{}",
        String::from_utf8_lossy(&online.stdout)
    );

    let offline = dlq(&["list", "--subscription", "charge"]);
    assert_eq!(offline.status.code(), Some(0), "{}", String::from_utf8_lossy(&offline.stderr));
    assert!(String::from_utf8_lossy(&offline.stderr).contains("no busbar dev holds it"));
    assert!(
        String::from_utf8_lossy(&offline.stdout).contains("order-placed/charge: 1 dead letter")
    );
    let released = dlq(&["release", "--subscription", "order-placed/charge"]);
    assert!(
        String::from_utf8_lossy(&released.stdout).contains("order-placed/charge: released 1"),
        "{}",
        String::from_utf8_lossy(&released.stdout)
    );
    let after = dlq(&["list"]);
    assert!(String::from_utf8_lossy(&after.stdout).contains("order-placed/charge: 0 dead letters"));
    let unknown = dlq(&["list", "--subscription", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("there is no subscription `nope`; the app has: order-placed/charge")
    );
}

/// `busbar dlq --data DIR` acts only through the busbar dev that holds DIR: pointed at the port
/// of a busbar dev of another directory, it refuses; without `--port` it finds the right one
/// (recorded in DIR); and a second busbar dev on DIR is refused, naming the first's pid.
#[test]
fn dlq_never_acts_through_the_broker_of_another_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    busbar_testdata::write_orders_billing_app(&app).unwrap();
    let (data_a, data_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = spawn_dev(&app, port_a, Some(&data_a), &[], None);
    let mut b = spawn_dev(&app, port_b, Some(&data_b), &[], None);
    let up = wait_healthy(port_a) && wait_healthy(port_b);
    let dlq = |data: &Path, port: Option<u16>| {
        let mut args =
            vec!["dlq".to_string(), "list".into(), "--data".into(), data.display().to_string()];
        if let Some(p) = port {
            args.extend(["--port".to_string(), p.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&app, &args)
    };
    let wrong = up.then(|| dlq(&data_a, Some(port_b)));
    let found = up.then(|| dlq(&data_a, None));
    let second = up.then(|| {
        let mut c =
            spawn_dev(&app, free_port(), Some(&data_a), &[], Some(&tmp.path().join("second.log")));
        c.wait().unwrap()
    });
    for child in [&mut a, &mut b] {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(up, "both busbar dev started");
    let wrong = wrong.unwrap();
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(1), "{said}");
    assert!(said.contains("not the busbar dev of") || said.contains("serves"), "{said}");
    let found = found.unwrap();
    assert_eq!(found.status.code(), Some(0), "{}", String::from_utf8_lossy(&found.stderr));
    assert!(
        String::from_utf8_lossy(&found.stderr)
            .contains(&format!("through busbar dev on 127.0.0.1:{port_a}")),
        "{}",
        String::from_utf8_lossy(&found.stderr)
    );
    assert!(!second.unwrap().success(), "a second busbar dev on the same data directory started");
    let log = std::fs::read_to_string(tmp.path().join("second.log")).unwrap();
    assert!(log.contains("is in use by busbar (pid"), "{log}");
}
