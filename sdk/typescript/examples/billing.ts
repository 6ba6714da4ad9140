// A service that subscribes, with the settings busbar's broker enforces, and serves its own
// API beside the subscriptions.
import { DropMessage, Service, Subscription, serve } from "@busbar/pubsub";
import { orderPlaced, type OrderPlaced } from "./orders.js";

export default new Service("billing");

const charged = new Set<string>();

export const charge = new Subscription(orderPlaced, "charge", {
  handler: async (order: OrderPlaced, info) => {
    if (order.total < 0) throw new DropMessage(`order ${order.orderId} has a negative total`);
    if (charged.has(order.orderId)) return; // at-least-once: a redelivery is harmless
    charged.add(order.orderId);
    console.log(`charged ${order.orderId} (message ${info.id})`);
  },
  maxConcurrency: 4,
  ackDeadline: "30s",
  retryPolicy: { minBackoff: "1s", maxBackoff: "1m", maxRetries: 10 },
  filter: { region: ["eu", "us"] },
});

// Optional: the server starts by itself when a Subscription exists; serve() adds an API.
await serve((req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ charged: charged.size, path: req.url }));
});
