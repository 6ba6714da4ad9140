//! One self-contained HTML page: the SVG, pan and zoom, a search box, and a details panel fed
//! by JSON embedded in the page (no network, no CDN). The page is `assets/page.html.hbs`,
//! embedded at compile time.

use std::collections::BTreeMap;

use busbar_graph::PermissionGraph;
use busbar_model::duration::format_ms;
use busbar_model::{AccessKind, AppModel, AttributeType, ServiceOrigin};
use handlebars::Handlebars;
use serde::Serialize;

use crate::layout::Layout;
use crate::{Diagram, EdgeKind, NodeKind};

const PAGE: &str = include_str!("../assets/page.html.hbs");

/// What the details panel shows for one node or edge.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Details {
    pub kind: &'static str,
    pub title: String,
    pub sections: Vec<Section>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Section {
    pub heading: String,
    pub items: Vec<Item>,
}

/// A line of the panel, with the code locations behind it (`file:line:column`).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Item {
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    /// The indentation of a line of a tree (the message schema); 0 for a plain line.
    #[serde(skip_serializing_if = "is_zero")]
    pub depth: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn item(text: impl Into<String>) -> Item {
    Item { text: text.into(), locations: Vec::new(), depth: 0 }
}

fn item_at(text: impl Into<String>, locations: Vec<String>) -> Item {
    Item { text: text.into(), locations, depth: 0 }
}

fn section(heading: &str, items: Vec<Item>) -> Section {
    Section { heading: heading.to_string(), items }
}

#[derive(Serialize)]
struct PageData<'a> {
    app: &'a str,
    /// By node id.
    nodes: BTreeMap<&'a str, Details>,
    /// By edge index.
    edges: Vec<Details>,
}

/// The details of every node (by id) and edge (by index).
pub fn details<'a>(
    diagram: &'a Diagram,
    model: &AppModel,
    graph: &PermissionGraph,
) -> (BTreeMap<&'a str, Details>, Vec<Details>) {
    let nodes = diagram
        .nodes
        .iter()
        .map(|node| {
            let d = match &node.kind {
                NodeKind::Service => service_details(&node.name, model, graph),
                NodeKind::Topic { .. } => topic_details(&node.name, model),
                NodeKind::DeadLetter { topic, subscription } => {
                    dlq_details(topic, subscription, model)
                }
            };
            (node.id.as_str(), d)
        })
        .collect();
    let edges = diagram
        .edges
        .iter()
        .map(|edge| {
            let from = &diagram.nodes[edge.from].name;
            let to = &diagram.nodes[edge.to].name;
            match &edge.kind {
                EdgeKind::Publish(_) => publish_details(from, to, graph),
                EdgeKind::Subscribe { subscription, .. } => {
                    subscription_details(from, subscription, model)
                }
                EdgeKind::DeadLetter { subscription } => dlq_details(from, subscription, model),
            }
        })
        .collect();
    (nodes, edges)
}

fn service_details(name: &str, model: &AppModel, graph: &PermissionGraph) -> Details {
    let mut config = Vec::new();
    if let Some(s) = model.service(name) {
        config.push(item(format!("root: {}", s.root)));
        let origin = match s.origin {
            ServiceOrigin::EncoreServiceFile => "declared in encore.service.ts",
            ServiceOrigin::Implicit => "implicit (a directory holding subscriptions or endpoints)",
            ServiceOrigin::Config => "mapped in busbar.toml",
            ServiceOrigin::CargoPackage => "a Cargo binary package that depends on busbar",
        };
        config.push(item_at(origin, s.span.iter().map(|s| s.location()).collect()));
    }
    let mut sections = vec![section("Configuration", config)];
    if let Some(perms) = graph.permissions(name) {
        let mut items = Vec::new();
        for g in &perms.publish {
            let via = match g.via {
                busbar_model::PublishVia::Publish => "",
                busbar_model::PublishVia::Ref => " (through ref<Publisher>())",
            };
            items.push(item_at(
                format!("publish to {}{via}", g.topic),
                g.accesses.iter().map(|a| a.span.location()).collect(),
            ));
        }
        for g in &perms.consume {
            items.push(item_at(
                format!("consume subscription {} of {}", g.subscription, g.topic),
                vec![g.span.location()],
            ));
        }
        if items.is_empty() {
            items.push(item("none: it neither publishes nor consumes"));
        }
        sections.push(section("Permissions", items));
        if !perms.declares.is_empty() {
            sections.push(section(
                "Declares",
                perms
                    .declares
                    .iter()
                    .map(|(t, span)| item_at(format!("topic {t}"), vec![span.location()]))
                    .collect(),
            ));
        }
    }
    Details { kind: "service", title: name.to_string(), sections }
}

