import { serve } from "@busbar/pubsub";
import { origin, router } from "@lib/http.js";
import { report } from "./ingest.js";

const server = await serve(
  router({
    "GET /events": report,
  }),
);
console.log(`analytics: serving on ${origin(server)}`);
