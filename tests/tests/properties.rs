//! Random visitors on every compiled bundled flow: the same script, played on the interpreter
//! and on the compiled module, gives the same steps.

use flows::Interpreter;
use flows::arbitrary::{self, Script, World};
use proptest::prelude::*;

use crate::common::{assert_same, bundled, bundled_fixtures};

fn check(script: &Script) -> Result<(), TestCaseError> {
    let library = bundled();
    let fixtures = bundled_fixtures();
    for compiled in tests::bundled::engines() {
        let interpreter = Interpreter::new(&library, &compiled.flow().id).unwrap();
        let a = arbitrary::play(&interpreter, script, World::new(fixtures.clone()));
        let b = arbitrary::play(compiled.as_ref(), script, World::new(fixtures.clone()));
        assert_same(&format!("{} with {script:?}", compiled.flow().id), &a, &b);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_visitors_get_the_same_steps_from_compiled_bundled_flows(script in arbitrary::script()) {
        check(&script)?;
    }
}
