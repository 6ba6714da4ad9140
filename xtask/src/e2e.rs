//! `cargo xtask e2e`: the end-to-end runs against real endpoints. Starts the moto server (from
//! the tools venv, installed if missing) and the GCP Pub/Sub emulator (`gcloud beta emulators
//! pubsub`, from the machine image) on free 127.0.0.1 ports, runs `busbar-e2e aws` and
//! `busbar-e2e gcp` against them, and stops each server (the emulator's whole process group:
//! gcloud and its java child) whatever happened. Without gcloud the GCP run is skipped with a
//! loud message.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::ci::{cargo, step, tools};

/// Stops the server (its process group) when dropped, on success and on failure alike.
pub(crate) struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let quiet = |signal: &str| {
            let _ =
                Command::new("kill").args([signal, "--", &group]).stderr(Stdio::null()).status();
        };
        quiet("-TERM");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        quiet("-KILL");
        let _ = self.0.wait();
    }
}

/// Starts `cmd` in its own process group, and waits until `port` accepts connections.
fn start(mut cmd: Command, port: u16, what: &str, wait: Duration) -> Result<Server> {
    use std::os::unix::process::CommandExt;
    let child = cmd
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let mut server = Server(child);
    let started = Instant::now();
    while started.elapsed() < wait {
        if let Some(status) = server.0.try_wait()? {
            bail!("{what} exited at start ({status})");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not listen on port {port} within {} s", wait.as_secs())
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("no free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

pub(crate) fn run() -> Result<()> {
    let tools = tools()?;
    // Build first, so the servers do not wait on the compiler. The binary is built the way
    // the test run builds it (for busbar_e2e's integration test), so after `cargo xtask ci`'s
    // tests nothing is built again; `cargo build -p busbar_e2e` would resolve features
    // differently and rebuild the AWS SDK (four minutes on two cores).
    let mut build = cargo();
    build.args(["test", "--workspace", "--no-run", "--quiet"]);
    step("cargo test --workspace --no-run", build)?;
    let e2e_bin = target_dir().join("debug").join("busbar_e2e");
    let port = free_port()?;
    let mut moto = Command::new(&tools.moto);
    moto.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let server = start(moto, port, "moto_server", Duration::from_secs(30))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    eprintln!("xtask: moto server at {endpoint}");
    let mut e2e = Command::new(&e2e_bin);
    e2e.args(["aws", "--endpoint", &endpoint]).arg(example_app());
    let aws = step("busbar-e2e aws (moto)", e2e);
    drop(server);
    aws?;
    gcp(&e2e_bin)
}

/// Cargo's target directory, as `cargo()` sets it.
pub(crate) fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::cache_dir().join("target"))
}

/// The Pub/Sub emulator on a free port, in its own process group, and its `host:port`; `None`
/// (and a loud message) without gcloud.
pub(crate) fn emulator() -> Result<Option<(Server, String)>> {
    let has_gcloud = Command::new("gcloud")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_gcloud {
        eprintln!("\n######## GCP RUNS SKIPPED ########");
        eprintln!("# `gcloud` is not installed, so the Pub/Sub emulator cannot start.");
        eprintln!("# Install the Google Cloud CLI with the pubsub-emulator component to run it.");
        eprintln!("##################################\n");
        return Ok(None);
    }
    let port = free_port()?;
    let mut emulator = Command::new("gcloud");
    emulator.args(["beta", "emulators", "pubsub", "start", "--project=busbar-e2e"]);
    emulator.arg(format!("--host-port=127.0.0.1:{port}"));
    let server = start(emulator, port, "the Pub/Sub emulator", Duration::from_secs(90))?;
    let host = format!("127.0.0.1:{port}");
    eprintln!("xtask: Pub/Sub emulator at {host}");
    Ok(Some((server, host)))
}

fn gcp(e2e_bin: &std::path::Path) -> Result<()> {
    let Some((server, host)) = emulator()? else { return Ok(()) };
    let mut e2e = Command::new(e2e_bin);
    e2e.args(["gcp", "--endpoint", &format!("http://{host}")]).arg(example_app());
    let result = step("busbar-e2e gcp (Pub/Sub emulator)", e2e);
    drop(server);
    result
}

/// The example app, named to `busbar-e2e` (which, run outside cargo, has no manifest directory
/// of its own: the one in its environment would be xtask's).
fn example_app() -> std::path::PathBuf {
    crate::workspace_root().join("examples").join("shop")
}
