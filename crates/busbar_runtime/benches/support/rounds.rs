//! Rounds for the runtime benchmarks (`runtime.rs`, and the sidecar's `sidecar.rs` through
//! `#[path]`): every variant runs once per round, the variants alternating, and the table at
//! the end gives each one's min/median/max, so a reader can judge them on a noisy machine.
//! `BUSBAR_BENCH_RUNS` sets the rounds (default 3).

#![allow(dead_code, reason = "each benchmark uses part of it")]

/// One variant's result in one round.
#[derive(Clone, Debug)]
pub struct Sample {
    pub variant: String,
    /// Messages delivered per second to each subscription (consumer group).
    pub delivered: f64,
    pub p99_ms: f64,
}

/// The row of [`disk_bound`].
pub const DISK_BOUND: &str = "disk bound: publishers / append+fsync (p99)";

/// What this disk allows, measured in the round like the variants: the time of one 4 KiB
/// append and `fsync` in a fresh file of the temporary directory (where the benchmarks keep
/// their data), 200 times. No durable broker can answer a publish sooner, so `publishers`
/// clients that each wait for their publish get at most `publishers / median` messages per
/// second, if every fsync covered all of them and nothing else took time. The row's latency
/// column is the p99 of one append and fsync.
pub fn disk_bound(publishers: usize) -> Sample {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut file = std::fs::File::create(dir.path().join("appends")).unwrap();
    let page = vec![b'x'; 4096];
    let mut took: Vec<std::time::Duration> = (0..200)
        .map(|_| {
            let began = std::time::Instant::now();
            file.write_all(&page).unwrap();
            file.sync_all().unwrap();
            began.elapsed()
        })
        .collect();
    took.sort_unstable();
    let median = took[took.len() / 2].as_secs_f64();
    println!(
        "disk: one 4 KiB append + fsync takes {:.0} us (median of 200), so {publishers} publishers waiting on one fsync each get at most {:.0} msgs/s",
        median * 1e6,
        publishers as f64 / median
    );
    Sample {
        variant: DISK_BOUND.to_string(),
        delivered: publishers as f64 / median,
        p99_ms: percentile_ms(&took, 0.99),
    }
}

pub fn rounds() -> usize {
    std::env::var("BUSBAR_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1)
}

/// The percentile `p` of sorted latencies, in milliseconds.
pub fn percentile_ms(sorted: &[std::time::Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[at].as_secs_f64() * 1e3
}

fn min_median_max(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// Prints the table: per variant (in first-seen order), delivered msgs/s and p99 latency as
/// min/median/max over the rounds. The header starts with `rounds (` (what
/// `cargo xtask bench` collects into its summary).
pub fn print_table(samples: &[Sample]) {
    let mut variants: Vec<&str> = Vec::new();
    for s in samples {
        if !variants.contains(&s.variant.as_str()) {
            variants.push(&s.variant);
        }
    }
    let n = samples.len() / variants.len().max(1);
    println!(
        "\n{:<44} {:>27}   {:>23}",
        format!("rounds ({n}): min / median / max"),
        "delivered msgs/s per sub",
        "p99 publish->deliver ms"
    );
    for v in variants {
        let of = |f: fn(&Sample) -> f64| {
            min_median_max(samples.iter().filter(|s| s.variant == v).map(f).collect())
        };
        let (d0, d1, d2) = of(|s| s.delivered);
        let (l0, l1, l2) = of(|s| s.p99_ms);
        println!("{v:<44} {d0:>7.0} / {d1:>7.0} / {d2:>7.0}   {l0:>5.1} / {l1:>5.1} / {l2:>5.1}");
    }
    println!();
}
