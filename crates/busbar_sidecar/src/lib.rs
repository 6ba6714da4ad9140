//! The sidecar of `busbar dev`: the Dapr pub/sub HTTP API on 127.0.0.1 over the embedded
//! broker, enforcing the permission graph.
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
//!   of `/dapr/subscribe` that the graph has no subscription for is refused at start.

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
mod cloudevent;
mod deliver;
pub mod identity;
mod metrics;
mod payload;
mod publish;
mod routes;
pub mod server;
mod validation;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use busbar_config::DevConfig;
use busbar_graph::PermissionGraph;
use busbar_model::AppModel;
use busbar_runtime::{Broker, BrokerConfig, Clock, StoreError};
use serde_json::{Value, json};

pub use cloudevent::rfc3339;
pub use identity::Endpoint;
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
}

/// Why the sidecar cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the data directory: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Subscription(String),
    #[error("{0}")]
    Tokens(String),
}

/// A running sidecar.
pub struct Running {
    pub addr: SocketAddr,
    pub broker: Broker,
    /// What the operator should know (a service without a URL builds a backlog).
    pub warnings: Vec<String>,
    /// Every failed delivery (subscription, message id, attempt, error), for the log.
    pub failures: Option<tokio::sync::mpsc::UnboundedReceiver<busbar_runtime::Failure>>,
    /// Lines for the log while it runs (a connection limit reached).
    pub log: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
    /// Each service's token and own port (the port it was bound on), in model order.
    pub endpoints: Vec<Endpoint>,
    /// The admin API's token (also in the data directory's `admin-token`).
    pub admin_token: String,
    data_dir: PathBuf,
    stop: tokio::sync::watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    dispatchers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting requests, lets the deliveries in flight finish, commits, and releases
    /// the data directory.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        for server in self.servers {
            let _ = server.await;
        }
        self.broker.shutdown();
        for d in self.dispatchers {
            let _ = d.await;
        }
        // The last acknowledgements are queued, not awaited: commit them before the process
        // goes, or they would be delivered again at the next start.
        let _ = std::fs::remove_file(sidecar_file(&self.data_dir));
        let _ = self.broker.close().await;
    }
}

/// The file where a running sidecar says which port it serves its data directory on (for
/// `busbar dlq`): `{"pid": N, "port": P}`.
pub fn sidecar_file(data_dir: &Path) -> PathBuf {
    data_dir.join("sidecar.json")
}

struct AppState {
    broker: Broker,
    model: AppModel,
    pubsub: String,
    /// (service, topic) pairs the code may publish.
    may_publish: BTreeSet<(String, String)>,
    callers: identity::Callers,
    admin_token: String,
    data_dir: PathBuf,
    /// Each topic's message schema, compiled, for validation at publish.
    validators: validation::Validators,
}

/// The subscriptions of each service, as (topic, subscription), in model order.
fn subscriptions_of<'a>(model: &'a AppModel, service: &'a str) -> Vec<(String, String)> {
    model
        .topics
        .iter()
        .flat_map(|t| {
            t.subscriptions
                .iter()
                .filter(move |s| s.service == service)
                .map(move |s| (t.name.clone(), s.name.clone()))
        })
        .collect()
}

