//! What the broker delivers: topics and their subscriptions, with the settings of the app
//! model (or written by hand in tests).

use std::time::Duration;

use busbar_model::{AppModel, DeliveryGuarantee, Filter};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    pub topics: Vec<TopicConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicConfig {
    pub name: String,
    /// Messages with the same value of this attribute are delivered one at a time, in order.
    pub ordering_attribute: Option<String>,
    /// Publishes with a message id are stored once per id within [`DEDUP_WINDOW`].
    pub exactly_once: bool,
    pub subscriptions: Vec<SubscriptionConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionConfig {
    pub name: String,
    pub ack_deadline: Duration,
    pub retention: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Deliveries after the first; the message is dead-lettered when the last one fails.
    pub max_retries: u32,
    pub max_concurrency: Option<u32>,
    pub filter: Option<Filter>,
}

/// How long a client-supplied message id is remembered on an exactly-once topic (as SQS FIFO).
pub const DEDUP_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The largest message accepted, as on SNS and SQS.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// The most attributes a message may carry, as on SNS.
pub const MAX_ATTRIBUTES: usize = 10;

impl SubscriptionConfig {
    /// A subscription with the model's defaults.
    pub fn named(name: &str) -> Self {
        use busbar_model::defaults;
        SubscriptionConfig {
            name: name.to_string(),
            ack_deadline: Duration::from_millis(defaults::ACK_DEADLINE_MS),
            retention: Duration::from_millis(defaults::MESSAGE_RETENTION_MS),
            min_backoff: Duration::from_millis(defaults::MIN_BACKOFF_MS),
            max_backoff: Duration::from_millis(defaults::MAX_BACKOFF_MS),
            max_retries: defaults::MAX_RETRIES,
            max_concurrency: None,
            filter: None,
        }
    }

    /// The wait before delivery attempt `attempt + 1` after `attempt` failed ones: the minimum
    /// backoff doubled per failure, capped at the maximum.
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 1u32.checked_shl(failed.saturating_sub(1)).unwrap_or(u32::MAX);
        self.min_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

impl BrokerConfig {
    /// Every topic and subscription of the app, with its settings.
    pub fn from_model(model: &AppModel) -> Self {
        let topics = model
            .topics
            .iter()
            .map(|t| TopicConfig {
                name: t.name.clone(),
                ordering_attribute: t.ordering_attribute.clone(),
                exactly_once: t.delivery_guarantee == DeliveryGuarantee::ExactlyOnce,
                subscriptions: t
                    .subscriptions
                    .iter()
                    .map(|s| SubscriptionConfig {
                        name: s.name.clone(),
                        ack_deadline: Duration::from_millis(s.ack_deadline_ms),
                        retention: Duration::from_millis(s.message_retention_ms),
                        min_backoff: Duration::from_millis(s.retry_policy.min_backoff_ms),
                        max_backoff: Duration::from_millis(s.retry_policy.max_backoff_ms),
                        max_retries: s.retry_policy.max_retries,
                        max_concurrency: s.max_concurrency,
                        filter: s.filter.clone(),
                    })
                    .collect(),
            })
            .collect();
        BrokerConfig { topics }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicConfig> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// A filter accepts a message when every listed attribute has one of its values.
pub fn filter_accepts(
    filter: &Filter,
    attributes: &std::collections::BTreeMap<String, String>,
) -> bool {
    filter.iter().all(|(k, values)| attributes.get(k).is_some_and(|v| values.contains(v)))
}
