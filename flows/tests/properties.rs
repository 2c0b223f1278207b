//! Properties of the engine over random conversations (`flows::arbitrary`): on every bundled
//! flow and on random valid flows nothing panics, no turn runs away, sessions survive
//! serialization exactly, restoring a session changes nothing, and refused inputs leave the
//! session as it was. The generator keeps its promises: every node kind, calls that wait in
//! the sub-flow, and a seeded corpus that is deterministic and uses every operator, function
//! and piece of syntax. Also the regression tests for what the fuzz targets found.
//!
//! Case counts are modest so that the module runs in seconds; `PROPTEST_CASES=10000` raises
//! them all. Failing cases are saved in `proptest-regressions/properties.txt` and replayed
//! first on the next run.

use std::sync::OnceLock;

use flows::arbitrary::{self, Player, Script, World};
use flows::engine::{Effect, Engine, Input, Interpreter, Session, Status, Trace, Waiting};
use flows::fixtures::Fixtures;
use flows::model::NodeKind;
use flows::scenario::Played;
use flows::{Flow, Library, Severity};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{FileFailurePersistence, TestCaseError, TestRunner};

/// `cases` unless `PROPTEST_CASES` says otherwise; failures persist next to the crate.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/properties.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// The bundled flows, each ready to run, and the demo shop's canned lookup answers.
struct Bundled {
    engines: Vec<(String, Interpreter)>,
    fixtures: Fixtures,
}

fn bundled() -> &'static Bundled {
    static BUNDLED: OnceLock<Bundled> = OnceLock::new();
    BUNDLED.get_or_init(|| {
        let library = Library::bundled().unwrap_or_else(|(file, e)| panic!("{file}: {e}"));
        let engines = library
            .flows()
            .map(|flow| {
                let engine = Interpreter::new(&library, &flow.id)
                    .unwrap_or_else(|e| panic!("{}: {e}", flow.id));
                (flow.id.clone(), engine)
            })
            .collect::<Vec<_>>();
        assert!(!engines.is_empty(), "no bundled flows");
        Bundled {
            engines,
            fixtures: bundled_fixtures(),
        }
    })
}

/// `library/fixtures.json`; lookups of flows without fixtures are answered with errors.
fn bundled_fixtures() -> Fixtures {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/library/fixtures.json");
    match std::fs::read_to_string(path) {
        Ok(text) => Fixtures::from_json(&text).unwrap(),
        Err(_) => Fixtures::default(),
    }
}

/// The engine's message when a turn exhausts its step budget.
const BUDGET: &str = "steps without waiting";

/// What must hold after every step, whatever the flow and the input.
fn check_step(before: &Session, played: &Played) -> Result<(), TestCaseError> {
    let Played {
        input,
        step,
        session,
        ..
    } = played;
    for effect in &step.effects {
        if let Effect::Error { node, message } = effect {
            prop_assert!(
                !message.contains(BUDGET),
                "a turn ran away at {node:?} after {input:?}: {message}"
            );
            // Validation guarantees every required port is connected and every node prepared.
            prop_assert!(
                !message.contains("nothing is connected") && !message.contains("internal:"),
                "a valid flow failed at {node:?} after {input:?}: {message}"
            );
        }
    }
    prop_assert_eq!(step.status, session.status());
    let restored = Session::from_json(&session.to_json());
    prop_assert_eq!(
        restored.as_ref(),
        Ok(session),
        "the session changed through JSON after {:?}",
        input
    );
    let rejected = step
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Rejected { .. }));
    if rejected {
        prop_assert_eq!(
            step.effects.len(),
            1,
            "a refusal comes alone: {:?}",
            step.effects
        );
        // Debug output, because `NaN != NaN` even in a session nothing touched.
        prop_assert_eq!(
            format!("{session:?}"),
            format!("{before:?}"),
            "a refused {:?} changed the session",
            input
        );
    } else {
        prop_assert_eq!(session.turns, before.turns + 1);
    }
    Ok(())
}

