//! The laid-out diagram as a standalone SVG document.
//!
//! Every box is a `<rect class="box">` inside a `<g class="node" data-node="ID">`, every edge a
//! `<path class="line">` inside a `<g class="edge" data-edge="K">` with its label's
//! `<text class="label">` lines, so the HTML page (and the tests) can find them.

use std::fmt::Write;

use busbar_model::PublishVia;

use crate::layout::{self, FONT_SIZE, Layout, Text};
use crate::{Diagram, EdgeKind, NodeKind};

/// Text for XML content and attribute values.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 does not allow at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
text{text-rendering:geometricPrecision}\
.node .box{stroke-width:1.5}\
.service .box{fill:#e8f0fe;stroke:#1a56db}\
.topic .box{fill:#fdf3e1;stroke:#b7791f}\
.topic.shared .box{fill:#fff8e6;stroke-dasharray:5 3}\
.dlq .box{fill:#fde8e8;stroke:#c81e1e}\
.node text{fill:#111827}\
.node text.badge{fill:#6b4a10}\
.edge .line{fill:none;stroke:#4b5563;stroke-width:1.2}\
.edge.ref .line{stroke-dasharray:6 3}\
.edge.subscribe .line{stroke:#1f7a4d}\
.edge.dead-letter .line{stroke:#c81e1e;stroke-dasharray:2 3}\
.edge text.label{fill:#374151}\
.edge.subscribe text.label{fill:#14532d}\
.edge .label-bg{fill:#ffffff;fill-opacity:0.85}\
";

fn text(out: &mut String, class: &str, t: &Text) {
    let _ = write!(
        out,
        "<text class=\"{class}\" x=\"{}\" y=\"{}\">{}</text>",
        t.x,
        t.y,
        xml_escape(&t.text)
    );
}

/// Renders `diagram` laid out as `layout`.
pub fn render(diagram: &Diagram, layout: &Layout) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"busbar-diagram\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"'DejaVu Sans Mono','Liberation Mono',monospace\" font-size=\"{FONT_SIZE}\">",
        w = layout.width,
        h = layout.height
    );
    let _ = writeln!(out, "<style>{STYLE}</style>");
    out.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" markerUnits=\"userSpaceOnUse\" orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\" fill=\"context-stroke\"/></marker></defs>\n",
    );
    out.push_str("<rect class=\"background\" x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");
    out.push_str("<g class=\"edges\">\n");
    for (k, (edge, placed)) in diagram.edges.iter().zip(&layout.edges).enumerate() {
        let class = match edge.kind {
            EdgeKind::Publish(PublishVia::Publish) => "publish",
            EdgeKind::Publish(PublishVia::Ref) => "publish ref",
            EdgeKind::Subscribe { .. } => "subscribe",
            EdgeKind::DeadLetter { .. } => "dead-letter",
        };
        let from = &diagram.nodes[edge.from].id;
        let to = &diagram.nodes[edge.to].id;
        let _ = write!(
            out,
            "<g class=\"edge {class}\" data-edge=\"{k}\" data-from=\"{from}\" data-to=\"{to}\">"
        );
        let mut d = String::new();
        for (i, (x, y)) in placed.points.iter().enumerate() {
            let _ = write!(d, "{}{x},{y}", if i == 0 { "M" } else { "L" });
        }
        let _ = write!(out, "<path class=\"line\" d=\"{d}\" marker-end=\"url(#arrow)\"/>");
        if let Some(bounds) =
            placed.label_lines.iter().map(Text::bounds).reduce(|a, b| layout::Rect {
                x: a.x.min(b.x),
                y: a.y.min(b.y),
                w: a.right().max(b.right()) - a.x.min(b.x),
                h: a.bottom().max(b.bottom()) - a.y.min(b.y),
            })
        {
            let _ = write!(
                out,
                "<rect class=\"label-bg\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
                round(bounds.x),
                round(bounds.y),
                round(bounds.w),
                round(bounds.h)
            );
        }
        for line in &placed.label_lines {
            text(&mut out, "label", line);
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n<g class=\"nodes\">\n");
    for (node, placed) in diagram.nodes.iter().zip(&layout.nodes) {
        let (class, rx): (&str, f64) = match node.kind {
            NodeKind::Service => ("service", 3.0),
            NodeKind::Topic { shared: false, .. } => ("topic", 12.0),
            NodeKind::Topic { shared: true, .. } => ("topic shared", 12.0),
            NodeKind::DeadLetter { .. } => ("dlq", 8.0),
        };
        let _ = write!(
            out,
            "<g class=\"node {class}\" data-node=\"{}\" data-name=\"{}\"><title>{}</title>",
            node.id,
            xml_escape(&node.name),
            xml_escape(&node.name)
        );
        let r = placed.rect;
        let _ = write!(
            out,
            "<rect class=\"box\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\"/>",
            r.x,
            r.y,
            round(r.w),
            round(r.h),
            round(rx.min(r.w / 2.0))
        );
        for (i, line) in placed.lines.iter().enumerate() {
            text(&mut out, if i == 0 { "name" } else { "badge" }, line);
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n</svg>\n");
    out
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
