#!/usr/bin/env node
// End-to-end check of the shop running under `busbar dev`: signs up users, places orders,
// cancels some, then polls every service's GET /events until what should have arrived did
// (or the deadline passes) and checks it exactly: nothing missing, nothing extra, and the
// per-customer order of order-placed. Node 20+, no dependencies.
//
//   node check.mjs --users URL --orders URL --payments URL --shipping URL \
//                  --notifications URL --analytics URL --fraud URL [--count 200] [--customers 10]
//                  [--timeout 120] [--concurrency 8] [--restarted payments]
//
// `--restarted payments`: payments was killed and restarted during the run, so its own
// record (in memory) starts over: its GET /events is not checked, and what flows through it
// is checked downstream (shipping, notifications), where a payment captured again after the
// crash is allowed (at least once: the crash came between a capture and its acknowledgement).
//
// Each URL may also come from the environment: SHOP_USERS_URL, SHOP_ORDERS_URL, ...
// (`busbar dev` prints each service's APP_PORT: the URL is http://127.0.0.1:APP_PORT).
// Only this run's users and orders are checked (their ids are unique per run), so the app
// need not be fresh; the analytics counters are compared before and after, so do not run two
// checks against one app at once. Exit 0: every check passed; 1: one failed (named);
// 2: usage.

const SERVICES = ["users", "orders", "payments", "shipping", "notifications", "analytics", "fraud"];
const REGIONS = ["eu", "uk", "us", "ca", "au"];
const SOURCES = ["web", "ios", "android"];
/** Regions whose orders get a confirmation mail (notifications' order-confirmation filter). */
const CONFIRMED = new Set(["eu", "uk"]);
/** Payment methods that are shipped (shipping's dispatch-paid-orders filter). */
const SHIPPED = new Set(["card", "paypal"]);
/** Totals (cents) above which fraud's verdict is "high" risk (notifications' fraud-review filter). */
const REVIEW_ABOVE_CENTS = 120_000;

