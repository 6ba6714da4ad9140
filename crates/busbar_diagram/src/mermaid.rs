//! Mermaid `flowchart` text, as GitHub renders it in Markdown: services as boxes, topics as
//! stadiums, dead-letter queues as cylinders, shared topics in their own subgraph.

use std::fmt::Write;

use busbar_model::PublishVia;

use crate::{Diagram, EdgeKind, NodeKind};

/// Text inside a quoted Mermaid label: `"`, `#`, `<`, `>`, `|` and the rest Mermaid or its
/// HTML labels would read as syntax become entity codes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '|' => out.push_str("#124;"),
            '`' => out.push_str("#96;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn lines(lines: &[String]) -> String {
    lines.iter().map(|l| escape(l)).collect::<Vec<_>>().join("<br/>")
}

/// The diagram as a Mermaid flowchart, left to right.
pub fn render(diagram: &Diagram) -> String {
    let mut out = String::from("flowchart LR\n");
    let node_line = |out: &mut String, indent: &str, i: usize| {
        let node = &diagram.nodes[i];
        let mut text = vec![node.name.clone()];
        text.extend(node.badges());
        let label = lines(&text);
        let (open, close) = match node.kind {
            NodeKind::Service => ("[\"", "\"]"),
            NodeKind::Topic { .. } => ("([\"", "\"])"),
            NodeKind::DeadLetter { .. } => ("[(\"", "\")]"),
        };
        let _ = writeln!(out, "{indent}{}{open}{label}{close}", node.id);
    };
    let shared: Vec<usize> = (0..diagram.nodes.len())
        .filter(|&i| matches!(diagram.nodes[i].kind, NodeKind::Topic { shared: true, .. }))
        .collect();
    for i in 0..diagram.nodes.len() {
        if !shared.contains(&i) {
            node_line(&mut out, "  ", i);
        }
    }
    if !shared.is_empty() {
        out.push_str("  subgraph shared_topics[\"shared topics\"]\n");
        for &i in &shared {
            node_line(&mut out, "    ", i);
        }
        out.push_str("  end\n");
    }
    for edge in &diagram.edges {
        let arrow = match edge.kind {
            EdgeKind::Publish(PublishVia::Ref) | EdgeKind::DeadLetter { .. } => "-.->",
            _ => "-->",
        };
        let _ = writeln!(
            out,
            "  {} {arrow}|\"{}\"| {}",
            diagram.nodes[edge.from].id,
            lines(&edge.label_lines()),
            diagram.nodes[edge.to].id
        );
    }
    let class_of = |kind: &NodeKind| match kind {
        NodeKind::Service => "service",
        NodeKind::Topic { .. } => "topic",
        NodeKind::DeadLetter { .. } => "dlq",
    };
    let classes = [
        ("service", "fill:#e8f0fe,stroke:#1a56db,color:#0b2559"),
        ("topic", "fill:#fdf3e1,stroke:#b7791f,color:#4a2f05"),
        ("dlq", "fill:#fde8e8,stroke:#c81e1e,color:#5c0b0b"),
    ];
    for (class, style) in classes {
        let ids: Vec<&str> = diagram
            .nodes
            .iter()
            .filter(|n| class_of(&n.kind) == class)
            .map(|n| n.id.as_str())
            .collect();
        if !ids.is_empty() {
            let _ = writeln!(out, "  classDef {class} {style}");
            let _ = writeln!(out, "  class {} {class}", ids.join(","));
        }
    }
    out
}
