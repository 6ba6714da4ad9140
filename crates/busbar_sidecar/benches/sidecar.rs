//! `cargo xtask bench runtime`, through the sidecar: the same workload as the in-process
//! benchmark (one topic, two subscriptions, 1 KiB messages, 16 concurrent publishers, durable
//! publishes and acknowledgements), over HTTP on loopback. The publishers POST to
//! `/v1.0/publish/pubsub/bench` as service `orders` (keep-alive connections); the sidecar
//! delivers each message as a CloudEvent to the subscriber service's two default routes, which
//! answer `{"status": "SUCCESS"}`. The sidecar runs on a tokio runtime of its own, like a
//! separate process; publishers and subscriber share another. Variants, alternating in each
//! round: validation at publish on and off; deliveries in bulk (the subscriber's
//! `/dapr/subscribe` enables `bulkSubscribe`, 100 messages / 5 ms); and both publishes and
//! deliveries in bulk (each publisher POSTs 16 messages per bulk publish, waiting for each).
//! Arguments: `[MESSAGES]` (default 20,000).

#![allow(clippy::print_stdout, reason = "a benchmark reports on the terminal")]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use busbar_config::{DevConfig, DevService};
use serde_json::Value;

const PUBLISHERS: usize = 16;

#[path = "../../busbar_runtime/benches/support/rounds.rs"]
mod rounds;
use rounds::Sample;

/// The allocator of the `busbar` binary, which hosts the broker (`busbar dev`) and the sidecar
/// (`busbar serve`), with its default options (the binary's `tune_allocator` settings, which
/// live in `busbar_cli`, are not applied here).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `orders` publishes `bench`; `billing` subscribes to it twice, as `a` and `b`.
fn analyzed() -> busbar_model::runtime::RuntimeConfig {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for service in ["orders", "billing"] {
        write(
            dir,
            &format!("{service}/encore.service.ts"),
            &format!(
                "import {{ Service }} from \"encore.dev/service\";\nexport default new Service(\"{service}\");\n"
            ),
        );
    }
    write(
        dir,
        "orders/topics.ts",
        "import { Topic } from \"encore.dev/pubsub\";\nexport interface Tick { t: number; pad: string; }\nexport const bench = new Topic<Tick>(\"bench\", { deliveryGuarantee: \"at-least-once\" });\nexport async function tick() { await bench.publish({ t: 0, pad: \"\" }); }\n",
    );
    write(
        dir,
        "billing/subs.ts",
        "import { Subscription } from \"encore.dev/pubsub\";\nimport { bench } from \"../orders/topics\";\nnew Subscription(bench, \"a\", { handler: async () => {} });\nnew Subscription(bench, \"b\", { handler: async () => {} });\n",
    );
    let analysis = busbar_analysis::analyze(
        dir,
        &busbar_config::Config::default(),
        &busbar_analysis::Options { threads: 1, checker: None, parse_all: false },
        &[busbar_ts::FRONTEND],
    );
    assert!(analysis.diagnostics.iter().all(|d| !d.is_error()), "{:?}", analysis.diagnostics);
    let graph = busbar_graph::PermissionGraph::build(&analysis.model);
    busbar_plan::runtime_config(&analysis.model, &graph, &busbar_plan::Settings::default())
}

/// Publish → deliver latencies, and a count of deliveries to wait on.
struct Seen {
    start: Instant,
    latencies: Mutex<Vec<Duration>>,
    delivered: tokio::sync::Semaphore,
}

async fn deliver(State(seen): State<Arc<Seen>>, body: axum::body::Bytes) -> &'static str {
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(sent) = event.pointer("/data/t").and_then(Value::as_u64) {
        let now = seen.start.elapsed().as_nanos() as u64;
        seen.latencies.lock().unwrap().push(Duration::from_nanos(now.saturating_sub(sent)));
        seen.delivered.add_permits(1);
    }
    r#"{"status":"SUCCESS"}"#
}

