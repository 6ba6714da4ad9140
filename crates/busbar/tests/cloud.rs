//! The SDK in-process on the cloud backends (features `aws` and `gcp`), no sidecar: this
//! binary is service `shop` of a hand-written app model (what the analyzer would find in this
//! file), created on a moto server the test starts or in a project of its own on the Pub/Sub
//! emulator `cargo xtask ci` starts, as busbar's Terraform module would create it. A publish
//! is delivered to the handler through the cloud; a failed attempt is retried after the
//! backoff; a DROP is a dead letter; a publish to a topic `shop` has no grant for is refused
//! before any cloud call (moto does not enforce IAM, so only the SDK can refuse it); and a
//! binary whose subscriptions are another service's, or a service the app does not have, is
//! refused at start.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use busbar::cloud::{App, Backend, Broker};
use busbar::{DeliveryInfo, PublishErrorKind, StartError, Topic};
use busbar_e2e::server::Server;
use busbar_model::{AppModel, RetryPolicy, SubscriptionSettings};
use busbar_runtime::Scope;
use serde::{Deserialize, Serialize};

mod support;

/// The process's publishes go to one app at a time: the tests take turns.
static ONE_APP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, busbar::Message)]
pub struct Order {
    pub id: String,
    #[busbar(attribute)]
    pub source: String,
}

fn order(id: &str) -> Order {
    Order { id: id.into(), source: "web".into() }
}

pub static ORDERS: Topic<Order> = Topic::new("orders");
pub static AUDIT: Topic<Order> = Topic::declared_elsewhere("audit");

/// (order, message id, attempt, when) of each call.
static SEEN: Mutex<Vec<(String, String, u32, Instant)>> = Mutex::new(Vec::new());

/// `retry-*` fail their first attempt, `drop-*` are dropped; the rest succeed.
#[busbar::subscribe(topic = ORDERS, name = "bill", min_backoff = "1s", max_backoff = "1s",
    max_retries = 3)]
async fn bill(order: Order, info: DeliveryInfo) -> busbar::Result<()> {
    let attempt = info.attempt.unwrap_or(0);
    SEEN.lock().unwrap().push((order.id.clone(), info.id, attempt, Instant::now()));
    if order.id.starts_with("drop-") {
        return Err(busbar::Error::drop("a test order"));
    }
    if order.id.starts_with("retry-") && attempt == 1 {
        return Err(busbar::Error::msg("not yet"));
    }
    Ok(())
}

/// `shop` declares, publishes and consumes `orders` (as `bill`); `auditor` alone publishes
/// `audit`.
fn model() -> AppModel {
    let settings = SubscriptionSettings {
        retry_policy: RetryPolicy { min_backoff_ms: 1000, max_backoff_ms: 1000, max_retries: 3 },
        ..SubscriptionSettings::default()
    };
    let bill = support::subscription("bill", "shop", settings);
    let mut model = AppModel {
        services: vec![support::service("shop"), support::service("auditor")],
        topics: vec![
            support::topic("orders", "Order", "shop", vec![bill]),
            support::topic("audit", "Order", "auditor", Vec::new()),
        ],
    };
    model.sort();
    model
}

/// The app's contract and its plan for `target`, with a prefix of its own.
fn planned(target: busbar_plan::Target) -> (busbar_plan::RuntimeConfig, busbar_plan::Plan) {
    let model = model();
    let graph = busbar_graph::PermissionGraph::build(&model);
    let settings = busbar_plan::Settings {
        app: "cloud-test".into(),
        prefix: "cloud-".into(),
        ..Default::default()
    };
    let config = busbar_plan::runtime_config(&model, &graph, &settings);
    let (plan, diagnostics) = busbar_plan::plan(&model, &graph, target, &settings);
    assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:?}");
    (config, plan)
}

fn calls_of(id: &str) -> Vec<(String, u32, Instant)> {
    let seen = SEEN.lock().unwrap();
    seen.iter().filter(|(o, ..)| o == id).map(|(_, m, a, t)| (m.clone(), *a, *t)).collect()
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never, in 30 s: {what}");
}

