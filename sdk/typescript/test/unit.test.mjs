// Unit tests, no busbar needed: the semaphore, the dispatcher (outcomes, log lines,
// maxConcurrency), the publish client against a fake sidecar (error mapping, headers,
// keep-alive, retry of a refused connection), and the in-process server.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";

import { createDispatcher, messageOf } from "../dist/dispatch.js";
import {
  DropMessage,
  InvalidMessage,
  MessageTooLarge,
  PermissionDenied,
  PublishError,
  Service,
  SidecarUnavailable,
  StorageFull,
  Subscription,
  Topic,
  TopicNotFound,
  serve,
  shutdown,
} from "../dist/index.js";
import { Semaphore } from "../dist/semaphore.js";
import { freePort, get, post, sleep, waitFor } from "../testlib/harness.mjs";

/** Runs `fn` with stderr captured: resolves to [result, lines written]. */
async function capturingStderr(fn) {
  const lines = [];
  const write = process.stderr.write;
  process.stderr.write = (chunk, ...rest) => {
    lines.push(String(chunk));
    const cb = rest.find((r) => typeof r === "function");
    if (cb) cb();
    return true;
  };
  try {
    return [await fn(), lines];
  } finally {
    process.stderr.write = write;
  }
}

const event = (data, extra = {}) =>
  JSON.stringify({
    id: "msg-1",
    source: "busbar",
    specversion: "1.0",
    type: "com.dapr.event.sent",
    datacontenttype: "application/json",
    time: "2026-01-01T00:00:00Z",
    topic: "t",
    pubsubname: "pubsub",
    traceparent: "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
    data,
    ...extra,
  });

describe("Semaphore", () => {
  test("admits at most its limit; the others wait in order", async () => {
    const gate = new Semaphore(2);
    const order = [];
    let now = 0;
    let max = 0;
    const task = (k) =>
      gate.run(async () => {
        now += 1;
        max = Math.max(max, now);
        order.push(k);
        await sleep(20);
        now -= 1;
      });
    await Promise.all([0, 1, 2, 3, 4, 5].map(task));
    assert.equal(max, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
    assert.equal(gate.held, 0);
    assert.equal(gate.waiting, 0);
  });

  test("a task that throws gives its place back", async () => {
    const gate = new Semaphore(1);
    await assert.rejects(gate.run(() => Promise.reject(new Error("boom"))), /boom/);
    assert.equal(await gate.run(() => 7), 7);
  });

  test("refuses a limit below 1", () => {
    assert.throws(() => new Semaphore(0), RangeError);
    assert.throws(() => new Semaphore(1.5), RangeError);
  });
});

describe("dispatcher", () => {
  test("a handler that returns: SUCCESS, with the message and its info", async () => {
    const calls = [];
    const dispatch = createDispatcher({
      topic: "t",
      subscription: "s",
      handler: (msg, info) => void calls.push({ msg, info }),
    });
    assert.equal(await dispatch(event({ a: 1, b: ["x"] })), "SUCCESS");
    assert.deepEqual(calls[0].msg, { a: 1, b: ["x"] });
    assert.equal(calls[0].info.id, "msg-1");
    assert.equal(calls[0].info.topic, "t");
    assert.equal(calls[0].info.subscription, "s");
    assert.equal(calls[0].info.time, "2026-01-01T00:00:00Z");
  });

  test("a handler that throws: RETRY, and one log line naming service, subscription, message, error", async () => {
    process.env.BUSBAR_SERVICE = "unit-svc";
    const dispatch = createDispatcher({
      topic: "t",
      subscription: "s",
      handler: async () => {
        throw new Error("database down\nsecond line");
      },
    });
    const [outcome, lines] = await capturingStderr(() => dispatch(event({})));
    assert.equal(outcome, "RETRY");
    assert.equal(lines.length, 1);
    assert.equal(lines[0].split("\n").length, 2, "one line, ending in a newline");
    for (const part of ["unit-svc", "t/s", "msg-1", "database down"]) assert.match(lines[0], new RegExp(part));
  });

  test("a handler that throws DropMessage: DROP", async () => {
    const dispatch = createDispatcher({
      topic: "t",
      subscription: "s",
      handler: () => {
        throw new DropMessage("poison");
      },
    });
    const [outcome] = await capturingStderr(() => dispatch(event({})));
    assert.equal(outcome, "DROP");
  });

  test("a body that is not JSON: DROP, with a log line; the handler is not called", async () => {
    let called = false;
    const dispatch = createDispatcher({ topic: "t", subscription: "s", handler: () => (called = true) });
    const [outcome, lines] = await capturingStderr(() => dispatch("{not json"));
    assert.equal(outcome, "DROP");
    assert.equal(called, false);
    assert.equal(lines.length, 1);
    assert.match(lines[0], /not JSON/);
  });

  test("text and binary payloads", () => {
    assert.equal(messageOf({ data: "plain text" }), "plain text");
    assert.deepEqual(messageOf({ data_base64: Buffer.from([1, 2, 255]).toString("base64") }), Buffer.from([1, 2, 255]));
  });

  test("maxConcurrency: at most N handler calls at once, however many deliveries arrive", async () => {
    let now = 0;
    let max = 0;
    let done = 0;
    const dispatch = createDispatcher({
      topic: "t",
      subscription: "s",
      maxConcurrency: 2,
      handler: async () => {
        now += 1;
        max = Math.max(max, now);
        await sleep(30);
        now -= 1;
        done += 1;
      },
    });
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => dispatch(event({}))));
    assert.deepEqual(new Set(outcomes), new Set(["SUCCESS"]));
    assert.equal(max, 2);
    assert.equal(done, 10);
  });

  test("without maxConcurrency, deliveries run at once", async () => {
    let now = 0;
    let max = 0;
    const dispatch = createDispatcher({
      topic: "t",
      subscription: "s",
      handler: async () => {
        now += 1;
        max = Math.max(max, now);
        await sleep(30);
        now -= 1;
      },
    });
    await Promise.all(Array.from({ length: 5 }, () => dispatch(event({}))));
    assert.equal(max, 5);
  });
});

