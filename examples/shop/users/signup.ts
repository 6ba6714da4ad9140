import { userSignedUp } from "../events/index.js";
import { HttpError, Reply, object, oneOf, optionalText, text, type Request } from "@lib/http.js";

const sources = ["web", "ios", "android"] as const;

interface SignupRequest {
  email: string;
  source: (typeof sources)[number];
  referrer?: string;
}

export interface Account extends SignupRequest {
  userId: string;
  createdAt: string;
}

/** The accounts, by email. */
const accounts = new Map<string, Account>();
let created = 0;

function parse(body: unknown): SignupRequest {
  const fields = object(body);
  const email = text(fields, "email");
  if (!email.includes("@")) {
    throw new HttpError(400, "invalid email");
  }
  return { email, source: oneOf(fields, "source", sources), referrer: optionalText(fields, "referrer") };
}

/** `POST /users`: creates the account and publishes user-signed-up. */
export async function signup({ body }: Request): Promise<Reply> {
  const req = parse(body);
  if (accounts.has(req.email)) {
    throw new HttpError(409, "account exists");
  }
  const account: Account = { userId: `usr_${++created}`, ...req, createdAt: new Date().toISOString() };
  // Taken before the publish, so that a second sign-up with the email meanwhile is refused.
  accounts.set(req.email, account);
  try {
    await userSignedUp.publish({
      userId: account.userId,
      email: req.email,
      source: req.source,
      referrer: req.referrer,
    });
  } catch (error) {
    accounts.delete(req.email);
    throw error;
  }
  console.log(`signed up ${account.userId} ${req.email} via ${req.source}`);
  return new Reply(201, { userId: account.userId });
}

/** `GET /users`: every account, in sign-up order. */
export function users(): { users: Account[] } {
  return { users: [...accounts.values()] };
}
