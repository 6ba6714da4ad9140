//! Whole apps on `@busbar/pubsub` under `busbar dev`: the services started from their
//! `command`, and `--watch` taking a changed graph without a restart.
//!
//! Needs Node, the built SDK (`BUSBAR_SDK`, built by `cargo xtask ci` before the tests), the
//! npm cache's modules (`BUSBAR_NPM_MODULES`, for tsx) and, for the example app, its Rust
//! service built (`BUSBAR_FRAUD`, the `fraud` binary `cargo xtask ci` builds).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{agent, free_port, generated_token, tool, wait_healthy};

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Makes `@busbar/pubsub` and `tsx` resolvable from `app`.
fn link_modules(app: &Path, sdk: &Path, modules: &Path) {
    std::fs::create_dir_all(app.join("node_modules/@busbar")).unwrap();
    std::os::unix::fs::symlink(sdk, app.join("node_modules/@busbar/pubsub")).unwrap();
    std::os::unix::fs::symlink(modules.join("tsx"), app.join("node_modules/tsx")).unwrap();
}

/// Polls `cond` every 50 ms until it holds, for at most `secs`.
fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within {secs} s");
}

/// The `APP_PORT` busbar dev prints for `service`, waiting for the line (the sidecar answers
/// before busbar dev has printed its start lines).
fn app_port(log: &Path, service: &str) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(port) = printed_app_port(log, service) {
            return Some(port);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn printed_app_port(log: &Path, service: &str) -> Option<u16> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(service) && l.contains("APP_PORT="))?
        .split("APP_PORT=")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

const SUB_V1: &str = r#"import { Subscription } from "@busbar/pubsub";
import { appendFileSync } from "node:fs";
import { a } from "../pub/topics.js";

new Subscription(a, "s1", { handler: (m) => { appendFileSync("received.log", `s1 ${m.n}\n`); } });
"#;

const SUB_V2: &str = r#"import { Subscription } from "@busbar/pubsub";
import { appendFileSync } from "node:fs";
import { a, b } from "../pub/topics.js";

new Subscription(a, "s1", { handler: (m) => { appendFileSync("received.log", `s1 ${m.n}\n`); } });
new Subscription(b, "s2", { handler: (m) => { appendFileSync("received.log", `s2 ${m.n}\n`); } });
"#;

const PUB_V1: &str = r#"import { serve } from "@busbar/pubsub";
import { a, b } from "./topics.js";

await serve(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  const n = Number(url.searchParams.get("n"));
  const id = url.pathname === "/a" ? await a.publish({ n }) : await b.publish({ n });
  res.end(id);
});
"#;

const PUB_V2: &str = r#"import { serve } from "@busbar/pubsub";
import { b } from "./topics.js";

await serve(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  const n = Number(url.searchParams.get("n"));
  res.end(await b.publish({ n }));
});
"#;

/// A publisher `pub` (an HTTP API publishing to `a` or `b`) and a subscriber `sub`, each
/// started by busbar dev from its command.
fn app(dir: &Path) {
    write(dir, "package.json", "{ \"type\": \"module\" }\n");
    for service in ["pub", "sub"] {
        write(
            dir,
            &format!("{service}/encore.service.ts"),
            &format!(
                "import {{ Service }} from \"@busbar/pubsub\";\nexport default new Service(\"{service}\");\n"
            ),
        );
    }
    write(
        dir,
        "pub/topics.ts",
        "import { Topic } from \"@busbar/pubsub\";\nexport interface N { n: number }\nexport const a = new Topic<N>(\"a\", { deliveryGuarantee: \"at-least-once\" });\nexport const b = new Topic<N>(\"b\", { deliveryGuarantee: \"at-least-once\" });\n",
    );
    write(dir, "pub/main.ts", PUB_V1);
    write(dir, "sub/main.ts", SUB_V1);
    write(
        dir,
        "busbar.toml",
        "[dev.services.pub]\ncommand = \"node --import tsx ./main.ts\"\n[dev.services.sub]\ncommand = \"node --import tsx ./main.ts\"\n",
    );
}

