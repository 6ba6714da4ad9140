//! The pre-filter: which files can hold a fact, found from their bytes without parsing them.
//!
//! [`scan`] reads a file's text for two things, each a superset of what the parser would find:
//! every string that may be a module specifier (the literal after `from`, `import`, `import(`,
//! `require(`, wherever the word stands: in comments and strings too), and whether a member
//! named `publish` or `ref` may be called. [`relevant`] then follows those specifiers through
//! the resolver and keeps the files that can matter (ARCHITECTURE.md, "The pre-filter"):
//!
//! - seeds: `encore.service.ts` files, files that name a framework module (the only way a
//!   file can declare a topic, a subscription, a service or an endpoint), and files that may
//!   call `.publish`/`.ref` (their diagnostics about unresolved imports depend on them);
//! - files that import a framework-naming file, transitively (a topic can reach them);
//! - everything the seeds import, transitively (message types and the chains a publish
//!   follows are read there).
//!
//! A specifier with a backslash (an escape the scanner does not decode) makes the file opaque,
//! and an opaque file turns the pre-filter off for the run: every file is parsed.

use std::path::{Path, PathBuf};

use busbar_diagnostics::{FilePath, SourceFile, Suppression, scan_suppressions};
use memchr::memmem;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use crate::resolve::{Resolver, Target};

/// What the bytes of a file say about its imports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Every string that may be a module specifier, in text order, duplicates removed.
    pub specifiers: Vec<String>,
    /// A member named `publish` or `ref` (or one written with an escape) follows a `.`.
    pub calls: bool,
    /// A possible specifier holds an escape: what it names is not known without a parse.
    pub opaque: bool,
}

pub(crate) fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut out = Scan::default();
    for (word, call) in [(&b"from"[..], false), (b"import", true), (b"require", true)] {
        for at in memmem::find_iter(bytes, word) {
            let mut i = skip_space(bytes, at + word.len());
            if call && bytes.get(i) == Some(&b'(') {
                i = skip_space(bytes, i + 1);
            }
            match string_at(bytes, i) {
                Some(Ok(s)) if !out.specifiers.iter().any(|x| x == s) => {
                    out.specifiers.push(s.to_string());
                }
                Some(Err(())) => out.opaque = true,
                _ => {}
            }
        }
    }
    out.calls = memchr::memchr_iter(b'.', bytes).any(|dot| member_may_be_call(bytes, dot));
    out
}

/// Skips whitespace, comments and any non-ASCII byte (a superset of what swc skips between
/// tokens; an identifier made of non-ASCII letters is skipped too, which only widens a scan).
fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while let Some(&b) = bytes.get(i) {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => i += 1,
            0x80.. => i += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = memmem::find(&bytes[i + 2..], b"*/").map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            _ => break,
        }
    }
    i
}

/// The content of a string literal starting at `i`: `None` if none starts there (or it ends
/// at a line break, which no specifier does), `Err` if it holds an escape.
fn string_at(bytes: &[u8], i: usize) -> Option<Result<&str, ()>> {
    let quote = *bytes.get(i)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let rest = &bytes[i + 1..];
    let end = memchr::memchr3(quote, b'\n', b'\\', rest)?;
    match rest[end] {
        b'\\' => Some(Err(())),
        b'\n' => None,
        _ => {
            let s = std::str::from_utf8(&rest[..end]).ok()?;
            if s.contains('\r') { None } else { Some(Ok(s)) }
        }
    }
}

/// Whether the member after the `.` at `dot` may be `publish` or `ref`.
fn member_may_be_call(bytes: &[u8], dot: usize) -> bool {
    let start = skip_space(bytes, dot + 1);
    let len = bytes[start..]
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'\\')
        .count();
    let name = &bytes[start..start + len];
    name == b"publish" || name == b"ref" || name.contains(&b'\\')
}

/// The files to parse, by index into `scans`: seeds, the files that import a
/// framework-naming file (transitively), and everything the seeds import (transitively).
/// `edges[f]` are the files `f`'s specifiers resolve to.
pub(crate) fn relevant(seeds: &[Seed], edges: &[Vec<usize>]) -> Vec<bool> {
    let n = edges.len();
    let mut importers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (f, targets) in edges.iter().enumerate() {
        for &t in targets {
            importers[t].push(f);
        }
    }
    let mut keep = vec![false; n];
    // Backward from the files that name a framework module.
    let mut stack: Vec<usize> = (0..n).filter(|&f| seeds[f].framework).collect();
    let mut seen = vec![false; n];
    for &f in &stack {
        seen[f] = true;
    }
    while let Some(f) = stack.pop() {
        keep[f] = true;
        for &i in &importers[f] {
            if !std::mem::replace(&mut seen[i], true) {
                stack.push(i);
            }
        }
    }
    // Forward from every seed.
    let mut stack: Vec<usize> = (0..n).filter(|&f| seeds[f].any()).collect();
    let mut seen = vec![false; n];
    for &f in &stack {
        seen[f] = true;
    }
    while let Some(f) = stack.pop() {
        keep[f] = true;
        for &t in &edges[f] {
            if !std::mem::replace(&mut seen[t], true) {
                stack.push(t);
            }
        }
    }
    keep
}

/// Why a file is a seed of the pre-filter.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Seed {
    /// It names a framework module (or is an `encore.service.ts`).
    pub framework: bool,
    /// It may call `.publish` or `.ref`.
    pub calls: bool,
}

