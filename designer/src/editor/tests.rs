//! The editing core, natively: each op and its inverse, refused connections, the history, the
//! selection's edits, the clipboard between flows, and a property test that any sequence of
//! edits followed by as many undos gives back the original document.

use std::collections::BTreeSet;

use flows::model::{
    Comment, Edge, End, Group, Jump, Message, Node, NodeKind, Part, Position, Text, Variable,
};
use flows::{Flow, Type, from_json, to_json};
use proptest::prelude::*;

use super::*;

fn shop() -> Flow {
    from_json(include_str!(
        "../../../flows/library/guided-shopping.flow.json"
    ))
    .unwrap()
}

fn orders() -> Flow {
    from_json(include_str!(
        "../../../flows/library/order-status.flow.json"
    ))
    .unwrap()
}

fn pos(x: f64, y: f64) -> Position {
    Position { x, y }
}

fn edge(from: &str, port: &str, to: &str) -> Edge {
    Edge {
        from: from.into(),
        port: port.into(),
        to: to.into(),
    }
}

fn message(id: &str) -> Node {
    Node {
        id: id.into(),
        label: None,
        kind: NodeKind::Message(Message {
            parts: vec![Part::Text {
                text: Text::from("hi {{category}}"),
            }],
        }),
    }
}

/// Applies `op`, checks that its inverse restores the flow exactly and that redoing gives the
/// same result again; returns the flow after `op`.
fn round_trip(flow: &Flow, op: &Op) -> Flow {
    let mut edited = flow.clone();
    let inverse = op.apply(&mut edited).unwrap();
    let mut undone = edited.clone();
    let redo = inverse.apply(&mut undone).unwrap();
    assert_eq!(&undone, flow);
    assert_eq!(to_json(&undone), to_json(flow));
    redo.apply(&mut undone).unwrap();
    assert_eq!(undone, edited);
    edited
}

/// Checks that `op` is refused with `error` and leaves the flow as it was.
fn refused(flow: &Flow, op: &Op) -> EditError {
    let mut copy = flow.clone();
    let error = op.apply(&mut copy).unwrap_err();
    assert_eq!(&copy, flow);
    error
}

#[test]
fn add_node_and_undo() {
    let flow = shop();
    let op = Op::add_node(&flow, message("hello"), Some(pos(1.5, 2.5)));
    let edited = round_trip(&flow, &op);
    assert_eq!(edited.nodes.last().unwrap().id, "hello");
    assert_eq!(edited.layout.nodes["hello"], pos(1.5, 2.5));
    assert_eq!(refused(&edited, &op), EditError::NodeExists("hello".into()));
    let mut far = op;
    if let Op::AddNode(entry) = &mut far {
        entry.node.id = "other".into();
        entry.index = 1000;
    }
    assert!(matches!(
        refused(&flow, &far),
        EditError::BadIndex { what: "steps", .. }
    ));
}

#[test]
fn remove_node_takes_arrows_position_and_groups_and_undo_puts_them_back() {
    let flow = shop();
    let edited = round_trip(
        &flow,
        &Op::RemoveNode {
            id: "ask_budget".into(),
        },
    );
    assert!(edited.node("ask_budget").is_none());
    assert!(!edited.layout.nodes.contains_key("ask_budget"));
    assert!(
        !edited
            .edges
            .iter()
            .any(|e| e.from == "ask_budget" || e.to == "ask_budget")
    );
    assert!(
        !edited
            .layout
            .groups
            .iter()
            .any(|g| g.nodes.iter().any(|n| n == "ask_budget"))
    );
    assert_eq!(
        refused(
            &edited,
            &Op::RemoveNode {
                id: "ask_budget".into()
            }
        ),
        EditError::UnknownNode("ask_budget".into())
    );
}

