//! `tsconfig.json`: `compilerOptions.baseUrl` and `paths`, with `extends` (a relative path, an
//! array of them, or a package in `node_modules`). Read as JSONC (comments, trailing commas).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// What busbar needs from a tsconfig, with `extends` applied. Paths are absolute.
#[derive(Clone, Debug, Default)]
pub(crate) struct TsPaths {
    pub base_url: Option<PathBuf>,
    /// The `paths` entries, longest prefix first, and the directory they are relative to when
    /// there is no `baseUrl`.
    pub paths: Vec<(String, Vec<String>)>,
    pub paths_dir: Option<PathBuf>,
}

impl TsPaths {
    pub fn is_empty(&self) -> bool {
        self.base_url.is_none() && self.paths.is_empty()
    }

    /// The directory `paths` targets are relative to.
    pub fn paths_base(&self) -> Option<&Path> {
        self.base_url.as_deref().or(self.paths_dir.as_deref())
    }

    /// The targets of the `paths` pattern that matches `specifier` (longest prefix wins), with
    /// `*` substituted.
    pub fn matches(&self, specifier: &str) -> Vec<String> {
        for (pattern, targets) in &self.paths {
            let substituted = match pattern.split_once('*') {
                Some((prefix, suffix)) => {
                    if specifier.len() >= prefix.len() + suffix.len()
                        && specifier.starts_with(prefix)
                        && specifier.ends_with(suffix)
                    {
                        let star = &specifier[prefix.len()..specifier.len() - suffix.len()];
                        Some(targets.iter().map(|t| t.replacen('*', star, 1)).collect())
                    } else {
                        None
                    }
                }
                None => (pattern == specifier).then(|| targets.clone()),
            };
            if let Some(found) = substituted {
                return found;
            }
        }
        Vec::new()
    }
}

/// Loads a tsconfig with its `extends` chain. `None` when it cannot be read or parsed; a
/// broken tsconfig is the TypeScript compiler's to report.
pub(crate) fn load(path: &Path) -> Option<TsPaths> {
    load_depth(path, 0)
}

fn load_depth(path: &Path, depth: usize) -> Option<TsPaths> {
    if depth > 16 {
        return None;
    }
    let text = String::from_utf8(busbar_config::files::read_regular(path).ok()?).ok()?;
    let value: Value = jsonc_parser::parse_to_serde_value(&text, &Default::default()).ok()?;
    let dir = path.parent()?.to_path_buf();
    let mut result = TsPaths::default();
    let parents: Vec<&str> = match value.get("extends") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for parent in parents {
        if let Some(parent_path) = extends_path(&dir, parent)
            && let Some(inherited) = load_depth(&parent_path, depth + 1)
        {
            if inherited.base_url.is_some() {
                result.base_url = inherited.base_url;
            }
            if !inherited.paths.is_empty() {
                result.paths = inherited.paths;
                result.paths_dir = inherited.paths_dir;
            }
        }
    }
    let options = value.get("compilerOptions");
    if let Some(base) = options.and_then(|o| o.get("baseUrl")).and_then(Value::as_str) {
        result.base_url = Some(busbar_analysis::paths::normalize(&dir.join(base)));
    }
    if let Some(Value::Object(paths)) = options.and_then(|o| o.get("paths")) {
        let mut entries: Vec<(String, Vec<String>)> = paths
            .iter()
            .map(|(k, v)| {
                let targets = match v {
                    Value::Array(items) => {
                        items.iter().filter_map(Value::as_str).map(str::to_string).collect()
                    }
                    Value::String(s) => vec![s.clone()],
                    _ => Vec::new(),
                };
                (k.clone(), targets)
            })
            .collect();
        // Longest prefix before `*` first; exact patterns before wildcards of equal prefix.
        entries.sort_by(|a, b| {
            let key = |p: &str| (p.split('*').next().map_or(0, str::len), !p.contains('*'));
            key(&b.0).cmp(&key(&a.0)).then_with(|| a.0.cmp(&b.0))
        });
        result.paths = entries;
        result.paths_dir = Some(dir);
    }
    Some(result)
}

fn extends_path(dir: &Path, spec: &str) -> Option<PathBuf> {
    let with_json = |p: PathBuf| {
        if p.extension().is_some_and(|e| e == "json") { p } else { p.with_extension("json") }
    };
    if spec.starts_with("./") || spec.starts_with("../") || Path::new(spec).is_absolute() {
        return Some(with_json(dir.join(spec)));
    }
    // A package: look in node_modules up the tree.
    let mut current = Some(dir);
    while let Some(d) = current {
        let candidate = d.join("node_modules").join(spec);
        let candidate =
            if candidate.is_dir() { candidate.join("tsconfig.json") } else { with_json(candidate) };
        if candidate.is_file() {
            return Some(candidate);
        }
        current = d.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let paths = TsPaths {
            base_url: None,
            paths: vec![
                ("@app/topics/*".into(), vec!["shared/topics/*".into()]),
                ("@app/*".into(), vec!["src/*".into(), "lib/*".into()]),
            ],
            paths_dir: None,
        };
        assert_eq!(paths.matches("@app/topics/user"), ["shared/topics/user"]);
        assert_eq!(paths.matches("@app/x"), ["src/x", "lib/x"]);
        assert!(paths.matches("lodash").is_empty());
    }
}
