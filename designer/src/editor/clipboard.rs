//! Copy and paste through the system clipboard, as JSON text, so that steps travel between
//! flows, browser tabs and windows (and survive a trip through a chat message or a text file).
//!
//! ```json
//! {"kefu": "nodes/1", "flow": "guided-shopping",
//!  "nodes": [...], "edges": [...arrows between copied steps only],
//!  "positions": {"ask_budget": {"x": 880, "y": 0}}, "comments": [...],
//!  "variables": [...the declarations the copied steps use]}
//! ```

use std::collections::{BTreeMap, BTreeSet};

use flows::Flow;
use flows::expr::{parse, parse_template};
use flows::model::{Comment, Edge, Node, NodeId, NodeKind, Part, Position, Text, Variable};
use serde::{Deserialize, Serialize};

use super::ops::{NodeEntry, Op};
use super::selection::Selection;
use super::{add, fresh_id, sub, taken_node_ids};

/// The format tag of a clipboard payload (the value of its `kefu` field).
pub const FORMAT: &str = "nodes/1";

/// Why a text cannot be pasted. Worded for the people drawing flows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PasteError {
    #[error("the clipboard holds no kefu steps; copy some steps in a kefu flow first")]
    NotKefu,
    #[error(
        "these steps were copied from another kefu version (format `{0}`); this designer reads `{FORMAT}`"
    )]
    UnknownFormat(String),
    #[error("the copied steps are damaged and cannot be pasted: {0}")]
    Malformed(String),
    #[error(
        "the copied steps use the variable `{name}` as {theirs}, but this flow declares it as {ours}; rename one of them first"
    )]
    VariableClash {
        name: String,
        ours: String,
        theirs: String,
    },
    #[error("there is nothing to paste")]
    Empty,
}

/// What the clipboard holds: copied steps with their own arrows, positions and comments, and
/// the declarations of the variables they use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Payload {
    kefu: String,
    /// The id of the flow the steps were copied from (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flow: Option<String>,
    #[serde(default)]
    nodes: Vec<Node>,
    #[serde(default)]
    edges: Vec<Edge>,
    #[serde(default)]
    positions: BTreeMap<NodeId, Position>,
    #[serde(default)]
    comments: Vec<Comment>,
    #[serde(default)]
    variables: Vec<Variable>,
}

/// The selected steps and comments of `flow` as clipboard text (see the module docs).
pub fn copy(flow: &Flow, selection: &Selection) -> String {
    serde_json::to_string_pretty(&fragment(flow, selection)).unwrap_or_default()
}

/// The op that pastes clipboard `text` into `flow` with the copied block's top-left corner at
/// `at`. Ids that are taken get fresh ones (`ask_2`), and the copied arrows and jump targets
/// follow; missing variable declarations are added. Apply the op (through the history) and
/// select [`Selection::added_by`] it.
pub fn paste(flow: &Flow, text: &str, at: Position) -> Result<Op, PasteError> {
    let json: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|_| PasteError::NotKefu)?;
    let tag = json
        .get("kefu")
        .and_then(serde_json::Value::as_str)
        .ok_or(PasteError::NotKefu)?;
    if tag != FORMAT {
        return Err(if tag.starts_with("nodes/") {
            PasteError::UnknownFormat(tag.to_owned())
        } else {
            PasteError::NotKefu
        });
    }
    let payload: Payload =
        serde_json::from_value(json).map_err(|e| PasteError::Malformed(e.to_string()))?;
    let mut ids = BTreeSet::new();
    for node in &payload.nodes {
        if !ids.insert(node.id.as_str()) {
            return Err(PasteError::Malformed(format!(
                "two steps have the id `{}`",
                node.id
            )));
        }
    }
    let mut ids = BTreeSet::new();
    for comment in &payload.comments {
        if !ids.insert(comment.id.as_str()) {
            return Err(PasteError::Malformed(format!(
                "two comments have the id `{}`",
                comment.id
            )));
        }
    }
    if payload.nodes.is_empty() && payload.comments.is_empty() {
        return Err(PasteError::Empty);
    }
    insert(flow, &payload, at)
}

