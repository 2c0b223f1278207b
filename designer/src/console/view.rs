//! The right pane: the open conversation's transcript, context panel, notes, reply box and
//! actions (claim, transfer, resolve, hand back), and the dialogs of the last two.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};

use super::api::{
    self, Body, Card, Expect, Summary, display_value, fill_template, team_id_and_name,
};
use super::i18n::{self, T};
use super::{Console, Dialog, Entry};

/// Whether the signed-in account may act on the open conversation (its assignee, or an admin).
fn may_act(console: Console) -> bool {
    let me = console.user.with(|u| u.as_ref().map(|u| u.id.clone()));
    console.current.with(|current| {
        current.as_ref().is_some_and(|c| {
            c.status != "ended"
                && c.owner == "agent"
                && (console.is_admin() || c.assignee.as_ref().map(|a| &a.id) == me.as_ref())
        })
    })
}

fn is_queued(console: Console) -> bool {
    console
        .current
        .with(|c| c.as_ref().is_some_and(Summary::is_queued))
}

/// Runs an action that answers with the conversation's new `Summary`.
fn act(console: Console, action: &'static str, body: Value) {
    let Some(id) = console.selected.get_untracked() else {
        return;
    };
    let csrf = console.csrf.get_untracked();
    spawn_local(async move {
        match api::act(&id, action, &body, &csrf).await {
            Ok(summary) => {
                console.update_summary(&summary);
                console.current.set(Some(summary));
                console.dialog.set(None);
            }
            Err(error) if error.status() == Some(409) => {
                console.flash.set(Some(console.t(T::Taken).to_owned()));
                console.refresh_lists();
            }
            Err(error) => console.fail(&error),
        }
    });
}

/// `c`: claim the open conversation when it is queued.
pub fn claim(console: Console) -> bool {
    let queued = console
        .current
        .with_untracked(|c| c.as_ref().is_some_and(Summary::is_queued));
    if queued {
        act(console, "claim", json!({}));
    }
    queued
}

/// `e`: resolve the open conversation.
pub fn resolve(console: Console) -> bool {
    let allowed = untrack(|| may_act(console));
    if allowed {
        act(console, "resolve", json!({}));
    }
    allowed
}

/// `t` / `b`: the transfer or hand-back dialog.
pub fn open_dialog(console: Console, dialog: Dialog) -> bool {
    let allowed = untrack(|| may_act(console));
    if allowed {
        console.dialog.set(Some(dialog));
    }
    allowed
}

#[component]
pub fn ConversationView() -> impl IntoView {
    let console = expect_context::<Console>();
    view! {
        <section class="conversation">
            {move || {
                if console.selected.with(Option::is_none) {
                    view! { <p class="empty">{move || console.t(T::NoSelection)}</p> }.into_any()
                } else {
                    view! {
                        <div class="chat">
                            <Actions />
                            <Transcript />
                            <Show when=move || console.visitor_typing.get()>
                                <p class="typing" data-test="typing-indicator">{move || console.t(T::VisitorTyping)}</p>
                            </Show>
                            <ReplyBox />
                        </div>
                        <aside class="side">
                            <ContextPanel />
                            <Notes />
                        </aside>
                        {move || match console.dialog.get() {
                            Some(Dialog::Transfer) => view! { <TransferDialog /> }.into_any(),
                            Some(Dialog::HandBack) => view! { <HandBackDialog /> }.into_any(),
                            None => ().into_any(),
                        }}
                    }
                    .into_any()
                }
            }}
        </section>
    }
}

