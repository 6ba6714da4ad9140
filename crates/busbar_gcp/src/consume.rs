//! The consumer of one subscription: pulls as many messages as there are free delivery slots
//! (`maxConcurrency`), runs the handler on each with its ack deadline extended until the
//! handler answers, and settles the outcome on Pub/Sub.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use busbar_runtime::envelope::{self, DeadMark};
use busbar_runtime::{Delivery, Handler, Outcome, StoredMessage, UNREACHABLE_RETRY};
use gcloud_pubsub::subscriber::ReceivedMessage;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::{Failure, failure};
use crate::resolve::SubscriptionAt;
use crate::{Counters, Inner, now_ms, publish, pubsub_message};

/// The most messages one pull asks for.
const MAX_BATCH: usize = 100;
/// The longest ack deadline Pub/Sub accepts, in seconds.
const MAX_DEADLINE_SECONDS: i32 = 600;
/// The longest wait after failed pulls.
const MAX_PAUSE: Duration = Duration::from_secs(30);
/// The attribute a released dead letter carries: the one subscription it is for (it goes back
/// through the topic, so the topic's other subscriptions get it too, and let it pass).
pub(crate) const RELEASED_TO: &str = "busbar-released-to";

#[expect(
    clippy::print_stderr,
    reason = "the consumers' own errors go to the log, as the sidecar's"
)]
pub(crate) fn log(line: &str) {
    eprintln!("busbar: {line}");
}

/// Whole seconds for an ack deadline (rounded up, within Pub/Sub's limit).
fn deadline_seconds(wait: Duration) -> i32 {
    let secs = wait.as_millis().div_ceil(1000);
    i32::try_from(secs).unwrap_or(MAX_DEADLINE_SECONDS).min(MAX_DEADLINE_SECONDS)
}

