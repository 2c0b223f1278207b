//! The access page (admins only, docs/policies.md "In the server"): the policies in force and
//! an editor for them, "can X do Y on Z, and why", temporary grants, and the audit trail.
//!
//! Like the connectors page, its state lives in `State`, owned by the `Console`, so that answers
//! arriving after the page was left land somewhere, and a draft of the policies survives a look
//! at the conversations.

use leptos::html::Textarea;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};
use wasm_bindgen::JsValue;

use super::Console;
use super::api::{self, ApiError, CheckAnswer, Grant, Policies, PolicyCount, Problem, Refusal};
use super::i18n::{self, T};

/// What came of the last save or reload of the policies.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Saved(u64),
    Reloaded(PolicyCount),
    /// The text (`file: false`) or the file (`file: true`) does not load.
    Refused {
        file: bool,
        refusal: Refusal,
    },
    Conflict(String),
    Failed(String),
}

/// The access page's state: copyable handles, like `Console`'s.
#[derive(Clone, Copy)]
pub struct State {
    /// The policies in force, as last read.
    policies: RwSignal<Option<Policies>>,
    load_error: RwSignal<Option<String>>,
    /// The editor's text, and the revision it was loaded at (sent with a save, so that a save
    /// over someone else's is refused).
    draft: RwSignal<String>,
    revision: RwSignal<u64>,
    saving: RwSignal<bool>,
    outcome: RwSignal<Option<Outcome>>,
    editor: NodeRef<Textarea>,
    /// "Can X do Y on Z": the form and its answer (or the error of the call).
    who: RwSignal<String>,
    action: RwSignal<String>,
    resource: RwSignal<String>,
    channel: RwSignal<String>,
    ip: RwSignal<String>,
    checking: RwSignal<bool>,
    answer: RwSignal<Option<Result<CheckAnswer, String>>>,
    /// Counts the checks, so that a slow answer does not replace a newer one.
    checks: StoredValue<u64>,
    /// Temporary grants: the list and the form of a new one.
    grants: RwSignal<Vec<Grant>>,
    grants_error: RwSignal<Option<String>>,
    grant_subject: RwSignal<String>,
    grant_actions: RwSignal<String>,
    grant_resource: RwSignal<String>,
    /// A duration in milliseconds, or `until` for the date and time in `grant_until`.
    grant_duration: RwSignal<String>,
    grant_until: RwSignal<String>,
    grant_reason: RwSignal<String>,
    granting: RwSignal<bool>,
    grant_error: RwSignal<Option<String>>,
    /// The audit trail: the search form, the query of the search shown, its records (newest
    /// first, older pages appended) and where the next page starts.
    actor: RwSignal<String>,
    audit_action: RwSignal<String>,
    audit_resource: RwSignal<String>,
    from: RwSignal<String>,
    to: RwSignal<String>,
    searched: RwSignal<String>,
    records: RwSignal<Vec<api::StoredRecord>>,
    next: RwSignal<Option<u64>>,
    searching: RwSignal<bool>,
    audit_error: RwSignal<Option<String>>,
    /// Counts the searches, so that only the latest one's answer is shown.
    searches: StoredValue<u64>,
}

/// The durations offered for a grant, in milliseconds.
const DURATIONS: [(T, &str); 3] = [
    (T::OneHour, "3600000"),
    (T::OneDay, "86400000"),
    (T::SevenDays, "604800000"),
];
const UNTIL: &str = "until";
/// Records per page of the audit trail.
const AUDIT_PAGE: usize = 50;

impl State {
    pub fn new() -> State {
        State {
            policies: RwSignal::new(None),
            load_error: RwSignal::new(None),
            draft: RwSignal::new(String::new()),
            revision: RwSignal::new(0),
            saving: RwSignal::new(false),
            outcome: RwSignal::new(None),
            editor: NodeRef::new(),
            who: RwSignal::new(String::new()),
            action: RwSignal::new("read".to_owned()),
            resource: RwSignal::new(String::new()),
            channel: RwSignal::new("console".to_owned()),
            ip: RwSignal::new(String::new()),
            checking: RwSignal::new(false),
            answer: RwSignal::new(None),
            checks: StoredValue::new(0),
            grants: RwSignal::new(Vec::new()),
            grants_error: RwSignal::new(None),
            grant_subject: RwSignal::new(String::new()),
            grant_actions: RwSignal::new("read".to_owned()),
            grant_resource: RwSignal::new(String::new()),
            grant_duration: RwSignal::new(DURATIONS[0].1.to_owned()),
            grant_until: RwSignal::new(String::new()),
            grant_reason: RwSignal::new(String::new()),
            granting: RwSignal::new(false),
            grant_error: RwSignal::new(None),
            actor: RwSignal::new(String::new()),
            audit_action: RwSignal::new(String::new()),
            audit_resource: RwSignal::new(String::new()),
            from: RwSignal::new(String::new()),
            to: RwSignal::new(String::new()),
            searched: RwSignal::new(String::new()),
            records: RwSignal::new(Vec::new()),
            next: RwSignal::new(None),
            searching: RwSignal::new(false),
            audit_error: RwSignal::new(None),
            searches: StoredValue::new(0),
        }
    }