#[component]
fn Actions() -> impl IntoView {
    let console = expect_context::<Console>();
    let title = move || {
        console.current.with(|c| {
            c.as_ref()
                .map(|c| {
                    let state = i18n::state(console.lang.get(), &c.owner, &c.status);
                    format!("{} · {state}", c.flow)
                })
                .unwrap_or_default()
        })
    };
    view! {
        <div class="actions">
            <span class="title" data-test="conversation-title">{title}</span>
            <Show when=move || is_queued(console)>
                <button type="button" class="primary" data-test="action-claim" title="c"
                    on:click=move |_| { claim(console); }>{move || console.t(T::Claim)}</button>
            </Show>
            <Show when=move || may_act(console)>
                <button type="button" data-test="action-transfer" title="t"
                    on:click=move |_| { open_dialog(console, Dialog::Transfer); }>{move || console.t(T::Transfer)}</button>
                <button type="button" data-test="action-handback" title="b"
                    on:click=move |_| { open_dialog(console, Dialog::HandBack); }>{move || console.t(T::HandBack)}</button>
                <button type="button" class="danger" data-test="action-resolve" title="e"
                    on:click=move |_| { resolve(console); }>{move || console.t(T::Resolve)}</button>
            </Show>
        </div>
    }
}

#[component]
fn Transcript() -> impl IntoView {
    let console = expect_context::<Console>();
    let list = NodeRef::<leptos::html::Div>::new();
    // Keep the newest message in view.
    Effect::new(move |_| {
        console.transcript.track();
        if let Some(list) = list.get() {
            list.set_scroll_top(list.scroll_height());
        }
    });
    view! {
        <div class="transcript" data-test="transcript" node_ref=list>
            <For each=move || console.transcript.get()
                key=|e: &Entry| (e.message.seq, e.message.client_id.clone(), e.pending)
                children=move |entry: Entry| bubble(console, entry) />
        </div>
    }
}

