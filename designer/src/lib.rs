//! The kefu browser app (`runtime/assets/app/`, built by `cargo run -p xtask -- bundle`).
//!
//! The agent console at `/console` (`console`) and the flow designer at `/designer` (`studio`,
//! over the pure editing core in `editor`).

pub mod console;
pub mod editor;
pub mod studio;

use wasm_bindgen::prelude::wasm_bindgen;

/// Runs when `kefu_app.js` is initialised: mounts the app that the page's path asks for.
#[wasm_bindgen(start)]
pub fn start() {
    let path = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default();
    if path.starts_with("/console") {
        console::mount();
    } else if path.starts_with("/designer") {
        studio::mount();
    }
}
