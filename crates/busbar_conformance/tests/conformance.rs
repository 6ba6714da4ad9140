//! The conformance suite: semantic cases written once against the [`Broker`] interface, each
//! an app (see the harness, `src/lib.rs`), run on every backend in [`BACKENDS`]. Time is real,
//! and the settings use whole seconds, the granularity every provider has. Each case prints
//! `conformance: CASE × BACKEND: ok` (run with `--no-capture` to see the report), and says so
//! where a backend cannot honour part of it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use busbar_conformance::{App, BACKENDS, Backend, open};
use busbar_runtime::{Broker, Delivery, Handler, HandlerFuture, Outcome, Publish};

/// The imports and the message type every case's `topics.ts` starts with.
const HEADER: &str = r#"import { Topic, Subscription, Attribute } from "encore.dev/pubsub";
export interface M { text: string; region: Attribute<string>; key: Attribute<string> }
"#;

fn app(declarations: &str) -> App {
    App::new(&format!("{HEADER}{declarations}"))
}

fn message(data: &str, attributes: &[(&str, &str)]) -> Publish {
    Publish {
        data: data.as_bytes().to_vec(),
        attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Publish::default()
    }
}

/// What a handler received: (data, attempt, when).
type Received = Arc<Mutex<Vec<(String, u32, Instant)>>>;

/// A handler that records each delivery and answers `decide(data, attempt)`.
fn recorder(
    decide: impl Fn(&str, u32) -> Outcome + Send + Sync + 'static,
) -> (Arc<dyn Handler>, Received) {
    let received: Received = Arc::default();
    let r = received.clone();
    let handler = move |d: Delivery| -> HandlerFuture {
        let data = String::from_utf8_lossy(&d.message.data).into_owned();
        let outcome = decide(&data, d.attempt);
        r.lock().unwrap().push((data, d.attempt, Instant::now()));
        Box::pin(async move { outcome })
    };
    (Arc::new(handler), received)
}