fn time_of(at: f64) -> String {
    let date = js_sys::Date::new(&at.into());
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

fn bubble(console: Console, entry: Entry) -> impl IntoView {
    let message = entry.message;
    let sender = message.sender.clone();
    let label = match sender.as_str() {
        "visitor" => Some(T::Visitor),
        "bot" => Some(T::Bot),
        "agent" => Some(T::Agent),
        _ => None,
    };
    if let Body::Notice { code, text } = &message.body {
        return view! {
            <div class="notice" data-test="bubble" data-sender=sender data-seq=message.seq data-code=code.clone()>
                {text.clone()}
            </div>
        }
        .into_any();
    }
    let body = match message.body {
        Body::Text { text } => view! { <p class="text">{text}</p> }.into_any(),
        Body::Choice { label, option } => {
            let shown = if label.is_empty() { option } else { label };
            view! { <p class="text">{move || console.t(T::Picked)} ": " <b>{shown}</b></p> }
                .into_any()
        }
        Body::Image { url, alt } => view! { <img class="image" src=url alt=alt /> }.into_any(),
        Body::Products { cards } | Body::Carousel { cards } => view! {
            <ul class="cards">{cards.into_iter().map(card).collect_view()}</ul>
        }
        .into_any(),
        Body::Ask { prompt, expect } => {
            let extra = match expect {
                Expect::Choice { options } => view! {
                    <div class="chips">
                        {options.into_iter().map(|o| view! { <span class="chip" title=o.id>{o.label}</span> }).collect_view()}
                    </div>
                }
                .into_any(),
                Expect::Input { input_type } => view! {
                    <small class="expects">{move || console.t(T::ExpectsInput)} " (" {input_type} ")"</small>
                }
                .into_any(),
                Expect::Unknown => ().into_any(),
            };
            view! { <p class="text">{prompt}</p> {extra} }.into_any()
        }
        Body::Notice { .. } | Body::Unknown => view! { <p class="text unknown">"…"</p> }.into_any(),
    };
    let pending = entry.pending;
    view! {
        <div class=format!("bubble from-{sender}") class:pending=pending data-test="bubble"
            data-sender=sender data-seq=message.seq>
            <div class="meta">
                {move || label.map(|l| console.t(l))} " " {time_of(message.at)}
                {pending.then(|| view! { " · " {move || console.t(T::Sending)} })}
            </div>
            {body}
        </div>
    }
    .into_any()
}

fn card(card: Card) -> impl IntoView {
    let price = card.price.map(|p| format!("¥{p:.2}"));
    view! {
        <li class="card" data-test="product-card">
            <b>{card.title}</b>
            {card.subtitle.map(|s| view! { <span>{s}</span> })}
            {price.map(|p| view! { <span class="price">{p}</span> })}
        </li>
    }
}

#[component]
fn ReplyBox() -> impl IntoView {
    let console = expect_context::<Console>();
    let text = RwSignal::new(String::new());
    let typing_on = StoredValue::new(false);
    let last_typed = StoredValue::new(0.0_f64);
    let send = move || {
        console.send_reply(&text.get_untracked());
        text.set(String::new());
        typing_on.set_value(false);
    };
    // Typing on at the first key, off after three quiet seconds (checked again until then).
    fn typing_off_later(
        console: Console,
        typing_on: StoredValue<bool>,
        last_typed: StoredValue<f64>,
    ) {
        set_timeout(
            move || {
                // The reply box may be gone (another conversation, signed out): then stop.
                let (Some(true), Some(last)) =
                    (typing_on.try_get_value(), last_typed.try_get_value())
                else {
                    return;
                };
                if js_sys::Date::now() - last >= 2900.0 {
                    typing_on.set_value(false);
                    console.typing(false);
                } else {
                    typing_off_later(console, typing_on, last_typed);
                }
            },
            Duration::from_secs(1),
        );
    }
    let on_input = move |ev: leptos::ev::Event| {
        text.set(event_target_value(&ev));
        last_typed.set_value(js_sys::Date::now());
        if !typing_on.get_value() {
            typing_on.set_value(true);
            console.typing(true);
            typing_off_later(console, typing_on, last_typed);
        }
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };
    let pick_canned = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        let Ok(index) = value.parse::<usize>() else {
            return;
        };
        let template = console
            .canned
            .with_untracked(|c| c.get(index).map(|c| c.text.clone()));
        if let Some(template) = template {
            let filled = console
                .context
                .with_untracked(|c| fill_template(&template, &c.variables));
            text.set(filled);
        }
        if let Some(select) = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlSelectElement>(t).ok())
        {
            select.set_value("");
        }
        if let Some(reply) = console.reply_ref.get_untracked() {
            let _ = reply.focus();
        }
    };
    let disabled = move || !may_act(console);
    view! {
        <div class="reply">
            <textarea data-test="reply-box" rows="3" node_ref=console.reply_ref
                placeholder=move || console.t(T::ReplyPlaceholder)
                disabled=disabled
                prop:value=move || text.get()
                on:input=on_input on:keydown=on_keydown></textarea>
            <div class="reply-tools">
                <select data-test="canned-select" on:change=pick_canned disabled=disabled>
                    <option value="">{move || console.t(T::Canned)}</option>
                    {move || console.canned.get().into_iter().enumerate()
                        .map(|(i, c)| view! { <option value=i.to_string()>{c.title}</option> })
                        .collect_view()}
                </select>
                <button type="button" class="primary" data-test="send-button" disabled=disabled
                    on:click=move |_| send()>{move || console.t(T::Send)}</button>
            </div>
        </div>
    }
}

