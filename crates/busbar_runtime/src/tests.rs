//! Semantics tests of the embedded broker, on tokio's paused clock: time moves only when every
//! task waits, and then straight to the next timer, so backoff times are exact.

use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use super::*;

fn sub(name: &str) -> RuntimeSubscriptionConfig {
    let settings = busbar_model::SubscriptionSettings {
        retry_policy: busbar_model::RetryPolicy {
            min_backoff_ms: 10_000,
            max_backoff_ms: 25_000,
            max_retries: 3,
        },
        ..Default::default()
    };
    RuntimeSubscriptionConfig::new(name, settings)
}

fn topic(name: &str, subs: Vec<RuntimeSubscriptionConfig>) -> RuntimeTopic {
    RuntimeTopic::new(name, subs)
}

fn broker(dir: &Path, topics: Vec<RuntimeTopic>) -> EmbeddedBroker {
    EmbeddedBroker::open(dir, RuntimeConfig::new("test", topics), Clock::tokio()).unwrap()
}

fn msg(data: &str, attrs: &[(&str, &str)]) -> Publish {
    Publish {
        data: data.as_bytes().to_vec(),
        content_type: JSON.into(),
        attributes: attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        id: None,
    }
}

/// What a test handler saw: (data, attempt, clock ms).
type Seen = Arc<Mutex<Vec<(String, u32, i64)>>>;

/// A handler that records each delivery and answers with `decide(data, attempt)`.
fn recorder(
    clock: Clock,
    decide: impl Fn(&str, u32) -> Outcome + Send + Sync + 'static,
) -> (Arc<dyn Handler>, Seen, mpsc::UnboundedReceiver<String>) {
    let seen: Seen = Arc::default();
    let (tx, rx) = mpsc::unbounded_channel();
    let s = seen.clone();
    let handler = move |d: Delivery| -> HandlerFuture {
        let data = String::from_utf8(d.message.data.clone()).unwrap();
        s.lock().unwrap().push((data.clone(), d.attempt, clock.now_ms()));
        let outcome = decide(&data, d.attempt);
        let _ = tx.send(data);
        Box::pin(async move { outcome })
    };
    (Arc::new(handler), seen, rx)
}

async fn take(rx: &mut mpsc::UnboundedReceiver<String>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            tokio::time::timeout(Duration::from_secs(3600), rx.recv()).await.unwrap().unwrap(),
        );
    }
    out
}

/// Waits (in virtual time) until `cond` holds.
async fn until(mut cond: impl AsyncFnMut() -> bool) {
    for _ in 0..10_000 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition never held");
}

