//! The analyzer benchmark, run by `cargo xtask bench analyze` on a generated monorepo, and
//! by `cargo xtask bench analyze-rust` on real Rust crates (`--rust`: the sources cargo has
//! downloaded; parse-only is syn with the Rust frontend's settings, on the files its module
//! trees reach).
//!
//! Each phase runs in a fresh child process (so peak RSS is per phase), in interleaved rounds;
//! the table shows the median round. Phases: reading the discovered files; parsing them with swc using
//! exactly the analyzer's parser settings (no visiting, no resolution); the full
//! `busbar analyze --format json` on one thread and on all threads (discovery, parsing,
//! extraction, resolution, model, diagnostics, JSON).

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a benchmark reports on stdout")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rounds of every phase (`BUSBAR_BENCH_RUNS` overrides, for a quick look).
fn runs() -> usize {
    std::env::var("BUSBAR_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(11)
}

fn main() {
    // The same allocator settings as the `busbar` binary, for every phase.
    busbar_cli::tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("--phase") {
        let (phase, dir) = (&args[1], PathBuf::from(&args[2]));
        phase_main(phase, &dir);
        return;
    }
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: analyze CORPUS_DIR [--rust] [--instructions]");
        std::process::exit(2);
    };
    if args.iter().any(|a| a == "--rust") {
        // Real crates use no busbar: every package counts (inherited by every phase's child).
        #[expect(unsafe_code, reason = "set before any thread or child process starts")]
        // SAFETY: the benchmark is single-threaded here; nothing reads the environment at once.
        unsafe {
            std::env::set_var(busbar_rs::EVERY_PACKAGE_ENV, "1");
        }
        // The files the Rust frontend reads, found once (untimed) for the read and parse phases.
        let list = std::env::temp_dir().join(format!("busbar-bench-rs-{}.txt", std::process::id()));
        let text: String =
            rust_files(&dir).iter().map(|(_, abs)| format!("{}\n", abs.display())).collect();
        std::fs::write(&list, text).expect("the temp directory is writable");
        remember_file_list(&list);
    }
    if args.iter().any(|a| a == "--instructions") {
        instructions(&dir);
        forget_file_list();
        return;
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let phases = [
        ("read-only", "read".to_string()),
        ("parse-only, 1 thread", "parse".to_string()),
        ("analyze, 1 thread", "analyze:1".to_string()),
        ("analyze --parse-all, 1 th.", "analyze-all:1".to_string()),
        (
            Box::leak(format!("analyze, {threads} threads").into_boxed_str()) as &str,
            format!("analyze:{threads}"),
        ),
    ];
    // Rounds interleave the phases, so drift in the machine's speed (a busy neighbour, CPU
    // frequency) affects every phase alike; each phase reports its median round.
    let rounds = runs();
    let mut runs: Vec<Vec<PhaseResult>> = vec![Vec::new(); phases.len()];
    for _ in 0..rounds {
        for (i, (_, phase)) in phases.iter().enumerate() {
            runs[i].push(run_child(phase, &dir));
        }
    }
    let mut results = Vec::new();
    for ((label, _), phase_runs) in phases.iter().zip(&runs) {
        let mut sorted = phase_runs.clone();
        sorted.sort_by(|a, b| a.secs.total_cmp(&b.secs));
        let median = sorted[rounds / 2].clone();
        let rss = phase_runs.iter().map(|r| r.rss_kb).max().unwrap_or(0);
        let (min, max) = (sorted[0].secs, sorted[rounds - 1].secs);
        results.push((*label, median, rss, min, max));
    }
    let files = results[0].1.files;
    let bytes = results[0].1.bytes;
    println!(
        "\ncorpus: {} ({files} files, {:.1} MB), {rounds} rounds",
        dir.display(),
        bytes as f64 / 1e6
    );
    println!(
        "{:<27} {:>10} {:>10} {:>10} {:>9} {:>8} {:>11}",
        "phase", "min", "median", "max", "files/s", "MB/s", "peak RSS"
    );
    for (label, r, rss, min, max) in &results {
        println!(
            "{:<27} {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>9.0} {:>8.1} {:>8.1} MB",
            label,
            min * 1e3,
            r.secs * 1e3,
            max * 1e3,
            r.files as f64 / r.secs,
            r.bytes as f64 / 1e6 / r.secs,
            *rss as f64 / 1024.0
        );
    }
    // Ratios per round (the phases of a round ran back to back), then min/median/max.
    let ratio = |a: usize, b: usize, what: fn(&PhaseResult) -> f64| -> (f64, f64, f64) {
        let mut r: Vec<f64> =
            runs[a].iter().zip(&runs[b]).map(|(x, y)| what(x) / what(y)).collect();
        r.sort_by(f64::total_cmp);
        (r[0], r[r.len() / 2], r[r.len() - 1])
    };
    let secs = |r: &PhaseResult| r.secs;
    let rss = |r: &PhaseResult| r.rss_kb as f64;
    println!("\n{:<44} {:>7} {:>7} {:>7}", "ratio (per round)", "min", "median", "max");
    let line = |what: &str, (lo, mid, hi): (f64, f64, f64), target: &str| {
        println!("{what:<44} {lo:>6.2}x {mid:>6.2}x {hi:>6.2}x  {target}");
    };
    line(
        "analysis / parse-only, 1 thread",
        ratio(2, 1, secs),
        "(target < 1.0 with the pre-filter)",
    );
    line("analysis --parse-all / parse-only, 1 thread", ratio(3, 1, secs), "(target <= 1.30x)");
    line(
        &format!("speed-up, {threads} threads vs 1"),
        ratio(2, 4, secs),
        "(target >= 1.70x on 2 cores)",
    );
    line("peak RSS, analysis / parse-only", ratio(2, 1, rss), "(target <= 1.25x)");
    line("peak RSS, analysis --parse-all / parse-only", ratio(3, 1, rss), "");
    println!("model: {}", results[2].1.summary);
    if results[2].1.summary != results[3].1.summary {
        println!("model with --parse-all: {}", results[3].1.summary);
    }
    forget_file_list();
}

/// Set in the child when only instructions are counted: skip reading the JSON back.
const NO_READBACK: &str = "BUSBAR_BENCH_NO_READBACK";

/// Instruction counts of the parse-only and the one-thread analysis phases, under callgrind:
/// repeatable whatever the machine's load, unlike times. Both processes also discover the files
/// first (outside the timed region of the time benchmark), which both counts include.
fn instructions(dir: &Path) {
    let exe = std::env::current_exe().expect("the benchmark knows its own path");
    let count = |phase: &str| -> Option<u64> {
        let out_file =
            std::env::temp_dir().join(format!("busbar-cg-{}-{phase}.out", std::process::id()));
        let mut cmd = Command::new("valgrind");
        if let Some(list) = FILES.get() {
            cmd.env(FILES_ENV, list);
        }
        let out = cmd
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out_file.display()))
            .arg(&exe)
            .env(NO_READBACK, "1")
            .args(["--phase", phase])
            .arg(dir)
            .output()
            .ok()?;
        let _ = std::fs::remove_file(&out_file);
        let text = String::from_utf8_lossy(&out.stderr);
        let line = text.lines().find(|l| l.contains("Collected :"))?;
        line.rsplit(':').next()?.trim().parse().ok()
    };
    match (count("parse"), count("analyze:1")) {
        (Some(parse), Some(analyze)) => {
            println!("instructions (callgrind): parse-only {parse}, analyze 1 thread {analyze}");
            println!(
                "analysis / parse-only by instructions: {:.2}x",
                analyze as f64 / parse as f64
            );
        }
        _ => println!("instruction counts need valgrind (apt-get install valgrind)"),
    }
}

