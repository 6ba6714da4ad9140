// Drives `busbar dev`'s sidecar with the official Dapr JavaScript SDK (@dapr/dapr, HTTP
// protocol) and checks the pub/sub round trip as an app written against Dapr would see it.
// Prints one JSON line with what it saw; exits 1 with the failures on stderr.
//
//   node check-sdk.mjs --dapr DIR --sidecar-port P --app-port Q --topic TOPIC
//        --publisher-token T --denied-token T2 [--denied-topic TOPIC] [--pubsub NAME]
//        [--subscriber-sidecar-port P2]
//        [--data JSON] [--invalid-data JSON] [--timeout SECONDS]
//
//   --dapr             the @dapr/dapr package directory (or a node_modules holding it)
//   --sidecar-port     the port of `busbar dev --port` (or of the publisher's `busbar serve`)
//   --subscriber-sidecar-port
//                      the sidecar of the subscribing service (the DaprServer's, and the denied
//                      client's): with `busbar serve`, one per service; default --sidecar-port
//   --app-port         where this script's DaprServer listens: the subscribing service's
//                      `[dev.services.NAME] url = "http://127.0.0.1:Q"`
//   --topic            a topic the publisher may publish to and the subscriber subscribes to
//   --publisher-token  the `token` of a service whose code publishes to --topic
//   --denied-token     the `token` of a service whose code does not publish to --denied-topic
//   --denied-topic     default: --topic
//   --pubsub           the pub/sub component name (`[dev] pubsub`), default "pubsub"
//   --data             a JSON object whose fields the published message carries, besides the
//                      run's unique `sdkCheck` (say the attributes a subscription filters on)
//   --invalid-data     a JSON object the topic's message schema refuses: published with the
//                      publisher's token, it must be refused with 400 naming the JSON pointer
//   --timeout          fail if the whole check takes longer, default 60
//
// Checks:
// 1. DaprClient (daprApiToken = the publisher's token, sent as `dapr-api-token`) publishes a
//    JSON message to --topic: the SDK returns no error, the sidecar answered 2xx with a
//    `busbar-message-id`.
// 2. DaprServer subscribes to --topic before it starts; the sidecar reads its
//    `GET /dapr/subscribe` and POSTs the message to the SDK's route as a CloudEvent: the handler
//    gets the published data, and the envelope's id is the `busbar-message-id` of the publish.
// 3. DaprClient with the denied token publishes to --denied-topic: the SDK returns `{ error }`
//    (it does not throw) and the error carries status 403 and busbar's ERR_PERMISSION_DENIED.
// 4. With --invalid-data, DaprClient with the publisher's token publishes a message its topic's
//    schema refuses: `{ error }` with status 400, ERR_MESSAGE_INVALID and the failing pointers.
//
// Start order does not matter: busbar reads a service's `GET /dapr/subscribe` when it starts,
// or, when the service does not answer yet, when its first delivery is due. The script prints
//   check-sdk: listening on 127.0.0.1:Q
// on stderr once its DaprServer listens; DaprServer.start() then waits for the sidecar (it polls
// `GET /v1.0/metadata` every 500 ms, about 30 s at most).
//
// Besides the SDK's own API, the script only observes: node:diagnostics_channel for the HTTP
// exchanges between the SDK and the sidecar (the SDK drops response headers, so this is how the
// `busbar-message-id` is seen), and a middleware on the SDK's own express app for the raw
// CloudEvent and the `GET /dapr/subscribe` requests.

import diagnostics from "node:diagnostics_channel";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { isDeepStrictEqual, parseArgs } from "node:util";
import { loadSdk, sdkLogger, waitForPort } from "./sdk.mjs";

// ---------------------------------------------------------------------------------------------
// Arguments, failure reporting and the hard timeout.

const { values: args } = parseArgs({
  options: {
    dapr: { type: "string" },
    "sidecar-port": { type: "string" },
    "subscriber-sidecar-port": { type: "string" },
    "app-port": { type: "string" },
    topic: { type: "string" },
    "publisher-token": { type: "string" },
    "denied-token": { type: "string" },
    "denied-topic": { type: "string" },
    pubsub: { type: "string", default: "pubsub" },
    data: { type: "string", default: "{}" },
    "invalid-data": { type: "string" },
    timeout: { type: "string", default: "60" },
  },
  strict: true,
});

/** Stops the script: the reason on stderr, exit status 1. */
function fail(message) {
  process.stderr.write(`check-sdk: FAILED: ${message}\n`);
  process.exit(1);
}

