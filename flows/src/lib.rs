//! The kefu flow language: the file format (model), validation, the expression language and
//! the pure, deterministic step engine.
//!
//! This crate does no IO: no tokio, no clock, no randomness, no network. Time, session ids and
//! locale arrive as engine input, so the same code runs on the server, in the browser preview
//! and behind generated code, with the same results.

pub mod expr;
pub mod value;

pub use value::{Type, Value};
