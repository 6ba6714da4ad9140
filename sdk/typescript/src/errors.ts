/**
 * The errors of `@busbar/pubsub`.
 *
 * A publish the sidecar refuses throws a {@link PublishError}, or the subclass its HTTP
 * status names: 403 {@link PermissionDenied}, 400 {@link InvalidMessage}, 413
 * {@link MessageTooLarge}, 507 {@link StorageFull}, 404 {@link TopicNotFound}. A sidecar that
 * cannot be reached is {@link SidecarUnavailable}. A subscription handler throws
 * {@link DropMessage} to dead-letter the message it was given.
 */

/** What made a publish fail, as the sidecar answered it. */
export interface PublishErrorDetails {
  /** The HTTP status of the sidecar's answer (0 when there was no answer). */
  status: number;
  /** The sidecar's `errorCode` (such as `ERR_PERMISSION_DENIED`). */
  code: string;
  /** The topic published to. */
  topic: string;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** A publish that did not store the message. */
export class PublishError extends Error {
  override name = "PublishError";
  /** The HTTP status of the sidecar's answer (0 when there was none). */
  readonly status: number;
  /** The sidecar's `errorCode`. */
  readonly code: string;
  /** The topic published to. */
  readonly topic: string;

  constructor(message: string, details: PublishErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
    this.code = details.code;
    this.topic = details.topic;
  }
}

/** 403: the caller is not identified, or its code does not publish to the topic. */
export class PermissionDenied extends PublishError {
  override name = "PermissionDenied";
}

/** One way a message fails its topic's schema: a JSON pointer and the rule it breaks. */
export interface ValidationFailure {
  pointer: string;
  rule: string;
}

/** 400: the message does not match its topic's schema, or is not a well-formed request. */
export class InvalidMessage extends PublishError {
  override name = "InvalidMessage";
  /** Each failing JSON pointer and rule (empty when the sidecar named none). */
  readonly errors: readonly ValidationFailure[];

  constructor(message: string, details: PublishErrorDetails, errors: ValidationFailure[] = []) {
    super(message, details);
    this.errors = errors;
  }
}

/** 413: the message is over the sidecar's size limit (256 KiB). */
export class MessageTooLarge extends PublishError {
  override name = "MessageTooLarge";
}

/** 507: the broker's disk is full (or below its free-space floor); nothing was stored. */
export class StorageFull extends PublishError {
  override name = "StorageFull";
}

/** 404: the sidecar has no such topic (or pub/sub component). */
export class TopicNotFound extends PublishError {
  override name = "TopicNotFound";
}

/** The sidecar could not be reached (still refused after the retry window), or never answered. */
export class SidecarUnavailable extends PublishError {
  override name = "SidecarUnavailable";
}

/**
 * Thrown by a subscription handler: the message is dead-lettered at once, never retried.
 *
 * ```ts
 * handler: async (msg) => {
 *   if (!isValid(msg)) throw new DropMessage("not a valid order");
 * }
 * ```
 */
export class DropMessage extends Error {
  override name = "DropMessage";
}

/** The sidecar's JSON error answer, as far as it is one. */
interface ErrorBody {
  errorCode?: unknown;
  message?: unknown;
  errors?: unknown;
}

function failures(value: unknown): ValidationFailure[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter((e): e is Record<string, unknown> => typeof e === "object" && e !== null)
    .map((e) => ({ pointer: String(e.pointer ?? ""), rule: String(e.rule ?? "") }));
}

/** The error for a sidecar answer with a non-2xx `status` and body `text`. */
export function publishErrorFor(status: number, topic: string, text: string): PublishError {
  let body: ErrorBody = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null) body = parsed as ErrorBody;
  } catch {
    // Not JSON: the text itself is the message.
  }
  const code = typeof body.errorCode === "string" ? body.errorCode : "";
  const message =
    typeof body.message === "string"
      ? body.message
      : text.trim() || `the sidecar answered HTTP ${status} to a publish to \`${topic}\``;
  const details = { status, code, topic };
  switch (status) {
    case 400:
      return new InvalidMessage(message, details, failures(body.errors));
    case 403:
      return new PermissionDenied(message, details);
    case 404:
      return new TopicNotFound(message, details);
    case 413:
      return new MessageTooLarge(message, details);
    case 507:
      return new StorageFull(message, details);
    default:
      return new PublishError(message, details);
  }
}
