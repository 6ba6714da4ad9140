//! The app's Cargo packages, read from their `Cargo.toml` with the `toml` crate (cargo is never
//! run): names, library and binary targets (declared or found where cargo looks), and
//! dependencies by the name code uses, with workspace inheritance.

use std::collections::BTreeMap;
use std::path::Path;

use busbar_analysis::paths::{dir_of, join};
use busbar_diagnostics::{Diagnostic, SourceFile, Span};
use serde::Deserialize;

use crate::diagnostics as diag;

#[derive(Deserialize)]
struct Manifest {
    package: Option<PackageTable>,
    lib: Option<Target>,
    bin: Option<Vec<Target>>,
    dependencies: Option<BTreeMap<String, toml::Value>>,
    workspace: Option<Workspace>,
}

#[derive(Deserialize)]
struct PackageTable {
    name: toml::Spanned<String>,
    autobins: Option<bool>,
}

#[derive(Deserialize)]
struct Target {
    name: Option<String>,
    path: Option<String>,
}

#[derive(Deserialize)]
struct Workspace {
    dependencies: Option<BTreeMap<String, toml::Value>>,
}

/// A package of the app.
#[derive(Debug)]
pub(crate) struct Package {
    /// Its directory, relative to the app root.
    pub dir: String,
    pub name: String,
    pub manifest: SourceFile,
    pub name_span: Span,
    /// The library target's root file and crate name.
    pub lib: Option<(String, String)>,
    /// Binary targets' root files.
    pub bins: Vec<String>,
    /// Dependencies: the crate name code uses, and the package name.
    pub deps: Vec<(String, String)>,
}

impl Package {
    pub fn depends_on(&self, package: &str) -> bool {
        self.deps.iter().any(|(_, p)| p == package)
    }
}

fn package_of(key: &str, value: &toml::Value, workspace: &BTreeMap<String, toml::Value>) -> String {
    let table = value.as_table();
    if let Some(p) = table.and_then(|t| t.get("package")).and_then(toml::Value::as_str) {
        return p.to_string();
    }
    let inherited =
        table.and_then(|t| t.get("workspace")).and_then(toml::Value::as_bool) == Some(true);
    if inherited
        && let Some(p) =
            workspace.get(key).and_then(|v| v.get("package")).and_then(toml::Value::as_str)
    {
        return p.to_string();
    }
    key.to_string()
}

/// Reads every manifest; one that cannot be read is a diagnostic, and the rest still count.
pub(crate) fn read(
    root: &Path,
    manifests: &[(String, String)],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Package> {
    let mut parsed = Vec::new();
    let mut workspace_deps: BTreeMap<String, toml::Value> = BTreeMap::new();
    for (dir, text) in manifests {
        let rel = join(dir, "Cargo.toml");
        match toml::from_str::<Manifest>(text) {
            Ok(m) => {
                if let Some(deps) = m.workspace.as_ref().and_then(|w| w.dependencies.clone()) {
                    workspace_deps.extend(deps);
                }
                parsed.push((dir.clone(), rel, text.clone(), m));
            }
            Err(e) => diagnostics.push(diag::config_file_skipped(
                &rel,
                &format!("it is not a valid Cargo manifest: {}", e.message()),
                "its package was not analyzed",
            )),
        }
    }
    let exists = |rel: &str| root.join(rel).is_file();
    let mut out = Vec::new();
    for (dir, rel, text, m) in parsed {
        let Some(package) = m.package else { continue };
        let name = package.name.get_ref().clone();
        let manifest = SourceFile::new(rel.clone().into(), text);
        let range = package.name.span();
        let name_span = manifest.span(range.start as u32, range.end as u32);
        let lib_path =
            m.lib.as_ref().and_then(|l| l.path.clone()).unwrap_or_else(|| "src/lib.rs".to_string());
        let lib_name = m.lib.as_ref().and_then(|l| l.name.clone()).unwrap_or_else(|| name.clone());
        let lib = Some(join(&dir, &lib_path))
            .filter(|p| exists(p))
            .map(|p| (p, lib_name.replace('-', "_")));
        let mut bins: Vec<String> = Vec::new();
        for b in m.bin.iter().flatten() {
            let path = match (&b.path, &b.name) {
                (Some(p), _) => Some(p.clone()),
                (None, Some(n)) if *n == name => Some("src/main.rs".to_string()),
                (None, Some(n)) => Some(format!("src/bin/{n}.rs")),
                (None, None) => None,
            };
            if let Some(p) = path.map(|p| join(&dir, &p)).filter(|p| exists(p)) {
                bins.push(p);
            }
        }
        if package.autobins != Some(false) {
            let main = join(&dir, "src/main.rs");
            if exists(&main) {
                bins.push(main);
            }
            if let Ok(entries) = std::fs::read_dir(root.join(join(&dir, "src/bin"))) {
                let mut found: Vec<String> = entries
                    .flatten()
                    .filter_map(|e| {
                        let file = e.file_name().to_string_lossy().into_owned();
                        let rel = join(&dir, &format!("src/bin/{file}"));
                        if file.ends_with(".rs") && exists(&rel) {
                            Some(rel)
                        } else {
                            Some(join(&rel, "main.rs")).filter(|m| exists(m))
                        }
                    })
                    .collect();
                found.sort();
                bins.extend(found);
            }
        }
        bins.sort();
        bins.dedup();
        let deps = m
            .dependencies
            .iter()
            .flatten()
            .map(|(key, value)| (key.replace('-', "_"), package_of(key, value, &workspace_deps)))
            .collect();
        out.push(Package { dir, name, manifest, name_span, lib, bins, deps });
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

/// The directory whose modules a file's `mod x;` declarations live in.
pub(crate) fn children_dir(rel: &str, owns_dir: bool) -> String {
    let dir = dir_of(rel);
    if owns_dir {
        return dir.to_string();
    }
    let file = rel.rsplit('/').next().unwrap_or(rel);
    let stem = file.strip_suffix(".rs").unwrap_or(file);
    join(dir, stem)
}