#[component]
fn ContextPanel() -> impl IntoView {
    let console = expect_context::<Console>();
    let handoff = move || console.context.with(|c| c.handoff.clone());
    view! {
        <section class="context" data-test="context-panel">
            <h3>{move || console.t(T::Context)}</h3>
            {move || handoff().map(|h| view! {
                <dl>
                    <dt>{move || console.t(T::Reason)}</dt>
                    <dd data-test="handoff-reason">{h.reason.clone().unwrap_or_default()}</dd>
                    <dt>{move || console.t(T::Summary)}</dt>
                    <dd data-test="handoff-summary">{h.summary.unwrap_or_default()}</dd>
                </dl>
            })}
            {move || console.context.with(|c| c.customer.clone()).map(|customer| view! {
                <h4>{move || console.t(T::Customer)}</h4>
                <table class="variables customer" data-test="customer-panel" title=customer.source.clone()>
                    {customer.fields.iter()
                        .map(|(k, v)| view! { <tr><th>{k.clone()}</th><td>{display_value(v)}</td></tr> })
                        .collect_view()}
                </table>
                {match customer.error {
                    Some(error) => view! { <p class="customer-error" data-test="customer-error">{error}</p> }.into_any(),
                    None if customer.fields.is_empty() => view! { <p data-test="customer-error">{move || console.t(T::NoCustomer)}</p> }.into_any(),
                    None => ().into_any(),
                }}
            })}
            <h4>{move || console.t(T::BotPath)}</h4>
            <ol class="path" data-test="bot-path">
                {move || console.context.with(|c| c.path.clone()).into_iter()
                    .map(|step| view! { <li>{step}</li> }).collect_view()}
            </ol>
            <h4>{move || console.t(T::Variables)}</h4>
            <table class="variables" data-test="variables">
                {move || console.context.with(|c| c.variables.iter()
                    .map(|(k, v)| (k.clone(), display_value(v))).collect::<Vec<_>>())
                    .into_iter()
                    .map(|(k, v)| view! { <tr><th>{k}</th><td>{v}</td></tr> })
                    .collect_view()}
            </table>
        </section>
    }
}

#[component]
fn Notes() -> impl IntoView {
    let console = expect_context::<Console>();
    let text = RwSignal::new(String::new());
    let add = move |_| {
        let note = text.get_untracked().trim().to_owned();
        let Some(id) = console.selected.get_untracked() else {
            return;
        };
        if note.is_empty() {
            return;
        }
        let csrf = console.csrf.get_untracked();
        spawn_local(async move {
            match api::add_note(&id, &note, &csrf).await {
                Ok(()) => {
                    let author = console
                        .user
                        .with_untracked(|u| u.as_ref().map(|u| u.name.clone()))
                        .unwrap_or_default();
                    console.notes.update(|notes| {
                        notes.push(api::Note {
                            author: Value::String(author),
                            text: note,
                            at: js_sys::Date::now(),
                        });
                    });
                    text.set(String::new());
                }
                Err(error) => console.fail(&error),
            }
        });
    };
    view! {
        <section class="notes" data-test="notes">
            <h3>{move || console.t(T::Notes)}</h3>
            <ul>
                {move || console.notes.get().into_iter().map(|n| view! {
                    <li data-test="note"><small>{display_value(&n.author)} " · " {time_of(n.at)}</small><p>{n.text}</p></li>
                }).collect_view()}
            </ul>
            <textarea data-test="note-box" rows="2" node_ref=console.note_ref
                placeholder=move || console.t(T::NotePlaceholder)
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            <button type="button" data-test="note-add" disabled=move || !may_act(console) on:click=add>
                {move || console.t(T::AddNote)}
            </button>
        </section>
    }
}

