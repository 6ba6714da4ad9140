import { Service } from "@busbar/pubsub";

export default new Service("analytics");
