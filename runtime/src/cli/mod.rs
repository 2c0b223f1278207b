//! The developer commands: `kefu validate`, `kefu run` and `kefu export`.

pub mod export;
pub mod files;
pub mod run;
pub mod validate;
