//! Reads a diagram SVG back with an XML parser and checks its geometry from the document
//! alone: every box (`g.node > rect.box`), every line of text, every edge path. Text boxes are
//! computed here from the text, its position and the font size, with a monospace advance of
//! 0.61 em (DejaVu Sans Mono and Liberation Mono are 0.60 em), independently of the layout code.

use unicode_width::UnicodeWidthStr;

const ADVANCE_EM: f64 = 0.61;
/// Above and below the baseline, in em (DejaVu Sans Mono: 0.76 ascent, 0.24 descent).
const ASCENT_EM: f64 = 0.77;
const DESCENT_EM: f64 = 0.25;
/// Rounding in the SVG is to 0.1 px.
const EPS: f64 = 0.05;

#[derive(Clone, Copy, Debug)]
struct Rect {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Rect {
    fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 - EPS && o.x0 < self.x1 - EPS && self.y0 < o.y1 - EPS && o.y0 < self.y1 - EPS
    }
    fn contains(&self, o: &Rect) -> bool {
        o.x0 >= self.x0 - EPS
            && o.x1 <= self.x1 + EPS
            && o.y0 >= self.y0 - EPS
            && o.y1 <= self.y1 + EPS
    }
    fn on_boundary(&self, (x, y): (f64, f64)) -> bool {
        let inside =
            x >= self.x0 - EPS && x <= self.x1 + EPS && y >= self.y0 - EPS && y <= self.y1 + EPS;
        let near_side = (x - self.x0).abs() < EPS
            || (x - self.x1).abs() < EPS
            || (y - self.y0).abs() < EPS
            || (y - self.y1).abs() < EPS;
        inside && near_side
    }
    /// The segment passes through the interior (shrunk by `EPS`), by Liang–Barsky clipping.
    fn crossed_by(&self, (ax, ay): (f64, f64), (bx, by): (f64, f64)) -> bool {
        let (x0, y0, x1, y1) = (self.x0 + EPS, self.y0 + EPS, self.x1 - EPS, self.y1 - EPS);
        if x0 >= x1 || y0 >= y1 {
            return false;
        }
        let (dx, dy) = (bx - ax, by - ay);
        let mut t0: f64 = 0.0;
        let mut t1: f64 = 1.0;
        for (p, q) in [(-dx, ax - x0), (dx, x1 - ax), (-dy, ay - y0), (dy, y1 - ay)] {
            if p == 0.0 {
                if q < 0.0 {
                    return false;
                }
            } else {
                let t = q / p;
                if p < 0.0 {
                    t0 = t0.max(t);
                } else {
                    t1 = t1.min(t);
                }
            }
        }
        t0 < t1
    }
}

struct Text {
    rect: Rect,
    text: String,
    /// The node or edge it belongs to.
    owner: String,
}

/// An edge path: its name, the ids of its two ends, its points.
struct EdgePath {
    name: String,
    from: String,
    to: String,
    points: Vec<(f64, f64)>,
}

/// What a check counted.
#[derive(Debug, Default)]
pub struct Counts {
    pub boxes: usize,
    pub texts: usize,
    pub edges: usize,
    pub segments: usize,
}

fn num(node: roxmltree::Node, attr: &str) -> Result<f64, String> {
    node.attribute(attr)
        .ok_or_else(|| format!("<{}> has no {attr}", node.tag_name().name()))?
        .parse()
        .map_err(|e| format!("{attr}: {e}"))
}

fn has_class(node: roxmltree::Node, class: &str) -> bool {
    node.attribute("class").is_some_and(|c| c.split_whitespace().any(|k| k == class))
}

fn path_points(d: &str) -> Result<Vec<(f64, f64)>, String> {
    let mut points = Vec::new();
    for (i, part) in d.split(['M', 'L']).filter(|s| !s.is_empty()).enumerate() {
        let (x, y) = part.split_once(',').ok_or_else(|| format!("bad path point `{part}`"))?;
        let p = (
            x.trim().parse::<f64>().map_err(|e| e.to_string())?,
            y.trim().parse::<f64>().map_err(|e| e.to_string())?,
        );
        if i == 0 && !d.starts_with('M') {
            return Err(format!("path does not start with M: {d}"));
        }
        points.push(p);
    }
    Ok(points)
}

