//! The app model: services, topics, subscriptions and publishers, as plain data with public
//! fields, and its public JSON contract (version 1, `docs/json-contract.md`).
//!
//! Frontends (TypeScript now, Rust later) fill it; the graph, plans, audit and runtime read it.
//! Every fact carries the [`Span`] it came from. Lists are kept sorted (see [`AppModel::sort`]),
//! so serialising a model is deterministic.

mod builder;
pub mod duration;
mod json;
pub mod locations;
pub mod names;
pub mod runtime;
pub mod schema;

use std::collections::BTreeMap;

use busbar_diagnostics::Span;
use serde::Serialize;

pub use builder::ModelBuilder;
pub use json::{JsonOptions, MODEL_VERSION, to_json, write_json};

/// Defaults for what the code leaves out.
pub mod defaults {
    pub const ACK_DEADLINE_MS: u64 = 30_000;
    pub const MESSAGE_RETENTION_MS: u64 = 7 * 24 * 3600 * 1000;
    pub const MIN_BACKOFF_MS: u64 = 10_000;
    pub const MAX_BACKOFF_MS: u64 = 600_000;
    pub const MAX_RETRIES: u32 = 100;
    /// Deliveries of one subscription in flight at once when `maxConcurrency` is not set.
    pub const MAX_CONCURRENCY: u32 = 64;
}

/// The ranges busbar accepts in code, whatever the target (provider limits are checked when
/// planning).
pub mod limits {
    pub const MIN_ACK_DEADLINE_MS: u64 = 1_000;
    pub const MIN_MESSAGE_RETENTION_MS: u64 = 60_000;
    pub const MIN_BACKOFF_MS: u64 = 1_000;
    pub const MIN_MAX_CONCURRENCY: u32 = 1;
}

/// A whole application.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppModel {
    pub services: Vec<Service>,
    pub topics: Vec<Topic>,
}

/// How a service was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum ServiceOrigin {
    /// A directory with an `encore.service.ts` declaring `new Service("name")`.
    #[serde(rename = "encore.service.ts")]
    EncoreServiceFile,
    /// A directory outside every service holding a subscription or an API endpoint.
    #[serde(rename = "implicit")]
    Implicit,
    /// Mapped in `busbar.toml`.
    #[serde(rename = "busbar.toml")]
    Config,
    /// A Cargo package with a binary target that depends on busbar's Rust SDK.
    #[serde(rename = "Cargo.toml")]
    CargoPackage,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub name: String,
    /// The service's root directory relative to the app root (`.` for the root itself).
    pub root: String,
    pub origin: ServiceOrigin,
    /// The declaration (`new Service(...)` or the busbar.toml entry), when there is one.
    pub span: Option<Span>,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
pub enum DeliveryGuarantee {
    #[default]
    #[serde(rename = "at-least-once")]
    AtLeastOnce,
    #[serde(rename = "exactly-once")]
    ExactlyOnce,
}

impl DeliveryGuarantee {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "at-least-once" => Some(DeliveryGuarantee::AtLeastOnce),
            "exactly-once" => Some(DeliveryGuarantee::ExactlyOnce),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryGuarantee::AtLeastOnce => "at-least-once",
            DeliveryGuarantee::ExactlyOnce => "exactly-once",
        }
    }
}

/// The value type of an `Attribute<...>` field, as far as the declaration says.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AttributeType {
    String,
    Number,
    Boolean,
    /// Anything else (a union of literals, a type reference): sent as a string.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Topic {
    pub name: String,
    /// The declaring service, or `None` for a topic in a shared folder.
    pub service: Option<String>,
    /// The message type as written (`SignupEvent`, `events.Signup`).
    pub message_type: String,
    /// Names of the `Attribute<...>` fields of the message type, sorted.
    pub attributes: Vec<String>,
    /// The value type of each attribute.
    pub attribute_types: BTreeMap<String, AttributeType>,
    /// The message type as a schema (serialised as its JSON Schema).
    pub schema: schema::MessageSchema,
    pub delivery_guarantee: DeliveryGuarantee,
    pub ordering_attribute: Option<String>,
    /// The whole declaration.
    pub span: Span,
    /// The name literal.
    pub name_span: Span,
    /// The doc comment above the declaration, without comment markers.
    pub doc: Option<String>,
    /// Sorted by service.
    pub publishers: Vec<Publisher>,
    /// Sorted by name.
    pub subscriptions: Vec<Subscription>,
}

impl Topic {
    /// Ordered delivery: an ordering attribute is set.
    pub fn is_ordered(&self) -> bool {
        self.ordering_attribute.is_some()
    }
}

/// How a service gets to publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishVia {
    /// Only direct `topic.publish(...)` calls.
    Publish,
    /// At least one `topic.ref<Publisher>()`.
    Ref,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessKind {
    Publish,
    Ref,
}

/// One place in the code that needs publish permission.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    pub kind: AccessKind,
    /// The `publish(...)` call or the `ref<Publisher>()` call.
    pub span: Span,
    /// When the access is in a file outside every service: the imports that connect a file of
    /// the service to it, starting in the service.
    pub imported_at: Vec<Span>,
}

