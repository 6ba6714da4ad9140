/**
 * One delivery, from the sidecar's CloudEvent to the handler's outcome.
 *
 * The handler returns: `SUCCESS`. It throws {@link DropMessage}: `DROP` (dead-lettered, not
 * retried). It throws anything else: `RETRY` (redelivered with the subscription's backoff),
 * with a log line. A body that is not a CloudEvent in JSON: `DROP`, with a log line.
 */

import { DropMessage } from "./errors.js";
import { describe, logLine } from "./env.js";
import { Semaphore } from "./semaphore.js";

/** What the sidecar is told about a delivery. */
export type Outcome = "SUCCESS" | "RETRY" | "DROP";

/** What a handler is told besides the message. */
export interface DeliveryInfo {
  /** The message id (what `publish` returned). */
  id: string;
  /** The topic. */
  topic: string;
  /** The subscription. */
  subscription: string;
  /** When it was published (RFC 3339), as the CloudEvent says. */
  time?: string;
  /** The CloudEvent's `traceparent`. */
  traceparent?: string;
  /** The CloudEvent's `datacontenttype`. */
  contentType?: string;
}

/** A subscription handler, as the dispatcher calls it. */
export type Handler = (message: any, info: DeliveryInfo) => unknown;

/** A delivered CloudEvent, as far as the dispatcher reads it. */
interface CloudEvent {
  id?: unknown;
  time?: unknown;
  traceparent?: unknown;
  datacontenttype?: unknown;
  data?: unknown;
  data_base64?: unknown;
}

/** The message a CloudEvent carries: its `data` (JSON or text), or `data_base64`'s bytes. */
export function messageOf(event: CloudEvent): unknown {
  if ("data" in event) return event.data;
  if (typeof event.data_base64 === "string") return Buffer.from(event.data_base64, "base64");
  return undefined;
}

const text = (v: unknown) => (typeof v === "string" ? v : undefined);

/** Parses a delivery body; `Err` (a string) says why it is not a CloudEvent. */
export function parseEvent(body: string | Uint8Array): CloudEvent | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === "string" ? body : Buffer.from(body).toString("utf8"));
  } catch (error) {
    return `the delivery is not JSON (${(error as Error).message})`;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return "the delivery is not a CloudEvent (a JSON object)";
  }
  return parsed as CloudEvent;
}

export interface DispatcherOptions {
  topic: string;
  subscription: string;
  handler: Handler;
  /** At most this many handler calls at once (none: no limit). */
  maxConcurrency?: number | undefined;
}

/** A delivery function for one subscription: body in, outcome out. Never rejects. */
export type Dispatcher = (body: string | Uint8Array) => Promise<Outcome>;

/** The delivery function of a subscription, its handler behind its `maxConcurrency`. */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { topic, subscription, handler } = options;
  const gate = options.maxConcurrency === undefined ? undefined : new Semaphore(options.maxConcurrency);
  const where = `subscription ${topic}/${subscription}`;
  return async (body) => {
    const event = parseEvent(body);
    if (typeof event === "string") {
      logLine(`${where}: ${event}: dropped`);
      return "DROP";
    }
    const info: DeliveryInfo = {
      id: text(event.id) ?? "",
      topic,
      subscription,
      time: text(event.time),
      traceparent: text(event.traceparent),
      contentType: text(event.datacontenttype),
    };
    const message = messageOf(event);
    const call = async () => handler(message, info);
    try {
      await (gate ? gate.run(call) : call());
      return "SUCCESS";
    } catch (error) {
      if (error instanceof DropMessage) {
        logLine(`${where} message ${info.id}: dropped by the handler (dead-lettered): ${error.message}`);
        return "DROP";
      }
      logLine(`${where} message ${info.id}: the handler failed (will retry): ${describe(error)}`);
      return "RETRY";
    }
  };
}
