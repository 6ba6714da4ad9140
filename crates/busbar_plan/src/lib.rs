//! Cloud plans: what to create on AWS, GCP or Dapr for an app, as plain data.
//!
//! A plan is derived from the [`AppModel`] and its [`PermissionGraph`] alone (CLOUD.md). Every
//! resource carries the declaration it comes from, every IAM grant the graph edge and the code
//! locations that need it. Provider limits are checked here and reported as diagnostics at the
//! declaration: values are clamped with a warning (or silently, when they are busbar's
//! defaults), and values no provider setting can honour are errors. The Terraform and Dapr
//! emitters render plans; they decide nothing.

mod aws;
mod changes;
mod dapr;
mod encore;
mod gcp;
mod limits;
mod names;
mod runtime;

use std::collections::BTreeMap;

use busbar_diagnostics::Diagnostic;
use busbar_graph::PermissionGraph;
use busbar_model::AppModel;
use serde::{Deserialize, Serialize};

pub use crate::aws::{
    AwsPlan, DlqAlarm, IamPolicy, IamStatement, SnsSubscription, SnsTopic, SqsQueue, SqsQueuePolicy,
};
pub use crate::changes::{Change, ChangeKind, compare};
pub use crate::dapr::{DaprComponent, DaprPlan, DaprSubscription};
pub use crate::encore::{
    ENCORE_INFRA_SCHEMA, EncoreAwsSubscription, EncoreAwsTopic, EncoreGcpSubscription,
    EncoreGcpTopic, EncoreInfraConfig, EncorePubsub,
};
pub use crate::gcp::{
    DeadLetterPolicy, GcpPlan, IamMember, PubsubSubscription, PubsubTopic, ServiceAccount,
};
pub use crate::runtime::{
    RUNTIME_CONFIG_VERSION, RuntimeConfig, RuntimePermissions, RuntimeSubscriptionConfig,
    RuntimeTopic, runtime_config,
};

/// The version of the plan's JSON form.
pub const PLAN_VERSION: u32 = 1;

/// A deployment target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Aws,
    Gcp,
    Dapr,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Aws, Target::Gcp, Target::Dapr];

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Aws => "aws",
            Target::Gcp => "gcp",
            Target::Dapr => "dapr",
        }
    }
}

/// What busbar.toml says about plans.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The app's name, in the `busbar-app` tag and the Dapr component name.
    pub app: String,
    /// Prepended to every resource name (`shop-`).
    pub prefix: String,
    /// Extra tags (AWS) and labels (GCP) on every resource.
    pub tags: BTreeMap<String, String>,
    /// The Dapr pub/sub component type; `None` for `pubsub.aws.snssqs`.
    pub dapr_component: Option<String>,
}

pub use busbar_model::runtime::Origin;

/// The graph edge behind a grant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Edge {
    /// The service publishes to the topic.
    Publish { topic: String },
    /// The service owns (consumes) the subscription.
    Consume { topic: String, subscription: String },
}

/// One permission a service is given, why, and on what.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    pub service: String,
    pub edge: Edge,
    /// IAM actions (AWS) or a role (GCP).
    pub actions: Vec<String>,
    /// The Terraform address of the resource the grant is on (`aws_sns_topic.user-added`).
    pub resource: String,
    /// The provider name of that resource.
    pub resource_name: String,
    /// Every code location that needs the grant.
    pub because: Vec<Origin>,
}

/// What the runtime needs to know about a subscription beyond the resources: the retry
/// backoff it applies itself, and the delivery attempts the provider enforces.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuntimeSubscription {
    pub topic: String,
    pub subscription: String,
    pub service: String,
    pub min_backoff_seconds: u64,
    pub max_backoff_seconds: u64,
    /// Deliveries before the message goes to the dead-letter queue.
    pub max_delivery_attempts: u32,
    pub max_concurrency: Option<u32>,
    /// The Terraform address of the queue or subscription the runtime reads from.
    pub source: String,
    /// The Terraform address of the topic it publishes to.
    pub topic_resource: String,
}

/// The resources of one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Resources {
    Aws(AwsPlan),
    Gcp(GcpPlan),
    Dapr(DaprPlan),
}

/// A plan for one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    pub target: Target,
    pub app: String,
    pub prefix: String,
    pub resources: Resources,
    /// Every permission given to a service, sorted by service, then edge.
    pub grants: Vec<Grant>,
    /// Per subscription, what the runtime applies itself. Sorted by topic and subscription.
    pub runtime: Vec<RuntimeSubscription>,
    /// How many characters a deploy-time prefix (the Terraform `prefix` variable) may add to
    /// every name and keep each within its provider's limit.
    pub prefix_room: usize,
}