    /// Forgets everything (signing out): the next admin starts afresh.
    pub fn clear(self) {
        self.checks.update_value(|n| *n += 1);
        self.searches.update_value(|n| *n += 1);
        self.policies.set(None);
        self.load_error.set(None);
        self.draft.set(String::new());
        self.revision.set(0);
        self.outcome.set(None);
        self.who.set(String::new());
        self.resource.set(String::new());
        self.ip.set(String::new());
        self.checking.set(false);
        self.answer.set(None);
        self.grants.set(Vec::new());
        self.grants_error.set(None);
        self.grant_subject.set(String::new());
        self.grant_resource.set(String::new());
        self.grant_reason.set(String::new());
        self.grant_error.set(None);
        self.actor.set(String::new());
        self.audit_action.set(String::new());
        self.audit_resource.set(String::new());
        self.from.set(String::new());
        self.to.set(String::new());
        self.searched.set(String::new());
        self.records.set(Vec::new());
        self.next.set(None);
        self.searching.set(false);
        self.audit_error.set(None);
    }

    /// Whether the editor holds changes not saved.
    fn edited(self) -> bool {
        self.policies.with(|p| {
            p.as_ref()
                .is_some_and(|p| self.draft.with(|d| *d != p.text))
        })
    }

    /// Reads the policies in force; the editor takes their text unless it holds changes
    /// (`keep_draft`), which "Load again" throws away.
    fn load_policies(self, console: Console, keep_draft: bool) {
        spawn_local(async move {
            match api::policies().await {
                Ok(policies) => {
                    self.load_error.set(None);
                    if !(keep_draft && untrack(|| self.edited())) {
                        self.draft.set(policies.text.clone());
                        self.revision.set(policies.revision);
                    }
                    self.policies.set(Some(policies));
                }
                Err(error) => {
                    if error.status() == Some(401) {
                        console.fail(&error);
                    }
                    self.load_error.set(Some(error.to_string()));
                }
            }
        });
    }

    fn save(self, console: Console) {
        if self.saving.get_untracked() {
            return;
        }
        self.saving.set(true);
        self.outcome.set(None);
        let text = self.draft.get_untracked();
        let revision = self.revision.get_untracked();
        let csrf = console.csrf.get_untracked();
        spawn_local(async move {
            let answer = api::save_policies(&text, revision, &csrf).await;
            self.saving.set(false);
            let outcome = match answer {
                Ok(api::SaveAnswer::Saved(policies)) => {
                    let revision = policies.revision;
                    self.draft.set(policies.text.clone());
                    self.revision.set(revision);
                    self.policies.set(Some(policies));
                    Outcome::Saved(revision)
                }
                Ok(api::SaveAnswer::Invalid(refusal)) => Outcome::Refused {
                    file: false,
                    refusal,
                },
                Ok(api::SaveAnswer::Conflict(error)) => Outcome::Conflict(error),
                Err(error) => failed(console, &error),
            };
            self.outcome.set(Some(outcome));
        });
    }

    /// Re-reads the policy file (the server's `--policies` file, or the bundled one).
    fn reload_file(self, console: Console) {
        if self.saving.get_untracked() {
            return;
        }
        self.saving.set(true);
        self.outcome.set(None);
        let csrf = console.csrf.get_untracked();
        spawn_local(async move {
            let answer = api::reload_policies(&csrf).await;
            self.saving.set(false);
            let outcome = match answer {
                Ok(Ok(count)) => {
                    self.load_policies(console, false);
                    Outcome::Reloaded(count)
                }
                Ok(Err(refusal)) => Outcome::Refused {
                    file: true,
                    refusal,
                },
                Err(error) => failed(console, &error),
            };
            self.outcome.set(Some(outcome));
        });
    }

