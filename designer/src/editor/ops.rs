//! [`Op`]: one invertible change to a flow, and [`Op::apply`], which makes it and returns the
//! op that takes it back.

use std::collections::{BTreeMap, BTreeSet};

use flows::Flow;
use flows::model::{Comment, Edge, Group, Node, NodeId, Position, Variable};

use super::{add, snap, sub};

/// One change to a flow. [`Op::apply`] returns the inverse: applying that restores the flow
/// exactly (the same `Flow`, so the same JSON), and applying *its* inverse redoes the change.
///
/// Some variants exist mostly as inverses: [`Op::Place`] undoes a [`Op::Move`] without
/// floating-point drift, [`Op::InsertEdge`]/[`Op::RemoveEdge`] put an arrow back at its old
/// index without the checks [`Op::Connect`] makes (an arrow of a loaded file may be invalid and
/// must still come back when its deletion is undone).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Inserts a node at `index` with its layout position, and, when it undoes a removal, its
    /// arrows and group memberships at their old places. Refused if the id is taken.
    AddNode(Box<NodeEntry>),
    /// Removes the node, its position, every arrow from or to it and its group memberships.
    /// Its inverse is an `AddNode` carrying all of these, so undo restores them exactly.
    /// References in jump nodes and global events are left for validation to report.
    RemoveNode {
        id: NodeId,
    },
    /// Moves nodes and comments by `delta` (a node without a position starts at the origin).
    Move {
        nodes: Vec<NodeId>,
        comments: Vec<String>,
        delta: Position,
    },
    /// Puts nodes and comments at the given positions, in order (`None`: no layout entry).
    Place {
        nodes: Vec<(NodeId, Option<Position>)>,
        comments: Vec<(String, Position)>,
    },
    /// Replaces a node (an inspector edit). Refused if the node is no longer `before` or if
    /// `after` has another id.
    SetNode {
        before: Box<Node>,
        after: Box<Node>,
    },
    /// Draws an arrow, appended to `edges`. Refused unless both nodes exist, the source kind
    /// has the port, the port is free and it is not a loop that never waits (see
    /// [`can_connect`]). Replacing an arrow is an explicit `Disconnect` + `Connect` batch
    /// ([`Op::reconnect`]).
    Connect {
        edge: Edge,
    },
    /// Removes the first arrow equal to `edge`.
    Disconnect {
        edge: Edge,
    },
    /// Inserts an arrow at `index`, unchecked (restores a removed arrow).
    InsertEdge {
        index: usize,
        edge: Edge,
    },
    /// Removes the arrow at `index`, which must be `edge`.
    RemoveEdge {
        index: usize,
        edge: Edge,
    },
    AddComment {
        index: usize,
        comment: Comment,
    },
    RemoveComment {
        id: String,
    },
    /// Sets a comment's text.
    EditComment {
        id: String,
        text: String,
    },
    /// Inserts a group; its member list is not checked (members may be restored later).
    AddGroup {
        index: usize,
        group: Group,
    },
    RemoveGroup {
        id: String,
    },
    /// Sets the nodes a group contains.
    SetGroupNodes {
        id: String,
        nodes: Vec<NodeId>,
    },
    /// Declares a variable (a paste brings the declarations its nodes use).
    AddVariable {
        index: usize,
        variable: Variable,
    },
    RemoveVariable {
        name: String,
    },
    /// Several ops applied in order, atomically: if one fails, those before it are undone and
    /// the flow is as it was. The inverse is the inverses in reverse order.
    Batch(Vec<Op>),
}

/// A node with everything [`Op::RemoveNode`] takes away with it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEntry {
    /// Where the node goes in `flow.nodes`.
    pub index: usize,
    pub node: Node,
    pub position: Option<Position>,
    /// Arrows from or to the node with their indices in `flow.edges`, ascending: inserting
    /// them in this order puts each back at its index.
    pub edges: Vec<(usize, Edge)>,
    /// Memberships as (index in `layout.groups`, index in that group's `nodes`), ascending.
    pub groups: Vec<(usize, usize)>,
}