/// An app of one service `svc` whose busbar.toml entry is `entry`, in `tmp/app`.
fn one_service_app(tmp: &Path, entry: &str) -> std::path::PathBuf {
    let dir = tmp.join("app");
    write(
        &dir,
        "svc/encore.service.ts",
        "import { Service } from \"@busbar/pubsub\";\nexport default new Service(\"svc\");\n",
    );
    write(&dir, "busbar.toml", &format!("[dev.services.svc]\n{entry}"));
    dir
}

/// `busbar dev` in `dir` on `port`, data in `tmp/data`, its stdout (the services' lines) to
/// `out`.
fn dev_with_stdout(dir: &Path, tmp: &Path, port: u16, out: &Path) -> std::process::Child {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("busbar"));
    cmd.current_dir(dir)
        .args(["dev", ".", "--port", &port.to_string(), "--data"])
        .arg(tmp.join("data"))
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(std::process::Stdio::null());
    cmd.spawn().unwrap()
}

struct Dev(std::process::Child);

impl Drop for Dev {
    fn drop(&mut self) {
        // SIGTERM: busbar dev stops its services, then itself.
        let _ = std::process::Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
    }
}

#[test]
fn watch_takes_a_new_subscription_and_drops_a_grant_without_a_restart() {
    let (Some(_node), Some(sdk), Some(modules)) =
        (tool("BUSBAR_NODE"), tool("BUSBAR_SDK"), tool("BUSBAR_NPM_MODULES"))
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    app(&dir);
    link_modules(&dir, &sdk, &modules);
    let data = tmp.path().join("data");
    let log = tmp.path().join("dev.log");
    let port = free_port();
    let dev = Dev(support::spawn_dev(&dir, port, Some(&data), &["--watch"], Some(&log)));
    assert!(wait_healthy(port), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    let pub_port = app_port(&log, "pub").expect("busbar dev prints pub's APP_PORT");
    let http = agent();
    let send = |path: &str, n: u32| {
        http.post(format!("http://127.0.0.1:{pub_port}{path}?n={n}"))
            .send_empty()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    let received = || std::fs::read_to_string(dir.join("sub/received.log")).unwrap_or_default();
    // pub answers once its process is up (busbar dev started it).
    eventually(30, "pub's API answers", || send("/a", 1) == 200);
    eventually(30, "s1 receives", || received().contains("s1 1\n"));

    // The new code: sub also subscribes to b; pub no longer publishes a.
    write(&dir, "sub/main.ts", SUB_V2);
    write(&dir, "pub/main.ts", PUB_V2);
    let reloaded =
        || std::fs::read_to_string(&log).unwrap_or_default().contains("busbar dev: reloaded");
    eventually(30, "busbar dev reloads", reloaded);
    eventually(30, "the restarted pub answers", || send("/b", 2) == 200);
    eventually(30, "the new subscription s2 receives", || received().contains("s2 2\n"));

    // What pub's new code does not publish is refused, with pub's own token.
    let token = generated_token(&data, "pub");
    let status = http
        .post(format!("http://127.0.0.1:{port}/v1.0/publish/pubsub/a"))
        .header("dapr-api-token", &token)
        .header("content-type", "application/json")
        .send("{\"n\": 3}")
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 403);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("the Dapr pub/sub API of").count(), 1, "one busbar dev throughout");
    drop(dev);
}

#[test]
fn a_command_that_fails_is_reported_with_its_status_and_not_restarted_in_a_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = one_service_app(tmp.path(), "command = \"no-such-command-busbar\"\n");
    let port = free_port();
    let out = tmp.path().join("out.log");
    let dev = Dev(dev_with_stdout(&dir, tmp.path(), port, &out));
    assert!(wait_healthy(port));
    std::thread::sleep(Duration::from_secs(4));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("svc     | busbar: exited with status 127 (the shell found no such command)"),
        "{text}"
    );
    // Started at 0, 1, 3 s (backoff 1, 2, 4): three or four starts in 4 s, not hundreds.
    let starts = text.matches("busbar: started").count();
    assert!((2..=4).contains(&starts), "{starts} starts:\n{text}");
    drop(dev);
}

