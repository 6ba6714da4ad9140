import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { InvalidMessage, MessageTooLarge, PublishError, StorageFull } from "@busbar/pubsub";

/**
 * The services' small HTTP API: a router over `METHOD /path/:param` keys, JSON bodies (at most
 * 64 KiB) and JSON answers. Shared by every service; it publishes nothing.
 */

/** The most of a request body read. */
export const MAX_BODY = 64 * 1024;

/** An error with the HTTP status it answers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What a route handler is given. */
export interface Request {
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body; `undefined` when the request has none. */
  body: unknown;
}

/** A handler's answer with a status other than 200 (`undefined` answers 204). */
export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

export type Handler = (req: Request) => unknown;

/** Routes by `"METHOD /path"`; a segment `:name` matches any one segment, as `params.name`. */
export type Routes = Record<string, Handler>;

interface Compiled {
  method: string;
  segments: string[];
  handler: Handler;
}

function split(path: string): string[] {
  return path.split("/").filter((s) => s !== "");
}

function match(segments: string[], path: string[]): Record<string, string> | undefined {
  if (segments.length !== path.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, segment] of segments.entries()) {
    const part = path[i] as string;
    if (segment.startsWith(":")) params[segment.slice(1)] = part;
    else if (segment !== part) return undefined;
  }
  return params;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * The request's body as JSON: 413 over {@link MAX_BODY} (the rest is not read: the answer
 * closes the connection), 400 when it is not JSON.
 */
function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= MAX_BODY) {
        chunks.push(chunk);
        return;
      }
      req.off("data", onData);
      reject(new HttpError(413, `the body is over ${MAX_BODY} bytes`));
    };
    req.on("data", onData);
    req.on("error", reject);
    req.on("end", () => {
      if (size > MAX_BODY) return;
      if (size === 0) return resolve(undefined);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch {
        reject(new HttpError(400, "the body is not JSON"));
      }
    });
  });
}

/** The status and body an error answers. */
function failure(error: unknown): [number, Record<string, unknown>] {
  if (error instanceof HttpError) return [error.status, { error: error.message }];
  if (error instanceof InvalidMessage) {
    return [400, { error: error.message, errors: error.errors }];
  }
  if (error instanceof MessageTooLarge) return [413, { error: error.message }];
  if (error instanceof StorageFull) return [507, { error: error.message }];
  if (error instanceof PublishError) {
    // The sidecar refused the publish (or could not be reached): not the caller's fault.
    return [502, { error: `publish to ${error.topic} failed: ${error.message}`, code: error.code }];
  }
  return [500, { error: "internal error" }];
}

/** The `serve(api)` handler of `routes`: 404 for an unknown path, 405 for a known path's other methods. */
export function router(routes: Routes): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const compiled: Compiled[] = Object.entries(routes).map(([key, handler]) => {
    const [method, path] = key.split(" ") as [string, string];
    return { method, segments: split(path), handler };
  });
  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    let path: string[];
    try {
      path = split(url.pathname).map((s) => decodeURIComponent(s));
    } catch {
      send(res, 400, { error: "malformed path" });
      return;
    }
    let allowed = false;
    for (const route of compiled) {
      const params = match(route.segments, path);
      if (!params) continue;
      if (route.method !== req.method) {
        allowed = true;
        continue;
      }
      try {
        const body = await readJson(req);
        const result = await route.handler({ params, query: url.searchParams, body });
        if (result instanceof Reply) send(res, result.status, result.body);
        else if (result === undefined) send(res, 204, undefined);
        else send(res, 200, result);
      } catch (error) {
        const [status, answer] = failure(error);
        if (status >= 500) console.error(`${req.method} ${url.pathname}: ${String(error)}`);
        // A body left unread (413) would hold the connection: close it after the answer.
        if (status === 413) res.setHeader("connection", "close");
        send(res, status, answer);
      }
      return;
    }
    if (allowed) send(res, 405, { error: `${req.method} is not allowed on ${url.pathname}` });
    else send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  };
}

/** The base URL a server listens on (`http://127.0.0.1:PORT`), for the start line. */
export function origin(server: Server): string {
  const address = server.address();
  return typeof address === "object" && address !== null
    ? `http://${address.address}:${address.port}`
    : String(address);
}

// Reading request bodies: each function answers 400 (an HttpError) on a missing or mistyped field.

/** `value` as a JSON object. */
export function object(value: unknown, what = "the body"): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, `${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** A non-empty string field (of at most 200 characters). */
export function text(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== "string" || value === "" || value.length > 200) {
    throw new HttpError(400, `\`${field}\` must be a non-empty string of at most 200 characters`);
  }
  return value;
}

/** An optional string field. */
export function optionalText(body: Record<string, unknown>, field: string): string | undefined {
  return body[field] === undefined ? undefined : text(body, field);
}

/** A string field that is one of `values`. */
export function oneOf<const V extends string>(
  body: Record<string, unknown>,
  field: string,
  values: readonly V[],
): V {
  const value = body[field];
  if (typeof value !== "string" || !(values as readonly string[]).includes(value)) {
    throw new HttpError(400, `\`${field}\` must be one of ${values.join(", ")}`);
  }
  return value as V;
}

/** A whole-number field of at least `min`. */
export function integer(body: Record<string, unknown>, field: string, min: number): number {
  const value = body[field];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new HttpError(400, `\`${field}\` must be a whole number of at least ${min}`);
  }
  return value;
}

/** An array field of 1 to `max` elements. */
export function list(body: Record<string, unknown>, field: string, max: number): unknown[] {
  const value = body[field];
  if (!Array.isArray(value) || value.length === 0 || value.length > max) {
    throw new HttpError(400, `\`${field}\` must be a list of 1 to ${max} elements`);
  }
  return value;
}
