//! The process's HTTP server on `127.0.0.1:$APP_PORT`, as the sidecar of `busbar dev` expects:
//! `GET /dapr/subscribe` lists this binary's subscriptions, each delivery is a CloudEvent
//! POSTed to `/busbar/{topic}/{subscription}` and answered `{"status": "SUCCESS" | "RETRY" |
//! "DROP"}`; every other request goes to the app's own routes.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use crate::dispatch::{Body, Delivery, Outcome, Table};
use crate::sidecar::{EnvError, Sidecar};
use crate::subscription::DeliveryInfo;

/// The most of a delivery body read (the broker's messages are at most 256 KiB).
const MAX_DELIVERY: usize = 16 << 20;

/// Why the server cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A bad value in the environment, or no `APP_PORT`.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// `APP_PORT` is taken (or cannot be bound).
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// Two subscriptions of one topic share a name.
    #[error("{0}")]
    Subscriptions(String),
    /// The server stopped with an error.
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The cloud backend `BUSBAR_BACKEND` names cannot start (or stop): the message says why.
    #[error("{0}")]
    Backend(String),
}

/// The server of this binary's subscriptions, and of the app's own routes.
///
/// ```no_run
/// use busbar::axum::{Router, routing::get};
///
/// #[tokio::main]
/// async fn main() -> Result<(), busbar::ServeError> {
///     let api = Router::new().route("/health", get(|| async { "ok" }));
///     busbar::Server::from_env()?.routes(api).serve().await
/// }
/// ```
pub struct Server {
    sidecar: Sidecar,
    app_port: Option<u16>,
    routes: Option<Router>,
    service: Option<String>,
    /// `BUSBAR_BACKEND`'s cloud: the subscriptions are delivered in-process from it.
    backend: Option<&'static str>,
}

impl Server {
    /// Reads `APP_PORT` (needed by [`Server::serve`]), `BUSBAR_SERVICE` and the sidecar's
    /// variables ([`Sidecar::from_env`]).
    pub fn from_env() -> Result<Server, EnvError> {
        let mut server = Server::new(Sidecar::from_env()?);
        server.app_port = crate::env::port("APP_PORT")?;
        server.service = crate::env::var("BUSBAR_SERVICE");
        server.backend = crate::env::backend()?;
        Ok(server)
    }

    /// A server that publishes to `sidecar`.
    pub fn new(sidecar: Sidecar) -> Server {
        Server { sidecar, app_port: None, routes: None, service: None, backend: None }
    }

    /// Serves `routes` too: every request that is not busbar's goes to them.
    pub fn routes(mut self, routes: Router) -> Server {
        self.routes = Some(routes);
        self
    }

    /// Names the service in log lines.
    pub fn service(mut self, name: impl Into<String>) -> Server {
        self.service = Some(name.into());
        self
    }

    /// Serves on `127.0.0.1:$APP_PORT` until Ctrl-C or SIGTERM.
    pub async fn serve(self) -> Result<(), ServeError> {
        let port = self.app_port.ok_or(EnvError::NoAppPort)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| ServeError::Bind { port, source })?;
        self.serve_on(listener, stopped()).await
    }

    /// Serves on `listener` until `shutdown` completes (then finishes the requests in flight).
    /// Publishes of the process go to this server's sidecar from now on.
    pub async fn serve_on(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        if let Some(name) = &self.service {
            crate::env::set_service(name);
        }
        let table = Table::build().map_err(ServeError::Subscriptions)?;
        let state = Arc::new(Served { table, pubsub: self.sidecar.pubsub_name().to_string() });
        let cloud = match self.backend {
            Some(backend) => Some(start_cloud(backend).await?),
            None => {
                self.sidecar.install();
                None
            }
        };
        // In-process from a cloud, deliveries come from the broker only: the sidecar's routes
        // are not served (nobody may post a delivery to the app's port).
        let mut router = match &cloud {
            Some(_) => Router::new(),
            None => Router::new()
                .route("/dapr/subscribe", get(subscribe_list))
                .route("/busbar/{topic}/{subscription}", post(deliver))
                .route_layer(DefaultBodyLimit::max(MAX_DELIVERY))
                .with_state(state),
        };
        if let Some(routes) = self.routes {
            router = router.fallback_service(routes);
        }
        let served = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
        if let Some(app) = cloud {
            stop_cloud(app).await?;
        }
        Ok(served?)
    }
}

/// The in-process app on `backend` (`BUSBAR_BACKEND`), from the environment
/// ([`crate::cloud::App::from_env`]).
#[cfg(any(feature = "aws", feature = "gcp"))]
async fn start_cloud(backend: &str) -> Result<crate::cloud::App, ServeError> {
    let started = async { crate::cloud::App::from_env()?.start().await };
    let app = started.await.map_err(|e| ServeError::Backend(e.to_string()))?;
    crate::env::log(&format!("delivering in-process from {backend}"));
    Ok(app)
}