/// Plays `script`, checking every step; when `restore_at` is given, the session is written
/// to JSON and read back before that turn (and, with `every`, before every turn from there).
fn play(
    engine: &dyn Engine,
    script: &Script,
    fixtures: &Fixtures,
    restore_at: Option<(usize, bool)>,
) -> Result<Vec<Played>, TestCaseError> {
    let mut player = Player::new(engine, World::new(fixtures.clone()), script.now);
    let mut played = Vec::with_capacity(script.turns.len() + 1);
    let before = player.session.clone();
    let start = player.input(Input::Start(script.start.clone()));
    check_step(&before, &start)?;
    played.push(start);
    for (i, turn) in script.turns.iter().enumerate() {
        if let Some((at, every)) = restore_at
            && (i == at || (every && i > at))
        {
            player.session = Session::from_json(&player.session.to_json()).unwrap();
        }
        let before = player.session.clone();
        let step = player.turn(turn);
        check_step(&before, &step)?;
        played.push(step);
    }
    Ok(played)
}

/// Plays `script` straight and again with the session restored from JSON at turn `at`: the
/// steps and sessions must be identical.
fn check_restore(
    engine: &dyn Engine,
    script: &Script,
    fixtures: &Fixtures,
    at: prop::sample::Index,
    every: bool,
) -> Result<(), TestCaseError> {
    let straight = play(engine, script, fixtures, None)?;
    let at = at.index(script.turns.len().max(1));
    let restored = play(engine, script, fixtures, Some((at, every)))?;
    for (i, (a, b)) in straight.iter().zip(&restored).enumerate() {
        prop_assert_eq!(
            a,
            b,
            "step {} differs after restoring the session at turn {}",
            i,
            at
        );
    }
    prop_assert_eq!(straight.len(), restored.len());
    Ok(())
}

proptest! {
    #![proptest_config(config(64))]

    /// Random conversations with every bundled flow: no panic, no runaway turn, exact session
    /// round trips, refusals that change nothing; and restoring the session at a random turn
    /// gives the very same steps.
    #[test]
    fn bundled_flows_survive_random_conversations(
        script in arbitrary::script(),
        at in any::<prop::sample::Index>(),
        every in any::<bool>(),
    ) {
        let bundled = bundled();
        for (_, engine) in &bundled.engines {
            check_restore(engine, &script, &bundled.fixtures, at, every)?;
        }
    }
}

/// Validates `flow` and prepares it to run, with the sub-flow its `call` nodes call.
fn engine_for(flow: &Flow) -> Result<Interpreter, TestCaseError> {
    let library = arbitrary::library_for(flow);
    let errors: Vec<String> = flows::validate(flow, &library)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect();
    prop_assert!(
        errors.is_empty(),
        "generated flow has errors:\n{}\n{}",
        errors.join("\n"),
        flows::to_json(flow)
    );
    Interpreter::new(&library, &flow.id).map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #![proptest_config(config(128))]

    /// Generated flows are valid and survive the file format unchanged.
    #[test]
    fn generated_flows_are_valid_and_round_trip(flow in arbitrary::valid_flow()) {
        engine_for(&flow)?;
        let text = flows::to_json(&flow);
        let loaded = flows::from_json(&text);
        prop_assert_eq!(loaded.as_ref(), Ok(&flow), "{}", text);
    }

    /// Random conversations with generated flows: the same properties as for the bundled
    /// flows. These flows cannot loop without waiting, so a budget error is always a bug.
    #[test]
    fn generated_flows_survive_random_conversations(
        flow in arbitrary::valid_flow(),
        script in arbitrary::script(),
        at in any::<prop::sample::Index>(),
        every in any::<bool>(),
    ) {
        let engine = engine_for(&flow)?;
        check_restore(&engine, &script, &Fixtures::default(), at, every)?;
    }
}

