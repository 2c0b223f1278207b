//! Fuzz target: flow documents, as the server and the designer receive them. Whatever the
//! bytes, loading, validating, preparing and running must not panic. Also: a loaded flow comes
//! back unchanged from its own JSON; a flow without validation errors can be prepared to run;
//! a refused input leaves the session as it was; and every session comes back unchanged from
//! its JSON.

#![no_main]

use std::sync::OnceLock;

use flows::arbitrary::{Action, Answer, Player, Stale, Typed, World, resolve};
use flows::engine::{Effect, Input, StartInput};
use flows::{Interpreter, Library, Session, Severity};
use libfuzzer_sys::fuzz_target;

/// A fixed conversation that goes wherever the flow asks: answers, keywords, lookups, timers,
/// hand-backs, a restart and inputs that must be refused.
const SCRIPT: &[Action] = &[
    Action::Proceed(0),
    Action::Proceed(1),
    Action::Type(Typed::Sample(0)),
    Action::Proceed(2),
    Action::FireTimer(0),
    Action::Type(Typed::Keyword(0)),
    Action::Proceed(0),
    Action::Answer(Answer::Empty),
    Action::Stale(Stale::Start),
    Action::Restart,
    Action::Proceed(3),
    Action::Type(Typed::Invalid(1)),
    Action::Proceed(1),
    Action::Cancel,
    Action::Proceed(0),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(flow) = flows::from_json(text) else {
        return;
    };
    let again = flows::from_json(&flows::to_json(&flow));
    assert_eq!(
        again.as_ref(),
        Ok(&flow),
        "a flow changed through its own JSON"
    );

    // The bundled flows are there to be called (`returns` calls `return-reason`); the fuzzed
    // flow replaces any of the same id.
    let mut library = bundled().clone();
    // Generated seeds call the fixed sub-flow of `flows::arbitrary`.
    library.insert(flows::arbitrary::sub_flow());
    library.insert(flow.clone());
    let diagnostics = flows::validate(&flow, &library);
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return;
    }
    // What validation lets through, the engine must be able to run.
    let engine = match Interpreter::new(&library, &flow.id) {
        Ok(engine) => engine,
        Err(e) => panic!("a flow without validation errors cannot be prepared: {e}"),
    };
    let mut player = Player::new(&engine, World::default(), flows::scenario::DEFAULT_START);
    player.input(Input::Start(StartInput {
        session_id: "fuzz".into(),
        locale: "en".into(),
        ..StartInput::default()
    }));
    for (i, action) in SCRIPT.iter().enumerate() {
        player.now += 61_000 * i64::try_from(i).unwrap_or(0);
        let input = resolve(action, &player.session, &player.world);
        let before = format!("{:?}", player.session);
        let played = player.input(input);
        if played
            .step
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Rejected { .. }))
        {
            assert_eq!(
                format!("{:?}", played.session),
                before,
                "a refusal changed the session"
            );
        }
        let restored = Session::from_json(&played.session.to_json());
        assert_eq!(
            restored.as_ref(),
            Ok(&played.session),
            "a session changed through JSON"
        );
    }
});

fn bundled() -> &'static Library {
    static BUNDLED: OnceLock<Library> = OnceLock::new();
    BUNDLED.get_or_init(|| Library::bundled().unwrap_or_default())
}
