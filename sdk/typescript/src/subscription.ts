/**
 * `new Subscription(topic, name, config)`: a handler for a topic's messages, served by this
 * process at `/busbar/{topic}/{name}`.
 *
 * The broker (`busbar dev`) enforces the retry policy, the ack deadline, the retention and the
 * filter, read from the code by busbar's analyzer; this process honours `maxConcurrency` too
 * (at most that many handler calls at once; further deliveries wait).
 */

import { createDispatcher, type DeliveryInfo } from "./dispatch.js";
import { register } from "./registry.js";
import { autoServe } from "./server.js";
import type { Topic } from "./topic.js";

/** How a failed delivery is retried (durations such as `"10s"`, `"1m"`). */
export interface RetryPolicy {
  /** The first backoff (default 10s). */
  minBackoff?: string;
  /** The longest backoff (default 10m). */
  maxBackoff?: string;
  /** Retries before the message is dead-lettered (default 100). */
  maxRetries?: number;
}

/** The values a filter accepts for a field: one, or any of a non-empty list. */
export type FilterValue<V> = [NonNullable<V>] extends [string | number | boolean]
  ? NonNullable<V> | readonly NonNullable<V>[]
  : never;

/** A subscription's filter: attribute fields of `T` and the values that are delivered. */
export type Filter<T extends object> = { [K in keyof T]?: FilterValue<T[K]> };

/** A subscription's configuration. */
export interface SubscriptionConfig<T extends object> {
  /** Called with each message; returning acknowledges it, throwing retries it. */
  handler: (msg: T, info: DeliveryInfo) => Promise<unknown> | unknown;
  /** At most this many handler calls at once. */
  maxConcurrency?: number;
  /** How long a delivery may take before it is retried (default 30s). */
  ackDeadline?: string;
  /** How long an undelivered message is kept (default 7d). */
  messageRetention?: string;
  retryPolicy?: RetryPolicy;
  /** Only messages whose attributes have these values are delivered. */
  filter?: Filter<T>;
}

export class Subscription<T extends object> {
  readonly topic: Topic<T>;
  /** The subscription's name. */
  readonly name: string;
  readonly config: SubscriptionConfig<T>;

  // `NoInfer`: `T` is the topic's message type, so a handler of another type is the error
  // (not the topic).
  constructor(topic: Topic<T>, name: string, config: SubscriptionConfig<NoInfer<T>>) {
    if (!topic || typeof topic.name !== "string") {
      throw new TypeError("@busbar/pubsub: a Subscription's first argument is a Topic");
    }
    if (typeof name !== "string" || name === "") {
      throw new TypeError("@busbar/pubsub: a Subscription's name is a non-empty string");
    }
    if (!config || typeof config.handler !== "function") {
      throw new TypeError(`@busbar/pubsub: subscription \`${name}\` has no handler function`);
    }
    const limit = config.maxConcurrency;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
      throw new RangeError(
        `@busbar/pubsub: subscription \`${name}\`: maxConcurrency is a whole number of at least 1`,
      );
    }
    this.topic = topic;
    this.name = name;
    this.config = config;
    register({
      topic: topic.name,
      subscription: name,
      dispatch: createDispatcher({
        topic: topic.name,
        subscription: name,
        handler: config.handler,
        maxConcurrency: limit,
      }),
    });
    autoServe();
  }
}