/// Draws `n` values from `strategy` with a fixed seed.
fn sample<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// The generator reaches what it promises: every node kind, back edges to wait points,
/// localized texts and event targets. A narrowed generator would make the properties above
/// pass vacuously.
#[test]
fn generated_flows_cover_every_node_kind() {
    let flows = sample(arbitrary::valid_flow(), 200);
    let mut kinds = std::collections::BTreeSet::new();
    let (mut back_edges, mut localized, mut targets) = (0, 0, 0);
    for flow in &flows {
        let position = |id: &str| flow.nodes.iter().position(|n| n.id == id).unwrap();
        for node in &flow.nodes {
            kinds.insert(node.kind.name());
        }
        back_edges += flow
            .edges
            .iter()
            .filter(|e| position(&e.to) <= position(&e.from))
            .count();
        localized += usize::from(flows::to_json(flow).contains("\"en\": "));
        targets += usize::from(flow.events.error.target.is_some());
        assert!(matches!(
            flow.nodes.first().map(|n| &n.kind),
            Some(NodeKind::Start(_))
        ));
        assert!(matches!(
            flow.nodes.last().map(|n| &n.kind),
            Some(NodeKind::End(_))
        ));
        assert!(
            (3..=21).contains(&flow.nodes.len()),
            "{} nodes",
            flow.nodes.len()
        );
    }
    assert_eq!(kinds, arbitrary::NODE_KINDS.into_iter().collect());
    assert!(back_edges > 20, "{back_edges} back edges");
    assert!(localized > 20, "{localized} flows with localized texts");
    assert!(targets > 5, "{targets} flows with an error target");
}

/// Random conversations are meaningful: they reach every status and get every kind of input
/// accepted, not only refused.
#[test]
fn generated_conversations_reach_every_state() {
    let cases = sample((arbitrary::valid_flow(), arbitrary::script()), 200);
    let mut statuses = std::collections::BTreeSet::new();
    let mut accepted = std::collections::BTreeSet::new();
    let (mut steps, mut refused, mut in_sub_flow) = (0, 0, 0);
    let mut sub_nodes = std::collections::BTreeSet::new();
    for (flow, script) in &cases {
        let engine = engine_for(flow).unwrap();
        for played in arbitrary::play(&engine, script, World::default()) {
            steps += 1;
            statuses.insert(format!("{:?}", played.step.status));
            if played.session.frames.len() > 1 && played.step.status != Status::Ended {
                in_sub_flow += 1;
            }
            for effect in &played.step.effects {
                if let Effect::Trace(Trace::NodeEntered { flow, node }) = effect
                    && flow == arbitrary::SUB_FLOW
                {
                    sub_nodes.insert(node.clone());
                }
            }
            if played
                .step
                .effects
                .iter()
                .any(|e| matches!(e, Effect::Rejected { .. }))
            {
                refused += 1;
            } else {
                let kind = serde_json::to_value(&played.input).unwrap();
                let kind = match kind {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Object(o) => o.keys().next().cloned().unwrap_or_default(),
                    other => other.to_string(),
                };
                accepted.insert(kind);
            }
        }
    }
    let every_status = [
        Status::AwaitingChoice,
        Status::AwaitingText,
        Status::AwaitingLookup,
        Status::AwaitingAgent,
        Status::AwaitingTimer,
        Status::Ended,
    ];
    for status in every_status {
        assert!(
            statuses.contains(&format!("{status:?}")),
            "{status:?} never reached: {statuses:?}"
        );
    }
    let every_input = [
        "start",
        "text",
        "choice",
        "lookup_result",
        "timer",
        "hand_back",
        "restart",
        "cancel",
    ];
    for input in every_input {
        assert!(
            accepted.contains(input),
            "no {input} input accepted: {accepted:?}"
        );
    }
    // Refusals are exercised too, but most inputs should be meaningful.
    assert!(
        refused > 0 && refused * 2 < steps,
        "{refused} of {steps} refused"
    );
    // Calls really start the sub-flow, conversations wait inside it and go everywhere in it,
    // and calls return.
    assert!(
        in_sub_flow * 50 > steps,
        "{in_sub_flow} of {steps} steps wait in a sub-flow"
    );
    let every_sub_node: std::collections::BTreeSet<String> = arbitrary::sub_flow()
        .nodes
        .iter()
        .map(|n| n.id.clone())
        .collect();
    assert_eq!(sub_nodes, every_sub_node);
}

