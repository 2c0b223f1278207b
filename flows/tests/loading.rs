//! Reading flow documents: located errors, schema versions and migration.

use expect_test::{Expect, expect};
use flows::library::content_hash;
use flows::model::{NodeKind, Position};

fn check_error(text: &str, expected: &Expect) {
    let error = flows::from_json(text).expect_err("the document should be refused");
    expected.assert_eq(&error.to_string());
}

const MINIMAL: &str = r#"{
  "schema_version": 2,
  "id": "hello",
  "name": {"zh-CN": "你好", "en": "Hello"},
  "nodes": [
    {"id": "start", "kind": "start"},
    {"id": "hi", "kind": "message", "parts": [{"type": "text", "text": "Hi"}]},
    {"id": "bye", "kind": "end"}
  ],
  "edges": [
    {"from": "start", "port": "next", "to": "hi"},
    {"from": "hi", "port": "next", "to": "bye"}
  ],
  "layout": {"nodes": {"start": {"x": 0, "y": 0}}}
}"#;

#[test]
fn a_minimal_flow_loads_with_defaults() {
    let flow = flows::from_json(MINIMAL).unwrap();
    assert_eq!(flow.version, 1);
    assert_eq!(flow.default_locale, "zh-CN");
    assert_eq!(flow.settings.step_budget, 100);
    assert!(flow.events.agent.matches(" 人工 "));
    assert!(flow.events.agent.matches("AGENT"));
    assert!(!flow.events.agent.matches("agents"));
    assert!(matches!(flow.nodes[1].kind, NodeKind::Message(_)));
}

#[test]
fn json_syntax_errors_are_located() {
    check_error(
        "{\n  \"schema_version\": 2,\n  \"id\": \"x\",,\n}",
        &expect!["not valid JSON (line 3, column 13): key must be a string"],
    );
}

#[test]
fn missing_or_bad_schema_versions_are_explained() {
    check_error(
        r#"{"id": "x"}"#,
        &expect![[
            r#"the document has no `schema_version`; every flow file starts with `"schema_version": 2`"#
        ]],
    );
    check_error(
        r#"{"schema_version": 7, "id": "x"}"#,
        &expect![
            "this flow was written by a newer kefu (schema_version 7); this kefu reads versions 1 to 2. Upgrade kefu to open it"
        ],
    );
    check_error(
        r#"{"schema_version": "2"}"#,
        &expect![[r#"`schema_version` must be a whole number from 1 to 2, found "2""#]],
    );
    check_error(
        r#"{"schema_version": 0}"#,
        &expect!["`schema_version` must be a whole number from 1 to 2, found 0"],
    );
}

#[test]
fn shape_errors_name_the_path_and_line() {
    let unknown_kind = MINIMAL.replace(r#""kind": "end""#, r#""kind": "finish""#);
    check_error(
        &unknown_kind,
        &expect![
            "at `nodes[2]` (line 8, column 35): unknown variant `finish`, expected one of `start`, `message`, `choice`, `input`, `condition`, `set`, `lookup`, `handoff`, `wait`, `call`, `ab_split`, `jump`, `end`"
        ],
    );
    let bad_type = MINIMAL.replace(
        r#""id": "hello","#,
        r#""id": "hello", "variables": [{"name": "n", "type": "integer"}],"#,
    );
    check_error(
        &bad_type,
        &expect![
            "at `variables[0].type` (line 3, column 63): unknown type `integer`: expected string, number, bool, map, any, list or list<T>"
        ],
    );
    let unknown_field = MINIMAL.replace(r#""edges": ["#, r#""egdes": [], "edges": ["#);
    check_error(
        &unknown_field,
        &expect![
            "at `egdes` (line 10, column 9): unknown field `egdes`, expected one of `schema_version`, `id`, `version`, `name`, `description`, `default_locale`, `variables`, `interface`, `events`, `settings`, `nodes`, `edges`, `layout`"
        ],
    );
}

#[test]
fn version_1_documents_are_migrated() {
    let v1 = r#"{
      "schema_version": 1,
      "id": "old",
      "name": "Old flow",
      "nodes": [
        {"id": "start", "type": "start", "position": {"x": 10, "y": 20}},
        {"id": "done", "type": "end", "position": {"x": 250, "y": 20}}
      ],
      "edges": [{"source": "start.next", "target": "done"}]
    }"#;
    let flow = flows::from_json(v1).unwrap();
    assert_eq!(flow.schema_version, 2);
    assert_eq!(flow.edges[0].from, "start");
    assert_eq!(flow.edges[0].port, "next");
    assert_eq!(flow.edges[0].to, "done");
    assert_eq!(flow.layout.nodes["done"], Position { x: 250.0, y: 20.0 });
    assert!(flows::validate(&flow, &flows::Library::new()).is_empty());
    let broken = v1.replace("start.next", "startnext");
    check_error(
        &broken,
        &expect![[
            r#"cannot migrate from schema_version 1: at `edges[0].source`: expected "node.port", found no `.`"#
        ]],
    );
}

#[test]
fn moving_boxes_keeps_the_content_hash() {
    let flow = flows::from_json(MINIMAL).unwrap();
    let mut moved = flow.clone();
    moved
        .layout
        .nodes
        .insert("hi".into(), Position { x: 500.0, y: 80.0 });
    assert_eq!(content_hash(&flow), content_hash(&moved));
    let mut edited = flow.clone();
    edited.nodes[1].label = Some("Greeting".into());
    assert_ne!(content_hash(&flow), content_hash(&edited));
}

#[test]
fn bundled_flows_round_trip_through_json() {
    let library = flows::Library::bundled().unwrap();
    assert!(library.flows().count() >= 5);
    for flow in library.flows() {
        let again = flows::from_json(&flows::to_json(flow)).unwrap();
        assert_eq!(&again, flow, "{} changed in a round trip", flow.id);
    }
}

#[test]
fn keyword_events_keep_their_builtin_keywords_unless_given() {
    let with_events = MINIMAL.replace(
        r#""nodes": ["#,
        r#""events": {"agent": {"enabled": false}, "cancel": {"target": "bye"}, "restart": {"keywords": ["again"]}}, "nodes": ["#,
    );
    let flow = flows::from_json(&with_events).unwrap();
    assert!(!flow.events.agent.enabled);
    assert!(!flow.events.agent.matches("人工"));
    assert!(flow.events.cancel.matches("取消"));
    assert_eq!(flow.events.cancel.target.as_deref(), Some("bye"));
    assert!(flow.events.restart.matches("AGAIN"));
    assert!(!flow.events.restart.matches("restart"));
    let again = flows::from_json(&flows::to_json(&flow)).unwrap();
    assert_eq!(again, flow);
    let typo = MINIMAL.replace(
        r#""nodes": ["#,
        r#""events": {"agent": {"keyword": ["x"]}}, "nodes": ["#,
    );
    check_error(
        &typo,
        &expect![
            "at `events.agent.keyword` (line 5, column 32): unknown field `keyword`, expected one of `enabled`, `keywords`, `target`"
        ],
    );
}