/// A service that publishes to a topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Publisher {
    pub service: String,
    pub via: PublishVia,
    /// Every span involved, sorted: the accesses and the imports that lead to them.
    pub spans: Vec<Span>,
    /// Each access in detail, sorted by span.
    pub accesses: Vec<Access>,
}

impl Publisher {
    /// Builds a publisher from its accesses, deriving `via` and `spans`.
    pub fn from_accesses(service: String, mut accesses: Vec<Access>) -> Self {
        accesses.sort();
        accesses.dedup();
        let via = if accesses.iter().any(|a| a.kind == AccessKind::Ref) {
            PublishVia::Ref
        } else {
            PublishVia::Publish
        };
        let mut spans: Vec<Span> = accesses
            .iter()
            .flat_map(|a| std::iter::once(a.span.clone()).chain(a.imported_at.iter().cloned()))
            .collect();
        spans.sort();
        spans.dedup();
        Publisher { service, via, spans, accesses }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    pub min_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub max_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_backoff_ms: defaults::MIN_BACKOFF_MS,
            max_backoff_ms: defaults::MAX_BACKOFF_MS,
            max_retries: defaults::MAX_RETRIES,
        }
    }
}

impl RetryPolicy {
    /// The wait before the next delivery after `failed` failed ones (at least 1): the minimum
    /// backoff doubled per failure after the first, capped at the maximum.
    pub fn backoff(&self, failed: u32) -> std::time::Duration {
        let factor = 1u64.checked_shl(failed.saturating_sub(1)).unwrap_or(u64::MAX);
        let ms = self.min_backoff_ms.saturating_mul(factor).min(self.max_backoff_ms);
        std::time::Duration::from_millis(ms)
    }
}

/// An attribute filter: attribute name → accepted values (as strings, sorted). A message
/// matches when every listed attribute equals one of its values.
pub type Filter = BTreeMap<String, Vec<String>>;

/// Whether a filter accepts a message with these attributes: every listed attribute has one of
/// its values.
pub fn filter_accepts(filter: &Filter, attributes: &BTreeMap<String, String>) -> bool {
    filter.iter().all(|(k, values)| attributes.get(k).is_some_and(|v| values.contains(v)))
}

/// How a subscription is delivered: the one settings type of a subscription, from the
/// frontends' facts (where `F` is the filter as written, not yet checked) through the model,
/// `runtime-config.json` and the runtime, to the Rust SDK (where `F` is a static table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSettings<F = Filter> {
    pub ack_deadline_ms: u64,
    pub message_retention_ms: u64,
    pub retry_policy: RetryPolicy,
    pub max_concurrency: Option<u32>,
    pub filter: Option<F>,
}

impl<F> Default for SubscriptionSettings<F> {
    /// What a subscription that sets nothing gets.
    fn default() -> Self {
        SubscriptionSettings {
            ack_deadline_ms: defaults::ACK_DEADLINE_MS,
            message_retention_ms: defaults::MESSAGE_RETENTION_MS,
            retry_policy: RetryPolicy::default(),
            max_concurrency: None,
            filter: None,
        }
    }
}

impl<F> SubscriptionSettings<F> {
    pub fn ack_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ack_deadline_ms)
    }

    pub fn message_retention(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.message_retention_ms)
    }

    /// Deliveries in flight at once, at most: `maxConcurrency`, or
    /// [`defaults::MAX_CONCURRENCY`] when it is not set.
    pub fn concurrency_limit(&self) -> usize {
        self.max_concurrency.unwrap_or(defaults::MAX_CONCURRENCY).max(1) as usize
    }

    /// The same settings with another filter.
    pub fn with_filter<G>(self, filter: Option<G>) -> SubscriptionSettings<G> {
        SubscriptionSettings {
            ack_deadline_ms: self.ack_deadline_ms,
            message_retention_ms: self.message_retention_ms,
            retry_policy: self.retry_policy,
            max_concurrency: self.max_concurrency,
            filter,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub name: String,
    /// The owning service.
    pub service: String,
    /// The handler's name when it is a named function, else `None`.
    pub handler: Option<String>,
    /// Its delivery settings (flattened in the JSON contract).
    #[serde(flatten)]
    pub settings: SubscriptionSettings,
    /// The whole declaration.
    pub span: Span,
    /// The name literal.
    pub name_span: Span,
    /// Which settings the code wrote explicitly (config key names, sorted), so later stages can
    /// tell a user's value from a default (CLOUD.md: clamp with a warning only for the former).
    pub explicit: Vec<String>,
    /// The `key: value` span of each explicit setting, for diagnostics about one setting.
    /// Not part of the JSON contract.
    #[serde(skip)]
    pub setting_spans: BTreeMap<String, Span>,
}

impl AppModel {
    /// Puts every list in the contract's order.
    pub fn sort(&mut self) {
        self.services.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.root.cmp(&b.root)));
        self.topics.sort_by(|a, b| a.name.cmp(&b.name));
        for topic in &mut self.topics {
            topic.attributes.sort();
            topic.publishers.sort_by(|a, b| a.service.cmp(&b.service));
            topic.subscriptions.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }
}