/// Starts the sidecar on `listeners` (bound to 127.0.0.1 by the caller).
pub async fn start(
    model: AppModel,
    graph: &PermissionGraph,
    options: Options,
    listeners: Listeners,
) -> Result<Running, StartError> {
    let mut broker =
        Broker::open(&options.data_dir, BrokerConfig::from_model(&model), Clock::System)?;
    let failures = broker.failures();
    broker.set_disk_reserve(options.disk_reserve);
    let mut warnings = Vec::new();
    for name in options.dev.services.keys() {
        if model.service(name).is_none() {
            warnings.push(format!(
                "busbar.toml has [dev.services.{name}], but the app has no service `{name}`: it is ignored"
            ));
        }
    }
    let mut endpoints =
        identity::endpoints(&model, &options.dev, &options.data_dir).map_err(StartError::Tokens)?;
    let admin_token = identity::admin_token(&options.data_dir).map_err(StartError::Tokens)?;
    for e in &mut endpoints {
        e.port =
            listeners.services.get(&e.service).and_then(|l| l.local_addr().ok()).map(|a| a.port());
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| StartError::Subscription(format!("cannot create the HTTP client: {e}")))?;
    let pubsub = options.dev.pubsub.clone();
    let dispatchers = deliver_all(&model, &options.dev, &broker, &client, &mut warnings).await?;
    let validators = if options.dev.validate_messages {
        let (validators, more) = validation::Validators::compile(&model);
        warnings.extend(more);
        validators
    } else {
        validation::Validators::off()
    };
    let may_publish = graph
        .all_permissions()
        .into_iter()
        .flat_map(|p| p.publish.into_iter().map(move |g| (p.service.clone(), g.topic)))
        .collect();
    let callers = identity::Callers::new(&endpoints, &model, options.dev.trust_app_id);
    let state = Arc::new(AppState {
        broker: broker.clone(),
        model,
        pubsub,
        may_publish,
        callers,
        admin_token: admin_token.clone(),
        data_dir: options.data_dir.clone(),
        validators,
    });
    let app = router(state, &options.limits);
    let addr =
        listeners.shared.local_addr().map_err(|e| StartError::Subscription(e.to_string()))?;
    let announced = json!({ "pid": std::process::id(), "port": addr.port() });
    let announce = sidecar_file(&options.data_dir);
    identity::write_private(&announce, announced.to_string().as_bytes())
        .map_err(|e| StartError::Tokens(format!("cannot write {}: {e}", announce.display())))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (log_tx, log) = tokio::sync::mpsc::unbounded_channel();
    let connections = Arc::new(tokio::sync::Semaphore::new(options.limits.connections));
    let serve = |listener: tokio::net::TcpListener, port_of: Option<String>| {
        let app = app.clone().layer(Extension(PortOf(port_of)));
        tokio::spawn(server::serve(
            listener,
            app,
            options.limits.clone(),
            connections.clone(),
            log_tx.clone(),
            stopped.clone(),
        ))
    };
    let mut servers = vec![serve(listeners.shared, None)];
    for (service, listener) in listeners.services {
        servers.push(serve(listener, Some(service)));
    }
    Ok(Running {
        addr,
        broker,
        warnings,
        failures,
        log: Some(log),
        endpoints,
        admin_token,
        data_dir: options.data_dir,
        stop,
        servers,
        dispatchers,
    })
}

/// The sidecar's routes, behind the guard of [`server`].
fn router(state: Arc<AppState>, limits: &Limits) -> Router {
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
        .layer(DefaultBodyLimit::max(4 * busbar_runtime::config::MAX_MESSAGE_BYTES))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(limits.request, server::guard))
}

/// Starts a dispatcher for each subscription of each service with a URL, delivering over
/// HTTP on the routes its `/dapr/subscribe` gives.
async fn deliver_all(
    model: &AppModel,
    dev: &DevConfig,
    broker: &Broker,
    client: &reqwest::Client,
    warnings: &mut Vec<String>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
    let mut dispatchers = Vec::new();
    for service in &model.services {
        let subscriptions = subscriptions_of(model, &service.name);
        let url = dev.services.get(&service.name).and_then(|s| s.url.clone());
        let Some(url) = url else {
            if !subscriptions.is_empty() {
                warnings.push(format!(
                    "service `{}` has no URL ([dev.services.{}] url in busbar.toml): {} until it has one",
                    service.name,
                    service.name,
                    if subscriptions.len() == 1 {
                        "its subscription builds a backlog".to_string()
                    } else {
                        format!("its {} subscriptions build a backlog", subscriptions.len())
                    }
                ));
            }
            continue;
        };
        let routes = Arc::new(routes::ServiceRoutes::new(
            &service.name,
            &url,
            &dev.pubsub,
            subscriptions.clone(),
        ));
        match routes.read(client).await {
            routes::Read::Known => {}
            routes::Read::Refused(e) => return Err(StartError::Subscription(e)),
            routes::Read::Unreachable(e) => warnings.push(format!(
                "service `{}` does not answer at {} yet ({e}): its deliveries wait until it does, and its routes are read from its GET /dapr/subscribe then",
                service.name,
                routes.url()
            )),
        }
        for (topic, sub) in subscriptions {
            let handler = deliver::HttpHandler {
                client: client.clone(),
                routes: routes.clone(),
                topic: topic.clone(),
                subscription: sub.clone(),
                pubsub: dev.pubsub.clone(),
            };
            if let Some(task) = broker.subscribe(&topic, &sub, Arc::new(handler)) {
                dispatchers.push(task);
            }
        }
    }
    Ok(dispatchers)
}

pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let message: String = message.into();
    (status, axum::Json(json!({ "errorCode": code, "message": message }))).into_response()
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match state.broker.broken() {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(why) => error(StatusCode::SERVICE_UNAVAILABLE, "ERR_HEALTH_NOT_READY", why),
    }
}

async fn metadata(State(state): State<Arc<AppState>>) -> axum::Json<Value> {
    let pubsub = state.pubsub.as_str();
    let subscriptions: Vec<Value> = state
        .model
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
