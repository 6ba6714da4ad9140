import { Subscription, type DeliveryInfo } from "@busbar/pubsub";
import { describe, recordAudit } from "@lib/audit.js";
import { orderPlaced, type OrderPlaced } from "../orders/topics.js";
import { paymentCaptured } from "./topics.js";
import { deliveries, ledger, type Payment } from "./ledger.js";

async function charge(order: OrderPlaced, info: DeliveryInfo): Promise<void> {
  deliveries.arrive(info, order);
  await ledger.charge(order, capture);
}

export const chargeOrders = new Subscription(orderPlaced, "charge-order", {
  handler: charge,
  ackDeadline: "1m",
  retryPolicy: { minBackoff: "5s", maxBackoff: "5m", maxRetries: 20 },
  maxConcurrency: 10,
});

/** After the charge: payment-captured, then the audit entry, each once per order. */
async function capture(payment: Payment): Promise<void> {
  payment.capturedId ??= await paymentCaptured.publish({
    orderId: payment.orderId,
    amountCents: payment.amountCents,
    method: payment.method,
  });
  if (!payment.audited) {
    await recordAudit("payments", payment.customerId, describe("captured", payment.orderId));
    payment.audited = true;
  }
}

/** `GET /events`: the deliveries, the ledger and its counters. */
export function events(): object {
  const all = ledger.all();
  return {
    service: "payments",
    ...deliveries.toJSON(),
    payments: all,
    counters: {
      charged: all.length,
      card: all.filter((p) => p.method === "card").length,
      invoice: all.filter((p) => p.method === "invoice").length,
      amountCents: all.reduce((sum, p) => sum + p.amountCents, 0),
      repeats: ledger.repeats,
    },
  };
}
