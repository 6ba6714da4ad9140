//! Architecture diagrams of an app: services, topics, who publishes and who subscribes.
//!
//! [`Diagram::build`] turns the model and the permission graph into a picture-independent
//! description (nodes and labelled edges, in a deterministic order). The renderers read it:
//! [`mermaid`] and [`dot`] write text for other tools to lay out; [`layout`] places every box,
//! label and edge itself, [`svg`] draws that, and [`html`] wraps the SVG into one self-contained
//! page with pan and zoom, search and a details panel.

pub mod dot;
pub mod html;
pub mod layout;
pub mod mermaid;
mod schema_tree;
pub mod svg;

use std::collections::BTreeSet;

use busbar_graph::PermissionGraph;
use busbar_model::{AppModel, DeliveryGuarantee, Filter, PublishVia};

/// Which part of the app to draw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Keep one service or topic and its neighbours.
    pub focus: Option<Focus>,
    /// Draw a dead-letter queue for every subscription.
    pub dlq: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Focus {
    Service(String),
    Topic(String),
}

impl Focus {
    /// Parses `service=NAME` or `topic=NAME`.
    pub fn parse(s: &str) -> Result<Focus, String> {
        match s.split_once('=') {
            Some(("service", name)) if !name.is_empty() => Ok(Focus::Service(name.to_string())),
            Some(("topic", name)) if !name.is_empty() => Ok(Focus::Topic(name.to_string())),
            _ => Err(format!("`{s}` is not `service=NAME` or `topic=NAME`")),
        }
    }
}

/// What a node stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Service,
    Topic {
        /// Declared in a shared folder, outside every service.
        shared: bool,
        ordered_by: Option<String>,
        exactly_once: bool,
    },
    /// The dead-letter queue of one subscription.
    DeadLetter {
        topic: String,
        subscription: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Unique, made of `[A-Za-z0-9_]` only, so every renderer can use it as is.
    pub id: String,
    pub name: String,
    pub kind: NodeKind,
}

impl Node {
    /// The badges shown under the name: `ordered by X`, `exactly-once`, `shared`.
    pub fn badges(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let NodeKind::Topic { ordered_by, exactly_once, shared } = &self.kind {
            if let Some(attr) = ordered_by {
                out.push(format!("ordered by {attr}"));
            }
            if *exactly_once {
                out.push("exactly-once".to_string());
            }
            if *shared {
                out.push("shared".to_string());
            }
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// service → topic
    Publish(PublishVia),
    /// topic → service, for one subscription.
    Subscribe { subscription: String, filter: Option<String> },
    /// topic → the dead-letter queue of one subscription.
    DeadLetter { subscription: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Index into [`Diagram::nodes`].
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
}

impl Edge {
    /// The label's lines: `publish` or `ref`; the subscription name and its filter; `dead
    /// letters of NAME`.
    pub fn label_lines(&self) -> Vec<String> {
        match &self.kind {
            EdgeKind::Publish(PublishVia::Publish) => vec!["publish".to_string()],
            EdgeKind::Publish(PublishVia::Ref) => vec!["ref".to_string()],
            EdgeKind::Subscribe { subscription, filter: None } => vec![subscription.clone()],
            EdgeKind::Subscribe { subscription, filter: Some(f) } => {
                vec![subscription.clone(), format!("filter: {f}")]
            }
            EdgeKind::DeadLetter { subscription } => {
                vec![format!("dead letters of {subscription}")]
            }
        }
    }
}

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Mermaid,
    Dot,
    Svg,
    Html,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Mermaid, Format::Dot, Format::Svg, Format::Html];

    /// The file extension `busbar build` uses.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Mermaid => "mmd",
            Format::Dot => "dot",
            Format::Svg => "svg",
            Format::Html => "html",
        }
    }
}

/// Renders `diagram` of the app `app` in `format`. `Err` is an internal error (a template).
pub fn render(
    format: Format,
    app: &str,
    diagram: &Diagram,
    model: &AppModel,
    graph: &PermissionGraph,
) -> Result<String, String> {
    Ok(match format {
        Format::Mermaid => mermaid::render(diagram),
        Format::Dot => dot::render(diagram),
        Format::Svg => svg::render(diagram, &layout::layout(diagram)),
        Format::Html => html::render(app, diagram, &layout::layout(diagram), model, graph)?,
    })
}

/// The picture of an app, before layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagram {
    /// Services (sorted), then topics (sorted), then dead-letter queues.
    pub nodes: Vec<Node>,
    /// Publish edges, then subscriptions, then dead letters, each group sorted.
    pub edges: Vec<Edge>,
}

/// A filter as one line: `region=eu|uk, tier=gold`.
pub fn filter_text(filter: &Filter) -> String {
    filter.iter().map(|(k, v)| format!("{k}={}", v.join("|"))).collect::<Vec<_>>().join(", ")
}

