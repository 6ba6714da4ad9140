//! The Rust frontend of busbar, on syn: [`FRONTEND`] for `busbar_analysis`.
//!
//! A Rust service is a binary package of the app's Cargo workspace that depends on `busbar`
//! (busbar's Rust SDK), named after the package unless a busbar.toml mapping says otherwise;
//! library packages are shared code. From each crate root (`src/lib.rs`, `src/main.rs`,
//! `src/bin/*`, `[lib]`/`[[bin]]` paths) the module tree is followed as rustc does (`mod x;`,
//! `#[path]`, inline modules), so `tests/`, `benches/`, `examples/` and `target/` are never
//! read, and `#[cfg(test)]` items are skipped. Files the pre-filter keeps (`prefilter`: the
//! others are placeholders until a round needs them) are parsed in parallel, one tree level at
//! a time; names are resolved across crates through the Cargo dependency graph (manifests are
//! read with `toml`, cargo is never run). syn and proc-macro2 types never leave this crate.

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

use std::path::Path;

use rayon::prelude::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use busbar_analysis::paths::{dir_of, join};
use busbar_analysis::{Facts, File, Frontend, Input, Language, Laps, ServiceClaim};
use busbar_diagnostics::{Diagnostic, FilePath};
use busbar_model::ServiceOrigin;

use crate::cargo::Package;
use crate::facts::RsFile;
use crate::resolve::{Crate, ModNode, NodeId, Resolver};

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

/// A module file to read for a crate.
#[derive(Clone)]
struct Pending {
    krate: usize,
    parent: Option<NodeId>,
    name: String,
    rel: String,
    /// Its `mod x;` declarations live in its own directory (a crate root, a `mod.rs`, a
    /// `#[path]` file).
    owns_dir: bool,
    depth: usize,
}

/// The most nested file modules followed (a `#[path]` loop ends here).
const MAX_MODULE_DEPTH: usize = 64;

#[derive(Default)]
struct Walk {
    files: Vec<RsFile>,
    /// Each file's path relative to the root.
    rels: Vec<String>,
    index: HashMap<String, usize>,
    nodes: Vec<ModNode>,
    /// For each file, whether its `mod` declarations own its directory.
    owns_dir: Vec<bool>,
    diagnostics: Vec<Diagnostic>,
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
        triggers: prefilter::Words::new(trigger_words(&packages)),
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

/// What the walk gives syn's full parse (see `prefilter`).
struct Load {
    parse_all: bool,
    /// `None` only if the automaton could not be built: then every file is parsed.
    triggers: Option<prefilter::Words>,
    /// Files a round found it must parse.
    force: HashSet<String>,
}

impl Load {
    fn parse(&self, rel: &str, bytes: &[u8]) -> bool {
        self.parse_all
            || self.force.contains(rel)
            || prefilter::declares_file_mod(bytes)
            || self.triggers.as_ref().is_none_or(|w| w.any_in(bytes))
    }
}

/// The trigger words: the pre-filter's, `busbar`, and the names manifests give busbar's crate.
fn trigger_words(packages: &[Package]) -> Vec<String> {
    let mut words: Vec<String> = prefilter::TRIGGERS.iter().map(|w| w.to_string()).collect();
    words.push("busbar".to_string());
    for package in packages {
        for (code_name, dep) in &package.deps {
            if dep == "busbar" && !words.contains(code_name) {
                words.push(code_name.clone());
            }
        }
    }
    words
}

impl Walk {
    /// The relative path of file `f`.
    fn rel_of(&self, f: usize) -> String {
        self.rels[f].clone()
    }

    /// The files by relative path, for the next round.
    fn into_store(self) -> HashMap<String, RsFile> {
        self.rels.into_iter().zip(self.files).collect()
    }

    /// Marks for parsing the skipped files that name an interesting item not looked for yet
    /// (`prefilter::interesting`); whether there were any.
    fn name_closure(
        &self,
        root: &Path,
        names: &HashSet<String>,
        searched: &mut HashSet<String>,
        force: &mut HashSet<String>,
    ) -> bool {
        let mut new: Vec<&String> = names.iter().filter(|n| !searched.contains(*n)).collect();
        if new.is_empty() {
            return false;
        }
        new.sort();
        let Some(words) = prefilter::Words::new(&new) else { return false };
        searched.extend(new.into_iter().cloned());
        let named: Vec<String> = (0..self.files.len())
            .into_par_iter()
            .filter(|&f| {
                self.files[f].skipped
                    && std::fs::read(root.join(&self.rels[f])).is_ok_and(|b| words.any_in(&b))
            })
            .map(|f| self.rels[f].clone())
            .collect();
        let any = !named.is_empty();
        force.extend(named);
        any
    }

