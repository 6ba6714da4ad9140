//! The GCP backend of the busbar runtime: [`GcpBroker`] delivers over Pub/Sub with the
//! semantics of the runtime contract, behind [`busbar_runtime::Broker`].
//!
//! - A publish goes to the topic's Pub/Sub topic with the message's attributes as Pub/Sub
//!   attributes (what the subscriptions' filters match) and, on an ordered topic, the ordering
//!   attribute as the ordering key. The data is busbar's envelope
//!   ([`busbar_runtime::envelope`]), as on AWS.
//! - Each subscription is consumed with synchronous pulls of as many messages as there are free
//!   delivery slots (`maxConcurrency`, `consume`): ack on success (confirmed, on an
//!   exactly-once subscription); on failure the message's ack deadline is set to the retry
//!   policy's backoff, so Pub/Sub offers it again then (the plan gives the subscription no
//!   retry policy of its own, which would add Pub/Sub's delay to it); the ack deadline is
//!   extended while a handler runs; DROP, and a failure past the last retry, publish the
//!   message to the subscription's dead-letter topic with the reason, then ack it; the
//!   subscription's dead-letter policy (`max_delivery_attempts`) is the net under that.
//! - Where each topic and subscription is comes from [`GcpLocations`] (the plan's names, or
//!   the Terraform module's outputs); credentials from the standard Google environment
//!   (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application default credentials, the metadata
//!   server), or the emulator from `PUBSUB_EMULATOR_HOST`. [`GcpBroker::connect`] reads every
//!   topic and subscription it serves before serving (`resolve`).
//!
//! The client is yoshidan's `gcloud-pubsub`: Google's own `google-cloud-pubsub` offers
//! streaming pull only, with the ack deadline managed for the caller, while the runtime sets
//! each message's deadline itself (the backoff) and lists dead letters without consuming
//! them, which take the unary Pull and ModifyAckDeadline calls. Its types stay inside this
//! crate: callers see the runtime's types and [`BrokerError`].

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
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use busbar_model::locations::GcpLocations;
pub use busbar_runtime::Scope;
use busbar_runtime::{
    BoxFuture, Broker, BrokerError, DeadLetter, Handler, MAX_MESSAGE_BYTES, Publish, PublishError,
    Published, RuntimeConfig, StoredMessage, SubscriptionStats, envelope,
};
use gcloud_googleapis::pubsub::v1::PubsubMessage;
use gcloud_pubsub::client::{Client, ClientConfig};
use tokio::sync::{Notify, watch};

use crate::resolve::Found;

/// How long a publish may take before it is answered as unavailable.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// How [`GcpBroker::connect`] reaches Pub/Sub, beyond the standard environment.
#[derive(Clone, Debug, Default)]
pub struct GcpOptions {
    pub scope: Scope,
    /// The project of names that are not full; else the locations', else the credentials'.
    pub project: Option<String>,
    /// The Pub/Sub emulator (`host:port`); else `PUBSUB_EMULATOR_HOST`, else Google Cloud.
    pub emulator_host: Option<String>,
}

/// A subscription's counters.
#[derive(Default)]
pub(crate) struct Counters {
    pub acknowledged: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub latency_us: AtomicU64,
    /// Deliveries received here and not settled yet.
    pub in_flight: AtomicI64,
}

/// The GCP broker. Cloning shares it.
#[derive(Clone)]
pub struct GcpBroker {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: RuntimeConfig,
    pub found: Found,
    pub counters: BTreeMap<(String, String), Counters>,
    /// Becomes true at shutdown: the consumers stop pulling.
    pub stop: watch::Sender<bool>,
    pub closed: AtomicBool,
    /// Why publishes fail now (the endpoint away), until one succeeds.
    pub broken: Mutex<Option<String>>,
    /// Settlements (ack, deadline, dead-letter moves) under way, for [`Broker::flush`].
    pub settling: AtomicUsize,
    pub settled: Notify,
}

