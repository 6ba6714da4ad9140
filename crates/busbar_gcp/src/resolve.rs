//! Finding and checking, before serving, every topic and subscription a broker serves: that
//! each exists and is readable with these credentials, that an ordered topic's subscription
//! delivers in order, and that each subscription has the dead-letter topic the runtime moves
//! dead letters to (and, for `busbar dlq`, the subscription that keeps them).

use std::collections::BTreeMap;
use std::sync::Arc;

use busbar_model::locations::GcpLocations;
use busbar_runtime::{BrokerError, RuntimeConfig, RuntimeSubscriptionConfig};
use gcloud_pubsub::client::Client;
use gcloud_pubsub::publisher::Publisher;
use gcloud_pubsub::subscription::Subscription;

use crate::errors::{Failure, at_start};

/// What to do when a resource is missing.
const APPLY: &str = "create it with busbar's Terraform module (`terraform apply`), or give the module's outputs (`--outputs`) or the `--prefix` it was planned with";

/// A topic served for publishing.
pub(crate) struct TopicAt {
    /// Its full name (`projects/P/topics/T`).
    pub name: String,
    pub publisher: Publisher,
}

/// A subscription served.
pub(crate) struct SubscriptionAt {
    /// Its full name (`projects/P/subscriptions/S`).
    pub name: String,
    pub subscription: Subscription,
    pub settings: RuntimeSubscriptionConfig,
    /// The busbar topic.
    pub topic: String,
    pub ordered: bool,
    /// Its ack deadline on Pub/Sub, in seconds.
    pub ack_deadline_seconds: i32,
    /// Its dead-letter topic's full name, and a publisher to it.
    pub dead_letter_topic: String,
    pub dead_publisher: Publisher,
    /// A publisher to its own topic (a released dead letter goes back through it).
    pub topic_publisher: Publisher,
    /// The subscription on its dead-letter topic that keeps the dead letters, when read here.
    pub dead_subscription: Option<Subscription>,
}

#[derive(Default)]
pub(crate) struct Found {
    pub topics: BTreeMap<String, TopicAt>,
    pub subscriptions: BTreeMap<(String, String), Arc<SubscriptionAt>>,
}

fn failed(text: String) -> BrokerError {
    BrokerError::Failed(text)
}

/// Finds `topics` (to publish to) and `subscriptions` (to consume, and their dead letters).
pub(crate) async fn resolve(
    client: &Client,
    config: &RuntimeConfig,
    locations: &GcpLocations,
    topics: &[String],
    subscriptions: &[(String, String)],
    with_dead_subscriptions: bool,
) -> Result<Found, BrokerError> {
    let mut found = Found::default();
    for topic in topics {
        let name = topic_name(client, locations, topic)?;
        let handle = client.topic(&name);
        match handle.exists(None).await.map_err(Failure::from) {
            Ok(true) => {}
            Ok(false) => {
                return Err(failed(format!(
                    "the Pub/Sub topic `{name}` of topic `{topic}` does not exist\n  = help: {APPLY}"
                )));
            }
            Err(e) => return Err(at_start(format_args!("reading the Pub/Sub topic `{name}`"), &e)),
        }
        let publisher = handle.new_publisher(None);
        found.topics.insert(topic.clone(), TopicAt { name, publisher });
    }
    for (topic, sub) in subscriptions {
        let at =
            subscription(client, config, locations, topic, sub, with_dead_subscriptions).await?;
        found.subscriptions.insert((topic.clone(), sub.clone()), Arc::new(at));
    }
    Ok(found)
}

fn topic_name(
    client: &Client,
    locations: &GcpLocations,
    topic: &str,
) -> Result<String, BrokerError> {
    let name = locations.topics.get(topic).ok_or_else(|| {
        failed(format!("no Pub/Sub topic is known for topic `{topic}`\n  = help: {APPLY}"))
    })?;
    Ok(client.fully_qualified_topic_name(name))
}