impl Plan {
    /// Whether the plan has resources for this subscription of this topic.
    pub fn has_subscription(&self, topic: &str, subscription: &str) -> bool {
        match &self.resources {
            Resources::Aws(p) => {
                p.queues.iter().any(|q| q.topic == topic && q.subscription == subscription)
            }
            Resources::Gcp(p) => p.subscriptions.iter().any(|s| {
                s.subscription == subscription
                    && p.topic(&s.topic).is_some_and(|t| t.topic == topic)
            }),
            Resources::Dapr(p) => {
                p.subscriptions.iter().any(|s| s.topic == topic && s.subscription == subscription)
            }
        }
    }

    /// Every grant of one service, for `busbar plan --explain`.
    pub fn grants_of(&self, service: &str) -> Vec<&Grant> {
        self.grants.iter().filter(|g| g.service == service).collect()
    }
}

/// Plans one target. The diagnostics point at the declarations whose values were clamped or
/// cannot be honoured, or whose names collide; with an error among them the plan must not be
/// written.
pub fn plan(
    model: &AppModel,
    graph: &PermissionGraph,
    target: Target,
    settings: &Settings,
) -> (Plan, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let (resources, mut grants, mut runtime) = match target {
        Target::Aws => {
            let (p, g, r) = aws::plan(model, graph, settings, &mut diagnostics);
            (Resources::Aws(p), g, r)
        }
        Target::Gcp => {
            let (p, g, r) = gcp::plan(model, graph, settings, &mut diagnostics);
            (Resources::Gcp(p), g, r)
        }
        Target::Dapr => {
            (Resources::Dapr(dapr::plan(model, graph, settings)), Vec::new(), Vec::new())
        }
    };
    grants.sort();
    runtime.sort();
    let prefix_room = match &resources {
        Resources::Aws(p) => p.prefix_room(),
        Resources::Gcp(p) => p.prefix_room(),
        Resources::Dapr(_) => 0,
    };
    busbar_diagnostics::sort_diagnostics(&mut diagnostics);
    let plan = Plan {
        version: PLAN_VERSION,
        target,
        app: settings.app.clone(),
        prefix: settings.prefix.clone(),
        resources,
        grants,
        runtime,
        prefix_room,
    };
    (plan, diagnostics)
}

/// A permission the graph asks for, on a resource a planner created, before the provider's
/// actions are named.
pub(crate) struct Need {
    pub service: String,
    pub edge: Edge,
    /// The resource's Terraform address.
    pub resource: String,
    pub because: Vec<Origin>,
}

impl Need {
    pub(crate) fn grant(&self, actions: Vec<String>, resource_name: String) -> Grant {
        Grant {
            service: self.service.clone(),
            edge: self.edge.clone(),
            actions,
            resource: self.resource.clone(),
            resource_name,
            because: self.because.clone(),
        }
    }
}

/// What each service needs (services sorted; publishing, then consuming, each sorted), given
/// the addresses of the planned topics and of the planned subscriptions (or their queues).
pub(crate) fn needs(
    graph: &PermissionGraph,
    topics: &BTreeMap<String, String>,
    subscriptions: &BTreeMap<(String, String), String>,
) -> Vec<(String, Vec<Need>)> {
    let mut out = Vec::new();
    for set in graph.all_permissions() {
        let mut needs = Vec::new();
        for g in &set.publish {
            let Some(resource) = topics.get(&g.topic) else { continue };
            needs.push(Need {
                service: set.service.clone(),
                edge: Edge::Publish { topic: g.topic.clone() },
                resource: resource.clone(),
                because: g.accesses.iter().map(|a| Origin::of(&a.span)).collect(),
            });
        }
        for g in &set.consume {
            let key = (g.topic.clone(), g.subscription.clone());
            let Some(resource) = subscriptions.get(&key) else { continue };
            needs.push(Need {
                service: set.service.clone(),
                edge: Edge::Consume {
                    topic: g.topic.clone(),
                    subscription: g.subscription.clone(),
                },
                resource: resource.clone(),
                because: vec![Origin::of(&g.span)],
            });
        }
        if !needs.is_empty() {
            out.push((set.service, needs));
        }
    }
    out
}

/// Tags (AWS) or labels (GCP) of a resource: busbar's own, then the user's.
pub(crate) fn tags(
    settings: &Settings,
    topic: Option<&str>,
    subscription: Option<&str>,
) -> BTreeMap<String, String> {
    let mut tags = settings.tags.clone();
    tags.insert("busbar-app".to_string(), settings.app.clone());
    if let Some(t) = topic {
        tags.insert("busbar-topic".to_string(), t.to_string());
    }
    if let Some(s) = subscription {
        tags.insert("busbar-subscription".to_string(), s.to_string());
    }
    tags
}
