//! Finding the files of an app, once for every frontend: each says which file names are its
//! sources and manifests, and which directories are never walked (`node_modules`, a Cargo
//! package's `target`). Dot-directories and what `.gitignore`, `.ignore` or `.busbarignore`
//! exclude are skipped for all. Symbolic links are followed inside the app root only; a link
//! loop is skipped with a note.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use busbar_diagnostics::{Diagnostic, FilePath};
use rayon::prelude::*;

use crate::Frontend;
use crate::diagnostics as diag;

/// A discovered source file.
#[derive(Clone, Debug)]
pub struct SourcePath {
    /// Relative to the app root, `/`-separated.
    pub rel: FilePath,
    pub abs: PathBuf,
}

/// What discovery found for one frontend.
#[derive(Debug, Default)]
pub struct Found {
    /// Its sources, sorted by relative path.
    pub files: Vec<SourcePath>,
    /// Directories (relative, `.` for the root) holding its manifest, with the text, sorted.
    pub manifests: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub(crate) struct Discovered {
    /// One entry per frontend, in the order given.
    pub found: Vec<Found>,
    pub diagnostics: Vec<Diagnostic>,
}

/// The `/`-separated path of `path` relative to `root` (which both must be absolute or both
/// relative in the same way).
pub fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    if rel.as_os_str().is_empty() {
        return Some(".".to_string());
    }
    if std::path::MAIN_SEPARATOR == '/' {
        // Already `/`-separated: one conversion, no per-component work.
        return Some(rel.to_string_lossy().into_owned());
    }
    let parts: Vec<String> =
        rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    Some(parts.join("/"))
}

/// What the walk found, before it is sorted and split by frontend.
#[derive(Default)]
struct Walked {
    /// (frontend, file)
    files: Vec<(usize, SourcePath)>,
    /// (frontend, directory, manifest path)
    manifests: Vec<(usize, String, PathBuf)>,
    diagnostics: Vec<Diagnostic>,
    saw_symlink: bool,
}

