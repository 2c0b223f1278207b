//! The interpreter: runs prepared flows by walking their graphs. The step driver
//! (`machine.rs`) is shared with generated code; this file is the interpreted side of
//! [`FlowCode`]: what each node kind does, with expressions and templates evaluated from their
//! syntax trees.

use std::collections::BTreeMap;

use super::machine::{FlowCode, HandoffTexts, HandoffTo, Machine, Next, Run, VarTable, WaitSpec};
use super::program::{CPart, CText, Compiled, Program};
use super::support;
use super::{Card, Engine, FlowRef, Input, Millis, Offered, Output, Session, Step};
use crate::expr::{Expr, Template, ValueEnv};
use crate::library::Library;
use crate::model::{Events, NodeKind, Part, Settings, port};
use crate::validate::{Diagnostic, Severity, validate};
use crate::value::Value;

/// Why a set of flows cannot be run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadFlowsError {
    #[error("no flow with id `{0}` in the library")]
    UnknownFlow(String),
    #[error("flow `{flow}` has {} error(s); the first: {}", diagnostics.len(), diagnostics.first().map(ToString::to_string).unwrap_or_default())]
    Invalid {
        flow: String,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("flow `{flow}` cannot be prepared: {message}")]
    Prepare { flow: String, message: String },
}

/// Runs a flow (and the sub-flows it calls) by interpreting its graph.
pub struct Interpreter {
    machine: Machine,
}

impl Interpreter {
    /// Prepares `main` and every flow it calls, refusing flows with validation errors.
    pub fn new(library: &Library, main: &str) -> Result<Interpreter, LoadFlowsError> {
        let mut programs: BTreeMap<String, Program> = BTreeMap::new();
        let mut todo = vec![main.to_owned()];
        while let Some(id) = todo.pop() {
            if programs.contains_key(&id) {
                continue;
            }
            let flow = library
                .get(&id)
                .ok_or_else(|| LoadFlowsError::UnknownFlow(id.clone()))?;
            let errors: Vec<Diagnostic> = validate(flow, library)
                .into_iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            if !errors.is_empty() {
                return Err(LoadFlowsError::Invalid {
                    flow: id,
                    diagnostics: errors,
                });
            }
            for node in &flow.nodes {
                if let NodeKind::Call(call) = &node.kind {
                    todo.push(call.flow.clone());
                }
            }
            let program =
                Program::new(flow.clone()).map_err(|message| LoadFlowsError::Prepare {
                    flow: id.clone(),
                    message,
                })?;
            programs.insert(id, program);
        }
        let flow = library
            .flow_ref(main)
            .ok_or_else(|| LoadFlowsError::UnknownFlow(main.to_owned()))?;
        let main_program = programs
            .remove(main)
            .ok_or_else(|| LoadFlowsError::UnknownFlow(main.to_owned()))?;
        let subs = programs
            .into_values()
            .map(|p| Box::new(p) as Box<dyn FlowCode>)
            .collect();
        Ok(Interpreter {
            machine: Machine::new(flow, Box::new(main_program), subs),
        })
    }
}

impl Engine for Interpreter {
    fn flow(&self) -> &FlowRef {
        self.machine.flow()
    }

    fn step(&self, session: &mut Session, input: &Input, now: Millis) -> Step {
        self.machine.step(session, input, now)
    }
}

/// Variables visible to expressions: the current frame's, `sys`, and `item` in dynamic labels.
struct Env<'e> {
    vars: Option<&'e BTreeMap<String, Value>>,
    sys: &'e Value,
    item: Option<&'e Value>,
}

impl ValueEnv for Env<'_> {
    fn var(&self, name: &str) -> Option<&Value> {
        match name {
            "sys" => Some(self.sys),
            "item" if self.item.is_some() => self.item,
            _ => self.vars?.get(name),
        }
    }
}

fn env<'e>(run: &'e Run<'_>, item: Option<&'e Value>) -> Env<'e> {
    Env {
        vars: run.vars(),
        sys: run.sys(),
        item,
    }
}

impl Program {
    fn eval(run: &Run<'_>, expr: &Expr) -> Result<Value, String> {
        expr.eval(&env(run, None)).map_err(|e| e.to_string())
    }

    fn render(&self, run: &Run<'_>, text: &CText, item: Option<&Value>) -> Result<String, String> {
        let Some(template): Option<&Template> = text.pick(run.locale(), &self.flow.default_locale)
        else {
            return Ok(String::new());
        };
        template.render(&env(run, item)).map_err(|e| e.to_string())
    }

