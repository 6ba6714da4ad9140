import type { Publisher } from "@busbar/pubsub";
import { orderPlaced, type OrderPlaced } from "./topics.js";

/**
 * Buffers events and sends them in the order they were added, one at a time; holds a
 * publish-only reference. Flushes never overlap, so the topic stores the events in that order
 * (what the per-customer ordering of order-placed relies on).
 */
export class Outbox<T> {
  private pending: T[] = [];
  private flushing: Promise<unknown> = Promise.resolve();
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly send: (event: T) => Promise<string>) {}

  add(event: T): void {
    this.pending.push(event);
  }

  /** Events added and not sent yet. */
  get size(): number {
    return this.pending.length;
  }

  /**
   * Sends every pending event (those added meanwhile too); resolves to how many this flush
   * sent. A failed send keeps that event and the ones after it pending, rejects, and
   * flushes again a second later.
   */
  flush(): Promise<number> {
    const run = this.flushing.then(() => this.drain());
    this.flushing = run.catch(() => this.retryLater());
    return run;
  }

  private async drain(): Promise<number> {
    let sent = 0;
    while (this.pending.length > 0) {
      await this.send(this.pending[0] as T);
      this.pending.shift();
      sent += 1;
    }
    return sent;
  }

  private retryLater(): void {
    if (this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.flush().catch((error: unknown) => {
        console.error(`outbox: ${this.size} events still pending: ${String(error)}`);
      });
    }, 1000);
    this.retry.unref();
  }
}

const placedRef = orderPlaced.ref<Publisher>();
export const placedOutbox = new Outbox<OrderPlaced>((event) => placedRef.publish(event));