    /// Puts the editor's caret where a problem is.
    fn show_problem(self, problem: &Problem) {
        let Some(editor) = self.editor.get_untracked() else {
            return;
        };
        let offset = self
            .draft
            .with_untracked(|text| caret_offset(text, problem.line, problem.column));
        let _ = editor.focus();
        let _ = editor.set_selection_range(offset, offset);
        // Bring the line into view: the editor's lines are 20 px high (style.rs).
        let line = i32::try_from(problem.line.saturating_sub(1)).unwrap_or(0);
        editor.set_scroll_top((line * 20 - 60).max(0));
    }

    fn check(self, console: Console) {
        let mut context = serde_json::Map::new();
        for (name, value) in [("channel", self.channel), ("ip", self.ip)] {
            let value = value.get_untracked().trim().to_owned();
            if !value.is_empty() {
                context.insert(name.to_owned(), Value::String(value));
            }
        }
        let body = json!({
            "subject": { "login": self.who.get_untracked().trim() },
            "action": self.action.get_untracked().trim(),
            "resource": self.resource.get_untracked().trim(),
            "context": context,
        });
        self.checks.update_value(|n| *n += 1);
        let asked = self.checks.get_value();
        self.checking.set(true);
        self.answer.set(None);
        let csrf = console.csrf.get_untracked();
        spawn_local(async move {
            let answer = api::check_policy(&body, &csrf).await;
            if self.checks.get_value() != asked {
                return;
            }
            self.checking.set(false);
            match answer {
                Ok(answer) => self.answer.set(Some(Ok(answer))),
                Err(error) if error.status() == Some(401) => console.fail(&error),
                Err(error) => self.answer.set(Some(Err(error.to_string()))),
            }
        });
    }

    fn load_grants(self, console: Console) {
        spawn_local(async move {
            match api::grants().await {
                Ok(grants) => {
                    self.grants_error.set(None);
                    self.grants.set(grants);
                }
                Err(error) => {
                    if error.status() == Some(401) {
                        console.fail(&error);
                    }
                    self.grants_error.set(Some(error.to_string()));
                }
            }
        });
    }

    fn grant(self, console: Console) {
        if self.granting.get_untracked() {
            return;
        }
        let lang = console.lang.get_untracked();
        let duration = self.grant_duration.get_untracked();
        let expires_at = if duration == UNTIL {
            local_time_ms(&self.grant_until.get_untracked())
        } else {
            duration
                .parse::<f64>()
                .ok()
                .map(|ms| js_sys::Date::now() + ms)
        };
        let Some(expires_at) = expires_at else {
            self.grant_error
                .set(Some(T::Expires.get(lang).to_owned() + " ?"));
            return;
        };
        let body = json!({
            "subject": self.grant_subject.get_untracked().trim(),
            "actions": actions(&self.grant_actions.get_untracked()),
            "resource": self.grant_resource.get_untracked().trim(),
            "expires_at": expires_at.round() as i64,
            "reason": self.grant_reason.get_untracked().trim(),
        });
        self.granting.set(true);
        self.grant_error.set(None);
        let csrf = console.csrf.get_untracked();
        spawn_local(async move {
            let answer = api::create_grant(&body, &csrf).await;
            self.granting.set(false);
            match answer {
                Ok(_) => {
                    self.grant_reason.set(String::new());
                    self.load_grants(console);
                }
                Err(error) if error.status() == Some(401) => console.fail(&error),
                Err(error) => self.grant_error.set(Some(error.to_string())),
            }
        });
    }

    fn revoke(self, console: Console, id: String) {
        let csrf = console.csrf.get_untracked();
        spawn_local(async move {
            match api::revoke_grant(&id, &csrf).await {
                // Already gone (revoked elsewhere) is what was wanted.
                Ok(()) | Err(ApiError::Status { status: 404, .. }) => {
                    self.grants.update(|g| g.retain(|g| g.id != id));
                    self.load_grants(console);
                }
                Err(error) => console.fail(&error),
            }
        });
    }

    /// The filters typed in, as the audit API's query (without `before` and `limit`).
    fn filters(self) -> String {
        let time = |value: RwSignal<String>| {
            local_time_ms(&value.get_untracked())
                .map(|ms| format!("{}", ms.round() as i64))
                .unwrap_or_default()
        };
        audit_query(&[
            ("actor", self.actor.get_untracked().trim().to_owned()),
            (
                "action",
                self.audit_action.get_untracked().trim().to_owned(),
            ),
            (
                "resource",
                self.audit_resource.get_untracked().trim().to_owned(),
            ),
            ("from", time(self.from)),
            ("to", time(self.to)),
        ])
    }

