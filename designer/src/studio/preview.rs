//! The preview: the flow being edited, run in the browser by the interpreter of the `flows`
//! crate (the same code the server runs), from its start or from any step. Lookups are asked
//! of the server's connectors (`POST /api/admin/connectors/test`); timers and hand-backs are
//! buttons, so every path can be tried without waiting.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::task::spawn_local;

use flows::engine::{Expect, HandBack, LookupOutcome, LookupResult, Output, StartInput, Trace};
use flows::model::Edge;
use flows::{Effect, Engine, Flow, Input, Interpreter, Session, Status, Value};

use super::Studio;
use crate::console::api::test_connector;

/// A line of the preview's transcript.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Bot(String),
    Visitor(String),
    Cards(Vec<String>),
    /// What the engine or the preview says about the run (handoffs, ends, errors).
    Note(String),
    Error(String),
}

#[derive(Clone, Copy)]
pub struct State {
    engine: StoredValue<Option<Interpreter>, LocalStorage>,
    session: StoredValue<Option<Session>>,
    pub lines: RwSignal<Vec<Line>>,
    pub buttons: RwSignal<Vec<(String, String)>>,
    pub status: RwSignal<Option<Status>>,
    pub vars: RwSignal<BTreeMap<String, Value>>,
    pub trace: RwSignal<Vec<String>>,
    pub timers: RwSignal<Vec<String>>,
    /// The step the run was started from (`None`: the start).
    pub from: RwSignal<Option<String>>,
}

impl State {
    pub fn new() -> State {
        State {
            engine: StoredValue::new_local(None),
            session: StoredValue::new(None),
            lines: RwSignal::new(Vec::new()),
            buttons: RwSignal::new(Vec::new()),
            status: RwSignal::new(None),
            vars: RwSignal::new(BTreeMap::new()),
            trace: RwSignal::new(Vec::new()),
            timers: RwSignal::new(Vec::new()),
            from: RwSignal::new(None),
        }
    }

    pub fn reset(self) {
        self.engine.set_value(None);
        self.session.set_value(None);
        self.lines.set(Vec::new());
        self.buttons.set(Vec::new());
        self.status.set(None);
        self.vars.set(BTreeMap::new());
        self.trace.set(Vec::new());
        self.timers.set(Vec::new());
    }
}

/// `flow` with its start leading to `node`: running it starts the conversation there.
pub fn starting_at(flow: &Flow, node: &str) -> Flow {
    let mut flow = flow.clone();
    let start = flow
        .nodes
        .iter()
        .find(|n| n.kind.name() == "start")
        .map(|n| n.id.clone());
    if let Some(start) = start
        && start != node
    {
        flow.edges.retain(|e| e.from != start);
        flow.edges.push(Edge {
            from: start,
            port: "next".to_owned(),
            to: node.to_owned(),
        });
    }
    flow
}

/// Starts a run of the document (from `from`, or its start).
pub fn start(studio: Studio, from: Option<String>) {
    let state = studio.preview;
    state.reset();
    let flow = studio.doc.with_untracked(|f| match &from {
        Some(node) => starting_at(f, node),
        None => f.clone(),
    });
    state.from.set(from);
    let mut library = studio.library.with_value(Clone::clone);
    let id = flow.id.clone();
    library.insert(flow);
    let engine = match Interpreter::new(&library, &id) {
        Ok(engine) => engine,
        Err(error) => {
            state.lines.set(vec![Line::Error(error.to_string())]);
            return;
        }
    };
    let session = engine.new_session();
    state.engine.set_value(Some(engine));
    state.session.set_value(Some(session));
    let input = Input::Start(StartInput {
        session_id: format!("preview-{}", js_sys::Date::now() as u64),
        locale: studio.locale().to_owned(),
        channel: "preview".to_owned(),
        tz_offset_minutes: -(js_sys::Date::new_0().get_timezone_offset() as i32),
        user: BTreeMap::new(),
    });
    step(studio, &input);
}

