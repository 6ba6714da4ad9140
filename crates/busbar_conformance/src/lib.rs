//! The harness of the conformance suite (`tests/conformance.rs`). A case is an app: one Encore
//! service `svc` whose `topics.ts` declares the case's topics and subscriptions. It is analyzed,
//! graphed and planned as a user's app is; each backend then gets the runtime configuration
//! built from it, and the AWS backend a moto server (started here) with the plan's resources
//! created on it as Terraform would, found through the plan's names.
//!
//! The GCP backend gets the Pub/Sub emulator the test command started (`BUSBAR_PUBSUB_EMULATOR`,
//! `host:port`), with a project of its own per case, and the plan's resources created there.
//!
//! Backends: `embedded` always; `aws` when `BUSBAR_MOTO` names a `moto_server`; `gcp` when
//! `BUSBAR_PUBSUB_EMULATOR` names a running emulator (the test command sets both; without one
//! the case says it skipped that backend, and under `BUSBAR_REQUIRE_TOOLS` it fails).

#![allow(clippy::print_stdout, reason = "the suite reports each case × backend")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test harness")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use busbar_aws::{AwsBroker, AwsOptions};
use busbar_e2e::server::Server;
use busbar_gcp::{GcpBroker, GcpOptions};
use busbar_plan::{Resources, Settings, Target};
use busbar_runtime::{Broker, Clock, EmbeddedBroker, RuntimeConfig};

/// The backends a case runs on, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
    Gcp,
}

pub const BACKENDS: &[Backend] = &[Backend::Embedded, Backend::Aws, Backend::Gcp];

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Aws => "aws (moto)",
            Backend::Gcp => "gcp (Pub/Sub emulator)",
        }
    }
}

/// A case's app, analyzed.
pub struct App {
    pub model: busbar_model::AppModel,
    pub graph: busbar_graph::PermissionGraph,
    pub config: RuntimeConfig,
    _dir: tempfile::TempDir,
}

const SERVICE: &str =
    "import { Service } from \"encore.dev/service\";\nexport default new Service(\"svc\");\n";

impl App {
    /// Analyzes the app whose one service has `topics_ts` as `svc/topics.ts`. Its diagnostics
    /// must have no errors.
    pub fn new(topics_ts: &str) -> App {
        let dir = tempfile::tempdir().unwrap();
        let svc = dir.path().join("svc");
        std::fs::create_dir_all(&svc).unwrap();
        std::fs::write(svc.join("encore.service.ts"), SERVICE).unwrap();
        std::fs::write(svc.join("topics.ts"), topics_ts).unwrap();
        let (config, _) = busbar_config::load(dir.path()).unwrap();
        let analysis = busbar_analysis::analyze(
            dir.path(),
            &config,
            &busbar_analysis::Options::default(),
            &[busbar_ts::FRONTEND],
        );
        let errors: Vec<_> = analysis.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "the case's app has errors: {errors:#?}");
        let graph = busbar_graph::PermissionGraph::build(&analysis.model);
        let settings = settings("");
        let config = busbar_plan::runtime_config(&analysis.model, &graph, &settings);
        App { model: analysis.model, graph, config, _dir: dir }
    }
}

fn settings(prefix: &str) -> Settings {
    Settings {
        app: "conformance".to_string(),
        prefix: prefix.to_string(),
        tags: BTreeMap::new(),
        dapr_component: None,
    }
}

/// What keeps a backend's broker up: its data directory, its server.
pub struct Opened {
    pub broker: Arc<dyn Broker>,
    _dir: Option<tempfile::TempDir>,
    _server: Option<Server>,
}

/// Opens `backend` on `app`; `None` (and a line saying why) when it cannot run here.
pub async fn open(backend: Backend, app: &App, case: &str) -> Option<Opened> {
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().unwrap();
            let broker =
                EmbeddedBroker::open(dir.path(), app.config.clone(), Clock::System).unwrap();
            Some(Opened { broker: Arc::new(broker), _dir: Some(dir), _server: None })
        }
        Backend::Aws => {
            let Some(moto) = tool("BUSBAR_MOTO") else {
                println!(
                    "conformance: {case} × {}: skipped (BUSBAR_MOTO is not set)",
                    backend.name()
                );
                return None;
            };
            let server = Server::moto(&moto).unwrap();
            let (plan, diagnostics) =
                busbar_plan::plan(&app.model, &app.graph, Target::Aws, &settings("conformance-"));
            assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:#?}");
            let Resources::Aws(aws) = plan.resources else { panic!("an AWS plan") };
            busbar_e2e::aws::provision(&server.endpoint, &aws).await.unwrap();
            let options = AwsOptions {
                endpoint_url: Some(server.endpoint.clone()),
                region: Some("us-east-1".into()),
                credentials: Some(("conformance".into(), "conformance".into())),
                poll_wait_seconds: Some(1),
                scope: busbar_aws::Scope::All,
            };
            let broker =
                AwsBroker::connect(app.config.clone(), &aws.locations(), options).await.unwrap();
            Some(Opened { broker: Arc::new(broker), _dir: None, _server: Some(server) })
        }
        Backend::Gcp => {
            // Empty: the test command found no gcloud to start the emulator with (and said so).
            let host = tool("BUSBAR_PUBSUB_EMULATOR").map(|h| h.to_string_lossy().into_owned());
            let Some(host) = host.filter(|h| !h.is_empty()) else {
                println!(
                    "conformance: {case} × {}: skipped (no Pub/Sub emulator: BUSBAR_PUBSUB_EMULATOR is empty or not set)",
                    backend.name()
                );
                return None;
            };
            let (plan, diagnostics) =
                busbar_plan::plan(&app.model, &app.graph, Target::Gcp, &settings("conformance-"));
            assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:#?}");
            let Resources::Gcp(gcp) = plan.resources else { panic!("a GCP plan") };
            // A project of its own: the cases share one emulator.
            let project = format!("case-{}", uuid::Uuid::new_v4().simple());
            let endpoint = format!("http://{host}");
            let (p, g) = (project.clone(), gcp.clone());
            tokio::task::spawn_blocking(move || busbar_e2e::gcp::provision(&endpoint, &p, &g))
                .await
                .unwrap()
                .unwrap();
            let options = GcpOptions {
                scope: busbar_gcp::Scope::All,
                project: Some(project),
                emulator_host: Some(host),
            };
            let broker =
                GcpBroker::connect(app.config.clone(), &gcp.locations(), options).await.unwrap();
            Some(Opened { broker: Arc::new(broker), _dir: None, _server: None })
        }
    }
}

/// A tool's path from the environment; a missing one fails under `BUSBAR_REQUIRE_TOOLS`.
fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("BUSBAR_REQUIRE_TOOLS").is_some() => {
            panic!("{var} is not set, and BUSBAR_REQUIRE_TOOLS says the tools are required")
        }
        None => None,
    }
}
