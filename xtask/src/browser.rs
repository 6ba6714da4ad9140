//! The external tools of the diagram and runtime tests: Graphviz `dot`, Debian's Chromium and
//! strace (apt), Node.js (apt, when the machine has none), `playwright-core` (npm, pinned, into
//! `$HOME/.cache/busbar/npm`; it drives the system Chromium and never downloads a browser) and
//! the Dapr JavaScript SDK `@dapr/dapr` and the official AsyncAPI parser `@asyncapi/parser`
//! (npm, pinned, same place).
//! And `cargo xtask screenshot`, which saves the README's picture of the example app's page.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::ci::{cargo, step};
use crate::{cache_dir, workspace_root};

const PLAYWRIGHT: &str = "playwright-core@1.64.1";
/// The official Dapr JavaScript SDK, for the sidecar's real-client test.
const DAPR_SDK: &str = "@dapr/dapr@3.18.0";
/// The official AsyncAPI parser, which validates every generated AsyncAPI document.
const ASYNCAPI_PARSER: &str = "@asyncapi/parser@3.6.6";
/// The TypeScript SDK's toolchain: the compiler (`tsc --strict` builds it and type-checks the
/// examples), Node's types, and `tsx`, which runs the example app's TypeScript.
const TYPESCRIPT: &str = "typescript@5.9.3";
const NODE_TYPES: &str = "@types/node@20.19.43";
const TSX: &str = "tsx@4.23.15";

pub(crate) struct BrowserTools {
    pub dot: PathBuf,
    pub chromium: PathBuf,
    pub node: PathBuf,
    pub strace: PathBuf,
    /// The `playwright-core` package directory.
    pub playwright: PathBuf,
    /// The `@asyncapi/parser` package directory.
    pub asyncapi: PathBuf,
    /// The `@dapr/dapr` package directory.
    pub dapr: PathBuf,
    /// The npm cache's `node_modules` (tsx, typescript, @types/node for the app tests).
    pub modules: PathBuf,
}

/// The first of `names` on PATH.
fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// `apt-get install -y PACKAGES`, refreshing the package lists once if that fails.
fn apt_install(packages: &[&str]) -> Result<()> {
    let install = || {
        let mut cmd = Command::new("apt-get");
        cmd.args(["install", "-y", "--no-install-recommends"]).args(packages);
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    let name = format!("apt-get install -y {}", packages.join(" "));
    if step(&name, install()).is_ok() {
        return Ok(());
    }
    let mut update = Command::new("apt-get");
    update.arg("update");
    step("apt-get update", update)?;
    step(&name, install())
}

/// Finds the tools, installing what is missing.
pub(crate) fn tools() -> Result<BrowserTools> {
    let mut missing = Vec::new();
    if which(&["dot"]).is_none() {
        missing.push("graphviz");
    }
    if which(&["chromium"]).is_none() {
        missing.push("chromium");
    }
    if which(&["strace"]).is_none() {
        missing.push("strace");
    }
    if which(&["node"]).is_none() || which(&["npm"]).is_none() {
        missing.extend(["nodejs", "npm"]);
    }
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    let dot = which(&["dot"]).context("graphviz installed no `dot`")?;
    let chromium = which(&["chromium"]).context("no `chromium` after installing it")?;
    let node = which(&["node"]).context("no `node` after installing nodejs")?;
    let strace = which(&["strace"]).context("no `strace` after installing it")?;
    let npm_dir = cache_dir().join("npm");
    let playwright = npm_dir.join("node_modules/playwright-core");
    let dapr = npm_dir.join("node_modules/@dapr/dapr");
    let asyncapi = npm_dir.join("node_modules/@asyncapi/parser");
    let stamp = npm_dir.join("busbar-packages.txt");
    let current = std::fs::read_to_string(&stamp).unwrap_or_default();
    let packages = [PLAYWRIGHT, DAPR_SDK, ASYNCAPI_PARSER, TYPESCRIPT, NODE_TYPES, TSX];
    let wanted = packages.join(" ");
    let installed = playwright.join("index.mjs").is_file()
        && dapr.join("package.json").is_file()
        && asyncapi.join("package.json").is_file()
        && npm_dir.join("node_modules/typescript/bin/tsc").is_file()
        && npm_dir.join("node_modules/tsx/package.json").is_file();
    if !installed || current != wanted {
        std::fs::create_dir_all(&npm_dir).context("cannot create the npm cache")?;
        let mut npm = Command::new(which(&["npm"]).context("no npm")?);
        // All in one install: a later `--no-save` install would prune the others.
        npm.args(["install", "--no-audit", "--no-fund", "--no-save", "--prefix"])
            .arg(&npm_dir)
            .args(packages)
            // Never fetch a browser: the tests use Debian's.
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        step(&format!("npm install {wanted}"), npm)?;
        std::fs::write(&stamp, &wanted).context("cannot write the npm stamp")?;
    }
    let modules = npm_dir.join("node_modules");
    Ok(BrowserTools { dot, chromium, node, strace, playwright, asyncapi, dapr, modules })
}

impl BrowserTools {
    /// Sets the variables the tests read.
    pub(crate) fn export(&self, cmd: &mut Command) {
        cmd.env("BUSBAR_DOT", &self.dot)
            .env("BUSBAR_CHROMIUM", &self.chromium)
            .env("BUSBAR_NODE", &self.node)
            .env("BUSBAR_STRACE", &self.strace)
            .env("BUSBAR_PLAYWRIGHT", &self.playwright)
            .env("BUSBAR_DAPR_SDK", &self.dapr)
            .env("BUSBAR_ASYNCAPI_PARSER", &self.asyncapi)
            .env("BUSBAR_NPM_MODULES", &self.modules);
    }
}

/// `cargo xtask screenshot`: the example app's page, with the `orders` service selected,
/// saved as `docs/diagram-example-shop.png`.
pub(crate) fn screenshot() -> Result<()> {
    let tools = tools()?;
    let mut build = cargo();
    build.args(["build", "-p", "busbar_cli"]);
    step("cargo build -p busbar_cli", build)?;
    let target = crate::e2e::target_dir();
    let root = workspace_root();
    let tmp = std::env::temp_dir().join(format!("busbar-screenshot-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let html = tmp.join("shop.html");
    let mut diagram = Command::new(target.join("debug/busbar"));
    diagram
        .current_dir(root.join("examples/shop"))
        .args(["diagram", ".", "--format", "html", "--out"])
        .arg(&html);
    step("busbar diagram examples/shop --format html", diagram)?;
    let png = root.join("docs/diagram-example-shop.png");
    let result = check_page(&tools, &html, 14, Some(&png));
    let _ = std::fs::remove_dir_all(&tmp);
    result?;
    println!("wrote {}", png.display());
    Ok(())
}

/// Runs `testdata/browser/check-diagram.mjs` on a page of the example app.
fn check_page(tools: &BrowserTools, html: &Path, nodes: usize, png: Option<&Path>) -> Result<()> {
    let mut node = Command::new(&tools.node);
    node.arg(workspace_root().join("testdata/browser/check-diagram.mjs"))
        .arg("--playwright")
        .arg(&tools.playwright)
        .arg("--chromium")
        .arg(&tools.chromium)
        .arg("--html")
        .arg(html)
        .args(["--nodes", &nodes.to_string()])
        .args(["--search", "order-placed", "--service", "orders", "--location", "orders/"]);
    if let Some(png) = png {
        node.arg("--screenshot").arg(png);
    }
    let status = node.status().context("cannot start node")?;
    if !status.success() {
        bail!("the page check failed ({status})");
    }
    Ok(())
}
