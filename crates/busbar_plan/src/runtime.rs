//! Builds `runtime-config.json` ([`busbar_model::runtime`], the runtime contract) from the
//! model and the graph: every topic with its delivery settings, every subscription with its
//! settings and dead-letter topic, and what each service may publish and consume.

use busbar_graph::PermissionGraph;
use busbar_model::AppModel;
use busbar_model::names::dead_letter;
pub use busbar_model::runtime::{
    RUNTIME_CONFIG_VERSION, RuntimeConfig, RuntimePermissions, RuntimeSubscriptionConfig,
    RuntimeTopic,
};

use crate::{Origin, Settings};

/// The runtime configuration of an app.
pub fn runtime_config(
    model: &AppModel,
    graph: &PermissionGraph,
    settings: &Settings,
) -> RuntimeConfig {
    let topics = model
        .topics
        .iter()
        .map(|t| RuntimeTopic {
            name: t.name.clone(),
            delivery_guarantee: t.delivery_guarantee,
            ordering_attribute: t.ordering_attribute.clone(),
            attributes: t.attributes.clone(),
            attribute_types: t.attribute_types.clone(),
            schema: t.schema.to_json_schema(),
            subscriptions: t
                .subscriptions
                .iter()
                .map(|s| RuntimeSubscriptionConfig {
                    name: s.name.clone(),
                    service: s.service.clone(),
                    settings: s.settings.clone(),
                    dead_letter_topic: dead_letter(&t.name, &s.name),
                    origin: Origin::of(&s.span),
                })
                .collect(),
            origin: Origin::of(&t.span),
        })
        .collect();
    let services = graph
        .all_permissions()
        .into_iter()
        .map(|set| RuntimePermissions {
            service: set.service,
            publish: set.publish.into_iter().map(|g| g.topic).collect(),
            consume: set.consume.into_iter().map(|g| (g.topic, g.subscription)).collect(),
        })
        .collect();
    RuntimeConfig { version: RUNTIME_CONFIG_VERSION, app: settings.app.clone(), topics, services }
}
