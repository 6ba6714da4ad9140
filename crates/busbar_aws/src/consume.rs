//! The consumer of one subscription's queue: long-polls for as many messages as there are free
//! delivery slots (`maxConcurrency`), runs the handler on each with its visibility extended
//! until the handler answers, and settles the outcome on SQS.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use busbar_runtime::{Delivery, Handler, Outcome, RuntimeSubscriptionConfig, UNREACHABLE_RETRY};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::{failure, stale_receipt};
use crate::resolve::Queue;
use crate::{Counters, Inner, fifo_id, now_ms};
use busbar_runtime::envelope::{self, DeadMark};

/// SQS receives at most 10 messages per call.
const MAX_BATCH: usize = 10;
/// The longest visibility timeout SQS accepts (12 hours), in seconds.
const MAX_VISIBILITY_SECONDS: i32 = 43_200;
/// The longest wait after failed receives.
const MAX_PAUSE: Duration = Duration::from_secs(30);

#[expect(
    clippy::print_stderr,
    reason = "the consumers' own errors go to the log, as the sidecar's"
)]
pub(crate) fn log(line: &str) {
    eprintln!("busbar: {line}");
}

/// Whole seconds for a visibility timeout (rounded up, within SQS's limit).
fn visibility_seconds(wait: Duration) -> i32 {
    let secs = wait.as_millis().div_ceil(1000);
    i32::try_from(secs).unwrap_or(MAX_VISIBILITY_SECONDS).min(MAX_VISIBILITY_SECONDS)
}

