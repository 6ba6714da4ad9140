//! `busbar plan`: the cloud plans of an app, as JSON (the Terraform and Dapr renderings build on
//! the same data), or one service's grants with the code behind each (`--explain`).

use std::io::Write;
use std::path::Path;

use busbar_diagnostics::{Counts, HumanOptions, SourceDb, render_human, render_human_one};
use busbar_plan::{Edge, Plan, Settings, Target};
use serde::Serialize;

use crate::{
    BuildArgs, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Host, PlanArgs, PlanFormat, TargetChoice,
    pipeline, use_color,
};

/// The JSON document `busbar plan --format json` prints and `--out` writes as `plan.json`.
#[derive(Serialize)]
struct PlanSet<'a> {
    version: u32,
    app: &'a str,
    plans: &'a [Plan],
}

/// An analyzed app and its plans, with no error among the diagnostics.
struct Planned {
    loaded: pipeline::Loaded,
    settings: Settings,
    plans: Vec<Plan>,
}

/// Analyzes and plans `targets`, printing the diagnostics. `Err` is the exit code: 2 for an
/// environment error, 1 when the app (or a plan) has errors; nothing may be written then.
#[allow(clippy::too_many_arguments, reason = "the shared flags of plan and build")]
fn plan_app(
    dir: &Path,
    cwd: &Path,
    command: &str,
    targets: &[Target],
    strict: bool,
    threads: Option<usize>,
    host: &Host,
    options: HumanOptions,
    err: &mut dyn Write,
) -> Result<Planned, u8> {
    let mut loaded = match pipeline::load(dir, cwd, command, threads, host) {
        Ok(loaded) => loaded,
        Err(d) => {
            let _ = err.write_all(render_human_one(&d, &SourceDb::new(), options).as_bytes());
            return Err(EXIT_USAGE);
        }
    };
    let settings = Settings {
        app: loaded.app_name(),
        prefix: loaded.config.plan.prefix.clone(),
        tags: loaded.config.plan.tags.clone(),
    };
    let mut diagnostics = std::mem::take(&mut loaded.diagnostics);
    let mut plans = Vec::new();
    for &target in targets {
        let (plan, found) =
            busbar_plan::plan(&loaded.analysis.model, &loaded.graph, target, &settings);
        diagnostics.extend(found);
        plans.push(plan);
    }
    let triaged = loaded.triage(diagnostics, strict);
    let _ =
        err.write_all(render_human(&triaged.shown, &loaded.analysis.sources, options).as_bytes());
    let counts = Counts::of(&triaged.shown);
    if counts.errors > 0 {
        let errors = if counts.errors == 1 {
            "1 error".to_string()
        } else {
            format!("{} errors", counts.errors)
        };
        let _ = writeln!(err, "busbar: {errors} in the app; nothing written");
        return Err(EXIT_FAILED);
    }
    Ok(Planned { loaded, settings, plans })
}

fn plan_set_json(settings: &Settings, plans: &[Plan]) -> String {
    let mut json = serde_json::to_string_pretty(&PlanSet {
        version: busbar_plan::PLAN_VERSION,
        app: &settings.app,
        plans,
    })
    .unwrap_or_default();
    json.push('\n');
    json
}

/// The rendered files of every plan.
fn rendered(plans: &[Plan], err: &mut dyn Write) -> Result<Vec<busbar_emit::File>, u8> {
    let mut files = Vec::new();
    for plan in plans {
        match busbar_emit::render(plan) {
            Ok(rendered) => files.extend(rendered),
            Err(e) => {
                let _ = writeln!(err, "error: internal: {e}");
                return Err(EXIT_FAILED);
            }
        }
    }
    Ok(files)
}

/// `busbar build`: every output of the app into one directory.
pub(crate) fn build(
    args: &BuildArgs,
    cwd: &Path,
    host: &Host,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let options = HumanOptions { color: use_color(args.color, host) };
    let planned = match plan_app(
        &args.dir,
        cwd,
        "build",
        &Target::ALL,
        args.strict,
        args.threads,
        host,
        options,
        err,
    ) {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    let Planned { loaded, settings, plans } = planned;
    let runtime = busbar_plan::runtime_config(&loaded.analysis.model, &loaded.graph, &settings);
    let mut files = vec![
        busbar_emit::File { path: "plan.json".to_string(), text: plan_set_json(&settings, &plans) },
        busbar_emit::File { path: "runtime-config.json".to_string(), text: runtime.to_json() },
    ];
    match rendered(&plans, err) {
        Ok(more) => files.extend(more),
        Err(code) => return code,
    }
    match write_files(&cwd.join(&args.out), &files) {
        Ok(()) => {
            let shown = crate::display_dir(&args.out);
            let _ = writeln!(out, "wrote {} files to {shown}", files.len());
            EXIT_OK
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            EXIT_USAGE
        }
    }
}

pub(crate) fn run(
    args: &PlanArgs,
    cwd: &Path,
    host: &Host,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let options = HumanOptions { color: use_color(args.color, host) };
    let targets: Vec<Target> = match args.target {
        TargetChoice::All => Target::ALL.to_vec(),
        TargetChoice::Aws => vec![Target::Aws],
        TargetChoice::Gcp => vec![Target::Gcp],
        TargetChoice::Dapr => vec![Target::Dapr],
    };
    let planned = match plan_app(
        &args.dir,
        cwd,
        "plan",
        &targets,
        args.strict,
        args.threads,
        host,
        options,
        err,
    ) {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    let Planned { loaded, settings, plans } = planned;
    if let Some(service) = &args.explain {
        return explain(&plans, service, &loaded, out, err);
    }
    let mut files = vec![busbar_emit::File {
        path: "plan.json".to_string(),
        text: plan_set_json(&settings, &plans),
    }];
    if args.format == PlanFormat::Terraform {
        match rendered(&plans, err) {
            Ok(more) => files.extend(more),
            Err(code) => return code,
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
