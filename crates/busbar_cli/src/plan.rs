//! `busbar plan`: the cloud plans of an app, as JSON (the Terraform and Dapr renderings build on
//! the same data), or one service's grants with the code behind each (`--explain`).

use std::io::Write;
use std::path::Path;

use busbar_diagnostics::{Counts, HumanOptions, SourceDb, render_human, render_human_one};
use busbar_plan::{Edge, Plan, Settings, Target};
use serde::Serialize;

use crate::{
    EXIT_FAILED, EXIT_OK, EXIT_USAGE, Host, PlanArgs, PlanFormat, TargetChoice, pipeline, use_color,
};

/// The JSON document `busbar plan --format json` prints and `--out` writes as `plan.json`.
#[derive(Serialize)]
struct PlanSet<'a> {
    version: u32,
    app: &'a str,
    plans: &'a [Plan],
}

pub(crate) fn run(
    args: &PlanArgs,
    cwd: &Path,
    host: &Host,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let color = use_color(args.color, host);
    let options = HumanOptions { color };
    let mut loaded = match pipeline::load(&args.dir, cwd, "plan", args.threads, host) {
        Ok(loaded) => loaded,
        Err(d) => {
            let _ = err.write_all(render_human_one(&d, &SourceDb::new(), options).as_bytes());
            return EXIT_USAGE;
        }
    };
    let settings = Settings {
        app: loaded.app_name(),
        prefix: loaded.config.plan.prefix.clone(),
        tags: loaded.config.plan.tags.clone(),
    };
    let targets: Vec<Target> = match args.target {
        TargetChoice::All => Target::ALL.to_vec(),
        TargetChoice::Aws => vec![Target::Aws],
        TargetChoice::Gcp => vec![Target::Gcp],
        TargetChoice::Dapr => vec![Target::Dapr],
    };
    let mut diagnostics = std::mem::take(&mut loaded.diagnostics);
    let mut plans = Vec::new();
    for target in targets {
        let (plan, found) =
            busbar_plan::plan(&loaded.analysis.model, &loaded.graph, target, &settings);
        diagnostics.extend(found);
        plans.push(plan);
    }
    let triaged = loaded.triage(diagnostics, args.strict);
    let _ =
        err.write_all(render_human(&triaged.shown, &loaded.analysis.sources, options).as_bytes());
    let counts = Counts::of(&triaged.shown);
    if counts.errors > 0 {
        let _ = writeln!(
            err,
            "busbar: {} in the app; no plan written",
            if counts.errors == 1 {
                "1 error".to_string()
            } else {
                format!("{} errors", counts.errors)
            }
        );
        return EXIT_FAILED;
    }
    if let Some(service) = &args.explain {
        return explain(&plans, service, &loaded, out, err);
    }
    let mut json = serde_json::to_string_pretty(&PlanSet {
        version: busbar_plan::PLAN_VERSION,
        app: &settings.app,
        plans: &plans,
    })
    .unwrap_or_default();
    json.push('\n');
    let mut files = vec![busbar_emit::File { path: "plan.json".to_string(), text: json }];
    if args.format == PlanFormat::Terraform {
        for plan in &plans {
            match busbar_emit::terraform(plan) {
                Ok(rendered) => files.extend(rendered),
                Err(e) => {
                    let _ = writeln!(err, "error: internal: {e}");
                    return EXIT_FAILED;
                }
            }
        }
    }
    match &args.out {
        Some(dir) => match write_files(&cwd.join(dir), &files) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                EXIT_USAGE
            }
        },
        None if args.format == PlanFormat::Terraform => {
            let _ =
                writeln!(err, "error: `--format terraform` writes a directory: add `--out DIR`");
            EXIT_USAGE
        }
        None => {
            let _ = out.write_all(files[0].text.as_bytes());
            EXIT_OK
        }
    }
}

/// Writes every file under `dir`, creating directories as needed.
fn write_files(dir: &Path, files: &[busbar_emit::File]) -> Result<(), String> {
    for file in files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, file.text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Every grant of `service` in each plan, with the code that needs it.
fn explain(
    plans: &[Plan],
    service: &str,
    loaded: &pipeline::Loaded,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    if loaded.graph.permissions(service).is_none() {
        let known: Vec<&str> = loaded.graph.services().collect();
        let _ = writeln!(
            err,
            "error: there is no service `{service}` in the app; its services are: {}",
            known.join(", ")
        );
        return EXIT_USAGE;
    }
    let mut text = String::new();
    for plan in plans {
        let grants = plan.grants_of(service);
        if plan.target == Target::Dapr {
            continue;
        }
        text.push_str(&format!("{} ({} grants)\n", plan.target.as_str(), grants.len()));
        for g in grants {
            let edge = match &g.edge {
                Edge::Publish { topic } => format!("publishes to `{topic}`"),
                Edge::Consume { topic, subscription } => {
                    format!("consumes subscription `{subscription}` of `{topic}`")
                }
            };
            text.push_str(&format!(
                "  {} on {} ({})\n    because it {edge}:\n",
                g.actions.join(", "),
                g.resource_name,
                g.resource
            ));
            for origin in &g.because {
                text.push_str(&format!("      {origin}\n"));
            }
        }
    }
    if plans.iter().all(|p| p.grants_of(service).is_empty()) {
        text.push_str(&format!("service `{service}` neither publishes nor consumes anything\n"));
    }
    let _ = out.write_all(text.as_bytes());
    EXIT_OK
}
