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

pub mod admin;
mod cloudevent;
pub mod identity;
mod routes;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use busbar_config::DevConfig;
use busbar_graph::PermissionGraph;
use busbar_model::AppModel;
use busbar_runtime::{
    Broker, BrokerConfig, Clock, Delivery, Handler, HandlerFuture, Outcome, Publish, PublishError,
    StoreError,
};
use serde_json::{Value, json};

pub use cloudevent::rfc3339;
pub use identity::Endpoint;

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
    /// Each service's token and own port (the port it was bound on), in model order.
    pub endpoints: Vec<Endpoint>,
    stop: tokio::sync::watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    dispatchers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting requests, lets the deliveries in flight finish, and returns.
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
        let _ = self.broker.flush().await;
    }
}

struct AppState {
    broker: Broker,
    model: AppModel,
    pubsub: String,
    /// (service, topic) pairs the code may publish.
    may_publish: BTreeSet<(String, String)>,
    /// Token → service.
    tokens: BTreeMap<String, String>,
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
    for e in &mut endpoints {
        e.port =
            listeners.services.get(&e.service).and_then(|l| l.local_addr().ok()).map(|a| a.port());
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| StartError::Subscription(format!("cannot create the HTTP client: {e}")))?;
    let mut dispatchers = Vec::new();
    let pubsub = options.dev.pubsub.clone();
    for service in &model.services {
        let subscriptions: Vec<(&str, &str)> = model
            .topics
            .iter()
            .flat_map(|t| {
                t.subscriptions
                    .iter()
                    .filter(|s| s.service == service.name)
                    .map(move |s| (t.name.as_str(), s.name.as_str()))
            })
            .collect();
        let url = options.dev.services.get(&service.name).and_then(|s| s.url.clone());
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
        let subscriptions: Vec<(String, String)> =
            subscriptions.iter().map(|(t, s)| (t.to_string(), s.to_string())).collect();
        let routes = Arc::new(routes::ServiceRoutes::new(
            &service.name,
            &url,
            &pubsub,
            subscriptions.clone(),
        ));
        match routes.read(&client).await {
            routes::Read::Known => {}
            routes::Read::Refused(e) => return Err(StartError::Subscription(e)),
            routes::Read::Unreachable(e) => warnings.push(format!(
                "service `{}` does not answer at {} yet ({e}): its deliveries wait until it does, and its routes are read from its GET /dapr/subscribe then",
                service.name,
                routes.url()
            )),
        }
        for (topic, sub) in subscriptions {
            let handler = HttpHandler {
                client: client.clone(),
                routes: routes.clone(),
                topic: topic.clone(),
                subscription: sub.clone(),
                pubsub: pubsub.clone(),
            };
            if let Some(task) = broker.subscribe(&topic, &sub, Arc::new(handler)) {
                dispatchers.push(task);
            }
        }
    }
    let may_publish = graph
        .all_permissions()
        .into_iter()
        .flat_map(|p| p.publish.into_iter().map(move |g| (p.service.clone(), g.topic)))
        .collect();
    let tokens = endpoints.iter().map(|e| (e.token.clone(), e.service.clone())).collect();
    let state = Arc::new(AppState { broker: broker.clone(), model, pubsub, may_publish, tokens });
    let app = Router::new()
        .route("/v1.0/publish/{pubsub}/{topic}", post(publish))
        .route("/v1.0/publish/bulk/{pubsub}/{topic}", post(publish_bulk))
        .route("/v1.0-alpha1/publish/bulk/{pubsub}/{topic}", post(publish_bulk))
        .route("/v1.0/healthz", get(|| async { StatusCode::NO_CONTENT }))
        .route("/v1.0/healthz/outbound", get(|| async { StatusCode::NO_CONTENT }))
        .route("/v1.0/metadata", get(metadata))
        .route("/metrics", get(metrics))
        .route("/v1.0-busbar/dlq", get(dlq_list))
        .route("/v1.0-busbar/dlq/release", post(dlq_release))
        .layer(DefaultBodyLimit::max(4 * busbar_runtime::config::MAX_MESSAGE_BYTES))
        .with_state(state);
    let addr =
        listeners.shared.local_addr().map_err(|e| StartError::Subscription(e.to_string()))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serve = |listener: tokio::net::TcpListener, port_of: Option<String>| {
        let app = app.clone().layer(Extension(PortOf(port_of)));
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        })
    };
    let mut servers = vec![serve(listeners.shared, None)];
    for (service, listener) in listeners.services {
        servers.push(serve(listener, Some(service)));
    }
    Ok(Running { addr, broker, warnings, failures, endpoints, stop, servers, dispatchers })
}

