//! In-process delivery on AWS (SNS and SQS, feature `aws`) or GCP (Pub/Sub, feature `gcp`),
//! without a sidecar: the same broker backends as `busbar serve --backend aws|gcp`, on the
//! resources busbar's Terraform module created, with the same enforcement of the service's
//! own grants.
//!
//! [`Builder::start`] reads the app's contract (`runtime-config.json`, which `busbar build`
//! writes) and where its resources are (the module's `terraform output -json`), checks that
//! every subscription of this binary belongs to the service, finds the service's topics and
//! queues (or Pub/Sub subscriptions) before anything is delivered (an error names what is
//! missing), delivers each subscription to its handler, and takes every publish of the
//! process until it stops. A publish to a topic the service has no grant for fails with
//! [`PublishErrorKind::PermissionDenied`](crate::PublishErrorKind::PermissionDenied) before
//! any cloud call; the cloud's IAM (the module's least-privilege policies) refuses it too.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // BUSBAR_BACKEND=aws BUSBAR_SERVICE=fraud BUSBAR_RUNTIME_CONFIG=out/runtime-config.json
//! // BUSBAR_OUTPUTS=outputs.json (terraform output -json)
//! let app = busbar::cloud::App::from_env()?.start().await?;
//! // ... serve, publish ...
//! app.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! [`Server::serve`](crate::Server::serve) does this by itself when `BUSBAR_BACKEND` says
//! `aws` or `gcp`: the same binary runs on the sidecar of `busbar dev` and in production.
//!
//! | variable | meaning |
//! |---|---|
//! | `BUSBAR_BACKEND` | `aws` or `gcp` (`sidecar`, or unset: the sidecar) |
//! | `BUSBAR_SERVICE` | the service this binary is, as the analysis names it |
//! | `BUSBAR_RUNTIME_CONFIG` | the `runtime-config.json` of `busbar build` |
//! | `BUSBAR_OUTPUTS` | `terraform output -json` of the app's busbar module |
//! | `GOOGLE_CLOUD_PROJECT` | GCP: the project, when the outputs do not say it |
//!
//! Credentials, region and endpoint come from the standard environment of each cloud
//! (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, roles; Application Default Credentials,
//! `PUBSUB_EMULATOR_HOST`). Unlike the sidecar, messages are not checked against their JSON
//! Schema here: they are this binary's own Rust types.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use busbar_model::locations::{AwsLocations, GcpLocations};
pub use busbar_runtime::{Broker, BrokerError, DeadLetter, RuntimeConfig, SubscriptionStats};

use crate::dispatch::Table;
use crate::in_process::StartError;
use crate::topic::Topic;

/// Which cloud delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// SNS and SQS (feature `aws`).
    Aws,
    /// Pub/Sub (feature `gcp`).
    Gcp,
}

impl Backend {
    /// `BUSBAR_BACKEND`'s word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Aws => "aws",
            Backend::Gcp => "gcp",
        }
    }
}

/// Where the resources are.
enum Where {
    Outputs(PathBuf),
    #[cfg_attr(not(feature = "aws"), expect(dead_code, reason = "read by the AWS backend"))]
    Aws(AwsLocations),
    #[cfg_attr(not(feature = "gcp"), expect(dead_code, reason = "read by the GCP backend"))]
    Gcp(GcpLocations),
}

/// How to start an [`App`].
pub struct Builder {
    backend: Backend,
    service: String,
    config: Option<Result<RuntimeConfig, PathBuf>>,
    locations: Option<Where>,
    connection: Connection,
}

/// How to reach the cloud, beyond its standard environment.
#[derive(Default)]
struct Connection {
    project: Option<String>,
    endpoint: Option<String>,
    aws_region: Option<String>,
    aws_credentials: Option<(String, String)>,
}

impl Builder {
    /// The runtime contract: `runtime-config.json` as `busbar build` wrote it.
    pub fn runtime_config_file(mut self, path: impl AsRef<Path>) -> Builder {
        self.config = Some(Err(path.as_ref().to_path_buf()));
        self
    }

    /// The runtime contract, already read.
    pub fn runtime_config(mut self, config: RuntimeConfig) -> Builder {
        self.config = Some(Ok(config));
        self
    }

    /// Where the resources are: `terraform output -json` of the app's busbar module.
    pub fn outputs_file(mut self, path: impl AsRef<Path>) -> Builder {
        self.locations = Some(Where::Outputs(path.as_ref().to_path_buf()));
        self
    }

