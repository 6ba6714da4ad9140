//! Which broker backend `busbar serve` and `busbar dlq` run on (`--backend`), and where a cloud
//! backend finds the app's resources: the Terraform module's outputs (`--outputs`, from
//! `terraform output -json`), the `plan.json` that `busbar build` wrote beside a
//! `runtime-config.json`, or the app's own plan (its names with busbar.toml's prefix, or
//! `--prefix`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use busbar_aws::{AwsBroker, AwsLocations, AwsOptions};
use busbar_gcp::{GcpBroker, GcpLocations, GcpOptions};
use busbar_plan::{Plan, Resources, RuntimeConfig, Target};
use busbar_runtime::{Broker, Scope};
use clap::{Args, ValueEnum};

use crate::pipeline::Loaded;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendChoice {
    /// The embedded broker (SQLite) on the data directory.
    Embedded,
    /// SNS and SQS, as busbar's AWS Terraform module creates them; credentials, region and
    /// endpoint from the standard AWS environment (`AWS_PROFILE`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, roles).
    Aws,
    /// Pub/Sub, as busbar's GCP Terraform module creates it; credentials from Application
    /// Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, the metadata server), the
    /// emulator from `PUBSUB_EMULATOR_HOST`.
    Gcp,
}

impl BackendChoice {
    /// The backend in the startup line.
    pub(crate) fn describe(self, data: &Path) -> String {
        match self {
            BackendChoice::Embedded => format!("the embedded broker in {}", data.display()),
            BackendChoice::Aws => "AWS (SNS and SQS)".to_string(),
            BackendChoice::Gcp => "GCP (Pub/Sub)".to_string(),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub(crate) struct BackendArgs {
    /// Which broker delivers.
    #[arg(long, value_enum, default_value_t = BackendChoice::Embedded)]
    pub backend: BackendChoice,
    /// Where the cloud resources are: the output of `terraform output -json` on busbar's
    /// module (default: the resource names of the plan).
    #[arg(long, value_name = "FILE")]
    pub outputs: Option<PathBuf>,
    /// The resource name prefix the module was applied with (default: busbar.toml's [plan]
    /// prefix); only when the app is analyzed, not with --config.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// The GCP project of the resources (default: the one in --outputs, else the
    /// credentials'); with --backend gcp.
    #[arg(long, value_name = "PROJECT", env = "GOOGLE_CLOUD_PROJECT")]
    pub project: Option<String>,
}

/// Where the runtime configuration came from.
pub(crate) enum Source<'a> {
    /// The app, analyzed now.
    App(&'a Loaded),
    /// A `runtime-config.json` written by `busbar build` (its path).
    Built(&'a Path),
}

/// Where each topic and queue is on AWS.
pub(crate) fn aws_locations(
    args: &BackendArgs,
    source: &Source<'_>,
) -> Result<AwsLocations, String> {
    if let Some(outputs) = &args.outputs {
        let text = read(outputs)?;
        return AwsLocations::from_terraform_outputs(&text)
            .map_err(|e| format!("{}: {e}", outputs.display()));
    }
    match planned(args, source, Target::Aws)?.resources {
        Resources::Aws(aws) => Ok(aws.locations()),
        _ => Err("the plan is not an AWS plan".into()),
    }
}

/// Where each topic and subscription is on GCP.
pub(crate) fn gcp_locations(
    args: &BackendArgs,
    source: &Source<'_>,
) -> Result<GcpLocations, String> {
    if let Some(outputs) = &args.outputs {
        let text = read(outputs)?;
        return GcpLocations::from_terraform_outputs(&text)
            .map_err(|e| format!("{}: {e}", outputs.display()));
    }
    match planned(args, source, Target::Gcp)?.resources {
        Resources::Gcp(gcp) => Ok(gcp.locations()),
        _ => Err("the plan is not a GCP plan".into()),
    }
}

/// The plan of `target` for the source: planned now for an app (with `--prefix`), or the
/// `plan.json` that `busbar build` wrote beside a `runtime-config.json`.
fn planned(args: &BackendArgs, source: &Source<'_>, target: Target) -> Result<Plan, String> {
    let name = match target {
        Target::Aws => "AWS",
        Target::Gcp => "GCP",
        Target::Dapr => "Dapr",
    };
    match source {
        Source::App(loaded) => {
            let mut settings = loaded.plan_settings();
            if let Some(prefix) = &args.prefix {
                settings.prefix = prefix.clone();
            }
            let (plan, diagnostics) =
                busbar_plan::plan(&loaded.analysis.model, &loaded.graph, target, &settings);
            if let Some(e) = diagnostics.iter().find(|d| d.is_error()) {
                return Err(format!(
                    "the {name} plan has errors (see `busbar plan --target {}`): {}",
                    target.as_str(),
                    e.message
                ));
            }
            Ok(plan)
        }
        Source::Built(config) => {
            if args.prefix.is_some() {
                return Err("--prefix applies when the app is analyzed; a runtime-config.json has the names `busbar build` planned (or give --outputs)".into());
            }
            let beside = config.with_file_name("plan.json");
            let plans = read_plans(&beside).map_err(|e| {
                format!(
                    "{}: {e}\n  = help: give the Terraform module's outputs with --outputs FILE (`terraform output -json`)",
                    beside.display()
                )
            })?;
            plans.into_iter().find(|p| p.target == target).ok_or_else(|| {
                format!("{} has no {name} plan (build with the {name} target)", beside.display())
            })
        }
    }
}

/// Connects the chosen cloud backend (`None` for the embedded one, which its caller opens),
/// finding and checking the resources of `scope` before anything is served; the error names
/// what is missing or unreadable.
pub(crate) async fn connect(
    args: &BackendArgs,
    source: &Source<'_>,
    config: RuntimeConfig,
    scope: Scope,
) -> Result<Option<Arc<dyn Broker>>, String> {
    match args.backend {
        BackendChoice::Embedded => Ok(None),
        BackendChoice::Aws => {
            let locations = aws_locations(args, source)?;
            connect_aws(config, &locations, scope).await.map(Some)
        }
        BackendChoice::Gcp => {
            let locations = gcp_locations(args, source)?;
            let options = GcpOptions { scope, project: args.project.clone(), emulator_host: None };
            let broker =
                GcpBroker::connect(config, &locations, options).await.map_err(|e| e.to_string())?;
            Ok(Some(Arc::new(broker)))
        }
    }
}

/// Connects the AWS backend, finding and checking the resources of `scope` before anything is
/// served; the error names what is missing or unreadable.
async fn connect_aws(
    config: RuntimeConfig,
    locations: &AwsLocations,
    scope: Scope,
) -> Result<Arc<dyn Broker>, String> {
    let options = AwsOptions { scope, ..AwsOptions::default() };
    let broker = AwsBroker::connect(config, locations, options).await.map_err(|e| e.to_string())?;
    Ok(Arc::new(broker))
}

/// A `runtime-config.json`.
pub(crate) fn read_config(path: &Path) -> Result<RuntimeConfig, String> {
    RuntimeConfig::from_json(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

fn read(path: &Path) -> Result<String, String> {
    let bytes = busbar_config::files::read_regular(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8", path.display()))
}

/// The plans of a `plan.json`.
fn read_plans(path: &Path) -> Result<Vec<Plan>, String> {
    crate::plan::read_plan_set(path)
}
