// End to end against a real `busbar dev` (BUSBAR_BIN): the app of testlib/shop-app.mjs, its
// services run with `node --import tsx`, publishing and subscribing through this package.
//
// The tests run in order and share one sidecar; the last ones stop and restart it.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  BUSBAR_BIN,
  assertPrerequisites,
  createApp,
  get,
  post,
  removeAll,
  run,
  startDev,
  startService,
  stopAll,
  tempDir,
  waitFor,
} from "../testlib/harness.mjs";
import { FILES, TOKENS } from "../testlib/shop-app.mjs";

const sdk = await import("../dist/index.js");
const { Topic, PublishError, PermissionDenied, InvalidMessage, MessageTooLarge, TopicNotFound, SidecarUnavailable } = sdk;

let app;
let dev;
let shop;
let billing;
let ledger;
let ledgerFile;
const dirs = [];

before(async () => {
  assertPrerequisites();
  app = await createApp(FILES, TOKENS);
  dirs.push(app.dir);
  dev = await startDev(app);
  dirs.push(dev.data);
  ledgerFile = join(tempDir("busbar-sdk-ledger-"), "ledger.jsonl");
  dirs.push(join(ledgerFile, ".."));
  [shop, billing, ledger] = await Promise.all([
    startService(app, dev, "shop", "shop/main.ts"),
    startService(app, dev, "billing", "billing/main.ts"),
    startService(app, dev, "ledger", "ledger/main.ts", { LEDGER_FILE: ledgerFile }),
  ]);
  // This process publishes as shop (its token) for the error cases.
  process.env.DAPR_HTTP_PORT = String(dev.port);
  process.env.DAPR_API_TOKEN = TOKENS.shop;
  process.env.BUSBAR_PUBSUB = "pubsub";
});

after(async () => {
  await stopAll();
  removeAll(dirs);
});

/** Publishes through the shop service's API (its own code calls publish). */
async function publishViaShop(topic, message) {
  const res = await post(`${shop.base}/publish/${topic}`, message);
  assert.equal(res.status, 200, `shop answered ${res.status}: ${res.text}\n${shop.child.output}`);
  assert.equal(typeof res.json.id, "string");
  return res.json.id;
}

/** What billing's handlers saw. */
async function billingSeen() {
  return (await get(`${billing.base}/seen`)).json;
}

/** A sample of the sidecar's /metrics, by its name and labels (`undefined` when absent). */
async function metric(name, labels) {
  const text = (await get(`${dev.url}/metrics`)).text;
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (m && m[1] === name && want.every((w) => m[2].split(",").includes(w))) return Number(m[3]);
  }
  return undefined;
}

/** The error a publish throws (fails when it resolves). */
async function publishError(topic, message) {
  return topic.publish(message).then(
    (id) => assert.fail(`the publish to ${topic.name} should fail, but returned ${id}`),
    (e) => e,
  );
}

test("busbar analyze accepts the app", async () => {
  const { code, stdout, stderr } = await run(BUSBAR_BIN, ["analyze", app.dir, "--format", "json", "--color", "never"]);
  assert.equal(code, 0, stderr + stdout);
  const model = JSON.parse(stdout);
  assert.deepEqual(model.services.map((s) => s.name).sort(), ["billing", "ledger", "shop"]);
  assert.deepEqual(model.topics.map((t) => t.name).sort(), ["audit", "busy", "flaky", "invoices", "orders", "poison"]);
  const audit = model.topics.find((t) => t.name === "audit");
  assert.deepEqual(audit.publishers.map((p) => [p.service, p.via]), [["shop", "ref"]]);
});

test("GET /dapr/subscribe lists each service's subscriptions", async () => {
  const entry = (topic, subscription) => ({
    pubsubname: "pubsub",
    topic,
    route: `/busbar/${topic}/${subscription}`,
    metadata: { subscription },
  });
  assert.deepEqual((await get(`${billing.base}/dapr/subscribe`)).json, [
    entry("orders", "record"),
    entry("flaky", "flaky-retry"),
    entry("poison", "poison-drop"),
    entry("busy", "busy-limited"),
  ]);
  assert.deepEqual((await get(`${ledger.base}/dapr/subscribe`)).json, [entry("audit", "ledger-audit")]);
  assert.deepEqual((await get(`${shop.base}/dapr/subscribe`)).json, []);
});

