//! The integration tests of the `kefu` binary and server, one binary with a module per area.

// Test helpers may unwrap: a failure there is a test failure with a backtrace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod api;
mod audit;
mod browser;
mod cache_nodes;
mod chat;
mod cli;
mod cluster;
mod connectors;
mod console;
mod demo;
mod flow_api;
mod store;
