//! The seeded corpus of random valid flows, compiled at build time: each flow, played by
//! random visitors on the interpreter and as generated code, gives the same steps; and the
//! corpus covers every node kind and every operator and function of the language.

use flows::Interpreter;
use flows::arbitrary::{self, World};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use crate::common::assert_same;

/// Conversations per corpus flow.
const SCRIPTS: usize = 12;

#[test]
fn the_compiled_corpus_is_the_seeded_corpus_and_covers_the_language() {
    let flows = arbitrary::corpus(tests::corpus::SEED, tests::corpus::SIZE);
    assert!(flows.len() >= 200, "{} flows", flows.len());
    let compiled = tests::corpus::engines();
    assert_eq!(compiled.len(), flows.len());
    for (flow, engine) in flows.iter().zip(&compiled) {
        let library = arbitrary::library_for(flow);
        assert_eq!(
            Some(engine.flow()),
            library.flow_ref(&flow.id).as_ref(),
            "the compiled module of `{}` is not of this flow",
            flow.id
        );
    }
    let coverage = arbitrary::coverage(&flows);
    assert_eq!(coverage.missing(), Vec::<String>::new(), "{coverage}");
}

#[test]
fn every_corpus_flow_gives_the_same_steps_compiled_and_interpreted() {
    let flows = arbitrary::corpus(tests::corpus::SEED, tests::corpus::SIZE);
    let compiled = tests::corpus::engines();
    let mut runner = TestRunner::deterministic();
    let mut steps = 0;
    for (flow, engine) in flows.iter().zip(&compiled) {
        let interpreter = Interpreter::new(&arbitrary::library_for(flow), &flow.id).unwrap();
        for _ in 0..SCRIPTS {
            let script = arbitrary::script().new_tree(&mut runner).unwrap().current();
            let a = arbitrary::play(&interpreter, &script, World::default());
            let b = arbitrary::play(engine.as_ref(), &script, World::default());
            assert_same(&format!("{} with {script:?}", flow.id), &a, &b);
            steps += a.len();
        }
    }
    assert!(steps > 10_000, "only {steps} steps were compared");
}
