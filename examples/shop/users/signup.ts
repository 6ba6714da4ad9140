import { api, APIError } from "encore.dev/api";
import { userSignedUp } from "../events/index.js";

interface SignupRequest {
  email: string;
  source: "web" | "ios" | "android";
  referrer?: string;
}

const accounts = new Map<string, string>();

export const signup = api(
  { expose: true, method: "POST", path: "/users" },
  async (req: SignupRequest): Promise<{ userId: string }> => {
    if (!req.email.includes("@")) {
      throw APIError.invalidArgument("invalid email");
    }
    if (accounts.has(req.email)) {
      throw APIError.alreadyExists("account exists");
    }
    const userId = `usr_${accounts.size + 1}`;
    accounts.set(req.email, userId);
    await userSignedUp.publish({ userId, email: req.email, source: req.source, referrer: req.referrer });
    return { userId };
  },
);
