//! Reading, parsing and extracting one Rust file, with the guards that keep bad input from
//! taking the analysis down: an unreadable or non-UTF-8 file, nesting too deep for syn's
//! recursive descent, a syntax error, and a panic are each a diagnostic for that file.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use busbar_diagnostics::{FilePath, SourceFile, scan_suppressions};

use crate::diagnostics as diag;
use crate::extract::Extractor;
use crate::facts::RsFile;

/// The deepest bracket nesting, or the longest run of prefix operators, a file may have: syn
/// recurses once per level, and a stack overflow would abort the whole analysis. rustc's own
/// limits for real code are far below this.
pub(crate) const MAX_NESTING: usize = 2000;

pub(crate) fn analyze_file(rel: FilePath, abs: &Path) -> RsFile {
    let bytes = match std::fs::read(abs) {
        Ok(bytes) => bytes,
        Err(e) => {
            let source = SourceFile::new(rel.clone(), String::new());
            let span = source.span(0, 0);
            let mut facts = RsFile::new(source);
            facts.broken = true;
            facts.diagnostics.push(diag::unreadable(Some(span), &rel, &e.to_string()));
            return facts;
        }
    };
    let mut facts = analyze_bytes(rel, bytes);
    if !likely_pointed_into(&facts) {
        // Keep the memory of a large workspace bounded: the text is read again only if a
        // finding or a grant points into this file after all (as the TypeScript frontend does).
        facts.source = SourceFile::on_disk(facts.source.path().clone(), abs.to_path_buf());
    }
    facts
}

/// Whether the model or a diagnostic will probably point into this file: it declares a topic
/// or a subscription, publishes, or already has a finding.
fn likely_pointed_into(facts: &RsFile) -> bool {
    !facts.topics.is_empty()
        || !facts.subscriptions.is_empty()
        || !facts.diagnostics.is_empty()
        || !facts.suppressions.is_empty()
        || facts.refs.iter().any(|r| r.kind != crate::facts::RefKind::Other)
}

pub(crate) fn analyze_bytes(rel: FilePath, bytes: Vec<u8>) -> RsFile {
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = u32::try_from(e.utf8_error().valid_up_to()).unwrap_or(u32::MAX);
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let source = SourceFile::new(rel, lossy);
            let span = source.span(valid, valid.saturating_add(1));
            let mut facts = RsFile::new(source);
            facts.broken = true;
            facts.diagnostics.push(diag::invalid_utf8(span));
            return facts;
        }
    };
    let source = SourceFile::new(rel, text);
    let mut facts = RsFile::new(source.clone());
    facts.suppressions = scan_suppressions(&source);
    if source.text().len() >= u32::MAX as usize - 2 {
        facts.broken = true;
        let span = source.span(0, 0);
        facts.diagnostics.push(diag::unreadable(Some(span), "this file", "larger than 4 GiB"));
        return facts;
    }
    if let Some(at) = too_deep(source.text().as_bytes()) {
        facts.broken = true;
        let at = u32::try_from(at).unwrap_or(0);
        facts.diagnostics.push(diag::nesting_too_deep(source.span(at, at.saturating_add(1))));
        return facts;
    }
    let result = catch_unwind(AssertUnwindSafe(|| parse_and_extract(&mut facts)));
    // Spans of this file are no longer needed: free the thread's source map.
    proc_macro2::extra::invalidate_current_thread_spans();
    if let Err(panic) = result {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        let mut broken = RsFile::new(source.clone());
        broken.broken = true;
        broken.suppressions = std::mem::take(&mut facts.suppressions);
        broken.diagnostics.push(diag::internal_error(source.span(0, 0), &what));
        return broken;
    }
    facts
}

/// Where a file nests deeper than [`MAX_NESTING`] (brackets, or a run of prefix operators),
/// ignoring comments, strings and characters only roughly (a bound, not a parse).
fn too_deep(text: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut run = 0usize;
    for (i, &b) in text.iter().enumerate() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        match b {
            b'!' | b'-' | b'*' | b'&' => {
                run += 1;
                if run > MAX_NESTING {
                    return Some(i);
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => run = 0,
        }
    }
    None
}

/// The bytes before the code syn parses: a byte-order mark, a `#!` line that is not `#![`.
fn preamble(text: &str) -> usize {
    let mut at = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let rest = &text[at..];
    if rest.starts_with("#!") && !rest.trim_start_matches("#!").trim_start().starts_with('[') {
        at += rest.find('\n').unwrap_or(rest.len());
    }
    at
}

fn parse_and_extract(facts: &mut RsFile) {
    let source = facts.source.clone();
    let text = source.text();
    let base = preamble(text);
    let code = &text[base..];
    let base = u32::try_from(base).unwrap_or(0);
    match syn::parse_str::<syn::File>(code) {
        Ok(file) => {
            let mut x = Extractor::new(&mut *facts, base);
            x.items(0, &file.items);
        }
        Err(e) => {
            let span = Extractor::new(&mut *facts, base).sp(e.span());
            facts.broken = true;
            facts.diagnostics.push(diag::syntax_error(span, &e.to_string()));
        }
    }
}

/// For benchmarks: reads and parses a file with exactly the settings `analyze` uses.
pub fn parse_only(abs: &Path) -> usize {
    let Ok(text) = std::fs::read_to_string(abs) else { return 0 };
    let base = preamble(&text);
    let parsed = syn::parse_str::<syn::File>(&text[base..]);
    std::hint::black_box(&parsed);
    drop(parsed);
    proc_macro2::extra::invalidate_current_thread_spans();
    text.len()
}