#[cfg(any(feature = "aws", feature = "gcp"))]
async fn stop_cloud(app: crate::cloud::App) -> Result<(), ServeError> {
    app.shutdown().await.map_err(|e| ServeError::Backend(e.to_string()))
}

/// Without a cloud feature, `BUSBAR_BACKEND=aws|gcp` is refused.
#[cfg(not(any(feature = "aws", feature = "gcp")))]
async fn start_cloud(backend: &str) -> Result<std::convert::Infallible, ServeError> {
    Err(ServeError::Backend(format!(
        "BUSBAR_BACKEND={backend} needs busbar's `{backend}` feature, which this binary is built without"
    )))
}

#[cfg(not(any(feature = "aws", feature = "gcp")))]
async fn stop_cloud(app: std::convert::Infallible) -> Result<(), ServeError> {
    match app {}
}

/// Serves this binary's subscriptions on the sidecar of `busbar dev`, configured from the
/// environment, until Ctrl-C or SIGTERM: [`Server::from_env`] then [`Server::serve`].
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), busbar::ServeError> {
///     busbar::serve().await
/// }
/// ```
pub async fn serve() -> Result<(), ServeError> {
    Server::from_env()?.serve().await
}

/// [`serve`] from a plain `fn main` (a tokio runtime of its own): the exit code is a failure,
/// with the reason on stderr, when the server cannot run.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     busbar::run()
/// }
/// ```
pub fn run() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            crate::env::log(&format!("cannot start the tokio runtime: {e}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            crate::env::log(&e.to_string());
            std::process::ExitCode::FAILURE
        }
    }
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stopped() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

struct Served {
    table: Table,
    pubsub: String,
}

/// `GET /dapr/subscribe`: one entry per subscription of this binary.
async fn subscribe_list(State(state): State<Arc<Served>>) -> Response {
    let entries: Vec<Value> = state
        .table
        .by_key
        .keys()
        .map(|(topic, name)| {
            json!({
                "pubsubname": state.pubsub,
                "topic": topic,
                "route": route_of(topic, name),
                "metadata": { "subscription": name },
            })
        })
        .collect();
    axum::Json(entries).into_response()
}

/// `/busbar/{topic}/{subscription}`, each part encoded as `encodeURIComponent` does.
fn route_of(topic: &str, subscription: &str) -> String {
    use percent_encoding::utf8_percent_encode;
    let set = crate::sidecar::COMPONENT;
    format!(
        "/busbar/{}/{}",
        utf8_percent_encode(topic, set),
        utf8_percent_encode(subscription, set)
    )
}

fn status(status: StatusCode, outcome: &str) -> Response {
    (status, axum::Json(json!({ "status": outcome }))).into_response()
}

/// A delivery: the CloudEvent's message to the handler, its outcome to the sidecar.
async fn deliver(
    State(state): State<Arc<Served>>,
    Path((topic, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(served) = state.table.get(&topic, &name) else {
        // Not this binary's: 503 is retried (404 would dead-letter the message), so a binary
        // that gains the subscription later still gets it.
        crate::env::log(&format!(
            "a delivery for {topic}/{name}, which this binary does not subscribe"
        ));
        return status(StatusCode::SERVICE_UNAVAILABLE, "RETRY");
    };
    let delivery = match cloud_event(&topic, &name, &body) {
        Ok(d) => d,
        Err(why) => {
            crate::env::log(&format!("subscription {topic}/{name}: {why}: dropped"));
            return status(StatusCode::OK, "DROP");
        }
    };
    match served.call(delivery).await {
        Outcome::Success => status(StatusCode::OK, "SUCCESS"),
        Outcome::Retry(_) => status(StatusCode::OK, "RETRY"),
        Outcome::Drop(_) => status(StatusCode::OK, "DROP"),
    }
}

/// The delivery a CloudEvent in JSON carries: its `data` (or `data_base64`) and `id`.
fn cloud_event(topic: &str, name: &str, body: &[u8]) -> Result<Delivery, String> {
    let parsed: Value =
        serde_json::from_slice(body).map_err(|e| format!("the delivery is not JSON ({e})"))?;
    let Value::Object(mut event) = parsed else {
        return Err("the delivery is not a CloudEvent (a JSON object)".to_string());
    };
    let id = event.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    let body = match (event.remove("data"), event.get("data_base64").and_then(Value::as_str)) {
        (Some(data), _) => Body::Json(data),
        (None, Some(b64)) => Body::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("the CloudEvent's data_base64 is not base64 ({e})"))?,
        ),
        (None, None) => return Err("the CloudEvent has no data".to_string()),
    };
    let info = DeliveryInfo {
        id,
        topic: topic.to_string(),
        subscription: name.to_string(),
        attempt: None,
    };
    Ok(Delivery { body, info })
}
