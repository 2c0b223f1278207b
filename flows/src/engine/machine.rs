//! The step driver every engine shares: admission of inputs, global events, waiting, sub-flow
//! frames, failures, timers and traces. What differs between engines is behind [`FlowCode`]:
//! the interpreter implements it by walking a prepared graph (`interp.rs`), modules generated
//! by `codegen` implement it with native Rust per node and per expression.
//!
//! `docs/flow-format.md` ("Execution") is the specification of what this file does; the
//! differential tests hold both kinds of [`FlowCode`] to the same effects and sessions.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use super::messages::Builtin;
use super::session::PATH_LIMIT;
use super::support;
use super::{
    ChoiceOut, Effect, Engine, Expect, FlowRef, Frame, HandBack, HandoffRequest, Input,
    LookupOutcome, LookupRequest, Millis, Offered, Output, Resume, Session, Step, Trace, Waiting,
};
use crate::model::{Events, InputType, Priority, Scope, Settings, port};
use crate::value::{Type, Value};

/// Deepest allowed nesting of `call` nodes.
pub const MAX_CALL_DEPTH: usize = 8;

/// The id of the inactivity timer.
pub const INACTIVITY_TIMER: &str = "inactivity";

/// One flow's behaviour, as the driver needs it. Nodes are numbered `0..n` in the order of the
/// flow file; every number passed in is a node of this flow.
pub trait FlowCode: Send + Sync {
    /// The flow's id.
    fn id(&self) -> &str;
    /// The locale of texts when the visitor's locale has no variant.
    fn default_locale(&self) -> &str;
    /// The start node.
    fn start(&self) -> usize;
    /// The id of node `node`.
    fn node_id(&self, node: usize) -> &str;
    /// The number of the node with id `id`.
    fn node_index(&self, id: &str) -> Option<usize>;
    /// The node that port `port` of `node` leads to.
    fn edge(&self, node: usize, port: &str) -> Option<usize>;
    /// The declared variables.
    fn vars(&self) -> &VarTable;
    /// Global events (only the main flow's are used).
    fn events(&self) -> &Events;
    /// Settings (only the main flow's are used).
    fn settings(&self) -> &Settings;
    /// Runs node `node`: its effects, its variables, and where the flow goes next. An `Err` is
    /// a failure of the node, which the driver reports and handles.
    fn enter(&self, run: &mut Run<'_>, node: usize) -> Result<Next, String>;
    /// What node `node` does with an answer when the session waits there.
    fn wait_spec(&self, node: usize) -> Option<WaitSpec<'_>>;
    /// For a choice or input node: its retry text (if it has one) and its prompt, rendered now,
    /// in that order.
    fn reprompt(&self, run: &Run<'_>, node: usize) -> Result<(Option<String>, String), String>;
    /// For an input node: the value to store for `text`, or `None` if it is not acceptable.
    fn check_answer(&self, node: usize, text: &str) -> Option<Value>;
}

/// How a node that the session waits at takes its answer.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitSpec<'a> {
    Choice {
        save_as: Option<&'a str>,
        /// Options built from a list (`selected` port, the element is stored).
        dynamic: bool,
    },
    Input {
        save_as: &'a str,
        retries: u32,
        input_type: InputType,
    },
    Lookup {
        save_as: Option<&'a str>,
    },
    Wait {
        save_as: Option<&'a str>,
    },
    /// A call node: `(variable here, output of the sub-flow)` pairs.
    Call {
        outputs: Vec<(&'a str, &'a str)>,
    },
    Handoff,
}

/// What to do after a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Node(usize),
    Stop,
}

/// A declared variable, as the driver needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub name: String,
    pub ty: Type,
    pub scope: Scope,
    pub default: Option<Value>,
}

/// A flow's declared variables, in declaration order, with lookup by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VarTable {
    vars: Vec<Declared>,
    by_name: BTreeMap<String, usize>,
}

impl VarTable {
    pub fn new(vars: Vec<Declared>) -> VarTable {
        let by_name = vars
            .iter()
            .enumerate()
            .map(|(i, v)| (v.name.clone(), i))
            .collect();
        VarTable { vars, by_name }
    }

