//! Scenario files: named conversations with a flow (inputs and expected effects), the runner
//! that plays them against any `Engine`, and the plain-text transcript used for snapshots.
//!
//! One corpus serves every engine: the interpreter's tests, the generated code's equivalence
//! tests and the designer's preview all play the same `*.scenarios.json` files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::engine::{
    Effect, Engine, Expect, HandBack, Input, LookupOutcome, LookupResult, Millis, Output, Session,
    StartInput, Status, Step, Trace, Waiting,
};
use crate::model::Priority;
use crate::value::{Value, format_number};

/// 2026-01-05 10:00 in UTC+8 (a Monday morning in Shanghai), unless a scenario says otherwise.
pub const DEFAULT_START: Millis = 1_767_578_400_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The id of the flow the scenarios talk to.
    pub flow: String,
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub start: ScenarioStart,
    /// Unix milliseconds at the start; later steps advance it with `advance`.
    #[serde(default = "default_start")]
    pub now: Millis,
    pub steps: Vec<ScenarioStep>,
}

fn default_start() -> Millis {
    DEFAULT_START
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScenarioStart {
    pub session_id: String,
    pub locale: String,
    pub channel: String,
    pub tz_offset_minutes: i32,
    pub user: BTreeMap<String, Value>,
    /// Effects the start step must produce (see `ScenarioStep::expect`).
    pub expect: Vec<String>,
}

impl Default for ScenarioStart {
    fn default() -> Self {
        ScenarioStart {
            session_id: "session-1".into(),
            locale: "zh-CN".into(),
            channel: "web".into(),
            tz_offset_minutes: 480,
            user: BTreeMap::new(),
            expect: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioStep {
    /// Seconds that pass before this input arrives.
    #[serde(default)]
    pub advance: u64,
    #[serde(flatten)]
    pub input: StepInput,
    /// Each entry must be a substring of one line of this step's transcript.
    #[serde(default)]
    pub expect: Vec<String>,
    /// The status after the step (`awaiting_choice`, `ended`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// A scenario input, written the short way: `{"text": "hi"}`, `{"choice": "phones"}`,
/// `{"lookup": {"rows": [..]}}` (answers the pending lookup), `{"timer": "inactivity"}`,
/// `{"hand_back": {}}`, `{"restart": true}`, `{"cancel": true}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepInput {
    Text(String),
    Choice(String),
    Lookup(LookupOutcome),
    Timer(String),
    HandBack(HandBack),
    Restart(bool),
    Cancel(bool),
}

/// One played step.
#[derive(Debug, Clone, PartialEq)]
pub struct Played {
    pub input: Input,
    pub now: Millis,
    pub step: Step,
    /// The session after the step.
    pub session: Session,
}

pub fn parse_file(text: &str) -> Result<ScenarioFile, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| format!("at `{}`: {}", e.path(), e.inner()))
}

impl Scenario {
    /// The engine inputs of this scenario, resolved against the session as it goes (a
    /// `lookup` answers whatever request is pending).
    pub fn input_for(&self, step: &ScenarioStep, session: &Session) -> Input {
        match &step.input {
            StepInput::Text(t) => Input::Text(t.clone()),
            StepInput::Choice(c) => Input::Choice(c.clone()),
            StepInput::Lookup(outcome) => {
                let request = match &session.waiting {
                    Waiting::Lookup { request, .. } => *request,
                    _ => 0,
                };
                Input::LookupResult(LookupResult {
                    request,
                    outcome: outcome.clone(),
                })
            }
            StepInput::Timer(id) => Input::Timer(id.clone()),
            StepInput::HandBack(hb) => Input::HandBack(hb.clone()),
            StepInput::Restart(_) => Input::Restart,
            StepInput::Cancel(_) => Input::Cancel,
        }
    }

    pub fn start_input(&self) -> Input {
        let s = &self.start;
        Input::Start(StartInput {
            session_id: s.session_id.clone(),
            locale: s.locale.clone(),
            channel: s.channel.clone(),
            tz_offset_minutes: s.tz_offset_minutes,
            user: s.user.clone(),
        })
    }

    /// Plays the scenario on `engine`, returning every step (the start first).
    pub fn play(&self, engine: &dyn Engine) -> Vec<Played> {
        let mut session = engine.new_session();
        let mut now = self.now;
        let mut played = Vec::with_capacity(self.steps.len() + 1);
        // The start first, then each step after its pause.
        for step in std::iter::once(None).chain(self.steps.iter().map(Some)) {
            let input = match step {
                None => self.start_input(),
                Some(s) => {
                    let pause = i64::try_from(s.advance.saturating_mul(1000)).unwrap_or(i64::MAX);
                    now = now.saturating_add(pause);
                    self.input_for(s, &session)
                }
            };
            let step = engine.step(&mut session, &input, now);
            played.push(Played {
                input,
                now,
                step,
                session: session.clone(),
            });
        }
        played
    }

    /// Checks the `expect` and `status` of every step; returns the failures, each explained.
    pub fn check(&self, played: &[Played]) -> Vec<String> {
        let mut failures = Vec::new();
        let expectations = std::iter::once((&self.start.expect, None))
            .chain(self.steps.iter().map(|s| (&s.expect, s.status)));
        for (i, ((expect, status), p)) in expectations.zip(played).enumerate() {
            let lines = step_lines(p);
            for wanted in expect {
                if !lines.iter().any(|l| l.contains(wanted.as_str())) {
                    failures.push(format!(
                        "{}: step {i}: expected a line containing {wanted:?}, got:\n{}",
                        self.name,
                        lines.join("\n")
                    ));
                }
            }
            if let Some(status) = status
                && p.step.status != status
            {
                failures.push(format!(
                    "{}: step {i}: expected status {status:?}, got {:?}",
                    self.name, p.step.status
                ));
            }
        }
        failures
    }
}

/// The readable transcript of a played scenario: `>` lines are inputs, `<` lines effects,
/// `·` lines the trace, `=` the status after each step.
pub fn transcript(name: &str, played: &[Played]) -> String {
    let mut out = format!("# {name}\n");
    for p in played {
        for line in step_lines(p) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

fn step_lines(p: &Played) -> Vec<String> {
    let mut lines = vec![format!("> {}", describe_input(&p.input))];
    let mut path: Vec<&str> = Vec::new();
    let mut sets: Vec<String> = Vec::new();
    let flush = |lines: &mut Vec<String>, path: &mut Vec<&str>, sets: &mut Vec<String>| {
        if !path.is_empty() {
            lines.push(format!("  · {}", path.join(" → ")));
            path.clear();
        }
        for set in sets.drain(..) {
            lines.push(format!("  · {set}"));
        }
    };
    for effect in &p.step.effects {
        match effect {
            Effect::Trace(Trace::NodeEntered { node, .. }) => path.push(node),
            Effect::Trace(Trace::VarSet { name, value, .. }) => {
                sets.push(format!("{name} = {}", show(value)));
            }
            Effect::Trace(Trace::EdgeTaken { .. }) => {}
            other => {
                flush(&mut lines, &mut path, &mut sets);
                lines.push(format!("< {}", describe_effect(other)));
            }
        }
    }
    flush(&mut lines, &mut path, &mut sets);
    lines.push(format!("= {}", status_name(p.step.status)));
    lines
}

fn describe_input(input: &Input) -> String {
    match input {
        Input::Start(s) => format!("start {} {} ({})", s.locale, s.channel, s.session_id),
        Input::Text(t) => format!("text {t:?}"),
        Input::Choice(c) => format!("choice {c}"),
        Input::LookupResult(r) => match &r.outcome {
            LookupOutcome::Rows(rows) => {
                format!("lookup #{} answered: {} row(s)", r.request, rows.len())
            }
            LookupOutcome::Error(e) => format!("lookup #{} failed: {e}", r.request),
        },
        Input::Timer(id) => format!("timer {id} fired"),
        Input::HandBack(hb) => match &hb.node {
            Some(node) => format!("agent hands back at {node}"),
            None => "agent hands back".into(),
        },
        Input::Restart => "restart".into(),
        Input::Cancel => "cancel".into(),
    }
}

/// One line for an effect (traces excluded).
pub fn describe_effect(effect: &Effect) -> String {
    match effect {
        Effect::Say { node, output } => format!("say[{node}]: {}", describe_output(output)),
        Effect::Ask {
            node,
            prompt,
            expect,
        } => match expect {
            Expect::Choice { options } => {
                let buttons: Vec<String> = options
                    .iter()
                    .map(|o| format!("[{}: {}]", o.id, o.label))
                    .collect();
                format!("ask[{node}]: {prompt} {}", buttons.join(" "))
            }
            Expect::Input { input_type } => {
                format!("ask[{node}]: {prompt} ({})", input_type.name())
            }
        },
        Effect::Lookup(l) => {
            let params: Vec<String> = l
                .params
                .iter()
                .map(|(k, v)| format!("{k}: {}", show(v)))
                .collect();
            format!(
                "lookup#{}[{}]: {}.{}.{} {{{}}}",
                l.request,
                l.node,
                l.connector,
                l.entity,
                l.operation,
                params.join(", ")
            )
        }
        Effect::Handoff(h) => {
            let to = match (&h.queue, &h.team) {
                (Some(q), Some(t)) => format!("queue {q}, team {t}"),
                (Some(q), None) => format!("queue {q}"),
                (None, Some(t)) => format!("team {t}"),
                (None, None) => "anyone".into(),
            };
            let priority = match h.priority {
                Priority::Low => "low",
                Priority::Normal => "normal",
                Priority::High => "high",
                Priority::Urgent => "urgent",
            };
            let mut line = format!("handoff to {to}, {priority} priority: {}", h.reason);
            if !h.summary.is_empty() {
                let _ = write!(line, " | summary: {}", h.summary);
            }
            line
        }
        Effect::SetTimer { id, at } => format!("set timer {id} at {at}"),
        Effect::CancelTimer { id } => format!("cancel timer {id}"),
        Effect::End { outcome } => format!("end: {outcome}"),
        Effect::Error { node, message } => match node {
            Some(node) => format!("error[{node}]: {message}"),
            None => format!("error: {message}"),
        },
        Effect::Rejected { reason } => format!("rejected: {reason}"),
        Effect::Trace(t) => format!("trace: {t:?}"),
    }
}

fn describe_output(output: &Output) -> String {
    match output {
        Output::Text { text } => text.replace('\n', "⏎"),
        Output::Image { url, alt } => format!("image {url} ({alt})"),
        Output::Products { cards } | Output::Carousel { cards } => {
            let kind = if matches!(output, Output::Products { .. }) {
                "products"
            } else {
                "carousel"
            };
            let shown: Vec<String> = cards
                .iter()
                .map(|c| match c.price {
                    Some(p) => format!("{} ¥{}", c.title, format_number(p)),
                    None => c.title.clone(),
                })
                .collect();
            format!("{kind} [{}]", shown.join(" | "))
        }
    }
}

/// A value as a person reads it: strings quoted, numbers without a needless `.0`.
fn show(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(*n),
        Value::String(s) => format!("{s:?}"),
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}: {}", show(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::NotStarted => "not started",
        Status::AwaitingChoice => "awaiting choice",
        Status::AwaitingText => "awaiting text",
        Status::AwaitingLookup => "awaiting lookup",
        Status::AwaitingAgent => "awaiting agent",
        Status::AwaitingTimer => "awaiting timer",
        Status::Ended => "ended",
    }
}
