// Links `node_modules` to busbar's shared npm cache (TypeScript, @types/node, tsx), so the
// package builds and tests without `npm install`.
//
// The cache is `$BUSBAR_NPM/node_modules` (default `$HOME/.cache/busbar/npm/node_modules`).
// A `node_modules` that exists already (a link, or a real `npm install`) is left alone; a
// dangling link is replaced.
import { existsSync, lstatSync, rmSync, symlinkSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const link = join(root, "node_modules");
const cache = resolve(process.env.BUSBAR_NPM || join(homedir(), ".cache", "busbar", "npm"));
const target = join(cache, "node_modules");

function isLink(path) {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

if (existsSync(link)) process.exit(0);
if (isLink(link)) rmSync(link); // dangling: its target is gone
const needed = ["typescript/bin/tsc", "@types/node/package.json"];
const missing = needed.filter((p) => !existsSync(join(target, p)));
if (missing.length > 0) {
  console.error(
    `link-toolchain: ${target} lacks ${missing.join(", ")}.\n` +
      "Set BUSBAR_NPM to a directory whose node_modules holds typescript@5.9.3 and @types/node@20 " +
      "(and tsx for the tests), or run `npm install` in sdk/typescript.",
  );
  process.exit(1);
}
symlinkSync(target, link, "dir");
