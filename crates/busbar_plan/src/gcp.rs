//! The GCP plan (CLOUD.md, "GCP"): a Pub/Sub topic per topic; per subscription a subscription
//! with its retry and dead-letter policies, a dead-letter topic with a pull subscription on it
//! (so nothing dead-lettered is dropped), and the Pub/Sub service agent's grants; per service a
//! service account with publisher and subscriber roles on exactly what its code needs.

use std::collections::BTreeMap;

use busbar_diagnostics::Diagnostic;
use busbar_graph::PermissionGraph;
use busbar_model::{AppModel, DeliveryGuarantee, Subscription, Topic};
use serde::{Deserialize, Serialize};

use busbar_model::names::{dead_letter, subscription_resource};

use crate::limits::{self, Setting};
use crate::names::{self, Namespace};
use crate::{Edge, Grant, Origin, RuntimeSubscription, Settings, tags};

/// Ack deadline: 10 to 600 seconds.
const MIN_ACK_SECONDS: u64 = 10;
const MAX_ACK_SECONDS: u64 = 600;
/// Retention: 10 minutes to 7 days.
const MIN_RETENTION_SECONDS: u64 = 600;
const MAX_RETENTION_SECONDS: u64 = 604_800;
/// Retry backoff: at most 600 seconds.
const MAX_BACKOFF_SECONDS: u64 = 600;
/// Delivery attempts before dead-lettering: 5 to 100.
const MIN_ATTEMPTS: u64 = 5;
const MAX_ATTEMPTS: u64 = 100;

pub const PUBLISHER_ROLE: &str = "roles/pubsub.publisher";
pub const SUBSCRIBER_ROLE: &str = "roles/pubsub.subscriber";
/// Read-only: the runtime reads each topic and subscription it serves before serving (that it
/// exists, its ordering, its dead-letter topic).
pub const VIEWER_ROLE: &str = "roles/pubsub.viewer";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcpPlan {
    /// The app's topics and the dead-letter topics.
    pub topics: Vec<PubsubTopic>,
    /// The app's subscriptions and the pull subscriptions on dead-letter topics.
    pub subscriptions: Vec<PubsubSubscription>,
    pub service_accounts: Vec<ServiceAccount>,
    /// `google_pubsub_topic_iam_member`: services publishing, the service agent on DLQs.
    pub topic_iam: Vec<IamMember>,
    /// `google_pubsub_subscription_iam_member`: services consuming, the service agent on
    /// subscriptions with a dead-letter policy.
    pub subscription_iam: Vec<IamMember>,
}

/// `google_pubsub_topic`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubsubTopic {
    pub address: String,
    pub name: String,
    pub topic: String,
    /// The dead-letter topic of this subscription, if it is one.
    pub dead_letter_of: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterPolicy {
    /// Address of the dead-letter topic.
    pub dead_letter_topic: String,
    pub max_delivery_attempts: u64,
}

/// `google_pubsub_subscription`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubsubSubscription {
    pub address: String,
    pub name: String,
    /// Address of the topic it reads.
    pub topic: String,
    pub subscription: String,
    /// A pull subscription on a dead-letter topic, keeping what was dead-lettered.
    pub dead_letter: bool,
    pub ack_deadline_seconds: u64,
    pub message_retention_seconds: u64,
    pub minimum_backoff_seconds: Option<u64>,
    pub maximum_backoff_seconds: Option<u64>,
    pub dead_letter_policy: Option<DeadLetterPolicy>,
    pub enable_message_ordering: bool,
    pub enable_exactly_once_delivery: bool,
    /// The Pub/Sub filter expression from the attribute filter.
    pub filter: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub origin: Origin,
}

/// `google_service_account` of a service (unless `var.service_accounts` names one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub address: String,
    pub account_id: String,
    pub service: String,
}

/// A role on a topic or subscription for a member.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IamMember {
    pub address: String,
    /// Address of the topic or subscription.
    pub resource: String,
    pub role: String,
    /// The service whose account gets the role, or `None` for the Pub/Sub service agent.
    pub service: Option<String>,
    pub because: Vec<Origin>,
}

impl GcpPlan {
    /// The topic with this Terraform address (`google_pubsub_topic.user-added`), as the
    /// subscriptions' `topic` and dead-letter policies name it.
    pub fn topic(&self, address: &str) -> Option<&PubsubTopic> {
        let local = address.strip_prefix("google_pubsub_topic.")?;
        self.topics.iter().find(|t| t.address == local)
    }