/// Consumes `(topic, subscription)` until shutdown, then waits for the deliveries in flight.
pub(crate) async fn run(inner: Arc<Inner>, key: (String, String), handler: Arc<dyn Handler>) {
    let Some(at) = inner.found.subscriptions.get(&key).cloned() else { return };
    let slots = Arc::new(Semaphore::new(at.settings.settings.concurrency_limit()));
    let mut stop = inner.stop.subscribe();
    let mut tasks = tokio::task::JoinSet::new();
    let mut pause = Duration::ZERO;
    while !*stop.borrow() {
        while tasks.try_join_next().is_some() {}
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.changed() => continue,
        };
        let mut permits = vec![first];
        while permits.len() < MAX_BATCH {
            match slots.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        // A pull waits until there are messages; shutting down abandons it (what it would
        // have leased is offered again after the ack deadline).
        let pulled = tokio::select! {
            pulled = at.subscription.pull(permits.len() as i32, None) => pulled,
            _ = stop.changed() => break,
        };
        match pulled {
            Ok(messages) => {
                pause = Duration::ZERO;
                let mut groups: Vec<(String, Vec<(ReceivedMessage, OwnedSemaphorePermit)>)> =
                    Vec::new();
                for message in messages {
                    let Some(permit) = permits.pop() else { break };
                    if let Some(c) = inner.counters.get(&key) {
                        c.in_flight.fetch_add(1, Ordering::Relaxed);
                    }
                    // On an ordered subscription, one pull may hold several messages of a key,
                    // in order: they are delivered one after the other.
                    let group = Some(&message.message.ordering_key)
                        .filter(|k| at.ordered && !k.is_empty())
                        .cloned();
                    match groups.iter_mut().find(|(g, _)| group.as_ref() == Some(g)) {
                        Some((_, batch)) => batch.push((message, permit)),
                        None => groups.push((
                            group.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                            vec![(message, permit)],
                        )),
                    }
                }
                for (_, batch) in groups {
                    let delivery = Received { inner: inner.clone(), at: at.clone() };
                    tasks.spawn(delivery.deliver_in_order(handler.clone(), batch));
                }
            }
            Err(e) => {
                let what = format!("pulling subscription `{}` of `{}`", key.1, key.0);
                log(&format!("{} (trying again)", failure(what, &Failure::from(e))));
                drop(permits);
                pause = (pause * 2).clamp(Duration::from_secs(1), MAX_PAUSE);
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// One pulled message's context.
struct Received {
    inner: Arc<Inner>,
    at: Arc<SubscriptionAt>,
}

impl Received {
    fn counters(&self) -> Option<&Counters> {
        self.inner.counters.get(&(self.at.topic.clone(), self.at.settings.name.clone()))
    }

    /// Delivers messages of one key in order: after one that is not settled for good (to be
    /// retried), the rest are offered again at once, behind it.
    async fn deliver_in_order(
        self,
        handler: Arc<dyn Handler>,
        batch: Vec<(ReceivedMessage, OwnedSemaphorePermit)>,
    ) {
        let mut rest = batch.into_iter();
        for (message, _slot) in rest.by_ref() {
            let done = self.deliver(handler.clone(), &message).await;
            self.settled_one();
            if !done {
                break;
            }
        }
        for (message, _slot) in rest {
            self.settling(self.deadline(&message, 0)).await;
            self.settled_one();
        }
    }

    fn settled_one(&self) {
        if let Some(c) = self.counters() {
            c.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Delivers one message and settles it; whether it is done with (acknowledged or
    /// dead-lettered), so the next of its key may follow.
    async fn deliver(&self, handler: Arc<dyn Handler>, m: &ReceivedMessage) -> bool {
        let lease = Lease::from_pull(self.at.ack_deadline_seconds);
        let lease = &lease;
        if let Some(to) = m.message.attributes.get(RELEASED_TO)
            && *to != self.at.settings.name
        {
            // Released for another subscription of the topic.
            self.settling(async {
                self.ack(m, lease).await;
            })
            .await;
            return true;
        }
        let attempt = m.delivery_attempt().map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX));
        let message = match std::str::from_utf8(&m.message.data)
            .map_err(|e| format!("the data is not UTF-8: {e}"))
            .and_then(envelope::decode)
        {
            Ok((message, _)) => message,
            Err(why) => {
                // Not ours: it goes to the dead-letter topic as it is, with nothing delivered.
                self.settling(self.move_foreign(m, &why, lease)).await;
                return true;
            }
        };
        // Pub/Sub applies the subscription's filter; the emulator does not, so the runtime
        // checks it too (what the filter refuses is acknowledged undelivered, as Pub/Sub does).
        if let Some(filter) = &self.at.settings.settings.filter
            && !busbar_model::filter_accepts(filter, &message.attributes)
        {
            self.settling(async {
                self.ack(m, lease).await;
            })
            .await;
            return true;
        }
        let deadline = self.at.settings.settings.ack_deadline();
        let heartbeat =
            tokio::spawn(heartbeat(m.clone(), self.at.ack_deadline_seconds, lease.clone()));
        let stop = self.inner.stop.subscribe();
        let outcome = loop {
            let delivery = Delivery {
                topic: self.at.topic.clone(),
                subscription: self.at.settings.name.clone(),
                attempt,
                message: message.clone(),
            };
            match busbar_runtime::delivery::call(&*handler, delivery, deadline).await {
                // Not an attempt: the message stays leased (the heartbeat) and is offered
                // again, so its delivery attempts do not grow while nobody answers.
                Outcome::Unreachable(_) if !*stop.borrow() => {
                    tokio::time::sleep(UNREACHABLE_RETRY).await;
                }
                outcome => break outcome,
            }
        };
        heartbeat.abort();
        let done = match &outcome {
            Outcome::Success | Outcome::Drop(_) => true,
            Outcome::Retry(_) => attempt > self.at.settings.settings.retry_policy.max_retries,
            Outcome::Unreachable(_) => false,
        };
        self.settling(self.settle(m, &message, attempt, outcome, lease)).await;
        done
    }

    /// Runs a settlement, counted for [`crate::GcpBroker::flush`].
    async fn settling(&self, settle: impl Future<Output = ()>) {
        self.inner.settling.fetch_add(1, Ordering::SeqCst);
        settle.await;
        self.inner.settling.fetch_sub(1, Ordering::SeqCst);
        self.inner.settled.notify_waiters();
    }

    async fn settle(
        &self,
        m: &ReceivedMessage,
        message: &StoredMessage,
        attempt: u32,
        outcome: Outcome,
        lease: &Lease,
    ) {
        use busbar_runtime::delivery::{dropped, expired, out_of_retries};
        let settings = &self.at.settings.settings;
        let max_retries = settings.retry_policy.max_retries;
        let waited = now_ms() - message.published_at_ms;
        let is_expired = waited > settings.message_retention().as_millis() as i64;
        let count = |which: fn(&Counters) -> &std::sync::atomic::AtomicU64| {
            if let Some(c) = self.counters() {
                which(c).fetch_add(1, Ordering::Relaxed);
                c.latency_us.fetch_add(waited.max(0) as u64 * 1000, Ordering::Relaxed);
            }
        };
        match outcome {
            Outcome::Success => {
                if self.ack(m, lease).await {
                    count(|c| &c.acknowledged);
                }
            }
            Outcome::Drop(why) => self.dead_letter(m, message, attempt, dropped(&why), lease).await,
            Outcome::Retry(why) if attempt > max_retries => {
                let reason = out_of_retries(attempt, max_retries, &why);
                self.dead_letter(m, message, attempt, reason, lease).await;
            }
            Outcome::Retry(why) if is_expired => {
                self.dead_letter(m, message, attempt, expired(&why), lease).await;
            }
            Outcome::Retry(_) => {
                let backoff = deadline_seconds(settings.retry_policy.backoff(attempt));
                self.deadline(m, backoff).await;
                count(|c| &c.retried);
            }
            // Shutting down while the subscriber does not answer: offered again at once.
            Outcome::Unreachable(_) => self.deadline(m, 0).await,
        }
    }

    /// Acknowledges a pulled message; whether it is gone. While Pub/Sub does not answer, it
    /// tries again (from half a second, doubling, to 5 s) for as long as the message stays
    /// leased, the last time just before the lease ends, so an endpoint that comes back in
    /// time means no redelivery. On an exactly-once subscription the answer is Pub/Sub's
    /// confirmation.
    async fn ack(&self, m: &ReceivedMessage, lease: &Lease) -> bool {
        let mut wait = Duration::from_millis(500);
        loop {
            match m.ack().await.map_err(Failure::from) {
                Ok(()) => return true,
                Err(e) if e.stale_ack() => {
                    log(&format!(
                        "a message of {} was offered again before it was acknowledged: it will be delivered again",
                        self.at.name
                    ));
                    return false;
                }
                Err(e) => {
                    let e =
                        failure(format_args!("acknowledging a message of {}", self.at.name), &e);
                    let left = lease.end().saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        log(&format!("{e}: it will be delivered again"));
                        return false;
                    }
                    log(&format!("{e} (trying again)"));
                    tokio::time::sleep(wait.min(left)).await;
                }
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// Sets a message's ack deadline: Pub/Sub offers it again after `seconds`.
    async fn deadline(&self, m: &ReceivedMessage, seconds: i32) {
        if let Err(e) = m.modify_ack_deadline(seconds).await.map_err(Failure::from)
            && !e.stale_ack()
        {
            let what = format!("setting the ack deadline of a message of {}", self.at.name);
            log(&failure(what, &e).to_string());
        }
    }

    /// Publishes a message to the dead-letter topic with why, then acknowledges it.
    async fn dead_letter(
        &self,
        m: &ReceivedMessage,
        message: &StoredMessage,
        attempts: u32,
        reason: String,
        lease: &Lease,
    ) {
        let mark = DeadMark { reason, attempts, dead_ms: now_ms() };
        let dead = pubsub_message(message, Some(mark), None);
        match publish(&self.at.dead_publisher, dead).await {
            Ok(()) => {
                if self.ack(m, lease).await
                    && let Some(c) = self.counters()
                {
                    c.dead_lettered.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                let what = format!("moving a message to {}", self.at.dead_letter_topic);
                log(&format!("{}: it will be delivered again", failure(what, &e)));
                self.deadline(m, 0).await;
            }
        }
    }

    async fn move_foreign(&self, m: &ReceivedMessage, why: &str, lease: &Lease) {
        log(&format!("a message of {} is moved to its dead-letter topic: {why}", self.at.name));
        let mut foreign = m.message.clone();
        foreign.message_id = String::new();
        foreign.publish_time = None;
        foreign.ordering_key = String::new();
        match publish(&self.at.dead_publisher, foreign).await {
            Ok(()) => {
                self.ack(m, lease).await;
            }
            Err(e) => {
                let what = format!("moving a message to {}", self.at.dead_letter_topic);
                log(&failure(what, &e).to_string());
            }
        }
    }
}

/// Until when a pulled message stays leased to this consumer, as far as it knows: from the
/// pull, the subscription's ack deadline (counted from when delivery starts, a little after
/// Pub/Sub started it, so less a margin); each extension of the heartbeat pushes it on.
#[derive(Clone)]
pub(crate) struct Lease(Arc<std::sync::Mutex<tokio::time::Instant>>);

/// What [`Lease`] keeps back from a deadline: the time a request takes to arrive.
const LEASE_MARGIN: Duration = Duration::from_millis(250);

impl Lease {
    fn from_pull(deadline_seconds: i32) -> Lease {
        Lease(Arc::new(std::sync::Mutex::new(Self::after(deadline_seconds))))
    }

    fn after(seconds: i32) -> tokio::time::Instant {
        let lease = Duration::from_secs(seconds.max(0) as u64).saturating_sub(LEASE_MARGIN);
        tokio::time::Instant::now() + lease
    }

    fn end(&self) -> tokio::time::Instant {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn extended(&self, seconds: i32) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Self::after(seconds);
    }
}

/// Keeps a message leased while its handler runs: every half ack deadline, leased for the ack
/// deadline and half again, so one failed extension (Pub/Sub away for a moment) does not let
/// the lease lapse; a failed extension is tried again after half a second, not half a
/// deadline. Aborted once the handler answers.
async fn heartbeat(m: ReceivedMessage, deadline_seconds: i32, lease: Lease) {
    let period = Duration::from_secs(deadline_seconds.max(1) as u64) / 2;
    let seconds = (deadline_seconds + (deadline_seconds.max(1) + 1) / 2).min(MAX_DEADLINE_SECONDS);
    let mut next = period;
    loop {
        tokio::time::sleep(next).await;
        match m.modify_ack_deadline(seconds).await.map_err(Failure::from) {
            Ok(()) => {
                lease.extended(seconds);
                next = period;
            }
            Err(e) if e.stale_ack() => return,
            Err(e) => {
                log(&failure("extending the ack deadline of a message", &e).to_string());
                next = Duration::from_millis(500).min(period);
            }
        }
    }
}
