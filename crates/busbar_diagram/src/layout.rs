//! A layered (Sugiyama-style) layout, left to right, made so that nothing can overlap:
//!
//! 1. **Cycles** are broken by reversing the edges that go backwards in the vertex order of
//!    the Eades–Lin–Smyth heuristic (the arrow still points the right way when drawn). On the
//!    generated 50-service apps this gives diagrams half as wide as a depth-first search.
//! 2. **Layers**: every edge gets length two or more, longest path first, then sources are
//!    pulled next to their first successor. Services and topics sit on even layers; each
//!    edge's **label is a box of its own** on the odd layer after its start, and an edge that
//!    spans more layers gets a thin dummy box on each one it passes. So labels are placed like
//!    nodes, never on top of anything.
//! 3. **Order** within a layer: barycenter sweeps, keeping the order with the fewest crossings
//!    (counted exactly, by inversions).
//! 4. **Positions**: each layer is a column; in it, boxes keep their order and a minimum gap,
//!    and are moved as close as that allows to their neighbours' average (an exact least-squares
//!    fit under order constraints, by pool-adjacent-violators).
//! 5. **Edges** run horizontally inside a column, always within the height of their own box
//!    (boxes in one column never share a height), and diagonally only in the empty gaps between
//!    columns. An edge therefore never crosses a box it does not connect.
//!
//! Sizes come from a monospace font whose advance is at most [`CHAR_WIDTH`] per column of text
//! (DejaVu Sans Mono and Liberation Mono are 0.6 em).

use unicode_width::UnicodeWidthStr;

use crate::Diagram;

/// Font size of all text, in px.
pub const FONT_SIZE: f64 = 12.0;
/// Upper bound of a monospace character's advance at [`FONT_SIZE`].
pub const CHAR_WIDTH: f64 = 7.4;
/// Distance between two lines of text.
pub const LINE_HEIGHT: f64 = 15.0;
/// The ascent above the baseline and the descent below it, as used for text boxes.
pub const ASCENT: f64 = 11.0;
pub const DESCENT: f64 = 4.0;

const NODE_PAD_X: f64 = 12.0;
const NODE_PAD_Y: f64 = 8.0;
const LABEL_PAD_X: f64 = 4.0;
/// Room above a label's text for its edge to run through.
const LABEL_PORT: f64 = 8.0;
const DUMMY_HEIGHT: f64 = 4.0;
const GAP_Y: f64 = 12.0;
const GAP_X: f64 = 40.0;
const MARGIN: f64 = 16.0;

/// The width of `s` in px.
pub fn text_width(s: &str) -> f64 {
    s.width() as f64 * CHAR_WIDTH
}

/// An axis-aligned rectangle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.w
    }
    pub fn bottom(&self) -> f64 {
        self.y + self.h
    }
    /// The interiors intersect.
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.right() && o.x < self.right() && self.y < o.bottom() && o.y < self.bottom()
    }
}

/// A line of text: its baseline starts at `(x, y)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    pub x: f64,
    pub y: f64,
    pub text: String,
}

