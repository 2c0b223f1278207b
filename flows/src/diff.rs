//! What changed between two versions of a flow, in terms of its logic: nodes, edges,
//! variables, events, settings and the flow's own fields. The layout (positions, groups,
//! comments) is ignored, as is the version number, so moving boxes is no change at all.
//!
//! Used by the server's version history and by the designer in the browser; pure, like the
//! rest of the crate.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value as Json;

use crate::model::{Edge, Flow};

/// The differences from one flow (`from`) to another (`to`). Every list is sorted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlowDiff {
    /// The flow's own fields that changed: `name`, `description`, `default_locale`,
    /// `interface`, `id`, `schema_version`.
    pub flow: Vec<String>,
    pub nodes_added: Vec<String>,
    pub nodes_removed: Vec<String>,
    pub nodes_changed: Vec<Changed>,
    pub edges_added: Vec<Edge>,
    pub edges_removed: Vec<Edge>,
    pub variables_added: Vec<String>,
    pub variables_removed: Vec<String>,
    pub variables_changed: Vec<Changed>,
    /// Which events changed: `agent`, `restart`, `cancel`, `inactivity`, `error`.
    pub events: Vec<String>,
    /// Which settings changed: `step_budget`, `default_queue`, `utc_offset_minutes`.
    pub settings: Vec<String>,
}

/// A node or variable present in both flows whose fields differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    /// The node id or variable name.
    pub id: String,
    /// The fields that differ, as named in the file (`label`, `kind`, `parts`, `type`, …).
    pub fields: Vec<String>,
}

impl FlowDiff {
    /// Whether the two flows have the same logic.
    pub fn is_empty(&self) -> bool {
        *self == FlowDiff::default()
    }
}

/// The differences between `from` and `to`, ignoring layout and version numbers.
pub fn diff(from: &Flow, to: &Flow) -> FlowDiff {
    let mut result = FlowDiff::default();

    let meta = |flow: &Flow| {
        object(&serde_json::json!({
            "schema_version": flow.schema_version,
            "id": flow.id,
            "name": flow.name,
            "description": flow.description,
            "default_locale": flow.default_locale,
            "interface": flow.interface,
        }))
    };
    result.flow = changed_fields(&meta(from), &meta(to));
    result.events = changed_fields(
        &object(&to_json(&from.events)),
        &object(&to_json(&to.events)),
    );
    result.settings = changed_fields(
        &object(&to_json(&from.settings)),
        &object(&to_json(&to.settings)),
    );

    let nodes = |flow: &Flow| -> BTreeMap<String, BTreeMap<String, Json>> {
        flow.nodes
            .iter()
            .map(|n| (n.id.clone(), object(&to_json(n))))
            .collect()
    };
    (
        result.nodes_added,
        result.nodes_removed,
        result.nodes_changed,
    ) = compare(&nodes(from), &nodes(to));

    let variables = |flow: &Flow| -> BTreeMap<String, BTreeMap<String, Json>> {
        flow.variables
            .iter()
            .map(|v| (v.name.clone(), object(&to_json(v))))
            .collect()
    };
    (
        result.variables_added,
        result.variables_removed,
        result.variables_changed,
    ) = compare(&variables(from), &variables(to));

    let old: BTreeSet<&Edge> = from.edges.iter().collect();
    let new: BTreeSet<&Edge> = to.edges.iter().collect();
    result.edges_added = new.difference(&old).map(|e| (*e).clone()).collect();
    result.edges_removed = old.difference(&new).map(|e| (*e).clone()).collect();
    result
}

type Fields = BTreeMap<String, Json>;

/// Added, removed and changed entries of two keyed sets of objects.
fn compare(
    from: &BTreeMap<String, Fields>,
    to: &BTreeMap<String, Fields>,
) -> (Vec<String>, Vec<String>, Vec<Changed>) {
    let added = to
        .keys()
        .filter(|k| !from.contains_key(*k))
        .cloned()
        .collect();
    let removed = from
        .keys()
        .filter(|k| !to.contains_key(*k))
        .cloned()
        .collect();
    let changed = from
        .iter()
        .filter_map(|(id, old)| {
            let new = to.get(id)?;
            let fields = changed_fields(old, new);
            (!fields.is_empty()).then(|| Changed {
                id: id.clone(),
                fields,
            })
        })
        .collect();
    (added, removed, changed)
}

/// The keys whose values differ (present on one side only counts as different).
fn changed_fields(from: &Fields, to: &Fields) -> Vec<String> {
    let keys: BTreeSet<&String> = from.keys().chain(to.keys()).collect();
    keys.into_iter()
        .filter(|k| from.get(*k) != to.get(*k))
        .cloned()
        .collect()
}

