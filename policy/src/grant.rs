//! Temporary grants: an admin lets a person or a team do some actions on some resources until
//! a moment. A grant acts like an allow policy while `context.now < expires_at`.
//!
//! Grants are data: the runtime stores them (as JSON or in columns) and passes the ones in
//! force to each decision. Patterns are checked when a grant is made or read back.

use flows::engine::Millis;

use crate::PolicyError;
use crate::pattern::{ActionPattern, ResourcePattern, SubjectPattern};
use crate::request::Request;

/// A temporary permission. Serialized with patterns in their string form:
///
/// ```json
/// {"id": "g-17", "subject": "agent:li", "actions": ["read"], "resource": "orders::*",
///  "expires_at": 1767225600000, "granted_by": "admin", "reason": "ticket 4711"}
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub id: String,
    /// A person (`agent:<id>`) or a team (`team:<id>`); roles and `*` are accepted too.
    pub subject: SubjectPattern,
    pub actions: Vec<ActionPattern>,
    pub resource: ResourcePattern,
    /// Milliseconds since 1970-01-01 UTC; the grant applies while `context.now` is earlier.
    pub expires_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Grant {
    /// A grant from the strings an admin form sends; the patterns are checked.
    pub fn new(
        id: impl Into<String>,
        subject: &str,
        actions: &[&str],
        resource: &str,
        expires_at: Millis,
    ) -> Result<Grant, PolicyError> {
        let id = id.into();
        let invalid = |message: String| PolicyError::Grant {
            id: id.clone(),
            message,
        };
        if actions.is_empty() {
            return Err(invalid("a grant needs at least one action".to_owned()));
        }
        let subject = subject.parse().map_err(invalid)?;
        let actions = actions
            .iter()
            .map(|a| a.parse())
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let resource = resource.parse().map_err(invalid)?;
        Ok(Grant {
            id,
            subject,
            actions,
            resource,
            expires_at,
            granted_by: None,
            reason: None,
        })
    }

    /// Whether the grant is about this subject, action and resource (its expiry aside).
    pub fn targets(&self, request: &Request<'_>) -> bool {
        self.subject.matches(request.subject)
            && self.actions.iter().any(|a| a.matches(request.action))
            && self
                .resource
                .matches(request.resource.entity(), request.resource.id())
    }

    /// Whether the grant is still in force at `now`.
    pub fn in_force(&self, now: Millis) -> bool {
        now < self.expires_at
    }
}
