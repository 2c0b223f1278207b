//! The interpreter: runs prepared flows node by node. `docs/flow-format.md` ("Execution") is
//! the specification this file implements; generated code must match it step for step.

use std::collections::BTreeMap;

use super::messages::Builtin;
use super::program::{CPart, CText, Compiled, Program};
use super::support;
use super::{
    ChoiceOut, Effect, Engine, Expect, FlowRef, HandBack, HandoffRequest, Input, LookupOutcome,
    LookupRequest, Millis, Offered, Output, Resume, Session, Step, Trace, Waiting,
};
use crate::expr::{Expr, Template, ValueEnv};
use crate::library::Library;
use crate::model::{NodeKind, Scope, port};
use crate::validate::{Diagnostic, Severity, validate};
use crate::value::{Type, Value};

/// Deepest allowed nesting of `call` nodes.
pub const MAX_CALL_DEPTH: usize = 8;

/// The id of the inactivity timer.
pub const INACTIVITY_TIMER: &str = "inactivity";

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
    flow: FlowRef,
    main: String,
    programs: BTreeMap<String, Program>,
}

impl Interpreter {
    /// Prepares `main` and every flow it calls, refusing flows with validation errors.
    pub fn new(library: &Library, main: &str) -> Result<Interpreter, LoadFlowsError> {
        let mut programs = BTreeMap::new();
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
        Ok(Interpreter {
            flow,
            main: main.to_owned(),
            programs,
        })
    }
}

impl Engine for Interpreter {
    fn flow(&self) -> &FlowRef {
        &self.flow
    }

    fn step(&self, session: &mut Session, input: &Input, now: Millis) -> Step {
        let mut run = Run {
            it: self,
            main: &self.programs[&self.main],
            budget: 0,
            handling_error: false,
            sys: Value::Null,
            effects: Vec::new(),
            s: session,
        };
        run.budget = run.main.flow.settings.step_budget;
        if let Err(reason) = run.admit(input) {
            return Step {
                effects: vec![Effect::Rejected { reason }],
                status: session.status(),
            };
        }
        run.s.now = now;
        run.input(input);
        run.sync_timers();
        run.s.turns += 1;
        let effects = run.effects;
        Step {
            effects,
            status: session.status(),
        }
    }
}

/// What to do after a node.
enum Next {
    Node(usize),
    Stop,
}

/// One step in progress.
struct Run<'a> {
    it: &'a Interpreter,
    main: &'a Program,
    s: &'a mut Session,
    effects: Vec<Effect>,
    budget: u32,
    handling_error: bool,
    sys: Value,
}

/// Variables visible to expressions: the current frame's, `sys`, and `item` in dynamic labels.
struct Env<'e> {
    vars: &'e BTreeMap<String, Value>,
    sys: &'e Value,
    item: Option<&'e Value>,
}

impl ValueEnv for Env<'_> {
    fn var(&self, name: &str) -> Option<&Value> {
        match name {
            "sys" => Some(self.sys),
            "item" if self.item.is_some() => self.item,
            _ => self.vars.get(name),
        }
    }
}

impl<'a> Run<'a> {
    /// Decides whether `input` fits the session's state, before anything changes.
    fn admit(&self, input: &Input) -> Result<(), String> {
        if self.s.flow != self.it.flow {
            return Err(format!(
                "this session runs flow `{}` version {} ({}), not `{}` version {} ({})",
                self.s.flow.id,
                self.s.flow.version,
                self.s.flow.hash,
                self.it.flow.id,
                self.it.flow.version,
                self.it.flow.hash
            ));
        }
        self.consistent()?;
        let events = &self.main.flow.events;
        let waiting = &self.s.waiting;
        match (input, waiting) {
            (Input::Start(_), Waiting::NotStarted) => Ok(()),
            (Input::Start(_), _) => Err("the conversation has already started".into()),
            (_, Waiting::NotStarted) => Err("the conversation has not started yet".into()),
            (Input::Restart, _) => Ok(()),
            // Typing the restart keyword after the end starts over, like the restart button.
            (Input::Text(t), Waiting::Ended { .. }) if events.restart.matches(t) => Ok(()),
            (_, Waiting::Ended { .. }) => Err("the conversation has ended".into()),
            (Input::Cancel, _) => Ok(()),
            (
                Input::Text(_),
                Waiting::Choice { .. } | Waiting::Input { .. } | Waiting::Timer { .. },
            ) => Ok(()),
            // While a lookup runs, only the global keywords are heard.
            (Input::Text(t), Waiting::Lookup { .. })
                if events.cancel.matches(t)
                    || events.agent.matches(t)
                    || events.restart.matches(t) =>
            {
                Ok(())
            }
            (Input::Text(_), Waiting::Lookup { .. }) => {
                Err("the bot is still looking something up".into())
            }
            (Input::Text(_), Waiting::Agent { .. }) => {
                Err("a person owns the conversation; messages go to the agent".into())
            }
            (Input::Choice(id), Waiting::Choice { options, .. }) => {
                if options.iter().any(|o| &o.id == id) {
                    Ok(())
                } else {
                    Err(format!("`{id}` is not one of the options on offer"))
                }
            }
            (Input::Choice(_), _) => Err("no options are on offer".into()),
            (Input::LookupResult(r), Waiting::Lookup { request, .. }) if r.request == *request => {
                Ok(())
            }
            (Input::LookupResult(r), _) => {
                Err(format!("no lookup request {} is pending", r.request))
            }
            (Input::Timer(id), _) => {
                if self.s.timers.contains_key(id) {
                    Ok(())
                } else {
                    Err(format!("timer `{id}` is not armed"))
                }
            }
            (Input::HandBack(hb), Waiting::Agent { .. }) => self.admit_hand_back(hb),
            (Input::HandBack(_), _) => Err("no agent owns the conversation".into()),
        }
    }

