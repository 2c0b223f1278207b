//! Validation: every problem of a flow at once, each located at a node, port or field and
//! worded for the person who drew the flow. Errors block publishing; warnings do not.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::Dfs;
use serde::{Deserialize, Serialize};

use crate::expr::{self, Span, TypeEnv};
use crate::library::Library;
use crate::model::{Flow, NodeKind, Part, Scope, Text, port};
use crate::value::Type;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// The kind of problem, stable for tools and translations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    DuplicateId,
    MissingStart,
    MultipleStarts,
    DanglingEdge,
    UnknownPort,
    PortConnectedTwice,
    DeadEnd,
    ConditionWithoutDefault,
    UnreachableNode,
    LoopWithoutWait,
    UsedBeforeSet,
    UndeclaredVariable,
    SyntaxError,
    TypeError,
    BadSubflowContract,
    NoWayToAHuman,
    BadVariable,
    BadNodeSettings,
    BadEventTarget,
}

impl Code {
    /// Every code, for tools and for the test that each has a broken flow showing it.
    pub const ALL: &[Code] = &[
        Code::DuplicateId,
        Code::MissingStart,
        Code::MultipleStarts,
        Code::DanglingEdge,
        Code::UnknownPort,
        Code::PortConnectedTwice,
        Code::DeadEnd,
        Code::ConditionWithoutDefault,
        Code::UnreachableNode,
        Code::LoopWithoutWait,
        Code::UsedBeforeSet,
        Code::UndeclaredVariable,
        Code::SyntaxError,
        Code::TypeError,
        Code::BadSubflowContract,
        Code::NoWayToAHuman,
        Code::BadVariable,
        Code::BadNodeSettings,
        Code::BadEventTarget,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::DuplicateId => "duplicate-id",
            Code::MissingStart => "missing-start",
            Code::MultipleStarts => "multiple-starts",
            Code::DanglingEdge => "dangling-edge",
            Code::UnknownPort => "unknown-port",
            Code::PortConnectedTwice => "port-connected-twice",
            Code::DeadEnd => "dead-end",
            Code::ConditionWithoutDefault => "condition-without-default",
            Code::UnreachableNode => "unreachable-node",
            Code::LoopWithoutWait => "loop-without-wait",
            Code::UsedBeforeSet => "used-before-set",
            Code::UndeclaredVariable => "undeclared-variable",
            Code::SyntaxError => "syntax-error",
            Code::TypeError => "type-error",
            Code::BadSubflowContract => "bad-subflow-contract",
            Code::NoWayToAHuman => "no-way-to-a-human",
            Code::BadVariable => "bad-variable",
            Code::BadNodeSettings => "bad-node-settings",
            Code::BadEventTarget => "bad-event-target",
        }
    }
}

/// One problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// The field inside the node (or flow) the problem is in, like `branches[1].when`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Where in that field's text (expressions and templates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}[{}]", self.code.as_str())?;
        if let Some(node) = &self.node {
            write!(f, " node `{node}`")?;
        }
        if let Some(port) = &self.port {
            write!(f, " port `{port}`")?;
        }
        if let Some(field) = &self.field {
            write!(f, " field `{field}`")?;
        }
        if let Some(span) = &self.span {
            write!(f, " (line {}, column {})", span.line, span.column)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Checks `flow`, using `library` to check calls into other flows. Returns every problem,
/// errors first, then in node order.
pub fn validate(flow: &Flow, library: &Library) -> Vec<Diagnostic> {
    let mut v = Validator {
        flow,
        library,
        out: Vec::new(),
        index: BTreeMap::new(),
    };
    v.run();
    let mut out = v.out;
    out.sort_by_key(|d| d.severity);
    out
}

struct Validator<'a> {
    flow: &'a Flow,
    library: &'a Library,
    out: Vec<Diagnostic>,
    index: BTreeMap<&'a str, usize>,
}

/// Types visible to expressions: declared variables, `sys`, and `item` in dynamic labels.
struct Env<'a> {
    flow: &'a Flow,
    item: Option<Type>,
}

impl TypeEnv for Env<'_> {
    fn var_type(&self, name: &str) -> Option<Type> {
        match name {
            "sys" => Some(Type::Map),
            "item" if self.item.is_some() => self.item.clone(),
            _ => self.flow.variable(name).map(|v| v.ty.clone()),
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.flow.variables.iter().map(|v| v.name.clone()).collect();
        names.push("sys".into());
        if self.item.is_some() {
            names.push("item".into());
        }
        names
    }
}

/// What a diagnostic points at.
#[derive(Default, Clone)]
struct At {
    node: Option<String>,
    port: Option<String>,
    field: Option<String>,
    span: Option<Span>,
}