    /// Searches the audit trail with the filters typed in (`older: false`), or reads the page
    /// after the records shown.
    fn search(self, console: Console, older: bool) {
        let (query, before) = if older {
            match self.next.get_untracked() {
                Some(next) => (self.searched.get_untracked(), Some(next)),
                None => return,
            }
        } else {
            (self.filters(), None)
        };
        let mut url = query.clone();
        for (name, value) in [
            ("before", before.map(|b| b.to_string())),
            ("limit", Some(AUDIT_PAGE.to_string())),
        ] {
            if let Some(value) = value {
                if !url.is_empty() {
                    url.push('&');
                }
                url.push_str(&format!("{name}={value}"));
            }
        }
        self.searches.update_value(|n| *n += 1);
        let asked = self.searches.get_value();
        self.searching.set(true);
        spawn_local(async move {
            let answer = api::audit(&url).await;
            if self.searches.get_value() != asked {
                return;
            }
            self.searching.set(false);
            match answer {
                Ok(page) => {
                    self.audit_error.set(None);
                    self.searched.set(query);
                    if older {
                        self.records.update(|r| r.extend(page.records));
                    } else {
                        self.records.set(page.records);
                    }
                    self.next.set(page.next);
                }
                Err(error) => {
                    if error.status() == Some(401) {
                        console.fail(&error);
                    }
                    self.audit_error.set(Some(error.to_string()));
                }
            }
        });
    }
}

/// A failed save or reload: a 401 signs out, anything else is shown by the editor.
fn failed(console: Console, error: &ApiError) -> Outcome {
    if error.status() == Some(401) {
        console.fail(error);
    }
    Outcome::Failed(error.to_string())
}

/// The offset (in UTF-16 code units, what a textarea's selection counts) of 1-based `line`
/// and `column` (in characters) in `text`; the end of the line or text when they are past it.
fn caret_offset(text: &str, line: u64, column: u64) -> u32 {
    let mut offset = 0usize;
    let mut lines = text.split('\n');
    for _ in 1..line.max(1) {
        match lines.next() {
            Some(before) => offset += before.encode_utf16().count() + 1,
            None => break,
        }
    }
    let here = lines.next().unwrap_or_default();
    let column = usize::try_from(column.max(1) - 1).unwrap_or(usize::MAX);
    offset += here
        .chars()
        .take(column)
        .map(char::len_utf16)
        .sum::<usize>();
    u32::try_from(offset.min(text.encode_utf16().count())).unwrap_or(u32::MAX)
}

/// The actions typed in, separated by commas or spaces.
fn actions(text: &str) -> Vec<String> {
    text.split([',', ' ', '，'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A query string of the non-empty `(name, value)` pairs, percent-encoded.
fn audit_query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", percent(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A `datetime-local` input's value (`2026-11-27T14:05`, local time) in ms since the epoch.
fn local_time_ms(value: &str) -> Option<f64> {
    if value.trim().is_empty() {
        return None;
    }
    let ms = js_sys::Date::new(&JsValue::from_str(value.trim())).get_time();
    (!ms.is_nan()).then_some(ms)
}

/// A time for tables: `2026-11-27 14:05:09`, local.
fn when(ms: f64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(ms));
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}",
        date.get_full_year(),
        date.get_month() + 1,
        date.get_date(),
        date.get_hours(),
        date.get_minutes(),
        date.get_seconds()
    )
}

/// A labelled text input bound to `value`.
fn field(
    console: Console,
    label: T,
    test: &'static str,
    value: RwSignal<String>,
    placeholder: &'static str,
) -> impl IntoView {
    view! {
        <label>
            <span>{move || console.t(label)}</span>
            <input data-test=test placeholder=placeholder prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev)) />
        </label>
    }
}

#[component]
pub fn AccessPage() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.access;
    state.load_policies(console, true);
    state.load_grants(console);
    if state.searched.with_untracked(String::is_empty)
        && state.records.with_untracked(Vec::is_empty)
    {
        state.search(console, false);
    }
    view! {
        <section class="admin access" data-test="access-page">
            <PolicyEditor />
            <Check />
            <Grants />
            <Audit />
        </section>
    }
}

