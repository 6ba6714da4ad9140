import { Topic, Attribute } from "@busbar/pubsub";

export interface OrderPlaced {
  orderId: string;
  customerId: Attribute<string>;
  region: Attribute<string>;
  totalCents: number;
  items: Array<{ sku: string; quantity: number }>;
}

/** Placed orders, delivered in order per customer. */
export const orderPlaced = new Topic<OrderPlaced>("order-placed", {
  deliveryGuarantee: "at-least-once",
  orderingAttribute: "customerId",
});

export interface OrderCancelled {
  orderId: string;
  reason: string;
}

export const orderCancelled = new Topic<OrderCancelled>("order-cancelled", {
  deliveryGuarantee: "at-least-once",
});
