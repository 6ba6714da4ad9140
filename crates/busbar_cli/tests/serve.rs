//! `busbar serve --backend aws|gcp` as a process, against a moto server the test starts (or a
//! project of its own on the Pub/Sub emulator `cargo xtask ci` starts) with the app's plan
//! created on it as Terraform would (`busbar_e2e::{aws,gcp}::provision`): the official Dapr
//! JavaScript SDK publishes through the orders service's sidecar and receives through the
//! billing service's; a publish billing has no grant for is 403; what cannot be served is
//! refused before the port opens, naming the resource.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod support;
use support::{Cloud, agent, free_port, tool, wait_healthy};

/// The orders/billing app under `root/app`, planned for AWS and created on a fresh moto.
fn on_aws(root: &Path, moto: &Path) -> (PathBuf, Cloud) {
    let app = app(root);
    let cloud = Cloud::aws(&app, moto);
    (app, cloud)
}

/// The orders/billing app under `root/app`, planned for GCP and created in a fresh project on
/// the emulator at `host`.
fn on_gcp(root: &Path, host: &str) -> (PathBuf, Cloud) {
    let app = app(root);
    let cloud = Cloud::gcp(&app, host);
    (app, cloud)
}

fn app(root: &Path) -> PathBuf {
    let app = root.join("app");
    busbar_testdata::write_orders_billing_app(&app).unwrap();
    std::fs::write(app.join("busbar.toml"), "[plan]\nprefix = \"serve-\"\n").unwrap();
    app
}