#[test]
fn moves_are_undone_exactly_and_snap_to_the_grid() {
    let flow = shop();
    let op = Op::Move {
        nodes: vec!["start".into(), "ask_budget".into(), "start".into()],
        comments: vec!["ab_note".into()],
        delta: pos(0.1, 0.2),
    };
    let edited = round_trip(&flow, &op);
    assert_eq!(edited.layout.nodes["start"], pos(0.1, 0.2), "moved once");
    assert_eq!(edited.layout.comments[0].position, pos(220.1, -299.8));

    // The first node lands on the grid; the others keep their offsets from it.
    let op = Op::move_by(
        &flow,
        vec!["welcome_warm".into(), "ask_budget".into()],
        Vec::new(),
        pos(13.0, -7.0),
        Some(20.0),
    );
    assert_eq!(
        op,
        Op::Move {
            nodes: vec!["welcome_warm".into(), "ask_budget".into()],
            comments: Vec::new(),
            delta: pos(20.0, 0.0),
        }
    );
    assert_eq!(snap(pos(29.0, -31.0), 20.0), pos(20.0, -40.0));
    assert_eq!(snap(pos(29.0, -31.0), 0.0), pos(29.0, -31.0));

    // A node without a position starts at the origin, and undo takes the position away again.
    let mut unplaced = flow.clone();
    unplaced.layout.nodes.remove("start");
    let edited = round_trip(
        &unplaced,
        &Op::Move {
            nodes: vec!["start".into()],
            comments: Vec::new(),
            delta: pos(5.0, 5.0),
        },
    );
    assert_eq!(edited.layout.nodes["start"], pos(5.0, 5.0));

    let unknown = Op::Move {
        nodes: vec!["start".into(), "nope".into()],
        comments: Vec::new(),
        delta: pos(1.0, 1.0),
    };
    assert_eq!(
        refused(&flow, &unknown),
        EditError::UnknownNode("nope".into())
    );
}

#[test]
fn set_node_checks_what_it_replaces() {
    let flow = shop();
    let before = flow.node("checkout").unwrap().clone();
    let mut after = before.clone();
    after.label = Some("Pay".into());
    let op = Op::SetNode {
        before: Box::new(before.clone()),
        after: Box::new(after.clone()),
    };
    let edited = round_trip(&flow, &op);
    assert_eq!(
        edited.node("checkout").unwrap().label.as_deref(),
        Some("Pay")
    );
    assert_eq!(
        refused(&edited, &op),
        EditError::StaleNode("checkout".into())
    );
    let mut renamed = after;
    renamed.id = "pay".into();
    let op = Op::SetNode {
        before: Box::new(before),
        after: Box::new(renamed),
    };
    assert!(matches!(refused(&flow, &op), EditError::IdChanged { .. }));
}

#[test]
fn editing_a_node_drops_arrows_from_exits_it_no_longer_has() {
    let flow = shop();
    let mut after = flow.node("ask_category").unwrap().clone();
    let NodeKind::Choice(choice) = &mut after.kind else {
        panic!("ask_category is a choice");
    };
    choice.options.retain(|o| o.id != "laptops");
    let op = Op::edit_node(&flow, after).unwrap();
    let edited = round_trip(&flow, &op);
    assert!(edited.edge("ask_category", "laptops").is_none());
    assert!(edited.edge("ask_category", "phones").is_some());
    assert!(
        flows::validate(&edited, &flows::Library::default())
            .iter()
            .all(|d| d.code != flows::Code::UnknownPort)
    );
}

#[test]
fn only_valid_connections_are_accepted() {
    let mut flow = shop();
    // Free the `next` exit of `checkout` first.
    Op::Disconnect {
        edge: edge("checkout", "next", "end_checkout"),
    }
    .apply(&mut flow)
    .unwrap();

    let edited = round_trip(
        &flow,
        &Op::Connect {
            edge: edge("checkout", "next", "say_inactive"),
        },
    );
    assert_eq!(
        edited.edges.last(),
        Some(&edge("checkout", "next", "say_inactive"))
    );

    let cases = [
        (edge("nope", "next", "start"), "there is no step `nope`"),
        (edge("start", "next", "nope"), "there is no step `nope`"),
        (
            edge("checkout", "ok", "start"),
            "a message step has no exit `ok`; its exits are: `next`",
        ),
        (
            edge("end_checkout", "next", "start"),
            "an end step has no exit `next`; its exits are: none",
        ),
        (
            edge("ask_budget", "next", "start"),
            "the `next` exit of `ask_budget` already leads to `route_preference`; an exit leads to exactly one next step (replace the arrow instead)",
        ),
        (
            edge("checkout", "next", "checkout"),
            "`checkout` cannot lead back to itself: a loop must pass through a step that waits for the visitor",
        ),
    ];
    for (e, message) in cases {
        let error = refused(&flow, &Op::Connect { edge: e.clone() });
        assert_eq!(error.to_string(), message, "{e:?}");
        assert_eq!(can_connect(&flow, &e), Err(error));
    }

    // A question may lead back to itself: it waits for the visitor in between.
    let mut waiting = flow.clone();
    Op::Disconnect {
        edge: edge("ask_budget", "invalid", "budget_ranges"),
    }
    .apply(&mut waiting)
    .unwrap();
    round_trip(
        &waiting,
        &Op::Connect {
            edge: edge("ask_budget", "invalid", "ask_budget"),
        },
    );

    // Replacing is explicit, and undone as one edit.
    let op = Op::reconnect(&flow, edge("ask_budget", "next", "checkout"));
    let edited = round_trip(&flow, &op);
    assert_eq!(edited.edge("ask_budget", "next").unwrap().to, "checkout");
    assert_eq!(
        edited
            .edges
            .iter()
            .filter(|e| e.from == "ask_budget")
            .count(),
        2
    );
}

