//! Reading and parsing one file, with the guards that keep bad input from taking the analysis
//! down: invalid UTF-8, nesting too deep for the parser's recursion, and a panic inside swc
//! are each a diagnostic for that file; every other file is still analyzed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use busbar_diagnostics::{FilePath, SourceFile, Span};
use swc_common::{BytePos, Spanned};
use swc_ecma_ast::{EsVersion, Module};
use swc_ecma_parser::{Parser, StringInput, Syntax, TsSyntax, lexer::Lexer};

use crate::diagnostics as diag;
use crate::extract;
use crate::facts::{FileContext, FileFacts};

/// Bracket nesting beyond which a file is not handed to the (recursive) parser. Real code
/// stays far below it; worker threads have stacks sized so the parser is safe up to it.
pub(crate) const MAX_NESTING: usize = 1_000;

/// Stack size of the analysis worker threads.
pub(crate) const WORKER_STACK: usize = 256 * 1024 * 1024;

/// Converts a swc span (positions start at 1) to a byte range.
pub(crate) fn to_raw(span: swc_common::Span) -> crate::facts::RawSpan {
    crate::facts::RawSpan { lo: span.lo.0.saturating_sub(1), hi: span.hi.0.saturating_sub(1) }
}

/// Converts a swc span (positions start at 1) to a busbar span.
pub(crate) fn to_span(file: &SourceFile, span: swc_common::Span) -> Span {
    file.span(span.lo.0.saturating_sub(1), span.hi.0.saturating_sub(1))
}

/// The parser settings for a path; the same for analysis and for the parse-only benchmark.
pub(crate) fn syntax_for(path: &str) -> Syntax {
    Syntax::Typescript(TsSyntax {
        tsx: path.ends_with(".tsx"),
        decorators: true,
        disallow_ambiguous_jsx_like: path.ends_with(".mts") || path.ends_with(".cts"),
        ..TsSyntax::default()
    })
}

/// Parses a module; recoverable errors come with the module.
pub(crate) fn parse_module(
    path: &str,
    text: &str,
) -> Result<(Module, Vec<swc_ecma_parser::error::Error>), swc_ecma_parser::error::Error> {
    let input = StringInput::new(text, BytePos(1), BytePos(1 + text.len() as u32));
    let lexer = Lexer::new(syntax_for(path), EsVersion::latest(), input, None);
    let mut parser = Parser::new_from(lexer);
    let module = parser.parse_typescript_module()?;
    Ok((module, parser.take_errors()))
}

/// +1 for an opening bracket, -1 for a closing one.
const BRACKET: [i8; 256] = {
    let mut t = [0i8; 256];
    t[b'(' as usize] = 1;
    t[b'[' as usize] = 1;
    t[b'{' as usize] = 1;
    t[b')' as usize] = -1;
    t[b']' as usize] = -1;
    t[b'}' as usize] = -1;
    t
};