/// Checks that no two boxes overlap, every node's text lies in its own box, no text overlaps
/// another text or any other box, and no edge segment passes through a box other than its
/// two ends or through any text; edges start and end on their boxes.
pub fn check(svg: &str) -> Result<Counts, String> {
    let doc = roxmltree::Document::parse(svg).map_err(|e| format!("not well-formed XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "svg" {
        return Err("the root is not <svg>".into());
    }
    let font_size = num(root, "font-size")?;
    let family = root.attribute("font-family").unwrap_or("");
    if !family.ends_with("monospace") {
        return Err(format!("font-family `{family}` is not monospace"));
    }
    let mut boxes: Vec<(String, Rect)> = Vec::new();
    let mut texts: Vec<Text> = Vec::new();
    let mut edges: Vec<EdgePath> = Vec::new();
    for g in root.descendants().filter(|n| n.has_tag_name("g")) {
        let owner = if let Some(id) = g.attribute("data-node") {
            id.to_string()
        } else if let Some(k) = g.attribute("data-edge") {
            format!("edge {k}")
        } else {
            continue;
        };
        for child in g.children().filter(|n| n.is_element()) {
            match child.tag_name().name() {
                "rect" if has_class(child, "box") => {
                    let (x, y) = (num(child, "x")?, num(child, "y")?);
                    let (w, h) = (num(child, "width")?, num(child, "height")?);
                    boxes.push((owner.clone(), Rect { x0: x, y0: y, x1: x + w, y1: y + h }));
                }
                "text" => {
                    if child.attribute("text-anchor").is_some_and(|a| a != "start") {
                        return Err("text is anchored other than at its start".into());
                    }
                    let text = child.text().unwrap_or("").to_string();
                    let (x, y) = (num(child, "x")?, num(child, "y")?);
                    let w = text.width() as f64 * ADVANCE_EM * font_size;
                    let rect = Rect {
                        x0: x,
                        y0: y - ASCENT_EM * font_size,
                        x1: x + w,
                        y1: y + DESCENT_EM * font_size,
                    };
                    texts.push(Text { rect, text, owner: owner.clone() });
                }
                "path" if has_class(child, "line") => {
                    let from = g.attribute("data-from").ok_or("edge without data-from")?;
                    let to = g.attribute("data-to").ok_or("edge without data-to")?;
                    let d = child.attribute("d").ok_or("path without d")?;
                    edges.push(EdgePath {
                        name: owner.clone(),
                        from: from.into(),
                        to: to.into(),
                        points: path_points(d)?,
                    });
                }
                _ => {}
            }
        }
    }
    for (i, (a, ra)) in boxes.iter().enumerate() {
        for (b, rb) in &boxes[i + 1..] {
            if ra.overlaps(rb) {
                return Err(format!("boxes {a} and {b} overlap: {ra:?} {rb:?}"));
            }
        }
    }
    for (i, t) in texts.iter().enumerate() {
        for (owner, r) in &boxes {
            if *owner == t.owner {
                if !r.contains(&t.rect) {
                    return Err(format!("`{}` sticks out of its box {owner}", t.text));
                }
            } else if r.overlaps(&t.rect) {
                return Err(format!("`{}` ({}) lies on box {owner}", t.text, t.owner));
            }
        }
        for u in &texts[i + 1..] {
            if t.rect.overlaps(&u.rect) {
                return Err(format!("labels `{}` and `{}` overlap", t.text, u.text));
            }
        }
    }
    let box_of = |id: &str| boxes.iter().find(|(o, _)| o == id).map(|(_, r)| *r);
    let mut segments = 0;
    for EdgePath { name: edge, from, to, points } in &edges {
        if points.len() < 2 {
            return Err(format!("{edge} has fewer than two points"));
        }
        let (Some(rf), Some(rt)) = (box_of(from), box_of(to)) else {
            return Err(format!("{edge} connects a node that is not drawn"));
        };
        if !rf.on_boundary(points[0]) || !rt.on_boundary(points[points.len() - 1]) {
            return Err(format!("{edge} does not start on {from} and end on {to}"));
        }
        for w in points.windows(2) {
            segments += 1;
            for (owner, r) in &boxes {
                if owner != from && owner != to && r.crossed_by(w[0], w[1]) {
                    return Err(format!("{edge} ({from} → {to}) crosses box {owner}"));
                }
            }
            for t in &texts {
                if t.rect.crossed_by(w[0], w[1]) {
                    return Err(format!("{edge} ({from} → {to}) crosses the text `{}`", t.text));
                }
            }
        }
    }
    Ok(Counts { boxes: boxes.len(), texts: texts.len(), edges: edges.len(), segments })
}
