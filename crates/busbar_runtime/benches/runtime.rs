//! `cargo xtask bench runtime`: publish → deliver through the embedded broker, in process.
//!
//! One topic with two subscriptions, 1 KiB messages, 16 concurrent publishers, every publish
//! durable (fsync'd) before it returns and every acknowledgement durable too. Prints the
//! throughput (messages delivered to both subscriptions per second of wall time) and the
//! publish→deliver latency percentiles. Arguments: `[MESSAGES]` (default 40,000).

#![allow(clippy::print_stdout, reason = "a benchmark reports on the terminal")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use busbar_runtime::{
    Broker, BrokerConfig, Clock, Delivery, HandlerFuture, Outcome, Publish, SubscriptionConfig,
    TopicConfig,
};

const PUBLISHERS: usize = 16;

fn main() {
    let total: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(40_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(total));
}

async fn run(total: usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        topics: vec![TopicConfig {
            name: "bench".into(),
            ordering_attribute: None,
            exactly_once: false,
            subscriptions: vec![SubscriptionConfig::named("a"), SubscriptionConfig::named("b")],
        }],
    };
    let broker = Broker::open(dir.path(), config, Clock::System).unwrap();
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
    println!(
        "embedded broker, in process: {total} messages of 1 KiB, 2 subscriptions, {PUBLISHERS} publishers"
    );
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
}
