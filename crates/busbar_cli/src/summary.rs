//! The human summary of an app: services, then topics with their publishers and subscribers.

use std::fmt::Write;

use busbar_graph::PermissionGraph;
use busbar_model::{AppModel, DeliveryGuarantee, PublishVia};

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

pub(crate) fn render(model: &AppModel, graph: &PermissionGraph) -> String {
    let mut out = String::new();
    let subscriptions: usize = model.topics.iter().map(|t| t.subscriptions.len()).sum();
    let _ = writeln!(
        out,
        "{}, {}, {}",
        plural(model.services.len(), "service"),
        plural(model.topics.len(), "topic"),
        plural(subscriptions, "subscription")
    );
    if !model.services.is_empty() {
        let _ = writeln!(out, "\nservices");
        let width = model.services.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
        let root_width = model.services.iter().map(|s| s.root.chars().count()).max().unwrap_or(0);
        for s in &model.services {
            let origin = serde_json::to_value(s.origin)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(out, "  {:<width$}  {:<root_width$}  {origin}", s.name, s.root);
        }
    }
    if !model.topics.is_empty() {
        let _ = writeln!(out, "\ntopics");
    }
    for t in &model.topics {
        let mut traits = Vec::new();
        if t.delivery_guarantee == DeliveryGuarantee::ExactlyOnce {
            traits.push("exactly-once".to_string());
        }
        if let Some(attr) = &t.ordering_attribute {
            traits.push(format!("ordered by {attr}"));
        }
        let owner =
            t.service.as_deref().map(|s| format!("in {s}")).unwrap_or_else(|| "shared".to_string());
        let traits =
            if traits.is_empty() { String::new() } else { format!(" [{}]", traits.join(", ")) };
        let _ = writeln!(out, "  {}{traits}  ({owner}, {})", t.name, t.span.location());
        let publishers: Vec<String> = graph
            .publishers_of(&t.name)
            .into_iter()
            .map(
                |(s, via)| {
                    if via == PublishVia::Ref { format!("{s} (ref)") } else { s.to_string() }
                },
            )
            .collect();
        let _ = writeln!(
            out,
            "    publishers   {}",
            if publishers.is_empty() { "-".into() } else { publishers.join(", ") }
        );
        if t.subscriptions.is_empty() {
            let _ = writeln!(out, "    subscribers  -");
        }
        for (i, sub) in t.subscriptions.iter().enumerate() {
            let label = if i == 0 { "subscribers" } else { "" };
            let filter = sub
                .settings
                .filter
                .as_ref()
                .filter(|f| !f.is_empty())
                .map(|f| {
                    let parts: Vec<String> =
                        f.iter().map(|(k, v)| format!("{k}={}", v.join("|"))).collect();
                    format!(" [filter {}]", parts.join(" "))
                })
                .unwrap_or_default();
            let _ = writeln!(out, "    {label:<11}  {} -> {}{filter}", sub.name, sub.service);
        }
    }
    out
}
