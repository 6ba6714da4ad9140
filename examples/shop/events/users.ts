import { Topic, type Attribute } from "@busbar/pubsub";

export interface UserSignedUp {
  userId: string;
  email: string;
  /** Where the sign-up came from: "web", "ios" or "android". */
  source: Attribute<string>;
  referrer?: string;
}

/** A new account was created. */
export const userSignedUp = new Topic<UserSignedUp>("user-signed-up", {
  deliveryGuarantee: "at-least-once",
});
