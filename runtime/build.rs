//! Compiles the bundled flows (`flows/library/`) into Rust with `codegen`, so that `kefu`
//! runs them as generated code; `runtime::compiled` includes the modules and the engine
//! registry uses them while the library's flows are unchanged (else it interprets).

use std::path::Path;

fn main() {
    // `sqlx::migrate!` embeds runtime/migrations/; rebuild when they change.
    println!("cargo:rerun-if-changed=migrations");
    // Read when the script runs, not when it is compiled: a build directory shared between
    // clones may run a script compiled in another clone.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let library = Path::new(&manifest_dir).join("../flows/library");
    let out_dir = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let flow = |name: &str| library.join(format!("{name}.flow.json"));
    let built = codegen::Builder::new()
        .flow(flow("guided-shopping"))
        .flow(flow("order-status"))
        .flow(flow("returns"))
        .flow(flow("return-reason"))
        .flow(flow("faq-hours"))
        .compile_to(out_dir);
    if let Err(error) = built {
        panic!("the bundled flows do not compile: {error}");
    }
}