fn at_node(node: &str) -> At {
    At {
        node: Some(node.to_owned()),
        ..At::default()
    }
}

fn at_field(node: &str, field: impl Into<String>) -> At {
    At {
        node: Some(node.to_owned()),
        field: Some(field.into()),
        ..At::default()
    }
}

impl<'a> Validator<'a> {
    fn push(&mut self, severity: Severity, code: Code, at: At, message: String) {
        self.out.push(Diagnostic {
            severity,
            code,
            node: at.node,
            port: at.port,
            field: at.field,
            span: at.span,
            message,
        });
    }

    fn error(&mut self, code: Code, at: At, message: String) {
        self.push(Severity::Error, code, at, message);
    }

    fn warning(&mut self, code: Code, at: At, message: String) {
        self.push(Severity::Warning, code, at, message);
    }

    fn run(&mut self) {
        self.ids();
        self.variables();
        for i in 0..self.flow.nodes.len() {
            self.node(i);
        }
        self.events();
        if self.flow.settings.step_budget == 0 {
            self.error(
                Code::BadNodeSettings,
                At {
                    field: Some("settings.step_budget".into()),
                    ..At::default()
                },
                "the step budget must be at least 1, or no turn could run a single step".into(),
            );
        }
        let edges = self.edges();
        self.graph(&edges);
    }

    fn ids(&mut self) {
        let flow = self.flow;
        let mut starts = Vec::new();
        for (i, node) in flow.nodes.iter().enumerate() {
            if node.id.trim().is_empty() {
                self.error(
                    Code::DuplicateId,
                    At::default(),
                    format!("node number {} has an empty id", i + 1),
                );
            } else if self.index.insert(&node.id, i).is_some() {
                self.error(
                    Code::DuplicateId,
                    at_node(&node.id),
                    format!(
                        "two nodes have the id `{}`; every node needs its own id",
                        node.id
                    ),
                );
                // Keep the first node under this id, so edges resolve to it.
                let first = flow.nodes.iter().position(|n| n.id == node.id).unwrap_or(i);
                self.index.insert(&node.id, first);
            }
            if matches!(node.kind, NodeKind::Start(_)) {
                starts.push(node.id.as_str());
            }
        }
        match starts.as_slice() {
            [] => self.error(
                Code::MissingStart,
                At::default(),
                "the flow has no start node, so a conversation would not know where to begin"
                    .into(),
            ),
            [_] => {}
            [_, rest @ ..] => {
                for extra in rest {
                    self.error(
                        Code::MultipleStarts,
                        at_node(extra),
                        "the flow has more than one start node; keep exactly one".into(),
                    );
                }
            }
        }
    }

    fn variables(&mut self) {
        let flow = self.flow;
        let mut seen = BTreeSet::new();
        for (i, var) in flow.variables.iter().enumerate() {
            let at = At {
                field: Some(format!("variables[{i}]")),
                ..At::default()
            };
            let valid_name = var
                .name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && var
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_name {
                self.error(
                    Code::BadVariable,
                    at.clone(),
                    format!(
                        "`{}` is not a usable variable name: use letters, digits and `_`, starting with a letter or `_`",
                        var.name
                    ),
                );
            } else if matches!(
                var.name.as_str(),
                "sys" | "item" | "true" | "false" | "null" | "and" | "or" | "not"
            ) {
                self.error(
                    Code::BadVariable,
                    at.clone(),
                    format!("`{}` is a reserved name; pick another", var.name),
                );
            }
            if !seen.insert(var.name.as_str()) {
                self.error(
                    Code::BadVariable,
                    at.clone(),
                    format!("the variable `{}` is declared twice", var.name),
                );
            }
            if let Some(default) = &var.default
                && !default.fits(&var.ty)
            {
                self.error(
                    Code::TypeError,
                    at,
                    format!(
                        "the default of `{}` is a {}, but the variable is a {}",
                        var.name,
                        default.kind_name(),
                        var.ty
                    ),
                );
            }
        }
        for (list, what) in [
            (&flow.interface.inputs, "input"),
            (&flow.interface.outputs, "output"),
        ] {
            for name in list {
                if flow.variable(name).is_none() {
                    self.error(
                        Code::BadSubflowContract,
                        At {
                            field: Some(format!("interface.{what}s")),
                            ..At::default()
                        },
                        format!("the {what} `{name}` is not a declared variable of this flow"),
                    );
                }
            }
        }
    }

