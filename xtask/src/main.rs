//! Development tasks. `cargo xtask <task>`:
//!
//! - `ci`: everything CI runs (format, lints, all tests, `e2e`), installing what they need.
//! - `e2e`: plans the example app for AWS and runs it against a moto server it starts.
//! - `bench analyze`: the analyzer benchmark on a generated monorepo (see `bench.rs`).
//! - `gen-corpus DIR`: writes the benchmark's synthetic monorepo to DIR.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool for developers reports on the terminal"
)]

mod bench;
mod ci;
mod corpus;
mod e2e;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("e2e") => e2e::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("gen-corpus") => match args.get(1) {
            Some(dir) => {
                corpus::write(&PathBuf::from(dir), &corpus::Shape::default()).map(|stats| {
                    println!(
                        "wrote {} files, {} lines, {} bytes to {dir}",
                        stats.files, stats.lines, stats.bytes
                    );
                })
            }
            None => Err(anyhow::anyhow!("usage: cargo xtask gen-corpus DIR")),
        },
        _ => Err(anyhow::anyhow!("usage: cargo xtask ci | e2e | bench analyze | gen-corpus DIR")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Where caches live: `$BUSBAR_CACHE` or `$HOME/.cache/busbar`, never inside the clone.
pub(crate) fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BUSBAR_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("busbar")
}
