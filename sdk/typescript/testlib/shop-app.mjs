// The app the end-to-end tests run: three services written against `@busbar/pubsub`.
//
// - shop: declares the topics; its API publishes to them (`POST /publish/{topic}`), `audit`
//   through `ref<Publisher>()`. Calls `serve(api)`.
// - billing: subscribes (record, flaky-retry, poison-drop, busy-limited) and exposes what its
//   handlers saw (`GET /seen`); declares and publishes `invoices` (shop's code does not).
// - ledger: one subscription and no `serve` call: the SDK starts its server by itself. Its
//   handler appends each message to `$LEDGER_FILE`.

export const TOKENS = { shop: "shop-token", billing: "billing-token", ledger: "ledger-token" };

const shopService = `import { Service } from "@busbar/pubsub";

export default new Service("shop");
`;

const shopTopics = `import { Topic, type Attribute } from "@busbar/pubsub";

export interface Order {
  id: string;
  total: number;
  region: Attribute<string>;
  note?: string;
}

export interface Job {
  id: string;
  /** How many deliveries the handler fails before it succeeds. */
  failTimes: number;
}

export interface Audit {
  action: string;
  seq: number;
}

export const orders = new Topic<Order>("orders", { deliveryGuarantee: "at-least-once" });
export const flaky = new Topic<Job>("flaky", { deliveryGuarantee: "at-least-once" });
export const poison = new Topic<Job>("poison", { deliveryGuarantee: "at-least-once" });
export const busy = new Topic<Job>("busy", { deliveryGuarantee: "at-least-once" });
export const audit = new Topic<Audit>("audit", { deliveryGuarantee: "exactly-once" });
`;

const shopMain = `import type { IncomingMessage } from "node:http";
import { serve, PublishError, type Publisher } from "@busbar/pubsub";
import { orders, flaky, poison, busy, audit, type Audit } from "./topics";

// Handed to other code as a publisher: shop's permission to publish to audit.
const auditLog: Publisher<Audit> = audit.ref<Publisher>();

async function json(req: IncomingMessage): Promise<any> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return JSON.parse(text);
}

async function publish(path: string, body: any): Promise<string | undefined> {
  switch (path) {
    case "/publish/orders":
      return orders.publish(body);
    case "/publish/flaky":
      return flaky.publish(body);
    case "/publish/poison":
      return poison.publish(body);
    case "/publish/busy":
      return busy.publish(body);
    case "/publish/audit":
      return auditLog.publish(body);
    default:
      return undefined;
  }
}

await serve(async (req, res) => {
  res.setHeader("content-type", "application/json");
  try {
    const id = await publish(req.url ?? "", await json(req));
    if (id === undefined) {
      res.writeHead(404).end(JSON.stringify({ error: "no such route" }));
      return;
    }
    res.end(JSON.stringify({ id }));
  } catch (e: any) {
    res.writeHead(500).end(
      JSON.stringify({ error: { name: e.name, message: e.message, publishError: e instanceof PublishError } }),
    );
  }
});
`;

const billingService = `import { Service } from "@busbar/pubsub";

export default new Service("billing");
`;

const billingTopics = `import { Topic } from "@busbar/pubsub";

export interface Invoice {
  orderId: string;
  amount: number;
}

export const invoices = new Topic<Invoice>("invoices", { deliveryGuarantee: "at-least-once" });
`;

const billingMain = `import { DropMessage, Subscription, serve } from "@busbar/pubsub";
import { orders, flaky, poison, busy } from "../shop/topics";
import { invoices } from "./topics";

const seen: Record<string, any[]> = { record: [], flaky: [], poison: [], busy: [] };
const attempts: Record<string, number> = {};
const concurrency = { now: 0, max: 0 };

new Subscription(orders, "record", {
  handler: async (order, info) => {
    seen.record.push({ message: order, info });
    if (order.note === "invoice") await invoices.publish({ orderId: order.id, amount: order.total });
  },
});

new Subscription(flaky, "flaky-retry", {
  handler: async (job, info) => {
    const n = (attempts[job.id] = (attempts[job.id] ?? 0) + 1);
    seen.flaky.push({ id: job.id, attempt: n, messageId: info.id });
    if (n <= job.failTimes) throw new Error(\`job \${job.id} fails attempt \${n}\`);
  },
  retryPolicy: { minBackoff: "1s", maxBackoff: "1s", maxRetries: 5 },
});

new Subscription(poison, "poison-drop", {
  handler: async (job, info) => {
    seen.poison.push({ id: job.id, messageId: info.id });
    throw new DropMessage(\`job \${job.id} cannot be processed\`);
  },
  retryPolicy: { minBackoff: "1s", maxBackoff: "1s", maxRetries: 5 },
});

new Subscription(busy, "busy-limited", {
  handler: async (job) => {
    concurrency.now += 1;
    concurrency.max = Math.max(concurrency.max, concurrency.now);
    await new Promise((r) => setTimeout(r, 300));
    concurrency.now -= 1;
    seen.busy.push(job.id);
  },
  maxConcurrency: 2,
});

await serve((req, res) => {
  res.setHeader("content-type", "application/json");
  if (req.url === "/seen") {
    res.end(JSON.stringify({ seen, attempts, concurrency }));
    return;
  }
  res.writeHead(404).end(JSON.stringify({ error: "no such route" }));
});
`;

const ledgerService = `import { Service } from "@busbar/pubsub";

export default new Service("ledger");
`;

const ledgerMain = `import { appendFileSync } from "node:fs";
import { Subscription } from "@busbar/pubsub";
import { audit } from "../shop/topics";

// No serve(): the SDK serves this subscription by itself.
new Subscription(audit, "ledger-audit", {
  handler: (entry, info) => {
    appendFileSync(process.env.LEDGER_FILE ?? "ledger.jsonl", JSON.stringify({ entry, id: info.id }) + "\\n");
  },
});
`;

export const FILES = {
  "shop/encore.service.ts": shopService,
  "shop/topics.ts": shopTopics,
  "shop/main.ts": shopMain,
  "billing/encore.service.ts": billingService,
  "billing/topics.ts": billingTopics,
  "billing/main.ts": billingMain,
  "ledger/encore.service.ts": ledgerService,
  "ledger/main.ts": ledgerMain,
};
