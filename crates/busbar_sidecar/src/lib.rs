//! The sidecar of `busbar dev`: the Dapr pub/sub HTTP API on 127.0.0.1 over the embedded
//! broker, enforcing the grants of the runtime contract (`RuntimeConfig`).
//!
//! - `POST /v1.0/publish/{pubsub}/{topic}`: 404 for an unknown pubsub name or topic, 403 for an
//!   unidentified caller or one whose code may not publish there (naming the missing grant),
//!   400 for malformed JSON or a bad CloudEvent, 413 over 256 KiB, 507 when the disk is full
//!   (or below its reserve); else 204 with `busbar-message-id`, once the message is durable.
//! - `POST /v1.0-alpha1/publish/bulk/{pubsub}/{topic}` (and `/v1.0/publish/bulk/...`): 204
//!   when every entry is stored, else 500 with `failedEntries`.
//! - `GET /v1.0/healthz`, `GET /v1.0/healthz/outbound`, `GET /v1.0/metadata`.
//! - `GET /metrics` (Prometheus text): backlog and dead letters per subscription, settled
//!   deliveries by outcome, and the publish → settle latency.
//! - The admin API for dead letters ([`admin`]).
//! - Who calls ([`identity`]): on a service's own port (`[dev.services.NAME] port`), that
//!   service; on the shared port, the service whose `dapr-api-token` is sent (from busbar.toml,
//!   or generated into the data dir's `tokens.json`), else the one a `dapr-app-id` names.
//! - Delivery: each subscription of a service with a URL (`[dev.services.NAME] url`) is POSTed
//!   as a CloudEvents 1.0 envelope to the route the service's `GET /dapr/subscribe` gives, else
//!   to `{url}/busbar/{topic}/{subscription}`. 2xx with no body or `{"status": "SUCCESS"}`
//!   acknowledges; `"RETRY"` or any other status retries; `"DROP"` and 404 dead-letter. An entry
//!   of `/dapr/subscribe` that the graph has no subscription for is refused at start. A service
//!   that cannot be reached spends no attempt (tried again every second).
//! - Bulk delivery (Dapr's `bulkSubscribe` in a `/dapr/subscribe` entry): batches of a
//!   subscription's deliveries in one request, each settled by its entry's status (`bulk`).
//! - Reload ([`Running::reload`]): a new graph replaces the running one without a restart
//!   (`running.rs` says how requests wait and why nothing accepted is lost).

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

pub mod admin;
mod bulk;
mod cloudevent;
mod deliver;
pub mod identity;
mod metrics;
mod payload;
mod publish;
mod routes;
mod running;
pub mod server;
mod validation;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use busbar_config::DevConfig;
use busbar_model::runtime::RuntimeConfig;
use busbar_runtime::{Broker, BrokerError};
use serde_json::{Value, json};

pub use cloudevent::rfc3339;
pub use identity::Endpoint;
pub use running::{Running, start};
pub use server::Limits;

/// Where the sidecar listens: the shared port, and a port per service that has one (bound by
/// the caller, on 127.0.0.1).
pub struct Listeners {
    pub shared: tokio::net::TcpListener,
    pub services: BTreeMap<String, tokio::net::TcpListener>,
}

/// The service whose own port a request came in on (`None` on the shared port).
#[derive(Clone, Debug)]
struct PortOf(Option<String>);

/// How to run the sidecar.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the broker keeps its data.
    pub data_dir: PathBuf,
    pub dev: DevConfig,
    /// Free space (bytes) publishes must leave on the data dir's disk: below it, 507.
    pub disk_reserve: u64,
    /// Connections, header and request times.
    pub limits: Limits,
    /// `busbar serve`: every request is this service's (as Dapr's sidecar is its app's), and
    /// only its subscriptions are delivered. `None`: `busbar dev`, which serves every service.
    pub service: Option<FixedService>,
    /// A broker the caller opened (a cloud backend); `None`: the embedded broker on
    /// `data_dir`. A given broker is not reopened: a reload is refused.
    pub broker: Option<GivenBroker>,
}

