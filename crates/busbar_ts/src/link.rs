//! Linking names across files: an import or a module-level name to the topic (or namespace,
//! or type) it finally denotes, through `export { x } from`, `export * from`,
//! `export * as ns from`, default exports, barrels and aliases.

use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;

use swc_atoms::Atom;

use busbar_analysis::cycles::{Begin, CycleMemo};

use crate::facts::{ExportTarget, FileFacts, ImportKind, Local, TypeDef};
use crate::resolve::Target;

/// What a name denotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Topic {
        file: usize,
        topic: usize,
    },
    /// A module object (`import * as ns`, `export * as ns`).
    Namespace(usize),
    /// A module-level declaration that is not a topic (a function, a class, a constant):
    /// `name` is its local name in `file` (`default` for an anonymous default export).
    Decl {
        file: usize,
        name: Atom,
    },
    /// Anything else that is not a topic: the framework API, an unknown global.
    Other,
    /// A value imported from a third-party module.
    External {
        file: usize,
        module: usize,
    },
    /// The import in `file`'s module ref `module` leads nowhere.
    Unresolved {
        file: usize,
        module: usize,
        reason: String,
    },
    /// `file` does not export `name`.
    Missing {
        file: usize,
        name: String,
    },
}

/// A type declaration found: its file and the declaration.
type Found<'a> = (usize, &'a TypeDef);

/// Why a type name leads to no declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TypeMiss {
    /// Not declared, not exported, or an import that leads nowhere: the app is wrong (the
    /// TypeScript compiler refuses it too).
    Missing(String),
    /// From a module busbar does not read (a third-party or framework module).
    Outside { specifier: String, name: String },
    /// Valid TypeScript busbar does not follow (a member of a TypeScript namespace).
    Unfollowed(String),
}

pub(crate) struct Linker<'a> {
    pub files: &'a [FileFacts],
    pub targets: &'a [Vec<Target>],
    pub index: &'a HashMap<busbar_diagnostics::FilePath, usize>,
    /// The answers of [`Linker::export`] (`export *` cycles: `busbar_analysis::cycles`).
    memo: RefCell<CycleMemo<(usize, Atom), Value>>,
    /// Types found exported by a file under a name (a diamond of barrels is searched once).
    type_memo: RefCell<HashMap<(usize, Atom), Found<'a>>>,
    /// Files the pre-filter skipped that a lookup read (their facts are empty, so the answer
    /// may be wrong): parsed in another round before the link counts (`crate::prefilter`).
    pub unread: RefCell<Vec<usize>>,
}

/// What a [`Linker`] remembers of its lookups.
pub(crate) struct Memos<'a> {
    values: HashMap<(usize, Atom), Value>,
    types: HashMap<(usize, Atom), Found<'a>>,
}

const MAX_DEPTH: usize = 64;

/// The export name of a module's default export.
fn default_name() -> Atom {
    Atom::from("default")
}

impl<'a> Linker<'a> {
    pub fn new(
        files: &'a [FileFacts],
        targets: &'a [Vec<Target>],
        index: &'a HashMap<busbar_diagnostics::FilePath, usize>,
    ) -> Self {
        Linker {
            files,
            targets,
            index,
            memo: RefCell::default(),
            type_memo: RefCell::new(HashMap::default()),
            unread: RefCell::new(Vec::new()),
        }
    }

