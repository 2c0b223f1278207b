//! The left pane: the Queue / Mine / All tabs and their conversation rows.

use leptos::prelude::*;

use super::api::Summary;
use super::i18n::{self, T};
use super::{Console, Tab};

#[component]
pub fn ConversationList() -> impl IntoView {
    let console = expect_context::<Console>();
    // "All" is read again when the admin opens it; while it is open (and also while it is not,
    // for its count) `Console::all_changed` keeps it live.
    Effect::new(move |_| {
        if console.tab.get() == Tab::All {
            console.refresh_all();
        }
    });
    let tab = move |tab: Tab, label: T, test: &'static str| {
        let count = move || console.list(tab).with(Vec::len);
        view! {
            <button type="button" data-test=test class:active=move || console.tab.get() == tab
                on:click=move |_| console.tab.set(tab)>
                {move || console.t(label)} " " <small>{count}</small>
            </button>
        }
    };
    let rows = move || console.list(console.tab.get()).get();
    view! {
        <nav class="list">
            <div class="tabs" role="tablist">
                {tab(Tab::Queue, T::Queue, "tab-queue")}
                {tab(Tab::Mine, T::Mine, "tab-mine")}
                <Show when=move || console.is_admin()>{tab(Tab::All, T::All, "tab-all")}</Show>
            </div>
            <Show when=move || console.list(console.tab.get()).with(Vec::is_empty)>
                <p class="empty" data-test="list-empty">{move || console.t(T::Empty)}</p>
            </Show>
            <ul>
                <For each=rows key=|s: &Summary| (s.id.clone(), s.unread, s.owner.clone(), s.status.clone(),
                    s.assignee.as_ref().map(|a| a.id.clone()))
                    children=move |summary: Summary| view! { <Row summary /> } />
            </ul>
        </nav>
    }
}

#[component]
fn Row(summary: Summary) -> impl IntoView {
    let console = expect_context::<Console>();
    let id = summary.id.clone();
    let selected = {
        let id = id.clone();
        move || console.selected.with(|s| s.as_deref() == Some(id.as_str()))
    };
    let waiting = {
        let since = summary.handed_off_at;
        move || since.map(|since| i18n::waited(console.lang.get(), console.now.get() - since))
    };
    let priority = summary.priority.clone();
    let priority_label = {
        let priority = priority.clone();
        move || i18n::priority(console.lang.get(), &priority).to_owned()
    };
    let reason = summary
        .reason
        .clone()
        .or_else(|| summary.last.as_ref().and_then(|l| l.text.clone()))
        .unwrap_or_default();
    let assignee = summary.assignee.as_ref().map(|a| a.name.clone());
    let unread = summary.unread;
    let open = id.clone();
    view! {
        <li data-test="conv-row" data-id=id data-status=summary.status
            class:selected=selected on:click=move |_| console.select(open.clone())>
            <div class="row-top">
                <span class=format!("badge priority-{priority}") data-test="priority">{priority_label}</span>
                <span class="reason" data-test="reason">{reason}</span>
                {(unread > 0).then(|| view! { <span class="unread" data-test="unread">{unread}</span> })}
            </div>
            <div class="row-bottom">
                <span class="flow">{summary.flow.clone()}</span>
                {assignee.map(|name| view! { <span class="assignee">{name}</span> })}
                <span class="waiting" data-test="waiting">{waiting}</span>
            </div>
        </li>
    }
}

/// `j` / `k`: opens the next or previous row of the current tab.
pub fn move_selection(console: Console, step: isize) {
    let ids: Vec<String> = console
        .list(console.tab.get_untracked())
        .with_untracked(|list| list.iter().map(|s| s.id.clone()).collect());
    if ids.is_empty() {
        return;
    }
    let current = console
        .selected
        .get_untracked()
        .and_then(|id| ids.iter().position(|other| *other == id));
    let next = match current {
        Some(at) => at.saturating_add_signed(step).min(ids.len() - 1),
        None => 0,
    };
    if let Some(id) = ids.get(next) {
        console.select(id.clone());
    }
}