/// Why an op cannot be applied. Worded for the people drawing flows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("there is no step `{0}`")]
    UnknownNode(NodeId),
    #[error("a step `{0}` already exists")]
    NodeExists(NodeId),
    #[error(
        "{} {kind} step has no exit `{port}`; its exits are: {ports}",
        article(kind)
    )]
    UnknownPort {
        node: NodeId,
        kind: &'static str,
        port: String,
        ports: String,
    },
    #[error(
        "the `{port}` exit of `{node}` already leads to `{to}`; an exit leads to exactly one next step (replace the arrow instead)"
    )]
    PortTaken {
        node: NodeId,
        port: String,
        to: NodeId,
    },
    #[error(
        "`{0}` cannot lead back to itself: a loop must pass through a step that waits for the visitor"
    )]
    SelfLoop(NodeId),
    #[error("there is no arrow from the `{}` exit of `{}` to `{}`", .0.port, .0.from, .0.to)]
    UnknownEdge(Edge),
    #[error("`{0}` has changed since this edit was made")]
    StaleNode(NodeId),
    #[error("an edit cannot change a step's id (`{from}` to `{to}`)")]
    IdChanged { from: NodeId, to: NodeId },
    #[error("the arrow from `{}` to `{}` does not touch the restored step `{node}`", .edge.from, .edge.to)]
    ForeignEdge { node: NodeId, edge: Edge },
    #[error("there is no comment `{0}`")]
    UnknownComment(String),
    #[error("a comment `{0}` already exists")]
    CommentExists(String),
    #[error("there is no group `{0}`")]
    UnknownGroup(String),
    #[error("a group `{0}` already exists")]
    GroupExists(String),
    #[error("there is no variable `{0}`")]
    UnknownVariable(String),
    #[error("a variable `{0}` already exists")]
    VariableExists(String),
    #[error("position {index} is outside the {what} (which has {len})")]
    BadIndex {
        what: &'static str,
        index: usize,
        len: usize,
    },
}

