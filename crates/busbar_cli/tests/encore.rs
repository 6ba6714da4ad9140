//! Encore's `infra.config.json` for self-hosted Encore apps, read back two ways on the example
//! app: the `encore_infra_config` output of each generated Terraform module, evaluated by
//! Terraform itself (the module's outputs with every resource attribute replaced by a value of
//! its shape, applied with no resources); and `busbar build --outputs` on that module's
//! `terraform output -json`. Both must be the same file, with every topic and subscription of
//! the app, and `busbar build --outputs` refuses outputs of another app.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;
use busbar_plan::{EncoreInfraConfig, EncorePubsub};
use serde_json::Value;

mod support;
use support::tool;

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
}

/// The generated module's variables and outputs with each `aws_*`/`google_*` attribute replaced
/// by a literal of the shape the provider gives it (ARNs, queue URLs, names, full IDs), applied
/// by Terraform (nothing to create, so no provider is needed); `terraform output -json`.
fn evaluated_outputs(terraform: &Path, module: &Path, work: &Path) -> String {
    std::fs::create_dir_all(work).unwrap();
    std::fs::copy(module.join("variables.tf"), work.join("variables.tf")).unwrap();
    let outputs = std::fs::read_to_string(module.join("outputs.tf")).unwrap();
    let reference = regex::Regex::new(
        r"\b(aws_[a-z_]+|google_[a-z_]+)\.([A-Za-z0-9_-]+)\.(arn|id|name|email)\b",
    )
    .unwrap();
    let literal = reference.replace_all(&outputs, |c: &regex::Captures<'_>| {
        let (kind, address, attribute) = (&c[1], &c[2], &c[3]);
        let value = match (kind, attribute) {
            ("aws_sqs_queue", "id") => {
                format!("https://sqs.eu-west-1.amazonaws.com/123456789012/shop-{address}")
            }
            (k, "arn") => format!(
                "arn:aws:{}:eu-west-1:123456789012:shop-{address}",
                k.trim_start_matches("aws_").split('_').next().unwrap()
            ),
            ("google_pubsub_topic", "id") => format!("projects/probe/topics/shop-{address}"),
            ("google_pubsub_subscription", "id") => {
                format!("projects/probe/subscriptions/shop-{address}")
            }
            (_, "email") => format!("{address}@probe.iam.gserviceaccount.com"),
            _ => format!("shop-{address}"),
        };
        format!("\"{value}\"")
    });
    // The GCP module's service accounts are a local of its IAM file.
    let literal = literal.replace("local.service_accounts", "{}");
    std::fs::write(work.join("outputs.tf"), literal.as_bytes()).unwrap();
    let run = |args: &[&str]| {
        let out = Process::new(terraform)
            .current_dir(work)
            .args(args)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("terraform runs");
        assert!(
            out.status.success(),
            "terraform {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["init", "-input=false", "-no-color"]);
    let var = ["-var", "region=eu-west-1", "-var", "project=probe"];
    let var: &[&str] = if module.ends_with("aws") { &var[..2] } else { &var[2..] };
    let mut apply = vec!["apply", "-input=false", "-no-color", "-auto-approve"];
    apply.extend(var);
    run(&apply);
    run(&["output", "-json"])
}

#[test]
fn the_encore_infra_config_of_the_terraform_output_and_of_build_outputs_agree() {
    let Some(terraform) = tool("BUSBAR_TERRAFORM") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    busbar().current_dir(example()).args(["build", ".", "--out"]).arg(&out).assert().success();
    let runtime: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("runtime-config.json")).unwrap())
            .unwrap();
    let subscriptions: usize = runtime["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["subscriptions"].as_array().unwrap().len())
        .sum();
    for target in ["aws", "gcp"] {
        let outputs_text = evaluated_outputs(
            &terraform,
            &out.join("terraform").join(target),
            &tmp.path().join(target),
        );
        let outputs: Value = serde_json::from_str(&outputs_text).unwrap();
        let from_terraform: EncoreInfraConfig =
            serde_json::from_str(outputs["encore_infra_config"]["value"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{target}: Terraform's encore_infra_config: {e}"));
        let outputs_file = tmp.path().join(format!("{target}-outputs.json"));
        std::fs::write(&outputs_file, &outputs_text).unwrap();
        let again = tmp.path().join(format!("{target}-out"));
        busbar()
            .current_dir(example())
            .args(["build", ".", "--out"])
            .arg(&again)
            .arg("--outputs")
            .arg(&outputs_file)
            .assert()
            .success();
        let written = std::fs::read_to_string(again.join("encore/infra.config.json")).unwrap();
        let from_busbar: EncoreInfraConfig = serde_json::from_str(&written).unwrap();
        assert_eq!(
            from_busbar, from_terraform,
            "{target}: busbar build --outputs and Terraform differ"
        );
        assert_eq!(from_busbar.schema, "https://encore.dev/schemas/infra.schema.json");
        let (topics, found): (usize, usize) = match &from_busbar.pubsub[..] {
            [EncorePubsub::Aws { topics }] => {
                let t = &topics["order-placed"];
                assert_eq!(t.arn, "arn:aws:sns:eu-west-1:123456789012:shop-order-placed");
                assert_eq!(
                    t.subscriptions["charge-order"].url,
                    "https://sqs.eu-west-1.amazonaws.com/123456789012/shop-order-placed--charge-order"
                );
                (topics.len(), topics.values().map(|t| t.subscriptions.len()).sum())
            }
            [EncorePubsub::Gcp { project_id, topics }] => {
                assert_eq!(project_id, "probe");
                let t = &topics["order-placed"];
                assert_eq!(t.name, "shop-order-placed");
                assert_eq!(t.subscriptions["charge-order"].name, "shop-order-placed--charge-order");
                (topics.len(), topics.values().map(|t| t.subscriptions.len()).sum())
            }
            other => panic!("{target}: one provider of the target, not {other:?}"),
        };
        assert_eq!(topics, runtime["topics"].as_array().unwrap().len(), "{target}: every topic");
        assert_eq!(found, subscriptions, "{target}: every subscription");
    }
}

#[test]
fn build_outputs_refuses_outputs_that_are_not_the_apps() {
    let tmp = tempfile::tempdir().unwrap();
    let outputs = tmp.path().join("outputs.json");
    let runtime = serde_json::json!({
        "version": 1, "target": "aws", "region": "eu-west-1", "topics": {},
        "subscriptions": [],
    });
    let write = |topic_arns: Value| {
        let text = serde_json::json!({
            "topic_arns": { "value": topic_arns },
            "busbar_runtime_config": { "value": runtime.to_string() },
        });
        std::fs::write(&outputs, text.to_string()).unwrap();
    };
    // Another app's outputs: one topic the example does not declare, none of its own.
    write(serde_json::json!({ "elsewhere": "arn:aws:sns:eu-west-1:1:elsewhere" }));
    let out = tmp.path().join("out");
    // `busbar build --outputs` refuses the file: exit 2; its stderr.
    let refused = || {
        let assert = busbar()
            .current_dir(example())
            .args(["build", ".", "--out"])
            .arg(&out)
            .arg("--outputs")
            .arg(&outputs)
            .assert()
            .code(2);
        String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
    };
    let stderr = refused();
    assert!(
        stderr.contains("--outputs") && stderr.contains("they have no topic `audit-log`"),
        "{stderr}"
    );
    assert!(stderr.contains("terraform apply"), "{stderr}");
    assert!(!out.exists(), "nothing is written");

    std::fs::write(&outputs, "{\"something\": {}}").unwrap();
    let stderr = refused();
    assert!(stderr.contains("neither `topic_arns` nor `topic_names`"), "{stderr}");

    for (text, says) in [("{ not json", "it is not JSON"), ("\u{0}\u{ff}", "not")] {
        std::fs::write(&outputs, text).unwrap();
        let stderr = refused();
        assert!(stderr.contains(says), "{stderr}");
        assert!(!out.exists(), "nothing is written");
    }
}
