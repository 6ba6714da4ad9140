//! Name resolution across the module trees of the workspace's crates: `mod` trees, `use` with
//! renames and globs, `pub use` re-exports, `crate::`/`self::`/`super::` paths, and paths into
//! other crates of the workspace through the Cargo dependency graph. Visibility is not checked
//! (rustc does); a path that leads outside the workspace is [`Res::Extern`].

use std::cell::{Cell, RefCell};

use busbar_analysis::cycles::{Begin, CycleMemo};
use rustc_hash::FxHashMap as HashMap;

use crate::facts::{ModFacts, RsFile, TypeItem, ValueItem};

pub(crate) type NodeId = usize;

/// A module of a crate: a file's own module or an inline one.
#[derive(Debug, Clone)]
pub(crate) struct ModNode {
    pub krate: usize,
    pub file: usize,
    /// Index into the file's modules.
    pub local: usize,
    pub parent: Option<NodeId>,
    pub children: HashMap<String, NodeId>,
}

/// A crate: a library or binary target of a package.
#[derive(Debug, Clone)]
pub(crate) struct Crate {
    pub root: NodeId,
    /// Crate names in code (dependencies, and a binary's own library) to their root module.
    pub externs: HashMap<String, Option<NodeId>>,
    /// The crate name of each dependency outside the workspace whose code name differs
    /// (`bb = { package = "busbar" }`): a path through it is `Res::Extern` of the crate.
    pub renamed: HashMap<String, String>,
}

/// What a path denotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Res {
    Module(NodeId),
    Value(NodeId, String, ValueItem),
    Type(NodeId, String),
    /// A crate outside the workspace (or std), and the rest of the path.
    Extern(String, Vec<String>),
    /// Nothing: a local variable, a prelude name, a typo rustc refuses.
    None,
}

/// A lookup's answer by (module, name, prefers a value), with the skipped files it read.
type Memo = CycleMemo<(NodeId, String, bool), (Res, Box<[usize]>)>;

pub(crate) struct Resolver<'a> {
    pub files: &'a [RsFile],
    pub nodes: &'a [ModNode],
    pub crates: &'a [Crate],
    /// Each lookup's answer, with the skipped files it read (directly or through other
    /// lookups), so that a later question answered from here notes them too.
    memo: RefCell<Memo>,
    /// The skipped files read since the current question began.
    reads: RefCell<Vec<usize>>,
    /// Whether the current question's answer can change the output (see [`Resolver::noting`]).
    noting: Cell<bool>,
    /// The skipped files a noted question read (see [`Resolver::unread`]).
    unread: RefCell<Vec<usize>>,
}

const MAX_DEPTH: usize = 32;

/// Names every crate can use without a dependency.
const BUILTIN_CRATES: &[&str] = &["std", "core", "alloc", "proc_macro"];

impl<'a> Resolver<'a> {
    pub fn new(files: &'a [RsFile], nodes: &'a [ModNode], crates: &'a [Crate]) -> Self {
        Resolver {
            files,
            nodes,
            crates,
            memo: RefCell::default(),
            reads: RefCell::new(Vec::new()),
            noting: Cell::new(true),
            unread: RefCell::new(Vec::new()),
        }
    }

    /// Whether the skipped files the next questions read are noted in [`Resolver::unread`]
    /// (on by default): the link turns it off for a reference whose answer cannot change the
    /// output whatever a skipped file holds (`prefilter::interesting`).
    pub fn noting(&self, on: bool) {
        self.noting.set(on);
    }

    /// Runs one question, noting the skipped files it read if noting is on.
    fn question<T>(&self, ask: impl FnOnce() -> T) -> T {
        let before = self.reads.borrow().len();
        let answer = ask();
        let mut reads = self.reads.borrow_mut();
        if self.noting.get() {
            self.unread.borrow_mut().extend_from_slice(&reads[before..]);
        }
        reads.truncate(before);
        answer
    }

    /// The files the pre-filter skipped that a lookup looked into, in order, without repeats:
    /// what they hold could change an answer, so the caller parses them and links again.
    pub fn unread(&self) -> Vec<usize> {
        let mut files = self.unread.borrow().clone();
        files.sort_unstable();
        files.dedup();
        files
    }

