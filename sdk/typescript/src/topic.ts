/**
 * `new Topic<T>(name, config)`: a topic whose messages are `T`, and its publishers;
 * `Topic.declaredElsewhere<T>(name)`: a handle on a topic another file of the app declares,
 * maybe in another language (a Rust service's `Topic::new`).
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

/** The configuration of a handle: the declaration elsewhere has the real one. */
const ELSEWHERE: TopicConfig = Object.freeze({ deliveryGuarantee: "at-least-once" });

export class Topic<T extends object> implements Publisher<T> {
  /** The topic's name. */
  readonly name: string;
  /** `undefined` for a handle from {@link Topic.declaredElsewhere}. */
  readonly config: TopicConfig<T> | undefined;

  constructor(name: string, config: TopicConfig<T>) {
    if (typeof name !== "string" || name === "") {
      throw new TypeError("@busbar/pubsub: a Topic's name is a non-empty string");
    }
    if (config === ELSEWHERE) {
      this.name = name;
      this.config = undefined;
      return;
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
   * A handle on the topic `name` that another file of the app declares, in TypeScript or in
   * another language (a Rust service's `pub static T: Topic<M> = Topic::new("name")`): it
   * publishes and subscribes like the declaration, which holds the configuration. busbar's
   * analyzer reports a name no file declares (BB0207). `name` must be a string literal.
   *
   * ```ts
   * export const fraudVerdict = Topic.declaredElsewhere<FraudVerdict>("fraud-verdict");
   * ```
   */
  static declaredElsewhere<T extends object>(name: string): Topic<T> {
    return new Topic<T>(name, ELSEWHERE as TopicConfig<T>);
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
