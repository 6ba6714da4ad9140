//! Reading and parsing one file, with the guards that keep bad input from taking the analysis
//! down: invalid UTF-8, nesting too deep for the parser's recursion (see [`crate::stack`]), and
//! a panic inside swc are each a diagnostic for that file; every other file is still analyzed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use busbar_diagnostics::{FilePath, SourceFile, Span};
use swc_common::{BytePos, Spanned};
use swc_ecma_ast::{EsVersion, Module};
use swc_ecma_parser::{Parser, StringInput, Syntax, TsSyntax, lexer::Lexer};

use crate::diagnostics as diag;
use crate::extract;
use crate::facts::{FileContext, FileFacts};
use crate::stack::{self, Plan};

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
    let module = parser.parse_module()?;
    Ok((module, parser.take_errors()))
}

/// Reads, parses and extracts one file. Never panics.
/// `checker` is the busbar executable, to check a file too large to be sure of in a child
/// process (see [`crate::stack`]).
pub(crate) fn analyze_file(
    rel: FilePath,
    abs: &Path,
    ctx: FileContext,
    checker: Option<&Path>,
) -> FileFacts {
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
    let mut facts = analyze_bytes(rel, bytes, ctx, checker);
    if !likely_pointed_into(&facts) {
        // Keep the memory of a large app bounded: the text is read again only if a finding or
        // a grant ends up pointing into this file after all.
        facts.source = SourceFile::on_disk(facts.source.path().clone(), abs.to_path_buf());
    }
    facts
}

/// The facts of a file the pre-filter skips: none, but its size and suppressions. Its text is
/// read again only if something points into it (a suppression comment).
pub(crate) fn skipped_file(
    rel: FilePath,
    abs: &Path,
    skipped: &crate::prefilter::Skipped,
) -> FileFacts {
    let mut facts = FileFacts::sized(SourceFile::on_disk(rel, abs.to_path_buf()), skipped.bytes);
    facts.skipped = true;
    facts.suppressions = skipped.suppressions.clone();
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

/// Parses and extracts a file's bytes, on a stack it is known to fit. Never panics.
pub(crate) fn analyze_bytes(
    rel: FilePath,
    bytes: Vec<u8>,
    ctx: FileContext,
    checker: Option<&Path>,
) -> FileFacts {
    let source = match decode(rel, bytes) {
        Ok(source) => source,
        Err(facts) => return *facts,
    };
    match stack::plan(source.text().as_bytes()) {
        Plan::Here => guarded(source, ctx),
        Plan::FreshStack => stack::on_fresh_stack(|| guarded(source, ctx)),
        Plan::Check => {
            let checked = checker.and_then(|exe| {
                stack::check_in_child(exe, source.path(), ctx, source.text().as_bytes())
            });
            if checked == Some(false) {
                let span = source.span(0, 0);
                let mut facts = FileFacts::new(source);
                facts.diagnostics.push(diag::nesting_too_deep(span));
                facts
            } else {
                // Checked, or no child could be run: analyzed as the child would have been.
                stack::on_fresh_stack(|| guarded(source, ctx))
            }
        }
    }
}

/// The source of a file's bytes, or the facts of a file that cannot be analyzed (invalid
/// UTF-8, too large for 32-bit positions).
pub(crate) fn decode(rel: FilePath, bytes: Vec<u8>) -> Result<SourceFile, Box<FileFacts>> {
    let text: String = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to() as u32;
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let source = SourceFile::new(rel, lossy);
            let span = source.span(valid, valid + 1);
            let mut facts = FileFacts::new(source);
            facts.diagnostics.push(diag::invalid_utf8(span));
            return Err(Box::new(facts));
        }
    };
    let source = SourceFile::new(rel, text);
    if source.text().len() >= u32::MAX as usize - 2 {
        let span = source.span(0, 0);
        let mut facts = FileFacts::new(source);
        facts.diagnostics.push(diag::unreadable(Some(span), "this file", "larger than 4 GiB"));
        return Err(Box::new(facts));
    }
    Ok(source)
}

/// Parses and extracts, turning a panic inside into a diagnostic (BB0001).
pub(crate) fn guarded(source: SourceFile, ctx: FileContext) -> FileFacts {
    match catch_unwind(AssertUnwindSafe(|| parse_and_extract(source.clone(), ctx))) {
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
        let root = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("../../examples/shop");
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
                    let facts = analyze_bytes("svc/x.ts".into(), v.clone(), ctx, None);
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
        let repo = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("../..");
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
                None,
            );
            let skipping = FileContext { in_service: true, ..FileContext::default() };
            let quick =
                analyze_bytes("svc/x.ts".into(), source.clone().into_bytes(), skipping, None);
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
            None,
        );
        assert_eq!(facts.diagnostics.len(), 1);
        let d = &facts.diagnostics[0];
        assert_eq!(d.code.id, "BB0004");
        assert!(d.message.contains("svc/gone.ts"), "{}", d.message);
        assert_eq!(d.span.as_ref().map(|s| (s.line, s.column)), Some((1, 1)));
    }
}
