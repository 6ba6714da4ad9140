//! `busbar plan`: the cloud plans of an app, as JSON (the Terraform and Dapr renderings build on
//! the same data), or one service's grants with the code behind each (`--explain`).

use std::io::Write;
use std::path::Path;

use busbar_diagnostics::{Diagnostic, codes};
use busbar_plan::{ChangeKind, Edge, Plan, Settings, Target};
use serde::Serialize;

use crate::{
    AppArgs, BuildArgs, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Host, PlanArgs, PlanFormat, TargetChoice,
    pipeline,
};

/// The JSON document `busbar plan --format json` prints and `--out` writes as `plan.json`.
#[derive(Serialize)]
struct PlanSet<'a> {
    version: u32,
    app: &'a str,
    plans: &'a [Plan],
}

/// An analyzed app and its plans, with no error among the diagnostics.
pub(crate) struct Planned {
    pub loaded: pipeline::Loaded,
    pub settings: Settings,
    pub plans: Vec<Plan>,
}

/// Analyzes and plans `targets`, printing the diagnostics. `Err` is the exit code: 2 for an
/// environment error, 1 when the app (or a plan) has errors; nothing may be written then.
pub(crate) fn plan_app(
    app: &AppArgs,
    cwd: &Path,
    command: &str,
    targets: &[Target],
    host: &Host,
    against: Option<&[Plan]>,
    err: &mut dyn Write,
) -> Result<Planned, u8> {
    let mut loaded = pipeline::load_or_report(app, cwd, command, host, err)?;
    let settings = loaded.plan_settings();
    let mut diagnostics = std::mem::take(&mut loaded.diagnostics);
    let mut plans = Vec::new();
    for &target in targets {
        let (plan, found) =
            busbar_plan::plan(&loaded.analysis.model, &loaded.graph, target, &settings);
        diagnostics.extend(found);
        if let Some(old) = against.and_then(|old| old.iter().find(|p| p.target == target)) {
            diagnostics.extend(changes(old, &plan, &loaded.analysis.model));
        }
        plans.push(plan);
    }
    loaded.report(diagnostics, app, host, err)?;
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
    let planned = match plan_app(&args.app, cwd, "build", &Target::ALL, host, None, err) {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    let Planned { loaded, settings, plans } = planned;
    let runtime = busbar_plan::runtime_config(&loaded.analysis.model, &loaded.graph, &settings);
    let encore = match &args.outputs {
        Some(path) => match encore_infra_config(&cwd.join(path), &runtime) {
            Ok(file) => Some(file),
            Err(e) => {
                let _ = writeln!(err, "error: --outputs {}: {e}", path.display());
                return EXIT_USAGE;
            }
        },
        None => None,
    };
    let asyncapi = crate::asyncapi::document(&loaded, &plans);
    let mut files = vec![
        busbar_emit::File { path: "plan.json".to_string(), text: plan_set_json(&settings, &plans) },
        busbar_emit::File { path: "runtime-config.json".to_string(), text: runtime.to_json() },
        busbar_emit::File {
            path: "asyncapi.yaml".to_string(),
            text: busbar_asyncapi::to_yaml(&asyncapi),
        },
    ];
    files.extend(encore);
    match rendered(&plans, err) {
        Ok(more) => files.extend(more),
        Err(code) => return code,
    }
    let model = &loaded.analysis.model;
    let diagram = busbar_diagram::Diagram::build(model, &loaded.graph, &Default::default());
    for format in busbar_diagram::Format::ALL {
        let text = diagram.as_ref().map_err(String::clone).and_then(|diagram| {
            busbar_diagram::render(format, &settings.app, diagram, model, &loaded.graph)
        });
        match text {
            Ok(text) => files
                .push(busbar_emit::File { path: format!("diagram.{}", format.extension()), text }),
            Err(e) => {
                let _ = writeln!(err, "error: internal: {e}");
                return EXIT_FAILED;
            }
        }
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

/// `encore/infra.config.json` from the Terraform module's outputs in `path`.
fn encore_infra_config(
    path: &Path,
    runtime: &busbar_plan::RuntimeConfig,
) -> Result<busbar_emit::File, String> {
    let bytes = busbar_config::files::read_regular(path).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_string())?;
    let file = busbar_plan::EncoreInfraConfig::from_terraform_outputs(&text, runtime)?;
    Ok(busbar_emit::File { path: "encore/infra.config.json".to_string(), text: file.to_json() })
}

pub(crate) fn run(
    args: &PlanArgs,
    cwd: &Path,
    host: &Host,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let targets: Vec<Target> = match args.target {
        TargetChoice::All => Target::ALL.to_vec(),
        TargetChoice::Aws => vec![Target::Aws],
        TargetChoice::Gcp => vec![Target::Gcp],
        TargetChoice::Dapr => vec![Target::Dapr],
    };
    let old = match &args.against {
        Some(path) => match read_plan_set(&cwd.join(path)) {
            Ok(old) => Some(old),
            Err(e) => {
                let _ = writeln!(err, "error: --against {}: {e}", path.display());
                return EXIT_USAGE;
            }
        },
        None => None,
    };
    let planned = match plan_app(&args.app, cwd, "plan", &targets, host, old.as_deref(), err) {
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

/// The plans of a `plan.json` written by `busbar plan` or `busbar build`.
pub(crate) fn read_plan_set(path: &Path) -> Result<Vec<Plan>, String> {
    #[derive(serde::Deserialize)]
    struct OldSet {
        version: u32,
        plans: Vec<Plan>,
    }
    let bytes = busbar_config::files::read_regular(path).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_string())?;
    let set: OldSet =
        serde_json::from_str(&text).map_err(|e| format!("not a busbar plan.json ({e})"))?;
    if set.version != busbar_plan::PLAN_VERSION {
        return Err(format!("plan version {} is not {}", set.version, busbar_plan::PLAN_VERSION));
    }
    Ok(set.plans)
}

/// What applying `new` over `old` loses, as warnings at the declarations that still exist.
fn changes(old: &Plan, new: &Plan, model: &busbar_model::AppModel) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for change in busbar_plan::compare(old, new) {
        let what = match &change.subscription {
            Some(sub) => format!("subscription `{sub}` of `{}`", change.topic),
            None => format!("topic `{}`", change.topic),
        };
        let topic = model.topics.iter().find(|t| t.name == change.topic);
        let declaration = match &change.subscription {
            Some(sub) => topic
                .and_then(|t| t.subscriptions.iter().find(|s| &s.name == sub))
                .map(|s| (s.name_span.clone(), "declared here")),
            None => topic.map(|t| (t.name_span.clone(), "declared here")),
        };
        // A subscription that is gone: point at its topic, if that is still there.
        let span = declaration
            .or_else(|| topic.map(|t| (t.name_span.clone(), "the topic it belonged to")));
        let (verb, help) = match change.kind {
            ChangeKind::Destroyed => {
                let added: Vec<&str> = topic
                    .map(|t| {
                        t.subscriptions
                            .iter()
                            .filter(|s| !old.has_subscription(&t.name, &s.name))
                            .map(|s| s.name.as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                let help = match (&change.subscription, added.as_slice()) {
                    (Some(gone), [new_name]) => format!(
                        "if `{gone}` was renamed to `{new_name}`: a rename is a new resource; drain `{gone}` before applying, or keep its name"
                    ),
                    _ => "drain it before applying, or keep it".to_string(),
                };
                ("destroys".to_string(), help)
            }
            ChangeKind::Replaced => {
                let reason = change.reason.clone().unwrap_or_default();
                let help = if reason.contains("fifo") {
                    "SNS and SQS cannot switch FIFO on in place: create the new topic beside the old one, move the publishers, drain the old queues, then remove them"
                } else if reason.contains("ordering") {
                    "Pub/Sub cannot switch ordering on in place: create a new subscription beside the old one, drain the old one, then remove it"
                } else {
                    "drain it before applying, or keep the old setting"
                };
                (format!("replaces (because {reason})"), help.to_string())
            }
        };
        let mut d = Diagnostic::new(
            &codes::PLAN_CHANGE_LOSES_MESSAGES,
            format!(
                "applying the {} plan {verb} `{}` ({what}), losing {}",
                new.target.as_str(),
                change.resource,
                change.loses
            ),
        )
        .with_help(help);
        if let Some((span, label)) = span {
            d = d.at_labelled(span, label);
        }
        out.push(d);
    }
    out
}

/// Writes every file under `dir`, creating directories as needed.
fn write_files(dir: &Path, files: &[busbar_emit::File]) -> Result<(), String> {
    for file in files {
        let path = dir.join(&file.path);
        crate::files::write_atomic(&path, file.text.as_bytes())
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
