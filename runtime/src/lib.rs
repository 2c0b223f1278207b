//! The kefu server and command-line tools, around the pure `flows` engine.
//!
//! For now the server serves a health page and the flow API (list, fetch, validate); the
//! conversation runtime, chat gateway and console arrive with their issues.

pub mod cli;
pub mod server;
pub mod telemetry;