describe("Topic, Subscription and Service", () => {
  test("record their names and configuration", () => {
    const topic = new Topic("unit-orders", { deliveryGuarantee: "exactly-once", orderingAttribute: "region" });
    assert.equal(topic.name, "unit-orders");
    assert.equal(topic.config.deliveryGuarantee, "exactly-once");
    assert.equal(new Service("unit-service").name, "unit-service");
    assert.equal(typeof topic.ref().publish, "function");
    const elsewhere = Topic.declaredElsewhere("unit-declared-in-rust");
    assert.ok(elsewhere instanceof Topic);
    assert.equal(elsewhere.name, "unit-declared-in-rust");
    assert.equal(elsewhere.config, undefined);
    assert.equal(new Subscription(elsewhere, "unit-on-a-handle", { handler() {} }).topic, elsewhere);
  });

  test("refuse what cannot work", () => {
    assert.throws(() => new Topic("", { deliveryGuarantee: "at-least-once" }), TypeError);
    assert.throws(() => new Topic("x", { deliveryGuarantee: "twice" }), TypeError);
    assert.throws(() => Topic.declaredElsewhere(""), TypeError);
    const topic = new Topic("unit-refusals", { deliveryGuarantee: "at-least-once" });
    assert.throws(() => new Subscription(topic, "s", {}), TypeError);
    assert.throws(() => new Subscription(topic, "s", { handler() {}, maxConcurrency: 0 }), RangeError);
  });
});

