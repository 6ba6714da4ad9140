//! The SDK on the embedded broker, on tokio's paused clock (time moves only when every task
//! waits, straight to the next timer, so backoff times are exact): delivery, retry with the
//! configured backoff, drop, panics, dead letters after max retries, max_concurrency,
//! filters, ordering.
//!
//! Every subscription of this test binary is served by every app a test starts; each test
//! publishes to topics of its own.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use busbar::embedded::{App, Clock, StartError};
use busbar::{DeliveryGuarantee, DeliveryInfo, Message, Topic};
use serde::{Deserialize, Serialize};

/// One app at a time in a process (`cargo test` runs tests on threads of one process).
static ONE_APP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(dir: &std::path::Path) -> App {
    App::builder(dir).clock(Clock::tokio()).start().await.unwrap()
}

/// Waits (in virtual time) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

fn now_ms() -> u64 {
    static START: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(tokio::time::Instant::now).elapsed().as_millis() as u64
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Message)]
pub struct Signup {
    pub user_id: String,
    #[busbar(attribute)]
    pub source: String,
}

fn signup(user: &str, source: &str) -> Signup {
    Signup { user_id: user.into(), source: source.into() }
}

// --- delivery -------------------------------------------------------------------------------

pub static DELIVERED: Topic<Signup> = Topic::new("delivered");
static DELIVERED_SEEN: Mutex<Vec<(Signup, DeliveryInfo)>> = Mutex::new(Vec::new());

#[busbar::subscribe(topic = DELIVERED, name = "record")]
async fn record_delivery(event: Signup, info: DeliveryInfo) -> busbar::Result<()> {
    DELIVERED_SEEN.lock().unwrap().push((event, info));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_published_message_reaches_its_handler_with_its_id() {
    let _one = ONE_APP.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    let id = DELIVERED.publish(&signup("u1", "web")).await.unwrap();
    let publisher = DELIVERED.publisher();
    let second = tokio::spawn(async move { publisher.publish(&signup("u2", "app")).await });
    let id2 = second.await.unwrap().unwrap();
    until("two deliveries", || DELIVERED_SEEN.lock().unwrap().len() == 2).await;
    let mut seen = DELIVERED_SEEN.lock().unwrap().clone();
    seen.sort_by(|a, b| a.0.user_id.cmp(&b.0.user_id));
    assert_eq!(seen[0].0, signup("u1", "web"));
    assert_eq!(seen[0].1.id, id.as_str());
    assert_eq!(seen[1].1.id, id2.as_str());
    assert_eq!(
        (seen[0].1.topic.as_str(), seen[0].1.subscription.as_str()),
        ("delivered", "record")
    );
    assert_eq!(seen[0].1.attempt, Some(1));
    assert_ne!(id, id2);
    app.shutdown().await.unwrap();
}

// --- retry with the configured backoff ------------------------------------------------------

pub static FLAKY: Topic<Signup> = Topic::new("flaky");
/// The virtual time of each attempt.
static FLAKY_ATTEMPTS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Fails its first three attempts (with a `Result<(), String>`: any displayable error).
#[busbar::subscribe(topic = FLAKY, name = "flaky", min_backoff = "10s", max_backoff = "40s",
    max_retries = 5)]
async fn flaky(_event: Signup) -> Result<(), String> {
    let mut attempts = FLAKY_ATTEMPTS.lock().unwrap();
    attempts.push(now_ms());
    if attempts.len() <= 3 { Err(format!("attempt {} fails", attempts.len())) } else { Ok(()) }
}

#[tokio::test(start_paused = true)]
async fn a_failed_delivery_is_retried_after_the_configured_backoff() {
    let _one = ONE_APP.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    FLAKY.publish(&signup("u1", "web")).await.unwrap();
    until("four attempts", || FLAKY_ATTEMPTS.lock().unwrap().len() == 4).await;
    let at = FLAKY_ATTEMPTS.lock().unwrap().clone();
    let gaps: Vec<u64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    // 10s, doubled per failure: 20s, then 40s (the maximum).
    for (gap, want) in gaps.iter().zip([10_000, 20_000, 40_000]) {
        assert!((want..want + 100).contains(gap), "gaps {gaps:?}");
    }
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(FLAKY_ATTEMPTS.lock().unwrap().len(), 4, "no delivery after the success");
    assert!(app.dead_letters(&FLAKY, "flaky").await.unwrap().is_empty());
    app.shutdown().await.unwrap();
}