    /// Parses and type-checks an expression; reports problems; returns its type if it is fine.
    fn expr(&mut self, node: &str, field: &str, source: &str, item: Option<Type>) -> Option<Type> {
        let parsed = match expr::parse(source) {
            Ok(e) => e,
            Err(e) => {
                self.error(
                    Code::SyntaxError,
                    At {
                        span: Some(e.span),
                        ..at_field(node, field)
                    },
                    e.message,
                );
                return None;
            }
        };
        let env = Env {
            flow: self.flow,
            item,
        };
        match parsed.check(&env) {
            Ok(ty) => Some(ty),
            Err(e) => {
                let code = if e.message.starts_with("unknown variable") {
                    Code::UndeclaredVariable
                } else {
                    Code::TypeError
                };
                self.error(
                    code,
                    At {
                        span: Some(e.span),
                        ..at_field(node, field)
                    },
                    e.message,
                );
                None
            }
        }
    }

    /// Checks every variant of a text as a template.
    fn text(&mut self, node: &str, field: &str, text: &Text, item: Option<&Type>) {
        for (locale, variant) in text.variants() {
            let field = match locale {
                Some(l) => format!("{field}.{l}"),
                None => field.to_owned(),
            };
            let template = match expr::parse_template(variant) {
                Ok(t) => t,
                Err(e) => {
                    self.error(
                        Code::SyntaxError,
                        At {
                            span: Some(e.span),
                            ..at_field(node, &field)
                        },
                        e.message,
                    );
                    continue;
                }
            };
            let env = Env {
                flow: self.flow,
                item: item.cloned(),
            };
            if let Err(e) = template.check(&env) {
                let code = if e.message.starts_with("unknown variable") {
                    Code::UndeclaredVariable
                } else {
                    Code::TypeError
                };
                self.error(
                    code,
                    At {
                        span: Some(e.span),
                        ..at_field(node, &field)
                    },
                    e.message,
                );
            }
        }
    }

    /// Checks that `var` is declared and can hold a `ty`.
    fn target(&mut self, node: &str, field: &str, var: &str, ty: &Type) {
        match self.flow.variable(var) {
            None => self.error(
                Code::UndeclaredVariable,
                at_field(node, field),
                format!("there is no variable `{var}`; declare it in the flow's variables"),
            ),
            Some(decl) if !ty.compatible(&decl.ty) => self.error(
                Code::TypeError,
                at_field(node, field),
                format!("`{var}` holds a {}, but this stores a {ty} in it", decl.ty),
            ),
            Some(_) => {}
        }
    }

