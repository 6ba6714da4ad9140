import { Topic, type Attribute } from "@busbar/pubsub";

export interface AuditEntry {
  actor: string;
  action: string;
  service: Attribute<string>;
  at: string;
}

/**
 * Every state change that compliance must be able to replay. Consumed by the compliance
 * team's archiver, outside this app.
 */
// busbar-ignore BB0402: consumed by the compliance archiver, which is not part of this app
export const auditLog = new Topic<AuditEntry>("audit-log", {
  deliveryGuarantee: "at-least-once",
});
