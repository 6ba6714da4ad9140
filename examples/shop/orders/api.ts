import { describe, recordAudit } from "@lib/audit.js";
import { HttpError, Reply, integer, list, object, text, type Request } from "@lib/http.js";
import { orderCancelled } from "./topics.js";
import { placedOutbox } from "./outbox.js";

interface Item {
  sku: string;
  quantity: number;
  priceCents: number;
}

interface PlaceOrder {
  customerId: string;
  region: string;
  items: Item[];
}

export interface Order extends PlaceOrder {
  orderId: string;
  totalCents: number;
  status: "placed" | "cancelled";
  placedAt: string;
}

/**
 * Order ids are `ord_<process start>_<n>`: `n` counts the orders of this process, so ids are
 * unique however many orders arrive in a millisecond, and a customer's later order has a
 * larger `n` (order-placed is published in that order).
 */
const started = Date.now().toString(36);
let placed = 0;

const orders = new Map<string, Order>();

function parse(body: unknown): PlaceOrder {
  const fields = object(body);
  const customerId = text(fields, "customerId");
  const region = text(fields, "region");
  const items = list(fields, "items", 100).map((value, i) => {
    const item = object(value, `items[${i}]`);
    return {
      sku: text(item, "sku"),
      quantity: integer(item, "quantity", 1),
      priceCents: integer(item, "priceCents", 0),
    };
  });
  return { customerId, region, items };
}

/** `POST /orders`: stores the order and publishes order-placed (through the outbox) and an audit entry. */
export async function place({ body }: Request): Promise<Reply> {
  const req = parse(body);
  placed += 1;
  const orderId = `ord_${started}_${placed}`;
  const totalCents = req.items.reduce((sum, item) => sum + item.quantity * item.priceCents, 0);
  if (!Number.isSafeInteger(totalCents)) {
    throw new HttpError(400, "the total is too large");
  }
  orders.set(orderId, { orderId, ...req, totalCents, status: "placed", placedAt: new Date().toISOString() });
  placedOutbox.add({
    orderId,
    customerId: req.customerId,
    region: req.region,
    totalCents,
    items: req.items.map(({ sku, quantity }) => ({ sku, quantity })),
  });
  try {
    await placedOutbox.flush();
  } catch (error) {
    console.error(`order ${orderId} is stored, its order-placed is pending: ${String(error)}`);
    throw error;
  }
  await recordAudit("orders", req.customerId, describe("placed", orderId));
  console.log(`placed ${orderId} for ${req.customerId} in ${req.region}: ${totalCents}c`);
  return new Reply(201, { orderId });
}

/** `DELETE /orders/:orderId`: cancels a placed order and publishes order-cancelled. */
export async function cancel({ params }: Request): Promise<Reply> {
  const orderId = params.orderId as string;
  const order = orders.get(orderId);
  if (!order) {
    throw new HttpError(404, `no order ${orderId}`);
  }
  if (order.status === "cancelled") {
    throw new HttpError(409, `order ${orderId} is cancelled already`);
  }
  order.status = "cancelled";
  try {
    await orderCancelled.publish({ orderId, reason: "customer request" });
  } catch (error) {
    order.status = "placed";
    throw error;
  }
  await recordAudit("orders", order.customerId, describe("cancelled", orderId));
  console.log(`cancelled ${orderId}`);
  return new Reply(200, { orderId, status: order.status });
}

/** `GET /orders`: every order, in the order placed. */
export function listOrders(): { orders: Order[] } {
  return { orders: [...orders.values()] };
}