pub(crate) fn discover(root: &Path, threads: usize, frontends: &[Frontend]) -> Discovered {
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let frontends: Arc<Vec<Frontend>> = Arc::new(frontends.to_vec());

    let outside = Arc::new(Mutex::new(Vec::<String>::new()));
    // The walk opens the ignore files of the root, its parents and every directory: one that
    // is not a regular file (a FIFO would block the open) turns off that kind of ignore file
    // at the root and above (said), and skips a directory below (said).
    let mut skipped = Vec::new();
    let mut kinds_off = Vec::new();
    for dir in root.ancestors() {
        for (name, problem) in ignore_file_problems(dir) {
            let shown =
                if dir == root { name.to_string() } else { dir.join(name).display().to_string() };
            match problem {
                Problem::Blocks(why) => {
                    kinds_off.push(name);
                    skipped.push(diag::config_file_skipped(
                        &shown,
                        &why,
                        &format!("no {name} file was applied anywhere in the app"),
                    ));
                }
                Problem::Unreadable(why) => skipped.push(diag::config_file_skipped(
                    &shown,
                    &why,
                    "its rules were not applied",
                )),
            }
        }
    }
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .hidden(true)
        .ignore(!kinds_off.contains(&".ignore"))
        .git_ignore(!kinds_off.contains(&".gitignore"))
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .parents(true)
        .follow_links(true)
        .threads(threads.max(1));
    if !kinds_off.contains(&".busbarignore") {
        builder.add_custom_ignore_filename(".busbarignore");
    }
    let skipped = Arc::new(Mutex::new(skipped));
    {
        let outside = Arc::clone(&outside);
        let skipped = Arc::clone(&skipped);
        let root = root.to_path_buf();
        let frontends = Arc::clone(&frontends);
        builder.filter_entry(move |entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            if is_dir && frontends.iter().any(|f| (f.skip_dir)(entry.path())) {
                return false;
            }
            if is_dir {
                let rel = || {
                    relative(&root, entry.path())
                        .unwrap_or_else(|| entry.path().display().to_string())
                };
                let mut walk = true;
                for (name, problem) in ignore_file_problems(entry.path()) {
                    let shown = format!("{}/{name}", rel());
                    let d = match problem {
                        Problem::Blocks(why) => {
                            walk = false;
                            diag::config_file_skipped(
                                &shown,
                                &why,
                                &format!("the directory `{}` was not analyzed", rel()),
                            )
                        }
                        Problem::Unreadable(why) => {
                            diag::config_file_skipped(&shown, &why, "its rules were not applied")
                        }
                    };
                    skipped.lock().unwrap_or_else(|e| e.into_inner()).push(d);
                }
                if !walk {
                    return false;
                }
            }
            if entry.path_is_symlink() {
                let inside = entry
                    .path()
                    .canonicalize()
                    .map(|t| t.starts_with(&canonical_root))
                    .unwrap_or(true);
                if !inside {
                    let rel = relative(&root, entry.path())
                        .unwrap_or_else(|| entry.path().display().to_string());
                    outside.lock().unwrap_or_else(|e| e.into_inner()).push(rel);
                    return false;
                }
            }
            true
        });
    }

    let shared = Mutex::new(Walked::default());
    builder.build_parallel().visit(&mut Collectors {
        shared: &shared,
        root,
        frontends: &frontends,
    });
    let found = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut files = found.files;
    files.sort_by(|a, b| a.1.rel.cmp(&b.1.rel));
    if found.saw_symlink {
        // The same file reached through a link and directly: keep the first path in order.
        let mut seen: HashMap<PathBuf, ()> = HashMap::new();
        files.retain(|(_, f)| {
            let key = f.abs.canonicalize().unwrap_or_else(|_| f.abs.clone());
            seen.insert(key, ()).is_none()
        });
    }
    let mut out: Vec<Found> = frontends.iter().map(|_| Found::default()).collect();
    for (f, file) in files {
        out[f].files.push(file);
    }
    let mut diagnostics = found.diagnostics;
    // Read on the pool's threads: an app with its dependencies' sources has hundreds.
    let read: Vec<_> = found
        .manifests
        .into_par_iter()
        .map(|(f, dir, path)| {
            let text = busbar_config::files::read_regular(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| String::from_utf8(b).map_err(|_| "it is not UTF-8".to_string()));
            (f, dir, path, text)
        })
        .collect();
    for (f, dir, path, text) in read {
        match text {
            Ok(text) => out[f].manifests.push((dir, text)),
            Err(why) => {
                let shown = relative(root, &path).unwrap_or_else(|| path.display().to_string());
                let what = frontends[f].manifest.map_or("", |(_, lost)| lost);
                diagnostics.push(diag::config_file_skipped(&shown, &why, what));
            }
        }
    }
    for found in &mut out {
        found.manifests.sort();
    }
    let mut skipped = std::mem::take(&mut *skipped.lock().unwrap_or_else(|e| e.into_inner()));
    skipped.sort_by(|a, b| a.message.cmp(&b.message));
    skipped.dedup_by(|a, b| a.message == b.message);
    diagnostics.extend(skipped);
    let mut outside = outside.lock().unwrap_or_else(|e| e.into_inner()).clone();
    outside.sort();
    outside.dedup();
    diagnostics.extend(outside.iter().map(|p| diag::symlink_outside_root(p)));
    Discovered { found: out, diagnostics }
}

/// What every walker thread shares: where its finds go, and how it judges an entry. Also
/// the builder that makes each walker thread a [`Collector`].
#[derive(Clone, Copy)]
struct Collectors<'s> {
    shared: &'s Mutex<Walked>,
    root: &'s Path,
    frontends: &'s [Frontend],
}

impl<'s> ignore::ParallelVisitorBuilder<'s> for Collectors<'s> {
    fn build(&mut self) -> Box<dyn ignore::ParallelVisitor + 's> {
        Box::new(Collector { walk: *self, found: Walked::default() })
    }
}

/// What one walker thread finds, kept to itself (no lock per entry) and added to the shared
/// list when the thread's walk ends; the list is sorted afterwards.
struct Collector<'s> {
    walk: Collectors<'s>,
    found: Walked,
}