/// The payload of the selected steps and comments.
pub(super) fn fragment(flow: &Flow, selection: &Selection) -> Payload {
    let nodes: Vec<Node> = flow
        .nodes
        .iter()
        .filter(|n| selection.nodes.contains(&n.id))
        .cloned()
        .collect();
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    let edges = flow
        .edges
        .iter()
        .filter(|e| ids.contains(e.from.as_str()) && ids.contains(e.to.as_str()))
        .cloned()
        .collect();
    let positions = flow
        .layout
        .nodes
        .iter()
        .filter(|(id, _)| ids.contains(id.as_str()))
        .map(|(id, p)| (id.clone(), *p))
        .collect();
    let comments = flow
        .layout
        .comments
        .iter()
        .filter(|c| selection.comments.contains(&c.id))
        .cloned()
        .collect();
    let used: BTreeSet<String> = nodes.iter().flat_map(variables_used).collect();
    let mut seen = BTreeSet::new();
    let variables = flow
        .variables
        .iter()
        .filter(|v| used.contains(&v.name) && seen.insert(v.name.as_str()))
        .cloned()
        .collect();
    Payload {
        kefu: FORMAT.to_owned(),
        flow: Some(flow.id.clone()),
        nodes,
        edges,
        positions,
        comments,
        variables,
    }
}

/// The top-left corner of the payload's positioned steps and comments.
pub(super) fn origin(payload: &Payload) -> Option<Position> {
    payload
        .nodes
        .iter()
        .filter_map(|n| payload.positions.get(&n.id))
        .chain(payload.comments.iter().map(|c| &c.position))
        .fold(None, |corner: Option<Position>, p| {
            Some(corner.map_or(*p, |c| Position {
                x: c.x.min(p.x),
                y: c.y.min(p.y),
            }))
        })
}

/// The op that adds the payload to `flow` with its top-left corner at `at`.
pub(super) fn insert(flow: &Flow, payload: &Payload, at: Position) -> Result<Op, PasteError> {
    let mut ops = Vec::new();

    let mut declared = BTreeSet::new();
    for variable in &payload.variables {
        if !declared.insert(variable.name.as_str()) {
            continue;
        }
        match flow.variable(&variable.name) {
            Some(ours) if ours.ty == variable.ty => {}
            Some(ours) => {
                return Err(PasteError::VariableClash {
                    name: variable.name.clone(),
                    ours: ours.ty.to_string(),
                    theirs: variable.ty.to_string(),
                });
            }
            None => ops.push(Op::AddVariable {
                index: flow.variables.len() + ops.len(),
                variable: variable.clone(),
            }),
        }
    }

    let mut taken = taken_node_ids(flow);
    let renamed: BTreeMap<&str, String> = payload
        .nodes
        .iter()
        .map(|n| {
            let id = fresh_id(&n.id, &taken);
            taken.insert(id.clone());
            (n.id.as_str(), id)
        })
        .collect();
    let origin = origin(payload).unwrap_or_default();
    for (k, node) in payload.nodes.iter().enumerate() {
        let mut node = node.clone();
        if let NodeKind::Jump(jump) = &mut node.kind
            && let Some(id) = renamed.get(jump.target.as_str())
        {
            jump.target.clone_from(id);
        }
        let position = payload
            .positions
            .get(&node.id)
            .map_or(at, |p| add(at, sub(*p, origin)));
        if let Some(id) = renamed.get(node.id.as_str()) {
            node.id.clone_from(id);
        }
        ops.push(Op::AddNode(Box::new(NodeEntry {
            index: flow.nodes.len() + k,
            node,
            position: Some(position),
            edges: Vec::new(),
            groups: Vec::new(),
        })));
    }

    // Only arrows `Op::Connect` accepts: between copied steps, from an existing exit, one per
    // exit, no loop that never waits.
    let kinds: BTreeMap<&str, &NodeKind> = payload
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), &n.kind))
        .collect();
    let mut used = BTreeSet::new();
    for edge in &payload.edges {
        let (Some(kind), Some(from), Some(to)) = (
            kinds.get(edge.from.as_str()),
            renamed.get(edge.from.as_str()),
            renamed.get(edge.to.as_str()),
        ) else {
            continue;
        };
        let valid = kind.ports().iter().any(|p| p.name == edge.port)
            && (edge.from != edge.to || kind.is_wait_point())
            && used.insert((from.as_str(), edge.port.as_str()));
        if valid {
            ops.push(Op::Connect {
                edge: Edge {
                    from: from.clone(),
                    port: edge.port.clone(),
                    to: to.clone(),
                },
            });
        }
    }

    let mut taken: BTreeSet<String> = flow.layout.comments.iter().map(|c| c.id.clone()).collect();
    for (k, comment) in payload.comments.iter().enumerate() {
        let id = fresh_id(&comment.id, &taken);
        taken.insert(id.clone());
        ops.push(Op::AddComment {
            index: flow.layout.comments.len() + k,
            comment: Comment {
                id,
                text: comment.text.clone(),
                position: add(at, sub(comment.position, origin)),
            },
        });
    }
    Ok(Op::Batch(ops))
}