/// Feeds one input to the running session and shows what it did.
pub fn step(studio: Studio, input: &Input) {
    let state = studio.preview;
    let now = js_sys::Date::now() as i64;
    let outcome = state.engine.with_value(|engine| {
        let engine = engine.as_ref()?;
        let mut result = None;
        state.session.update_value(|session| {
            if let Some(session) = session {
                result = Some((engine.step(session, input, now), session.main_vars()));
            }
        });
        result
    });
    let Some((result, vars)) = outcome else {
        return;
    };
    state.buttons.set(Vec::new());
    let mut lookups = Vec::new();
    for effect in result.effects {
        match effect {
            Effect::Say { output, .. } => match output {
                Output::Text { text } => push(state, Line::Bot(text)),
                Output::Image { url, alt } => push(state, Line::Bot(format!("🖼 {alt} {url}"))),
                Output::Products { cards } | Output::Carousel { cards } => push(
                    state,
                    Line::Cards(
                        cards
                            .into_iter()
                            .map(|c| match c.price {
                                Some(p) => format!("{} · ¥{p}", c.title),
                                None => c.title,
                            })
                            .collect(),
                    ),
                ),
            },
            Effect::Ask { prompt, expect, .. } => {
                if !prompt.is_empty() {
                    push(state, Line::Bot(prompt));
                }
                if let Expect::Choice { options } = expect {
                    state
                        .buttons
                        .set(options.into_iter().map(|o| (o.id, o.label)).collect());
                }
            }
            Effect::Lookup(request) => lookups.push(request),
            Effect::Handoff(h) => push(
                state,
                Line::Note(format!(
                    "{} {}",
                    studio.t("→ handed to an agent:", "→ 已转人工："),
                    h.queue.or(h.team).unwrap_or_default()
                )),
            ),
            Effect::SetTimer { id, .. } => state.timers.update(|t| {
                if !t.contains(&id) {
                    t.push(id);
                }
            }),
            Effect::CancelTimer { id } => state.timers.update(|t| t.retain(|x| *x != id)),
            Effect::End { outcome } => push(
                state,
                Line::Note(format!(
                    "{} {outcome}",
                    studio.t("■ ended:", "■ 对话结束：")
                )),
            ),
            Effect::Error { node, message } => push(
                state,
                Line::Error(format!("{}: {message}", node.unwrap_or_default())),
            ),
            Effect::Rejected { reason } => push(state, Line::Note(reason)),
            Effect::Trace(trace) => state.trace.update(|t| {
                t.push(match trace {
                    Trace::NodeEntered { node, .. } => format!("▶ {node}"),
                    Trace::EdgeTaken { from, port, to, .. } => format!("  {from} —{port}→ {to}"),
                    Trace::VarSet { name, value, .. } => format!("  {name} = {value}"),
                });
            }),
        }
    }
    state.vars.set(vars);
    state.status.set(Some(result.status));
    for request in lookups {
        let csrf = studio.csrf.get_untracked();
        spawn_local(async move {
            let body = serde_json::json!({
                "connector": request.connector,
                "entity": request.entity,
                "operation": request.operation,
                "params": request.params,
            });
            let outcome = match test_connector(&body, &csrf).await {
                Ok(answer) => match answer.error {
                    Some(error) => LookupOutcome::Error(error),
                    None => LookupOutcome::Rows(
                        answer
                            .rows
                            .into_iter()
                            .filter_map(|row| serde_json::from_value(row).ok())
                            .collect(),
                    ),
                },
                Err(error) => LookupOutcome::Error(error.to_string()),
            };
            let shown = match &outcome {
                LookupOutcome::Rows(rows) => format!("{} {}", rows.len(), studio.t("rows", "行")),
                LookupOutcome::Error(e) => e.clone(),
            };
            push(
                studio.preview,
                Line::Note(format!(
                    "🔎 {}.{}.{} → {shown}",
                    request.connector, request.entity, request.operation
                )),
            );
            step(
                studio,
                &Input::LookupResult(LookupResult {
                    request: request.request,
                    outcome,
                }),
            );
        });
    }
}

fn push(state: State, line: Line) {
    state.lines.update(|l| l.push(line));
}

