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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::Extension;
use busbar_config::DevConfig;
use busbar_model::runtime::RuntimeConfig;
use busbar_runtime::{Broker, BrokerError, Clock, Failure};
use serde_json::json;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::{
    AppState, Listeners, Options, PortOf, StartError, bulk, deliver, identity, router, routes,
    server, sidecar_file, validation,
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
    /// Each service's token and own port (the port it was bound on), in the contract's order.
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

/// A runtime contract as the sidecar serves it.
#[derive(Clone)]
struct Served {
    config: Arc<RuntimeConfig>,
    options: Options,
    endpoints: Vec<Endpoint>,
}

/// What the broker, its deliveries and the grants of one graph are, before requests see them.
struct Opened {
    broker: Arc<dyn Broker>,
    dispatchers: Vec<tokio::task::JoinHandle<()>>,
    routes: BTreeMap<String, Arc<routes::ServiceRoutes>>,
}

/// Warnings about the config and the store that the operator should see at each (re)load.
fn load_warnings(config: &RuntimeConfig, dev: &DevConfig, broker: &dyn Broker) -> Vec<String> {
    let mut warnings = Vec::new();
    for name in dev.services.keys() {
        if config.service(name).is_none() {
            warnings.push(format!(
                "busbar.toml has [dev.services.{name}], but the app has no service `{name}`: it is ignored"
            ));
        }
    }
    for ((topic, sub), owed) in &broker.retired() {
        warnings.push(format!(
            "subscription `{sub}` of `{topic}` is no longer in the app: its {owed} undelivered message{} {} kept (busbar_retired_backlog in /metrics) and delivered if it comes back",
            if *owed == 1 { "" } else { "s" },
            if *owed == 1 { "is" } else { "are" },
        ));
    }
    warnings
}

/// Starts the sidecar on `listeners` (bound to 127.0.0.1 by the caller), serving `config`:
/// its topics and subscriptions, and its grants (a publish the config does not grant the
/// caller is 403).
pub async fn start(
    config: RuntimeConfig,
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
    // The tokens and the announcement live there whichever broker serves.
    std::fs::create_dir_all(&options.data_dir).map_err(|e| {
        StartError::Tokens(format!("cannot create {}: {e}", options.data_dir.display()))
    })?;
    let config = Arc::new(config);
    let opened =
        open(&config, &options, &client, &failures_tx, Reading::AtStart, &mut warnings).await?;
    let endpoints = endpoints(&config, &options, &service_ports, &mut warnings)?;
    let admin_token = identity::admin_token(&options.data_dir).map_err(StartError::Tokens)?;
    let served = Served { config, options, endpoints: endpoints.clone() };
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
    config: &RuntimeConfig,
    options: &Options,
    service_ports: &BTreeMap<String, u16>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Endpoint>, StartError> {
    let mut endpoints =
        identity::endpoints(config, &options.dev, &options.data_dir).map_err(StartError::Tokens)?;
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
    broker: &Arc<dyn Broker>,
    admin_token: &str,
    warnings: &mut Vec<String>,
) -> AppState {
    let (config, options) = (&served.config, &served.options);
    let validators = if options.dev.validate_messages {
        let (validators, more) = validation::Validators::compile(config);
        warnings.extend(more);
        validators
    } else {
        validation::Validators::off()
    };
    AppState {
        broker: broker.clone(),
        config: config.clone(),
        pubsub: options.dev.pubsub.clone(),
        callers: identity::Callers::new(
            &served.endpoints,
            config,
            options.dev.trust_app_id,
            options.service.clone(),
        ),
        admin_token: admin_token.to_string(),
        data_dir: options.data_dir.clone(),
        validators,
    }
}

/// Opens the broker on the data directory for `config` and starts its deliveries.
async fn open(
    config: &RuntimeConfig,
    options: &Options,
    client: &reqwest::Client,
    failures: &UnboundedSender<Failure>,
    reading: Reading,
    warnings: &mut Vec<String>,
) -> Result<Opened, StartError> {
    let broker: Arc<dyn Broker> = match &options.broker {
        Some(given) => given.0.clone(),
        None => {
            let mut embedded = busbar_runtime::EmbeddedBroker::open(
                &options.data_dir,
                config.clone(),
                Clock::System,
            )
            .map_err(BrokerError::from)?;
            embedded.report_failures(failures.clone());
            embedded.set_disk_reserve(options.disk_reserve);
            Arc::new(embedded)
        }
    };
    warnings.extend(load_warnings(config, &options.dev, broker.as_ref()));
    let only = options.service.as_ref().map(|s| s.name.as_str());
    let started =
        deliver_all(config, &options.dev, only, broker.as_ref(), client, reading, warnings).await;
    let (dispatchers, routes) = match started {
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
    pub fn broker(&self) -> Arc<dyn Broker> {
        self.live.current().broker.clone()
    }

    /// Serves `config` from now on: its topics, subscriptions and grants take
    /// effect, a removed subscription stops receiving (its backlog kept), and `dev`'s tokens,
    /// URLs and settings apply (not new own ports: the listeners stay). The warnings of the new
    /// graph are returned. On `Err` the old graph is served still (or, if even the old one
    /// cannot be opened again, the error says so and publishes fail until a reload succeeds).
    pub async fn reload(
        &mut self,
        config: RuntimeConfig,
        dev: DevConfig,
    ) -> Result<Vec<String>, StartError> {
        if self.served.options.broker.is_some() {
            return Err(StartError::Subscription(
                "the broker was opened by the caller and is not reopened: restart to serve another graph".into(),
            ));
        }
        let mut warnings = Vec::new();
        let options = Options { dev, ..self.served.options.clone() };
        // What can fail without touching the running state comes first.
        let config = Arc::new(config);
        let endpoints = endpoints(&config, &options, &self.service_ports, &mut warnings)?;
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
        let new = Served { config, options, endpoints };
        let reading = Reading::AtFirstDelivery;
        let opened = open(
            &new.config,
            &new.options,
            &self.client,
            &self.failures_tx,
            reading,
            &mut warnings,
        )
        .await;
        let (opened, served, result) = match opened {
            Ok(opened) => (opened, new, Ok(())),
            Err(e) => {
                // Back to the graph that was served.
                let old = self.served.clone();
                let mut ignored = Vec::new();
                let again = open(
                    &old.config,
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
    config: &RuntimeConfig,
    dev: &DevConfig,
    only: Option<&str>,
    broker: &dyn Broker,
    client: &reqwest::Client,
    reading: Reading,
    warnings: &mut Vec<String>,
) -> Result<
    (Vec<tokio::task::JoinHandle<()>>, BTreeMap<String, Arc<routes::ServiceRoutes>>),
    StartError,
> {
    let mut dispatchers = Vec::new();
    let mut all_routes = BTreeMap::new();
    let services = config.services.iter().map(|p| p.service.as_str());
    for service in services.filter(|s| only.is_none_or(|only| only == *s)) {
        let subscriptions = config.subscriptions_of(service);
        let url = dev.services.get(service).and_then(|s| s.url.clone());
        let Some(url) = url else {
            if !subscriptions.is_empty() {
                warnings.push(format!(
                    "service `{}` has no URL ([dev.services.{}] url or command in busbar.toml): {} until it has one",
                    service,
                    service,
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
        let routes =
            Arc::new(routes::ServiceRoutes::new(service, &url, &dev.pubsub, subscriptions.clone()));
        if reading == Reading::AtStart {
            match routes.read(client).await {
                routes::Read::Known => {}
                routes::Read::Refused(e) => return Err(StartError::Subscription(e)),
                routes::Read::Unreachable(e) => warnings.push(format!(
                    "service `{}` does not answer at {} yet ({e}): its deliveries wait until it does, and its routes are read from its GET /dapr/subscribe then",
                    service,
                    routes.url()
                )),
            }
        }
        for (topic, sub) in subscriptions {
            let settings = config.subscription(&topic, &sub).map(|s| &s.settings);
            let batcher = bulk::Batcher::new(
                client.clone(),
                &topic,
                &dev.pubsub,
                settings.map_or(1, |s| s.concurrency_limit()),
                settings.map_or(Duration::from_secs(30), |s| s.ack_deadline()),
            );
            let handler = deliver::HttpHandler {
                client: client.clone(),
                routes: routes.clone(),
                topic: topic.clone(),
                subscription: sub.clone(),
                pubsub: dev.pubsub.clone(),
                batcher: Arc::new(batcher),
            };
            let task = broker
                .subscribe(&topic, &sub, Arc::new(handler))
                .map_err(|e| StartError::Subscription(e.to_string()))?;
            dispatchers.push(task);
        }
        all_routes.insert(service.to_string(), routes);
    }
    Ok((dispatchers, all_routes))
}