    /// Where the runtime finds each topic and subscription: the plan's names (in the project
    /// of the credentials, or the one given at start).
    pub fn locations(&self) -> busbar_model::locations::GcpLocations {
        let topics = self
            .topics
            .iter()
            .filter(|t| t.dead_letter_of.is_none())
            .map(|t| (t.topic.clone(), t.name.clone()))
            .collect();
        let mut subscriptions: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for s in self.subscriptions.iter().filter(|s| !s.dead_letter) {
            let topic = self.topic(&s.topic);
            let Some(topic) = topic else { continue };
            subscriptions
                .entry(topic.topic.clone())
                .or_default()
                .insert(s.subscription.clone(), s.name.clone());
        }
        busbar_model::locations::GcpLocations { project: None, topics, subscriptions }
    }

    /// The fewest characters any name can still take within its limit.
    pub fn prefix_room(&self) -> usize {
        let room = |name: &str, max: usize| max.saturating_sub(name.chars().count());
        let topics = self.topics.iter().map(|t| room(&t.name, names::GCP_PUBSUB.max));
        let subs = self.subscriptions.iter().map(|s| room(&s.name, names::GCP_PUBSUB.max));
        let accounts =
            self.service_accounts.iter().map(|a| room(&a.account_id, names::GCP_ACCOUNT.max));
        topics.chain(subs).chain(accounts).min().unwrap_or(0)
    }
}

/// A label value: lowercase letters, digits, `_` and `-`, at most 63 characters.
fn label(value: &str) -> String {
    value
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .take(63)
        .collect()
}

fn labels(
    settings: &Settings,
    topic: Option<&str>,
    subscription: Option<&str>,
) -> BTreeMap<String, String> {
    tags(settings, topic, subscription).into_iter().map(|(k, v)| (label(&k), label(&v))).collect()
}

/// The Pub/Sub filter of an attribute filter: every attribute must equal one of its values.
fn filter_expression(filter: &busbar_model::Filter) -> String {
    let quote = |v: &str| serde_json::Value::String(v.to_string()).to_string();
    let clauses: Vec<String> = filter
        .iter()
        .map(|(key, values)| {
            let alts: Vec<String> =
                values.iter().map(|v| format!("attributes.{key} = {}", quote(v))).collect();
            if alts.len() == 1 || filter.len() == 1 {
                alts.join(" OR ")
            } else {
                format!("({})", alts.join(" OR "))
            }
        })
        .collect();
    clauses.join(" AND ")
}

pub(crate) fn plan(
    model: &AppModel,
    graph: &PermissionGraph,
    settings: &Settings,
    diagnostics: &mut Vec<Diagnostic>,
) -> (GcpPlan, Vec<Grant>, Vec<RuntimeSubscription>) {
    let mut out = GcpPlan::default();
    let mut runtime = Vec::new();
    let mut topic_names = Namespace::default();
    let mut sub_names = Namespace::default();
    let mut topic_address = BTreeMap::new();
    let mut sub_address = BTreeMap::new();
    for t in &model.topics {
        let name = names::apply(&format!("{}{}", settings.prefix, t.name), names::GCP_PUBSUB);
        topic_names.claim(
            &name,
            "Pub/Sub topic",
            &format!("topic `{}`", t.name),
            &t.name_span,
            diagnostics,
        );
        let address = names::address(&[&t.name]);
        topic_address.insert(t.name.clone(), format!("google_pubsub_topic.{address}"));
        out.topics.push(PubsubTopic {
            address: address.clone(),
            name: name.name,
            topic: t.name.clone(),
            dead_letter_of: None,
            labels: labels(settings, Some(&t.name), None),
            origin: Origin::of(&t.span),
        });
        for sub in &t.subscriptions {
            let planned = plan_subscription(
                t,
                sub,
                &address,
                settings,
                diagnostics,
                &mut topic_names,
                &mut sub_names,
                &mut out,
            );
            sub_address.insert(
                (t.name.clone(), sub.name.clone()),
                format!("google_pubsub_subscription.{}", planned.0),
            );
            runtime.push(RuntimeSubscription {
                topic: t.name.clone(),
                subscription: sub.name.clone(),
                service: sub.service.clone(),
                min_backoff_seconds: planned.2,
                max_backoff_seconds: planned.3,
                max_delivery_attempts: planned.1,
                max_concurrency: sub.settings.max_concurrency,
                source: format!("google_pubsub_subscription.{}", planned.0),
                topic_resource: format!("google_pubsub_topic.{address}"),
            });
        }
    }

    let mut grants = Vec::new();
    for (service, needs) in crate::needs(graph, &topic_address, &sub_address) {
        let account = names::apply(&format!("{}{service}", settings.prefix), names::GCP_ACCOUNT);
        out.service_accounts.push(ServiceAccount {
            address: names::address(&[&service]),
            account_id: account.name,
            service: service.clone(),
        });
        for need in needs {
            let (role, address, list) = match &need.edge {
                Edge::Publish { topic } => (
                    PUBLISHER_ROLE,
                    names::address(&[&service, "publishes", topic]),
                    &mut out.topic_iam,
                ),
                Edge::Consume { topic, subscription } => (
                    SUBSCRIBER_ROLE,
                    names::address(&[&service, "consumes", topic, subscription]),
                    &mut out.subscription_iam,
                ),
            };
            list.push(IamMember {
                address,
                resource: need.resource.clone(),
                role: role.to_string(),
                service: Some(service.clone()),
                because: need.because.clone(),
            });
            let (views, list) = match &need.edge {
                Edge::Publish { topic } => {
                    (names::address(&[&service, "views", topic]), &mut out.topic_iam)
                }
                Edge::Consume { topic, subscription } => (
                    names::address(&[&service, "views", topic, subscription]),
                    &mut out.subscription_iam,
                ),
            };
            list.push(IamMember {
                address: views,
                resource: need.resource.clone(),
                role: VIEWER_ROLE.to_string(),
                service: Some(service.clone()),
                because: need.because.clone(),
            });
            let roles = vec![role.to_string(), VIEWER_ROLE.to_string()];
            grants.push(need.grant(roles, name_of(&out, &need.resource)));
            // The runtime moves what the subscription refuses, or fails past its retries, to
            // its dead-letter topic itself (with the reason).
            if let Edge::Consume { topic, subscription } = &need.edge
                && let Some(dlq) = dead_letter_topic_of(&out, &need.resource)
            {
                out.topic_iam.push(IamMember {
                    address: names::address(&[&service, "dead-letters", topic, subscription]),
                    resource: dlq.clone(),
                    role: PUBLISHER_ROLE.to_string(),
                    service: Some(service.clone()),
                    because: need.because.clone(),
                });
                let mut grant = need.grant(vec![PUBLISHER_ROLE.to_string()], name_of(&out, &dlq));
                grant.resource = dlq;
                grants.push(grant);
            }
        }
    }
    out.topic_iam.sort();
    out.subscription_iam.sort();
    (out, grants, runtime)
}