// --- drop -----------------------------------------------------------------------------------

pub static DROPPED: Topic<Signup> = Topic::new("dropped");
static DROP_CALLS: AtomicUsize = AtomicUsize::new(0);

#[busbar::subscribe(topic = DROPPED, name = "refuse", min_backoff = "1s", max_retries = 10)]
async fn refuse(event: Signup) -> busbar::Result<()> {
    DROP_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(busbar::Error::drop(format!("user {} is not welcome", event.user_id)))
}

#[tokio::test(start_paused = true)]
async fn a_dropped_message_is_dead_lettered_at_once() {
    let _one = ONE_APP.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    let id = DROPPED.publish(&signup("mallory", "web")).await.unwrap();
    let dead = loop {
        let dead = app.dead_letters(&DROPPED, "refuse").await.unwrap();
        if !dead.is_empty() {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.id, id.as_str());
    assert!(dead[0].reason.contains("user mallory is not welcome"), "{}", dead[0].reason);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(DROP_CALLS.load(Ordering::SeqCst), 1, "a dropped message is not retried");
    app.shutdown().await.unwrap();
}

// --- panics ---------------------------------------------------------------------------------

pub static PANICS: Topic<Signup> = Topic::new("panics");
static PANIC_CALLS: AtomicUsize = AtomicUsize::new(0);

#[busbar::subscribe(topic = PANICS, name = "explode", min_backoff = "1s", max_backoff = "1s",
    max_retries = 2)]
