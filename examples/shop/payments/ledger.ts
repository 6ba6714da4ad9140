import { Deliveries } from "@lib/deliveries.js";
import type { OrderPlaced } from "../orders/topics.js";
import type { PaymentCaptured } from "./topics.js";

/** A charge: the money taken for an order, once. */
export interface Payment {
  orderId: string;
  customerId: string;
  amountCents: number;
  method: PaymentCaptured["method"];
  chargedAt: string;
  /** The payment-captured message, once published. */
  capturedId?: string;
  audited: boolean;
}

/** What charge-order received. */
export const deliveries = new Deliveries(["charge-order"]);

/**
 * The payments, by order id. An order is charged once however often it is delivered
 * (order-placed is at-least-once); the ledger lives in memory, so a restarted process
 * forgets it.
 */
class Ledger {
  private readonly payments = new Map<string, Payment>();
  /** The work on each order in progress: a redelivery meanwhile waits for it. */
  private readonly working = new Map<string, Promise<void>>();
  /** Deliveries of an order that was charged already. */
  repeats = 0;

  /**
   * Charges `order` unless it was charged, then calls `then` with its payment (on every
   * delivery: `then` finishes what an earlier delivery left undone). One order at a time.
   */
  async charge(order: OrderPlaced, then: (payment: Payment) => Promise<void>): Promise<void> {
    const before = this.working.get(order.orderId) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(() => then(this.take(order)));
    this.working.set(order.orderId, mine);
    try {
      await mine;
    } finally {
      if (this.working.get(order.orderId) === mine) this.working.delete(order.orderId);
    }
  }

  private take(order: OrderPlaced): Payment {
    const known = this.payments.get(order.orderId);
    if (known) {
      this.repeats += 1;
      console.log(`${order.orderId} delivered again: charged already`);
      return known;
    }
    const method = order.totalCents > 100_000 ? "invoice" : "card";
    const payment: Payment = {
      orderId: order.orderId,
      customerId: order.customerId,
      amountCents: order.totalCents,
      method,
      chargedAt: new Date().toISOString(),
      audited: false,
    };
    this.payments.set(order.orderId, payment);
    console.log(`charged ${order.orderId} ${order.totalCents}c by ${method}`);
    return payment;
  }

  all(): Payment[] {
    return [...this.payments.values()];
  }
}

export const ledger = new Ledger();
