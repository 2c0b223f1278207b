//! Engine speed on the bundled guided-shopping flow: turns (one `step` call each) and node
//! steps per second, plus the serialized size of a session.
//!
//! `cargo bench -p flows --bench engine`; the figures go to `docs/benchmarks.md`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flows::engine::{Effect, Input, Trace};
use flows::scenario::{self, Scenario};
use flows::{Engine, Interpreter, Library};

const SCENARIOS: &str = include_str!("../library/guided-shopping.scenarios.json");

/// The first scenario of the shopping flow: the happy path a shopper takes.
fn scenario() -> Scenario {
    let file = scenario::parse_file(SCENARIOS).expect("scenario file parses");
    file.scenarios
        .into_iter()
        .next()
        .expect("at least one scenario")
}

fn bench(c: &mut Criterion) {
    let library = Library::bundled().expect("bundled flows load");
    let engine = Interpreter::new(&library, "guided-shopping").expect("flow is valid");
    let scenario = scenario();

    // Resolve the scenario's inputs once, so the loop measures the engine only.
    let played = scenario.play(&engine);
    let inputs: Vec<(Input, i64)> = played.iter().map(|p| (p.input.clone(), p.now)).collect();
    let turns = inputs.len() as u64;
    let nodes: u64 = played
        .iter()
        .flat_map(|p| &p.step.effects)
        .filter(|e| matches!(e, Effect::Trace(Trace::NodeEntered { .. })))
        .count() as u64;
    let sizes: Vec<usize> = played.iter().map(|p| p.session.to_json().len()).collect();
    eprintln!(
        "guided-shopping scenario {:?}: {turns} turns, {nodes} nodes entered; session JSON {} bytes at the end, {} at most",
        scenario.name,
        sizes.last().copied().unwrap_or(0),
        sizes.iter().max().copied().unwrap_or(0)
    );

    let conversation = || {
        let mut session = engine.new_session();
        for (input, now) in &inputs {
            black_box(engine.step(&mut session, black_box(input), *now));
        }
        session
    };

    let mut group = c.benchmark_group("interpreter/guided-shopping");
    group.throughput(Throughput::Elements(turns));
    group.bench_function("turns", |b| b.iter(conversation));
    group.throughput(Throughput::Elements(nodes));
    group.bench_function("node-steps", |b| b.iter(conversation));
    group.finish();

    let end = conversation();
    let mut group = c.benchmark_group("session");
    group.bench_function("to_json", |b| b.iter(|| black_box(&end).to_json()));
    let json = end.to_json();
    group.bench_function("from_json", |b| {
        b.iter(|| flows::Session::from_json(black_box(&json)));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
