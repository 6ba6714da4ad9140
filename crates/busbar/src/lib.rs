//! busbar's Rust SDK: declare topics and subscriptions as module-level items, publish typed
//! messages, and run the handlers on the sidecar of `busbar dev` or in-process on busbar's
//! embedded broker.
//!
//! ```
//! use busbar::{DeliveryGuarantee, Message, Topic};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Message)]
//! pub struct SignupEvent {
//!     pub user_id: String,
//!     #[busbar(attribute)]
//!     pub source: String,
//! }
//!
//! pub static SIGNUPS: Topic<SignupEvent> = Topic::new("signups")
//!     .delivery(DeliveryGuarantee::AtLeastOnce)
//!     .ordering_attribute("source");
//!
//! #[busbar::subscribe(topic = SIGNUPS, name = "send-welcome-email", max_retries = 5,
//!     min_backoff = "10s", max_backoff = "10m", filter(source = ["web", "app"]))]
//! async fn send_welcome_email(event: SignupEvent) -> busbar::Result<()> {
//!     if event.user_id.is_empty() {
//!         return Err(busbar::Error::drop("a signup without a user"));
//!     }
//!     Ok(())
//! }
//!
//! async fn sign_up(user_id: String) -> Result<busbar::MessageId, busbar::PublishError> {
//!     SIGNUPS.publish(&SignupEvent { user_id, source: "web".into() }).await
//! }
//! ```
//!
//! busbar's analyzer reads these items from the source (the permission graph: who publishes
//! what, who subscribes), so they must be written as above: a `static` of type
//! [`Topic`] built by [`Topic::new`] or [`Topic::declared_elsewhere`] and its const builder
//! methods, [`subscribe`] on a module-level `async fn`, and publishes as
//! `TOPIC.publish(...)` or `TOPIC.publisher()` ([`Publisher`]).
//!
//! # Running
//!
//! - **On the sidecar of `busbar dev`**: [`serve`] (or [`run`] from a plain `main`) serves this
//!   binary's subscriptions on `127.0.0.1:$APP_PORT` over the Dapr pub/sub HTTP API
//!   (`GET /dapr/subscribe`, then a CloudEvent per delivery on `/busbar/{topic}/{subscription}`),
//!   and publishes go to the sidecar on `$DAPR_HTTP_PORT` with `$DAPR_API_TOKEN`. [`Server`]
//!   adds the app's own axum routes. The broker behind the sidecar applies the retry policy,
//!   the ack deadline, the retention, the filter and the ordering; this process limits each
//!   subscription to its `max_concurrency` handler calls at once.
//! - **In-process** (feature `embedded`): `busbar::embedded::App::start(dir)` opens busbar's
//!   durable embedded broker with this binary's topics and subscriptions and delivers to the
//!   handlers directly; every publish of the process goes there.
//!
//! A handler that returns an error is retried with the subscription's backoff; one that
//! returns [`Error::drop`] is dead-lettered at once; one that panics counts as a failed
//! attempt (the panic is caught); after `max_retries` failed retries the message is
//! dead-lettered.
//!
//! # Environment (sidecar mode)
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `APP_PORT` | where [`serve`] serves the subscriptions (and the app's routes) | required to serve |
//! | `DAPR_HTTP_PORT` | the sidecar's port on 127.0.0.1 | `3500` |
//! | `DAPR_API_TOKEN` | sent as `dapr-api-token`: who is publishing | none |
//! | `BUSBAR_SERVICE` | the service's name, in log lines | `app` |
//! | `BUSBAR_PUBSUB` | the pub/sub component name | `pubsub` |
//! | `BUSBAR_PUBLISH_RETRY_MS` | how long a refused connection to the sidecar is retried | `10000` |

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::string_slice
    )
)]

// The macros' code names `::busbar`, which must resolve inside this crate too.
extern crate self as busbar;

#[cfg(any(feature = "aws", feature = "gcp"))]
pub mod cloud;
mod dispatch;
#[cfg(feature = "embedded")]
pub mod embedded;
mod env;
mod error;
#[cfg(feature = "in-process")]
mod in_process;
mod message;
mod server;
mod sidecar;
mod subscription;
mod topic;
mod transport;

