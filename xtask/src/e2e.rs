//! `cargo xtask e2e`: the end-to-end run against a real AWS endpoint. Starts the moto server
//! (from the tools venv, installed if missing) on a free 127.0.0.1 port, runs `busbar-e2e aws`
//! against it, and stops the server whatever happened.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::ci::{cargo, step, tools};

/// Stops the server when dropped, on success and on failure alike.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("no free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Starts `moto_server` and waits until it answers.
fn start_moto(bin: &std::path::Path) -> Result<(Server, String)> {
    let port = free_port()?;
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let mut server = Server(child);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(status) = server.0.try_wait()? {
            bail!("moto_server exited at start ({status})");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((server, format!("http://127.0.0.1:{port}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("moto_server did not listen on port {port} within 30 s")
}

pub(crate) fn run() -> Result<()> {
    let tools = tools()?;
    // Build first, so the server does not wait on the compiler.
    let mut build = cargo();
    build.args(["build", "-p", "busbar_e2e"]);
    step("cargo build -p busbar_e2e", build)?;
    let (server, endpoint) = start_moto(&tools.moto)?;
    eprintln!("xtask: moto server at {endpoint}");
    let mut e2e = cargo();
    e2e.args(["run", "--quiet", "-p", "busbar_e2e", "--", "aws", "--endpoint", &endpoint]);
    let result = step("busbar-e2e aws (moto)", e2e);
    drop(server);
    result
}
