//! The busbar runtime: the broker interface ([`Broker`], [`BrokerError`]) every backend
//! implements, over the runtime contract ([`RuntimeConfig`]), and the embedded durable broker.
//!
//! [`EmbeddedBroker::open`] stores messages in SQLite in WAL mode under a data directory (`store`); a
//! publish returns only after its transaction is fsync'd, and concurrent publishes share one
//! fsync. [`EmbeddedBroker::subscribe`] starts the dispatcher of one subscription, which calls a
//! [`Handler`] with the semantics of RUNTIME.md: fan-out, at-least-once, exponential backoff,
//! dead-lettering (after max retries, on DROP, on retention expiry), ordering per
//! ordering-attribute value with head-of-line blocking, filters, `maxConcurrency`, the ack
//! deadline (the handler's future is dropped), exactly-once publish de-duplication, the cloud's
//! size and attribute limits, and garbage collection of acknowledged messages.
//!
//! The schedule (what each subscription is owed, when, and behind which ordering key) lives in
//! memory (the `queue` module): the store is loaded once at open, then only written, so a
//! dispatcher never waits on the disk to find its next delivery. Message bodies stay in memory
//! up to 64 MiB; beyond, a body is read back when its delivery comes due.
//!
//! Time comes from a [`Clock`]: the system's, or tokio's (so tests can pause and advance it).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::string_slice
    )
)]

mod broker;
mod config;
pub mod datadir;
pub mod delivery;
pub mod envelope;
mod queue;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

pub use broker::{BoxFuture, Broker, BrokerError, Scope};
pub use busbar_model::runtime::{RuntimeConfig, RuntimeSubscriptionConfig, RuntimeTopic};
pub use config::{DEDUP_WINDOW, MAX_ATTRIBUTES, MAX_MESSAGE_BYTES};
pub use store::{DEFAULT_DISK_RESERVE, DeadLetter, StoreError, StoredMessage};

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use queue::{Body, Entry, Queue};
use store::{NewMessage, Store};

/// A delivery's outcome, as its call ends.
type Settled = (i64, Entry, Outcome);

/// Message bodies kept in memory for the deliveries owed, at most (beyond, a body is read back
/// from the store when its delivery is due).
const BODY_BUDGET: usize = 64 << 20;

/// Milliseconds since the Unix epoch, from the system clock or from tokio's (pausable) clock.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    System,
    /// `base_ms` at `base`, advancing with `tokio::time::Instant`.
    Tokio {
        base_ms: i64,
        base: tokio::time::Instant,
    },
}

impl Clock {
    /// Tokio's clock, starting at the system time now.
    pub fn tokio() -> Clock {
        Clock::Tokio { base_ms: system_ms(), base: tokio::time::Instant::now() }
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => system_ms(),
            Clock::Tokio { base_ms, base } => *base_ms + base.elapsed().as_millis() as i64,
        }
    }
}

/// A tokio instant `ms` milliseconds from now (for sleeping until a due time).
fn instant_in(ms: i64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_millis(ms.max(0) as u64)
}

fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A message to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub data: Vec<u8>,
    /// The media type of `data` (`application/json` for JSON), delivered with it.
    pub content_type: String,
    /// Attribute values (for ordering and filters), as strings.
    pub attributes: BTreeMap<String, String>,
    /// A client-supplied message id: on an exactly-once topic, the message is stored once per
    /// id within five minutes.
    pub id: Option<String>,
}

impl Default for Publish {
    /// An empty JSON message.
    fn default() -> Self {
        Publish {
            data: Vec::new(),
            content_type: JSON.to_string(),
            attributes: BTreeMap::new(),
            id: None,
        }
    }
}

impl Publish {
    /// The limits every backend applies ([`MAX_MESSAGE_BYTES`], [`MAX_ATTRIBUTES`]).
    pub fn check_limits(&self) -> Result<(), PublishError> {
        if self.data.len() > config::MAX_MESSAGE_BYTES {
            return Err(PublishError::TooLarge {
                size: self.data.len(),
                limit: config::MAX_MESSAGE_BYTES,
            });
        }
        if self.attributes.len() > config::MAX_ATTRIBUTES {
            return Err(PublishError::TooManyAttributes {
                count: self.attributes.len(),
                limit: config::MAX_ATTRIBUTES,
            });
        }
        Ok(())
    }
}

