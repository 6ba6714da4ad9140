import { Topic, Subscription, type Attribute } from "encore.dev/pubsub";
import { paymentCaptured } from "../payments/topics.js";

export interface ShipmentDispatched {
  orderId: string;
  carrier: Attribute<string>;
  trackingCode: string;
}

export const shipmentDispatched = new Topic<ShipmentDispatched>("shipment-dispatched", {
  deliveryGuarantee: "at-least-once",
});

const carriers = ["dhl", "ups", "postnl"] as const;

const _ = new Subscription(paymentCaptured, "dispatch-paid-orders", {
  handler: async (payment) => {
    const carrier = carriers[payment.orderId.length % carriers.length];
    await shipmentDispatched.publish({
      orderId: payment.orderId,
      carrier,
      trackingCode: `${carrier.toUpperCase()}-${payment.orderId}`,
    });
  },
  filter: { method: ["card", "paypal"] },
  messageRetention: "3d",
});
