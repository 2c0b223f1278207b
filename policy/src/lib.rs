//! The kefu policy engine: policies in the seed's block syntax, temporary grants and
//! per-department data sandboxes, with explainable decisions. `docs/policies.md` is the
//! specification of the file format.
//!
//! Like `flows`, this crate does no IO and reads no clock: the time of a request comes in its
//! [`Context`], grants come from the caller, and the same request always gets the same
//! [`Decision`]. Conditions are expressions of the flow language (`flows::expr`), over the
//! roots `agent`, `resource` and `context`.
//!
//! ```
//! let config = policy::load(r#"
//!     policy {
//!       description = "agents only see customers they served"
//!       effect      = "allow"
//!       resources   = ["customers::*"]
//!       actions     = ["read"]
//!       condition   = "contains(agent.service_history, resource.id)"
//!     }
//! "#).unwrap();
//! let li = policy::Subject::new("li").attr(
//!     "service_history",
//!     flows::Value::List(vec![flows::Value::String("c-1".into())]),
//! );
//! let customer = policy::Resource::new("customers", "c-1");
//! let context = policy::Context::at(1_767_225_600_000);
//! let request = policy::Request::new(&li, "read", &customer, &context);
//! let decision = config.policies.decide(&request, &[]);
//! assert!(decision.is_allowed());
//! assert_eq!(decision.decided_by(), Some("policy-1"));
//! ```

mod condition;
mod decide;
mod diagnostic;
mod grant;
mod load;
mod pattern;
mod policy;
mod request;
pub mod sandbox;
mod syntax;

pub use condition::{Condition, ConditionError};
pub use decide::{Decision, Match, Outcome, PolicySet, Reason, Rule};
pub use diagnostic::{Diagnostic, Diagnostics, Location};
pub use grant::Grant;
pub use load::Config;
pub use pattern::{ActionPattern, ResourcePattern, SubjectPattern};
pub use policy::{Effect, Policy};
pub use request::{Context, Request, Resource, Subject};
pub use sandbox::{MaskKind, RowFilter, Sandbox, Sandboxes};

/// What can go wrong at this crate's boundary.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// A policy file with problems; none of it was loaded.
    #[error("the policy file has {count} problem(s):\n{diagnostics}", count = .0.0.len(), diagnostics = .0)]
    Invalid(Diagnostics),
    /// A grant with a bad subject, action or resource pattern.
    #[error("grant `{id}`: {message}")]
    Grant { id: String, message: String },
}

/// Reads a policy file (`policy { … }` and `sandbox { … }` blocks): everything in it, or
/// [`PolicyError::Invalid`] with every problem found, each with its line and column.
pub fn load(text: &str) -> Result<Config, PolicyError> {
    load::read(text).map_err(PolicyError::Invalid)
}
