//! The kefu server and command-line tools, around the pure `flows` engine.
//!
//! For now the server serves a health page and the flow API (list, fetch, validate, export as
//! Rust), and `engines` chooses between compiled and interpreted flows; the conversation
//! runtime, chat gateway and console arrive with their issues.

pub mod cli;
pub mod compiled;
pub mod conversation;
pub mod demo;
pub mod engines;
pub mod gateway;
pub mod server;
pub mod store;
pub mod telemetry;
