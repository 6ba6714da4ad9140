import { serve } from "@busbar/pubsub";
import { origin, router } from "@lib/http.js";
import { cancel, listOrders, place } from "./api.js";

const server = await serve(
  router({
    "POST /orders": place,
    "GET /orders": listOrders,
    "DELETE /orders/:orderId": cancel,
  }),
);
console.log(`orders: serving on ${origin(server)}`);
