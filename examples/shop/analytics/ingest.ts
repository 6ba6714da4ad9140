import { Subscription } from "@busbar/pubsub";
import { Deliveries } from "@lib/deliveries.js";
import * as events from "../events/index.js";
import { orderPlaced, orderCancelled } from "../orders/topics.js";

export const deliveries = new Deliveries(["count-signups", "count-orders", "count-cancellations"]);

const counters = new Map<string, number>();

function count(metric: string): void {
  counters.set(metric, (counters.get(metric) ?? 0) + 1);
  console.log(`counted ${metric}`);
}

// Each message counts once: a redelivery of a counted message is not counted again.

new Subscription(events.userSignedUp, "count-signups", {
  handler: async (event, info) => {
    const delivery = deliveries.arrive(info, event);
    if (!delivery.handled) count(`signups.${event.source}`);
    delivery.complete();
  },
});

new Subscription(orderPlaced, "count-orders", {
  handler: async (order, info) => {
    const delivery = deliveries.arrive(info, order);
    if (!delivery.handled) count(`orders.${order.region}`);
    delivery.complete();
  },
  maxConcurrency: 50,
});

new Subscription(orderCancelled, "count-cancellations", {
  handler: async (cancelled, info) => {
    const delivery = deliveries.arrive(info, cancelled);
    if (!delivery.handled) count("cancellations");
    delivery.complete();
  },
});

/** `GET /events`: the counters, the order ids counted, and the deliveries. */
export function report(): object {
  const log = deliveries.toJSON();
  const orderIds = (subscription: string): string[] => [
    ...new Set((log.subscriptions[subscription] ?? []).map((a) => (a.message as { orderId: string }).orderId)),
  ];
  return {
    service: "analytics",
    counters: Object.fromEntries([...counters].sort(([a], [b]) => a.localeCompare(b))),
    orders: orderIds("count-orders"),
    cancellations: orderIds("count-cancellations"),
    ...log,
  };
}
