// A service that declares topics and publishes to them, as Encore apps write it. The import
// `@busbar/pubsub` resolves to this package (its `exports`): build it first (`npm run build`).
import { Topic, type Attribute, type Publisher, PermissionDenied, InvalidMessage } from "@busbar/pubsub";

export interface OrderPlaced {
  orderId: string;
  total: number;
  /** An attribute: filters and the ordering key read it. */
  region: Attribute<string>;
  lines: { sku: string; quantity: number }[];
  note?: string;
}

export const orderPlaced = new Topic<OrderPlaced>("order-placed", {
  deliveryGuarantee: "at-least-once",
  orderingAttribute: "region",
});

export interface AuditEntry {
  action: string;
  at: string;
}

export const audit = new Topic<AuditEntry>("audit", { deliveryGuarantee: "exactly-once" });

/** Publishes an order; returns the message id. */
export async function placeOrder(orderId: string): Promise<string> {
  try {
    return await orderPlaced.publish({
      orderId,
      total: 42.5,
      region: "eu",
      lines: [{ sku: "tea", quantity: 2 }],
    });
  } catch (error) {
    if (error instanceof InvalidMessage) {
      for (const { pointer, rule } of error.errors) console.error(`${pointer}: ${rule}`);
    } else if (error instanceof PermissionDenied) {
      console.error(`not allowed: ${error.message}`);
    }
    throw error;
  }
}

/** Hands a publisher of `audit` to other code: the permission is this service's. */
export const auditLog: Publisher<AuditEntry> = audit.ref<Publisher>();

export async function record(action: string): Promise<void> {
  await auditLog.publish({ action, at: new Date().toISOString() });
}