/// The media type of JSON.
pub const JSON: &str = "application/json";

/// A published message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub id: String,
    /// An exactly-once topic already had a message with this client id: nothing was stored.
    pub duplicate: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("there is no topic `{0}`")]
    UnknownTopic(String),
    #[error("the message is {size} bytes; the limit is {limit} (as on SNS and SQS)")]
    TooLarge { size: usize, limit: usize },
    #[error("the message has {count} attributes; the limit is {limit} (as on SNS)")]
    TooManyAttributes { count: usize, limit: usize },
    /// The broker refused it (full, unavailable, failed).
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

impl From<StoreError> for PublishError {
    fn from(e: StoreError) -> Self {
        PublishError::Broker(e.into())
    }
}

/// One delivery of a message to a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub topic: String,
    pub subscription: String,
    /// 1 for the first delivery.
    pub attempt: u32,
    pub message: StoredMessage,
}

/// What a handler says about a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done: acknowledge it.
    Success,
    /// Failed: try again after the backoff (dead-letter after max retries).
    Retry(String),
    /// Refused: dead-letter it now.
    Drop(String),
    /// Not delivered at all (the subscriber does not answer: not started yet, or restarting):
    /// try again in [`UNREACHABLE_RETRY`], without counting an attempt, so a message waits for
    /// a subscriber that comes late instead of being dead-lettered. Retention still applies.
    Unreachable(String),
}

/// How long a delivery that found its subscriber unreachable waits before it tries again.
pub const UNREACHABLE_RETRY: Duration = Duration::from_secs(1);

pub type HandlerFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Receives deliveries. Dropping the future (at the ack deadline, or at shutdown) cancels it.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, delivery: Delivery) -> HandlerFuture;
}

impl<F> Handler for F
where
    F: Fn(Delivery) -> HandlerFuture + Send + Sync + 'static,
{
    fn handle(&self, delivery: Delivery) -> HandlerFuture {
        self(delivery)
    }
}

/// A failed delivery, for logs: subscription, message id, attempt, error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub subscription: String,
    pub message_id: String,
    pub attempt: u32,
    pub error: String,
    /// The message was dead-lettered (else it will be retried).
    pub dead_lettered: bool,
}

struct Inner {
    store: Store,
    config: RuntimeConfig,
    clock: Clock,
    /// Each subscription's state, by key.
    subs: BTreeMap<String, SubState>,
    /// Bytes of message bodies held by the queues.
    budget: Arc<AtomicUsize>,
    ids: AtomicU64,
    shutdown: tokio::sync::watch::Sender<bool>,
    failures: Option<mpsc::UnboundedSender<Failure>>,
    /// Deliveries owed, at open, to subscriptions the config no longer has, by
    /// (topic, subscription): kept untouched, delivered again if the subscription comes back.
    retired: BTreeMap<(String, String), u64>,
}

/// What the broker keeps of one subscription.
struct SubState {
    /// `topic/subscription`, its key in the store.
    key: String,
    /// Its schedule, in step with the store.
    queue: Mutex<Queue>,
    /// Woken when a delivery is added to the queue.
    wake: Notify,
    /// Its settlements queued to the store and not yet committed.
    unflushed: Arc<store::Unflushed>,
    /// For metrics.
    counters: Counters,
}

impl SubState {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a subscription's dispatcher has done since the broker opened.
#[derive(Debug, Default)]
pub struct Counters {
    pub acknowledged: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Sum of the publish → settle time of every settled delivery, in microseconds.
    pub latency_us: AtomicU64,
}

/// A subscription's numbers: what it is owed, its dead letters, and its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionStats {
    pub topic: String,
    pub subscription: String,
    /// Deliveries it is owed, due or waiting for their backoff; `None` where the backend cannot
    /// count them (Pub/Sub's API has no such count).
    pub backlog: Option<i64>,
    /// Messages in its dead-letter queue; `None` where they are not read here.
    pub dead_letters: Option<i64>,
    pub acknowledged: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub latency_us: u64,
}