test("publish returns an id, and the subscriber's handler receives exactly the message", async () => {
  const message = { id: "o-1", total: 12.5, region: "eu", note: "two teas, ünïcode ✓" };
  const id = await publishViaShop("orders", message);
  const got = await waitFor("billing's record handler", async () => {
    const { seen } = await billingSeen();
    return seen.record.find((r) => r.info.id === id);
  });
  assert.deepEqual(got.message, message);
  assert.equal(got.info.topic, "orders");
  assert.equal(got.info.subscription, "record");
  assert.equal(got.info.contentType, "application/json");
  // Delivered once and acknowledged.
  await waitFor("the ack in /metrics", async () =>
    (await metric("busbar_deliveries_total", { subscription: "record", outcome: "acknowledged" })) >= 1,
  );
  assert.equal((await billingSeen()).seen.record.filter((r) => r.info.id === id).length, 1);
});

test("a handler that throws is retried, then succeeds", async () => {
  const id = await publishViaShop("flaky", { id: "job-1", failTimes: 2 });
  const { seen } = await waitFor(
    "three deliveries of the flaky job",
    async () => {
      const state = await billingSeen();
      return state.attempts["job-1"] >= 3 && state;
    },
    { timeout: 30_000 },
  );
  const deliveries = seen.flaky.filter((d) => d.id === "job-1");
  assert.deepEqual(deliveries.map((d) => d.attempt), [1, 2, 3]);
  assert.ok(deliveries.every((d) => d.messageId === id), "the same message each time");
  await waitFor("the sidecar's counts", async () =>
    (await metric("busbar_deliveries_total", { subscription: "flaky-retry", outcome: "acknowledged" })) === 1,
  );
  assert.equal(await metric("busbar_deliveries_total", { subscription: "flaky-retry", outcome: "retried" }), 2);
  assert.equal(await metric("busbar_dead_letters", { subscription: "flaky-retry" }), 0);
  assert.match(billing.child.output, /subscription flaky\/flaky-retry message [\w-]+: the handler failed \(will retry\): Error: job job-1 fails attempt 1/);
});

test("a handler that throws DropMessage dead-letters the message at once", async () => {
  const id = await publishViaShop("poison", { id: "job-2", failTimes: 0 });
  await waitFor("the dead letter in /metrics", async () => (await metric("busbar_dead_letters", { subscription: "poison-drop" })) === 1);
  const { code, stdout, stderr } = await run(BUSBAR_BIN, [
    "dlq", "list", app.dir, "--data", dev.data, "--subscription", "poison-drop", "--color", "never",
  ]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /poison\/poison-drop: 1 dead letter/);
  assert.match(stdout, new RegExp(`${id}\\s+1 attempt`), stdout);
  assert.equal(await metric("busbar_deliveries_total", { subscription: "poison-drop", outcome: "retried" }), 0);
  assert.deepEqual((await billingSeen()).seen.poison, [{ id: "job-2", messageId: id }], "delivered once, not retried");
});

test("maxConcurrency: 2 is honoured", async () => {
  const ids = [];
  for (let k = 0; k < 8; k++) ids.push(`busy-${k}`);
  await Promise.all(ids.map((id) => publishViaShop("busy", { id, failTimes: 0 })));
  const state = await waitFor("the eight busy jobs", async () => {
    const s = await billingSeen();
    return s.seen.busy.length === 8 && s;
  });
  assert.deepEqual([...state.seen.busy].sort(), ids);
  assert.ok(state.concurrency.max >= 1 && state.concurrency.max <= 2, `max concurrency ${state.concurrency.max}`);
});

test("ref<Publisher>() publishes (exactly-once topic), delivered to a service that never calls serve()", async () => {
  const id = await publishViaShop("audit", { action: "refund", seq: 1 });
  const line = await waitFor("the ledger entry", () => {
    if (!existsSync(ledgerFile)) return undefined;
    return readFileSync(ledgerFile, "utf8").split("\n").find((l) => l.includes(id));
  });
  assert.deepEqual(JSON.parse(line), { entry: { action: "refund", seq: 1 }, id });
});

