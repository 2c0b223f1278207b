//! What a policy or a grant is about: subject patterns (`role:admin`, `team:sales`,
//! `agent:li`, `*`), action patterns (`read`, `*`) and resource patterns (`customers::*`),
//! each read from its string form with a message saying what is wrong.

use std::fmt;
use std::str::FromStr;

use crate::request::Subject;

/// A text pattern where `*` stands for any run of characters (also none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob {
    /// `*`: anything.
    Any,
    /// No `*`: exactly this text.
    Exact(String),
    /// The text split at its `*`s: the first part starts the text, the last ends it, and the
    /// others appear in between, in order.
    Parts(Vec<String>),
}

impl Glob {
    pub(crate) fn new(text: &str) -> Glob {
        if text.chars().all(|c| c == '*') && !text.is_empty() {
            Glob::Any
        } else if text.contains('*') {
            Glob::Parts(text.split('*').map(str::to_owned).collect())
        } else {
            Glob::Exact(text.to_owned())
        }
    }

    /// The text a matching string must equal, when there is one (for indexing).
    pub(crate) fn exact(&self) -> Option<&str> {
        match self {
            Glob::Exact(text) => Some(text),
            Glob::Any | Glob::Parts(_) => None,
        }
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(exact) => exact == text,
            Glob::Parts(parts) => {
                let (Some((first, rest)), Some(last)) = (parts.split_first(), parts.last()) else {
                    return true;
                };
                let Some(mut remaining) = text.strip_prefix(first.as_str()) else {
                    return false;
                };
                let middle = rest.split_last().map_or(&[][..], |(_, middle)| middle);
                for part in middle {
                    match remaining.find(part.as_str()) {
                        Some(i) => remaining = remaining.get(i + part.len()..).unwrap_or(""),
                        None => return false,
                    }
                }
                remaining.len() >= last.len() && remaining.ends_with(last.as_str())
            }
        }
    }
}

/// Who a policy or grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectPattern {
    /// `*`: everyone.
    Anyone,
    /// `agent:<id>`: one person (the subject's id).
    Agent(String),
    /// `team:<id>` (also written `department:<id>`): every member of a team.
    Team(String),
    /// `role:<name>`: everyone with the role.
    Role(String),
}

impl SubjectPattern {
    pub fn matches(&self, subject: &Subject) -> bool {
        match self {
            SubjectPattern::Anyone => true,
            SubjectPattern::Agent(id) => subject.id() == id,
            SubjectPattern::Team(team) => subject.teams().iter().any(|t| t == team),
            SubjectPattern::Role(role) => subject.roles().iter().any(|r| r == role),
        }
    }
}

impl FromStr for SubjectPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(SubjectPattern::Anyone);
        }
        let Some((kind, name)) = text.split_once(':') else {
            return Err(format!(
                "`{text}` is not a subject: write `agent:<id>`, `team:<id>`, `role:<name>` or `*`"
            ));
        };
        if name.is_empty() || name.trim() != name {
            return Err(format!(
                "`{text}` names no {kind}: write the name right after the colon"
            ));
        }
        let name = name.to_owned();
        match kind {
            "agent" | "user" => Ok(SubjectPattern::Agent(name)),
            "team" | "department" | "dept" => Ok(SubjectPattern::Team(name)),
            "role" => Ok(SubjectPattern::Role(name)),
            _ => Err(format!(
                "unknown kind of subject `{kind}`: write `agent:<id>`, `team:<id>`, `role:<name>` or `*`"
            )),
        }
    }
}

impl fmt::Display for SubjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectPattern::Anyone => f.write_str("*"),
            SubjectPattern::Agent(id) => write!(f, "agent:{id}"),
            SubjectPattern::Team(id) => write!(f, "team:{id}"),
            SubjectPattern::Role(name) => write!(f, "role:{name}"),
        }
    }
}

/// An action a policy or grant is about: a name (`read`, `export`) or `*` for every action.
/// A `*` inside a name stands for any run of characters (`customers.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPattern {
    text: String,
    glob: Glob,
}

impl ActionPattern {
    pub fn matches(&self, action: &str) -> bool {
        self.glob.matches(action)
    }

    pub(crate) fn exact(&self) -> Option<&str> {
        self.glob.exact()
    }
}

impl FromStr for ActionPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let valid = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '*'));
        if !valid {
            return Err(format!(
                "`{text}` is not an action: use letters, digits, `_`, `-`, `.`, `:` and `*` (e.g. `read`, `*`)"
            ));
        }
        Ok(ActionPattern {
            text: text.to_owned(),
            glob: Glob::new(text),
        })
    }
}

impl fmt::Display for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Which resources a policy or grant is about: `<entity>::<id>`, where either part may hold
/// `*` (`customers::*`, `orders::2024-*`, `*::*`); a lone `*` means `*::*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePattern {
    text: String,
    entity: Glob,
    id: Glob,
}

impl ResourcePattern {
    pub fn matches(&self, entity: &str, id: &str) -> bool {
        self.entity.matches(entity) && self.id.matches(id)
    }

    pub(crate) fn exact_entity(&self) -> Option<&str> {
        self.entity.exact()
    }
}

impl FromStr for ResourcePattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(ResourcePattern {
                text: text.to_owned(),
                entity: Glob::Any,
                id: Glob::Any,
            });
        }
        let Some((entity, id)) = text.split_once("::") else {
            return Err(format!(
                "`{text}` is not a resource: write `<entity>::<id>`, e.g. `customers::*` or `orders::42`"
            ));
        };
        if entity.is_empty() {
            return Err(format!(
                "`{text}` names no entity: write `<entity>::<id>`, e.g. `customers::{id}`"
            ));
        }
        let entity_ok = entity
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '*'));
        if !entity_ok {
            return Err(format!(
                "`{entity}` in `{text}` is not an entity name: use letters, digits, `_`, `-`, `.` and `*`"
            ));
        }
        if id.is_empty() {
            return Err(format!(
                "`{text}` names no id: write `{entity}::*` for any id"
            ));
        }
        Ok(ResourcePattern {
            text: text.to_owned(),
            entity: Glob::new(entity),
            id: Glob::new(id),
        })
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Serde as the string form, so grants stored as JSON hold `"customers::*"`, and a stored
/// pattern that no longer reads is refused when it is loaded.
macro_rules! serde_as_string {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_string!(SubjectPattern);
serde_as_string!(ActionPattern);
serde_as_string!(ResourcePattern);

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn globs() {
        let cases = [
            ("*", "anything", true),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abxc", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("vip-*", "vip-42", true),
            ("vip-*", "vi", false),
            ("客*", "客户", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                Glob::new(pattern).matches(text),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }
}