fn topic_details(name: &str, model: &AppModel) -> Details {
    let Some(t) = model.topic(name) else {
        return Details { kind: "topic", title: name.to_string(), sections: Vec::new() };
    };
    let mut config = vec![
        item_at(
            match &t.service {
                Some(s) => format!("declared in service {s}"),
                None => "declared in a shared folder".to_string(),
            },
            vec![t.span.location()],
        ),
        item(format!("message type: {}", t.message_type)),
        item(format!("delivery: {}", t.delivery_guarantee.as_str())),
        item(match &t.ordering_attribute {
            Some(a) => format!("ordered by attribute {a}"),
            None => "unordered".to_string(),
        }),
    ];
    if !t.attributes.is_empty() {
        let attrs: Vec<String> = t
            .attributes
            .iter()
            .map(|a| match t.attribute_types.get(a) {
                Some(ty) => format!("{a}: {}", attribute_type(*ty)),
                None => a.clone(),
            })
            .collect();
        config.push(item(format!("attributes: {}", attrs.join(", "))));
    }
    if let Some(doc) = &t.doc {
        config.push(item(doc.clone()));
    }
    let publishers: Vec<Item> = t
        .publishers
        .iter()
        .map(|p| {
            let via = match p.via {
                busbar_model::PublishVia::Publish => "publish",
                busbar_model::PublishVia::Ref => "ref",
            };
            item_at(
                format!("{} ({via})", p.service),
                p.accesses.iter().map(|a| a.span.location()).collect(),
            )
        })
        .collect();
    let subscriptions: Vec<Item> = t
        .subscriptions
        .iter()
        .map(|s| item_at(format!("{} → {}", s.name, s.service), vec![s.name_span.location()]))
        .collect();
    let or_none = |items: Vec<Item>| if items.is_empty() { vec![item("none")] } else { items };
    let schema: Vec<Item> = crate::schema_tree::lines(&t.schema)
        .into_iter()
        .map(|l| Item { text: l.text, locations: l.location.into_iter().collect(), depth: l.depth })
        .collect();
    let mut sections = vec![section("Configuration", config)];
    if !schema.is_empty() {
        sections.push(section("Message schema", schema));
    }
    sections.push(section("Publishers", or_none(publishers)));
    sections.push(section("Subscriptions", or_none(subscriptions)));
    Details { kind: "topic", title: name.to_string(), sections }
}

fn attribute_type(ty: AttributeType) -> &'static str {
    match ty {
        AttributeType::String => "string",
        AttributeType::Number => "number",
        AttributeType::Boolean => "boolean",
        AttributeType::Other => "other (sent as a string)",
    }
}

fn publish_details(service: &str, topic: &str, graph: &PermissionGraph) -> Details {
    let grant =
        graph.permissions(service).and_then(|p| p.publish.into_iter().find(|g| g.topic == topic));
    let items = grant
        .map(|g| {
            g.accesses
                .iter()
                .map(|a| {
                    let what = match a.kind {
                        AccessKind::Publish => "publish(...) call",
                        AccessKind::Ref => "ref<Publisher>() call",
                    };
                    let mut locations = vec![a.span.location()];
                    locations.extend(a.imported_at.iter().map(|s| s.location()));
                    item_at(what, locations)
                })
                .collect()
        })
        .unwrap_or_default();
    Details {
        kind: "publish",
        title: format!("{service} publishes to {topic}"),
        sections: vec![section("Why: the code that publishes", items)],
    }
}

