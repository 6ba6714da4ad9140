//! One delivery, from the message to the handler's outcome, the same way in both modes: at
//! most `max_concurrency` calls at once per subscription (a semaphore), a panic caught as a
//! failed attempt, and a log line for each failure.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::subscription::{DeliveryInfo, Subscription};

/// A delivered message's body.
#[doc(hidden)]
pub enum Body {
    /// The CloudEvent's `data`.
    Json(serde_json::Value),
    /// JSON text (in-process, or the CloudEvent's `data_base64`).
    Bytes(Vec<u8>),
}

/// One delivery to a handler.
#[doc(hidden)]
pub struct Delivery {
    pub(crate) body: Body,
    pub(crate) info: DeliveryInfo,
}

/// What a handler's call comes to.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Retried with the subscription's backoff.
    Retry(String),
    /// Dead-lettered now.
    Drop(String),
}

#[doc(hidden)]
pub type HandlerFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// What a handler may return: `()`, [`crate::Result<()>`], or `Result<(), E>` for any
/// displayable `E`.
#[diagnostic::on_unimplemented(
    message = "a subscription handler returns `busbar::Result<()>`, `Result<(), E>` with `E: Display`, or `()`; not `{Self}`",
    label = "this is what the handler returns"
)]
pub trait HandlerResult {
    /// The outcome of the delivery.
    #[doc(hidden)]
    fn into_outcome(self) -> Outcome;
}

impl HandlerResult for () {
    fn into_outcome(self) -> Outcome {
        Outcome::Success
    }
}

impl<E: std::fmt::Display + 'static> HandlerResult for Result<(), E> {
    fn into_outcome(self) -> Outcome {
        match self {
            Ok(()) => Outcome::Success,
            Err(e) => {
                let drop =
                    (&e as &dyn std::any::Any).downcast_ref::<Error>().is_some_and(Error::is_drop);
                if drop { Outcome::Drop(e.to_string()) } else { Outcome::Retry(e.to_string()) }
            }
        }
    }
}

/// A subscription as this process runs it.
pub(crate) struct Served {
    pub(crate) subscription: &'static Subscription,
    gate: Option<Arc<Semaphore>>,
}

/// This process's subscriptions, by (topic, name), each with its concurrency gate.
pub(crate) struct Table {
    pub(crate) by_key: BTreeMap<(&'static str, &'static str), Arc<Served>>,
}

impl Table {
    /// Every registered subscription; an error when two share a topic and a name.
    pub(crate) fn build() -> Result<Table, String> {
        if let Some(problem) = crate::subscription::duplicate() {
            return Err(problem);
        }
        let by_key = crate::subscription::subscriptions()
            .into_iter()
            .map(|s| {
                let gate = s.max_concurrency().map(|n| Arc::new(Semaphore::new(n.max(1) as usize)));
                ((s.topic(), s.name()), Arc::new(Served { subscription: s, gate }))
            })
            .collect();
        Ok(Table { by_key })
    }

    pub(crate) fn get(&self, topic: &str, name: &str) -> Option<Arc<Served>> {
        self.by_key.iter().find(|((t, n), _)| *t == topic && *n == name).map(|(_, s)| s.clone())
    }
}

/// What a panic says.
fn panicked(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string());
    format!("the handler panicked: {what}")
}

impl Served {
    /// Calls the handler (behind the gate), catching a panic as a failed attempt.
    pub(crate) async fn call(&self, delivery: Delivery) -> Outcome {
        let _permit = match &self.gate {
            Some(gate) => gate.acquire().await.ok(),
            None => None,
        };
        let id = delivery.info.id.clone();
        let start = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (self.subscription.dispatch)(delivery)
        }));
        let outcome = match start {
            Err(panic) => Outcome::Retry(panicked(&*panic)),
            Ok(call) => match std::panic::AssertUnwindSafe(call).catch_unwind().await {
                Ok(outcome) => outcome,
                Err(panic) => Outcome::Retry(panicked(&*panic)),
            },
        };
        let s = self.subscription;
        match &outcome {
            Outcome::Success => {}
            Outcome::Retry(why) => crate::env::log(&format!(
                "subscription {}/{} message {id}: the handler failed (retried while retries remain): {why}",
                s.topic(),
                s.name()
            )),
            Outcome::Drop(why) => crate::env::log(&format!(
                "subscription {}/{} message {id}: dropped (dead-lettered): {why}",
                s.topic(),
                s.name()
            )),
        }
        outcome
    }
}
