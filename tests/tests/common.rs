//! One comparison for every corpus: the single place that decides whether two runs agree, and
//! says precisely where they do not.

use std::path::{Path, PathBuf};

use flows::Library;
use flows::fixtures::Fixtures;
use flows::scenario::Played;

pub fn library_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows/library")
}

pub fn bundled() -> Library {
    Library::bundled().unwrap_or_else(|(file, e)| panic!("{file}: {e}"))
}

/// The demo shop's canned connector answers, which the scenarios and the random visitors get.
pub fn bundled_fixtures() -> Fixtures {
    let text = std::fs::read_to_string(library_dir().join("fixtures.json")).unwrap();
    Fixtures::from_json(&text).unwrap()
}

/// Asserts that two runs of the same inputs agree step by step: the input each side was
/// given (random visitors choose from what they were offered), the effects, the status and
/// the whole session afterwards.
pub fn assert_same(what: &str, interpreted: &[Played], compiled: &[Played]) {
    for (i, (a, b)) in interpreted.iter().zip(compiled).enumerate() {
        let place = format!("{what}, step {i} (input {:?})", a.input);
        assert_eq!(a.input, b.input, "{place}: the inputs differ");
        assert_eq!(a.now, b.now, "{place}: the clocks differ");
        assert_eq!(
            a.step.effects, b.step.effects,
            "{place}: the effects differ (left: interpreter, right: compiled)"
        );
        assert_eq!(a.step.status, b.step.status, "{place}: the statuses differ");
        assert_eq!(
            a.session.to_json(),
            b.session.to_json(),
            "{place}: the sessions differ (left: interpreter, right: compiled)"
        );
        assert_eq!(a.session, b.session, "{place}: the sessions differ");
    }
    assert_eq!(
        interpreted.len(),
        compiled.len(),
        "{what}: one run took more steps"
    );
}
