import { serve } from "@busbar/pubsub";
import { origin, router } from "@lib/http.js";
import { signup, users } from "./signup.js";

const server = await serve(
  router({
    "POST /users": signup,
    "GET /users": users,
  }),
);
console.log(`users: serving on ${origin(server)}`);
