//! The language-neutral half of busbar's analysis, and the seam frontends plug into.
//!
//! [`analyze`] discovers the files of an app once for every [`Frontend`], runs each frontend
//! (a plain function from its files to [`Facts`]: topics, subscriptions and accesses resolved
//! to topic names, and the code graph), merges the facts, assigns every file to a service, and
//! builds one [`AppModel`] with diagnostics. It never fails: every problem with the input is a
//! diagnostic, and the rest of the app is still analyzed. No parser type reaches this crate.

mod build;
pub mod cycles;
pub mod diagnostics;
mod discover;
mod facts;
pub mod paths;
mod reach;
mod services;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use busbar_config::Config;
use busbar_diagnostics::{Diagnostic, FilePath, SourceDb, Suppression};
use busbar_model::AppModel;

pub use crate::discover::{Found, SourcePath, relative};
pub use crate::facts::{
    AccessFact, ByteRange, CodeGraph, CodeNode, Facts, File, FilterEntry, Language, Runner,
    ServiceClaim, SubscriptionFact, TopicFact, TopicRefFact,
};
pub use crate::services::known_before_parsing;

/// A frontend: which files it reads, and the function from them to facts.
#[derive(Clone, Copy, Debug)]
pub struct Frontend {
    pub name: &'static str,
    /// Is a file of this name one of its sources (handed to it by discovery)?
    pub is_source: fn(&str) -> bool,
    /// The manifest file discovery reads for it (`package.json`, `Cargo.toml`), and what is
    /// lost when one cannot be read (for the message).
    pub manifest: Option<(&'static str, &'static str)>,
    /// Directories never walked, for every frontend (`node_modules`, a Cargo `target`).
    pub skip_dir: fn(&Path) -> bool,
    pub analyze: fn(&Input<'_>) -> Facts,
}

/// What a frontend is given.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The app root: absolute and lexically normalised.
    pub root: &'a Path,
    pub config: &'a Config,
    /// Its sources and manifests, as discovery found them.
    pub found: &'a Found,
    /// Worker threads of the pool the frontend runs in (rayon's current pool).
    pub threads: usize,
    /// See [`Options::checker`].
    pub checker: Option<&'a Path>,
    /// See [`Options::parse_all`].
    pub parse_all: bool,
}

/// How to run an analysis.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Worker threads; 0 means rayon's default (`RAYON_NUM_THREADS`, else one per core).
    pub threads: usize,
    /// The `busbar` executable. A frontend may analyze a file in a child process started from
    /// it first (the TypeScript frontend does so for files nested beyond a worker's stack,
    /// `busbar_ts::CHECK_SUBCOMMAND`), so that such a file is a diagnostic rather than a stack
    /// overflow. Without it such files are analyzed unchecked.
    pub checker: Option<PathBuf>,
    /// Parse every discovered file, without the frontends' pre-filters (which skip the files
    /// that cannot hold a fact). The output is the same either way, except for diagnostics
    /// only a parse finds (syntax errors) in files the pre-filter skips; the equivalence test
    /// and `--parse-all` use it.
    pub parse_all: bool,
}

/// Counts and phase times, for `--progress` and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub files: usize,
    /// Of [`Stats::files`], those parsed (the rest a pre-filter skipped).
    pub parsed: usize,
    pub bytes: usize,
    /// Wall time of each phase, in order.
    pub phases: Vec<(&'static str, Duration)>,
}

/// The wall time of consecutive phases, for [`Facts::phases`] and [`Stats::phases`].
#[derive(Debug)]
pub struct Laps {
    clock: Instant,
    pub phases: Vec<(&'static str, Duration)>,
}

impl Laps {
    pub fn start() -> Self {
        Laps { clock: Instant::now(), phases: Vec::new() }
    }

    /// Ends the phase `name` now; the next one starts.
    pub fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.phases.push((name, now - self.clock));
        self.clock = now;
    }
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

/// Stack size of the analysis worker threads (mapped lazily: only the pages used cost
/// memory). Frontends that parse by recursive descent check a file's nesting against it.
pub const WORKER_STACK: usize = 256 << 20;

/// Analyzes the app at `root` (a directory that exists; the caller checks) with `frontends`.
pub fn analyze(
    root: &Path,
    config: &Config,
    options: &Options,
    frontends: &[Frontend],
) -> Analysis {
    let root = std::path::absolute(root)
        .map(|r| paths::normalize(&r))
        .unwrap_or_else(|_| root.to_path_buf());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .stack_size(WORKER_STACK)
        .thread_name(|i| format!("busbar-{i}"))
        .build();
    let checker = options.checker.as_deref();
    match pool {
        Ok(pool) => pool.install(|| {
            analyze_in_pool(
                &root,
                config,
                pool.current_num_threads(),
                checker,
                options.parse_all,
                frontends,
            )
        }),
        // Threads could not be started: analyze on this thread.
        Err(_) => analyze_in_pool(&root, config, 1, checker, options.parse_all, frontends),
    }
}

fn root_name(root: &Path) -> String {
    root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "app".to_string())
}