impl Op {
    /// Makes the change and returns the op that undoes it. On error the flow is unchanged.
    pub fn apply(&self, flow: &mut Flow) -> Result<Op, EditError> {
        match self {
            Op::AddNode(entry) => add_node(flow, entry),
            Op::RemoveNode { id } => remove_node(flow, id),
            Op::Move {
                nodes,
                comments,
                delta,
            } => move_by(flow, nodes, comments, *delta),
            Op::Place { nodes, comments } => place(flow, nodes, comments),
            Op::SetNode { before, after } => set_node(flow, before, after),
            Op::Connect { edge } => {
                can_connect(flow, edge)?;
                flow.edges.push(edge.clone());
                Ok(Op::RemoveEdge {
                    index: flow.edges.len() - 1,
                    edge: edge.clone(),
                })
            }
            Op::Disconnect { edge } => {
                let index = flow
                    .edges
                    .iter()
                    .position(|e| e == edge)
                    .ok_or_else(|| EditError::UnknownEdge(edge.clone()))?;
                flow.edges.remove(index);
                Ok(Op::InsertEdge {
                    index,
                    edge: edge.clone(),
                })
            }
            Op::InsertEdge { index, edge } => {
                check_index("arrows", *index, flow.edges.len())?;
                flow.edges.insert(*index, edge.clone());
                Ok(Op::RemoveEdge {
                    index: *index,
                    edge: edge.clone(),
                })
            }
            Op::RemoveEdge { index, edge } => {
                if flow.edges.get(*index) != Some(edge) {
                    return Err(EditError::UnknownEdge(edge.clone()));
                }
                flow.edges.remove(*index);
                Ok(Op::InsertEdge {
                    index: *index,
                    edge: edge.clone(),
                })
            }
            Op::AddComment { index, comment } => {
                let comments = &mut flow.layout.comments;
                if comments.iter().any(|c| c.id == comment.id) {
                    return Err(EditError::CommentExists(comment.id.clone()));
                }
                check_index("comments", *index, comments.len())?;
                comments.insert(*index, comment.clone());
                Ok(Op::RemoveComment {
                    id: comment.id.clone(),
                })
            }
            Op::RemoveComment { id } => {
                let comments = &mut flow.layout.comments;
                let index = comments
                    .iter()
                    .position(|c| c.id == *id)
                    .ok_or_else(|| EditError::UnknownComment(id.clone()))?;
                let comment = comments.remove(index);
                Ok(Op::AddComment { index, comment })
            }
            Op::EditComment { id, text } => {
                let comment = flow
                    .layout
                    .comments
                    .iter_mut()
                    .find(|c| c.id == *id)
                    .ok_or_else(|| EditError::UnknownComment(id.clone()))?;
                let old = std::mem::replace(&mut comment.text, text.clone());
                Ok(Op::EditComment {
                    id: id.clone(),
                    text: old,
                })
            }
            Op::AddGroup { index, group } => {
                let groups = &mut flow.layout.groups;
                if groups.iter().any(|g| g.id == group.id) {
                    return Err(EditError::GroupExists(group.id.clone()));
                }
                check_index("groups", *index, groups.len())?;
                groups.insert(*index, group.clone());
                Ok(Op::RemoveGroup {
                    id: group.id.clone(),
                })
            }
            Op::RemoveGroup { id } => {
                let groups = &mut flow.layout.groups;
                let index = groups
                    .iter()
                    .position(|g| g.id == *id)
                    .ok_or_else(|| EditError::UnknownGroup(id.clone()))?;
                let group = groups.remove(index);
                Ok(Op::AddGroup { index, group })
            }
            Op::SetGroupNodes { id, nodes } => {
                let group = flow
                    .layout
                    .groups
                    .iter_mut()
                    .find(|g| g.id == *id)
                    .ok_or_else(|| EditError::UnknownGroup(id.clone()))?;
                let old = std::mem::replace(&mut group.nodes, nodes.clone());
                Ok(Op::SetGroupNodes {
                    id: id.clone(),
                    nodes: old,
                })
            }
            Op::AddVariable { index, variable } => {
                if flow.variable(&variable.name).is_some() {
                    return Err(EditError::VariableExists(variable.name.clone()));
                }
                check_index("variables", *index, flow.variables.len())?;
                flow.variables.insert(*index, variable.clone());
                Ok(Op::RemoveVariable {
                    name: variable.name.clone(),
                })
            }
            Op::RemoveVariable { name } => {
                let index = flow
                    .variables
                    .iter()
                    .position(|v| v.name == *name)
                    .ok_or_else(|| EditError::UnknownVariable(name.clone()))?;
                let variable = flow.variables.remove(index);
                Ok(Op::AddVariable { index, variable })
            }
            Op::Batch(ops) => {
                let mut inverses = Vec::with_capacity(ops.len());
                for op in ops {
                    match op.apply(flow) {
                        Ok(inverse) => inverses.push(inverse),
                        Err(error) => {
                            for inverse in inverses.iter().rev() {
                                let undone = inverse.apply(flow);
                                debug_assert!(undone.is_ok(), "rolling back failed: {undone:?}");
                            }
                            return Err(error);
                        }
                    }
                }
                inverses.reverse();
                Ok(Op::Batch(inverses))
            }
        }
    }

    /// Whether applying changes nothing: an empty batch (of empty batches).
    pub fn is_empty(&self) -> bool {
        match self {
            Op::Batch(ops) => ops.iter().all(Op::is_empty),
            _ => false,
        }
    }

    /// Adds `node` at the end of the node list, at `position`.
    pub fn add_node(flow: &Flow, node: Node, position: Option<Position>) -> Op {
        Op::AddNode(Box::new(NodeEntry {
            index: flow.nodes.len(),
            node,
            position,
            edges: Vec::new(),
            groups: Vec::new(),
        }))
    }