/// The policies in force, where they come from, and the editor.
#[component]
fn PolicyEditor() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.access;
    let source = move || {
        state.policies.with(|p| {
            p.as_ref()
                .map(|p| i18n::policy_source(console.lang.get(), &p.source, &p.name))
        })
    };
    let revision = move || {
        state.policies.with(|p| {
            p.as_ref().map(|p| {
                let lang = console.lang.get();
                let mut line = i18n::revision(lang, p.revision, p.updated_by.as_deref());
                if let Some(at) = p.updated_at {
                    line.push_str(&format!(" · {}", when(at)));
                }
                line.push_str(" · ");
                line.push_str(&i18n::in_force(lang, p.policies, p.sandboxes));
                line
            })
        })
    };
    let data_source = move || {
        state
            .policies
            .with(|p| p.as_ref().map(|p| p.source.clone()))
    };
    let data_revision = move || {
        state
            .policies
            .with(|p| p.as_ref().map(|p| p.revision.to_string()))
    };
    view! {
        <div class="panel">
            <div class="panel-head">
                <h2 data-test="policies-title">{move || console.t(T::Policies)}</h2>
                <Show when=move || state.edited()>
                    <span class="badge unsaved" data-test="policies-unsaved">{move || console.t(T::Unsaved)}</span>
                </Show>
                <button type="button" data-test="policies-load" on:click=move |_| {
                    state.outcome.set(None);
                    state.load_policies(console, false);
                }>
                    {move || console.t(T::LoadAgain)}
                </button>
                <button type="button" data-test="policies-reload" disabled=move || state.saving.get()
                    on:click=move |_| state.reload_file(console)>
                    {move || console.t(T::Reload)}
                </button>
                <button type="button" class="primary" data-test="policies-save"
                    disabled=move || state.saving.get() || state.policies.with(Option::is_none)
                    on:click=move |_| state.save(console)>
                    {move || console.t(T::Save)}
                </button>
            </div>
            <p class="muted policy-info">
                <span data-test="policies-source" data-source=data_source>{source}</span>
                " · "
                <span data-test="policies-revision" data-revision=data_revision>{revision}</span>
            </p>
            <Show when=move || state.load_error.with(Option::is_some)>
                <p class="error" role="alert" data-test="policies-error">{move || state.load_error.get().unwrap_or_default()}</p>
            </Show>
            <PolicyOutcome />
            <textarea class="policy-editor" data-test="policies-editor" spellcheck="false" rows="22"
                node_ref=state.editor
                prop:value=move || state.draft.get()
                on:input=move |ev| state.draft.set(event_target_value(&ev))></textarea>
        </div>
    }
}

/// The last save's or reload's outcome: the new revision, or why nothing changed.
#[component]
fn PolicyOutcome() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.access;
    move || {
        let view = match state.outcome.get()? {
            Outcome::Saved(revision) => view! {
                <p class="ok" data-test="policies-saved" role="status">
                    {move || i18n::policies_saved(console.lang.get(), revision)}
                </p>
            }
            .into_any(),
            Outcome::Reloaded(count) => view! {
                <p class="ok" data-test="policies-reloaded" role="status">
                    {move || i18n::in_force(console.lang.get(), count.policies, count.sandboxes)}
                </p>
            }
            .into_any(),
            Outcome::Refused { file, refusal } => {
                let title = if file {
                    T::PolicyFileRefused
                } else {
                    T::PoliciesRefused
                };
                let detail = refusal
                    .problems
                    .is_empty()
                    .then(|| view! { <p>{refusal.error.clone()}</p> });
                let problems = refusal
                    .problems
                    .into_iter()
                    .map(|p| {
                        let at = format!("{}:{}", p.line, p.column);
                        let (line, column) = (p.line, p.column);
                        let message = p.message.clone();
                        view! {
                            <li data-test="policy-problem" data-line=line data-column=column>
                                <button type="button" class="link" on:click=move |_| state.show_problem(&p)>
                                    <code>{at}</code>
                                </button>
                                " " {message}
                            </li>
                        }
                    })
                    .collect_view();
                view! {
                    <div class="problems" data-test="policies-problems" role="alert">
                        <strong>{move || console.t(title)}</strong>
                        {detail}
                        <ul>{problems}</ul>
                    </div>
                }
                .into_any()
            }
            Outcome::Conflict(error) => view! {
                <div class="problems" data-test="policies-conflict" role="alert">
                    <strong>{move || console.t(T::PoliciesConflict)}</strong>
                    <p>{error}</p>
                </div>
            }
            .into_any(),
            Outcome::Failed(error) => view! {
                <p class="error" data-test="policies-failed" role="alert">{error}</p>
            }
            .into_any(),
        };
        Some(view)
    }
}

