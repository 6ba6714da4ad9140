//! `--against`: what applying a new plan over an old one would replace or destroy, and the
//! messages that would go with it (CLOUD.md, "Changes that lose messages").

use serde::Serialize;

use crate::{AwsPlan, GcpPlan, Plan, Resources};

/// What happens to a resource of the old plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The address is gone: Terraform destroys the resource.
    Destroyed,
    /// A setting the provider cannot change in place changed: destroy, then create.
    Replaced,
}

/// One resource that loses messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    /// `aws_sqs_queue.user-added--welcome`.
    pub resource: String,
    /// The topic (and subscription) it belongs to, in the old plan.
    pub topic: String,
    pub subscription: Option<String>,
    /// Why: which setting changed (`fifo_queue: false → true`), or nothing for a destruction.
    pub reason: Option<String>,
    /// What is lost with it.
    pub loses: String,
}

fn field_changes(pairs: &[(&str, String, String)]) -> Option<String> {
    let changed: Vec<String> = pairs
        .iter()
        .filter(|(_, old, new)| old != new)
        .map(|(name, old, new)| format!("{name}: {old} → {new}"))
        .collect();
    (!changed.is_empty()).then(|| changed.join(", "))
}

fn push(
    out: &mut Vec<Change>,
    resource: String,
    topic: &str,
    subscription: Option<&str>,
    reason: Option<Option<String>>,
    loses: &str,
) {
    let (kind, reason) = match reason {
        None => (ChangeKind::Destroyed, None),
        Some(None) => return,
        Some(Some(why)) => (ChangeKind::Replaced, Some(why)),
    };
    out.push(Change {
        kind,
        resource,
        topic: topic.to_string(),
        subscription: subscription.map(str::to_string),
        reason,
        loses: loses.to_string(),
    });
}

fn aws(old: &AwsPlan, new: &AwsPlan, out: &mut Vec<Change>) {
    for t in &old.topics {
        let now = new.topics.iter().find(|n| n.address == t.address);
        let reason = now.map(|n| {
            field_changes(&[
                ("name", t.name.clone(), n.name.clone()),
                ("fifo_topic", t.fifo.to_string(), n.fifo.to_string()),
            ])
        });
        let loses = "the messages published while it is recreated";
        push(out, format!("aws_sns_topic.{}", t.address), &t.topic, None, reason, loses);
    }
    for q in &old.queues {
        let now = new.queues.iter().find(|n| n.address == q.address);
        let reason = now.map(|n| {
            field_changes(&[
                ("name", q.name.clone(), n.name.clone()),
                ("fifo_queue", q.fifo.to_string(), n.fifo.to_string()),
            ])
        });
        let loses = if q.dead_letter {
            "every dead-lettered message it holds"
        } else {
            "every message in flight or waiting in it"
        };
        push(
            out,
            format!("aws_sqs_queue.{}", q.address),
            &q.topic,
            Some(&q.subscription),
            reason,
            loses,
        );
    }
}

fn gcp(old: &GcpPlan, new: &GcpPlan, out: &mut Vec<Change>) {
    for t in &old.topics {
        let now = new.topics.iter().find(|n| n.address == t.address);
        let reason = now.map(|n| field_changes(&[("name", t.name.clone(), n.name.clone())]));
        let loses = if t.dead_letter_of.is_some() {
            "the messages dead-lettered while it is recreated"
        } else {
            "the messages published while it is recreated"
        };
        push(
            out,
            format!("google_pubsub_topic.{}", t.address),
            &t.topic,
            t.dead_letter_of.as_deref(),
            reason,
            loses,
        );
    }
    for s in &old.subscriptions {
        let now = new.subscriptions.iter().find(|n| n.address == s.address);
        let reason = now.map(|n| {
            field_changes(&[
                ("name", s.name.clone(), n.name.clone()),
                ("topic", s.topic.clone(), n.topic.clone()),
                (
                    "enable_message_ordering",
                    s.enable_message_ordering.to_string(),
                    n.enable_message_ordering.to_string(),
                ),
                ("filter", format!("{:?}", s.filter), format!("{:?}", n.filter)),
            ])
        });
        let loses = if s.dead_letter {
            "every dead-lettered message it holds"
        } else {
            "every unacknowledged message"
        };
        let topic = old.topic(&s.topic).map_or(s.subscription.as_str(), |t| t.topic.as_str());
        push(
            out,
            format!("google_pubsub_subscription.{}", s.address),
            topic,
            Some(&s.subscription),
            reason,
            loses,
        );
    }
}

/// The resources of `old` that applying `new` would destroy or replace, in the old plan's
/// order. Plans of different targets have nothing in common.
pub fn compare(old: &Plan, new: &Plan) -> Vec<Change> {
    let mut out = Vec::new();
    match (&old.resources, &new.resources) {
        (Resources::Aws(o), Resources::Aws(n)) => aws(o, n, &mut out),
        (Resources::Gcp(o), Resources::Gcp(n)) => gcp(o, n, &mut out),
        _ => {}
    }
    out
}
