/**
 * `new Service(name)`: a service's declaration, as Encore's `encore.service.ts` writes it
 * (`export default new Service("orders")`). busbar's analyzer reads the name; at run time it
 * only names the service in log lines (when `BUSBAR_SERVICE` is not set).
 */

import { declareService } from "./env.js";

/** A service's options (none are read; accepted for Encore compatibility). */
export type ServiceConfig = object;

export class Service {
  readonly name: string;
  readonly config: ServiceConfig;

  constructor(name: string, config: ServiceConfig = {}) {
    if (typeof name !== "string" || name === "") {
      throw new TypeError("@busbar/pubsub: a Service's name is a non-empty string");
    }
    this.name = name;
    this.config = config;
    declareService(name);
  }
}