/// The embedded broker, over SQLite: one implementation of [`Broker`]. Cloning shares it.
#[derive(Clone)]
pub struct EmbeddedBroker {
    inner: Arc<Inner>,
}

/// The key of a subscription in the store.
fn key(topic: &str, subscription: &str) -> String {
    format!("{topic}/{subscription}")
}

impl EmbeddedBroker {
    /// Opens the broker on `dir` (created if needed). What was stored before is delivered again
    /// to the subscriptions that had not acknowledged it.
    pub fn open(
        dir: &Path,
        config: RuntimeConfig,
        clock: Clock,
    ) -> Result<EmbeddedBroker, StoreError> {
        let (store, owed) = Store::open(dir)?;
        let mut subs: BTreeMap<String, SubState> = config
            .topics
            .iter()
            .flat_map(|t| {
                t.subscriptions.iter().map(move |s| {
                    let key = key(&t.name, &s.name);
                    let state = SubState {
                        key: key.clone(),
                        queue: Mutex::default(),
                        wake: Notify::new(),
                        unflushed: Arc::default(),
                        counters: Counters::default(),
                    };
                    (key, state)
                })
            })
            .collect();
        let mut keys: HashMap<String, Arc<str>> = HashMap::new();
        let mut retired: BTreeMap<(String, String), u64> = BTreeMap::new();
        for o in owed {
            // A subscription no longer in the app keeps its rows, untouched.
            let Some(state) = subs.get_mut(&o.subscription) else {
                let (topic, sub) = o.subscription.split_once('/').unwrap_or((&o.subscription, ""));
                *retired.entry((topic.to_string(), sub.to_string())).or_default() += 1;
                continue;
            };
            let ordering_key =
                o.ordering_key.map(|k| keys.entry(k.clone()).or_insert_with(|| k.into()).clone());
            let entry = Entry {
                id: o.id.into(),
                attempts: o.attempts,
                next_at: o.next_at,
                ordering_key,
                published_at: o.published_at,
                body: None,
            };
            state.queue.get_mut().unwrap_or_else(|p| p.into_inner()).push(o.seq, entry);
        }
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let seed = (clock.now_ms() as u64) << 20;
        Ok(EmbeddedBroker {
            inner: Arc::new(Inner {
                store,
                config,
                clock,
                subs,
                budget: Arc::default(),
                ids: AtomicU64::new(seed),
                shutdown,
                failures: None,
                retired,
            }),
        })
    }

