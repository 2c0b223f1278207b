//! The integration tests of `policy`, one binary with a module per area.

// Test helpers may unwrap: a failure there is a test failure with a backtrace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod decisions;
mod errors;
mod properties;
mod sandboxes;

use flows::Value;

pub fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

pub fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|t| s(t)).collect())
}