#[test]
fn disconnect_and_edge_restores_keep_indices() {
    let flow = shop();
    let e = flow.edges[5].clone();
    let mut edited = flow.clone();
    let inverse = Op::Disconnect { edge: e.clone() }
        .apply(&mut edited)
        .unwrap();
    assert_eq!(
        inverse,
        Op::InsertEdge {
            index: 5,
            edge: e.clone()
        }
    );
    round_trip(&flow, &Op::Disconnect { edge: e.clone() });
    assert_eq!(
        refused(&edited, &Op::Disconnect { edge: e.clone() }),
        EditError::UnknownEdge(e.clone())
    );
    assert_eq!(
        refused(
            &flow,
            &Op::RemoveEdge {
                index: 4,
                edge: e.clone()
            }
        ),
        EditError::UnknownEdge(e)
    );
}

#[test]
fn comments_and_groups() {
    let flow = shop();
    let comment = Comment {
        id: "todo".into(),
        text: "ask about colours".into(),
        position: pos(10.0, 10.0),
    };
    let add = Op::AddComment {
        index: flow.layout.comments.len(),
        comment: comment.clone(),
    };
    let edited = round_trip(&flow, &add);
    assert_eq!(edited.layout.comments.last(), Some(&comment));
    assert_eq!(
        refused(&edited, &add),
        EditError::CommentExists("todo".into())
    );
    round_trip(
        &flow,
        &Op::RemoveComment {
            id: "ab_note".into(),
        },
    );
    let edited = round_trip(
        &flow,
        &Op::EditComment {
            id: "ab_note".into(),
            text: "new".into(),
        },
    );
    assert_eq!(edited.layout.comments[0].text, "new");
    assert_eq!(
        refused(&flow, &Op::RemoveComment { id: "nope".into() }),
        EditError::UnknownComment("nope".into())
    );

    let group = Group {
        id: "support".into(),
        label: "Support".into(),
        nodes: vec!["handoff_sales".into()],
        color: None,
    };
    let add = Op::AddGroup {
        index: 1,
        group: group.clone(),
    };
    let edited = round_trip(&flow, &add);
    assert_eq!(edited.layout.groups[1], group);
    assert_eq!(
        refused(&edited, &add),
        EditError::GroupExists("support".into())
    );
    round_trip(&flow, &Op::RemoveGroup { id: "cart".into() });
    let edited = round_trip(
        &flow,
        &Op::SetGroupNodes {
            id: "cart".into(),
            nodes: vec!["checkout".into()],
        },
    );
    assert_eq!(edited.layout.groups[2].nodes, ["checkout"]);
    assert_eq!(
        refused(&flow, &Op::RemoveGroup { id: "nope".into() }),
        EditError::UnknownGroup("nope".into())
    );
}

#[test]
fn variables() {
    let flow = shop();
    let variable = Variable {
        name: "size".into(),
        ty: Type::String,
        scope: flows::model::Scope::Conversation,
        default: None,
        description: None,
    };
    let add = Op::AddVariable { index: 0, variable };
    let edited = round_trip(&flow, &add);
    assert_eq!(edited.variables[0].name, "size");
    assert_eq!(
        refused(&edited, &add),
        EditError::VariableExists("size".into())
    );
    round_trip(
        &flow,
        &Op::RemoveVariable {
            name: "budget".into(),
        },
    );
}

#[test]
fn a_batch_is_atomic() {
    let flow = shop();
    let op = Op::Batch(vec![
        Op::RemoveNode {
            id: "checkout".into(),
        },
        Op::Move {
            nodes: vec!["start".into()],
            comments: Vec::new(),
            delta: pos(1.0, 1.0),
        },
        Op::Connect {
            edge: edge("start", "next", "checkout"),
        },
    ]);
    assert_eq!(
        refused(&flow, &op),
        EditError::UnknownNode("checkout".into())
    );
    let Op::Batch(mut ops) = op else {
        unreachable!()
    };
    ops.pop();
    round_trip(&flow, &Op::Batch(ops));
}