    pub fn get(&self, name: &str) -> Option<&Declared> {
        self.by_name.get(name).map(|&i| &self.vars[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Declared> {
        self.vars.iter()
    }

    /// The variables of a fresh frame: defaults, else zero values; `user`-scoped ones taken
    /// from `user` when the remembered value fits the declared type.
    pub fn initial(&self, user: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        self.vars
            .iter()
            .map(|v| {
                let remembered = (v.scope == Scope::User)
                    .then(|| user.get(&v.name))
                    .flatten()
                    .filter(|x| x.fits(&v.ty));
                let value = remembered
                    .cloned()
                    .or_else(|| v.default.clone())
                    .unwrap_or_else(|| Value::zero(&v.ty));
                (v.name.clone(), value)
            })
            .collect()
    }
}

/// Runs a main flow and the sub-flows it calls, whatever implements their [`FlowCode`].
pub struct Machine {
    flow: FlowRef,
    /// `flows[0]` is the main flow.
    flows: Vec<Box<dyn FlowCode>>,
}

impl Machine {
    /// `flow` identifies the whole set (the main flow's id and version, and the content hash
    /// over it and its sub-flows); `subs` are every flow `main` calls, directly or not.
    pub fn new(flow: FlowRef, main: Box<dyn FlowCode>, subs: Vec<Box<dyn FlowCode>>) -> Machine {
        let mut flows = vec![main];
        flows.extend(subs);
        Machine { flow, flows }
    }

    fn main(&self) -> &dyn FlowCode {
        &*self.flows[0]
    }

    fn code(&self, id: &str) -> Option<&dyn FlowCode> {
        self.flows.iter().find(|f| f.id() == id).map(|f| &**f)
    }
}

impl Engine for Machine {
    fn flow(&self) -> &FlowRef {
        &self.flow
    }

    fn step(&self, session: &mut Session, input: &Input, now: Millis) -> Step {
        let main = self.main();
        let mut run = Run {
            m: self,
            main,
            cur: main,
            budget: main.settings().step_budget,
            handling_error: false,
            sys: OnceCell::new(),
            // A turn has a dozen effects or so (traces included): one allocation for them.
            effects: Vec::with_capacity(16),
            s: session,
        };
        run.refresh();
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

/// One step in progress: what node code reads (variables, `sys`, the locale) and the actions
/// it takes (say, ask, set, follow a port, …).
pub struct Run<'a> {
    m: &'a Machine,
    main: &'a dyn FlowCode,
    /// The current (last) frame's flow; kept in step with `s.frames` by `refresh`.
    cur: &'a dyn FlowCode,
    s: &'a mut Session,
    effects: Vec<Effect>,
    budget: u32,
    handling_error: bool,
    /// Built on first use: most steps read no `sys` field.
    sys: OnceCell<Value>,
}

/// The sub-flow a `call` node is entering, while its inputs are being evaluated.
pub struct CallFrame<'a> {
    callee: &'a dyn FlowCode,
    vars: BTreeMap<String, Value>,
    assigned: Vec<(String, Value)>,
}

impl CallFrame<'_> {
    /// Passes input `name`, checked against the sub-flow's declared variable.
    pub fn input(&mut self, name: &str, value: Value) -> Result<(), String> {
        match self.callee.vars().get(name) {
            Some(v) if value.fits(&v.ty) => {}
            Some(v) => {
                return Err(format!(
                    "input `{name}` of `{}` is a {}, but got a {}",
                    self.callee.id(),
                    v.ty,
                    value.kind_name()
                ));
            }
            None => return Err(format!("`{}` has no input `{name}`", self.callee.id())),
        }
        self.vars.insert(name.to_owned(), value.clone());
        self.assigned.push((name.to_owned(), value));
        Ok(())
    }
}

impl<'a> Run<'a> {
    // ---- What node code reads --------------------------------------------------------------

    /// The current frame's variable `name`.
    pub fn var(&self, name: &str) -> Option<&Value> {
        self.s.frames.last().and_then(|f| f.vars.get(name))
    }

    /// The current frame's variables.
    pub fn vars(&self) -> Option<&BTreeMap<String, Value>> {
        self.s.frames.last().map(|f| &f.vars)
    }

    /// The `sys` map: session id, locale, channel, time of day, date.
    pub fn sys(&self) -> &Value {
        self.sys.get_or_init(|| support::sys_value(self.s))
    }

    /// The visitor's locale (empty when the start input gave none).
    pub fn locale(&self) -> &str {
        &self.s.locale
    }

    /// The session as it is now.
    pub fn session(&self) -> &Session {
        self.s
    }

    // ---- What nodes do ---------------------------------------------------------------------

    fn code(&self) -> &'a dyn FlowCode {
        self.cur
    }

    /// Finds the current frame's flow again, after frames were pushed or popped.
    fn refresh(&mut self) {
        let m: &'a Machine = self.m;
        self.cur = self
            .s
            .frames
            .last()
            .and_then(|f| m.code(&f.flow))
            .unwrap_or(self.main);
    }

    fn node_id(&self, node: usize) -> String {
        self.code().node_id(node).to_owned()
    }

    /// Shows `output` to the visitor.
    pub fn say(&mut self, node: usize, output: Output) {
        let node = self.node_id(node);
        self.effects.push(Effect::Say { node, output });
    }

    /// Offers buttons and waits for the visitor's pick.
    pub fn offer(&mut self, node: usize, prompt: String, offered: Vec<Offered>) -> Next {
        let id = self.node_id(node);
        self.ask_choice(&id, prompt, &offered);
        self.s.waiting = Waiting::Choice {
            node: id,
            options: offered,
        };
        self.s.attempts = 0;
        Next::Stop
    }

    /// Asks for a typed answer and waits for it.
    pub fn ask(&mut self, node: usize, prompt: String, input_type: InputType) -> Next {
        let id = self.node_id(node);
        self.effects.push(Effect::Ask {
            node: id.clone(),
            prompt,
            expect: Expect::Input { input_type },
        });
        self.s.waiting = Waiting::Input { node: id };
        self.s.attempts = 0;
        Next::Stop
    }

    /// Asks a connector and waits for the answer.
    pub fn lookup(
        &mut self,
        node: usize,
        connector: &str,
        entity: &str,
        operation: &str,
        params: BTreeMap<String, Value>,
    ) -> Next {
        let id = self.node_id(node);
        let request = self.s.next_request;
        self.s.next_request += 1;
        self.effects.push(Effect::Lookup(LookupRequest {
            request,
            node: id.clone(),
            connector: connector.to_owned(),
            entity: entity.to_owned(),
            operation: operation.to_owned(),
            params,
        }));
        self.s.waiting = Waiting::Lookup { node: id, request };
        Next::Stop
    }

    /// Hands the conversation to people and waits for an agent to hand it back.
    pub fn handoff(&mut self, node: usize, to: &HandoffTo<'_>, texts: HandoffTexts) -> Next {
        let id = self.node_id(node);
        if let Some(text) = texts.message {
            self.effects.push(Effect::Say {
                node: id.clone(),
                output: Output::Text { text },
            });
        }
        self.effects.push(Effect::Handoff(Box::new(HandoffRequest {
            node: Some(id.clone()),
            queue: to.queue.map(str::to_owned),
            team: to.team.map(str::to_owned),
            priority: to.priority,
            reason: texts.reason,
            summary: texts.summary.unwrap_or_default(),
            variables: self.s.main_vars(),
            path: self.s.path.clone(),
        })));
        self.s.waiting = Waiting::Agent {
            resume: Resume::HandoffReturn { node: id },
        };
        Next::Stop
    }

    /// Waits `seconds` (or for the visitor's reply).
    pub fn wait(&mut self, node: usize, seconds: u64) -> Next {
        let id = self.node_id(node);
        let after = i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.s.waiting = Waiting::Timer {
            timer: format!("wait:{id}"),
            node: id,
            at: self.s.now.saturating_add(after),
        };
        Next::Stop
    }

    /// Begins entering sub-flow `callee`: checks the nesting depth and that it is loaded.
    pub fn begin_call(&self, callee: &str) -> Result<CallFrame<'a>, String> {
        if self.s.frames.len() >= MAX_CALL_DEPTH {
            return Err(format!(
                "sub-flows are nested more than {MAX_CALL_DEPTH} deep"
            ));
        }
        let m: &'a Machine = self.m;
        let callee = m
            .code(callee)
            .ok_or_else(|| format!("the sub-flow `{callee}` is not loaded"))?;
        Ok(CallFrame {
            vars: callee.vars().initial(&BTreeMap::new()),
            callee,
            assigned: Vec::new(),
        })
    }

