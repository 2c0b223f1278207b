//! The developer commands: `kefu validate` and `kefu run`.

pub mod files;
pub mod run;
pub mod validate;
