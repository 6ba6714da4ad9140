import { Subscription } from "@busbar/pubsub";
import { Deliveries } from "@lib/deliveries.js";
import { paymentCaptured } from "../payments/topics.js";
import { shipmentDispatched } from "./topics.js";

export interface Shipment {
  orderId: string;
  carrier: string;
  trackingCode: string;
  dispatchedAt: string;
  /** The shipment-dispatched message, once published. */
  messageId?: string;
}

export const deliveries = new Deliveries(["dispatch-paid-orders"]);

/** The shipments, by order id: an order ships once however often its payment is delivered. */
const shipments = new Map<string, Shipment>();

const carriers = ["dhl", "ups", "postnl"] as const;

const _ = new Subscription(paymentCaptured, "dispatch-paid-orders", {
  handler: async (payment, info) => {
    deliveries.arrive(info, payment);
    let shipment = shipments.get(payment.orderId);
    if (!shipment) {
      const carrier = carriers[payment.orderId.length % carriers.length];
      shipment = {
        orderId: payment.orderId,
        carrier,
        trackingCode: `${carrier.toUpperCase()}-${payment.orderId}`,
        dispatchedAt: new Date().toISOString(),
      };
      shipments.set(payment.orderId, shipment);
    }
    if (shipment.messageId !== undefined) {
      console.log(`${payment.orderId} delivered again: dispatched already`);
      return;
    }
    shipment.messageId = await shipmentDispatched.publish({
      orderId: shipment.orderId,
      carrier: shipment.carrier,
      trackingCode: shipment.trackingCode,
    });
    console.log(`dispatched ${payment.orderId} by ${shipment.carrier} (${payment.method})`);
  },
  filter: { method: ["card", "paypal"] },
  messageRetention: "3d",
});

/** `GET /events`: the deliveries and the shipments. */
export function events(): object {
  const all = [...shipments.values()];
  return {
    service: "shipping",
    ...deliveries.toJSON(),
    shipments: all,
    counters: { dispatched: all.filter((s) => s.messageId !== undefined).length },
  };
}