/// Derives [`trait@Message`] for a serde message type: the fields marked
/// `#[busbar(attribute)]` are its attributes, by their JSON names.
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
/// pub struct SignupEvent {
///     pub user_id: String,
///     #[busbar(attribute)]
///     pub source: String,
/// }
/// ```
///
/// An attribute field's type must be a string, number or boolean (or an `Option` of one):
///
/// ```compile_fail
/// #[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
/// pub struct Tagged {
///     #[busbar(attribute)]
///     pub tags: Vec<String>, // error: `Vec<String>` cannot be a message attribute
/// }
/// ```
pub use busbar_macros::Message;

/// Registers an `async fn` as the handler of a subscription.
///
/// ```
/// # #[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
/// # pub struct SignupEvent { pub user_id: String, #[busbar(attribute)] pub source: String }
/// # pub static SIGNUPS: busbar::Topic<SignupEvent> = busbar::Topic::new("signups");
/// #[busbar::subscribe(topic = SIGNUPS, name = "send-welcome-email", max_retries = 5,
///     min_backoff = "10s", max_backoff = "10m", ack_deadline = "30s",
///     message_retention = "7d", max_concurrency = 20, filter(source = ["web", "app"]))]
/// async fn send_welcome_email(event: SignupEvent) -> busbar::Result<()> {
///     Ok(())
/// }
///
/// // A handler may also take the delivery's info, and return any `Result<(), E: Display>`.
/// #[busbar::subscribe(topic = SIGNUPS, name = "audit")]
/// async fn audit(event: SignupEvent, info: busbar::DeliveryInfo) -> Result<(), String> {
///     println!("{} signed up (message {})", event.user_id, info.id);
///     Ok(())
/// }
/// ```
///
/// The settings are the TypeScript dialect's, in snake_case:
///
/// | setting | value | default |
/// |---|---|---|
/// | `topic` | the path of a `static` [`Topic`] | required |
/// | `name` | the subscription's name, kebab-case | required |
/// | `max_retries` | retries before the message is dead-lettered | 100 |
/// | `min_backoff`, `max_backoff` | the retry backoff, doubled per failure: a duration (`"10s"`) | 10s, 10m |
/// | `ack_deadline` | how long a delivery may take (at least 1s) | 30s |
/// | `message_retention` | how long an unacknowledged message is kept (at least 1m) | 7d |
/// | `max_concurrency` | at most this many handler calls at once | none |
/// | `filter(attr = value, attr = [values])` | deliver only messages whose attributes match | none |
///
/// Durations are Encore's: whole numbers with a unit (ns, us, ms, s, m, h, d, w, y), summed
/// (`"1h30m"`). A filter value is a string, integer or boolean literal, or a list of them; it
/// names `#[busbar(attribute)]` fields of the message type.
///
/// The handler is a free `async fn` whose first parameter is the topic's message type (and
/// whose optional second is [`DeliveryInfo`]); it returns [`Result<()>`], `Result<(), E>`
/// for any `E: Display`, or `()`. Anything else fails to compile:
///
/// ```compile_fail
/// # #[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
/// # pub struct SignupEvent { pub user_id: String }
/// # pub static SIGNUPS: busbar::Topic<SignupEvent> = busbar::Topic::new("signups");
/// #[busbar::subscribe(topic = SIGNUPS, name = "welcome", min_backoff = "1.5s")]
/// async fn welcome(event: SignupEvent) -> busbar::Result<()> { Ok(()) }
/// ```
pub use busbar_macros::subscribe;
pub use busbar_model::DeliveryGuarantee;
pub use error::{Error, PublishError, PublishErrorKind, Result, ValidationFailure};
#[cfg(feature = "in-process")]
pub use in_process::StartError;
pub use message::{AttributeValue, Message};
pub use server::{ServeError, Server, run, serve};
pub use sidecar::{EnvError, Sidecar};
pub use subscription::{DeliveryInfo, Subscription, subscriptions};
pub use topic::{MessageId, Publisher, Topic, TopicRef};

/// The axum version [`Server::routes`] takes routers of.
pub use axum;

/// What the macros' generated code uses. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::dispatch::{Delivery, HandlerFuture, HandlerResult, Outcome};
    pub use crate::subscription::{
        MessageOfTopic, Settings, check_filter_attribute, dispatch, dispatch_with_info,
    };
    pub use crate::topic::{ErasedTopic, topic_ref};
    pub use busbar_model::RetryPolicy;
    pub use inventory;
}
