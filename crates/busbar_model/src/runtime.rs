//! The runtime contract, `runtime-config.json`: what the busbar runtime (every broker backend
//! and the sidecar) needs to deliver messages and to enforce the graph, independent of any
//! cloud. `busbar build` writes it (`busbar_plan::runtime_config`); `busbar dev` builds the
//! same data in memory from the analysis; the runtime reads only this type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AttributeType, DeliveryGuarantee, Span, SubscriptionSettings};

/// The version of `runtime-config.json`: 2 since subscriptions carry the model's
/// [`SubscriptionSettings`] (camelCase, with `retryPolicy`); 3 since topics carry their
/// attributes' types (numbers travel as numbers on SNS, which the filter policies match).
pub const RUNTIME_CONFIG_VERSION: u32 = 3;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeConfig {
    pub version: u32,
    pub app: String,
    pub topics: Vec<RuntimeTopic>,
    /// What each service may do: a publish or a subscription not listed is refused.
    pub services: Vec<RuntimePermissions>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeTopic {
    pub name: String,
    pub delivery_guarantee: DeliveryGuarantee,
    /// Messages with the same value of this attribute are delivered one at a time, in order.
    pub ordering_attribute: Option<String>,
    /// The message fields that travel as attributes (for ordering and filters).
    pub attributes: Vec<String>,
    /// The value type of each attribute (as the model's `attributeTypes`).
    pub attribute_types: BTreeMap<String, AttributeType>,
    /// The message type's JSON Schema (2020-12), for validation at publish.
    pub schema: serde_json::Value,
    pub subscriptions: Vec<RuntimeSubscriptionConfig>,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSubscriptionConfig {
    pub name: String,
    pub service: String,
    #[serde(flatten)]
    pub settings: SubscriptionSettings,
    /// Where a message goes after its last retry ([`crate::names::dead_letter`]).
    pub dead_letter_topic: String,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimePermissions {
    pub service: String,
    /// Topics it may publish to.
    pub publish: Vec<String>,
    /// `(topic, subscription)` pairs it consumes.
    pub consume: Vec<(String, String)>,
}

/// Where something in a plan or in the runtime contract comes from in the code (empty for a
/// configuration made by hand).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Origin {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl Origin {
    pub fn of(span: &Span) -> Self {
        Origin { file: span.file.to_string(), line: span.line, column: span.column }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

impl RuntimeSubscriptionConfig {
    /// A subscription with these settings and no owning service (its dead-letter topic is set
    /// by [`RuntimeTopic::new`]): for configurations made by hand.
    pub fn new(name: &str, settings: SubscriptionSettings) -> Self {
        RuntimeSubscriptionConfig {
            name: name.to_string(),
            service: String::new(),
            settings,
            dead_letter_topic: String::new(),
            origin: Origin::default(),
        }
    }
}

impl RuntimeConfig {
    /// These topics, with no service grants: for configurations made by hand.
    pub fn new(app: &str, topics: Vec<RuntimeTopic>) -> Self {
        RuntimeConfig {
            version: RUNTIME_CONFIG_VERSION,
            app: app.to_string(),
            topics,
            services: Vec::new(),
        }
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Reads `runtime-config.json`; the error says what is wrong (and where, for bad JSON).
    pub fn from_json(text: &str) -> Result<RuntimeConfig, String> {
        #[derive(Deserialize)]
        struct Versioned {
            version: Option<u32>,
        }
        let versioned: Versioned = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match versioned.version {
            Some(RUNTIME_CONFIG_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "it is version {v}; this busbar reads version {RUNTIME_CONFIG_VERSION} (run `busbar build` again)"
                ));
            }
            None => return Err("it has no `version`: it is not a runtime-config.json".into()),
        }
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    pub fn topic(&self, name: &str) -> Option<&RuntimeTopic> {
        self.topics.iter().find(|t| t.name == name)
    }

    pub fn subscription(&self, topic: &str, name: &str) -> Option<&RuntimeSubscriptionConfig> {
        self.topic(topic)?.subscriptions.iter().find(|s| s.name == name)
    }

    /// A service's grants (`None`: no such service).
    pub fn service(&self, name: &str) -> Option<&RuntimePermissions> {
        self.services.iter().find(|s| s.service == name)
    }

    /// The subscriptions `service` owns, as (topic, subscription), in topic order.
    pub fn subscriptions_of(&self, service: &str) -> Vec<(String, String)> {
        self.topics
            .iter()
            .flat_map(|t| {
                t.subscriptions
                    .iter()
                    .filter(move |s| s.service == service)
                    .map(move |s| (t.name.clone(), s.name.clone()))
            })
            .collect()
    }

    /// Whether `service` may publish to `topic`.
    pub fn may_publish(&self, service: &str, topic: &str) -> bool {
        self.service(service).is_some_and(|p| p.publish.iter().any(|t| t == topic))
    }
}

impl RuntimeTopic {
    /// An at-least-once topic without ordering, attributes or schema, with these subscriptions
    /// (their dead-letter topics derived from the names): for configurations made by hand.
    pub fn new(name: &str, subscriptions: Vec<RuntimeSubscriptionConfig>) -> Self {
        let subscriptions = subscriptions
            .into_iter()
            .map(|s| RuntimeSubscriptionConfig {
                dead_letter_topic: crate::names::dead_letter(name, &s.name),
                ..s
            })
            .collect();
        RuntimeTopic {
            name: name.to_string(),
            delivery_guarantee: DeliveryGuarantee::AtLeastOnce,
            ordering_attribute: None,
            attributes: Vec::new(),
            attribute_types: BTreeMap::new(),
            schema: serde_json::Value::Bool(true),
            subscriptions,
            origin: Origin::default(),
        }
    }

    /// Publishes with a client message id are stored once per id (within the dedup window).
    pub fn exactly_once(&self) -> bool {
        self.delivery_guarantee == DeliveryGuarantee::ExactlyOnce
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes_and_refuses_other_versions() {
        let config = RuntimeConfig {
            version: RUNTIME_CONFIG_VERSION,
            app: "shop".into(),
            topics: vec![RuntimeTopic {
                name: "orders".into(),
                delivery_guarantee: DeliveryGuarantee::ExactlyOnce,
                ordering_attribute: Some("customer".into()),
                attributes: vec!["customer".into()],
                attribute_types: BTreeMap::from([("customer".into(), AttributeType::String)]),
                schema: serde_json::json!({ "type": "object" }),
                subscriptions: vec![RuntimeSubscriptionConfig {
                    name: "mail".into(),
                    service: "notify".into(),
                    settings: SubscriptionSettings::default(),
                    dead_letter_topic: crate::names::dead_letter("orders", "mail"),
                    origin: Origin { file: "a.ts".into(), line: 1, column: 2 },
                }],
                origin: Origin { file: "a.ts".into(), line: 1, column: 1 },
            }],
            services: vec![RuntimePermissions {
                service: "notify".into(),
                publish: vec![],
                consume: vec![("orders".into(), "mail".into())],
            }],
        };
        let text = config.to_json();
        assert!(text.contains("\"retryPolicy\""), "{text}");
        assert!(text.contains("\"deadLetterTopic\": \"orders--mail--dlq\""), "{text}");
        assert_eq!(RuntimeConfig::from_json(&text), Ok(config));
        let old = text.replace("\"version\": 3", "\"version\": 2");
        assert!(RuntimeConfig::from_json(&old).unwrap_err().contains("version 2"));
        assert!(RuntimeConfig::from_json("{}").unwrap_err().contains("no `version`"));
        assert!(RuntimeConfig::from_json("{\"version\": 3,").unwrap_err().contains("line 1"));
        let unknown = text.replacen("\"app\"", "\"apps\": 1, \"app\"", 1);
        assert!(RuntimeConfig::from_json(&unknown).unwrap_err().contains("apps"));
    }
}
