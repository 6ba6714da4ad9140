//! What the tests that run `busbar dev` as a process share: a free port, the child process, an
//! HTTP agent that reports statuses instead of failing on them, and waiting for the sidecar.

#![allow(dead_code, reason = "each test binary uses its part")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port nothing listens on (just now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `busbar dev . --port PORT [--data DATA] EXTRA...` in `app`, its stderr to `stderr` (a log
/// file, or nothing).
pub fn spawn_dev(
    app: &Path,
    port: u16,
    data: Option<&Path>,
    extra: &[&str],
    stderr: Option<&Path>,
) -> Child {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("busbar"));
    cmd.current_dir(app).args(["dev", ".", "--port", &port.to_string()]).args(extra);
    if let Some(data) = data {
        cmd.arg("--data").arg(data);
    }
    cmd.stderr(match stderr {
        Some(log) => Stdio::from(std::fs::File::create(log).unwrap()),
        None => Stdio::null(),
    });
    cmd.spawn().unwrap()
}

/// An HTTP agent that answers every status (no error for 4xx/5xx) and gives up after 5 s.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

/// Whether the sidecar on `port` answers `GET /v1.0/healthz` with 204 within 10 s.
pub fn wait_healthy(port: u16) -> bool {
    let agent = agent();
    (0..400).any(|_| {
        let ok = agent
            .get(format!("http://127.0.0.1:{port}/v1.0/healthz"))
            .call()
            .is_ok_and(|r| r.status() == 204);
        if !ok {
            std::thread::sleep(Duration::from_millis(25));
        }
        ok
    })
}

/// A tool from `cargo xtask ci` (`BUSBAR_STRACE`, `BUSBAR_NODE`, ...); required under
/// `BUSBAR_REQUIRE_TOOLS`, else a missing one skips the test with a line saying so.
#[allow(clippy::print_stderr, reason = "a skipped check says so")]
pub fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(p.into()),
        None if std::env::var_os("BUSBAR_REQUIRE_TOOLS").is_some() => {
            panic!("{var} is not set, and BUSBAR_REQUIRE_TOOLS says the tools are required")
        }
        None => {
            eprintln!("SKIPPED: {var} is not set; `cargo xtask ci` installs the tool and sets it");
            None
        }
    }
}

/// The token `busbar dev` generated for `service` into the data directory `data`.
pub fn generated_token(data: &Path, service: &str) -> String {
    let tokens: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("tokens.json")).unwrap()).unwrap();
    tokens[service].as_str().unwrap().to_string()
}

/// `Bearer TOKEN` with the admin token of the data directory `data`.
pub fn admin_bearer(data: &Path) -> String {
    format!("Bearer {}", std::fs::read_to_string(data.join("admin-token")).unwrap().trim())
}

/// The app's plan for `target` (`busbar plan --target TARGET --format json`).
fn plan_of(app: &Path, target: &str) -> busbar_plan::Plan {
    let plan = Command::new(assert_cmd::cargo::cargo_bin("busbar"))
        .arg("plan")
        .arg(app)
        .args(["--target", target, "--format", "json"])
        .output()
        .unwrap();
    assert!(plan.status.success(), "{}", String::from_utf8_lossy(&plan.stderr));
    #[derive(serde::Deserialize)]
    struct PlanSet {
        plans: Vec<busbar_plan::Plan>,
    }
    let set: PlanSet = serde_json::from_slice(&plan.stdout).unwrap();
    set.plans.into_iter().next().unwrap()
}

/// The app's AWS plan created on `endpoint` (a moto server) as Terraform would create it.
pub fn provision_aws(app: &Path, endpoint: &str) {
    let busbar_plan::Resources::Aws(aws) = &plan_of(app, "aws").resources else { panic!("AWS") };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(busbar_e2e::aws::provision(endpoint, aws)).unwrap();
}

/// The app's GCP plan created on the Pub/Sub emulator at `host` in `project`, as Terraform
/// would create it.
pub fn provision_gcp(app: &Path, host: &str, project: &str) {
    let busbar_plan::Resources::Gcp(gcp) = &plan_of(app, "gcp").resources else { panic!("GCP") };
    busbar_e2e::gcp::provision(&format!("http://{host}"), project, gcp).unwrap();
}

/// The Pub/Sub emulator `cargo xtask ci` started (`BUSBAR_PUBSUB_EMULATOR`, `host:port`); set
/// but empty when gcloud is not installed (the test is skipped, saying so).
#[allow(clippy::print_stderr, reason = "a skipped check says so")]
pub fn emulator() -> Option<String> {
    let host = tool("BUSBAR_PUBSUB_EMULATOR")?;
    let host = host.to_string_lossy().into_owned();
    if host.is_empty() {
        eprintln!("SKIPPED: no Pub/Sub emulator (gcloud is not installed)");
        return None;
    }
    Some(host)
}

/// Where an app's plan was created, as Terraform would create it: a moto server of the test's
/// own, or a project of its own on the shared Pub/Sub emulator.
pub enum Cloud {
    Aws(busbar_e2e::server::Server),
    Gcp { host: String, project: String },
}

impl Cloud {
    /// `app`'s AWS plan, created on a fresh moto server.
    pub fn aws(app: &Path, moto: &Path) -> Cloud {
        let server = busbar_e2e::server::Server::moto(moto).unwrap();
        provision_aws(app, &server.endpoint);
        Cloud::Aws(server)
    }

    /// `app`'s GCP plan, created in a fresh project on the emulator at `host`.
    pub fn gcp(app: &Path, host: &str) -> Cloud {
        let project = format!("test-{}", uuid::Uuid::new_v4().simple());
        provision_gcp(app, host, &project);
        Cloud::Gcp { host: host.to_string(), project }
    }

    /// `busbar serve --backend`'s word for it.
    pub fn backend(&self) -> &'static str {
        match self {
            Cloud::Aws(_) => "aws",
            Cloud::Gcp { .. } => "gcp",
        }
    }

    /// The environment `busbar serve` and `busbar dlq` find the cloud in.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Cloud::Aws(server) => vec![
                ("AWS_ENDPOINT_URL", server.endpoint.clone()),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID", "test".into()),
                ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ],
            Cloud::Gcp { host, project } => vec![
                ("PUBSUB_EMULATOR_HOST", host.clone()),
                ("GOOGLE_CLOUD_PROJECT", project.clone()),
            ],
        }
    }

    /// The same environment with the cloud's endpoint at port `away` of 127.0.0.1 instead.
    pub fn env_away(&self, away: u16) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        for (k, v) in &mut env {
            match *k {
                "AWS_ENDPOINT_URL" => *v = format!("http://127.0.0.1:{away}"),
                "PUBSUB_EMULATOR_HOST" => *v = format!("127.0.0.1:{away}"),
                _ => {}
            }
        }
        env
    }

    /// The port of the cloud's endpoint on 127.0.0.1.
    pub fn port(&self) -> u16 {
        match self {
            Cloud::Aws(server) => server.port,
            Cloud::Gcp { host, .. } => {
                host.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap()
            }
        }
    }
}
