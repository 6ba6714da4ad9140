//! Crash tests: `busbar dev` killed with SIGKILL while 10,000 messages are published, while
//! they are acknowledged, and while a DLQ release is delivered; then restarted on the same data
//! directory. Every message whose publish was answered 204 is delivered at least once;
//! duplicates stay within what was in flight.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;
use support::{admin_bearer, agent, free_port, spawn_dev, tool, wait_healthy};

const PUBLISHERS: usize = 8;
const MESSAGES: usize = 10_000;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// How the subscriber answers: it holds every delivery while the gate is shut, then answers
/// DROP while `dropping`, else SUCCESS. It records the `data.id` of each delivery it
/// acknowledged, and counts those it dropped.
#[derive(Default)]
struct Subscriber {
    /// Deliveries that reached the handler (held or not).
    entered: AtomicUsize,
    shut: AtomicBool,
    dropping: AtomicBool,
    acknowledged: Mutex<Vec<String>>,
    dropped: AtomicUsize,
}

impl Subscriber {
    fn acknowledged(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }
}

/// Serves `sub` on a loopback port (billing's `charge` route), returns the port.
fn serve(sub: Arc<Subscriber>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let handler = move |axum::Json(event): axum::Json<serde_json::Value>| {
                let sub = sub.clone();
                async move {
                    sub.entered.fetch_add(1, Ordering::SeqCst);
                    while sub.shut.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    if sub.dropping.load(Ordering::SeqCst) {
                        sub.dropped.fetch_add(1, Ordering::SeqCst);
                        return axum::Json(serde_json::json!({ "status": "DROP" }));
                    }
                    let id = event
                        .pointer("/data/id")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string();
                    sub.acknowledged.lock().unwrap().push(id);
                    axum::Json(serde_json::json!({ "status": "SUCCESS" }))
                }
            };
            let app = axum::Router::new()
                .route("/busbar/order-placed/charge", axum::routing::post(handler));
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    port
}

/// The orders/billing app with billing served by a [`Subscriber`], and `busbar dev` on it.
struct Crash {
    /// Holds the app and the data for the test's length.
    _tmp: tempfile::TempDir,
    app: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    sub: Arc<Subscriber>,
    /// Ids whose publish was answered 204.
    published: Arc<Mutex<BTreeSet<String>>>,
    answered: Arc<AtomicUsize>,
}

impl Crash {
    fn new(sub: Subscriber) -> Crash {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        busbar_testdata::write_orders_billing_app(&app).unwrap();
        let sub = Arc::new(sub);
        let sub_port = serve(sub.clone());
        write(
            &app,
            "busbar.toml",
            &format!(
                "[dev.services.orders]\ntoken = \"orders-token\"\n[dev.services.billing]\nurl = \"http://127.0.0.1:{sub_port}\"\n"
            ),
        );
        let data = tmp.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Crash {
            _tmp: tmp,
            app,
            data,
            port,
            sub,
            published: Arc::default(),
            answered: Arc::default(),
        }
    }

    fn start(&self) -> Child {
        let child = spawn_dev(&self.app, self.port, Some(&self.data), &[], None);
        assert!(wait_healthy(self.port), "busbar dev did not start");
        child
    }