/// Sessions waiting for something keep the node they wait at, so a restored session can go on.
#[test]
fn a_restored_session_waits_where_it_was() {
    let cases = sample((arbitrary::valid_flow(), arbitrary::script()), 50);
    for (flow, script) in &cases {
        let engine = engine_for(flow).unwrap();
        let library = arbitrary::library_for(flow);
        for played in arbitrary::play(&engine, script, World::default()) {
            let restored = Session::from_json(&played.session.to_json()).unwrap();
            // The node is in the flow of the current frame: the main flow or the sub-flow.
            let current = restored.frames.last().map(|f| f.flow.as_str());
            let current = library.get(current.unwrap_or(&flow.id)).unwrap();
            let node = match &restored.waiting {
                Waiting::Choice { node, .. }
                | Waiting::Input { node }
                | Waiting::Lookup { node, .. }
                | Waiting::Timer { node, .. } => Some(node),
                _ => None,
            };
            if let Some(node) = node {
                assert!(
                    current.node(node).is_some(),
                    "waiting at unknown node {node} of {}",
                    current.id
                );
            }
        }
    }
}

/// The seed of the corpus the differential tests of compiled flows use.
const CORPUS_SEED: u64 = 20_260_105;

/// The seeded corpus is the same on every run, covers every node kind, operator, function
/// and piece of syntax, and every flow in it is valid and can be prepared to run.
#[test]
fn the_corpus_is_deterministic_and_covers_the_language() {
    let corpus = arbitrary::corpus(CORPUS_SEED, 200);
    let again = arbitrary::corpus(CORPUS_SEED, 200);
    assert_eq!(corpus.len(), 200);
    let json = |flows: &[Flow]| flows.iter().map(flows::to_json).collect::<Vec<_>>();
    assert_eq!(json(&corpus), json(&again));
    // A shorter corpus is a prefix; another seed gives other flows.
    assert_eq!(
        json(&arbitrary::corpus(CORPUS_SEED, 10)),
        json(&corpus[..10])
    );
    assert_ne!(
        json(&arbitrary::corpus(CORPUS_SEED + 1, 10)),
        json(&corpus[..10])
    );
    let ids: std::collections::BTreeSet<&str> = corpus.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids.len(), 200);
    assert!(
        ids.contains("gen-0000") && ids.contains("gen-0199"),
        "{ids:?}"
    );
    for flow in &corpus {
        engine_for(flow).unwrap();
    }
    let coverage = arbitrary::coverage(&corpus);
    assert_eq!(coverage.missing(), Vec::<String>::new(), "{coverage}");
    assert!(
        coverage.kinds["call"] >= 20,
        "only {} flows call the sub-flow",
        coverage.kinds["call"]
    );
}

