//! One policy: who (subjects), may or may not (effect) do what (actions) on which resources,
//! when (an optional condition).

use std::fmt;

use crate::condition::Condition;
use crate::diagnostic::Location;
use crate::pattern::{ActionPattern, ResourcePattern, SubjectPattern};
use crate::request::Request;

/// Whether a policy allows or denies what it matches.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that `{:<5}` lines up explanations.
        f.pad(match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        })
    }
}

/// A loaded policy. Made by [`crate::load`], which checked every part.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) id: String,
    pub(crate) description: String,
    pub(crate) effect: Effect,
    /// Empty: everyone.
    pub(crate) subjects: Vec<SubjectPattern>,
    pub(crate) actions: Vec<ActionPattern>,
    pub(crate) resources: Vec<ResourcePattern>,
    pub(crate) condition: Option<Condition>,
    pub(crate) location: Location,
}

impl Policy {
    /// The id given in the file (`policy "id" { … }` or `id = "…"`), else `policy-N` with N
    /// the policy's 1-based position among the file's policies.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Who the policy is for; empty means everyone.
    pub fn subjects(&self) -> &[SubjectPattern] {
        &self.subjects
    }

    pub fn actions(&self) -> &[ActionPattern] {
        &self.actions
    }

    pub fn resources(&self) -> &[ResourcePattern] {
        &self.resources
    }

    pub fn condition(&self) -> Option<&Condition> {
        self.condition.as_ref()
    }

    /// Where the policy's block starts in its file.
    pub fn location(&self) -> Location {
        self.location
    }

    /// Whether the policy is about this subject, action and resource (its condition aside).
    pub fn targets(&self, request: &Request<'_>) -> bool {
        (self.subjects.is_empty() || self.subjects.iter().any(|s| s.matches(request.subject)))
            && self.actions.iter().any(|a| a.matches(request.action))
            && self
                .resources
                .iter()
                .any(|r| r.matches(request.resource.entity(), request.resource.id()))
    }
}