    fn node(&mut self, i: usize) {
        let flow = self.flow;
        let node = &flow.nodes[i];
        let id = node.id.as_str();
        match &node.kind {
            NodeKind::Start(_) | NodeKind::End(_) => {}
            NodeKind::Message(message) => {
                if message.parts.is_empty() {
                    self.error(
                        Code::BadNodeSettings,
                        at_node(id),
                        "this message has nothing to say; add a text".into(),
                    );
                }
                for (p, part) in message.parts.iter().enumerate() {
                    match part {
                        Part::Text { text } => {
                            self.text(id, &format!("parts[{p}].text"), text, None);
                        }
                        Part::Image { alt, .. } => {
                            if let Some(alt) = alt {
                                self.text(id, &format!("parts[{p}].alt"), alt, None);
                            }
                        }
                        Part::Products { from, .. } => {
                            let field = format!("parts[{p}].from");
                            if let Some(ty) = self.expr(id, &field, from, None)
                                && !ty.compatible(&Type::List(Box::new(Type::Map)))
                            {
                                self.error(
                                    Code::TypeError,
                                    at_field(id, field),
                                    format!("product cards are built from a list of maps, but this is a {ty}"),
                                );
                            }
                        }
                        Part::Carousel { cards } => {
                            for (c, card) in cards.iter().enumerate() {
                                self.text(
                                    id,
                                    &format!("parts[{p}].cards[{c}].title"),
                                    &card.title,
                                    None,
                                );
                                if let Some(subtitle) = &card.subtitle {
                                    self.text(
                                        id,
                                        &format!("parts[{p}].cards[{c}].subtitle"),
                                        subtitle,
                                        None,
                                    );
                                }
                            }
                        }
                    }
                }
            }
            NodeKind::Choice(choice) => {
                self.text(id, "prompt", &choice.prompt, None);
                if let Some(retry) = &choice.retry_prompt {
                    self.text(id, "retry_prompt", retry, None);
                }
                let mut stored = Type::String;
                match (&choice.dynamic, choice.options.is_empty()) {
                    (None, true) => {
                        self.error(
                            Code::BadNodeSettings,
                            at_node(id),
                            "this choice offers no options; add at least one".into(),
                        );
                    }
                    (Some(_), false) => self.error(
                        Code::BadNodeSettings,
                        at_node(id),
                        "a choice has either fixed options or options from a list, not both".into(),
                    ),
                    (Some(dynamic), true) => {
                        let element = match self.expr(id, "dynamic.list", &dynamic.list, None) {
                            Some(Type::List(element)) => Some(*element),
                            Some(Type::Any) => Some(Type::Any),
                            Some(other) => {
                                self.error(
                                    Code::TypeError,
                                    at_field(id, "dynamic.list"),
                                    format!("options are built from a list, but this is a {other}"),
                                );
                                None
                            }
                            None => None,
                        };
                        let element = element.unwrap_or(Type::Any);
                        self.text(id, "dynamic.label", &dynamic.label, Some(&element));
                        stored = element;
                    }
                    (None, false) => {
                        let mut seen = BTreeSet::new();
                        for (o, option) in choice.options.iter().enumerate() {
                            self.text(id, &format!("options[{o}].label"), &option.label, None);
                            if !seen.insert(option.id.as_str()) {
                                self.error(
                                    Code::BadNodeSettings,
                                    at_field(id, format!("options[{o}].id")),
                                    format!("two options have the id `{}`", option.id),
                                );
                            }
                        }
                    }
                }
                if let Some(var) = &choice.save_as {
                    self.target(id, "save_as", var, &stored);
                }
            }
            NodeKind::Input(input) => {
                self.text(id, "prompt", &input.prompt, None);
                if let Some(retry) = &input.retry_prompt {
                    self.text(id, "retry_prompt", retry, None);
                }
                self.target(
                    id,
                    "save_as",
                    &input.save_as,
                    &input.input_type.value_type(),
                );
                if let Some(pattern) = &input.validation.pattern
                    && let Err(e) = crate::engine::anchored(pattern)
                {
                    self.error(Code::BadNodeSettings, at_field(id, "validation.pattern"), e);
                }
                if let (Some(min), Some(max)) = (input.validation.min, input.validation.max)
                    && min > max
                {
                    self.error(
                        Code::BadNodeSettings,
                        at_field(id, "validation"),
                        format!("the minimum {min} is larger than the maximum {max}"),
                    );
                }
            }
            NodeKind::Condition(condition) => {
                let mut seen = BTreeSet::new();
                for (b, branch) in condition.branches.iter().enumerate() {
                    let field = format!("branches[{b}].when");
                    if let Some(ty) = self.expr(id, &field, &branch.when, None)
                        && !ty.compatible(&Type::Bool)
                    {
                        self.error(
                            Code::TypeError,
                            at_field(id, field),
                            format!("a condition must be true or false, but this gives a {ty}"),
                        );
                    }
                    if branch.id == port::DEFAULT || !seen.insert(branch.id.as_str()) {
                        self.error(
                            Code::BadNodeSettings,
                            at_field(id, format!("branches[{b}].id")),
                            format!(
                                "the branch name `{}` is used twice (`default` is taken)",
                                branch.id
                            ),
                        );
                    }
                }
            }
            NodeKind::Set(set) => {
                for (a, assignment) in set.assignments.iter().enumerate() {
                    if let Some(ty) = self.expr(
                        id,
                        &format!("assignments[{a}].value"),
                        &assignment.value,
                        None,
                    ) {
                        self.target(id, &format!("assignments[{a}].var"), &assignment.var, &ty);
                    } else if flow.variable(&assignment.var).is_none() {
                        self.target(
                            id,
                            &format!("assignments[{a}].var"),
                            &assignment.var,
                            &Type::Any,
                        );
                    }
                }
            }
            NodeKind::Lookup(lookup) => {
                for (name, param) in &lookup.params {
                    self.expr(id, &format!("params.{name}"), param, None);
                }
                if let Some(var) = &lookup.save_as {
                    match flow.variable(var).map(|v| &v.ty) {
                        None => self.target(id, "save_as", var, &Type::Any),
                        Some(Type::Map | Type::Any) => {}
                        Some(Type::List(element)) if element.compatible(&Type::Map) => {}
                        Some(other) => self.error(
                            Code::TypeError,
                            at_field(id, "save_as"),
                            format!("lookup rows go into a list<map> (all rows) or a map (the first row), but `{var}` is a {other}"),
                        ),
                    }
                }
                if lookup.connector.trim().is_empty() || lookup.entity.trim().is_empty() {
                    self.error(
                        Code::BadNodeSettings,
                        at_node(id),
                        "choose the connector and the entity to look up".into(),
                    );
                }
            }
            NodeKind::Handoff(handoff) => {
                self.text(id, "reason", &handoff.reason, None);
                if let Some(summary) = &handoff.summary {
                    self.text(id, "summary", summary, None);
                }
                if let Some(message) = &handoff.message {
                    self.text(id, "message", message, None);
                }
                if handoff.queue.is_none() && handoff.team.is_none() {
                    self.error(
                        Code::BadNodeSettings,
                        at_node(id),
                        "choose the queue or the team that takes over".into(),
                    );
                }
            }
            NodeKind::Wait(wait) => {
                if let Some(var) = &wait.save_as {
                    self.target(id, "save_as", var, &Type::String);
                }
                if wait.seconds == 0 {
                    self.error(
                        Code::BadNodeSettings,
                        at_field(id, "seconds"),
                        "a wait must last at least one second".into(),
                    );
                }
            }
            NodeKind::Call(call) => self.call(id, call),
            NodeKind::AbSplit(split) => {
                if split
                    .variants
                    .iter()
                    .map(|v| u64::from(v.weight))
                    .sum::<u64>()
                    == 0
                {
                    self.error(
                        Code::BadNodeSettings,
                        at_node(id),
                        "give at least one variant a weight above 0".into(),
                    );
                }
                if split
                    .variants
                    .iter()
                    .map(|v| u64::from(v.weight))
                    .sum::<u64>()
                    > u64::from(u32::MAX)
                {
                    self.error(
                        Code::BadNodeSettings,
                        at_node(id),
                        "the weights add up to too much".into(),
                    );
                }
                let mut seen = BTreeSet::new();
                for (k, variant) in split.variants.iter().enumerate() {
                    if !seen.insert(variant.id.as_str()) {
                        self.error(
                            Code::BadNodeSettings,
                            at_field(id, format!("variants[{k}].id")),
                            format!("two variants are named `{}`", variant.id),
                        );
                    }
                }
            }
            NodeKind::Jump(jump) => {
                if !self.index.contains_key(jump.target.as_str()) {
                    self.error(
                        Code::DanglingEdge,
                        at_field(id, "target"),
                        format!("this jumps to `{}`, but there is no such node", jump.target),
                    );
                }
            }
        }
    }

