//! Where things are drawn: node boxes, port anchors, arrow paths, the view's transform,
//! "fit to screen", the automatic layout and arrow-key navigation. Pure functions of the flow,
//! so the canvas never measures the DOM and the rules are tested natively.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use flows::Flow;
use flows::model::{Node, NodeId, Position};

use crate::editor::Op;

pub const NODE_WIDTH: f64 = 220.0;
/// Title row and one line of summary.
pub const NODE_HEAD: f64 = 56.0;
/// One row per exit.
pub const PORT_ROW: f64 = 22.0;
pub const GRID: f64 = 20.0;

/// The height of a node's box: its head and a row per exit (at least one row, so that a node
/// without exits still has a body).
pub fn node_height(node: &Node) -> f64 {
    NODE_HEAD + PORT_ROW * node.kind.ports().len().max(1) as f64 + 6.0
}

/// Where arrows arrive: the middle of the box's left edge at title height.
pub fn input_anchor(at: Position) -> Position {
    Position {
        x: at.x,
        y: at.y + 18.0,
    }
}

/// Where arrows leave exit number `index`: the right edge, on the exit's row.
pub fn output_anchor(at: Position, index: usize) -> Position {
    Position {
        x: at.x + NODE_WIDTH,
        y: at.y + NODE_HEAD + PORT_ROW * index as f64 + PORT_ROW / 2.0,
    }
}

/// An SVG path from an exit to an entry: a cubic curve that leaves rightwards and arrives
/// from the left, also when the target is behind the source.
pub fn arrow_path(from: Position, to: Position) -> String {
    let dx = ((to.x - from.x).abs() / 2.0).max(50.0);
    format!(
        "M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
        from.x,
        from.y,
        from.x + dx,
        from.y,
        to.x - dx,
        to.y,
        to.x,
        to.y
    )
}

/// The canvas' transform: world point `p` is drawn at `p * zoom + (x, y)` screen pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub x: f64,
    pub y: f64,
    pub zoom: f64,
}

pub const MIN_ZOOM: f64 = 0.1;
pub const MAX_ZOOM: f64 = 2.5;

impl Default for View {
    fn default() -> View {
        View {
            x: 40.0,
            y: 40.0,
            zoom: 1.0,
        }
    }
}

impl View {
    pub fn to_world(self, screen: Position) -> Position {
        Position {
            x: (screen.x - self.x) / self.zoom,
            y: (screen.y - self.y) / self.zoom,
        }
    }

    /// Zooms by `factor` keeping the world point under `screen` where it is.
    pub fn zoom_at(self, screen: Position, factor: f64) -> View {
        let zoom = (self.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        let world = self.to_world(screen);
        View {
            x: screen.x - world.x * zoom,
            y: screen.y - world.y * zoom,
            zoom,
        }
    }

    /// The view that shows world point `p` in the middle of a `width` × `height` canvas.
    pub fn centered_on(self, p: Position, width: f64, height: f64) -> View {
        View {
            x: width / 2.0 - p.x * self.zoom,
            y: height / 2.0 - p.y * self.zoom,
            zoom: self.zoom,
        }
    }
}

/// A rectangle in world units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// Where node `id` is drawn (the origin when it has no layout entry).
pub fn position(flow: &Flow, id: &str) -> Position {
    flow.layout.nodes.get(id).copied().unwrap_or_default()
}

/// The box around every node and comment, or `None` for an empty flow.
pub fn bounds(flow: &Flow) -> Option<Rect> {
    let boxes = flow
        .nodes
        .iter()
        .map(|n| {
            let p = position(flow, &n.id);
            (p, NODE_WIDTH, node_height(n))
        })
        .chain(
            flow.layout
                .comments
                .iter()
                .map(|c| (c.position, 200.0, 80.0)),
        );
    let mut out: Option<(f64, f64, f64, f64)> = None;
    for (p, w, h) in boxes {
        let (x0, y0, x1, y1) = out.unwrap_or((p.x, p.y, p.x + w, p.y + h));
        out = Some((x0.min(p.x), y0.min(p.y), x1.max(p.x + w), y1.max(p.y + h)));
    }
    out.map(|(x0, y0, x1, y1)| Rect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    })
}

/// The view that shows the whole flow in a `width` × `height` canvas with a margin, never
/// zoomed in beyond 100 %.
pub fn fit(flow: &Flow, width: f64, height: f64) -> View {
    let Some(b) = bounds(flow) else {
        return View::default();
    };
    let margin = 40.0;
    let zoom = ((width - 2.0 * margin) / b.w)
        .min((height - 2.0 * margin) / b.h)
        .clamp(MIN_ZOOM, 1.0);
    View {
        x: (width - b.w * zoom) / 2.0 - b.x * zoom,
        y: (height - b.h * zoom) / 2.0 - b.y * zoom,
        zoom,
    }
}