/// A bulk delivery (Dapr's `bulkSubscribe`): every entry's latency recorded, every entry
/// answered SUCCESS.
async fn deliver_bulk(State(seen): State<Arc<Seen>>, body: axum::body::Bytes) -> String {
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let now = seen.start.elapsed().as_nanos() as u64;
    let mut statuses = Vec::new();
    for entry in request["entries"].as_array().into_iter().flatten() {
        if let Some(sent) = entry.pointer("/event/data/t").and_then(Value::as_u64) {
            seen.latencies.lock().unwrap().push(Duration::from_nanos(now.saturating_sub(sent)));
            seen.delivered.add_permits(1);
        }
        statuses.push(serde_json::json!({ "entryId": entry["entryId"], "status": "SUCCESS" }));
    }
    serde_json::json!({ "statuses": statuses }).to_string()
}

/// The `bulkSubscribe` settings of the bulk variant.
const BULK_MESSAGES: u32 = 100;
const BULK_AWAIT_MS: u32 = 5;

/// What a round runs: the sidecar with validation at publish on or off, deliveries one per
/// request or in bulk.
#[derive(Clone, Copy)]
struct Variant {
    validate: bool,
    bulk: bool,
    /// Messages per bulk publish request (0: one publish request per message).
    publish_batch: usize,
}

impl Variant {
    fn name(self) -> String {
        let validation = if self.validate { "on" } else { "off" };
        if self.publish_batch > 0 {
            format!("sidecar, bulk publish ({}) and subscribe", self.publish_batch)
        } else if self.bulk {
            format!("sidecar, bulk subscribe ({BULK_MESSAGES} / {BULK_AWAIT_MS} ms)")
        } else {
            format!("sidecar over HTTP, validation {validation}")
        }
    }
}

fn main() {
    let total: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    // Validation at publish on (the default) and off, then deliveries in bulk, then publishes
    // and deliveries in bulk (validation on), alternating, for the rounds.
    let mut samples = Vec::new();
    for _ in 0..rounds::rounds() {
        let one = Variant { validate: true, bulk: false, publish_batch: 0 };
        samples.push(run(total, one));
        samples.push(run(total, Variant { validate: false, ..one }));
        samples.push(run(total, Variant { bulk: true, ..one }));
        samples.push(run(total, Variant { bulk: true, publish_batch: 16, ..one }));
        samples.push(rounds::disk_bound(PUBLISHERS));
    }
    validation_alone();
    rounds::print_table(&samples);
}