#[test]
fn history_undoes_redoes_and_forgets() {
    let mut flow = shop();
    let mut history = History::new(2);
    assert!(!history.undo(&mut flow));
    assert!(!history.redo(&mut flow));

    let moves: Vec<Op> = (0..3)
        .map(|i| Op::Move {
            nodes: vec!["start".into()],
            comments: Vec::new(),
            delta: pos(f64::from(i) + 0.5, 0.0),
        })
        .collect();
    for op in &moves {
        history.apply(&mut flow, op).unwrap();
    }
    assert_eq!(flow.layout.nodes["start"], pos(4.5, 0.0));
    assert_eq!(history.undo_len(), 2, "capped");
    assert!(history.undo(&mut flow));
    assert!(history.undo(&mut flow));
    assert!(!history.undo(&mut flow), "the oldest edit was forgotten");
    assert_eq!(flow.layout.nodes["start"], pos(0.5, 0.0));
    assert!(history.redo(&mut flow));
    assert_eq!(flow.layout.nodes["start"], pos(2.0, 0.0));
    assert!(history.can_redo());

    // A new edit clears what could be redone; a failed or empty one changes nothing.
    history
        .apply(
            &mut flow,
            &Op::RemoveNode {
                id: "checkout".into(),
            },
        )
        .unwrap();
    assert!(!history.can_redo());
    let before = history.clone();
    assert!(
        history
            .apply(
                &mut flow,
                &Op::RemoveNode {
                    id: "checkout".into()
                }
            )
            .is_err()
    );
    history.apply(&mut flow, &Op::Batch(Vec::new())).unwrap();
    assert_eq!(history, before);

    while history.undo(&mut flow) {}
    assert_eq!(flow.layout.nodes["start"], pos(0.5, 0.0));
    assert!(flow.node("checkout").is_some());
}

#[test]
fn history_clears_itself_when_the_flow_changed_behind_its_back() {
    let mut flow = shop();
    let mut history = History::default();
    history
        .apply(
            &mut flow,
            &Op::RemoveNode {
                id: "checkout".into(),
            },
        )
        .unwrap();
    flow.nodes.push(message("checkout"));
    let changed = flow.clone();
    assert!(!history.undo(&mut flow));
    assert_eq!(flow, changed);
    assert!(!history.can_undo() && !history.can_redo());
}

#[test]
fn selection_clicks_and_rubber_band() {
    let flow = shop();
    let mut selection = Selection::default();
    selection.click_node("start", false);
    selection.click_node("checkout", true);
    selection.click_node("start", true);
    assert_eq!(selection, Selection::node("checkout"));
    selection.click_comment("ab_note", false);
    assert!(selection.nodes.is_empty() && selection.contains_comment("ab_note"));

    let band = Selection::within(&flow, pos(500.0, 200.0), pos(-10.0, -400.0));
    assert_eq!(
        band.nodes,
        BTreeSet::from([
            "start".to_owned(),
            "welcome_split".to_owned(),
            "welcome_warm".to_owned(),
            "welcome_quick".to_owned()
        ])
    );
    assert_eq!(band.comments, BTreeSet::from(["ab_note".to_owned()]));

    let mut all = Selection::all(&flow);
    assert_eq!(all.nodes.len(), flow.nodes.len());
    let mut smaller = flow;
    Op::RemoveNode { id: "start".into() }
        .apply(&mut smaller)
        .unwrap();
    all.retain_existing(&smaller);
    assert!(!all.contains_node("start"));
}

#[test]
fn deleting_the_selection_is_one_edit() {
    let flow = shop();
    let mut selection = Selection::node("ask_budget");
    selection.nodes.insert("budget_ranges".into());
    selection.comments.insert("ab_note".into());
    let op = selection.delete(&flow);
    let edited = round_trip(&flow, &op);
    assert!(edited.node("ask_budget").is_none() && edited.node("budget_ranges").is_none());
    assert_eq!(edited.layout.comments.len(), 1);
    assert!(Selection::default().delete(&flow).is_empty());

    let mut history = History::default();
    let mut flow2 = flow.clone();
    history.apply(&mut flow2, &op).unwrap();
    assert_eq!(history.undo_len(), 1);
    history.undo(&mut flow2);
    assert_eq!(flow2, flow);
}