    /// Connects `edge`, replacing the arrow that leaves the same exit if there is one.
    pub fn reconnect(flow: &Flow, edge: Edge) -> Op {
        match flow.edge(&edge.from, &edge.port) {
            Some(old) => Op::Batch(vec![
                Op::Disconnect { edge: old.clone() },
                Op::Connect { edge },
            ]),
            None => Op::Connect { edge },
        }
    }

    /// An inspector edit: replaces the node with `after`'s id by `after`, and removes the
    /// arrows leaving exits that `after` no longer has (a deleted option or branch).
    pub fn edit_node(flow: &Flow, after: Node) -> Result<Op, EditError> {
        let before = flow
            .node(&after.id)
            .ok_or_else(|| EditError::UnknownNode(after.id.clone()))?;
        let ports: BTreeSet<String> = after.kind.ports().into_iter().map(|p| p.name).collect();
        let mut ops: Vec<Op> = flow
            .edges
            .iter()
            .filter(|e| e.from == after.id && !ports.contains(&e.port))
            .map(|e| Op::Disconnect { edge: e.clone() })
            .collect();
        ops.push(Op::SetNode {
            before: Box::new(before.clone()),
            after: Box::new(after),
        });
        Ok(if ops.len() == 1 {
            ops.remove(0)
        } else {
            Op::Batch(ops)
        })
    }

    /// Moves nodes and comments by `delta`. With a grid step, the delta is adjusted so that
    /// the first node (else the first comment) lands on the grid; the others keep their
    /// offsets from it, so a selection moves as one block.
    pub fn move_by(
        flow: &Flow,
        nodes: Vec<NodeId>,
        comments: Vec<String>,
        delta: Position,
        grid: Option<f64>,
    ) -> Op {
        let anchor = nodes
            .first()
            .map(|id| flow.layout.nodes.get(id).copied().unwrap_or_default())
            .or_else(|| {
                comments.first().and_then(|id| {
                    flow.layout
                        .comments
                        .iter()
                        .find(|c| c.id == *id)
                        .map(|c| c.position)
                })
            });
        let delta = match (grid, anchor) {
            (Some(step), Some(anchor)) => sub(snap(add(anchor, delta), step), anchor),
            _ => delta,
        };
        Op::Move {
            nodes,
            comments,
            delta,
        }
    }
}

/// Whether `edge` may be drawn: both nodes exist, the source's kind has the port, the port is
/// free, and it is not a loop from a node to itself that never waits (the validator's
/// `loop-without-wait`; a question leading back to itself is fine).
pub fn can_connect(flow: &Flow, edge: &Edge) -> Result<(), EditError> {
    let from = flow
        .node(&edge.from)
        .ok_or_else(|| EditError::UnknownNode(edge.from.clone()))?;
    if flow.node(&edge.to).is_none() {
        return Err(EditError::UnknownNode(edge.to.clone()));
    }
    let ports = from.kind.ports();
    if !ports.iter().any(|p| p.name == edge.port) {
        let names: Vec<String> = ports.into_iter().map(|p| format!("`{}`", p.name)).collect();
        return Err(EditError::UnknownPort {
            node: edge.from.clone(),
            kind: from.kind.name(),
            port: edge.port.clone(),
            ports: if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            },
        });
    }
    if let Some(existing) = flow.edge(&edge.from, &edge.port) {
        return Err(EditError::PortTaken {
            node: edge.from.clone(),
            port: edge.port.clone(),
            to: existing.to.clone(),
        });
    }
    if edge.from == edge.to && !from.kind.is_wait_point() {
        return Err(EditError::SelfLoop(edge.from.clone()));
    }
    Ok(())
}

/// `a` or `an` before a kind's name (`an input step`).
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn check_index(what: &'static str, index: usize, len: usize) -> Result<(), EditError> {
    if index > len {
        return Err(EditError::BadIndex { what, index, len });
    }
    Ok(())
}