#[derive(Clone, Debug)]
struct PhaseResult {
    secs: f64,
    files: usize,
    bytes: usize,
    rss_kb: u64,
    summary: String,
}

fn run_child(phase: &str, dir: &Path) -> PhaseResult {
    let exe = std::env::current_exe().expect("the benchmark knows its own path");
    let mut cmd = Command::new(exe);
    if let Some(list) = FILES.get() {
        cmd.env(FILES_ENV, list);
    }
    let out =
        cmd.args(["--phase", phase]).arg(dir).output().expect("the benchmark can start itself");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("RESULT ")).unwrap_or_else(|| {
        panic!("phase {phase} printed no result: {text}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    let mut parts = line.splitn(6, ' ').skip(1);
    let mut next = || parts.next().unwrap_or_default().to_string();
    PhaseResult {
        secs: next().parse().unwrap_or(f64::NAN),
        files: next().parse().unwrap_or(0),
        bytes: next().parse().unwrap_or(0),
        rss_kb: next().parse().unwrap_or(0),
        summary: next(),
    }
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The Rust files `busbar analyze` reads in `dir`: those its module trees reach.
fn rust_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let options = busbar_analysis::Options { threads: 1, checker: None, parse_all: false };
    let config = busbar_config::Config::default();
    let analysis = busbar_analysis::analyze(dir, &config, &options, &[busbar_rs::FRONTEND]);
    let mut files: Vec<(String, PathBuf)> = analysis
        .sources
        .files()
        .map(|f| f.path().to_string())
        .filter(|p| p.ends_with(".rs"))
        .map(|p| (p.clone(), dir.join(p)))
        .collect();
    files.sort();
    files
}

/// The environment variable naming the file list of `--rust`.
const FILES_ENV: &str = "BUSBAR_BENCH_FILES";

static FILES: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The file list the children of `--rust` read (passed in their environment).
fn remember_file_list(list: &Path) {
    let _ = FILES.set(list.to_path_buf());
}

/// Removes the file list once every child has run.
fn forget_file_list() {
    if let Some(list) = FILES.get() {
        let _ = std::fs::remove_file(list);
    }
}

fn phase_main(phase: &str, dir: &Path) {
    let rust = std::env::var_os(FILES_ENV).map(PathBuf::from);
    let files: Vec<(String, PathBuf)> = match &rust {
        Some(list) => std::fs::read_to_string(list)
            .unwrap_or_default()
            .lines()
            .map(|l| (l.to_string(), PathBuf::from(l)))
            .collect(),
        None => busbar_analysis::discover_files(dir, 1, &busbar_ts::FRONTEND),
    };
    let mut bytes = 0usize;
    let mut summary = String::new();
    let mut analyzed = None;
    let mut analyzed_rss = None;
    let started = Instant::now();
    match phase {
        "read" => {
            for (_, abs) in &files {
                bytes += std::fs::read_to_string(abs).map(|t| t.len()).unwrap_or(0);
            }
        }
        "parse" => {
            for (rel, abs) in &files {
                bytes += if rust.is_some() {
                    busbar_rs::parse_only(abs)
                } else {
                    busbar_ts::parse_only(abs, rel)
                };
            }
        }
        other => {
            let parse_all = other.starts_with("analyze-all:");
            let threads = other.rsplit(':').next().unwrap_or("1");
            // The JSON goes to a file, as `busbar analyze --format json > model.json` would.
            let out_path =
                std::env::temp_dir().join(format!("busbar-bench-{}.json", std::process::id()));
            let mut out = std::fs::File::create(&out_path).expect("the temp directory is writable");
            let mut err = Vec::new();
            let dir = dir.to_string_lossy();
            let mut args =
                vec!["busbar", "analyze", &dir, "--format", "json", "--threads", threads];
            if parse_all {
                args.push("--parse-all");
            }
            let code = busbar_cli::run(
                args,
                Path::new("."),
                &busbar_cli::Host::default(),
                &mut out,
                &mut err,
            );
            // The clock stops here: reading the output back is the benchmark's own work.
            analyzed = Some(started.elapsed().as_secs_f64());
            // So is its memory: the JSON read back and parsed below is the benchmark's.
            analyzed_rss = Some(peak_rss_kb());
            drop(out);
            let out = if std::env::var_os(NO_READBACK).is_some() {
                Vec::new()
            } else {
                std::fs::read(&out_path).unwrap_or_default()
            };
            let _ = std::fs::remove_file(&out_path);
            let json: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
            let count = |key: &str| json.get(key).and_then(|v| v.as_array()).map_or(0, Vec::len);
            summary = format!(
                "exit {code}, {} services, {} topics, {} diagnostics, {} KB of JSON",
                count("services"),
                count("topics"),
                count("diagnostics"),
                out.len() / 1024
            );
            bytes = files
                .iter()
                .map(|(_, abs)| std::fs::metadata(abs).map(|m| m.len() as usize).unwrap_or(0))
                .sum();
        }
    }
    let secs = analyzed.unwrap_or_else(|| started.elapsed().as_secs_f64());
    let rss = analyzed_rss.unwrap_or_else(peak_rss_kb);
    println!("RESULT {secs} {} {bytes} {rss} {summary}", files.len());
}
