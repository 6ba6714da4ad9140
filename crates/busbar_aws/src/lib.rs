//! The AWS backend of the busbar runtime: [`AwsBroker`] delivers over SNS and SQS with the
//! semantics of the runtime contract, behind [`busbar_runtime::Broker`].
//!
//! - A publish goes to the topic's SNS topic with the message's attributes as SNS message
//!   attributes (numbers as `Number`: what the subscriptions' filter policies match), and on a
//!   FIFO topic `MessageGroupId` from the ordering attribute and `MessageDeduplicationId` from
//!   the client message id. The body is busbar's envelope (`envelope`).
//! - Each subscription's queue is consumed with long polling, at most `maxConcurrency`
//!   deliveries in flight (`consume`): delete on success; on failure, the message's visibility
//!   is set to the retry policy's backoff; the visibility is extended while a handler runs up
//!   to its ack deadline; DROP, and a failure past the last retry, move the message to the
//!   dead-letter queue with the reason; the queue's redrive policy (`maxReceiveCount`) is the
//!   net under that.
//! - Where each topic and queue is comes from [`AwsLocations`] (the plan's names, or the
//!   Terraform module's outputs); credentials, region and endpoint from the standard AWS
//!   environment (`AWS_ENDPOINT_URL`, profiles, roles). [`AwsBroker::connect`] finds and checks
//!   every resource before it serves (`resolve`).
//!
//! SDK types stay inside this crate: callers see the runtime's types and [`BrokerError`].

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

mod consume;
mod dead;
mod errors;
mod resolve;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sns::types::MessageAttributeValue;
use busbar_model::AttributeType;
pub use busbar_model::locations::AwsLocations;
pub use busbar_runtime::Scope;
use busbar_runtime::envelope;
use busbar_runtime::{
    BoxFuture, Broker, BrokerError, DeadLetter, Handler, MAX_MESSAGE_BYTES, Publish, PublishError,
    Published, RuntimeConfig, StoredMessage, SubscriptionStats,
};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};

use crate::errors::failure;
use crate::resolve::Found;

/// How [`AwsBroker::connect`] reaches AWS, beyond the standard environment.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    pub scope: Scope,
    /// The endpoint (a moto server); else `AWS_ENDPOINT_URL` or AWS's own.
    pub endpoint_url: Option<String>,
    /// The region; else `AWS_REGION` or the profile's.
    pub region: Option<String>,
    /// Static credentials (access key id, secret); else the standard chain (environment,
    /// profile, web identity, instance or container role).
    pub credentials: Option<(String, String)>,
    /// How long a receive waits for messages (long polling), in seconds, 0 to 20 (default 5):
    /// also how long a shutdown may wait for the consumers to stop asking.
    pub poll_wait_seconds: Option<u8>,
}

/// The clients of the AWS services the broker uses.
pub(crate) struct Clients {
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sts: aws_sdk_sts::Client,
    pub region: Option<String>,
}

/// A subscription's counters.
#[derive(Default)]
pub(crate) struct Counters {
    pub acknowledged: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub latency_us: AtomicU64,
}

/// The AWS broker. Cloning shares it.
#[derive(Clone)]
pub struct AwsBroker {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: RuntimeConfig,
    pub clients: Clients,
    pub found: Found,
    pub counters: BTreeMap<(String, String), Counters>,
    /// Becomes true at shutdown: the consumers stop receiving.
    pub stop: watch::Sender<bool>,
    pub closed: AtomicBool,
    /// Why publishes fail now (the endpoint away), until one succeeds.
    pub broken: Mutex<Option<String>>,
    /// Settlements (delete, visibility, dead-letter moves) under way, for [`Broker::flush`].
    pub settling: AtomicUsize,
    pub settled: Notify,
    pub poll_wait_seconds: i32,
}

impl AwsBroker {
    /// Connects with the standard AWS environment (and `options`), then finds and checks every
    /// topic and queue it will serve; the error names the resource that is missing, of the
    /// wrong kind, or not readable with these credentials.
    pub async fn connect(
        config: RuntimeConfig,
        locations: &AwsLocations,
        options: AwsOptions,
    ) -> Result<AwsBroker, BrokerError> {
        let clients = clients(&options).await;
        let (topics, subscriptions) = options.scope.select(&config)?;
        let found = resolve::resolve(&clients, &config, locations, &topics, &subscriptions).await?;
        let counters = found.queues.keys().map(|k| (k.clone(), Counters::default())).collect();
        let (stop, _) = watch::channel(false);
        Ok(AwsBroker {
            inner: Arc::new(Inner {
                config,
                clients,
                found,
                counters,
                stop,
                closed: AtomicBool::new(false),
                broken: Mutex::new(None),
                settling: AtomicUsize::new(0),
                settled: Notify::new(),
                poll_wait_seconds: i32::from(options.poll_wait_seconds.unwrap_or(5).min(20)),
            }),
        })
    }

