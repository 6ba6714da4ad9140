//! Module resolution: from a file and a specifier to a source file of the app (or beside it),
//! the framework API, or a third-party module.
//!
//! Relative imports (with `.js`/`.mjs` specifiers naming `.ts`/`.mts` files), tsconfig `paths`
//! and `baseUrl` (with `extends`), `index.ts` directories, and workspace packages imported by
//! their `package.json` name. A file inside the app root must have been discovered (so
//! `.gitignore`d files stay out); a file outside it (reached through tsconfig `paths` or `../`)
//! is read from disk and analyzed as a shared file.

mod candidates;
mod tsconfig;

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use busbar_diagnostics::FilePath;
use serde_json::Value;

use busbar_analysis::paths;
pub(crate) use busbar_analysis::paths::dir_of;
use tsconfig::TsPaths;

use crate::extract::is_framework_module;
use crate::is_source_name;

/// Where a specifier leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A source file, relative to the app root (`../` when outside it).
    File(FilePath),
    /// `encore.dev/pubsub` and friends.
    Framework,
    /// A third-party module (installed or not): never an error by itself.
    External,
    /// A relative or aliased import that leads nowhere, and why.
    Unresolved(String),
}

struct Package {
    dir: String,
    json: Value,
}

pub(crate) struct Resolver {
    root: PathBuf,
    known: HashSet<FilePath>,
    packages: BTreeMap<String, Package>,
    /// Nearest tsconfig per directory (relative), computed on demand.
    tsconfigs: Mutex<HashMap<String, Option<Arc<TsPaths>>>>,
    /// tsconfig files that could not be read (path relative to the root, why).
    skipped: Mutex<BTreeMap<String, String>>,
}

impl Resolver {
    /// `root` must be absolute and normalised; `known` are the discovered source files.
    pub fn new(
        root: PathBuf,
        known: impl IntoIterator<Item = FilePath>,
        packages: &[(String, String)],
    ) -> Self {
        let mut by_name = BTreeMap::new();
        for (dir, text) in packages {
            let Ok(json) = serde_json::from_str::<Value>(text) else { continue };
            let Some(name) = json.get("name").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            // The first (shortest path) package of a name wins.
            by_name.entry(name).or_insert(Package { dir: dir.clone(), json });
        }
        Resolver {
            root,
            known: known.into_iter().collect(),
            packages: by_name,
            tsconfigs: Mutex::new(HashMap::default()),
            skipped: Mutex::default(),
        }
    }

    /// The tsconfig files that were not read, as warnings (in path order).
    pub fn skipped(&self) -> Vec<busbar_diagnostics::Diagnostic> {
        let skipped = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        skipped
            .iter()
            .map(|(path, why)| {
                crate::diagnostics::config_file_skipped(
                    path,
                    why,
                    "its `paths` and `baseUrl` were not applied to imports",
                )
            })
            .collect()
    }

    /// Makes a file outside the discovered set known (after it was read).
    pub fn add_known(&mut self, file: FilePath) {
        self.known.insert(file);
    }

    pub fn abs(&self, rel: &str) -> PathBuf {
        paths::normalize(&self.root.join(rel))
    }

    fn exists(&self, rel: &str) -> bool {
        if self.known.contains(rel) {
            return true;
        }
        // Inside the root only discovered files count; outside it, the disk decides.
        rel.starts_with("../")
            && rel.rsplit('/').next().is_some_and(is_source_name)
            && self.abs(rel).is_file()
    }

    fn first_existing(&self, base: &str) -> Option<String> {
        candidates::first_candidate(base, |c| self.exists(c))
    }

