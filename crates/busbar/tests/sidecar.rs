//! The SDK against a real sidecar (busbar_sidecar, in-process, on the embedded broker behind
//! it): publish with the service's token, 403 for a topic the service may not publish to,
//! 404 for an unknown topic, delivery to the Rust handlers through `GET /dapr/subscribe`,
//! retry, drop, a panic as a failed attempt, the SDK's own max_concurrency gate, the app's
//! own routes, and a sidecar that is not there.
//!
//! The app model is written by hand (what the analyzer would find in this file): service
//! `accounts` declares and publishes `signups` and subscribes to it as `welcome`; `auditor`
//! alone publishes `audit-log`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use busbar::{DeliveryInfo, PublishErrorKind, Sidecar, Topic};
use busbar_model::{AppModel, RetryPolicy, SubscriptionSettings};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod support;

/// The process's publishes have one sidecar at a time: tests that install one take turns.
static ONE_SIDECAR: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, busbar::Message)]
pub struct Signup {
    pub user_id: String,
    #[busbar(attribute)]
    pub source: String,
}

fn signup(user: &str) -> Signup {
    Signup { user_id: user.into(), source: "web".into() }
}

pub static SIGNUPS: Topic<Signup> = Topic::new("signups");
pub static AUDIT_LOG: Topic<Signup> = Topic::declared_elsewhere("audit-log");
pub static NOWHERE: Topic<Signup> = Topic::declared_elsewhere("nowhere");

/// (user, message id) of each call.
static SEEN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MOST_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// `retry-me` fails its first attempt, `panic-me` panics in its first, `drop-me` is dropped,
/// `slow-*` take 200 ms; the rest succeed.
#[busbar::subscribe(topic = SIGNUPS, name = "welcome", max_concurrency = 2, min_backoff = "1s",
    max_backoff = "1s", max_retries = 3)]
