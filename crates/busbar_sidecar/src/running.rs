//! A running sidecar: started once on its listeners, then reloaded with a new graph as often
//! as the app changes, and shut down.
//!
//! The state every request reads ([`AppState`]: the broker, the graph's grants, the validators)
//! is replaced whole by a reload. Every request holds a read guard of the *gate* while it runs;
//! a reload first stops the old broker's deliveries (publishes go on meanwhile, so a handler's
//! own publish never waits for the reload it is holding up), then takes the gate for writing,
//! which waits for the requests in flight and holds back new ones, closes the old broker
//! (everything it accepted is committed), opens the data directory again with the new
//! subscriptions, and lets the requests through. Nothing accepted is lost: a message is
//! accepted only once it is committed, and the store keeps every delivery owed, to a removed
//! subscription too.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::Extension;
use busbar_config::DevConfig;
use busbar_graph::PermissionGraph;
use busbar_model::AppModel;
use busbar_runtime::{Broker, BrokerConfig, Clock, Failure};
use serde_json::json;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::{
    AppState, Listeners, Options, PortOf, StartError, deliver, identity, router, routes, server,
    sidecar_file, subscriptions_of, validation,
};

/// The state requests read, and the gate a reload closes.
pub(crate) struct Live {
    pub(crate) current: RwLock<Arc<AppState>>,
    pub(crate) gate: tokio::sync::RwLock<()>,
}

impl Live {
    pub(crate) fn current(&self) -> Arc<AppState> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, state: AppState) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
    }
}

/// A running sidecar.
pub struct Running {
    pub addr: SocketAddr,
    /// What the operator should know (a service without a URL builds a backlog).
    pub warnings: Vec<String>,
    /// Every failed delivery (subscription, message id, attempt, error), for the log; the
    /// same channel across reloads.
    pub failures: Option<UnboundedReceiver<Failure>>,
    /// Lines for the log while it runs (a connection limit reached).
    pub log: Option<UnboundedReceiver<String>>,
    /// Each service's token and own port (the port it was bound on), in model order.
    pub endpoints: Vec<Endpoint>,
    /// The admin API's token (also in the data directory's `admin-token`).
    pub admin_token: String,
    live: Arc<Live>,
    failures_tx: UnboundedSender<Failure>,
    client: reqwest::Client,
    /// The graph now served, to fall back on when a reload cannot open the store.
    served: Served,
    /// The own port each service was bound on at start (listeners are not rebound).
    service_ports: BTreeMap<String, u16>,
    /// Each service's delivery routes, read from its `/dapr/subscribe`.
    routes: BTreeMap<String, Arc<routes::ServiceRoutes>>,
    stop: tokio::sync::watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    dispatchers: Vec<tokio::task::JoinHandle<()>>,
}

pub use identity::Endpoint;

/// A graph as the sidecar serves it.
#[derive(Clone)]
struct Served {
    model: AppModel,
    options: Options,
    /// (service, topic) pairs the code may publish.
    may_publish: BTreeSet<(String, String)>,
    endpoints: Vec<Endpoint>,
}

/// What the broker, its deliveries and the grants of one graph are, before requests see them.
struct Opened {
    broker: Broker,
    dispatchers: Vec<tokio::task::JoinHandle<()>>,
    routes: BTreeMap<String, Arc<routes::ServiceRoutes>>,
}

/// The (service, topic) pairs the graph lets publish.
fn grants(graph: &PermissionGraph) -> BTreeSet<(String, String)> {
    graph
        .all_permissions()
        .into_iter()
        .flat_map(|p| p.publish.into_iter().map(move |g| (p.service.clone(), g.topic)))
        .collect()
}

/// Warnings about the config and the store that the operator should see at each (re)load.
fn load_warnings(model: &AppModel, dev: &DevConfig, broker: &Broker) -> Vec<String> {
    let mut warnings = Vec::new();
    for name in dev.services.keys() {
        if model.service(name).is_none() {
            warnings.push(format!(
                "busbar.toml has [dev.services.{name}], but the app has no service `{name}`: it is ignored"
            ));
        }
    }
    for ((topic, sub), owed) in broker.retired() {
        warnings.push(format!(
            "subscription `{sub}` of `{topic}` is no longer in the app: its {owed} undelivered message{} {} kept (busbar_retired_backlog in /metrics) and delivered if it comes back",
            if *owed == 1 { "" } else { "s" },
            if *owed == 1 { "is" } else { "are" },
        ));
    }
    warnings
}

