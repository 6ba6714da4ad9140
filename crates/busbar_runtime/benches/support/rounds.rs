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
