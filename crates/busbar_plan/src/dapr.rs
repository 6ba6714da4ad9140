//! The Dapr plan (CLOUD.md, "Dapr"): one pub/sub `Component` whose scopes say which app may
//! publish and subscribe to which topic, and one declarative `Subscription` per subscription,
//! scoped to its service, with a dead-letter topic.

use std::collections::BTreeMap;

use busbar_graph::PermissionGraph;
use busbar_model::AppModel;
use busbar_model::names::{dead_letter, subscription_resource};
use serde::{Deserialize, Serialize};

use crate::{Origin, Settings};

/// The component type the manifests use unless configured otherwise.
pub const DEFAULT_COMPONENT_TYPE: &str = "pubsub.aws.snssqs";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaprPlan {
    pub component: DaprComponent,
    pub subscriptions: Vec<DaprSubscription>,
}

/// `Component` (`dapr.io/v1alpha1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaprComponent {
    /// Kubernetes name, and the `pubsubname` subscriptions and SDKs use.
    pub name: String,
    pub component_type: String,
    /// `svc=t1,t2;svc2=` (an app listed with nothing may publish nothing).
    pub publishing_scopes: String,
    pub subscription_scopes: String,
    /// Every declared topic and dead-letter topic, sorted, comma separated.
    pub allowed_topics: String,
}

/// `Subscription` (`dapr.io/v2alpha1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaprSubscription {
    /// Kubernetes name.
    pub name: String,
    pub topic: String,
    pub subscription: String,
    /// The route Dapr delivers to (`routes.default`).
    pub route: String,
    pub dead_letter_topic: String,
    /// The owning service: the only app the subscription applies to.
    pub scopes: Vec<String>,
    pub origin: Origin,
}

/// A Kubernetes object name: lowercase letters, digits, `-` and `.`, at most 253 characters.
fn k8s_name(s: &str) -> String {
    let name: String = s
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .take(253)
        .collect();
    name.trim_matches(['-', '.']).to_string()
}

/// `a=t1,t2;b=` over every service, sorted.
fn scopes(entries: &BTreeMap<String, Vec<String>>) -> String {
    entries
        .iter()
        .map(|(service, topics)| format!("{service}={}", topics.join(",")))
        .collect::<Vec<_>>()
        .join(";")
}

pub(crate) fn plan(model: &AppModel, graph: &PermissionGraph, settings: &Settings) -> DaprPlan {
    let mut publishing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut subscribing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for set in graph.all_permissions() {
        let mut published: Vec<String> = set.publish.iter().map(|g| g.topic.clone()).collect();
        let mut consumed: Vec<String> = set.consume.iter().map(|g| g.topic.clone()).collect();
        published.dedup();
        consumed.dedup();
        publishing.insert(set.service.clone(), published);
        subscribing.insert(set.service.clone(), consumed);
    }
    let component_name = k8s_name(&format!("{}{}-pubsub", settings.prefix, settings.app));
    let mut subscriptions = Vec::new();
    for t in &model.topics {
        for sub in &t.subscriptions {
            subscriptions.push(DaprSubscription {
                name: k8s_name(&format!(
                    "{}{}",
                    settings.prefix,
                    subscription_resource(&t.name, &sub.name)
                )),
                topic: t.name.clone(),
                subscription: sub.name.clone(),
                route: format!("/busbar/{}/{}", t.name, sub.name),
                dead_letter_topic: dead_letter(&t.name, &sub.name),
                scopes: vec![sub.service.clone()],
                origin: Origin::of(&sub.span),
            });
        }
    }
    // Dead-letter topics too: Dapr publishes to them for the subscribing app.
    let mut topics: Vec<&str> = model.topics.iter().map(|t| t.name.as_str()).collect();
    topics.extend(subscriptions.iter().map(|s| s.dead_letter_topic.as_str()));
    topics.sort_unstable();
    DaprPlan {
        component: DaprComponent {
            name: component_name,
            component_type: settings
                .dapr_component
                .clone()
                .unwrap_or_else(|| DEFAULT_COMPONENT_TYPE.to_string()),
            publishing_scopes: scopes(&publishing),
            subscription_scopes: scopes(&subscribing),
            allowed_topics: topics.join(","),
        },
        subscriptions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_scopes() {
        assert_eq!(k8s_name("Shop-Site.Added--Mail_Out"), "shop-site.added--mail-out");
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), vec![]);
        m.insert("a".to_string(), vec!["t1".to_string(), "t2".to_string()]);
        assert_eq!(scopes(&m), "a=t1,t2;b=");
    }
}
