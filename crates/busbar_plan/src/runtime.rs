//! `runtime-config.json`: what the busbar runtime (the embedded broker and the sidecar) needs
//! to deliver messages and to enforce the graph, independent of any cloud: every topic with its
//! delivery settings, every subscription with its retry policy, filter and dead-letter topic,
//! and what each service may publish and consume.

use busbar_graph::PermissionGraph;
use busbar_model::{AppModel, DeliveryGuarantee, Filter};
use serde::{Deserialize, Serialize};

use crate::{Origin, Settings};

/// The version of `runtime-config.json`.
pub const RUNTIME_CONFIG_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    pub version: u32,
    pub app: String,
    pub topics: Vec<RuntimeTopic>,
    /// What each service may do: a publish or a subscription not listed is refused.
    pub services: Vec<RuntimePermissions>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeTopic {
    pub name: String,
    pub delivery_guarantee: DeliveryGuarantee,
    pub ordering_attribute: Option<String>,
    pub attributes: Vec<String>,
    /// The message type's JSON Schema (2020-12), for validation at publish.
    pub schema: serde_json::Value,
    pub subscriptions: Vec<RuntimeSubscriptionConfig>,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeSubscriptionConfig {
    pub name: String,
    pub service: String,
    pub ack_deadline_ms: u64,
    pub message_retention_ms: u64,
    pub min_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Deliveries after the first before the message is dead-lettered.
    pub max_retries: u32,
    pub max_concurrency: Option<u32>,
    pub filter: Option<Filter>,
    /// Where a message goes after its last retry.
    pub dead_letter_topic: String,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimePermissions {
    pub service: String,
    /// Topics it may publish to.
    pub publish: Vec<String>,
    /// `topic/subscription` pairs it consumes.
    pub consume: Vec<(String, String)>,
}

impl RuntimeConfig {
    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

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
            schema: t.schema.to_json_schema(),
            subscriptions: t
                .subscriptions
                .iter()
                .map(|s| RuntimeSubscriptionConfig {
                    name: s.name.clone(),
                    service: s.service.clone(),
                    ack_deadline_ms: s.ack_deadline_ms,
                    message_retention_ms: s.message_retention_ms,
                    min_backoff_ms: s.retry_policy.min_backoff_ms,
                    max_backoff_ms: s.retry_policy.max_backoff_ms,
                    max_retries: s.retry_policy.max_retries,
                    max_concurrency: s.max_concurrency,
                    filter: s.filter.clone(),
                    dead_letter_topic: format!("{}--{}--dlq", t.name, s.name),
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
