//! Replays every scenario of the bundled flows on one engine, many times: a steady load for
//! `valgrind --tool=callgrind` (instruction counts do not depend on what else the machine is
//! doing, unlike the timings of `cargo bench -p tests --bench engines`).
//!
//! `replay interpreted|compiled [REPEATS]`; see docs/benchmarks.md.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use flows::engine::{Input, Millis};
use flows::{Engine, Interpreter, Library};

/// A scenario's inputs, each with the time it arrives.
type Conversation = Vec<(Input, Millis)>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(kind), repeats) = (args.first(), args.get(1)) else {
        eprintln!("usage: replay interpreted|compiled [REPEATS]");
        return ExitCode::FAILURE;
    };
    let repeats: usize = repeats.and_then(|r| r.parse().ok()).unwrap_or(1000);
    let Ok(library) = Library::bundled() else {
        eprintln!("the bundled flows do not load");
        return ExitCode::FAILURE;
    };
    let mut work: Vec<(Box<dyn Engine>, Vec<Conversation>)> = Vec::new();
    for compiled in tests::bundled::engines() {
        let id = compiled.flow().id.clone();
        let Ok(interpreter) = Interpreter::new(&library, &id) else {
            eprintln!("`{id}` does not load");
            return ExitCode::FAILURE;
        };
        let conversations = conversations(&interpreter, &id);
        let engine: Box<dyn Engine> = match kind.as_str() {
            "interpreted" => Box::new(interpreter),
            "compiled" => compiled,
            other => {
                eprintln!("unknown engine `{other}`: interpreted or compiled");
                return ExitCode::FAILURE;
            }
        };
        work.push((engine, conversations));
    }
    let started = Instant::now();
    let mut turns = 0usize;
    for _ in 0..repeats {
        for (engine, conversations) in &work {
            for conversation in conversations {
                let mut session = engine.new_session();
                for (input, now) in conversation {
                    std::hint::black_box(engine.step(&mut session, input, *now));
                    turns += 1;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{kind}: {turns} turns in {:.3} s, {:.0} turns/s",
        elapsed.as_secs_f64(),
        turns as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    ExitCode::SUCCESS
}

/// A flow's scenarios as `(input, now)` pairs, resolved once on the interpreter.
fn conversations(interpreter: &Interpreter, flow: &str) -> Vec<Conversation> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../flows/library")
        .join(format!("{flow}.scenarios.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let Ok(file) = flows::scenario::parse_file(&text) else {
        return Vec::new();
    };
    file.scenarios
        .iter()
        .map(|s| {
            s.play(interpreter)
                .into_iter()
                .map(|p| (p.input, p.now))
                .collect()
        })
        .collect()
}
