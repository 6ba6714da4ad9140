//! `cargo xtask ci`: format check, clippy with `-D warnings`, and every test. Cargo's target
//! directory is kept outside the clone (`$HOME/.cache/busbar/target`) unless
//! `CARGO_TARGET_DIR` says otherwise.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{cache_dir, workspace_root};

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        cmd.env("CARGO_TARGET_DIR", cache_dir().join("target"));
    }
    cmd
}

fn step(name: &str, mut cmd: Command) -> Result<()> {
    let started = Instant::now();
    eprintln!("==> {name}");
    let status = cmd.status().with_context(|| format!("cannot start `{name}`"))?;
    if !status.success() {
        bail!("`{name}` failed ({status})");
    }
    eprintln!("<== {name}: ok in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn has_nextest() -> bool {
    cargo().args(["nextest", "--version"]).output().map(|o| o.status.success()).unwrap_or(false)
}

pub(crate) fn run() -> Result<()> {
    let started = Instant::now();
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    step("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    step("cargo clippy -D warnings", clippy)?;

    let mut test = cargo();
    if has_nextest() {
        test.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        step("cargo nextest run", test)?;
    } else {
        test.args(["test", "--workspace", "--no-fail-fast"]);
        step("cargo test", test)?;
    }
    eprintln!("ci: all green in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}