impl GcpBroker {
    /// Connects with the standard Google environment (and `options`), then reads every topic
    /// and subscription it will serve; the error names the resource that is missing, set up
    /// otherwise than the app declares, or not readable with these credentials.
    pub async fn connect(
        config: RuntimeConfig,
        locations: &GcpLocations,
        options: GcpOptions,
    ) -> Result<GcpBroker, BrokerError> {
        let client = client(locations, &options).await?;
        let (topics, subscriptions) = options.scope.select(&config)?;
        // A service's own sidecar does not read dead letters (`busbar dlq` does).
        let with_dead_subscriptions = !matches!(options.scope, Scope::Service(_));
        let found = resolve::resolve(
            &client,
            &config,
            locations,
            &topics,
            &subscriptions,
            with_dead_subscriptions,
        )
        .await?;
        let counters =
            found.subscriptions.keys().map(|k| (k.clone(), Counters::default())).collect();
        let (stop, _) = watch::channel(false);
        Ok(GcpBroker {
            inner: Arc::new(Inner {
                config,
                found,
                counters,
                stop,
                closed: AtomicBool::new(false),
                broken: Mutex::new(None),
                settling: AtomicUsize::new(0),
                settled: Notify::new(),
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
        let Some(at) = self.inner.found.topics.get(topic) else {
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
        let ordering = t.ordering_attribute.as_ref().and_then(|a| stored.attributes.get(a));
        let m = pubsub_message(&stored, None, ordering.cloned());
        let size =
            m.data.len() + m.attributes.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if size > MAX_MESSAGE_BYTES {
            return Err(PublishError::TooLarge { size, limit: MAX_MESSAGE_BYTES });
        }
        match publish(&at.publisher, m).await {
            Ok(()) => {
                self.set_broken(None);
                Ok(Published { id, duplicate: false })
            }
            Err(e) => {
                let e = e.during(format_args!("publishing to `{topic}` ({})", at.name));
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
        for (key, at) in &self.inner.found.subscriptions {
            let dead_letters = match &at.dead_subscription {
                Some(dead) => Some(dead::count(dead).await?),
                None => None,
            };
            let c = self.inner.counters.get(key);
            let load =
                |f: fn(&Counters) -> &AtomicU64| c.map_or(0, |c| f(c).load(Ordering::Relaxed));
            out.push(SubscriptionStats {
                topic: key.0.clone(),
                subscription: key.1.clone(),
                // Pub/Sub's API has no count of a subscription's backlog (Cloud Monitoring's
                // `num_undelivered_messages` has it).
                backlog: None,
                dead_letters,
                acknowledged: load(|c| &c.acknowledged),
                retried: load(|c| &c.retried),
                dead_lettered: load(|c| &c.dead_lettered),
                latency_us: load(|c| &c.latency_us),
            });
        }
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

    fn subscription_of(
        &self,
        topic: &str,
        subscription: &str,
    ) -> Result<&Arc<resolve::SubscriptionAt>, BrokerError> {
        self.inner
            .found
            .subscriptions
            .get(&(topic.to_string(), subscription.to_string()))
            .ok_or_else(|| BrokerError::UnknownSubscription {
                topic: topic.to_string(),
                subscription: subscription.to_string(),
            })
    }
}

/// The Pub/Sub client, for the emulator or Google Cloud.
async fn client(locations: &GcpLocations, options: &GcpOptions) -> Result<Client, BrokerError> {
    let emulator =
        options.emulator_host.clone().or_else(|| std::env::var("PUBSUB_EMULATOR_HOST").ok());
    let project = options.project.clone().or_else(|| locations.project.clone());
    let endpoint = match &emulator {
        Some(host) => format!("the emulator at {host} (PUBSUB_EMULATOR_HOST)"),
        None => "pubsub.googleapis.com".to_string(),
    };
    let config = match emulator {
        Some(host) => ClientConfig {
            environment: gcloud_gax::conn::Environment::Emulator(host),
            project_id: Some(project.unwrap_or_else(|| "local-project".to_string())),
            ..ClientConfig::default()
        },
        None => {
            let config = ClientConfig { project_id: project, ..ClientConfig::default() };
            config.with_auth().await.map_err(|e| {
                BrokerError::Failed(format!(
                    "finding Google credentials: {e}\n  = help: give credentials: GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, or a service account of the machine"
                ))
            })?
        }
    };
    Client::new(config).await.map_err(|e| {
        let help = match e {
            gcloud_pubsub::client::Error::ProjectIdNotFound => {
                "say the project: `--project`, or the Terraform module's outputs"
            }
            _ => "Pub/Sub does not answer: check the network and PUBSUB_EMULATOR_HOST",
        };
        BrokerError::Unavailable(format!(
            "connecting to Pub/Sub, {endpoint}: {e}\n  = help: {help}"
        ))
    })
}

/// The Pub/Sub message of `message` (with `dead`, as a dead letter): the envelope as data, the
/// attributes as attributes.
pub(crate) fn pubsub_message(
    message: &StoredMessage,
    dead: Option<envelope::DeadMark>,
    ordering_key: Option<String>,
) -> PubsubMessage {
    PubsubMessage {
        data: envelope::encode(message, dead).into_bytes(),
        attributes: message
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<HashMap<_, _>>(),
        ordering_key: ordering_key.unwrap_or_default(),
        ..PubsubMessage::default()
    }
}

/// Publishes one message now, within [`PUBLISH_TIMEOUT`].
pub(crate) async fn publish(
    publisher: &gcloud_pubsub::publisher::Publisher,
    message: PubsubMessage,
) -> Result<(), errors::Failure> {
    match tokio::time::timeout(PUBLISH_TIMEOUT, publisher.publish_immediately(vec![message], None))
        .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(errors::Failure::Status(status)),
        Err(_) => Err(errors::Failure::TimedOut(PUBLISH_TIMEOUT)),
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Broker for GcpBroker {
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
        self.subscription_of(topic, subscription)?;
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
            let at = self.subscription_of(topic, subscription)?;
            dead::list(at).await
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
            let at = self.subscription_of(topic, subscription)?;
            let t = self.inner.config.topic(topic);
            let ordering = t.and_then(|t| t.ordering_attribute.clone());
            dead::release(at, ordering.as_deref(), ids.as_deref()).await
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
            // What is known here: the deliveries in flight, and the dead letters.
            let stats = self.stats_now().await?;
            let dead: i64 = stats.iter().filter_map(|s| s.dead_letters).sum();
            let in_flight: i64 =
                self.inner.counters.values().map(|c| c.in_flight.load(Ordering::Relaxed)).sum();
            Ok(dead + in_flight)
        })
    }

    fn retired(&self) -> BTreeMap<(String, String), u64> {
        // The subscriptions outlive the configuration: nothing is retired here.
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
