//! Compiled vs interpreted: every scenario of every bundled flow, replayed on both engines.
//! Throughput is in turns (one `step` call each); the node steps per turn are printed once,
//! so node steps per second follow from the turn rate.
//!
//! `cargo bench -p tests --bench engines`; the figures and the ratio go to
//! `docs/benchmarks.md`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flows::engine::{Effect, Input, Millis, Trace};
use flows::{Engine, Interpreter, Library};

/// A flow's scenarios as plain inputs: each conversation is `(input, now)` pairs.
fn conversations(library: &Library, flow: &str) -> Vec<Vec<(Input, Millis)>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../flows/library")
        .join(format!("{flow}.scenarios.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let file = flows::scenario::parse_file(&text).expect("scenario file parses");
    let interpreter = Interpreter::new(library, flow).expect("bundled flow is valid");
    file.scenarios
        .iter()
        .map(|s| {
            s.play(&interpreter)
                .into_iter()
                .map(|p| (p.input, p.now))
                .collect()
        })
        .collect()
}

fn replay(engine: &dyn Engine, conversations: &[Vec<(Input, Millis)>]) {
    for conversation in conversations {
        let mut session = engine.new_session();
        for (input, now) in conversation {
            black_box(engine.step(&mut session, black_box(input), *now));
        }
        black_box(session);
    }
}

fn bench(c: &mut Criterion) {
    let library = Library::bundled().expect("bundled flows load");
    for compiled in tests::bundled::engines() {
        let id = compiled.flow().id.clone();
        let conversations = conversations(&library, &id);
        if conversations.is_empty() {
            continue;
        }
        let interpreter = Interpreter::new(&library, &id).expect("bundled flow is valid");
        let turns: usize = conversations.iter().map(Vec::len).sum();
        let mut nodes = 0;
        for conversation in &conversations {
            let mut session = interpreter.new_session();
            for (input, now) in conversation {
                let step = interpreter.step(&mut session, input, *now);
                nodes += step
                    .effects
                    .iter()
                    .filter(|e| matches!(e, Effect::Trace(Trace::NodeEntered { .. })))
                    .count();
            }
        }
        eprintln!(
            "{id}: {} scenarios, {turns} turns, {nodes} node steps",
            conversations.len()
        );
        let mut group = c.benchmark_group(format!("engines/{id}"));
        group.throughput(Throughput::Elements(turns as u64));
        group.bench_function("interpreted", |b| {
            b.iter(|| replay(&interpreter, &conversations));
        });
        group.bench_function("compiled", |b| {
            b.iter(|| replay(compiled.as_ref(), &conversations));
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
