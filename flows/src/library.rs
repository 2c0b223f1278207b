//! A set of flows by id (a flow and the sub-flows it calls), content hashes, and the flows
//! bundled with kefu.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::engine::FlowRef;
use crate::load::{self, LoadError};
use crate::model::{Flow, Layout, NodeKind};

/// The flows shipped in `flows/library/`, as `(file name, JSON text)`.
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "guided-shopping.flow.json",
        include_str!("../library/guided-shopping.flow.json"),
    ),
    (
        "order-status.flow.json",
        include_str!("../library/order-status.flow.json"),
    ),
    (
        "returns.flow.json",
        include_str!("../library/returns.flow.json"),
    ),
    (
        "return-reason.flow.json",
        include_str!("../library/return-reason.flow.json"),
    ),
    (
        "faq-hours.flow.json",
        include_str!("../library/faq-hours.flow.json"),
    ),
];

#[derive(Debug, Clone, Default)]
pub struct Library {
    flows: BTreeMap<String, Flow>,
}

impl Library {
    pub fn new() -> Self {
        Library::default()
    }

    /// The bundled flows. They are checked by the test suite, so loading cannot fail in a
    /// released build; a broken one would be reported by `Err` rather than a panic.
    pub fn bundled() -> Result<Library, (String, LoadError)> {
        let mut library = Library::new();
        for (name, text) in BUNDLED {
            let flow = load::from_json(text).map_err(|e| ((*name).to_owned(), e))?;
            library.insert(flow);
        }
        Ok(library)
    }

    /// Adds a flow, returning the one it replaces (same id).
    pub fn insert(&mut self, flow: Flow) -> Option<Flow> {
        self.flows.insert(flow.id.clone(), flow)
    }

    pub fn get(&self, id: &str) -> Option<&Flow> {
        self.flows.get(id)
    }

    pub fn flows(&self) -> impl Iterator<Item = &Flow> {
        self.flows.values()
    }

    /// The identity of `id` as run: its version and a hash over its logic and the logic of
    /// every flow it calls, directly or not. A changed sub-flow changes the hash.
    pub fn flow_ref(&self, id: &str) -> Option<FlowRef> {
        let main = self.get(id)?;
        let mut seen = BTreeSet::new();
        let mut todo = vec![id.to_owned()];
        while let Some(next) = todo.pop() {
            if !seen.insert(next.clone()) {
                continue;
            }
            if let Some(flow) = self.get(&next) {
                for node in &flow.nodes {
                    if let NodeKind::Call(call) = &node.kind {
                        todo.push(call.flow.clone());
                    }
                }
            }
        }
        let mut hasher = Sha256::new();
        for flow_id in &seen {
            let hash = self.get(flow_id).map(content_hash).unwrap_or_default();
            hasher.update(flow_id.as_bytes());
            hasher.update(b"=");
            hasher.update(hash.as_bytes());
            hasher.update(b"\n");
        }
        Some(FlowRef {
            id: id.to_owned(),
            version: main.version,
            hash: hex(&hasher.finalize()[..8]),
        })
    }
}

/// A hash of a flow's logic: everything but the layout. Moving boxes keeps the hash.
pub fn content_hash(flow: &Flow) -> String {
    let logic = Flow {
        layout: Layout::default(),
        ..flow.clone()
    };
    let json = serde_json::to_string(&logic).unwrap_or_default();
    hex(&Sha256::digest(json.as_bytes())[..8])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
