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
//! - files that import a framework-naming file, transitively (a topic can reach them).
//!
//! What else the link needs (a message type in a library, a subscription's topic, the import
//! chain of a publish) it finds itself: those lookups note every skipped file they read
//! (`link::Linker::unread`, `build::link`), the files are parsed, and the lookups are asked
//! again until they read none; then the link runs once (`crate::analyze`). Any other lookup
//! into a skipped file cannot end at a topic (`build::reaches_topic`).
//!
//! A specifier's escapes (`\x2e`, `\u{2f}`, a line continuation) are decoded as the parser
//! decodes them, so an escaped specifier is no blind spot.

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
            if let Some(s) = string_at(text, i)
                && !out.specifiers.contains(&s)
            {
                out.specifiers.push(s);
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

/// The value of a string literal starting at byte `i`, escapes decoded; `None` if none starts
/// there, or it is not a valid literal (it ends at a line break, or has a malformed escape:
/// the parser refuses both, so no import can be written that way).
fn string_at(text: &str, i: usize) -> Option<String> {
    let quote = *text.as_bytes().get(i)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let rest = text.get(i + 1..)?;
    let end = memchr::memchr3(quote, b'\n', b'\\', rest.as_bytes())?;
    if rest.as_bytes()[end] == quote && !rest[..end].contains('\r') {
        // No escape: the common case, without decoding.
        return Some(rest[..end].to_string());
    }
    let mut out = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            c if c as u32 == u32::from(quote) => return Some(out),
            '\n' | '\r' => return None,
            '\\' => escape(&mut chars, &mut out)?,
            c => out.push(c),
        }
    }
}

/// Decodes one escape after its backslash into `out` (ECMAScript's string escapes; a line
/// continuation is nothing). `None` if malformed.
fn escape(chars: &mut std::str::Chars<'_>, out: &mut String) -> Option<()> {
    let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<u32> {
        let digits: String = chars.take(n).collect();
        if digits.len() != n { None } else { u32::from_str_radix(&digits, 16).ok() }
    };
    let c = match chars.next()? {
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        '0' if !chars.clone().next().is_some_and(|c| c.is_ascii_digit()) => '\0',
        '1'..='9' => return None,
        'x' => char::from_u32(hex(chars, 2)?)?,
        'u' if chars.clone().next() == Some('{') => {
            chars.next();
            let digits: String = chars.by_ref().take_while(|&c| c != '}').collect();
            char::from_u32(u32::from_str_radix(&digits, 16).ok()?).unwrap_or('\u{fffd}')
        }
        // A lone surrogate has no UTF-8 form: swc's value shows it as U+FFFD.
        'u' => char::from_u32(hex(chars, 4)?).unwrap_or('\u{fffd}'),
        '\r' => {
            if chars.clone().next() == Some('\n') {
                chars.next();
            }
            return Some(());
        }
        '\n' | '\u{2028}' | '\u{2029}' => return Some(()),
        other => other,
    };
    out.push(c);
    Some(())
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

/// The files to parse first: seeds, and the files that import a framework-naming file
/// (transitively). `edges[f]` are the files `f`'s specifiers resolve to.
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
    for (f, seed) in seeds.iter().enumerate() {
        keep[f] |= seed.any();
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

/// The files the pre-filter skips, by path, with what they still contribute.
///
/// `resolver` is a throwaway: the files outside the root the scan reaches are added to it.
pub(crate) fn plan(
    files: &[(FilePath, PathBuf)],
    mut resolver: Resolver,
) -> HashMap<FilePath, Skipped> {
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
    let seeds: Vec<Seed> = nodes
        .iter()
        .zip(&framework)
        .map(|(n, &framework)| Seed {
            framework,
            calls: n.scan.as_ref().is_none_or(|(s, _)| s.calls),
        })
        .collect();
    let keep = relevant(&seeds, &edges);
    nodes
        .into_iter()
        .zip(keep)
        .filter(|(_, keep)| !keep)
        .filter_map(|(n, _)| n.scan.map(|(_, skipped)| (n.rel, skipped)))
        .collect()
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
        assert!(!s.calls);
    }

    /// The specifiers the parser reads (`module_refs`) are among the scan's, for escaped
    /// specifiers and for every TypeScript file of the example app and the fixtures.
    #[test]
    fn the_scan_finds_every_specifier_the_parser_reads() {
        let escaped = "import a from \"./\\u0061\";\nimport b from './\\x62';\nexport * from \"./c\\\nd\";\nimport e from './it\\'s';\nimport f from \"./\\u{66}\";\nimport g from \"./\\g\";\n";
        let root = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("../..");
        let mut texts = vec![escaped.to_string()];
        for dir in ["examples/shop", "testdata"] {
            for entry in ignore::WalkBuilder::new(root.join(dir)).build().flatten() {
                let name = entry.file_name().to_string_lossy();
                if name.ends_with(".ts") {
                    texts.push(std::fs::read_to_string(entry.path()).unwrap());
                } else if name.ends_with(".txtar") {
                    // Every `-- x.ts --` section.
                    let text = std::fs::read_to_string(entry.path()).unwrap();
                    for part in text.split("\n-- ").skip(1) {
                        if let Some((head, body)) = part.split_once(" --\n")
                            && head.ends_with(".ts")
                        {
                            texts.push(body.to_string());
                        }
                    }
                }
            }
        }
        assert!(texts.len() > 150, "{} files", texts.len());
        let mut specifiers = 0;
        for text in &texts {
            // On a stack the file is known to fit (some fixtures nest deeply on purpose).
            let bytes = text.clone().into_bytes();
            let facts = crate::parse::analyze_bytes("a.ts".into(), bytes, Default::default(), None);
            let scanned = scan(text).specifiers;
            for m in &facts.module_refs {
                assert!(
                    scanned.contains(&m.specifier),
                    "{:?} not in {scanned:?}\n{text}",
                    m.specifier
                );
                specifiers += 1;
            }
        }
        assert!(specifiers > 300, "{specifiers} specifiers");
        assert_eq!(scan(escaped).specifiers, ["./a", "./b", "./cd", "./it's", "./f", "./g"]);
    }

    #[test]
    fn calls_and_escapes() {
        assert!(scan("orders.publish({})").calls);
        assert!(scan("orders\n  . /* c */ ref<Publisher>()").calls);
        assert!(scan("orders?.publish(x)").calls);
        assert!(scan("orders.p\\u0075blish(x)").calls);
        assert!(!scan("orders.publishNow(x); const ref = 1; <div ref={r} />").calls);
        assert!(scan("import a from \"./a\nb\"").specifiers.is_empty());
    }
}