impl Text {
    /// The box the text takes.
    pub fn bounds(&self) -> Rect {
        Rect { x: self.x, y: self.y - ASCENT, w: text_width(&self.text), h: ASCENT + DESCENT }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlacedNode {
    pub rect: Rect,
    /// The name, then the badges.
    pub lines: Vec<Text>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlacedEdge {
    /// From the edge's source to its target: the first point is on the source's box, the
    /// last on the target's.
    pub points: Vec<(f64, f64)>,
    /// The box reserved for the label, and its lines.
    pub label: Rect,
    pub label_lines: Vec<Text>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    /// One per diagram node, in the same order.
    pub nodes: Vec<PlacedNode>,
    /// One per diagram edge, in the same order.
    pub edges: Vec<PlacedEdge>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Vkind {
    Node(usize),
    Label(usize),
    Dummy,
}

#[derive(Clone, Debug)]
struct Vertex {
    kind: Vkind,
    layer: usize,
    w: f64,
    h: f64,
    y: f64,
}

/// One hop of an edge chain, between adjacent layers.
#[derive(Clone, Copy, Debug)]
struct Segment {
    upper: usize,
    lower: usize,
}

fn node_lines(diagram: &Diagram, i: usize) -> Vec<String> {
    let node = &diagram.nodes[i];
    let mut lines = vec![node.name.clone()];
    let badges = node.badges();
    if !badges.is_empty() {
        lines.push(badges.join(" · "));
    }
    lines
}

fn block_size(lines: &[String], pad_x: f64) -> (f64, f64) {
    let w = lines.iter().map(|l| text_width(l)).fold(0.0, f64::max) + 2.0 * pad_x;
    (w, lines.len() as f64 * LINE_HEIGHT)
}

/// Lays out `diagram`. Deterministic: the same diagram gives the same numbers.
pub fn layout(diagram: &Diagram) -> Layout {
    let n = diagram.nodes.len();
    let mut vertices: Vec<Vertex> = (0..n)
        .map(|i| {
            let (w, h) = block_size(&node_lines(diagram, i), NODE_PAD_X);
            Vertex { kind: Vkind::Node(i), layer: 0, w, h: h + 2.0 * NODE_PAD_Y, y: 0.0 }
        })
        .collect();

    // 1. Break cycles.
    let ends: Vec<(usize, usize)> = diagram.edges.iter().map(|e| (e.from, e.to)).collect();
    let reversed = feedback_edges(n, &ends);
    let dag: Vec<(usize, usize)> =
        ends.iter().zip(&reversed).map(|(&(a, b), &r)| if r { (b, a) } else { (a, b) }).collect();

    // 2. Layers.
    let layers_of = assign_layers(n, &dag);
    for (v, layer) in vertices.iter_mut().zip(&layers_of) {
        v.layer = *layer;
    }

    // Edge chains: label on the layer after the start, dummies on the rest.
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(dag.len());
    for (e, &(a, b)) in dag.iter().enumerate() {
        let (w, h) = block_size(&diagram.edges[e].label_lines(), LABEL_PAD_X);
        let mut chain = vec![a];
        let label = vertices.len();
        vertices.push(Vertex {
            kind: Vkind::Label(e),
            layer: layers_of[a] + 1,
            w,
            h: h + LABEL_PORT,
            y: 0.0,
        });
        chain.push(label);
        for layer in layers_of[a] + 2..layers_of[b] {
            chain.push(vertices.len());
            vertices.push(Vertex { kind: Vkind::Dummy, layer, w: 0.0, h: DUMMY_HEIGHT, y: 0.0 });
        }
        chain.push(b);
        chains.push(chain);
    }
    let segments: Vec<Segment> = chains
        .iter()
        .flat_map(|c| c.windows(2).map(|w| Segment { upper: w[0], lower: w[1] }))
        .collect();

    // 3. Order.
    let layer_count = vertices.iter().map(|v| v.layer + 1).max().unwrap_or(0);
    let layers = order(&vertices, &segments, layer_count);

    // 4. Positions.
    place_vertically(&mut vertices, &layers, &segments);
    let columns = place_columns(&vertices, &layers);

    // 5. Draw.
    let ports = ports(&vertices, &segments);
    let rect_of = |v: usize| {
        let vx = &vertices[v];
        let (left, right) = columns[vx.layer];
        let x = round(left + (right - left - vx.w) / 2.0);
        Rect { x, y: round(vx.y - vx.h / 2.0), w: round(vx.w), h: round(vx.h) }
    };
    let nodes: Vec<PlacedNode> = (0..n)
        .map(|i| {
            let rect = rect_of(i);
            let lines = node_lines(diagram, i);
            let top = rect.y + (rect.h - lines.len() as f64 * LINE_HEIGHT) / 2.0;
            let lines = text_block(&lines, rect.x + NODE_PAD_X, top, rect.w - 2.0 * NODE_PAD_X);
            PlacedNode { rect, lines }
        })
        .collect();
    let mut edges = Vec::with_capacity(chains.len());
    let mut seg_index = 0;
    for (e, chain) in chains.iter().enumerate() {
        let mut points: Vec<(f64, f64)> = Vec::new();
        for _ in chain.windows(2) {
            let Segment { upper, lower } = segments[seg_index];
            let (out_y, in_y) = ports[seg_index];
            seg_index += 1;
            let (u, l) = (rect_of(upper), rect_of(lower));
            let u_col = columns[vertices[upper].layer];
            let l_col = columns[vertices[lower].layer];
            points.push((u.right(), out_y));
            points.push((u_col.1, out_y));
            points.push((l_col.0, in_y));
            points.push((l.x, in_y));
        }
        let label_v = chain[1];
        let label = rect_of(label_v);
        let lines = diagram.edges[e].label_lines();
        let label_lines = text_block(
            &lines,
            label.x + LABEL_PAD_X,
            label.y + LABEL_PORT,
            label.w - 2.0 * LABEL_PAD_X,
        );
        let mut points = simplify(points);
        if reversed[e] {
            points.reverse();
        }
        edges.push(PlacedEdge { points, label, label_lines });
    }
    let width = columns.last().map(|c| c.1 + MARGIN).unwrap_or(2.0 * MARGIN);
    let height = vertices.iter().map(|v| v.y + v.h / 2.0).fold(0.0, f64::max).max(MARGIN) + MARGIN;
    Layout { width: round(width), height: round(height), nodes, edges }
}

/// Lines of text in a block whose top is `top`, each centred in `width` from `left`.
fn text_block(lines: &[String], left: f64, top: f64, width: f64) -> Vec<Text> {
    lines
        .iter()
        .enumerate()
        .map(|(k, line)| Text {
            x: round(left + (width - text_width(line)) / 2.0),
            y: round(
                top + k as f64 * LINE_HEIGHT + (LINE_HEIGHT - ASCENT - DESCENT) / 2.0 + ASCENT,
            ),
            text: line.clone(),
        })
        .collect()
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Drops repeated points and the middle of three collinear points.
fn simplify(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(points.len());
    for p in points {
        let p = (round(p.0), round(p.1));
        if out.last() == Some(&p) {
            continue;
        }
        if out.len() >= 2 {
            let (a, b) = (out[out.len() - 2], out[out.len() - 1]);
            let cross = (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0);
            if cross.abs() < 1e-9 {
                out.pop();
            }
        }
        out.push(p);
    }
    out
}

/// Which edges to reverse: those going backwards in the vertex order of the greedy heuristic
/// of Eades, Lin and Smyth (sinks to the end, sources to the front, otherwise the vertex with
/// the most outgoing minus incoming edges next), which keeps the reversed set small.
fn feedback_edges(n: usize, edges: &[(usize, usize)]) -> Vec<bool> {
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut in_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (e, &(a, b)) in edges.iter().enumerate() {
        if a != b {
            out_edges[a].push(e);
            in_edges[b].push(e);
        }
    }
    let mut indeg: Vec<usize> = in_edges.iter().map(Vec::len).collect();
    let mut outdeg: Vec<usize> = out_edges.iter().map(Vec::len).collect();
    let mut removed = vec![false; n];
    let mut front: Vec<usize> = Vec::with_capacity(n);
    let mut back: Vec<usize> = Vec::new();
    let mut left = n;
    let remove =
        |v: usize, removed: &mut Vec<bool>, indeg: &mut Vec<usize>, outdeg: &mut Vec<usize>| {
            removed[v] = true;
            for &e in &out_edges[v] {
                indeg[edges[e].1] -= 1;
            }
            for &e in &in_edges[v] {
                outdeg[edges[e].0] -= 1;
            }
        };
    while left > 0 {
        let mut changed = true;
        while changed {
            changed = false;
            for v in 0..n {
                if !removed[v] && outdeg[v] == 0 {
                    remove(v, &mut removed, &mut indeg, &mut outdeg);
                    back.push(v);
                    left -= 1;
                    changed = true;
                } else if !removed[v] && indeg[v] == 0 {
                    remove(v, &mut removed, &mut indeg, &mut outdeg);
                    front.push(v);
                    left -= 1;
                    changed = true;
                }
            }
        }
        if let Some(v) = (0..n)
            .filter(|&v| !removed[v])
            .max_by_key(|&v| (outdeg[v] as isize - indeg[v] as isize, std::cmp::Reverse(v)))
        {
            remove(v, &mut removed, &mut indeg, &mut outdeg);
            front.push(v);
            left -= 1;
        }
    }
    let mut rank = vec![0usize; n];
    for (k, &v) in front.iter().chain(back.iter().rev()).enumerate() {
        rank[v] = k;
    }
    edges.iter().map(|&(a, b)| rank[a] > rank[b]).collect()
}

/// Longest-path layers with every edge two layers long at least; then each source moves up to
/// two layers before its nearest successor.
fn assign_layers(n: usize, dag: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in dag {
        indegree[b] += 1;
        succ[a].push(b);
    }
    let sources: Vec<bool> = indegree.iter().map(|&d| d == 0).collect();
    let mut layer = vec![0usize; n];
    let mut ready: std::collections::VecDeque<usize> =
        (0..n).filter(|&v| indegree[v] == 0).collect();
    let mut topo = Vec::with_capacity(n);
    while let Some(v) = ready.pop_front() {
        topo.push(v);
        for &w in &succ[v] {
            layer[w] = layer[w].max(layer[v] + 2);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.push_back(w);
            }
        }
    }
    for &v in topo.iter().rev() {
        if sources[v]
            && let Some(min) = succ[v].iter().map(|&w| layer[w]).min()
        {
            layer[v] = min.saturating_sub(2);
        }
    }
    layer
}

/// The order of the vertices in each layer, with few crossings.
fn order(vertices: &[Vertex], segments: &[Segment], layer_count: usize) -> Vec<Vec<usize>> {
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for (v, vx) in vertices.iter().enumerate() {
        layers[vx.layer].push(v);
    }
    // Neighbours in the layer before and the layer after.
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); vertices.len()];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); vertices.len()];
    for s in segments {
        down[s.upper].push(s.lower);
        up[s.lower].push(s.upper);
    }
    let mut pos = vec![0.0f64; vertices.len()];
    let set_positions = |layers: &[Vec<usize>], pos: &mut [f64]| {
        for layer in layers {
            for (k, &v) in layer.iter().enumerate() {
                pos[v] = k as f64;
            }
        }
    };
    // Initial order: a first downward sweep from the index order.
    set_positions(&layers, &mut pos);
    sweep(&mut layers, &mut pos, &up, true);
    let mut best = layers.clone();
    let mut best_crossings = crossings(&layers, &down, &pos);
    for round in 0..24 {
        sweep(&mut layers, &mut pos, if round % 2 == 0 { &down } else { &up }, round % 2 == 1);
        let c = crossings(&layers, &down, &pos);
        if c < best_crossings {
            best_crossings = c;
            best = layers.clone();
        }
        if best_crossings == 0 {
            break;
        }
    }
    best
}