    /// Checks that a stored session fits the loaded flows (every frame's flow is loaded, every
    /// node it names exists), so that a damaged session is refused instead of misread.
    fn consistent(&self) -> Result<(), String> {
        let s = &*self.s;
        if matches!(s.waiting, Waiting::NotStarted) {
            return Ok(());
        }
        if s.frames.is_empty() {
            return Err("the session is damaged: it has no frames".into());
        }
        let mut programs = Vec::with_capacity(s.frames.len());
        for frame in &s.frames {
            let program = self.it.programs.get(&frame.flow).ok_or_else(|| {
                format!(
                    "the session is damaged: flow `{}` is not loaded",
                    frame.flow
                )
            })?;
            programs.push(program);
        }
        let has = |program: &Program, node: &str| program.index.contains_key(node);
        for (i, frame) in s.frames.iter().enumerate().skip(1) {
            let parent = programs[i - 1];
            match &frame.call_node {
                Some(node) if has(parent, node) => {}
                _ => {
                    return Err(format!(
                        "the session is damaged: frame {i} has no valid call node"
                    ));
                }
            }
        }
        let top = programs[programs.len() - 1];
        let node = match &s.waiting {
            Waiting::Choice { node, .. }
            | Waiting::Input { node }
            | Waiting::Lookup { node, .. }
            | Waiting::Timer { node, .. }
            | Waiting::Agent {
                resume: Resume::HandoffReturn { node } | Resume::Reenter { node },
            } => Some(node),
            Waiting::NotStarted | Waiting::Ended { .. } => None,
        };
        match node {
            Some(node) if !has(top, node) => Err(format!(
                "the session is damaged: it waits at a missing node `{node}`"
            )),
            _ => Ok(()),
        }
    }

    fn admit_hand_back(&self, hb: &HandBack) -> Result<(), String> {
        let program = self.program();
        for (name, value) in &hb.vars {
            let Some((ty, _)) = program.vars.get(name) else {
                return Err(format!("the flow has no variable `{name}`"));
            };
            if !value.fits(ty) {
                return Err(format!("`{name}` is a {ty}, not a {}", value.kind_name()));
            }
        }
        match &hb.node {
            Some(node) if !program.index.contains_key(node) => {
                Err(format!("the flow has no node `{node}`"))
            }
            _ => Ok(()),
        }
    }

