//! A reload: the running sidecar takes a new graph without a restart, and nothing accepted is
//! lost across it.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::post;
use busbar_config::{DevConfig, DevService};
use serde_json::{Value, json};
use support::{JSON_TYPE, ORDERS, write};

/// The app with billing's subscription to order-placed named `sub`, and orders publishing
/// order-cancelled too when `cancels`.
fn analyzed(sub: &str, cancels: bool) -> busbar_model::runtime::RuntimeConfig {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for service in ["orders", "billing"] {
        write(
            dir,
            &format!("{service}/encore.service.ts"),
            &format!(
                "import {{ Service }} from \"@busbar/pubsub\";\nexport default new Service(\"{service}\");\n"
            ),
        );
    }
    let cancel = if cancels { "await cancelled.publish({ id: \"1\" });" } else { "" };
    write(
        dir,
        "orders/topics.ts",
        &format!(
            "import {{ Topic }} from \"@busbar/pubsub\";\nexport interface Order {{ id: string; }}\nexport const placed = new Topic<Order>(\"order-placed\", {{ deliveryGuarantee: \"at-least-once\" }});\nexport const cancelled = new Topic<Order>(\"order-cancelled\", {{ deliveryGuarantee: \"at-least-once\" }});\nexport async function place() {{ await placed.publish({{ id: \"1\" }}); {cancel} }}\n"
        ),
    );
    write(
        dir,
        "billing/charge.ts",
        &format!(
            "import {{ Subscription }} from \"@busbar/pubsub\";\nimport {{ placed }} from \"../orders/topics\";\nnew Subscription(placed, \"{sub}\", {{ handler: async () => {{}} }});\n"
        ),
    );
    support::analyze_dir(dir)
}

type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A service recording (subscription, message id) of each delivery.
async fn recorder() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let handler = |State(seen): State<Seen>,
                   Path((_topic, sub)): Path<(String, String)>,
                   Json(event): Json<Value>| async move {
        let id = event.pointer("/data/id").and_then(Value::as_str).unwrap_or_default();
        seen.lock().unwrap().push((sub, id.to_string()));
        Json(json!({ "status": "SUCCESS" }))
    };
    let app =
        axum::Router::new().route("/busbar/{topic}/{sub}", post(handler)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn dev(billing: Option<String>) -> DevConfig {
    let mut dev = DevConfig::default();
    dev.services.insert("billing".into(), DevService { url: billing, ..Default::default() });
    dev.services.insert(
        "orders".into(),
        DevService { token: Some("orders-token".into()), ..Default::default() },
    );
    dev
}

/// The sidecar on `data` for the app with `charge`, billing without a URL.
async fn start(data: &std::path::Path) -> busbar_sidecar::Running {
    let config = analyzed("charge", true);
    let options = busbar_sidecar::Options {
        data_dir: data.to_path_buf(),
        dev: dev(None),
        disk_reserve: 0,
        limits: busbar_sidecar::Limits::default(),
        service: None,
        broker: None,
    };
    let listeners = busbar_sidecar::Listeners {
        shared: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        services: Default::default(),
    };
    busbar_sidecar::start(config, options, listeners).await.unwrap()
}

async fn publish(http: &reqwest::Client, base: &str, topic: &str, id: &str) -> u16 {
    http.post(format!("{base}/v1.0/publish/pubsub/{topic}"))
        .header(ORDERS.0, ORDERS.1)
        .header(JSON_TYPE.0, JSON_TYPE.1)
        .body(json!({ "id": id }).to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_swaps_the_graph_and_loses_nothing_accepted() {
    let data = tempfile::tempdir().unwrap();
    let mut sidecar = start(data.path()).await;
    let base = format!("http://{}", sidecar.addr);
    let http = reqwest::Client::new();
    // billing has no URL yet: `charge` keeps what is published.
    for i in 0..3 {
        assert_eq!(publish(&http, &base, "order-placed", &format!("before-{i}")).await, 204);
    }
    assert_eq!(publish(&http, &base, "order-cancelled", "c").await, 204);

    // Publishing goes on, from another task, while the graph is swapped.
    let (url, seen) = recorder().await;
    let during = tokio::spawn({
        let (http, base) = (http.clone(), base.clone());
        async move {
            let mut accepted = Vec::new();
            for i in 0..300 {
                let id = format!("during-{i}");
                let status = publish(&http, &base, "order-placed", &id).await;
                assert_eq!(status, 204, "{id} refused");
                accepted.push(id);
            }
            accepted
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let config = analyzed("bill", false);
    let warnings = sidecar.reload(config, dev(Some(url))).await.unwrap();
    let accepted = during.await.unwrap();

    // The grant the new code no longer has is gone.
    assert_eq!(publish(&http, &base, "order-cancelled", "c2").await, 403);
    assert_eq!(publish(&http, &base, "order-placed", "after").await, 204);

    // Every accepted message is owed to `charge` (published before the swap: kept, retired)
    // or delivered to `bill` (after it), none to both, none to neither.
    let body = |text: String| text;
    let retired = loop {
        let metrics =
            body(http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap());
        let delivered: BTreeSet<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(s, id)| {
                assert_eq!(s, "bill", "only the new subscription receives");
                id.clone()
            })
            .collect();
        let retired: u64 = metrics
            .lines()
            .find(|l| {
                l.starts_with(
                    "busbar_retired_backlog{topic=\"order-placed\",subscription=\"charge\"}",
                )
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_default();
        if delivered.contains("after")
            && delivered.len() as u64 + retired == accepted.len() as u64 + 4
        {
            break retired;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(retired >= 3, "the three published before billing had a URL are kept");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("subscription `charge` of `order-placed` is no longer in the app")),
        "{warnings:?}"
    );
    sidecar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_that_comes_back_gets_its_backlog() {
    let data = tempfile::tempdir().unwrap();
    let mut sidecar = start(data.path()).await;
    let base = format!("http://{}", sidecar.addr);
    let http = reqwest::Client::new();
    for i in 0..5 {
        assert_eq!(publish(&http, &base, "order-placed", &format!("m{i}")).await, 204);
    }
    let config = analyzed("bill", true);
    sidecar.reload(config, dev(None)).await.unwrap();
    let (url, seen) = recorder().await;
    let config = analyzed("charge", true);
    let warnings = sidecar.reload(config, dev(Some(url))).await.unwrap();
    assert!(warnings.iter().all(|w| !w.contains("no longer in the app")), "{warnings:?}");
    support::until(|| seen.lock().unwrap().len() >= 5).await;
    let got: BTreeSet<(String, String)> = seen.lock().unwrap().iter().cloned().collect();
    let want: BTreeSet<(String, String)> =
        (0..5).map(|i| ("charge".to_string(), format!("m{i}"))).collect();
    assert_eq!(got, want);
    sidecar.shutdown().await;
}
