import { Subscription } from "encore.dev/pubsub";
import { recordAudit } from "@lib/audit";
import { orderPlaced, type OrderPlaced } from "../orders/topics.js";
import { paymentCaptured } from "./topics.js";

async function charge(order: OrderPlaced): Promise<void> {
  const method = order.totalCents > 100_000 ? "invoice" : "card";
  await paymentCaptured.publish({ orderId: order.orderId, amountCents: order.totalCents, method });
  await recordAudit("payments", order.customerId, `captured ${order.orderId}`);
}

export const chargeOrders = new Subscription(orderPlaced, "charge-order", {
  handler: charge,
  ackDeadline: "1m",
  retryPolicy: { minBackoff: "5s", maxBackoff: "5m", maxRetries: 20 },
  maxConcurrency: 10,
});
