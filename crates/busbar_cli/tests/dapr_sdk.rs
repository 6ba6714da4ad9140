//! A real client: the official Dapr JavaScript SDK (`@dapr/dapr`, installed by `cargo xtask ci`)
//! against `busbar dev`. `testdata/dapr/check-sdk.mjs` publishes through `DaprClient` with the
//! orders service's token, receives through a `DaprServer` subscription of the billing service,
//! and publishes with billing's token to a topic billing's code never publishes: the SDK's
//! answer carries status 403.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A tool from `cargo xtask ci`; required under `BUSBAR_REQUIRE_TOOLS`.
#[allow(clippy::print_stderr, reason = "a skipped check says so")]
fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(p.into()),
        None if std::env::var_os("BUSBAR_REQUIRE_TOOLS").is_some() => {
            panic!("{var} is not set, and BUSBAR_REQUIRE_TOOLS says the tools are required")
        }
        None => {
            eprintln!("SKIPPED: {var} is not set; `cargo xtask ci` installs the tool and sets it");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/dapr/check-sdk.mjs")
}

/// `busbar dev` starts first (as a developer would start it), the app after: busbar reads the
/// app's `/dapr/subscribe` when its first delivery is due.
#[test]
#[allow(clippy::print_stderr, reason = "the test shows what the SDK saw")]
fn the_dapr_javascript_sdk_publishes_receives_and_is_refused_403() {
    let (Some(node), Some(sdk)) = (tool("BUSBAR_NODE"), tool("BUSBAR_DAPR_SDK")) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    busbar_testdata::write_orders_billing_app(&app).unwrap();
    let (sidecar_port, app_port) = (free_port(), free_port());
    std::fs::write(
        app.join("busbar.toml"),
        format!(
            "[dev.services.orders]\ntoken = \"orders-token\"\n[dev.services.billing]\ntoken = \"billing-token\"\nurl = \"http://127.0.0.1:{app_port}\"\n"
        ),
    )
    .unwrap();
    let log = tmp.path().join("dev.log");
    let mut dev = Command::new(assert_cmd::cargo::cargo_bin("busbar"))
        .current_dir(&app)
        .args(["dev", ".", "--port", &sidecar_port.to_string(), "--data"])
        .arg(tmp.path().join("data"))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let up = (0..400).any(|_| {
        let ok = std::net::TcpStream::connect(("127.0.0.1", sidecar_port)).is_ok();
        if !ok {
            std::thread::sleep(Duration::from_millis(25));
        }
        ok
    });
    let check = up.then(|| {
        Command::new(&node)
            .arg(script())
            .arg("--dapr")
            .arg(&sdk)
            .args(["--sidecar-port", &sidecar_port.to_string()])
            .args(["--app-port", &app_port.to_string()])
            .args(["--topic", "order-placed"])
            .args(["--publisher-token", "orders-token"])
            .args(["--denied-token", "billing-token"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    });
    let _ = dev.kill();
    let _ = dev.wait();
    let dev_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(up, "busbar dev did not start:\n{dev_log}");
    let check = check.unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        check.status.success(),
        "check-sdk.mjs failed\n--- its stderr\n{stderr}\n--- busbar dev\n{dev_log}"
    );
    let result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["denied"]["status"], 403, "{result}");
    assert_eq!(result["denied"]["errorCode"], "ERR_PERMISSION_DENIED", "{result}");
    let id = result["published"]["messageId"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{result}");
    assert_eq!(result["delivered"]["id"], id, "{result}");
    assert!(
        result["delivered"]["route"].as_str().is_some_and(|r| !r.starts_with("/busbar/")),
        "delivered on the SDK's route, read from its /dapr/subscribe: {result}"
    );
    eprintln!("{result}");
}