/// The cost of validating one 1 KiB message against the topic's schema, by itself: the
/// parse of the body into a JSON value and the compiled schema's check.
fn validation_alone() {
    let config = analyzed();
    let topic = config.topic("bench").unwrap();
    let validator = jsonschema::draft202012::new(&topic.schema).unwrap();
    let body = format!(r#"{{"t":{:>20},"pad":"{}"}}"#, 12345, "x".repeat(990));
    let n = 200_000;
    let began = Instant::now();
    let mut valid = 0;
    for _ in 0..n {
        let value: serde_json::Value = serde_json::from_slice(body.as_bytes()).unwrap();
        valid += usize::from(validator.is_valid(&value));
    }
    let each = began.elapsed().as_secs_f64() / n as f64;
    assert_eq!(valid, n);
    println!(
        "validation alone (parse + check of a 1 KiB message): {:.2} us per message",
        each * 1e6
    );
}

fn run(total: usize, variant: Variant) -> Sample {
    let validate = variant.validate;
    let config = analyzed();
    let data = tempfile::tempdir().unwrap();
    let clients = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let seen = Arc::new(Seen {
        start: Instant::now(),
        latencies: Mutex::new(Vec::with_capacity(2 * total)),
        delivered: tokio::sync::Semaphore::new(0),
    });
    // The subscriber service.
    let app_port = clients.block_on(async {
        let mut app = axum::Router::new()
            .route("/busbar/bench/{sub}", post(deliver))
            .route("/bulk/{sub}", post(deliver_bulk));
        if variant.bulk {
            let entries: Vec<Value> = ["a", "b"]
                .iter()
                .map(|sub| {
                    serde_json::json!({
                        "pubsubname": "pubsub", "topic": "bench", "route": format!("/bulk/{sub}"),
                        "metadata": { "subscription": sub },
                        "bulkSubscribe": {
                            "enabled": true,
                            "maxMessagesCount": BULK_MESSAGES,
                            "maxAwaitDurationMs": BULK_AWAIT_MS,
                        },
                    })
                })
                .collect();
            let subscribe = move || async move { axum::Json(entries) };
            app = app.route("/dapr/subscribe", axum::routing::get(subscribe));
        }
        let app = app.with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    });
    // The sidecar, on its own runtime.
    let sidecar_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut dev = DevConfig { validate_messages: validate, ..Default::default() };
    dev.services.insert(
        "billing".into(),
        DevService { url: Some(format!("http://127.0.0.1:{app_port}")), ..Default::default() },
    );
    let options = busbar_sidecar::Options {
        data_dir: data.path().to_path_buf(),
        dev,
        disk_reserve: busbar_runtime::DEFAULT_DISK_RESERVE,
        limits: busbar_sidecar::Limits::default(),
        service: None,
        broker: None,
    };
    let sidecar = sidecar_rt.block_on(async {
        let listeners = busbar_sidecar::Listeners {
            shared: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            services: Default::default(),
        };
        busbar_sidecar::start(config, options, listeners).await.unwrap()
    });
    let url = format!("http://{}/v1.0/publish/pubsub/bench", sidecar.addr);
    let bulk_url = format!("http://{}/v1.0-alpha1/publish/bulk/pubsub/bench", sidecar.addr);
    let token = sidecar.endpoints.iter().find(|e| e.service == "orders").unwrap().token.clone();

    let start = seen.start;
    let (published, elapsed) = clients.block_on(async {
        let began = start.elapsed();
        let mut publishers = Vec::new();
        for p in 0..PUBLISHERS {
            let (url, bulk_url, token) = (url.clone(), bulk_url.clone(), token.clone());
            let batch = variant.publish_batch;
            publishers.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mine: Vec<usize> = (p..total).step_by(PUBLISHERS).collect();
                for chunk in mine.chunks(batch.max(1)) {
                    let t = start.elapsed().as_nanos() as u64;
                    // 1 KiB of JSON.
                    let body = format!(r#"{{"t":{t:>20},"pad":"{}"}}"#, "x".repeat(990));
                    let (url, body) = if batch == 0 {
                        (url.clone(), body)
                    } else {
                        let entries: Vec<String> = chunk
                            .iter()
                            .map(|i| {
                                format!(
                                    r#"{{"entryId":"{i}","event":{body},"contentType":"application/json"}}"#
                                )
                            })
                            .collect();
                        (bulk_url.clone(), format!("[{}]", entries.join(",")))
                    };
                    let r = client
                        .post(&url)
                        .header("dapr-api-token", &token)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 204);
                }
            }));
        }
        for p in publishers {
            p.await.unwrap();
        }
        let published = start.elapsed() - began;
        let _all = seen.delivered.acquire_many(2 * total as u32).await.unwrap();
        (published, start.elapsed() - began)
    });
    let mut lat = seen.latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{}: {total} messages of 1 KiB, 2 subscriptions (delivered over HTTP), {PUBLISHERS} publishers",
        variant.name()
    );
    println!(
        "  publish:   {:>8.0} msgs/s (all publishes durable in {:.2} s)",
        total as f64 / published.as_secs_f64(),
        published.as_secs_f64()
    );
    println!(
        "  delivered: {:>8.0} msgs/s per subscription ({} deliveries in {:.2} s)",
        total as f64 / elapsed.as_secs_f64(),
        2 * total,
        elapsed.as_secs_f64()
    );
    println!(
        "  latency publish -> deliver: p50 {:.1} ms, p99 {:.1} ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    sidecar_rt.block_on(sidecar.shutdown());
    Sample {
        variant: variant.name(),
        delivered: total as f64 / elapsed.as_secs_f64(),
        p99_ms: rounds::percentile_ms(&lat, 0.99),
    }
}
