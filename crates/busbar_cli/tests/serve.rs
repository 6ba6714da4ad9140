//! `busbar serve --backend aws` as a process, against a moto server the test starts with the
//! app's plan created on it as Terraform would (`busbar_e2e::aws::provision`): the official Dapr
//! JavaScript SDK publishes through the orders service's sidecar and receives through the
//! billing service's; a publish billing has no grant for is 403; what cannot be served is
//! refused before the port opens, naming the resource.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use busbar_e2e::server::Server;

mod support;
use support::{agent, free_port, tool, wait_healthy};

/// The orders/billing app under `root/app`, planned for AWS and created on a fresh moto.
fn provisioned(root: &Path, moto: &Path) -> (PathBuf, Server) {
    let app = root.join("app");
    busbar_testdata::write_orders_billing_app(&app).unwrap();
    std::fs::write(app.join("busbar.toml"), "[plan]\nprefix = \"serve-\"\n").unwrap();
    let server = Server::moto(moto).unwrap();
    support::provision_aws(&app, &server.endpoint);
    (app, server)
}

/// `busbar serve APP --service NAME --backend aws --port PORT EXTRA...` against `endpoint`.
fn spawn_serve(
    app: &Path,
    service: &str,
    port: u16,
    endpoint: &str,
    token: &str,
    extra: &[&str],
    log: &Path,
) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("busbar"))
        .arg("serve")
        .arg(app)
        .args(["--service", service, "--backend", "aws", "--port", &port.to_string()])
        .args(extra)
        .arg("--data")
        .arg(log.with_extension("data"))
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "serve")
        .env("AWS_SECRET_ACCESS_KEY", "serve")
        .env("DAPR_API_TOKEN", token)
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/dapr/check-sdk.mjs")
}

