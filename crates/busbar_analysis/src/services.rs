//! Which service each file belongs to (FRONTENDS.md, "Which service a file belongs to"), for
//! the files of every frontend at once.
//!
//! In order of precedence: the nearest enclosing directory a frontend claims for a service (an
//! `encore.service.ts`, a Cargo binary package); a `busbar.toml` mapping; an implicit service
//! rooted at the outermost directory outside every service that holds a file implying one (a
//! subscription, an API endpoint). Files left over are shared.

use busbar_config::Config;
use busbar_diagnostics::{Diagnostic, FilePath, Span};
use busbar_model::ServiceOrigin;

use crate::diagnostics as diag;
use crate::facts::{File, ServiceClaim};
use crate::paths::dir_of;
use rustc_hash::FxHashMap as HashMap;

#[derive(Clone, Debug)]
pub struct ServiceInfo {
    pub name: String,
    pub root: String,
    pub origin: ServiceOrigin,
    pub span: Option<Span>,
}

#[derive(Debug, Default)]
pub struct Services {
    /// Sorted by root.
    pub services: Vec<ServiceInfo>,
    /// For each file, the index of its service.
    pub of_file: Vec<Option<usize>>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Services {
    pub fn name_of(&self, file: usize) -> Option<&str> {
        self.of_file[file].map(|s| self.services[s].name.as_str())
    }
}

/// The directories enclosing `path` (a file or a directory), nearest first, ending with `.` for
/// paths inside the root. `../` paths stop at their outermost named directory.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let outside = path.starts_with("../");
    std::iter::successors(Some(dir_of(path)), |d| (*d != "." && *d != "..").then(|| dir_of(d)))
        .filter(move |d| !(outside && (*d == "." || *d == "..")))
}

/// The nearest directory of `dirs` enclosing `path`, itself included.
fn nearest(dirs: &HashMap<&str, usize>, path: &str, include_self: bool) -> Option<usize> {
    let own = include_self.then_some(path).and_then(|p| dirs.get(p).copied());
    own.or_else(|| ancestors(path).find_map(|d| dirs.get(d).copied()))
}

fn last_segment(dir: &str, root_name: &str) -> String {
    if dir == "." {
        root_name.to_string()
    } else {
        dir.rsplit('/').next().unwrap_or(dir).to_string()
    }
}

/// For each file, whether discovery alone puts it in a service: under one of `service_dirs`
/// (the directories a frontend will claim, known from file names), or matched by a busbar.toml
/// mapping. (Implicit services are known only after extraction.)
pub fn known_before_parsing<'a>(
    paths: &[FilePath],
    service_dirs: impl IntoIterator<Item = &'a str>,
    config: &Config,
) -> Vec<bool> {
    let encore: HashMap<&str, usize> = service_dirs.into_iter().map(|d| (d, 0)).collect();
    let mut globs = globset::GlobSetBuilder::new();
    for p in config.services.iter().flat_map(|m| &m.patterns) {
        if let Ok(glob) = globset::GlobBuilder::new(p).literal_separator(true).build() {
            globs.add(glob);
        }
    }
    let globs = globs.build().unwrap_or_else(|_| globset::GlobSet::empty());
    paths.iter().map(|p| nearest(&encore, p, false).is_some() || globs.is_match(&**p)).collect()
}