    /// Where the resources are on AWS (ARNs and URLs, or names in the credentials' account
    /// and region).
    pub fn aws_locations(mut self, locations: AwsLocations) -> Builder {
        self.locations = Some(Where::Aws(locations));
        self
    }

    /// Where the resources are on GCP.
    pub fn gcp_locations(mut self, locations: GcpLocations) -> Builder {
        self.locations = Some(Where::Gcp(locations));
        self
    }

    /// The GCP project of names that are not full (else the outputs', else the credentials').
    pub fn project(mut self, project: impl Into<String>) -> Builder {
        self.connection.project = Some(project.into());
        self
    }

    /// The cloud's endpoint instead of the environment's: a moto server or LocalStack (AWS,
    /// else `AWS_ENDPOINT_URL`), the Pub/Sub emulator's `host:port` (GCP, else
    /// `PUBSUB_EMULATOR_HOST`).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Builder {
        self.connection.endpoint = Some(endpoint.into());
        self
    }

    /// The AWS region instead of the environment's (`AWS_REGION`, the profile's).
    pub fn aws_region(mut self, region: impl Into<String>) -> Builder {
        self.connection.aws_region = Some(region.into());
        self
    }

    /// Static AWS credentials (access key id, secret) instead of the standard chain
    /// (environment, profile, web identity, instance or container role).
    pub fn aws_credentials(mut self, id: impl Into<String>, secret: impl Into<String>) -> Builder {
        self.connection.aws_credentials = Some((id.into(), secret.into()));
        self
    }

    /// Checks the binary against the contract, connects, and starts delivering.
    pub async fn start(self) -> Result<App, StartError> {
        crate::env::set_service(&self.service);
        let config = match self.config {
            Some(Ok(config)) => config,
            Some(Err(path)) => RuntimeConfig::from_json(&read(&path)?)
                .map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?,
            None => return Err(StartError::Config(
                "no runtime-config.json: give it (BUSBAR_RUNTIME_CONFIG), as `busbar build` writes it".into(),
            )),
        };
        let table = Table::build().map_err(StartError::Config)?;
        check(&config, &self.service, &table)?;
        let scope = busbar_runtime::Scope::Service(self.service.clone());
        let backend = self.backend;
        let broker = connect(backend, config, scope, self.locations, self.connection).await?;
        if !crate::transport::install_broker(broker.clone(), Some(self.service.clone())) {
            broker.shutdown();
            return Err(StartError::AlreadyRunning);
        }
        let mut tasks = Vec::new();
        for ((topic, name), served) in &table.by_key {
            let handler = crate::in_process::handler(served.clone());
            match broker.subscribe(topic, name, handler) {
                Ok(task) => tasks.push(task),
                Err(e) => {
                    broker.shutdown();
                    crate::transport::uninstall_broker();
                    return Err(StartError::Broker(e));
                }
            }
        }
        Ok(App { broker, tasks, running: true })
    }
}

