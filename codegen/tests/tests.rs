//! Tests of the code generator's output; the differential equivalence suite lives in the
//! workspace's `tests/` crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]
