//! Subscriptions: what `#[busbar::subscribe]` registers, and the glue from a delivery to the
//! handler's typed call.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::dispatch::{Body, Delivery, HandlerFuture, HandlerResult, Outcome};
use crate::message::Message;
use crate::topic::{ErasedTopic, TopicRef, contains};

/// A subscription of this binary, as `#[busbar::subscribe]` registered it. [`subscriptions`]
/// lists them.
pub struct Subscription {
    topic: &'static dyn ErasedTopic,
    name: &'static str,
    handler: &'static str,
    settings: Settings,
    pub(crate) dispatch: fn(Delivery) -> HandlerFuture,
    module: &'static str,
    file: &'static str,
    line: u32,
}

inventory::collect!(Subscription);

/// A filter as the macro writes it: attribute → accepted values.
#[doc(hidden)]
pub type StaticFilter = &'static [(&'static str, &'static [&'static str])];

/// A subscription's settings, filled in by the macro (defaults included): the model's type,
/// as the analyzer reads the same settings into it, with the filter as a static table.
#[doc(hidden)]
pub type Settings = busbar_model::SubscriptionSettings<StaticFilter>;

impl Subscription {
    #[doc(hidden)]
    #[expect(clippy::too_many_arguments, reason = "called by the macro only")]
    pub const fn __new(
        topic: &'static dyn ErasedTopic,
        name: &'static str,
        handler: &'static str,
        settings: Settings,
        dispatch: fn(Delivery) -> HandlerFuture,
        module: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        Subscription { topic, name, handler, settings, dispatch, module, file, line }
    }

    /// The topic's name.
    pub fn topic(&self) -> &'static str {
        self.topic.name()
    }

    #[cfg_attr(
        not(feature = "embedded"),
        expect(dead_code, reason = "only the embedded broker declares the topics it serves")
    )]
    pub(crate) fn erased_topic(&self) -> &'static dyn ErasedTopic {
        self.topic
    }

    /// The subscription's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The handler function's name.
    pub fn handler_name(&self) -> &'static str {
        self.handler
    }

    /// How long a delivery may take before it counts as failed (default 30s).
    pub fn ack_deadline(&self) -> Duration {
        self.settings.ack_deadline()
    }

    /// How long an unacknowledged message is kept (default 7d).
    pub fn message_retention(&self) -> Duration {
        self.settings.message_retention()
    }

    /// The first retry's backoff (default 10s), doubled per failure up to
    /// [`Subscription::max_backoff`].
    pub fn min_backoff(&self) -> Duration {
        Duration::from_millis(self.settings.retry_policy.min_backoff_ms)
    }

    /// The longest backoff (default 10m).
    pub fn max_backoff(&self) -> Duration {
        Duration::from_millis(self.settings.retry_policy.max_backoff_ms)
    }

    /// Deliveries after the first before the message is dead-lettered (default 100).
    pub fn max_retries(&self) -> u32 {
        self.settings.retry_policy.max_retries
    }

    /// At most this many handler calls at once (none: no limit of its own).
    pub fn max_concurrency(&self) -> Option<u32> {
        self.settings.max_concurrency
    }

    /// The filter: attribute → accepted values (as strings, sorted); none delivers every
    /// message.
    pub fn filter(&self) -> Option<busbar_model::Filter> {
        let table = self.settings.filter.filter(|t| !t.is_empty())?;
        let filter = table
            .iter()
            .map(|(k, values)| (k.to_string(), values.iter().map(|v| v.to_string()).collect()))
            .collect::<BTreeMap<String, Vec<String>>>();
        Some(filter)
    }

    /// Every setting, as the model and the runtime contract hold them.
    pub fn settings(&self) -> busbar_model::SubscriptionSettings {
        self.settings.with_filter(self.filter())
    }

    /// Where the handler is: `module::path`, and `file:line` of the attribute.
    pub fn location(&self) -> (&'static str, &'static str, u32) {
        (self.module, self.file, self.line)
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic.name())
            .field("name", &self.name)
            .field("handler", &self.handler)
            .field("settings", &self.settings)
            .field("file", &self.file)
            .field("line", &self.line)
            .finish()
    }
}

