//! What the in-process modes share (the embedded broker, feature `embedded`; AWS and GCP,
//! features `aws` and `gcp`): the broker's handler of a subscription, a publish through the
//! broker interface, and why an app cannot start.

use std::collections::BTreeMap;
use std::sync::Arc;

use busbar_runtime::{Broker, BrokerError};

use crate::dispatch::{Body, Delivery, Outcome, Served};
use crate::error::{PublishError, PublishErrorKind};
use crate::subscription::DeliveryInfo;
use crate::topic::MessageId;
use crate::transport::Published;

/// Why an in-process app cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The broker cannot be opened or reached: the data directory is in use or damaged, or a
    /// cloud resource is missing, unreadable or not allowed (the message names it).
    #[error("cannot open the broker: {0}")]
    Broker(#[from] BrokerError),
    /// The binary's subscriptions or topics do not fit together, or do not fit the app's
    /// runtime contract (the message says how).
    #[error("{0}")]
    Config(String),
    /// Another app runs in this process.
    #[error("a busbar app already runs in this process (one at a time: stop it first)")]
    AlreadyRunning,
    /// `BUSBAR_BACKEND` names a backend this binary is built without.
    #[error("BUSBAR_BACKEND={0} needs busbar's `{0}` feature, which this binary is built without")]
    NotBuiltIn(&'static str),
}

/// The broker's handler of one subscription.
pub(crate) fn handler(served: Arc<Served>) -> Arc<dyn busbar_runtime::Handler> {
    Arc::new(move |d: busbar_runtime::Delivery| -> busbar_runtime::HandlerFuture {
        let served = served.clone();
        Box::pin(async move {
            let info = DeliveryInfo {
                id: d.message.id,
                topic: d.topic,
                subscription: d.subscription,
                attempt: Some(d.attempt),
            };
            let delivery = Delivery { body: Body::Bytes(d.message.data), info };
            match served.call(delivery).await {
                Outcome::Success => busbar_runtime::Outcome::Success,
                Outcome::Retry(why) => busbar_runtime::Outcome::Retry(why),
                Outcome::Drop(why) => busbar_runtime::Outcome::Drop(why),
            }
        })
    })
}

/// A publish to `broker` by `service` (`None`: the embedded app, which takes every publish
/// of the binary): refused before the broker sees it when the service has no grant for the
/// topic.
pub(crate) async fn publish(
    broker: &dyn Broker,
    service: Option<&str>,
    message: Published,
) -> Result<MessageId, PublishError> {
    use busbar_runtime::{MAX_ATTRIBUTES, MAX_MESSAGE_BYTES};
    let topic = message.topic;
    if let Some(service) = service
        && !broker.config().may_publish(service, topic)
    {
        let text = format!(
            "service `{service}` has no grant to publish to `{topic}` (the app's runtime-config.json gives it to the services whose code publishes it)"
        );
        return Err(PublishError::new(PublishErrorKind::PermissionDenied, topic, text));
    }
    let attributes: BTreeMap<String, String> =
        message.attributes.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    if broker.config().topic(topic).is_none() {
        // No subscription of this binary: nobody receives it (the limits still apply).
        if message.body.len() > MAX_MESSAGE_BYTES {
            let text = format!(
                "the message is {} bytes; the limit is {MAX_MESSAGE_BYTES} (as on SNS and SQS)",
                message.body.len()
            );
            return Err(PublishError::new(PublishErrorKind::TooLarge, topic, text));
        }
        if attributes.len() > MAX_ATTRIBUTES {
            let text = format!(
                "the message has {} attributes; the limit is {MAX_ATTRIBUTES}",
                attributes.len()
            );
            return Err(PublishError::new(PublishErrorKind::InvalidMessage, topic, text));
        }
        return Ok(MessageId::new(uuid::Uuid::new_v4().to_string()));
    }
    let publish = busbar_runtime::Publish {
        data: message.body,
        content_type: busbar_runtime::JSON.to_string(),
        attributes,
        id: None,
    };
    match broker.publish(topic, publish).await {
        Ok(published) => Ok(MessageId::new(published.id)),
        Err(e) => {
            use busbar_runtime::PublishError as E;
            let kind = match &e {
                E::UnknownTopic(_) => PublishErrorKind::TopicNotFound,
                E::TooLarge { .. } => PublishErrorKind::TooLarge,
                E::TooManyAttributes { .. } => PublishErrorKind::InvalidMessage,
                E::Broker(BrokerError::Full(_)) => PublishErrorKind::StorageFull,
                E::Broker(_) => PublishErrorKind::Other,
            };
            Err(PublishError::new(kind, topic, e.to_string()).with_source(e))
        }
    }
}