fn subscription_details(topic: &str, name: &str, model: &AppModel) -> Details {
    let sub = model.topic(topic).and_then(|t| t.subscriptions.iter().find(|s| s.name == name));
    let Some(s) = sub else {
        return Details { kind: "subscription", title: name.to_string(), sections: Vec::new() };
    };
    let mut config = vec![
        item_at(
            format!("topic {topic}, consumed by service {}", s.service),
            vec![s.name_span.location()],
        ),
        item(format!("handler: {}", s.handler.as_deref().unwrap_or("(inline function)"))),
        item(format!("ack deadline: {}", format_ms(s.settings.ack_deadline_ms))),
        item(format!("message retention: {}", format_ms(s.settings.message_retention_ms))),
    ];
    config.push(item(match s.settings.max_concurrency {
        Some(n) => format!("max concurrency: {n}"),
        None => "max concurrency: unlimited".to_string(),
    }));
    let r = &s.settings.retry_policy;
    let retry = vec![
        item(format!("min backoff: {}", format_ms(r.min_backoff_ms))),
        item(format!("max backoff: {}", format_ms(r.max_backoff_ms))),
        item(format!("max retries: {}", r.max_retries)),
    ];
    let filter = match &s.settings.filter {
        Some(f) => f.iter().map(|(k, v)| item(format!("{k} = {}", v.join(" or ")))).collect(),
        None => vec![item("none: every message is delivered")],
    };
    let dlq = vec![item(format!(
        "after {} failed deliveries a message moves to the dead-letter queue of {name}",
        r.max_retries
    ))];
    Details {
        kind: "subscription",
        title: name.to_string(),
        sections: vec![
            section("Configuration", config),
            section("Retry policy", retry),
            section("Filter", filter),
            section("Dead-letter queue", dlq),
        ],
    }
}

fn dlq_details(topic: &str, subscription: &str, model: &AppModel) -> Details {
    let sub =
        model.topic(topic).and_then(|t| t.subscriptions.iter().find(|s| s.name == subscription));
    let items = match sub {
        Some(s) => vec![
            item_at(
                format!("dead letters of subscription {subscription} of {topic}"),
                vec![s.name_span.location()],
            ),
            item(format!(
                "a message lands here after {} failed deliveries",
                s.settings.retry_policy.max_retries
            )),
        ],
        None => Vec::new(),
    };
    Details {
        kind: "dead-letter queue",
        title: format!("{topic}/{subscription} DLQ"),
        sections: vec![section("Dead-letter queue", items)],
    }
}

/// The page of `diagram`, laid out as `layout`, for the app `app`.
pub fn render(
    app: &str,
    diagram: &Diagram,
    layout: &Layout,
    model: &AppModel,
    graph: &PermissionGraph,
) -> Result<String, String> {
    let svg = crate::svg::render(diagram, layout);
    let (nodes, edges) = details(diagram, model, graph);
    let data = serde_json::to_string(&PageData { app, nodes, edges })
        .map_err(|e| e.to_string())?
        // Inside <script>: no `</script>` or `<!--` can appear.
        .replace('<', "\\u003c");
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_template_string("page", PAGE).map_err(|e| e.to_string())?;
    let counts = format!(
        "{} services, {} topics",
        diagram.nodes.iter().filter(|n| matches!(n.kind, NodeKind::Service)).count(),
        diagram.nodes.iter().filter(|n| matches!(n.kind, NodeKind::Topic { .. })).count()
    );
    hb.render(
        "page",
        &serde_json::json!({ "app": app, "svg": svg, "data": data, "counts": counts }),
    )
    .map_err(|e| e.to_string())
}