#[tokio::test(start_paused = true)]
async fn fan_out_reaches_every_subscription_and_acked_messages_are_collected() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("a"), sub("b")])]);
    let clock = b.inner.clock;
    let (ha, _, mut ra) = recorder(clock, |_, _| Outcome::Success);
    let (hb, _, mut rb) = recorder(clock, |_, _| Outcome::Success);
    b.subscribe("t", "a", ha).unwrap();
    b.subscribe("t", "b", hb).unwrap();
    for i in 0..5 {
        b.publish("t", msg(&format!("m{i}"), &[])).await.unwrap();
    }
    let mut a = take(&mut ra, 5).await;
    let mut bb = take(&mut rb, 5).await;
    a.sort();
    bb.sort();
    assert_eq!(a, ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(a, bb);
    until(async || b.stored_messages().await.unwrap() == 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_filtered_subscription_receives_only_matching_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut eu = sub("eu");
    eu.settings.filter =
        Some([("region".to_string(), vec!["eu".to_string(), "uk".to_string()])].into());
    let b = broker(dir.path(), vec![topic("t", vec![eu, sub("all")])]);
    let (h, _, mut rx) = recorder(b.inner.clock, |_, _| Outcome::Success);
    let (hall, _, mut rall) = recorder(b.inner.clock, |_, _| Outcome::Success);
    b.subscribe("t", "eu", h).unwrap();
    b.subscribe("t", "all", hall).unwrap();
    for (d, r) in [("1", "eu"), ("2", "us"), ("3", "uk")] {
        b.publish("t", msg(d, &[("region", r)])).await.unwrap();
    }
    b.publish("t", msg("4", &[])).await.unwrap();
    assert_eq!(take(&mut rall, 4).await.len(), 4);
    let mut got = take(&mut rx, 2).await;
    got.sort();
    assert_eq!(got, ["1", "3"]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(rx.try_recv().is_err(), "nothing else reaches the filtered subscription");
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_then_dead_letter_and_release() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    let fail_until_released = Arc::new(AtomicUsize::new(0));
    let f = fail_until_released.clone();
    let (h, seen, mut rx) = recorder(b.inner.clock, move |_, _| {
        if f.load(Ordering::SeqCst) == 0 { Outcome::Retry("boom".into()) } else { Outcome::Success }
    });
    b.subscribe("t", "s", h).unwrap();
    let published = b.publish("t", msg("x", &[])).await.unwrap();
    take(&mut rx, 4).await;
    let times: Vec<(u32, i64)> = {
        let seen = seen.lock().unwrap();
        seen.iter().map(|(_, a, t)| (*a, *t - seen[0].2)).collect()
    };
    // min 10 s, doubled, capped at 25 s; max retries 3: four deliveries in all.
    assert_eq!(times, [(1, 0), (2, 10_000), (3, 30_000), (4, 55_000)]);
    until(async || b.dead_letters("t", "s").await.unwrap().len() == 1).await;
    let dead = b.dead_letters("t", "s").await.unwrap();
    assert_eq!(dead[0].message.id, published.id);
    assert_eq!(dead[0].attempts, 4);
    assert!(
        dead[0].reason.contains("failed 4 deliveries") && dead[0].reason.contains("boom"),
        "{}",
        dead[0].reason
    );
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(rx.try_recv().is_err(), "a dead letter is not delivered");
    assert_eq!(b.stored_messages().await.unwrap(), 1, "a dead letter is kept");

    fail_until_released.store(1, Ordering::SeqCst);
    assert_eq!(b.release("t", "s", None).await.unwrap(), 1);
    take(&mut rx, 1).await;
    assert_eq!(
        seen.lock().unwrap().last().unwrap().1,
        1,
        "a released message starts its attempts again"
    );
    until(async || b.stored_messages().await.unwrap() == 0).await;
    assert!(b.dead_letters("t", "s").await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn drop_dead_letters_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    let (h, _, mut rx) = recorder(b.inner.clock, |_, _| Outcome::Drop("not for me".into()));
    b.subscribe("t", "s", h).unwrap();
    b.publish("t", msg("x", &[])).await.unwrap();
    take(&mut rx, 1).await;
    until(async || b.dead_letters("t", "s").await.unwrap().len() == 1).await;
    let dead = b.dead_letters("t", "s").await.unwrap();
    assert_eq!(dead[0].attempts, 1);
    assert!(dead[0].reason.contains("dropped by the subscriber: not for me"));
}

#[tokio::test(start_paused = true)]
async fn ordered_keys_wait_for_their_head_and_other_keys_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = topic("t", vec![sub("s")]);
    t.ordering_attribute = Some("key".into());
    let b = broker(dir.path(), vec![t]);
    // a1 fails twice; a2 must wait for it; b1 is not held up.
    let (h, seen, mut rx) = recorder(b.inner.clock, |data, attempt| {
        if data == "a1" && attempt < 3 {
            Outcome::Retry("not yet".into())
        } else {
            Outcome::Success
        }
    });
    b.publish("t", msg("a1", &[("key", "a")])).await.unwrap();
    b.publish("t", msg("a2", &[("key", "a")])).await.unwrap();
    b.publish("t", msg("b1", &[("key", "b")])).await.unwrap();
    b.subscribe("t", "s", h).unwrap();
    take(&mut rx, 5).await;
    let order: Vec<(String, u32)> =
        seen.lock().unwrap().iter().map(|(d, a, _)| (d.clone(), *a)).collect();
    let a: Vec<&(String, u32)> = order.iter().filter(|(d, _)| d.starts_with('a')).collect();
    assert_eq!(
        a,
        [
            &("a1".to_string(), 1),
            &("a1".to_string(), 2),
            &("a1".to_string(), 3),
            &("a2".to_string(), 1)
        ]
    );
    let b1 = order.iter().position(|(d, _)| d == "b1").unwrap();
    let a1_second = order.iter().position(|(d, a)| d == "a1" && *a == 2).unwrap();
    assert!(b1 < a1_second, "key b is not blocked by key a's backoff: {order:?}");
}

#[tokio::test(start_paused = true)]
async fn max_concurrency_bounds_handler_calls_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sub("s");
    s.settings.max_concurrency = Some(2);
    let b = broker(dir.path(), vec![topic("t", vec![s])]);
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let (n, p, d) = (now.clone(), peak.clone(), done.clone());
    let handler = move |_: Delivery| -> HandlerFuture {
        let (n, p, d) = (n.clone(), p.clone(), d.clone());
        Box::pin(async move {
            let c = n.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(c, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
            n.fetch_sub(1, Ordering::SeqCst);
            d.fetch_add(1, Ordering::SeqCst);
            Outcome::Success
        })
    };
    b.subscribe("t", "s", Arc::new(handler)).unwrap();
    for i in 0..10 {
        b.publish("t", msg(&i.to_string(), &[])).await.unwrap();
    }
    until(async || done.load(Ordering::SeqCst) == 10).await;
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_handler_past_the_ack_deadline_is_cancelled_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sub("s");
    s.settings.ack_deadline_ms = 5_000;
    let b = broker(dir.path(), vec![topic("t", vec![s])]);
    let finished = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let (f, c) = (finished.clone(), calls.clone());
    let handler = move |_: Delivery| -> HandlerFuture {
        let (f, call) = (f.clone(), c.fetch_add(1, Ordering::SeqCst));
        Box::pin(async move {
            if call == 0 {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            f.fetch_add(1, Ordering::SeqCst);
            Outcome::Success
        })
    };
    b.subscribe("t", "s", Arc::new(handler)).unwrap();
    b.publish("t", msg("x", &[])).await.unwrap();
    until(async || b.stored_messages().await.unwrap() == 0).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(finished.load(Ordering::SeqCst), 1, "the first call was cancelled, never finished");
}

#[tokio::test(start_paused = true)]
async fn exactly_once_topics_store_a_client_id_once_within_five_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let mut once = topic("once", vec![sub("s")]);
    once.delivery_guarantee = busbar_model::DeliveryGuarantee::ExactlyOnce;
    let b = broker(dir.path(), vec![once, topic("plain", vec![sub("s")])]);
    let with_id = |id: &str| Publish { id: Some(id.into()), ..msg("x", &[]) };
    let first = b.publish("once", with_id("order-1")).await.unwrap();
    let again = b.publish("once", with_id("order-1")).await.unwrap();
    assert_eq!(first, Published { id: "order-1".into(), duplicate: false });
    assert_eq!(again, Published { id: "order-1".into(), duplicate: true });
    let no_id_1 = b.publish("once", msg("y", &[])).await.unwrap();
    let no_id_2 = b.publish("once", msg("y", &[])).await.unwrap();
    assert_ne!(no_id_1.id, no_id_2.id, "two publishes without an id are two messages");
    assert_eq!(b.stored_messages().await.unwrap(), 3);
    tokio::time::sleep(config::DEDUP_WINDOW + Duration::from_secs(1)).await;
    assert!(
        !b.publish("once", with_id("order-1")).await.unwrap().duplicate,
        "the window has passed"
    );
    // At-least-once topics keep every publish, ids or not.
    assert!(!b.publish("plain", with_id("order-1")).await.unwrap().duplicate);
    assert!(!b.publish("plain", with_id("order-1")).await.unwrap().duplicate);
    assert_eq!(b.stored_messages().await.unwrap(), 6);
}

#[tokio::test(start_paused = true)]
async fn the_clouds_limits_are_enforced_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    let big = Publish { data: vec![b'x'; config::MAX_MESSAGE_BYTES + 1], ..Publish::default() };
    assert!(matches!(b.publish("t", big).await, Err(PublishError::TooLarge { .. })));
    let at_limit = Publish { data: vec![b'x'; config::MAX_MESSAGE_BYTES], ..Publish::default() };
    assert!(b.publish("t", at_limit).await.is_ok());
    let attrs: Vec<(String, String)> =
        (0..11).map(|i| (format!("a{i}"), "v".to_string())).collect();
    let many = Publish { attributes: attrs.into_iter().collect(), ..Publish::default() };
    assert!(matches!(
        b.publish("t", many).await,
        Err(PublishError::TooManyAttributes { count: 11, .. })
    ));
    assert_eq!(
        b.publish("nope", Publish::default()).await,
        Err(PublishError::UnknownTopic("nope".into()))
    );
    assert_eq!(b.stored_messages().await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn unacknowledged_messages_past_their_retention_are_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sub("s");
    s.settings.message_retention_ms = 60_000;
    let b = broker(dir.path(), vec![topic("t", vec![s])]);
    b.publish("t", msg("old", &[])).await.unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    b.publish("t", msg("new", &[])).await.unwrap();
    let (h, _, mut rx) = recorder(b.inner.clock, |_, _| Outcome::Success);
    b.subscribe("t", "s", h).unwrap();
    assert_eq!(take(&mut rx, 1).await, ["new"]);
    let dead = b.dead_letters("t", "s").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("retention"), "{}", dead[0].reason);
}

/// A message still being retried when its retention runs out is a dead letter then, not after
/// its last retry: retention 30 s, backoff 10 s then 20 s then 25 s, up to 3 retries. After
/// the third delivery (at 30 s) it waits for a backoff that ends past its retention.
#[tokio::test(start_paused = true)]
async fn a_message_retried_past_its_retention_is_dead_lettered_for_its_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sub("s");
    s.settings.message_retention_ms = 30_000;
    let b = broker(dir.path(), vec![topic("t", vec![s])]);
    let (h, seen, _rx) = recorder(b.inner.clock, |_, _| Outcome::Retry("not yet".into()));
    b.subscribe("t", "s", h).unwrap();
    let t0 = b.inner.clock.now_ms();
    b.publish("t", msg("m", &[])).await.unwrap();
    until(async || !b.dead_letters("t", "s").await.unwrap().is_empty()).await;
    let attempts: Vec<(u32, i64)> =
        seen.lock().unwrap().iter().map(|(_, a, at)| (*a, (at - t0) / 1000)).collect();
    // Deliveries at 0 s, 10 s and 30 s; no fourth (it would have been at 55 s).
    assert_eq!(attempts, [(1, 0), (2, 10), (3, 30)]);
    let dead = b.dead_letters("t", "s").await.unwrap();
    assert!(dead[0].reason.contains("retention expired"), "{}", dead[0].reason);
    assert_eq!(dead[0].attempts, 3);
}

