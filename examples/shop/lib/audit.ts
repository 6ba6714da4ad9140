import { auditLog } from "../events/index.js";

/** Records an auditable action; every service that calls this may publish to audit-log. */
export async function recordAudit(service: string, actor: string, action: string): Promise<void> {
  await auditLog.publish({ actor, action, service, at: new Date().toISOString() });
}

export function describe(action: string, subject: string): string {
  return `${action} ${subject}`;
}