/// The root names of the variables a node reads or writes (declared or not; `item` and `sys`
/// included). Expressions that do not parse contribute nothing.
pub(super) fn variables_used(node: &Node) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    match &node.kind {
        NodeKind::Start(_) | NodeKind::Jump(_) | NodeKind::AbSplit(_) => {}
        NodeKind::End(end) => {
            if let Some(outcome) = &end.outcome {
                template(&mut out, outcome);
            }
        }
        NodeKind::Message(message) => {
            for part in &message.parts {
                match part {
                    Part::Text { text: t } => text(&mut out, t),
                    Part::Image { url, alt } => {
                        template(&mut out, url);
                        if let Some(alt) = alt {
                            text(&mut out, alt);
                        }
                    }
                    Part::Products { from, .. } => expression(&mut out, from),
                    Part::Carousel { cards } => {
                        for card in cards {
                            text(&mut out, &card.title);
                            if let Some(subtitle) = &card.subtitle {
                                text(&mut out, subtitle);
                            }
                            for s in card.image.iter().chain(&card.url) {
                                template(&mut out, s);
                            }
                        }
                    }
                }
            }
        }
        NodeKind::Choice(choice) => {
            text(&mut out, &choice.prompt);
            for option in &choice.options {
                text(&mut out, &option.label);
            }
            if let Some(dynamic) = &choice.dynamic {
                expression(&mut out, &dynamic.list);
                text(&mut out, &dynamic.label);
            }
            if let Some(var) = &choice.save_as {
                variable(&mut out, var);
            }
            if let Some(t) = &choice.retry_prompt {
                text(&mut out, t);
            }
        }
        NodeKind::Input(input) => {
            text(&mut out, &input.prompt);
            variable(&mut out, &input.save_as);
            if let Some(t) = &input.retry_prompt {
                text(&mut out, t);
            }
        }
        NodeKind::Condition(condition) => {
            for branch in &condition.branches {
                expression(&mut out, &branch.when);
                if let Some(label) = &branch.label {
                    text(&mut out, label);
                }
            }
        }
        NodeKind::Set(set) => {
            for assignment in &set.assignments {
                variable(&mut out, &assignment.var);
                expression(&mut out, &assignment.value);
            }
        }
        NodeKind::Lookup(lookup) => {
            for value in lookup.params.values() {
                expression(&mut out, value);
            }
            if let Some(var) = &lookup.save_as {
                variable(&mut out, var);
            }
        }
        NodeKind::Handoff(handoff) => {
            text(&mut out, &handoff.reason);
            for t in handoff.summary.iter().chain(&handoff.message) {
                text(&mut out, t);
            }
        }
        NodeKind::Wait(wait) => {
            if let Some(var) = &wait.save_as {
                variable(&mut out, var);
            }
        }
        NodeKind::Call(call) => {
            for value in call.inputs.values() {
                expression(&mut out, value);
            }
            for var in call.outputs.keys() {
                variable(&mut out, var);
            }
        }
    }
    out
}

fn text(out: &mut BTreeSet<String>, t: &Text) {
    for (_, variant) in t.variants() {
        template(out, variant);
    }
}

fn template(out: &mut BTreeSet<String>, source: &str) {
    if let Ok(t) = parse_template(source) {
        out.extend(t.variables());
    }
}

fn expression(out: &mut BTreeSet<String>, source: &str) {
    if let Ok(e) = parse(source) {
        out.extend(e.variables());
    }
}

/// A variable written by name (`save_as`); a path's root counts.
fn variable(out: &mut BTreeSet<String>, name: &str) {
    let root = name.split(['.', '[']).next().unwrap_or(name).trim();
    out.insert(root.to_owned());
}