    /// What the lookups so far remember (for [`Linker::restore`]); none is in progress.
    pub fn checkpoint(&self) -> Memos<'a> {
        let memo = self.memo.borrow();
        debug_assert!(memo.idle());
        Memos { values: memo.completed().clone(), types: self.type_memo.borrow().clone() }
    }

    /// Forgets every lookup made since `memos` was taken: the linker answers from then on
    /// exactly as one that never made them (a chain of re-exports beyond the depth bound is
    /// cut where the lookup that starts it makes it, so the order of lookups can still matter
    /// there).
    pub fn restore(&self, memos: Memos<'a>) {
        self.memo.borrow_mut().restore(memos.values);
        *self.type_memo.borrow_mut() = memos.types;
    }

    /// A file's facts for a lookup, noting a file the pre-filter skipped.
    fn facts(&self, file: usize) -> &'a FileFacts {
        let facts = &self.files[file];
        if facts.skipped {
            self.unread.borrow_mut().push(file);
        }
        facts
    }

    /// The file a module ref of a file leads to.
    pub fn target_file(&self, file: usize, module: usize) -> Result<usize, Value> {
        match &self.targets[file][module] {
            Target::File(path) => match self.index.get(path) {
                Some(&f) => Ok(f),
                None => Err(Value::Unresolved {
                    file,
                    module,
                    reason: format!("`{path}` could not be read"),
                }),
            },
            Target::Framework => Err(Value::Other),
            Target::External => Err(Value::External { file, module }),
            Target::Unresolved(reason) => {
                Err(Value::Unresolved { file, module, reason: reason.clone() })
            }
        }
    }

    /// A module-level value name of a file.
    pub fn local(&self, file: usize, name: &Atom) -> Value {
        self.local_depth(file, name, 0)
    }

    fn local_depth(&self, file: usize, name: &Atom, depth: usize) -> Value {
        match self.facts(file).locals.get(name) {
            Some(Local::Topic(topic)) => Value::Topic { file, topic: *topic },
            Some(Local::Import(i)) => {
                let import = &self.files[file].imports[*i];
                match self.target_file(file, import.module) {
                    Ok(target) => self.import_kind(target, &import.kind, depth + 1),
                    Err(v) => v,
                }
            }
            Some(Local::Function | Local::Other) => Value::Decl { file, name: name.clone() },
            None => Value::Other,
        }
    }

    fn import_kind(&self, target: usize, kind: &ImportKind, depth: usize) -> Value {
        match kind {
            ImportKind::Named(name) => self.export_depth(target, name, depth),
            ImportKind::Default => self.export_depth(target, &default_name(), depth),
            ImportKind::Namespace => Value::Namespace(target),
        }
    }

    /// What `file` exports under `name`.
    pub fn export(&self, file: usize, name: &Atom) -> Value {
        self.export_depth(file, name, 0)
    }

    fn export_depth(&self, file: usize, name: &Atom, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Other;
        }
        let key = (file, name.clone());
        let begun = self.memo.borrow_mut().begin(&key);
        let started = match begun {
            Begin::Known(v) => return v,
            // A cycle back to a lookup in progress: through it, nothing that lookup does not
            // find itself.
            Begin::Cycle => return Value::Missing { file, name: name.to_string() },
            Begin::Start(started) => started,
        };
        let value = self.export_uncached(file, name, depth);
        self.memo.borrow_mut().end(key, started, value.clone());
        value
    }

    fn export_uncached(&self, file: usize, name: &Atom, depth: usize) -> Value {
        let facts = self.facts(file);
        if let Some(export) = facts.exports.iter().find(|e| &e.name == name) {
            return match &export.target {
                ExportTarget::Local(local) => self.local_depth(file, local, depth + 1),
                ExportTarget::Topic(topic) => Value::Topic { file, topic: *topic },
                ExportTarget::Opaque => Value::Decl { file, name: default_name() },
                ExportTarget::From { module, kind } => match self.target_file(file, *module) {
                    Ok(target) => self.import_kind(target, kind, depth + 1),
                    Err(v) => v,
                },
            };
        }
        if name.as_str() != "default" {
            let mut unresolved = None;
            for &module in &facts.star_exports {
                match self.target_file(file, module) {
                    Ok(target) => match self.export_depth(target, name, depth + 1) {
                        Value::Missing { .. } => {}
                        found => return found,
                    },
                    Err(v @ Value::Unresolved { .. }) => unresolved = unresolved.or(Some(v)),
                    Err(_) => {}
                }
            }
            if let Some(v) = unresolved {
                return v;
            }
        }
        Value::Missing { file, name: name.to_string() }
    }

    /// Follows a property path through namespaces. Returns the value and how many path
    /// segments were consumed.
    pub fn follow(&self, mut value: Value, path: &[Atom]) -> (Value, usize) {
        let mut used = 0;
        while let Value::Namespace(f) = value {
            let Some(segment) = path.get(used) else { break };
            value = self.export(f, segment);
            used += 1;
        }
        (value, used)
    }

    /// The first topic a module exports (directly or through re-exports), for messages about
    /// a namespace object that escapes.
    pub fn some_topic(&self, file: usize) -> Option<(usize, usize)> {
        let mut seen = Vec::new();
        self.some_topic_in(file, &mut seen)
    }

    fn some_topic_in(&self, file: usize, seen: &mut Vec<usize>) -> Option<(usize, usize)> {
        if seen.contains(&file) || seen.len() > MAX_DEPTH {
            return None;
        }
        seen.push(file);
        let facts = self.facts(file);
        let mut names: Vec<&Atom> = facts.exports.iter().map(|e| &e.name).collect();
        names.sort_unstable();
        for name in names {
            match self.export(file, name) {
                Value::Topic { file, topic } => return Some((file, topic)),
                Value::Namespace(inner) => {
                    if let Some(found) = self.some_topic_in(inner, seen) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        for &module in &facts.star_exports {
            if let Ok(target) = self.target_file(file, module)
                && let Some(found) = self.some_topic_in(target, seen)
            {
                return Some(found);
            }
        }
        None
    }

    /// The declaration of a type named by `path` (`Foo`, `ns.Foo`) in `file`.
    pub fn type_def(&self, file: usize, path: &[Atom]) -> Result<(usize, &'a TypeDef), TypeMiss> {
        self.type_def_depth(file, path, 0)
    }

    fn type_def_depth(
        &self,
        file: usize,
        path: &[Atom],
        depth: usize,
    ) -> Result<(usize, &'a TypeDef), TypeMiss> {
        if depth > MAX_DEPTH {
            return Err(TypeMiss::Missing("the type is re-exported in a cycle".into()));
        }
        let facts: &'a FileFacts = self.facts(file);
        let Some(first) = path.first() else {
            return Err(TypeMiss::Missing("empty type name".into()));
        };
        if path.len() == 1
            && let Some(def) = facts.types.get(first)
        {
            return Ok((file, def));
        }
        let Some(import) = facts.imports.iter().find(|i| &i.local == first) else {
            return Err(TypeMiss::Missing(format!(
                "`{first}` is not declared in `{}` or imported there",
                facts.source.path()
            )));
        };
        let shown = || path.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(".");
        let target = self.type_module(file, import.module, &Atom::from(shown()))?;
        let imported = match (&import.kind, path.len()) {
            (ImportKind::Named(name), 1) => name.clone(),
            (ImportKind::Default, 1) => default_name(),
            (ImportKind::Namespace, 2) => path[1].clone(),
            _ => {
                return Err(TypeMiss::Unfollowed(format!(
                    "`{}` is a member of a namespace busbar does not follow",
                    shown()
                )));
            }
        };
        self.exported_type(target, &imported, depth + 1)
    }

    /// The file a module ref leads to, for a type named `name` imported from it.
    fn type_module(&self, file: usize, module: usize, name: &Atom) -> Result<usize, TypeMiss> {
        match self.target_file(file, module) {
            Ok(t) => Ok(t),
            Err(Value::Unresolved { reason, .. }) => Err(TypeMiss::Missing(reason)),
            Err(_) => Err(TypeMiss::Outside {
                specifier: self.files[file].module_refs[module].specifier.clone(),
                name: name.to_string(),
            }),
        }
    }

    fn exported_type(
        &self,
        file: usize,
        name: &Atom,
        depth: usize,
    ) -> Result<(usize, &'a TypeDef), TypeMiss> {
        if let Some(found) = self.type_memo.borrow().get(&(file, name.clone())) {
            return Ok(*found);
        }
        let found = self.exported_type_uncached(file, name, depth)?;
        self.type_memo.borrow_mut().insert((file, name.clone()), found);
        Ok(found)
    }

    fn exported_type_uncached(
        &self,
        file: usize,
        name: &Atom,
        depth: usize,
    ) -> Result<(usize, &'a TypeDef), TypeMiss> {
        if depth > MAX_DEPTH {
            return Err(TypeMiss::Missing("the type is re-exported in a cycle".into()));
        }
        let facts: &'a FileFacts = self.facts(file);
        if let Some(export) = facts.exports.iter().find(|e| &e.name == name) {
            return match &export.target {
                ExportTarget::Local(local) => {
                    self.type_def_depth(file, std::slice::from_ref(local), depth + 1)
                }
                ExportTarget::From { module, kind } => match kind {
                    ImportKind::Named(n) => {
                        let target = self.type_module(file, *module, n)?;
                        self.exported_type(target, n, depth + 1)
                    }
                    ImportKind::Default => {
                        let target = self.type_module(file, *module, &default_name())?;
                        self.exported_type(target, &default_name(), depth + 1)
                    }
                    ImportKind::Namespace => {
                        Err(TypeMiss::Missing(format!("`{name}` is a namespace, not a type")))
                    }
                },
                _ => Err(TypeMiss::Missing(format!(
                    "`{name}` in `{}` is not a type",
                    facts.source.path()
                ))),
            };
        }
        if name.as_str() != "default" {
            // Two `export *` that both provide the name export neither (TypeScript: TS2308).
            let mut found: Option<(usize, &'a TypeDef)> = None;
            for &module in &facts.star_exports {
                if let Ok(target) = self.target_file(file, module)
                    && let Ok((def_file, def)) = self.exported_type(target, name, depth + 1)
                {
                    match found {
                        Some((first, _)) if first != def_file => {
                            return Err(TypeMiss::Missing(format!(
                                "`{}` exports `{name}` twice through `export *` (from `{}` and `{}`), so it exports neither; re-export the one meant by name",
                                facts.source.path(),
                                self.files[first].source.path(),
                                self.files[def_file].source.path()
                            )));
                        }
                        Some(_) => {}
                        None => found = Some((def_file, def)),
                    }
                }
            }
            if let Some(found) = found {
                return Ok(found);
            }
        }
        Err(TypeMiss::Missing(format!(
            "`{}` does not export a type named `{name}`",
            facts.source.path()
        )))
    }
}
