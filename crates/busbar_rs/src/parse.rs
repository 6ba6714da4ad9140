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

/// Reads a file and gives it the full parse, unless `parse` (the pre-filter's decision on its
/// bytes) says no: then it is a placeholder of one empty module that keeps only its size (a
/// file that cannot be read, is no UTF-8 or too large is always analyzed: those are findings
/// without a parse).
pub(crate) fn analyze_file(rel: FilePath, abs: &Path, parse: impl FnOnce(&[u8]) -> bool) -> RsFile {
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
    if bytes.len() < u32::MAX as usize - 2 && !parse(&bytes) && std::str::from_utf8(&bytes).is_ok()
    {
        let mut skipped =
            RsFile::with_size(SourceFile::on_disk(rel, abs.to_path_buf()), bytes.len());
        skipped.skipped = true;
        return skipped;
    }
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
///
/// Every file is scanned, so the scan goes a block at a time: counting a block's brackets is
/// a loop the compiler vectorizes, and a block that can neither reach the bound nor empty the
/// depth below zero only needs the counts and the prefix-operator run at its end. Other blocks
/// go byte by byte ([`bytewise`]), which is also the definition the tests hold the blocks to.
fn too_deep(text: &[u8]) -> Option<usize> {
    const BLOCK: usize = 64;
    let mut state = Nesting::default();
    for (n, block) in text.chunks(BLOCK).enumerate() {
        let (mut opens, mut closes) = (0u8, 0u8);
        for &b in block {
            opens += u8::from(matches!(b, b'(' | b'[' | b'{'));
            closes += u8::from(matches!(b, b')' | b']' | b'}'));
        }
        let (opens, closes) = (usize::from(opens), usize::from(closes));
        let safe = state.depth >= closes
            && state.depth + opens <= MAX_NESTING
            && state.run + block.len() <= MAX_NESTING;
        // The run of prefix operators the block ends with, if something in it ends a run.
        let tail = || {
            let mut run = 0;
            for &b in block.iter().rev() {
                match CLASS[usize::from(b)] {
                    PREFIX => run += 1,
                    SPACE => {}
                    _ => return Some(run),
                }
            }
            None
        };
        match safe.then(tail).flatten() {
            Some(run) => state = Nesting { depth: state.depth + opens - closes, run },
            None => {
                if let Some(at) = bytewise(&mut state, block) {
                    return Some(n * BLOCK + at);
                }
            }
        }
    }
    None
}

/// The bracket depth and the run of prefix operators so far.
#[derive(Default)]
struct Nesting {
    depth: usize,
    run: usize,
}

const OTHER: u8 = 0;
const OPEN: u8 = 1;
const CLOSE: u8 = 2;
const PREFIX: u8 = 3;
const SPACE: u8 = 4;

/// What each byte is to [`too_deep`].
static CLASS: [u8; 256] = {
    let mut class = [OTHER; 256];
    let sets: [(&[u8], u8); 4] =
        [(b"([{", OPEN), (b")]}", CLOSE), (b"!-*&", PREFIX), (b" \t\n\r", SPACE)];
    let mut s = 0;
    while s < sets.len() {
        let (bytes, c) = sets[s];
        let mut i = 0;
        while i < bytes.len() {
            class[bytes[i] as usize] = c;
            i += 1;
        }
        s += 1;
    }
    class
};

/// [`too_deep`] one byte at a time, from `state`: an opening bracket deepens and a closing
/// one (down to zero) returns; `!`, `-`, `*` and `&` extend the run, whitespace keeps it, and
/// anything else (brackets too) ends it. The offset in `bytes` where either passes the bound.
fn bytewise(state: &mut Nesting, bytes: &[u8]) -> Option<usize> {
    for (i, &b) in bytes.iter().enumerate() {
        match CLASS[usize::from(b)] {
            OPEN => {
                state.depth += 1;
                state.run = 0;
                if state.depth > MAX_NESTING {
                    return Some(i);
                }
            }
            CLOSE => {
                state.depth = state.depth.saturating_sub(1);
                state.run = 0;
            }
            PREFIX => {
                state.run += 1;
                if state.run > MAX_NESTING {
                    return Some(i);
                }
            }
            SPACE => {}
            _ => state.run = 0,
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

#[cfg(test)]
mod tests {
    use super::{MAX_NESTING, Nesting, bytewise, too_deep};

    fn one_at_a_time(text: &[u8]) -> Option<usize> {
        bytewise(&mut Nesting::default(), text)
    }

    /// The block scan finds exactly what the byte-by-byte definition finds: on texts at the
    /// bound and past it, and on generated texts of every mix of brackets, operators and space.
    #[test]
    fn blocks_find_what_bytes_find() {
        let n = MAX_NESTING;
        let mut cases: Vec<Vec<u8>> = vec![
            b"(".repeat(n),
            b"(".repeat(n + 1),
            [b"(".repeat(n - 10), b")".repeat(100), b"[".repeat(n + 1)].concat(),
            b"- ".repeat(n),
            b"- ".repeat(n + 1),
            [b"x".repeat(63), b"-".repeat(n + 1)].concat(),
            [b"x".repeat(63), b"*\n".repeat(n + 1)].concat(),
            [b"x".repeat(10), b"})".repeat(500), b"{(".repeat(n / 2 + 1)].concat(),
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % 100).unwrap_or(0)
        };
        let alphabet = b"([{)]}!-*& \nx";
        for i in 0..4000 {
            let len = (i * 37) % 9000;
            let text = (0..len)
                .map(|_| {
                    let k = next();
                    let any = alphabet[k % alphabet.len()];
                    match i % 5 {
                        0 => any,
                        1 if k < 60 => b'(',
                        2 if k < 70 => b'-',
                        2 if k < 90 => b' ',
                        3 if k < 55 => b'{',
                        3 if k < 95 => b'}',
                        4 if k < 50 => b'*',
                        4 if k < 99 => b'\n',
                        1 | 2 => any,
                        _ => b'x',
                    }
                })
                .collect();
            cases.push(text);
        }
        let mut found = 0;
        for text in &cases {
            let want = one_at_a_time(text);
            assert_eq!(
                too_deep(text),
                want,
                "{}",
                String::from_utf8_lossy(&text[..80.min(text.len())])
            );
            found += usize::from(want.is_some());
        }
        // Both outcomes are exercised, not only the common one.
        assert!(found > 100 && found < cases.len() - 100, "{found} of {}", cases.len());
    }
}
