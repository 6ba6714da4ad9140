//! The AWS plan (CLOUD.md, "AWS"): an SNS topic per topic; per subscription an SQS queue, its
//! dead-letter queue, the SNS subscription with its filter policy and the queue policy that
//! lets only that topic send; per service one IAM policy with exactly the grants its code needs.

use std::collections::BTreeMap;

use busbar_diagnostics::{Diagnostic, codes};
use busbar_graph::PermissionGraph;
use busbar_model::{AppModel, AttributeType, DeliveryGuarantee, Subscription, Topic};
use serde::{Deserialize, Serialize};

use busbar_model::names::{dead_letter, subscription_resource};

use crate::limits::{self, Setting};
use crate::names::{self, Namespace};
use crate::{Edge, Grant, Origin, RuntimeSubscription, Settings, tags};

/// SQS visibility timeout, at most 12 hours.
const MAX_VISIBILITY_SECONDS: u64 = 43_200;
/// SQS retention: 60 seconds to 14 days.
const MIN_RETENTION_SECONDS: u64 = 60;
const MAX_RETENTION_SECONDS: u64 = 1_209_600;
/// maxReceiveCount of a redrive policy: 1 to 1000.
const MAX_RECEIVE_COUNT: u64 = 1_000;
/// Message attributes SNS and SQS carry.
const MAX_ATTRIBUTES: usize = 10;
/// The AWS-managed key for SNS (SQS uses SSE-SQS: SNS cannot deliver into a queue encrypted with
/// the AWS-managed SQS key).
const SNS_MANAGED_KEY: &str = "alias/aws/sns";

/// The actions a service needs to consume one queue (`GetQueueUrl` and `GetQueueAttributes`:
/// the runtime finds the queue and checks it, and its redrive policy, before serving).
pub const CONSUME_ACTIONS: [&str; 5] = [
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
];
/// The action a consumer needs on its subscription's dead-letter queue: the runtime moves a
/// message there itself on DROP and after the last retry (with the reason).
pub const DEAD_LETTER_ACTION: &str = "sqs:SendMessage";
/// The action a service needs to publish to one topic.
pub const PUBLISH_ACTION: &str = "sns:Publish";
/// The actions of a publisher: publishing, and reading the topic's attributes (the runtime
/// checks the topic before serving).
pub const PUBLISH_ACTIONS: [&str; 2] = ["sns:GetTopicAttributes", PUBLISH_ACTION];

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsPlan {
    pub topics: Vec<SnsTopic>,
    pub queues: Vec<SqsQueue>,
    pub subscriptions: Vec<SnsSubscription>,
    pub queue_policies: Vec<SqsQueuePolicy>,
    pub policies: Vec<IamPolicy>,
    pub alarms: Vec<DlqAlarm>,
}

/// `aws_sns_topic`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnsTopic {
    pub address: String,
    pub name: String,
    pub topic: String,
    pub fifo: bool,
    pub kms_master_key_id: String,
    pub tags: BTreeMap<String, String>,
    pub origin: Origin,
}

/// Redrive of a queue to its dead-letter queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redrive {
    /// Address of the dead-letter queue.
    pub dead_letter_queue: String,
    pub max_receive_count: u64,
}

/// `aws_sqs_queue`: a subscription's queue, or its dead-letter queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqsQueue {
    pub address: String,
    pub name: String,
    pub topic: String,
    pub subscription: String,
    pub dead_letter: bool,
    pub fifo: bool,
    pub visibility_timeout_seconds: u64,
    pub message_retention_seconds: u64,
    pub sqs_managed_sse_enabled: bool,
    /// The subscription queue's redrive to its DLQ.
    pub redrive: Option<Redrive>,
    /// On a DLQ: the address of the only queue allowed to redrive into it.
    pub redrive_allow_source: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub origin: Origin,
}

