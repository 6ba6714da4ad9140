//! The broker interface: what the sidecar, `busbar dlq` and the SDKs use, whichever backend
//! delivers (the embedded SQLite broker, [`crate::EmbeddedBroker`], now; SNS/SQS and Pub/Sub
//! behind the same trait). A delivery is settled by its handler's [`Outcome`](crate::Outcome):
//! the broker calls the handler (as Dapr pushes to an app) and applies the outcome with the
//! subscription's settings (acknowledge, back off and retry, dead-letter).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use busbar_model::runtime::RuntimeConfig;

use crate::store::StoreError;
use crate::{DeadLetter, Handler, Publish, PublishError, Published, SubscriptionStats};

/// A boxed future, so that the interface is object-safe (`Arc<dyn Broker>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a broker refused a request. Each kind has one meaning on every backend, so the sidecar
/// answers with one status for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// No room for the message (the disk is full or under its reserve; a provider's quota):
    /// nothing was stored. The sidecar answers 507.
    #[error("{0}")]
    Full(String),
    /// The broker cannot take requests now (closed, its store lost, its endpoint away): try
    /// again later. The sidecar answers 503.
    #[error("{0}")]
    Unavailable(String),
    /// There is no such subscription in the configuration served.
    #[error("there is no subscription `{subscription}` of topic `{topic}`")]
    UnknownSubscription { topic: String, subscription: String },
    /// Anything else; the text says what.
    #[error("{0}")]
    Failed(String),
}

impl From<StoreError> for BrokerError {
    fn from(e: StoreError) -> Self {
        let text = e.to_string();
        match e {
            StoreError::Full => BrokerError::Full(text),
            StoreError::Closed | StoreError::Lost(_) => BrokerError::Unavailable(text),
            StoreError::Failed(_) | StoreError::Locked { .. } | StoreError::Damaged(_) => {
                BrokerError::Failed(text)
            }
        }
    }
}

/// What a cloud broker serves, and so finds and checks at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every topic and subscription of the configuration.
    #[default]
    All,
    /// What one service publishes to and consumes (`busbar serve --service`).
    Service(String),
    /// Every subscription, no topic (`busbar dlq`: dead letters only).
    Subscriptions,
}

impl Scope {
    /// The topics (published to) and subscriptions (by topic) it takes in `config`.
    #[expect(clippy::type_complexity, reason = "two plain lists of names")]
    pub fn select(
        &self,
        config: &RuntimeConfig,
    ) -> Result<(Vec<String>, Vec<(String, String)>), BrokerError> {
        let every_subscription = || -> Vec<(String, String)> {
            config
                .topics
                .iter()
                .flat_map(|t| t.subscriptions.iter().map(|s| (t.name.clone(), s.name.clone())))
                .collect()
        };
        Ok(match self {
            Scope::Service(service) => {
                let grants = config.service(service).ok_or_else(|| {
                    BrokerError::Failed(format!("there is no service `{service}` in the app"))
                })?;
                (grants.publish.clone(), config.subscriptions_of(service))
            }
            Scope::All => {
                (config.topics.iter().map(|t| t.name.clone()).collect(), every_subscription())
            }
            Scope::Subscriptions => (Vec::new(), every_subscription()),
        })
    }
}

/// A message broker that delivers with the semantics of the runtime contract.
pub trait Broker: Send + Sync + 'static {
    /// What it serves.
    fn config(&self) -> &RuntimeConfig;

    /// Stores a message for every subscription of `topic` whose filter accepts it; resolves
    /// once the message is durable (a `204` may be answered then).
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        message: Publish,
    ) -> BoxFuture<'a, Result<Published, PublishError>>;

    /// Starts delivering a subscription to `handler` until [`Broker::shutdown`]; the task ends
    /// once the deliveries in flight are settled.
    fn subscribe(
        &self,
        topic: &str,
        subscription: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<tokio::task::JoinHandle<()>, BrokerError>;

    /// A subscription's dead letters.
    fn dead_letters<'a>(
        &'a self,
        topic: &'a str,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BrokerError>>;

    /// Moves dead letters back for delivery (all, or those with these message ids); how many.
    fn release<'a>(
        &'a self,
        topic: &'a str,
        subscription: &'a str,
        ids: Option<Vec<String>>,
    ) -> BoxFuture<'a, Result<usize, BrokerError>>;

    /// Every subscription's backlog, dead letters and counters, in config order.
    fn stats(&self) -> BoxFuture<'_, Result<Vec<SubscriptionStats>, BrokerError>>;

    /// Messages held: not yet acknowledged by every subscription, or dead-lettered.
    fn stored_messages(&self) -> BoxFuture<'_, Result<i64, BrokerError>>;

    /// Deliveries owed to subscriptions the configuration no longer has, by (topic,
    /// subscription): kept, and delivered again if the subscription comes back.
    fn retired(&self) -> BTreeMap<(String, String), u64>;

    /// Why the broker refuses publishes now (`None`: healthy).
    fn broken(&self) -> Option<String>;

    /// Resolves once everything accepted so far (settlements included) is durable.
    fn flush(&self) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// Stops fetching deliveries; the ones in flight finish.
    fn shutdown(&self);

    /// Makes everything accepted durable and releases the broker's resources; requests after
    /// it fail with [`BrokerError::Unavailable`].
    fn close(&self) -> BoxFuture<'_, Result<(), BrokerError>>;
}