/// Delivers to a service over HTTP, as a CloudEvent, on the route its `/dapr/subscribe` gives.
struct HttpHandler {
    client: reqwest::Client,
    routes: Arc<routes::ServiceRoutes>,
    topic: String,
    subscription: String,
    pubsub: String,
}

impl Handler for HttpHandler {
    fn handle(&self, delivery: Delivery) -> HandlerFuture {
        let body = cloudevent::envelope(&delivery, &self.pubsub);
        let (client, routes) = (self.client.clone(), self.routes.clone());
        let (topic, subscription) = (self.topic.clone(), self.subscription.clone());
        Box::pin(async move {
            let endpoint = match routes.endpoint(&client, &topic, &subscription).await {
                Ok(endpoint) => endpoint,
                Err(e) => return Outcome::Retry(e),
            };
            let request = client
                .post(endpoint)
                .header(header::CONTENT_TYPE, "application/cloudevents+json")
                .body(body);
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => return Outcome::Retry(format!("cannot reach the service: {e}")),
            };
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return Outcome::Drop("the service answered 404".into());
            }
            if !status.is_success() {
                return Outcome::Retry(format!("the service answered {status}"));
            }
            let text = response.text().await.unwrap_or_default();
            let said = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_ascii_uppercase));
            match said.as_deref() {
                None | Some("SUCCESS") => Outcome::Success,
                Some("DROP") => Outcome::Drop("the service answered DROP".into()),
                Some(other) => Outcome::Retry(format!("the service answered {other}")),
            }
        })
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let message: String = message.into();
    (status, axum::Json(json!({ "errorCode": code, "message": message }))).into_response()
}

/// The checks every publish passes first, in this order: the pubsub and topic exist (404), the
/// caller is identified (403) and its code publishes to the topic (403). `Ok` is the topic's
/// attribute names.
fn authorize(
    state: &AppState,
    port_of: &PortOf,
    pubsub: &str,
    topic: &str,
    headers: &HeaderMap,
) -> Result<Vec<String>, Box<Response>> {
    if pubsub != state.pubsub {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "ERR_PUBSUB_NOT_FOUND",
            format!("there is no pubsub `{pubsub}`; busbar serves `{}`", state.pubsub),
        )));
    }
    let Some(declared) = state.model.topic(topic) else {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "ERR_TOPIC_NOT_FOUND",
            format!("there is no topic `{topic}` in the app"),
        )));
    };
    let caller = identify(state, port_of, headers).map_err(|message| {
        Box::new(error(StatusCode::FORBIDDEN, "ERR_PERMISSION_DENIED", message))
    })?;
    if !state.may_publish.contains(&(caller.clone(), topic.to_string())) {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "ERR_PERMISSION_DENIED",
            format!(
                "service `{caller}` may not publish to `{topic}`: its code has no `publish(...)` or `ref<Publisher>()` of that topic, so the graph grants no publish permission"
            ),
        )));
    }
    Ok(declared.attributes.clone())
}

/// The calling service: the owner of the port the request came in on, else the service whose
/// `dapr-api-token` it sends, else the service its `dapr-app-id` names. A token that is not the
/// port owner's, or that no service has, is refused rather than ignored.
fn identify(state: &AppState, port_of: &PortOf, headers: &HeaderMap) -> Result<String, String> {
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let token = header_text("dapr-api-token");
    let by_token = token.map(|t| state.tokens.get(t).cloned());
    match (&port_of.0, by_token) {
        (Some(owner), None) => Ok(owner.clone()),
        (Some(owner), Some(Some(s))) if &s == owner => Ok(owner.clone()),
        (Some(owner), Some(_)) => Err(format!(
            "this port is service `{owner}`'s, but the dapr-api-token sent is not `{owner}`'s token"
        )),
        (None, Some(Some(service))) => Ok(service),
        (None, Some(None)) => Err(
            "the dapr-api-token sent is no service's token: use the one busbar dev printed at start (or [dev.services.NAME] token in busbar.toml)".into(),
        ),
        (None, None) => match header_text("dapr-app-id") {
            Some(app) if state.model.service(app).is_some() => Ok(app.to_string()),
            Some(app) => Err(format!("dapr-app-id `{app}` names no service of the app")),
            None => Err(
                "unidentified caller: send the service's dapr-api-token, or a dapr-app-id header naming a service of the app, or call the service's own port".into(),
            ),
        },
    }
}

