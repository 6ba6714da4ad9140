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

/// Calls `probe` with each candidate source file for an import of `base` (a path without or
/// with an extension), in the order TypeScript tries them, until it returns true; returns that
/// candidate. One buffer serves every candidate.
pub(crate) fn first_candidate(base: &str, mut probe: impl FnMut(&str) -> bool) -> Option<String> {
    let mut buf = String::with_capacity(base.len() + 12);
    let mut attempt = |stem: &str, suffix: &str, buf: &mut String| {
        buf.clear();
        buf.push_str(stem);
        buf.push_str(suffix);
        probe(buf)
    };
    const TS: [&str; 4] = [".ts", ".tsx", ".mts", ".cts"];
    let is_declaration = base.ends_with(".d.ts");
    if !is_declaration && TS.iter().any(|e| base.ends_with(e)) && attempt(base, "", &mut buf) {
        return Some(buf);
    }
    // NodeNext projects import `./x.js` meaning `./x.ts`.
    for (js, ts) in [
        (".js", &[".ts", ".tsx"][..]),
        (".jsx", &[".tsx"]),
        (".mjs", &[".mts"]),
        (".cjs", &[".cts"]),
    ] {
        if let Some(stem) = base.strip_suffix(js) {
            for t in ts {
                if attempt(stem, t, &mut buf) {
                    return Some(buf);
                }
            }
            return None;
        }
    }
    if let Some(stem) = base.strip_suffix(".d.ts")
        && attempt(stem, ".ts", &mut buf)
    {
        return Some(buf);
    }
    for ext in TS {
        if attempt(base, ext, &mut buf) {
            return Some(buf);
        }
    }
    for index in ["/index.ts", "/index.tsx", "/index.mts", "/index.cts"] {
        if attempt(base, index, &mut buf) {
            return Some(buf);
        }
    }
    None
}

/// Every candidate, in order (for tests and messages).
#[cfg(test)]
pub(crate) fn candidates(base: &str) -> Vec<String> {
    let mut all = Vec::new();
    first_candidate(base, |c| {
        all.push(c.to_string());
        false
    });
    all
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