/// `aws_sns_topic_subscription`, SNS → SQS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnsSubscription {
    pub address: String,
    /// Address of the SNS topic.
    pub topic: String,
    /// Address of the SQS queue.
    pub queue: String,
    pub raw_message_delivery: bool,
    /// The SNS filter policy (JSON text), from the subscription's attribute filter.
    pub filter_policy: Option<String>,
    pub filter_policy_scope: Option<String>,
    pub origin: Origin,
}

/// `aws_sqs_queue_policy`: only `sns.amazonaws.com`, only `sqs:SendMessage`, only from the
/// subscription's topic (`aws:SourceArn`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqsQueuePolicy {
    pub address: String,
    pub queue: String,
    pub topic: String,
    pub origin: Origin,
}

/// One statement of a service's policy, with the code that needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamStatement {
    pub sid: String,
    /// What the service does that needs it (`publishes to \`user-added\``).
    pub reason: String,
    pub actions: Vec<String>,
    /// Terraform addresses (`aws_sns_topic.user-added`); the template takes their `.arn`.
    pub resources: Vec<String>,
    pub because: Vec<Origin>,
}

/// `aws_iam_policy` of one service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamPolicy {
    pub address: String,
    pub name: String,
    pub service: String,
    pub statements: Vec<IamStatement>,
    /// What the service needs on the app's KMS key when one is configured (`var.kms_key_arn`):
    /// publishing to an encrypted topic needs `kms:GenerateDataKey` and `kms:Decrypt`,
    /// consuming an encrypted queue `kms:Decrypt`.
    pub kms_actions: Vec<String>,
}

/// `aws_cloudwatch_metric_alarm` on a dead-letter queue having messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlqAlarm {
    pub address: String,
    pub name: String,
    pub queue: String,
    pub origin: Origin,
}

impl AwsPlan {
    /// The fewest characters any name can still take within its limit.
    pub fn prefix_room(&self) -> usize {
        let room = |name: &str, max: usize| max.saturating_sub(name.chars().count());
        let topics = self.topics.iter().map(|t| room(&t.name, names::sns_topic(t.fifo).max));
        let queues = self.queues.iter().map(|q| room(&q.name, names::sqs_queue(q.fifo).max));
        let policies = self.policies.iter().map(|p| room(&p.name, names::AWS_POLICY.max));
        let alarms = self.alarms.iter().map(|a| room(&a.name, names::AWS_POLICY.max));
        topics.chain(queues).chain(policies).chain(alarms).min().unwrap_or(0)
    }

    /// Where the runtime finds each topic and subscription: the provider names of this plan
    /// (the dead-letter queues are the ones the queues' redrive policies name).
    pub fn locations(&self) -> busbar_model::locations::AwsLocations {
        let topics = self.topics.iter().map(|t| (t.topic.clone(), t.name.clone())).collect();
        let mut queues: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for q in self.queues.iter().filter(|q| !q.dead_letter) {
            queues
                .entry(q.topic.clone())
                .or_default()
                .insert(q.subscription.clone(), q.name.clone());
        }
        busbar_model::locations::AwsLocations { topics, queues }
    }
}

fn is_fifo(t: &Topic) -> bool {
    t.ordering_attribute.is_some() || t.delivery_guarantee == DeliveryGuarantee::ExactlyOnce
}

