//! The Rust frontend of busbar, on syn: [`FRONTEND`] for `busbar_analysis`.
//!
//! A Rust service is a binary package of the app's Cargo workspace that depends on `busbar`
//! (busbar's Rust SDK), named after the package unless a busbar.toml mapping says otherwise;
//! library packages are shared code. From each crate root (`src/lib.rs`, `src/main.rs`,
//! `src/bin/*`, `[lib]`/`[[bin]]` paths) the module tree is followed as rustc does (`mod x;`,
//! `#[path]`, inline modules), so `tests/`, `benches/`, `examples/` and `target/` are never
//! read, and `#[cfg(test)]` items are skipped. Files the pre-filter keeps (`prefilter`: the
//! others are placeholders until a round needs them) are parsed in parallel (`walk`); names
//! are resolved across crates through the Cargo dependency graph (manifests are read with
//! `toml`, cargo is never run). syn and proc-macro2 types never leave this crate.

mod cargo;
mod diagnostics;
mod extract;
mod facts;
mod link;
mod parse;
mod prefilter;
mod resolve;
mod schema;
mod settings;
mod types;
mod walk;

use std::path::Path;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use busbar_analysis::{Facts, File, Frontend, Input, Language, Laps, ServiceClaim};
use busbar_diagnostics::FilePath;
use busbar_model::ServiceOrigin;

use crate::cargo::Package;
use crate::resolve::{Crate, NodeId, Resolver};
use crate::walk::{Load, Pending, Walk};

pub use crate::parse::parse_only;

/// The Rust frontend (busbar's Rust SDK, the `busbar` crate).
pub const FRONTEND: Frontend = Frontend {
    name: "rust",
    is_source: no_sources,
    manifest: Some(("Cargo.toml", "its package was not analyzed")),
    skip_dir,
    analyze,
};

/// Rust files are found through module trees, not by discovery.
fn no_sources(_: &str) -> bool {
    false
}

/// A Cargo package's `target` directory is never walked.
fn skip_dir(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "target")
        && path.parent().is_some_and(|p| p.join("Cargo.toml").is_file())
}

fn analyze(input: &Input<'_>) -> Facts {
    let mut laps = Laps::start();
    let mut facts = Facts::default();
    let packages = cargo::read(input.root, &input.found.manifests, &mut facts.diagnostics);
    let packages = related_to_busbar(packages);
    if packages.is_empty() {
        return facts;
    }
    let (roots, crate_package) = crate_roots(&packages);
    let mut load = Load {
        parse_all: input.parse_all,
        triggers: prefilter::Words::new(walk::trigger_words(&packages)),
        force: HashSet::default(),
    };
    let mut store = HashMap::default();
    let mut searched = HashSet::default();
    // The names of the code graph's backward closure the last link was given.
    let mut names: HashSet<String> = HashSet::default();
    // Rounds: walk the module trees (parsing what the pre-filter keeps) and link; then parse
    // the skipped files the link's lookups read and those that name an item of the backward
    // closure from the link's publishes and topics, and link again, until a round adds no
    // file and no name (one round with --parse-all).
    let (mut walk, linked) = loop {
        let mut walk = Walk::default();
        walk::prefetch(input.root, &roots, &load, &mut store);
        let crate_roots = walk.run(input.root, roots.clone(), &load, &mut store);
        laps.lap("rust: read, parse, extract");
        let crates = externs(&packages, &crate_package, &crate_roots);
        let resolver = Resolver::new(&walk.files, &walk.nodes, &crates);
        let linked = link::link(&resolver, (!load.parse_all).then_some(&names));
        let unread = resolver.unread();
        laps.lap("rust: resolve and link");
        if load.parse_all {
            break (walk, linked);
        }
        let grown = prefilter::interesting(&walk.files, &linked.seeds);
        let named = walk.name_closure(input.root, &grown, &mut searched, &mut load.force);
        if unread.is_empty() && !named && grown == names {
            break (walk, linked);
        }
        load.force.extend(unread.into_iter().map(|f| walk.rel_of(f)));
        names = grown;
        store = walk.into_store();
    };

    facts.diagnostics.append(&mut walk.diagnostics);
    facts.diagnostics.extend(linked.diagnostics);
    facts.topics = linked.topics;
    facts.topic_refs = linked.topic_refs;
    facts.subscriptions = linked.subscriptions;
    facts.accesses = linked.accesses;
    facts.code = linked.code;
    for file in walk.files {
        facts.files.push(File {
            language: Language::Rust,
            bytes: file.bytes,
            diagnostics: file.diagnostics,
            suppressions: file.suppressions,
            implies_service: false,
            parsed: !file.skipped,
            source: file.source,
        });
    }
    claims(input, &packages, &mut facts);
    laps.lap("rust: collect facts");
    facts.phases = laps.phases;
    facts
}