    fn call(&mut self, id: &str, call: &crate::model::Call) {
        let Some(callee) = self.library.get(&call.flow) else {
            self.error(
                Code::BadSubflowContract,
                at_field(id, "flow"),
                format!("there is no flow `{}` to call", call.flow),
            );
            return;
        };
        for (name, input) in &call.inputs {
            let field = format!("inputs.{name}");
            let ty = self.expr(id, &field, input, None);
            let declared = callee.variable(name);
            match declared {
                Some(var) if callee.interface.inputs.contains(name) => {
                    if let Some(ty) = ty
                        && !ty.compatible(&var.ty)
                    {
                        self.error(
                            Code::BadSubflowContract,
                            at_field(id, field),
                            format!(
                                "`{}` expects `{name}` to be a {}, but this gives a {ty}",
                                call.flow, var.ty
                            ),
                        );
                    }
                }
                _ => self.error(
                    Code::BadSubflowContract,
                    at_field(id, field),
                    format!(
                        "`{}` takes no input `{name}`; its inputs are: {}",
                        call.flow,
                        list(&callee.interface.inputs)
                    ),
                ),
            }
        }
        for name in &callee.interface.inputs {
            if !call.inputs.contains_key(name) {
                self.error(
                    Code::BadSubflowContract,
                    at_field(id, "inputs"),
                    format!("`{}` needs the input `{name}`", call.flow),
                );
            }
        }
        for (parent_var, sub_var) in &call.outputs {
            let field = format!("outputs.{parent_var}");
            match callee.variable(sub_var) {
                Some(var) if callee.interface.outputs.contains(sub_var) => {
                    self.target(id, &field, parent_var, &var.ty);
                }
                _ => self.error(
                    Code::BadSubflowContract,
                    at_field(id, field),
                    format!(
                        "`{}` returns no `{sub_var}`; it returns: {}",
                        call.flow,
                        list(&callee.interface.outputs)
                    ),
                ),
            }
        }
    }

    fn events(&mut self) {
        let events = &self.flow.events;
        let targets = [
            ("events.agent.target", &events.agent.target),
            ("events.restart.target", &events.restart.target),
            ("events.cancel.target", &events.cancel.target),
            ("events.error.target", &events.error.target),
        ];
        let inactivity = events
            .inactivity
            .as_ref()
            .map(|i| ("events.inactivity.target", &i.target));
        for (field, target) in targets.into_iter().chain(inactivity) {
            if let Some(target) = target
                && !self.index.contains_key(target.as_str())
            {
                self.error(
                    Code::BadEventTarget,
                    At {
                        field: Some(field.into()),
                        ..At::default()
                    },
                    format!("the event goes to `{target}`, but there is no such node"),
                );
            }
        }
    }

