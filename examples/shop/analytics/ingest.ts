import { Subscription } from "encore.dev/pubsub";
import * as events from "../events/index.js";
import { orderPlaced, orderCancelled } from "../orders/topics.js";

const counters = new Map<string, number>();

function count(metric: string): void {
  counters.set(metric, (counters.get(metric) ?? 0) + 1);
}

new Subscription(events.userSignedUp, "count-signups", {
  handler: async (event) => count(`signups.${event.source}`),
});

new Subscription(orderPlaced, "count-orders", {
  handler: async (order) => count(`orders.${order.region}`),
  maxConcurrency: 50,
});

new Subscription(orderCancelled, "count-cancellations", {
  handler: async () => count("cancellations"),
});
