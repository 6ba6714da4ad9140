//! Lexical path arithmetic on `/`-separated paths relative to the app root.

use std::path::{Component, Path, PathBuf};

/// The directory of a relative file path (`.` for a file at the root).
pub(crate) fn dir_of(rel: &str) -> &str {
    match rel.rfind('/') {
        Some(i) => &rel[..i],
        None => ".",
    }
}

/// Joins a relative directory and a `/`-separated path, resolving `.` and `..` lexically.
/// The result may start with `../` when it leads outside the root.
pub(crate) fn join(dir: &str, path: &str) -> String {
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
pub(crate) fn normalize(path: &Path) -> PathBuf {
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
pub(crate) fn rel_from(root: &Path, abs: &Path) -> String {
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

/// The candidate source files for an import of `base` (a path without or with an extension),
/// in the order TypeScript tries them.
pub(crate) fn candidates(base: &str) -> Vec<String> {
    let mut out = Vec::new();
    let is_declaration = base.ends_with(".d.ts");
    if !is_declaration && [".ts", ".tsx", ".mts", ".cts"].iter().any(|e| base.ends_with(e)) {
        out.push(base.to_string());
    }
    // NodeNext projects import `./x.js` meaning `./x.ts`.
    for (js, ts) in [
        (".js", &[".ts", ".tsx"][..]),
        (".jsx", &[".tsx"]),
        (".mjs", &[".mts"]),
        (".cjs", &[".cts"]),
    ] {
        if let Some(stem) = base.strip_suffix(js) {
            out.extend(ts.iter().map(|t| format!("{stem}{t}")));
            return out;
        }
    }
    if let Some(stem) = base.strip_suffix(".d.ts") {
        out.push(format!("{stem}.ts"));
    }
    for ext in [".ts", ".tsx", ".mts", ".cts"] {
        out.push(format!("{base}{ext}"));
    }
    for ext in [".ts", ".tsx", ".mts", ".cts"] {
        out.push(format!("{base}/index{ext}"));
    }
    out
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

    #[test]
    fn candidate_order() {
        assert_eq!(candidates("a/x.js"), ["a/x.ts", "a/x.tsx"]);
        assert_eq!(candidates("a/x.mjs"), ["a/x.mts"]);
        assert_eq!(candidates("a/x.ts")[0], "a/x.ts");
        assert_eq!(&candidates("a/x")[..2], ["a/x.ts", "a/x.tsx"]);
        assert!(candidates("a/x").contains(&"a/x/index.ts".to_string()));
    }
}
