//! The harness of the sidecar tests: a real app analyzed from TypeScript, the sidecar on a
//! loopback port, and a subscriber service (an axum server) that records the CloudEvents it
//! receives.

#![allow(dead_code, reason = "each test crate uses part of the harness")]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use busbar_config::{DevConfig, DevService};
use serde_json::{Value, json};

pub fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// orders publishes `order-placed` (with a `region` attribute); billing subscribes to it as
/// `charge` and publishes nothing.
pub fn analyzed() -> busbar_model::runtime::RuntimeConfig {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "orders/encore.service.ts",
        "import { Service } from \"encore.dev/service\";\nexport default new Service(\"orders\");\n",
    );
    write(
        dir,
        "billing/encore.service.ts",
        "import { Service } from \"encore.dev/service\";\nexport default new Service(\"billing\");\n",
    );
    write(
        dir,
        "orders/topics.ts",
        "import { Topic, Attribute } from \"encore.dev/pubsub\";\nexport interface Order { id: string; region: Attribute<string>; }\nexport const placed = new Topic<Order>(\"order-placed\", { deliveryGuarantee: \"at-least-once\" });\nexport async function place() { await placed.publish({ id: \"1\", region: \"eu\" }); }\n",
    );
    write(
        dir,
        "billing/charge.ts",
        "import { Subscription } from \"encore.dev/pubsub\";\nimport { placed } from \"../orders/topics\";\nnew Subscription(placed, \"charge\", { handler: async () => {}, retryPolicy: { minBackoff: \"1s\", maxBackoff: \"1s\", maxRetries: 2 } });\n",
    );
    analyze_dir(dir)
}

/// The runtime contract of the app in `dir` (as `busbar dev` builds it), which must have no
/// error.
pub fn analyze_dir(dir: &Path) -> busbar_model::runtime::RuntimeConfig {
    let config = busbar_config::Config::default();
    let options = busbar_analysis::Options { threads: 1, checker: None, parse_all: false };
    let analysis = busbar_analysis::analyze(dir, &config, &options, &[busbar_ts::FRONTEND]);
    assert!(analysis.diagnostics.iter().all(|d| !d.is_error()), "{:?}", analysis.diagnostics);
    let graph = busbar_graph::PermissionGraph::build(&analysis.model);
    busbar_plan::runtime_config(&analysis.model, &graph, &busbar_plan::Settings::default())
}

pub type Received = Arc<Mutex<Vec<Value>>>;

/// A subscriber whose answer depends on the message's `id` field: `retry-once` fails its first
/// delivery, `drop` answers DROP, `missing` answers 404; the rest succeed.
pub async fn subscriber(subscribe: Option<Value>) -> (String, Received) {
    let received: Received = Arc::default();
    let handler = |State(r): State<Received>, Json(event): Json<Value>| async move {
        let id = event.pointer("/data/id").and_then(Value::as_str).unwrap_or_default().to_string();
        let earlier = {
            let mut r = r.lock().unwrap();
            let earlier = r
                .iter()
                .filter(|e| e.pointer("/data/id").and_then(Value::as_str) == Some(&id))
                .count();
            r.push(event);
            earlier
        };
        match id.as_str() {
            "retry-once" if earlier == 0 => (StatusCode::OK, Json(json!({ "status": "RETRY" }))),
            "drop" => (StatusCode::OK, Json(json!({ "status": "DROP" }))),
            "missing" => (StatusCode::NOT_FOUND, Json(json!({}))),
            _ => (StatusCode::OK, Json(json!({ "status": "SUCCESS" }))),
        }
    };
    let mut app = Router::new()
        .route("/busbar/order-placed/charge", post(handler))
        .route("/orders", post(handler));
    if let Some(entries) = subscribe {
        app = app.route("/dapr/subscribe", get(move || async move { Json(entries) }));
    }
    let app = app.with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

pub struct Harness {
    pub sidecar: busbar_sidecar::Running,
    pub base: String,
    pub http: reqwest::Client,
    pub _data: tempfile::TempDir,
}

/// The sidecar on a fresh data dir: orders has the token `orders-token` and a port of its own;
/// billing's token is generated.
pub async fn start(billing_url: Option<String>) -> Result<Harness, busbar_sidecar::StartError> {
    let data = tempfile::tempdir().unwrap();
    let sidecar = start_in(data.path(), billing_url).await?;
    let base = format!("http://{}", sidecar.addr);
    Ok(Harness { sidecar, base, http: reqwest::Client::new(), _data: data })
}

pub async fn start_in(
    data: &Path,
    billing_url: Option<String>,
) -> Result<busbar_sidecar::Running, busbar_sidecar::StartError> {
    start_with(data, billing_url, |_| {}).await
}

/// The same, with the options changed by `tweak` first.
pub async fn start_with(
    data: &Path,
    billing_url: Option<String>,
    tweak: impl FnOnce(&mut busbar_sidecar::Options),
) -> Result<busbar_sidecar::Running, busbar_sidecar::StartError> {
    let config = analyzed();
    // These tests are about delivery, identity and limits, and publish bodies of every shape:
    // validation at publish is off here and tested on its own (`validation.rs`).
    let mut dev = DevConfig { validate_messages: false, ..Default::default() };
    dev.services.insert("billing".into(), DevService { url: billing_url, ..Default::default() });
    let orders_port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    dev.services.insert(
        "orders".into(),
        DevService {
            token: Some("orders-token".into()),
            port: Some(orders_port.local_addr().unwrap().port()),
            ..Default::default()
        },
    );
    let mut options = busbar_sidecar::Options {
        data_dir: data.to_path_buf(),
        dev,
        disk_reserve: busbar_runtime::DEFAULT_DISK_RESERVE,
        limits: busbar_sidecar::Limits::default(),
        service: None,
        broker: None,
    };
    tweak(&mut options);
    let listeners = busbar_sidecar::Listeners {
        shared: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        services: [("orders".to_string(), orders_port)].into(),
    };
    busbar_sidecar::start(config, options, listeners).await
}

impl Harness {
    pub async fn publish(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }
}

pub async fn until(mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition never held");
}

/// orders' token (from busbar.toml).
pub const ORDERS: (&str, &str) = ("dapr-api-token", "orders-token");
pub const JSON_TYPE: (&str, &str) = ("content-type", "application/json");

pub async fn until_stored(h: &Harness, n: i64) {
    for _ in 0..500 {
        if h.sidecar.broker().stored_messages().await.unwrap() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never {n} messages stored");
}