/// Reorders every layer by the mean position of its neighbours in `reference` (the layer
/// before when going down, after when going up). A vertex without such neighbours keeps its
/// place.
fn sweep(layers: &mut [Vec<usize>], pos: &mut [f64], reference: &[Vec<usize>], downward: bool) {
    let count = layers.len();
    for step in 0..count {
        let l = if downward { step } else { count - 1 - step };
        let layer = &mut layers[l];
        let mut keyed: Vec<(f64, usize, usize)> = layer
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let ns = &reference[v];
                let key = if ns.is_empty() {
                    k as f64
                } else {
                    ns.iter().map(|&w| pos[w]).sum::<f64>() / ns.len() as f64
                };
                (key, k, v)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (k, &(_, _, v)) in keyed.iter().enumerate() {
            layer[k] = v;
            pos[v] = k as f64;
        }
    }
}

/// The number of crossing segment pairs between every two adjacent layers.
fn crossings(layers: &[Vec<usize>], down: &[Vec<usize>], pos: &[f64]) -> usize {
    let mut total = 0;
    for l in 0..layers.len().saturating_sub(1) {
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for &v in &layers[l] {
            for &w in &down[v] {
                pairs.push((pos[v] as usize, pos[w] as usize));
            }
        }
        pairs.sort_unstable();
        // Inversions of the lower positions, with a Fenwick tree.
        let size = layers[l + 1].len() + 1;
        let mut tree = vec![0usize; size + 1];
        for (seen, &(_, lower)) in pairs.iter().enumerate() {
            // How many earlier segments end after `lower`.
            let mut i = lower + 1;
            let mut not_after = 0;
            while i > 0 {
                not_after += tree[i];
                i -= i & i.wrapping_neg();
            }
            total += seen - not_after;
            let mut i = lower + 1;
            while i <= size {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

/// Vertical centres: each layer keeps its order and gaps, and is pulled towards its
/// neighbours.
fn place_vertically(vertices: &mut [Vertex], layers: &[Vec<usize>], segments: &[Segment]) {
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); vertices.len()];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); vertices.len()];
    for s in segments {
        down[s.upper].push(s.lower);
        up[s.lower].push(s.upper);
    }
    // Start packed from the top.
    for layer in layers {
        let mut y = 0.0;
        for &v in layer {
            vertices[v].y = y + vertices[v].h / 2.0;
            y += vertices[v].h + GAP_Y;
        }
    }
    let count = layers.len();
    for round in 0..12 {
        let both = round >= 8;
        let downward = round % 2 == 0;
        for step in 0..count {
            let l = if downward { step } else { count - 1 - step };
            let layer = &layers[l];
            let desired: Vec<f64> = layer
                .iter()
                .map(|&v| {
                    let mut ns: Vec<usize> = Vec::new();
                    if both || downward {
                        ns.extend(&up[v]);
                    }
                    if both || !downward {
                        ns.extend(&down[v]);
                    }
                    if ns.is_empty() {
                        vertices[v].y
                    } else {
                        ns.iter().map(|&w| vertices[w].y).sum::<f64>() / ns.len() as f64
                    }
                })
                .collect();
            let heights: Vec<f64> = layer.iter().map(|&v| vertices[v].h).collect();
            let placed = fit_in_order(&desired, &heights);
            for (&v, y) in layer.iter().zip(placed) {
                vertices[v].y = y;
            }
        }
    }
    // Move everything below the top margin.
    let top = vertices.iter().map(|v| v.y - v.h / 2.0).fold(f64::INFINITY, f64::min);
    if top.is_finite() {
        for v in vertices.iter_mut() {
            v.y = round(v.y - top + MARGIN);
        }
    }
}

