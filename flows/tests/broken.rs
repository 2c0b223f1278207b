//! The corpus of broken flows (`tests/broken/`): one flow per diagnostic kind, each with the
//! full list of diagnostics it must produce (`<name>.txt`, update with `UPDATE_EXPECT=1`).

use std::path::{Path, PathBuf};

use expect_test::ExpectFile;
use flows::{Code, Library, Severity};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken")
}

fn load(name: &str) -> flows::Flow {
    let path = corpus().join(format!("{name}.flow.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    flows::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Validates `tests/broken/<name>.flow.json` (with `_sub.flow.json` available as a sub-flow),
/// asserts that `code` is among the diagnostics with the given severity, and compares the
/// whole list with `<name>.txt`.
fn check(name: &str, code: Code, severity: Severity) {
    let mut library = Library::new();
    library.insert(load("_sub"));
    let flow = load(name);
    library.insert(flow.clone());
    let diagnostics = flows::validate(&flow, &library);
    assert!(
        diagnostics
            .iter()
            .any(|d| d.code == code && d.severity == severity),
        "{name}: expected a {severity:?} {code:?}, got {diagnostics:#?}"
    );
    let rendered: String = diagnostics.iter().map(|d| format!("{d}\n")).collect();
    ExpectFile {
        path: corpus().join(format!("{name}.txt")),
        position: file!(),
    }
    .assert_eq(&rendered);
}

#[test]
fn the_unbroken_base_flow_is_clean() {
    let text = std::fs::read_to_string(corpus().join("dead-end.flow.json")).unwrap();
    let mut flow = flows::from_json(&text).unwrap();
    flow.edges.push(flows::model::Edge {
        from: "big".into(),
        port: "next".into(),
        to: "done".into(),
    });
    assert_eq!(flows::validate(&flow, &Library::new()), Vec::new());
}

macro_rules! broken {
    ($($test:ident: $file:literal => $code:ident $severity:ident,)*) => {
        $(
            #[test]
            fn $test() {
                check($file, Code::$code, Severity::$severity);
            }
        )*

        /// Every diagnostic code has a flow in the corpus.
        #[test]
        fn every_code_is_covered() {
            let covered = [$(Code::$code),*];
            for code in Code::ALL {
                assert!(covered.contains(code), "no broken flow shows {code:?}");
            }
        }
    };
}

broken! {
    duplicate_id: "duplicate-id" => DuplicateId Error,
    missing_start: "missing-start" => MissingStart Error,
    multiple_starts: "multiple-starts" => MultipleStarts Error,
    dangling_edge: "dangling-edge" => DanglingEdge Error,
    unknown_port: "unknown-port" => UnknownPort Error,
    port_connected_twice: "port-connected-twice" => PortConnectedTwice Error,
    dead_end: "dead-end" => DeadEnd Error,
    condition_without_default: "condition-without-default" => ConditionWithoutDefault Error,
    unreachable_node: "unreachable-node" => UnreachableNode Warning,
    loop_without_wait: "loop-without-wait" => LoopWithoutWait Error,
    used_before_set: "used-before-set" => UsedBeforeSet Warning,
    undeclared_variable: "undeclared-variable" => UndeclaredVariable Error,
    syntax_error: "syntax-error" => SyntaxError Error,
    type_error: "type-error" => TypeError Error,
    bad_subflow_contract: "bad-subflow-contract" => BadSubflowContract Error,
    no_way_to_a_human: "no-way-to-a-human" => NoWayToAHuman Warning,
    bad_variable: "bad-variable" => BadVariable Error,
    bad_node_settings: "bad-node-settings" => BadNodeSettings Error,
    bad_event_target: "bad-event-target" => BadEventTarget Error,
}