/// What was stored survives closing the broker: a new broker on the same directory delivers
/// every message not yet acknowledged, and nothing acknowledged.
#[tokio::test(start_paused = true)]
async fn unacknowledged_messages_are_delivered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
        for i in 0..50 {
            b.publish("t", msg(&i.to_string(), &[])).await.unwrap();
        }
        let (h, _, mut rx) = recorder(b.inner.clock, |data, _| {
            if data.parse::<u32>().unwrap() < 20 {
                Outcome::Success
            } else {
                Outcome::Retry("later".into())
            }
        });
        let task = b.subscribe("t", "s", h).unwrap();
        take(&mut rx, 50).await;
        until(async || b.stored_messages().await.unwrap() == 30).await;
        b.shutdown();
        task.await.unwrap();
        b.close().await.unwrap();
    }
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    let (h, _, mut rx) = recorder(b.inner.clock, |_, _| Outcome::Success);
    b.subscribe("t", "s", h).unwrap();
    let mut got: Vec<u32> = take(&mut rx, 30).await.iter().map(|s| s.parse().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (20..50).collect::<Vec<_>>());
    until(async || b.stored_messages().await.unwrap() == 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_removed_subscription_keeps_its_backlog_until_it_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let both = || vec![topic("t", vec![sub("kept"), sub("removed")])];
    {
        let b = broker(dir.path(), both());
        for i in 0..5 {
            b.publish("t", msg(&i.to_string(), &[])).await.unwrap();
        }
        b.close().await.unwrap();
    }
    {
        // The app no longer has `removed`: its five deliveries are counted, not delivered.
        let b = broker(dir.path(), vec![topic("t", vec![sub("kept")])]);
        let want: BTreeMap<(String, String), u64> =
            [(("t".to_string(), "removed".to_string()), 5)].into();
        assert_eq!(b.retired(), &want);
        let (h, _, mut rx) = recorder(b.inner.clock, |_, _| Outcome::Success);
        let task = b.subscribe("t", "kept", h).unwrap();
        take(&mut rx, 5).await;
        b.flush().await.unwrap();
        assert_eq!(b.stored_messages().await.unwrap(), 5, "the removed one still owes them");
        b.shutdown();
        task.await.unwrap();
        b.close().await.unwrap();
    }
    let b = broker(dir.path(), both());
    assert!(b.retired().is_empty());
    let (h, _, mut rx) = recorder(b.inner.clock, |_, _| Outcome::Success);
    b.subscribe("t", "removed", h).unwrap();
    let mut got: Vec<u32> = take(&mut rx, 5).await.iter().map(|s| s.parse().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..5).collect::<Vec<_>>());
    until(async || b.stored_messages().await.unwrap() == 0).await;
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_subscriber_spends_no_attempts_and_gets_its_messages_when_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    b.publish("t", msg("m", &[])).await.unwrap();
    let up_at = b.inner.clock.now_ms() + 60_000;
    let clock = b.inner.clock;
    // Down for a minute: 60 tries, far past max retries (3), then it answers.
    let (h, seen, mut rx) = recorder(clock, move |_, _| {
        if clock.now_ms() < up_at {
            Outcome::Unreachable("connection refused".into())
        } else {
            Outcome::Success
        }
    });
    b.subscribe("t", "s", h).unwrap();
    let mut tries = 0;
    loop {
        take(&mut rx, 1).await;
        tries += 1;
        if seen.lock().unwrap().last().unwrap().2 >= up_at {
            break;
        }
    }
    assert!(tries >= 60, "tried every second: {tries}");
    assert!(seen.lock().unwrap().iter().all(|(_, attempt, _)| *attempt == 1), "no attempt spent");
    until(async || b.stored_messages().await.unwrap() == 0).await;
    assert!(b.dead_letters("t", "s").await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_panics_is_a_failed_delivery_not_a_stuck_one() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let handler = move |_: Delivery| -> HandlerFuture {
        let call = c.fetch_add(1, Ordering::SeqCst);
        assert!(call != 1, "the second call panics before it returns a future");
        Box::pin(async move {
            assert!(call != 0, "the first call's future panics");
            Outcome::Success
        })
    };
    let mut b = b;
    let mut failures = b.failures().unwrap();
    b.subscribe("t", "s", Arc::new(handler)).unwrap();
    b.publish("t", msg("x", &[])).await.unwrap();
    until(async || b.stored_messages().await.unwrap() == 0).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3, "retried after each panic");
    for want in ["the first call's future panics", "the second call panics"] {
        let f = failures.recv().await.unwrap();
        assert!(f.error.contains("the handler panicked") && f.error.contains(want), "{f:?}");
    }
}

