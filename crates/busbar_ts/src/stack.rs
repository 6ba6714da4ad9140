//! Keeping swc's recursion within the stack it runs on.
//!
//! swc's parser is recursive descent, and dropping or visiting its tree recurses too; a file
//! nested deeply enough (a million `!`, a hundred thousand nested arrows or brackets) would
//! overflow the stack, and a stack overflow aborts the process: no diagnostic, no other file's
//! results. So before a file is parsed, [`plan`] bounds the stack it can need from its bytes:
//!
//! - every byte has a weight: the most stack a nesting level was measured to take, per byte of
//!   the level's source, for the levels that byte can open (numbers below);
//! - the sum over the file, doubled for safety, bounds parse, extraction and drop together.
//!
//! A file whose bound fits the stack left on its thread is analyzed there (most files are
//! small enough that the sum is not even computed). One that fits a fresh worker-sized stack
//! is analyzed on one ([`on_fresh_stack`]). A file whose bound exceeds even that (a 10 MB file
//! of ordinary code does, since the bound counts every byte as if it nested) is first analyzed
//! in a child process, `busbar __check-file`, on the same fresh stack: if the child finishes,
//! the analysis is known to fit and runs here; if it dies, the file is reported as nested too
//! deeply (BB0012) and every other file is still analyzed.
//!
//! Measured by nesting each construct until a 256 MiB stack overflowed, with release builds on
//! x86-64 (swc_ecma_parser 47); stack per nesting level and the level's source: `(`…`)` 3.2 KB, `[(`…`)]` 5.2 KB, `(a=>`…`)` 5.2 KB, `()=>` 3.0 KB,
//! `a=>` 2.5 KB, `A<`…`>` 2.2 KB, `[`…`]` in a type 2.7 KB, `{`…`}` 1.5 KB, `{a:`…`}` in a type
//! 2.7 KB, `a:` (labels) 1.1 KB, `a=` 0.7 KB, `new ` 0.5 KB, `!` 0.4 KB, `x.b`, `x()`, `a+`
//! chains 0.1 KB (the parser loops, dropping and visiting recurse). Debug builds measured within
//! the same weights.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Stack size of the analysis worker threads (the pool `busbar_analysis` starts), and of the
/// fresh stack a file that needs more than its thread has left is analyzed on.
pub(crate) use busbar_analysis::WORKER_STACK;

/// The hidden subcommand of the `busbar` binary that analyzes one file read from stdin on a
/// fresh stack and exits 0 if that finished ([`check_file_main`]).
pub const CHECK_SUBCOMMAND: &str = "__check-file";

/// Stack the analysis of a file uses besides what the weights cover: the frames around the
/// parser and the extractor.
const RESERVE: u64 = 256 << 10;

/// The measured weights are doubled.
const SAFETY: u64 = 2;

/// Stack bytes one byte of source may cost, at most (see the module documentation).
const WEIGHTS: [u16; 256] = {
    let mut w = [120u16; 256];
    w[b'(' as usize] = 1600;
    w[b')' as usize] = 1600;
    w[b'[' as usize] = 1400;
    w[b']' as usize] = 1400;
    w[b'{' as usize] = 1400;
    w[b'}' as usize] = 1400;
    w[b'=' as usize] = 1400;
    w[b'<' as usize] = 1100;
    w[b'>' as usize] = 1100;
    w[b':' as usize] = 1000;
    w[b'!' as usize] = 400;
    w[b'~' as usize] = 400;
    w[b'-' as usize] = 400;
    w[b'+' as usize] = 400;
    w[b'?' as usize] = 300;
    w[b'.' as usize] = 200;
    w[b'`' as usize] = 200;
    w
};

const MAX_WEIGHT: u64 = 1600;

/// Where a file's analysis runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// On the current thread's stack.
    Here,
    /// On a fresh stack of [`WORKER_STACK`] bytes.
    FreshStack,
    /// Too much for a fresh stack by the bound: check in a child process first.
    Check,
}

/// Decides where the analysis of `text` can run safely.
pub(crate) fn plan(text: &[u8]) -> Plan {
    let remaining = stacker::remaining_stack().unwrap_or(0) as u64;
    // Most files are small enough that even every byte at the heaviest weight fits.
    if (text.len() as u64).saturating_mul(MAX_WEIGHT * SAFETY) + RESERVE <= remaining {
        return Plan::Here;
    }
    let need = bound(text);
    if need <= remaining {
        Plan::Here
    } else if need <= WORKER_STACK as u64 {
        Plan::FreshStack
    } else {
        Plan::Check
    }
}

/// The stack the analysis of `text` may need, at most.
fn bound(text: &[u8]) -> u64 {
    let sum: u64 = text.iter().map(|&b| u64::from(WEIGHTS[b as usize])).sum();
    sum.saturating_mul(SAFETY).saturating_add(RESERVE)
}

/// Runs `f` on a fresh stack of [`WORKER_STACK`] bytes (mapped lazily: only the pages used
/// cost memory).
pub(crate) fn on_fresh_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::grow(WORKER_STACK, f)
}

/// Analyzes a file in a child process (`exe __check-file`), on the fresh stack the caller will
/// use. `Some(true)`: it finished; `Some(false)`: it died (overflowed); `None`: no child could
/// be run.
pub(crate) fn check_in_child(
    exe: &Path,
    rel: &str,
    ctx: crate::facts::FileContext,
    bytes: &[u8],
) -> Option<bool> {
    let mut cmd = Command::new(exe);
    cmd.arg(CHECK_SUBCOMMAND);
    if ctx.in_service {
        cmd.arg("--in-service");
    }
    if ctx.declares_service {
        cmd.arg("--declares-service");
    }
    cmd.arg("--").arg(rel);
    // The child's own reports (a stack overflow message) are not busbar's output.
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().ok()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A child that died early closes the pipe; its status says so.
        let _ = stdin.write_all(bytes);
    }
    let status = child.wait().ok()?;
    Some(status.success())
}

/// The child side of [`check_in_child`]: analyzes `bytes` as the file `rel` on a fresh stack,
/// exactly as the parent would. Returning at all means it fits.
pub fn check_file_main(rel: &str, in_service: bool, declares_service: bool, bytes: Vec<u8>) {
    let ctx = crate::facts::FileContext { declares_service, in_service };
    if let Ok(source) = crate::parse::decode(rel.into(), bytes) {
        let facts = on_fresh_stack(|| crate::parse::guarded(source, ctx));
        drop(facts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_run_here_and_the_bound_grows_with_nesting() {
        let remaining = stacker::remaining_stack().unwrap() as u64;
        assert!(remaining > 1 << 20, "tests run on threads with some stack");
        assert_eq!(plan(b"const x = 1;\n"), Plan::Here);
        let parens = "(".repeat(100_000) + &")".repeat(100_000);
        assert_eq!(bound(parens.as_bytes()), 200_000 * 1600 * SAFETY + RESERVE);
        assert_eq!(plan(parens.as_bytes()), Plan::Check);
        let plain = "a".repeat(200_000);
        assert!(bound(plain.as_bytes()) < bound(parens.as_bytes()) / 10);
    }
}