#[test]
fn duplicating_gives_new_ids_offsets_and_internal_arrows() {
    let flow = shop();
    let mut selection = Selection::node("ask_budget");
    selection.nodes.insert("budget_ranges".into());
    selection.comments.insert("ab_note".into());
    let op = selection.duplicate(&flow, pos(40.0, 40.0));
    let edited = round_trip(&flow, &op);
    let added = Selection::added_by(&op);
    assert_eq!(
        added.nodes,
        BTreeSet::from(["ask_budget_2".to_owned(), "budget_ranges_2".to_owned()])
    );
    assert_eq!(added.comments, BTreeSet::from(["ab_note_2".to_owned()]));
    assert_eq!(edited.layout.nodes["ask_budget_2"], pos(920.0, 40.0));
    assert_eq!(edited.layout.nodes["budget_ranges_2"], pos(920.0, 260.0));
    // Only the arrow between the two copies comes along.
    let new: Vec<&Edge> = edited
        .edges
        .iter()
        .filter(|e| e.from.ends_with("_2"))
        .collect();
    assert_eq!(new, [&edge("ask_budget_2", "invalid", "budget_ranges_2")]);
    assert_eq!(edited.variables, flow.variables);

    // Duplicating the copy counts on: `ask_budget_3`, not `ask_budget_2_2`.
    let op = Selection::node("ask_budget_2").duplicate(&edited, pos(0.0, 0.0));
    assert_eq!(
        Selection::added_by(&op).nodes,
        BTreeSet::from(["ask_budget_3".to_owned()])
    );

    let moved = round_trip(&flow, &selection.move_by(&flow, pos(3.0, 4.0), None));
    assert_eq!(moved.layout.nodes["ask_budget"], pos(883.0, 4.0));
    assert_eq!(moved.layout.comments[0].position, pos(223.0, -296.0));
}