/// `UserAdded` from `user-added`: an IAM statement id (alphanumeric only).
fn camel(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next().map(|f| f.to_ascii_uppercase().to_string() + cs.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The SNS filter policy of a subscription filter: numbers match numerically (they travel as
/// `Number` attributes), everything else as strings.
fn filter_policy(topic: &Topic, filter: &busbar_model::Filter) -> String {
    let mut policy = serde_json::Map::new();
    for (key, values) in filter {
        let numeric = topic.attribute_types.get(key) == Some(&AttributeType::Number);
        let conditions: Vec<serde_json::Value> = values
            .iter()
            .map(|v| match (numeric, v.parse::<f64>()) {
                (true, Ok(_)) => {
                    let n: serde_json::Value = serde_json::from_str(v).unwrap_or(v.clone().into());
                    serde_json::json!({ "numeric": ["=", n] })
                }
                _ => serde_json::Value::String(v.clone()),
            })
            .collect();
        policy.insert(key.clone(), serde_json::Value::Array(conditions));
    }
    serde_json::Value::Object(policy).to_string()
}

pub(crate) fn plan(
    model: &AppModel,
    graph: &PermissionGraph,
    settings: &Settings,
    diagnostics: &mut Vec<Diagnostic>,
) -> (AwsPlan, Vec<Grant>, Vec<RuntimeSubscription>) {
    let mut out = AwsPlan::default();
    let mut runtime = Vec::new();
    let mut topic_names = Namespace::default();
    let mut queue_names = Namespace::default();
    let mut topic_address = BTreeMap::new();
    let mut queue_address = BTreeMap::new();
    let p = &settings.prefix;
    for t in &model.topics {
        let fifo = is_fifo(t);
        let what = format!("topic `{}`", t.name);
        if t.attributes.len() > MAX_ATTRIBUTES {
            diagnostics.push(
                Diagnostic::new(
                    &codes::PLAN_VALUE_UNSUPPORTED,
                    format!(
                        "topic `{}` has {} attributes; SNS and SQS carry at most {MAX_ATTRIBUTES} message attributes",
                        t.name,
                        t.attributes.len()
                    ),
                )
                .at_labelled(t.span.clone(), "declared here")
                .with_help("make some `Attribute<...>` fields plain fields of the message body"),
            );
        }
        let name = names::apply(&format!("{p}{}", t.name), names::sns_topic(fifo));
        topic_names.claim(&name, "SNS topic", &what, &t.name_span, diagnostics);
        let address = names::address(&[&t.name]);
        topic_address.insert(t.name.clone(), format!("aws_sns_topic.{address}"));
        out.topics.push(SnsTopic {
            address: address.clone(),
            name: name.name,
            topic: t.name.clone(),
            fifo,
            kms_master_key_id: SNS_MANAGED_KEY.to_string(),
            tags: tags(settings, Some(&t.name), None),
            origin: Origin::of(&t.span),
        });
        for sub in &t.subscriptions {
            let queue = plan_subscription(
                t,
                sub,
                &address,
                settings,
                diagnostics,
                &mut queue_names,
                &mut out,
            );
            queue_address
                .insert((t.name.clone(), sub.name.clone()), format!("aws_sqs_queue.{}", queue.0));
            runtime.push(RuntimeSubscription {
                topic: t.name.clone(),
                subscription: sub.name.clone(),
                service: sub.service.clone(),
                min_backoff_seconds: limits::secs(sub.settings.retry_policy.min_backoff_ms),
                max_backoff_seconds: queue.2,
                max_delivery_attempts: queue.1,
                max_concurrency: sub.settings.max_concurrency,
                source: format!("aws_sqs_queue.{}", queue.0),
                topic_resource: format!("aws_sns_topic.{address}"),
            });
        }
    }

    let mut grants = Vec::new();
    for (service, needs) in crate::needs(graph, &topic_address, &queue_address) {
        let mut statements = Vec::new();
        for need in needs {
            let (sid, reason, actions) = match &need.edge {
                Edge::Publish { topic } => (
                    format!("Publish{}", camel(topic)),
                    format!("publishes to `{topic}`"),
                    PUBLISH_ACTIONS.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                ),
                Edge::Consume { topic, subscription } => (
                    format!("Consume{}{}", camel(topic), camel(subscription)),
                    format!("consumes subscription `{subscription}` of `{topic}`"),
                    CONSUME_ACTIONS.iter().map(|a| a.to_string()).collect(),
                ),
            };
            statements.push(IamStatement {
                sid,
                reason,
                actions: actions.clone(),
                resources: vec![need.resource.clone()],
                because: need.because.clone(),
            });
            if let Edge::Consume { topic, subscription } = &need.edge
                && let Some(dlq) = dead_letter_queue_of(&out, &need.resource)
            {
                let actions = vec![DEAD_LETTER_ACTION.to_string()];
                let mut grant = need.grant(actions.clone(), name_of(&out, &dlq));
                grant.resource = dlq.clone();
                grants.push(grant);
                statements.push(IamStatement {
                    sid: format!("DeadLetter{}{}", camel(topic), camel(subscription)),
                    reason: format!(
                        "moves what subscription `{subscription}` of `{topic}` refuses, or fails past its retries, to its dead-letter queue"
                    ),
                    actions,
                    resources: vec![dlq],
                    because: need.because.clone(),
                });
            }
            grants.push(need.grant(actions, name_of(&out, &need.resource)));
        }
        dedup_sids(&mut statements);
        let publishes = statements.iter().any(|s| s.actions.iter().any(|a| a == PUBLISH_ACTION));
        let kms_actions: Vec<String> = if publishes {
            vec!["kms:Decrypt".to_string(), "kms:GenerateDataKey".to_string()]
        } else {
            vec!["kms:Decrypt".to_string()]
        };
        let name = names::apply(&format!("{p}{service}-pubsub"), names::AWS_POLICY);
        out.policies.push(IamPolicy {
            address: names::address(&[&service]),
            name: name.name,
            service,
            statements,
            kms_actions,
        });
    }
    (out, grants, runtime)
}

/// The Terraform address of the dead-letter queue of the queue at `address`.
fn dead_letter_queue_of(plan: &AwsPlan, address: &str) -> Option<String> {
    let local = address.strip_prefix("aws_sqs_queue.")?;
    let queue = plan.queues.iter().find(|q| q.address == local)?;
    Some(queue.redrive.as_ref()?.dead_letter_queue.clone())
}

/// Makes statement ids unique within a policy (`a.b` and `a-b` both camel-case to `AB`).
fn dedup_sids(statements: &mut [IamStatement]) {
    let mut seen = std::collections::BTreeSet::new();
    for s in statements.iter_mut() {
        if !seen.insert(s.sid.clone()) {
            s.sid = format!("{}{}", s.sid, names::short_hash(&s.resources.join(",")));
            seen.insert(s.sid.clone());
        }
    }
}

/// The provider name of a planned topic or queue, by its Terraform address.
fn name_of(plan: &AwsPlan, address: &str) -> String {
    let (kind, local) = address.split_once('.').unwrap_or(("", address));
    match kind {
        "aws_sns_topic" => plan.topics.iter().find(|t| t.address == local).map(|t| t.name.clone()),
        _ => plan.queues.iter().find(|q| q.address == local).map(|q| q.name.clone()),
    }
    .unwrap_or_default()
}

/// Plans a subscription's queue, DLQ, SNS subscription, queue policy and alarm. Returns the
/// queue's address, the delivery attempts and the max backoff in seconds.
fn plan_subscription(
    t: &Topic,
    sub: &Subscription,
    topic_address: &str,
    settings: &Settings,
    diagnostics: &mut Vec<Diagnostic>,
    queue_names: &mut Namespace,
    out: &mut AwsPlan,
) -> (String, u32, u64) {
    let fifo = is_fifo(t);
    let p = &settings.prefix;
    let what = format!("subscription `{}` on `{}`", sub.name, t.name);
    let setting =
        |key, what_| Setting { sub, topic: &t.name, key, what: what_, provider: "AWS", unit: "s" };
    let ack = limits::secs(sub.settings.ack_deadline_ms);
    if ack > MAX_VISIBILITY_SECONDS {
        diagnostics.push(
            Diagnostic::new(
                &codes::PLAN_VALUE_UNSUPPORTED,
                format!(
                    "the ack deadline of {what} is {ack}s; an SQS visibility timeout is at most {MAX_VISIBILITY_SECONDS}s (12 hours)"
                ),
            )
            .at_labelled(sub.span.clone(), "declared here")
            .with_help("use an ack deadline of at most 12h; long work can extend its deadline as it goes"),
        );
    }
    let retention = limits::clamp(
        &setting("messageRetention", "the message retention"),
        limits::secs(sub.settings.message_retention_ms),
        MIN_RETENTION_SECONDS,
        MAX_RETENTION_SECONDS,
        diagnostics,
    );
    let receive = Setting {
        unit: "",
        ..setting("retryPolicy.maxRetries", "the delivery count (max retries + 1)")
    };
    let max_receive = limits::clamp(
        &receive,
        u64::from(sub.settings.retry_policy.max_retries) + 1,
        1,
        MAX_RECEIVE_COUNT,
        diagnostics,
    );
    let max_backoff = limits::clamp(
        &setting("retryPolicy.maxBackoff", "the maximum backoff"),
        limits::secs(sub.settings.retry_policy.max_backoff_ms),
        0,
        MAX_VISIBILITY_SECONDS,
        diagnostics,
    );

    let address = names::address(&[&t.name, &sub.name]);
    let dlq_address = names::address(&[&t.name, &sub.name, "dlq"]);
    let queue_name = names::apply(
        &format!("{p}{}", subscription_resource(&t.name, &sub.name)),
        names::sqs_queue(fifo),
    );
    let dlq_name =
        names::apply(&format!("{p}{}", dead_letter(&t.name, &sub.name)), names::sqs_queue(fifo));
    queue_names.claim(&queue_name, "SQS queue", &what, &sub.name_span, diagnostics);
    queue_names.claim(&dlq_name, "SQS dead-letter queue", &what, &sub.name_span, diagnostics);
    let origin = Origin::of(&sub.span);
    let sub_tags = tags(settings, Some(&t.name), Some(&sub.name));
    out.queues.push(SqsQueue {
        address: address.clone(),
        name: queue_name.name,
        topic: t.name.clone(),
        subscription: sub.name.clone(),
        dead_letter: false,
        fifo,
        visibility_timeout_seconds: ack.min(MAX_VISIBILITY_SECONDS),
        message_retention_seconds: retention,
        sqs_managed_sse_enabled: true,
        redrive: Some(Redrive {
            dead_letter_queue: format!("aws_sqs_queue.{dlq_address}"),
            max_receive_count: max_receive,
        }),
        redrive_allow_source: None,
        tags: sub_tags.clone(),
        origin: origin.clone(),
    });
    out.queues.push(SqsQueue {
        address: dlq_address.clone(),
        name: dlq_name.name.clone(),
        topic: t.name.clone(),
        subscription: sub.name.clone(),
        dead_letter: true,
        fifo,
        visibility_timeout_seconds: ack.min(MAX_VISIBILITY_SECONDS),
        message_retention_seconds: MAX_RETENTION_SECONDS,
        sqs_managed_sse_enabled: true,
        redrive: None,
        redrive_allow_source: Some(format!("aws_sqs_queue.{address}")),
        tags: sub_tags,
        origin: origin.clone(),
    });
    out.subscriptions.push(SnsSubscription {
        address: address.clone(),
        topic: format!("aws_sns_topic.{topic_address}"),
        queue: format!("aws_sqs_queue.{address}"),
        raw_message_delivery: true,
        filter_policy: sub.settings.filter.as_ref().map(|f| filter_policy(t, f)),
        filter_policy_scope: sub.settings.filter.as_ref().map(|_| "MessageAttributes".to_string()),
        origin: origin.clone(),
    });
    out.queue_policies.push(SqsQueuePolicy {
        address: address.clone(),
        queue: format!("aws_sqs_queue.{address}"),
        topic: format!("aws_sns_topic.{topic_address}"),
        origin: origin.clone(),
    });
    let alarm_name = names::apply(&format!("{}-messages", dlq_name.name), names::AWS_POLICY);
    out.alarms.push(DlqAlarm {
        address: dlq_address,
        name: alarm_name.name,
        queue: format!("aws_sqs_queue.{}", names::address(&[&t.name, &sub.name, "dlq"])),
        origin,
    });
    (address, max_receive as u32, max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_ids_are_alphanumeric() {
        assert_eq!(camel("user-added"), "UserAdded");
        assert_eq!(camel("site.added"), "SiteAdded");
        assert_eq!(camel("a--b_c"), "ABC");
    }
}
