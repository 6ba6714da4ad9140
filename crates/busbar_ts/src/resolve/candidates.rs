//! The files an import of a path may mean, in the order TypeScript tries them.

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
    fn candidate_order() {
        assert_eq!(candidates("a/x.js"), ["a/x.ts", "a/x.tsx"]);
        assert_eq!(candidates("a/x.mjs"), ["a/x.mts"]);
        assert_eq!(candidates("a/x.ts")[0], "a/x.ts");
        assert_eq!(&candidates("a/x")[..2], ["a/x.ts", "a/x.tsx"]);
        assert!(candidates("a/x").contains(&"a/x/index.ts".to_string()));
    }
}