    fn render_opt(&self, run: &Run<'_>, text: Option<&CText>) -> Result<Option<String>, String> {
        text.map(|t| self.render(run, t, None)).transpose()
    }

    fn output(&self, run: &Run<'_>, part: &Part, compiled: &CPart) -> Result<Output, String> {
        Ok(match (part, compiled) {
            (Part::Text { .. }, CPart::Text(text)) => Output::Text {
                text: self.render(run, text, None)?,
            },
            (Part::Image { url, .. }, CPart::Image { alt }) => Output::Image {
                url: url.clone(),
                alt: self.render_opt(run, alt.as_ref())?.unwrap_or_default(),
            },
            (Part::Products { limit, .. }, CPart::Products(from)) => {
                support::products(&Self::eval(run, from)?, *limit)?
            }
            (Part::Carousel { cards }, CPart::Carousel(texts)) => {
                let mut out = Vec::new();
                for (card, (title, subtitle)) in cards.iter().zip(texts) {
                    out.push(Card {
                        id: None,
                        title: self.render(run, title, None)?,
                        subtitle: self.render_opt(run, subtitle.as_ref())?,
                        price: None,
                        image: card.image.clone(),
                        url: card.url.clone(),
                    });
                }
                Output::Carousel { cards: out }
            }
            _ => return Err("internal: message part was not prepared".into()),
        })
    }
}

impl FlowCode for Program {
    fn id(&self) -> &str {
        &self.flow.id
    }

    fn default_locale(&self) -> &str {
        &self.flow.default_locale
    }

    fn start(&self) -> usize {
        self.start
    }

    fn node_id(&self, node: usize) -> &str {
        self.flow.nodes.get(node).map_or("", |n| n.id.as_str())
    }

    fn node_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    fn edge(&self, node: usize, port: &str) -> Option<usize> {
        self.edges.get(node)?.get(port).copied()
    }

    fn vars(&self) -> &VarTable {
        &self.vars
    }

    fn events(&self) -> &Events {
        &self.flow.events
    }

    fn settings(&self) -> &Settings {
        &self.flow.settings
    }