fn add_node(flow: &mut Flow, entry: &NodeEntry) -> Result<Op, EditError> {
    let id = &entry.node.id;
    if flow.node(id).is_some() {
        return Err(EditError::NodeExists(id.clone()));
    }
    check_index("steps", entry.index, flow.nodes.len())?;
    // Check everything before changing anything: each insertion must land inside the list as
    // it is after the insertions before it.
    let mut last: Option<usize> = None;
    for (k, (index, edge)) in entry.edges.iter().enumerate() {
        if edge.from != *id && edge.to != *id {
            return Err(EditError::ForeignEdge {
                node: id.clone(),
                edge: edge.clone(),
            });
        }
        if last.is_some_and(|l| *index <= l) {
            return Err(EditError::BadIndex {
                what: "arrows",
                index: *index,
                len: flow.edges.len() + k,
            });
        }
        check_index("arrows", *index, flow.edges.len() + k)?;
        last = Some(*index);
    }
    let mut inserted: BTreeMap<usize, (usize, Option<usize>)> = BTreeMap::new();
    for &(group, at) in &entry.groups {
        let len =
            flow.layout
                .groups
                .get(group)
                .map(|g| g.nodes.len())
                .ok_or(EditError::BadIndex {
                    what: "groups",
                    index: group,
                    len: flow.layout.groups.len(),
                })?;
        let (count, last) = inserted.entry(group).or_insert((0, None));
        if last.is_some_and(|l| at <= l) {
            return Err(EditError::BadIndex {
                what: "group",
                index: at,
                len: len + *count,
            });
        }
        check_index("group", at, len + *count)?;
        *count += 1;
        *last = Some(at);
    }

    // What already names this id before the node exists (a loaded file's leftovers, or a group
    // that kept a member whose step was deleted): `RemoveNode` would take it away too, so the
    // inverse puts it back.
    let stale_position = flow.layout.nodes.get(id).copied();
    let stale_edges: Vec<(usize, Edge)> = flow
        .edges
        .iter()
        .enumerate()
        .filter(|(_, e)| e.from == *id || e.to == *id)
        .map(|(i, e)| (i, e.clone()))
        .collect();
    let stale_groups: Vec<(String, Vec<NodeId>)> = flow
        .layout
        .groups
        .iter()
        .filter(|g| g.nodes.contains(id))
        .map(|g| (g.id.clone(), g.nodes.clone()))
        .collect();

    flow.nodes.insert(entry.index, entry.node.clone());
    if let Some(p) = entry.position {
        flow.layout.nodes.insert(id.clone(), p);
    }
    for (index, edge) in &entry.edges {
        flow.edges.insert(*index, edge.clone());
    }
    for &(group, at) in &entry.groups {
        if let Some(g) = flow.layout.groups.get_mut(group) {
            g.nodes.insert(at, id.clone());
        }
    }
    let remove = Op::RemoveNode { id: id.clone() };
    if stale_position.is_none() && stale_edges.is_empty() && stale_groups.is_empty() {
        return Ok(remove);
    }
    let mut inverse = vec![remove];
    inverse.extend(
        stale_edges
            .into_iter()
            .map(|(index, edge)| Op::InsertEdge { index, edge }),
    );
    inverse.extend(
        stale_groups
            .into_iter()
            .map(|(id, nodes)| Op::SetGroupNodes { id, nodes }),
    );
    if let Some(p) = stale_position {
        inverse.push(Op::Place {
            nodes: vec![(id.clone(), Some(p))],
            comments: Vec::new(),
        });
    }
    Ok(Op::Batch(inverse))
}

fn remove_node(flow: &mut Flow, id: &str) -> Result<Op, EditError> {
    let index = flow
        .nodes
        .iter()
        .position(|n| n.id == id)
        .ok_or_else(|| EditError::UnknownNode(id.to_owned()))?;
    let node = flow.nodes.remove(index);
    let position = flow.layout.nodes.remove(id);
    let mut edges = Vec::new();
    let mut kept = Vec::with_capacity(flow.edges.len());
    for (i, edge) in std::mem::take(&mut flow.edges).into_iter().enumerate() {
        if edge.from == id || edge.to == id {
            edges.push((i, edge));
        } else {
            kept.push(edge);
        }
    }
    flow.edges = kept;
    let mut groups = Vec::new();
    for (g, group) in flow.layout.groups.iter_mut().enumerate() {
        groups.extend(
            group
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| *n == id)
                .map(|(at, _)| (g, at)),
        );
        group.nodes.retain(|n| n != id);
    }
    Ok(Op::AddNode(Box::new(NodeEntry {
        index,
        node,
        position,
        edges,
        groups,
    })))
}

