import type { Publisher } from "encore.dev/pubsub";
import { orderPlaced, type OrderPlaced } from "./topics.js";

/** Buffers events and flushes them in one go; holds a publish-only reference. */
export class Outbox<T> {
  private pending: T[] = [];

  constructor(private readonly send: (event: T) => Promise<string>) {}

  add(event: T): void {
    this.pending.push(event);
  }

  async flush(): Promise<number> {
    const batch = this.pending.splice(0);
    for (const event of batch) {
      await this.send(event);
    }
    return batch.length;
  }
}

const placedRef = orderPlaced.ref<Publisher>();
export const placedOutbox = new Outbox<OrderPlaced>((event) => placedRef.publish(event));