    fn check_open(&self) -> Result<(), BrokerError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(BrokerError::Unavailable("the broker is closed".into()));
        }
        Ok(())
    }

    async fn publish_to(&self, topic: &str, message: Publish) -> Result<Published, PublishError> {
        self.check_open()?;
        let t = self
            .inner
            .config
            .topic(topic)
            .ok_or_else(|| PublishError::UnknownTopic(topic.to_string()))?;
        let Some(sns_topic) = self.inner.found.topics.get(topic) else {
            return Err(BrokerError::Failed(format!(
                "topic `{topic}` is not served here: the service does not publish to it"
            ))
            .into());
        };
        message.check_limits()?;
        let id = message.id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let stored = StoredMessage {
            id: id.clone(),
            topic: topic.to_string(),
            data: message.data,
            content_type: message.content_type,
            attributes: message.attributes,
            published_at_ms: now_ms(),
        };
        let body = envelope::encode(&stored, None);
        let attributes = sns_attributes(&stored.attributes, &t.attribute_types);
        let size = body.len()
            + attributes
                .iter()
                .map(|(k, v)| k.len() + v.data_type().len() + v.string_value().map_or(0, str::len))
                .sum::<usize>();
        if size > MAX_MESSAGE_BYTES {
            return Err(PublishError::TooLarge { size, limit: MAX_MESSAGE_BYTES });
        }
        let mut request = self
            .inner
            .clients
            .sns
            .publish()
            .topic_arn(&sns_topic.arn)
            .message(body)
            .set_message_attributes(Some(attributes));
        if sns_topic.fifo {
            let ordering = t.ordering_attribute.as_ref().and_then(|a| stored.attributes.get(a));
            let dedup = match (&message.id, t.exactly_once()) {
                (Some(client_id), true) => client_id,
                _ => &id,
            };
            request = request
                .message_group_id(fifo_id(ordering.unwrap_or(&id)))
                .message_deduplication_id(fifo_id(dedup));
        }
        match request.send().await {
            Ok(_) => {
                self.set_broken(None);
                Ok(Published { id, duplicate: false })
            }
            Err(e) => {
                let e = failure(format_args!("publishing to `{topic}`"), &e);
                if let BrokerError::Unavailable(why) = &e {
                    self.set_broken(Some(why.clone()));
                }
                Err(e.into())
            }
        }
    }

    fn set_broken(&self, why: Option<String>) {
        if let Ok(mut broken) = self.inner.broken.lock() {
            *broken = why;
        }
    }

    async fn stats_now(&self) -> Result<Vec<SubscriptionStats>, BrokerError> {
        let mut out = Vec::new();
        for ((topic, subscription), queue) in &self.inner.found.queues {
            let (visible, in_flight) = dead::counts(&self.inner.clients, &queue.url).await?;
            let (dead_letters, _) =
                dead::counts(&self.inner.clients, &queue.dead_letter_url).await?;
            let c = self.inner.counters.get(&(topic.clone(), subscription.clone()));
            let load =
                |f: fn(&Counters) -> &AtomicU64| c.map_or(0, |c| f(c).load(Ordering::Relaxed));
            out.push(SubscriptionStats {
                topic: topic.clone(),
                subscription: subscription.clone(),
                backlog: Some(visible + in_flight),
                dead_letters: Some(dead_letters),
                acknowledged: load(|c| &c.acknowledged),
                retried: load(|c| &c.retried),
                dead_lettered: load(|c| &c.dead_lettered),
                latency_us: load(|c| &c.latency_us),
            });
        }
        // In the configuration's order, as every backend reports them.
        let order = |s: &SubscriptionStats| {
            let topics = &self.inner.config.topics;
            let t = topics.iter().position(|t| t.name == s.topic).unwrap_or(usize::MAX);
            let sub = topics
                .get(t)
                .and_then(|t| t.subscriptions.iter().position(|x| x.name == s.subscription));
            (t, sub.unwrap_or(usize::MAX))
        };
        out.sort_by_key(order);
        Ok(out)
    }

    async fn flush_now(&self) {
        loop {
            let settled = self.inner.settled.notified();
            if self.inner.settling.load(Ordering::SeqCst) == 0 {
                return;
            }
            settled.await;
        }
    }

    fn queue_of(&self, topic: &str, subscription: &str) -> Result<&resolve::Queue, BrokerError> {
        self.inner.found.queues.get(&(topic.to_string(), subscription.to_string())).ok_or_else(
            || BrokerError::UnknownSubscription {
                topic: topic.to_string(),
                subscription: subscription.to_string(),
            },
        )
    }
}

/// The SDK clients, from the environment and `options`.
async fn clients(options: &AwsOptions) -> Clients {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            // A receive waits up to 20 s for messages.
            .operation_attempt_timeout(Duration::from_secs(30))
            .build(),
    );
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &options.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some((key, secret)) = &options.credentials {
        let credentials =
            aws_sdk_sns::config::Credentials::new(key, secret, None, None, "busbar-options");
        loader = loader.credentials_provider(credentials);
    }
    let config = loader.load().await;
    Clients {
        sns: aws_sdk_sns::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
        sts: aws_sdk_sts::Client::new(&config),
        region: config.region().map(|r| r.to_string()),
    }
}

