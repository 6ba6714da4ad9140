//! Following the module trees: from the crate roots along `mod x;` declarations, one tree
//! level at a time, each file read and given syn's full parse when the pre-filter keeps it
//! (`Load`), a placeholder otherwise. `prefetch` reads and parses the trees' files first, in
//! parallel without waiting for levels; `Walk::run` then assembles the trees in their
//! deterministic order from what it read (and reads anything it missed itself).

use std::path::Path;
use std::sync::Mutex;

use rayon::prelude::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use busbar_analysis::paths::{dir_of, join};
use busbar_diagnostics::{Diagnostic, FilePath};

use crate::cargo::{self, Package};
use crate::facts::{ModDecl, RsFile};
use crate::resolve::{ModNode, NodeId};
use crate::{diagnostics, parse, prefilter};

/// A module file to read for a crate.
#[derive(Clone)]
pub(crate) struct Pending {
    pub(crate) krate: usize,
    pub(crate) parent: Option<NodeId>,
    pub(crate) name: String,
    pub(crate) rel: String,
    /// Its `mod x;` declarations live in its own directory (a crate root, a `mod.rs`, a
    /// `#[path]` file).
    pub(crate) owns_dir: bool,
    pub(crate) depth: usize,
}

/// The most nested file modules followed (a `#[path]` loop ends here).
pub(crate) const MAX_MODULE_DEPTH: usize = 64;

#[derive(Default)]
pub(crate) struct Walk {
    pub(crate) files: Vec<RsFile>,
    /// Each file's path relative to the root.
    pub(crate) rels: Vec<String>,
    pub(crate) index: HashMap<String, usize>,
    pub(crate) nodes: Vec<ModNode>,
    /// For each file, whether its `mod` declarations own its directory.
    pub(crate) owns_dir: Vec<bool>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

/// What the walk gives syn's full parse (see `prefilter`).
pub(crate) struct Load {
    pub(crate) parse_all: bool,
    /// `None` only if the automaton could not be built: then every file is parsed.
    pub(crate) triggers: Option<prefilter::Words>,
    /// Files a round found it must parse.
    pub(crate) force: HashSet<String>,
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
pub(crate) fn trigger_words(packages: &[Package]) -> Vec<String> {
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
    pub(crate) fn rel_of(&self, f: usize) -> String {
        self.rels[f].clone()
    }

    /// The files by relative path, for the next round.
    pub(crate) fn into_store(self) -> HashMap<String, RsFile> {
        self.rels.into_iter().zip(self.files).collect()
    }

    /// Marks for parsing the skipped files that name an interesting item not looked for yet
    /// (`prefilter::interesting`); whether there were any.
    pub(crate) fn name_closure(
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
    pub(crate) fn run(
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
        for m in mod_files(&p.rel, p.owns_dir, &self.files[f]) {
            match m.candidates.iter().find(|(c, _)| root.join(c).is_file()) {
                Some((child, owns_dir)) => next.push(Pending {
                    krate: p.krate,
                    parent: Some(top + m.local),
                    name: m.decl.name.clone(),
                    rel: child.clone(),
                    owns_dir: *owns_dir,
                    depth: p.depth + 1,
                }),
                None => {
                    let shown = m
                        .candidates
                        .iter()
                        .map(|(c, _)| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(" or ");
                    let why = format!("no file {shown}");
                    let d = diagnostics::unresolved_path(
                        &format!("mod {}", m.decl.name),
                        self.files[f].span_of(m.decl.span),
                        &why,
                    );
                    self.diagnostics.push(d);
                }
            }
        }
    }
}

/// A `mod x;` of a file: in which of its modules, and the files it may be (in order; `true`:
/// the file's own `mod` declarations live in its directory).
struct ModFile {
    local: usize,
    decl: ModDecl,
    candidates: Vec<(String, bool)>,
}

/// The `mod x;` declarations of the file at `rel`, with their candidate files.
fn mod_files(rel: &str, owns_dir: bool, file: &RsFile) -> Vec<ModFile> {
    let base = cargo::children_dir(rel, owns_dir);
    let mut out = Vec::new();
    for local in 0..file.modules.len() {
        // The inline modules enclosing this one, outermost first.
        let mut inline = Vec::new();
        let mut at = local;
        while let Some(up) = file.modules[at].parent {
            inline.push(file.modules[at].name.clone());
            at = up;
        }
        inline.reverse();
        let dir = inline.iter().fold(base.clone(), |d, n| join(&d, n));
        let path_dir = inline.iter().fold(dir_of(rel).to_string(), |d, n| join(&d, n));
        for decl in &file.modules[local].file_mods {
            let mut candidates: Vec<(String, bool)> =
                decl.paths.iter().map(|path| (join(&path_dir, path), true)).collect();
            if decl.paths.is_empty() {
                candidates.push((join(&dir, &format!("{}.rs", decl.name)), false));
                candidates.push((join(&dir, &format!("{}/mod.rs", decl.name)), true));
            }
            out.push(ModFile { local, decl: decl.clone(), candidates });
        }
    }
    out
}

/// What `prefetch`'s tasks share.
struct Prefetch<'a> {
    root: &'a Path,
    load: &'a Load,
    claimed: Mutex<HashSet<String>>,
    read: Mutex<Vec<(String, RsFile)>>,
}

/// Reads (and parses what the pre-filter keeps) the files of the module trees from `roots`,
/// each file's children as soon as it is parsed, in parallel, into `store`. Files already in
/// `store` are not read again. Only an optimization: `Walk::run` assembles the trees from
/// `store` in its own order and reads what this missed (a file reached twice with different
/// directories is followed from the first only).
pub(crate) fn prefetch(
    root: &Path,
    roots: &[Pending],
    load: &Load,
    store: &mut HashMap<String, RsFile>,
) {
    let claimed: HashSet<String> = store.keys().cloned().collect();
    let ctx = Prefetch { root, load, claimed: Mutex::new(claimed), read: Mutex::new(Vec::new()) };
    rayon::scope(|s| {
        for p in roots {
            let ctx = &ctx;
            let (rel, owns_dir) = (p.rel.clone(), p.owns_dir);
            s.spawn(move |s| visit(s, ctx, rel, owns_dir, 0));
        }
    });
    let read = ctx.read.into_inner().unwrap_or_else(|e| e.into_inner());
    store.extend(read);
}

fn visit<'s>(
    s: &rayon::Scope<'s>,
    ctx: &'s Prefetch<'s>,
    rel: String,
    owns_dir: bool,
    depth: usize,
) {
    let fresh = ctx.claimed.lock().unwrap_or_else(|e| e.into_inner()).insert(rel.clone());
    if !fresh {
        return;
    }
    let path = FilePath::from(rel.clone());
    let file = parse::analyze_file(path, &ctx.root.join(&rel), |b| ctx.load.parse(&rel, b));
    if depth < MAX_MODULE_DEPTH {
        for m in mod_files(&rel, owns_dir, &file) {
            if let Some((child, owns)) =
                m.candidates.into_iter().find(|(c, _)| ctx.root.join(c).is_file())
            {
                s.spawn(move |s| visit(s, ctx, child, owns, depth + 1));
            }
        }
    }
    ctx.read.lock().unwrap_or_else(|e| e.into_inner()).push((rel, file));
}