/// What every backend must do, on `builder(service)`; `dlq` reads the dead letters as `busbar
/// dlq` does (on GCP a service's own identity cannot: its sidecar publishes dead letters, an
/// operator reads them).
async fn delivers_and_enforces(
    builder: impl Fn(&str) -> busbar::cloud::Builder,
    dlq: &dyn Broker,
    backend: &str,
) {
    let app = builder("shop").start().await.unwrap_or_else(|e| panic!("{backend}: {e}"));

    let id = ORDERS.publish(&order("o-1")).await.unwrap();
    until("o-1 is delivered", || !calls_of("o-1").is_empty()).await;
    let calls = calls_of("o-1");
    assert_eq!(calls[0].0, id.as_str(), "{backend}: the handler sees the id publish returned");
    assert_eq!(calls[0].1, 1, "{backend}: the first attempt");

    let refused = AUDIT.publish(&order("a-1")).await.unwrap_err();
    assert_eq!(refused.kind(), PublishErrorKind::PermissionDenied, "{backend}: {refused}");
    assert!(refused.to_string().contains("`shop`") && refused.to_string().contains("`audit`"));

    ORDERS.publish(&order("retry-1")).await.unwrap();
    until("retry-1 is retried", || calls_of("retry-1").len() >= 2).await;
    let calls = calls_of("retry-1");
    assert_eq!((calls[0].1, calls[1].1), (1, 2), "{backend}: attempts {calls:?}");
    let gap = calls[1].2 - calls[0].2;
    assert!(
        gap >= Duration::from_millis(900),
        "{backend}: retried after {gap:?}, not the 1 s backoff"
    );

    ORDERS.publish(&order("drop-1")).await.unwrap();
    let mut dead = Vec::new();
    for _ in 0..120 {
        dead = dlq.dead_letters("orders", "bill").await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(dead.len(), 1, "{backend}: the dropped order is a dead letter");
    assert_eq!(calls_of("drop-1").len(), 1, "{backend}: a DROP is not retried");
    app.shutdown().await.unwrap();

    let other = builder("auditor").start().await.err().expect("auditor does not own `bill`");
    assert!(matches!(other, StartError::Config(_)), "{other}");
    let text = other.to_string();
    assert!(text.contains("`bill`") && text.contains("`shop`'s"), "{text}");
    let unknown = builder("nobody").start().await.err().expect("no such service");
    assert!(unknown.to_string().contains("no service `nobody`"), "{unknown}");
}

/// The files a deployment has: busbar build's runtime-config.json, and the module's outputs
/// (here with the names the plan gives; Terraform's have ARNs and URLs). Their paths.
fn deployment(
    dir: &std::path::Path,
    config: &busbar_plan::RuntimeConfig,
    locations: &busbar::cloud::AwsLocations,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let config_file = dir.join("runtime-config.json");
    std::fs::write(&config_file, config.to_json()).unwrap();
    let subscriptions: Vec<_> = locations
        .queues
        .iter()
        .flat_map(|(t, subs)| {
            subs.iter().map(
                move |(s, q)| serde_json::json!({ "topic": t, "subscription": s, "queue_url": q }),
            )
        })
        .collect();
    let outputs = serde_json::json!({
        "topic_arns": { "value": locations.topics },
        "busbar_runtime_config": {
            "value": serde_json::json!({ "subscriptions": subscriptions }).to_string()
        },
    });
    let outputs_file = dir.join("outputs.json");
    std::fs::write(&outputs_file, outputs.to_string()).unwrap();
    (config_file, outputs_file)
}

/// The AWS backend's options on the test's moto server.
/// The example deployed on a fresh moto server, with the files a deployment has: busbar
/// build's runtime-config.json, and the module's outputs (here with the names the plan gives;
/// Terraform's have ARNs and URLs).
struct AwsDeployment {
    server: Server,
    config: busbar_plan::RuntimeConfig,
    locations: busbar::cloud::AwsLocations,
    dir: tempfile::TempDir,
    config_file: std::path::PathBuf,
    outputs_file: std::path::PathBuf,
}

impl AwsDeployment {
    async fn provision(moto: &str) -> Self {
        let server = Server::moto(std::path::Path::new(moto)).unwrap();
        let (config, plan) = planned(busbar_plan::Target::Aws);
        let busbar_plan::Resources::Aws(aws) = &plan.resources else { panic!("an AWS plan") };
        busbar_e2e::aws::provision(&server.endpoint, aws).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let locations = aws.locations();
        let (config_file, outputs_file) = deployment(dir.path(), &config, &locations);
        AwsDeployment { server, config, locations, dir, config_file, outputs_file }
    }
}

fn moto_options(server: &Server, scope: Scope) -> busbar_aws::AwsOptions {
    busbar_aws::AwsOptions {
        scope,
        endpoint_url: Some(server.endpoint.clone()),
        region: Some("us-east-1".into()),
        credentials: Some(("test".into(), "test".into())),
        ..Default::default()
    }
}

/// A contract or outputs file that cannot be read or is not what it should be is refused at
/// start, naming the file, before any cloud call (no endpoint is needed).
#[tokio::test]
async fn unreadable_or_malformed_deployment_files_are_refused_naming_them() {
    let _one = ONE_APP.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    let missing = dir.path().join("missing.json");
    let (config, _) = planned(busbar_plan::Target::Aws);
    let config_file = dir.path().join("runtime-config.json");
    std::fs::write(&config_file, config.to_json()).unwrap();
    let cases = [
        (garbage.clone(), config_file.clone(), "garbage.json"),
        (missing.clone(), config_file.clone(), "cannot read"),
        (config_file.clone(), garbage.clone(), "not JSON"),
        (config_file.clone(), missing.clone(), "cannot read"),
    ];
    for (contract, outputs, says) in cases {
        let started = App::builder(Backend::Aws, "shop")
            .runtime_config_file(&contract)
            .outputs_file(&outputs)
            .endpoint("http://127.0.0.1:9")
            .start()
            .await;
        let e = started.err().expect("refused");
        assert!(matches!(e, StartError::Config(_)), "{e}");
        assert!(e.to_string().contains(says), "{contract:?} {outputs:?}: {e}");
    }
    let none = App::builder(Backend::Aws, "shop").runtime_config(config).start().await;
    let e = none.err().expect("no outputs");
    assert!(e.to_string().contains("BUSBAR_OUTPUTS"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_delivers_and_enforces_its_grants_in_process_on_aws() {
    let Some(moto) = support::tool("BUSBAR_MOTO") else { return };
    let _one = ONE_APP.lock().await;
    let AwsDeployment { server, config, locations, dir: _dir, config_file, outputs_file } =
        AwsDeployment::provision(&moto).await;
    let endpoint = server.endpoint.clone();
    let builder = |service: &str| {
        App::builder(Backend::Aws, service)
            .runtime_config_file(&config_file)
            .outputs_file(&outputs_file)
            .endpoint(&endpoint)
            .aws_region("us-east-1")
            .aws_credentials("cloud", "cloud")
    };
    let options = moto_options(&server, Scope::Subscriptions);
    let dlq = busbar_aws::AwsBroker::connect(config.clone(), &locations, options).await.unwrap();
    delivers_and_enforces(builder, &dlq, "aws").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_delivers_and_enforces_its_grants_in_process_on_gcp() {
    let Some(host) = support::tool("BUSBAR_PUBSUB_EMULATOR") else { return };
    let _one = ONE_APP.lock().await;
    let project = format!("cloud-{}", uuid::Uuid::new_v4().simple());
    let (config, plan) = planned(busbar_plan::Target::Gcp);
    let busbar_plan::Resources::Gcp(gcp) = &plan.resources else { panic!("a GCP plan") };
    let endpoint = format!("http://{host}");
    let provisioned = tokio::task::spawn_blocking({
        let (project, gcp) = (project.clone(), gcp.clone());
        move || busbar_e2e::gcp::provision(&endpoint, &project, &gcp).map(|_| ())
    });
    provisioned.await.unwrap().unwrap();
    let locations = gcp.locations();
    let builder = |service: &str| {
        App::builder(Backend::Gcp, service)
            .runtime_config(config.clone())
            .gcp_locations(locations.clone())
            .project(&project)
            .endpoint(&host)
    };
    let options = busbar_gcp::GcpOptions {
        scope: Scope::Subscriptions,
        project: Some(project.clone()),
        emulator_host: Some(host.clone()),
    };
    let dlq = busbar_gcp::GcpBroker::connect(config.clone(), &locations, options).await.unwrap();
    delivers_and_enforces(builder, &dlq, "gcp").await;
}

/// Not a test of its own: the child process of
/// `busbar_server_delivers_in_process_when_busbar_backend_says_so` (nothing without its
/// variable), `busbar::Server` from the environment as a service's `main` runs it.
#[test]
fn server_child() {
    if std::env::var_os("BUSBAR_CLOUD_TEST_CHILD").is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async { busbar::Server::from_env().unwrap().serve().await.unwrap() });
}

/// `BUSBAR_BACKEND=aws` is all it takes: the same `Server::from_env().serve()` that runs on the
/// sidecar of `busbar dev` delivers in-process from SQS (a message the handler drops is in the
/// dead-letter queue with the handler's reason), and serves none of the sidecar's routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busbar_server_delivers_in_process_when_busbar_backend_says_so() {
    let Some(moto) = support::tool("BUSBAR_MOTO") else { return };
    let AwsDeployment { server, config, locations, dir, config_file, outputs_file } =
        AwsDeployment::provision(&moto).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = dir.path().join("child.log");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "server_child", "--nocapture"])
        .env("BUSBAR_CLOUD_TEST_CHILD", "1")
        .env("BUSBAR_BACKEND", "aws")
        .env("BUSBAR_SERVICE", "shop")
        .env("BUSBAR_RUNTIME_CONFIG", &config_file)
        .env("BUSBAR_OUTPUTS", &outputs_file)
        .env("APP_PORT", port.to_string())
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "child")
        .env("AWS_SECRET_ACCESS_KEY", "child")
        .env_remove("AWS_PROFILE")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut answered = None;
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/dapr/subscribe")).send().await {
            answered = Some(r.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let options = |scope| moto_options(&server, scope);
    let publisher = busbar_aws::AwsBroker::connect(config.clone(), &locations, options(Scope::All));
    let publisher = publisher.await.unwrap();
    let message = busbar_runtime::Publish {
        data: br#"{"id":"drop-child","source":"web"}"#.to_vec(),
        attributes: [("source".to_string(), "web".to_string())].into(),
        ..Default::default()
    };
    publisher.publish("orders", message).await.unwrap();
    let dlq = busbar_aws::AwsBroker::connect(config, &locations, options(Scope::Subscriptions));
    let dlq = dlq.await.unwrap();
    let mut dead = Vec::new();
    for _ in 0..120 {
        dead = dlq.dead_letters("orders", "bill").await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(answered, Some(404), "the sidecar's routes are not served in-process\n{text}");
    assert_eq!(dead.len(), 1, "the child's handler dropped the message\n{text}");
    assert!(format!("{:?}", dead[0]).contains("a test order"), "{:?}\n{text}", dead[0]);
}
