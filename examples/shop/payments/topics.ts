import { Topic, Attribute } from "@busbar/pubsub";

export interface PaymentCaptured {
  orderId: string;
  amountCents: number;
  method: Attribute<"card" | "paypal" | "invoice">;
}

/** Money taken: charged exactly once. */
export const paymentCaptured = new Topic<PaymentCaptured>("payment-captured", {
  deliveryGuarantee: "exactly-once",
});
