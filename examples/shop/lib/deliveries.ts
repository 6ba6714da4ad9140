import type { DeliveryInfo } from "@busbar/pubsub";

/**
 * What a service's subscriptions received, for `GET /events`: every delivery in arrival order
 * (redeliveries too, marked), and which message ids were handled. Shared; it publishes nothing.
 */

/** One delivery of a message to a subscription. */
export interface Arrival {
  /** The broker's message id (the same on a redelivery). */
  messageId: string;
  /** This message id arrived at this subscription before. */
  redelivery: boolean;
  receivedAt: string;
  message: unknown;
}

/** The most arrivals kept per subscription; older ones are dropped (and counted). */
const KEEP = 100_000;

export class Deliveries {
  private readonly arrivals = new Map<string, Arrival[]>();
  private readonly seen = new Map<string, Set<string>>();
  private readonly done = new Map<string, Set<string>>();
  private dropped = 0;

  /** `subscriptions`: the service's subscriptions, listed (empty) before their first delivery. */
  constructor(subscriptions: readonly string[]) {
    for (const name of subscriptions) this.lists(name);
  }

  private lists(subscription: string): [Arrival[], Set<string>, Set<string>] {
    let arrivals = this.arrivals.get(subscription);
    let seen = this.seen.get(subscription);
    let done = this.done.get(subscription);
    if (!arrivals || !seen || !done) {
      arrivals = [];
      seen = new Set();
      done = new Set();
      this.arrivals.set(subscription, arrivals);
      this.seen.set(subscription, seen);
      this.done.set(subscription, done);
    }
    return [arrivals, seen, done];
  }

  /**
   * Records a delivery. `handled` says whether a delivery of this message id to this
   * subscription already completed (`complete()`), so a handler can skip work it did;
   * call `complete()` once the work is done.
   */
  arrive(info: DeliveryInfo, message: unknown): { handled: boolean; complete: () => void } {
    const [arrivals, seen, done] = this.lists(info.subscription);
    arrivals.push({
      messageId: info.id,
      redelivery: seen.has(info.id),
      receivedAt: new Date().toISOString(),
      message,
    });
    if (arrivals.length > KEEP) {
      arrivals.shift();
      this.dropped += 1;
    }
    seen.add(info.id);
    return { handled: done.has(info.id), complete: () => done.add(info.id) };
  }

  /** Every subscription's arrivals, in arrival order. */
  toJSON(): { subscriptions: Record<string, Arrival[]>; dropped: number } {
    return { subscriptions: Object.fromEntries(this.arrivals), dropped: this.dropped };
  }
}
