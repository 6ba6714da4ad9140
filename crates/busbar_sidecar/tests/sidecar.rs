//! The sidecar over HTTP: a real app analyzed from TypeScript, the sidecar on a loopback port,
//! and a subscriber service (an axum server) that records the CloudEvents it receives.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_are_delivered_as_cloudevents_with_their_id() {
    let (url, received) = subscriber(None).await;
    let h = start(Some(url)).await.unwrap();
    let r = h
        .publish(
            "/v1.0/publish/pubsub/order-placed",
            &[ORDERS, JSON_TYPE],
            r#"{"id":"a","region":"eu"}"#,
        )
        .await;
    assert_eq!(r.status(), 204);
    let id = r.headers()["busbar-message-id"].to_str().unwrap().to_string();
    until(|| received.lock().unwrap().len() == 1).await;
    let event = received.lock().unwrap()[0].clone();
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["topic"], "order-placed");
    assert_eq!(event["pubsubname"], "pubsub");
    assert_eq!(event["data"], json!({ "id": "a", "region": "eu" }));
    assert!(event["time"].as_str().unwrap().ends_with('Z'));
    // A CloudEvent published by the app keeps its id; the token identifies the caller too.
    let ce = r#"{"id":"ce-1","source":"orders","specversion":"1.0","type":"order","data":{"id":"b","region":"uk"}}"#;
    let r = h
        .publish(
            "/v1.0/publish/pubsub/order-placed",
            &[("dapr-api-token", "orders-token"), ("content-type", "application/cloudevents+json")],
            ce,
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["busbar-message-id"], "ce-1");
    until(|| received.lock().unwrap().iter().any(|e| e["id"] == "ce-1")).await;
    // RETRY is delivered again; the same id both times.
    h.publish("/v1.0/publish/pubsub/order-placed", &[ORDERS], r#"{"id":"retry-once"}"#).await;
    until(|| {
        received.lock().unwrap().iter().filter(|e| e["data"]["id"] == "retry-once").count() == 2
    })
    .await;
    let ids: Vec<Value> = received
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["id"] == "retry-once")
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids[0], ids[1]);
    until_stored(&h, 0).await;
    let metrics =
        h.http.get(format!("{}/metrics", h.base)).send().await.unwrap().text().await.unwrap();
    let series = r#"{topic="order-placed",subscription="charge"}"#;
    for line in [
        format!("busbar_backlog{series} 0"),
        format!("busbar_dead_letters{series} 0"),
        r#"busbar_deliveries_total{topic="order-placed",subscription="charge",outcome="acknowledged"} 3"#.to_string(),
        r#"busbar_deliveries_total{topic="order-placed",subscription="charge",outcome="retried"} 1"#.to_string(),
        format!("busbar_delivery_latency_seconds_count{series} 4"),
    ] {
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in:\n{metrics}");
    }
    assert!(metrics.contains("# TYPE busbar_backlog gauge"));
    h.sidecar.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_404_are_dead_letters() {
    let (url, received) = subscriber(None).await;
    let h = start(Some(url)).await.unwrap();
    for id in ["drop", "missing"] {
        let r = h
            .publish("/v1.0/publish/pubsub/order-placed", &[ORDERS], &format!(r#"{{"id":"{id}"}}"#))
            .await;
        assert_eq!(r.status(), 204);
    }
    until(|| received.lock().unwrap().len() == 2).await;
    let mut dead = Vec::new();
    for _ in 0..500 {
        dead = h.sidecar.broker().dead_letters("order-placed", "charge").await.unwrap();
        if dead.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter().any(|d| d.reason.contains("DROP"))
            && dead.iter().any(|d| d.reason.contains("404"))
    );
    h.sidecar.shutdown().await;
}

/// Every refusal is a clear 4xx, stores nothing, and the sidecar keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_and_store_nothing() {
    let h = start(None).await.unwrap();
    assert!(
        h.sidecar.warnings.iter().any(|w| w.contains("service `billing` has no URL")),
        "{:?}",
        h.sidecar.warnings
    );
    let billing_token =
        h.sidecar.endpoints.iter().find(|e| e.service == "billing").unwrap().token.clone();
    // (path, headers, body, status, what the answer says)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("/v1.0/publish/other/order-placed", vec![ORDERS], "{}".into(), 404, "no pubsub `other`"),
        ("/v1.0/publish/pubsub/nope", vec![ORDERS], "{}".into(), 404, "no topic `nope`"),
        ("/v1.0/publish/pubsub/order-placed", vec![], "{}".into(), 403, "unidentified caller"),
        (
            "/v1.0/publish/pubsub/order-placed",
            vec![("dapr-api-token", "wrong")],
            "{}".into(),
            403,
            "no service's token",
        ),
        (
            "/v1.0/publish/pubsub/order-placed",
            vec![("dapr-app-id", "orders")],
            "{}".into(),
            403,
            "without a dapr-api-token does not identify a caller",
        ),
        (
            "/v1.0/publish/pubsub/order-placed",
            vec![("dapr-api-token", billing_token.as_str())],
            "{}".into(),
            403,
            "service `billing` may not publish to `order-placed`",
        ),
        (
            "/v1.0/publish/pubsub/order-placed",
            vec![ORDERS, JSON_TYPE],
            "{not json".into(),
            400,
            "not JSON",
        ),
        (
            "/v1.0/publish/pubsub/order-placed",
            vec![ORDERS, ("content-type", "application/cloudevents+json")],
            r#"{"id":"1"}"#.into(),
            400,
            "no `source`",
        ),
        (
            "/v1.0/publish/pubsub/order-placed",
            vec![ORDERS, ("content-type", "text/plain")],
            "x".repeat(256 * 1024 + 1),
            413,
            "limit",
        ),
    ];
    for (path, headers, body, status, says) in cases {
        let r = h.publish(path, &headers, &body).await;
        assert_eq!(r.status().as_u16(), status, "{path} {headers:?}");
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{path} {headers:?}: {text}");
    }
    assert_eq!(h.sidecar.broker().stored_messages().await.unwrap(), 0, "nothing stored");
    let ok = h.publish("/v1.0/publish/pubsub/order-placed", &[ORDERS], r#"{"id":"fine"}"#).await;
    assert_eq!(ok.status(), 204, "still serving");
    assert_eq!(
        h.sidecar.broker().stored_messages().await.unwrap(),
        1,
        "kept for billing, which has no URL yet"
    );
    for path in ["/v1.0/healthz", "/v1.0/healthz/outbound"] {
        assert_eq!(h.http.get(format!("{}{path}", h.base)).send().await.unwrap().status(), 204);
    }
    let meta: Value =
        h.http.get(format!("{}/v1.0/metadata", h.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(meta["components"][0]["name"], "pubsub");
    assert_eq!(meta["subscriptions"][0]["name"], "charge");
    h.sidecar.shutdown().await;
}

/// `/dapr/subscribe` routes a subscription; an entry the graph does not have is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dapr_subscribe_routes_and_unknown_subscriptions_are_refused() {
    let (url, received) = subscriber(Some(
        json!([{ "pubsubname": "pubsub", "topic": "order-placed", "route": "/orders" }]),
    ))
    .await;
    let h = start(Some(url)).await.unwrap();
    h.publish("/v1.0/publish/pubsub/order-placed", &[ORDERS], r#"{"id":"routed"}"#).await;
    until(|| received.lock().unwrap().len() == 1).await;
    h.sidecar.shutdown().await;

    let (url, _) = subscriber(Some(
        json!([{ "pubsubname": "pubsub", "topic": "refund-issued", "route": "/refunds" }]),
    ))
    .await;
    let Err(e) = start(Some(url)).await else { panic!("started") };
    assert!(
        e.to_string().contains("asks for topic `refund-issued`")
            && e.to_string().contains("no subscription"),
        "{e}"
    );
}

/// Bulk publish: 204 when every entry is stored; otherwise 500 listing the entries that failed,
/// the others stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_publish_stores_every_entry_or_lists_the_failures() {
    let (url, received) = subscriber(None).await;
    let h = start(Some(url)).await.unwrap();
    let all = json!([
        { "entryId": "1", "event": { "id": "bulk-1" }, "contentType": "application/json" },
        { "entryId": "2", "event": { "id": "bulk-2" }, "contentType": "application/json" },
        { "entryId": "3", "event": { "id": "ce", "source": "orders", "specversion": "1.0", "type": "t", "data": { "id": "bulk-3" } }, "contentType": "application/cloudevents+json" },
    ]);
    let r = h
        .publish(
            "/v1.0-alpha1/publish/bulk/pubsub/order-placed",
            &[ORDERS, JSON_TYPE],
            &all.to_string(),
        )
        .await;
    assert_eq!(r.status(), 204);
    until(|| received.lock().unwrap().len() == 3).await;
    let mixed = json!([
        { "entryId": "a", "event": { "id": "bulk-4" }, "contentType": "application/json" },
        { "entryId": "b", "event": { "id": "x" }, "contentType": "application/cloudevents+json" },
        { "entryId": "c", "event": "x".repeat(256 * 1024 + 1), "contentType": "text/plain" },
    ]);
    let r = h
        .publish("/v1.0/publish/bulk/pubsub/order-placed", &[ORDERS, JSON_TYPE], &mixed.to_string())
        .await;
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    let failed: Vec<&str> = body["failedEntries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entryId"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["b", "c"]);
    until(|| received.lock().unwrap().iter().any(|e| e["data"]["id"] == "bulk-4")).await;
    let denied = h
        .publish(
            "/v1.0-alpha1/publish/bulk/pubsub/order-placed",
            &[("dapr-app-id", "billing"), JSON_TYPE],
            &all.to_string(),
        )
        .await;
    assert_eq!(denied.status(), 403);
    h.sidecar.shutdown().await;
}

/// On its own port, a service is the caller only with its own token; on the shared port, the
/// service of the token sent (configured or generated into the data dir, and the same after a
/// restart). A `dapr-app-id` alone identifies no one unless `[dev] trust-app-id = true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_identified_by_port_token_or_app_id() {
    let data = tempfile::tempdir().unwrap();
    let sidecar = start_in(data.path(), None).await.unwrap();
    let endpoint =
        |name: &str| sidecar.endpoints.iter().find(|e| e.service == name).cloned().unwrap();
    let (orders, billing) = (endpoint("orders"), endpoint("billing"));
    assert_eq!((orders.token.as_str(), orders.generated), ("orders-token", false));
    assert!(billing.generated && billing.token.len() == 32, "{billing:?}");
    assert_eq!(billing.port, None);
    let tokens = busbar_sidecar::identity::tokens_file(data.path());
    let stored: Value = serde_json::from_slice(&std::fs::read(&tokens).unwrap()).unwrap();
    assert_eq!(stored, json!({ "billing": billing.token }), "only generated tokens are stored");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tokens).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is its owner's only");
    }

    let http = reqwest::Client::new();
    let shared = format!("http://{}", sidecar.addr);
    let own = format!("http://127.0.0.1:{}", orders.port.unwrap());
    let publish = |base: &str, headers: Vec<(&str, String)>| {
        let mut req = http
            .post(format!("{base}/v1.0/publish/pubsub/order-placed"))
            .header("content-type", "application/json")
            .body(r#"{"id":"x"}"#);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // (base, headers, status, what the answer says)
    let cases = [
        (own.clone(), vec![], 403, "this port is service `orders`'s: send its dapr-api-token"),
        (own.clone(), vec![("dapr-api-token", "orders-token".to_string())], 204, ""),
        (own.clone(), vec![("dapr-app-id", "orders".to_string())], 403, "send its dapr-api-token"),
        (
            own.clone(),
            vec![("dapr-api-token", billing.token.clone())],
            403,
            "this port is service `orders`'s",
        ),
        (shared.clone(), vec![("dapr-api-token", "orders-token".to_string())], 204, ""),
        (
            shared.clone(),
            vec![("dapr-api-token", billing.token.clone())],
            403,
            "service `billing` may not publish to `order-placed`",
        ),
        (
            shared.clone(),
            vec![("dapr-api-token", billing.token.clone()), ("dapr-app-id", "orders".to_string())],
            403,
            "service `billing` may not publish",
        ),
        (shared.clone(), vec![], 403, "unidentified caller"),
        (
            shared.clone(),
            vec![("dapr-app-id", "orders".to_string())],
            403,
            "set `trust-app-id = true`",
        ),
    ];
    for (base, headers, status, says) in cases {
        let label = format!("{base} {headers:?}");
        let (got, text) = publish(&base, headers).await;
        assert_eq!(got, status, "{label}: {text}");
        assert!(text.contains(says), "{label}: {text}");
    }
    sidecar.shutdown().await;

    let again = start_with(data.path(), None, |o| o.dev.trust_app_id = true).await.unwrap();
    let same = again.endpoints.iter().find(|e| e.service == "billing").unwrap();
    assert_eq!(same.token, billing.token, "a generated token survives a restart");
    let shared = format!("http://{}", again.addr);
    let trusted = [
        (vec![("dapr-app-id", "orders".to_string())], 204, ""),
        (vec![("dapr-app-id", "nobody".to_string())], 403, "names no service"),
    ];
    for (headers, status, says) in trusted {
        let label = format!("trust-app-id {headers:?}");
        let (got, text) = publish(&shared, headers).await;
        assert_eq!(got, status, "{label}: {text}");
        assert!(text.contains(says), "{label}: {text}");
    }
    again.shutdown().await;
}

/// A service that starts after the sidecar is not an error: its deliveries wait (retried), and
/// its routes are read from its `/dapr/subscribe` once it answers. The entry names the
/// subscription in `metadata.subscription` JSON-encoded, as the Dapr JavaScript SDK sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_starts_later_has_its_routes_read_when_it_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let h = start(Some(format!("http://127.0.0.1:{port}"))).await.unwrap();
    assert!(
        h.sidecar.warnings.iter().any(|w| w.contains("service `billing` does not answer")),
        "{:?}",
        h.sidecar.warnings
    );
    let r = h.publish("/v1.0/publish/pubsub/order-placed", &[ORDERS], r#"{"id":"early"}"#).await;
    assert_eq!(r.status(), 204);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let received: Received = Arc::default();
    let entries = json!([{
        "pubsubname": "pubsub",
        "topic": "order-placed",
        "route": "/on-order",
        "metadata": { "subscription": "\"charge\"" }
    }]);
    let app = Router::new()
        .route("/dapr/subscribe", get(move || async move { Json(entries) }))
        .route(
            "/on-order",
            post(|State(r): State<Received>, Json(event): Json<Value>| async move {
                r.lock().unwrap().push(event);
                Json(json!({ "status": "SUCCESS" }))
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    until(|| received.lock().unwrap().len() == 1).await;
    assert_eq!(received.lock().unwrap()[0]["data"]["id"], "early");
    let dead = h.sidecar.broker().dead_letters("order-placed", "charge").await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    h.sidecar.shutdown().await;
}

/// Dapr's `metadata.cloudevent.id` is a client message id too: on an exactly-once topic it
/// de-duplicates; here (at-least-once) it becomes the message id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloudevent_id_metadata_sets_the_message_id() {
    let h = start(None).await.unwrap();
    let r = h
        .publish(
            "/v1.0/publish/pubsub/order-placed?metadata.cloudevent.id=client-7",
            &[ORDERS],
            r#"{"id":"x"}"#,
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["busbar-message-id"], "client-7");
    h.sidecar.shutdown().await;
}

/// Dapr's `bulkSubscribe`: deliveries go in batches of at most `maxMessagesCount`, each message
/// settled by its own entry's status (RETRY again, DROP a dead letter, an entry the answer
/// leaves out again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_subscribe_delivers_batches_and_settles_each_entry() {
    type Requests = Arc<std::sync::Mutex<Vec<Value>>>;
    let requests: Requests = Arc::default();
    let handler = |State(r): State<Requests>, Json(request): Json<Value>| async move {
        let mut r = r.lock().unwrap();
        let seen_before = |id: &str| {
            r.iter()
                .flat_map(|q| q["entries"].as_array().unwrap().clone())
                .any(|e| e["event"]["data"]["id"] == id)
        };
        let mut statuses = Vec::new();
        for entry in request["entries"].as_array().unwrap() {
            let id = entry["event"]["data"]["id"].as_str().unwrap_or_default().to_string();
            let status = match id.as_str() {
                "retry-once" if !seen_before(&id) => "RETRY",
                "left-out" if !seen_before(&id) => continue,
                "drop" => "DROP",
                _ => "SUCCESS",
            };
            statuses.push(json!({ "entryId": entry["entryId"], "status": status }));
        }
        r.push(request);
        Json(json!({ "statuses": statuses }))
    };
    let entries = json!([{
        "pubsubname": "pubsub", "topic": "order-placed", "route": "/bulk",
        "bulkSubscribe": { "enabled": true, "maxMessagesCount": 5, "maxAwaitDurationMs": 300 }
    }]);
    let app = Router::new()
        .route("/bulk", post(handler))
        .route("/dapr/subscribe", get(move || async move { Json(entries) }))
        .with_state(requests.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let h = Arc::new(start(Some(url)).await.unwrap());

    let mut ids: Vec<String> = (0..9).map(|i| format!("plain-{i}")).collect();
    ids.extend(["retry-once", "left-out", "drop"].map(String::from));
    let publishes: Vec<_> = ids
        .iter()
        .map(|id| {
            let (h, body) = (h.clone(), format!(r#"{{"id":"{id}"}}"#));
            tokio::spawn(async move {
                h.publish("/v1.0/publish/pubsub/order-placed", &[ORDERS], &body).await.status()
            })
        })
        .collect();
    for p in publishes {
        assert_eq!(p.await.unwrap(), 204);
    }
    let delivered = |id: &str| {
        requests
            .lock()
            .unwrap()
            .iter()
            .flat_map(|q| q["entries"].as_array().unwrap().clone())
            .filter(|e| e["event"]["data"]["id"] == id)
            .count()
    };
    until(|| ids.iter().all(|id| delivered(id) >= 1)).await;
    until(|| delivered("retry-once") == 2 && delivered("left-out") == 2).await;
    until_stored(&h, 1).await;
    let dead = h.sidecar.broker().dead_letters("order-placed", "charge").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("DROP"), "{}", dead[0].reason);
    for id in ids.iter().filter(|id| id.starts_with("plain")) {
        assert_eq!(delivered(id), 1, "{id}");
    }
    let requests = requests.lock().unwrap().clone();
    assert!(requests.iter().all(|q| q["entries"].as_array().unwrap().len() <= 5));
    assert!(requests.len() < 12, "{} requests for 12 messages: not batched", requests.len());
    for q in &requests {
        assert_eq!(q["topic"], "order-placed");
        assert_eq!(q["pubsubname"], "pubsub");
        let entries = q["entries"].as_array().unwrap();
        let entry_ids: std::collections::BTreeSet<&str> =
            entries.iter().map(|e| e["entryId"].as_str().unwrap()).collect();
        assert_eq!(entry_ids.len(), entries.len(), "entry ids repeat: {q}");
        for e in entries {
            assert_eq!(e["contentType"], "application/cloudevents+json");
            assert_eq!(e["event"]["specversion"], "1.0");
            assert_eq!(e["event"]["topic"], "order-placed");
        }
    }
    match Arc::try_unwrap(h) {
        Ok(h) => h.sidecar.shutdown().await,
        Err(_) => panic!("the harness is still shared"),
    }
}