/// The environment variable that makes every package count, related to busbar or not: for
/// the benchmark on real crates (`cargo xtask bench analyze-rust`), which use no busbar.
pub const EVERY_PACKAGE_ENV: &str = "BUSBAR_RS_EVERY_PACKAGE";

/// The packages busbar reads: those that depend on `busbar`, and the workspace packages they
/// depend on (transitively). A Rust crate of the repository that has nothing to do with
/// busbar (a Tauri shell, a tool) is not analyzed, so its code can raise no finding.
fn related_to_busbar(packages: Vec<Package>) -> Vec<Package> {
    if std::env::var_os(EVERY_PACKAGE_ENV).is_some() {
        return packages;
    }
    let mut keep: Vec<bool> = packages.iter().map(|p| p.depends_on("busbar")).collect();
    let mut queue: Vec<usize> = (0..packages.len()).filter(|&i| keep[i]).collect();
    while let Some(i) = queue.pop() {
        for (_, dep) in &packages[i].deps {
            for (j, other) in packages.iter().enumerate() {
                if !keep[j] && other.name == *dep {
                    keep[j] = true;
                    queue.push(j);
                }
            }
        }
    }
    packages.into_iter().zip(keep).filter(|(_, k)| *k).map(|(p, _)| p).collect()
}

/// Each package's crates: the library first, then the binaries. Returns the pending roots and
/// each crate's package.
fn crate_roots(packages: &[Package]) -> (Vec<Pending>, Vec<usize>) {
    let mut roots = Vec::new();
    let mut crate_package = Vec::new();
    for (p, package) in packages.iter().enumerate() {
        let targets =
            package.lib.iter().map(|(rel, _)| rel.clone()).chain(package.bins.iter().cloned());
        for rel in targets {
            let krate = crate_package.len();
            crate_package.push(p);
            roots.push(Pending {
                krate,
                parent: None,
                name: String::new(),
                rel,
                owns_dir: true,
                depth: 0,
            });
        }
    }
    (roots, crate_package)
}

/// Each crate's root module and the crates its code can name.
fn externs(packages: &[Package], crate_package: &[usize], roots: &[Option<NodeId>]) -> Vec<Crate> {
    // The root module of each package's library.
    let mut lib_root: HashMap<&str, Option<NodeId>> = HashMap::default();
    for (krate, &p) in crate_package.iter().enumerate() {
        if packages[p].lib.is_some() && !lib_root.contains_key(packages[p].name.as_str()) {
            lib_root.insert(packages[p].name.as_str(), roots[krate]);
        }
    }
    crate_package
        .iter()
        .enumerate()
        .map(|(krate, &p)| {
            let package = &packages[p];
            let mut externs: HashMap<String, Option<NodeId>> = HashMap::default();
            let mut renamed: HashMap<String, String> = HashMap::default();
            for (code_name, dep) in &package.deps {
                let root = lib_root.get(dep.as_str()).copied().flatten();
                externs.insert(code_name.clone(), root);
                let crate_name = dep.replace('-', "_");
                if root.is_none() && crate_name != *code_name {
                    renamed.insert(code_name.clone(), crate_name);
                }
            }
            // A binary names its own package's library.
            if let Some((_, lib_name)) = &package.lib
                && let Some(root) = lib_root.get(package.name.as_str()).copied().flatten()
                && roots[krate] != Some(root)
            {
                externs.insert(lib_name.clone(), Some(root));
            }
            Crate { root: roots[krate].unwrap_or(0), externs, renamed }
        })
        .collect()
}

/// Services: binary packages that depend on busbar, unless a busbar.toml mapping claims them.
fn claims(input: &Input<'_>, packages: &[Package], facts: &mut Facts) {
    let mapped = busbar_analysis::known_before_parsing(
        &packages
            .iter()
            .flat_map(|p| p.bins.first())
            .map(|b| FilePath::from(b.clone()))
            .collect::<Vec<_>>(),
        std::iter::empty(),
        input.config,
    );
    let mut mapped = mapped.into_iter();
    for package in packages {
        let Some(_) = package.bins.first() else { continue };
        let by_config = mapped.next().unwrap_or(false);
        if !package.depends_on("busbar") || by_config {
            continue;
        }
        facts.services.push(ServiceClaim {
            dir: package.dir.clone(),
            name: Some(package.name.clone()),
            origin: ServiceOrigin::CargoPackage,
            span: package.name_span.clone(),
        });
        facts.files.push(File {
            language: Language::Rust,
            bytes: package.manifest.text().len(),
            diagnostics: Vec::new(),
            suppressions: Vec::new(),
            implies_service: false,
            parsed: true,
            source: package.manifest.clone(),
        });
    }
}