fn check_nodes_and_comments<'a>(
    flow: &Flow,
    nodes: impl IntoIterator<Item = &'a NodeId>,
    comments: impl IntoIterator<Item = &'a String>,
) -> Result<(), EditError> {
    for id in nodes {
        if flow.node(id).is_none() {
            return Err(EditError::UnknownNode(id.clone()));
        }
    }
    for id in comments {
        if !flow.layout.comments.iter().any(|c| c.id == *id) {
            return Err(EditError::UnknownComment(id.clone()));
        }
    }
    Ok(())
}

fn move_by(
    flow: &mut Flow,
    nodes: &[NodeId],
    comments: &[String],
    delta: Position,
) -> Result<Op, EditError> {
    check_nodes_and_comments(flow, nodes, comments)?;
    // A node listed twice moves once.
    let mut seen = BTreeSet::new();
    let mut old_nodes = Vec::new();
    for id in nodes.iter().filter(|id| seen.insert(id.as_str())) {
        let old = flow.layout.nodes.get(id).copied();
        flow.layout
            .nodes
            .insert(id.clone(), add(old.unwrap_or_default(), delta));
        old_nodes.push((id.clone(), old));
    }
    let mut seen = BTreeSet::new();
    let mut old_comments = Vec::new();
    for id in comments.iter().filter(|id| seen.insert(id.as_str())) {
        if let Some(c) = flow.layout.comments.iter_mut().find(|c| c.id == *id) {
            old_comments.push((id.clone(), c.position));
            c.position = add(c.position, delta);
        }
    }
    old_nodes.reverse();
    old_comments.reverse();
    Ok(Op::Place {
        nodes: old_nodes,
        comments: old_comments,
    })
}

fn place(
    flow: &mut Flow,
    nodes: &[(NodeId, Option<Position>)],
    comments: &[(String, Position)],
) -> Result<Op, EditError> {
    check_nodes_and_comments(
        flow,
        nodes.iter().map(|(id, _)| id),
        comments.iter().map(|(id, _)| id),
    )?;
    let mut old_nodes = Vec::with_capacity(nodes.len());
    for (id, position) in nodes {
        let old = match position {
            Some(p) => flow.layout.nodes.insert(id.clone(), *p),
            None => flow.layout.nodes.remove(id),
        };
        old_nodes.push((id.clone(), old));
    }
    let mut old_comments = Vec::with_capacity(comments.len());
    for (id, position) in comments {
        if let Some(c) = flow.layout.comments.iter_mut().find(|c| c.id == *id) {
            old_comments.push((id.clone(), std::mem::replace(&mut c.position, *position)));
        }
    }
    old_nodes.reverse();
    old_comments.reverse();
    Ok(Op::Place {
        nodes: old_nodes,
        comments: old_comments,
    })
}

fn set_node(flow: &mut Flow, before: &Node, after: &Node) -> Result<Op, EditError> {
    if after.id != before.id {
        return Err(EditError::IdChanged {
            from: before.id.clone(),
            to: after.id.clone(),
        });
    }
    let node = flow
        .nodes
        .iter_mut()
        .find(|n| n.id == before.id)
        .ok_or_else(|| EditError::UnknownNode(before.id.clone()))?;
    if node != before {
        return Err(EditError::StaleNode(before.id.clone()));
    }
    *node = after.clone();
    Ok(Op::SetNode {
        before: Box::new(after.clone()),
        after: Box::new(before.clone()),
    })
}
