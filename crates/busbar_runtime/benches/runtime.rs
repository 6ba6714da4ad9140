//! `cargo xtask bench runtime`: publish → deliver through the embedded broker, in process (on
//! tokio's default runtime, then on one worker).
//!
//! One topic with two subscriptions, 1 KiB messages, 16 concurrent publishers, every publish
//! durable (fsync'd) before it returns and every acknowledgement durable too. Prints the
//! throughput (messages delivered to both subscriptions per second of wall time) and the
//! publish→deliver latency percentiles; then the same workload on Redis Streams as the reference
//! (`BUSBAR_REDIS_SERVER`). Arguments: `[MESSAGES]` (default 40,000). The three variants
//! alternate for `BUSBAR_BENCH_RUNS` rounds (default 3), with the disk's own bound measured in
//! each round (`rounds::disk_bound`), then a table gives each one's min/median/max
//! (`rounds.rs`).

#![allow(clippy::print_stdout, reason = "a benchmark reports on the terminal")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use busbar_runtime::{
    Clock, Delivery, EmbeddedBroker, HandlerFuture, Outcome, Publish, RuntimeConfig,
    RuntimeSubscriptionConfig, RuntimeTopic,
};

const PUBLISHERS: usize = 16;

/// The allocator of the `busbar` binary, which hosts the broker (`busbar dev`) and the sidecar
/// (`busbar serve`), with its default options (the binary's `tune_allocator` settings, which
/// live in `busbar_cli`, are not applied here).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/rounds.rs"]
mod rounds;
use rounds::Sample;

