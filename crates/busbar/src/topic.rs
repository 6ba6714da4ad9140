//! Topics and their publishers.

use std::fmt;
use std::marker::PhantomData;

use busbar_model::DeliveryGuarantee;
use serde::Serialize;

use crate::error::{PublishError, PublishErrorKind};
use crate::message::Message;

/// A topic whose messages are `M`, declared as a `static`:
///
/// ```
/// # #[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
/// # pub struct SignupEvent { pub user_id: String, #[busbar(attribute)] pub source: String }
/// use busbar::{DeliveryGuarantee, Topic};
///
/// pub static SIGNUPS: Topic<SignupEvent> = Topic::new("signups")
///     .delivery(DeliveryGuarantee::ExactlyOnce)
///     .ordering_attribute("source");
/// ```
///
/// The builder methods are `const fn`s, so a declaration is a plain item that busbar's
/// analyzer reads from the source. A topic that another service declares (in Rust or
/// TypeScript) is [`Topic::declared_elsewhere`].
pub struct Topic<M> {
    name: &'static str,
    delivery: DeliveryGuarantee,
    ordering: Option<&'static str>,
    declared_here: bool,
    message: PhantomData<fn() -> M>,
}

impl<M> Topic<M> {
    /// Declares the topic `name` (kebab-case, dots allowed: `order-placed`), at-least-once and
    /// unordered until the builder methods say otherwise.
    ///
    /// A name that is not kebab-case fails to compile (in a `static`'s initializer).
    pub const fn new(name: &'static str) -> Self {
        check_topic_name(name);
        Topic {
            name,
            delivery: DeliveryGuarantee::AtLeastOnce,
            ordering: None,
            declared_here: true,
            message: PhantomData,
        }
    }

    /// A handle on the topic `name` that another service declares (maybe in TypeScript): this
    /// code publishes to it or subscribes to it, and its settings are the declaration's.
    pub const fn declared_elsewhere(name: &'static str) -> Self {
        let mut topic = Topic::new(name);
        topic.declared_here = false;
        topic
    }

    /// How often a subscription may see a message: [`DeliveryGuarantee::ExactlyOnce`] stores a
    /// message published twice with one id (a publish retried after a lost connection) once.
    pub const fn delivery(mut self, guarantee: DeliveryGuarantee) -> Self {
        self.delivery = guarantee;
        self
    }

    /// The topic's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The delivery guarantee.
    pub const fn delivery_guarantee(&self) -> DeliveryGuarantee {
        self.delivery
    }

    /// The ordering attribute, if the topic is ordered.
    pub const fn ordering(&self) -> Option<&'static str> {
        self.ordering
    }

    /// `false` for a [`Topic::declared_elsewhere`] handle.
    pub const fn is_declared_here(&self) -> bool {
        self.declared_here
    }
}

impl<M: Message> Topic<M> {
    /// Orders the topic by `attribute`, a `#[busbar(attribute)]` field of `M` (its JSON name):
    /// messages with one value of it are delivered one at a time, in publish order.
    ///
    /// A name that is no attribute of `M` fails to compile (in a `static`'s initializer):
    ///
    /// ```compile_fail
    /// # #[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
    /// # pub struct SignupEvent { pub user_id: String, #[busbar(attribute)] pub source: String }
    /// pub static SIGNUPS: busbar::Topic<SignupEvent> =
    ///     busbar::Topic::new("signups").ordering_attribute("user_id");
    /// ```
    pub const fn ordering_attribute(mut self, attribute: &'static str) -> Self {
        if !contains(M::ATTRIBUTES, attribute) {
            panic!(
                "ordering_attribute: the name is not a #[busbar(attribute)] field of the topic's message type (use the field's JSON name)"
            );
        }
        self.ordering = Some(attribute);
        self
    }

    /// Publishes `message` (as JSON); returns its message id once the broker stored it.
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
    /// # pub struct SignupEvent { pub user_id: String, #[busbar(attribute)] pub source: String }
    /// # pub static SIGNUPS: busbar::Topic<SignupEvent> = busbar::Topic::new("signups");
    /// # async fn f() -> Result<(), busbar::PublishError> {
    /// let id = SIGNUPS.publish(&SignupEvent { user_id: "u1".into(), source: "web".into() }).await?;
    /// println!("published {id}");
    /// # Ok(()) }
    /// ```
    ///
    /// It goes to the embedded broker when a `busbar::embedded::App` runs in this process,
    /// else to the sidecar (`DAPR_HTTP_PORT`, retried while the sidecar refuses connections).
    pub async fn publish(&self, message: &M) -> Result<MessageId, PublishError>
    where
        M: Serialize,
    {
        let body = serde_json::to_vec(message).map_err(|e| {
            let text = format!("a message for `{}` cannot be serialized as JSON: {e}", self.name);
            PublishError::new(PublishErrorKind::Serialize, self.name, text).with_source(e)
        })?;
        let published = crate::transport::Published {
            topic: self.name,
            body,
            attributes: message.attributes(),
        };
        crate::transport::publish(published).await
    }