for (const required of ["dapr", "sidecar-port", "app-port", "topic", "publisher-token", "denied-token"]) {
  if (!args[required]) fail(`--${required} is required (see the comment at the top of check-sdk.mjs)`);
}
args["subscriber-sidecar-port"] ??= args["sidecar-port"];
for (const port of ["sidecar-port", "subscriber-sidecar-port", "app-port"]) {
  if (!/^[0-9]+$/.test(args[port])) fail(`--${port} must be a port number, not \`${args[port]}\``);
}
const HOST = "127.0.0.1";
const pubsubName = args.pubsub;
const topic = args.topic;
const deniedTopic = args["denied-topic"] ?? topic;
const timeoutSeconds = Number(args.timeout);
if (!(timeoutSeconds > 0)) fail(`--timeout must be a positive number of seconds`);
let extraData;
try {
  extraData = JSON.parse(args.data);
} catch (e) {
  fail(`--data is not JSON: ${e.message}`);
}
if (typeof extraData !== "object" || extraData === null || Array.isArray(extraData)) {
  fail(`--data must be a JSON object`);
}
// Unique to this run: a reused data directory may hold earlier runs' messages.
const payload = { ...extraData, sdkCheck: randomUUID() };

// Progress lines, so that a timeout says how far the check got.
let stage = "loading the SDK";
function progress(message) {
  stage = message;
  process.stderr.write(`check-sdk: ${message}\n`);
}

