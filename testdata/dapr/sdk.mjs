// What the SDK checks share: loading @dapr/dapr from the directory the caller installed it in,
// and a logger that keeps the SDK's output off stdout (which carries a check's JSON line).

import fs from "node:fs";
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