/// The sub-flow is valid on its own, and `coverage` reports what a flow lacks.
#[test]
fn the_sub_flow_is_valid_and_coverage_reports_gaps() {
    let sub = arbitrary::sub_flow();
    let mut library = Library::new();
    library.insert(sub.clone());
    let diagnostics = flows::validate(&sub, &library);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    Interpreter::new(&library, &sub.id).unwrap();

    let coverage = arbitrary::coverage([&sub]);
    expect_test::expect![[r#"
        1 flows
        kinds: choice 1, condition 1, end 1, input 1, message 1, set 1, start 1, wait 1
        binary: && 1, > 1, + 1
        unary: ! 1
        functions: upper 1, join 1, max 1, is_empty 1
        syntax: dynamic choice 1, list literal 1
    "#]]
    .assert_eq(&coverage.to_string());
    expect_test::expect![[r#"
        kind lookup
        kind handoff
        kind call
        kind ab_split
        kind jump
        binary ||
        binary ==
        binary !=
        binary <
        binary <=
        binary >=
        binary -
        binary *
        binary /
        binary %
        unary -
        function len
        function contains
        function lower
        function trim
        function starts_with
        function ends_with
        function split
        function first
        function last
        function round
        function floor
        function ceil
        function abs
        function min
        function number
        function string
        function sum
        function pluck
        function where
        function default
        syntax field access
        syntax index"#]]
    .assert_eq(&coverage.missing().join("\n"));
}

// ---- Regressions -------------------------------------------------------------------------

/// Runs `inputs` on the flow in `json`, starting at `scenario::DEFAULT_START`.
fn run_json(json: &str, inputs: Vec<Input>) -> Session {
    let flow = flows::from_json(json).unwrap();
    let mut library = Library::new();
    library.insert(flow.clone());
    let engine = Interpreter::new(&library, &flow.id).unwrap();
    let mut player = Player::new(&engine, World::default(), flows::scenario::DEFAULT_START);
    for input in inputs {
        player.input(input);
    }
    player.session
}

/// Found by `generated_flows_survive_random_conversations`: a number with 16 or 17 significant
/// digits (a visitor's answer, a lookup row's price of `9.003722017980587e287`) came back from
/// the session's JSON as a neighbouring float, because serde_json read floats "best effort"
/// without its `float_roundtrip` feature; a conversation restored after a restart differed
/// from the one stored.
#[test]
fn a_typed_number_survives_session_json() {
    let session = run_json(
        r#"{
          "schema_version": 2, "id": "amount", "name": "amount",
          "variables": [{"name": "amount", "type": "number", "default": 0}],
          "nodes": [
            {"id": "start", "kind": "start"},
            {"id": "ask", "kind": "input", "prompt": "How much?", "input_type": "number", "save_as": "amount"},
            {"id": "wait", "kind": "wait", "seconds": 60},
            {"id": "done", "kind": "end"}
          ],
          "edges": [
            {"from": "start", "port": "next", "to": "ask"},
            {"from": "ask", "port": "next", "to": "wait"},
            {"from": "ask", "port": "invalid", "to": "done"},
            {"from": "wait", "port": "timeout", "to": "done"}
          ]
        }"#,
        vec![
            Input::Start(Default::default()),
            Input::Text("123456789.123456789".into()),
        ],
    );
    let stored = session.main_vars()["amount"].clone();
    assert_eq!(stored, flows::Value::Number(123_456_789.123_456_79));
    let restored = Session::from_json(&session.to_json()).unwrap();
    assert_eq!(restored, session);
    let price = 9.003_722_017_980_587e287_f64;
    assert_eq!(
        serde_json::from_str::<f64>(&serde_json::to_string(&price).unwrap()).unwrap(),
        price
    );
}

/// Found while checking what `generated_flows_survive_random_conversations` cannot reach
/// often: a visitor's `1e308` times ten overflowed to infinity, which JSON cannot store, so a
/// restored session differed. Arithmetic now refuses to overflow, like a division by zero, and
/// the flow's error handling takes over; the session holds no infinity and round-trips.
#[test]
fn an_overflowing_number_fails_instead_of_storing_infinity() {
    let flow = r#"{
          "schema_version": 2, "id": "amount", "name": "amount",
          "variables": [{"name": "amount", "type": "number", "default": 0}],
          "nodes": [
            {"id": "start", "kind": "start"},
            {"id": "ask", "kind": "input", "prompt": "How much?", "input_type": "number", "save_as": "amount"},
            {"id": "grow", "kind": "set", "assignments": [{"var": "amount", "value": "amount * 10"}]},
            {"id": "wait", "kind": "wait", "seconds": 60},
            {"id": "done", "kind": "end"}
          ],
          "edges": [
            {"from": "start", "port": "next", "to": "ask"},
            {"from": "ask", "port": "next", "to": "grow"},
            {"from": "ask", "port": "invalid", "to": "done"},
            {"from": "grow", "port": "next", "to": "wait"},
            {"from": "wait", "port": "timeout", "to": "done"}
          ]
        }"#;
    let session = run_json(
        flow,
        vec![
            Input::Start(Default::default()),
            Input::Text("1e308".into()),
        ],
    );
    assert_eq!(session.main_vars()["amount"], flows::Value::Number(1e308));
    assert!(
        matches!(&session.waiting, Waiting::Ended { outcome } if outcome == "error"),
        "{:?}",
        session.waiting
    );
    assert_eq!(Session::from_json(&session.to_json()).unwrap(), session);
}

proptest! {
    /// Keywords match ignoring case, as `to_lowercase` on both sides would (the engine compares
    /// without allocating; `Σ` at the end of a word is the case that differs char by char).
    #[test]
    fn keywords_match_like_lowercased_strings(
        keyword in "[ aAbBΣσς İi人工]{0,6}",
        text in "[ aAbBΣσς İi人工]{0,6}",
    ) {
        let event = flows::model::KeywordEvent {
            enabled: true,
            keywords: vec![keyword.clone()],
            target: None,
        };
        prop_assert_eq!(
            event.matches(&text),
            keyword.trim().to_lowercase() == text.trim().to_lowercase()
        );
    }
}