    /// Enters the sub-flow prepared by [`Run::begin_call`] from call node `node`.
    pub fn enter_call(&mut self, node: usize, call: CallFrame<'a>) -> Next {
        let id = self.node_id(node);
        let callee = call.callee;
        self.s.frames.push(Frame {
            flow: callee.id().to_owned(),
            call_node: Some(id),
            vars: call.vars,
        });
        self.cur = callee;
        for (name, value) in call.assigned {
            let scope = callee
                .vars()
                .get(&name)
                .map_or(Scope::Conversation, |v| v.scope);
            self.trace(Trace::VarSet {
                flow: callee.id().to_owned(),
                name,
                value,
                scope,
            });
        }
        Next::Node(callee.start())
    }

    /// Picks a variant by the session's bucket: `variants` are `(port, weight)`.
    pub fn ab_split(&mut self, node: usize, variants: &[(&str, u32)]) -> Next {
        let total: u32 = variants.iter().map(|v| v.1).sum();
        let mut bucket = support::ab_bucket(&self.s.session_id, self.code().node_id(node), total);
        let mut chosen = variants.last().map(|v| v.0).unwrap_or_default();
        for &(id, weight) in variants {
            if bucket < weight {
                chosen = id;
                break;
            }
            bucket -= weight;
        }
        self.follow(node, chosen)
    }

