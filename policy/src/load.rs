//! From the syntax tree to checked policies and sandboxes: every field of every block is
//! checked, every problem is reported with its line and column, and nothing is returned
//! unless the whole file is right.

use std::collections::BTreeMap;

use crate::condition::Condition;
use crate::decide::PolicySet;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::policy::{Effect, Policy};
use crate::sandbox::{MaskKind, RowFilter, Sandbox, Sandboxes};
use crate::syntax::{self, Attr, Block, Node, NodeKind, Source, Str};

/// Everything a policy file declares.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub policies: PolicySet,
    pub sandboxes: Sandboxes,
}

const POLICY_FIELDS: [&str; 7] = [
    "id",
    "description",
    "effect",
    "subjects",
    "actions",
    "resources",
    "condition",
];
const SANDBOX_FIELDS: [&str; 4] = ["department", "entity", "rows", "mask"];

/// Reads a policy file: all of it, or every problem in it.
pub(crate) fn read(text: &str) -> Result<Config, Diagnostics> {
    let source = Source::new(text);
    let mut errors = Vec::new();
    let blocks = syntax::parse(&source, &mut errors);
    let mut reader = Reader {
        source: &source,
        errors,
    };
    let mut policies = Vec::new();
    let mut sandboxes = Vec::new();
    for block in &blocks {
        match block.kind.as_str() {
            "policy" => {
                let number = policies.len() + 1;
                if let Some(policy) = reader.policy(block, number) {
                    policies.push(policy);
                }
            }
            "sandbox" => {
                if let Some(sandbox) = reader.sandbox(block) {
                    sandboxes.push(sandbox);
                }
            }
            other => reader.error(
                block.at,
                format!(
                    "unknown block `{other}`: a policy file holds `policy` and `sandbox` blocks"
                ),
            ),
        }
    }
    reader.unique_ids(&policies);
    reader.unique_sandboxes(&sandboxes);
    let mut errors = reader.errors;
    if errors.is_empty() {
        Ok(Config {
            policies: PolicySet::new(policies),
            sandboxes: Sandboxes::new(sandboxes),
        })
    } else {
        errors.sort_by_key(Diagnostic::location);
        errors.dedup();
        Err(Diagnostics(errors))
    }
}