#[test]
fn copy_writes_a_tagged_payload_with_internal_arrows_and_used_variables() {
    let flow = shop();
    let mut selection = Selection::node("ask_budget");
    selection.nodes.insert("budget_ranges".into());
    selection.nodes.insert("find_products".into());
    let text = copy(&flow, &selection);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["kefu"], FORMAT);
    assert_eq!(json["flow"], "guided-shopping");
    assert_eq!(json["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(
        json["edges"],
        serde_json::json!([
            {"from": "ask_budget", "port": "invalid", "to": "budget_ranges"}
        ])
    );
    assert_eq!(
        json["positions"]["ask_budget"],
        serde_json::json!({"x": 880.0, "y": 0.0})
    );
    let names: Vec<&str> = json["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    // `find_products` reads category, budget and preference and saves into products.
    assert_eq!(names, ["category", "budget", "preference", "products"]);
}

#[test]
fn paste_into_another_flow_renames_clashing_ids_and_declares_variables() {
    let shop = shop();
    let mut selection = Selection::node("start");
    selection.nodes.insert("welcome_split".into());
    selection.nodes.insert("ask_budget".into());
    selection.nodes.insert("budget_ranges".into());
    let text = copy(&shop, &selection);

    let orders = orders();
    let op = paste(&orders, &text, pos(100.0, 100.0)).unwrap();
    let pasted = round_trip(&orders, &op);
    let added = Selection::added_by(&op);
    assert_eq!(
        added.nodes,
        BTreeSet::from([
            "start_2".to_owned(),
            "welcome_split".to_owned(),
            "ask_budget".to_owned(),
            "budget_ranges".to_owned()
        ])
    );
    assert!(
        pasted
            .edges
            .contains(&edge("start_2", "next", "welcome_split"))
    );
    assert!(
        pasted
            .edges
            .contains(&edge("ask_budget", "invalid", "budget_ranges"))
    );
    // The original start still leads where it did.
    assert_eq!(pasted.edge("start", "next"), orders.edge("start", "next"));
    let budget = pasted.variable("budget").unwrap();
    assert_eq!(budget.ty, Type::Number);
    assert_eq!(pasted.variables.len(), orders.variables.len() + 1);
    // The block's top-left corner is where it was pasted.
    assert_eq!(pasted.layout.nodes["start_2"], pos(100.0, 100.0));
    assert_eq!(pasted.layout.nodes["ask_budget"], pos(980.0, 100.0));

    // Pasting again renames everything; the variable is already there.
    let again = paste(&pasted, &text, pos(0.0, 0.0)).unwrap();
    let twice = round_trip(&pasted, &again);
    assert!(twice.node("start_3").is_some() && twice.node("ask_budget_2").is_some());
    assert_eq!(twice.variables.len(), pasted.variables.len());
    assert!(
        twice
            .edges
            .contains(&edge("start_3", "next", "welcome_split_2"))
    );
}

#[test]
fn paste_rewrites_jump_targets_inside_the_block_only() {
    let mut flow = shop();
    let jump = |id: &str, target: &str| Node {
        id: id.into(),
        label: None,
        kind: NodeKind::Jump(Jump {
            target: target.into(),
        }),
    };
    flow.nodes.push(jump("to_end", "end_checkout"));
    flow.nodes.push(jump("to_start", "start"));
    let mut selection = Selection::node("to_end");
    selection.nodes.insert("to_start".into());
    selection.nodes.insert("end_checkout".into());
    let op = paste(&flow, &copy(&flow, &selection), pos(0.0, 0.0)).unwrap();
    let pasted = round_trip(&flow, &op);
    let target = |id: &str| match &pasted.node(id).unwrap().kind {
        NodeKind::Jump(j) => j.target.clone(),
        _ => unreachable!(),
    };
    assert_eq!(target("to_end_2"), "end_checkout_2");
    assert_eq!(target("to_start_2"), "start");
}

#[test]
fn paste_refuses_a_variable_of_another_type() {
    let shop = shop();
    let text = copy(&shop, &Selection::node("ask_budget"));
    let mut orders = orders();
    orders.variables.push(Variable {
        name: "budget".into(),
        ty: Type::String,
        scope: flows::model::Scope::Conversation,
        default: None,
        description: None,
    });
    let error = paste(&orders, &text, pos(0.0, 0.0)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the copied steps use the variable `budget` as number, but this flow declares it as string; rename one of them first"
    );
}

#[test]
fn paste_refuses_foreign_and_damaged_text() {
    let flow = shop();
    let at = pos(0.0, 0.0);
    for text in [
        "",
        "hello",
        "{\"nodes\": []}",
        "[1, 2]",
        "{\"kefu\": 1}",
        "{\"kefu\": \"flow\"}",
    ] {
        assert_eq!(paste(&flow, text, at), Err(PasteError::NotKefu), "{text}");
    }
    assert_eq!(
        paste(&flow, "{\"kefu\": \"nodes/9\"}", at)
            .unwrap_err()
            .to_string(),
        "these steps were copied from another kefu version (format `nodes/9`); this designer reads `nodes/1`"
    );
    let damaged = paste(
        &flow,
        "{\"kefu\": \"nodes/1\", \"nodes\": [{\"id\": \"x\", \"kind\": \"teleport\"}]}",
        at,
    )
    .unwrap_err();
    assert!(matches!(damaged, PasteError::Malformed(_)), "{damaged:?}");
    assert!(
        damaged
            .to_string()
            .starts_with("the copied steps are damaged")
    );
    let twice = serde_json::json!({
        "kefu": "nodes/1",
        "nodes": [to_value(&message("a")), to_value(&message("a"))],
    });
    assert_eq!(
        paste(&flow, &twice.to_string(), at),
        Err(PasteError::Malformed("two steps have the id `a`".into()))
    );
    assert_eq!(
        paste(&flow, "{\"kefu\": \"nodes/1\"}", at),
        Err(PasteError::Empty)
    );
}

#[test]
fn paste_keeps_only_arrows_that_could_be_drawn() {
    let flow = shop();
    let payload = serde_json::json!({
        "kefu": "nodes/1",
        "nodes": [to_value(&message("a")), to_value(&message("b")), to_value(&Node {
            id: "z".into(), label: None, kind: NodeKind::End(End::default()),
        })],
        "edges": [
            {"from": "a", "port": "next", "to": "b"},
            {"from": "a", "port": "next", "to": "z"},
            {"from": "b", "port": "nope", "to": "a"},
            {"from": "b", "port": "next", "to": "b"},
            {"from": "b", "port": "next", "to": "elsewhere"},
        ],
    });
    let op = paste(&flow, &payload.to_string(), pos(0.0, 0.0)).unwrap();
    let pasted = round_trip(&flow, &op);
    assert_eq!(&pasted.edges[flow.edges.len()..], [edge("a", "next", "b")]);
}

fn to_value(node: &Node) -> serde_json::Value {
    serde_json::to_value(node).unwrap()
}

#[test]
fn fresh_ids() {
    let taken: BTreeSet<String> = ["a", "a_2", "b_7", "_3"].map(String::from).into();
    assert_eq!(fresh_id("c", &taken), "c");
    assert_eq!(fresh_id("a", &taken), "a_3");
    assert_eq!(fresh_id("a_2", &taken), "a_3");
    assert_eq!(fresh_id("b_7", &taken), "b_2");
    assert_eq!(fresh_id("_3", &taken), "_3_2");
}

// ---- Property test: random edits, then undo all of them ----

/// One random edit, described by numbers that pick nodes, ports and comments of whatever the
/// flow is when it is built (so the sequence stays meaningful as the flow changes).
#[derive(Debug, Clone)]
enum Step {
    AddNode(usize, f64, f64),
    RemoveNode(usize),
    Move(Vec<usize>, f64, f64, bool),
    SetLabel(usize, String),
    DropFirstPort(usize),
    Connect(usize, usize, usize, bool),
    Disconnect(usize),
    AddComment(f64, f64),
    RemoveComment(usize),
    EditComment(usize, String),
    AddGroup(Vec<usize>),
    RemoveGroup(usize),
    SetGroupNodes(usize, Vec<usize>),
    Delete(Vec<usize>, Vec<usize>),
    Duplicate(Vec<usize>, f64),
    Paste(Vec<usize>, f64, f64),
    PasteFromOtherFlow(Vec<usize>),
    Batch(Vec<Step>),
}

fn coordinate() -> impl Strategy<Value = f64> {
    prop_oneof![(-1000i32..1000).prop_map(f64::from), -1000.0..1000.0f64]
}

fn step() -> impl Strategy<Value = Step> {
    let n = || 0usize..64;
    let some = || prop::collection::vec(0usize..64, 0..5);
    let leaf = prop_oneof![
        (n(), coordinate(), coordinate()).prop_map(|(i, x, y)| Step::AddNode(i, x, y)),
        n().prop_map(Step::RemoveNode),
        (some(), coordinate(), coordinate(), any::<bool>())
            .prop_map(|(s, x, y, g)| Step::Move(s, x, y, g)),
        (n(), "[a-z ]{0,8}").prop_map(|(i, l)| Step::SetLabel(i, l)),
        n().prop_map(Step::DropFirstPort),
        (n(), n(), n(), any::<bool>()).prop_map(|(a, p, b, r)| Step::Connect(a, p, b, r)),
        n().prop_map(Step::Disconnect),
        (coordinate(), coordinate()).prop_map(|(x, y)| Step::AddComment(x, y)),
        n().prop_map(Step::RemoveComment),
        (n(), "[a-z ]{0,8}").prop_map(|(i, t)| Step::EditComment(i, t)),
        some().prop_map(Step::AddGroup),
        n().prop_map(Step::RemoveGroup),
        (n(), some()).prop_map(|(g, s)| Step::SetGroupNodes(g, s)),
        (some(), some()).prop_map(|(s, c)| Step::Delete(s, c)),
        (some(), coordinate()).prop_map(|(s, d)| Step::Duplicate(s, d)),
        (some(), coordinate(), coordinate()).prop_map(|(s, x, y)| Step::Paste(s, x, y)),
        some().prop_map(Step::PasteFromOtherFlow),
    ];
    leaf.prop_recursive(1, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Step::Batch)
    })
}