/// "Can X do Y on Z, and why".
#[component]
fn Check() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.access;
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        state.check(console);
    };
    view! {
        <div class="panel">
            <div class="panel-head">
                <h2 data-test="check-title">{move || console.t(T::CheckAccess)}</h2>
            </div>
            <form class="test-form" on:submit=submit>
                <div class="fields">
                    {field(console, T::Login, "check-login", state.who, "li")}
                    {field(console, T::Action, "check-action", state.action, "read")}
                    {field(console, T::Resource, "check-resource", state.resource, "customers::li.na@example.com")}
                    {field(console, T::ChannelOptional, "check-channel", state.channel, "console")}
                    {field(console, T::IpOptional, "check-ip", state.ip, "10.1.2.3")}
                    <button type="submit" class="primary" data-test="check-run"
                        disabled=move || state.checking.get() || state.who.with(|w| w.trim().is_empty())
                            || state.resource.with(|r| r.trim().is_empty())>
                        {move || console.t(T::Check)}
                    </button>
                </div>
            </form>
            <CheckResult />
        </div>
    }
}

#[component]
fn CheckResult() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.access;
    move || {
        let answer = match state.answer.get()? {
            Ok(answer) => answer,
            Err(error) => {
                return Some(
                    view! {
                        <div class="result">
                            <p class="error" data-test="check-error" role="alert">{error}</p>
                        </div>
                    }
                    .into_any(),
                );
            }
        };
        let allowed = answer.allowed;
        let decided_by = answer.decided_by.clone();
        let decided = move || match &decided_by {
            Some(id) => format!("{}: {id}", console.t(T::DecidedBy)),
            None => console.t(T::DeniedByDefault).to_owned(),
        };
        let matched = answer
            .matched
            .into_iter()
            .map(|m| {
                let outcome = m.outcome.clone();
                let outcome_label = move || i18n::outcome(console.lang.get(), &outcome).to_owned();
                let error = match &m.error {
                    Value::Null => None,
                    Value::String(text) => Some(text.clone()),
                    other => Some(other.to_string()),
                };
                let (data_id, data_outcome) = (m.id.clone(), m.outcome.clone());
                view! {
                    <tr data-test="check-matched" data-id=data_id data-outcome=data_outcome>
                        <td>{m.kind}</td>
                        <td><code>{m.id}</code></td>
                        <td><span class=format!("badge effect-{}", m.effect)>{m.effect.clone()}</span></td>
                        <td>{outcome_label}{error.map(|e| view! { <div class="muted">{e}</div> })}</td>
                        <td>
                            {m.description}
                            {m.condition.map(|c| view! { <div><code>{c}</code></div> })}
                        </td>
                        <td class="num">{m.line}</td>
                    </tr>
                }
            })
            .collect_view();
        Some(
            view! {
                <div class="result" data-test="check-result" data-allowed=allowed.to_string()
                    data-subject=answer.subject data-resource=answer.resource>
                    <p class="verdict" class:allowed=allowed class:denied=!allowed data-test="check-verdict">
                        {move || console.t(if allowed { T::Allowed } else { T::Denied })}
                    </p>
                    <p data-test="check-decided-by">{decided}</p>
                    <h3>{move || console.t(T::Explanation)}</h3>
                    <pre class="explanation" data-test="check-explanation">{answer.explanation}</pre>
                    <table class="grid"><tbody>{matched}</tbody></table>
                </div>
            }
            .into_any(),
        )
    }
}