    /// Reports every failed delivery on the returned channel (the sidecar logs them).
    pub fn failures(&mut self) -> Option<mpsc::UnboundedReceiver<Failure>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.report_failures(tx).then_some(rx)
    }

    /// Reports every failed delivery on `tx` (a channel that outlives this broker, as the
    /// sidecar's across a reload). `false` once the broker is shared (cloned): too late.
    pub fn report_failures(&mut self, tx: mpsc::UnboundedSender<Failure>) -> bool {
        let Some(inner) = Arc::get_mut(&mut self.inner) else { return false };
        inner.failures = Some(tx);
        true
    }

    /// Deliveries owed to subscriptions the app no longer has, by (topic, subscription), as
    /// found at open: kept, and delivered again if the subscription comes back.
    pub fn retired(&self) -> &BTreeMap<(String, String), u64> {
        &self.inner.retired
    }

    /// Sets the free space a publish must leave on the data directory's filesystem (default
    /// 64 MiB; 0: none): below it, publishes fail with [`StoreError::Full`] and nothing is
    /// stored, while deliveries and their settlements go on.
    pub fn set_disk_reserve(&self, bytes: u64) {
        self.inner.store.set_disk_reserve(bytes);
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    fn new_id(&self) -> String {
        let n = self.inner.ids.fetch_add(1, Ordering::Relaxed);
        format!("{n:016x}-{:08x}", std::process::id())
    }

    /// Stores a message for every subscription of `topic` whose filter accepts it. Returns once
    /// the message is durable.
    pub async fn publish(&self, topic: &str, message: Publish) -> Result<Published, PublishError> {
        let t = self
            .inner
            .config
            .topic(topic)
            .ok_or_else(|| PublishError::UnknownTopic(topic.to_string()))?;
        message.check_limits()?;
        let now = self.inner.clock.now_ms();
        let subscriptions: Vec<String> = t
            .subscriptions
            .iter()
            .filter(|s| {
                s.settings
                    .filter
                    .as_ref()
                    .is_none_or(|f| busbar_model::filter_accepts(f, &message.attributes))
            })
            .map(|s| key(&t.name, &s.name))
            .collect();
        let ordering_key =
            t.ordering_attribute.as_ref().and_then(|a| message.attributes.get(a).cloned());
        let dedup = match (&message.id, t.exactly_once()) {
            (Some(id), true) => Some((id.clone(), now + config::DEDUP_WINDOW.as_millis() as i64)),
            _ => None,
        };
        let id = message.id.clone().unwrap_or_else(|| self.new_id());
        let stored = self
            .inner
            .store
            .publish(
                NewMessage {
                    id: id.clone(),
                    topic: topic.to_string(),
                    data: message.data.clone(),
                    content_type: message.content_type.clone(),
                    attributes: message.attributes.clone(),
                    ordering_key: ordering_key.clone(),
                    subscriptions: subscriptions.clone(),
                    dedup,
                },
                now,
            )
            .await?;
        let seq = match stored {
            store::Stored::New(seq) => seq,
            store::Stored::Duplicate(earlier) => {
                return Ok(Published { id: earlier, duplicate: true });
            }
            store::Stored::Unwanted => return Ok(Published { id, duplicate: false }),
        };
        let body = Body::hold(
            StoredMessage {
                id: id.clone(),
                topic: topic.to_string(),
                data: message.data,
                content_type: message.content_type,
                attributes: message.attributes,
                published_at_ms: now,
            },
            &self.inner.budget,
            BODY_BUDGET,
        );
        let ordering_key: Option<Arc<str>> = ordering_key.map(Arc::from);
        let message_id: Arc<str> = Arc::from(id.as_str());
        for s in &subscriptions {
            if let Some(state) = self.inner.subs.get(s) {
                let entry = Entry {
                    id: message_id.clone(),
                    attempts: 0,
                    next_at: now,
                    ordering_key: ordering_key.clone(),
                    published_at: now,
                    body: body.clone(),
                };
                state.queue().push(seq, entry);
                state.wake.notify_one();
            }
        }
        Ok(Published { id, duplicate: false })
    }

    /// Starts delivering `topic`'s subscription `name` to `handler`. The task ends at
    /// [`EmbeddedBroker::shutdown`], after the deliveries in flight finish.
    pub fn subscribe(
        &self,
        topic: &str,
        name: &str,
        handler: Arc<dyn Handler>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let sub = self.inner.config.subscription(topic, name)?.clone();
        let broker = self.clone();
        let topic = topic.to_string();
        Some(tokio::spawn(async move { broker.dispatch(&topic, &sub, handler).await }))
    }

    /// The dead letters of a subscription.
    pub async fn dead_letters(
        &self,
        topic: &str,
        subscription: &str,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.store.dead_letters(&key(topic, subscription)).await
    }

    /// Moves dead letters back for delivery (all, or those with these message ids).
    pub async fn release(
        &self,
        topic: &str,
        subscription: &str,
        ids: Option<Vec<String>>,
    ) -> Result<usize, StoreError> {
        let k = key(topic, subscription);
        let now = self.inner.clock.now_ms();
        let released = self.inner.store.release(&k, ids, now).await?;
        let n = released.len();
        if let Some(state) = self.inner.subs.get(&k) {
            let mut q = state.queue();
            for r in released {
                let entry = Entry {
                    id: Arc::from(r.message.id.as_str()),
                    attempts: 0,
                    next_at: now,
                    ordering_key: r.ordering_key.map(Arc::from),
                    published_at: r.message.published_at_ms,
                    body: Body::hold(r.message, &self.inner.budget, BODY_BUDGET),
                };
                q.push(r.seq, entry);
            }
            drop(q);
            state.wake.notify_one();
        }
        Ok(n)
    }

    /// Messages still stored (not yet acknowledged by every subscription, or dead-lettered).
    pub async fn stored_messages(&self) -> Result<i64, StoreError> {
        self.inner.store.message_count().await
    }

    /// Every subscription's backlog, dead letters and counters, in config order.
    pub async fn stats(&self) -> Result<Vec<SubscriptionStats>, StoreError> {
        let dead = self.inner.store.dead_counts().await?;
        let mut out = Vec::new();
        for t in &self.inner.config.topics {
            for s in &t.subscriptions {
                let k = key(&t.name, &s.name);
                let state = self.inner.subs.get(&k);
                let backlog = state.map_or(0, |st| st.queue().len() as i64);
                let c = state.map(|st| &st.counters);
                let load =
                    |f: fn(&Counters) -> &AtomicU64| c.map_or(0, |c| f(c).load(Ordering::Relaxed));
                out.push(SubscriptionStats {
                    topic: t.name.clone(),
                    subscription: s.name.clone(),
                    backlog: Some(backlog),
                    dead_letters: Some(dead.get(&k).copied().unwrap_or_default()),
                    acknowledged: load(|c| &c.acknowledged),
                    retried: load(|c| &c.retried),
                    dead_lettered: load(|c| &c.dead_lettered),
                    latency_us: load(|c| &c.latency_us),
                });
            }
        }
        Ok(out)
    }

    /// Why publishes are refused, once a file of the store was deleted or replaced while the
    /// broker ran (`None`: healthy).
    pub fn broken(&self) -> Option<&str> {
        self.inner.store.broken()
    }

    /// Closes the store once what was queued to it is committed, and releases the data
    /// directory (another broker may open it then). Publishes and settlements after it fail.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.inner.store.close().await
    }

    /// Stops fetching new deliveries; the dispatchers finish what is in flight and end.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Returns once everything queued to the store so far (settlements included) is committed:
    /// the store runs its commands in order, so a round trip is the barrier.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner.store.message_count().await.map(|_| ())
    }

    async fn dispatch(
        &self,
        topic: &str,
        sub: &RuntimeSubscriptionConfig,
        handler: Arc<dyn Handler>,
    ) {
        let k = key(topic, &sub.name);
        let Some(state) = self.inner.subs.get(&k) else { return };
        let unflushed = &state.unflushed;
        let clock = self.inner.clock;
        let limit = sub.settings.concurrency_limit();
        let retention = sub.settings.message_retention().as_millis() as i64;
        let mut shutdown = self.inner.shutdown.subscribe();
        // The handler calls in flight, polled by this task (no task per delivery).
        let mut calls: FuturesUnordered<Pin<Box<dyn Future<Output = Settled> + Send>>> =
            FuturesUnordered::new();
        let mut next_expiry = i64::MIN;
        loop {
            let stopping = *shutdown.borrow();
            if stopping && calls.is_empty() {
                return;
            }
            let now = clock.now_ms();
            if !stopping && now >= next_expiry {
                // The retention check, once a second at most.
                next_expiry = now + 1000;
                let expired = state.queue().expire(now - retention);
                for (seq, entry) in expired {
                    let why = "retention expired before the message was acknowledged";
                    self.dead_letter(state, seq, &entry, entry.attempts, why.into(), why, now);
                }
            }
            // Room for new deliveries: below the concurrency limit, and while fewer settlements
            // than that wait for their commit (what a crash would deliver again stays bounded).
            let room = |calls: usize| limit.saturating_sub(calls.max(unflushed.get()));
            if !stopping && room(calls.len()) > 0 {
                let start = state.queue().take_due(now, room(calls.len()));
                let start = self.with_bodies(state, start, now).await;
                for (seq, entry, message) in start {
                    let delivery = Delivery {
                        topic: topic.to_string(),
                        subscription: sub.name.clone(),
                        attempt: entry.attempts + 1,
                        message,
                    };
                    let deadline = sub.settings.ack_deadline();
                    let handler = handler.clone();
                    calls.push(Box::pin(async move {
                        let outcome = delivery::call(&*handler, delivery, deadline).await;
                        (seq, entry, outcome)
                    }));
                }
            }
            // Wake for the next due delivery, and while any is owed, for the retention check.
            let wake_at = if stopping {
                None
            } else {
                let q = state.queue();
                let owed = q.len() > q.in_flight();
                // Without room, only a settlement or a commit makes some.
                let next_due = q.next_due().filter(|_| room(calls.len()) > 0);
                match (next_due, owed) {
                    (Some(at), true) => Some(at.min(next_expiry)),
                    (Some(at), false) => Some(at),
                    (None, true) => Some(next_expiry),
                    (None, false) => None,
                }
            };
            let sleep = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(instant_in(at - clock.now_ms())).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some((seq, entry, outcome)) = calls.next(), if !calls.is_empty() => {
                    self.settle(state, sub, seq, &entry, outcome);
                    while let Some(Some((seq, entry, outcome))) = calls.next().now_or_never() {
                        self.settle(state, sub, seq, &entry, outcome);
                    }
                }
                () = state.wake.notified(), if !stopping => {}
                () = unflushed.committed.notified(), if !stopping && unflushed.get() >= limit => {}
                () = sleep => {}
                _ = shutdown.changed(), if !stopping => {}
            }
        }
    }

    /// The message of each delivery about to start: from memory, or read back from the store.
    /// A delivery whose message cannot be read now goes back to wait a second.
    async fn with_bodies(
        &self,
        state: &SubState,
        start: Vec<(i64, Entry)>,
        now: i64,
    ) -> Vec<(i64, Entry, StoredMessage)> {
        let missing: Vec<i64> =
            start.iter().filter(|(_, e)| e.body.is_none()).map(|(seq, _)| *seq).collect();
        let mut read: HashMap<i64, StoredMessage> = HashMap::new();
        let mut unreadable = false;
        if !missing.is_empty() {
            match self.inner.store.bodies(missing).await {
                Ok(found) => read.extend(found),
                Err(_) => unreadable = true,
            }
        }
        let mut out = Vec::with_capacity(start.len());
        for (seq, entry) in start {
            let message = match &entry.body {
                Some(body) => body.message.clone(),
                None => match read.remove(&seq) {
                    Some(m) => m,
                    None => {
                        let mut q = state.queue();
                        if unreadable {
                            q.retry(seq, entry.attempts, now + 1000);
                        } else {
                            // Its message is gone from the store: nothing to deliver.
                            q.remove(seq);
                        }
                        continue;
                    }
                },
            };
            out.push((seq, entry, message));
        }
        out
    }

    /// Moves a delivery to the dead letters: in memory now, in the store with the next batch.
    #[allow(clippy::too_many_arguments, reason = "one call site per cause")]
    fn dead_letter(
        &self,
        state: &SubState,
        seq: i64,
        entry: &Entry,
        attempts: u32,
        reason: String,
        error: &str,
        now: i64,
    ) {
        state.queue().remove(seq);
        self.report(state, entry, attempts, error, true);
        count(state, |c| &c.dead_lettered, entry, now);
        let dead = store::Settlement::Dead { attempts, reason, now };
        self.inner.store.settle(&state.key, seq, dead, &state.unflushed);
    }

    fn report(&self, state: &SubState, entry: &Entry, attempt: u32, error: &str, dead: bool) {
        if let Some(f) = &self.inner.failures {
            let _ = f.send(Failure {
                subscription: state.key.clone(),
                message_id: entry.id.to_string(),
                attempt,
                error: error.to_string(),
                dead_lettered: dead,
            });
        }
    }

    /// Records a delivery's outcome: acknowledged, retried after the backoff, or dead-lettered.
    /// The schedule changes at once; the store's change is queued, not awaited: the store
    /// batches settlements, and a crash before their commit only means a delivery again.
    fn settle(
        &self,
        state: &SubState,
        sub: &RuntimeSubscriptionConfig,
        seq: i64,
        entry: &Entry,
        outcome: Outcome,
    ) {
        use store::Settlement;
        let now = self.inner.clock.now_ms();
        let attempt = entry.attempts + 1;
        let expired =
            entry.published_at < now - sub.settings.message_retention().as_millis() as i64;
        match outcome {
            Outcome::Success => {
                state.queue().remove(seq);
                count(state, |c| &c.acknowledged, entry, now);
                self.inner.store.settle(&state.key, seq, Settlement::Ack, &state.unflushed);
            }
            Outcome::Drop(why) => {
                let reason = delivery::dropped(&why);
                self.dead_letter(state, seq, entry, attempt, reason, &why, now);
            }
            Outcome::Retry(why) if attempt > sub.settings.retry_policy.max_retries => {
                let reason =
                    delivery::out_of_retries(attempt, sub.settings.retry_policy.max_retries, &why);
                self.dead_letter(state, seq, entry, attempt, reason, &why, now);
            }
            Outcome::Retry(why) if expired => {
                let reason = delivery::expired(&why);
                self.dead_letter(state, seq, entry, attempt, reason, &why, now);
            }
            Outcome::Unreachable(why) if expired => {
                let reason = delivery::expired(&why);
                self.dead_letter(state, seq, entry, entry.attempts, reason, &why, now);
            }
            Outcome::Unreachable(_) => {
                // Not an attempt, and not a failure to log once per message per second: the
                // sidecar says once that the service does not answer.
                let next_at = now + UNREACHABLE_RETRY.as_millis() as i64;
                state.queue().retry(seq, entry.attempts, next_at);
                let retry = Settlement::Retry { attempts: entry.attempts, next_at };
                self.inner.store.settle(&state.key, seq, retry, &state.unflushed);
            }
            Outcome::Retry(why) => {
                let next_at = now + sub.settings.retry_policy.backoff(attempt).as_millis() as i64;
                state.queue().retry(seq, attempt, next_at);
                self.report(state, entry, attempt, &why, false);
                count(state, |c| &c.retried, entry, now);
                let retry = Settlement::Retry { attempts: attempt, next_at };
                self.inner.store.settle(&state.key, seq, retry, &state.unflushed);
            }
        }
    }
}

