//! The developer commands: `kefu validate`, `kefu run` and `kefu export`; and `kefu audit`.

pub mod audit;

pub mod export;
pub mod files;
pub mod run;
pub mod validate;
