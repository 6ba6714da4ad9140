//! The conformance suite: semantic cases written once against the [`Broker`] interface, run on
//! every backend in [`BACKENDS`]. The embedded broker is the only one so far; the cloud backends
//! join this list. Time is real, and the settings use whole seconds, the granularity every
//! provider has. The per-backend tests of the embedded broker's semantics on tokio's paused
//! clock (`src/tests.rs`) go further than these cases.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use busbar_model::{RetryPolicy, SubscriptionSettings};
use busbar_runtime::{
    Broker, Clock, Delivery, EmbeddedBroker, Handler, HandlerFuture, Outcome, Publish,
    RuntimeConfig, RuntimeSubscriptionConfig, RuntimeTopic,
};

struct Backend {
    name: &'static str,
    open: fn(&Path, RuntimeConfig) -> Arc<dyn Broker>,
}

fn embedded(dir: &Path, config: RuntimeConfig) -> Arc<dyn Broker> {
    Arc::new(EmbeddedBroker::open(dir, config, Clock::System).unwrap())
}

const BACKENDS: &[Backend] = &[Backend { name: "embedded", open: embedded }];

/// A subscription that retries after 1 s, `max_retries` times.
fn sub(name: &str, max_retries: u32) -> RuntimeSubscriptionConfig {
    let settings = SubscriptionSettings {
        retry_policy: RetryPolicy { min_backoff_ms: 1_000, max_backoff_ms: 1_000, max_retries },
        ..SubscriptionSettings::default()
    };
    RuntimeSubscriptionConfig::new(name, settings)
}

fn message(data: &str, attributes: &[(&str, &str)]) -> Publish {
    Publish {
        data: data.as_bytes().to_vec(),
        attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Publish::default()
    }
}

/// What a handler received: (data, attempt).
type Received = Arc<Mutex<Vec<(String, u32)>>>;

/// A handler that records each delivery and answers `decide(data, attempt)`.
fn recorder(
    decide: impl Fn(&str, u32) -> Outcome + Send + Sync + 'static,
) -> (Arc<dyn Handler>, Received) {
    let received: Received = Arc::default();
    let r = received.clone();
    let handler = move |d: Delivery| -> HandlerFuture {
        let data = String::from_utf8_lossy(&d.message.data).into_owned();
        let outcome = decide(&data, d.attempt);
        r.lock().unwrap().push((data, d.attempt));
        Box::pin(async move { outcome })
    };
    (Arc::new(handler), received)
}

/// Waits (real time, at most 20 s) until `cond` holds.
async fn until(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

fn data(received: &Received) -> Vec<String> {
    let mut v: Vec<String> = received.lock().unwrap().iter().map(|(d, _)| d.clone()).collect();
    v.sort();
    v
}

/// Runs `case` on every backend, each on a fresh data directory, and says which passed.
#[expect(clippy::print_stdout, reason = "the suite reports each case × backend it passed")]
async fn on_every_backend<F>(case: &str, config: RuntimeConfig, run: F)
where
    F: AsyncFn(Arc<dyn Broker>),
{
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let broker = (backend.open)(dir.path(), config.clone());
        run(broker.clone()).await;
        broker.shutdown();
        broker.close().await.unwrap();
        println!("conformance: {case} × {}: ok", backend.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_reaches_every_subscription() {
    let config = RuntimeConfig::new(
        "conformance",
        vec![RuntimeTopic::new("t", vec![sub("a", 3), sub("b", 3)])],
    );
    on_every_backend("fan-out", config, async |broker: Arc<dyn Broker>| {
        let (ha, ra) = recorder(|_, _| Outcome::Success);
        let (hb, rb) = recorder(|_, _| Outcome::Success);
        broker.subscribe("t", "a", ha).unwrap();
        broker.subscribe("t", "b", hb).unwrap();
        for i in 0..3 {
            broker.publish("t", message(&format!("m{i}"), &[])).await.unwrap();
        }
        until("every subscription has every message", async || {
            data(&ra).len() == 3 && data(&rb).len() == 3
        })
        .await;
        assert_eq!(data(&ra), ["m0", "m1", "m2"]);
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
    let mut eu = sub("eu", 3);
    eu.settings.filter = Some(BTreeMap::from([("region".to_string(), vec!["eu".to_string()])]));
    let config =
        RuntimeConfig::new("conformance", vec![RuntimeTopic::new("t", vec![eu, sub("all", 3)])]);
    on_every_backend("filters", config, async |broker: Arc<dyn Broker>| {
        let (heu, reu) = recorder(|_, _| Outcome::Success);
        let (hall, rall) = recorder(|_, _| Outcome::Success);
        broker.subscribe("t", "eu", heu).unwrap();
        broker.subscribe("t", "all", hall).unwrap();
        broker.publish("t", message("to-us", &[("region", "us")])).await.unwrap();
        broker.publish("t", message("to-eu", &[("region", "eu")])).await.unwrap();
        broker.publish("t", message("no-region", &[])).await.unwrap();
        until("the unfiltered subscription has all three", async || data(&rall).len() == 3).await;
        until("the filtered one has its message", async || data(&reu).len() == 1).await;
        broker.flush().await.unwrap();
        assert_eq!(data(&reu), ["to-eu"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_retries_then_a_dead_letter_that_release_delivers_again() {
    let config = RuntimeConfig::new("conformance", vec![RuntimeTopic::new("t", vec![sub("s", 1)])]);
    on_every_backend(
        "max retries, dead letter, release",
        config,
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
            let id = broker.publish("t", message("m", &[])).await.unwrap().id;
            until("the message is a dead letter", async || {
                broker.dead_letters("t", "s").await.unwrap().len() == 1
            })
            .await;
            // The first delivery and one retry (max_retries = 1), after the 1 s backoff.
            let attempts: Vec<u32> = received.lock().unwrap().iter().map(|(_, n)| *n).collect();
            assert_eq!(attempts, [1, 2]);
            let dead = broker.dead_letters("t", "s").await.unwrap();
            assert_eq!(dead[0].message.id, id);
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
    let config = RuntimeConfig::new("conformance", vec![RuntimeTopic::new("t", vec![sub("s", 5)])]);
    on_every_backend("DROP", config, async |broker: Arc<dyn Broker>| {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let (h, _) = recorder(move |_, _| {
            c.fetch_add(1, Ordering::SeqCst);
            Outcome::Drop("refused".into())
        });
        broker.subscribe("t", "s", h).unwrap();
        broker.publish("t", message("m", &[])).await.unwrap();
        until("the message is a dead letter", async || {
            broker.dead_letters("t", "s").await.unwrap().len() == 1
        })
        .await;
        let dead = broker.dead_letters("t", "s").await.unwrap();
        assert!(dead[0].reason.contains("refused"), "{}", dead[0].reason);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "no retry after DROP");
        let stats = broker.stats().await.unwrap();
        assert_eq!((stats[0].dead_letters, stats[0].backlog), (1, 0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_subscription_is_an_error_not_a_silent_nothing() {
    let config = RuntimeConfig::new("conformance", vec![RuntimeTopic::new("t", vec![sub("s", 1)])]);
    on_every_backend("unknown subscription", config, async |broker: Arc<dyn Broker>| {
        let (h, _) = recorder(|_, _| Outcome::Success);
        let e = broker.subscribe("t", "nope", h).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let refused = broker.publish("missing", message("m", &[])).await.unwrap_err();
        assert!(refused.to_string().contains("missing"), "{refused}");
    })
    .await;
}