/// Counts a settled delivery, and the time since its message was published.
fn count(state: &SubState, which: fn(&Counters) -> &AtomicU64, entry: &Entry, now: i64) {
    which(&state.counters).fetch_add(1, Ordering::Relaxed);
    let waited = (now - entry.published_at).max(0) as u64;
    state.counters.latency_us.fetch_add(waited * 1000, Ordering::Relaxed);
}

impl Broker for EmbeddedBroker {
    fn config(&self) -> &RuntimeConfig {
        EmbeddedBroker::config(self)
    }

    fn publish<'a>(
        &'a self,
        topic: &'a str,
        message: Publish,
    ) -> BoxFuture<'a, Result<Published, PublishError>> {
        Box::pin(EmbeddedBroker::publish(self, topic, message))
    }

    fn subscribe(
        &self,
        topic: &str,
        subscription: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<tokio::task::JoinHandle<()>, BrokerError> {
        EmbeddedBroker::subscribe(self, topic, subscription, handler).ok_or_else(|| {
            BrokerError::UnknownSubscription {
                topic: topic.to_string(),
                subscription: subscription.to_string(),
            }
        })
    }

    fn dead_letters<'a>(
        &'a self,
        topic: &'a str,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BrokerError>> {
        Box::pin(async move { Ok(EmbeddedBroker::dead_letters(self, topic, subscription).await?) })
    }

    fn release<'a>(
        &'a self,
        topic: &'a str,
        subscription: &'a str,
        ids: Option<Vec<String>>,
    ) -> BoxFuture<'a, Result<usize, BrokerError>> {
        Box::pin(async move { Ok(EmbeddedBroker::release(self, topic, subscription, ids).await?) })
    }

    fn stats(&self) -> BoxFuture<'_, Result<Vec<SubscriptionStats>, BrokerError>> {
        Box::pin(async move { Ok(EmbeddedBroker::stats(self).await?) })
    }

    fn stored_messages(&self) -> BoxFuture<'_, Result<i64, BrokerError>> {
        Box::pin(async move { Ok(EmbeddedBroker::stored_messages(self).await?) })
    }

    fn retired(&self) -> BTreeMap<(String, String), u64> {
        EmbeddedBroker::retired(self).clone()
    }

    fn broken(&self) -> Option<String> {
        EmbeddedBroker::broken(self).map(str::to_string)
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move { Ok(EmbeddedBroker::flush(self).await?) })
    }

    fn shutdown(&self) {
        EmbeddedBroker::shutdown(self);
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move { Ok(EmbeddedBroker::close(self).await?) })
    }
}

#[cfg(test)]
mod tests;