    /// Resolves edges (reporting broken ones) into `(from, port, to)` indices, plus jumps.
    fn edges(&mut self) -> Vec<(usize, String, usize)> {
        let flow = self.flow;
        let mut resolved = Vec::new();
        let mut used: BTreeSet<(usize, &str)> = BTreeSet::new();
        for (e, edge) in flow.edges.iter().enumerate() {
            let field = format!("edges[{e}]");
            let (Some(&from), Some(&to)) = (
                self.index.get(edge.from.as_str()),
                self.index.get(edge.to.as_str()),
            ) else {
                let missing = if self.index.contains_key(edge.from.as_str()) {
                    &edge.to
                } else {
                    &edge.from
                };
                self.error(
                    Code::DanglingEdge,
                    At {
                        field: Some(field),
                        port: Some(edge.port.clone()),
                        node: Some(edge.from.clone()),
                        span: None,
                    },
                    format!(
                        "an arrow connects `{}` to `{}`, but there is no node `{missing}`",
                        edge.from, edge.to
                    ),
                );
                continue;
            };
            let kind = &flow.nodes[from].kind;
            if !kind.ports().iter().any(|p| p.name == edge.port) {
                let ports: Vec<String> = kind.ports().into_iter().map(|p| p.name).collect();
                self.error(
                    Code::UnknownPort,
                    At {
                        node: Some(edge.from.clone()),
                        port: Some(edge.port.clone()),
                        field: Some(field),
                        span: None,
                    },
                    format!(
                        "a {} node has no exit `{}`; its exits are: {}",
                        kind.name(),
                        edge.port,
                        list(&ports)
                    ),
                );
                continue;
            }
            if !used.insert((from, edge.port.as_str())) {
                self.error(
                    Code::PortConnectedTwice,
                    At {
                        node: Some(edge.from.clone()),
                        port: Some(edge.port.clone()),
                        field: Some(field),
                        span: None,
                    },
                    "this exit has more than one arrow; an exit leads to exactly one next step"
                        .into(),
                );
                continue;
            }
            resolved.push((from, edge.port.clone(), to));
        }
        for (i, node) in flow.nodes.iter().enumerate() {
            if self.index.get(node.id.as_str()) != Some(&i) {
                continue;
            }
            for port in node.kind.ports() {
                if port.required && !used.contains(&(i, port.name.as_str())) {
                    let at = At {
                        node: Some(node.id.clone()),
                        port: Some(port.name.clone()),
                        ..At::default()
                    };
                    if matches!(node.kind, NodeKind::Condition(_)) && port.name == port::DEFAULT {
                        self.error(
                            Code::ConditionWithoutDefault,
                            at,
                            "connect the `default` exit: it is taken when no branch is true".into(),
                        );
                    } else {
                        self.error(
                            Code::DeadEnd,
                            at,
                            format!(
                                "nothing is connected to the `{}` exit, so the conversation would stop here without an ending",
                                port.name
                            ),
                        );
                    }
                }
            }
            if let NodeKind::Jump(jump) = &node.kind
                && let Some(&to) = self.index.get(jump.target.as_str())
            {
                resolved.push((i, "jump".into(), to));
            }
        }
        resolved
    }

