//! Decisions: a set of policies indexed by action and resource entity, and `decide`, which
//! answers a request with allow or deny and the reasons, every time.
//!
//! The rules: deny by default; a policy or grant *applies* when it targets the request (its
//! subjects, actions and resources match) and its condition holds (a grant: it has not
//! expired); one applying deny beats every allow. A condition that fails to evaluate counts as
//! false for an allow and as true for a deny, so a broken condition can only ever deny.

use std::collections::BTreeMap;
use std::fmt;

use crate::condition::{ConditionError, Env};
use crate::grant::Grant;
use crate::policy::{Effect, Policy};
use crate::request::Request;

/// Policy positions (into `PolicySet::policies`) for one action pattern kind.
#[derive(Debug, Clone, Default)]
struct ByEntity {
    /// Policies with a resource pattern for exactly this entity.
    entity: BTreeMap<String, Vec<u32>>,
    /// Policies with a resource pattern whose entity has a `*`.
    any_entity: Vec<u32>,
}

impl ByEntity {
    fn add(&mut self, policy: &Policy, position: u32) {
        let exact: Option<Vec<&str>> = policy
            .resources
            .iter()
            .map(crate::pattern::ResourcePattern::exact_entity)
            .collect();
        match exact {
            Some(mut entities) => {
                entities.sort_unstable();
                entities.dedup();
                for entity in entities {
                    self.entity
                        .entry(entity.to_owned())
                        .or_default()
                        .push(position);
                }
            }
            // One wildcard entity puts the policy in the list every request looks at; its
            // exact entities are then covered by the full check.
            None => self.any_entity.push(position),
        }
    }

    fn candidates<'a>(&'a self, entity: &str) -> [&'a [u32]; 2] {
        [
            self.entity.get(entity).map_or(&[][..], Vec::as_slice),
            &self.any_entity,
        ]
    }
}

/// The index: policies by exact action name, then by exact entity, with lists for `*`.
/// A policy sits in exactly one list per (action, entity) a request can have, so the lists a
/// request looks at never hold a policy twice.
#[derive(Debug, Clone, Default)]
struct Index {
    action: BTreeMap<String, ByEntity>,
    any_action: ByEntity,
}

impl Index {
    fn new(policies: &[Policy]) -> Index {
        let mut index = Index::default();
        for (position, policy) in policies.iter().enumerate() {
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            let exact: Option<Vec<&str>> = policy.actions.iter().map(|a| a.exact()).collect();
            match exact {
                Some(mut actions) => {
                    actions.sort_unstable();
                    actions.dedup();
                    for action in actions {
                        index
                            .action
                            .entry(action.to_owned())
                            .or_default()
                            .add(policy, position);
                    }
                }
                None => index.any_action.add(policy, position),
            }
        }
        index
    }

    fn candidates<'a>(&'a self, action: &str, entity: &str) -> [&'a [u32]; 4] {
        let [a, b] = self
            .action
            .get(action)
            .map_or([&[][..], &[][..]], |by| by.candidates(entity));
        let [c, d] = self.any_action.candidates(entity);
        [a, b, c, d]
    }
}

/// A loaded set of policies, ready to decide.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
    index: Index,
}

impl PolicySet {
    pub(crate) fn new(policies: Vec<Policy>) -> PolicySet {
        let index = Index::new(&policies);
        PolicySet { policies, index }
    }

    /// The policies in file order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn get(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id == id)
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// This set with the policies of `other` after its own (as if the files were one). Ids
    /// are not checked for clashes here; the `load` of one file is where ids must be unique.
    #[must_use]
    pub fn merged(&self, other: &PolicySet) -> PolicySet {
        let mut policies = self.policies.clone();
        policies.extend(other.policies.iter().cloned());
        PolicySet::new(policies)
    }

