//! Lexical path arithmetic on `/`-separated paths relative to the app root, for every
//! frontend.

use std::path::{Component, Path, PathBuf};

/// The directory of a relative file path (`.` for a file at the root).
pub fn dir_of(rel: &str) -> &str {
    match rel.rfind('/') {
        Some(i) => &rel[..i],
        None => ".",
    }
}

/// Joins a relative directory and a `/`-separated path, resolving `.` and `..` lexically.
/// The result may start with `../` when it leads outside the root.
pub fn join(dir: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let segments = dir.split('/').chain(path.split('/'));
    for seg in segments {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() { ".".to_string() } else { parts.join("/") }
}

/// A lexically normalised absolute path.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `abs` relative to `root` (both absolute and normalised), with `../` when outside it.
pub fn rel_from(root: &Path, abs: &Path) -> String {
    let root: Vec<_> = root.components().collect();
    let target: Vec<_> = abs.components().collect();
    let common = root.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = Vec::new();
    for _ in common..root.len() {
        parts.push("..".into());
    }
    for c in &target[common..] {
        parts.push(c.as_os_str().to_string_lossy().into_owned());
    }
    if parts.is_empty() { ".".to_string() } else { parts.join("/") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_lexically() {
        assert_eq!(join("a/b", "./c"), "a/b/c");
        assert_eq!(join("a/b", "../c"), "a/c");
        assert_eq!(join(".", "./c"), "c");
        assert_eq!(join("a", "../../x/y"), "../x/y");
        assert_eq!(join("..", "../x"), "../../x");
        assert_eq!(join("a", ".."), ".");
    }

    #[test]
    fn relative_paths() {
        assert_eq!(rel_from(Path::new("/w/app"), Path::new("/w/app/a/b.ts")), "a/b.ts");
        assert_eq!(rel_from(Path::new("/w/app"), Path::new("/w/libs/x.ts")), "../libs/x.ts");
        assert_eq!(rel_from(Path::new("/w/app"), Path::new("/w/app")), ".");
    }
}