/// Starts the sidecar on `listeners` (bound to 127.0.0.1 by the caller).
pub async fn start(
    model: AppModel,
    graph: &PermissionGraph,
    options: Options,
    listeners: Listeners,
) -> Result<Running, StartError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| StartError::Subscription(format!("cannot create the HTTP client: {e}")))?;
    let (failures_tx, failures) = tokio::sync::mpsc::unbounded_channel();
    let service_ports: BTreeMap<String, u16> = listeners
        .services
        .iter()
        .filter_map(|(s, l)| Some((s.clone(), l.local_addr().ok()?.port())))
        .collect();
    let mut warnings = Vec::new();
    let opened =
        open(&model, &options, &client, &failures_tx, Reading::AtStart, &mut warnings).await?;
    let endpoints = endpoints(&model, &options, &service_ports, &mut warnings)?;
    let admin_token = identity::admin_token(&options.data_dir).map_err(StartError::Tokens)?;
    let served =
        Served { model, options, may_publish: grants(graph), endpoints: endpoints.clone() };
    let state = app_state(&served, &opened.broker, &admin_token, &mut warnings);
    let live = Arc::new(Live {
        current: RwLock::new(Arc::new(state)),
        gate: tokio::sync::RwLock::new(()),
    });
    let options = &served.options;
    let app = router(live.clone(), &options.limits);
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
        warnings,
        failures: Some(failures),
        log: Some(log),
        endpoints,
        admin_token,
        live,
        failures_tx,
        client,
        served,
        service_ports,
        routes: opened.routes,
        stop,
        servers,
        dispatchers: opened.dispatchers,
    })
}

/// Whether a service's routes are read when its deliveries start.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Now: an answer that asks for what the graph lacks refuses the start.
    AtStart,
    /// At its first delivery: at a reload the service may still run its old code (it is
    /// restarted after), whose routes are not the new graph's.
    AtFirstDelivery,
}

/// Each service's endpoint, with the own port it was bound on.
fn endpoints(
    model: &AppModel,
    options: &Options,
    service_ports: &BTreeMap<String, u16>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Endpoint>, StartError> {
    let mut endpoints =
        identity::endpoints(model, &options.dev, &options.data_dir).map_err(StartError::Tokens)?;
    for e in &mut endpoints {
        let wanted = e.port;
        e.port = service_ports.get(&e.service).copied();
        if let Some(port) = wanted.filter(|_| e.port.is_none()) {
            warnings.push(format!(
                "service `{}` has port {port} in busbar.toml, but busbar dev listens on the ports it started with: restart it to listen there",
                e.service
            ));
        }
    }
    Ok(endpoints)
}

/// The state requests read for one graph.
fn app_state(
    served: &Served,
    broker: &Broker,
    admin_token: &str,
    warnings: &mut Vec<String>,
) -> AppState {
    let (model, options) = (&served.model, &served.options);
    let validators = if options.dev.validate_messages {
        let (validators, more) = validation::Validators::compile(model);
        warnings.extend(more);
        validators
    } else {
        validation::Validators::off()
    };
    AppState {
        broker: broker.clone(),
        model: model.clone(),
        pubsub: options.dev.pubsub.clone(),
        may_publish: served.may_publish.clone(),
        callers: identity::Callers::new(&served.endpoints, model, options.dev.trust_app_id),
        admin_token: admin_token.to_string(),
        data_dir: options.data_dir.clone(),
        validators,
    }
}

/// Opens the broker on the data directory for `model` and starts its deliveries.
async fn open(
    model: &AppModel,
    options: &Options,
    client: &reqwest::Client,
    failures: &UnboundedSender<Failure>,
    reading: Reading,
    warnings: &mut Vec<String>,
) -> Result<Opened, StartError> {
    let mut broker =
        Broker::open(&options.data_dir, BrokerConfig::from_model(model), Clock::System)?;
    broker.report_failures(failures.clone());
    broker.set_disk_reserve(options.disk_reserve);
    warnings.extend(load_warnings(model, &options.dev, &broker));
    let (dispatchers, routes) =
        match deliver_all(model, &options.dev, &broker, client, reading, warnings).await {
            Ok(started) => started,
            Err(e) => {
                broker.shutdown();
                let _ = broker.close().await;
                return Err(e);
            }
        };
    Ok(Opened { broker, dispatchers, routes })
}

impl Running {
    /// The broker now serving.
    pub fn broker(&self) -> Broker {
        self.live.current().broker.clone()
    }

    /// Serves `model` and its `graph` from now on: its topics, subscriptions and grants take
    /// effect, a removed subscription stops receiving (its backlog kept), and `dev`'s tokens,
    /// URLs and settings apply (not new own ports: the listeners stay). The warnings of the new
    /// graph are returned. On `Err` the old graph is served still (or, if even the old one
    /// cannot be opened again, the error says so and publishes fail until a reload succeeds).
    pub async fn reload(
        &mut self,
        model: AppModel,
        graph: &PermissionGraph,
        dev: DevConfig,
    ) -> Result<Vec<String>, StartError> {
        let mut warnings = Vec::new();
        let options = Options { dev, ..self.served.options.clone() };
        // What can fail without touching the running state comes first.
        let endpoints = endpoints(&model, &options, &self.service_ports, &mut warnings)?;
        let may_publish = grants(graph);
        // The old deliveries end (the ones in flight finish); publishes go on meanwhile.
        let old = self.broker();
        old.shutdown();
        for d in self.dispatchers.drain(..) {
            let _ = d.await;
        }
        let _gate = self.live.gate.write().await;
        // Everything the old broker accepted is committed before the store is opened again.
        let _ = old.close().await;
        drop(old);
        let new = Served { model, options, may_publish, endpoints };
        let reading = Reading::AtFirstDelivery;
        let opened =
            open(&new.model, &new.options, &self.client, &self.failures_tx, reading, &mut warnings)
                .await;
        let (opened, served, result) = match opened {
            Ok(opened) => (opened, new, Ok(())),
            Err(e) => {
                // Back to the graph that was served.
                let old = self.served.clone();
                let mut ignored = Vec::new();
                let again = open(
                    &old.model,
                    &old.options,
                    &self.client,
                    &self.failures_tx,
                    reading,
                    &mut ignored,
                )
                .await;
                match again {
                    Ok(reopened) => (reopened, old, Err(e)),
                    Err(_) => {
                        return Err(StartError::Subscription(format!(
                            "{e}; and the previous graph could not be opened again, so publishes fail until a reload succeeds"
                        )));
                    }
                }
            }
        };
        let state = app_state(&served, &opened.broker, &self.admin_token, &mut warnings);
        self.live.replace(state);
        self.dispatchers = opened.dispatchers;
        self.routes = opened.routes;
        self.endpoints = served.endpoints.clone();
        self.served = served;
        result.map(|()| warnings)
    }

    /// Forgets the routes read from `service`'s `/dapr/subscribe`: its next delivery reads
    /// them again (call it when the service restarts, as its code may have changed).
    pub fn service_restarted(&self, service: &str) {
        if let Some(r) = self.routes.get(service) {
            r.forget();
        }
    }

    /// Stops accepting requests, lets the deliveries in flight finish, commits, and releases
    /// the data directory.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        for server in self.servers {
            let _ = server.await;
        }
        let broker = self.live.current().broker.clone();
        broker.shutdown();
        for d in self.dispatchers {
            let _ = d.await;
        }
        // The last acknowledgements are queued, not awaited: commit them before the process
        // goes, or they would be delivered again at the next start.
        let _ = std::fs::remove_file(sidecar_file(&self.served.options.data_dir));
        let _ = broker.close().await;
    }
}

