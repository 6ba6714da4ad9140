//! `cargo xtask bench aws`: the overhead of the shim on AWS. The same messages (1 KiB of JSON,
//! 16 concurrent publishers, one subscription) go through SNS and SQS twice, each time on a
//! fresh moto server with the app's plan created on it:
//!
//! - directly with the AWS SDK: publish to the SNS topic; four receivers take up to 10 per
//!   call from the queue and delete each batch concurrently, as a careful hand-written
//!   consumer would;
//! - through `busbar serve`'s sidecar in-process (the Dapr HTTP API, graph enforcement and
//!   schema validation, `AwsBroker`, CloudEvent delivery over HTTP to an app).
//!
//! Both are timed from the first publish to the last message handled, and the ratio printed.
//! moto is the endpoint, so the numbers are moto's speed more than AWS's; the ratio is what the
//! shim costs on top. Arguments: `[MESSAGES]` (default 500; moto slows as it keeps every
//! message). Needs `BUSBAR_MOTO` (default: the tools venv's `moto_server`).

#![allow(clippy::print_stdout, clippy::unwrap_used, reason = "a benchmark")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use busbar_conformance::App;
use busbar_e2e::server::Server;
use busbar_plan::{Resources, Settings, Target};

const PUBLISHERS: usize = 16;

fn app() -> App {
    App::new(
        r#"import { Topic, Subscription } from "encore.dev/pubsub";
export interface Tick { t: number; pad: string }
export const bench = new Topic<Tick>("bench", { deliveryGuarantee: "at-least-once" });
new Subscription(bench, "s", { handler: async () => {} });
export const tick = () => bench.publish({ t: 0, pad: "" });
"#,
    )
}

fn body() -> String {
    format!(r#"{{"t":{:>20},"pad":"{}"}}"#, 0, "x".repeat(990))
}

/// A fresh moto with the app's plan on it: the topic's ARN and the queue's URL.
async fn provisioned(app: &App, moto: &Path) -> (Server, busbar_plan::AwsPlan, String, String) {
    let server = Server::moto(moto).unwrap();
    let settings = Settings {
        app: "bench".into(),
        prefix: "bench-".into(),
        tags: BTreeMap::new(),
        dapr_component: None,
    };
    let (plan, _) = busbar_plan::plan(&app.model, &app.graph, Target::Aws, &settings);
    let Resources::Aws(aws) = plan.resources else { panic!("AWS") };
    let made = busbar_e2e::aws::provision(&server.endpoint, &aws).await.unwrap();
    let topic = made.topic_arns[&format!("aws_sns_topic.{}", aws.topics[0].address)].clone();
    let queue = aws.queues.iter().find(|q| !q.dead_letter).unwrap();
    let url = made.queues[&format!("aws_sqs_queue.{}", queue.address)].url.clone();
    (server, aws, topic, url)
}

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let credentials = aws_sdk_sns::config::Credentials::new("b", "b", None, None, "bench");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await
}

/// Publishes and consumes `n` messages with the AWS SDK alone; the time it took.
async fn direct(app: &App, moto: &Path, n: usize) -> Duration {
    let (server, _, topic, url) = provisioned(app, moto).await;
    let config = sdk_config(&server.endpoint).await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let began = Instant::now();
    // Four receivers, each deleting its batch concurrently: as a careful hand-written consumer.
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let (sqs, url, seen) = (sqs.clone(), url.clone(), seen.clone());
            tokio::spawn(async move {
                while seen.load(std::sync::atomic::Ordering::SeqCst) < n {
                    let got = sqs
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .send()
                        .await
                        .unwrap();
                    let deletes = got.messages().iter().map(|m| {
                        sqs.delete_message()
                            .queue_url(&url)
                            .receipt_handle(m.receipt_handle().unwrap())
                            .send()
                    });
                    for deleted in futures_util::future::join_all(deletes).await {
                        deleted.unwrap();
                        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let (sns, topic) = (sns.clone(), topic.clone());
        publishers.push(tokio::spawn(async move {
            for _ in (p..n).step_by(PUBLISHERS) {
                sns.publish().topic_arn(&topic).message(body()).send().await.unwrap();
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    for c in consumers {
        c.await.unwrap();
    }
    began.elapsed()
}

/// Publishes `n` messages through the sidecar and waits for their delivery to the app.
async fn shim(app: &App, moto: &Path, n: usize) -> Duration {
    let (server, aws, _, _) = provisioned(app, moto).await;
    let delivered = Arc::new(tokio::sync::Semaphore::new(0));
    let seen = delivered.clone();
    let routes = || async { axum::Json(serde_json::json!([])) };
    let subscriber = axum::Router::new()
        .route("/dapr/subscribe", axum::routing::get(routes))
        .fallback(move || {
            let seen = seen.clone();
            async move {
                seen.add_permits(1);
                r#"{"status":"SUCCESS"}"#
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, subscriber).await.unwrap() });
    let options = busbar_aws::AwsOptions {
        scope: busbar_aws::Scope::Service("svc".into()),
        endpoint_url: Some(server.endpoint.clone()),
        region: Some("us-east-1".into()),
        credentials: Some(("b".into(), "b".into())),
        poll_wait_seconds: Some(20),
    };
    let broker = busbar_aws::AwsBroker::connect(app.config.clone(), &aws.locations(), options)
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut dev = busbar_config::DevConfig::default();
    dev.services.insert(
        "svc".into(),
        busbar_config::DevService {
            url: Some(format!("http://127.0.0.1:{app_port}")),
            ..Default::default()
        },
    );
    let options = busbar_sidecar::Options {
        data_dir: data.path().to_path_buf(),
        dev,
        disk_reserve: 0,
        limits: busbar_sidecar::Limits::default(),
        service: Some(busbar_sidecar::FixedService { name: "svc".into(), token: None }),
        broker: Some(busbar_sidecar::GivenBroker(Arc::new(broker))),
    };
    let listeners = busbar_sidecar::Listeners {
        shared: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        services: Default::default(),
    };
    let sidecar = busbar_sidecar::start(app.config.clone(), options, listeners).await.unwrap();
    let url = format!("http://{}/v1.0/publish/pubsub/bench", sidecar.addr);
    let began = Instant::now();
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let url = url.clone();
        publishers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for _ in (p..n).step_by(PUBLISHERS) {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 204);
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    let _all = delivered.acquire_many(n as u32).await.unwrap();
    let took = began.elapsed();
    sidecar.shutdown().await;
    took
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let moto = std::env::var_os("BUSBAR_MOTO").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/busbar/venv-tools/bin/moto_server")
    });
    let app = app();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let direct = runtime.block_on(direct(&app, &moto, n));
    let shim = runtime.block_on(shim(&app, &moto, n));
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("aws on moto: {n} messages of 1 KiB, {PUBLISHERS} publishers, one subscription");
    println!(
        "  AWS SDK directly:        {:>7.0} msgs/s ({:.2} s)",
        rate(direct),
        direct.as_secs_f64()
    );
    println!("  through busbar serve:    {:>7.0} msgs/s ({:.2} s)", rate(shim), shim.as_secs_f64());
    println!("  shim overhead: {:.2}x the direct time", shim.as_secs_f64() / direct.as_secs_f64());
}
