//! `cargo xtask bench`: every benchmark in one run (the analyzer on the generated monorepo, on
//! the npm corpus and on the Rust registry corpus, then the runtime: the embedded broker,
//! Redis Streams and the sidecar), then every ratio and round table of the run again, together.
//! `cargo xtask bench analyze` generates the synthetic monorepo (cached under
//! `$HOME/.cache/busbar/bench`, regenerated when the generator changes) and runs the analyzer
//! benchmark (`crates/busbar_cli/benches/analyze.rs`, release profile) on it alone; the other
//! names run one benchmark each.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cache_dir, workspace_root};
use busbar_testdata::corpus::{self, Shape};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut out = Vec::new();
    let extra = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("all") | None => all(),
        Some("analyze") => analyze(extra, &mut out),
        Some("analyze-rust") => analyze_rust(extra, &mut out),
        Some("analyze-npm") => analyze_npm(extra, &mut out),
        Some("runtime") => runtime(extra, &mut out),
        Some("app") => app(),
        Some("aws") => aws(args.get(1..).unwrap_or_default()),
        Some(other) => {
            bail!(
                "unknown benchmark `{other}`; available: all (the default), analyze, analyze-rust, analyze-npm, runtime, aws, app"
            )
        }
    }
}

/// Every benchmark, one after the other, then their tables again under one heading.
fn all() -> Result<()> {
    let mut out = Vec::new();
    analyze(&[], &mut out)?;
    analyze_npm(&[], &mut out)?;
    analyze_rust(&[], &mut out)?;
    runtime(&[], &mut out)?;
    println!("\n==== every ratio of this run ====");
    for line in tables(&out) {
        println!("{line}");
    }
    Ok(())
}

/// The tables of a benchmark's output: each block that starts at a `ratio (per round)` or
/// `rounds (` header and ends at an empty line, under the last `corpus:` line before it.
fn tables(lines: &[String]) -> Vec<String> {
    let mut kept = Vec::new();
    let mut corpus: Option<&String> = None;
    let mut inside = false;
    for line in lines {
        if line.starts_with("corpus:") {
            corpus = Some(line);
        }
        if line.starts_with("ratio (per round)") || line.starts_with("rounds (") {
            kept.push(String::new());
            if line.starts_with("ratio") {
                kept.extend(corpus.take().cloned());
            }
            inside = true;
        } else if line.trim().is_empty() {
            inside = false;
        }
        if inside {
            kept.push(line.clone());
        }
    }
    kept
}

/// Runs a benchmark, its output shown as it comes and kept in `out`.
fn tee(mut cmd: Command, what: &str, out: &mut Vec<String>) -> Result<()> {
    use std::io::BufRead;
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        out.push(line);
    }
    // A table never runs on into the next benchmark's output.
    out.push(String::new());
    let status = child.wait()?;
    if !status.success() {
        bail!("the {what} benchmark failed ({status})");
    }
    Ok(())
}

/// The runtime benchmarks: in-process publish → deliver throughput and latency of the embedded
/// broker with Redis Streams as the reference (`crates/busbar_runtime/benches/runtime.rs`), then
/// the same through the sidecar over HTTP (`crates/busbar_sidecar/benches/sidecar.rs`).
/// `extra`: the message count.
fn runtime(extra: &[String], out: &mut Vec<String>) -> Result<()> {
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
        tee(cmd, bench, out)?;
    }
    Ok(())
}

/// The shim's overhead on AWS: the same publishes and receives with the AWS SDK directly and
/// through `busbar serve`'s sidecar, each on a fresh moto server
/// (`crates/busbar_conformance/benches/aws.rs`). `extra`: the message count.
fn aws(extra: &[String]) -> Result<()> {
    let tools = crate::ci::tools()?;
    let mut cmd = crate::ci::cargo();
    cmd.env("BUSBAR_MOTO", &tools.moto);
    cmd.args(["bench", "--quiet", "-p", "busbar_conformance", "--bench", "aws", "--"]).args(extra);
    let status = cmd.status().context("cannot run cargo bench")?;
    if !status.success() {
        bail!("the aws benchmark failed ({status})");
    }
    Ok(())
}

/// `extra` is passed to the benchmark: `--instructions` adds instruction counts (callgrind).
fn analyze(extra: &[String], out: &mut Vec<String>) -> Result<()> {
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
    analyzer_bench(&dir, extra, out)
}