    /// The module facts of `node`, noting a read of a skipped file.
    fn module_of(&self, node: NodeId) -> &'a ModFacts {
        let n = &self.nodes[node];
        if self.files[n.file].skipped {
            self.reads.borrow_mut().push(n.file);
        }
        &self.files[n.file].modules[n.local]
    }

    /// Resolves `path` used in module `node`; also returns how many segments it consumed (a
    /// path into a type's associated items stops at the type).
    pub fn resolve<S: AsRef<str>>(&self, node: NodeId, path: &[S], absolute: bool) -> (Res, usize) {
        self.question(|| self.resolve_depth(node, path, absolute, true, 0))
    }

    /// `values`: the last segment looks for a value first (else a module: a glob's path).
    fn resolve_depth<S: AsRef<str>>(
        &self,
        node: NodeId,
        path: &[S],
        absolute: bool,
        values: bool,
        depth: usize,
    ) -> (Res, usize) {
        if path.is_empty() || depth > MAX_DEPTH {
            return (Res::None, 0);
        }
        let krate = self.nodes[node].krate;
        let (mut res, mut used) = if absolute {
            (self.extern_crate(krate, path[0].as_ref()), 1)
        } else {
            match path[0].as_ref() {
                "crate" => (Res::Module(self.crates[krate].root), 1),
                "self" => (Res::Module(node), 1),
                "super" => (self.nodes[node].parent.map_or(Res::None, Res::Module), 1),
                "Self" => (Res::None, 1),
                first => (self.lookup(node, first, values && path.len() == 1, depth), 1),
            }
        };
        while used < path.len() {
            let seg = path[used].as_ref();
            res = match res {
                Res::Module(m) => match seg {
                    "super" => self.nodes[m].parent.map_or(Res::None, Res::Module),
                    "self" => Res::Module(m),
                    _ => self.lookup_local(m, seg, values && used + 1 == path.len(), depth),
                },
                Res::Extern(c, mut rest) => {
                    rest.push(seg.to_string());
                    Res::Extern(c, rest)
                }
                other => return (other, used),
            };
            if res == Res::None {
                return (Res::None, used);
            }
            used += 1;
        }
        (res, used)
    }

    /// A name in a module's scope: its items, its `use`s, its globs, then crates.
    fn lookup(&self, node: NodeId, name: &str, last: bool, depth: usize) -> Res {
        let found = self.lookup_local(node, name, last, depth);
        if found != Res::None {
            return found;
        }
        self.extern_crate(self.nodes[node].krate, name)
    }

    fn extern_crate(&self, krate: usize, name: &str) -> Res {
        match self.crates[krate].externs.get(name) {
            Some(Some(root)) => Res::Module(*root),
            Some(None) => {
                let renamed = self.crates[krate].renamed.get(name);
                Res::Extern(renamed.map_or(name, String::as_str).to_string(), Vec::new())
            }
            None if BUILTIN_CRATES.contains(&name) => Res::Extern(name.to_string(), Vec::new()),
            None => Res::None,
        }
    }

    /// A name declared or imported in a module (no crates): `last` prefers values.
    fn lookup_local(&self, node: NodeId, name: &str, last: bool, depth: usize) -> Res {
        let key = (node, name.to_string(), last);
        let begun = self.memo.borrow_mut().begin(&key);
        let started = match begun {
            Begin::Known((r, read)) => {
                self.reads.borrow_mut().extend_from_slice(&read);
                return r;
            }
            // A cycle of `use`s (globs re-exporting each other): through it, nothing the lookup
            // in progress does not find itself (`busbar_analysis::cycles`).
            Begin::Cycle => return Res::None,
            Begin::Start(started) => started,
        };
        let before = self.reads.borrow().len();
        let res = self.lookup_uncached(node, name, last, depth);
        let mut read = self.reads.borrow()[before..].to_vec();
        read.sort_unstable();
        read.dedup();
        self.memo.borrow_mut().end(key, started, (res.clone(), read.into_boxed_slice()));
        res
    }

    fn lookup_uncached(&self, node: NodeId, name: &str, last: bool, depth: usize) -> Res {
        if depth > MAX_DEPTH {
            return Res::None;
        }
        let n = &self.nodes[node];
        let m = self.module_of(node);
        let value = m.values.get(name).map(|v| Res::Value(node, name.to_string(), *v));
        let module = n.children.get(name).map(|c| Res::Module(*c));
        let ty = m.types.get(name).map(|_| Res::Type(node, name.to_string()));
        let own =
            if last { value.or(ty).or(module.clone()) } else { module.clone().or(ty).or(value) };
        // A module and a glob-imported function may share a name (`mod send; pub use
        // send::*;`): a path's last segment looks for a value first.
        let only_module = last && matches!(own, Some(Res::Module(_)));
        if let Some(r) = own
            && !only_module
        {
            return r;
        }
        let imported = self.imported(node, name, last, depth);
        if only_module && !matches!(imported, Res::Value(..)) {
            return module.unwrap_or(Res::None);
        }
        imported
    }

    /// A name a module's `use`s and globs bring in.
    fn imported(&self, node: NodeId, name: &str, last: bool, depth: usize) -> Res {
        let m = self.module_of(node);
        if let Some(binding) = m.uses.get(name) {
            let (res, used) =
                self.resolve_depth(node, &binding.path, binding.absolute, last, depth + 1);
            if used == binding.path.len() {
                return res;
            }
        }
        let mut extern_glob = None;
        for glob in &m.globs {
            match self.resolve_depth(node, &glob.path, glob.absolute, false, depth + 1) {
                (Res::Module(g), used) if used == glob.path.len() && g != node => {
                    let r = self.lookup_local(g, name, last, depth + 1);
                    if r != Res::None {
                        return r;
                    }
                }
                (Res::Extern(c, mut rest), _) => {
                    rest.push(name.to_string());
                    extern_glob.get_or_insert(Res::Extern(c, rest));
                }
                // `use Enum::*`: variants are values of no interest.
                _ => {}
            }
        }
        extern_glob.unwrap_or(Res::None)
    }

    /// The type item a resolution names.
    pub fn type_item(&self, node: NodeId, name: &str) -> Option<&'a TypeItem> {
        self.question(|| self.module_of(node).types.get(name))
    }
}
