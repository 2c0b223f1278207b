//! The selection, and the edits made to it: delete, duplicate, move.

use std::collections::BTreeSet;

use flows::Flow;
use flows::model::{NodeId, Position};

use super::add;
use super::clipboard::{fragment, insert, origin};
use super::ops::Op;

/// The selected nodes and comments of one flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub nodes: BTreeSet<NodeId>,
    pub comments: BTreeSet<String>,
}

impl Selection {
    /// Only the node `id`.
    pub fn node(id: &str) -> Self {
        Selection {
            nodes: BTreeSet::from([id.to_owned()]),
            comments: BTreeSet::new(),
        }
    }

    /// Every node and comment of `flow`.
    pub fn all(flow: &Flow) -> Self {
        Selection {
            nodes: flow.nodes.iter().map(|n| n.id.clone()).collect(),
            comments: flow.layout.comments.iter().map(|c| c.id.clone()).collect(),
        }
    }

    /// The nodes and comments whose position lies in the rectangle spanned by `a` and `b`
    /// (a rubber band drawn in any direction).
    pub fn within(flow: &Flow, a: Position, b: Position) -> Self {
        let inside = |p: &Position| {
            p.x >= a.x.min(b.x) && p.x <= a.x.max(b.x) && p.y >= a.y.min(b.y) && p.y <= a.y.max(b.y)
        };
        Selection {
            nodes: flow
                .nodes
                .iter()
                .filter(|n| flow.layout.nodes.get(&n.id).is_some_and(inside))
                .map(|n| n.id.clone())
                .collect(),
            comments: flow
                .layout
                .comments
                .iter()
                .filter(|c| inside(&c.position))
                .map(|c| c.id.clone())
                .collect(),
        }
    }

    /// The nodes and comments an op adds (a paste or a duplicate), to select them afterwards.
    pub fn added_by(op: &Op) -> Self {
        let mut selection = Selection::default();
        selection.collect_added(op);
        selection
    }

    fn collect_added(&mut self, op: &Op) {
        match op {
            Op::AddNode(entry) => {
                self.nodes.insert(entry.node.id.clone());
            }
            Op::AddComment { comment, .. } => {
                self.comments.insert(comment.id.clone());
            }
            Op::Batch(ops) => ops.iter().for_each(|op| self.collect_added(op)),
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.comments.is_empty()
    }

    pub fn clear(&mut self) {
        self.nodes.clear();
        self.comments.clear();
    }

    pub fn contains_node(&self, id: &str) -> bool {
        self.nodes.contains(id)
    }

    pub fn contains_comment(&self, id: &str) -> bool {
        self.comments.contains(id)
    }

    /// A click on a node: selects only it, or with `additive` (shift/ctrl) toggles it.
    pub fn click_node(&mut self, id: &str, additive: bool) {
        if !additive {
            self.clear();
            self.nodes.insert(id.to_owned());
        } else if !self.nodes.remove(id) {
            self.nodes.insert(id.to_owned());
        }
    }

    /// A click on a comment: selects only it, or with `additive` toggles it.
    pub fn click_comment(&mut self, id: &str, additive: bool) {
        if !additive {
            self.clear();
            self.comments.insert(id.to_owned());
        } else if !self.comments.remove(id) {
            self.comments.insert(id.to_owned());
        }
    }

    /// Adds everything in `other` (a rubber band with shift held).
    pub fn extend(&mut self, other: Selection) {
        self.nodes.extend(other.nodes);
        self.comments.extend(other.comments);
    }

    /// Forgets ids that are no longer in `flow` (after an undo, say).
    pub fn retain_existing(&mut self, flow: &Flow) {
        self.nodes.retain(|id| flow.node(id).is_some());
        self.comments
            .retain(|id| flow.layout.comments.iter().any(|c| c.id == *id));
    }

    /// One op that deletes the selected nodes (with their arrows and group memberships) and
    /// comments. Empty when nothing is selected.
    pub fn delete(&self, flow: &Flow) -> Op {
        let nodes = flow
            .nodes
            .iter()
            .filter(|n| self.nodes.contains(&n.id))
            .map(|n| Op::RemoveNode { id: n.id.clone() });
        let comments = flow
            .layout
            .comments
            .iter()
            .filter(|c| self.comments.contains(&c.id))
            .map(|c| Op::RemoveComment { id: c.id.clone() });
        Op::Batch(nodes.chain(comments).collect())
    }

    /// One op that copies the selection `offset` away: new ids (`ask_2`, …), the arrows
    /// between selected nodes copied along. Select [`Selection::added_by`] it afterwards.
    pub fn duplicate(&self, flow: &Flow, offset: Position) -> Op {
        let payload = fragment(flow, self);
        let at = add(origin(&payload).unwrap_or_default(), offset);
        // The variables come from this very flow, so they cannot clash.
        insert(flow, &payload, at).unwrap_or_else(|_| Op::Batch(Vec::new()))
    }

    /// One op that moves the selection by `delta`, snapped to `grid` if given (see
    /// [`Op::move_by`]).
    pub fn move_by(&self, flow: &Flow, delta: Position, grid: Option<f64>) -> Op {
        let nodes = flow
            .nodes
            .iter()
            .filter(|n| self.nodes.contains(&n.id))
            .map(|n| n.id.clone())
            .collect();
        let comments = flow
            .layout
            .comments
            .iter()
            .filter(|c| self.comments.contains(&c.id))
            .map(|c| c.id.clone())
            .collect();
        Op::move_by(flow, nodes, comments, delta, grid)
    }
}