/// The deepest bracket nesting in a text and where it first passes `MAX_NESTING`, if it does.
/// Brackets in strings and comments count too: a safe over-estimate for a parser guard.
fn nesting(text: &str) -> Option<(usize, u32)> {
    let bytes = text.as_bytes();
    if bytes.len() <= MAX_NESTING {
        return None;
    }
    // A branch-free pass; depth may dip below zero on unbalanced input, which only lowers it.
    let mut depth = 0i64;
    let mut max = 0i64;
    for &b in bytes {
        depth += BRACKET[b as usize] as i64;
        max = max.max(depth);
    }
    if max <= MAX_NESTING as i64 {
        return None;
    }
    // Rare: find where, with the exact (clamped) count.
    let mut depth = 0usize;
    let mut max = 0usize;
    let mut first_over = None;
    for (i, &b) in bytes.iter().enumerate() {
        match BRACKET[b as usize] {
            1 => {
                depth += 1;
                max = max.max(depth);
                if depth > MAX_NESTING && first_over.is_none() {
                    first_over = Some(i as u32);
                }
            }
            -1 => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    first_over.map(|at| (max, at))
}

/// Reads, parses and extracts one file. Never panics.
pub(crate) fn analyze_file(rel: FilePath, abs: &Path, ctx: FileContext) -> FileFacts {
    let bytes = match std::fs::read(abs) {
        Ok(bytes) => bytes,
        Err(e) => {
            let source = SourceFile::new(rel.clone(), String::new());
            let span = source.span(0, 0);
            let mut facts = FileFacts::new(source);
            facts.diagnostics.push(diag::unreadable(Some(span), &rel, &e.to_string()));
            return facts;
        }
    };
    let mut facts = analyze_bytes(rel, bytes, ctx);
    if !likely_pointed_into(&facts) {
        // Keep the memory of a large app bounded: the text is read again only if a finding or
        // a grant ends up pointing into this file after all.
        facts.source = SourceFile::on_disk(facts.source.path().clone(), abs.to_path_buf());
    }
    facts
}

/// Whether the model or a diagnostic will probably point into this file: it declares
/// something, publishes, subscribes, or already has a finding. Other files (most of an app)
/// only matter if one of their uses turns out to be a topic escaping, or they sit on the import
/// chain of a shared publish.
fn likely_pointed_into(facts: &FileFacts) -> bool {
    !facts.topics.is_empty()
        || !facts.subscriptions.is_empty()
        || facts.service.is_some()
        || !facts.diagnostics.is_empty()
        || !facts.suppressions.is_empty()
        || facts.uses.iter().any(|u| !matches!(u.kind, crate::facts::UseKind::Other))
}

/// Parses and extracts a file's bytes. Never panics.
pub(crate) fn analyze_bytes(rel: FilePath, bytes: Vec<u8>, ctx: FileContext) -> FileFacts {
    let text: String = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to() as u32;
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let source = SourceFile::new(rel, lossy);
            let span = source.span(valid, valid + 1);
            let mut facts = FileFacts::new(source);
            facts.diagnostics.push(diag::invalid_utf8(span));
            return facts;
        }
    };
    let source = SourceFile::new(rel, text);
    if source.text().len() >= u32::MAX as usize - 2 {
        let span = source.span(0, 0);
        let mut facts = FileFacts::new(source);
        facts.diagnostics.push(diag::unreadable(Some(span), "this file", "larger than 4 GiB"));
        return facts;
    }
    if let Some((depth, at)) = nesting(source.text()) {
        let span = source.span(at, at + 1);
        let mut facts = FileFacts::new(source);
        facts.diagnostics.push(diag::nesting_too_deep(span, depth));
        return facts;
    }
    let guarded = catch_unwind(AssertUnwindSafe(|| parse_and_extract(source.clone(), ctx)));
    match guarded {
        Ok(facts) => facts,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            let span = source.span(0, 0);
            let mut facts = FileFacts::new(source);
            facts.diagnostics.push(diag::internal_error(span, &what));
            facts
        }
    }
}

/// Fault injection for the test suite: a file whose relative path equals this variable's value
/// makes the analysis panic inside the worker, to prove a panic becomes a diagnostic (BB0001)
/// and neither crashes nor hangs busbar. Read once.
const PANIC_ON_VAR: &str = "BUSBAR_TEST_PANIC_ON";

fn injected_panic(path: &str) -> bool {
    static TARGET: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    TARGET.get_or_init(|| std::env::var(PANIC_ON_VAR).ok()).as_deref() == Some(path)
}

fn parse_and_extract(source: SourceFile, ctx: FileContext) -> FileFacts {
    if injected_panic(source.path()) {
        panic!("{PANIC_ON_VAR} names this file");
    }
    match parse_module(source.path(), source.text()) {
        Ok((module, errors)) => {
            let syntax: Vec<_> = errors
                .iter()
                .take(5)
                .map(|e| diag::syntax_error(to_span(&source, e.span()), &e.kind().msg()))
                .collect();
            let mut facts = extract::extract(source, &module, ctx);
            facts.diagnostics.extend(syntax);
            facts
        }
        Err(e) => {
            let d = diag::syntax_error(to_span(&source, e.span()), &e.kind().msg());
            let mut facts = FileFacts::new(source);
            facts.diagnostics.push(d);
            facts
        }
    }
}