    /// Decides `request` with these policies and the `grants` the runtime holds for it
    /// (grants that do not target the request, or expired, are fine to pass: they are
    /// skipped, and listed in the explanation when they target it).
    pub fn decide<'p>(&'p self, request: &Request<'_>, grants: &'p [Grant]) -> Decision<'p> {
        let env = Env {
            agent: request.subject.value(),
            resource: request.resource.value(),
            context: request.context.value(),
        };
        let mut positions: Vec<u32> = self
            .index
            .candidates(request.action, request.resource.entity())
            .into_iter()
            .flatten()
            .copied()
            .collect();
        // File order, whichever index list a policy came from.
        positions.sort_unstable();
        let mut matched: Vec<Match<'p>> = Vec::new();
        for position in positions {
            let Some(policy) = self.policies.get(position as usize) else {
                continue;
            };
            if !policy.targets(request) {
                continue;
            }
            let outcome = match &policy.condition {
                None => Outcome::Applies,
                Some(condition) => match condition.eval(&env) {
                    Ok(true) => Outcome::Applies,
                    Ok(false) => Outcome::ConditionFalse,
                    Err(error) => Outcome::ConditionError(error),
                },
            };
            matched.push(Match {
                rule: Rule::Policy(policy),
                outcome,
            });
        }
        let now = request.context.now();
        for grant in grants {
            if grant.targets(request) {
                matched.push(Match {
                    rule: Rule::Grant(grant),
                    outcome: if grant.in_force(now) {
                        Outcome::Applies
                    } else {
                        Outcome::Expired
                    },
                });
            }
        }
        let denied = matched
            .iter()
            .any(|m| m.effect() == Effect::Deny && m.applies());
        let allowed = matched
            .iter()
            .any(|m| m.effect() == Effect::Allow && m.applies());
        let reason = if denied {
            Reason::Denied
        } else if allowed {
            Reason::Allowed
        } else if matched.is_empty() {
            Reason::NothingMatched
        } else {
            Reason::NothingApplied
        };
        Decision {
            effect: if reason == Reason::Allowed {
                Effect::Allow
            } else {
                Effect::Deny
            },
            reason,
            action: request.action.to_owned(),
            resource: format!("{}::{}", request.resource.entity(), request.resource.id()),
            subject: request.subject.id().to_owned(),
            matched,
        }
    }
}

/// The answer to a request, with everything needed to say why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision<'p> {
    /// `allow` or `deny`.
    pub effect: Effect,
    pub reason: Reason,
    /// The request, for the explanation: the subject's id, the action, `entity::id`.
    pub subject: String,
    pub action: String,
    pub resource: String,
    /// Every policy and grant that targets the request (subjects, actions and resources
    /// match), in file order and then the grants in the order given, with what came of it.
    pub matched: Vec<Match<'p>>,
}

/// Why the decision is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// At least one deny applied; an explicit deny beats every allow.
    Denied,
    /// At least one allow policy or grant applied, and no deny.
    Allowed,
    /// Denied by default: no policy or grant targets the request.
    NothingMatched,
    /// Denied by default: policies or grants target the request, but none applied (their
    /// conditions were false or failed, or the grants expired).
    NothingApplied,
}

/// A policy or grant that targets the request, and what came of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Match<'p> {
    #[serde(flatten)]
    pub rule: Rule<'p>,
    /// Flattened: `"outcome": "applies"` (and `"error"` for a failed condition) sit next to
    /// the rule's fields, as docs/policies.md shows.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Match<'_> {
    pub fn effect(&self) -> Effect {
        match self.rule {
            Rule::Policy(policy) => policy.effect,
            Rule::Grant(_) => Effect::Allow,
        }
    }

    /// Whether it counts for the decision. A deny whose condition failed counts (fail
    /// closed); an allow whose condition failed does not.
    pub fn applies(&self) -> bool {
        match &self.outcome {
            Outcome::Applies => true,
            Outcome::ConditionError(_) => self.effect() == Effect::Deny,
            Outcome::ConditionFalse | Outcome::Expired => false,
        }
    }
}

/// Which policy or grant.
#[derive(Debug, Clone, Copy)]
pub enum Rule<'p> {
    Policy(&'p Policy),
    Grant(&'p Grant),
}

impl serde::Serialize for Rule<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        match self {
            Rule::Policy(policy) => {
                map.serialize_entry("kind", "policy")?;
                map.serialize_entry("id", &policy.id)?;
                map.serialize_entry("effect", &policy.effect)?;
                map.serialize_entry("description", &policy.description)?;
                map.serialize_entry("line", &policy.location.line)?;
                if let Some(condition) = &policy.condition {
                    map.serialize_entry("condition", condition.source())?;
                }
            }
            Rule::Grant(grant) => {
                map.serialize_entry("kind", "grant")?;
                map.serialize_entry("id", &grant.id)?;
                map.serialize_entry("effect", &Effect::Allow)?;
                map.serialize_entry("expires_at", &grant.expires_at)?;
                if let Some(by) = &grant.granted_by {
                    map.serialize_entry("granted_by", by)?;
                }
            }
        }
        map.end()
    }
}

