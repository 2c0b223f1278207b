//! Compiles the bundled flows into Rust modules in `OUT_DIR`, one file per flow
//! (`guided_shopping.rs`, …), which `src/main.rs` includes.

/// Where the flow files are, relative to this crate (build scripts run in the crate's folder).
const LIBRARY: &str = "../../flows/library";

fn main() {
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        panic!("OUT_DIR is not set; build scripts are run by cargo");
    };
    let flow = |id: &str| format!("{LIBRARY}/{id}.flow.json");
    let written = codegen::Builder::new()
        .flow(flow("guided-shopping"))
        .flow(flow("order-status"))
        .flow(flow("returns"))
        .flow(flow("faq-hours"))
        // `returns` calls `return-reason`: it is compiled into the `returns` module, not into a
        // module of its own.
        .sub_flow(flow("return-reason"))
        .compile_to(out_dir);
    // The error names the flow file and the first problem, as `kefu validate` would.
    if let Err(error) = written {
        panic!("{error}");
    }
}