/// Runs the analyzer benchmark (`crates/busbar_cli/benches/analyze.rs`) on `dir`.
fn analyzer_bench(dir: &std::path::Path, extra: &[String], out: &mut Vec<String>) -> Result<()> {
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
    cmd.arg(dir).args(extra);
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        cmd.env("CARGO_TARGET_DIR", cache_dir().join("target"));
    }
    tee(cmd, "analyzer", out)
}

/// `cargo xtask bench analyze-rust`: the analyzer benchmark on real Rust crates, the sources
/// cargo has downloaded for this workspace (`$CARGO_HOME/registry/src/*`), against syn's
/// parse-only time on the same files.
fn analyze_rust(extra: &[String], out: &mut Vec<String>) -> Result<()> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let src = home.join("registry").join("src");
    let mut dirs: Vec<_> = std::fs::read_dir(&src)
        .with_context(|| format!("cannot read {}", src.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let dir = dirs
        .into_iter()
        .next()
        .with_context(|| format!("no crate sources in {}", src.display()))?;
    let mut args = vec!["--rust".to_string()];
    args.extend(extra.iter().cloned());
    analyzer_bench(&dir, &args, out)
}

/// The packages of `cargo xtask bench analyze-npm`, pinned: libraries that publish their
/// TypeScript sources (`src/`), so the corpus is real code written by hand.
const NPM_CORPUS: &[&str] = &[
    "@effect/ai@0.37.0",
    "@effect/cli@0.77.2",
    "@effect/cluster@0.60.2",
    "@effect/experimental@0.61.1",
    "@effect/opentelemetry@4.0.1",
    "@effect/platform@0.97.2",
    "@effect/platform-node@4.0.6",
    "@effect/printer@0.51.0",
    "@effect/rpc@0.76.2",
    "@effect/sql@0.52.1",
    "@effect/sql-pg@4.1.5",
    "@effect/typeclass@0.41.0",
    "@effect/workflow@0.19.1",
    "@reduxjs/toolkit@2.16.0",
    "@sinclair/typebox@0.34.52",
    "@tanstack/form-core@1.33.5",
    "@tanstack/query-core@5.59.0",
    "@tanstack/router-core@1.171.39",
    "@tanstack/store@0.11.3",
    "@tanstack/table-core@9.3.1",
    "@tanstack/virtual-core@3.19.13",
    "@trpc/client@11.25.2",
    "@trpc/server@11.25.2",
    "@urql/core@6.0.3",
    "effect@3.22.5",
    "elysia@1.4.30",
    "fp-ts@2.16.9",
    "graphql-ws@6.4.2",
    "hono@4.13.23",
    "io-ts@2.2.22",
    "kysely@0.28.20",
    "mobx@7.1.3",
    "mobx-state-tree@9.0.0",
    "monocle-ts@2.3.13",
    "redux@5.0.1",
    "rxjs@7.8.1",
    "ts-pattern@5.9.2",
    "valibot@1.5.0",
    "wonka@6.3.6",
    "xstate@5.33.3",
    "zod@3.23.8",
];

/// `cargo xtask bench analyze-npm`: the analyzer benchmark on real TypeScript, the sources
/// the [`NPM_CORPUS`] packages publish, installed with npm into the cache once and copied out
/// of `node_modules` (which discovery never walks) with their `package.json` files, so bare
/// imports between them resolve as workspace packages. None uses a pubsub framework: this
/// measures what the pre-filter saves on code that cannot hold a fact, and `--parse-all` what
/// the whole frontend costs on it.
fn analyze_npm(extra: &[String], out: &mut Vec<String>) -> Result<()> {
    let base = cache_dir().join("ts-corpus");
    let tree = base.join("tree");
    let marker = base.join(".corpus-key");
    let key = NPM_CORPUS.join(" ");
    if std::fs::read_to_string(&marker).unwrap_or_default() != key {
        std::fs::create_dir_all(&base)?;
        std::fs::write(
            base.join("package.json"),
            "{ \"name\": \"ts-corpus\", \"private\": true }\n",
        )?;
        let mut npm = Command::new("npm");
        npm.current_dir(&base)
            .args(["install", "--no-audit", "--no-fund", "--ignore-scripts", "--legacy-peer-deps"])
            .args(NPM_CORPUS);
        crate::ci::step("npm install (the TypeScript corpus)", npm)?;
        if tree.exists() {
            std::fs::remove_dir_all(&tree)?;
        }
        let files = copy_sources(&base.join("node_modules"), &tree)?;
        eprintln!("copied {files} TypeScript files to {}", tree.display());
        std::fs::write(&marker, &key)?;
    }
    analyzer_bench(&tree, extra, out)
}

/// Copies the TypeScript sources (not declaration files) and `package.json` files under
/// `from` to `to`, a `node_modules` directory becoming `nm`; how many sources.
fn copy_sources(from: &std::path::Path, to: &std::path::Path) -> Result<usize> {
    let mut count = 0;
    let mut stack = vec![from.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let declaration = [".d.ts", ".d.mts", ".d.cts"].iter().any(|e| name.ends_with(e));
            let source = [".ts", ".tsx", ".mts", ".cts"].iter().any(|e| name.ends_with(e));
            if !kind.is_file() || !(name == "package.json" || source && !declaration) {
                continue;
            }
            let rel = path.strip_prefix(from)?;
            let renamed: std::path::PathBuf = rel
                .components()
                .map(|c| match c.as_os_str().to_str() {
                    Some("node_modules") => std::ffi::OsStr::new("nm"),
                    _ => c.as_os_str(),
                })
                .collect();
            let dest = to.join(renamed);
            std::fs::create_dir_all(dest.parent().context("a file has a parent")?)?;
            std::fs::copy(&path, &dest)?;
            count += usize::from(source);
        }
    }
    Ok(count)
}