/// Assigns files to services. `root_name` names an implicit service at the app root.
pub(crate) fn assign(
    files: &[File],
    paths: &[FilePath],
    claims: &[ServiceClaim],
    config: &Config,
    root_name: &str,
) -> Services {
    let mut out = Services { of_file: vec![None; files.len()], ..Services::default() };

    // 1. Directories claimed by frontends.
    let mut encore: Vec<(String, usize)> = Vec::new();
    for claim in claims {
        let name = claim.name.clone().unwrap_or_else(|| last_segment(&claim.dir, root_name));
        encore.push((claim.dir.clone(), out.services.len()));
        out.services.push(ServiceInfo {
            name,
            root: claim.dir.clone(),
            origin: claim.origin,
            span: Some(claim.span.clone()),
        });
    }
    // Nested service directories: an error; the inner one still owns its subtree.
    let encore_dirs: HashMap<&str, usize> = encore.iter().map(|(d, s)| (d.as_str(), *s)).collect();
    for (dir, s) in &encore {
        if dir != "."
            && let Some(outer) = nearest(&encore_dirs, dir, false)
        {
            let (inner, outer) = (&out.services[*s], &out.services[outer]);
            out.diagnostics.push(diag::nested_service(
                &inner.name,
                inner.span.clone(),
                &outer.name,
                outer.span.clone(),
            ));
        }
    }
    for (i, path) in paths.iter().enumerate() {
        out.of_file[i] = nearest(&encore_dirs, path, false);
    }

    // 2. busbar.toml mappings.
    let mut mapped: Vec<(usize, globset::GlobSet)> = Vec::new();
    for mapping in &config.services {
        let mut builder = globset::GlobSetBuilder::new();
        for p in &mapping.patterns {
            if let Ok(glob) = globset::GlobBuilder::new(p).literal_separator(true).build() {
                builder.add(glob);
            }
        }
        let Ok(set) = builder.build() else { continue };
        mapped.push((out.services.len(), set));
        out.services.push(ServiceInfo {
            name: mapping.name.clone(),
            root: mapping.root.clone(),
            origin: ServiceOrigin::Config,
            span: Some(mapping.span.clone()),
        });
    }
    if !mapped.is_empty() {
        let mut matched = vec![false; mapped.len()];
        let mut reported: Vec<(usize, usize)> = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let hits: Vec<usize> = mapped
                .iter()
                .enumerate()
                .filter(|(_, (_, set))| set.is_match(&**path))
                .map(|(m, _)| m)
                .collect();
            for &m in &hits {
                matched[m] = true;
            }
            if hits.len() > 1 {
                let pair = (hits[0], hits[1]);
                if !reported.contains(&pair) {
                    reported.push(pair);
                    let (a, b) = (&out.services[mapped[pair.0].0], &out.services[mapped[pair.1].0]);
                    out.diagnostics.push(diag::overlapping_service_globs(
                        path,
                        &a.name,
                        a.span.clone().unwrap_or_else(|| files[i].source.span(0, 0)),
                        &b.name,
                        b.span.clone().unwrap_or_else(|| files[i].source.span(0, 0)),
                    ));
                }
            }
            if out.of_file[i].is_none()
                && let Some(&m) = hits.first()
            {
                out.of_file[i] = Some(mapped[m].0);
            }
        }
        for (m, hit) in matched.iter().enumerate() {
            if !hit {
                let s = &out.services[mapped[m].0];
                out.diagnostics.push(diag::unmatched_service_mapping(&s.name, s.span.clone()));
            }
        }
    }

    // 3. Implicit services: outermost directories with a subscription or an endpoint.
    let mut candidates: Vec<&str> = paths
        .iter()
        .enumerate()
        .filter(|(i, _)| out.of_file[*i].is_none() && files[*i].implies_service)
        .map(|(_, p)| dir_of(p))
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let mut roots: HashMap<&str, usize> = HashMap::default();
    for dir in candidates {
        // Sorted, so an enclosing candidate came first; nested roots merge into it.
        if nearest(&roots, dir, true).is_some() {
            continue;
        }
        roots.insert(dir, out.services.len());
        out.services.push(ServiceInfo {
            name: last_segment(dir, root_name),
            root: dir.to_string(),
            origin: ServiceOrigin::Implicit,
            span: None,
        });
    }
    for (i, path) in paths.iter().enumerate() {
        if out.of_file[i].is_none() {
            out.of_file[i] = nearest(&roots, path, false);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_nearest_first() {
        assert_eq!(ancestors("a/b/c.ts").collect::<Vec<_>>(), ["a/b", "a", "."]);
        assert_eq!(ancestors("c.ts").collect::<Vec<_>>(), ["."]);
        assert_eq!(ancestors("../libs/x/y.ts").collect::<Vec<_>>(), ["../libs/x", "../libs"]);
        let dirs: HashMap<&str, usize> = [(".", 0), ("a", 1)].into_iter().collect();
        assert_eq!(nearest(&dirs, "a/b/c.ts", false), Some(1));
        assert_eq!(nearest(&dirs, "b/c.ts", false), Some(0));
        assert_eq!(nearest(&dirs, "../x/c.ts", false), None);
        assert_eq!(nearest(&dirs, "a", true), Some(1));
        assert_eq!(nearest(&dirs, "a", false), Some(0));
    }
}