impl Diagram {
    /// The diagram of `model`. `Err` names an unknown focus and what exists.
    pub fn build(
        model: &AppModel,
        graph: &PermissionGraph,
        options: &Options,
    ) -> Result<Diagram, String> {
        // An unknown focus is an error naming what exists.
        match &options.focus {
            Some(Focus::Service(s)) if graph.permissions(s).is_none() => {
                let known: Vec<&str> = graph.services().collect();
                return Err(format!(
                    "there is no service `{s}` in the app; its services are: {}",
                    known.join(", ")
                ));
            }
            Some(Focus::Topic(t)) if model.topic(t).is_none() => {
                let known: Vec<&str> = graph.topics().collect();
                return Err(format!(
                    "there is no topic `{t}` in the app; its topics are: {}",
                    known.join(", ")
                ));
            }
            _ => {}
        }
        // Which edges to keep, by their ends.
        let keep_edge = |service: &str, topic: &str| match &options.focus {
            None => true,
            Some(Focus::Service(s)) => service == s,
            Some(Focus::Topic(t)) => topic == t,
        };

        // (service, topic, kind) triples of the edges kept.
        let mut publish = Vec::new();
        let mut subscribe = Vec::new();
        for topic in &model.topics {
            for (service, via) in graph.publishers_of(&topic.name) {
                if keep_edge(service, &topic.name) {
                    publish.push((service.to_string(), topic.name.clone(), via));
                }
            }
            for sub in &topic.subscriptions {
                if keep_edge(&sub.service, &topic.name) {
                    subscribe.push((sub.service.clone(), topic.name.clone(), sub));
                }
            }
        }
        let mut services: BTreeSet<&str> = BTreeSet::new();
        let mut topics: BTreeSet<&str> = BTreeSet::new();
        for (s, t, _) in &publish {
            services.insert(s);
            topics.insert(t);
        }
        for (s, t, _) in &subscribe {
            services.insert(s);
            topics.insert(t);
        }
        match &options.focus {
            None => {
                services.extend(model.services.iter().map(|s| s.name.as_str()));
                topics.extend(model.topics.iter().map(|t| t.name.as_str()));
            }
            Some(Focus::Service(s)) => {
                services.insert(s);
            }
            Some(Focus::Topic(t)) => {
                topics.insert(t);
            }
        }

        let mut ids = Ids::default();
        let mut nodes = Vec::new();
        for &s in &services {
            nodes.push(Node { id: ids.make("s", s), name: s.to_string(), kind: NodeKind::Service });
        }
        for &t in &topics {
            let Some(topic) = model.topic(t) else { continue };
            nodes.push(Node {
                id: ids.make("t", t),
                name: t.to_string(),
                kind: NodeKind::Topic {
                    shared: topic.service.is_none(),
                    ordered_by: topic.ordering_attribute.clone(),
                    exactly_once: topic.delivery_guarantee == DeliveryGuarantee::ExactlyOnce,
                },
            });
        }
        // Node index by (is a service, name).
        let positions: std::collections::BTreeMap<(bool, String), usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| ((matches!(n.kind, NodeKind::Service), n.name.clone()), i))
            .collect();
        let index =
            |is_service: bool, name: &str| positions.get(&(is_service, name.to_string())).copied();
        let mut edges = Vec::new();
        for (s, t, via) in &publish {
            if let (Some(from), Some(to)) = (index(true, s), index(false, t)) {
                edges.push(Edge { from, to, kind: EdgeKind::Publish(*via) });
            }
        }
        for (s, t, sub) in &subscribe {
            if let (Some(from), Some(to)) = (index(false, t), index(true, s)) {
                edges.push(Edge {
                    from,
                    to,
                    kind: EdgeKind::Subscribe {
                        subscription: sub.name.clone(),
                        filter: sub.settings.filter.as_ref().map(filter_text),
                    },
                });
            }
        }
        if options.dlq {
            for (_, t, sub) in &subscribe {
                let Some(from) = index(false, t) else { continue };
                nodes.push(Node {
                    id: ids.make("d", &format!("{t}--{}", sub.name)),
                    name: format!("{t}/{} DLQ", sub.name),
                    kind: NodeKind::DeadLetter { topic: t.clone(), subscription: sub.name.clone() },
                });
                edges.push(Edge {
                    from,
                    to: nodes.len() - 1,
                    kind: EdgeKind::DeadLetter { subscription: sub.name.clone() },
                });
            }
        }
        Ok(Diagram { nodes, edges })
    }
}

/// Node ids: a kind prefix and the name with every character outside `[A-Za-z0-9]` written as
/// `_` and its hex code, so that `site.added` and `site_added` stay apart.
#[derive(Default)]
struct Ids {
    used: BTreeSet<String>,
}

impl Ids {
    fn make(&mut self, prefix: &str, name: &str) -> String {
        let mut id = format!("{prefix}_");
        for c in name.chars() {
            if c.is_ascii_alphanumeric() {
                id.push(c);
            } else if c == '-' {
                id.push_str("__");
            } else {
                id.push_str(&format!("_{:x}_", c as u32));
            }
        }
        // The encoding is one-to-one within a prefix; this only guards against a name seen twice.
        let mut unique = id.clone();
        let mut n = 2;
        while !self.used.insert(unique.clone()) {
            unique = format!("{id}_{n}");
            n += 1;
        }
        unique
    }
}

#[cfg(test)]
mod tests;