    /// Follows the module trees from the crate roots; the root module of each crate.
    fn run(
        &mut self,
        root: &Path,
        roots: Vec<Pending>,
        load: &Load,
        store: &mut HashMap<String, RsFile>,
    ) -> Vec<Option<NodeId>> {
        let mut crate_roots = vec![None; roots.len()];
        let mut seen: HashSet<(usize, String)> = HashSet::default();
        let mut pending = roots;
        while !pending.is_empty() {
            pending.retain(|p| seen.insert((p.krate, p.rel.clone())));
            let mut new: Vec<String> = pending
                .iter()
                .map(|p| p.rel.clone())
                .filter(|r| !self.index.contains_key(r))
                .collect();
            new.sort();
            new.dedup();
            // A file of an earlier round is kept, unless it was skipped and must be parsed now.
            let jobs: Vec<(&String, Option<RsFile>)> = new
                .iter()
                .map(|rel| {
                    let kept =
                        store.remove(rel).filter(|f| !(f.skipped && load.force.contains(rel)));
                    (rel, kept)
                })
                .collect();
            let parsed: Vec<RsFile> = jobs
                .into_par_iter()
                .map(|(rel, kept)| {
                    kept.unwrap_or_else(|| {
                        let path = FilePath::from(rel.clone());
                        parse::analyze_file(path, &root.join(rel), |b| load.parse(rel, b))
                    })
                })
                .collect();
            for (rel, file) in new.into_iter().zip(parsed) {
                self.index.insert(rel.clone(), self.files.len());
                self.rels.push(rel.clone());
                self.files.push(file);
                self.owns_dir.push(false);
            }
            let mut next = Vec::new();
            for p in pending {
                let Some(&f) = self.index.get(&p.rel) else { continue };
                self.owns_dir[f] |= p.owns_dir;
                let top = self.add_modules(&p, f);
                if p.parent.is_none() {
                    crate_roots[p.krate] = Some(top);
                }
                if p.depth < MAX_MODULE_DEPTH {
                    self.children(root, &p, f, top, &mut next);
                }
            }
            pending = next;
        }
        crate_roots
    }

    /// The nodes of a file's modules (its own, then inline ones); the file's own node.
    fn add_modules(&mut self, p: &Pending, f: usize) -> NodeId {
        let top = self.nodes.len();
        let count = self.files[f].modules.len();
        for local in 0..count {
            let (parent, name) = match self.files[f].modules[local].parent {
                None => (p.parent, p.name.clone()),
                Some(up) => (Some(top + up), self.files[f].modules[local].name.clone()),
            };
            let id = self.nodes.len();
            self.nodes.push(ModNode {
                krate: p.krate,
                file: f,
                local,
                parent,
                children: HashMap::default(),
            });
            if let Some(parent) = parent
                && !name.is_empty()
            {
                self.nodes[parent].children.entry(name).or_insert(id);
            }
        }
        top
    }

    /// Queues the files of the `mod x;` declarations of a file's modules.
    fn children(
        &mut self,
        root: &Path,
        p: &Pending,
        f: usize,
        top: NodeId,
        next: &mut Vec<Pending>,
    ) {
        let rel = p.rel.clone();
        let base = cargo::children_dir(&rel, p.owns_dir);
        for local in 0..self.files[f].modules.len() {
            // The inline modules enclosing this one, outermost first.
            let mut inline = Vec::new();
            let mut at = local;
            while let Some(up) = self.files[f].modules[at].parent {
                inline.push(self.files[f].modules[at].name.clone());
                at = up;
            }
            inline.reverse();
            let dir = inline.iter().fold(base.clone(), |d, n| join(&d, n));
            let path_dir = inline.iter().fold(dir_of(&rel).to_string(), |d, n| join(&d, n));
            for decl in self.files[f].modules[local].file_mods.clone() {
                let mut candidates: Vec<(String, bool)> =
                    decl.paths.iter().map(|path| (join(&path_dir, path), true)).collect();
                if decl.paths.is_empty() {
                    candidates.push((join(&dir, &format!("{}.rs", decl.name)), false));
                    candidates.push((join(&dir, &format!("{}/mod.rs", decl.name)), true));
                }
                let found = candidates.iter().find(|(c, _)| root.join(c).is_file());
                match found {
                    Some((child, owns_dir)) => next.push(Pending {
                        krate: p.krate,
                        parent: Some(top + local),
                        name: decl.name.clone(),
                        rel: child.clone(),
                        owns_dir: *owns_dir,
                        depth: p.depth + 1,
                    }),
                    None => {
                        let file = &self.files[f];
                        let shown = candidates
                            .iter()
                            .map(|(c, _)| format!("`{c}`"))
                            .collect::<Vec<_>>()
                            .join(" or ");
                        let why = format!("no file {shown}");
                        let d = diagnostics::unresolved_path(
                            &format!("mod {}", decl.name),
                            file.span_of(decl.span),
                            &why,
                        );
                        self.diagnostics.push(d);
                    }
                }
            }
        }
    }
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