const deadline = Date.now() + timeoutSeconds * 1000;
setTimeout(() => fail(`timed out after ${timeoutSeconds} s while ${stage}`), timeoutSeconds * 1000).unref();
// An `error` event nobody listens to (EADDRINUSE on --app-port, say) must fail the check, not hang.
process.on("uncaughtException", (e) => fail(`while ${stage}: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => fail(`while ${stage}: ${e?.stack ?? e}`));

// ---------------------------------------------------------------------------------------------
// The SDK, from the directory the caller installed it in.

const { sdk, pkg: sdkPackage } = await loadSdk(path.resolve(args.dapr), fail);
const { DaprClient, DaprServer, CommunicationProtocolEnum, DaprPubSubStatusEnum, LogLevel } = sdk;

// The expected 403 shows on stderr as "publish failed".
const logger = sdkLogger(LogLevel);

// ---------------------------------------------------------------------------------------------
// What the SDK asks of the sidecar: every request to the sidecar port, with its answer.

/** "METHOD /path -> status" → count, in first-seen order. */
const sidecarCalls = new Map();
/** The `busbar-message-id` of each successful publish, by request path. */
const publishedIds = new Map();

diagnostics.subscribe("http.client.response.finish", ({ request, response }) => {
  const host = request.getHeader("host");
  if (host !== `${HOST}:${args["sidecar-port"]}` && host !== `${HOST}:${args["subscriber-sidecar-port"]}`) return;
  const pathOnly = request.path.split("?")[0];
  const key = `${request.method} ${pathOnly} -> ${response.statusCode}`;
  sidecarCalls.set(key, (sidecarCalls.get(key) ?? 0) + 1);
  const id = response.headers["busbar-message-id"];
  if (request.method === "POST" && pathOnly.startsWith("/v1.0/publish/") && id) {
    publishedIds.set(pathOnly, id);
  }
});

const failures = [];
function check(ok, what) {
  if (!ok) failures.push(what);
  return ok;
}

// ---------------------------------------------------------------------------------------------
// The subscriber: a DaprServer on --app-port, subscribed before it starts.

const server = new DaprServer({
  serverHost: HOST,
  serverPort: args["app-port"],
  communicationProtocol: CommunicationProtocolEnum.HTTP,
  clientOptions: { daprHost: HOST, daprPort: args["subscriber-sidecar-port"], communicationProtocol: CommunicationProtocolEnum.HTTP },
  logger,
});

// The SDK's express app already parses bodies (set up in the constructor); a middleware added
// now runs before the subscription routes (added by subscribe() below) and /dapr/subscribe
// (added by start()), so it sees what the sidecar sends exactly as the SDK does.
let subscribeRequests = 0;
const envelopes = []; // { path, body }
let delivered; // { data, headers }, what the handler got
let otherDeliveries = 0;
let onDelivered;
const deliveredPromise = new Promise((resolve) => (onDelivered = resolve));
server.daprServer.getServer().use((req, _res, next) => {
  if (req.method === "GET" && req.path === "/dapr/subscribe") subscribeRequests += 1;
  if (req.method === "POST") {
    envelopes.push({ path: req.path, body: req.body });
    // Our message on busbar's default route (`/busbar/{topic}/{subscription}`, used only when
    // the service's /dapr/subscribe was not read): the SDK answers 404, busbar dead-letters it,
    // and the handler will never see it. Stop waiting.
    if (req.path.startsWith("/busbar/") && req.body?.data?.sdkCheck === payload.sdkCheck) onDelivered();
  }
  next();
});

await server.pubsub.subscribe(pubsubName, topic, async (data, headers) => {
  if (data?.sdkCheck !== payload.sdkCheck) {
    otherDeliveries += 1;
    return DaprPubSubStatusEnum.SUCCESS;
  }
  delivered ??= { data, headers };
  onDelivered();
  return DaprPubSubStatusEnum.SUCCESS;
});

// start() binds --app-port at once (serving /dapr/subscribe), then waits for the sidecar.
progress(`starting the DaprServer on ${HOST}:${args["app-port"]}`);
const serverStarted = server.start();
await waitForPort(Number(args["app-port"]));
// The line a harness waits for before it starts `busbar dev`.
process.stderr.write(`check-sdk: listening on ${HOST}:${args["app-port"]}\n`);
progress(`waiting for the sidecar on port ${args["subscriber-sidecar-port"]} (the SDK polls GET /v1.0/metadata for about 30 s)`);
await serverStarted;

// ---------------------------------------------------------------------------------------------
// 1. An allowed publish.

progress(`publishing to ${pubsubName}/${topic}`);
const publisher = new DaprClient({
  daprHost: HOST,
  daprPort: args["sidecar-port"],
  communicationProtocol: CommunicationProtocolEnum.HTTP,
  daprApiToken: args["publisher-token"],
  logger,
});
await publisher.start();
const published = await publisher.pubsub.publish(pubsubName, topic, payload);
// HTTPClientPubSub.publish returns {} on 2xx and { error } on anything else (it never throws).
check(published && published.error === undefined, `the publish to ${topic} failed: ${describeError(published?.error)}`);
const publishPath = `/v1.0/publish/${pubsubName}/${topic}`;
const messageId = publishedIds.get(publishPath);
check(typeof messageId === "string" && messageId.length > 0, `the publish to ${topic} was not answered with a busbar-message-id header`);

// ---------------------------------------------------------------------------------------------
// 2. Its delivery to the DaprServer's handler.

progress(`waiting for the delivery of ${messageId ?? "the message"} to the DaprServer`);
await Promise.race([
  deliveredPromise,
  // Give up a little before the hard timeout, to say why nothing came.
  new Promise((resolve) => setTimeout(resolve, Math.max(500, deadline - Date.now() - 2000)).unref()),
]);
if (!delivered) {
  const defaultRoutes = envelopes.filter((e) => e.path.startsWith("/busbar/")).map((e) => e.path);
  fail(
    subscribeRequests === 0
      ? `nothing was delivered, and the sidecar never asked GET /dapr/subscribe (is the subscribing service's url in busbar.toml http://127.0.0.1:${args["app-port"]}?)` +
          (defaultRoutes.length ? ` (it POSTed to busbar's default routes instead: ${[...new Set(defaultRoutes)].join(", ")})` : "")
      : `the sidecar read GET /dapr/subscribe ${subscribeRequests} time(s) but delivered nothing to the handler (POSTs seen: ${JSON.stringify(envelopes.map((e) => e.path))}); see busbar dev's stderr`,
  );
}
check(isDeepStrictEqual(delivered.data, payload), `the handler got ${JSON.stringify(delivered.data)}, not the published ${JSON.stringify(payload)}`);
check(
  String(delivered.headers?.["content-type"] ?? "").startsWith("application/cloudevents+json"),
  `the delivery's content-type is ${delivered.headers?.["content-type"]}, not application/cloudevents+json`,
);
const expectedRoute = server.pubsub.getSubscriptions()[pubsubName][topic].dapr.route;
const envelope = envelopes.find((e) => e.body?.data?.sdkCheck === payload.sdkCheck);
if (check(envelope !== undefined, `no CloudEvent with the published data reached the SDK's express app`)) {
  const ce = envelope.body;
  check(envelope.path === expectedRoute, `the message was POSTed to ${envelope.path}, not to the SDK's route ${expectedRoute}`);
  check(ce.id === messageId, `the CloudEvent's id is ${ce.id}, the publish's busbar-message-id ${messageId}`);
  check(ce.specversion === "1.0", `the CloudEvent's specversion is ${ce.specversion}`);
  check(ce.topic === topic && ce.pubsubname === pubsubName, `the CloudEvent names ${ce.pubsubname}/${ce.topic}`);
  for (const field of ["source", "type", "datacontenttype", "time", "traceparent"]) {
    check(typeof ce[field] === "string" && ce[field].length > 0, `the CloudEvent has no ${field}`);
  }
}

// ---------------------------------------------------------------------------------------------
// 3. A publish the graph does not allow.

progress(`publishing to ${pubsubName}/${deniedTopic} with the denied token`);
const denied = new DaprClient({
  daprHost: HOST,
  daprPort: args["subscriber-sidecar-port"],
  communicationProtocol: CommunicationProtocolEnum.HTTP,
  daprApiToken: args["denied-token"],
  logger,
});
await denied.start();
const refused = await denied.pubsub.publish(pubsubName, deniedTopic, payload);
// On a non-2xx answer HTTPClient.execute throws `new Error(JSON.stringify({ error: statusText,
// error_msg: responseBodyText, status }))`, and HTTPClientPubSub.publish catches it and returns
// `{ error }`. So the status is `JSON.parse(result.error.message).status`, and busbar's JSON
// body (errorCode, message) is `JSON.parse(...error_msg)`.
const refusal = parseSdkError(refused?.error);
check(refused?.error instanceof Error, `the denied publish returned ${JSON.stringify(refused)}, not { error }`);
check(refusal?.status === 403, `the denied publish's status is ${refusal?.status}, not 403 (${describeError(refused?.error)})`);
check(refusal?.body?.errorCode === "ERR_PERMISSION_DENIED", `the denied publish's errorCode is ${refusal?.body?.errorCode}`);
check(
  typeof refusal?.body?.message === "string" && refusal.body.message.includes(deniedTopic),
  `the denied publish's message does not name ${deniedTopic}: ${refusal?.body?.message}`,
);

// ---------------------------------------------------------------------------------------------
// 4. A message its topic's schema refuses.

let invalid;
if (args["invalid-data"] !== undefined) {
  let bad;
  try {
    bad = JSON.parse(args["invalid-data"]);
  } catch (e) {
    fail(`--invalid-data is not JSON: ${e.message}`);
  }
  progress(`publishing a message the schema of ${topic} refuses`);
  const answered = await publisher.pubsub.publish(pubsubName, topic, bad);
  const refusedInvalid = parseSdkError(answered?.error);
  check(answered?.error instanceof Error, `the invalid publish returned ${JSON.stringify(answered)}, not { error }`);
  check(refusedInvalid?.status === 400, `the invalid publish's status is ${refusedInvalid?.status}, not 400 (${describeError(answered?.error)})`);
  check(refusedInvalid?.body?.errorCode === "ERR_MESSAGE_INVALID", `the invalid publish's errorCode is ${refusedInvalid?.body?.errorCode}`);
  check(Array.isArray(refusedInvalid?.body?.errors) && refusedInvalid.body.errors.length > 0, `the invalid publish's answer names no failing pointer`);
  invalid = { status: refusedInvalid?.status, errorCode: refusedInvalid?.body?.errorCode, errors: refusedInvalid?.body?.errors };
}

/** The status, status text and JSON body of an error from the SDK's HTTP client, or undefined. */
function parseSdkError(error) {
  if (!(error instanceof Error)) return undefined;
  try {
    const parsed = JSON.parse(error.message);
    let body;
    try {
      body = JSON.parse(parsed.error_msg);
    } catch {
      body = parsed.error_msg;
    }
    return { status: parsed.status, statusText: parsed.error, body };
  } catch {
    return undefined; // Not an HTTP answer: a network error, say.
  }
}

function describeError(error) {
  return error instanceof Error ? error.message : JSON.stringify(error);
}

// ---------------------------------------------------------------------------------------------
// Shut down, report.

progress("stopping");
await server.stop();
await publisher.stop();
await denied.stop();

if (failures.length > 0) {
  fail(`${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
}
process.stdout.write(
  JSON.stringify({
    ok: true,
    sdk: sdkPackage.version,
    published: { topic, messageId },
    delivered: {
      route: envelope.path,
      id: envelope.body.id,
      type: envelope.body.type,
      source: envelope.body.source,
      data: delivered.data,
    },
    otherDeliveries,
    subscribeRequests,
    denied: { topic: deniedTopic, status: refusal.status, errorCode: refusal.body.errorCode, message: refusal.body.message },
    invalid,
    sidecarCalls: Object.fromEntries(sidecarCalls),
  }) + "\n",
);
process.exit(0);
