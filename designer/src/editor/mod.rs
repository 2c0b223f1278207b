//! The flow designer's editing core: invertible operations on a [`Flow`], the undo history,
//! the selection and the clipboard. Pure data in, data out: no DOM, no Leptos, no clock, so it
//! compiles for the host and for wasm32 alike and is tested natively.
//!
//! Every change to a flow is an [`Op`]. Applying one returns its inverse, which the
//! [`History`] keeps; undo applies the inverse (and keeps *its* inverse for redo). No
//! snapshot of the whole document is ever taken. An op that cannot be applied (an unknown
//! node, a port that does not exist, an exit that is already connected) changes nothing and
//! says why in an [`EditError`].

mod clipboard;
mod history;
mod ops;
mod selection;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use flows::Flow;
use flows::model::Position;

pub use clipboard::{FORMAT, PasteError, copy, paste};
pub use history::History;
pub use ops::{EditError, NodeEntry, Op, can_connect};
pub use selection::Selection;

/// `p` moved to the nearest point of a square grid with `step` units between lines. A step that
/// is not a positive number leaves `p` as it is.
pub fn snap(p: Position, step: f64) -> Position {
    if !(step > 0.0 && step.is_finite()) {
        return p;
    }
    Position {
        x: (p.x / step).round() * step,
        y: (p.y / step).round() * step,
    }
}

/// An id based on `wanted` that is not in `taken`: `wanted` itself if it is free, else
/// `<base>_2`, `<base>_3`, … where `base` is `wanted` without a trailing `_<number>` (so a
/// copy of `ask_2` is `ask_3`, not `ask_2_2`).
pub fn fresh_id(wanted: &str, taken: &BTreeSet<String>) -> String {
    if !taken.contains(wanted) {
        return wanted.to_owned();
    }
    let base = match wanted.rsplit_once('_') {
        Some((base, n))
            if !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => wanted,
    };
    (2u64..)
        .map(|n| format!("{base}_{n}"))
        .find(|id| !taken.contains(id))
        .unwrap_or_else(|| format!("{wanted}_copy"))
}

/// Every id a new node must not take: the flow's node ids and the ids with a layout entry.
fn taken_node_ids(flow: &Flow) -> BTreeSet<String> {
    flow.nodes
        .iter()
        .map(|n| n.id.clone())
        .chain(flow.layout.nodes.keys().cloned())
        .collect()
}

fn add(a: Position, b: Position) -> Position {
    Position {
        x: a.x + b.x,
        y: a.y + b.y,
    }
}

fn sub(a: Position, b: Position) -> Position {
    Position {
        x: a.x - b.x,
        y: a.y - b.y,
    }
}