/// A data directory written in another format is refused with what to do, never misread.
#[tokio::test]
async fn a_data_directory_of_another_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("busbar.db")).unwrap();
        conn.execute_batch("CREATE TABLE deliveries (subscription TEXT, seq INTEGER);").unwrap();
    }
    let Err(e) =
        EmbeddedBroker::open(dir.path(), RuntimeConfig::new("test", vec![]), Clock::System)
    else {
        panic!("opened")
    };
    assert!(
        e.to_string().contains("format 0")
            && e.to_string().contains("move the data directory away"),
        "{e}"
    );
}

/// At its disk reserve the broker refuses publishes (the disk is "full") and stores nothing,
/// while it goes on delivering and collecting what it holds; with room again, publishes work.
#[tokio::test(start_paused = true)]
async fn a_full_disk_refuses_publishes_but_keeps_delivering() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    b.publish("t", msg("before", &[])).await.unwrap();
    b.set_disk_reserve(u64::MAX);
    let refused = b.publish("t", msg("refused", &[])).await;
    assert_eq!(refused, Err(PublishError::Broker(BrokerError::Full(StoreError::Full.to_string()))));
    assert_eq!(b.stored_messages().await.unwrap(), 1, "nothing stored for the refused one");
    let (h, _, mut rx) = recorder(b.inner.clock, |_, _| Outcome::Success);
    b.subscribe("t", "s", h).unwrap();
    assert_eq!(take(&mut rx, 1).await, ["before"]);
    until(async || b.stored_messages().await.unwrap() == 0).await;
    b.set_disk_reserve(0);
    b.publish("t", msg("after", &[])).await.unwrap();
    assert_eq!(take(&mut rx, 1).await, ["after"]);
}

