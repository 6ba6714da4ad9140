// What the SDK checks share: loading @dapr/dapr from the directory the caller installed it in,
// a logger that keeps the SDK's output off stdout (which carries a check's JSON line), and
// waiting for a port.

import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";

/** The @dapr/dapr package under `dir` (itself, or a node_modules holding it): { sdk, pkg }. */
export async function loadSdk(dir, fail) {
  for (const candidate of [dir, path.join(dir, "@dapr", "dapr"), path.join(dir, "node_modules", "@dapr", "dapr")]) {
    let pkg;
    try {
      pkg = JSON.parse(fs.readFileSync(path.join(candidate, "package.json"), "utf8"));
    } catch {
      continue; // Not this one.
    }
    if (pkg.name !== "@dapr/dapr") continue;
    const module = await import(pathToFileURL(path.join(candidate, pkg.main ?? "index.js")).href);
    // The package is CommonJS: its exports are the default export of the ES module namespace.
    return { sdk: module.default ?? module, pkg };
  }
  fail(`no @dapr/dapr package in ${dir} (pass its directory, or a node_modules holding it)`);
}

/** The SDK logs to stdout at Info by default: its warnings and errors go to stderr instead. */
export function sdkLogger(LogLevel) {
  return {
    level: LogLevel.Warn,
    service: {
      error: (message, ...rest) => process.stderr.write(`[dapr-sdk] error ${message} ${rest.join(" ")}\n`),
      warn: (message, ...rest) => process.stderr.write(`[dapr-sdk] warn ${message} ${rest.join(" ")}\n`),
      info: () => {},
      verbose: () => {},
      debug: () => {},
    },
  };
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port) {
  for (;;) {
    const open = await new Promise((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
