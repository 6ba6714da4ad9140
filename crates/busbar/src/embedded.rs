//! In-process delivery on busbar's embedded durable broker (feature `embedded`), for tests and
//! single-binary apps.
//!
//! [`App::start`] opens the broker on a data directory with this binary's topics and
//! subscriptions (their retry policies, ack deadlines, retention, filters, ordering and
//! exactly-once settings), delivers each subscription to its handler, and takes every publish
//! of the process until it stops. The broker is the one behind `busbar dev`: messages are on
//! disk before `publish` returns and survive a crash.
//!
// `standalone_crate`: merged doctests share one binary, and so one registry of subscriptions.
//! ```standalone_crate
//! # #[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
//! # pub struct SignupEvent { pub user_id: String, #[busbar(attribute)] pub source: String }
//! pub static SIGNUPS: busbar::Topic<SignupEvent> = busbar::Topic::new("signups");
//!
//! #[busbar::subscribe(topic = SIGNUPS, name = "welcome")]
//! async fn welcome(event: SignupEvent) -> busbar::Result<()> {
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let app = busbar::embedded::App::start(dir.path()).await?;
//! SIGNUPS.publish(&SignupEvent { user_id: "u1".into(), source: "web".into() }).await?;
//! app.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! One app runs in a process at a time (publishes have one place to go). It serves every
//! subscription registered in the binary, so a test binary's subscriptions all run in each
//! of its apps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use busbar_model::names::dead_letter;
pub use busbar_runtime::{BrokerError, Clock, DeadLetter, EmbeddedBroker, SubscriptionStats};
use busbar_runtime::{RuntimeConfig, RuntimeSubscriptionConfig, RuntimeTopic};

use crate::dispatch::Table;
pub use crate::in_process::StartError;
use crate::message::Message;
use crate::topic::{ErasedTopic, Topic};

/// How to start an [`App`].
pub struct Builder {
    dir: PathBuf,
    clock: Clock,
    topics: Vec<&'static dyn ErasedTopic>,
    service: Option<String>,
}

impl Builder {
    /// The broker's clock: [`Clock::tokio`] in tests on tokio's paused clock (backoff then
    /// takes no real time). The system clock by default.
    pub fn clock(mut self, clock: Clock) -> Builder {
        self.clock = clock;
        self
    }

    /// A topic that no subscription of this binary names (publishes to it are stored; no
    /// subscription of this binary receives them). A topic without subscriptions need not be
    /// added: a publish to it reaches nobody, as on a broker.
    pub fn topic<M: Message>(mut self, topic: &'static Topic<M>) -> Builder {
        self.topics.push(topic);
        self
    }

    /// Names the service in log lines.
    pub fn service(mut self, name: impl Into<String>) -> Builder {
        self.service = Some(name.into());
        self
    }

    /// Opens the broker and starts delivering.
    pub async fn start(self) -> Result<App, StartError> {
        if let Some(name) = &self.service {
            crate::env::set_service(name);
        }
        let table = Table::build().map_err(StartError::Config)?;
        let app = self.service.as_deref().unwrap_or("embedded");
        let config = config(app, &table, &self.topics).map_err(StartError::Config)?;
        let broker =
            EmbeddedBroker::open(&self.dir, config, self.clock).map_err(BrokerError::from)?;
        if !crate::transport::install_broker(Arc::new(broker.clone()), None) {
            let _ = broker.close().await;
            return Err(StartError::AlreadyRunning);
        }
        let mut tasks = Vec::new();
        for ((topic, name), served) in &table.by_key {
            let handler = crate::in_process::handler(served.clone());
            if let Some(task) = broker.subscribe(topic, name, handler) {
                tasks.push(task);
            }
        }
        Ok(App { broker, tasks, running: true })
    }
}

/// This binary's subscriptions, delivered in-process by the embedded broker.
pub struct App {
    broker: EmbeddedBroker,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    running: bool,
}

impl App {
    /// Starts the app on the data directory `dir` (created if needed), with the system clock.
    pub async fn start(dir: impl AsRef<Path>) -> Result<App, StartError> {
        App::builder(dir).start().await
    }

    /// An app to configure before it starts.
    pub fn builder(dir: impl AsRef<Path>) -> Builder {
        Builder {
            dir: dir.as_ref().to_path_buf(),
            clock: Clock::System,
            topics: Vec::new(),
            service: None,
        }
    }

    /// The broker: its stats, dead letters, release.
    pub fn broker(&self) -> &EmbeddedBroker {
        &self.broker
    }

    /// The dead letters of `topic`'s subscription `subscription`.
    pub async fn dead_letters<M>(
        &self,
        topic: &Topic<M>,
        subscription: &str,
    ) -> Result<Vec<DeadLetter>, BrokerError> {
        Ok(self.broker.dead_letters(topic.name(), subscription).await?)
    }

    /// Stops delivering, waits for the handler calls in flight, and closes the broker (its
    /// data directory can be opened again). Publishes go to the sidecar again.
    pub async fn shutdown(mut self) -> Result<(), BrokerError> {
        self.running = false;
        self.broker.shutdown();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        let closed = self.broker.close().await;
        crate::transport::uninstall_broker();
        Ok(closed?)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if self.running {
            self.broker.shutdown();
            crate::transport::uninstall_broker();
        }
    }
}

/// The broker's topics and subscriptions: each topic as declared (a declaration in this
/// binary wins over a `declared_elsewhere` handle), each subscription with its settings.
fn config(
    app: &str,
    table: &Table,
    extra: &[&'static dyn ErasedTopic],
) -> Result<RuntimeConfig, String> {
    let mut topics: BTreeMap<&'static str, RuntimeTopic> = BTreeMap::new();
    let mut declared: BTreeMap<&'static str, &'static dyn ErasedTopic> = BTreeMap::new();
    let all =
        table.by_key.values().map(|s| s.subscription.erased_topic()).chain(extra.iter().copied());
    for topic in all {
        let entry = topics
            .entry(topic.name())
            .or_insert_with(|| RuntimeTopic::new(topic.name(), Vec::new()));
        if !topic.declared_here() {
            continue;
        }
        if let Some(first) = declared.get(topic.name())
            && (first.delivery() != topic.delivery() || first.ordering() != topic.ordering())
        {
            return Err(format!(
                "topic `{}` is declared twice in this binary with different settings ({} {:?}, {} {:?})",
                topic.name(),
                first.delivery().as_str(),
                first.ordering(),
                topic.delivery().as_str(),
                topic.ordering()
            ));
        }
        declared.insert(topic.name(), topic);
        entry.ordering_attribute = topic.ordering().map(str::to_string);
        entry.delivery_guarantee = topic.delivery();
    }
    for served in table.by_key.values() {
        let s = served.subscription;
        if let Some(topic) = topics.get_mut(s.topic()) {
            topic.subscriptions.push(RuntimeSubscriptionConfig {
                dead_letter_topic: dead_letter(s.topic(), s.name()),
                ..RuntimeSubscriptionConfig::new(s.name(), s.settings())
            });
        }
    }
    Ok(RuntimeConfig::new(app, topics.into_values().collect()))
}