#[test]
#[allow(clippy::print_stderr, reason = "the test shows what the SDK saw")]
fn the_dapr_javascript_sdk_runs_against_busbar_serve_on_aws() {
    let (Some(moto), Some(node), Some(sdk)) =
        (tool("BUSBAR_MOTO"), tool("BUSBAR_NODE"), tool("BUSBAR_DAPR_SDK"))
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (app, server) = provisioned(tmp.path(), &moto);
    let (orders_port, billing_port, app_port) = (free_port(), free_port(), free_port());
    let (orders_log, billing_log) = (tmp.path().join("orders.log"), tmp.path().join("billing.log"));
    let mut orders = spawn_serve(
        &app,
        "orders",
        orders_port,
        &server.endpoint,
        "orders-token",
        &[],
        &orders_log,
    );
    let app_url = format!("http://127.0.0.1:{app_port}");
    let extra = ["--app-url", app_url.as_str()];
    let mut billing = spawn_serve(
        &app,
        "billing",
        billing_port,
        &server.endpoint,
        "billing-token",
        &extra,
        &billing_log,
    );
    let up = wait_healthy(orders_port) && wait_healthy(billing_port);
    let check = up.then(|| {
        Command::new(&node)
            .arg(script())
            .arg("--dapr")
            .arg(&sdk)
            .args(["--sidecar-port", &orders_port.to_string()])
            .args(["--subscriber-sidecar-port", &billing_port.to_string()])
            .args(["--app-port", &app_port.to_string()])
            .args(["--topic", "order-placed"])
            .args(["--publisher-token", "orders-token"])
            .args(["--denied-token", "billing-token"])
            .args(["--data", r#"{"id":"sdk-1"}"#])
            .args(["--invalid-data", r#"{"id":7}"#])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    });
    for child in [&mut orders, &mut billing] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let logs = format!(
        "--- orders\n{}\n--- billing\n{}",
        std::fs::read_to_string(&orders_log).unwrap_or_default(),
        std::fs::read_to_string(&billing_log).unwrap_or_default()
    );
    assert!(up, "busbar serve did not start:\n{logs}");
    let check = check.unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "check-sdk.mjs failed\n--- its stderr\n{stderr}\n{logs}");
    let result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["denied"]["status"], 403, "{result}");
    assert_eq!(result["invalid"]["status"], 400, "{result}");
    let id = result["published"]["messageId"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{result}");
    assert_eq!(result["delivered"]["id"], id, "delivered through SNS and SQS: {result}");
    eprintln!("{result}");
}

#[test]
fn busbar_serve_answers_health_metadata_and_metrics_and_stops_on_sigterm() {
    let Some(moto) = tool("BUSBAR_MOTO") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (app, server) = provisioned(tmp.path(), &moto);
    let port = free_port();
    let log = tmp.path().join("orders.log");
    let mut orders = spawn_serve(&app, "orders", port, &server.endpoint, "t", &[], &log);
    assert!(wait_healthy(port), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    let agent = agent();
    let base = format!("http://127.0.0.1:{port}");
    let metadata = agent.get(format!("{base}/v1.0/metadata")).call().unwrap();
    assert_eq!(metadata.status(), 200);
    let metrics = agent.get(format!("{base}/metrics")).call().unwrap();
    assert_eq!(metrics.status(), 200);
    // Without the service's token: refused before any broker call.
    let anonymous = agent
        .post(format!("{base}/v1.0/publish/pubsub/order-placed"))
        .content_type("application/json")
        .send(r#"{"id":"x"}"#)
        .unwrap();
    assert_eq!(anonymous.status(), 403, "a request without DAPR_API_TOKEN");
    let published = agent
        .post(format!("{base}/v1.0/publish/pubsub/order-placed"))
        .header("dapr-api-token", "t")
        .content_type("application/json")
        .send(r#"{"id":"x"}"#)
        .unwrap();
    assert_eq!(published.status(), 204);
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&orders),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = orders.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{text}");
    assert!(text.contains("stopping after the deliveries in flight"), "{text}");
}

#[test]
fn what_cannot_be_served_is_refused_before_the_port_opens_naming_the_resource() {
    let Some(moto) = tool("BUSBAR_MOTO") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (app, server) = provisioned(tmp.path(), &moto);
    let run = |extra: &[&str], endpoint: &str| {
        let log = tmp.path().join("refused.log");
        let port = free_port();
        let mut child = spawn_serve(&app, "billing", port, endpoint, "t", extra, &log);
        let status = child.wait().unwrap();
        (status.code(), std::fs::read_to_string(&log).unwrap_or_default())
    };
    let url = ["--app-url", "http://127.0.0.1:9"];
    // Another prefix: the resources are not there.
    let (code, text) = run(&["--prefix", "other-", url[0], url[1]], &server.endpoint);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("subscription `charge` of `order-placed`"), "{text}");
    assert!(text.contains("other-order-placed--charge"), "{text}");
    // The endpoint away.
    let away = format!("http://127.0.0.1:{}", free_port());
    let (code, text) = run(&url, &away);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("serve-order-placed--charge"), "{text}");
    // A service with subscriptions but nowhere to deliver them.
    let (code, text) = run(&[], &server.endpoint);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--app-url"), "{text}");
}

#[test]
fn busbar_dlq_lists_and_releases_the_dead_letter_queues_on_aws() {
    let Some(moto) = tool("BUSBAR_MOTO") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (app, server) = provisioned(tmp.path(), &moto);
    let dlq = |args: &[&str]| {
        let out = Command::new(assert_cmd::cargo::cargo_bin("busbar"))
            .arg("dlq")
            .args(args)
            .arg(&app)
            .args(["--backend", "aws"])
            .env("AWS_ENDPOINT_URL", &server.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "dlq")
            .env("AWS_SECRET_ACCESS_KEY", "dlq")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    assert_eq!(dlq(&["list"]), "order-placed/charge: 0 dead letters\n");
    assert_eq!(dlq(&["release"]), "order-placed/charge: released 0\n");
}
