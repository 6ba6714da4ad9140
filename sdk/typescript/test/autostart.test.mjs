// The server a process gets without calling serve(): each case is a child process of its own.

import assert from "node:assert/strict";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

import { Child, SDK_DIR, freePort, get, run, stopAll, waitFor } from "../testlib/harness.mjs";

const SDK = pathToFileURL(join(SDK_DIR, "dist", "index.js")).href;
after(stopAll);

function env(extra) {
  const e = { ...process.env, ...extra };
  delete e.NODE_TEST_CONTEXT;
  for (const [k, v] of Object.entries(e)) if (v === undefined) delete e[k];
  return e;
}

const script = (body) => `import { Topic, Subscription, serve } from ${JSON.stringify(SDK)};
const topic = new Topic("auto", { deliveryGuarantee: "at-least-once" });
${body}`;

test("a Subscription without serve(): the server starts by itself on APP_PORT", async () => {
  const port = await freePort();
  const child = new Child("auto", process.execPath, ["--input-type=module", "-e", script(`new Subscription(topic, "auto-sub", { handler() {} });`)], {
    env: env({ APP_PORT: String(port) }),
  });
  const list = await waitFor("the automatic server", async () => {
    child.assertRunning();
    const res = await get(`http://127.0.0.1:${port}/dapr/subscribe`);
    return res.status === 200 && res.json;
  });
  assert.deepEqual(list, [{ pubsubname: "pubsub", topic: "auto", route: "/busbar/auto/auto-sub", metadata: { subscription: "auto-sub" } }]);
  assert.equal((await get(`http://127.0.0.1:${port}/other`)).status, 404);
  await child.stop();
});

test("serve() after the automatic start replaces the api and returns the same server", async () => {
  const port = await freePort();
  const body = `new Subscription(topic, "auto-sub", { handler() {} });
await new Promise((r) => setTimeout(r, 300));
const a = await serve((req, res) => res.end("first"));
const b = await serve((req, res) => res.end("second"));
console.log(a === b ? "same" : "different");`;
  const child = new Child("auto-then-serve", process.execPath, ["--input-type=module", "-e", script(body)], {
    env: env({ APP_PORT: String(port) }),
  });
  await waitFor("serve() to resolve", () => child.assertRunning() || child.output.includes("same") || child.output.includes("different"));
  assert.match(child.output, /same/);
  assert.equal((await get(`http://127.0.0.1:${port}/x`)).text, "second");
  await child.stop();
});

test("without APP_PORT: one warning, nothing served, the process ends", async () => {
  const body = `new Subscription(topic, "a", { handler() {} });
new Subscription(topic, "b", { handler() {} });`;
  const { code, stdout, stderr } = await run(process.execPath, ["--input-type=module", "-e", script(body)], {
    env: env({ APP_PORT: undefined, BUSBAR_SERVICE: "lonely" }),
  });
  assert.equal(code, 0, stderr);
  assert.equal(stdout, "");
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0], /^busbar\[lonely\]: APP_PORT is not set/);
});