/// `busbar serve APP --service NAME --backend B --port PORT EXTRA...` in `env`.
fn spawn_serve(
    app: &Path,
    service: &str,
    port: u16,
    (backend, env): (&str, Vec<(&'static str, String)>),
    token: &str,
    extra: &[&str],
    log: &Path,
) -> Child {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("busbar"));
    command
        .arg("serve")
        .arg(app)
        .args(["--service", service, "--backend", backend, "--port", &port.to_string()])
        .args(extra)
        .arg("--data")
        .arg(log.with_extension("data"))
        .env("DAPR_API_TOKEN", token)
        .env_remove("AWS_PROFILE")
        .env_remove("PUBSUB_EMULATOR_HOST")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS");
    for (k, v) in env {
        command.env(k, v);
    }
    command
        .stdin(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap()
}

fn script() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../testdata/dapr/check-sdk.mjs")
}

#[test]
fn the_dapr_javascript_sdk_runs_against_busbar_serve_on_aws() {
    let Some(moto) = tool("BUSBAR_MOTO") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (app, cloud) = on_aws(tmp.path(), &moto);
    the_dapr_javascript_sdk_runs_against(&app, &cloud, tmp.path());
}

#[test]
fn the_dapr_javascript_sdk_runs_against_busbar_serve_on_gcp() {
    let Some(host) = support::emulator() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (app, cloud) = on_gcp(tmp.path(), &host);
    the_dapr_javascript_sdk_runs_against(&app, &cloud, tmp.path());
}

/// Publishes through the orders sidecar and receives through the billing one, with the SDK.
#[allow(clippy::print_stderr, reason = "the test shows what the SDK saw")]
fn the_dapr_javascript_sdk_runs_against(app: &Path, cloud: &Cloud, tmp: &Path) {
    let (Some(node), Some(sdk)) = (tool("BUSBAR_NODE"), tool("BUSBAR_DAPR_SDK")) else {
        return;
    };
    let app = app.to_path_buf();
    let (orders_port, billing_port, app_port) = (free_port(), free_port(), free_port());
    let (orders_log, billing_log) = (tmp.join("orders.log"), tmp.join("billing.log"));
    let mut orders = spawn_serve(
        &app,
        "orders",
        orders_port,
        (cloud.backend(), cloud.env()),
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
        (cloud.backend(), cloud.env()),
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
    assert_eq!(result["delivered"]["id"], id, "delivered through {}: {result}", cloud.backend());
    eprintln!("{result}");
}

#[test]
fn busbar_serve_answers_health_metadata_and_metrics_and_stops_on_sigterm() {
    let Some(moto) = tool("BUSBAR_MOTO") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (app, cloud) = on_aws(tmp.path(), &moto);
    let port = free_port();
    let log = tmp.path().join("orders.log");
    let env = (cloud.backend(), cloud.env());
    let mut orders = spawn_serve(&app, "orders", port, env, "t", &[], &log);
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
fn what_cannot_be_served_on_aws_is_refused_before_the_port_opens_naming_the_resource() {
    let Some(moto) = tool("BUSBAR_MOTO") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (app, cloud) = on_aws(tmp.path(), &moto);
    refused_naming_the_resource(&app, &cloud, tmp.path());
}

#[test]
fn what_cannot_be_served_on_gcp_is_refused_before_the_port_opens_naming_the_resource() {
    let Some(host) = support::emulator() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (app, cloud) = on_gcp(tmp.path(), &host);
    refused_naming_the_resource(&app, &cloud, tmp.path());
}

/// Another prefix (the resources are not there), the endpoint away, and a subscriber with
/// nowhere to deliver: each refused with what it is about.
fn refused_naming_the_resource(app: &Path, cloud: &Cloud, tmp: &Path) {
    let run = |extra: &[&str], env: Vec<(&'static str, String)>| {
        let log = tmp.join("refused.log");
        let port = free_port();
        let mut child = spawn_serve(app, "billing", port, (cloud.backend(), env), "t", extra, &log);
        let status = child.wait().unwrap();
        (status.code(), std::fs::read_to_string(&log).unwrap_or_default())
    };
    let url = ["--app-url", "http://127.0.0.1:9"];
    let (code, text) = run(&["--prefix", "other-", url[0], url[1]], cloud.env());
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("subscription `charge` of `order-placed`"), "{text}");
    assert!(text.contains("other-order-placed--charge"), "{text}");
    let away = free_port();
    let (code, text) = run(&url, cloud.env_away(away));
    assert_eq!(code, Some(1), "{text}");
    // AWS names the first resource it cannot reach; Pub/Sub's client connects first.
    let named = match cloud {
        Cloud::Aws(_) => "serve-order-placed--charge".to_string(),
        Cloud::Gcp { .. } => format!("127.0.0.1:{away}"),
    };
    assert!(text.contains(&named), "{text}");
    let (code, text) = run(&[], cloud.env());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--app-url"), "{text}");
}

#[test]
fn busbar_dlq_lists_and_releases_a_dead_letter_on_aws() {
    let Some(moto) = tool("BUSBAR_MOTO") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (app, cloud) = on_aws(tmp.path(), &moto);
    dead_letter_listed_and_released(&app, &cloud, tmp.path());
}

#[test]
fn busbar_dlq_lists_and_releases_a_dead_letter_on_gcp() {
    let Some(host) = support::emulator() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (app, cloud) = on_gcp(tmp.path(), &host);
    dead_letter_listed_and_released(&app, &cloud, tmp.path());
}

/// A loopback app whose `charge` handler answers DROP to everything; its port.
fn dropping_app() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let drop = || async { axum::Json(serde_json::json!({ "status": "DROP" })) };
            let app =
                axum::Router::new().route("/busbar/order-placed/charge", axum::routing::post(drop));
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    port
}

/// A message the subscriber DROPs is listed by `busbar dlq list --backend B` with the reason,
/// while the sidecars run; `busbar dlq release` puts it back (the subscriber, still dropping,
/// dead-letters it again, so the sidecars are stopped first) and the list is empty after.
fn dead_letter_listed_and_released(app: &Path, cloud: &Cloud, tmp: &Path) {
    let (orders_port, billing_port) = (free_port(), free_port());
    let (orders_log, billing_log) = (tmp.join("orders.log"), tmp.join("billing.log"));
    let env = || (cloud.backend(), cloud.env());
    let mut orders = spawn_serve(app, "orders", orders_port, env(), "t", &[], &orders_log);
    let app_url = format!("http://127.0.0.1:{}", dropping_app());
    let extra = ["--app-url", app_url.as_str()];
    let mut billing = spawn_serve(app, "billing", billing_port, env(), "t", &extra, &billing_log);
    let dlq = |args: &[&str]| {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("busbar"));
        command.arg("dlq").args(args).arg(app).args(["--backend", cloud.backend()]);
        command.env_remove("AWS_PROFILE").env_remove("PUBSUB_EMULATOR_HOST");
        for (k, v) in cloud.env() {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    let up = wait_healthy(orders_port) && wait_healthy(billing_port);
    let published = up.then(|| {
        agent()
            .post(format!("http://127.0.0.1:{orders_port}/v1.0/publish/pubsub/order-placed"))
            .header("dapr-api-token", "t")
            .content_type("application/json")
            .send(r#"{"id":"doomed"}"#)
            .unwrap()
            .status()
            .as_u16()
    });
    let mut listed = String::new();
    for _ in 0..120 {
        if !up {
            break;
        }
        listed = dlq(&["list"]);
        if listed.contains("1 dead letter\n") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
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
    assert_eq!(published, Some(204), "{logs}");
    assert!(listed.starts_with("order-placed/charge: 1 dead letter\n"), "{listed}\n{logs}");
    assert!(listed.contains("1 attempt") && listed.contains("DROP"), "{listed}");
    assert_eq!(dlq(&["release"]), "order-placed/charge: released 1\n");
    assert_eq!(dlq(&["list"]), "order-placed/charge: 0 dead letters\n");
}
