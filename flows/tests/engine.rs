//! Engine semantics on small inline flows, as transcripts (update with `UPDATE_EXPECT=1`):
//! rejections, timers, budgets, error events, sub-flows, restarts and hand-backs.

use expect_test::{Expect, expect};
use flows::scenario::{self, Scenario};
use flows::{Interpreter, Library};

/// Builds a flow from `nodes`/`edges` (and optional extra top-level fields), plays `steps`
/// (scenario step JSON) and compares the transcript.
fn check(extra: &str, nodes: &str, edges: &str, steps: &str, expected: &Expect) {
    check_library(&[], extra, nodes, edges, steps, expected);
}

fn check_library(
    others: &[&str],
    extra: &str,
    nodes: &str,
    edges: &str,
    steps: &str,
    expected: &Expect,
) {
    let text = format!(
        r#"{{"schema_version": 2, "id": "t", "name": "test", {extra} "nodes": {nodes}, "edges": {edges}}}"#
    );
    let flow = flows::from_json(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut library = Library::new();
    for other in others {
        library.insert(flows::from_json(other).unwrap());
    }
    library.insert(flow);
    let engine = Interpreter::new(&library, "t").unwrap_or_else(|e| panic!("{e}"));
    let scenario: Scenario = serde_json::from_str(&format!(
        r#"{{"name": "t", "start": {{"locale": "en"}}, "steps": {steps}}}"#
    ))
    .unwrap();
    let played = scenario.play(&engine);
    for p in &played {
        // Every session survives a round trip through its stored form.
        assert_eq!(
            flows::Session::from_json(&p.session.to_json()).unwrap(),
            p.session
        );
    }
    expected.assert_eq(&scenario::transcript("t", &played));
}

const ASK: &str = r#"[
  {"id": "start", "kind": "start"},
  {"id": "ask", "kind": "choice", "prompt": "Pick", "options": [{"id": "a", "label": "Apple"}, {"id": "b", "label": "Banana"}], "save_as": "fruit"},
  {"id": "done", "kind": "end", "outcome": "picked"}
]"#;
const ASK_EDGES: &str = r#"[
  {"from": "start", "port": "next", "to": "ask"},
  {"from": "ask", "port": "a", "to": "done"},
  {"from": "ask", "port": "b", "to": "done"}
]"#;
const FRUIT: &str = r#""variables": [{"name": "fruit", "type": "string"}, {"name": "visits", "type": "number", "scope": "user"}],"#;