fn to_json<T: Serialize>(value: &T) -> Json {
    // Plain data with string keys: serialising cannot fail.
    serde_json::to_value(value).unwrap_or(Json::Null)
}

/// The fields of a JSON object (a non-object is one field named `value`); `null` fields are
/// left out, so an absent optional field and an explicit `null` are the same.
fn object(value: &Json) -> Fields {
    match value {
        Json::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        other => BTreeMap::from([("value".to_owned(), other.clone())]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{Changed, FlowDiff, diff};
    use crate::model::{Edge, Position};
    use crate::{Flow, Library};

    fn bundled(id: &str) -> Flow {
        Library::bundled().unwrap().get(id).unwrap().clone()
    }

    #[test]
    fn a_flow_equals_itself() {
        let flow = bundled("guided-shopping");
        assert!(diff(&flow, &flow).is_empty());
    }

    #[test]
    fn layout_and_version_are_ignored() {
        let flow = bundled("faq-hours");
        let mut moved = flow.clone();
        moved.version += 1;
        for position in moved.layout.nodes.values_mut() {
            position.x += 100.0;
        }
        moved
            .layout
            .nodes
            .insert("nowhere".into(), Position { x: 1.0, y: 2.0 });
        assert!(diff(&flow, &moved).is_empty(), "{:?}", diff(&flow, &moved));
    }

    #[test]
    fn changed_added_and_removed_nodes_and_edges() {
        let flow = bundled("faq-hours");
        let mut edited = flow.clone();
        edited.nodes[1].label = Some("A new label".into());
        let removed = edited.nodes.pop().unwrap();
        let mut added = removed.clone();
        added.id = "added".into();
        edited.nodes.push(added);
        let lost: Vec<Edge> = edited
            .edges
            .iter()
            .filter(|e| e.to == removed.id)
            .cloned()
            .collect();
        edited.edges.retain(|e| e.to != removed.id);
        let new_edge = Edge {
            from: lost[0].from.clone(),
            port: lost[0].port.clone(),
            to: "added".into(),
        };
        edited.edges.push(new_edge.clone());
        let d = diff(&flow, &edited);
        assert_eq!(d.nodes_added, ["added"]);
        assert_eq!(d.nodes_removed, std::slice::from_ref(&removed.id));
        assert_eq!(
            d.nodes_changed,
            [Changed {
                id: flow.nodes[1].id.clone(),
                fields: vec!["label".into()],
            }]
        );
        assert_eq!(d.edges_added, [new_edge]);
        assert_eq!(d.edges_removed, lost);
        assert!(d.variables_added.is_empty() && d.flow.is_empty() && d.settings.is_empty());
    }

    #[test]
    fn variables_events_settings_and_flow_fields() {
        let flow = bundled("guided-shopping");
        let mut edited = flow.clone();
        let first = edited.variables[0].name.clone();
        edited.variables[0].description = Some("changed".into());
        let mut extra = edited.variables[0].clone();
        extra.name = "brand_new".into();
        edited.variables.push(extra);
        edited.events.restart.keywords.push("again".into());
        edited.settings.step_budget += 1;
        edited.name = "Renamed".into();
        let d = diff(&flow, &edited);
        assert_eq!(
            d,
            FlowDiff {
                flow: vec!["name".into()],
                variables_added: vec!["brand_new".into()],
                variables_changed: vec![Changed {
                    id: first,
                    fields: vec!["description".into()],
                }],
                events: vec!["restart".into()],
                settings: vec!["step_budget".into()],
                ..FlowDiff::default()
            }
        );
        // And back: the same changes, mirrored.
        let back = diff(&edited, &flow);
        assert_eq!(back.variables_removed, ["brand_new"]);
        assert!(back.variables_added.is_empty());
    }

    #[test]
    fn a_changed_node_kind_names_its_fields() {
        let flow = bundled("faq-hours");
        let mut edited = flow.clone();
        let message = edited
            .nodes
            .iter_mut()
            .find(|n| matches!(n.kind, crate::model::NodeKind::Message(_)))
            .unwrap();
        let id = message.id.clone();
        if let crate::model::NodeKind::Message(m) = &mut message.kind {
            m.parts.clear();
        }
        let d = diff(&flow, &edited);
        assert_eq!(
            d.nodes_changed,
            [Changed {
                id,
                fields: vec!["parts".into()],
            }]
        );
    }
}