    /// A publisher of this topic to hand to other code (the TypeScript SDK's
    /// `topic.ref<Publisher>()`): it can publish, be cloned, and be sent to tasks. The code
    /// that calls `publisher()` is granted the publish permission.
    ///
    /// ```
    /// # #[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
    /// # pub struct SignupEvent { pub user_id: String, #[busbar(attribute)] pub source: String }
    /// # pub static SIGNUPS: busbar::Topic<SignupEvent> = busbar::Topic::new("signups");
    /// let publisher: busbar::Publisher<SignupEvent> = SIGNUPS.publisher();
    /// let for_a_task = publisher.clone();
    /// # let _ = async move {
    /// tokio::spawn(async move {
    ///     let event = SignupEvent { user_id: "u1".into(), source: "app".into() };
    ///     for_a_task.publish(&event).await
    /// });
    /// # };
    /// assert_eq!(publisher.topic_name(), "signups");
    /// ```
    pub fn publisher(&'static self) -> Publisher<M> {
        Publisher { topic: self }
    }
}

impl<M> fmt::Debug for Topic<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("delivery", &self.delivery)
            .field("ordering", &self.ordering)
            .field("declared_here", &self.declared_here)
            .finish()
    }
}

/// Publishes to one topic: what [`Topic::publisher`] hands out.
pub struct Publisher<M: 'static> {
    topic: &'static Topic<M>,
}

impl<M: Message> Publisher<M> {
    /// Publishes `message`, as [`Topic::publish`] does.
    pub async fn publish(&self, message: &M) -> Result<MessageId, PublishError>
    where
        M: Serialize,
    {
        self.topic.publish(message).await
    }

    /// The topic's name.
    pub fn topic_name(&self) -> &'static str {
        self.topic.name
    }
}

impl<M> Clone for Publisher<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for Publisher<M> {}

impl<M> fmt::Debug for Publisher<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher").field("topic", &self.topic.name).finish()
    }
}

/// A published message's id: what the handler sees as [`crate::DeliveryInfo::id`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(String);

impl MessageId {
    pub(crate) fn new(id: String) -> Self {
        MessageId(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for MessageId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for MessageId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// What `#[busbar::subscribe(topic = ...)]` accepts: a [`Topic`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a busbar topic",
    label = "`topic` must name a `static` of type `busbar::Topic<M>`",
    note = "declare one as `pub static NAME: busbar::Topic<MyMessage> = busbar::Topic::new(\"name\");` (MyMessage derives `busbar::Message`)"
)]
pub trait TopicRef: ErasedTopic + Sync + 'static {
    /// The topic's message type.
    type Message;
}

impl<M: Message> TopicRef for Topic<M> {
    type Message = M;
}

/// A topic without its message type (the registry's view).
#[doc(hidden)]
pub trait ErasedTopic: Sync + 'static {
    fn name(&self) -> &'static str;
    fn delivery(&self) -> DeliveryGuarantee;
    fn ordering(&self) -> Option<&'static str>;
    fn declared_here(&self) -> bool;
    fn attributes(&self) -> &'static [&'static str];
}

impl<M: Message> ErasedTopic for Topic<M> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn delivery(&self) -> DeliveryGuarantee {
        self.delivery
    }
    fn ordering(&self) -> Option<&'static str> {
        self.ordering
    }
    fn declared_here(&self) -> bool {
        self.declared_here
    }
    fn attributes(&self) -> &'static [&'static str] {
        M::ATTRIBUTES
    }
}

/// The registry's view of a subscription's topic (checks that it is a topic).
#[doc(hidden)]
pub const fn topic_ref<T: TopicRef>(topic: &'static T) -> &'static dyn ErasedTopic {
    topic
}

/// `needle` is one of `names` (a const fn: string equality byte by byte).
pub(crate) const fn contains(mut names: &[&str], needle: &str) -> bool {
    while let [first, rest @ ..] = names {
        if str_eq(first, needle) {
            return true;
        }
        names = rest;
    }
    false
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a, b) {
            ([x, ra @ ..], [y, rb @ ..]) => {
                if *x != *y {
                    return false;
                }
                a = ra;
                b = rb;
            }
            ([], []) => return true,
            _ => return false,
        }
    }
}

/// A topic name is kebab-case (`^[a-z]([-a-z0-9.]*[a-z0-9])?$`), at most 63 characters (as
/// `busbar_model::names` says; dotted names are accepted, the analyzer warns about them).
const fn check_topic_name(name: &str) {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > busbar_model::names::MAX_NAME_LEN {
        panic!("Topic::new: a topic name has 1 to 63 characters");
    }
    if let [first, ..] = bytes
        && !first.is_ascii_lowercase()
    {
        panic!("Topic::new: a topic name starts with a lowercase letter");
    }
    if let [.., b'-' | b'.'] = bytes {
        panic!("Topic::new: a topic name ends with a letter or a digit");
    }
    let mut rest = bytes;
    while let [c, tail @ ..] = rest {
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.') {
            panic!("Topic::new: topic names are kebab-case: lowercase letters, digits and `-`");
        }
        rest = tail;
    }
}