/// The one service a `busbar serve` sidecar serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedService {
    pub name: String,
    /// When set, every request must carry it as `dapr-api-token` (Dapr's `DAPR_API_TOKEN`).
    pub token: Option<String>,
}

/// A broker opened by the caller.
#[derive(Clone)]
pub struct GivenBroker(pub Arc<dyn Broker>);

impl std::fmt::Debug for GivenBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GivenBroker")
    }
}

/// Why the sidecar cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the broker: {0}")]
    Broker(#[from] BrokerError),
    #[error("{0}")]
    Subscription(String),
    #[error("{0}")]
    Tokens(String),
}

/// The file where a running sidecar says which port it serves its data directory on (for
/// `busbar dlq`): `{"pid": N, "port": P}`.
pub fn sidecar_file(data_dir: &Path) -> PathBuf {
    data_dir.join("sidecar.json")
}

struct AppState {
    broker: Arc<dyn Broker>,
    /// The runtime contract served: topics, subscriptions, and each service's grants.
    config: Arc<RuntimeConfig>,
    pubsub: String,
    callers: identity::Callers,
    admin_token: String,
    data_dir: PathBuf,
    /// Each topic's message schema, compiled, for validation at publish.
    validators: validation::Validators,
}

/// The sidecar's routes, behind the guard of [`server`], each request with the state now
/// served ([`running`]).
fn router(live: Arc<running::Live>, limits: &Limits) -> Router {
    Router::new()
        .route("/v1.0/publish/{pubsub}/{topic}", post(publish::publish))
        .route("/v1.0/publish/bulk/{pubsub}/{topic}", post(publish::publish_bulk))
        .route("/v1.0-alpha1/publish/bulk/{pubsub}/{topic}", post(publish::publish_bulk))
        .route("/v1.0/healthz", get(healthz))
        .route("/v1.0/healthz/outbound", get(healthz))
        .route("/v1.0/metadata", get(metadata))
        .route("/metrics", get(metrics::metrics))
        .route("/v1.0-busbar/dlq", get(admin::list))
        .route("/v1.0-busbar/dlq/release", post(admin::release_handler))
        .route("/v1.0-busbar/info", get(admin::info))
        .layer(DefaultBodyLimit::max(4 * busbar_runtime::MAX_MESSAGE_BYTES))
        .layer(axum::middleware::from_fn_with_state(live, current))
        .layer(axum::middleware::from_fn_with_state(limits.request, server::guard))
}

/// Gives the request the state now served, holding the reload gate open while it runs.
async fn current(
    State(live): State<Arc<running::Live>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let _open = live.gate.read().await;
    request.extensions_mut().insert(live.current());
    next.run(request).await
}

pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let message: String = message.into();
    (status, axum::Json(json!({ "errorCode": code, "message": message }))).into_response()
}

async fn healthz(Extension(state): Extension<Arc<AppState>>) -> Response {
    match state.broker.broken() {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(why) => error(StatusCode::SERVICE_UNAVAILABLE, "ERR_HEALTH_NOT_READY", why),
    }
}

async fn metadata(Extension(state): Extension<Arc<AppState>>) -> axum::Json<Value> {
    let pubsub = state.pubsub.as_str();
    let subscriptions: Vec<Value> = state
        .config
        .topics
        .iter()
        .flat_map(|t| t.subscriptions.iter().map(move |s| json!({ "pubsubname": pubsub, "topic": t.name, "name": s.name, "service": s.service })))
        .collect();
    axum::Json(json!({
        "id": "busbar",
        "runtimeVersion": env!("CARGO_PKG_VERSION"),
        "components": [{ "name": state.pubsub, "type": "pubsub.busbar", "version": "v1" }],
        "subscriptions": subscriptions,
    }))
}
