// The published package: `npm pack` gives a tarball of dist/ (no sources, no tests), which
// installs offline (no dependencies) into a fresh project, loads, and type-checks there.
//
// Packs with --ignore-scripts: `npm test` has built dist already, and a rebuild here would
// delete dist under the other test files.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";

import { SDK_DIR, removeAll, run, tempDir } from "../testlib/harness.mjs";

const dirs = [];
after(() => removeAll(dirs));

const npm = (args, cwd) => run(process.platform === "win32" ? "npm.cmd" : "npm", args, { cwd, env: { ...process.env, NO_UPDATE_NOTIFIER: "1" } });

test("npm pack, install offline, import", async () => {
  const out = tempDir("busbar-sdk-pack-");
  dirs.push(out);
  const packed = await npm(["pack", "--json", "--ignore-scripts", "--pack-destination", out], SDK_DIR);
  assert.equal(packed.code, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout);
  assert.equal(info.name, "@busbar/pubsub");
  assert.equal(info.version, "0.1.0");
  const files = info.files.map((f) => f.path).sort();
  for (const needed of ["package.json", "README.md", "dist/index.js", "dist/index.d.ts", "dist/topic.js", "dist/server.js"]) {
    assert.ok(files.includes(needed), `${needed} is packed: ${files}`);
  }
  const stray = files.filter((f) => !(f === "package.json" || f === "README.md" || f.startsWith("dist/")));
  assert.deepEqual(stray, [], "nothing but dist/, package.json and README.md");
  assert.ok(!files.some((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), "no TypeScript sources");

  const project = tempDir("busbar-sdk-consumer-");
  dirs.push(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  const installed = await npm(["install", "--offline", "--no-audit", "--no-fund", "--no-package-lock", join(out, info.filename)], project);
  assert.equal(installed.code, 0, installed.stdout + installed.stderr);

  const loaded = await run(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      'const m = await import("@busbar/pubsub"); console.log(JSON.stringify(Object.keys(m).sort()));',
    ],
    { cwd: project },
  );
  assert.equal(loaded.code, 0, loaded.stderr);
  const names = JSON.parse(loaded.stdout);
  for (const name of [
    "Topic", "Subscription", "Service", "serve", "shutdown", "DropMessage", "PublishError", "PermissionDenied",
    "InvalidMessage", "MessageTooLarge", "StorageFull", "TopicNotFound", "SidecarUnavailable",
  ]) {
    assert.ok(names.includes(name), `exports ${name}: ${names}`);
  }

  // Its types, as a consumer's compiler finds them.
  writeFileSync(
    join(project, "main.ts"),
    `import { Topic, type Attribute, type Publisher } from "@busbar/pubsub";
interface Ev { id: string; kind: Attribute<string> }
export const ev = new Topic<Ev>("ev", { deliveryGuarantee: "at-least-once", orderingAttribute: "kind" });
export const p: Publisher<Ev> = ev.ref<Publisher>();
export const id: Promise<string> = p.publish({ id: "1", kind: "k" });
`,
  );
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        module: "NodeNext",
        moduleResolution: "NodeNext",
        target: "ES2022",
        strict: true,
        noEmit: true,
        types: ["node"],
        typeRoots: [join(SDK_DIR, "node_modules", "@types")],
      },
      files: ["main.ts"],
    }),
  );
  const tsc = join(SDK_DIR, "node_modules", "typescript", "bin", "tsc");
  const checked = await run(process.execPath, [tsc, "-p", join(project, "tsconfig.json")], { cwd: project });
  assert.equal(checked.code, 0, checked.stdout + checked.stderr);
});
