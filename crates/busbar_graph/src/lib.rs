//! The permission graph: services, topics and subscriptions as nodes; who publishes, who
//! consumes, who declares as edges, each with the code locations behind it.
//!
//! Built from the [`AppModel`] alone. petgraph stays inside this crate: callers get plain data
//! ([`PermissionSet`], [`PublishGrant`], [`ConsumeGrant`]), in a deterministic order.

mod lints;

use std::collections::BTreeMap;

use busbar_diagnostics::Span;
use busbar_model::{Access, AppModel, PublishVia};
use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;

pub use lints::lints;

#[derive(Clone, Debug)]
enum Node {
    Service(String),
    Topic(String),
    Subscription { topic: String, name: String },
}

#[derive(Clone, Debug)]
enum Edge {
    /// service → topic
    Publish { via: PublishVia, accesses: Vec<Access> },
    /// service → topic it declares
    Declare { span: Span },
    /// service → subscription it owns (and consumes)
    Consume { span: Span },
    /// topic → subscription
    Delivers,
}

/// The graph of an app.
#[derive(Clone, Debug)]
pub struct PermissionGraph {
    graph: StableDiGraph<Node, Edge>,
    services: BTreeMap<String, NodeIndex>,
    topics: BTreeMap<String, NodeIndex>,
}

/// Permission to publish to a topic, and every place in the code that needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishGrant {
    pub topic: String,
    pub via: PublishVia,
    pub accesses: Vec<Access>,
}

/// Permission to consume a subscription, and the declaration that needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumeGrant {
    pub topic: String,
    pub subscription: String,
    pub span: Span,
}

/// Everything one service may do, sorted by topic (then subscription).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionSet {
    pub service: String,
    pub publish: Vec<PublishGrant>,
    pub consume: Vec<ConsumeGrant>,
    /// Topics the service declares (ownership, no permission by itself).
    pub declares: Vec<(String, Span)>,
}

impl PermissionSet {
    pub fn may_publish(&self, topic: &str) -> bool {
        self.publish.iter().any(|g| g.topic == topic)
    }

    pub fn may_consume(&self, topic: &str, subscription: &str) -> bool {
        self.consume.iter().any(|g| g.topic == topic && g.subscription == subscription)
    }
}

impl PermissionGraph {
    pub fn build(model: &AppModel) -> Self {
        let mut graph = StableDiGraph::new();
        let mut services = BTreeMap::new();
        let mut topics = BTreeMap::new();
        let mut service_node = |graph: &mut StableDiGraph<Node, Edge>, name: &str| {
            *services
                .entry(name.to_string())
                .or_insert_with(|| graph.add_node(Node::Service(name.to_string())))
        };
        for s in &model.services {
            service_node(&mut graph, &s.name);
        }
        for t in &model.topics {
            let topic = graph.add_node(Node::Topic(t.name.clone()));
            topics.insert(t.name.clone(), topic);
            if let Some(owner) = &t.service {
                let s = service_node(&mut graph, owner);
                graph.add_edge(s, topic, Edge::Declare { span: t.span.clone() });
            }
            for p in &t.publishers {
                let s = service_node(&mut graph, &p.service);
                graph.add_edge(
                    s,
                    topic,
                    Edge::Publish { via: p.via, accesses: p.accesses.clone() },
                );
            }
            for sub in &t.subscriptions {
                let n = graph
                    .add_node(Node::Subscription { topic: t.name.clone(), name: sub.name.clone() });
                graph.add_edge(topic, n, Edge::Delivers);
                let s = service_node(&mut graph, &sub.service);
                graph.add_edge(s, n, Edge::Consume { span: sub.span.clone() });
            }
        }
        PermissionGraph { graph, services, topics }
    }

    /// Service names, sorted.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// Topic names, sorted.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topics.keys().map(String::as_str)
    }

    /// What a service may do and which code needs it; `None` for an unknown service.
    pub fn permissions(&self, service: &str) -> Option<PermissionSet> {
        let &node = self.services.get(service)?;
        let mut set = PermissionSet {
            service: service.to_string(),
            publish: Vec::new(),
            consume: Vec::new(),
            declares: Vec::new(),
        };
        for edge in self.graph.edges_directed(node, Direction::Outgoing) {
            match (edge.weight(), &self.graph[edge.target()]) {
                (Edge::Publish { via, accesses }, Node::Topic(topic)) => {
                    set.publish.push(PublishGrant {
                        topic: topic.clone(),
                        via: *via,
                        accesses: accesses.clone(),
                    });
                }
                (Edge::Declare { span }, Node::Topic(topic)) => {
                    set.declares.push((topic.clone(), span.clone()));
                }
                (Edge::Consume { span }, Node::Subscription { topic, name }) => {
                    set.consume.push(ConsumeGrant {
                        topic: topic.clone(),
                        subscription: name.clone(),
                        span: span.clone(),
                    });
                }
                _ => {}
            }
        }
        set.publish.sort_by(|a, b| a.topic.cmp(&b.topic));
        set.consume.sort_by(|a, b| (&a.topic, &a.subscription).cmp(&(&b.topic, &b.subscription)));
        set.declares.sort();
        Some(set)
    }

    /// Every service's permission set, sorted by service.
    pub fn all_permissions(&self) -> Vec<PermissionSet> {
        self.services().filter_map(|s| self.permissions(s)).collect()
    }

    /// The services publishing to a topic, sorted.
    pub fn publishers_of(&self, topic: &str) -> Vec<(&str, PublishVia)> {
        let Some(&node) = self.topics.get(topic) else { return Vec::new() };
        let mut out: Vec<(&str, PublishVia)> = self
            .graph
            .edges_directed(node, Direction::Incoming)
            .filter_map(|e| match (e.weight(), &self.graph[e.source()]) {
                (Edge::Publish { via, .. }, Node::Service(s)) => Some((s.as_str(), *via)),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    /// `(subscription, owning service)` of a topic, sorted by subscription.
    pub fn subscriptions_of(&self, topic: &str) -> Vec<(&str, &str)> {
        let Some(&node) = self.topics.get(topic) else { return Vec::new() };
        let mut out = Vec::new();
        for e in self.graph.edges_directed(node, Direction::Outgoing) {
            let sub = e.target();
            let Node::Subscription { name, .. } = &self.graph[sub] else { continue };
            for owner in self.graph.edges_directed(sub, Direction::Incoming) {
                if let (Edge::Consume { .. }, Node::Service(s)) =
                    (owner.weight(), &self.graph[owner.source()])
                {
                    out.push((name.as_str(), s.as_str()));
                }
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests;
