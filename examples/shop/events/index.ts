// The shared events of the shop, one import away.
export * from "./users.js";
export { auditLog, type AuditEntry } from "./audit.js";
