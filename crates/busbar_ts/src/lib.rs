//! The TypeScript frontend of busbar, on swc.
//!
//! [`analyze`] discovers the source files of an app, parses and extracts them in parallel,
//! resolves imports across files (relative paths, tsconfig `paths`, barrels, workspace
//! packages), assigns files to services, and builds the [`AppModel`] with diagnostics. It
//! never fails: every problem with the input is a diagnostic, and the rest of the app is still
//! analyzed. swc types never leave this crate.

mod build;
mod diagnostics;
mod discover;
mod extract;
mod facts;
mod link;
mod parse;
mod resolve;
mod schema;
mod services;
mod stack;

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use std::path::{Path, PathBuf};

use busbar_config::Config;
use busbar_diagnostics::{Diagnostic, FilePath, SourceDb, Suppression};
use busbar_model::AppModel;
use rayon::prelude::*;

use crate::facts::{FileContext, FileFacts};
use crate::resolve::{Resolver, Target};

pub use crate::stack::{CHECK_SUBCOMMAND, check_file_main};

/// How to run an analysis.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Worker threads; 0 means rayon's default (`RAYON_NUM_THREADS`, else one per core).
    pub threads: usize,
    /// The `busbar` executable (it implements [`CHECK_SUBCOMMAND`]). A file whose nesting
    /// bound is more than a worker's stack is first analyzed in a child process started from
    /// it, so that a file nested too deeply is a diagnostic (BB0012) rather than a stack
    /// overflow. Without it such files are analyzed unchecked.
    pub checker: Option<PathBuf>,
}

/// Counts and phase times, for `--progress` and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub files: usize,
    pub bytes: usize,
    /// Wall time of each phase, in order.
    pub phases: Vec<(&'static str, std::time::Duration)>,
}

/// The result of analyzing an app.
#[derive(Debug, Default)]
pub struct Analysis {
    pub model: AppModel,
    /// Every finding, before `busbar.toml` severities and suppression comments are applied.
    pub diagnostics: Vec<Diagnostic>,
    pub suppressions: BTreeMap<FilePath, Vec<Suppression>>,
    /// The analyzed files' texts, for rendering diagnostics.
    pub sources: SourceDb,
    pub stats: Stats,
}

/// Analyzes the app at `root` (a directory that exists; the caller checks).
pub fn analyze(root: &Path, config: &Config, options: &Options) -> Analysis {
    let root = std::path::absolute(root)
        .map(|r| resolve::normalize_path(&r))
        .unwrap_or_else(|_| root.to_path_buf());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .stack_size(stack::WORKER_STACK)
        .thread_name(|i| format!("busbar-{i}"))
        .build();
    match pool {
        Ok(pool) => pool.install(|| {
            analyze_in_pool(&root, config, pool.current_num_threads(), options.checker.as_deref())
        }),
        // Threads could not be started: analyze on this thread.
        Err(_) => analyze_in_pool(&root, config, 1, options.checker.as_deref()),
    }
}

fn root_name(root: &Path) -> String {
    root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "app".to_string())
}

fn analyze_in_pool(
    root: &Path,
    config: &Config,
    threads: usize,
    checker: Option<&Path>,
) -> Analysis {
    let mut phases = Vec::new();
    let mut clock = std::time::Instant::now();
    let mut lap = |name: &'static str| {
        let now = std::time::Instant::now();
        phases.push((name, now - clock));
        clock = now;
    };
    let discovered = discover::discover(root, threads);
    lap("discover");
    let mut paths: Vec<FilePath> = discovered.files.iter().map(|f| f.rel.clone()).collect();
    let in_service = services::known_before_parsing(&paths, config);
    let mut files: Vec<FileFacts> = discovered
        .files
        .par_iter()
        .zip(in_service.par_iter())
        .map(|(f, &in_service)| {
            let ctx =
                FileContext { declares_service: services::is_service_file(&f.rel), in_service };
            parse::analyze_file(f.rel.clone(), &f.abs, ctx, checker)
        })
        .collect();
    lap("read, parse, extract");
    let mut resolver =
        Resolver::new(root.to_path_buf(), paths.iter().cloned(), &discovered.packages);
    let mut targets: Vec<Vec<Target>> = resolve_all(&resolver, &files, &paths);

    // Files outside the root, reached through tsconfig `paths` or `../` imports.
    let mut index: HashMap<FilePath, usize> =
        paths.iter().enumerate().map(|(i, p)| (p.clone(), i)).collect();
    loop {
        let mut new: Vec<FilePath> = targets
            .iter()
            .flatten()
            .filter_map(|t| match t {
                Target::File(p) if !index.contains_key(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        if new.is_empty() {
            break;
        }
        new.sort();
        new.dedup();
        let start = files.len();
        let abs: Vec<(FilePath, PathBuf)> =
            new.iter().map(|p| (p.clone(), resolver.abs(p))).collect();
        let parsed: Vec<FileFacts> = abs
            .par_iter()
            .map(|(rel, abs)| {
                parse::analyze_file(rel.clone(), abs, FileContext::default(), checker)
            })
            .collect();
        for p in new {
            index.insert(p.clone(), paths.len());
            resolver.add_known(p.clone());
            paths.push(p);
        }
        files.extend(parsed);
        targets.extend(resolve_all(&resolver, &files[start..], &paths[start..]));
    }

    lap("resolve imports");
    let services = services::assign(&files, &paths, config, &root_name(root));
    let (model, built) = build::build(&files, &paths, &targets, &services, config.plan.runtime);
    lap("services and model");

    let mut diagnostics = discovered.diagnostics;
    diagnostics.extend(resolver.skipped());
    let mut suppressions = BTreeMap::new();
    let mut sources = SourceDb::new();
    let mut stats = Stats::default();
    let drop_started = std::time::Instant::now();
    diagnostics.extend(services.diagnostics);
    for facts in files {
        stats.files += 1;
        stats.bytes += facts.bytes;
        diagnostics.extend(facts.diagnostics);
        if !facts.suppressions.is_empty() {
            suppressions.insert(facts.source.path().clone(), facts.suppressions);
        }
        sources.insert(facts.source);
    }
    diagnostics.extend(built);
    if let Some(source) = &config.source {
        sources.insert(source.clone());
    }
    phases.push(("collect", drop_started.elapsed()));
    stats.phases = phases;
    Analysis { model, diagnostics, suppressions, sources, stats }
}

fn resolve_all(resolver: &Resolver, files: &[FileFacts], paths: &[FilePath]) -> Vec<Vec<Target>> {
    files
        .par_iter()
        .zip(paths.par_iter())
        .map(|(facts, path)| {
            facts.module_refs.iter().map(|m| resolver.resolve(path, &m.specifier)).collect()
        })
        .collect()
}

/// For benchmarks: the files `analyze` would read, as (relative, absolute) paths.
pub fn discover_files(root: &Path, threads: usize) -> Vec<(String, PathBuf)> {
    discover::discover(root, threads)
        .files
        .into_iter()
        .map(|f| (f.rel.to_string(), f.abs))
        .collect()
}

/// For benchmarks: parses a file with exactly the settings `analyze` uses, nothing more.
pub fn parse_only(abs: &Path, rel: &str) -> usize {
    parse::parse_only(abs, rel)
}