function usage(message) {
  console.error(`check.mjs: ${message}`);
  console.error(
    "usage: node check.mjs --users URL --orders URL --payments URL --shipping URL --notifications URL --analytics URL --fraud URL [--count N] [--customers N] [--timeout SECONDS] [--concurrency N]",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const options = { count: 200, customers: 10, timeout: 120, concurrency: 8, urls: {}, restarted: new Set() };
  for (const name of SERVICES) {
    const env = process.env[`SHOP_${name.toUpperCase()}_URL`];
    if (env) options.urls[name] = env;
  }
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    if (!arg.startsWith("--")) usage(`unexpected argument ${arg}`);
    arg = arg.slice(2);
    const eq = arg.indexOf("=");
    if (eq >= 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    } else {
      value = argv[++i];
    }
    if (value === undefined) usage(`--${arg} needs a value`);
    if (SERVICES.includes(arg)) {
      options.urls[arg] = value;
    } else if (arg === "restarted") {
      if (value !== "payments") usage("--restarted takes payments (the service whose crash the check allows for)");
      options.restarted.add(value);
    } else if (["count", "customers", "timeout", "concurrency"].includes(arg)) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) usage(`--${arg} must be a whole number of at least 1`);
      options[arg] = n;
    } else {
      usage(`unknown option --${arg}`);
    }
  }
  for (const name of SERVICES) {
    const url = options.urls[name];
    if (!url) usage(`no URL for ${name} (--${name} URL or SHOP_${name.toUpperCase()}_URL)`);
    if (!/^https?:\/\//.test(url)) usage(`--${name}: ${url} is not an http(s) URL`);
    options.urls[name] = url.replace(/\/+$/, "");
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));
const started = Date.now();
const deadline = started + options.timeout * 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function call(service, method, path, body) {
  const response = await fetch(`${options.urls[service]}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    throw new Error(`${service}: ${method} ${path}: ${response.status} ${text.slice(0, 300)}`);
  }
  return json;
}

/** Waits until every service answers (busbar dev may still be starting them). */
async function waitForServices() {
  const probe = { users: "/users", orders: "/orders" };
  let last;
  for (;;) {
    const down = [];
    await Promise.all(
      SERVICES.map(async (name) => {
        try {
          await call(name, "GET", probe[name] ?? "/events");
        } catch (error) {
          down.push(name);
          last = error;
        }
      }),
    );
    if (down.length === 0) return;
    if (Date.now() > deadline) {
      console.error(`FAIL not answering: ${down.join(", ")} (${last?.cause?.code ?? last?.message})`);
      process.exit(1);
    }
    await sleep(500);
  }
}

/** Runs `work` over `items` with at most `limit` at once. */
async function pool(items, limit, work) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i], i);
    }
  });
  await Promise.all(workers);
}

// ---- what this run does -------------------------------------------------------------------

const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
const customers = Array.from({ length: options.customers }, (_, k) => `cust-${run}-${k}`);

/** The i-th order: customer, region, and items whose total makes some orders invoiced. */
function orderRequest(i) {
  const customerId = customers[i % customers.length];
  const region = REGIONS[(i + Math.floor(i / customers.length)) % REGIONS.length];
  let items;
  if (i === 1) {
    // Exactly 100000 cents: the largest total paid by card.
    items = [{ sku: "desk", quantity: 4, priceCents: 25_000 }];
  } else if (i % 4 === 3) {
    items = [
      { sku: "sofa", quantity: 2, priceCents: 60_000 + i },
      { sku: "lamp", quantity: 1, priceCents: 4_999 },
    ];
  } else {
    items = [{ sku: `book-${i % 7}`, quantity: 1 + (i % 3), priceCents: 1_000 + 37 * i }];
    if (i % 2 === 0) items.push({ sku: "pen", quantity: 3, priceCents: 250 });
  }
  const totalCents = items.reduce((sum, item) => sum + item.quantity * item.priceCents, 0);
  return { customerId, region, items, totalCents, method: totalCents > 100_000 ? "invoice" : "card" };
}

/** `ord_<start>_<n>`: n counts the orders service's orders, in the order it published them. */
function sequenceOf(orderId) {
  const n = Number(orderId.slice(orderId.lastIndexOf("_") + 1));
  return Number.isInteger(n) ? n : NaN;
}

async function act() {
  const users = new Map(); // userId -> { email, source }
  await pool(customers, options.concurrency, async (customerId, k) => {
    const email = `${customerId}@example.com`;
    const source = SOURCES[k % SOURCES.length];
    const body = { email, source, ...(k % 2 === 0 ? { referrer: "newsletter" } : {}) };
    const { userId } = await call("users", "POST", "/users", body);
    users.set(userId, { email, source });
  });

  const orders = new Map(); // orderId -> order
  const requests = Array.from({ length: options.count }, (_, i) => orderRequest(i));
  await pool(requests, options.concurrency, async (req) => {
    const { customerId, region, items } = req;
    const { orderId } = await call("orders", "POST", "/orders", { customerId, region, items });
    if (typeof orderId !== "string") throw new Error(`orders: POST /orders answered no orderId`);
    if (orders.has(orderId)) throw new Error(`orders: order id ${orderId} was given twice`);
    orders.set(orderId, { ...req, orderId, n: sequenceOf(orderId) });
  });

  const cancelled = new Set();
  const toCancel = [...orders.values()].filter((_, i) => i % 10 === 5);
  await pool(toCancel, options.concurrency, async (order) => {
    await call("orders", "DELETE", `/orders/${encodeURIComponent(order.orderId)}`);
    cancelled.add(order.orderId);
  });
  return { users, orders, cancelled };
}

// ---- what should arrive, and what did -----------------------------------------------------

/** One check: `expected` and `seen` are sets of keys; extra arrivals and missing ones fail. */
class Check {
  constructor(name, expected, seen, notes = []) {
    this.name = name;
    this.expected = expected;
    this.seen = seen;
    this.notes = notes;
    this.problems = [];
  }
  missing() {
    return [...this.expected].filter((k) => !this.seen.has(k));
  }
  extra() {
    return [...this.seen].filter((k) => !this.expected.has(k));
  }
}

const sample = (keys, max = 5) =>
  keys.length <= max ? keys.join(", ") : `${keys.slice(0, max).join(", ")}, ... (${keys.length})`;

/** The arrivals at `subscription` of `events` whose message `key(m)` is one of `ours`. */
function arrivals(events, subscription, ours, key) {
  const all = events?.subscriptions?.[subscription];
  if (!Array.isArray(all)) throw new Error(`${events?.service}: GET /events has no subscription ${subscription}`);
  return all.filter((a) => ours.has(key(a.message)));
}

/** The keys first seen, in arrival order, and how many deliveries repeated one. */
function firsts(list, key) {
  const seen = new Set();
  let repeated = 0;
  for (const a of list) {
    const k = key(a.message);
    if (seen.has(k)) repeated += 1;
    seen.add(k);
  }
  return { seen, repeated };
}

/** A check that `list`'s keys are exactly `expected`, noting the redeliveries. */
function delivered(name, expected, list, key) {
  const { seen, repeated } = firsts(list, key);
  return new Check(name, expected, seen, repeated ? [`${repeated} redeliveries`] : []);
}

/** For an ordered topic: each customer's orders must first arrive in increasing `n`. */
function ordering(list, orders) {
  const last = new Map();
  const firstSeen = new Set();
  const broken = [];
  for (const a of list) {
    const order = orders.get(a.message.orderId);
    if (firstSeen.has(order.orderId)) continue;
    firstSeen.add(order.orderId);
    const before = last.get(order.customerId);
    if (before && before.n > order.n) {
      broken.push(`${order.customerId}: ${order.orderId} arrived after ${before.orderId}`);
    }
    if (!before || before.n < order.n) last.set(order.customerId, order);
  }
  return broken;
}

function counterDelta(before, after, name) {
  return (after?.counters?.[name] ?? 0) - (before?.counters?.[name] ?? 0);
}

async function fetchEvents() {
  const names = ["payments", "shipping", "notifications", "analytics", "fraud"];
  const answers = await Promise.all(names.map((name) => call(name, "GET", "/events")));
  return Object.fromEntries(names.map((name, i) => [name, answers[i]]));
}

function evaluate(state, events, baseline) {
  const { users, orders, cancelled } = state;
  const all = [...orders.values()];
  const orderIds = new Set(orders.keys());
  const byOrder = (m) => m?.orderId;
  const checks = [];

  // payments: every order charged once, with the right amount and method.
  const restarted = options.restarted.has("payments");
  const charges = arrivals(events.payments, "charge-order", orderIds, byOrder);
  const payments = delivered("payments charge-order", orderIds, charges, byOrder);
  if (!restarted) checks.push(payments);
  const ledger = (events.payments.payments ?? []).filter((p) => orderIds.has(p.orderId));
  const ledgerCount = new Map();
  for (const p of ledger) {
    ledgerCount.set(p.orderId, (ledgerCount.get(p.orderId) ?? 0) + 1);
    const order = orders.get(p.orderId);
    if (p.amountCents !== order.totalCents || p.method !== order.method) {
      payments.problems.push(
        `${p.orderId} charged ${p.amountCents}c by ${p.method}, not ${order.totalCents}c by ${order.method}`,
      );
    }
  }
  const twice = [...ledgerCount].filter(([, n]) => n > 1).map(([id]) => id);
  if (twice.length) payments.problems.push(`charged more than once: ${sample(twice)}`);
  const ledgerMissing = all.filter((o) => payments.seen.has(o.orderId) && !ledgerCount.has(o.orderId));
  if (ledgerMissing.length) {
    payments.problems.push(`delivered but not in the ledger: ${sample(ledgerMissing.map((o) => o.orderId))}`);
  }
  payments.problems.push(...ordering(charges, orders).map((b) => `out of order: ${b}`));

  // shipping: exactly the card (and paypal) payments, each captured once.
  const shippable = new Set(all.filter((o) => SHIPPED.has(o.method)).map((o) => o.orderId));
  const paid = arrivals(events.shipping, "dispatch-paid-orders", orderIds, byOrder);
  const shipping = delivered("shipping dispatch-paid-orders", shippable, paid, byOrder);
  checks.push(shipping);
  const captures = new Map();
  for (const a of paid) {
    const order = orders.get(a.message.orderId);
    if (a.message.amountCents !== order.totalCents || a.message.method !== order.method) {
      shipping.problems.push(`${order.orderId}: payment-captured says ${a.message.amountCents}c by ${a.message.method}`);
    }
    const ids = captures.get(order.orderId) ?? new Set();
    ids.add(a.messageId);
    captures.set(order.orderId, ids);
  }
  const capturedTwice = [...captures].filter(([, ids]) => ids.size > 1).map(([id]) => id);
  if (capturedTwice.length && !restarted) {
    shipping.problems.push(`payment-captured published more than once (exactly-once topic): ${sample(capturedTwice)}`);
  }

  // fraud (Rust): every order screened, in per-customer order, and a verdict counted for each.
  const screened = arrivals(events.fraud, "screen-order", orderIds, byOrder);
  const screening = delivered("fraud screen-order", orderIds, screened, byOrder);
  screening.problems.push(...ordering(screened, orders).map((b) => `out of order: ${b}`));
  for (const a of screened) {
    const order = orders.get(a.message.orderId);
    if (a.message.totalCents !== order.totalCents || a.message.customerId !== order.customerId) {
      screening.problems.push(`${order.orderId}: order-placed says ${a.message.totalCents}c for ${a.message.customerId}`);
    }
  }
  checks.push(screening);
  const risky = new Set(all.filter((o) => o.totalCents > REVIEW_ABOVE_CENTS).map((o) => o.orderId));

  // notifications: confirmations for exactly the eu/uk orders, an update for every shipment,
  // a welcome for every sign-up; each mailed once.
  const confirmable = new Set(all.filter((o) => CONFIRMED.has(o.region)).map((o) => o.orderId));
  const confirmations = arrivals(events.notifications, "order-confirmation", orderIds, byOrder);
  const confirmation = delivered("notifications order-confirmation", confirmable, confirmations, byOrder);
  confirmation.problems.push(...ordering(confirmations, orders).map((b) => `out of order: ${b}`));
  checks.push(confirmation);

  const updates = arrivals(events.notifications, "shipping-update", orderIds, byOrder);
  checks.push(delivered("notifications shipping-update", shippable, updates, byOrder));

  // notifications: a review for exactly the high-risk verdicts (fraud-verdict, declared in Rust).
  const reviews = arrivals(events.notifications, "fraud-review", orderIds, byOrder);
  const review = delivered("notifications fraud-review", risky, reviews, byOrder);
  review.problems.push(...ordering(reviews, orders).map((b) => `out of order: ${b}`));
  for (const a of reviews) {
    if (a.message.risk !== "high") review.problems.push(`${a.message.orderId}: a ${a.message.risk} verdict got through the filter`);
  }
  checks.push(review);

  const userIds = new Set(users.keys());
  const welcomes = arrivals(events.notifications, "welcome-email", userIds, (m) => m?.userId);
  checks.push(delivered("notifications welcome-email", userIds, welcomes, (m) => m?.userId));

  // The outbox: one mail per welcome, confirmation and shipment (a shipment's body names
  // its carrier, which is not checked).
  const mailKey = (m) => (m.subject === "On its way" ? `${m.to} | ${m.subject}` : `${m.to} | ${m.subject} | ${m.body}`);
  const emails = new Set([...users.values()].map((u) => u.email));
  const customerIds = new Set(customers);
  const mails = new Map();
  for (const m of events.notifications.mail ?? []) {
    if (!(emails.has(m.to) || customerIds.has(m.to) || orderIds.has(m.to))) continue;
    mails.set(mailKey(m), (mails.get(mailKey(m)) ?? 0) + 1);
  }
  const expectedMails = new Set([
    ...[...users.values()].map((u) =>
      mailKey({ to: u.email, subject: "Welcome!", body: `Thanks for signing up via ${u.source}.` }),
    ),
    ...[...confirmable].map((id) =>
      mailKey({ to: orders.get(id).customerId, subject: "Order received", body: `Order ${id}` }),
    ),
    ...[...shippable].map((id) => mailKey({ to: id, subject: "On its way" })),
    ...[...risky].map((id) =>
      mailKey({ to: orders.get(id).customerId, subject: "Order on hold", body: `Order ${id} is being reviewed` }),
    ),
  ]);
  const mailCheck = new Check("notifications mail", expectedMails, new Set(mails.keys()));
  const mailedTwice = [...mails].filter(([, n]) => n > 1).map(([k]) => k);
  if (mailedTwice.length) mailCheck.problems.push(`mailed more than once: ${sample(mailedTwice, 3)}`);
  checks.push(mailCheck);

  // analytics: every order, cancellation and sign-up counted once.
  const counted = arrivals(events.analytics, "count-orders", orderIds, byOrder);
  const countOrders = delivered("analytics count-orders", orderIds, counted, byOrder);
  countOrders.problems.push(...ordering(counted, orders).map((b) => `out of order: ${b}`));
  checks.push(countOrders);
  const countCancellations = arrivals(events.analytics, "count-cancellations", orderIds, byOrder);
  checks.push(delivered("analytics count-cancellations", cancelled, countCancellations, byOrder));
  const countSignups = arrivals(events.analytics, "count-signups", userIds, (m) => m?.userId);
  checks.push(delivered("analytics count-signups", userIds, countSignups, (m) => m?.userId));

  const counters = new Check("analytics counters", new Set(), new Set());
  const expectedCounts = new Map();
  const add = (name) => expectedCounts.set(name, (expectedCounts.get(name) ?? 0) + 1);
  for (const o of all) add(`orders.${o.region}`);
  for (const u of users.values()) add(`signups.${u.source}`);
  expectedCounts.set("cancellations", cancelled.size);
  for (const [name, n] of expectedCounts) {
    const delta = counterDelta(baseline, events.analytics, name);
    if (delta !== n) counters.problems.push(`${name} grew by ${delta}, not ${n}`);
  }
  checks.push(counters);
  return checks;
}

function complete(checks) {
  return checks.every((c) => c.missing().length === 0);
}

function report(checks) {
  let failed = 0;
  for (const c of checks) {
    const missing = c.missing();
    const extra = c.extra();
    const problems = [
      ...(missing.length ? [`missing ${missing.length}: ${sample(missing)}`] : []),
      ...(extra.length ? [`unexpected ${extra.length}: ${sample(extra)}`] : []),
      ...c.problems,
    ];
    const size = c.expected.size ? ` ${c.expected.size - missing.length}/${c.expected.size}` : "";
    const notes = c.notes.length ? ` (${c.notes.join(", ")})` : "";
    if (problems.length === 0) {
      console.log(`ok   ${c.name}${size}${notes}`);
    } else {
      failed += 1;
      console.log(`FAIL ${c.name}${size}${notes}`);
      for (const p of problems.slice(0, 10)) console.log(`       ${p}`);
      if (problems.length > 10) console.log(`       ... and ${problems.length - 10} more`);
    }
  }
  return failed;
}

async function main() {
  await waitForServices();
  const baseline = await call("analytics", "GET", "/events");
  const state = await act();
  const all = [...state.orders.values()];
  const count = (f) => all.filter(f).length;
  console.log(
    `run ${run}: ${state.users.size} sign-ups, ${all.length} orders of ${customers.length} customers (` +
      REGIONS.map((r) => `${r} ${count((o) => o.region === r)}`).join(", ") +
      `; card ${count((o) => o.method === "card")}, invoice ${count((o) => o.method === "invoice")}), ` +
      `${state.cancelled.size} cancelled`,
  );

  let checks;
  let lastError;
  for (;;) {
    try {
      checks = evaluate(state, await fetchEvents(), baseline);
      lastError = undefined;
      if (complete(checks)) break;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) break;
    await sleep(500);
  }
  if (checks && complete(checks)) {
    // Everything expected arrived: give late extras (a duplicate, a filtered message let
    // through) a moment to show up before the final verdict.
    await sleep(1500);
    checks = evaluate(state, await fetchEvents(), baseline);
  }
  if (!checks) {
    console.log(`FAIL could not read the services' events: ${lastError?.message ?? lastError}`);
    process.exit(1);
  }
  const failed = report(checks);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (failed) {
    console.log(`${failed} of ${checks.length} checks failed after ${seconds}s`);
    process.exit(1);
  }
  console.log(`all ${checks.length} checks passed in ${seconds}s`);
}

main().catch((error) => {
  console.log(`FAIL ${error?.message ?? error}`);
  process.exit(1);
});