    /// Continues at `target` without an edge.
    pub fn jump(&mut self, node: usize, target: usize) -> Next {
        let code = self.code();
        self.trace(Trace::EdgeTaken {
            flow: code.id().to_owned(),
            from: code.node_id(node).to_owned(),
            port: "jump".into(),
            to: code.node_id(target).to_owned(),
        });
        Next::Node(target)
    }

    /// An end node: returns from a sub-flow, or ends the conversation with `outcome`.
    pub fn end_node(&mut self, outcome: Option<&str>) -> Next {
        if self.s.frames.len() > 1 {
            self.return_from_call()
        } else {
            self.end(outcome.unwrap_or("completed"))
        }
    }

    /// Leaves `from` through `port`, wherever it leads (or fails if nothing is connected).
    pub fn follow(&mut self, from: usize, port: &str) -> Next {
        match self.code().edge(from, port) {
            Some(to) => self.take(from, port, to),
            None => self.no_edge(from, port),
        }
    }

    /// Leaves `from` through `port`, which is known to lead to `to`.
    pub fn take(&mut self, from: usize, port: &str, to: usize) -> Next {
        let code = self.code();
        self.trace(Trace::EdgeTaken {
            flow: code.id().to_owned(),
            from: code.node_id(from).to_owned(),
            port: port.to_owned(),
            to: code.node_id(to).to_owned(),
        });
        Next::Node(to)
    }

    /// Fails because nothing is connected to `port` of `from`.
    pub fn no_edge(&mut self, from: usize, port: &str) -> Next {
        let node = self.node_id(from);
        self.fail(
            Some(node),
            format!("nothing is connected to the `{port}` port"),
        )
    }