/// Every subscription of this binary is the service's in the contract.
fn check(config: &RuntimeConfig, service: &str, table: &Table) -> Result<(), StartError> {
    let rebuild = "rebuild with `busbar build` and apply its Terraform module";
    if config.service(service).is_none() {
        let known: Vec<&str> = config.services.iter().map(|s| s.service.as_str()).collect();
        return Err(StartError::Config(format!(
            "the app `{}` has no service `{service}` (it has: {}): BUSBAR_SERVICE names this binary's service",
            config.app,
            known.join(", ")
        )));
    }
    for (topic, name) in table.by_key.keys() {
        match config.subscription(topic, name) {
            None => {
                return Err(StartError::Config(format!(
                    "this binary subscribes `{name}` to `{topic}`, which the app's runtime-config.json does not have: {rebuild}"
                )));
            }
            Some(s) if s.service != service => {
                return Err(StartError::Config(format!(
                    "this binary subscribes `{name}` to `{topic}`, which is service `{}`'s, not `{service}`'s: one binary is one service",
                    s.service
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, StartError> {
    std::fs::read_to_string(path)
        .map_err(|e| StartError::Config(format!("cannot read {}: {e}", path.display())))
}

async fn connect(
    backend: Backend,
    config: RuntimeConfig,
    scope: busbar_runtime::Scope,
    locations: Option<Where>,
    connection: Connection,
) -> Result<Arc<dyn Broker>, StartError> {
    let no_outputs = || {
        StartError::Config(
            "where are the resources? give the Terraform module's outputs (BUSBAR_OUTPUTS: `terraform output -json`)".into(),
        )
    };
    let outputs = |path: &Path| -> Result<String, StartError> { read(path) };
    match backend {
        #[cfg(feature = "aws")]
        Backend::Aws => {
            let locations = match locations.ok_or_else(no_outputs)? {
                Where::Aws(l) => l,
                Where::Outputs(path) => AwsLocations::from_terraform_outputs(&outputs(&path)?)
                    .map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?,
                Where::Gcp(_) => {
                    return Err(StartError::Config("GCP locations for the AWS backend".into()));
                }
            };
            let options = busbar_aws::AwsOptions {
                scope,
                endpoint_url: connection.endpoint,
                region: connection.aws_region,
                credentials: connection.aws_credentials,
                ..Default::default()
            };
            let broker = busbar_aws::AwsBroker::connect(config, &locations, options).await?;
            Ok(Arc::new(broker))
        }
        #[cfg(feature = "gcp")]
        Backend::Gcp => {
            let locations = match locations.ok_or_else(no_outputs)? {
                Where::Gcp(l) => l,
                Where::Outputs(path) => GcpLocations::from_terraform_outputs(&outputs(&path)?)
                    .map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?,
                Where::Aws(_) => {
                    return Err(StartError::Config("AWS locations for the GCP backend".into()));
                }
            };
            let options = busbar_gcp::GcpOptions {
                scope,
                project: connection.project,
                emulator_host: connection.endpoint,
            };
            let broker = busbar_gcp::GcpBroker::connect(config, &locations, options).await?;
            Ok(Arc::new(broker))
        }
        #[allow(unreachable_patterns, reason = "with both features, every backend is built in")]
        other => Err(StartError::NotBuiltIn(other.as_str())),
    }
}

/// This binary's subscriptions, delivered in-process from the cloud.
pub struct App {
    broker: Arc<dyn Broker>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    running: bool,
}

impl App {
    /// An app on `backend` for `service`, to configure before it starts.
    pub fn builder(backend: Backend, service: impl Into<String>) -> Builder {
        Builder {
            backend,
            service: service.into(),
            config: None,
            locations: None,
            connection: Connection::default(),
        }
    }

    /// An app configured from the environment (the table above); an error when
    /// `BUSBAR_BACKEND` does not name a cloud, or a variable is missing.
    pub fn from_env() -> Result<Builder, StartError> {
        let backend = match crate::env::backend().map_err(|e| StartError::Config(e.to_string()))? {
            Some("aws") => Backend::Aws,
            Some(_) => Backend::Gcp,
            None => {
                return Err(StartError::Config("BUSBAR_BACKEND is not `aws` or `gcp`".into()));
            }
        };
        let required = |name: &str, what: &str| {
            crate::env::var(name)
                .ok_or_else(|| StartError::Config(format!("{name} is not set: {what}")))
        };
        let service = required("BUSBAR_SERVICE", "the name of this binary's service")?;
        let config =
            required("BUSBAR_RUNTIME_CONFIG", "the runtime-config.json of `busbar build`")?;
        let outputs =
            required("BUSBAR_OUTPUTS", "the Terraform module's `terraform output -json`")?;
        let mut builder =
            App::builder(backend, service).runtime_config_file(config).outputs_file(outputs);
        if let Some(project) = crate::env::var("GOOGLE_CLOUD_PROJECT") {
            builder = builder.project(project);
        }
        Ok(builder)
    }

    /// The broker: its stats, dead letters, release.
    pub fn broker(&self) -> &dyn Broker {
        self.broker.as_ref()
    }

    /// The dead letters of `topic`'s subscription `subscription`. On GCP a service's own
    /// identity does not read them (the module lets it publish dead letters, not consume
    /// them): `busbar dlq list --backend gcp`, with an operator's credentials, does.
    pub async fn dead_letters<M>(
        &self,
        topic: &Topic<M>,
        subscription: &str,
    ) -> Result<Vec<DeadLetter>, BrokerError> {
        self.broker.dead_letters(topic.name(), subscription).await
    }

    /// Stops fetching, waits for the handler calls in flight to be settled, and closes the
    /// broker. Publishes go to the sidecar again.
    pub async fn shutdown(mut self) -> Result<(), BrokerError> {
        self.running = false;
        self.broker.shutdown();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        let closed = self.broker.close().await;
        crate::transport::uninstall_broker();
        closed
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