/// Shutdown lets a delivery in flight finish and be acknowledged, and starts no new one.
#[tokio::test(start_paused = true)]
async fn shutdown_finishes_the_deliveries_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    let (started_tx, mut started) = mpsc::unbounded_channel::<String>();
    let handler = move |d: Delivery| -> HandlerFuture {
        let _ = started_tx.send(String::from_utf8(d.message.data).unwrap());
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Outcome::Success
        })
    };
    let task = b.subscribe("t", "s", Arc::new(handler)).unwrap();
    b.publish("t", msg("slow", &[])).await.unwrap();
    assert_eq!(started.recv().await.unwrap(), "slow");
    let t0 = tokio::time::Instant::now();
    b.shutdown();
    b.publish("t", msg("late", &[])).await.unwrap();
    task.await.unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(5), "waited for the handler");
    assert!(started.try_recv().is_err(), "nothing new started after the shutdown");
    // `slow` was acknowledged (the store's queue runs in order: this answer comes after its
    // commit); `late` waits for the next start.
    assert_eq!(b.stored_messages().await.unwrap(), 1);
    b.close().await.unwrap();
    let reopened = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    let (h, _, mut rx) = recorder(reopened.inner.clock, |_, _| Outcome::Success);
    reopened.subscribe("t", "s", h).unwrap();
    assert_eq!(take(&mut rx, 1).await, ["late"]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(rx.try_recv().is_err(), "`slow` is not delivered again");
}