    fn graph(&mut self, edges: &[(usize, String, usize)]) {
        let flow = self.flow;
        let Some(start) = flow
            .nodes
            .iter()
            .position(|n| matches!(n.kind, NodeKind::Start(_)))
        else {
            return;
        };
        let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(flow.nodes.len(), edges.len());
        for i in 0..flow.nodes.len() {
            graph.add_node(i);
        }
        for (from, _, to) in edges {
            graph.add_edge(NodeIndex::new(*from), NodeIndex::new(*to), ());
        }
        // Global event targets can be entered from anywhere, so they count as roots.
        let events = &flow.events;
        let roots: Vec<usize> = std::iter::once(start)
            .chain(
                [
                    &events.agent.target,
                    &events.restart.target,
                    &events.cancel.target,
                    &events.error.target,
                ]
                .into_iter()
                .chain(events.inactivity.as_ref().map(|i| &i.target))
                .flatten()
                .filter_map(|t| self.index.get(t.as_str()).copied()),
            )
            .collect();
        let mut reachable = vec![false; flow.nodes.len()];
        for &root in &roots {
            let mut dfs = Dfs::new(&graph, NodeIndex::new(root));
            while let Some(n) = dfs.next(&graph) {
                reachable[n.index()] = true;
            }
        }
        for (i, node) in flow.nodes.iter().enumerate() {
            if !reachable[i] && self.index.get(node.id.as_str()) == Some(&i) {
                self.warning(
                    Code::UnreachableNode,
                    at_node(&node.id),
                    format!(
                        "`{}` can never be reached: no arrow leads to it from the start",
                        node.display_name()
                    ),
                );
            }
        }

        // A loop must pass through a node that waits for the outside world, or one turn would
        // run it until the step budget stops it.
        let mut instant = graph.clone();
        instant.retain_edges(|g, e| {
            let (a, b) = g
                .edge_endpoints(e)
                .unwrap_or((NodeIndex::new(0), NodeIndex::new(0)));
            !flow.nodes[a.index()].kind.is_wait_point()
                && !flow.nodes[b.index()].kind.is_wait_point()
        });
        for component in tarjan_scc(&instant) {
            let looping = component.len() > 1 || instant.contains_edge(component[0], component[0]);
            if looping {
                let mut members: Vec<usize> = component.iter().map(|n| n.index()).collect();
                members.sort_unstable();
                let names: Vec<String> = members
                    .iter()
                    .map(|&i| format!("`{}`", flow.nodes[i].display_name()))
                    .collect();
                self.error(
                    Code::LoopWithoutWait,
                    at_node(&flow.nodes[members[0]].id),
                    format!(
                        "these steps form a loop that never waits for the visitor: {}. Put a question, a lookup or a wait inside the loop",
                        names.join(" → ")
                    ),
                );
            }
        }

        self.definite_assignment(start, &roots, edges, &reachable);

        let reaches_human = flow
            .nodes
            .iter()
            .enumerate()
            .any(|(i, n)| reachable[i] && matches!(n.kind, NodeKind::Handoff(_)));
        if !reaches_human && !events.agent.enabled {
            self.warning(
                Code::NoWayToAHuman,
                At::default(),
                "visitors can never reach a person: there is no handoff step and the \"agent\" keyword is turned off".into(),
            );
        }
    }

    /// Warns where a variable is read on some path before anything gives it a value
    /// (a forward "definitely assigned" analysis over the graph).
    fn definite_assignment(
        &mut self,
        start: usize,
        roots: &[usize],
        edges: &[(usize, String, usize)],
        reachable: &[bool],
    ) {
        let flow = self.flow;
        let all: BTreeSet<&str> = flow.variables.iter().map(|v| v.name.as_str()).collect();
        let initial: BTreeSet<&str> = flow
            .variables
            .iter()
            .filter(|v| {
                v.default.is_some()
                    || v.scope == Scope::User
                    || flow.interface.inputs.contains(&v.name)
            })
            .map(|v| v.name.as_str())
            .collect();
        let n = flow.nodes.len();
        let mut entry: Vec<BTreeSet<&str>> = vec![all.clone(); n];
        for &root in roots {
            entry[root] = initial.clone();
        }
        let mut changed = true;
        while changed {
            changed = false;
            let mut next: Vec<Option<BTreeSet<&str>>> = vec![None; n];
            for &root in roots {
                next[root] = Some(initial.clone());
            }
            for (from, port, to) in edges {
                if !reachable[*from] {
                    continue;
                }
                let mut out = entry[*from].clone();
                out.extend(assigned(flow, *from, port));
                next[*to] = Some(match next[*to].take() {
                    None => out,
                    Some(acc) => acc.intersection(&out).copied().collect(),
                });
            }
            for (i, set) in next.into_iter().enumerate() {
                if let Some(set) = set
                    && reachable[i]
                    && set != entry[i]
                {
                    entry[i] = set;
                    changed = true;
                }
            }
        }
        let _ = start;
        for (i, node) in flow.nodes.iter().enumerate() {
            if !reachable[i] {
                continue;
            }
            let mut known = entry[i].clone();
            for (field, source, kind) in reads(&node.kind) {
                let names = match kind {
                    Source::Expr => expr::parse(source)
                        .map(|e| e.variables())
                        .unwrap_or_default(),
                    Source::Template => expr::parse_template(source)
                        .map(|t| t.variables())
                        .unwrap_or_default(),
                };
                for name in names {
                    if all.contains(name.as_str()) && !known.contains(name.as_str()) {
                        self.warning(
                            Code::UsedBeforeSet,
                            at_field(&node.id, field.clone()),
                            format!("`{name}` may be used here before it gets a value on some path; it would be empty"),
                        );
                        // One warning per variable and node is enough.
                        if let Some(&interned) = all.get(name.as_str()) {
                            known.insert(interned);
                        }
                    }
                }
                if let (NodeKind::Set(set), Some(index)) =
                    (&node.kind, field.strip_prefix("assignments["))
                {
                    // Later assignments in the same node see earlier ones.
                    let a: usize = index
                        .split(']')
                        .next()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    if let Some(assignment) = set.assignments.get(a)
                        && let Some(&interned) = all.get(assignment.var.as_str())
                    {
                        known.insert(interned);
                    }
                }
            }
        }
    }
}