/// The centres closest (least squares) to `desired` that keep the order and leave `GAP_Y`
/// between neighbouring boxes: isotonic regression by pool-adjacent-violators on the centres
/// minus their minimum offsets.
fn fit_in_order(desired: &[f64], heights: &[f64]) -> Vec<f64> {
    let mut offsets = Vec::with_capacity(desired.len());
    let mut offset = 0.0;
    for (k, h) in heights.iter().enumerate() {
        if k > 0 {
            offset += (heights[k - 1] + h) / 2.0 + GAP_Y;
        }
        offsets.push(offset);
    }
    // Blocks of (sum, count), each block's value is its mean.
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for (d, o) in desired.iter().zip(&offsets) {
        blocks.push((d - o, 1));
        while blocks.len() >= 2 {
            let (s2, c2) = blocks[blocks.len() - 1];
            let (s1, c1) = blocks[blocks.len() - 2];
            if s1 / c1 as f64 > s2 / c2 as f64 {
                blocks.pop();
                let last = blocks.len() - 1;
                blocks[last] = (s1 + s2, c1 + c2);
            } else {
                break;
            }
        }
    }
    let mut out = Vec::with_capacity(desired.len());
    for (s, c) in blocks {
        for _ in 0..c {
            out.push(s / c as f64 + offsets[out.len()]);
        }
    }
    out
}

