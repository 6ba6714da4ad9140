//! Development tasks. `cargo xtask <task>`:
//!
//! - `ci`: everything CI runs (format, lints, all tests, `e2e`), installing what they need.
//! - `e2e`: plans the example app for AWS and runs it against a moto server it starts.
//! - `bench`: every benchmark in one run, then all their ratios together; `bench analyze`,
//!   `analyze-npm`, `analyze-rust`, `runtime`, `aws`, `app`: one of them (see `bench.rs`).
//! - `gen-corpus DIR`: writes the benchmark's synthetic monorepo to DIR.
//! - `gen-app DIR [SERVICES TOPICS SEED]`: writes the generated pub/sub app the diagram tests
//!   use (default 50 services, 80 topics, seed 1).
//! - `screenshot`: renders the example app's HTML diagram in headless Chromium and saves
//!   `docs/diagram-example-shop.png` (the picture in the README).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool for developers reports on the terminal"
)]

mod bench;
mod browser;
mod ci;
mod e2e;
mod sarif;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("e2e") => e2e::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("gen-corpus") => match args.get(1) {
            Some(dir) => busbar_testdata::corpus::write(
                &PathBuf::from(dir),
                &busbar_testdata::corpus::Shape::default(),
            )
            .map_err(anyhow::Error::from)
            .map(|stats| {
                println!(
                    "wrote {} files, {} lines, {} bytes to {dir}",
                    stats.files, stats.lines, stats.bytes
                );
            }),
            None => Err(anyhow::anyhow!("usage: cargo xtask gen-corpus DIR")),
        },
        Some("gen-app") => gen_app(&args[1..]),
        Some("screenshot") => browser::screenshot(),
        _ => Err(anyhow::anyhow!(
            "usage: cargo xtask ci | e2e | bench analyze | gen-corpus DIR | gen-app DIR [SERVICES TOPICS SEED] | screenshot"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn gen_app(args: &[String]) -> anyhow::Result<()> {
    let Some(dir) = args.first() else {
        anyhow::bail!("usage: cargo xtask gen-app DIR [SERVICES TOPICS SEED]");
    };
    let number = |i: usize, default: usize| -> anyhow::Result<usize> {
        args.get(i).map_or(Ok(default), |s| s.parse().map_err(|e| anyhow::anyhow!("{s}: {e}")))
    };
    let (services, topics, seed) = (number(1, 50)?, number(2, 80)?, number(3, 1)?);
    busbar_testdata::write_generated_app(&PathBuf::from(dir), services, topics, seed as u64)?;
    println!("wrote an app of {services} services and {topics} topics to {dir}");
    Ok(())
}

/// The workspace root.
pub(crate) fn workspace_root() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
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
