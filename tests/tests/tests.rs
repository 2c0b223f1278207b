//! The equivalence contract: every flow runs on the interpreter and as generated code, and
//! both must give the same effects, statuses and sessions after every step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod corpus;
mod fresh;
mod properties;
mod scenarios;