enum Source {
    Expr,
    Template,
}

/// Every expression and template a node evaluates, with its field, in evaluation order.
fn reads(kind: &NodeKind) -> Vec<(String, &str, Source)> {
    fn text<'k>(field: &str, text: &'k Text, out: &mut Vec<(String, &'k str, Source)>) {
        for (locale, variant) in text.variants() {
            let field = locale.map_or_else(|| field.to_owned(), |l| format!("{field}.{l}"));
            out.push((field, variant, Source::Template));
        }
    }
    let mut out = Vec::new();
    match kind {
        NodeKind::Message(m) => {
            for (p, part) in m.parts.iter().enumerate() {
                match part {
                    Part::Text { text: t } => text(&format!("parts[{p}].text"), t, &mut out),
                    Part::Image { alt: Some(t), .. } => {
                        text(&format!("parts[{p}].alt"), t, &mut out);
                    }
                    Part::Image { alt: None, .. } => {}
                    Part::Products { from, .. } => {
                        out.push((format!("parts[{p}].from"), from.as_str(), Source::Expr));
                    }
                    Part::Carousel { cards } => {
                        for (c, card) in cards.iter().enumerate() {
                            text(
                                &format!("parts[{p}].cards[{c}].title"),
                                &card.title,
                                &mut out,
                            );
                            if let Some(s) = &card.subtitle {
                                text(&format!("parts[{p}].cards[{c}].subtitle"), s, &mut out);
                            }
                        }
                    }
                }
            }
        }
        NodeKind::Choice(c) => {
            text("prompt", &c.prompt, &mut out);
            if let Some(retry) = &c.retry_prompt {
                text("retry_prompt", retry, &mut out);
            }
            for (o, option) in c.options.iter().enumerate() {
                text(&format!("options[{o}].label"), &option.label, &mut out);
            }
            if let Some(d) = &c.dynamic {
                out.push(("dynamic.list".into(), d.list.as_str(), Source::Expr));
                text("dynamic.label", &d.label, &mut out);
            }
        }
        NodeKind::Input(i) => {
            text("prompt", &i.prompt, &mut out);
            if let Some(retry) = &i.retry_prompt {
                text("retry_prompt", retry, &mut out);
            }
        }
        NodeKind::Condition(c) => {
            for (b, branch) in c.branches.iter().enumerate() {
                out.push((
                    format!("branches[{b}].when"),
                    branch.when.as_str(),
                    Source::Expr,
                ));
            }
        }
        NodeKind::Set(s) => {
            for (a, assignment) in s.assignments.iter().enumerate() {
                out.push((
                    format!("assignments[{a}].value"),
                    assignment.value.as_str(),
                    Source::Expr,
                ));
            }
        }
        NodeKind::Lookup(l) => {
            for (name, param) in &l.params {
                out.push((format!("params.{name}"), param.as_str(), Source::Expr));
            }
        }
        NodeKind::Handoff(h) => {
            text("reason", &h.reason, &mut out);
            if let Some(s) = &h.summary {
                text("summary", s, &mut out);
            }
            if let Some(m) = &h.message {
                text("message", m, &mut out);
            }
        }
        NodeKind::Call(c) => {
            for (name, input) in &c.inputs {
                out.push((format!("inputs.{name}"), input.as_str(), Source::Expr));
            }
        }
        NodeKind::Start(_)
        | NodeKind::Wait(_)
        | NodeKind::AbSplit(_)
        | NodeKind::Jump(_)
        | NodeKind::End(_) => {}
    }
    out
}

/// The variables a node gives a value when it is left through `port`.
fn assigned<'f>(flow: &'f Flow, node: usize, port_name: &str) -> Vec<&'f str> {
    match &flow.nodes[node].kind {
        NodeKind::Set(s) => s.assignments.iter().map(|a| a.var.as_str()).collect(),
        NodeKind::Input(i) if port_name == port::NEXT => vec![i.save_as.as_str()],
        NodeKind::Choice(c) => c.save_as.iter().map(String::as_str).collect(),
        NodeKind::Lookup(l) if port_name != port::ERROR => {
            l.save_as.iter().map(String::as_str).collect()
        }
        NodeKind::Wait(w) if port_name == port::REPLY => {
            w.save_as.iter().map(String::as_str).collect()
        }
        NodeKind::Call(c) => c.outputs.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