/// The left and right edge of every layer's column.
fn place_columns(vertices: &[Vertex], layers: &[Vec<usize>]) -> Vec<(f64, f64)> {
    let mut x = MARGIN;
    layers
        .iter()
        .map(|layer| {
            let w = layer.iter().map(|&v| vertices[v].w).fold(0.0, f64::max);
            let column = (x, x + w);
            x += w + GAP_X;
            column
        })
        .collect()
}

/// Where each segment leaves its upper vertex and enters its lower one: spread over the
/// height of a node, in the order of the other ends; a label's edge runs through the room
/// above its text; a dummy's through its middle.
fn ports(vertices: &[Vertex], segments: &[Segment]) -> Vec<(f64, f64)> {
    let mut out_of: Vec<Vec<usize>> = vec![Vec::new(); vertices.len()];
    let mut into: Vec<Vec<usize>> = vec![Vec::new(); vertices.len()];
    for (k, s) in segments.iter().enumerate() {
        out_of[s.upper].push(k);
        into[s.lower].push(k);
    }
    let mut result = vec![(0.0, 0.0); segments.len()];
    let spread =
        |v: usize, list: &mut Vec<usize>, other: &dyn Fn(usize) -> usize| -> Vec<(usize, f64)> {
            let vx = &vertices[v];
            list.sort_by(|&a, &b| {
                vertices[other(a)].y.total_cmp(&vertices[other(b)].y).then(a.cmp(&b))
            });
            let top = vx.y - vx.h / 2.0;
            list.iter()
                .enumerate()
                .map(|(k, &seg)| {
                    let y = match vx.kind {
                        Vkind::Node(_) => top + (k + 1) as f64 * vx.h / (list.len() + 1) as f64,
                        Vkind::Label(_) => top + LABEL_PORT / 2.0,
                        Vkind::Dummy => vx.y,
                    };
                    (seg, round(y))
                })
                .collect()
        };
    for v in 0..vertices.len() {
        for (seg, y) in spread(v, &mut out_of[v], &|s| segments[s].lower) {
            result[seg].0 = y;
        }
        for (seg, y) in spread(v, &mut into[v], &|s| segments[s].upper) {
            result[seg].1 = y;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_order_and_gaps() {
        let placed = fit_in_order(&[10.0, 10.0, 10.0], &[20.0, 20.0, 20.0]);
        assert_eq!(placed, vec![-22.0, 10.0, 42.0]);
        let placed = fit_in_order(&[0.0, 100.0], &[20.0, 20.0]);
        assert_eq!(placed, vec![0.0, 100.0]);
    }

    #[test]
    fn crossings_are_counted() {
        // Two vertices on each of two layers, connected crosswise: one crossing.
        let layers = vec![vec![0, 1], vec![2, 3]];
        let down = vec![vec![3], vec![2], vec![], vec![]];
        let pos = vec![0.0, 1.0, 0.0, 1.0];
        assert_eq!(crossings(&layers, &down, &pos), 1);
        let down = vec![vec![2], vec![3], vec![], vec![]];
        assert_eq!(crossings(&layers, &down, &pos), 0);
    }

    #[test]
    fn a_cycle_is_broken_once() {
        let reversed = feedback_edges(2, &[(0, 1), (1, 0)]);
        assert_eq!(reversed.iter().filter(|&&r| r).count(), 1);
    }
}
