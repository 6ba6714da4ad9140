// shipping's topic, in a file of its own: notifications imports it, and a process that
// imported dispatch.ts would create shipping's subscription too.
import { Topic, type Attribute } from "@busbar/pubsub";

export interface ShipmentDispatched {
  orderId: string;
  carrier: Attribute<string>;
  trackingCode: string;
}

export const shipmentDispatched = new Topic<ShipmentDispatched>("shipment-dispatched", {
  deliveryGuarantee: "at-least-once",
});
