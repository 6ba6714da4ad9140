//! What the sidecar refuses, bounds and keeps exact: each test reproduces a finding of the
//! hardening review (issue 12) that the sidecar got wrong before.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::routing::post;
use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use support::*;

type Bodies = Arc<Mutex<Vec<Vec<u8>>>>;

/// A subscriber that records each CloudEvent as the bytes it received and acknowledges it.
async fn raw_subscriber() -> (String, Bodies) {
    let bodies: Bodies = Arc::default();
    let app = Router::new()
        .route(
            "/busbar/order-placed/charge",
            post(|State(b): State<Bodies>, body: Bytes| async move {
                b.lock().unwrap().push(body.to_vec());
                ""
            }),
        )
        .with_state(bodies.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

#[derive(Deserialize)]
struct Delivered<'a> {
    datacontenttype: String,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    data_base64: Option<String>,
}

/// The bytes a CloudEvent carries, and their content type, as a subscriber reads them.
fn carried(event: &[u8]) -> (Vec<u8>, String) {
    let e: Delivered = serde_json::from_slice(event).unwrap();
    let bytes = match (e.data, e.data_base64) {
        (_, Some(b64)) => base64::engine::general_purpose::STANDARD.decode(b64).unwrap(),
        (Some(raw), None) if e.datacontenttype.contains("json") => raw.get().as_bytes().to_vec(),
        (Some(raw), None) => serde_json::from_str::<String>(raw.get()).unwrap().into_bytes(),
        (None, None) => Vec::new(),
    };
    (bytes, e.datacontenttype)
}

async fn post_raw(h: &Harness, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    h.http
        .post(format!("{}{path}", h.base))
        .header(ORDERS.0, ORDERS.1)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Every payload the sidecar accepts reaches the subscriber byte for byte, with its content
/// type: JSON as written (number formats, escapes, key order), text as a string, binary and
/// invalid UTF-8 as `data_base64`, a CloudEvent's `data_base64` and text data unwrapped, and a
/// CloudEvent published with `rawPayload` delivered whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_payloads_are_delivered_byte_exact() {
    let (url, bodies) = raw_subscriber().await;
    let h = start(Some(url)).await.unwrap();
    let all_bytes: Vec<u8> = (0..=255).collect();
    let ce = |extra: &str| {
        format!(r#"{{"id":"ce","source":"s","specversion":"1.0","type":"t",{extra}}}"#).into_bytes()
    };
    // (path suffix, content type, body, the bytes delivered, their content type)
    type Case<'a> = (&'a str, &'a str, Vec<u8>, Vec<u8>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "",
            "application/json",
            br#"{"b":1.50,"a":"\u00e9\n","big":12345678901234567890123}"#.to_vec(),
            br#"{"b":1.50,"a":"\u00e9\n","big":12345678901234567890123}"#.to_vec(),
            "application/json",
        ),
        (
            "",
            "text/plain; charset=utf-8",
            "héllo\0 wörld".into(),
            "héllo\0 wörld".into(),
            "text/plain; charset=utf-8",
        ),
        (
            "",
            "application/octet-stream",
            all_bytes.clone(),
            all_bytes.clone(),
            "application/octet-stream",
        ),
        (
            "",
            "text/plain",
            vec![b'a', 0xff, 0xfe, b'z'],
            vec![b'a', 0xff, 0xfe, b'z'],
            "text/plain",
        ),
        (
            "",
            "application/xml",
            b"<a x=\"1\"/>".to_vec(),
            b"<a x=\"1\"/>".to_vec(),
            "application/xml",
        ),
        (
            "",
            "application/cloudevents+json",
            ce(r#""data_base64":"AAEC/w==""#),
            vec![0, 1, 2, 255],
            "application/octet-stream",
        ),
        (
            "",
            "application/cloudevents+json",
            ce(r#""datacontenttype":"text/xml","data":"<n>1</n>""#),
            b"<n>1</n>".to_vec(),
            "text/xml",
        ),
        (
            "?metadata.rawPayload=true",
            "application/cloudevents+json",
            ce(r#""data":{"x":1}"#),
            ce(r#""data":{"x":1}"#),
            "application/cloudevents+json",
        ),
    ];
    for (k, (suffix, content_type, body, _, _)) in cases.iter().enumerate() {
        let path = format!("/v1.0/publish/pubsub/order-placed{suffix}");
        let r = post_raw(&h, &path, content_type, body.clone()).await;
        assert_eq!(r.status(), 204, "case {k}: {}", r.text().await.unwrap());
        until(|| bodies.lock().unwrap().len() == k + 1).await;
    }
    let got = bodies.lock().unwrap().clone();
    for (k, ((_, _, _, bytes, content_type), event)) in cases.iter().zip(&got).enumerate() {
        let (data, ct) = carried(event);
        assert_eq!((&data, ct.as_str()), (bytes, *content_type), "case {k}");
    }
    let failures = h.sidecar.broker().dead_letters("order-placed", "charge").await.unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    h.sidecar.shutdown().await;
}

/// JSON no reader can take (out-of-range numbers, lone surrogates, invalid UTF-8, nesting past
/// the parse limit) is refused at publish, in a plain body, a CloudEvent and a bulk entry, and
/// nothing is stored: before, each was answered 204 and every delivery then panicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrepresentable_json_is_refused_and_never_stored() {
    let h = start(None).await.unwrap();
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let bad: Vec<Vec<u8>> = vec![
        b"1e999".to_vec(),
        br#"{"id":"\ud800"}"#.to_vec(),
        b"{\"id\":\"\xff\xfe\"}".to_vec(),
        deep.into_bytes(),
    ];
    for body in &bad {
        let shown = String::from_utf8_lossy(body).chars().take(40).collect::<String>();
        let r = post_raw(&h, "/v1.0/publish/pubsub/order-placed", "application/json", body.clone())
            .await;
        assert_eq!(r.status(), 400, "{shown}");
        let mut ce = br#"{"id":"1","source":"s","specversion":"1.0","type":"t","data":"#.to_vec();
        ce.extend_from_slice(body);
        ce.push(b'}');
        let r =
            post_raw(&h, "/v1.0/publish/pubsub/order-placed", "application/cloudevents+json", ce)
                .await;
        assert_eq!(r.status(), 400, "CloudEvent with {shown}");
        let mut bulk = br#"[{"entryId":"1","contentType":"application/json","event":"#.to_vec();
        bulk.extend_from_slice(body);
        bulk.extend_from_slice(b"}]");
        let r =
            post_raw(&h, "/v1.0-alpha1/publish/bulk/pubsub/order-placed", "application/json", bulk)
                .await;
        assert_eq!(r.status(), 400, "bulk with {shown}");
    }
    assert_eq!(h.sidecar.broker().stored_messages().await.unwrap(), 0);
    h.sidecar.shutdown().await;
}

/// Requests from a web page are refused: a `Host` that is not loopback (DNS rebinding), an
/// `Origin` of another site, and non-JSON bodies (CORS simple requests) on JSON endpoints; the
/// admin API needs its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_strangers_cannot_act() {
    let h = start(None).await.unwrap();
    let publish = format!("{}/v1.0/publish/pubsub/order-placed", h.base);
    let send = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let with_token = |req: reqwest::RequestBuilder| req.header(ORDERS.0, ORDERS.1).body("{}");
    let cases = [
        (
            with_token(h.http.post(&publish)).header("host", "evil.example:3500"),
            403,
            "not a loopback name",
        ),
        (
            with_token(h.http.post(&publish)).header("origin", "https://evil.example"),
            403,
            "only loopback pages",
        ),
        (with_token(h.http.post(&publish)).header("origin", "null"), 403, "only loopback pages"),
        (with_token(h.http.post(&publish)).header("origin", "http://localhost:3000"), 204, ""),
        (
            h.http
                .post(format!("{}/v1.0-alpha1/publish/bulk/pubsub/order-placed", h.base))
                .header(ORDERS.0, ORDERS.1)
                .header("content-type", "text/plain")
                .body("[]"),
            415,
            "takes application/json",
        ),
        (h.http.get(format!("{}/v1.0-busbar/dlq", h.base)), 401, "admin-token"),
        (
            h.http
                .post(format!("{}/v1.0-busbar/dlq/release", h.base))
                .header("content-type", "application/json")
                .body("{}"),
            401,
            "admin-token",
        ),
        (
            h.http
                .post(format!("{}/v1.0-busbar/dlq/release", h.base))
                .bearer_auth(&h.sidecar.admin_token)
                .header("content-type", "text/plain")
                .body("{}"),
            415,
            "takes application/json",
        ),
        (
            h.http.get(format!("{}/v1.0-busbar/dlq", h.base)).bearer_auth("wrong"),
            401,
            "admin-token",
        ),
        (
            h.http.get(format!("{}/v1.0-busbar/dlq", h.base)).bearer_auth(&h.sidecar.admin_token),
            200,
            "charge",
        ),
    ];
    for (k, (req, status, says)) in cases.into_iter().enumerate() {
        let (got, text) = send(req).await;
        assert_eq!(got, status, "case {k}: {text}");
        assert!(text.contains(says), "case {k}: {text}");
    }
    let token = std::fs::read_to_string(busbar_sidecar::identity::admin_token_file(h._data.path()))
        .unwrap();
    assert_eq!(token.trim(), h.sidecar.admin_token);
    let info: serde_json::Value = h
        .http
        .get(format!("{}/v1.0-busbar/info", h.base))
        .bearer_auth(&h.sidecar.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dir = std::fs::canonicalize(h._data.path()).unwrap();
    assert_eq!(info["dataDir"], dir.display().to_string());
    h.sidecar.shutdown().await;
}

/// A subscriber that answers 200 with a body that never ends: the sidecar reads 64 KiB of it,
/// fails the delivery (logged) and does not hold the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_fails_the_delivery() {
    let app = Router::new().route(
        "/busbar/order-placed/charge",
        post(|| async {
            let chunk = Bytes::from(vec![b' '; 64 << 10]);
            let endless =
                futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            Body::from_stream(endless)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut h = start(Some(url)).await.unwrap();
    let mut failures = h.sidecar.failures.take().unwrap();
    let r = h.publish("/v1.0/publish/pubsub/order-placed", &[ORDERS], r#"{"id":"1"}"#).await;
    assert_eq!(r.status(), 204);
    let failed =
        tokio::time::timeout(Duration::from_secs(10), failures.recv()).await.unwrap().unwrap();
    assert!(failed.error.contains("over 65536 bytes"), "{failed:?}");
    h.sidecar.shutdown().await;
}

/// A connection that sends no request header is closed after the header-read limit, also
/// after a first request (idle keep-alive); at the connection cap, new connections wait (with a
/// log line) and are served once idle ones are closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data = tempfile::tempdir().unwrap();
    let mut sidecar = start_with(data.path(), None, |o| {
        o.limits.connections = 4;
        o.limits.header_read = Duration::from_millis(500);
    })
    .await
    .unwrap();
    let mut log = sidecar.log.take().unwrap();
    let addr = sidecar.addr;
    // Silent connections fill the cap.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let line = tokio::time::timeout(Duration::from_secs(5), async {
        // A fifth connection waits: the cap is reached.
        let _fifth = tokio::net::TcpStream::connect(addr).await.unwrap();
        log.recv().await.unwrap()
    })
    .await
    .unwrap();
    assert!(line.contains("connection limit reached (4 open)"), "{line}");
    // The silent ones are closed by the server (a read sees the end).
    for s in &mut silent {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap();
        assert!(
            matches!(n, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).contains("408"),
            "{n:?}"
        );
    }
    // Then the sidecar serves again; a kept-alive connection idle after its request is closed too.
    let mut kept = tokio::net::TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /v1.0/healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n =
        tokio::time::timeout(Duration::from_secs(5), kept.read(&mut buf)).await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 204"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let closed = tokio::time::timeout(Duration::from_secs(5), kept.read(&mut buf)).await.unwrap();
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    sidecar.shutdown().await;
}

/// Two sidecars on one data directory: the second is refused, naming the first's pid; the WAL
/// deleted under a running sidecar turns publishes into 503 and the health check with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sidecar_per_data_directory_and_a_lost_wal_is_503() {
    let data = tempfile::tempdir().unwrap();
    let first = start_in(data.path(), None).await.unwrap();
    let Err(e) = start_in(data.path(), None).await else { panic!("a second sidecar started") };
    assert!(e.to_string().contains(&format!("pid {}", std::process::id())), "{e}");
    let http = reqwest::Client::new();
    let base = format!("http://{}", first.addr);
    let publish = || {
        http.post(format!("{base}/v1.0/publish/pubsub/order-placed"))
            .header(ORDERS.0, ORDERS.1)
            .body(r#"{"id":"1"}"#)
            .send()
    };
    assert_eq!(publish().await.unwrap().status(), 204);
    std::fs::remove_file(data.path().join("busbar.db-wal")).unwrap();
    let r = publish().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("busbar.db-wal was deleted"));
    let health = http.get(format!("{base}/v1.0/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    first.shutdown().await;
    let again = start_in(data.path(), None).await.unwrap();
    assert_eq!(again.broker().stored_messages().await.unwrap(), 1, "the accepted message is kept");
    again.shutdown().await;
}

/// A mutated body: bytes flipped, inserted, deleted, repeated, cut, or a known-bad token
/// spliced in.
fn mutate(rng: &mut fastrand::Rng, seed: &[u8]) -> Vec<u8> {
    const SPLICE: &[&[u8]] = &[
        b"1e999",
        b"-1e400",
        b"\"\\ud800\"",
        b"\"\\udfff\"",
        b"\xff",
        b"\xc3",
        b"[[[[[[[[",
        b"{\"a\":",
        b"\"data_base64\":\"!!\"",
        b"\"datacontenttype\":\"text/plain\"",
        b"null",
        b"\\u0000",
        b"0x10",
    ];
    let mut body = seed.to_vec();
    for _ in 0..rng.usize(1..4) {
        let at = rng.usize(0..=body.len());
        match rng.u8(0..6) {
            0 if !body.is_empty() => {
                let i = rng.usize(0..body.len());
                body[i] ^= 1 << rng.u8(0..8);
            }
            1 => body.insert(at, rng.u8(..)),
            2 if at < body.len() => {
                let end = rng.usize(at..=body.len());
                body.drain(at..end);
            }
            3 if at < body.len() => {
                let end = rng.usize(at..=body.len().min(at + 16));
                let part = body[at..end].to_vec();
                body.splice(at..at, part);
            }
            4 => body.truncate(at),
            _ => {
                let token = SPLICE[rng.usize(0..SPLICE.len())];
                body.splice(at..at, token.iter().copied());
            }
        }
    }
    if rng.u8(0..20) == 0 {
        body = format!("{}1{}", "[".repeat(rng.usize(100..300)), "]".repeat(rng.usize(100..300)))
            .into_bytes();
    }
    body
}

/// JSON as a subscriber reads it back from `data` (whitespace around the document is not data).
fn trimmed(body: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = body.iter().position(|b| !ws(b)).unwrap_or(body.len());
    let end = body.iter().rposition(|b| !ws(b)).map_or(start, |e| e + 1);
    &body[start..end]
}

/// A mutation fuzz of the publish path (bodies, content types, identity headers, CloudEvents,
/// bulk bodies, `rawPayload`), seeded so a failure repeats: every answer is one of the
/// documented statuses (never a 5xx), every message answered 204 reaches the subscriber with
/// no failed delivery, and a plain body comes back byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_publishes_are_refused_or_delivered_exactly() {
    let (url, bodies) = raw_subscriber().await;
    let mut h = start(Some(url)).await.unwrap();
    let mut failures = h.sidecar.failures.take().unwrap();
    let seeds: Vec<(&str, &[u8])> = vec![
        ("application/json", br#"{"id":"a","region":"eu","n":[1,2.5,{"x":null}],"s":"\u00e9"}"#),
        ("application/cloudevents+json", br#"{"id":"e1","source":"s","specversion":"1.0","type":"t","data":{"id":"x","region":"uk"}}"#),
        ("application/cloudevents+json", br#"{"id":"e2","source":"s","specversion":"1.0","type":"t","datacontenttype":"text/plain","data":"hi"}"#),
        ("application/cloudevents+json", br#"{"id":"e3","source":"s","specversion":"1.0","type":"t","data_base64":"AAEC"}"#),
        ("text/plain", b"plain text \xc3\xa9"),
        ("application/octet-stream", b"\x00\x01\x02\xff\xfe"),
        ("bulk", br#"[{"entryId":"1","event":{"id":"b1"},"contentType":"application/json"},{"entryId":"2","event":"text","contentType":"text/plain"}]"#),
    ];
    let types = [
        "application/json",
        "application/cloudevents+json",
        "text/plain",
        "application/octet-stream",
        "",
        "application/x+json; v=1",
        "text/xml",
    ];
    let mut rng = fastrand::Rng::with_seed(12);
    let mut accepted = 0usize;
    // (published body, content type) of plain 204s, to compare with what is delivered.
    let mut plain: Vec<(Vec<u8>, String)> = Vec::new();
    for case in 0..1500 {
        let (seed_type, seed) = seeds[rng.usize(0..seeds.len())];
        let body = mutate(&mut rng, seed);
        let bulk = seed_type == "bulk";
        let content_type = if rng.u8(0..4) == 0 {
            types[rng.usize(0..types.len())]
        } else if bulk {
            "application/json"
        } else {
            seed_type
        };
        let raw = rng.u8(0..8) == 0;
        let path = match (bulk, raw) {
            (true, _) => "/v1.0-alpha1/publish/bulk/pubsub/order-placed".to_string(),
            (false, true) => {
                "/v1.0/publish/pubsub/order-placed?metadata.rawPayload=true".to_string()
            }
            (false, false) => "/v1.0/publish/pubsub/order-placed".to_string(),
        };
        let mut req = h.http.post(format!("{}{path}", h.base)).body(body.clone());
        match rng.u8(0..10) {
            0 => req = req.header("dapr-app-id", "orders"),
            1 => req = req.header("dapr-api-token", "nope"),
            _ => req = req.header(ORDERS.0, ORDERS.1),
        }
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(
            [204, 400, 403, 413, 415].contains(&status)
                || (bulk && status == 500 && text.contains("failedEntries")),
            "case {case}: {status} {text} for {content_type} {:?}",
            String::from_utf8_lossy(&body)
        );
        if status == 204 {
            let entries = if bulk {
                serde_json::from_slice::<Vec<serde_json::Value>>(&body).map_or(0, |v| v.len())
            } else {
                1
            };
            accepted += entries;
            let unwrapped = !raw && content_type.starts_with("application/cloudevents+json");
            if !bulk && !unwrapped {
                plain.push((
                    body,
                    if content_type.is_empty() {
                        "application/json".into()
                    } else {
                        content_type.to_string()
                    },
                ));
            }
        }
    }
    assert!(accepted > 100, "only {accepted} publishes were accepted: the fuzz tests little");
    until(|| bodies.lock().unwrap().len() >= accepted).await;
    until_stored(&h, 0).await;
    assert!(failures.try_recv().is_err(), "a delivery failed");
    let delivered: Vec<(Vec<u8>, String)> =
        bodies.lock().unwrap().iter().map(|e| carried(e)).collect();
    for (body, content_type) in &plain {
        let want: &[u8] = if content_type.contains("json") { trimmed(body) } else { body };
        assert!(
            delivered.iter().any(|(d, ct)| d == want && ct == content_type),
            "{content_type} {:?} was not delivered as published",
            String::from_utf8_lossy(body)
        );
    }
    let health = h.http.get(format!("{}/v1.0/healthz", h.base)).send().await.unwrap();
    assert_eq!(health.status(), 204);
    h.sidecar.shutdown().await;
}
