//! What every command that reads an app does first: check the directory, read busbar.toml,
//! analyze, build the graph, and gather the diagnostics so far.

use std::path::{Path, PathBuf};

use busbar_config::Config;
use std::io::Write;

use busbar_diagnostics::{
    Counts, Diagnostic, HumanOptions, Settings, SourceDb, Triaged, apply_settings, codes,
    render_human, render_human_one,
};
use busbar_graph::PermissionGraph;

use crate::{AppArgs, EXIT_FAILED, EXIT_USAGE, Host, display_dir, use_color};

/// An analyzed app.
pub(crate) struct Loaded {
    /// The app directory as the user wrote it (for messages and the JSON `root`).
    pub shown_root: String,
    pub dir: PathBuf,
    pub config: Config,
    pub analysis: busbar_analysis::Analysis,
    pub graph: PermissionGraph,
    /// busbar.toml's, the analysis's and the graph's findings, before severities and
    /// suppressions are applied.
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and analyzes the app at `cwd/dir`. `Err` is an environment error (exit 2): a
/// directory that does not exist, an unreadable busbar.toml.
pub(crate) fn load(
    dir: &Path,
    cwd: &Path,
    command: &str,
    threads: Option<usize>,
    parse_all: bool,
    host: &Host,
) -> Result<Loaded, Box<Diagnostic>> {
    let shown_root = display_dir(dir);
    let abs = cwd.join(dir);
    if !abs.is_dir() {
        let what = if abs.exists() { "is not a directory" } else { "does not exist" };
        return Err(Box::new(
            Diagnostic::new(&codes::DIRECTORY_NOT_FOUND, format!("`{shown_root}` {what}"))
                .with_help(format!(
                    "pass the directory of the app: `busbar {command} path/to/app`"
                )),
        ));
    }
    let (config, config_diagnostics) = busbar_config::load(&abs).map_err(|e| {
        Box::new(
            Diagnostic::new(&codes::INVALID_CONFIG, e.to_string())
                .with_help("make busbar.toml readable, or remove it"),
        )
    })?;
    let options = busbar_analysis::Options {
        threads: threads.unwrap_or(0),
        checker: host.exe.clone(),
        parse_all,
    };
    let mut analysis = busbar_analysis::analyze(&abs, &config, &options, crate::FRONTENDS);
    let graph = PermissionGraph::build(&analysis.model);
    let mut diagnostics = config_diagnostics;
    diagnostics.append(&mut analysis.diagnostics);
    diagnostics.extend(busbar_graph::lints(&analysis.model, &graph));
    Ok(Loaded { shown_root, dir: abs, config, analysis, graph, diagnostics })
}

/// [`load`] for a command: an environment error is printed, and `Err` is the exit code.
pub(crate) fn load_or_report(
    app: &AppArgs,
    cwd: &Path,
    command: &str,
    host: &Host,
    err: &mut dyn Write,
) -> Result<Loaded, u8> {
    load(&app.dir, cwd, command, app.threads, app.parse_all, host).map_err(|d| {
        let options = HumanOptions { color: use_color(app.color, host) };
        let _ = err.write_all(render_human_one(&d, &SourceDb::new(), options).as_bytes());
        EXIT_USAGE
    })
}

/// [`load_or_report`], then the app's diagnostics reported: `Err` (1) when it has errors, for
/// commands that run on the app as it is and add no findings of their own.
pub(crate) fn load_checked(
    app: &AppArgs,
    cwd: &Path,
    command: &str,
    host: &Host,
    err: &mut dyn Write,
) -> Result<Loaded, u8> {
    let mut loaded = load_or_report(app, cwd, command, host, err)?;
    let diagnostics = std::mem::take(&mut loaded.diagnostics);
    loaded.report(diagnostics, app, host, err)?;
    Ok(loaded)
}

impl Loaded {
    /// The broker's data directory of `busbar dev` and `busbar dlq`: `--data` (relative to
    /// the working directory), else `DIR/.busbar/data`.
    pub(crate) fn data_dir(&self, given: Option<&Path>, cwd: &Path) -> PathBuf {
        match given {
            Some(d) => cwd.join(d),
            None => self.dir.join(".busbar").join("data"),
        }
    }

    /// Triages and prints `diagnostics` (the app's and whatever the command found). `Err(1)`
    /// when an error remains: the command must then write nothing.
    pub(crate) fn report(
        &self,
        diagnostics: Vec<Diagnostic>,
        app: &AppArgs,
        host: &Host,
        err: &mut dyn Write,
    ) -> Result<(), u8> {
        let options = HumanOptions { color: use_color(app.color, host) };
        let triaged = self.triage(diagnostics, app.strict);
        let _ =
            err.write_all(render_human(&triaged.shown, &self.analysis.sources, options).as_bytes());
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
        Ok(())
    }

    /// Applies busbar.toml severities, suppression comments and `--strict` to `diagnostics`.
    pub(crate) fn triage(&self, diagnostics: Vec<Diagnostic>, strict: bool) -> Triaged {
        let settings = Settings {
            overrides: self.config.severities.clone(),
            suppressions: self.analysis.suppressions.clone(),
            strict,
        };
        apply_settings(diagnostics, &settings)
    }

    /// The plan settings busbar.toml gives.
    pub(crate) fn plan_settings(&self) -> busbar_plan::Settings {
        busbar_plan::Settings {
            app: self.app_name(),
            prefix: self.config.plan.prefix.clone(),
            tags: self.config.plan.tags.clone(),
            dapr_component: self.config.plan.dapr_component.clone(),
        }
    }

    /// The runtime contract of the app, as `busbar build` writes it to `runtime-config.json`:
    /// what the sidecar and `busbar dlq` serve.
    pub(crate) fn runtime_config(&self) -> busbar_plan::RuntimeConfig {
        busbar_plan::runtime_config(&self.analysis.model, &self.graph, &self.plan_settings())
    }

    /// The app's name: busbar.toml's `[plan] app`, else the directory's name.
    pub(crate) fn app_name(&self) -> String {
        self.config.plan.app.clone().unwrap_or_else(|| {
            self.dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "app".to_string())
        })
    }
}