/// A publish that fails halfway stores nothing of itself: no message row, and no client id
/// remembered (or a retry with the same id would be taken for a duplicate and lost). The
/// failure here: a subscription listed twice breaks the deliveries' primary key on the second
/// row, after the dedup row and the message row were written.
#[tokio::test]
async fn a_publish_that_fails_halfway_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path()).unwrap();
    let message = |subscriptions: Vec<&str>| NewMessage {
        id: "m1".into(),
        topic: "t".into(),
        data: b"x".to_vec(),
        content_type: JSON.into(),
        attributes: BTreeMap::new(),
        ordering_key: None,
        subscriptions: subscriptions.into_iter().map(String::from).collect(),
        dedup: Some(("client-1".into(), i64::MAX)),
    };
    let failed = store.publish(message(vec!["t/s", "t/s"]), 0).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(store.message_count().await.unwrap(), 0);
    let retried = store.publish(message(vec!["t/s"]), 0).await.unwrap();
    assert!(matches!(retried, store::Stored::New(_)), "{retried:?}");
    assert_eq!(store.message_count().await.unwrap(), 1);
}

/// A second broker on a data directory is refused, naming the process that holds it; once the
/// first closes, the directory is free.
#[tokio::test]
async fn one_broker_per_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = EmbeddedBroker::open(dir.path(), RuntimeConfig::new("test", vec![]), Clock::System)
        .unwrap();
    let Err(e) =
        EmbeddedBroker::open(dir.path(), RuntimeConfig::new("test", vec![]), Clock::System)
    else {
        panic!("a second broker opened the same data directory")
    };
    let pid = std::process::id();
    assert_eq!(e, StoreError::Locked { dir: dir.path().display().to_string(), pid: Some(pid) });
    assert!(e.to_string().contains(&format!("pid {pid}")), "{e}");
    assert_eq!(datadir::lock_holder(dir.path()), Some(Some(pid)));
    first.close().await.unwrap();
    assert_eq!(datadir::lock_holder(dir.path()), None);
    assert!(first.publish("t", msg("x", &[])).await.is_err(), "a closed broker stores nothing");
    EmbeddedBroker::open(dir.path(), RuntimeConfig::new("test", vec![]), Clock::System).unwrap();
}

