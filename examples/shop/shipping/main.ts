import { serve } from "@busbar/pubsub";
import { origin, router } from "@lib/http.js";
import { events } from "./dispatch.js";

const server = await serve(
  router({
    "GET /events": events,
  }),
);
console.log(`shipping: serving on ${origin(server)}`);
