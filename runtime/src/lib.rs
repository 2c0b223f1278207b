//! The kefu server and command-line tools, around the pure `flows` engine.
//!
//! The server runs conversations (`conversation`) over the visitor WebSocket (`gateway`),
//! stores them (`store`), serves the demo shop (`demo`) and the flow API (`server`); `engines`
//! chooses between compiled and interpreted flows. The agent console arrives with its issue.

pub mod access;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod compiled;
pub mod connect;
pub mod console;
pub mod conversation;
pub mod demo;
pub mod engines;
pub mod flow_api;
pub mod gateway;
pub mod identity;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod web_app;