/// Starts a dispatcher for each subscription of each service with a URL, delivering over
/// HTTP on the routes its `/dapr/subscribe` gives.
async fn deliver_all(
    model: &AppModel,
    dev: &DevConfig,
    broker: &Broker,
    client: &reqwest::Client,
    reading: Reading,
    warnings: &mut Vec<String>,
) -> Result<
    (Vec<tokio::task::JoinHandle<()>>, BTreeMap<String, Arc<routes::ServiceRoutes>>),
    StartError,
> {
    let mut dispatchers = Vec::new();
    let mut all_routes = BTreeMap::new();
    for service in &model.services {
        let subscriptions = subscriptions_of(model, &service.name);
        let url = dev.services.get(&service.name).and_then(|s| s.url.clone());
        let Some(url) = url else {
            if !subscriptions.is_empty() {
                warnings.push(format!(
                    "service `{}` has no URL ([dev.services.{}] url or command in busbar.toml): {} until it has one",
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
        if subscriptions.is_empty() {
            continue;
        }
        let routes = Arc::new(routes::ServiceRoutes::new(
            &service.name,
            &url,
            &dev.pubsub,
            subscriptions.clone(),
        ));
        if reading == Reading::AtStart {
            match routes.read(client).await {
                routes::Read::Known => {}
                routes::Read::Refused(e) => return Err(StartError::Subscription(e)),
                routes::Read::Unreachable(e) => warnings.push(format!(
                    "service `{}` does not answer at {} yet ({e}): its deliveries wait until it does, and its routes are read from its GET /dapr/subscribe then",
                    service.name,
                    routes.url()
                )),
            }
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
        all_routes.insert(service.name.clone(), routes);
    }
    Ok((dispatchers, all_routes))
}