    fn enter(&self, run: &mut Run<'_>, idx: usize) -> Result<Next, String> {
        let (Some(node), Some(compiled)) = (self.flow.nodes.get(idx), self.nodes.get(idx)) else {
            return Err("internal: no such node".into());
        };
        Ok(match (&node.kind, compiled) {
            (NodeKind::Start(_), _) => run.follow(idx, port::NEXT),
            (NodeKind::Message(message), Compiled::Message(parts)) => {
                for (part, compiled) in message.parts.iter().zip(parts) {
                    let output = self.output(run, part, compiled)?;
                    run.say(idx, output);
                }
                run.follow(idx, port::NEXT)
            }
            (
                NodeKind::Choice(choice),
                Compiled::Choice {
                    prompt,
                    options,
                    dynamic,
                    ..
                },
            ) => {
                let offered = match dynamic {
                    None => {
                        let mut offered = Vec::new();
                        for (option, label) in choice.options.iter().zip(options) {
                            offered.push(Offered {
                                id: option.id.clone(),
                                label: self.render(run, label, None)?,
                                value: None,
                            });
                        }
                        offered
                    }
                    Some((list, label)) => {
                        let limit = choice.dynamic.as_ref().and_then(|d| d.limit);
                        let list = Self::eval(run, list)?;
                        let items = support::option_items(&list, limit)?;
                        let mut offered = Vec::with_capacity(items.len());
                        for (i, item) in items.iter().enumerate() {
                            offered.push(Offered {
                                id: (i + 1).to_string(),
                                label: self.render(run, label, Some(item))?,
                                value: Some(item.clone()),
                            });
                        }
                        offered
                    }
                };
                support::some_options(&offered)?;
                let prompt = self.render(run, prompt, None)?;
                run.offer(idx, prompt, offered)
            }
            (NodeKind::Input(input), Compiled::Input { prompt, .. }) => {
                let prompt = self.render(run, prompt, None)?;
                run.ask(idx, prompt, input.input_type)
            }
            (NodeKind::Condition(_), Compiled::Exprs(branches)) => {
                for (branch, when) in branches {
                    if support::branch_taken(branch, Self::eval(run, when))? {
                        return Ok(run.follow(idx, branch));
                    }
                }
                run.follow(idx, port::DEFAULT)
            }
            (NodeKind::Set(_), Compiled::Exprs(assignments)) => {
                for (var, value) in assignments {
                    let value =
                        Self::eval(run, value).map_err(|message| format!("`{var}`: {message}"))?;
                    run.set_var(var, value)?;
                }
                run.follow(idx, port::NEXT)
            }
            (NodeKind::Lookup(lookup), Compiled::Exprs(params)) => {
                let mut values = BTreeMap::new();
                for (name, param) in params {
                    let value = Self::eval(run, param)
                        .map_err(|message| format!("parameter `{name}`: {message}"))?;
                    values.insert(name.clone(), value);
                }
                run.lookup(
                    idx,
                    &lookup.connector,
                    &lookup.entity,
                    &lookup.operation,
                    values,
                )
            }
            (
                NodeKind::Handoff(handoff),
                Compiled::Handoff {
                    reason,
                    summary,
                    message,
                },
            ) => {
                let texts = HandoffTexts {
                    reason: self.render(run, reason, None)?,
                    summary: self.render_opt(run, summary.as_ref())?,
                    message: self.render_opt(run, message.as_ref())?,
                };
                let to = HandoffTo {
                    queue: handoff.queue.as_deref(),
                    team: handoff.team.as_deref(),
                    priority: handoff.priority,
                };
                run.handoff(idx, &to, texts)
            }
            (NodeKind::Wait(wait), _) => run.wait(idx, wait.seconds),
            (NodeKind::Call(call), Compiled::Exprs(inputs)) => {
                let mut frame = run.begin_call(&call.flow)?;
                for (name, input) in inputs {
                    let value = Self::eval(run, input)
                        .map_err(|message| format!("input `{name}`: {message}"))?;
                    frame.input(name, value)?;
                }
                run.enter_call(idx, frame)
            }
            (NodeKind::AbSplit(split), _) => {
                let variants: Vec<(&str, u32)> = split
                    .variants
                    .iter()
                    .map(|v| (v.id.as_str(), v.weight))
                    .collect();
                run.ab_split(idx, &variants)
            }
            (NodeKind::Jump(jump), _) => {
                let target = self
                    .node_index(&jump.target)
                    .ok_or_else(|| format!("jump to a missing node `{}`", jump.target))?;
                run.jump(idx, target)
            }
            (NodeKind::End(end), _) => run.end_node(end.outcome.as_deref()),
            // The program is built from the same flow, so kinds and compiled forms always agree.
            _ => return Err("internal: node was not prepared".into()),
        })
    }

    fn wait_spec(&self, node: usize) -> Option<WaitSpec<'_>> {
        Some(match &self.flow.nodes.get(node)?.kind {
            NodeKind::Choice(c) => WaitSpec::Choice {
                save_as: c.save_as.as_deref(),
                dynamic: c.dynamic.is_some(),
            },
            NodeKind::Input(i) => WaitSpec::Input {
                save_as: &i.save_as,
                retries: i.retries,
                input_type: i.input_type,
            },
            NodeKind::Lookup(l) => WaitSpec::Lookup {
                save_as: l.save_as.as_deref(),
            },
            NodeKind::Wait(w) => WaitSpec::Wait {
                save_as: w.save_as.as_deref(),
            },
            NodeKind::Call(c) => WaitSpec::Call {
                outputs: c
                    .outputs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            },
            NodeKind::Handoff(_) => WaitSpec::Handoff,
            _ => return None,
        })
    }

    fn reprompt(&self, run: &Run<'_>, node: usize) -> Result<(Option<String>, String), String> {
        let Some(Compiled::Choice { prompt, retry, .. } | Compiled::Input { prompt, retry, .. }) =
            self.nodes.get(node)
        else {
            return Err("internal: node was not prepared".into());
        };
        let retry = self.render_opt(run, retry.as_ref())?;
        Ok((retry, self.render(run, prompt, None)?))
    }

    fn check_answer(&self, node: usize, text: &str) -> Option<Value> {
        let (NodeKind::Input(input), Compiled::Input { pattern, .. }) =
            (&self.flow.nodes.get(node)?.kind, self.nodes.get(node)?)
        else {
            return None;
        };
        support::validate_answer(input.input_type, &input.validation, pattern.as_ref(), text)
    }
}
