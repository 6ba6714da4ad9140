//! A real client: the official Dapr JavaScript SDK (`@dapr/dapr`, installed by `cargo xtask ci`)
//! against `busbar dev`. `testdata/dapr/check-sdk.mjs` publishes through `DaprClient` with the
//! orders service's token, receives through a `DaprServer` subscription of the billing service,
//! and publishes with billing's token to a topic billing's code never publishes: the SDK's
//! answer carries status 403.

use std::path::PathBuf;
use std::process::{Command, Stdio};

mod support;
use support::{free_port, spawn_dev, tool};

fn script() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../testdata/dapr/check-sdk.mjs")
}

/// Runs `testdata/dapr/{script}` with the SDK against `busbar dev` on the orders/billing app
/// (billing's charge.ts replaced by `charge` when given, tokens `orders-token` and
/// `billing-token`, billing at the script's `--app-port`): the JSON line it printed. `busbar dev`
/// starts first (as a developer would start it), the app after: busbar reads the app's
/// `/dapr/subscribe` when its first delivery is due. `None` when the SDK is not installed.
fn run_check(script_name: &str, charge: Option<&str>, args: &[&str]) -> Option<serde_json::Value> {
    let (Some(node), Some(sdk)) = (tool("BUSBAR_NODE"), tool("BUSBAR_DAPR_SDK")) else {
        return None;
    };
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    busbar_testdata::write_orders_billing_app(&app).unwrap();
    if let Some(charge) = charge {
        std::fs::write(app.join("billing/charge.ts"), charge).unwrap();
    }
    let (sidecar_port, app_port) = (free_port(), free_port());
    std::fs::write(
        app.join("busbar.toml"),
        format!(
            "[dev.services.orders]\ntoken = \"orders-token\"\n[dev.services.billing]\ntoken = \"billing-token\"\nurl = \"http://127.0.0.1:{app_port}\"\n"
        ),
    )
    .unwrap();
    let log = tmp.path().join("dev.log");
    let data = tmp.path().join("data");
    let mut dev = spawn_dev(&app, sidecar_port, Some(&data), &[], Some(&log));
    let up = support::wait_healthy(sidecar_port);
    let check = up.then(|| {
        Command::new(&node)
            .arg(script().with_file_name(script_name))
            .arg("--dapr")
            .arg(&sdk)
            .args(["--sidecar-port", &sidecar_port.to_string()])
            .args(["--app-port", &app_port.to_string()])
            .args(["--topic", "order-placed", "--publisher-token", "orders-token"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    });
    let _ = dev.kill();
    let _ = dev.wait();
    let dev_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(up, "busbar dev did not start:\n{dev_log}");
    let check = check.unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(
        check.status.success(),
        "{script_name} failed\n--- its stderr\n{stderr}\n--- busbar dev\n{dev_log}"
    );
    let result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(result["ok"], true, "{result}");
    Some(result)
}

#[test]
#[allow(clippy::print_stderr, reason = "the test shows what the SDK saw")]
fn the_dapr_javascript_sdk_publishes_receives_and_is_refused_403_and_400() {
    // The message type is `{ id: string }`: the first is published, the second refused.
    let args = [
        ["--denied-token", "billing-token"],
        ["--data", r#"{"id":"sdk-1"}"#],
        ["--invalid-data", r#"{"id":7}"#],
    ];
    let Some(result) = run_check("check-sdk.mjs", None, args.as_flattened()) else { return };
    assert_eq!(result["denied"]["status"], 403, "{result}");
    assert_eq!(result["denied"]["errorCode"], "ERR_PERMISSION_DENIED", "{result}");
    assert_eq!(result["invalid"]["status"], 400, "{result}");
    assert_eq!(result["invalid"]["errorCode"], "ERR_MESSAGE_INVALID", "{result}");
    assert_eq!(result["invalid"]["errors"][0]["pointer"], "/id", "{result}");
    let id = result["published"]["messageId"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{result}");
    assert_eq!(result["delivered"]["id"], id, "{result}");
    assert!(
        result["delivered"]["route"].as_str().is_some_and(|r| !r.starts_with("/busbar/")),
        "delivered on the SDK's route, read from its /dapr/subscribe: {result}"
    );
    eprintln!("{result}");
}

/// Bulk pub/sub with the SDK: `pubsub.publishBulk` stores every message, `pubsub.subscribeBulk`
/// (Dapr's `bulkSubscribe`) gets them in batches, and an entry answered RETRY comes again
/// (`testdata/dapr/check-sdk-bulk.mjs`).
#[test]
#[allow(clippy::print_stderr, reason = "the test shows what the SDK saw")]
fn the_dapr_javascript_sdk_publishes_and_subscribes_in_bulk() {
    // A retry after a second, not the default backoff.
    let charge = "import { Subscription } from \"encore.dev/pubsub\";\nimport { placed } from \"../orders/topics\";\nnew Subscription(placed, \"charge\", { handler: async () => {}, retryPolicy: { minBackoff: \"1s\", maxBackoff: \"1s\" } });\n";
    let args = ["--messages", "12", "--max-messages", "5"];
    let Some(result) = run_check("check-sdk-bulk.mjs", Some(charge), &args) else { return };
    let sizes: Vec<u64> =
        result["requestSizes"].as_array().unwrap().iter().filter_map(|n| n.as_u64()).collect();
    assert!(sizes.iter().all(|&n| n <= 5) && sizes.iter().any(|&n| n > 1), "{result}");
    eprintln!("{result}");
}