    /// Stores `value` in the current frame's variable `name`, checked against its type.
    pub fn set_var(&mut self, name: &str, value: Value) -> Result<(), String> {
        let code = self.code();
        let Some(declared) = code.vars().get(name) else {
            return Err(format!("there is no variable `{name}`"));
        };
        if !value.fits(&declared.ty) {
            return Err(format!(
                "`{name}` holds a {}, but the value is a {}",
                declared.ty,
                value.kind_name()
            ));
        }
        let Some(frame) = self.s.frames.last_mut() else {
            return Err("internal: no frame".into());
        };
        // Most assignments overwrite a declared variable: no new key is needed.
        match frame.vars.get_mut(name) {
            Some(slot) => slot.clone_from(&value),
            None => {
                frame.vars.insert(name.to_owned(), value.clone());
            }
        }
        self.trace(Trace::VarSet {
            flow: code.id().to_owned(),
            name: name.to_owned(),
            value,
            scope: declared.scope,
        });
        Ok(())
    }

    // ---- The driver ------------------------------------------------------------------------

    /// Decides whether `input` fits the session's state, before anything changes.
    fn admit(&self, input: &Input) -> Result<(), String> {
        if self.s.flow != self.m.flow {
            let (s, m) = (&self.s.flow, &self.m.flow);
            return Err(format!(
                "this session runs flow `{}` version {} ({}), not `{}` version {} ({})",
                s.id, s.version, s.hash, m.id, m.version, m.hash
            ));
        }
        self.consistent()?;
        let events = self.main.events();
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
        let mut codes = Vec::with_capacity(s.frames.len());
        for frame in &s.frames {
            let code = self.m.code(&frame.flow).ok_or_else(|| {
                format!(
                    "the session is damaged: flow `{}` is not loaded",
                    frame.flow
                )
            })?;
            codes.push(code);
        }
        for (i, frame) in s.frames.iter().enumerate().skip(1) {
            match &frame.call_node {
                Some(node) if codes[i - 1].node_index(node).is_some() => {}
                _ => {
                    return Err(format!(
                        "the session is damaged: frame {i} has no valid call node"
                    ));
                }
            }
        }
        let top = codes[codes.len() - 1];
        match waiting_node(&s.waiting) {
            Some(node) if top.node_index(node).is_none() => Err(format!(
                "the session is damaged: it waits at a missing node `{node}`"
            )),
            _ => Ok(()),
        }
    }

    fn admit_hand_back(&self, hb: &HandBack) -> Result<(), String> {
        let code = self.code();
        for (name, value) in &hb.vars {
            let Some(declared) = code.vars().get(name) else {
                return Err(format!("the flow has no variable `{name}`"));
            };
            if !value.fits(&declared.ty) {
                return Err(format!(
                    "`{name}` is a {}, not a {}",
                    declared.ty,
                    value.kind_name()
                ));
            }
        }
        match &hb.node {
            Some(node) if code.node_index(node).is_none() => {
                Err(format!("the flow has no node `{node}`"))
            }
            _ => Ok(()),
        }
    }

    /// The number of node `id` of the current flow; the session was checked to name only
    /// existing nodes, so a miss stops the step instead of guessing.
    fn index(&self, id: &str) -> Option<usize> {
        self.code().node_index(id)
    }