/// Copies the example app (without what an install or a run leaves in it).
fn copy_example(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if ["node_modules", ".busbar", "package-lock.json"].contains(&name.to_str().unwrap()) {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_example(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// The pid busbar dev last started `service` with, from its stdout.
fn last_pid(out: &Path, service: &str) -> Option<u32> {
    let text = std::fs::read_to_string(out).ok()?;
    text.lines()
        .rfind(|l| l.split_whitespace().next() == Some(service) && l.contains("busbar: started"))?
        .rsplit("(pid ")
        .next()?
        .trim_end_matches(')')
        .parse()
        .ok()
}

/// Points the copied example's `fraud` service at the built binary instead of `cargo run`.
fn use_built_fraud(dir: &Path, fraud: &Path) {
    let toml = dir.join("busbar.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let old = "[dev.services.fraud]\ncommand = \"cargo run --quiet\"\n";
    assert!(text.contains(old), "the example's busbar.toml starts fraud with cargo run");
    let new = format!("[dev.services.fraud]\ncommand = \"'{}'\"\n", fraud.display());
    std::fs::write(toml, text.replace(old, &new)).unwrap();
}

/// The example app under busbar dev, every service started from its command (the six
/// TypeScript ones and the Rust `fraud`): 200 orders through the orders API reach exactly the
/// services that subscribe to them, filtered and in per-customer order, across languages both
/// ways (`check.mjs`); fraud may publish only its own topic; then payments is SIGKILLed
/// mid-stream, busbar dev restarts it, and nothing is lost (every card payment still reaches
/// shipping and a mail, the charge-order backlog drains, nothing is dead-lettered).
#[test]
fn the_example_app_runs_and_survives_a_killed_service() {
    let (Some(node), Some(sdk), Some(modules), Some(fraud)) =
        (tool("BUSBAR_NODE"), tool("BUSBAR_SDK"), tool("BUSBAR_NPM_MODULES"), tool("BUSBAR_FRAUD"))
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    let example = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../examples/shop");
    copy_example(&example, &dir);
    link_modules(&dir, &sdk, &modules);
    use_built_fraud(&dir, &fraud);
    let data = tmp.path().join("data");
    let (log, out) = (tmp.path().join("dev.log"), tmp.path().join("dev.out"));
    let port = free_port();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("busbar"));
    cmd.current_dir(&dir)
        .args(["dev", ".", "--port", &port.to_string(), "--data"])
        .arg(&data)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&log).unwrap());
    let _dev = Dev(cmd.spawn().unwrap());
    let show = || {
        format!(
            "--- busbar dev stderr\n{}\n--- stdout\n{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(&out).unwrap_or_default()
        )
    };
    assert!(wait_healthy(port), "{}", show());
    let services =
        ["users", "orders", "payments", "shipping", "notifications", "analytics", "fraud"];
    let mut args: Vec<String> = vec![example.join("check.mjs").display().to_string()];
    for s in services {
        let p = app_port(&log, s).unwrap_or_else(|| panic!("no APP_PORT for {s}\n{}", show()));
        args.extend([format!("--{s}"), format!("http://127.0.0.1:{p}")]);
    }
    args.extend(["--count".into(), "200".into(), "--timeout".into(), "90".into()]);
    let check = |extra: &[&str]| {
        std::process::Command::new(&node)
            .args(&args)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let outcome = check(&[]).wait_with_output().unwrap();
    assert!(
        outcome.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&outcome.stdout),
        String::from_utf8_lossy(&outcome.stderr),
        show()
    );

    // The Rust service's token publishes its own topic, and nothing its code does not.
    let publish_as_fraud = |topic: &str, body: &str| {
        agent()
            .post(format!("http://127.0.0.1:{port}/v1.0/publish/pubsub/{topic}"))
            .header("dapr-api-token", generated_token(&data, "fraud"))
            .header("content-type", "application/json")
            .send(body)
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    let captured = r#"{"orderId":"x","amountCents":1,"method":"card"}"#;
    assert_eq!(publish_as_fraud("payment-captured", captured), 403, "{}", show());
    let verdict = r#"{"orderId":"probe","customerId":"probe","risk":"low","totalCents":1}"#;
    assert_eq!(publish_as_fraud("fraud-verdict", verdict), 204, "{}", show());

    // Again, killing payments once it is busy with this run's orders.
    let payments_lines = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split_whitespace().next() == Some("payments"))
            .count()
    };
    let before = payments_lines();
    let pid = last_pid(&out, "payments").expect("payments' pid");
    let mut second = check(&["--restarted", "payments"]);
    eventually(60, "payments charges this run's orders", || payments_lines() >= before + 20);
    assert!(second.try_wait().unwrap().is_none(), "the check ended before payments was killed");
    let killed = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    assert!(killed.unwrap().success());
    let outcome = second.wait_with_output().unwrap();
    assert!(
        outcome.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&outcome.stdout),
        String::from_utf8_lossy(&outcome.stderr),
        show()
    );
    assert_ne!(last_pid(&out, "payments"), Some(pid), "busbar dev started payments again");
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("payments      | busbar: exited killed by signal 9"),
        "{}",
        show()
    );
    // Nothing owed and nothing dead-lettered anywhere.
    let metrics = || {
        agent()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap()
    };
    eventually(30, "every backlog drains", || {
        metrics().lines().filter(|l| l.starts_with("busbar_backlog{")).all(|l| l.ends_with(" 0"))
    });
    let text = metrics();
    let dead: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("busbar_dead_letters{") && !l.ends_with(" 0"))
        .collect();
    assert!(dead.is_empty(), "dead letters: {dead:?}");
}

