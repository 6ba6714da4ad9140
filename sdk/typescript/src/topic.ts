/**
 * `new Topic<T>(name, config)`: a topic whose messages are `T`, and its publishers.
 *
 * busbar's analyzer reads every `new Topic`, `.publish(...)` and `.ref<Publisher>()` of the
 * code: a service may publish to a topic only when its code does one of them, and the
 * sidecar refuses the others (`PermissionDenied`).
 */

import { publish } from "./sidecar.js";

/**
 * A message field carried as an attribute (filters and the ordering key read it). At run
 * time it is the value itself; the analyzer reads the name.
 */
export type Attribute<T extends string | number | boolean> = T;

/** How often a subscription may see a message. */
export type DeliveryGuarantee = "at-least-once" | "exactly-once";

/** A topic's configuration. */
export interface TopicConfig<T extends object = any> {
  /** `"exactly-once"`: a message published twice with one id (a retried publish) is stored once. */
  deliveryGuarantee: DeliveryGuarantee;
  /** An `Attribute<...>` field of `T`: messages with one value are delivered in order. */
  orderingAttribute?: Extract<keyof T, string>;
}

/** What may publish to a topic: a topic, or the `ref<Publisher>()` handed to other code. */
export interface Publisher<T extends object = any> {
  /** Publishes `msg`; resolves to its message id once the broker stored it. */
  publish(msg: T): Promise<string>;
}

const GUARANTEES: readonly string[] = ["at-least-once", "exactly-once"];

export class Topic<T extends object> implements Publisher<T> {
  /** The topic's name. */
  readonly name: string;
  readonly config: TopicConfig<T>;

  constructor(name: string, config: TopicConfig<T>) {
    if (typeof name !== "string" || name === "") {
      throw new TypeError("@busbar/pubsub: a Topic's name is a non-empty string");
    }
    if (!config || !GUARANTEES.includes(config.deliveryGuarantee)) {
      throw new TypeError(
        `@busbar/pubsub: topic \`${name}\`: deliveryGuarantee is "at-least-once" or "exactly-once"`,
      );
    }
    this.name = name;
    this.config = config;
  }

  /**
   * Publishes `msg` (as JSON) to the topic; resolves to its message id.
   *
   * @throws {PublishError} or its subclasses `PermissionDenied`, `InvalidMessage`,
   *   `MessageTooLarge`, `StorageFull`, `TopicNotFound`, `SidecarUnavailable`.
   */
  publish(msg: T): Promise<string> {
    return publish(this.name, msg);
  }

  /**
   * A publisher of this topic to hand to other code (`topic.ref<Publisher>()`): it declares
   * the publish permission of the service whose code calls it.
   */
  ref<_P extends Publisher<any> = Publisher<T>>(): Publisher<T> {
    const name = this.name;
    return Object.freeze({ publish: (msg: T) => publish(name, msg) });
  }
}