/// Temporary grants: the list, revoking, and a form for a new one.
#[component]
fn Grants() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.access;
    let row = move |grant: Grant| {
        let active = move || grant.active && grant.expires_at > console.now.get();
        let id = grant.id.clone();
        let status = move || console.t(if active() { T::Active } else { T::Expired });
        view! {
            <tr data-test="grant-row" data-id=grant.id data-active=move || active().to_string()
                class:expired=move || !active()>
                <td><code>{grant.subject.clone()}</code></td>
                <td>{grant.actions.join(", ")}</td>
                <td><code>{grant.resource.clone()}</code></td>
                <td>{when(grant.expires_at)}</td>
                <td><span class="badge" class:badge-ok=active data-test="grant-status">{status}</span></td>
                <td>{grant.granted_by.clone()}</td>
                <td class="last-error">{grant.reason.clone()}</td>
                <td>
                    <button type="button" class="danger" data-test="grant-revoke"
                        on:click=move |_| state.revoke(console, id.clone())>
                        {move || console.t(T::Revoke)}
                    </button>
                </td>
            </tr>
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        state.grant(console);
    };
    let durations = move || {
        DURATIONS
            .iter()
            .map(|(label, ms)| (*label, *ms))
            .chain([(T::Until, UNTIL)])
            .map(|(label, value)| {
                view! {
                    <option value=value prop:selected=move || state.grant_duration.with(|d| d == value)>
                        {move || console.t(label)}
                    </option>
                }
            })
            .collect_view()
    };
    view! {
        <div class="panel">
            <div class="panel-head">
                <h2 data-test="grants-title">{move || console.t(T::Grants)}</h2>
                <button type="button" data-test="grants-refresh" on:click=move |_| state.load_grants(console)>
                    {move || console.t(T::Refresh)}
                </button>
            </div>
            <Show when=move || state.grants_error.with(Option::is_some)>
                <p class="error" role="alert">{move || state.grants_error.get().unwrap_or_default()}</p>
            </Show>
            <table class="grid" data-test="grants">
                <thead>
                    <tr>
                        <th>{move || console.t(T::Subject)}</th>
                        <th>{move || console.t(T::Action)}</th>
                        <th>{move || console.t(T::Resource)}</th>
                        <th>{move || console.t(T::Expires)}</th>
                        <th></th>
                        <th>{move || console.t(T::GrantedBy)}</th>
                        <th>{move || console.t(T::GrantReason)}</th>
                        <th></th>
                    </tr>
                </thead>
                <tbody>{move || state.grants.get().into_iter().map(row).collect_view()}</tbody>
            </table>
            <Show when=move || state.grants.with(Vec::is_empty) && state.grants_error.with(Option::is_none)>
                <p class="empty" data-test="grants-empty">{move || console.t(T::NoGrants)}</p>
            </Show>
            <form class="test-form grant-form" on:submit=submit>
                <div class="fields">
                    {field(console, T::Subject, "grant-subject", state.grant_subject, "agent:li / team:sales")}
                    {field(console, T::ActionsComma, "grant-actions", state.grant_actions, "read")}
                    {field(console, T::Resource, "grant-resource", state.grant_resource, "customers::*")}
                    <label>
                        <span>{move || console.t(T::Expires)}</span>
                        <select data-test="grant-duration"
                            on:change=move |ev| state.grant_duration.set(event_target_value(&ev))>
                            {durations}
                        </select>
                    </label>
                    <Show when=move || state.grant_duration.with(|d| d == UNTIL)>
                        <label>
                            <span>{move || console.t(T::Until)}</span>
                            <input type="datetime-local" data-test="grant-until"
                                prop:value=move || state.grant_until.get()
                                on:input=move |ev| state.grant_until.set(event_target_value(&ev)) />
                        </label>
                    </Show>
                    {field(console, T::GrantReason, "grant-reason", state.grant_reason, "")}
                    <button type="submit" class="primary" data-test="grant-create"
                        disabled=move || state.granting.get()>
                        {move || console.t(T::GrantAction)}
                    </button>
                </div>
            </form>
            <Show when=move || state.grant_error.with(Option::is_some)>
                <p class="error" data-test="grant-error" role="alert">{move || state.grant_error.get().unwrap_or_default()}</p>
            </Show>
        </div>
    }
}