/// The data and the client's message id of a published body.
type Decoded = (Vec<u8>, Option<String>);

/// A message body as published: a CloudEvent (its data and id), JSON, or raw bytes. `Err` is a
/// 400 with its error code.
fn decode(content_type: &str, body: &[u8]) -> Result<Decoded, (&'static str, String)> {
    if content_type.starts_with("application/cloudevents+json") {
        return cloudevent::parse(body)
            .map(|(data, id)| (data, Some(id)))
            .map_err(|e| ("ERR_PUBSUB_CLOUD_EVENTS_SER", e));
    }
    if (content_type.is_empty() || content_type.starts_with("application/json"))
        && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body)
    {
        return Err(("ERR_MALFORMED_REQUEST", format!("the body is not JSON: {e}")));
    }
    Ok((body.to_vec(), None))
}

/// The status and error code of a publish the broker refused.
fn refused(e: &PublishError) -> (StatusCode, &'static str) {
    match e {
        PublishError::TooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "ERR_PUBSUB_PUBLISH_MESSAGE")
        }
        PublishError::TooManyAttributes { .. } => {
            (StatusCode::BAD_REQUEST, "ERR_PUBSUB_PUBLISH_MESSAGE")
        }
        PublishError::Store(StoreError::Full) => {
            (StatusCode::INSUFFICIENT_STORAGE, "ERR_PUBSUB_PUBLISH_MESSAGE")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "ERR_PUBSUB_PUBLISH_MESSAGE"),
    }
}

async fn publish(
    State(state): State<Arc<AppState>>,
    Extension(port_of): Extension<PortOf>,
    Path((pubsub, topic)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let attribute_names = match authorize(&state, &port_of, &pubsub, &topic, &headers) {
        Ok(names) => names,
        Err(response) => return *response,
    };
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (data, client_id) = match decode(content_type, &body) {
        Ok(decoded) => decoded,
        Err((code, message)) => return error(StatusCode::BAD_REQUEST, code, message),
    };
    // The client's id: busbar's `metadata.messageId`, or Dapr's `metadata.cloudevent.id`.
    let client_id = query
        .get("metadata.messageId")
        .or_else(|| query.get("metadata.cloudevent.id"))
        .cloned()
        .or(client_id);
    let attributes = cloudevent::attributes(&data, &attribute_names);
    match state.broker.publish(&topic, Publish { data, attributes, id: client_id }).await {
        Ok(published) => {
            (StatusCode::NO_CONTENT, [("busbar-message-id", published.id)]).into_response()
        }
        Err(PublishError::Store(StoreError::Full)) => error(
            StatusCode::INSUFFICIENT_STORAGE,
            "ERR_PUBSUB_PUBLISH_MESSAGE",
            "the disk is full: nothing was stored",
        ),
        Err(e) => {
            let (status, code) = refused(&e);
            error(status, code, e.to_string())
        }
    }
}

/// Bulk publish: every entry is checked and stored (concurrently, so they share fsyncs); 204
/// when all are stored, else 500 with `failedEntries`.
async fn publish_bulk(
    State(state): State<Arc<AppState>>,
    Extension(port_of): Extension<PortOf>,
    Path((pubsub, topic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let attribute_names = match authorize(&state, &port_of, &pubsub, &topic, &headers) {
        Ok(names) => names,
        Err(response) => return *response,
    };
    let entries: Vec<Value> = match serde_json::from_slice(&body) {
        Ok(Value::Array(entries)) => entries,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "ERR_MALFORMED_REQUEST",
                "a bulk publish body is a JSON list of entries",
            );
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut failed: Vec<(usize, String, String)> = Vec::new();
    for (k, entry) in entries.into_iter().enumerate() {
        let entry_id = entry.get("entryId").and_then(Value::as_str).unwrap_or_default().to_string();
        if entry_id.is_empty() {
            failed.push((k, entry_id, "the entry has no entryId".into()));
            continue;
        }
        let content_type = entry
            .get("contentType")
            .and_then(Value::as_str)
            .unwrap_or("application/json")
            .to_string();
        let bytes = match entry.get("event") {
            Some(Value::String(s)) if !content_type.contains("json") => s.clone().into_bytes(),
            Some(v) => serde_json::to_vec(v).unwrap_or_default(),
            None => {
                failed.push((k, entry_id, "the entry has no event".into()));
                continue;
            }
        };
        let (data, client_id) = match decode(&content_type, &bytes) {
            Ok(decoded) => decoded,
            Err((_, message)) => {
                failed.push((k, entry_id, message));
                continue;
            }
        };
        let client_id = entry
            .pointer("/metadata/messageId")
            .or_else(|| entry.get("metadata").and_then(|m| m.get("cloudevent.id")))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(client_id);
        let attributes = cloudevent::attributes(&data, &attribute_names);
        let (broker, topic) = (state.broker.clone(), topic.clone());
        tasks.spawn(async move {
            let result = broker.publish(&topic, Publish { data, attributes, id: client_id }).await;
            (k, entry_id, result.map(|_| ()).map_err(|e| e.to_string()))
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok((k, entry_id, Err(e))) = done {
            failed.push((k, entry_id, e));
        }
    }
    if failed.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    failed.sort();
    let failed: Vec<Value> =
        failed.into_iter().map(|(_, id, e)| json!({ "entryId": id, "error": e })).collect();
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({ "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE", "failedEntries": failed })),
    )
        .into_response()
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

async fn dlq_list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    match admin::dead_letters(&state.broker, query.get("subscription").map(String::as_str)).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, "ERR_SUBSCRIPTION_NOT_FOUND", e),
    }
}

async fn dlq_release(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let request: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ERR_MALFORMED_REQUEST",
                    format!("the body is not JSON: {e}"),
                );
            }
        }
    };
    let filter = request.get("subscription").and_then(Value::as_str);
    let ids = request
        .get("ids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
    match admin::release(&state.broker, filter, ids).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, "ERR_SUBSCRIPTION_NOT_FOUND", e),
    }
}