/// The data directory is its owner's: 0700 when busbar creates it, its files 0600.
#[cfg(unix)]
#[tokio::test]
async fn data_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let b = broker(&dir, vec![topic("t", vec![sub("s")])]);
    b.publish("t", msg("x", &[])).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for name in ["busbar.db", "busbar.db-wal", "busbar.db-shm", "lock"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
}

/// An empty `busbar.db` (truncated, or replaced by an empty file) and a database with damaged
/// pages are refused at open with what to do, never served as an empty or partial broker.
#[tokio::test]
async fn a_damaged_or_empty_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
        for i in 0..2000 {
            b.publish("t", msg(&format!("{i:0>600}"), &[])).await.unwrap();
        }
        b.close().await.unwrap();
    }
    let db = dir.path().join("busbar.db");
    let whole = std::fs::read(&db).unwrap();
    assert!(whole.len() > 64 * 4096, "{} bytes", whole.len());
    let open =
        || EmbeddedBroker::open(dir.path(), RuntimeConfig::new("test", vec![]), Clock::System);
    // Pages in the middle of the file overwritten.
    let mut damaged = whole.clone();
    for b in &mut damaged[20 * 4096..40 * 4096] {
        *b = 0x5a;
    }
    std::fs::write(&db, &damaged).unwrap();
    let Err(e) = open() else { panic!("a damaged database was opened") };
    assert!(matches!(e, StoreError::Damaged(_)) && e.to_string().contains("damaged"), "{e}");
    assert!(e.to_string().contains(".recover"), "{e}");
    std::fs::write(&db, b"").unwrap();
    let Err(e) = open() else { panic!("an empty database was opened") };
    assert!(e.to_string().contains("is empty (0 bytes)"), "{e}");
    std::fs::write(&db, &whole).unwrap();
    open().unwrap();
}