    fn program(&self) -> &'a Program {
        let it: &'a Interpreter = self.it;
        self.s
            .frames
            .last()
            .and_then(|f| it.programs.get(&f.flow))
            .unwrap_or(self.main)
    }

    fn input(&mut self, input: &Input) {
        let next = match input {
            Input::Start(start) => {
                self.s.session_id.clone_from(&start.session_id);
                self.s.locale.clone_from(&start.locale);
                self.s.channel.clone_from(&start.channel);
                // A flow with its own clock (opening hours) uses it for `sys`; else the visitor's.
                self.s.tz_offset_minutes = self
                    .main
                    .flow
                    .settings
                    .utc_offset_minutes
                    .unwrap_or(start.tz_offset_minutes);
                self.s.frames = vec![super::Frame {
                    flow: self.main.flow.id.clone(),
                    call_node: None,
                    vars: self.main.initial_vars(&start.user),
                }];
                self.sys = support::sys_value(self.s);
                Next::Node(self.main.start)
            }
            other => {
                self.sys = support::sys_value(self.s);
                self.event(other)
            }
        };
        self.run(next);
    }

    fn event(&mut self, input: &Input) -> Next {
        match input {
            Input::Start(_) => Next::Stop,
            Input::Text(text) => self.text(text),
            Input::Choice(id) => match &self.s.waiting {
                Waiting::Choice { options, .. } => match options.iter().position(|o| &o.id == id) {
                    Some(i) => self.pick(i),
                    None => Next::Stop,
                },
                _ => Next::Stop,
            },
            Input::LookupResult(result) => self.lookup_result(&result.outcome),
            Input::Timer(id) => {
                self.s.timers.remove(id);
                if id == INACTIVITY_TIMER {
                    self.inactivity()
                } else {
                    match &self.s.waiting {
                        Waiting::Timer { node, timer, .. } if timer == id => {
                            let node = self.program().index[node];
                            self.follow(node, port::TIMEOUT)
                        }
                        _ => Next::Stop,
                    }
                }
            }
            Input::HandBack(hb) => self.hand_back(hb),
            Input::Restart => self.restart(),
            Input::Cancel => self.cancel(),
        }
    }

    /// Runs nodes until the flow waits or ends.
    fn run(&mut self, mut next: Next) {
        while let Next::Node(idx) = next {
            if self.budget == 0 {
                let node = self.program().flow.nodes[idx].id.clone();
                let budget = self.main.flow.settings.step_budget;
                next = self.fail(
                    Some(node),
                    format!(
                        "the flow ran {budget} steps without waiting for the visitor; it probably loops (stopped before this node)"
                    ),
                );
                continue;
            }
            self.budget -= 1;
            next = self.exec(idx);
        }
    }

    fn exec(&mut self, idx: usize) -> Next {
        let program = self.program();
        let node = &program.flow.nodes[idx];
        let flow_id = &program.flow.id;
        self.trace(Trace::NodeEntered {
            flow: flow_id.clone(),
            node: node.id.clone(),
        });
        let entry = if *flow_id == self.it.main {
            node.id.clone()
        } else {
            format!("{flow_id}/{}", node.id)
        };
        if self.s.path.len() == super::session::PATH_LIMIT {
            self.s.path.remove(0);
        }
        self.s.path.push(entry);
        match self.enter(program, idx) {
            Ok(next) => next,
            Err(message) => self.fail(Some(node.id.clone()), message),
        }
    }

    /// What entering node `idx` does; an `Err` is a failure of that node.
    fn enter(&mut self, program: &'a Program, idx: usize) -> Result<Next, String> {
        let node = &program.flow.nodes[idx];
        let id = &node.id;
        Ok(match (&node.kind, &program.nodes[idx]) {
            (NodeKind::Start(_), _) => self.follow(idx, port::NEXT),
            (NodeKind::Message(message), Compiled::Message(parts)) => {
                for (part, compiled) in message.parts.iter().zip(parts) {
                    let output = self.output(part, compiled)?;
                    self.effects.push(Effect::Say {
                        node: id.clone(),
                        output,
                    });
                }
                self.follow(idx, port::NEXT)
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
                            let label = self.render(label, None)?;
                            offered.push(Offered {
                                id: option.id.clone(),
                                label,
                                value: None,
                            });
                        }
                        offered
                    }
                    Some((list, label)) => {
                        let limit = choice.dynamic.as_ref().and_then(|d| d.limit).unwrap_or(10);
                        self.dynamic_options(list, label, limit)?
                    }
                };
                if offered.is_empty() {
                    return Err("there are no options to offer: the list is empty".into());
                }
                let prompt = self.render(prompt, None)?;
                self.ask_choice(id, prompt, &offered);
                self.s.waiting = Waiting::Choice {
                    node: id.clone(),
                    options: offered,
                };
                self.s.attempts = 0;
                Next::Stop
            }
            (NodeKind::Input(input), Compiled::Input { prompt, .. }) => {
                let prompt = self.render(prompt, None)?;
                self.effects.push(Effect::Ask {
                    node: id.clone(),
                    prompt,
                    expect: Expect::Input {
                        input_type: input.input_type,
                    },
                });
                self.s.waiting = Waiting::Input { node: id.clone() };
                self.s.attempts = 0;
                Next::Stop
            }
            (NodeKind::Condition(_), Compiled::Exprs(branches)) => {
                for (branch, when) in branches {
                    match self
                        .eval(when)
                        .map_err(|message| format!("branch `{branch}`: {message}"))?
                    {
                        Value::Bool(true) => return Ok(self.follow(idx, branch)),
                        Value::Bool(false) => {}
                        other => {
                            return Err(format!(
                                "the condition of branch `{branch}` gave a {} instead of true or false",
                                other.kind_name()
                            ));
                        }
                    }
                }
                self.follow(idx, port::DEFAULT)
            }
            (NodeKind::Set(_), Compiled::Exprs(assignments)) => {
                for (var, value) in assignments {
                    let value = self
                        .eval(value)
                        .map_err(|message| format!("`{var}`: {message}"))?;
                    self.set_var(var, value)?;
                }
                self.follow(idx, port::NEXT)
            }
            (NodeKind::Lookup(lookup), Compiled::Exprs(params)) => {
                let mut values = BTreeMap::new();
                for (name, param) in params {
                    let value = self
                        .eval(param)
                        .map_err(|message| format!("parameter `{name}`: {message}"))?;
                    values.insert(name.clone(), value);
                }
                let request = self.s.next_request;
                self.s.next_request += 1;
                self.effects.push(Effect::Lookup(LookupRequest {
                    request,
                    node: id.clone(),
                    connector: lookup.connector.clone(),
                    entity: lookup.entity.clone(),
                    operation: lookup.operation.clone(),
                    params: values,
                }));
                self.s.waiting = Waiting::Lookup {
                    node: id.clone(),
                    request,
                };
                Next::Stop
            }
            (
                NodeKind::Handoff(handoff),
                Compiled::Handoff {
                    reason,
                    summary,
                    message,
                },
            ) => {
                let reason = self.render(reason, None)?;
                let summary = summary.as_ref().map(|s| self.render(s, None)).transpose()?;
                let message = message.as_ref().map(|m| self.render(m, None)).transpose()?;
                if let Some(text) = message {
                    self.effects.push(Effect::Say {
                        node: id.clone(),
                        output: Output::Text { text },
                    });
                }
                self.effects.push(Effect::Handoff(Box::new(HandoffRequest {
                    node: Some(id.clone()),
                    queue: handoff.queue.clone(),
                    team: handoff.team.clone(),
                    priority: handoff.priority,
                    reason,
                    summary: summary.unwrap_or_default(),
                    variables: self.s.main_vars(),
                    path: self.s.path.clone(),
                })));
                self.s.waiting = Waiting::Agent {
                    resume: Resume::HandoffReturn { node: id.clone() },
                };
                Next::Stop
            }
            (NodeKind::Wait(wait), _) => {
                let after = i64::try_from(wait.seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
                self.s.waiting = Waiting::Timer {
                    node: id.clone(),
                    timer: format!("wait:{id}"),
                    at: self.s.now.saturating_add(after),
                };
                Next::Stop
            }
            (NodeKind::Call(call), Compiled::Exprs(inputs)) => self.call(id, call, inputs)?,
            (NodeKind::AbSplit(split), _) => {
                let total: u32 = split.variants.iter().map(|v| v.weight).sum();
                let mut bucket = support::ab_bucket(&self.s.session_id, id, total);
                let mut chosen = split
                    .variants
                    .last()
                    .map(|v| v.id.as_str())
                    .unwrap_or_default();
                for variant in &split.variants {
                    if bucket < variant.weight {
                        chosen = &variant.id;
                        break;
                    }
                    bucket -= variant.weight;
                }
                self.follow(idx, chosen)
            }
            (NodeKind::Jump(jump), _) => {
                let target = *program
                    .index
                    .get(&jump.target)
                    .ok_or_else(|| format!("jump to a missing node `{}`", jump.target))?;
                self.trace(Trace::EdgeTaken {
                    flow: program.flow.id.clone(),
                    from: id.clone(),
                    port: "jump".into(),
                    to: jump.target.clone(),
                });
                Next::Node(target)
            }
            (NodeKind::End(end), _) => {
                if self.s.frames.len() > 1 {
                    self.return_from_call()
                } else {
                    self.end(end.outcome.as_deref().unwrap_or("completed"))
                }
            }
            // The program is built from the same flow, so kinds and compiled forms always agree.
            _ => return Err("internal: node was not prepared".into()),
        })
    }

    /// Enters the sub-flow of call node `id`: its inputs are evaluated here, checked against
    /// the callee's variables, and become the new frame's values.
    fn call(
        &mut self,
        id: &str,
        call: &crate::model::Call,
        inputs: &[(String, Expr)],
    ) -> Result<Next, String> {
        if self.s.frames.len() >= MAX_CALL_DEPTH {
            return Err(format!(
                "sub-flows are nested more than {MAX_CALL_DEPTH} deep"
            ));
        }
        let callee = self
            .it
            .programs
            .get(&call.flow)
            .ok_or_else(|| format!("the sub-flow `{}` is not loaded", call.flow))?;
        let mut vars = callee.initial_vars(&BTreeMap::new());
        let mut assigned = Vec::new();
        for (name, input) in inputs {
            let value = self
                .eval(input)
                .map_err(|message| format!("input `{name}`: {message}"))?;
            match callee.vars.get(name) {
                Some((ty, _)) if value.fits(ty) => {}
                Some((ty, _)) => {
                    return Err(format!(
                        "input `{name}` of `{}` is a {ty}, but got a {}",
                        call.flow,
                        value.kind_name()
                    ));
                }
                None => return Err(format!("`{}` has no input `{name}`", call.flow)),
            }
            vars.insert(name.clone(), value.clone());
            assigned.push((name.clone(), value));
        }
        self.s.frames.push(super::Frame {
            flow: call.flow.clone(),
            call_node: Some(id.to_owned()),
            vars,
        });
        for (name, value) in assigned {
            let scope = callee
                .vars
                .get(&name)
                .map_or(Scope::Conversation, |(_, s)| *s);
            self.trace(Trace::VarSet {
                flow: call.flow.clone(),
                name,
                value,
                scope,
            });
        }
        Ok(Next::Node(callee.start))
    }

    fn output(&self, part: &crate::model::Part, compiled: &CPart) -> Result<Output, String> {
        use crate::model::Part;
        Ok(match (part, compiled) {
            (Part::Text { .. }, CPart::Text(text)) => Output::Text {
                text: self.render(text, None)?,
            },
            (Part::Image { url, .. }, CPart::Image { alt }) => Output::Image {
                url: url.clone(),
                alt: alt
                    .as_ref()
                    .map(|a| self.render(a, None))
                    .transpose()?
                    .unwrap_or_default(),
            },
            (Part::Products { limit, .. }, CPart::Products(from)) => {
                let list = self.eval(from)?;
                let Value::List(rows) = list else {
                    return Err(format!(
                        "product cards need a list, but got a {}",
                        list.kind_name()
                    ));
                };
                let limit = limit.map_or(usize::MAX, |l| l as usize);
                Output::Products {
                    cards: rows
                        .iter()
                        .filter_map(support::card_from)
                        .take(limit)
                        .collect(),
                }
            }
            (Part::Carousel { cards }, CPart::Carousel(texts)) => {
                let mut out = Vec::new();
                for (card, (title, subtitle)) in cards.iter().zip(texts) {
                    out.push(super::Card {
                        id: None,
                        title: self.render(title, None)?,
                        subtitle: subtitle
                            .as_ref()
                            .map(|s| self.render(s, None))
                            .transpose()?,
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

    fn dynamic_options(
        &self,
        list: &Expr,
        label: &CText,
        limit: u32,
    ) -> Result<Vec<Offered>, String> {
        let items = match self.eval(list)? {
            Value::List(items) => items,
            other => {
                return Err(format!(
                    "the options need a list, but got a {}",
                    other.kind_name()
                ));
            }
        };
        items
            .iter()
            .take(limit as usize)
            .enumerate()
            .map(|(i, item)| {
                Ok(Offered {
                    id: (i + 1).to_string(),
                    label: self.render(label, Some(item))?,
                    value: Some(item.clone()),
                })
            })
            .collect()
    }

    fn ask_choice(&mut self, node: &str, prompt: String, offered: &[Offered]) {
        let options = offered
            .iter()
            .map(|o| ChoiceOut {
                id: o.id.clone(),
                label: o.label.clone(),
            })
            .collect();
        self.effects.push(Effect::Ask {
            node: node.to_owned(),
            prompt,
            expect: Expect::Choice { options },
        });
    }

    /// A visitor's text while the bot waits for the visitor. Global keywords come first, in the
    /// order cancel, agent, restart; then the waiting node's own handling.
    fn text(&mut self, text: &str) -> Next {
        let events = &self.main.flow.events;
        // After the end only the restart keyword is admitted; it wins even if it is also
        // another event's keyword.
        if matches!(self.s.waiting, Waiting::Ended { .. }) {
            return self.restart();
        }
        if events.cancel.matches(text) {
            return self.cancel();
        }
        if events.agent.matches(text) {
            return self.agent();
        }
        if events.restart.matches(text) {
            return self.restart();
        }
        let program = self.program();
        match self.s.waiting.clone() {
            Waiting::Choice { node, options } => {
                match support::match_choice(
                    options.iter().map(|o| (o.id.as_str(), o.label.as_str())),
                    text,
                ) {
                    Some(i) => self.pick(i),
                    None => {
                        self.s.attempts += 1;
                        let idx = program.index[&node];
                        let Compiled::Choice { prompt, retry, .. } = &program.nodes[idx] else {
                            return Next::Stop;
                        };
                        match self.say_retry(&node, retry.as_ref(), Builtin::PickAnOption, prompt) {
                            Ok(prompt) => {
                                self.ask_choice(&node, prompt, &options);
                                Next::Stop
                            }
                            Err(message) => self.fail(Some(node), message),
                        }
                    }
                }
            }
            Waiting::Input { node } => {
                let idx = program.index[&node];
                let (
                    NodeKind::Input(input),
                    Compiled::Input {
                        prompt,
                        retry,
                        pattern,
                    },
                ) = (&program.flow.nodes[idx].kind, &program.nodes[idx])
                else {
                    return Next::Stop;
                };
                if let Some(value) = support::validate_answer(
                    input.input_type,
                    &input.validation,
                    pattern.as_ref(),
                    text,
                ) {
                    self.s.attempts = 0;
                    if let Err(message) = self.set_var(&input.save_as, value) {
                        return self.fail(Some(node), message);
                    }
                    return self.follow(idx, port::NEXT);
                }
                self.s.attempts += 1;
                if self.s.attempts > input.retries {
                    self.s.attempts = 0;
                    return self.follow(idx, port::INVALID);
                }
                match self.say_retry(
                    &node,
                    retry.as_ref(),
                    Builtin::InvalidAnswer(input.input_type),
                    prompt,
                ) {
                    Ok(prompt) => {
                        self.effects.push(Effect::Ask {
                            node,
                            prompt,
                            expect: Expect::Input {
                                input_type: input.input_type,
                            },
                        });
                        Next::Stop
                    }
                    Err(message) => self.fail(Some(node), message),
                }
            }
            Waiting::Timer { node, .. } => {
                let idx = program.index[&node];
                if let NodeKind::Wait(wait) = &program.flow.nodes[idx].kind
                    && let Some(var) = &wait.save_as
                    && let Err(message) = self.set_var(var, Value::String(text.trim().to_owned()))
                {
                    return self.fail(Some(node), message);
                }
                if program.edges.contains_key(&(idx, port::REPLY.to_owned())) {
                    self.follow(idx, port::REPLY)
                } else {
                    Next::Stop
                }
            }
            _ => Next::Stop,
        }
    }

    /// After an answer that was not accepted: says the node's retry text (or the built-in
    /// one) and returns the prompt, rendered again, for asking once more.
    fn say_retry(
        &mut self,
        node: &str,
        retry: Option<&CText>,
        builtin: Builtin,
        prompt: &CText,
    ) -> Result<String, String> {
        let retry = match retry {
            Some(r) => self.render(r, None)?,
            None => builtin.text(self.builtin_locale()).to_owned(),
        };
        let prompt = self.render(prompt, None)?;
        self.effects.push(Effect::Say {
            node: node.to_owned(),
            output: Output::Text { text: retry },
        });
        Ok(prompt)
    }

    /// The visitor picked offered option `i`.
    fn pick(&mut self, i: usize) -> Next {
        let Waiting::Choice { node, options } = self.s.waiting.clone() else {
            return Next::Stop;
        };
        let program = self.program();
        let idx = program.index[&node];
        let NodeKind::Choice(choice) = &program.flow.nodes[idx].kind else {
            return Next::Stop;
        };
        let offered = &options[i];
        self.s.attempts = 0;
        let (value, port) = match (&choice.dynamic, &offered.value) {
            // A `null` element reads back from a stored session as "no value"; the node, not
            // the stored option, says whether the options came from a list.
            (Some(_), item) => (item.clone().unwrap_or_default(), port::SELECTED),
            (None, _) => (Value::String(offered.id.clone()), offered.id.as_str()),
        };
        if let Some(var) = &choice.save_as
            && let Err(message) = self.set_var(var, value)
        {
            return self.fail(Some(node), message);
        }
        self.follow(idx, port)
    }

    fn lookup_result(&mut self, outcome: &LookupOutcome) -> Next {
        let Waiting::Lookup { node, .. } = self.s.waiting.clone() else {
            return Next::Stop;
        };
        let program = self.program();
        let idx = program.index[&node];
        let NodeKind::Lookup(lookup) = &program.flow.nodes[idx].kind else {
            return Next::Stop;
        };
        let rows = match outcome {
            LookupOutcome::Error(_) => return self.follow(idx, port::ERROR),
            LookupOutcome::Rows(rows) => rows,
        };
        if let Some(var) = &lookup.save_as {
            let value = match program.vars.get(var) {
                Some((Type::Map, _)) => Value::Map(rows.first().cloned().unwrap_or_default()),
                _ => Value::List(rows.iter().cloned().map(Value::Map).collect()),
            };
            if let Err(message) = self.set_var(var, value) {
                return self.fail(Some(node), message);
            }
        }
        self.follow(
            idx,
            if rows.is_empty() {
                port::EMPTY
            } else {
                port::OK
            },
        )
    }

    fn hand_back(&mut self, hb: &HandBack) -> Next {
        for (name, value) in &hb.vars {
            if let Err(message) = self.set_var(name, value.clone()) {
                return self.fail(None, message);
            }
        }
        let program = self.program();
        if let Some(node) = &hb.node {
            return Next::Node(program.index[node]);
        }
        match self.s.waiting.clone() {
            Waiting::Agent {
                resume: Resume::HandoffReturn { node },
            } => {
                let idx = program.index[&node];
                if program.edges.contains_key(&(idx, port::RETURN.to_owned())) {
                    self.follow(idx, port::RETURN)
                } else {
                    self.end("handed_back")
                }
            }
            Waiting::Agent {
                resume: Resume::Reenter { node },
            } => Next::Node(program.index[&node]),
            _ => Next::Stop,
        }
    }

    fn cancel(&mut self) -> Next {
        if let Some(target) = self.main.flow.events.cancel.target.clone() {
            return self.goto_main(&target);
        }
        self.say_builtin(None, Builtin::Cancelled);
        self.end("cancelled")
    }

    fn agent(&mut self) -> Next {
        if let Some(target) = self.main.flow.events.agent.target.clone() {
            return self.goto_main(&target);
        }
        let node = match &self.s.waiting {
            Waiting::Choice { node, .. }
            | Waiting::Input { node }
            | Waiting::Lookup { node, .. }
            | Waiting::Timer { node, .. } => node.clone(),
            _ => return Next::Stop,
        };
        self.say_builtin(None, Builtin::ConnectingAgent);
        self.effects.push(Effect::Handoff(Box::new(HandoffRequest {
            node: None,
            queue: Some(self.main.flow.settings.default_queue.clone()),
            team: None,
            priority: crate::model::Priority::Normal,
            reason: Builtin::AgentRequested
                .text(self.builtin_locale())
                .to_owned(),
            summary: String::new(),
            variables: self.s.main_vars(),
            path: self.s.path.clone(),
        })));
        self.s.waiting = Waiting::Agent {
            resume: Resume::Reenter { node },
        };
        Next::Stop
    }

    /// Starts over: back to the main flow's start, conversation variables reset, `user`
    /// variables kept.
    fn restart(&mut self) -> Next {
        self.s.frames.truncate(1);
        let user: BTreeMap<String, Value> = self
            .main
            .flow
            .variables
            .iter()
            .filter(|v| v.scope == Scope::User)
            .filter_map(|v| {
                Some((
                    v.name.clone(),
                    self.s.frames.first()?.vars.get(&v.name)?.clone(),
                ))
            })
            .collect();
        let vars = self.main.initial_vars(&user);
        if let Some(frame) = self.s.frames.first_mut() {
            frame.vars = vars;
        }
        self.s.attempts = 0;
        match self.main.flow.events.restart.target.clone() {
            Some(target) => self.goto_main(&target),
            None => Next::Node(self.main.start),
        }
    }

    fn inactivity(&mut self) -> Next {
        match self
            .main
            .flow
            .events
            .inactivity
            .as_ref()
            .and_then(|i| i.target.clone())
        {
            Some(target) => self.goto_main(&target),
            None => {
                self.say_builtin(None, Builtin::Inactive);
                self.end("inactive")
            }
        }
    }

    /// Leaves every sub-flow and continues at `target` in the main flow (global event targets).
    fn goto_main(&mut self, target: &str) -> Next {
        self.s.frames.truncate(1);
        self.s.attempts = 0;
        match self.main.index.get(target) {
            Some(&idx) => Next::Node(idx),
            None => self.fail(None, format!("the event target `{target}` does not exist")),
        }
    }

    fn return_from_call(&mut self) -> Next {
        let Some(frame) = self.s.frames.pop() else {
            return Next::Stop;
        };
        let program = self.program();
        let Some(call_node) = frame.call_node.as_ref() else {
            return Next::Stop;
        };
        let idx = program.index[call_node];
        let NodeKind::Call(call) = &program.flow.nodes[idx].kind else {
            return Next::Stop;
        };
        for (parent_var, sub_var) in &call.outputs {
            let value = frame.vars.get(sub_var).cloned().unwrap_or_default();
            if let Err(message) = self.set_var(parent_var, value) {
                return self.fail(Some(call_node.clone()), message);
            }
        }
        self.follow(idx, port::NEXT)
    }

    fn end(&mut self, outcome: &str) -> Next {
        self.effects.push(Effect::End {
            outcome: outcome.to_owned(),
        });
        self.s.waiting = Waiting::Ended {
            outcome: outcome.to_owned(),
        };
        Next::Stop
    }

    /// Something went wrong: report it, then run the error event once per step, else end.
    fn fail(&mut self, node: Option<String>, message: String) -> Next {
        self.effects.push(Effect::Error {
            node: node.clone(),
            message,
        });
        if !self.handling_error
            && let Some(target) = self.main.flow.events.error.target.clone()
        {
            self.handling_error = true;
            self.budget = self.main.flow.settings.step_budget;
            return self.goto_main(&target);
        }
        self.say_builtin(node, Builtin::SomethingWentWrong);
        self.end("error")
    }

    fn follow(&mut self, from: usize, port_name: &str) -> Next {
        let program = self.program();
        let node = &program.flow.nodes[from];
        match program.edges.get(&(from, port_name.to_owned())) {
            Some(&to) => {
                self.trace(Trace::EdgeTaken {
                    flow: program.flow.id.clone(),
                    from: node.id.clone(),
                    port: port_name.to_owned(),
                    to: program.flow.nodes[to].id.clone(),
                });
                Next::Node(to)
            }
            None => self.fail(
                Some(node.id.clone()),
                format!("nothing is connected to the `{port_name}` port"),
            ),
        }
    }

    fn set_var(&mut self, name: &str, value: Value) -> Result<(), String> {
        let program = self.program();
        let Some((ty, scope)) = program.vars.get(name) else {
            return Err(format!("there is no variable `{name}`"));
        };
        if !value.fits(ty) {
            return Err(format!(
                "`{name}` holds a {ty}, but the value is a {}",
                value.kind_name()
            ));
        }
        let Some(frame) = self.s.frames.last_mut() else {
            return Err("internal: no frame".into());
        };
        frame.vars.insert(name.to_owned(), value.clone());
        self.trace(Trace::VarSet {
            flow: program.flow.id.clone(),
            name: name.to_owned(),
            value,
            scope: *scope,
        });
        Ok(())
    }

    fn eval(&self, expr: &Expr) -> Result<Value, String> {
        let empty = BTreeMap::new();
        let vars = self.s.frames.last().map_or(&empty, |f| &f.vars);
        expr.eval(&Env {
            vars,
            sys: &self.sys,
            item: None,
        })
        .map_err(|e| e.to_string())
    }

    fn render(&self, text: &CText, item: Option<&Value>) -> Result<String, String> {
        let fallback = &self.program().flow.default_locale;
        let Some(template): Option<&Template> = text.pick(&self.s.locale, fallback) else {
            return Ok(String::new());
        };
        let empty = BTreeMap::new();
        let vars = self.s.frames.last().map_or(&empty, |f| &f.vars);
        template
            .render(&Env {
                vars,
                sys: &self.sys,
                item,
            })
            .map_err(|e| e.to_string())
    }

    /// The locale of the engine's own messages: the session's, else the flow's default.
    fn builtin_locale(&self) -> &str {
        if self.s.locale.is_empty() {
            &self.main.flow.default_locale
        } else {
            &self.s.locale
        }
    }

    /// Says one of the engine's own messages, attributed to `node` (else the node the session
    /// waits at), in the session's locale (else the flow's default locale).
    fn say_builtin(&mut self, node: Option<String>, message: Builtin) {
        let node = node.unwrap_or_else(|| match &self.s.waiting {
            Waiting::Choice { node, .. }
            | Waiting::Input { node }
            | Waiting::Lookup { node, .. }
            | Waiting::Timer { node, .. } => node.clone(),
            _ => String::new(),
        });
        let text = message.text(self.builtin_locale()).to_owned();
        self.effects.push(Effect::Say {
            node,
            output: Output::Text { text },
        });
    }

    fn trace(&mut self, trace: Trace) {
        self.effects.push(Effect::Trace(trace));
    }

    /// Arms and disarms timers to match what the session now waits for: the inactivity timer
    /// while the bot waits for an answer (choice or input), the wait node's own timer while it
    /// waits. Only differences become effects.
    fn sync_timers(&mut self) {
        let mut wanted = BTreeMap::new();
        match &self.s.waiting {
            Waiting::Choice { .. } | Waiting::Input { .. } => {
                if let Some(inactivity) = &self.main.flow.events.inactivity {
                    let after =
                        i64::try_from(inactivity.seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
                    wanted.insert(
                        INACTIVITY_TIMER.to_owned(),
                        self.s.now.saturating_add(after),
                    );
                }
            }
            Waiting::Timer { timer, at, .. } => {
                wanted.insert(timer.clone(), *at);
            }
            _ => {}
        }
        for id in self.s.timers.keys() {
            if !wanted.contains_key(id) {
                self.effects.push(Effect::CancelTimer { id: id.clone() });
            }
        }
        for (id, at) in &wanted {
            if self.s.timers.get(id) != Some(at) {
                self.effects.push(Effect::SetTimer {
                    id: id.clone(),
                    at: *at,
                });
            }
        }
        self.s.timers = wanted;
    }
}
