//! `busbar-e2e aws|gcp --endpoint URL APP_DIR`: plans an app and creates its resources on a
//! real endpoint, from the same plan data the Terraform templates render, then sends messages
//! through them: `aws` against the moto server (`aws.rs`), `gcp` against the Pub/Sub emulator
//! (`gcp.rs`). `cargo xtask e2e` starts and stops both servers.
//!
//! Every resource name carries a per-run prefix, so runs against the same server never meet.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an end-to-end run reports what it checked"
)]

use busbar_e2e::{aws, gcp};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use busbar_model::AppModel;
use busbar_plan::{Plan, Settings, Target};

fn usage() -> ! {
    eprintln!("usage: busbar-e2e aws|gcp --endpoint URL APP_DIR (the example app: examples/shop)");
    std::process::exit(2);
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = match args.first().map(String::as_str) {
        Some("aws") => Target::Aws,
        Some("gcp") => Target::Gcp,
        _ => usage(),
    };
    let mut endpoint = None;
    let mut app = None;
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--endpoint" => endpoint = rest.next().cloned(),
            other if !other.starts_with('-') => app = Some(PathBuf::from(other)),
            _ => usage(),
        }
    }
    let (Some(endpoint), Some(app)) = (endpoint, app) else { usage() };
    let (model, plan) = plan(&app, target)?;
    match plan.resources {
        busbar_plan::Resources::Aws(aws) => aws::run(&endpoint, &model, &aws).await,
        busbar_plan::Resources::Gcp(gcp) => gcp::run(&endpoint, &model, &gcp, &plan.runtime),
        busbar_plan::Resources::Dapr(_) => usage(),
    }
}

/// The app's model and plan for `target`, with a unique name prefix for this run.
fn plan(app: &Path, target: Target) -> Result<(AppModel, Plan)> {
    let (config, config_diagnostics) = busbar_config::load(app).context("reading busbar.toml")?;
    ensure!(config_diagnostics.is_empty(), "busbar.toml has problems: {config_diagnostics:?}");
    let analysis = busbar_analysis::analyze(
        app,
        &config,
        &busbar_analysis::Options::default(),
        // The example app has a Rust service.
        &[busbar_ts::FRONTEND, busbar_rs::FRONTEND],
    );
    let errors: Vec<_> = analysis.diagnostics.iter().filter(|d| d.is_error()).collect();
    ensure!(errors.is_empty(), "the app has errors: {errors:?}");
    let graph = busbar_graph::PermissionGraph::build(&analysis.model);
    let run = std::process::id();
    let settings = Settings {
        app: "e2e".to_string(),
        prefix: format!("e2e{run}-{}", config.plan.prefix),
        tags: BTreeMap::new(),
        dapr_component: None,
    };
    let (plan, diagnostics) = busbar_plan::plan(&analysis.model, &graph, target, &settings);
    ensure!(diagnostics.iter().all(|d| !d.is_error()), "the plan has errors: {diagnostics:?}");
    Ok((analysis.model, plan))
}
