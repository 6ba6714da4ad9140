import { serve } from "@busbar/pubsub";
import { origin, router } from "@lib/http.js";
import { events } from "./charge.js";

const server = await serve(
  router({
    "GET /events": events,
  }),
);
console.log(`payments: serving on ${origin(server)}`);