/// The dead-letter topic (its address) of the subscription at `address`.
fn dead_letter_topic_of(plan: &GcpPlan, address: &str) -> Option<String> {
    let local = address.strip_prefix("google_pubsub_subscription.")?;
    let sub = plan.subscriptions.iter().find(|s| s.address == local)?;
    sub.dead_letter_policy.as_ref().map(|d| d.dead_letter_topic.clone())
}

fn name_of(plan: &GcpPlan, address: &str) -> String {
    let (kind, local) = address.split_once('.').unwrap_or(("", address));
    match kind {
        "google_pubsub_topic" => {
            plan.topics.iter().find(|t| t.address == local).map(|t| t.name.clone())
        }
        _ => plan.subscriptions.iter().find(|s| s.address == local).map(|s| s.name.clone()),
    }
    .unwrap_or_default()
}

/// Plans a subscription, its dead-letter topic and subscription, and the service agent's
/// roles. Returns the subscription's address, delivery attempts, min and max backoff.
#[allow(clippy::too_many_arguments, reason = "one call site; the namespaces are shared state")]
fn plan_subscription(
    t: &Topic,
    sub: &Subscription,
    topic_address: &str,
    settings: &Settings,
    diagnostics: &mut Vec<Diagnostic>,
    topic_names: &mut Namespace,
    sub_names: &mut Namespace,
    out: &mut GcpPlan,
) -> (String, u32, u64, u64) {
    let p = &settings.prefix;
    let what = format!("subscription `{}` on `{}`", sub.name, t.name);
    let setting =
        |key, what_| Setting { sub, topic: &t.name, key, what: what_, provider: "GCP", unit: "s" };
    let ack = limits::clamp(
        &setting("ackDeadline", "the ack deadline"),
        limits::secs(sub.settings.ack_deadline_ms),
        MIN_ACK_SECONDS,
        MAX_ACK_SECONDS,
        diagnostics,
    );
    let retention = limits::clamp(
        &setting("messageRetention", "the message retention"),
        limits::secs(sub.settings.message_retention_ms),
        MIN_RETENTION_SECONDS,
        MAX_RETENTION_SECONDS,
        diagnostics,
    );
    let min_backoff = limits::clamp(
        &setting("retryPolicy.minBackoff", "the minimum backoff"),
        limits::secs(sub.settings.retry_policy.min_backoff_ms),
        0,
        MAX_BACKOFF_SECONDS,
        diagnostics,
    );
    let max_backoff = limits::clamp(
        &setting("retryPolicy.maxBackoff", "the maximum backoff"),
        limits::secs(sub.settings.retry_policy.max_backoff_ms),
        0,
        MAX_BACKOFF_SECONDS,
        diagnostics,
    )
    .max(min_backoff);
    let attempts_setting = Setting {
        unit: "",
        ..setting("retryPolicy.maxRetries", "the delivery attempts (max retries + 1)")
    };
    let attempts = limits::clamp(
        &attempts_setting,
        u64::from(sub.settings.retry_policy.max_retries) + 1,
        MIN_ATTEMPTS,
        MAX_ATTEMPTS,
        diagnostics,
    );

    let address = names::address(&[&t.name, &sub.name]);
    let dlq_address = names::address(&[&t.name, &sub.name, "dlq"]);
    let sub_name = names::apply(
        &format!("{p}{}", subscription_resource(&t.name, &sub.name)),
        names::GCP_PUBSUB,
    );
    let dlq_name =
        names::apply(&format!("{p}{}", dead_letter(&t.name, &sub.name)), names::GCP_PUBSUB);
    sub_names.claim(&sub_name, "Pub/Sub subscription", &what, &sub.name_span, diagnostics);
    sub_names.claim(
        &dlq_name,
        "Pub/Sub dead-letter subscription",
        &what,
        &sub.name_span,
        diagnostics,
    );
    topic_names.claim(&dlq_name, "Pub/Sub dead-letter topic", &what, &sub.name_span, diagnostics);
    let origin = Origin::of(&sub.span);
    let sub_labels = labels(settings, Some(&t.name), Some(&sub.name));
    out.topics.push(PubsubTopic {
        address: dlq_address.clone(),
        name: dlq_name.name.clone(),
        topic: t.name.clone(),
        dead_letter_of: Some(sub.name.clone()),
        labels: sub_labels.clone(),
        origin: origin.clone(),
    });
    out.subscriptions.push(PubsubSubscription {
        address: address.clone(),
        name: sub_name.name,
        topic: format!("google_pubsub_topic.{topic_address}"),
        subscription: sub.name.clone(),
        dead_letter: false,
        ack_deadline_seconds: ack,
        message_retention_seconds: retention,
        // No retry policy: the runtime applies the backoff itself (as the ack deadline of what
        // failed), and a retry policy would add Pub/Sub's own delay on top of it.
        minimum_backoff_seconds: None,
        maximum_backoff_seconds: None,
        dead_letter_policy: Some(DeadLetterPolicy {
            dead_letter_topic: format!("google_pubsub_topic.{dlq_address}"),
            max_delivery_attempts: attempts,
        }),
        enable_message_ordering: t.ordering_attribute.is_some(),
        enable_exactly_once_delivery: t.delivery_guarantee == DeliveryGuarantee::ExactlyOnce,
        filter: sub.settings.filter.as_ref().map(filter_expression),
        labels: sub_labels.clone(),
        origin: origin.clone(),
    });
    out.subscriptions.push(PubsubSubscription {
        address: dlq_address.clone(),
        name: dlq_name.name,
        topic: format!("google_pubsub_topic.{dlq_address}"),
        subscription: sub.name.clone(),
        dead_letter: true,
        ack_deadline_seconds: ack,
        message_retention_seconds: MAX_RETENTION_SECONDS,
        minimum_backoff_seconds: None,
        maximum_backoff_seconds: None,
        dead_letter_policy: None,
        enable_message_ordering: false,
        enable_exactly_once_delivery: false,
        filter: None,
        labels: sub_labels,
        origin: origin.clone(),
    });
    out.topic_iam.push(IamMember {
        address: names::address(&[&t.name, &sub.name, "dlq", "agent-publishes"]),
        resource: format!("google_pubsub_topic.{dlq_address}"),
        role: PUBLISHER_ROLE.to_string(),
        service: None,
        because: vec![origin.clone()],
    });
    out.subscription_iam.push(IamMember {
        address: names::address(&[&t.name, &sub.name, "agent-subscribes"]),
        resource: format!("google_pubsub_subscription.{address}"),
        role: SUBSCRIBER_ROLE.to_string(),
        service: None,
        because: vec![origin],
    });
    (address, attempts as u32, min_backoff, max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_labels() {
        let mut f = busbar_model::Filter::new();
        f.insert("source".into(), vec!["mobile".into(), "web".into()]);
        assert_eq!(
            filter_expression(&f),
            r#"attributes.source = "mobile" OR attributes.source = "web""#
        );
        f.insert("kind".into(), vec!["a\"b".into()]);
        assert_eq!(
            filter_expression(&f),
            r#"attributes.kind = "a\"b" AND (attributes.source = "mobile" OR attributes.source = "web")"#
        );
        assert_eq!(label("Site.Added"), "site_added");
    }
}