struct Reader<'s> {
    source: &'s Source<'s>,
    errors: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn error(&mut self, at: usize, message: String) {
        self.errors.push(self.source.error(at, message));
    }

    /// The block's fields by name; unknown and repeated fields are reported.
    fn fields<'b>(&mut self, block: &'b Block, allowed: &[&str]) -> BTreeMap<&'b str, &'b Attr> {
        let mut fields = BTreeMap::new();
        for attr in &block.attrs {
            if !allowed.contains(&attr.name.as_str()) {
                let names: Vec<String> = allowed.iter().map(|n| format!("`{n}`")).collect();
                self.error(
                    attr.at,
                    format!(
                        "unknown field `{}` in a `{}` block: the fields are {}",
                        attr.name,
                        block.kind,
                        names.join(", ")
                    ),
                );
            } else if fields.insert(attr.name.as_str(), attr).is_some() {
                self.error(attr.at, format!("`{}` is given twice", attr.name));
            }
        }
        fields
    }

    fn missing(&mut self, block: &Block, name: &str, example: &str) {
        self.error(
            block.at,
            format!(
                "this `{}` block has no `{name}` (e.g. `{name} = {example}`)",
                block.kind
            ),
        );
    }

    fn string<'a>(&mut self, attr: &'a Attr) -> Option<&'a Str> {
        match &attr.value.kind {
            NodeKind::Str(s) => Some(s),
            other => {
                self.error(
                    attr.value.at,
                    format!("`{}` must be a string, not {}", attr.name, other.describe()),
                );
                None
            }
        }
    }

    /// A list of strings, or one string as a list of one; each with its node for locations.
    fn strings<'a>(&mut self, attr: &'a Attr) -> Option<Vec<(&'a Str, usize)>> {
        let items: Vec<&Node> = match &attr.value.kind {
            NodeKind::List(items) => items.iter().collect(),
            NodeKind::Str(_) => vec![&attr.value],
            other => {
                self.error(
                    attr.value.at,
                    format!(
                        "`{}` must be a list of strings, not {}",
                        attr.name,
                        other.describe()
                    ),
                );
                return None;
            }
        };
        let mut strings = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match &item.kind {
                NodeKind::Str(s) => strings.push((s, item.at)),
                other => {
                    ok = false;
                    self.error(
                        item.at,
                        format!(
                            "`{}` must be a list of strings, but this is {}",
                            attr.name,
                            other.describe()
                        ),
                    );
                }
            }
        }
        if strings.is_empty() && ok {
            self.error(
                attr.value.at,
                format!("`{}` is empty, so the block could never apply", attr.name),
            );
            return None;
        }
        ok.then_some(strings)
    }

    /// Each string parsed with `parse`; a bad one is reported at its position.
    fn patterns<T>(
        &mut self,
        attr: Option<&Attr>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let items = self.strings(attr?)?;
        let mut patterns = Vec::with_capacity(items.len());
        let mut ok = true;
        for (text, at) in items {
            match parse(&text.value) {
                Ok(pattern) => patterns.push(pattern),
                Err(message) => {
                    ok = false;
                    self.error(at, message);
                }
            }
        }
        ok.then_some(patterns)
    }

    fn policy(&mut self, block: &Block, number: usize) -> Option<Policy> {
        let errors_before = self.errors.len();
        let fields = self.fields(block, &POLICY_FIELDS);
        let id = match (&block.label, fields.get("id")) {
            (Some(_), Some(attr)) => {
                self.error(
                    attr.at,
                    "the policy is named twice: by its label and by `id`".to_owned(),
                );
                None
            }
            (Some(label), None) => Some(label.value.clone()),
            (None, Some(attr)) => self.string(attr).map(|s| s.value.clone()),
            (None, None) => Some(format!("policy-{number}")),
        };
        if let Some(id) = &id
            && id.trim().is_empty()
        {
            self.error(block.at, "a policy's id cannot be empty".to_owned());
        }
        let description = match fields.get("description") {
            Some(attr) => self.string(attr).map(|s| s.value.clone()),
            None => Some(String::new()),
        };
        let effect = match fields.get("effect") {
            None => {
                self.missing(block, "effect", "\"allow\"");
                None
            }
            Some(attr) => match self.string(attr).map(|s| s.value.as_str()) {
                Some("allow") => Some(Effect::Allow),
                Some("deny") => Some(Effect::Deny),
                Some(other) => {
                    self.error(
                        attr.value.at,
                        format!("unknown effect `{other}`: write \"allow\" or \"deny\""),
                    );
                    None
                }
                None => None,
            },
        };
        let subjects = match fields.get("subjects") {
            None => Some(Vec::new()),
            Some(attr) => self.patterns(Some(attr), str::parse),
        };
        if !fields.contains_key("actions") {
            self.missing(block, "actions", "[\"read\"]");
        }
        let actions = self.patterns(fields.get("actions").copied(), str::parse);
        if !fields.contains_key("resources") {
            self.missing(block, "resources", "[\"customers::*\"]");
        }
        let resources = self.patterns(fields.get("resources").copied(), str::parse);
        let condition = match fields.get("condition") {
            None => Some(None),
            Some(attr) => self.string(attr).and_then(|text| {
                Condition::parse(text, self.source)
                    .map_err(|d| self.errors.push(d))
                    .ok()
                    .map(Some)
            }),
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Policy {
            id: id?,
            description: description?,
            effect: effect?,
            subjects: subjects?,
            actions: actions?,
            resources: resources?,
            condition: condition?,
            location: self.source.location(block.at),
        })
    }

    fn sandbox(&mut self, block: &Block) -> Option<Sandbox> {
        let errors_before = self.errors.len();
        if let Some(label) = &block.label {
            self.error(
                label.start.saturating_sub(1),
                "a `sandbox` block has no label: name its `department` and `entity` inside"
                    .to_owned(),
            );
        }
        let fields = self.fields(block, &SANDBOX_FIELDS);
        let name = |reader: &mut Self, field: &str, example: &str| match fields.get(field) {
            None => {
                reader.missing(block, field, example);
                None
            }
            Some(attr) => {
                let text = reader.string(attr)?;
                let valid = !text.value.is_empty()
                    && text
                        .value
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if valid || (field == "department" && text.value == "*") {
                    Some(text.value.clone())
                } else {
                    reader.error(
                        attr.value.at,
                        format!(
                            "`{}` is not a valid {field}: use letters, digits, `_`, `-` and `.`",
                            text.value
                        ),
                    );
                    None
                }
            }
        };
        let department = name(self, "department", "\"sales\"");
        let entity = name(self, "entity", "\"customers\"");
        let rows = match fields.get("rows") {
            None => Some(None),
            Some(attr) => self.string(attr).and_then(|text| {
                RowFilter::parse(text, self.source)
                    .map_err(|d| self.errors.push(d))
                    .ok()
                    .map(Some)
            }),
        };
        let mut masks = BTreeMap::new();
        if let Some(attr) = fields.get("mask") {
            match &attr.value.kind {
                NodeKind::Map(entries) => {
                    for entry in entries {
                        let kind = match &entry.value.kind {
                            NodeKind::Str(kind) => kind.value.parse::<MaskKind>(),
                            other => Err(format!(
                                "a mask is named by a string (\"phone\"), not {}",
                                other.describe()
                            )),
                        };
                        match kind {
                            Ok(kind) => {
                                if masks.insert(entry.name.clone(), kind).is_some() {
                                    self.error(
                                        entry.at,
                                        format!("the field `{}` is masked twice", entry.name),
                                    );
                                }
                            }
                            Err(message) => self.error(entry.value.at, message),
                        }
                    }
                }
                other => self.error(
                    attr.value.at,
                    format!(
                        "`mask` maps fields to masks (`{{ phone = \"phone\" }}`), not {}",
                        other.describe()
                    ),
                ),
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Sandbox {
            department: department?,
            entity: entity?,
            rows: rows?,
            masks,
            location: self.source.location(block.at),
        })
    }

    fn unique_ids(&mut self, policies: &[Policy]) {
        let mut seen: BTreeMap<&str, &Policy> = BTreeMap::new();
        for policy in policies {
            if let Some(first) = seen.insert(&policy.id, policy) {
                let message = format!(
                    "two policies have the id `{}` (the other is at line {})",
                    policy.id, first.location.line
                );
                self.errors.push(Diagnostic {
                    line: policy.location.line,
                    column: policy.location.column,
                    message,
                });
            }
        }
    }

    fn unique_sandboxes(&mut self, sandboxes: &[Sandbox]) {
        let mut seen: BTreeMap<(&str, &str), &Sandbox> = BTreeMap::new();
        for sandbox in sandboxes {
            if let Some(first) = seen.insert((&sandbox.department, &sandbox.entity), sandbox) {
                let message = format!(
                    "department `{}` already has a sandbox for `{}` (at line {})",
                    sandbox.department, sandbox.entity, first.location.line
                );
                self.errors.push(Diagnostic {
                    line: sandbox.location.line,
                    column: sandbox.location.column,
                    message,
                });
            }
        }
    }
}