impl Drop for Collector<'_> {
    fn drop(&mut self) {
        let mut shared = self.walk.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.files.append(&mut self.found.files);
        shared.manifests.append(&mut self.found.manifests);
        shared.diagnostics.append(&mut self.found.diagnostics);
        shared.saw_symlink |= self.found.saw_symlink;
    }
}

impl ignore::ParallelVisitor for Collector<'_> {
    fn visit(&mut self, result: Result<ignore::DirEntry, ignore::Error>) -> ignore::WalkState {
        let (found, root, frontends) = (&mut self.found, self.walk.root, self.walk.frontends);
        match result {
            Ok(entry) => {
                if entry.path_is_symlink() {
                    found.saw_symlink = true;
                }
                let name = entry.file_name().to_string_lossy();
                let manifest_of =
                    frontends.iter().position(|f| f.manifest.is_some_and(|(m, _)| m == name));
                let is_file = entry.file_type().is_some_and(|t| t.is_file());
                if !is_file {
                    let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                    if let Some(f) = manifest_of
                        && !is_dir
                    {
                        // A FIFO or a device: never opened.
                        let shown = relative(root, entry.path())
                            .unwrap_or_else(|| entry.path().display().to_string());
                        found.diagnostics.push(diag::config_file_skipped(
                            &shown,
                            "it is not a regular file (busbar reads only regular files)",
                            frontends[f].manifest.map_or("", |(_, lost)| lost),
                        ));
                    }
                    return ignore::WalkState::Continue;
                }
                if let Some(f) = manifest_of {
                    let dir = parent_rel(root, entry.path());
                    found.manifests.push((f, dir, entry.path().to_path_buf()));
                } else if let Some(f) = frontends.iter().position(|f| (f.is_source)(&name))
                    && let Some(rel) = relative(root, entry.path())
                {
                    let path = SourcePath { rel: rel.into(), abs: entry.path().to_path_buf() };
                    found.files.push((f, path));
                }
            }
            Err(error) => {
                if let Some(d) = walk_error(root, &error, None) {
                    found.diagnostics.push(d);
                }
            }
        }
        ignore::WalkState::Continue
    }
}

/// The ignore files the walk reads in each directory.
const IGNORE_FILES: [&str; 3] = [".gitignore", ".ignore", ".busbarignore"];

/// What is wrong with an ignore file.
enum Problem {
    /// Not a regular file: the walk must not open it (a FIFO blocks the open).
    Blocks(String),
    /// A regular file that cannot be read: the walk skips it.
    Unreadable(String),
}

/// The ignore files of `dir` that are not regular, readable files.
fn ignore_file_problems(dir: &Path) -> Vec<(&'static str, Problem)> {
    IGNORE_FILES
        .iter()
        .filter_map(|name| match busbar_config::files::check_regular(&dir.join(name)) {
            Ok(_) => None,
            Err(e @ busbar_config::files::ReadError::NotRegular(_)) => {
                Some((*name, Problem::Blocks(e.to_string())))
            }
            Err(e) => Some((*name, Problem::Unreadable(e.to_string()))),
        })
        .collect()
}

fn parent_rel(root: &Path, path: &Path) -> String {
    path.parent().and_then(|p| relative(root, p)).unwrap_or_else(|| ".".to_string())
}

fn walk_error(root: &Path, error: &ignore::Error, at: Option<&Path>) -> Option<Diagnostic> {
    let shown = |path: &Path| relative(root, path).unwrap_or_else(|| path.display().to_string());
    match error {
        ignore::Error::WithPath { path, err } => walk_error(root, err, Some(path)),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            walk_error(root, err, at)
        }
        ignore::Error::Loop { child, .. } => Some(diag::symlink_loop(&shown(child))),
        ignore::Error::Io(io) => {
            let path = at.unwrap_or(root);
            let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if is_link && !path.exists() {
                Some(diag::dangling_symlink(&shown(path)))
            } else {
                Some(diag::unreadable(None, &shown(path), &io.to_string()))
            }
        }
        ignore::Error::Partial(errors) => errors.iter().find_map(|e| walk_error(root, e, at)),
        // Bad patterns in an ignore file are that tool's concern, not the app's.
        _ => None,
    }
}
