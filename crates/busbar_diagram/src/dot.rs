//! Graphviz DOT text: `dot -Tsvg diagram.dot > diagram.svg`.

use std::fmt::Write;

use busbar_model::PublishVia;

use crate::{Diagram, EdgeKind, NodeKind};

/// A DOT double-quoted string's content.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // DOT's centred line break.
            '\n' => out.push_str("\\n"),
            '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Lines, one under the other.
fn label(lines: &[String]) -> String {
    let lines: Vec<String> = lines.iter().map(|l| l.replace(['\n', '\r'], " ")).collect();
    quote(&lines.join("\n"))
}

/// The diagram as a DOT digraph, left to right.
pub fn render(diagram: &Diagram) -> String {
    let mut out = String::from("digraph busbar {\n");
    out.push_str("  rankdir=LR;\n");
    out.push_str("  node [fontname=\"DejaVu Sans Mono\", fontsize=11];\n");
    out.push_str("  edge [fontname=\"DejaVu Sans Mono\", fontsize=10];\n");
    let node_line = |out: &mut String, indent: &str, i: usize| {
        let node = &diagram.nodes[i];
        let mut text = vec![node.name.clone()];
        text.extend(node.badges());
        let style = match node.kind {
            NodeKind::Service => {
                "shape=box, style=filled, fillcolor=\"#e8f0fe\", color=\"#1a56db\""
            }
            NodeKind::Topic { shared: false, .. } => {
                "shape=box, style=\"rounded,filled\", fillcolor=\"#fdf3e1\", color=\"#b7791f\""
            }
            NodeKind::Topic { shared: true, .. } => {
                "shape=box, style=\"rounded,filled,dashed\", fillcolor=\"#fdf3e1\", color=\"#b7791f\""
            }
            NodeKind::DeadLetter { .. } => {
                "shape=cylinder, style=filled, fillcolor=\"#fde8e8\", color=\"#c81e1e\""
            }
        };
        let _ = writeln!(out, "{indent}{} [label={}, {style}];", node.id, label(&text));
    };
    let is_shared = |k: &NodeKind| matches!(k, NodeKind::Topic { shared: true, .. });
    for (i, node) in diagram.nodes.iter().enumerate() {
        if !is_shared(&node.kind) {
            node_line(&mut out, "  ", i);
        }
    }
    if diagram.nodes.iter().any(|n| is_shared(&n.kind)) {
        out.push_str("  subgraph cluster_shared {\n");
        out.push_str("    label=\"shared topics\";\n    style=dashed;\n    color=\"#b7791f\";\n");
        for (i, node) in diagram.nodes.iter().enumerate() {
            if is_shared(&node.kind) {
                node_line(&mut out, "    ", i);
            }
        }
        out.push_str("  }\n");
    }
    for edge in &diagram.edges {
        let style = match edge.kind {
            EdgeKind::Publish(PublishVia::Ref) => ", style=dashed",
            EdgeKind::DeadLetter { .. } => ", style=dotted, color=\"#c81e1e\"",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  {} -> {} [label={}{style}];",
            diagram.nodes[edge.from].id,
            diagram.nodes[edge.to].id,
            label(&edge.label_lines())
        );
    }
    out.push_str("}\n");
    out
}