/// Every subscription of this binary, by topic and name.
pub fn subscriptions() -> Vec<&'static Subscription> {
    let mut all: Vec<&'static Subscription> = inventory::iter::<Subscription>.into_iter().collect();
    all.sort_by(|a, b| (a.topic(), a.name).cmp(&(b.topic(), b.name)));
    all
}

/// Two subscriptions of one topic with one name: the first pair found.
pub(crate) fn duplicate() -> Option<String> {
    let all = subscriptions();
    all.windows(2).find_map(|pair| match pair {
        [a, b] if a.topic() == b.topic() && a.name == b.name => Some(format!(
            "topic `{}` has two subscriptions named `{}` in this binary: {} ({}:{}) and {} ({}:{})",
            a.topic(),
            a.name,
            a.handler,
            a.file,
            a.line,
            b.handler,
            b.file,
            b.line
        )),
        _ => None,
    })
}

/// What a handler is told besides the message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryInfo {
    /// The message id (what `publish` returned).
    pub id: String,
    /// The topic's name.
    pub topic: String,
    /// The subscription's name.
    pub subscription: String,
    /// 1 for the first delivery (known in-process; the sidecar does not say).
    pub attempt: Option<u32>,
}

/// A handler's first parameter is its topic's message type.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "this handler takes `{P}`, but the topic's messages are `{Self}`",
    label = "the topic carries `{Self}`",
    note = "a subscription handler's first parameter is its topic's message type"
)]
pub trait MessageOfTopic<P> {}

impl<M> MessageOfTopic<M> for M {}

/// Fails to compile (as a const) when a filter names no attribute of `M`.
#[doc(hidden)]
pub const fn check_filter_attribute<M: Message>(attribute: &str) {
    if !contains(M::ATTRIBUTES, attribute) {
        panic!(
            "filter: the name is not a #[busbar(attribute)] field of the handler's message type (use the field's JSON name)"
        );
    }
}

/// The message of a delivery, as the handler's type; a message that is not one is dropped
/// (retrying cannot change it).
fn decode<P: DeserializeOwned>(body: Body) -> Result<P, Outcome> {
    let decoded = match body {
        Body::Json(value) => serde_json::from_value(value),
        Body::Bytes(bytes) => serde_json::from_slice(&bytes),
    };
    decoded.map_err(|e| {
        Outcome::Drop(format!("the message is not a `{}`: {e}", std::any::type_name::<P>()))
    })
}

/// Calls a handler that takes the message.
#[doc(hidden)]
pub fn dispatch<T, P, F, Fut>(_topic: &'static T, delivery: Delivery, handler: F) -> HandlerFuture
where
    T: TopicRef,
    T::Message: MessageOfTopic<P>,
    P: DeserializeOwned + Send + 'static,
    F: FnOnce(P) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerResult,
{
    match decode::<P>(delivery.body) {
        Ok(message) => {
            let call = handler(message);
            Box::pin(async move { call.await.into_outcome() })
        }
        Err(outcome) => Box::pin(std::future::ready(outcome)),
    }
}

/// Calls a handler that takes the message and its [`DeliveryInfo`].
#[doc(hidden)]
pub fn dispatch_with_info<T, P, F, Fut>(
    _topic: &'static T,
    delivery: Delivery,
    handler: F,
) -> HandlerFuture
where
    T: TopicRef,
    T::Message: MessageOfTopic<P>,
    P: DeserializeOwned + Send + 'static,
    F: FnOnce(P, DeliveryInfo) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerResult,
{
    match decode::<P>(delivery.body) {
        Ok(message) => {
            let call = handler(message, delivery.info);
            Box::pin(async move { call.await.into_outcome() })
        }
        Err(outcome) => Box::pin(std::future::ready(outcome)),
    }
}