describe("publish against a fake sidecar", () => {
  let sidecar;
  let port;
  const requests = [];
  const sockets = new Set();
  const answers = {
    ok: [204, "", { "busbar-message-id": "m-42" }],
    denied: [403, { errorCode: "ERR_PERMISSION_DENIED", message: "service `x` may not publish to `denied`" }],
    invalid: [
      400,
      {
        errorCode: "ERR_MESSAGE_INVALID",
        message: "the message does not match",
        errors: [{ pointer: "/id", rule: '7 is not of type "string"' }],
      },
    ],
    malformed: [400, { errorCode: "ERR_MALFORMED_REQUEST", message: "bad body" }],
    large: [413, { errorCode: "ERR_PUBSUB_PUBLISH_MESSAGE", message: "too large" }],
    full: [507, { errorCode: "ERR_PUBSUB_PUBLISH_MESSAGE", message: "the disk is full: nothing was stored" }],
    missing: [404, { errorCode: "ERR_TOPIC_NOT_FOUND", message: "there is no topic `missing` in the app" }],
    broken: [500, { errorCode: "ERR_PUBSUB_PUBLISH_MESSAGE", message: "the store failed" }],
    text: [502, "bad gateway"],
  };

  before(async () => {
    port = await freePort();
    sidecar = createServer((req, res) => {
      sockets.add(req.socket);
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        requests.push({ url: req.url, headers: req.headers, body, socket: req.socket });
        const topic = decodeURIComponent(new URL(req.url, "http://x").pathname.split("/").pop());
        const [status, answer, headers = {}] = answers[topic] ?? [500, "no such test topic"];
        const text = typeof answer === "string" ? answer : JSON.stringify(answer);
        res.writeHead(status, { "content-type": typeof answer === "string" ? "text/plain" : "application/json", ...headers });
        res.end(text);
      });
    });
    await new Promise((r) => sidecar.listen(port, "127.0.0.1", r));
    process.env.DAPR_HTTP_PORT = String(port);
    process.env.DAPR_API_TOKEN = "unit-token";
    process.env.BUSBAR_PUBSUB = "unit-pubsub";
  });

  after(async () => {
    sidecar.closeAllConnections();
    await new Promise((r) => sidecar.close(r));
    delete process.env.BUSBAR_PUBSUB;
  });

  test("sends JSON with the token and a client message id; returns the sidecar's id", async () => {
    const id = await new Topic("ok", { deliveryGuarantee: "at-least-once" }).publish({ a: "é", n: 1 });
    assert.equal(id, "m-42");
    const req = requests.at(-1);
    const url = new URL(req.url, "http://x");
    assert.equal(url.pathname, "/v1.0/publish/unit-pubsub/ok");
    assert.match(url.searchParams.get("metadata.messageId"), /^[0-9a-f-]{36}$/);
    assert.equal(req.headers["dapr-api-token"], "unit-token");
    assert.equal(req.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(req.body), { a: "é", n: 1 });
  });

  test("each publish has its own message id; sequential publishes reuse one connection", async () => {
    const topic = new Topic("ok", { deliveryGuarantee: "at-least-once" });
    const from = requests.length;
    for (let k = 0; k < 20; k++) await topic.publish({ k });
    const mine = requests.slice(from);
    const ids = new Set(mine.map((r) => new URL(r.url, "http://x").searchParams.get("metadata.messageId")));
    assert.equal(ids.size, 20);
    assert.equal(new Set(mine.map((r) => r.socket)).size, 1, "kept alive");
  });

  test("ref<Publisher>() publishes to its topic", async () => {
    const id = await new Topic("ok", { deliveryGuarantee: "at-least-once" }).ref().publish({ via: "ref" });
    assert.equal(id, "m-42");
    assert.deepEqual(JSON.parse(requests.at(-1).body), { via: "ref" });
  });

  test("a handle on a topic declared elsewhere publishes to it by name", async () => {
    const id = await Topic.declaredElsewhere("ok").publish({ via: "handle" });
    assert.equal(id, "m-42");
    assert.match(requests.at(-1).url, /\/v1\.0\/publish\/[^/]+\/ok\?/);
    assert.deepEqual(JSON.parse(requests.at(-1).body), { via: "handle" });
  });

  const cases = [
    ["denied", PermissionDenied, 403, "ERR_PERMISSION_DENIED"],
    ["invalid", InvalidMessage, 400, "ERR_MESSAGE_INVALID"],
    ["malformed", InvalidMessage, 400, "ERR_MALFORMED_REQUEST"],
    ["large", MessageTooLarge, 413, "ERR_PUBSUB_PUBLISH_MESSAGE"],
    ["full", StorageFull, 507, "ERR_PUBSUB_PUBLISH_MESSAGE"],
    ["missing", TopicNotFound, 404, "ERR_TOPIC_NOT_FOUND"],
    ["broken", PublishError, 500, "ERR_PUBSUB_PUBLISH_MESSAGE"],
    ["text", PublishError, 502, ""],
  ];
  for (const [topic, type, status, code] of cases) {
    test(`HTTP ${status} (${topic}) throws ${type.name}`, async () => {
      const error = await new Topic(topic, { deliveryGuarantee: "at-least-once" }).publish({}).then(
        () => assert.fail("the publish should fail"),
        (e) => e,
      );
      assert.ok(error instanceof type, `${error} is a ${type.name}`);
      assert.ok(error instanceof PublishError);
      assert.equal(error.constructor, type);
      assert.equal(error.name, type.name);
      assert.equal(error.status, status);
      assert.equal(error.code, code);
      assert.equal(error.topic, topic);
      const [, answer] = answers[topic];
      assert.equal(error.message, typeof answer === "string" ? answer : answer.message);
    });
  }

  test("InvalidMessage carries the sidecar's errors", async () => {
    const error = await new Topic("invalid", { deliveryGuarantee: "at-least-once" }).publish({}).catch((e) => e);
    assert.deepEqual(error.errors, [{ pointer: "/id", rule: '7 is not of type "string"' }]);
    const other = await new Topic("malformed", { deliveryGuarantee: "at-least-once" }).publish({}).catch((e) => e);
    assert.deepEqual(other.errors, []);
  });

  test("a refused connection is retried until the sidecar answers", async () => {
    const late = await freePort();
    process.env.DAPR_HTTP_PORT = String(late);
    process.env.BUSBAR_PUBLISH_RETRY_MS = "15000";
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(204, { "busbar-message-id": "late-1" }).end());
    });
    try {
      const started = Date.now();
      const publishing = new Topic("late", { deliveryGuarantee: "at-least-once" }).publish({ x: 1 });
      await sleep(400);
      await new Promise((r) => server.listen(late, "127.0.0.1", r));
      assert.equal(await publishing, "late-1");
      assert.ok(Date.now() - started >= 400);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      process.env.DAPR_HTTP_PORT = String(port);
      delete process.env.BUSBAR_PUBLISH_RETRY_MS;
    }
  });

  test("a sidecar that never comes: SidecarUnavailable after BUSBAR_PUBLISH_RETRY_MS", async () => {
    process.env.DAPR_HTTP_PORT = String(await freePort());
    process.env.BUSBAR_PUBLISH_RETRY_MS = "300";
    try {
      const started = Date.now();
      const error = await new Topic("gone", { deliveryGuarantee: "at-least-once" }).publish({}).catch((e) => e);
      const took = Date.now() - started;
      assert.ok(error instanceof SidecarUnavailable, String(error));
      assert.ok(error instanceof PublishError);
      assert.equal(error.status, 0);
      assert.equal(error.code, "ECONNREFUSED");
      assert.equal(error.topic, "gone");
      assert.ok(took >= 150 && took < 5000, `took ${took} ms`);
    } finally {
      process.env.DAPR_HTTP_PORT = String(port);
      delete process.env.BUSBAR_PUBLISH_RETRY_MS;
    }
  });
});