    /// Publishes `m0`..`m9999` from [`PUBLISHERS`] threads, each message until it is answered
    /// 204 (a refused connection while busbar dev restarts means: send it again).
    fn publish_all(&self) -> Vec<std::thread::JoinHandle<()>> {
        (0..PUBLISHERS)
            .map(|p| {
                let (published, answered, port) =
                    (self.published.clone(), self.answered.clone(), self.port);
                std::thread::spawn(move || {
                    let agent = agent();
                    let deadline = Instant::now() + Duration::from_secs(120);
                    for n in (p..MESSAGES).step_by(PUBLISHERS) {
                        let id = format!("m{n}");
                        loop {
                            assert!(Instant::now() < deadline, "publishing took too long");
                            let sent = agent
                                .post(format!(
                                    "http://127.0.0.1:{port}/v1.0/publish/pubsub/order-placed"
                                ))
                                .header("dapr-api-token", "orders-token")
                                .send(format!(r#"{{"id":"{id}"}}"#));
                            match sent {
                                Ok(r) if r.status() == 204 => {
                                    published.lock().unwrap().insert(id.clone());
                                    answered.fetch_add(1, Ordering::SeqCst);
                                    break;
                                }
                                _ => std::thread::sleep(Duration::from_millis(20)),
                            }
                        }
                    }
                })
            })
            .collect()
    }

    fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Every message answered 204 was acknowledged by the subscriber; returns the duplicates.
    fn none_lost(&self, killed: &str) -> usize {
        let published = self.published.lock().unwrap().clone();
        assert_eq!(published.len(), MESSAGES);
        let deadline = Instant::now() + Duration::from_secs(120);
        let missing = loop {
            let seen: BTreeSet<String> =
                self.sub.acknowledged.lock().unwrap().iter().cloned().collect();
            let missing = published.iter().filter(|id| !seen.contains(*id)).count();
            if missing == 0 || Instant::now() > deadline {
                break missing;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(missing, 0, "messages answered 204 but never acknowledged ({killed})");
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for id in self.sub.acknowledged.lock().unwrap().iter() {
            *counts.entry(id.clone()).or_default() += 1;
        }
        counts.values().map(|c| c - 1).sum()
    }
}

/// In flight at a kill: deliveries under way and acknowledgements not yet committed, together
/// fewer than 128 (the dispatcher starts a delivery only while each count is under the default
/// concurrency of 64), and one publish per publisher whose 204 was lost with the connection.
const IN_FLIGHT: usize = 64 + 64 + PUBLISHERS;

#[test]
#[allow(clippy::print_stderr, reason = "the test reports what it measured")]
fn nothing_answered_204_is_lost_when_busbar_dev_is_killed() {
    let crash = Crash::new(Subscriber::default());
    let mut first = crash.start();
    let publishers = crash.publish_all();
    crash.wait_for("3,000 publishes", || crash.answered.load(Ordering::SeqCst) >= 3_000);
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let at_kill = crash.answered.load(Ordering::SeqCst);
    let mut second = crash.start();
    for p in publishers {
        p.join().unwrap();
    }
    let duplicates = crash.none_lost(&format!("killed after {at_kill} publishes"));
    let _ = second.kill();
    let _ = second.wait();
    assert!(duplicates <= IN_FLIGHT, "{duplicates} duplicates");
    eprintln!("killed after {at_kill} publishes; {duplicates} duplicates over {MESSAGES} messages");
}

/// The kill lands while the subscriber acknowledges: all 10,000 are published first (held at
/// the subscriber), then the gate opens and busbar dev dies halfway through the acks.
#[test]
#[allow(clippy::print_stderr, reason = "the test reports what it measured")]
fn nothing_is_lost_when_busbar_dev_is_killed_during_acknowledgements() {
    let crash = Crash::new(Subscriber { shut: AtomicBool::new(true), ..Default::default() });
    let mut first = crash.start();
    for p in crash.publish_all() {
        p.join().unwrap();
    }
    crash.sub.shut.store(false, Ordering::SeqCst);
    crash.wait_for("5,000 acknowledgements", || crash.sub.acknowledged() >= MESSAGES / 2);
    first.kill().unwrap();
    first.wait().unwrap();
    let at_kill = crash.sub.acknowledged();
    assert!(at_kill < MESSAGES, "every message was acknowledged before the kill");
    let mut second = crash.start();
    let duplicates = crash.none_lost(&format!("killed after {at_kill} acknowledgements"));
    let _ = second.kill();
    let _ = second.wait();
    assert!(duplicates <= IN_FLIGHT, "{duplicates} duplicates");
    eprintln!("killed after {at_kill} acknowledgements; {duplicates} duplicates");
}

/// The kill lands during a DLQ release: all 10,000 are dropped into the dead-letter queue, then
/// released while the subscriber now acknowledges, and busbar dev dies as the release is
/// delivered. After the restart, `busbar dlq release` on what is left brings every message
/// through: none lost, none still dead.
#[test]
#[allow(clippy::print_stderr, reason = "the test reports what it measured")]
fn nothing_is_lost_when_busbar_dev_is_killed_during_a_dlq_release() {
    let crash = Crash::new(Subscriber { dropping: AtomicBool::new(true), ..Default::default() });
    let mut first = crash.start();
    for p in crash.publish_all() {
        p.join().unwrap();
    }
    crash.wait_for("10,000 drops", || crash.sub.dropped.load(Ordering::SeqCst) >= MESSAGES);
    // The dead letters, through the admin API.
    let dead = || -> usize {
        let mut r = agent()
            .get(format!("http://127.0.0.1:{}/v1.0-busbar/dlq", crash.port))
            .header("authorization", admin_bearer(&crash.data))
            .call()
            .unwrap();
        let v: serde_json::Value = r.body_mut().read_json().unwrap();
        v.as_array().unwrap().iter().map(|s| s["messages"].as_array().unwrap().len()).sum()
    };
    // Every drop is committed before the release (the release reads the dead letters).
    crash.wait_for("10,000 dead letters", || dead() >= MESSAGES);
    crash.sub.dropping.store(false, Ordering::SeqCst);
    let release = std::thread::spawn({
        let (port, bearer) = (crash.port, admin_bearer(&crash.data));
        move || {
            agent()
                .post(format!("http://127.0.0.1:{port}/v1.0-busbar/dlq/release"))
                .header("authorization", bearer)
                .header("content-type", "application/json")
                .send("{}")
                .map(|r| r.status().as_u16())
        }
    });
    crash.wait_for("2,000 released deliveries", || crash.sub.acknowledged() >= 2_000);
    first.kill().unwrap();
    first.wait().unwrap();
    let released = release.join().unwrap();
    let at_kill = crash.sub.acknowledged();
    let mut second = crash.start();
    // Whatever is still dead (nothing, when the release committed) goes back once more.
    let out = Command::new(assert_cmd::cargo::cargo_bin("busbar"))
        .current_dir(&crash.app)
        .args(["dlq", "release", ".", "--data"])
        .arg(&crash.data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let duplicates = crash.none_lost(&format!("killed after {at_kill} released deliveries"));
    let left = dead();
    let _ = second.kill();
    let _ = second.wait();
    assert_eq!(left, 0, "dead letters left");
    assert!(duplicates <= IN_FLIGHT, "{duplicates} duplicates");
    eprintln!(
        "killed after {at_kill} released deliveries (release answered {released:?}); {duplicates} duplicates"
    );
}

/// A SIGKILL leaves the page cache intact, so the crash test alone cannot show that a 204
/// waits for the disk. Under strace: between reading the publish request and writing its 204,
/// busbar calls fsync (SQLite's WAL commit).
#[test]
fn a_publish_is_answered_only_after_fsync() {
    let Some(strace) = tool("BUSBAR_STRACE") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    // billing has no URL: its subscription keeps a backlog; only the publish matters here.
    busbar_testdata::write_orders_billing_app(&app).unwrap();
    write(&app, "busbar.toml", "[dev.services.orders]\ntoken = \"orders-token\"\n");
    let port = free_port();
    let log = tmp.path().join("strace.log");
    let mut child = Command::new(strace)
        .args([
            "-f",
            "-s",
            "48",
            "-e",
            "trace=fsync,fdatasync,read,recvfrom,write,writev,sendto,sendmsg",
            "-o",
        ])
        .arg(&log)
        .arg(assert_cmd::cargo::cargo_bin("busbar"))
        .current_dir(&app)
        .args(["dev", ".", "--port", &port.to_string(), "--data"])
        .arg(tmp.path().join("data"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_healthy(port), "busbar dev did not start under strace");
    let status = agent()
        .post(format!("http://127.0.0.1:{port}/v1.0/publish/pubsub/order-placed"))
        .header("dapr-api-token", "orders-token")
        .send(r#"{"id":"traced"}"#)
        .map(|r| r.status().as_u16());
    std::thread::sleep(Duration::from_millis(200));
    // Killing strace would leave busbar running (detached): kill busbar, and strace ends.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id()))
        .unwrap_or_default();
    for pid in children.split_whitespace() {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
    let _ = child.wait();
    assert_eq!(status.unwrap(), 204);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let request =
        lines.iter().position(|l| l.contains("POST /v1.0/publish/")).expect("the request is read");
    let answer = lines[request..]
        .iter()
        .position(|l| l.contains("HTTP/1.1 204"))
        .map(|i| i + request)
        .expect("the 204 is written");
    let fsyncs = lines[request..answer]
        .iter()
        .filter(|l| {
            (l.contains("fsync(")
                || l.contains("fdatasync(")
                || l.contains("fsync resumed>")
                || l.contains("fdatasync resumed>"))
                && !l.contains("unfinished")
        })
        .count();
    assert!(
        fsyncs >= 1,
        "no fsync completed between the request and its 204:\n{}",
        lines[request..=answer].join("\n")
    );
}

/// Ctrl-C (SIGINT) is a graceful shutdown: `busbar dev` stops taking requests, waits for the
/// delivery in flight, records its acknowledgement and exits 0; restarted, it does not deliver
/// that message again.
#[test]
fn ctrl_c_waits_for_the_delivery_in_flight() {
    let crash = Crash::new(Subscriber { shut: AtomicBool::new(true), ..Default::default() });
    let mut first = crash.start();
    let r = agent()
        .post(format!("http://127.0.0.1:{}/v1.0/publish/pubsub/order-placed", crash.port))
        .header("dapr-api-token", "orders-token")
        .send(r#"{"id":"in-flight"}"#)
        .unwrap();
    assert_eq!(r.status(), 204);
    crash.wait_for("the delivery to reach the subscriber", || {
        crash.sub.entered.load(Ordering::SeqCst) == 1
    });
    let interrupted = Command::new("kill").args(["-INT", &first.id().to_string()]).status();
    assert!(interrupted.unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    let waiting = first.try_wait().unwrap().is_none();
    crash.sub.shut.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = first.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = first.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(waiting, "busbar dev exited with a delivery in flight");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "busbar dev exits 0 after Ctrl-C");
    assert_eq!(crash.sub.acknowledged(), 1);
    let mut second = crash.start();
    std::thread::sleep(Duration::from_millis(500));
    let entered = crash.sub.entered.load(Ordering::SeqCst);
    let _ = second.kill();
    let _ = second.wait();
    assert_eq!(entered, 1, "the acknowledged message was delivered again after the restart");
}