/// Parse-only, for the benchmark: the same reading and parser settings as analysis, nothing
/// else. Returns the number of bytes parsed.
pub fn parse_only(abs: &Path, rel: &str) -> usize {
    let Ok(text) = std::fs::read_to_string(abs) else { return 0 };
    let _ = parse_module(rel, &text);
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Invariant 1: analysis never fails. Truncations and byte-level mutations of real source
    /// files become diagnostics, never panics (a panic would surface as BB0001 here).
    #[test]
    fn mangled_sources_never_break_extraction() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
        let mut sources = Vec::new();
        for entry in ignore::WalkBuilder::new(&root).build().flatten() {
            if entry.path().extension().is_some_and(|e| e == "ts") {
                sources.push(std::fs::read(entry.path()).unwrap());
            }
        }
        assert!(sources.len() >= 10);
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut checked = 0;
        for source in &sources {
            let mut variants: Vec<Vec<u8>> =
                (0..source.len()).step_by(13).map(|n| source[..n].to_vec()).collect();
            for _ in 0..40 {
                let mut v = source.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % v.len().max(1);
                    match next() % 4 {
                        0 => v.insert(at, b"{}()[]<>\"'`;,.:=/*\n\xff"[(next() % 18) as usize]),
                        1 if !v.is_empty() => {
                            v.remove(at.min(v.len() - 1));
                        }
                        2 if !v.is_empty() => {
                            let i = at.min(v.len() - 1);
                            v[i] = (next() % 128) as u8;
                        }
                        _ => v.extend_from_slice(b" new Topic<"),
                    }
                }
                variants.push(v);
            }
            for v in variants {
                for in_service in [false, true] {
                    let ctx = FileContext { in_service, ..FileContext::default() };
                    let facts = analyze_bytes("svc/x.ts".into(), v.clone(), ctx);
                    assert!(
                        facts.diagnostics.iter().all(|d| d.code.id != "BB0001"),
                        "internal error: {:?}",
                        facts.diagnostics
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "only {checked} variants");
    }

    /// Skipping subtrees without an interesting name (files known to be in a service) finds
    /// exactly the uses and diagnostics a full visit finds, in every file of the example app
    /// and the fixtures.
    #[test]
    fn skipping_quiet_subtrees_loses_nothing() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut sources = Vec::new();
        for dir in ["examples", "testdata/analyze"] {
            for entry in ignore::WalkBuilder::new(repo.join(dir)).build().flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "ts") {
                    sources.push(std::fs::read_to_string(path).unwrap());
                } else if path.extension().is_some_and(|e| e == "txtar") {
                    let text = std::fs::read_to_string(path).unwrap();
                    sources.extend(text.split("\n-- ").skip(1).filter_map(|part| {
                        let (name, body) = part.split_once(" --\n")?;
                        name.ends_with(".ts").then(|| body.to_string())
                    }));
                }
            }
        }
        assert!(sources.len() > 100, "only {} sources", sources.len());
        let summary = |facts: &FileFacts| {
            let uses: Vec<String> = facts
                .uses
                .iter()
                .map(|u| {
                    let owner = u.owner.map(|o| &facts.owners[o as usize]);
                    format!("{}{:?}{:?}{:?}{:?}", u.name, u.path, u.kind, u.span, owner)
                })
                .collect();
            let diags: Vec<String> =
                facts.diagnostics.iter().map(|d| format!("{} {}", d.code.id, d.message)).collect();
            (uses, diags, facts.endpoint)
        };
        for source in sources {
            let full = analyze_bytes(
                "svc/x.ts".into(),
                source.clone().into_bytes(),
                FileContext::default(),
            );
            let skipping = FileContext { in_service: true, ..FileContext::default() };
            let quick = analyze_bytes("svc/x.ts".into(), source.clone().into_bytes(), skipping);
            assert_eq!(summary(&full), summary(&quick), "differs for:\n{source}");
        }
    }

    /// A file that vanishes (or turns unreadable) between discovery and reading is an error
    /// for that file, with a span at its start.
    #[test]
    fn unreadable_file_is_a_diagnostic() {
        let facts = analyze_file(
            "svc/gone.ts".into(),
            Path::new("/nonexistent/busbar/gone.ts"),
            FileContext::default(),
        );
        assert_eq!(facts.diagnostics.len(), 1);
        let d = &facts.diagnostics[0];
        assert_eq!(d.code.id, "BB0004");
        assert!(d.message.contains("svc/gone.ts"), "{}", d.message);
        assert_eq!(d.span.as_ref().map(|s| (s.line, s.column)), Some((1, 1)));
    }

    #[test]
    fn nesting_guard() {
        assert_eq!(nesting("f(a[b{c}])"), None);
        let deep = "(".repeat(MAX_NESTING + 5);
        assert_eq!(nesting(&deep), Some((MAX_NESTING + 5, MAX_NESTING as u32)));
    }
}