#[component]
fn TransferDialog() -> impl IntoView {
    let console = expect_context::<Console>();
    // "agent:<id>" or "team:<id>".
    let target = RwSignal::new(String::new());
    let note = RwSignal::new(String::new());
    let me = console
        .user
        .with_untracked(|u| u.as_ref().map(|u| u.id.clone()));
    let agents: Vec<(String, String)> = console.agents.with_untracked(|agents| {
        agents
            .iter()
            .filter(|a| Some(&a.id) != me.as_ref())
            .map(|a| {
                let state = if a.online { "●" } else { "○" };
                (
                    a.id.to_string(),
                    format!("{state} {} ({}/{})", a.name, a.active, a.capacity),
                )
            })
            .collect()
    });
    let mut teams: Vec<(String, String)> = console.agents.with_untracked(|agents| {
        agents
            .iter()
            .filter_map(|a| team_id_and_name(&a.team))
            .map(|(id, name)| (id.to_string(), name))
            .collect()
    });
    if let Some(team) = console
        .user
        .with_untracked(|u| u.as_ref().map(|u| u.team.clone()))
    {
        teams.push((team.id.to_string(), team.name));
    }
    teams.sort();
    teams.dedup_by(|a, b| a.0 == b.0);
    let confirm = move |_| {
        let chosen = target.get_untracked();
        let Some((kind, id)) = chosen.split_once(':') else {
            return;
        };
        let id = resolve_id(console, kind, id);
        let mut body = json!({ "note": note.get_untracked() });
        body[kind] = id;
        act(console, "transfer", body);
    };
    view! {
        <div class="overlay" data-test="transfer-dialog">
            <div class="dialog">
                <h2>{move || console.t(T::Transfer)}</h2>
                <select data-test="transfer-target" on:change=move |ev| target.set(event_target_value(&ev))>
                    <option value="">"—"</option>
                    <optgroup label=move || console.t(T::ToAgent)>
                        {agents.into_iter().map(|(id, label)| view! { <option value=format!("agent:{id}")>{label}</option> }).collect_view()}
                    </optgroup>
                    <optgroup label=move || console.t(T::ToTeam)>
                        {teams.into_iter().map(|(id, label)| view! { <option value=format!("team:{id}")>{label}</option> }).collect_view()}
                    </optgroup>
                </select>
                <textarea data-test="transfer-note" rows="2" placeholder=move || console.t(T::TransferNote)
                    prop:value=move || note.get() on:input=move |ev| note.set(event_target_value(&ev))></textarea>
                <div class="buttons">
                    <button type="button" on:click=move |_| console.dialog.set(None)>{move || console.t(T::Cancel)}</button>
                    <button type="button" class="primary" data-test="transfer-confirm"
                        disabled=move || target.with(String::is_empty) on:click=confirm>
                        {move || console.t(T::Confirm)}
                    </button>
                </div>
            </div>
        </div>
    }
}

/// The id to send for a transfer target, as the server wrote it (number or string).
fn resolve_id(console: Console, kind: &str, id: &str) -> Value {
    let from_agents = console.agents.with_untracked(|agents| {
        agents.iter().find_map(|a| match kind {
            "agent" => (a.id.to_string() == id).then(|| a.id.clone()),
            _ => team_id_and_name(&a.team)
                .map(|(team, _)| team)
                .filter(|team| team.to_string() == id),
        })
    });
    let from_user = console.user.with_untracked(|u| {
        u.as_ref()
            .map(|u| u.team.id.clone())
            .filter(|team| kind == "team" && team.to_string() == id)
    });
    from_agents
        .or(from_user)
        .and_then(|id| serde_json::to_value(id).ok())
        .unwrap_or_else(|| Value::String(id.to_owned()))
}

#[component]
fn HandBackDialog() -> impl IntoView {
    let console = expect_context::<Console>();
    let node = RwSignal::new(String::new());
    let path = console.context.with_untracked(|c| c.path.clone());
    let confirm = move |_| {
        let node = node.get_untracked();
        let body = if node.is_empty() {
            json!({})
        } else {
            json!({ "node": node })
        };
        act(console, "hand-back", body);
    };
    view! {
        <div class="overlay" data-test="handback-dialog">
            <div class="dialog">
                <h2>{move || console.t(T::HandBack)}</h2>
                <label>{move || console.t(T::NodeOptional)}
                    <select data-test="handback-node" on:change=move |ev| node.set(event_target_value(&ev))>
                        <option value="">{move || console.t(T::ContinueWhereLeft)}</option>
                        {path.into_iter().map(|step| {
                            let label = step.clone();
                            view! { <option value=step>{label}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <div class="buttons">
                    <button type="button" on:click=move |_| console.dialog.set(None)>{move || console.t(T::Cancel)}</button>
                    <button type="button" class="primary" data-test="handback-confirm" on:click=confirm>
                        {move || console.t(T::Confirm)}
                    </button>
                </div>
            </div>
        </div>
    }
}