/// What came of a policy or grant that targets the request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", content = "error", rename_all = "snake_case")]
pub enum Outcome {
    /// No condition, or the condition held, or the grant is in force.
    Applies,
    ConditionFalse,
    /// The condition could not be evaluated.
    ConditionError(ConditionError),
    /// A grant whose `expires_at` is not after `context.now`.
    Expired,
}

impl<'p> Decision<'p> {
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// The allows that applied (policies and grants).
    pub fn allowed_by(&self) -> impl Iterator<Item = &Match<'p>> {
        self.matched
            .iter()
            .filter(|m| m.effect() == Effect::Allow && m.applies())
    }

    /// The denies that applied.
    pub fn denied_by(&self) -> impl Iterator<Item = &Match<'p>> {
        self.matched
            .iter()
            .filter(|m| m.effect() == Effect::Deny && m.applies())
    }

    /// The id of the first policy or grant that decided: the first applying deny for a
    /// denial, the first applying allow for an allowance, none for a default denial. This is
    /// what an audit record names.
    pub fn decided_by(&self) -> Option<&str> {
        let first = match self.reason {
            Reason::Denied => self.denied_by().next(),
            Reason::Allowed => self.allowed_by().next(),
            Reason::NothingMatched | Reason::NothingApplied => None,
        };
        first.map(|m| match m.rule {
            Rule::Policy(policy) => policy.id.as_str(),
            Rule::Grant(grant) => grant.id.as_str(),
        })
    }
}

fn rule_name(rule: &Rule<'_>) -> String {
    match rule {
        Rule::Policy(policy) => format!("policy `{}` (line {})", policy.id, policy.location.line),
        Rule::Grant(grant) => format!("grant `{}`", grant.id),
    }
}

/// The explanation in words, one line per matched policy or grant, then the verdict:
///
/// ```text
/// deny: agent `li` may not `read` `customers::42`
///   allow policy `served` (line 1): applies
///   deny  policy `night` (line 9): applies
/// an explicit deny beats every allow: policy `night` (line 9)
/// ```
impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.is_allowed() { "may" } else { "may not" };
        writeln!(
            f,
            "{}: agent `{}` {verb} `{}` `{}`",
            self.effect, self.subject, self.action, self.resource
        )?;
        for m in &self.matched {
            let outcome = match &m.outcome {
                Outcome::Applies => "applies".to_owned(),
                Outcome::ConditionFalse => "condition is false".to_owned(),
                Outcome::ConditionError(error) if m.effect() == Effect::Deny => {
                    format!("condition failed ({error}), so the deny applies")
                }
                Outcome::ConditionError(error) => {
                    format!("condition failed ({error}), so it does not allow")
                }
                Outcome::Expired => match m.rule {
                    Rule::Grant(grant) => format!("expired (at {} ms)", grant.expires_at),
                    Rule::Policy(_) => "expired".to_owned(),
                },
            };
            writeln!(f, "  {:<5} {}: {outcome}", m.effect(), rule_name(&m.rule))?;
        }
        match self.reason {
            Reason::Denied => {
                let by: Vec<String> = self.denied_by().map(|m| rule_name(&m.rule)).collect();
                write!(f, "an explicit deny beats every allow: {}", by.join(", "))
            }
            Reason::Allowed => {
                let by: Vec<String> = self.allowed_by().map(|m| rule_name(&m.rule)).collect();
                write!(f, "allowed by {}", by.join(", "))
            }
            Reason::NothingMatched => write!(
                f,
                "denied by default: no policy or grant is about this agent, action and resource"
            ),
            Reason::NothingApplied => write!(
                f,
                "denied by default: no allow applied (conditions false or failed, grants expired)"
            ),
        }
    }
}
