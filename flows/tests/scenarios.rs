//! Every scenario of every bundled flow, played on the interpreter: the expectations written in
//! the scenario files must hold, and the whole transcript must match its snapshot in
//! `tests/transcripts/` (update with `UPDATE_EXPECT=1`).

use std::path::Path;

use expect_test::ExpectFile;
use flows::scenario::{self, ScenarioFile};
use flows::{Interpreter, Library};

fn library_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/library"))
}

fn scenario_files() -> Vec<(String, ScenarioFile)> {
    let mut files = Vec::new();
    for (name, _) in flows::library::BUNDLED {
        let stem = name.trim_end_matches(".flow.json");
        let path = library_dir().join(format!("{stem}.scenarios.json"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            let file =
                scenario::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files.push((stem.to_owned(), file));
        }
    }
    files
}

#[test]
fn every_top_level_flow_has_scenarios() {
    let library = Library::bundled().unwrap();
    let files = scenario_files();
    for flow in library.flows().filter(|f| f.interface.is_empty()) {
        let scenarios = files
            .iter()
            .filter(|(_, f)| f.flow == flow.id)
            .map(|(_, f)| f.scenarios.len())
            .sum::<usize>();
        assert!(
            scenarios >= 4,
            "flow `{}` has only {scenarios} scenario(s)",
            flow.id
        );
    }
}

#[test]
fn bundled_flows_validate_without_any_diagnostic() {
    let library = Library::bundled().unwrap();
    for flow in library.flows() {
        assert_eq!(flows::validate(flow, &library), Vec::new(), "{}", flow.id);
    }
}

#[test]
fn scenarios_play_as_written() {
    let library = Library::bundled().unwrap();
    let mut failures = Vec::new();
    for (stem, file) in scenario_files() {
        let engine =
            Interpreter::new(&library, &file.flow).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let mut transcript = String::new();
        for scenario in &file.scenarios {
            let played = scenario.play(&engine);
            failures.extend(scenario.check(&played));
            transcript.push_str(&scenario::transcript(&scenario.name, &played));
            transcript.push('\n');
        }
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/transcripts/{stem}.txt"));
        ExpectFile {
            path,
            position: file!(),
        }
        .assert_eq(&transcript);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The complete example of `docs/flow-format.md` (§12) is played, so the spec cannot drift
/// from the engine: its flow validates cleanly and its scenario gives its transcript.
#[test]
fn the_spec_example_behaves_as_documented() {
    let doc = include_str!("../../docs/flow-format.md");
    let example = &doc[doc.find("## 12. A complete example").expect("§12 exists")..];
    let blocks: Vec<&str> = example
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|b| b.strip_prefix("json").unwrap_or(b).trim())
        .collect();
    let flow = flows::from_json(blocks[0]).unwrap();
    let mut library = Library::new();
    library.insert(flow.clone());
    assert_eq!(flows::validate(&flow, &library), Vec::new());
    let transcript = blocks
        .iter()
        .find(|b| b.starts_with("# "))
        .expect("a transcript block");
    let scenarios = scenario::parse_file(blocks.last().expect("a scenario block")).unwrap();
    let engine = Interpreter::new(&library, &scenarios.flow).unwrap();
    let scenario = &scenarios.scenarios[0];
    let played = scenario.play(&engine);
    assert_eq!(scenario.check(&played), Vec::<String>::new());
    assert_eq!(
        scenario::transcript(&scenario.name, &played).trim(),
        *transcript
    );
}
