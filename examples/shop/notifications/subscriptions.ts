import { Subscription, Topic, type Attribute } from "@busbar/pubsub";
import { Deliveries } from "@lib/deliveries.js";
import { userSignedUp } from "../events/index.js";
import { orderPlaced } from "../orders/topics.js";
import { shipmentDispatched } from "../shipping/topics.js";
import { send, sent } from "./mailer.js";

export const deliveries = new Deliveries(["welcome-email", "order-confirmation", "shipping-update", "fraud-review"]);

// A message delivered again after its mail went out is not mailed twice.

new Subscription(userSignedUp, "welcome-email", {
  handler: async (event, info) => {
    const delivery = deliveries.arrive(info, event);
    if (delivery.handled) return;
    await send({ to: event.email, subject: "Welcome!", body: `Thanks for signing up via ${event.source}.` });
    delivery.complete();
  },
});

export const orderConfirmations = new Subscription(orderPlaced, "order-confirmation", {
  handler: async (order, info) => {
    const delivery = deliveries.arrive(info, order);
    if (delivery.handled) return;
    await send({ to: order.customerId, subject: "Order received", body: `Order ${order.orderId}` });
    delivery.complete();
  },
  // Confirmation emails are a legal requirement in these regions only.
  filter: { region: ["eu", "uk"] },
});

new Subscription(shipmentDispatched, "shipping-update", {
  handler: async (shipment, info) => {
    const delivery = deliveries.arrive(info, shipment);
    if (delivery.handled) return;
    await send({ to: shipment.orderId, subject: "On its way", body: `${shipment.carrier}: ${shipment.trackingCode}` });
    delivery.complete();
  },
  retryPolicy: { maxRetries: 5 },
});

/** A verdict of the Rust `fraud` service, which declares the topic (`fraud/src/screening.rs`). */
export interface FraudVerdict {
  orderId: string;
  customerId: Attribute<string>;
  risk: Attribute<string>;
  totalCents: number;
}

const fraudVerdict = Topic.declaredElsewhere<FraudVerdict>("fraud-verdict");

// High-risk orders are held: the customer is told.
new Subscription(fraudVerdict, "fraud-review", {
  handler: async (verdict, info) => {
    const delivery = deliveries.arrive(info, verdict);
    if (delivery.handled) return;
    await send({ to: verdict.customerId, subject: "Order on hold", body: `Order ${verdict.orderId} is being reviewed` });
    delivery.complete();
  },
  filter: { risk: ["high"] },
});

/** `GET /events`: the deliveries, and the mail sent. */
export function events(): object {
  const mail = sent();
  const bySubject: Record<string, number> = {};
  for (const m of mail) bySubject[m.subject] = (bySubject[m.subject] ?? 0) + 1;
  return { service: "notifications", ...deliveries.toJSON(), mail, counters: { sent: mail.length, ...bySubject } };
}
