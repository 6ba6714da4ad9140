/**
 * `@busbar/pubsub`: busbar's pub/sub SDK for TypeScript, source-compatible with Encore's
 * `encore.dev/pubsub` (`Topic`, `Subscription`, `Attribute`, `Publisher`) and
 * `encore.dev/service` (`Service`). Messages go through the busbar sidecar (`busbar dev`)
 * over the Dapr pub/sub HTTP API.
 *
 * @packageDocumentation
 */

export { Topic, type Attribute, type DeliveryGuarantee, type Publisher, type TopicConfig } from "./topic.js";
export {
  Subscription,
  type Filter,
  type FilterValue,
  type RetryPolicy,
  type SubscriptionConfig,
} from "./subscription.js";
export { Service, type ServiceConfig } from "./service.js";
export { serve, shutdown, type ApiHandler } from "./server.js";
export type { DeliveryInfo } from "./dispatch.js";
export {
  DropMessage,
  InvalidMessage,
  MessageTooLarge,
  PermissionDenied,
  PublishError,
  SidecarUnavailable,
  StorageFull,
  TopicNotFound,
  type PublishErrorDetails,
  type ValidationFailure,
} from "./errors.js";