    fn input(&mut self, input: &Input) {
        let next = match input {
            Input::Start(start) => {
                let main = self.main;
                self.s.session_id.clone_from(&start.session_id);
                self.s.locale.clone_from(&start.locale);
                self.s.channel.clone_from(&start.channel);
                // A flow with its own clock (opening hours) uses it for `sys`; else the visitor's.
                self.s.tz_offset_minutes = main
                    .settings()
                    .utc_offset_minutes
                    .unwrap_or(start.tz_offset_minutes);
                self.s.frames = vec![Frame {
                    flow: main.id().to_owned(),
                    call_node: None,
                    vars: main.vars().initial(&start.user),
                }];
                self.refresh();
                Next::Node(main.start())
            }
            other => self.event(other),
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
                            match self.index(node) {
                                Some(node) => self.follow(node, port::TIMEOUT),
                                None => Next::Stop,
                            }
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
        while let Next::Node(node) = next {
            if self.budget == 0 {
                let node = self.node_id(node);
                let budget = self.main.settings().step_budget;
                next = self.fail(
                    Some(node),
                    format!(
                        "the flow ran {budget} steps without waiting for the visitor; it probably loops (stopped before this node)"
                    ),
                );
                continue;
            }
            self.budget -= 1;
            next = self.exec(node);
        }
    }

    fn exec(&mut self, node: usize) -> Next {
        let code = self.code();
        let id = code.node_id(node);
        self.trace(Trace::NodeEntered {
            flow: code.id().to_owned(),
            node: id.to_owned(),
        });
        let entry = if code.id() == self.main.id() {
            id.to_owned()
        } else {
            format!("{}/{id}", code.id())
        };
        if self.s.path.len() == PATH_LIMIT {
            self.s.path.remove(0);
        }
        self.s.path.push(entry);
        match code.enter(self, node) {
            Ok(next) => next,
            Err(message) => self.fail(Some(id.to_owned()), message),
        }
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
        let events = self.main.events();
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
        let code = self.code();
        let Some(node) = waiting_node(&self.s.waiting).and_then(|n| code.node_index(n)) else {
            return Next::Stop;
        };
        match (&self.s.waiting, code.wait_spec(node)) {
            (Waiting::Choice { options, .. }, Some(WaitSpec::Choice { .. })) => {
                match support::match_choice(
                    options.iter().map(|o| (o.id.as_str(), o.label.as_str())),
                    text,
                ) {
                    Some(i) => self.pick(i),
                    None => {
                        self.s.attempts += 1;
                        match self.say_retry(node, Builtin::PickAnOption) {
                            Ok(prompt) => {
                                if let Waiting::Choice { options, .. } = &self.s.waiting {
                                    let options = options.clone();
                                    self.ask_choice(code.node_id(node), prompt, &options);
                                }
                                Next::Stop
                            }
                            Err(message) => self.fail(Some(code.node_id(node).to_owned()), message),
                        }
                    }
                }
            }
            (
                Waiting::Input { .. },
                Some(WaitSpec::Input {
                    save_as,
                    retries,
                    input_type,
                }),
            ) => {
                if let Some(value) = code.check_answer(node, text) {
                    self.s.attempts = 0;
                    if let Err(message) = self.set_var(save_as, value) {
                        return self.fail(Some(code.node_id(node).to_owned()), message);
                    }
                    return self.follow(node, port::NEXT);
                }
                self.s.attempts += 1;
                if self.s.attempts > retries {
                    self.s.attempts = 0;
                    return self.follow(node, port::INVALID);
                }
                match self.say_retry(node, Builtin::InvalidAnswer(input_type)) {
                    Ok(prompt) => {
                        self.effects.push(Effect::Ask {
                            node: code.node_id(node).to_owned(),
                            prompt,
                            expect: Expect::Input { input_type },
                        });
                        Next::Stop
                    }
                    Err(message) => self.fail(Some(code.node_id(node).to_owned()), message),
                }
            }
            (Waiting::Timer { .. }, Some(WaitSpec::Wait { save_as })) => {
                if let Some(var) = save_as
                    && let Err(message) = self.set_var(var, Value::String(text.trim().to_owned()))
                {
                    return self.fail(Some(code.node_id(node).to_owned()), message);
                }
                if code.edge(node, port::REPLY).is_some() {
                    self.follow(node, port::REPLY)
                } else {
                    Next::Stop
                }
            }
            _ => Next::Stop,
        }
    }

    /// After an answer that was not accepted: says the node's retry text (or the built-in
    /// one) and returns the prompt, rendered again, for asking once more.
    fn say_retry(&mut self, node: usize, builtin: Builtin) -> Result<String, String> {
        let (retry, prompt) = self.code().reprompt(self, node)?;
        let retry = retry.unwrap_or_else(|| builtin.text(self.builtin_locale()).to_owned());
        self.say(node, Output::Text { text: retry });
        Ok(prompt)
    }

    /// The visitor picked offered option `i`.
    fn pick(&mut self, i: usize) -> Next {
        let code = self.code();
        let Waiting::Choice { node, options } = &self.s.waiting else {
            return Next::Stop;
        };
        let (Some(node), Some(offered)) = (code.node_index(node), options.get(i)) else {
            return Next::Stop;
        };
        let Some(WaitSpec::Choice { save_as, dynamic }) = code.wait_spec(node) else {
            return Next::Stop;
        };
        let (value, port) = if dynamic {
            // A `null` element reads back from a stored session as "no value"; the node, not
            // the stored option, says whether the options came from a list.
            (
                offered.value.clone().unwrap_or_default(),
                port::SELECTED.into(),
            )
        } else {
            (Value::String(offered.id.clone()), offered.id.clone())
        };
        self.s.attempts = 0;
        if let Some(var) = save_as
            && let Err(message) = self.set_var(var, value)
        {
            return self.fail(Some(code.node_id(node).to_owned()), message);
        }
        self.follow(node, &port)
    }

    fn lookup_result(&mut self, outcome: &LookupOutcome) -> Next {
        let code = self.code();
        let Waiting::Lookup { node, .. } = &self.s.waiting else {
            return Next::Stop;
        };
        let Some(node) = code.node_index(node) else {
            return Next::Stop;
        };
        let Some(WaitSpec::Lookup { save_as }) = code.wait_spec(node) else {
            return Next::Stop;
        };
        let rows = match outcome {
            LookupOutcome::Error(_) => return self.follow(node, port::ERROR),
            LookupOutcome::Rows(rows) => rows,
        };
        if let Some(var) = save_as {
            let value = match code.vars().get(var) {
                Some(Declared { ty: Type::Map, .. }) => {
                    Value::Map(rows.first().cloned().unwrap_or_default())
                }
                _ => Value::List(rows.iter().cloned().map(Value::Map).collect()),
            };
            if let Err(message) = self.set_var(var, value) {
                return self.fail(Some(code.node_id(node).to_owned()), message);
            }
        }
        self.follow(
            node,
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
        let code = self.code();
        if let Some(node) = &hb.node {
            return code.node_index(node).map_or(Next::Stop, Next::Node);
        }
        match &self.s.waiting {
            Waiting::Agent {
                resume: Resume::HandoffReturn { node },
            } => {
                let Some(node) = code.node_index(node) else {
                    return Next::Stop;
                };
                if code.edge(node, port::RETURN).is_some() {
                    self.follow(node, port::RETURN)
                } else {
                    self.end("handed_back")
                }
            }
            Waiting::Agent {
                resume: Resume::Reenter { node },
            } => code.node_index(node).map_or(Next::Stop, Next::Node),
            _ => Next::Stop,
        }
    }

    fn cancel(&mut self) -> Next {
        if let Some(target) = &self.main.events().cancel.target {
            return self.goto_main(target);
        }
        self.say_builtin(None, Builtin::Cancelled);
        self.end("cancelled")
    }

    fn agent(&mut self) -> Next {
        let main = self.main;
        if let Some(target) = &main.events().agent.target {
            return self.goto_main(target);
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
            queue: Some(main.settings().default_queue.clone()),
            team: None,
            priority: Priority::Normal,
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
        let main = self.main;
        self.s.frames.truncate(1);
        self.refresh();
        let user: BTreeMap<String, Value> = main
            .vars()
            .iter()
            .filter(|v| v.scope == Scope::User)
            .filter_map(|v| {
                Some((
                    v.name.clone(),
                    self.s.frames.first()?.vars.get(&v.name)?.clone(),
                ))
            })
            .collect();
        let vars = main.vars().initial(&user);
        if let Some(frame) = self.s.frames.first_mut() {
            frame.vars = vars;
        }
        self.s.attempts = 0;
        match &main.events().restart.target {
            Some(target) => self.goto_main(target),
            None => Next::Node(main.start()),
        }
    }

    fn inactivity(&mut self) -> Next {
        match self
            .main
            .events()
            .inactivity
            .as_ref()
            .and_then(|i| i.target.as_ref())
        {
            Some(target) => self.goto_main(target),
            None => {
                self.say_builtin(None, Builtin::Inactive);
                self.end("inactive")
            }
        }
    }

    /// Leaves every sub-flow and continues at `target` in the main flow (global event targets).
    fn goto_main(&mut self, target: &str) -> Next {
        self.s.frames.truncate(1);
        self.refresh();
        self.s.attempts = 0;
        match self.main.node_index(target) {
            Some(node) => Next::Node(node),
            None => self.fail(None, format!("the event target `{target}` does not exist")),
        }
    }

    fn return_from_call(&mut self) -> Next {
        let Some(frame) = self.s.frames.pop() else {
            return Next::Stop;
        };
        self.refresh();
        let code = self.code();
        let Some(call_node) = frame.call_node.as_deref().and_then(|n| code.node_index(n)) else {
            return Next::Stop;
        };
        let Some(WaitSpec::Call { outputs }) = code.wait_spec(call_node) else {
            return Next::Stop;
        };
        for (parent_var, sub_var) in outputs {
            let value = frame.vars.get(sub_var).cloned().unwrap_or_default();
            if let Err(message) = self.set_var(parent_var, value) {
                return self.fail(Some(code.node_id(call_node).to_owned()), message);
            }
        }
        self.follow(call_node, port::NEXT)
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
        let main = self.main;
        if !self.handling_error
            && let Some(target) = &main.events().error.target
        {
            self.handling_error = true;
            self.budget = main.settings().step_budget;
            return self.goto_main(target);
        }
        self.say_builtin(node, Builtin::SomethingWentWrong);
        self.end("error")
    }

    /// The locale of the engine's own messages: the session's, else the main flow's default.
    fn builtin_locale(&self) -> &str {
        if self.s.locale.is_empty() {
            self.main.default_locale()
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
        // At most one timer is wanted at a time.
        let wanted: Option<(&str, Millis)> = match &self.s.waiting {
            Waiting::Choice { .. } | Waiting::Input { .. } => {
                self.main.events().inactivity.as_ref().map(|inactivity| {
                    let after =
                        i64::try_from(inactivity.seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
                    (INACTIVITY_TIMER, self.s.now.saturating_add(after))
                })
            }
            Waiting::Timer { timer, at, .. } => Some((timer.as_str(), *at)),
            _ => None,
        };
        let unchanged = match wanted {
            Some((id, at)) => self.s.timers.len() == 1 && self.s.timers.get(id) == Some(&at),
            None => self.s.timers.is_empty(),
        };
        if unchanged {
            return;
        }
        let wanted = wanted.map(|(id, at)| (id.to_owned(), at));
        for id in self.s.timers.keys() {
            if wanted.as_ref().is_none_or(|(w, _)| w != id) {
                self.effects.push(Effect::CancelTimer { id: id.clone() });
            }
        }
        let mut timers = BTreeMap::new();
        if let Some((id, at)) = wanted {
            if self.s.timers.get(&id) != Some(&at) {
                self.effects.push(Effect::SetTimer { id: id.clone(), at });
            }
            timers.insert(id, at);
        }
        self.s.timers = timers;
    }
}

/// Where a handoff node sends the conversation.
#[derive(Debug, Clone, Copy)]
pub struct HandoffTo<'a> {
    pub queue: Option<&'a str>,
    pub team: Option<&'a str>,
    pub priority: Priority,
}

/// A handoff node's rendered texts.
#[derive(Debug, Clone, Default)]
pub struct HandoffTexts {
    pub reason: String,
    pub summary: Option<String>,
    /// Said to the visitor before the handoff.
    pub message: Option<String>,
}

/// The node a session waits at, if it waits at one.
fn waiting_node(waiting: &Waiting) -> Option<&str> {
    match waiting {
        Waiting::Choice { node, .. }
        | Waiting::Input { node }
        | Waiting::Lookup { node, .. }
        | Waiting::Timer { node, .. }
        | Waiting::Agent {
            resume: Resume::HandoffReturn { node } | Resume::Reenter { node },
        } => Some(node),
        Waiting::NotStarted | Waiting::Ended { .. } => None,
    }
}
