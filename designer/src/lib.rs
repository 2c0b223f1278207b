//! The kefu browser app (`runtime/assets/app/`, built by `cargo run -p xtask -- bundle`).
//!
//! Today it is the agent console at `/console`; the flow designer (issue 6) joins it.

pub mod console;
pub mod editor;

use wasm_bindgen::prelude::wasm_bindgen;

/// Runs when `kefu_app.js` is initialised: mounts the app that the page's path asks for.
#[wasm_bindgen(start)]
pub fn start() {
    let path = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default();
    if path.starts_with("/console") {
        console::mount();
    }
}
