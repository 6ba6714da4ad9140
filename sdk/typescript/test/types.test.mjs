// Type checks: the examples compile under --strict (each `@ts-expect-error` of
// examples/wrong-type.ts is an error TypeScript still finds), and with the markers removed
// wrong-type.ts fails on exactly the marked lines, with the codes the markers name.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";

import { SDK_DIR, removeAll, run, tempDir } from "../testlib/harness.mjs";

const TSC = join(SDK_DIR, "node_modules", "typescript", "bin", "tsc");
const dirs = [];
after(() => removeAll(dirs));

test("the examples compile with tsc --strict", async () => {
  const { code, stdout, stderr } = await run(process.execPath, [TSC, "--strict", "--noEmit", "-p", join(SDK_DIR, "examples", "tsconfig.json")]);
  assert.equal(code, 0, stdout + stderr);
});

test("without its @ts-expect-error markers, wrong-type.ts fails on each marked line with the named code", async () => {
  const source = readFileSync(join(SDK_DIR, "examples", "wrong-type.ts"), "utf8").split("\n");
  const stripped = [];
  const expected = new Map(); // line (1-based, in the stripped file) → code
  let pending;
  for (const line of source) {
    const marker = /^\s*\/\/ @ts-expect-error (TS\d+)/.exec(line);
    if (marker) {
      pending = marker[1];
      continue;
    }
    stripped.push(line);
    if (pending) {
      expected.set(stripped.length, pending);
      pending = undefined;
    }
  }
  assert.ok(expected.size >= 8, "wrong-type.ts marks its errors");
  const dir = tempDir("busbar-sdk-types-");
  dirs.push(dir);
  writeFileSync(join(dir, "wrong-type.ts"), stripped.join("\n"));
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        types: ["node"],
        typeRoots: [join(SDK_DIR, "node_modules", "@types")],
        paths: { "@busbar/pubsub": [join(SDK_DIR, "dist", "index.d.ts")] },
      },
      files: ["wrong-type.ts"],
    }),
  );
  const { code, stdout } = await run(process.execPath, [TSC, "--noEmit", "--pretty", "false", "-p", join(dir, "tsconfig.json")]);
  assert.notEqual(code, 0, "tsc must refuse the stripped file");
  const found = new Map();
  for (const m of stdout.matchAll(/wrong-type\.ts\((\d+),\d+\): error (TS\d+)/g)) {
    const line = Number(m[1]);
    found.set(line, [...(found.get(line) ?? []), m[2]]);
  }
  for (const [line, want] of expected) {
    assert.ok(found.get(line)?.includes(want), `line ${line}: expected ${want}, tsc said ${found.get(line) ?? "nothing"}\n${stdout}`);
  }
  const unexpected = [...found.keys()].filter((line) => !expected.has(line));
  assert.deepEqual(unexpected, [], `errors on unmarked lines:\n${stdout}`);
});