test("publishing to a topic the service's code does not publish: PermissionDenied with the sidecar's message", async () => {
  const invoices = new Topic("invoices", { deliveryGuarantee: "at-least-once" });
  const error = await publishError(invoices, { orderId: "o-1", amount: 1 });
  assert.ok(error instanceof PermissionDenied, String(error));
  assert.ok(error instanceof PublishError);
  assert.equal(error.status, 403);
  assert.equal(error.code, "ERR_PERMISSION_DENIED");
  assert.equal(error.topic, "invoices");
  const raw = await post(`${dev.url}/v1.0/publish/pubsub/invoices`, { orderId: "o-1", amount: 1 }, { "dapr-api-token": TOKENS.shop });
  assert.equal(raw.status, 403);
  assert.equal(error.message, raw.json.message);
  assert.match(error.message, /service `shop` may not publish to `invoices`/);
  // billing's code publishes it: billing may.
  process.env.DAPR_API_TOKEN = TOKENS.billing;
  try {
    assert.equal(typeof (await invoices.publish({ orderId: "o-1", amount: 1 })), "string");
  } finally {
    process.env.DAPR_API_TOKEN = TOKENS.shop;
  }
});

test("a message that does not match the topic's type: InvalidMessage with errors", async () => {
  const orders = new Topic("orders", { deliveryGuarantee: "at-least-once" });
  const error = await publishError(orders, /** @type {any} */ ({ id: 7, total: "a lot", region: "eu" }));
  assert.ok(error instanceof InvalidMessage, String(error));
  assert.equal(error.status, 400);
  assert.equal(error.code, "ERR_MESSAGE_INVALID");
  assert.deepEqual(
    error.errors.map((e) => e.pointer).sort(),
    ["/id", "/total"],
  );
  assert.match(error.errors.find((e) => e.pointer === "/id").rule, /not of type "string"/);
  assert.match(error.message, /does not match the schema of `orders`/);
  const missing = await publishError(orders, /** @type {any} */ ({ id: "o-2", total: 1 }));
  assert.ok(missing instanceof InvalidMessage);
  assert.ok(missing.errors.some((e) => /region/.test(e.rule)), JSON.stringify(missing.errors));
});

test("a message over 256 KiB: MessageTooLarge", async () => {
  const orders = new Topic("orders", { deliveryGuarantee: "at-least-once" });
  const error = await publishError(orders, { id: "o-3", total: 1, region: "eu", note: "x".repeat(300 * 1024) });
  assert.ok(error instanceof MessageTooLarge, String(error));
  assert.equal(error.status, 413);
  assert.match(error.message, /limit is 262144/);
});

test("a topic the app does not have: TopicNotFound", async () => {
  const error = await publishError(new Topic("no-such-topic", { deliveryGuarantee: "at-least-once" }), { a: 1 });
  assert.ok(error instanceof TopicNotFound, String(error));
  assert.equal(error.status, 404);
  assert.equal(error.code, "ERR_TOPIC_NOT_FOUND");
});

test("a publish while the sidecar restarts waits for it", async () => {
  const { port, data } = dev;
  await dev.child.stop();
  process.env.BUSBAR_PUBLISH_RETRY_MS = "30000";
  try {
    const orders = new Topic("orders", { deliveryGuarantee: "at-least-once" });
    const publishing = orders.publish({ id: "o-4", total: 2, region: "us" });
    dev = await startDev(app, { port, data });
      const id = await publishing;
    await waitFor("the order published during the restart", async () =>
      (await billingSeen()).seen.record.some((r) => r.info.id === id && r.message.id === "o-4"),
    );
  } finally {
    delete process.env.BUSBAR_PUBLISH_RETRY_MS;
  }
});

test("a sidecar that is down: SidecarUnavailable", async () => {
  await dev.child.stop();
  process.env.BUSBAR_PUBLISH_RETRY_MS = "500";
  try {
    const started = Date.now();
    const error = await publishError(new Topic("orders", { deliveryGuarantee: "at-least-once" }), { id: "o-5", total: 1, region: "eu" });
    assert.ok(error instanceof SidecarUnavailable, String(error));
    assert.ok(error instanceof PublishError);
    assert.equal(error.topic, "orders");
    assert.ok(Date.now() - started < 10_000);
  } finally {
    delete process.env.BUSBAR_PUBLISH_RETRY_MS;
  }
});