async fn welcome(event: Signup, info: DeliveryInfo) -> busbar::Result<()> {
    let earlier = {
        let mut seen = SEEN.lock().unwrap();
        let earlier = seen.iter().filter(|(u, _)| *u == event.user_id).count();
        seen.push((event.user_id.clone(), info.id.clone()));
        earlier
    };
    match event.user_id.as_str() {
        "retry-me" if earlier == 0 => Err(busbar::Error::msg("not yet")),
        "panic-me" if earlier == 0 => panic!("the first panic-me"),
        "drop-me" => Err(busbar::Error::drop("never welcome")),
        slow if slow.starts_with("slow") => {
            let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
            MOST_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// What the analyzer finds in this file. The model's `welcome` has no max_concurrency: the
/// sidecar may send many deliveries at once, and the SDK's gate alone holds them to 2.
fn model() -> AppModel {
    let settings = SubscriptionSettings {
        retry_policy: RetryPolicy { min_backoff_ms: 1000, max_backoff_ms: 1000, max_retries: 3 },
        ..SubscriptionSettings::default()
    };
    let welcome = support::subscription("welcome", "accounts", settings);
    let mut model = AppModel {
        services: vec![support::service("accounts"), support::service("auditor")],
        topics: vec![
            support::topic("signups", "Signup", "accounts", vec![welcome]),
            support::topic("audit-log", "Signup", "auditor", Vec::new()),
        ],
    };
    model.sort();
    model
}

struct Running {
    sidecar: busbar_sidecar::Running,
    app_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<Result<(), busbar::ServeError>>,
    _data: tempfile::TempDir,
}

/// The sidecar, and this binary served as `accounts` (with a route of its own, `/hello`).
async fn start() -> Running {
    let app = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}", app.local_addr().unwrap());
    let data = tempfile::tempdir().unwrap();
    let mut dev = busbar_config::DevConfig { validate_messages: false, ..Default::default() };
    let accounts = busbar_config::DevService {
        url: Some(app_url.clone()),
        token: Some("accounts-token".into()),
        ..Default::default()
    };
    dev.services.insert("accounts".into(), accounts);
    let auditor =
        busbar_config::DevService { token: Some("auditor-token".into()), ..Default::default() };
    dev.services.insert("auditor".into(), auditor);
    let options = busbar_sidecar::Options {
        data_dir: data.path().to_path_buf(),
        dev,
        disk_reserve: 0,
        limits: busbar_sidecar::Limits::default(),
        service: None,
        broker: None,
    };
    let listeners = busbar_sidecar::Listeners {
        shared: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        services: BTreeMap::new(),
    };
    let model = model();
    let graph = busbar_graph::PermissionGraph::build(&model);
    let config = busbar_plan::runtime_config(&model, &graph, &busbar_plan::Settings::default());
    let sidecar = busbar_sidecar::start(config, options, listeners).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let routes = busbar::axum::Router::new()
        .route("/hello", busbar::axum::routing::get(|| async { "hi from accounts" }));
    let server = busbar::Server::new(Sidecar::new(sidecar.addr.port()).token("accounts-token"))
        .service("accounts")
        .routes(routes);
    let served = tokio::spawn(server.serve_on(app, async move {
        let _ = stopped.await;
    }));
    Running { sidecar, app_url, stop: Some(stop), served, _data: data }
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.served.await.unwrap().unwrap();
        self.sidecar.shutdown().await;
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

fn calls_of(user: &str) -> Vec<String> {
    SEEN.lock().unwrap().iter().filter(|(u, _)| u == user).map(|(_, id)| id.clone()).collect()
}

#[tokio::test]
async fn publishes_are_delivered_through_the_sidecar_and_refusals_are_typed() {
    let _one = ONE_SIDECAR.lock().await;
    let running = start().await;
    let http = reqwest::Client::new();

    // What the sidecar reads from this binary.
    let subscribe: Value = http
        .get(format!("{}/dapr/subscribe", running.app_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        subscribe,
        json!([{
            "pubsubname": "pubsub",
            "topic": "signups",
            "route": "/busbar/signups/welcome",
            "metadata": { "subscription": "welcome" },
        }])
    );
    let hello = http.get(format!("{}/hello", running.app_url)).send().await.unwrap();
    assert_eq!(hello.text().await.unwrap(), "hi from accounts");

    // Delivery, with the id publish returned.
    let id = SIGNUPS.publish(&signup("hello")).await.unwrap();
    until("hello delivered", || !calls_of("hello").is_empty()).await;
    assert_eq!(calls_of("hello"), [id.to_string()]);

    // An error is retried (1s backoff), a panic is a failed attempt, a drop dead-letters.
    let started = Instant::now();
    SIGNUPS.publish(&signup("retry-me")).await.unwrap();
    SIGNUPS.publish(&signup("panic-me")).await.unwrap();
    SIGNUPS.publish(&signup("drop-me")).await.unwrap();
    until("retry-me twice", || calls_of("retry-me").len() == 2).await;
    until("panic-me twice", || calls_of("panic-me").len() == 2).await;
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
    let broker = running.sidecar.broker();
    let dead = loop {
        let dead = broker.dead_letters("signups", "welcome").await.unwrap();
        if !dead.is_empty() {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("dropped by the subscriber"), "{}", dead[0].reason);
    assert_eq!(calls_of("drop-me").len(), 1);

    // The sidecar refuses what the graph does not allow, and what it does not know.
    let denied = AUDIT_LOG.publish(&signup("x")).await.unwrap_err();
    assert_eq!(denied.kind(), PublishErrorKind::PermissionDenied, "{denied}");
    assert_eq!((denied.status(), denied.topic()), (Some(403), "audit-log"));
    assert!(denied.to_string().contains("accounts"), "{denied}");
    let unknown = NOWHERE.publish(&signup("x")).await.unwrap_err();
    assert_eq!(unknown.kind(), PublishErrorKind::TopicNotFound, "{unknown}");
    running.stop().await;
}

#[tokio::test]
async fn the_sdk_holds_a_subscription_to_its_max_concurrency() {
    let _one = ONE_SIDECAR.lock().await;
    let running = start().await;
    let publisher = SIGNUPS.publisher();
    let sends: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(async move { publisher.publish(&signup(&format!("slow-{i}"))).await })
        })
        .collect();
    for send in sends {
        send.await.unwrap().unwrap();
    }
    until("8 slow calls", || {
        SEEN.lock().unwrap().iter().filter(|(u, _)| u.starts_with("slow")).count() == 8
    })
    .await;
    until("all done", || IN_FLIGHT.load(Ordering::SeqCst) == 0).await;
    assert_eq!(MOST_IN_FLIGHT.load(Ordering::SeqCst), 2);
    running.stop().await;
}

#[tokio::test]
async fn deliveries_the_binary_cannot_take_are_answered_not_crashed_on() {
    let _one = ONE_SIDECAR.lock().await;
    let running = start().await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: &'static str| {
        http.post(format!("{}{path}", running.app_url)).body(body).send()
    };
    let answer = post("/busbar/signups/welcome", "not json").await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap(), json!({ "status": "DROP" }));
    let answer =
        post("/busbar/signups/welcome", r#"{"id":"1","data":{"wrong":true}}"#).await.unwrap();
    assert_eq!(answer.json::<Value>().await.unwrap(), json!({ "status": "DROP" }));
    let answer = post("/busbar/signups/other", r#"{"id":"1","data":{}}"#).await.unwrap();
    assert_eq!(answer.status(), 503, "retried: another binary may have it");
    let ok = r#"{"id":"b64","data_base64":"eyJ1c2VyX2lkIjoiYjY0Iiwic291cmNlIjoid2ViIn0="}"#;
    let answer = post("/busbar/signups/welcome", ok).await.unwrap();
    assert_eq!(answer.json::<Value>().await.unwrap(), json!({ "status": "SUCCESS" }));
    assert_eq!(calls_of("b64"), ["b64"]);
    running.stop().await;
}

#[tokio::test]
async fn a_sidecar_that_is_not_there_is_retried_then_unavailable() {
    let _one = ONE_SIDECAR.lock().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    Sidecar::new(port).publish_retry(Duration::from_millis(300)).install();
    let started = Instant::now();
    let error = SIGNUPS.publish(&signup("x")).await.unwrap_err();
    assert_eq!(error.kind(), PublishErrorKind::SidecarUnavailable, "{error}");
    assert_eq!(error.status(), None);
    assert!(error.to_string().contains(&format!("127.0.0.1:{port}")), "{error}");
    let waited = started.elapsed();
    assert!((Duration::from_millis(150)..Duration::from_secs(5)).contains(&waited), "{waited:?}");
}