fn pick<T>(items: &[T], i: usize) -> Option<&T> {
    if items.is_empty() {
        None
    } else {
        items.get(i % items.len())
    }
}

fn node_id(flow: &Flow, i: usize) -> String {
    pick(&flow.nodes, i).map_or_else(|| "missing".to_owned(), |n| n.id.clone())
}

fn comment_id(flow: &Flow, i: usize) -> String {
    pick(&flow.layout.comments, i).map_or_else(|| "missing".to_owned(), |c| c.id.clone())
}

fn group_id(flow: &Flow, i: usize) -> String {
    pick(&flow.layout.groups, i).map_or_else(|| "missing".to_owned(), |g| g.id.clone())
}

fn selection(flow: &Flow, nodes: &[usize], comments: &[usize]) -> Selection {
    Selection {
        nodes: nodes.iter().map(|&i| node_id(flow, i)).collect(),
        comments: comments.iter().map(|&i| comment_id(flow, i)).collect(),
    }
}

fn build(flow: &Flow, step: &Step, other: &Flow) -> Op {
    match step {
        Step::AddNode(i, x, y) => {
            let id = fresh_id("added", &taken_node_ids(flow));
            Op::AddNode(Box::new(NodeEntry {
                index: i % (flow.nodes.len() + 1),
                node: message(&id),
                position: Some(pos(*x, *y)),
                edges: Vec::new(),
                groups: Vec::new(),
            }))
        }
        Step::RemoveNode(i) => Op::RemoveNode {
            id: node_id(flow, *i),
        },
        Step::Move(nodes, x, y, grid) => {
            selection(flow, nodes, &[0, 1]).move_by(flow, pos(*x, *y), grid.then_some(20.0))
        }
        Step::SetLabel(i, label) => match pick(&flow.nodes, *i) {
            Some(node) => {
                let mut after = node.clone();
                after.label = Some(label.clone());
                Op::SetNode {
                    before: Box::new(node.clone()),
                    after: Box::new(after),
                }
            }
            None => Op::Batch(Vec::new()),
        },
        Step::DropFirstPort(i) => match pick(&flow.nodes, *i) {
            Some(node) => {
                let mut after = node.clone();
                match &mut after.kind {
                    NodeKind::Choice(c) if !c.options.is_empty() => {
                        c.options.remove(0);
                    }
                    NodeKind::Condition(c) if !c.branches.is_empty() => {
                        c.branches.remove(0);
                    }
                    NodeKind::AbSplit(a) if !a.variants.is_empty() => {
                        a.variants.remove(0);
                    }
                    _ => after.kind = NodeKind::End(End::default()),
                }
                Op::edit_node(flow, after).unwrap_or(Op::Batch(Vec::new()))
            }
            None => Op::Batch(Vec::new()),
        },
        Step::Connect(a, p, b, replace) => {
            let from = node_id(flow, *a);
            let port = flow
                .node(&from)
                .and_then(|n| pick(&n.kind.ports(), *p).map(|p| p.name.clone()))
                .unwrap_or_else(|| "next".to_owned());
            let e = Edge {
                from,
                port,
                to: node_id(flow, *b),
            };
            if *replace {
                Op::reconnect(flow, e)
            } else {
                Op::Connect { edge: e }
            }
        }
        Step::Disconnect(i) => match pick(&flow.edges, *i) {
            Some(e) => Op::Disconnect { edge: e.clone() },
            None => Op::Disconnect {
                edge: edge("a", "b", "c"),
            },
        },
        Step::AddComment(x, y) => {
            let taken = flow.layout.comments.iter().map(|c| c.id.clone()).collect();
            Op::AddComment {
                index: flow.layout.comments.len(),
                comment: Comment {
                    id: fresh_id("note", &taken),
                    text: "note".into(),
                    position: pos(*x, *y),
                },
            }
        }
        Step::RemoveComment(i) => Op::RemoveComment {
            id: comment_id(flow, *i),
        },
        Step::EditComment(i, text) => Op::EditComment {
            id: comment_id(flow, *i),
            text: text.clone(),
        },
        Step::AddGroup(nodes) => {
            let taken = flow.layout.groups.iter().map(|g| g.id.clone()).collect();
            Op::AddGroup {
                index: nodes.first().copied().unwrap_or(0) % (flow.layout.groups.len() + 1),
                group: Group {
                    id: fresh_id("group", &taken),
                    label: "Group".into(),
                    nodes: nodes.iter().map(|&i| node_id(flow, i)).collect(),
                    color: None,
                },
            }
        }
        Step::RemoveGroup(i) => Op::RemoveGroup {
            id: group_id(flow, *i),
        },
        Step::SetGroupNodes(g, nodes) => Op::SetGroupNodes {
            id: group_id(flow, *g),
            nodes: nodes.iter().map(|&i| node_id(flow, i)).collect(),
        },
        Step::Delete(nodes, comments) => selection(flow, nodes, comments).delete(flow),
        Step::Duplicate(nodes, d) => selection(flow, nodes, &[0]).duplicate(flow, pos(*d, *d)),
        Step::Paste(nodes, x, y) => {
            let text = copy(flow, &selection(flow, nodes, &[1]));
            paste(flow, &text, pos(*x, *y)).unwrap_or(Op::Batch(Vec::new()))
        }
        Step::PasteFromOtherFlow(nodes) => {
            let text = copy(other, &selection(other, nodes, &[]));
            paste(flow, &text, pos(0.0, 0.0)).unwrap_or(Op::Batch(Vec::new()))
        }
        Step::Batch(steps) => {
            // Built against the flow as it is now; later parts may fail once earlier ones
            // ran, which exercises the rollback.
            Op::Batch(steps.iter().map(|s| build(flow, s, other)).collect())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_edits_then_as_many_undos_give_back_the_original(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        let original = shop();
        let other = orders();
        let mut flow = original.clone();
        let mut history = History::new(usize::MAX);
        let mut applied = 0;
        for step in &steps {
            let op = build(&flow, step, &other);
            let before = flow.clone();
            match history.apply(&mut flow, &op) {
                Ok(()) => {
                    if !op.is_empty() {
                        applied += 1;
                        // Undo then redo gives the same state.
                        let after = flow.clone();
                        prop_assert!(history.undo(&mut flow));
                        prop_assert_eq!(&flow, &before);
                        prop_assert!(history.redo(&mut flow));
                        prop_assert_eq!(&flow, &after);
                    }
                }
                // A refused op, a batch included, leaves the flow as it was.
                Err(_) => prop_assert_eq!(&flow, &before),
            }
        }
        prop_assert_eq!(history.undo_len(), applied);
        let edited = flow.clone();
        let mut undone = 0;
        while history.undo(&mut flow) {
            undone += 1;
        }
        prop_assert_eq!(undone, applied);
        prop_assert_eq!(&flow, &original);
        prop_assert_eq!(to_json(&flow), to_json(&original));
        while history.redo(&mut flow) {}
        prop_assert_eq!(&flow, &edited);
        prop_assert_eq!(to_json(&flow), to_json(&edited));
    }
}