#[component]
pub fn Preview() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let state = studio.preview;
    let draft = RwSignal::new(String::new());
    let send = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = draft.get_untracked().trim().to_owned();
        if text.is_empty() {
            return;
        }
        draft.set(String::new());
        push(state, Line::Visitor(text.clone()));
        step(studio, &Input::Text(text));
    };
    let selected = move || studio.selection.with(|s| s.nodes.iter().next().cloned());
    view! {
        <div class="preview" data-test="preview">
            <div class="preview-actions">
                <button class="primary" data-test="preview-start" on:click=move |_| start(studio, None)>
                    {move || studio.t("▶ Run from the start", "▶ 从头运行")}
                </button>
                <button data-test="preview-from-selected" disabled=move || selected().is_none()
                    on:click=move |_| start(studio, selected())>
                    {move || studio.t("Run from the selected step", "从选中的步骤运行")}
                </button>
            </div>
            <div class="preview-log" data-test="preview-log" aria-live="polite">
                <For each={move || state.lines.get().into_iter().enumerate().collect::<Vec<_>>()} key=|(i, _)| *i let:entry>
                    {match entry.1 {
                        Line::Bot(t) => view! { <p class="bubble bot" data-test="preview-bot">{t}</p> }.into_any(),
                        Line::Visitor(t) => view! { <p class="bubble visitor">{t}</p> }.into_any(),
                        Line::Cards(cards) => view! { <div class="cards">{cards.into_iter().map(|c| view! { <span class="card">{c}</span> }).collect_view()}</div> }.into_any(),
                        Line::Note(t) => view! { <p class="note" data-test="preview-note">{t}</p> }.into_any(),
                        Line::Error(t) => view! { <p class="note error" data-test="preview-error">{t}</p> }.into_any(),
                    }}
                </For>
            </div>
            <div class="preview-buttons">
                <For each=move || state.buttons.get() key=|b| b.clone() let:b>
                    {
                        let (id, label) = b;
                        let shown = label.clone();
                        view! {
                            <button class="choice" data-test="preview-choice" on:click=move |_| {
                                push(state, Line::Visitor(label.clone()));
                                step(studio, &Input::Choice(id.clone()));
                            }>{shown}</button>
                        }
                    }
                </For>
                <For each=move || state.timers.get() key=|t| t.clone() let:timer>
                    {
                        let id = timer.clone();
                        view! {
                            <button class="timer" on:click=move |_| {
                                studio.preview.timers.update(|t| t.retain(|x| *x != id));
                                step(studio, &Input::Timer(id.clone()));
                            }>"⏰ " {timer}</button>
                        }
                    }
                </For>
                <Show when=move || state.status.get() == Some(Status::AwaitingAgent)>
                    <button on:click=move |_| step(studio, &Input::HandBack(HandBack::default()))>
                        {move || studio.t("Agent hands back", "客服交回机器人")}
                    </button>
                </Show>
            </div>
            <form class="preview-input" on:submit=send>
                <input data-test="preview-input" placeholder=move || studio.t("Type as the visitor…", "以访客身份输入…")
                    disabled=move || state.status.get().is_none_or(|s| s == Status::Ended)
                    prop:value=move || draft.get() on:input=move |ev| draft.set(event_target_value(&ev)) />
                <button type="submit">{move || studio.t("Send", "发送")}</button>
            </form>
            <details open>
                <summary>{move || studio.t("Variables", "变量")}</summary>
                <table class="vars" data-test="preview-vars">
                    <For each={move || state.vars.get().into_iter().collect::<Vec<_>>()} key=|(k, v)| format!("{k}={v}") let:kv>
                        <tr><td><code>{kv.0.clone()}</code></td><td>{kv.1.to_string()}</td></tr>
                    </For>
                </table>
            </details>
            <details>
                <summary>{move || studio.t("Trace", "运行轨迹")}</summary>
                <pre class="trace" data-test="preview-trace">{move || state.trace.get().join("\n")}</pre>
            </details>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flows::Library;

    #[test]
    fn a_run_from_a_step_starts_there() {
        let flow = Library::bundled()
            .ok()
            .and_then(|l| l.get("guided-shopping").cloned())
            .expect("the bundled guided-shopping flow");
        let target = flow
            .nodes
            .iter()
            .find(|n| n.kind.name() == "handoff")
            .map(|n| n.id.clone())
            .expect("a handoff step");
        let moved = starting_at(&flow, &target);
        let start = moved
            .nodes
            .iter()
            .find(|n| n.kind.name() == "start")
            .map(|n| n.id.clone())
            .expect("a start");
        let leaving: Vec<&Edge> = moved.edges.iter().filter(|e| e.from == start).collect();
        assert_eq!(leaving.len(), 1);
        assert_eq!(leaving[0].to, target);
        let mut library = Library::new();
        library.insert(moved);
        let engine = Interpreter::new(&library, "guided-shopping").expect("it loads");
        let mut session = engine.new_session();
        let step = engine.step(&mut session, &Input::Start(StartInput::default()), 0);
        assert!(
            step.effects.iter().any(
                |e| matches!(e, Effect::Handoff(h) if h.node.as_deref() == Some(target.as_str()))
            ),
            "{:?}",
            step.effects
        );
    }
}