async fn subscription(
    client: &Client,
    config: &RuntimeConfig,
    locations: &GcpLocations,
    topic: &str,
    sub: &str,
    with_dead_subscription: bool,
) -> Result<SubscriptionAt, BrokerError> {
    let what = format!("subscription `{sub}` of `{topic}`");
    let (Some(t), Some(settings)) = (config.topic(topic), config.subscription(topic, sub)) else {
        return Err(BrokerError::UnknownSubscription {
            topic: topic.to_string(),
            subscription: sub.to_string(),
        });
    };
    let name = locations.subscription(topic, sub).ok_or_else(|| {
        failed(format!("no Pub/Sub subscription is known for {what}\n  = help: {APPLY}"))
    })?;
    let name = client.fully_qualified_subscription_name(name);
    let handle = client.subscription(&name);
    let (on_topic, read) = match handle.config(None).await.map_err(Failure::from) {
        Ok(read) => read,
        Err(e) if e.not_found() => {
            return Err(failed(format!(
                "the Pub/Sub subscription `{name}` of {what} does not exist\n  = help: {APPLY}"
            )));
        }
        Err(e) => {
            return Err(at_start(format_args!("reading the Pub/Sub subscription `{name}`"), &e));
        }
    };
    if let Some(want) = locations.topics.get(topic).map(|n| client.fully_qualified_topic_name(n))
        && want != on_topic
    {
        return Err(failed(format!(
            "the Pub/Sub subscription `{name}` of {what} is on `{on_topic}`, not on `{want}`\n  = help: {APPLY}"
        )));
    }
    let ordered = t.ordering_attribute.is_some();
    if read.enable_message_ordering != ordered {
        let (is, should) = match ordered {
            true => ("does not deliver in order", "orders by `orderingAttribute`"),
            false => ("delivers in order", "has no `orderingAttribute`"),
        };
        return Err(failed(format!(
            "the Pub/Sub subscription `{name}` {is}, but topic `{topic}` {should}\n  = help: {APPLY}"
        )));
    }
    let Some(policy) = read.dead_letter_policy.filter(|p| !p.dead_letter_topic.is_empty()) else {
        return Err(failed(format!(
            "the Pub/Sub subscription `{name}` of {what} has no dead-letter policy: the runtime moves dead letters to its dead-letter topic\n  = help: {APPLY}"
        )));
    };
    let dead_letter_topic = policy.dead_letter_topic;
    let dead_subscription = match with_dead_subscription {
        true => Some(dead_subscription(client, &dead_letter_topic, &name).await?),
        false => None,
    };
    Ok(SubscriptionAt {
        name,
        subscription: handle,
        settings: settings.clone(),
        topic: topic.to_string(),
        ordered,
        ack_deadline_seconds: read.ack_deadline_seconds.max(10),
        dead_publisher: client.topic(&dead_letter_topic).new_publisher(None),
        dead_letter_topic,
        topic_publisher: client.topic(&on_topic).new_publisher(None),
        dead_subscription,
    })
}

/// The subscription on a dead-letter topic that keeps its dead letters (the plan makes one).
async fn dead_subscription(
    client: &Client,
    dead_letter_topic: &str,
    of: &str,
) -> Result<Subscription, BrokerError> {
    let on = client.topic(dead_letter_topic).subscriptions(None).await.map_err(Failure::from);
    let on = on.map_err(|e| {
        at_start(
            format_args!(
                "listing the subscriptions of the dead-letter topic `{dead_letter_topic}`"
            ),
            &e,
        )
    })?;
    let mut on = on.into_iter();
    match (on.next(), on.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(failed(format!(
            "the dead-letter topic `{dead_letter_topic}` of `{of}` has no subscription, so what is dead-lettered is not kept\n  = help: {APPLY}"
        ))),
        (Some(_), Some(_)) => Err(failed(format!(
            "the dead-letter topic `{dead_letter_topic}` of `{of}` has more than one subscription: which one keeps the dead letters is not clear\n  = help: keep the one busbar's Terraform module makes"
        ))),
    }
}