/// The facts of every frontend, their indexes renumbered into one space.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    pub files: Vec<File>,
    pub claims: Vec<ServiceClaim>,
    pub topics: Vec<TopicFact>,
    pub topic_refs: Vec<TopicRefFact>,
    pub subscriptions: Vec<SubscriptionFact>,
    pub accesses: Vec<AccessFact>,
    pub code: CodeGraph,
    pub diagnostics: Vec<Diagnostic>,
}

impl Merged {
    fn add(&mut self, facts: Facts) {
        let file0 = self.files.len();
        let node0 = u32::try_from(self.code.nodes.len()).unwrap_or(u32::MAX);
        self.files.extend(facts.files);
        self.claims.extend(facts.services);
        self.topics.extend(facts.topics.into_iter().map(|mut t| {
            t.file += file0;
            t
        }));
        self.topic_refs.extend(facts.topic_refs.into_iter().map(|mut t| {
            t.file += file0;
            t
        }));
        self.subscriptions.extend(facts.subscriptions.into_iter().map(|mut s| {
            s.file += file0;
            s
        }));
        self.accesses.extend(facts.accesses.into_iter().map(|mut a| {
            a.file += file0;
            a.node = a.node.map(|n| n.saturating_add(node0));
            a
        }));
        self.code.nodes.extend(facts.code.nodes.into_iter().map(|mut n| {
            n.file += file0;
            for r in &mut n.runners {
                r.node = r.node.saturating_add(node0);
            }
            n
        }));
        self.diagnostics.extend(facts.diagnostics);
    }
}

fn analyze_in_pool(
    root: &Path,
    config: &Config,
    threads: usize,
    checker: Option<&Path>,
    parse_all: bool,
    frontends: &[Frontend],
) -> Analysis {
    let mut phases = Vec::new();
    let started = Instant::now();
    let discovered = discover::discover(root, threads, frontends);
    phases.push(("discover", started.elapsed()));
    let mut merged = Merged::default();
    for (frontend, found) in frontends.iter().zip(&discovered.found) {
        let input = Input { root, config, found, threads, checker, parse_all };
        let mut facts = (frontend.analyze)(&input);
        phases.append(&mut facts.phases);
        merged.add(facts);
    }

    let started = Instant::now();
    let paths: Vec<FilePath> = merged.files.iter().map(|f| f.source.path().clone()).collect();
    let services =
        services::assign(&merged.files, &paths, &merged.claims, config, &root_name(root));
    let (model, built) = build::build(&merged, &services, config.plan.runtime);
    phases.push(("services and model", started.elapsed()));

    let started = Instant::now();
    let mut diagnostics = discovered.diagnostics;
    diagnostics.append(&mut merged.diagnostics);
    diagnostics.extend(services.diagnostics);
    let mut suppressions = BTreeMap::new();
    let mut sources = SourceDb::new();
    let mut stats = Stats::default();
    for file in merged.files {
        stats.files += 1;
        stats.parsed += usize::from(file.parsed);
        stats.bytes += file.bytes;
        diagnostics.extend(file.diagnostics);
        if !file.suppressions.is_empty() {
            suppressions.insert(file.source.path().clone(), file.suppressions);
        }
        sources.insert(file.source);
    }
    diagnostics.extend(built);
    if let Some(source) = &config.source {
        sources.insert(source.clone());
    }
    phases.push(("collect", started.elapsed()));
    stats.phases = phases;
    Analysis { model, diagnostics, suppressions, sources, stats }
}

/// For benchmarks: the sources `analyze` would hand each frontend, as (relative, absolute)
/// paths.
pub fn discover_files(root: &Path, threads: usize, frontend: &Frontend) -> Vec<(String, PathBuf)> {
    discover::discover(root, threads, std::slice::from_ref(frontend))
        .found
        .into_iter()
        .flat_map(|f| f.files)
        .map(|f| (f.rel.to_string(), f.abs))
        .collect()
}
