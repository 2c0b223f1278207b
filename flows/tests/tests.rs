//! The integration tests of `flows`, one binary with a module per area.

// Test helpers may unwrap: a failure there is a test failure with a backtrace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod broken;
mod engine;
mod loading;
mod properties;
mod scenarios;
