//! The kefu flow language: the file format (model), validation, the expression language and
//! the pure, deterministic step engine.
//!
//! This crate does no IO: no tokio, no clock, no randomness, no network. Time, session ids and
//! locale arrive as engine input, so the same code runs on the server, in the browser preview
//! and behind generated code, with the same results.

#[cfg(feature = "arbitrary")]
pub mod arbitrary;
pub mod compiled;
pub mod diff;
pub mod engine;
pub mod expr;
pub mod fixtures;
pub mod library;
pub mod load;
pub mod model;
pub mod scenario;
pub mod validate;
pub mod value;

pub use engine::{Effect, Engine, FlowRef, Input, Interpreter, Session, Status, Step};
pub use library::Library;
pub use load::{LoadError, from_json, to_json};
pub use model::Flow;
pub use validate::{Code, Diagnostic, Severity, validate};
pub use value::{Type, Value};
