//! One corpus, two engines: every scenario of every bundled flow, on the interpreter and on
//! the committed compiled module.

use flows::scenario::{self, ScenarioFile};
use flows::{Engine, Interpreter};

use crate::common::{assert_same, bundled, library_dir};

fn scenario_files() -> Vec<ScenarioFile> {
    let mut files = Vec::new();
    for (name, _) in flows::library::BUNDLED {
        let stem = name.trim_end_matches(".flow.json");
        let path = library_dir().join(format!("{stem}.scenarios.json"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            files.push(
                scenario::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            );
        }
    }
    files
}

#[test]
fn every_scenario_gives_the_same_steps_compiled_and_interpreted() {
    let library = bundled();
    let compiled = tests::bundled::engines();
    let mut played = 0;
    for file in scenario_files() {
        let interpreter = Interpreter::new(&library, &file.flow).unwrap();
        let engine = compiled
            .iter()
            .find(|e| e.flow().id == file.flow)
            .unwrap_or_else(|| panic!("no compiled module for `{}`", file.flow));
        assert_eq!(engine.flow(), interpreter.flow(), "{}: FlowRef", file.flow);
        for scenario in &file.scenarios {
            let a = scenario.play(&interpreter);
            let b = scenario.play(engine.as_ref());
            assert_same(&format!("{} / {}", file.flow, scenario.name), &a, &b);
            // The expectations written in the scenario file hold for the compiled module too.
            let failures = scenario.check(&b);
            assert!(
                failures.is_empty(),
                "{} / {}: {failures:#?}",
                file.flow,
                scenario.name
            );
            played += b.len();
        }
    }
    assert!(played > 150, "only {played} steps were compared");
}