    pub fn resolve(&self, from: &str, specifier: &str) -> Target {
        if is_framework_module(specifier) {
            return Target::Framework;
        }
        if specifier.starts_with("./")
            || specifier.starts_with("../")
            || specifier == "."
            || specifier == ".."
        {
            let base = paths::join(dir_of(from), specifier);
            return match self.first_existing(&base) {
                Some(file) => Target::File(file.into()),
                None => Target::Unresolved(format!(
                    "no source file at `{base}` (tried .ts, .tsx, .mts, .cts and index files)"
                )),
            };
        }
        if specifier.starts_with('/') {
            return Target::Unresolved("absolute import paths are not supported".into());
        }
        let tsconfig = self.tsconfig_for(dir_of(from));
        if let Some(ts) = &tsconfig {
            let targets = ts.matches(specifier);
            if !targets.is_empty() {
                if let Some(base_dir) = ts.paths_base() {
                    let base_rel = paths::rel_from(&self.root, base_dir);
                    for t in &targets {
                        if let Some(file) = self.first_existing(&paths::join(&base_rel, t)) {
                            return Target::File(file.into());
                        }
                    }
                }
                if self.package_of(specifier).is_none() && ts.base_url.is_none() {
                    return Target::Unresolved(format!(
                        "tsconfig `paths` maps it to {}, and no such source file exists",
                        targets.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            if let Some(base_url) = &ts.base_url {
                let base_rel = paths::rel_from(&self.root, base_url);
                if let Some(file) = self.first_existing(&paths::join(&base_rel, specifier)) {
                    return Target::File(file.into());
                }
            }
        }
        if let Some((package, subpath)) = self.package_of(specifier) {
            return match self.resolve_package(package, &subpath) {
                Some(file) => Target::File(file.into()),
                None => Target::Unresolved(format!(
                    "workspace package `{}` (in `{}`) has no source file for `{subpath}`",
                    package.json.get("name").and_then(Value::as_str).unwrap_or_default(),
                    package.dir
                )),
            };
        }
        Target::External
    }

    fn tsconfig_for(&self, dir: &str) -> Option<Arc<TsPaths>> {
        if let Some(found) = self.tsconfigs.lock().unwrap_or_else(|e| e.into_inner()).get(dir) {
            return found.clone();
        }
        let abs = self.abs(dir);
        let file = abs.join("tsconfig.json");
        let present = busbar_config::files::check_regular(&file);
        if let Err(e) = &present {
            let shown = paths::join(dir, "tsconfig.json");
            self.skipped.lock().unwrap_or_else(|e| e.into_inner()).insert(shown, e.to_string());
        }
        let found = if present.is_ok_and(|p| p) {
            tsconfig::load(&file).filter(|t| !t.is_empty()).map(Arc::new)
        } else if abs.parent().is_some() && abs != Path::new("/") {
            self.tsconfig_for(&paths::join(dir, ".."))
        } else {
            None
        };
        self.tsconfigs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir.to_string(), found.clone());
        found
    }

    /// The workspace package a bare specifier names, and the subpath (`.` or `./x`).
    fn package_of(&self, specifier: &str) -> Option<(&Package, String)> {
        let mut parts = specifier.splitn(if specifier.starts_with('@') { 3 } else { 2 }, '/');
        let name = if specifier.starts_with('@') {
            format!("{}/{}", parts.next()?, parts.next()?)
        } else {
            parts.next()?.to_string()
        };
        let package = self.packages.get(&name)?;
        let subpath = match parts.next() {
            Some(rest) if !rest.is_empty() => format!("./{rest}"),
            _ => ".".to_string(),
        };
        Some((package, subpath))
    }

    fn resolve_package(&self, package: &Package, subpath: &str) -> Option<String> {
        let mut targets = Vec::new();
        if let Some(exports) = package.json.get("exports") {
            export_targets(exports, subpath, &mut targets);
        }
        if subpath == "." {
            for key in ["types", "typings", "module", "main"] {
                if let Some(t) = package.json.get(key).and_then(Value::as_str) {
                    targets.push(t.to_string());
                }
            }
            targets.extend(["./index.ts".to_string(), "./src/index.ts".to_string()]);
        } else {
            targets.push(subpath.to_string());
            targets.push(format!("./src/{}", subpath.trim_start_matches("./")));
        }
        for t in targets {
            let rel = paths::join(&package.dir, &t);
            if let Some(file) = self.first_existing(&rel) {
                return Some(file);
            }
            // Built output named in package.json, with the source beside it in `src/`.
            for out in ["dist", "build", "lib", "out"] {
                let prefix = format!("{}/", paths::join(&package.dir, out));
                if let Some(rest) = rel.strip_prefix(&prefix) {
                    let src = paths::join(&package.dir, &format!("src/{rest}"));
                    if let Some(file) = self.first_existing(&src) {
                        return Some(file);
                    }
                }
            }
        }
        None
    }
}

/// Targets of a package `exports` field for a subpath, preferring TypeScript conditions.
fn export_targets(exports: &Value, subpath: &str, out: &mut Vec<String>) {
    match exports {
        Value::String(s) if subpath == "." => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| export_targets(i, subpath, out)),
        Value::Object(map) => {
            let is_subpath_map = map.keys().any(|k| k.starts_with('.'));
            if is_subpath_map {
                if let Some(entry) = map.get(subpath) {
                    conditions(entry, out);
                    return;
                }
                for (pattern, entry) in map {
                    if let Some((prefix, suffix)) = pattern.split_once('*')
                        && subpath.starts_with(prefix)
                        && subpath.ends_with(suffix)
                        && subpath.len() >= prefix.len() + suffix.len()
                    {
                        let star = &subpath[prefix.len()..subpath.len() - suffix.len()];
                        let mut found = Vec::new();
                        conditions(entry, &mut found);
                        out.extend(found.into_iter().map(|t| t.replace('*', star)));
                    }
                }
            } else if subpath == "." {
                conditions(exports, out);
            }
        }
        _ => {}
    }
}

fn conditions(entry: &Value, out: &mut Vec<String>) {
    match entry {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| conditions(i, out)),
        Value::Object(map) => {
            for key in ["types", "import", "node", "default", "require"] {
                if let Some(v) = map.get(key) {
                    conditions(v, out);
                }
            }
            for (key, v) in map {
                if !["types", "import", "node", "default", "require"].contains(&key.as_str()) {
                    conditions(v, out);
                }
            }
        }
        _ => {}
    }
}