#[test]
fn inputs_that_do_not_fit_are_rejected_without_change() {
    check(
        FRUIT,
        ASK,
        ASK_EDGES,
        r#"[{"text": "cherry"}, {"choice": "c"}, {"lookup": {"rows": []}}, {"timer": "wait:x"}, {"hand_back": {}}, {"text": "2"}, {"text": "hello"}]"#,
        &expect![[r#"
            # t
            > start en web (session-1)
              · start → ask
            < ask[ask]: Pick [a: Apple] [b: Banana]
            = awaiting choice
            > text "cherry"
            < say[ask]: Please pick one of the options below.
            < ask[ask]: Pick [a: Apple] [b: Banana]
            = awaiting choice
            > choice c
            < rejected: `c` is not one of the options on offer
            = awaiting choice
            > lookup #0 answered: 0 row(s)
            < rejected: no lookup request 0 is pending
            = awaiting choice
            > timer wait:x fired
            < rejected: timer `wait:x` is not armed
            = awaiting choice
            > agent hands back
            < rejected: no agent owns the conversation
            = awaiting choice
            > text "2"
              · done
              · fruit = "b"
            < end: picked
            = ended
            > text "hello"
            < rejected: the conversation has ended
            = ended
        "#]],
    );
}

#[test]
fn keywords_hand_over_and_the_agent_hands_back_to_the_same_question() {
    check(
        FRUIT,
        ASK,
        ASK_EDGES,
        r#"[{"text": " Agent "}, {"text": "apple"}, {"hand_back": {"vars": {"fruit": "a"}}}, {"text": "restart"}, {"text": "cancel"}]"#,
        &expect![[r##"
            # t
            > start en web (session-1)
              · start → ask
            < ask[ask]: Pick [a: Apple] [b: Banana]
            = awaiting choice
            > text " Agent "
            < say[ask]: Connecting you to an agent, please wait…
            < handoff to queue general, normal priority: The visitor asked for an agent
            = awaiting agent
            > text "apple"
            < rejected: a person owns the conversation; messages go to the agent
            = awaiting agent
            > agent hands back
              · ask
              · fruit = "a"
            < ask[ask]: Pick [a: Apple] [b: Banana]
            = awaiting choice
            > text "restart"
              · start → ask
            < ask[ask]: Pick [a: Apple] [b: Banana]
            = awaiting choice
            > text "cancel"
            < say[ask]: All right, this conversation is closed.
            < end: cancelled
            = ended
        "##]],
    );
}

#[test]
fn inactivity_and_wait_timers_are_armed_and_disarmed() {
    check(
        r#""variables": [{"name": "reply", "type": "string"}], "events": {"inactivity": {"seconds": 60}},"#,
        r#"[
          {"id": "start", "kind": "start"},
          {"id": "q", "kind": "input", "prompt": "Name?", "input_type": "text", "save_as": "reply"},
          {"id": "pause", "kind": "wait", "seconds": 30, "save_as": "reply"},
          {"id": "late", "kind": "message", "parts": [{"type": "text", "text": "Still there, {{reply}}?"}]},
          {"id": "done", "kind": "end"}
        ]"#,
        r#"[
          {"from": "start", "port": "next", "to": "q"},
          {"from": "q", "port": "next", "to": "pause"},
          {"from": "q", "port": "invalid", "to": "done"},
          {"from": "pause", "port": "timeout", "to": "late"},
          {"from": "late", "port": "next", "to": "done"}
        ]"#,
        r#"[{"advance": 10, "text": "Ada"}, {"advance": 5, "text": "hm"}, {"advance": 25, "timer": "wait:pause"}]"#,
        &expect![[r#"
            # t
            > start en web (session-1)
              · start → q
            < ask[q]: Name? (text)
            < set timer inactivity at 1767578460000
            = awaiting text
            > text "Ada"
              · pause
              · reply = "Ada"
            < cancel timer inactivity
            < set timer wait:pause at 1767578440000
            = awaiting timer
            > text "hm"
              · reply = "hm"
            = awaiting timer
            > timer wait:pause fired
              · late
            < say[late]: Still there, hm?
              · done
            < end: completed
            = ended
        "#]],
    );
}

#[test]
fn the_inactivity_timer_ends_a_silent_conversation() {
    check(
        &format!(r#"{FRUIT} "events": {{"inactivity": {{"seconds": 60}}}},"#),
        ASK,
        ASK_EDGES,
        r#"[{"advance": 60, "timer": "inactivity"}]"#,
        &expect![[r#"
            # t
            > start en web (session-1)
              · start → ask
            < ask[ask]: Pick [a: Apple] [b: Banana]
            < set timer inactivity at 1767578460000
            = awaiting choice
            > timer inactivity fired
            < say[ask]: This conversation was closed because we did not hear from you for a while.
            < end: inactive
            = ended
        "#]],
    );
}

const CHAIN: &str = r#"[
  {"id": "start", "kind": "start"},
  {"id": "m1", "kind": "message", "parts": [{"type": "text", "text": "one"}]},
  {"id": "m2", "kind": "message", "parts": [{"type": "text", "text": "two {{number(word)}}"}]},
  {"id": "m3", "kind": "message", "parts": [{"type": "text", "text": "three"}]},
  {"id": "done", "kind": "end"},
  {"id": "oops", "kind": "message", "parts": [{"type": "text", "text": "Let us try something else."}]},
  {"id": "bye", "kind": "end", "outcome": "recovered"}
]"#;
const CHAIN_EDGES: &str = r#"[
  {"from": "start", "port": "next", "to": "m1"},
  {"from": "m1", "port": "next", "to": "m2"},
  {"from": "m2", "port": "next", "to": "m3"},
  {"from": "m3", "port": "next", "to": "done"},
  {"from": "oops", "port": "next", "to": "bye"}
]"#;

#[test]
fn the_step_budget_stops_a_turn_politely() {
    check(
        r#""variables": [{"name": "word", "type": "string", "default": "7"}], "settings": {"step_budget": 3},"#,
        CHAIN,
        CHAIN_EDGES,
        "[]",
        &expect![[r##"
            # t
            > start en web (session-1)
              · start → m1
            < say[m1]: one
              · m2
            < say[m2]: two 7
            < error[m3]: the flow ran 3 steps without waiting for the visitor; it probably loops (stopped before this node)
            < say[m3]: Sorry, something went wrong. Please try again later, or type "agent" to reach a person.
            < end: error
            = ended
        "##]],
    );
}

#[test]
fn a_runtime_error_goes_to_the_error_event() {
    check(
        r#""variables": [{"name": "word", "type": "string", "default": "seven"}], "events": {"error": {"target": "oops"}},"#,
        CHAIN,
        CHAIN_EDGES,
        "[]",
        &expect![[r##"
            # t
            > start en web (session-1)
              · start → m1
            < say[m1]: one
              · m2
            < error[m2]: line 1, column 7: `number` cannot read "seven" as a number
              · oops
            < say[oops]: Let us try something else.
              · bye
            < end: recovered
            = ended
        "##]],
    );
}

const SUB: &str = r#"{"schema_version": 2, "id": "sub", "name": "sub",
  "variables": [{"name": "x", "type": "number"}, {"name": "y", "type": "number"}, {"name": "ok", "type": "string"}],
  "interface": {"inputs": ["x"], "outputs": ["y"]},
  "nodes": [
    {"id": "start", "kind": "start"},
    {"id": "double", "kind": "set", "assignments": [{"var": "y", "value": "x * 2"}]},
    {"id": "ask", "kind": "input", "prompt": "Sub asks: ok? ({{y}})", "input_type": "text", "save_as": "ok", "retries": 0},
    {"id": "done", "kind": "end"}
  ],
  "edges": [
    {"from": "start", "port": "next", "to": "double"},
    {"from": "double", "port": "next", "to": "ask"},
    {"from": "ask", "port": "next", "to": "done"},
    {"from": "ask", "port": "invalid", "to": "done"}
  ]}"#;

#[test]
fn sub_flows_take_inputs_and_return_outputs() {
    check_library(
        &[SUB],
        r#""variables": [{"name": "n", "type": "number", "default": 21}, {"name": "result", "type": "number"}],"#,
        r#"[
          {"id": "start", "kind": "start"},
          {"id": "call", "kind": "call", "flow": "sub", "inputs": {"x": "n"}, "outputs": {"result": "y"}},
          {"id": "show", "kind": "message", "parts": [{"type": "text", "text": "Result: {{result}}"}]},
          {"id": "done", "kind": "end"}
        ]"#,
        r#"[
          {"from": "start", "port": "next", "to": "call"},
          {"from": "call", "port": "next", "to": "show"},
          {"from": "show", "port": "next", "to": "done"}
        ]"#,
        r#"[{"text": "fine"}]"#,
        &expect![[r##"
            # t
            > start en web (session-1)
              · start → call → start → double → ask
              · x = 21
              · y = 42
            < ask[ask]: Sub asks: ok? (42) (text)
            = awaiting text
            > text "fine"
              · done → show
              · ok = "fine"
              · result = 42
            < say[show]: Result: 42
              · done
            < end: completed
            = ended
        "##]],
    );
}
