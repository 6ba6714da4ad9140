//! Finding the source files of an app: `.ts`, `.tsx`, `.mts`, `.cts`, without `node_modules`,
//! `encore.gen` (Encore's generated clients) and `__tests__` (as Encore's parser skips them),
//! dot-directories, tests (`*.test.*`, `*.spec.*`), declaration files (`*.d.ts`), and what
//! `.gitignore`, `.ignore` or `.busbarignore` exclude. Symbolic links are followed inside the
//! app root only; a link loop is skipped with a note.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use busbar_diagnostics::{Diagnostic, FilePath};

use crate::diagnostics as diag;

/// A discovered source file.
#[derive(Clone, Debug)]
pub(crate) struct SourcePath {
    /// Relative to the app root, `/`-separated.
    pub rel: FilePath,
    pub abs: PathBuf,
}

#[derive(Debug, Default)]
pub(crate) struct Discovered {
    /// Sorted by relative path.
    pub files: Vec<SourcePath>,
    /// Directories (relative, `.` for the root) holding a `package.json`, with its text.
    pub packages: Vec<(String, String)>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Is this file name one busbar analyzes?
pub(crate) fn is_source_name(name: &str) -> bool {
    let is_ts = [".ts", ".tsx", ".mts", ".cts"].iter().any(|ext| name.ends_with(ext));
    if !is_ts {
        return false;
    }
    let is_declaration = [".d.ts", ".d.mts", ".d.cts"].iter().any(|ext| name.ends_with(ext))
        || name.contains(".d.") && name.ends_with(".ts");
    let is_test = name.contains(".test.") || name.contains(".spec.");
    !is_declaration && !is_test
}

/// The `/`-separated path of `path` relative to `root` (which both must be absolute or both
/// relative in the same way).
pub(crate) fn relative(root: &Path, path: &Path) -> Option<String> {
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
struct Found {
    files: Vec<SourcePath>,
    packages: Vec<(String, PathBuf)>,
    diagnostics: Vec<Diagnostic>,
    saw_symlink: bool,
}

pub(crate) fn discover(root: &Path, threads: usize) -> Discovered {
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let found = Arc::new(Mutex::new(Found {
        files: Vec::new(),
        packages: Vec::new(),
        diagnostics: Vec::new(),
        saw_symlink: false,
    }));

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
        builder.filter_entry(move |entry| {
            if [&"node_modules", &"encore.gen", &"__tests__"]
                .iter()
                .any(|n| entry.file_name() == **n)
            {
                return false;
            }
            if entry.file_type().is_some_and(|t| t.is_dir()) {
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

    builder.build_parallel().run(|| {
        let found = Arc::clone(&found);
        let root = root.to_path_buf();
        Box::new(move |result| {
            let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(entry) => {
                    if entry.path_is_symlink() {
                        found.saw_symlink = true;
                    }
                    let is_file = entry.file_type().is_some_and(|t| t.is_file());
                    if !is_file {
                        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                        if !is_dir && entry.file_name() == "package.json" {
                            // A FIFO or a device: never opened.
                            let shown = relative(&root, entry.path())
                                .unwrap_or_else(|| entry.path().display().to_string());
                            found.diagnostics.push(diag::config_file_skipped(
                                &shown,
                                "it is not a regular file (busbar reads only regular files)",
                                "the workspace package it declares is not known to imports",
                            ));
                        }
                        return ignore::WalkState::Continue;
                    }
                    let name = entry.file_name().to_string_lossy();
                    if name == "package.json" {
                        found
                            .packages
                            .push((parent_rel(&root, entry.path()), entry.path().to_path_buf()));
                    } else if is_source_name(&name)
                        && let Some(rel) = relative(&root, entry.path())
                    {
                        found
                            .files
                            .push(SourcePath { rel: rel.into(), abs: entry.path().to_path_buf() });
                    }
                }
                Err(error) => {
                    if let Some(d) = walk_error(&root, &error, None) {
                        found.diagnostics.push(d);
                    }
                }
            }
            ignore::WalkState::Continue
        })
    });

    let found = match Arc::try_unwrap(found) {
        Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
        Err(arc) => {
            let mut guard = arc.lock().unwrap_or_else(|e| e.into_inner());
            Found {
                files: std::mem::take(&mut guard.files),
                packages: std::mem::take(&mut guard.packages),
                diagnostics: std::mem::take(&mut guard.diagnostics),
                saw_symlink: guard.saw_symlink,
            }
        }
    };
    let mut files = found.files;
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    if found.saw_symlink {
        // The same file reached through a link and directly: keep the first path in order.
        let mut seen: HashMap<PathBuf, ()> = HashMap::new();
        files.retain(|f| {
            let key = f.abs.canonicalize().unwrap_or_else(|_| f.abs.clone());
            seen.insert(key, ()).is_none()
        });
    }
    let mut diagnostics = found.diagnostics;
    let mut packages: Vec<(String, String)> = Vec::new();
    for (dir, path) in found.packages {
        let read = busbar_config::files::read_regular(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| String::from_utf8(b).map_err(|_| "it is not UTF-8".to_string()));
        match read {
            Ok(text) => packages.push((dir, text)),
            Err(why) => {
                let shown = relative(root, &path).unwrap_or_else(|| path.display().to_string());
                let what = "the workspace package it declares is not known to imports";
                diagnostics.push(diag::config_file_skipped(&shown, &why, what));
            }
        }
    }
    packages.sort();
    let mut skipped = std::mem::take(&mut *skipped.lock().unwrap_or_else(|e| e.into_inner()));
    skipped.sort_by(|a, b| a.message.cmp(&b.message));
    skipped.dedup_by(|a, b| a.message == b.message);
    diagnostics.extend(skipped);
    let mut outside = outside.lock().unwrap_or_else(|e| e.into_inner()).clone();
    outside.sort();
    outside.dedup();
    diagnostics.extend(outside.iter().map(|p| diag::symlink_outside_root(p)));
    Discovered { files, packages, diagnostics }
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

#[cfg(test)]
mod tests {
    use super::is_source_name;

    #[test]
    fn source_names() {
        for yes in ["a.ts", "a.tsx", "a.mts", "a.cts", "encore.service.ts", "dots.in.name.ts"] {
            assert!(is_source_name(yes), "{yes}");
        }
        for no in
            ["a.js", "a.d.ts", "a.d.mts", "a.test.ts", "a.spec.tsx", "a.json", "ts", "a.ts.bak"]
        {
            assert!(!is_source_name(no), "{no}");
        }
    }
}
