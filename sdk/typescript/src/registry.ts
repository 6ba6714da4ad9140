/**
 * The subscriptions this process has, by route: what `GET /dapr/subscribe` lists and where
 * each delivery goes.
 */

import type { Dispatcher } from "./dispatch.js";

/** One subscription, as the server sees it. */
export interface Registered {
  topic: string;
  subscription: string;
  /** `/busbar/{topic}/{subscription}`, each part URL-encoded. */
  route: string;
  dispatch: Dispatcher;
}

const byRoute = new Map<string, Registered>();

/** The route of a subscription. */
export function routeOf(topic: string, subscription: string): string {
  return `/busbar/${encodeURIComponent(topic)}/${encodeURIComponent(subscription)}`;
}

/** Adds a subscription; a second one with the same topic and name is an error. */
export function register(entry: Omit<Registered, "route">): Registered {
  const route = routeOf(entry.topic, entry.subscription);
  if (byRoute.has(route)) {
    throw new Error(
      `@busbar/pubsub: topic \`${entry.topic}\` already has a subscription \`${entry.subscription}\` in this process`,
    );
  }
  const registered = { ...entry, route };
  byRoute.set(route, registered);
  return registered;
}

/** The subscription of (topic, name), if this process has it. */
export function lookup(topic: string, subscription: string): Registered | undefined {
  return byRoute.get(routeOf(topic, subscription));
}

/** Every subscription, in the order they were created. */
export function registered(): Registered[] {
  return [...byRoute.values()];
}
