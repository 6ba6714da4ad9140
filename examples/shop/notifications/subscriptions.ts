import { Subscription } from "encore.dev/pubsub";
import { userSignedUp } from "../events/index.js";
import { orderPlaced } from "../orders/topics.js";
import { shipmentDispatched } from "../shipping/dispatch.js";
import { send } from "./mailer.js";

new Subscription(userSignedUp, "welcome-email", {
  handler: async (event) => {
    await send({ to: event.email, subject: "Welcome!", body: `Thanks for signing up via ${event.source}.` });
  },
});

export const orderConfirmations = new Subscription(orderPlaced, "order-confirmation", {
  handler: async (order) => {
    await send({ to: order.customerId, subject: "Order received", body: `Order ${order.orderId}` });
  },
  // Confirmation emails are a legal requirement in these regions only.
  filter: { region: ["eu", "uk"] },
});

new Subscription(shipmentDispatched, "shipping-update", {
  handler: async (shipment) => {
    await send({ to: shipment.orderId, subject: "On its way", body: `${shipment.carrier}: ${shipment.trackingCode}` });
  },
  retryPolicy: { maxRetries: 5 },
});
