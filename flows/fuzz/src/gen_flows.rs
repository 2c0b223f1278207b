//! Writes valid flows from `flows::arbitrary::valid_flow` into a directory, as seeds for the
//! `flow_json` target: `gen_flows DIR [COUNT]`. The same seed gives the same flows.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "corpus/flow_json".into());
    let count: usize = args.next().and_then(|c| c.parse().ok()).unwrap_or(50);
    std::fs::create_dir_all(&dir).expect("cannot create the seed directory");
    let mut runner = TestRunner::deterministic();
    let strategy = flows::arbitrary::valid_flow();
    for i in 0..count {
        let flow = strategy
            .new_tree(&mut runner)
            .expect("the strategy cannot fail")
            .current();
        let path = format!("{dir}/generated-{i:03}.flow.json");
        std::fs::write(&path, flows::to_json(&flow)).expect("cannot write a seed");
    }
    println!("wrote {count} generated flows to {dir}");
}