/// Consumes `(topic, subscription)` until shutdown, then waits for the deliveries in flight.
pub(crate) async fn run(inner: Arc<Inner>, key: (String, String), handler: Arc<dyn Handler>) {
    let (Some(queue), Some(sub)) =
        (inner.found.queues.get(&key).cloned(), inner.config.subscription(&key.0, &key.1).cloned())
    else {
        return;
    };
    let slots = Arc::new(Semaphore::new(sub.settings.concurrency_limit()));
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
        let received = receive(&inner, &queue.url, permits.len(), &sub).await;
        match received {
            Ok(messages) => {
                pause = Duration::ZERO;
                // On FIFO, one receive may hold several messages of a group, in order: they
                // are delivered one after the other.
                let mut groups: Vec<(String, Vec<(Message, OwnedSemaphorePermit)>)> = Vec::new();
                for message in messages {
                    let Some(permit) = permits.pop() else { break };
                    let group = match queue.fifo {
                        true => {
                            system_attribute(&message, &MessageSystemAttributeName::MessageGroupId)
                        }
                        false => None,
                    };
                    match groups.iter_mut().find(|(g, _)| group.as_ref() == Some(g)) {
                        Some((_, batch)) => batch.push((message, permit)),
                        None => groups.push((
                            group.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                            vec![(message, permit)],
                        )),
                    }
                }
                for (_, batch) in groups {
                    let delivery = Received {
                        inner: inner.clone(),
                        queue: queue.clone(),
                        sub: sub.clone(),
                        topic: key.0.clone(),
                    };
                    tasks.spawn(delivery.deliver_in_order(handler.clone(), batch));
                }
            }
            Err(e) => {
                let what = format!("receiving subscription `{}` of `{}`", key.1, key.0);
                log(&format!("{} (trying again)", failure(what, &e)));
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

/// Up to `max` messages of the queue at `url`, hidden as the heartbeat hides them.
async fn receive(
    inner: &Inner,
    url: &str,
    max: usize,
    sub: &RuntimeSubscriptionConfig,
) -> Result<Vec<Message>, aws_sdk_sqs::error::SdkError<ReceiveMessageError, HttpResponse>> {
    #[expect(deprecated, reason = "moto reads only the older `AttributeNames`; AWS reads both")]
    let request = inner
        .clients
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max as i32)
        .wait_time_seconds(inner.poll_wait_seconds)
        .visibility_timeout(hidden_seconds(sub.settings.ack_deadline()))
        .set_attribute_names(Some(WANTED.iter().map(|&a| a.into()).collect()))
        .set_message_system_attribute_names(Some(WANTED.iter().map(|&a| a.into()).collect()));
    Ok(request.send().await?.messages.unwrap_or_default())
}

/// The system attributes a delivery needs (asked for by name: moto answers `All` with nulls
/// the SDK refuses).
pub(crate) const WANTED: [&str; 3] = ["ApproximateReceiveCount", "MessageGroupId", "SentTimestamp"];

/// A system attribute of a received message.
pub(crate) fn system_attribute(m: &Message, name: &MessageSystemAttributeName) -> Option<String> {
    m.attributes().and_then(|a| a.get(name)).cloned()
}

/// One received message's context.
struct Received {
    inner: Arc<Inner>,
    queue: Queue,
    sub: RuntimeSubscriptionConfig,
    topic: String,
}

impl Received {
    fn counters(&self) -> Option<&Counters> {
        self.inner.counters.get(&(self.topic.clone(), self.sub.name.clone()))
    }

    /// Delivers messages of one group in order: after one that is not settled for good (to be
    /// retried), the rest go back to the queue undelivered, behind it.
    async fn deliver_in_order(
        self,
        handler: Arc<dyn Handler>,
        batch: Vec<(Message, OwnedSemaphorePermit)>,
    ) {
        // Each message stays hidden from its receive until it is settled, however long the
        // ones before it in its group (or a slow delete) take.
        let deadline = self.sub.settings.ack_deadline();
        let batch: Vec<_> = batch
            .into_iter()
            .map(|(message, slot)| {
                let beat = message.receipt_handle().map(|receipt| {
                    let (inner, url) = (self.inner.clone(), self.queue.url.clone());
                    Heartbeat(tokio::spawn(heartbeat(inner, url, receipt.to_string(), deadline)))
                });
                (message, slot, beat)
            })
            .collect();
        let mut rest = batch.into_iter();
        for (message, _slot, beat) in rest.by_ref() {
            if !self.deliver(handler.clone(), &message, beat).await {
                break;
            }
        }
        for (message, _slot, beat) in rest {
            drop(beat);
            if let Some(receipt) = message.receipt_handle() {
                self.settling(self.visibility(receipt, 0)).await;
            }
        }
    }

    /// Delivers one message and settles it; whether it is done with (acknowledged or
    /// dead-lettered), so the next of its group may follow.
    async fn deliver(
        &self,
        handler: Arc<dyn Handler>,
        m: &Message,
        mut beat: Option<Heartbeat>,
    ) -> bool {
        let Some(receipt) = m.receipt_handle().map(str::to_string) else { return false };
        let attempt = system_attribute(m, &MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(1);
        let body = m.body().unwrap_or_default();
        let message = match envelope::decode(body) {
            Ok((message, _)) => message,
            Err(why) => {
                // Not ours: it goes to the dead-letter queue as it is, with nothing delivered.
                self.settling(self.move_foreign(&receipt, body, &why)).await;
                return true;
            }
        };
        let deadline = self.sub.settings.ack_deadline();
        let stop = self.inner.stop.subscribe();
        let outcome = loop {
            let delivery = Delivery {
                topic: self.topic.clone(),
                subscription: self.sub.name.clone(),
                attempt,
                message: message.clone(),
            };
            match busbar_runtime::delivery::call(&*handler, delivery, deadline).await {
                // Not an attempt: the message stays hidden (the heartbeat) and is offered
                // again, so the queue's receive count does not grow while nobody answers.
                Outcome::Unreachable(_) if !*stop.borrow() => {
                    tokio::time::sleep(UNREACHABLE_RETRY).await;
                }
                outcome => break outcome,
            }
        };
        let done = match &outcome {
            Outcome::Success | Outcome::Drop(_) => true,
            Outcome::Retry(_) => attempt > self.sub.settings.retry_policy.max_retries,
            Outcome::Unreachable(_) => false,
        };
        // A delete or a move to the dead-letter queue keeps the message hidden until it is
        // done; a new visibility (the backoff) must not be overwritten by the heartbeat.
        if !done {
            beat.take();
        }
        self.settling(self.settle(&receipt, &message, attempt, outcome)).await;
        drop(beat);
        done
    }

    /// Runs a settlement, counted for [`crate::AwsBroker::flush`].
    async fn settling(&self, settle: impl Future<Output = ()>) {
        self.inner.settling.fetch_add(1, Ordering::SeqCst);
        settle.await;
        self.inner.settling.fetch_sub(1, Ordering::SeqCst);
        self.inner.settled.notify_waiters();
    }

    async fn settle(
        &self,
        receipt: &str,
        message: &busbar_runtime::StoredMessage,
        attempt: u32,
        outcome: Outcome,
    ) {
        use busbar_runtime::delivery::{dropped, expired, out_of_retries};
        let settings = &self.sub.settings;
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
                if self.delete(&self.queue.url, receipt).await {
                    count(|c| &c.acknowledged);
                }
            }
            Outcome::Drop(why) => {
                self.dead_letter(receipt, message, attempt, dropped(&why)).await;
            }
            Outcome::Retry(why) if attempt > max_retries => {
                self.dead_letter(
                    receipt,
                    message,
                    attempt,
                    out_of_retries(attempt, max_retries, &why),
                )
                .await;
            }
            Outcome::Retry(why) if is_expired => {
                self.dead_letter(receipt, message, attempt, expired(&why)).await;
            }
            Outcome::Retry(_) => {
                let backoff = visibility_seconds(settings.retry_policy.backoff(attempt));
                self.visibility(receipt, backoff).await;
                count(|c| &c.retried);
            }
            // Shutting down while the subscriber does not answer: offered again at once.
            Outcome::Unreachable(_) => self.visibility(receipt, 0).await,
        }
    }

    /// Deletes a received message; whether it is gone. While SQS does not answer, it tries
    /// again (from half a second, doubling, to 5 s, the last try at the deadline) for as long
    /// as the message may still be hidden ([`hidden_for`]: the heartbeat's last extension may
    /// be that recent), so an endpoint that comes back in time means no redelivery.
    async fn delete(&self, url: &str, receipt: &str) -> bool {
        let until = tokio::time::Instant::now() + hidden_for(self.sub.settings.ack_deadline());
        let mut wait = Duration::from_millis(500);
        loop {
            let sent = self
                .inner
                .clients
                .sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(receipt)
                .send()
                .await;
            match sent {
                Ok(_) => return true,
                Err(e) if stale_receipt(&e) => {
                    log(&format!(
                        "a message of {url} was received again before it was deleted: it will be delivered again"
                    ));
                    return false;
                }
                Err(e) => {
                    let e = failure(format_args!("deleting a message of {url}"), &e);
                    let now = tokio::time::Instant::now();
                    if now >= until {
                        log(&format!("{e}: it will be delivered again"));
                        return false;
                    }
                    log(&format!("{e} (trying again)"));
                    // The last try is at the deadline itself, not a backoff step before it.
                    tokio::time::sleep(wait.min(until - now)).await;
                }
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    async fn visibility(&self, receipt: &str, seconds: i32) {
        let sent = self
            .inner
            .clients
            .sqs
            .change_message_visibility()
            .queue_url(&self.queue.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await;
        if let Err(e) = sent
            && !stale_receipt(&e)
        {
            let what = format!("setting the visibility of a message of {}", self.queue.url);
            log(&failure(what, &e).to_string());
        }
    }

    /// Moves a message to the dead-letter queue with why, then deletes it from the queue.
    async fn dead_letter(
        &self,
        receipt: &str,
        message: &busbar_runtime::StoredMessage,
        attempts: u32,
        reason: String,
    ) {
        let mark = DeadMark { reason, attempts, dead_ms: now_ms() };
        let body = envelope::encode(message, Some(mark));
        let group = self.group_of(message);
        if self.send(&self.queue.dead_letter_url, body, &group).await
            && self.delete(&self.queue.url, receipt).await
            && let Some(c) = self.counters()
        {
            c.dead_lettered.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn move_foreign(&self, receipt: &str, body: &str, why: &str) {
        log(&format!("a message of {} is moved to its dead-letter queue: {why}", self.queue.url));
        if self.send(&self.queue.dead_letter_url, body.to_string(), "foreign").await {
            self.delete(&self.queue.url, receipt).await;
        }
    }

    /// The FIFO group of a message: its ordering key, else its id.
    fn group_of(&self, message: &busbar_runtime::StoredMessage) -> String {
        let topic = self.inner.config.topic(&self.topic);
        let ordering = topic.and_then(|t| t.ordering_attribute.as_ref());
        ordering.and_then(|a| message.attributes.get(a)).unwrap_or(&message.id).clone()
    }

    /// Sends a body to a queue of this subscription; whether SQS took it.
    async fn send(&self, url: &str, body: String, group: &str) -> bool {
        send(&self.inner.clients, url, self.queue.fifo, body, group)
            .await
            .map_err(|e| log(&e.to_string()))
            .is_ok()
    }
}

/// Sends `body` to the queue at `url` (with a group and a fresh deduplication id on FIFO).
pub(crate) async fn send(
    clients: &crate::Clients,
    url: &str,
    fifo: bool,
    body: String,
    group: &str,
) -> Result<(), busbar_runtime::BrokerError> {
    let mut request = clients.sqs.send_message().queue_url(url).message_body(body);
    if fifo {
        request = request
            .message_group_id(fifo_id(group))
            .message_deduplication_id(uuid::Uuid::new_v4().to_string());
    }
    request.send().await.map(|_| ()).map_err(|e| failure(format_args!("sending to {url}"), &e))
}

/// A running [`heartbeat`], stopped when dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often the heartbeat extends a received message's visibility: every half ack deadline.
fn heartbeat_period(deadline: Duration) -> Duration {
    (deadline / 2).max(Duration::from_millis(500))
}

/// How long a receive and each heartbeat hide a message: an ack deadline and a heartbeat
/// period. The visibility set last (at most a period ago while the endpoint answered) then
/// outlasts an outage shorter than the ack deadline, so such an outage expires nothing.
fn hidden_for(deadline: Duration) -> Duration {
    deadline + heartbeat_period(deadline)
}

/// [`hidden_for`] in whole seconds, as SQS takes it.
fn hidden_seconds(deadline: Duration) -> i32 {
    visibility_seconds(hidden_for(deadline)).max(1)
}

/// Keeps a received message hidden until it is settled ([`hidden_seconds`], every
/// [`heartbeat_period`]); a failed extension is tried again after half a second, not a whole
/// period.
async fn heartbeat(inner: Arc<Inner>, url: String, receipt: String, deadline: Duration) {
    let period = heartbeat_period(deadline);
    let hidden = hidden_seconds(deadline);
    let mut wait = period;
    loop {
        tokio::time::sleep(wait).await;
        let sent = inner
            .clients
            .sqs
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(&receipt)
            .visibility_timeout(hidden)
            .send()
            .await;
        wait = period;
        if let Err(e) = sent {
            if stale_receipt(&e) {
                return;
            }
            log(&failure(format_args!("extending the visibility of a message of {url}"), &e)
                .to_string());
            wait = Duration::from_millis(500).min(period);
        }
    }
}
