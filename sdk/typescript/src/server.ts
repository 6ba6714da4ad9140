/**
 * The process's HTTP server on `127.0.0.1:$APP_PORT`: `GET /dapr/subscribe`, the
 * subscriptions' routes (`POST /busbar/{topic}/{subscription}`), and the app's own API for
 * everything else.
 *
 * `serve(api)` starts it (once; a later call replaces `api` and returns the same server). A
 * process that creates a Subscription and never calls `serve` gets it started on the next turn
 * of the event loop (when `APP_PORT` is set; else one warning on stderr).
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { describe, logLine, portFrom, pubsubName } from "./env.js";
import { lookup, registered } from "./registry.js";

/** The app's own request handler: every request that is not busbar's. */
export type ApiHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** The most of a delivery body read (the broker's messages are at most 256 KiB). */
const MAX_DELIVERY = 16 << 20;

let api: ApiHandler | undefined;
let started: Promise<Server> | undefined;
let serveCalled = false;
let autoPending = false;
let warned = false;

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** `GET /dapr/subscribe`: one entry per subscription of the process. */
export function subscribeList(): object[] {
  const pubsubname = pubsubName();
  return registered().map((s) => ({
    pubsubname,
    topic: s.topic,
    route: s.route,
    metadata: { subscription: s.subscription },
  }));
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_DELIVERY) chunks.push(chunk);
    });
    req.on("end", () => resolve(size <= MAX_DELIVERY ? Buffer.concat(chunks) : undefined));
    req.on("error", reject);
  });
}

/** A delivery to `/busbar/{topic}/{subscription}`. */
async function deliver(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const parts = path.slice("/busbar/".length).split("/");
  let topic = "";
  let name = "";
  try {
    if (parts.length === 2) [topic, name] = parts.map((p) => decodeURIComponent(p)) as [string, string];
  } catch {
    // A malformed escape names no subscription.
  }
  const subscription = topic && name ? lookup(topic, name) : undefined;
  const body = await readBody(req);
  if (!subscription) {
    // Not (yet) here: the process may still be loading its modules. 503 is retried; 404
    // would dead-letter the message.
    answer(res, 503, {
      status: "RETRY",
      message: `this process has no subscription at ${path} (yet)`,
    });
    return;
  }
  if (body === undefined) {
    logLine(`subscription ${topic}/${name}: a delivery over ${MAX_DELIVERY} bytes: dropped`);
    answer(res, 200, { status: "DROP" });
    return;
  }
  answer(res, 200, { status: await subscription.dispatch(body) });
}

async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  if (req.method === "GET" && path === "/dapr/subscribe") {
    answer(res, 200, subscribeList());
    return;
  }
  if (req.method === "POST" && path.startsWith("/busbar/")) {
    await deliver(req, res, path);
    return;
  }
  if (!api) {
    answer(res, 404, { error: "not found", path });
    return;
  }
  await api(req, res);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  onRequest(req, res).catch((error: unknown) => {
    logLine(`${req.method} ${req.url}: ${describe(error)}`);
    if (!res.headersSent) answer(res, 500, { error: "internal error" });
    else res.destroy();
  });
}

function start(): Promise<Server> {
  if (started) return started;
  let port: number | undefined;
  try {
    port = portFrom("APP_PORT");
  } catch (error) {
    return Promise.reject(error);
  }
  if (port === undefined) {
    return Promise.reject(
      new Error(
        "@busbar/pubsub: APP_PORT is not set: it is the port this service serves its subscriptions on (busbar dev sets it for the services it starts)",
      ),
    );
  }
  const server = createServer(handle);
  const listening = new Promise<Server>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      server.on("error", (e) => logLine(`the HTTP server: ${describe(e)}`));
      resolve(server);
    });
  });
  started = listening;
  listening.catch(() => {
    if (started === listening) started = undefined;
  });
  return listening;
}

/**
 * Serves this process's subscriptions and `api` on `127.0.0.1:$APP_PORT`. Started once: a
 * later call replaces `api` and resolves to the same server.
 */
export function serve(handler?: ApiHandler): Promise<Server> {
  serveCalled = true;
  if (handler !== undefined) api = handler;
  return start();
}

/** Starts the server on the next turn of the event loop, unless `serve` is called first. */
export function autoServe(): void {
  if (autoPending || serveCalled || started) return;
  autoPending = true;
  setImmediate(() => {
    autoPending = false;
    if (serveCalled || started) return;
    if (process.env.APP_PORT === undefined || process.env.APP_PORT === "") {
      if (!warned) {
        warned = true;
        logLine(
          "APP_PORT is not set, so this process's subscriptions are not served (set APP_PORT, or call serve())",
        );
      }
      return;
    }
    start().catch((error: unknown) => {
      logLine(`cannot serve the subscriptions: ${describe(error)}`);
      process.exitCode = 1;
    });
  });
}

/** Closes the server (for tests): its connections too. A later `serve` starts a new one. */
export async function shutdown(): Promise<void> {
  const current = started;
  started = undefined;
  serveCalled = false;
  api = undefined;
  if (!current) return;
  const server = await current.catch(() => undefined);
  if (!server) return;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