/// `cargo xtask bench app`: a whole app on `@busbar/pubsub` under `busbar dev` (release):
/// the publish → handler latency through the SDK, the sidecar and back (p50/p99), and the
/// throughput of one service publishing as fast as it can (`sdk/typescript/bench/app`).
fn app() -> Result<()> {
    let mut build = crate::ci::cargo();
    build.args(["build", "--release", "-p", "busbar_cli"]);
    crate::ci::step("cargo build --release -p busbar_cli", build)?;
    let sdk = workspace_root().join("sdk/typescript");
    let mut npm = Command::new("npm");
    npm.args(["run", "build"]).current_dir(&sdk).env("BUSBAR_NPM", cache_dir().join("npm"));
    crate::ci::step("npm run build (sdk/typescript)", npm)?;
    let tmp = std::env::temp_dir().join(format!("busbar-bench-app-{}", std::process::id()));
    let app = tmp.join("app");
    copy_dir(&sdk.join("bench/app"), &app)?;
    std::fs::create_dir_all(app.join("node_modules/@busbar"))?;
    std::os::unix::fs::symlink(&sdk, app.join("node_modules/@busbar/pubsub"))?;
    let modules = cache_dir().join("npm/node_modules");
    std::os::unix::fs::symlink(modules.join("tsx"), app.join("node_modules/tsx"))?;
    let target = crate::e2e::target_dir();
    let out = tmp.join("bench.json");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut dev = Command::new(target.join("release/busbar"))
        .current_dir(&app)
        .args(["dev", ".", "--port", &port.to_string(), "--data"])
        .arg(tmp.join("data"))
        .env("BENCH_OUT", &out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("cannot start busbar dev")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let result = loop {
        if let Ok(text) = std::fs::read_to_string(&out)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        {
            break Ok(v);
        }
        if std::time::Instant::now() > deadline {
            break Err(anyhow::anyhow!("the benchmark app wrote no result within 180 s"));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = Command::new("kill").arg(dev.id().to_string()).status();
    let _ = dev.wait();
    let _ = std::fs::remove_dir_all(&tmp);
    let v = result?;
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!("app (SDK → sidecar → SDK, release busbar dev, {} round trips)", v["samples"]);
    println!(
        "  publish → handler latency  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        f("p50_ms"),
        f("p99_ms"),
        f("max_ms")
    );
    println!(
        "  one service publishing as fast as it can (64 in flight, 5 s): {:.0} publishes/s accepted, {:.0} msgs/s delivered",
        f("publish_per_s"),
        f("delivered_per_s")
    );
    Ok(())
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}
