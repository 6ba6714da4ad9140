/**
 * The environment `busbar dev` gives each service it runs, read when it is needed (so a
 * test, or a process that sets its environment late, sees the current values).
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | `DAPR_HTTP_PORT` | the sidecar's port on 127.0.0.1 | `3500` |
 * | `DAPR_API_TOKEN` | sent as `dapr-api-token`: who is calling | none |
 * | `APP_PORT` | where this process serves its subscriptions (and its API) | required to serve |
 * | `BUSBAR_SERVICE` | the service's name, for log lines | the `Service` declared, else `app` |
 * | `BUSBAR_PUBSUB` | the pub/sub component name | `pubsub` |
 * | `BUSBAR_PUBLISH_RETRY_MS` | how long a refused connection is retried | `10000` |
 */

/** A port number from the environment; `undefined` when unset, an error when not a port. */
export function portFrom(name: string, fallback?: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`@busbar/pubsub: ${name}=${JSON.stringify(raw)} is not a TCP port`);
  }
  return port;
}

/** The sidecar's HTTP port. */
export function sidecarPort(): number {
  return portFrom("DAPR_HTTP_PORT", 3500) as number;
}

/** The token that identifies this service to the sidecar, if any. */
export function apiToken(): string | undefined {
  const token = process.env.DAPR_API_TOKEN;
  return token === undefined || token === "" ? undefined : token;
}

/** The pub/sub component name. */
export function pubsubName(): string {
  return process.env.BUSBAR_PUBSUB || "pubsub";
}

/** How long (ms) a publish retries a sidecar that refuses connections. */
export function publishRetryMs(): number {
  const raw = process.env.BUSBAR_PUBLISH_RETRY_MS;
  if (raw === undefined || raw.trim() === "") return 10_000;
  const ms = Number(raw);
  return Number.isFinite(ms) && ms >= 0 ? ms : 10_000;
}

let declaredService: string | undefined;

/** Records the name of the `Service` the process declared (for log lines). */
export function declareService(name: string): void {
  declaredService ??= name;
}

/** The service's name for log lines. */
export function serviceName(): string {
  return process.env.BUSBAR_SERVICE || declaredService || "app";
}

/** Writes one line to stderr, prefixed with the service's name. */
export function logLine(text: string): void {
  process.stderr.write(`busbar[${serviceName()}]: ${text.replace(/\s*\n\s*/g, " | ")}\n`);
}

/** An error as one line: its name and message (no stack). */
export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  try {
    return `thrown ${typeof error}: ${JSON.stringify(error)}`;
  } catch {
    return `thrown ${String(error)}`;
  }
}
