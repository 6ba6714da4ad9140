/**
 * The sidecar client: `POST /v1.0/publish/{pubsub}/{topic}` on 127.0.0.1, over kept-alive
 * connections.
 *
 * Every publish carries a client message id (`?metadata.messageId=<uuid>`), so a publish
 * retried after a lost connection is stored once on an exactly-once topic. A refused
 * connection (the sidecar starting or reloading) is retried with a short backoff for
 * `BUSBAR_PUBLISH_RETRY_MS` (10 s), then thrown as {@link SidecarUnavailable}.
 */

import { randomUUID } from "node:crypto";
import { Agent, request } from "node:http";
import { SidecarUnavailable, publishErrorFor } from "./errors.js";
import { apiToken, publishRetryMs, pubsubName, sidecarPort } from "./env.js";

/** Kept-alive connections to the sidecar, shared by every topic of the process. */
const agent = new Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64 });

/** A request that gets no answer within this long fails (the sidecar ends its own at 60 s). */
const ANSWER_TIMEOUT_MS = 65_000;

/** Errors of a connection that never delivered the request, or was closed under it. */
const RETRYABLE = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ECONNABORTED"]);

interface Answer {
  status: number;
  messageId: string | undefined;
  body: string;
}

/** Sends one publish request; rejects with the socket's error when there is no answer. */
function send(
  port: number,
  path: string,
  headers: Record<string, string | number>,
  body: Buffer,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method: "POST", path, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const id = res.headers["busbar-message-id"];
          resolve({
            status: res.statusCode ?? 0,
            messageId: Array.isArray(id) ? id[0] : id,
            body: Buffer.concat(chunks).toString("utf8"),
          });
        });
      },
    );
    req.setTimeout(ANSWER_TIMEOUT_MS, () => {
      const timeout = new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`);
      (timeout as NodeJS.ErrnoException).code = "ETIMEDOUT";
      req.destroy(timeout);
    });
    req.on("error", reject);
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Publishes `message` (serialized as JSON) to `topic`; resolves to the message id.
 *
 * @throws {PublishError} (or a subclass) when the sidecar refuses it.
 * @throws {SidecarUnavailable} when the sidecar cannot be reached.
 */
export async function publish(topic: string, message: unknown): Promise<string> {
  const json = JSON.stringify(message);
  if (typeof json !== "string") {
    throw new TypeError(`a message published to \`${topic}\` must be a JSON value`);
  }
  const body = Buffer.from(json, "utf8");
  const port = sidecarPort();
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": body.length,
  };
  const token = apiToken();
  if (token !== undefined) headers["dapr-api-token"] = token;
  const id = randomUUID();
  const path =
    `/v1.0/publish/${encodeURIComponent(pubsubName())}/${encodeURIComponent(topic)}` +
    `?metadata.messageId=${id}`;
  const deadline = Date.now() + publishRetryMs();
  let backoff = 25;
  for (;;) {
    let answer: Answer;
    try {
      answer = await send(port, path, headers, body);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "";
      if (RETRYABLE.has(code) && Date.now() + backoff <= deadline) {
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 500);
        continue;
      }
      throw new SidecarUnavailable(
        `the busbar sidecar at 127.0.0.1:${port} cannot be reached to publish to \`${topic}\`: ${
          (error as Error).message
        } (is \`busbar dev\` running? DAPR_HTTP_PORT says where)`,
        { status: 0, code: code || "ERR_SIDECAR_UNAVAILABLE", topic, cause: error },
      );
    }
    if (answer.status >= 200 && answer.status < 300) return answer.messageId ?? id;
    throw publishErrorFor(answer.status, topic, answer.body);
  }
}
