//! `cargo xtask bench analyze`: generates the synthetic monorepo (cached under
//! `$HOME/.cache/busbar/bench`, regenerated when the generator changes) and runs the analyzer
//! benchmark (`crates/busbar_cli/benches/analyze.rs`, release profile) on it.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::corpus::{self, Shape};
use crate::{cache_dir, workspace_root};

pub(crate) fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("analyze") | None => analyze(args.get(1..).unwrap_or_default()),
        Some("runtime") => runtime(args.get(1..).unwrap_or_default()),
        Some(other) => bail!("unknown benchmark `{other}`; available: analyze, runtime"),
    }
}

/// The runtime benchmarks: in-process publish → deliver throughput and latency of the embedded
/// broker with Redis Streams as the reference (`crates/busbar_runtime/benches/runtime.rs`), then
/// the same through the sidecar over HTTP (`crates/busbar_sidecar/benches/sidecar.rs`).
/// `extra`: the message count.
fn runtime(extra: &[String]) -> Result<()> {
    // The reference: Debian's redis-server, installed when missing.
    let redis = std::path::Path::new("/usr/bin/redis-server");
    if !redis.exists() {
        let mut apt = Command::new("apt-get");
        apt.args(["install", "-y", "redis-server"]);
        crate::ci::step("apt-get install -y redis-server", apt)?;
    }
    // The sidecar's message count is half the broker's: HTTP is the slower path.
    let half =
        extra.first().and_then(|n| n.parse::<usize>().ok()).map(|n| (n / 2).max(1).to_string());
    for (package, bench, args) in [
        ("busbar_runtime", "runtime", extra.to_vec()),
        ("busbar_sidecar", "sidecar", half.into_iter().collect()),
    ] {
        let mut cmd = crate::ci::cargo();
        cmd.env("BUSBAR_REDIS_SERVER", redis);
        cmd.args(["bench", "--quiet", "-p", package, "--bench", bench, "--"]).args(args);
        let status = cmd.status().context("cannot run cargo bench")?;
        if !status.success() {
            bail!("the {bench} benchmark failed ({status})");
        }
    }
    Ok(())
}

/// `extra` is passed to the benchmark: `--instructions` adds instruction counts (callgrind).
fn analyze(extra: &[String]) -> Result<()> {
    let shape = Shape::default();
    let dir = cache_dir().join("bench").join("corpus");
    let marker = dir.join(".corpus-key");
    let current = std::fs::read_to_string(&marker).unwrap_or_default();
    if current != shape.key() {
        eprintln!("generating the benchmark monorepo in {}", dir.display());
        let stats = corpus::write(&dir, &shape)?;
        std::fs::write(&marker, shape.key())?;
        eprintln!(
            "  {} files, {} lines, {:.1} MB",
            stats.files,
            stats.lines,
            stats.bytes as f64 / 1e6
        );
    }
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root()).args([
        "bench",
        "--quiet",
        "-p",
        "busbar_cli",
        "--bench",
        "analyze",
        "--",
    ]);
    cmd.arg(&dir).args(extra);
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        cmd.env("CARGO_TARGET_DIR", cache_dir().join("target"));
    }
    let status = cmd.status().context("cannot run cargo bench")?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}
