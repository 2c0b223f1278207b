//! Compiles the seeded corpus of random valid flows (`flows::arbitrary::corpus`) into one Rust
//! module per flow, so that the differential tests run each of them on the interpreter and as
//! generated code. The bundled flows' modules are committed in `src/bundled/` instead, where a
//! reviewer sees what a change to the generator does to real output.

use std::fmt::Write as _;
use std::path::PathBuf;

/// The corpus: the seed and the number of flows. The tests read both from the generated file.
const SEED: u64 = 20_260_105;
const SIZE: usize = 200;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The corpus depends on the generator in `flows` and on `codegen`; cargo rebuilds this
    // script when either crate changes, since both are build-dependencies.
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let options = codegen::Options::with_library(flows::arbitrary::library_for(
        &flows::arbitrary::sub_flow(),
    ));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "/// The seed of `flows::arbitrary::corpus` the modules below were generated from.\npub const SEED: u64 = {SEED};\n/// How many flows the corpus has.\npub const SIZE: usize = {SIZE};\n"
    );
    let mut engines = Vec::new();
    for flow in flows::arbitrary::corpus(SEED, SIZE) {
        let code = match codegen::compile(&flow, &options) {
            Ok(code) => code,
            Err(error) => panic!("corpus flow `{}` does not compile: {error}", flow.id),
        };
        let module = codegen::file_name(&flow.id)
            .trim_end_matches(".rs")
            .to_owned();
        let _ = writeln!(out, "pub mod {module} {{\n{code}}}\n");
        engines.push(format!(
            "        Box::new({module}::{}::new()),",
            codegen::engine_name(&flow.id)
        ));
    }
    let _ = writeln!(
        out,
        "/// Every corpus flow, compiled, in corpus order.\npub fn engines() -> Vec<Box<dyn ::flows::Engine>> {{\n    vec![\n{}\n    ]\n}}",
        engines.join("\n")
    );
    let path = out_dir.join("corpus.rs");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(out.as_str()) {
        std::fs::write(&path, out).expect("OUT_DIR is writable");
    }
}
