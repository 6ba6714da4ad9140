import { api } from "encore.dev/api";
import { recordAudit } from "@lib/audit";
import { orderCancelled } from "./topics.js";
import { placedOutbox } from "./outbox.js";

interface PlaceOrder {
  customerId: string;
  region: string;
  items: Array<{ sku: string; quantity: number; priceCents: number }>;
}

export const place = api(
  { expose: true, method: "POST", path: "/orders" },
  async (req: PlaceOrder): Promise<{ orderId: string }> => {
    const orderId = `ord_${Date.now().toString(36)}`;
    const totalCents = req.items.reduce((sum, item) => sum + item.quantity * item.priceCents, 0);
    placedOutbox.add({
      orderId,
      customerId: req.customerId,
      region: req.region,
      totalCents,
      items: req.items.map(({ sku, quantity }) => ({ sku, quantity })),
    });
    await placedOutbox.flush();
    await recordAudit("orders", req.customerId, `placed ${orderId}`);
    return { orderId };
  },
);

export const cancel = api(
  { expose: true, method: "DELETE", path: "/orders/:orderId" },
  async ({ orderId }: { orderId: string }): Promise<void> => {
    await orderCancelled.publish({ orderId, reason: "customer request" });
    await recordAudit("orders", "customer", `cancelled ${orderId}`);
  },
);