async fn explode(event: Signup) -> busbar::Result<()> {
    PANIC_CALLS.fetch_add(1, Ordering::SeqCst);
    if event.user_id == "boom" {
        panic!("the handler cannot cope with {}", event.user_id);
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_a_failed_attempt_and_max_retries_dead_letters_the_message() {
    let _one = ONE_APP.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    PANICS.publish(&signup("boom", "web")).await.unwrap();
    until("three attempts", || PANIC_CALLS.load(Ordering::SeqCst) == 3).await;
    let dead = loop {
        let dead = app.dead_letters(&PANICS, "explode").await.unwrap();
        if !dead.is_empty() {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(dead[0].attempts, 3, "the first delivery and max_retries = 2 retries");
    assert!(
        dead[0].reason.contains("the handler panicked: the handler cannot cope with boom"),
        "{}",
        dead[0].reason
    );
    // The subscription goes on.
    PANICS.publish(&signup("fine", "web")).await.unwrap();
    until("the next message", || PANIC_CALLS.load(Ordering::SeqCst) == 4).await;
    app.shutdown().await.unwrap();
}

// --- max_concurrency ------------------------------------------------------------------------

pub static BUSY: Topic<Signup> = Topic::new("busy");
static BUSY_NOW: AtomicUsize = AtomicUsize::new(0);
static BUSY_MOST: AtomicUsize = AtomicUsize::new(0);
static BUSY_DONE: AtomicUsize = AtomicUsize::new(0);

#[busbar::subscribe(topic = BUSY, name = "slow", max_concurrency = 3)]
async fn slow(_event: Signup) -> busbar::Result<()> {
    let now = BUSY_NOW.fetch_add(1, Ordering::SeqCst) + 1;
    BUSY_MOST.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    BUSY_NOW.fetch_sub(1, Ordering::SeqCst);
    BUSY_DONE.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn at_most_max_concurrency_handler_calls_run_at_once() {
    let _one = ONE_APP.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    let started = tokio::time::Instant::now();
    for i in 0..12 {
        BUSY.publish(&signup(&format!("u{i}"), "web")).await.unwrap();
    }
    until("12 handled", || BUSY_DONE.load(Ordering::SeqCst) == 12).await;
    assert_eq!(BUSY_MOST.load(Ordering::SeqCst), 3);
    // 12 one-second calls, 3 at a time: about 4 seconds (not 12, not 1).
    let took = started.elapsed();
    assert!((Duration::from_secs(4)..Duration::from_secs(5)).contains(&took), "{took:?}");
    app.shutdown().await.unwrap();
}

// --- filters --------------------------------------------------------------------------------

pub static FILTERED: Topic<Signup> = Topic::new("filtered");
static FROM_WEB_OR_APP: Mutex<Vec<String>> = Mutex::new(Vec::new());
static FROM_ANYWHERE: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[busbar::subscribe(topic = FILTERED, name = "web-or-app", filter(source = ["web", "app"]))]
async fn web_or_app(event: Signup) -> busbar::Result<()> {
    FROM_WEB_OR_APP.lock().unwrap().push(event.user_id);
    Ok(())
}

#[busbar::subscribe(topic = FILTERED, name = "anywhere")]
async fn anywhere(event: Signup) -> busbar::Result<()> {
    FROM_ANYWHERE.lock().unwrap().push(event.user_id);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_filtered_subscription_receives_only_matching_messages() {
    let _one = ONE_APP.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    for (user, source) in [("1", "web"), ("2", "ios"), ("3", "app"), ("4", "Web")] {
        FILTERED.publish(&signup(user, source)).await.unwrap();
    }
    until("all four unfiltered", || FROM_ANYWHERE.lock().unwrap().len() == 4).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut got = FROM_WEB_OR_APP.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, ["1", "3"]);
    app.shutdown().await.unwrap();
}

// --- ordering -------------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize, Deserialize, Message)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[busbar(attribute)]
    pub customer_id: String,
    pub n: u32,
}

pub static STEPS: Topic<Step> =
    Topic::new("steps").delivery(DeliveryGuarantee::AtLeastOnce).ordering_attribute("customerId");
/// (customer, n, attempt) in the order the handler saw them.
static STEPS_SEEN: Mutex<Vec<(String, u32, u32)>> = Mutex::new(Vec::new());

/// Fails the first attempt of customer a's first step: its later steps must wait for it.
#[busbar::subscribe(topic = STEPS, name = "apply", min_backoff = "5s", max_backoff = "5s")]
async fn apply_step(step: Step, info: DeliveryInfo) -> busbar::Result<()> {
    let attempt = info.attempt.unwrap_or(0);
    STEPS_SEEN.lock().unwrap().push((step.customer_id.clone(), step.n, attempt));
    tokio::time::sleep(Duration::from_millis(100)).await;
    if step.customer_id == "a" && step.n == 0 && attempt == 1 {
        return Err(busbar::Error::msg("not yet"));
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn one_ordering_key_is_delivered_one_at_a_time_in_publish_order() {
    let _one = ONE_APP.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    for n in 0..4 {
        for customer in ["a", "b"] {
            STEPS.publish(&Step { customer_id: customer.into(), n }).await.unwrap();
        }
    }
    until("9 deliveries", || STEPS_SEEN.lock().unwrap().len() == 9).await;
    let seen = STEPS_SEEN.lock().unwrap().clone();
    let of = |c: &str| -> Vec<(u32, u32)> {
        seen.iter().filter(|(k, _, _)| k == c).map(|(_, n, a)| (*n, *a)).collect()
    };
    assert_eq!(of("a"), [(0, 1), (0, 2), (1, 1), (2, 1), (3, 1)], "head-of-line blocking on a");
    assert_eq!(of("b"), [(0, 1), (1, 1), (2, 1), (3, 1)]);
    // b went on while a waited for its retry: all of b came before a's second attempt.
    let a_retry = seen.iter().position(|s| *s == ("a".to_string(), 0, 2)).unwrap();
    let b_last = seen.iter().position(|s| *s == ("b".to_string(), 3, 1)).unwrap();
    assert!(b_last < a_retry, "{seen:?}");
    app.shutdown().await.unwrap();
}

// --- a message of another shape -------------------------------------------------------------

#[derive(Serialize, Deserialize, Message)]
pub struct Loose {
    pub anything: u64,
}

/// Two handles on one topic with different message types (as two services could have).
pub static MIXED_STRICT: Topic<Signup> = Topic::declared_elsewhere("mixed");
pub static MIXED_LOOSE: Topic<Loose> = Topic::new("mixed");
static MIXED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[busbar::subscribe(topic = MIXED_STRICT, name = "strict")]
async fn strict(_event: Signup) -> busbar::Result<()> {
    MIXED_CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_message_the_handler_cannot_read_is_dead_lettered_without_calling_it() {
    let _one = ONE_APP.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let app =
        App::builder(dir.path()).clock(Clock::tokio()).topic(&MIXED_LOOSE).start().await.unwrap();
    MIXED_LOOSE.publish(&Loose { anything: 7 }).await.unwrap();
    let dead = loop {
        let dead = app.dead_letters(&MIXED_STRICT, "strict").await.unwrap();
        if !dead.is_empty() {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        dead[0].reason.contains("the message is not a `embedded::Signup`"),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(MIXED_CALLS.load(Ordering::SeqCst), 0);
    app.shutdown().await.unwrap();
}

// --- the app itself -------------------------------------------------------------------------

pub static NOBODY: Topic<Signup> = Topic::declared_elsewhere("nobody-listens");

#[tokio::test(start_paused = true)]
async fn a_topic_without_subscriptions_takes_publishes_and_one_app_runs_at_a_time() {
    let _one = ONE_APP.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path()).await;
    NOBODY.publish(&signup("u", "web")).await.unwrap();
    let big = signup(&"x".repeat(300 * 1024), "web");
    let too_large = NOBODY.publish(&big).await.unwrap_err();
    assert_eq!(too_large.kind(), busbar::PublishErrorKind::TooLarge);
    let too_large = DELIVERED.publish(&big).await.unwrap_err();
    assert_eq!(too_large.kind(), busbar::PublishErrorKind::TooLarge, "{too_large}");
    let other = tempfile::tempdir().unwrap();
    let second = App::builder(other.path()).clock(Clock::tokio()).start().await;
    assert!(matches!(second, Err(StartError::AlreadyRunning)));
    app.shutdown().await.unwrap();
    // The data directory is free again.
    start(dir.path()).await.shutdown().await.unwrap();
}

#[test]
fn the_registry_holds_every_subscription_with_its_settings() {
    let subs = busbar::subscriptions();
    let names: Vec<(&str, &str)> = subs.iter().map(|s| (s.topic(), s.name())).collect();
    assert_eq!(
        names,
        [
            ("busy", "slow"),
            ("delivered", "record"),
            ("dropped", "refuse"),
            ("filtered", "anywhere"),
            ("filtered", "web-or-app"),
            ("flaky", "flaky"),
            ("mixed", "strict"),
            ("panics", "explode"),
            ("steps", "apply"),
        ]
    );
    let flaky = subs.iter().find(|s| s.name() == "flaky").unwrap();
    assert_eq!(flaky.min_backoff(), Duration::from_secs(10));
    assert_eq!(flaky.max_backoff(), Duration::from_secs(40));
    assert_eq!(flaky.max_retries(), 5);
    assert_eq!(flaky.handler_name(), "flaky");
    // Defaults are the model's.
    assert_eq!(flaky.ack_deadline(), Duration::from_secs(30));
    assert_eq!(flaky.message_retention(), Duration::from_secs(7 * 24 * 3600));
    assert_eq!(flaky.max_concurrency(), None);
    let web = subs.iter().find(|s| s.name() == "web-or-app").unwrap();
    assert_eq!(
        web.filter(),
        Some([("source".to_string(), vec!["app".to_string(), "web".to_string()])].into())
    );
    assert_eq!(STEPS.ordering(), Some("customerId"));
    assert_eq!(Step::ATTRIBUTES, ["customerId"]);
}