/// Waits (real time, at most 30 s) until `cond` holds.
async fn until(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

fn data(received: &Received) -> Vec<String> {
    let mut v: Vec<String> = received.lock().unwrap().iter().map(|(d, ..)| d.clone()).collect();
    v.sort();
    v
}

/// Runs `case` on every backend that can run here, and says which passed (and what a backend
/// does not honour: `notes` by backend).
async fn on_every_backend<F>(case: &str, app: App, notes: &[(Backend, &str)], run: F)
where
    F: AsyncFn(Arc<dyn Broker>),
{
    on_every_backend_as(case, app, notes, async |_, broker| run(broker).await).await;
}

/// [`on_every_backend`], for a case whose checks differ where a backend cannot honour it.
#[expect(clippy::print_stdout, reason = "the suite reports each case × backend it passed")]
async fn on_every_backend_as<F>(case: &str, app: App, notes: &[(Backend, &str)], run: F)
where
    F: AsyncFn(Backend, Arc<dyn Broker>),
{
    for &backend in BACKENDS {
        let Some(opened) = open(backend, &app, case).await else { continue };
        run(backend, opened.broker.clone()).await;
        opened.broker.shutdown();
        opened.broker.close().await.unwrap();
        let note = notes.iter().find(|(b, _)| *b == backend).map(|(_, n)| format!(" ({n})"));
        println!("conformance: {case} × {}: ok{}", backend.name(), note.unwrap_or_default());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_reaches_every_subscription() {
    let app = app(r#"
export const t = new Topic<M>("t", { deliveryGuarantee: "at-least-once" });
new Subscription(t, "a", { handler: async () => {}, retryPolicy: { minBackoff: "1s", maxBackoff: "1s", maxRetries: 3 } });
new Subscription(t, "b", { handler: async () => {}, retryPolicy: { minBackoff: "1s", maxBackoff: "1s", maxRetries: 3 } });
export const send = () => t.publish({ text: "x", region: "eu", key: "k" });
"#);
    on_every_backend("fan-out", app, &[], async |broker: Arc<dyn Broker>| {
        let (ha, ra) = recorder(|_, _| Outcome::Success);
        let (hb, rb) = recorder(|_, _| Outcome::Success);
        broker.subscribe("t", "a", ha).unwrap();
        broker.subscribe("t", "b", hb).unwrap();
        for i in 0..3 {
            broker.publish("t", message(&format!("\"m{i}\""), &[])).await.unwrap();
        }
        until("every subscription has every message", async || {
            data(&ra).len() == 3 && data(&rb).len() == 3
        })
        .await;
        assert_eq!(data(&ra), ["\"m0\"", "\"m1\"", "\"m2\""]);
        assert_eq!(data(&ra), data(&rb));
        until("acknowledged messages are collected", async || {
            broker.stored_messages().await.unwrap() == 0
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_passes_only_matching_attributes() {
    let app = app(r#"
export const t = new Topic<M>("t", { deliveryGuarantee: "at-least-once" });
new Subscription(t, "eu", { handler: async () => {}, filter: { region: "eu" } });
new Subscription(t, "all", { handler: async () => {} });
export const send = () => t.publish({ text: "x", region: "eu", key: "k" });
"#);
    let notes = [(
        Backend::Gcp,
        "the emulator applies no subscription filter; the runtime checks each subscription's \
         filter as well, so this holds on it",
    )];
    on_every_backend("filters", app, &notes, async |broker: Arc<dyn Broker>| {
        let (heu, reu) = recorder(|_, _| Outcome::Success);
        let (hall, rall) = recorder(|_, _| Outcome::Success);
        broker.subscribe("t", "eu", heu).unwrap();
        broker.subscribe("t", "all", hall).unwrap();
        broker.publish("t", message("\"to-us\"", &[("region", "us")])).await.unwrap();
        broker.publish("t", message("\"to-eu\"", &[("region", "eu")])).await.unwrap();
        broker.publish("t", message("\"no-region\"", &[])).await.unwrap();
        until("the unfiltered subscription has all three", async || data(&rall).len() == 3).await;
        until("the filtered one has its message", async || data(&reu).len() == 1).await;
        broker.flush().await.unwrap();
        // Time for a wrong delivery to show.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(data(&reu), ["\"to-eu\""]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_retries_then_a_dead_letter_that_release_delivers_again() {
    let app = app(r#"
export const t = new Topic<M>("t", { deliveryGuarantee: "at-least-once" });
new Subscription(t, "s", { handler: async () => {}, retryPolicy: { minBackoff: "1s", maxBackoff: "1s", maxRetries: 1 } });
export const send = () => t.publish({ text: "x", region: "eu", key: "k" });
"#);
    on_every_backend(
        "max retries, dead letter, release",
        app,
        &[],
        async |broker: Arc<dyn Broker>| {
            let accept = Arc::new(AtomicBool::new(false));
            let a = accept.clone();
            let (h, received) = recorder(move |_, _| {
                if a.load(Ordering::SeqCst) {
                    Outcome::Success
                } else {
                    Outcome::Retry("not yet".into())
                }
            });
            broker.subscribe("t", "s", h).unwrap();
            let id = broker.publish("t", message("{}", &[])).await.unwrap().id;
            until("the message is a dead letter", async || {
                broker.dead_letters("t", "s").await.unwrap().len() == 1
            })
            .await;
            // The first delivery and one retry (max_retries = 1), after the 1 s backoff.
            let attempts: Vec<u32> = received.lock().unwrap().iter().map(|(_, n, _)| *n).collect();
            assert_eq!(attempts, [1, 2]);
            let dead = broker.dead_letters("t", "s").await.unwrap();
            assert_eq!(dead[0].message.id, id);
            assert!(dead[0].reason.contains("max retries 1"), "{}", dead[0].reason);
            assert!(dead[0].reason.contains("not yet"), "{}", dead[0].reason);
            assert_eq!(dead[0].attempts, 2);
            assert_eq!(dead[0].message.data, b"{}");
            accept.store(true, Ordering::SeqCst);
            assert_eq!(broker.release("t", "s", None).await.unwrap(), 1);
            until("the released message is delivered and acknowledged", async || {
                received.lock().unwrap().len() == 3 && broker.stored_messages().await.unwrap() == 0
            })
            .await;
            assert!(broker.dead_letters("t", "s").await.unwrap().is_empty());
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_dead_letters_at_once() {
    let app = app(r#"
export const t = new Topic<M>("t", { deliveryGuarantee: "at-least-once" });
new Subscription(t, "s", { handler: async () => {}, retryPolicy: { minBackoff: "1s", maxBackoff: "1s", maxRetries: 5 } });
export const send = () => t.publish({ text: "x", region: "eu", key: "k" });
"#);
    on_every_backend("DROP", app, &[], async |broker: Arc<dyn Broker>| {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let (h, _) = recorder(move |_, _| {
            c.fetch_add(1, Ordering::SeqCst);
            Outcome::Drop("refused".into())
        });
        broker.subscribe("t", "s", h).unwrap();
        broker.publish("t", message("{}", &[])).await.unwrap();
        until("the message is a dead letter", async || {
            broker.dead_letters("t", "s").await.unwrap().len() == 1
        })
        .await;
        let dead = broker.dead_letters("t", "s").await.unwrap();
        assert!(dead[0].reason.contains("refused"), "{}", dead[0].reason);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "no retry after DROP");
        let stats = broker.stats().await.unwrap();
        // Where the backend counts them.
        assert_ne!(stats[0].dead_letters, Some(0));
        assert!(stats[0].backlog.is_none_or(|n| n == 0), "{stats:?}");
        assert_eq!(stats[0].dead_lettered, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backoff_schedule_doubles_from_the_minimum() {
    let app = app(r#"
export const t = new Topic<M>("t", { deliveryGuarantee: "at-least-once" });
new Subscription(t, "s", { handler: async () => {}, retryPolicy: { minBackoff: "2s", maxBackoff: "4s", maxRetries: 3 } });
export const send = () => t.publish({ text: "x", region: "eu", key: "k" });
"#);
    on_every_backend("backoff schedule", app, &[], async |broker: Arc<dyn Broker>| {
        let (h, received) =
            recorder(
                |_, attempt| {
                    if attempt < 3 { Outcome::Retry("again".into()) } else { Outcome::Success }
                },
            );
        broker.subscribe("t", "s", h).unwrap();
        broker.publish("t", message("{}", &[])).await.unwrap();
        until("the third attempt succeeds", async || received.lock().unwrap().len() == 3).await;
        let r = received.lock().unwrap().clone();
        let attempts: Vec<u32> = r.iter().map(|(_, n, _)| *n).collect();
        assert_eq!(attempts, [1, 2, 3]);
        // 2 s, then 4 s; within the providers' whole seconds and a receive's latency.
        for (gap, want) in [(r[1].2 - r[0].2, 2.0), (r[2].2 - r[1].2, 4.0)] {
            let gap = gap.as_secs_f64();
            assert!((want - 0.1..want + 2.5).contains(&gap), "waited {gap:.2} s, want {want} s");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_per_key_holds_back_what_follows_a_failure() {
    let app = app(r#"
export const t = new Topic<M>("t", { deliveryGuarantee: "at-least-once", orderingAttribute: "key" });
new Subscription(t, "s", { handler: async () => {}, retryPolicy: { minBackoff: "1s", maxBackoff: "1s", maxRetries: 5 } });
export const send = () => t.publish({ text: "x", region: "eu", key: "k" });
"#);
    on_every_backend("ordering per key", app, &[], async |broker: Arc<dyn Broker>| {
        // The first message of key `a` fails once: the rest of `a` waits, `b` does not.
        let (h, received) = recorder(|data, attempt| {
            if data == "\"a0\"" && attempt == 1 {
                Outcome::Retry("first try".into())
            } else {
                Outcome::Success
            }
        });
        for i in 0..4 {
            for key in ["a", "b"] {
                let m = message(&format!("\"{key}{i}\""), &[("key", key)]);
                broker.publish("t", m).await.unwrap();
            }
        }
        broker.subscribe("t", "s", h).unwrap();
        until("all eight are acknowledged", async || received.lock().unwrap().len() == 9).await;
        let r = received.lock().unwrap().clone();
        for key in ["a", "b"] {
            let order: Vec<&str> =
                r.iter().map(|(d, ..)| d.as_str()).filter(|d| d.contains(key)).collect();
            let mut want: Vec<String> = (0..4).map(|i| format!("\"{key}{i}\"")).collect();
            if key == "a" {
                want.insert(0, "\"a0\"".into());
            }
            assert_eq!(order, want, "key {key}, in delivery order: {r:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_bounds_the_deliveries_in_flight() {
    let app = app(r#"
export const t = new Topic<M>("t", { deliveryGuarantee: "at-least-once" });
new Subscription(t, "s", { handler: async () => {}, maxConcurrency: 2 });
export const send = () => t.publish({ text: "x", region: "eu", key: "k" });
"#);
    on_every_backend("max concurrency", app, &[], async |broker: Arc<dyn Broker>| {
        let now = Arc::new(AtomicU32::new(0));
        let most = Arc::new(AtomicU32::new(0));
        let done = Arc::new(AtomicU32::new(0));
        let (n, m, d) = (now.clone(), most.clone(), done.clone());
        let handler = move |_: Delivery| -> HandlerFuture {
            let (n, m, d) = (n.clone(), m.clone(), d.clone());
            Box::pin(async move {
                let in_flight = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(in_flight, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(400)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                d.fetch_add(1, Ordering::SeqCst);
                Outcome::Success
            })
        };
        for i in 0..8 {
            broker.publish("t", message(&format!("{i}"), &[])).await.unwrap();
        }
        broker.subscribe("t", "s", Arc::new(handler)).unwrap();
        until("all eight are handled", async || done.load(Ordering::SeqCst) == 8).await;
        assert_eq!(most.load(Ordering::SeqCst), 2, "at most two at once, and two at some point");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_ack_deadline_is_cancelled_and_retried() {
    let app = app(r#"
export const t = new Topic<M>("t", { deliveryGuarantee: "at-least-once" });
new Subscription(t, "s", { handler: async () => {}, ackDeadline: "2s", retryPolicy: { minBackoff: "1s", maxBackoff: "1s", maxRetries: 3 } });
export const send = () => t.publish({ text: "x", region: "eu", key: "k" });
"#);
    on_every_backend("ack deadline", app, &[], async |broker: Arc<dyn Broker>| {
        let attempts: Arc<Mutex<Vec<u32>>> = Arc::default();
        let finished = Arc::new(AtomicBool::new(false));
        let (a, f) = (attempts.clone(), finished.clone());
        let handler = move |d: Delivery| -> HandlerFuture {
            a.lock().unwrap().push(d.attempt);
            let f = f.clone();
            Box::pin(async move {
                if d.attempt == 1 {
                    // Past the 2 s deadline: dropped before it gets here.
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    f.store(true, Ordering::SeqCst);
                }
                Outcome::Success
            })
        };
        broker.subscribe("t", "s", Arc::new(handler)).unwrap();
        broker.publish("t", message("{}", &[])).await.unwrap();
        until("the second attempt is made", async || attempts.lock().unwrap().len() == 2).await;
        assert_eq!(*attempts.lock().unwrap(), [1, 2]);
        until("it is acknowledged", async || broker.stored_messages().await.unwrap() == 0).await;
        assert!(!finished.load(Ordering::SeqCst), "the late handler was cancelled");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_stores_a_client_id_once() {
    let app = app(r#"
export const t = new Topic<M>("t", { deliveryGuarantee: "exactly-once" });
new Subscription(t, "s", { handler: async () => {} });
export const send = () => t.publish({ text: "x", region: "eu", key: "k" });
"#);
    let notes = [
        (
            Backend::Aws,
            "SNS does not say a publish was a duplicate: `duplicate` is false; moto forgets a FIFO \
             deduplication id once its message is deleted (SQS keeps it 5 minutes), so the case \
             publishes before it consumes",
        ),
        (
            Backend::Gcp,
            "NOT HONOURED: Pub/Sub has no publish deduplication, so a second publish with one id \
             is a second message, delivered with that same id (a handler can dedup by it); \
             Pub/Sub's exactly-once delivery covers redelivery after a confirmed ack",
        ),
    ];
    on_every_backend_as("exactly-once dedup", app, &notes, async |backend, broker| {
        let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let r = received.clone();
        let h = move |d: Delivery| -> HandlerFuture {
            let data = String::from_utf8_lossy(&d.message.data).into_owned();
            r.lock().unwrap().push((data, d.message.id));
            Box::pin(async { Outcome::Success })
        };
        let h: Arc<dyn Handler> = Arc::new(h);
        let data = |r: &Mutex<Vec<(String, String)>>| {
            let mut v: Vec<(String, String)> = r.lock().unwrap().clone();
            v.sort();
            v
        };
        let with_id = |data: &str, id: &str| Publish { id: Some(id.into()), ..message(data, &[]) };
        broker.publish("t", with_id("1", "order-1")).await.unwrap();
        broker.publish("t", with_id("2", "order-1")).await.unwrap();
        broker.publish("t", with_id("3", "order-2")).await.unwrap();
        broker.subscribe("t", "s", h).unwrap();
        until("both ids are delivered", async || data(&received).len() >= 2).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pair = |d: &str, id: &str| (d.to_string(), id.to_string());
        if backend == Backend::Gcp {
            let want = [pair("1", "order-1"), pair("2", "order-1"), pair("3", "order-2")];
            assert_eq!(data(&received), want, "the duplicate is delivered, with its id");
            return;
        }
        let want = [pair("1", "order-1"), pair("3", "order-2")];
        assert_eq!(data(&received), want, "the second publish of order-1 is not stored");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_subscription_is_an_error_not_a_silent_nothing() {
    let app = app(r#"
export const t = new Topic<M>("t", { deliveryGuarantee: "at-least-once" });
new Subscription(t, "s", { handler: async () => {} });
export const send = () => t.publish({ text: "x", region: "eu", key: "k" });
"#);
    on_every_backend("unknown names", app, &[], async |broker: Arc<dyn Broker>| {
        let (h, _) = recorder(|_, _| Outcome::Success);
        let e = broker.subscribe("t", "nope", h).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let refused = broker.publish("missing", message("{}", &[])).await.unwrap_err();
        assert!(refused.to_string().contains("missing"), "{refused}");
    })
    .await;
}