describe("the server", () => {
  let base;
  const received = [];
  const limited = { now: 0, max: 0 };
  let api;

  before(async () => {
    const appPort = await freePort();
    process.env.APP_PORT = String(appPort);
    process.env.BUSBAR_PUBSUB = "pubsub";
    base = `http://127.0.0.1:${appPort}`;
    const topic = new Topic("srv-orders", { deliveryGuarantee: "at-least-once" });
    const odd = new Topic("srv orders/odd", { deliveryGuarantee: "at-least-once" });
    new Subscription(topic, "srv-ok", { handler: (msg, info) => void received.push({ msg, id: info.id }) });
    new Subscription(topic, "srv-fail", {
      handler: () => {
        throw new Error("nope");
      },
    });
    new Subscription(topic, "srv-drop", {
      handler: () => {
        throw new DropMessage("poison");
      },
    });
    new Subscription(odd, "odd name", { handler: () => {} });
    new Subscription(topic, "srv-limited", {
      maxConcurrency: 2,
      handler: async () => {
        limited.now += 1;
        limited.max = Math.max(limited.max, limited.now);
        await sleep(50);
        limited.now -= 1;
      },
    });
    api = await serve();
  });

  after(async () => {
    await shutdown();
    delete process.env.APP_PORT;
  });

  test("GET /dapr/subscribe lists every subscription of the process", async () => {
    const { status, json } = await get(`${base}/dapr/subscribe`);
    assert.equal(status, 200);
    assert.deepEqual(json, [
      // The handle's subscription of the "construct" test: served like any other.
      {
        pubsubname: "pubsub",
        topic: "unit-declared-in-rust",
        route: "/busbar/unit-declared-in-rust/unit-on-a-handle",
        metadata: { subscription: "unit-on-a-handle" },
      },
      { pubsubname: "pubsub", topic: "srv-orders", route: "/busbar/srv-orders/srv-ok", metadata: { subscription: "srv-ok" } },
      { pubsubname: "pubsub", topic: "srv-orders", route: "/busbar/srv-orders/srv-fail", metadata: { subscription: "srv-fail" } },
      { pubsubname: "pubsub", topic: "srv-orders", route: "/busbar/srv-orders/srv-drop", metadata: { subscription: "srv-drop" } },
      {
        pubsubname: "pubsub",
        topic: "srv orders/odd",
        route: "/busbar/srv%20orders%2Fodd/odd%20name",
        metadata: { subscription: "odd name" },
      },
      {
        pubsubname: "pubsub",
        topic: "srv-orders",
        route: "/busbar/srv-orders/srv-limited",
        metadata: { subscription: "srv-limited" },
      },
    ]);
  });

  test("deliveries answer SUCCESS, RETRY and DROP", async () => {
    const [answers] = await capturingStderr(async () => [
      await post(`${base}/busbar/srv-orders/srv-ok`, event({ n: 1 }), { "content-type": "application/cloudevents+json" }),
      await post(`${base}/busbar/srv-orders/srv-fail`, event({ n: 2 })),
      await post(`${base}/busbar/srv-orders/srv-drop`, event({ n: 3 })),
      await post(`${base}/busbar/srv-orders/srv-ok`, "{broken"),
      await post(`${base}/busbar/srv%20orders%2Fodd/odd%20name`, event({ n: 4 })),
    ]);
    assert.deepEqual(
      answers.map((a) => [a.status, a.json.status]),
      [
        [200, "SUCCESS"],
        [200, "RETRY"],
        [200, "DROP"],
        [200, "DROP"],
        [200, "SUCCESS"],
      ],
    );
    assert.deepEqual(received, [{ msg: { n: 1 }, id: "msg-1" }]);
  });

  test("maxConcurrency over HTTP: 8 deliveries at once, at most 2 handler calls", async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, k) => post(`${base}/busbar/srv-orders/srv-limited`, event({ k }))),
    );
    assert.deepEqual(new Set(answers.map((a) => a.json.status)), new Set(["SUCCESS"]));
    assert.equal(limited.max, 2);
  });

  test("a route of no subscription here answers 503 (retried), never 404", async () => {
    for (const path of ["/busbar/srv-orders/unknown", "/busbar/other/srv-ok", "/busbar/x", "/busbar/%E0%A4%A/x"]) {
      const { status } = await post(`${base}${path}`, event({}));
      assert.equal(status, 503, path);
    }
  });

  test("everything else goes to the api handler (404 JSON without one)", async () => {
    const none = await get(`${base}/hello`);
    assert.equal(none.status, 404);
    assert.equal(none.json.error, "not found");
    const again = await serve((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ path: req.url }));
    });
    assert.equal(again, api, "serve is idempotent: the same server");
    assert.deepEqual((await get(`${base}/hello?x=1`)).json, { path: "/hello?x=1" });
    await serve(() => {
      throw new Error("api bug");
    });
    const [failed, lines] = await capturingStderr(() => get(`${base}/boom`));
    assert.equal(failed.status, 500);
    assert.match(lines.join(""), /api bug/);
    assert.equal((await get(`${base}/dapr/subscribe`)).status, 200, "busbar's routes stay busbar's");
  });

  test("serve without APP_PORT is a clear error", async () => {
    await shutdown();
    const saved = process.env.APP_PORT;
    delete process.env.APP_PORT;
    try {
      await assert.rejects(serve(), /APP_PORT is not set/);
    } finally {
      process.env.APP_PORT = saved;
    }
    api = await serve();
    await waitFor("the server again", async () => (await get(`${base}/dapr/subscribe`)).status === 200);
  });
});