fn main() {
    let total: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(40_000);
    // Tokio's default (a worker per core), then one worker: on a small machine the store's
    // thread (SQLite and its fsync) then has a core of its own, and the tasks that publish and
    // deliver wake each other without crossing threads.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut samples = Vec::new();
    for _ in 0..rounds::rounds() {
        for workers in [cores, 1] {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
                .unwrap();
            samples.push(runtime.block_on(run(total, workers)));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        samples.extend(runtime.block_on(redis_reference::run(total)));
        samples.push(rounds::disk_bound(PUBLISHERS));
    }
    rounds::print_table(&samples);
}

async fn run(total: usize, workers: usize) -> Sample {
    let dir = tempfile::tempdir().unwrap();
    let subscription = |name: &str| RuntimeSubscriptionConfig::new(name, Default::default());
    let config = RuntimeConfig::new(
        "bench",
        vec![RuntimeTopic::new("bench", vec![subscription("a"), subscription("b")])],
    );
    let broker = EmbeddedBroker::open(dir.path(), config, Clock::System).unwrap();
    let start = Instant::now();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::with_capacity(2 * total)));
    let delivered = Arc::new(tokio::sync::Semaphore::new(0));
    for sub in ["a", "b"] {
        let (lat, done) = (latencies.clone(), delivered.clone());
        let handler = move |d: Delivery| -> HandlerFuture {
            let sent = u64::from_le_bytes(d.message.data[..8].try_into().unwrap());
            let now = start.elapsed().as_nanos() as u64;
            lat.lock().unwrap().push(Duration::from_nanos(now.saturating_sub(sent)));
            done.add_permits(1);
            Box::pin(async { Outcome::Success })
        };
        broker.subscribe("bench", sub, Arc::new(handler)).unwrap();
    }
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let broker = broker.clone();
        publishers.push(tokio::spawn(async move {
            for _ in (p..total).step_by(PUBLISHERS) {
                let mut data = vec![b'x'; 1024];
                data[..8].copy_from_slice(&(start.elapsed().as_nanos() as u64).to_le_bytes());
                broker.publish("bench", Publish { data, ..Publish::default() }).await.unwrap();
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    let published = start.elapsed();
    let _all = delivered.acquire_many(2 * total as u32).await.unwrap();
    let elapsed = start.elapsed();
    while broker.stored_messages().await.unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let acked = start.elapsed();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let variant = if workers == 1 {
        "embedded broker, 1 tokio worker".to_string()
    } else {
        format!("embedded broker, default runtime ({workers} workers)")
    };
    println!("{variant}: {total} messages of 1 KiB, 2 subscriptions, {PUBLISHERS} publishers");
    println!(
        "  publish:   {:>8.0} msgs/s (all publishes durable in {:.2} s)",
        total as f64 / published.as_secs_f64(),
        published.as_secs_f64()
    );
    println!(
        "  delivered: {:>8.0} msgs/s per subscription ({} deliveries in {:.2} s)",
        total as f64 / elapsed.as_secs_f64(),
        2 * total,
        elapsed.as_secs_f64()
    );
    println!("  acked:     all durable after {:.2} s", acked.as_secs_f64());
    println!(
        "  latency publish -> deliver: p50 {:.1} ms, p99 {:.1} ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    Sample {
        variant,
        delivered: total as f64 / elapsed.as_secs_f64(),
        p99_ms: rounds::percentile_ms(&lat, 0.99),
    }
}

/// The same workload on Redis Streams, as the reference a user might pick instead:
/// `redis-server` with `appendfsync always` (every write fsync'd before the reply), XADD from
/// 16 publishers, two consumer groups reading with XREADGROUP and acknowledging with XACK.
mod redis_reference {
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use redis::AsyncCommands;
    use redis::streams::{StreamReadOptions, StreamReadReply};

    use super::PUBLISHERS;
    use super::rounds::{self, Sample};

    struct Server(Child);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    pub async fn run(total: usize) -> Option<Sample> {
        let Some(server_bin) = std::env::var_os("BUSBAR_REDIS_SERVER") else {
            println!(
                "redis reference: skipped (BUSBAR_REDIS_SERVER is not set; `cargo xtask bench runtime` sets it)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let _server = Server(
            Command::new(server_bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--appendonly", "yes"])
                .args(["--appendfsync", "always", "--save", ""])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server starts"),
        );
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut admin = None;
        for _ in 0..200 {
            if let Ok(c) = client.get_multiplexed_async_connection().await {
                admin = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let mut admin = admin.expect("redis-server answers");
        for group in ["a", "b"] {
            let _: () = admin.xgroup_create_mkstream("bench", group, "$").await.unwrap();
        }
        let start = Instant::now();
        let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let mut consumers = Vec::new();
        for group in ["a", "b"] {
            let mut con = client.get_multiplexed_async_connection().await.unwrap();
            let lat = latencies.clone();
            consumers.push(tokio::spawn(async move {
                let mut seen = 0;
                let options = StreamReadOptions::default().group(group, "c").count(256).block(1000);
                while seen < total {
                    let reply: StreamReadReply =
                        con.xread_options(&["bench"], &[">"], &options).await.unwrap();
                    let mut ids = Vec::new();
                    for key in reply.keys {
                        for entry in key.ids {
                            if let Some(redis::Value::BulkString(data)) = entry.map.get("d") {
                                let sent = u64::from_le_bytes(data[..8].try_into().unwrap());
                                let now = start.elapsed().as_nanos() as u64;
                                lat.lock()
                                    .unwrap()
                                    .push(Duration::from_nanos(now.saturating_sub(sent)));
                            }
                            ids.push(entry.id);
                        }
                    }
                    if !ids.is_empty() {
                        let _: i64 = con.xack("bench", group, &ids).await.unwrap();
                    }
                    seen += ids.len();
                }
            }));
        }
        let mut publishers = Vec::new();
        for p in 0..PUBLISHERS {
            let mut con = client.get_multiplexed_async_connection().await.unwrap();
            publishers.push(tokio::spawn(async move {
                for _ in (p..total).step_by(PUBLISHERS) {
                    let mut data = vec![b'x'; 1024];
                    data[..8].copy_from_slice(&(start.elapsed().as_nanos() as u64).to_le_bytes());
                    let _: String = con.xadd("bench", "*", &[("d", data)]).await.unwrap();
                }
            }));
        }
        for p in publishers {
            p.await.unwrap();
        }
        let published = start.elapsed();
        for c in consumers {
            c.await.unwrap();
        }
        let elapsed = start.elapsed();
        let mut lat = latencies.lock().unwrap().clone();
        lat.sort_unstable();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!("redis streams (appendfsync always), same workload:");
        println!("  publish:   {:>8.0} msgs/s", total as f64 / published.as_secs_f64());
        println!(
            "  delivered: {:>8.0} msgs/s per consumer group ({:.2} s)",
            total as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        );
        println!(
            "  latency publish -> deliver: p50 {:.1} ms, p99 {:.1} ms",
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3
        );
        Some(Sample {
            variant: "redis streams (appendfsync always)".into(),
            delivered: total as f64 / elapsed.as_secs_f64(),
            p99_ms: rounds::percentile_ms(&lat, 0.99),
        })
    }
}
