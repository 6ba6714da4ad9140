// Bulk pub/sub with the official Dapr JavaScript SDK (@dapr/dapr, HTTP protocol) against
// busbar's sidecar. Prints one JSON line with what it saw; exits 1 with the failures on stderr.
//
//   node check-sdk-bulk.mjs --dapr DIR --sidecar-port P --app-port Q --topic TOPIC
//        --publisher-token T [--pubsub NAME] [--messages N] [--max-messages M] [--timeout SECONDS]
//
// 1. A DaprServer on --app-port subscribes to --topic with `pubsub.subscribeBulk`
//    (bulkSubscribe enabled, maxMessagesCount M (default 5), maxAwaitDurationMs 200).
// 2. A DaprClient with the publisher's token publishes N messages (default 12) in one
//    `pubsub.publishBulk`: no failed message.
// 3. Every message reaches the handler, in bulk requests of at most M entries (at least one
//    holding more than one), and the one the handler answers RETRY the first time comes again.
//
// The topic's message type must accept `{ id: string }` (the messages are `{ id: "bulk-<run>-<i>" }`).

import diagnostics from "node:diagnostics_channel";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { loadSdk, sdkLogger, waitForPort } from "./sdk.mjs";

const { values: args } = parseArgs({
  options: {
    dapr: { type: "string" },
    "sidecar-port": { type: "string" },
    "app-port": { type: "string" },
    topic: { type: "string" },
    "publisher-token": { type: "string" },
    pubsub: { type: "string", default: "pubsub" },
    messages: { type: "string", default: "12" },
    "max-messages": { type: "string", default: "5" },
    timeout: { type: "string", default: "60" },
  },
  strict: true,
});

function fail(message) {
  process.stderr.write(`check-sdk-bulk: FAILED: ${message}\n`);
  process.exit(1);
}

for (const required of ["dapr", "sidecar-port", "app-port", "topic", "publisher-token"]) {
  if (!args[required]) fail(`--${required} is required (see the comment at the top of check-sdk-bulk.mjs)`);
}
const HOST = "127.0.0.1";
const total = Number(args.messages);
const maxMessages = Number(args["max-messages"]);
if (!(total >= 2) || !(maxMessages >= 2)) fail("--messages and --max-messages must be at least 2");
let stage = "loading the SDK";
const progress = (message) => {
  stage = message;
  process.stderr.write(`check-sdk-bulk: ${message}\n`);
};
setTimeout(() => fail(`timed out after ${args.timeout} s while ${stage} (${state()})`), Number(args.timeout) * 1000).unref();
// What the handler got so far (for a timeout's message).
function state() {
  try {
    return `the handler saw ${seen.size} of ${total} messages, ${seen.get(retried) ?? 0} deliveries of the retried one; bulk requests of ${JSON.stringify(requestSizes)}; other POSTs ${JSON.stringify(otherPosts)}`;
  } catch {
    return "before the subscriber existed"; // The SDK was still loading.
  }
}
process.on("uncaughtException", (e) => fail(`while ${stage}: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => fail(`while ${stage}: ${e?.stack ?? e}`));

const { sdk, pkg } = await loadSdk(path.resolve(args.dapr), fail);
const { DaprClient, DaprServer, CommunicationProtocolEnum, DaprPubSubStatusEnum, LogLevel } = sdk;
const logger = sdkLogger(LogLevel);
const http = CommunicationProtocolEnum.HTTP;

const run = randomUUID();
const ids = Array.from({ length: total }, (_, i) => `bulk-${run}-${i}`);
const retried = ids[ids.length - 1];

// 1. The bulk subscriber. A middleware on the SDK's express app sees each bulk request.
const server = new DaprServer({
  serverHost: HOST,
  serverPort: args["app-port"],
  communicationProtocol: http,
  clientOptions: { daprHost: HOST, daprPort: args["sidecar-port"], communicationProtocol: http },
  logger,
});
const requestSizes = [];
const otherPosts = [];
server.daprServer.getServer().use((req, _res, next) => {
  if (req.method === "POST" && Array.isArray(req.body?.entries)) requestSizes.push(req.body.entries.length);
  else if (req.method === "POST") otherPosts.push(req.path);
  next();
});
const seen = new Map(); // id -> deliveries
let onAll;
const all = new Promise((resolve) => (onAll = resolve));
await server.pubsub.subscribeBulk(
  args.pubsub,
  args.topic,
  async (data) => {
    const id = data?.id;
    if (typeof id !== "string" || !id.startsWith(`bulk-${run}-`)) return DaprPubSubStatusEnum.SUCCESS;
    const count = (seen.get(id) ?? 0) + 1;
    seen.set(id, count);
    if (seen.size === total && (seen.get(retried) ?? 0) >= 2) onAll();
    return id === retried && count === 1 ? DaprPubSubStatusEnum.RETRY : DaprPubSubStatusEnum.SUCCESS;
  },
  { maxMessagesCount: maxMessages, maxAwaitDurationMs: 200 },
);
progress(`starting the DaprServer on ${HOST}:${args["app-port"]}`);
const started = server.start();
await waitForPort(Number(args["app-port"]));
process.stderr.write(`check-sdk-bulk: listening on ${HOST}:${args["app-port"]}\n`);
progress("waiting for the sidecar");
await started;

// 2. One bulk publish.
progress(`publishing ${total} messages to ${args.pubsub}/${args.topic} in one bulk publish`);
const client = new DaprClient({
  daprHost: HOST,
  daprPort: args["sidecar-port"],
  communicationProtocol: http,
  daprApiToken: args["publisher-token"],
  logger,
});
await client.start();
// The SDK's answer lists failed messages only when it can match them to its entries, so the
// sidecar's own status is watched too: 204 when every entry is stored.
let bulkStatus;
diagnostics.subscribe("http.client.response.finish", ({ request, response }) => {
  if (request.method === "POST" && request.path.includes("/publish/bulk/")) bulkStatus = response.statusCode;
});
const published = await client.pubsub.publishBulk(args.pubsub, args.topic, ids.map((id) => ({ id })));
const failed = published?.failedMessages ?? [];
if (failed.length > 0) fail(`the bulk publish failed for ${failed.length} message(s): ${JSON.stringify(failed)}`);
if (bulkStatus !== 204) fail(`the sidecar answered the bulk publish ${bulkStatus}, not 204 (see [dapr-sdk] on stderr)`);

// 3. Every message delivered, in bulk.
progress("waiting for every message to reach the bulk handler");
await all;
// Anything delivered once more than it should would come now.
await new Promise((r) => setTimeout(r, 300));
const failures = [];
if (!requestSizes.every((n) => n <= maxMessages)) failures.push(`a bulk request held more than ${maxMessages} entries: ${requestSizes}`);
if (!requestSizes.some((n) => n > 1)) failures.push(`no bulk request held more than one entry: ${requestSizes}`);
for (const id of ids) {
  const want = id === retried ? 2 : 1;
  if (seen.get(id) !== want) failures.push(`${id} reached the handler ${seen.get(id) ?? 0} time(s), not ${want}`);
}
await server.stop();
await client.stop();
if (failures.length > 0) fail(`${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
process.stdout.write(JSON.stringify({ ok: true, sdk: pkg.version, messages: total, requestSizes }) + "\n");
process.exit(0);
