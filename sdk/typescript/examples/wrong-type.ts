// Each `@ts-expect-error` marks a line TypeScript must refuse; the test compiles this file as
// it is (every marked line is an error, so tsc passes) and with the markers removed (tsc must
// fail on exactly those lines, with the code written after the marker).
import { Subscription, Topic, type Attribute, type Publisher } from "@busbar/pubsub";

interface Shipped {
  orderId: string;
  carrier: Attribute<string>;
  weight: number;
}

interface Refunded {
  refundId: string;
  amount: number;
}

const shipped = new Topic<Shipped>("shipped", { deliveryGuarantee: "at-least-once" });

export async function wrongMessages(): Promise<void> {
  // @ts-expect-error TS2345 a field is missing
  await shipped.publish({ orderId: "o1", carrier: "ups" });
  // @ts-expect-error TS2322 a field has the wrong type
  await shipped.publish({ orderId: 1, carrier: "ups", weight: 2 });
  // @ts-expect-error TS2353 a field the type does not have
  await shipped.publish({ orderId: "o1", carrier: "ups", weight: 2, color: "red" });
  const publisher = shipped.ref<Publisher>();
  // @ts-expect-error TS2322 the ref is typed too
  await publisher.publish({ orderId: "o1", carrier: "ups", weight: "heavy" });
  const refunds = Topic.declaredElsewhere<Refunded>("refunded");
  // @ts-expect-error TS2322 a handle on a topic declared elsewhere is typed too
  await refunds.publish({ refundId: "r1", amount: "ten" });
}

export const wrongHandler = new Subscription(shipped, "refund", {
  // @ts-expect-error TS2322 the handler takes another message type
  handler: async (refund: Refunded) => refund.amount,
});

export const wrongConfig = new Subscription(shipped, "ship", {
  handler: async (msg) => msg.weight,
  // @ts-expect-error TS2322 maxConcurrency is a number
  maxConcurrency: "2",
});

export const wrongGuarantee = new Topic<Shipped>("shipped-twice", {
  // @ts-expect-error TS2322 not a delivery guarantee
  deliveryGuarantee: "twice",
});

export const wrongOrdering = new Topic<Shipped>("shipped-ordered", {
  deliveryGuarantee: "at-least-once",
  // @ts-expect-error TS2322 not a field of the message
  orderingAttribute: "destination",
});

// @ts-expect-error TS2344 a message is an object
export const wrongMessageType = new Topic<string>("words", { deliveryGuarantee: "at-least-once" });