/// Whether process `pid` still exists (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or_default().trim_start().starts_with('Z'))
}

/// A SIGKILLed busbar dev leaves no service process behind (the parent-death signal).
#[test]
fn a_killed_busbar_dev_leaves_no_orphans() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = one_service_app(tmp.path(), "command = \"sleep 300\"\n");
    let port = free_port();
    let out = tmp.path().join("out.log");
    let mut dev = dev_with_stdout(&dir, tmp.path(), port, &out);
    assert!(wait_healthy(port));
    let mut pid = None;
    eventually(10, "the service starts", || {
        pid = last_pid(&out, "svc");
        pid.is_some_and(alive)
    });
    let pid = pid.unwrap();
    dev.kill().unwrap();
    dev.wait().unwrap();
    eventually(10, "the service dies with busbar dev", || !alive(pid));
}

/// An app-port that is taken is a clear error before anything starts.
#[test]
fn a_taken_app_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = taken.local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let dir = one_service_app(tmp.path(), &format!("command = \"sleep 300\"\napp-port = {p}\n"));
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("busbar"))
        .current_dir(&dir)
        .args(["dev", ".", "--port", &free_port().to_string(), "--data"])
        .arg(tmp.path().join("data"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("port {p}, the app-port of service `svc`, is taken")), "{err}");
    assert!(err.contains("= help:"), "{err}");
}

/// busbar turns transparent huge pages off for itself (its allocator); the services it starts
/// get the setting busbar itself was started with (the flag is inherited across exec).
#[test]
#[expect(clippy::print_stderr, reason = "says why the test is skipped on a kernel before 5.0")]
fn services_keep_the_huge_page_setting_busbar_was_started_with() {
    let thp = |status: &str| {
        status.lines().find(|l| l.starts_with("THP_enabled:")).map(|l| l.trim().to_string())
    };
    let Some(ours) = thp(&std::fs::read_to_string("/proc/self/status").unwrap()) else {
        eprintln!("SKIPPED: this kernel's /proc/self/status has no THP_enabled line");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let command = "command = \"grep THP_enabled /proc/self/status > thp.txt; sleep 300\"\n";
    let dir = one_service_app(tmp.path(), command);
    let port = free_port();
    let out = tmp.path().join("out.log");
    let dev = Dev(dev_with_stdout(&dir, tmp.path(), port, &out));
    assert!(wait_healthy(port));
    let written = dir.join("svc/thp.txt");
    eventually(10, "the service writes its setting", || {
        std::fs::read_to_string(&written).is_ok_and(|t| t.ends_with('\n'))
    });
    let theirs = thp(&std::fs::read_to_string(&written).unwrap());
    assert_eq!(theirs.as_deref(), Some(ours.as_str()));
    // busbar dev itself runs without them.
    let pid = dev.0.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(thp(&status).as_deref(), Some("THP_enabled:\t0"), "{status}");
    drop(dev);
}