/// The audit trail: search, newest first, older pages, export.
#[component]
fn Audit() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.access;
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        state.search(console, false);
    };
    let time = move |label: T, test: &'static str, value: RwSignal<String>| {
        view! {
            <label>
                <span>{move || console.t(label)}</span>
                <input type="datetime-local" data-test=test prop:value=move || value.get()
                    on:input=move |ev| value.set(event_target_value(&ev)) />
            </label>
        }
    };
    let export = move || {
        state.searched.with(|query| {
            if query.is_empty() {
                "/api/admin/audit/export".to_owned()
            } else {
                format!("/api/admin/audit/export?{query}")
            }
        })
    };
    let row = move |stored: api::StoredRecord| {
        let r = stored.record;
        let decision = r.decision.clone();
        let decision_label = move || i18n::decision(console.lang.get(), &decision).to_owned();
        let (actor, action, resource) = (r.actor.clone(), r.action.clone(), r.resource.clone());
        view! {
            <tr data-test="audit-row" data-seq=stored.seq data-actor=actor
                data-action=action data-resource=resource data-decision=r.decision>
                <td class="nowrap">{when(r.at_ms)}</td>
                <td>{r.actor}</td>
                <td>{r.action}</td>
                <td><code>{r.resource}</code></td>
                <td><span class=format!("badge effect-{}", r.decision)>{decision_label}</span></td>
                <td><code>{r.policies.join(", ")}</code></td>
                <td>{r.ip.unwrap_or_default()}</td>
                <td class="num">{r.result_size}</td>
            </tr>
        }
    };
    view! {
        <div class="panel">
            <div class="panel-head">
                <h2 data-test="audit-title">{move || console.t(T::AuditTrail)}</h2>
                <a class="button" data-test="audit-export" href=export download="kefu-audit.jsonl">
                    {move || console.t(T::Export)}
                </a>
            </div>
            <form class="test-form" on:submit=submit>
                <div class="fields">
                    {field(console, T::Actor, "audit-actor", state.actor, "li")}
                    {field(console, T::Action, "audit-action", state.audit_action, "read")}
                    {field(console, T::ResourcePrefix, "audit-resource", state.audit_resource, "customers::")}
                    {time(T::From, "audit-from", state.from)}
                    {time(T::To, "audit-to", state.to)}
                    <button type="submit" class="primary" data-test="audit-search" disabled=move || state.searching.get()>
                        {move || console.t(T::Search)}
                    </button>
                </div>
            </form>
            <Show when=move || state.audit_error.with(Option::is_some)>
                <p class="error" data-test="audit-error" role="alert">{move || state.audit_error.get().unwrap_or_default()}</p>
            </Show>
            <div class="scroll">
                <table class="grid" data-test="audit">
                    <thead>
                        <tr>
                            <th>{move || console.t(T::Time)}</th>
                            <th>{move || console.t(T::Actor)}</th>
                            <th>{move || console.t(T::Action)}</th>
                            <th>{move || console.t(T::Resource)}</th>
                            <th>{move || console.t(T::Decision)}</th>
                            <th>{move || console.t(T::Policies)}</th>
                            <th>"IP"</th>
                            <th class="num">{move || console.t(T::ResultSize)}</th>
                        </tr>
                    </thead>
                    <tbody>{move || state.records.get().into_iter().map(row).collect_view()}</tbody>
                </table>
            </div>
            <Show when=move || state.records.with(Vec::is_empty) && !state.searching.get()
                && state.audit_error.with(Option::is_none)>
                <p class="empty" data-test="audit-empty">{move || console.t(T::NoRecords)}</p>
            </Show>
            <Show when=move || state.next.with(Option::is_some)>
                <button type="button" data-test="audit-older" disabled=move || state.searching.get()
                    on:click=move |_| state.search(console, true)>
                    {move || console.t(T::Older)}
                </button>
            </Show>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caret_goes_to_the_line_and_column() {
        let text = "policy {\n  effect = \"alow\"\n}";
        assert_eq!(caret_offset(text, 1, 1), 0);
        assert_eq!(caret_offset(text, 2, 12), 9 + 11);
        // Past the end of a line, or of the text: the end.
        assert_eq!(caret_offset(text, 3, 40), 28);
        assert_eq!(caret_offset(text, 9, 1), 28);
        // Columns count characters; the selection counts UTF-16 units.
        assert_eq!(caret_offset("# 策略 😀\nx", 1, 6), 5);
        assert_eq!(caret_offset("# 策略 😀\nx", 2, 1), 8);
    }

    #[test]
    fn actions_are_split_on_commas_and_spaces() {
        assert_eq!(
            actions(" read, write  export，x"),
            ["read", "write", "export", "x"]
        );
        assert!(actions(" , ").is_empty());
    }

    #[test]
    fn the_audit_query_leaves_out_empty_filters_and_encodes_the_rest() {
        let query = audit_query(&[
            ("actor", "sales".to_owned()),
            ("action", String::new()),
            ("resource", "customers::li.na@example.com".to_owned()),
            ("from", "1767225600000".to_owned()),
        ]);
        assert_eq!(
            query,
            "actor=sales&resource=customers%3A%3Ali.na%40example.com&from=1767225600000"
        );
        assert_eq!(percent("a b&c=中"), "a%20b%26c%3D%E4%B8%AD");
    }
}
