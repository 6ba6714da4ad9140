// Test helpers: free ports, child processes in their own process groups (stopped in `after`
// hooks), polling with deadlines, temporary busbar apps, and a real `busbar dev`.
//
// (Outside test/: `node --test test/` would run every .mjs file under test/ as a test.)

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The package's directory (sdk/typescript). */
export const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** The busbar binary the tests run. */
export const BUSBAR_BIN =
  process.env.BUSBAR_BIN || join(homedir(), ".cache", "busbar", "target", "debug", "busbar");
/** The shared npm cache's node_modules (TypeScript, tsx). */
export const CACHE_NODE_MODULES = join(
  resolve(process.env.BUSBAR_NPM || join(homedir(), ".cache", "busbar", "npm")),
  "node_modules",
);

/** A TCP port free on 127.0.0.1 now. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` until it returns a value other than `undefined`/`false`; throws after
 * `timeout` ms with `what` and the last error.
 */
export async function waitFor(what, check, { timeout = 20_000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    }
    await sleep(interval);
  }
}

/** A temporary directory, removed by `cleanup()`. */
export function tempDir(prefix = "busbar-sdk-") {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Runs a command to its end: `{ code, stdout, stderr }`. */
export function run(command, args, options = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code, signal) => resolveRun({ code: code ?? signal, stdout, stderr }));
  });
}

/** Every child started and not yet stopped. */
const running = new Set();

/** Kills what is still running when this process ends or is interrupted. */
function killRunning() {
  for (const child of running) {
    try {
      process.kill(-child.proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
process.on("exit", killRunning);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    killRunning();
    process.exit(130);
  });
}

/** Stops every child started (for `after` hooks). */
export function stopAll() {
  return Promise.all([...running].map((child) => child.stop()));
}

/** A child process in its own process group, its output kept. */
export class Child {
  constructor(name, command, args, options = {}) {
    running.add(this);
    this.name = name;
    this.output = "";
    this.exited = undefined;
    this.proc = spawn(command, args, {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: stop() ends what it started too
      ...options,
    });
    this.proc.stdout.on("data", (c) => (this.output += c));
    this.proc.stderr.on("data", (c) => (this.output += c));
    this.done = new Promise((r) =>
      this.proc.on("exit", (code, signal) => {
        this.exited = { code, signal };
        r(this.exited);
      }),
    );
    this.proc.on("error", (e) => {
      this.output += `\n[spawn error: ${e.message}]`;
      this.exited ??= { code: -1, signal: null };
    });
  }

  /** Fails with the output when the process has ended. */
  assertRunning() {
    if (this.exited) {
      throw new Error(`${this.name} exited (${JSON.stringify(this.exited)}):\n${this.output}`);
    }
  }

  /** Stops the process group: SIGTERM, then SIGKILL after `grace` ms. */
  async stop(grace = 3000) {
    running.delete(this);
    if (this.exited || this.proc.pid === undefined) return;
    const signal = (s) => {
      try {
        process.kill(-this.proc.pid, s);
      } catch {
        // already gone
      }
    };
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), grace);
    await this.done;
    clearTimeout(timer);
  }
}

/** Writes `files` (path → text) under `dir`. */
export function writeFiles(dir, files) {
  for (const [path, text] of Object.entries(files)) {
    const full = join(dir, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, text);
  }
}

/**
 * A temporary busbar app: `files`, a busbar.toml serving each of `services` (name → token) on
 * a free port, `package.json` (ESM), and `node_modules/@busbar/pubsub` → this package,
 * `node_modules/tsx` → the cache's.
 */
export async function createApp(files, services) {
  const dir = tempDir("busbar-sdk-app-");
  const ports = {};
  let toml = '[dev]\npubsub = "pubsub"\n';
  for (const [name, token] of Object.entries(services)) {
    ports[name] = await freePort();
    toml += `\n[dev.services.${name}]\nurl = "http://127.0.0.1:${ports[name]}"\ntoken = "${token}"\n`;
  }
  writeFiles(dir, {
    "busbar.toml": toml,
    "package.json": JSON.stringify({ name: "busbar-sdk-test-app", private: true, type: "module" }),
    ...files,
  });
  mkdirSync(join(dir, "node_modules", "@busbar"), { recursive: true });
  symlinkSync(SDK_DIR, join(dir, "node_modules", "@busbar", "pubsub"), "dir");
  symlinkSync(join(CACHE_NODE_MODULES, "tsx"), join(dir, "node_modules", "tsx"), "dir");
  return { dir, ports, tokens: { ...services } };
}

/** Fails unless the busbar binary and a built dist are there. */
export function assertPrerequisites() {
  if (!existsSync(BUSBAR_BIN)) {
    throw new Error(`no busbar binary at ${BUSBAR_BIN}: build it, or set BUSBAR_BIN`);
  }
  if (!existsSync(join(SDK_DIR, "dist", "index.js"))) {
    throw new Error("dist/index.js is missing: run `npm run build` first");
  }
  if (!existsSync(join(CACHE_NODE_MODULES, "tsx"))) {
    throw new Error(`no tsx in ${CACHE_NODE_MODULES}: set BUSBAR_NPM`);
  }
}

/** GET `url`: `{ status, text, json }` (json undefined when not JSON). */
export async function get(url) {
  const res = await fetch(url);
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, headers: res.headers };
}

/** POST `body` (JSON unless a string) to `url`: `{ status, text, json }`. */
export async function post(url, body, headers = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

/** Starts `busbar dev` on `app` (a free port, a fresh data directory); waits for healthz 204. */
export async function startDev(app, { port, data } = {}) {
  port ??= await freePort();
  data ??= tempDir("busbar-sdk-data-");
  const child = new Child("busbar dev", BUSBAR_BIN, ["dev", app.dir, "--port", String(port), "--data", data, "--color", "never"], {
    env: { ...process.env, NO_COLOR: "1" },
  });
  await waitFor("busbar dev to answer GET /v1.0/healthz with 204", async () => {
    child.assertRunning();
    const res = await fetch(`http://127.0.0.1:${port}/v1.0/healthz`);
    await res.arrayBuffer();
    return res.status === 204;
  });
  return { child, port, data, url: `http://127.0.0.1:${port}` };
}

/**
 * Starts service `name` of `app` as `node --import tsx <entry>` with busbar dev's
 * environment; waits until its `GET /dapr/subscribe` answers.
 */
export async function startService(app, dev, name, entry, extraEnv = {}) {
  const env = {
    ...process.env,
    APP_PORT: String(app.ports[name]),
    DAPR_HTTP_PORT: String(dev.port),
    DAPR_API_TOKEN: app.tokens[name],
    BUSBAR_SERVICE: name,
    BUSBAR_PUBSUB: "pubsub",
    ...extraEnv,
  };
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT; // not a test of node --test's own
  const child = new Child(`service ${name}`, process.execPath, ["--import", "tsx", entry], { cwd: app.dir, env });
  const base = `http://127.0.0.1:${app.ports[name]}`;
  await waitFor(`service ${name} to serve GET /dapr/subscribe`, async () => {
    child.assertRunning();
    return (await get(`${base}/dapr/subscribe`)).status === 200;
  });
  return { child, base, name };
}

/** Removes directories (ignoring errors). */
export function removeAll(dirs) {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
