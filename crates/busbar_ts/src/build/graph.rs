//! The code graph of the TypeScript files (`busbar_analysis::CodeGraph`): which code runs
//! which, for attributing publishes in shared files to the services that run them.
//!
//! A node is the code a module runs when it loads, a module-level declaration (`function f`,
//! `const a = ...`, `export default`), or a name such a declaration binds. A declaration is run
//! by code that references one of its names: an import of it in another file (through barrels
//! and namespaces), or another declaration of the same file; a module object passed around
//! whole (`ns`, `ns[key]`) runs every declaration of its file. Code that runs when a module
//! loads is run by every file importing it (code-carrying imports only). Nodes are made on
//! demand from the accesses outwards, and a node in a file already known to be in a service
//! gets no runners: the search stops there.

use rustc_hash::FxHashMap as HashMap;

use busbar_analysis::{ByteRange, CodeGraph, Runner};
use busbar_diagnostics::FilePath;

use crate::facts::{FileFacts, Local, RawSpan};
use crate::link::Value;
use crate::resolve::Target;

/// A reference to a declaration: the code making it, and the import it goes through.
#[derive(Clone, Copy, Debug)]
struct Ref {
    from: usize,
    owner: Option<u32>,
    /// The import in `from` the reference goes through (`None` within one file).
    import: Option<RawSpan>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key<'a> {
    Load(usize),
    Owner(usize, u32),
    Name(usize, &'a str),
}

pub(crate) struct Graph<'a> {
    files: &'a [FileFacts],
    /// Files known before parsing to be in a service: their nodes get no runners.
    in_service: &'a [bool],
    importers: Vec<Vec<(usize, RawSpan)>>,
    refs_to: HashMap<(usize, &'a str), Vec<Ref>>,
    ns_refs: HashMap<usize, Vec<Ref>>,
    ids: HashMap<Key<'a>, u32>,
    keys: Vec<Key<'a>>,
    pub graph: CodeGraph,
}

fn range(span: RawSpan) -> ByteRange {
    ByteRange { lo: span.lo, hi: span.hi }
}

impl<'a> Graph<'a> {
    pub fn new(
        files: &'a [FileFacts],
        targets: &[Vec<Target>],
        index: &HashMap<FilePath, usize>,
        in_service: &'a [bool],
        resolved: &'a [Vec<(Value, usize)>],
    ) -> Self {
        let mut importers: Vec<Vec<(usize, RawSpan)>> = vec![Vec::new(); files.len()];
        for (f, facts) in files.iter().enumerate() {
            for (m, module) in facts.module_refs.iter().enumerate() {
                if module.type_only {
                    continue;
                }
                if let Target::File(path) = &targets[f][m]
                    && let Some(&t) = index.get(path)
                    && t != f
                {
                    importers[t].push((f, module.span));
                }
            }
        }
        for list in &mut importers {
            list.sort_by(|a, b| {
                (files[a.0].source.path(), a.1).cmp(&(files[b.0].source.path(), b.1))
            });
            list.dedup_by(|a, b| a.0 == b.0);
        }
        let mut refs_to: HashMap<(usize, &'a str), Vec<Ref>> = HashMap::default();
        let mut ns_refs: HashMap<usize, Vec<Ref>> = HashMap::default();
        for (f, facts) in files.iter().enumerate() {
            for (u, use_) in facts.uses.iter().enumerate() {
                let import = match facts.locals.get(&use_.name) {
                    Some(Local::Import(i)) => {
                        Some(facts.module_refs[facts.imports[*i].module].span)
                    }
                    _ => None,
                };
                let r = Ref { from: f, owner: use_.owner, import };
                match &resolved[f][u] {
                    (Value::Decl { file, name }, _) => {
                        refs_to.entry((*file, name.as_str())).or_default().push(r);
                    }
                    (Value::Namespace(file), used) if *used == use_.path.len() => {
                        ns_refs.entry(*file).or_default().push(r);
                    }
                    _ => {}
                }
            }
            for (owner, name) in &facts.local_refs {
                refs_to.entry((f, &**name)).or_default().push(Ref {
                    from: f,
                    owner: *owner,
                    import: None,
                });
            }
        }
        let sort = |refs: &mut Vec<Ref>| {
            refs.sort_by(|a, b| {
                (files[a.from].source.path(), a.import, a.owner).cmp(&(
                    files[b.from].source.path(),
                    b.import,
                    b.owner,
                ))
            });
        };
        refs_to.values_mut().for_each(sort);
        ns_refs.values_mut().for_each(sort);
        Graph {
            files,
            in_service,
            importers,
            refs_to,
            ns_refs,
            ids: HashMap::default(),
            keys: Vec::new(),
            graph: CodeGraph::default(),
        }
    }

    /// The node of the code owning a use: a declaration, or (`None`) the module loading.
    pub fn node_of(&mut self, file: usize, owner: Option<u32>) -> u32 {
        let start = self.keys.len();
        let key = match owner {
            Some(o) => Key::Owner(file, o),
            None => Key::Load(file),
        };
        let id = self.id(key);
        // Give every node made since its runners (which may make more nodes).
        let mut next = start;
        while next < self.keys.len() {
            let key = self.keys[next];
            let runners = self.runners(key);
            self.graph.nodes[next].runners = runners;
            next += 1;
        }
        id
    }

    fn id(&mut self, key: Key<'a>) -> u32 {
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let file = match key {
            Key::Load(f) | Key::Owner(f, _) | Key::Name(f, _) => f,
        };
        let id = self.graph.add(file);
        self.ids.insert(key, id);
        self.keys.push(key);
        id
    }

    fn ref_node(&mut self, r: Ref) -> Runner {
        let key = match r.owner {
            Some(o) => Key::Owner(r.from, o),
            None => Key::Load(r.from),
        };
        Runner { node: self.id(key), via: r.import.map(range) }
    }

    fn runners(&mut self, key: Key<'a>) -> Vec<Runner> {
        let file = match key {
            Key::Load(f) | Key::Owner(f, _) | Key::Name(f, _) => f,
        };
        if self.in_service[file] {
            return Vec::new();
        }
        match key {
            Key::Load(f) => {
                let importers = std::mem::take(&mut self.importers[f]);
                let runners = importers
                    .iter()
                    .map(|&(g, span)| Runner {
                        node: self.id(Key::Load(g)),
                        via: Some(range(span)),
                    })
                    .collect();
                self.importers[f] = importers;
                runners
            }
            Key::Owner(f, o) => {
                let files = self.files;
                let names = files[f].owners.get(o as usize).into_iter().flatten();
                names
                    .map(|n| Runner { node: self.id(Key::Name(f, n.as_str())), via: None })
                    .collect()
            }
            Key::Name(f, name) => {
                let direct = self.refs_to.get(&(f, name)).cloned().unwrap_or_default();
                let namespace = self.ns_refs.get(&f).cloned().unwrap_or_default();
                direct.into_iter().chain(namespace).map(|r| self.ref_node(r)).collect()
            }
        }
    }
}