/// The WAL deleted while the broker runs: the next commit sees it, the publishes of that batch
/// and every later one are refused (`Lost`), and what was accepted before is checkpointed into
/// the database: a restart finds all of it.
#[tokio::test]
async fn a_deleted_wal_stops_publishes_and_loses_nothing_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    for i in 0..100 {
        b.publish("t", msg(&i.to_string(), &[])).await.unwrap();
    }
    std::fs::remove_file(dir.path().join("busbar.db-wal")).unwrap();
    let refused = b.publish("t", msg("after", &[])).await;
    let Err(PublishError::Broker(BrokerError::Unavailable(why))) = refused else {
        panic!("a publish into a deleted WAL was answered {refused:?}")
    };
    assert!(why.contains("busbar.db-wal was deleted") && why.contains("checkpointed"), "{why}");
    assert!(b.broken().is_some());
    let again = b.publish("t", msg("later", &[])).await;
    assert!(matches!(again, Err(PublishError::Broker(BrokerError::Unavailable(_)))), "{again:?}");
    b.close().await.unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    assert_eq!(b.broken(), None);
    let (h, _, mut rx) = recorder(b.inner.clock, |_, _| Outcome::Success);
    b.subscribe("t", "s", h).unwrap();
    let mut got: Vec<String> = take(&mut rx, 100).await;
    got.sort_by_key(|s| s.parse::<u32>().unwrap_or(u32::MAX));
    assert_eq!(got, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
}

/// The database itself deleted while the broker runs: publishes are refused, and what it held
/// is copied out (`VACUUM INTO`) to a file the message names.
#[tokio::test]
async fn a_deleted_database_is_copied_out_and_publishes_stop() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    for i in 0..10 {
        b.publish("t", msg(&i.to_string(), &[])).await.unwrap();
    }
    std::fs::remove_file(dir.path().join("busbar.db")).unwrap();
    let refused = b.publish("t", msg("after", &[])).await;
    let Err(PublishError::Broker(BrokerError::Unavailable(why))) = refused else {
        panic!("a publish into a deleted database was answered {refused:?}")
    };
    let copy = dir.path().join(format!("busbar.db.rescued-{}", std::process::id()));
    assert!(why.contains("busbar.db was deleted") && why.contains(&copy.display().to_string()));
    b.close().await.unwrap();
    std::fs::rename(&copy, dir.path().join("busbar.db")).unwrap();
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    assert_eq!(b.stored_messages().await.unwrap(), 10);
}

/// A data directory of format 2 (messages without a content type) is upgraded in place: its
/// messages are JSON.
#[tokio::test]
async fn a_format_2_data_directory_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("busbar.db")).unwrap();
        let old = store::SCHEMA.replace("  content_type TEXT NOT NULL,\n", "");
        conn.execute_batch(&old).unwrap();
        let now = Clock::System.now_ms();
        conn.execute_batch(&format!(
            "PRAGMA user_version = 2;
             INSERT INTO messages (id, topic, data, attributes, published_at) VALUES ('m', 't', x'7b7d', '{{}}', {now});
             INSERT INTO deliveries VALUES (1, 't/s', 0, {now});"
        ))
        .unwrap();
    }
    let b = EmbeddedBroker::open(
        dir.path(),
        RuntimeConfig::new("test", vec![topic("t", vec![sub("s")])]),
        Clock::System,
    )
    .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler = move |d: Delivery| -> HandlerFuture {
        let _ = tx.send(d.message);
        Box::pin(async { Outcome::Success })
    };
    b.subscribe("t", "s", Arc::new(handler)).unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
    assert_eq!((m.data.as_slice(), m.content_type.as_str()), (b"{}".as_slice(), JSON));
}

/// A message's content type is stored with it and delivered, before and after a restart.
#[tokio::test]
async fn content_types_are_delivered_as_published() {
    let dir = tempfile::tempdir().unwrap();
    let raw = Publish {
        data: vec![0, 159, 146, 150, 255],
        content_type: "application/octet-stream".into(),
        ..Publish::default()
    };
    {
        let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
        b.publish("t", raw.clone()).await.unwrap();
        b.close().await.unwrap();
    }
    let b = broker(dir.path(), vec![topic("t", vec![sub("s")])]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handler = move |d: Delivery| -> HandlerFuture {
        let _ = tx.send(d.message);
        Box::pin(async { Outcome::Success })
    };
    b.subscribe("t", "s", Arc::new(handler)).unwrap();
    let m = rx.recv().await.unwrap();
    assert_eq!((m.data, m.content_type), (raw.data, raw.content_type));
}