/// The samples of one metric family for one subscription: (name suffix and labels, value).
type Series = dyn Fn(&busbar_runtime::SubscriptionStats, &str) -> Vec<(String, String)>;

/// A Prometheus label value.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let stats = match state.broker.stats().await {
        Ok(stats) => stats,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "ERR_METRICS", e.to_string()),
    };
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, values: &Series| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for s in &stats {
            let labels = format!(
                "topic=\"{}\",subscription=\"{}\"",
                label(&s.topic),
                label(&s.subscription)
            );
            for (suffix_and_labels, value) in values(s, &labels) {
                out.push_str(&format!("{name}{suffix_and_labels} {value}\n"));
            }
        }
    };
    family(
        "busbar_backlog",
        "gauge",
        "Deliveries a subscription is owed, due or waiting for their backoff.",
        &|s, l| vec![(format!("{{{l}}}"), s.backlog.to_string())],
    );
    family(
        "busbar_dead_letters",
        "gauge",
        "Messages in a subscription's dead-letter queue.",
        &|s, l| vec![(format!("{{{l}}}"), s.dead_letters.to_string())],
    );
    family(
        "busbar_deliveries_total",
        "counter",
        "Settled deliveries since busbar dev started, by outcome.",
        &|s, l| {
            vec![
                (format!("{{{l},outcome=\"acknowledged\"}}"), s.acknowledged.to_string()),
                (format!("{{{l},outcome=\"retried\"}}"), s.retried.to_string()),
                (format!("{{{l},outcome=\"dead_lettered\"}}"), s.dead_lettered.to_string()),
            ]
        },
    );
    family(
        "busbar_delivery_latency_seconds",
        "summary",
        "Time from publish to each settled delivery.",
        &|s, l| {
            vec![
                (format!("_sum{{{l}}}"), format!("{:.6}", s.latency_us as f64 / 1e6)),
                (
                    format!("_count{{{l}}}"),
                    (s.acknowledged + s.retried + s.dead_lettered).to_string(),
                ),
            ]
        },
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