impl Seed {
    fn any(self) -> bool {
        self.framework || self.calls
    }
}

/// What a file the pre-filter skips still contributes: its size and its suppression comments
/// (an unused one is still reported).
#[derive(Debug)]
pub(crate) struct Skipped {
    pub bytes: usize,
    pub suppressions: Vec<Suppression>,
}

/// One file the pre-filter read.
struct Node {
    rel: FilePath,
    /// `None`: unreadable or not UTF-8, left to the parse to report.
    scan: Option<(Scan, Skipped)>,
}

fn read_and_scan(rel: &FilePath, abs: &Path) -> Node {
    let scan = std::fs::read(abs).ok().and_then(|b| String::from_utf8(b).ok()).map(|text| {
        let scan = scan(&text);
        let bytes = text.len();
        let suppressions = scan_suppressions(&SourceFile::new(rel.clone(), text));
        (scan, Skipped { bytes, suppressions })
    });
    Node { rel: rel.clone(), scan }
}

/// The files the pre-filter skips (by path, with what they still contribute), or `None` when
/// it cannot decide for this app (an opaque file) and every file is parsed.
///
/// `resolver` is a throwaway: the files outside the root the scan reaches are added to it.
pub(crate) fn plan(
    files: &[(FilePath, PathBuf)],
    mut resolver: Resolver,
) -> Option<HashMap<FilePath, Skipped>> {
    let mut nodes: Vec<Node> = files.par_iter().map(|(rel, abs)| read_and_scan(rel, abs)).collect();
    let mut index: HashMap<FilePath, usize> =
        nodes.iter().enumerate().map(|(i, n)| (n.rel.clone(), i)).collect();
    let mut edges: Vec<Vec<usize>> = Vec::new();
    let mut framework: Vec<bool> = Vec::new();
    // Resolve every node's specifiers; files outside the root they reach are scanned in turn.
    while edges.len() < nodes.len() {
        let start = edges.len();
        let resolved: Vec<(Vec<Target>, bool)> = nodes[start..]
            .par_iter()
            .map(|n| match &n.scan {
                Some((scan, _)) => {
                    let targets: Vec<Target> =
                        scan.specifiers.iter().map(|s| resolver.resolve(&n.rel, s)).collect();
                    let names = targets.iter().any(|t| matches!(t, Target::Framework));
                    (targets, names || crate::is_service_file(&n.rel))
                }
                None => (Vec::new(), false),
            })
            .collect();
        let mut new: Vec<FilePath> = Vec::new();
        for (targets, _) in &resolved {
            for t in targets {
                if let Target::File(p) = t
                    && !index.contains_key(p)
                {
                    new.push(p.clone());
                }
            }
        }
        new.sort();
        new.dedup();
        let abs: Vec<(FilePath, PathBuf)> =
            new.iter().map(|p| (p.clone(), resolver.abs(p))).collect();
        for p in new {
            index.insert(p.clone(), index.len());
            resolver.add_known(p);
        }
        nodes.par_extend(abs.par_iter().map(|(rel, abs)| read_and_scan(rel, abs)));
        for (targets, names) in resolved {
            let to = targets.iter().filter_map(|t| match t {
                Target::File(p) => index.get(p).copied(),
                _ => None,
            });
            edges.push(to.collect());
            framework.push(names);
        }
    }
    if nodes.iter().any(|n| n.scan.as_ref().is_some_and(|(s, _)| s.opaque)) {
        return None;
    }
    let seeds: Vec<Seed> = nodes
        .iter()
        .zip(&framework)
        .map(|(n, &framework)| Seed {
            framework,
            calls: n.scan.as_ref().is_none_or(|(s, _)| s.calls),
        })
        .collect();
    let keep = relevant(&seeds, &edges);
    let skipped = nodes
        .into_iter()
        .zip(keep)
        .filter(|(_, keep)| !keep)
        .filter_map(|(n, _)| n.scan.map(|(_, skipped)| (n.rel, skipped)))
        .collect();
    Some(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifiers_in_every_form() {
        let s = scan(
            r#"import a from "./a"; import {b} from './b'
            import "./side"; export * from "./star"; export { c } from "./c";
            import type { T } from "./types"; import x = require("./req");
            const lazy = import("./lazy"); // from "./commented"
            import d from /* why */ "./d"; import e from
              "./e"; Array.from("x"); const s = "from";"#,
        );
        assert_eq!(
            s.specifiers,
            [
                "./a",
                "./b",
                "./star",
                "./c",
                "./types",
                "./commented",
                "./d",
                "./e",
                "./side",
                "./lazy",
                "./req"
            ]
        );
        assert!(!s.calls && !s.opaque);
    }

    #[test]
    fn calls_and_escapes() {
        assert!(scan("orders.publish({})").calls);
        assert!(scan("orders\n  . /* c */ ref<Publisher>()").calls);
        assert!(scan("orders?.publish(x)").calls);
        assert!(scan("orders.p\\u0075blish(x)").calls);
        assert!(!scan("orders.publishNow(x); const ref = 1; <div ref={r} />").calls);
        assert!(scan(r#"import a from "./\u0061""#).opaque);
        assert!(!scan("import a from \"./a\nb\"").opaque);
    }
}