/// Places every node in columns by its distance (in arrows) from the start node, in the order
/// exits are listed, so that a flow reads from left to right. Nodes the start does not reach
/// go to a last column. Returns the op that does it (a `Place`, undoable as one step).
pub fn auto_layout(flow: &Flow) -> Op {
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    let starts: Vec<&str> = flow
        .nodes
        .iter()
        .filter(|n| n.kind.name() == "start")
        .map(|n| n.id.as_str())
        .collect();
    let mut queue: VecDeque<&str> = starts.iter().copied().collect();
    for s in &starts {
        depth.insert(s, 0);
        order.push(s);
    }
    while let Some(id) = queue.pop_front() {
        let d = depth.get(id).copied().unwrap_or(0);
        let Some(node) = flow.node(id) else { continue };
        for port in node.kind.ports() {
            if let Some(edge) = flow.edge(id, &port.name)
                && !depth.contains_key(edge.to.as_str())
                && flow.node(&edge.to).is_some()
            {
                depth.insert(edge.to.as_str(), d + 1);
                order.push(edge.to.as_str());
                queue.push_back(edge.to.as_str());
            }
        }
    }
    let last = depth.values().max().map_or(0, |d| d + 1);
    for n in &flow.nodes {
        if !depth.contains_key(n.id.as_str()) {
            depth.insert(n.id.as_str(), last);
            order.push(n.id.as_str());
        }
    }
    let mut column_y: BTreeMap<usize, f64> = BTreeMap::new();
    let mut places = Vec::with_capacity(order.len());
    for id in order {
        let d = depth.get(id).copied().unwrap_or(0);
        let y = column_y.entry(d).or_insert(80.0);
        places.push((
            id.to_owned(),
            Some(Position {
                x: 80.0 + d as f64 * (NODE_WIDTH + 100.0),
                y: *y,
            }),
        ));
        *y += flow.node(id).map_or(100.0, node_height) + 40.0;
    }
    Op::Place {
        nodes: places,
        comments: Vec::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Left,
    Right,
    Up,
    Down,
}

/// The node an arrow key leads to from `from`: the nearest node whose centre lies in that
/// direction (within a 45° cone either side), distance weighted against going sideways.
pub fn neighbour(flow: &Flow, from: &str, direction: Direction) -> Option<NodeId> {
    let centre = |id: &str| {
        let p = position(flow, id);
        let h = flow.node(id).map_or(NODE_HEAD, node_height);
        (p.x + NODE_WIDTH / 2.0, p.y + h / 2.0)
    };
    let (cx, cy) = centre(from);
    flow.nodes
        .iter()
        .filter(|n| n.id != from)
        .filter_map(|n| {
            let (x, y) = centre(&n.id);
            let (ahead, aside) = match direction {
                Direction::Right => (x - cx, y - cy),
                Direction::Left => (cx - x, y - cy),
                Direction::Down => (y - cy, x - cx),
                Direction::Up => (cy - y, x - cx),
            };
            (ahead > 0.0 && aside.abs() <= ahead).then(|| (ahead + 2.0 * aside.abs(), &n.id))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, id)| id.clone())
}

/// Node ids in reading order (top to bottom, then left to right), for the outline.
pub fn reading_order(flow: &Flow) -> Vec<NodeId> {
    let mut ids: Vec<(i64, i64, &str)> = flow
        .nodes
        .iter()
        .map(|n| {
            let p = position(flow, &n.id);
            (
                (p.y / 10.0).round() as i64,
                (p.x / 10.0).round() as i64,
                n.id.as_str(),
            )
        })
        .collect();
    ids.sort_unstable();
    ids.into_iter().map(|(_, _, id)| id.to_owned()).collect()
}

/// The nodes inside a group's frame: the ones that exist, for drawing its box.
pub fn group_rect(flow: &Flow, members: &[NodeId]) -> Option<Rect> {
    let present: BTreeSet<&str> = flow.nodes.iter().map(|n| n.id.as_str()).collect();
    let mut out: Option<(f64, f64, f64, f64)> = None;
    for id in members.iter().filter(|id| present.contains(id.as_str())) {
        let p = position(flow, id);
        let h = flow.node(id).map_or(NODE_HEAD, node_height);
        let (x0, y0, x1, y1) = out.unwrap_or((p.x, p.y, p.x + NODE_WIDTH, p.y + h));
        out = Some((
            x0.min(p.x),
            y0.min(p.y),
            x1.max(p.x + NODE_WIDTH),
            y1.max(p.y + h),
        ));
    }
    out.map(|(x0, y0, x1, y1)| Rect {
        x: x0 - 16.0,
        y: y0 - 36.0,
        w: x1 - x0 + 32.0,
        h: y1 - y0 + 52.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::studio::kinds::new_node;
    use flows::model::Edge;

    fn flow(nodes: &[(&str, &str, f64, f64)], edges: &[(&str, &str, &str)]) -> Flow {
        let mut flow: Flow = flows::from_json(
            r#"{"schema_version":2,"id":"t","version":1,"name":"t","nodes":[],"edges":[]}"#,
        )
        .expect("a minimal flow loads");
        for (id, kind, x, y) in nodes {
            flow.nodes
                .push(new_node(kind, (*id).to_owned()).expect("a kind"));
            flow.layout
                .nodes
                .insert((*id).to_owned(), Position { x: *x, y: *y });
        }
        for (from, port, to) in edges {
            flow.edges.push(Edge {
                from: (*from).to_owned(),
                port: (*port).to_owned(),
                to: (*to).to_owned(),
            });
        }
        flow
    }

    #[test]
    fn zooming_keeps_the_point_under_the_pointer() {
        let view = View {
            x: 10.0,
            y: 20.0,
            zoom: 1.0,
        };
        let screen = Position { x: 300.0, y: 200.0 };
        let before = view.to_world(screen);
        let after = view.zoom_at(screen, 1.5);
        assert!((after.zoom - 1.5).abs() < 1e-9);
        let world = after.to_world(screen);
        assert!((world.x - before.x).abs() < 1e-9 && (world.y - before.y).abs() < 1e-9);
        assert!((view.zoom_at(screen, 1000.0).zoom - MAX_ZOOM).abs() < 1e-9);
    }

    #[test]
    fn fit_shows_every_node_inside_the_canvas() {
        let f = flow(
            &[
                ("start", "start", -500.0, 0.0),
                ("end", "end", 3000.0, 900.0),
            ],
            &[],
        );
        let view = fit(&f, 1000.0, 600.0);
        let b = bounds(&f).expect("two nodes");
        let left = b.x * view.zoom + view.x;
        let right = (b.x + b.w) * view.zoom + view.x;
        let top = b.y * view.zoom + view.y;
        let bottom = (b.y + b.h) * view.zoom + view.y;
        assert!(left >= 0.0 && right <= 1000.0 && top >= 0.0 && bottom <= 600.0);
        assert!(view.zoom < 1.0);
    }

    #[test]
    fn auto_layout_puts_each_step_one_column_after_the_step_before_it() {
        let mut f = flow(
            &[
                ("end", "end", 0.0, 0.0),
                ("hello", "message", 0.0, 0.0),
                ("start", "start", 500.0, 500.0),
                ("lost", "message", 0.0, 0.0),
            ],
            &[("start", "next", "hello"), ("hello", "next", "end")],
        );
        auto_layout(&f).apply(&mut f).expect("places apply");
        let x = |id: &str| position(&f, id).x;
        assert!(x("start") < x("hello") && x("hello") < x("end") && x("end") < x("lost"));
    }

    #[test]
    fn arrow_keys_go_to_the_nearest_node_in_that_direction() {
        let f = flow(
            &[
                ("a", "message", 0.0, 0.0),
                ("right", "message", 400.0, 30.0),
                ("far_right", "message", 900.0, 0.0),
                ("below", "message", 0.0, 300.0),
            ],
            &[],
        );
        assert_eq!(
            neighbour(&f, "a", Direction::Right).as_deref(),
            Some("right")
        );
        assert_eq!(
            neighbour(&f, "a", Direction::Down).as_deref(),
            Some("below")
        );
        assert_eq!(neighbour(&f, "a", Direction::Left), None);
        assert_eq!(neighbour(&f, "below", Direction::Up).as_deref(), Some("a"));
    }

    #[test]
    fn exits_are_anchored_on_their_rows() {
        let at = Position { x: 10.0, y: 20.0 };
        let first = output_anchor(at, 0);
        let second = output_anchor(at, 1);
        assert!((first.x - (10.0 + NODE_WIDTH)).abs() < 1e-9);
        assert!((second.y - first.y - PORT_ROW).abs() < 1e-9);
        assert!(arrow_path(first, input_anchor(at)).starts_with("M230.0,"));
    }
}
