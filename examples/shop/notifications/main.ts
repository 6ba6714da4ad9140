import { serve } from "@busbar/pubsub";
import { origin, router } from "@lib/http.js";
import { sent } from "./mailer.js";
import { events } from "./subscriptions.js";

const server = await serve(
  router({
    "GET /events": events,
    "GET /mail": () => ({ mail: sent() }),
  }),
);
console.log(`notifications: serving on ${origin(server)}`);
