//! Which broker backend `busbar serve` and `busbar dlq` run on (`--backend`), and where a cloud
//! backend finds the app's resources: the Terraform module's outputs (`--outputs`, from
//! `terraform output -json`), the `plan.json` that `busbar build` wrote beside a
//! `runtime-config.json`, or the app's own plan (its names with busbar.toml's prefix, or
//! `--prefix`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use busbar_aws::{AwsBroker, AwsLocations, AwsOptions, Scope};
use busbar_plan::{Plan, Resources, RuntimeConfig, Target};
use busbar_runtime::Broker;
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
    let plan = match source {
        Source::App(loaded) => {
            let mut settings = loaded.plan_settings();
            if let Some(prefix) = &args.prefix {
                settings.prefix = prefix.clone();
            }
            let (plan, diagnostics) =
                busbar_plan::plan(&loaded.analysis.model, &loaded.graph, Target::Aws, &settings);
            if let Some(e) = diagnostics.iter().find(|d| d.is_error()) {
                return Err(format!(
                    "the AWS plan has errors (see `busbar plan --target aws`): {}",
                    e.message
                ));
            }
            plan
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
            plans.into_iter().find(|p| p.target == Target::Aws).ok_or_else(|| {
                format!("{} has no AWS plan (build with the AWS target)", beside.display())
            })?
        }
    };
    match plan.resources {
        Resources::Aws(aws) => Ok(aws.locations()),
        _ => Err("the plan is not an AWS plan".into()),
    }
}

/// Connects the AWS backend, finding and checking the resources of `scope` before anything is
/// served; the error names what is missing or unreadable.
pub(crate) async fn connect_aws(
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