/// The message's attributes as SNS message attributes: numbers (declared so, and parsing as
/// one) as `Number`, the rest as `String`. SNS refuses empty values, so an empty attribute
/// travels only in the envelope (no filter can match it anyway).
fn sns_attributes(
    attributes: &BTreeMap<String, String>,
    types: &BTreeMap<String, AttributeType>,
) -> HashMap<String, MessageAttributeValue> {
    attributes
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .filter_map(|(k, v)| {
            let number = types.get(k) == Some(&AttributeType::Number) && v.parse::<f64>().is_ok();
            let value = MessageAttributeValue::builder()
                .data_type(if number { "Number" } else { "String" })
                .string_value(v)
                .build()
                .ok()?;
            Some((k.clone(), value))
        })
        .collect()
}

/// A FIFO group or deduplication id: at most 128 of the printable ASCII characters, so a
/// longer or other value goes as its SHA-256 (same value, same id).
pub(crate) fn fifo_id(value: &str) -> String {
    if !value.is_empty() && value.len() <= 128 && value.chars().all(|c| c.is_ascii_graphic()) {
        return value.to_string();
    }
    let digest = Sha256::digest(value.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Broker for AwsBroker {
    fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    fn publish<'a>(
        &'a self,
        topic: &'a str,
        message: Publish,
    ) -> BoxFuture<'a, Result<Published, PublishError>> {
        Box::pin(self.publish_to(topic, message))
    }

    fn subscribe(
        &self,
        topic: &str,
        subscription: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<tokio::task::JoinHandle<()>, BrokerError> {
        self.check_open()?;
        self.queue_of(topic, subscription)?;
        let key = (topic.to_string(), subscription.to_string());
        Ok(tokio::spawn(consume::run(self.inner.clone(), key, handler)))
    }

    fn dead_letters<'a>(
        &'a self,
        topic: &'a str,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BrokerError>> {
        Box::pin(async move {
            self.check_open()?;
            let queue = self.queue_of(topic, subscription)?;
            dead::list(&self.inner.clients, queue).await
        })
    }

    fn release<'a>(
        &'a self,
        topic: &'a str,
        subscription: &'a str,
        ids: Option<Vec<String>>,
    ) -> BoxFuture<'a, Result<usize, BrokerError>> {
        Box::pin(async move {
            self.check_open()?;
            let queue = self.queue_of(topic, subscription)?;
            let t = self.inner.config.topic(topic);
            let ordering = t.and_then(|t| t.ordering_attribute.clone());
            dead::release(&self.inner.clients, queue, ordering.as_deref(), ids.as_deref()).await
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<Vec<SubscriptionStats>, BrokerError>> {
        Box::pin(async move {
            self.check_open()?;
            self.stats_now().await
        })
    }

    fn stored_messages(&self) -> BoxFuture<'_, Result<i64, BrokerError>> {
        Box::pin(async move {
            self.check_open()?;
            let stats = self.stats_now().await?;
            Ok(stats.iter().map(|s| s.backlog.unwrap_or(0) + s.dead_letters.unwrap_or(0)).sum())
        })
    }

    fn retired(&self) -> BTreeMap<(String, String), u64> {
        // The queues outlive the configuration: nothing is retired here.
        BTreeMap::new()
    }

    fn broken(&self) -> Option<String> {
        self.inner.broken.lock().ok().and_then(|b| b.clone())
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            self.flush_now().await;
            Ok(())
        })
    }

    fn shutdown(&self) {
        self.inner.stop.send_replace(true);
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            self.shutdown();
            self.flush_now().await;
            self.inner.closed.store(true, Ordering::SeqCst);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_ids_fit_sqs_and_stay_the_same_for_the_same_value() {
        assert_eq!(fifo_id("customer-42"), "customer-42");
        let long = "x".repeat(200);
        assert_eq!(fifo_id(&long).len(), 64);
        assert_eq!(fifo_id(&long), fifo_id(&long));
        assert_eq!(fifo_id("with space").len(), 64);
        assert_ne!(fifo_id("with space"), fifo_id("with  space"));
    }

    #[test]
    fn declared_numbers_travel_as_numbers_and_empty_values_only_in_the_envelope() {
        let attributes = BTreeMap::from([
            ("n".to_string(), "5".to_string()),
            ("s".to_string(), "5".to_string()),
            ("e".to_string(), String::new()),
            ("bad".to_string(), "five".to_string()),
        ]);
        let types = BTreeMap::from([
            ("n".to_string(), AttributeType::Number),
            ("bad".to_string(), AttributeType::Number),
        ]);
        let sns = sns_attributes(&attributes, &types);
        assert_eq!(sns["n"].data_type(), "Number");
        assert_eq!(sns["s"].data_type(), "String");
        assert_eq!(sns["bad"].data_type(), "String");
        assert!(!sns.contains_key("e"));
    }
}
