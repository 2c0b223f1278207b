//! The connectors page (admins only, docs/console-api.md `/api/admin/connectors*`): every
//! connector's health, breaker and statistics, a reload of the connectors file with its problems
//! when it is refused, and "test this entity": one call with the parameters typed in, and its
//! rows or its error.
//!
//! The page's state lives in `State`, owned by the `Console`, so that answers arriving after the
//! page was left land somewhere, and the test form keeps its choices between visits.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Map, Value, json};

use super::Console;
use super::api::{self, Connector, Operation, Param, Reload, TestAnswer};
use super::i18n::{self, T};

/// The connectors page's state: copyable handles, like `Console`'s.
#[derive(Clone, Copy)]
pub struct State {
    list: RwSignal<Vec<Connector>>,
    loading: RwSignal<bool>,
    load_error: RwSignal<Option<String>>,
    /// The last reload's answer.
    reload: RwSignal<Option<Reload>>,
    reloading: RwSignal<bool>,
    /// Counts the list requests, so that only the answer to the latest is shown.
    asked: StoredValue<u64>,
    /// The test form: the chosen connector, entity and operation, and the values typed in
    /// per parameter name (kept when another operation is chosen).
    connector: RwSignal<String>,
    entity: RwSignal<String>,
    operation: RwSignal<String>,
    params: RwSignal<BTreeMap<String, String>>,
    running: RwSignal<bool>,
    result: RwSignal<Option<TestAnswer>>,
    /// Counts the test calls, so that a slow answer does not replace a newer one.
    runs: StoredValue<u64>,
}

impl State {
    pub fn new() -> State {
        State {
            list: RwSignal::new(Vec::new()),
            loading: RwSignal::new(false),
            load_error: RwSignal::new(None),
            reload: RwSignal::new(None),
            reloading: RwSignal::new(false),
            asked: StoredValue::new(0),
            connector: RwSignal::new(String::new()),
            entity: RwSignal::new(String::new()),
            operation: RwSignal::new(String::new()),
            params: RwSignal::new(BTreeMap::new()),
            running: RwSignal::new(false),
            result: RwSignal::new(None),
            runs: StoredValue::new(0),
        }
    }

    /// Forgets everything (signing out): the next admin starts afresh.
    pub fn clear(self) {
        self.asked.update_value(|n| *n += 1);
        self.runs.update_value(|n| *n += 1);
        self.list.set(Vec::new());
        self.load_error.set(None);
        self.reload.set(None);
        self.connector.set(String::new());
        self.entity.set(String::new());
        self.operation.set(String::new());
        self.params.set(BTreeMap::new());
        self.running.set(false);
        self.result.set(None);
    }

    /// Reads the connectors again (each is pinged for its health on the way).
    fn refresh(self, console: Console) {
        self.asked.update_value(|n| *n += 1);
        let asked = self.asked.get_value();
        self.loading.set(true);
        spawn_local(async move {
            let answer = api::connectors().await;
            if self.asked.get_value() != asked {
                return;
            }
            self.loading.set(false);
            match answer {
                Ok(list) => {
                    self.load_error.set(None);
                    self.list.set(list);
                    self.settle();
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

    /// Reads the connectors file again; refused, its problems are shown.
    fn reload(self, console: Console) {
        if self.reloading.get_untracked() {
            return;
        }
        self.reloading.set(true);
        self.reload.set(None);
        let csrf = console.csrf.get_untracked();
        spawn_local(async move {
            let answer = api::reload_connectors(&csrf).await;
            self.reloading.set(false);
            match answer {
                Ok(reload) => {
                    let taken = reload.error.is_none();
                    self.reload.set(Some(reload));
                    if taken {
                        self.refresh(console);
                    }
                }
                Err(error) => console.fail(&error),
            }
        });
    }

    /// Keeps the test form's choices among what exists: the first connector, entity and
    /// operation when the chosen one is gone (or none was chosen yet).
    fn settle(self) {
        self.list.with_untracked(|list| {
            let connector = self.connector.get_untracked();
            let Some(connector) = list
                .iter()
                .find(|c| c.name == connector)
                .or_else(|| list.first())
            else {
                self.connector.set(String::new());
                self.entity.set(String::new());
                self.operation.set(String::new());
                return;
            };
            if self.connector.get_untracked() != connector.name {
                self.connector.set(connector.name.clone());
            }
            let entity = self.entity.get_untracked();
            let entity = connector
                .entities
                .iter()
                .find(|e| e.name == entity)
                .or_else(|| connector.entities.first());
            let entity_name = entity.map(|e| e.name.clone()).unwrap_or_default();
            if self.entity.get_untracked() != entity_name {
                self.entity.set(entity_name);
            }
            let operations = entity.map(|e| e.operations.as_slice()).unwrap_or_default();
            let operation = self.operation.get_untracked();
            let operation = operations
                .iter()
                .find(|o| o.name == operation)
                .or_else(|| operations.first())
                .map(|o| o.name.clone())
                .unwrap_or_default();
            if self.operation.get_untracked() != operation {
                self.operation.set(operation);
            }
        });
    }

    /// A choice of the test form changed: what depends on it follows, the old result goes.
    fn choose(self, what: RwSignal<String>, value: String) {
        what.set(value);
        self.settle();
        self.runs.update_value(|n| *n += 1);
        self.running.set(false);
        self.result.set(None);
    }

    fn chosen_connector(self) -> Option<Connector> {
        let name = self.connector.get();
        self.list
            .with(|list| list.iter().find(|c| c.name == name).cloned())
    }

    fn chosen_operation(self) -> Option<Operation> {
        let entity = self.entity.get();
        let operation = self.operation.get();
        self.chosen_connector()?
            .entities
            .into_iter()
            .find(|e| e.name == entity)?
            .operations
            .into_iter()
            .find(|o| o.name == operation)
    }

    /// Runs the chosen operation with the values typed in (empty ones are left out).
    fn run(self, console: Console) {
        let Some(operation) = self.chosen_operation() else {
            return;
        };
        let values = self.params.get_untracked();
        let params: Map<String, Value> = operation
            .params
            .iter()
            .filter_map(|param| {
                let value = values.get(&param.name)?.trim();
                (!value.is_empty()).then(|| (param.name.clone(), param_value(value)))
            })
            .collect();
        let body = json!({
            "connector": self.connector.get_untracked(),
            "entity": self.entity.get_untracked(),
            "operation": operation.name,
            "params": params,
        });
        self.runs.update_value(|n| *n += 1);
        let run = self.runs.get_value();
        self.running.set(true);
        self.result.set(None);
        let csrf = console.csrf.get_untracked();
        spawn_local(async move {
            let answer = api::test_connector(&body, &csrf).await;
            if self.runs.get_value() != run {
                return;
            }
            self.running.set(false);
            match answer {
                Ok(answer) => self.result.set(Some(answer)),
                Err(error) if error.status() == Some(401) => console.fail(&error),
                Err(error) => self.result.set(Some(TestAnswer {
                    error: Some(error.to_string()),
                    ..TestAnswer::default()
                })),
            }
            // A call changes the statistics in the table.
            self.refresh(console);
        });
    }
}

/// A typed-in parameter: a number when it is written as one (`42`, `9.5`; not `007`), else
/// text.
fn param_value(text: &str) -> Value {
    match serde_json::from_str::<serde_json::Number>(text) {
        Ok(number) if number.to_string() == text => Value::Number(number),
        _ => Value::String(text.to_owned()),
    }
}

/// The columns of a result: the entity's key first, then the fields as the rows have them.
fn columns(rows: &[Value], key: &str) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        if let Value::Object(row) = row {
            for name in row.keys() {
                if !columns.contains(name) {
                    columns.push(name.clone());
                }
            }
        }
    }
    if let Some(at) = columns.iter().position(|c| c == key) {
        let key = columns.remove(at);
        columns.insert(0, key);
    }
    columns
}

/// A latency for the table: one decimal, or a dash before the first call.
/// One line per cached entity: its hit ratio and loads; its hottest keys as the tooltip.
fn cache_lines(cache: &[api::EntityCache], loads: &'static str) -> impl IntoView + use<> {
    if cache.is_empty() {
        return view! { <span class="muted">"—"</span> }.into_any();
    }
    cache
        .iter()
        .map(|e| {
            let ratio = e
                .hit_ratio
                .map_or_else(|| "—".to_owned(), |r| format!("{:.0}%", r * 100.0));
            let hot: Vec<String> = e
                .hot_keys
                .iter()
                .map(|k| format!("{} ×{}", k.label, k.count))
                .collect();
            view! {
                <div title=hot.join("\n")>{e.entity.clone()} " " <strong>{ratio}</strong>
                    <span class="muted">{format!(" ({loads}: {})", e.loads)}</span></div>
            }
        })
        .collect_view()
        .into_any()
}

fn latency(ms: Option<f64>) -> String {
    ms.map_or_else(|| "—".to_owned(), |ms| format!("{ms:.1}"))
}

#[component]
pub fn ConnectorsPage() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.connectors;
    state.refresh(console);
    view! {
        <section class="admin" data-test="connectors-page">
            <div class="panel">
                <div class="panel-head">
                    <h2>{move || console.t(T::Connectors)}</h2>
                    <span class="muted" data-test="reload-done">
                        {move || state.reload.with(|r| match r {
                            Some(Reload { connectors: Some(n), error: None, .. }) => {
                                i18n::reloaded(console.lang.get(), *n)
                            }
                            _ => String::new(),
                        })}
                    </span>
                    <button type="button" data-test="refresh-button" disabled=move || state.loading.get()
                        on:click=move |_| state.refresh(console)>
                        {move || console.t(T::Refresh)}
                    </button>
                    <button type="button" data-test="reload-button" disabled=move || state.reloading.get()
                        on:click=move |_| state.reload(console)>
                        {move || console.t(T::Reload)}
                    </button>
                </div>
                <Problems />
                <Show when=move || state.load_error.with(Option::is_some)>
                    <p class="error" role="alert">{move || state.load_error.get().unwrap_or_default()}</p>
                </Show>
                <Table />
            </div>
            <Tester />
        </section>
    }
}

/// Why the connectors file was refused, with the line and column of each problem.
#[component]
fn Problems() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.connectors;
    move || {
        let Reload {
            error: Some(error),
            problems,
            ..
        } = state.reload.get()?
        else {
            return None;
        };
        let detail = problems.is_empty().then(|| view! { <p>{error}</p> });
        let problems = problems
            .into_iter()
            .map(|p| {
                view! {
                    <li><code>{format!("{}:{}", p.line, p.column)}</code> " " {p.message}</li>
                }
            })
            .collect_view();
        Some(view! {
            <div class="problems" data-test="reload-problems" role="alert">
                <strong>{move || console.t(T::ReloadRefused)}</strong>
                {detail}
                <ul>{problems}</ul>
            </div>
        })
    }
}

/// The table of connectors.
#[component]
fn Table() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.connectors;
    let row = move |c: Connector| {
        let healthy = c.healthy;
        let breaker = c.breaker.unwrap_or_default();
        let breaker_label = {
            let breaker = breaker.clone();
            move || i18n::breaker(console.lang.get(), &breaker).to_owned()
        };
        let breaker_class = format!("badge breaker-{breaker}");
        let data_name = c.name.clone();
        view! {
            <tr data-test="connector-row" data-name=data_name>
                <td>
                    <strong>{c.name}</strong>
                    <div class="muted">{c.driver} " · " <code>{c.target}</code></div>
                </td>
                <td data-test="connector-health" data-healthy=healthy.to_string()>
                    <span class="health">
                        <span class="dot" class:ok=healthy aria-hidden="true"></span>
                        {move || console.t(if healthy { T::Healthy } else { T::Unhealthy })}
                    </span>
                    {c.health_error.map(|e| view! { <div class="muted error">{e}</div> })}
                </td>
                <td data-test="connector-breaker">
                    {(!breaker.is_empty()).then(|| view! { <span class=breaker_class>{breaker_label}</span> })}
                </td>
                <td class="num" data-test="connector-calls">{c.calls}</td>
                <td class="num" data-test="connector-errors" class:bad=c.errors != 0>{c.errors}</td>
                <td class="num">{latency(c.latency_p50_ms)}</td>
                <td class="num">{latency(c.latency_p99_ms)}</td>
                <td data-test="connector-cache">{cache_lines(&c.cache, console.t(T::SourceReads))}</td>
                <td class="last-error" data-test="connector-last-error">
                    {c.last_error.unwrap_or_else(|| "—".to_owned())}
                </td>
            </tr>
        }
    };
    view! {
        <table class="grid connectors">
            <thead>
                <tr>
                    <th>{move || console.t(T::Name)}</th>
                    <th>{move || console.t(T::Health)}</th>
                    <th>{move || console.t(T::Breaker)}</th>
                    <th class="num">{move || console.t(T::Calls)}</th>
                    <th class="num">{move || console.t(T::Errors)}</th>
                    <th class="num">{move || console.t(T::LatencyP50)}</th>
                    <th class="num">{move || console.t(T::LatencyP99)}</th>
                    <th>{move || console.t(T::CacheHits)}</th>
                    <th>{move || console.t(T::LastError)}</th>
                </tr>
            </thead>
            <tbody>
                {move || state.list.get().into_iter().map(row).collect_view()}
            </tbody>
        </table>
        <Show when=move || !state.loading.get() && state.load_error.with(Option::is_none)
            && state.list.with(Vec::is_empty)>
            <p class="empty">{move || console.t(T::NoConnectors)}</p>
        </Show>
    }
}

/// "Test this entity": connector → entity → operation, its parameters, Run, and the answer.
#[component]
fn Tester() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.connectors;
    let connectors = Memo::new(move |_| {
        state
            .list
            .with(|list| list.iter().map(|c| c.name.clone()).collect::<Vec<_>>())
    });
    let entities = Memo::new(move |_| {
        state
            .chosen_connector()
            .map(|c| c.entities.into_iter().map(|e| e.name).collect::<Vec<_>>())
            .unwrap_or_default()
    });
    let operations = Memo::new(move |_| {
        let entity = state.entity.get();
        state
            .chosen_connector()
            .and_then(|c| c.entities.into_iter().find(|e| e.name == entity))
            .map(|e| e.operations.into_iter().map(|o| o.name).collect::<Vec<_>>())
            .unwrap_or_default()
    });
    let params = Memo::new(move |_| {
        state
            .chosen_operation()
            .map(|o| o.params)
            .unwrap_or_default()
    });
    let select =
        move |label: T, test: &'static str, what: RwSignal<String>, names: Memo<Vec<String>>| {
            let options = move || {
                names
                    .get()
                    .into_iter()
                    .map(|name| {
                        let selected = {
                            let name = name.clone();
                            move || what.with(|w| *w == name)
                        };
                        let value = name.clone();
                        view! { <option value=value prop:selected=selected>{name}</option> }
                    })
                    .collect_view()
            };
            view! {
                <label>
                    <span>{move || console.t(label)}</span>
                    <select data-test=test disabled=move || names.with(Vec::is_empty)
                        on:change=move |ev| state.choose(what, event_target_value(&ev))>
                        {options}
                    </select>
                </label>
            }
        };
    let param = move |param: Param| {
        let name = param.name.clone();
        let value = {
            let name = name.clone();
            move || {
                state
                    .params
                    .with(|p| p.get(&name).cloned().unwrap_or_default())
            }
        };
        let input = {
            let name = name.clone();
            move |ev| {
                let text = event_target_value(&ev);
                state.params.update(|p| {
                    p.insert(name.clone(), text);
                });
            }
        };
        let data_name = name.clone();
        view! {
            <label>
                <span>
                    {name}
                    {param.required.then(|| view! {
                        <abbr class="required" title=move || console.t(T::Required)>" *"</abbr>
                    })}
                </span>
                <input data-test="test-param" data-name=data_name required=param.required
                    prop:value=value on:input=input />
            </label>
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        state.run(console);
    };
    view! {
        <div class="panel">
            <div class="panel-head">
                <h2>{move || console.t(T::TestEntity)}</h2>
            </div>
            <form class="test-form" on:submit=submit>
                <div class="fields">
                    {select(T::Connector, "test-connector", state.connector, connectors)}
                    {select(T::Entity, "test-entity", state.entity, entities)}
                    {select(T::Operation, "test-operation", state.operation, operations)}
                </div>
                <fieldset class="fields">
                    <legend>{move || console.t(T::Params)}</legend>
                    {move || {
                        let params = params.get();
                        if params.is_empty() {
                            view! { <p class="muted">{move || console.t(T::NoParams)}</p> }.into_any()
                        } else {
                            params.into_iter().map(param).collect_view().into_any()
                        }
                    }}
                </fieldset>
                <div>
                    <button type="submit" class="primary" data-test="test-run"
                        disabled=move || state.running.get() || state.operation.with(String::is_empty)>
                        {move || console.t(T::Run)}
                    </button>
                </div>
            </form>
            <Answer />
        </div>
    }
}

/// The test call's rows as a table, or its error; how long it took.
#[component]
fn Answer() -> impl IntoView {
    let console = expect_context::<Console>();
    let state = console.connectors;
    move || {
        let answer = state.result.get()?;
        let ms = answer.ms;
        if let Some(error) = answer.error {
            let took = move || ms.map(|ms| i18n::millis(console.lang.get(), ms));
            return Some(
                view! {
                    <div class="result">
                        <p class="error" data-test="test-error" role="alert">{error}</p>
                        <p class="muted">{took}</p>
                    </div>
                }
                .into_any(),
            );
        }
        let key = state
            .chosen_connector()
            .and_then(|c| {
                let entity = state.entity.get_untracked();
                c.entities.into_iter().find(|e| e.name == entity)
            })
            .map(|e| e.key)
            .unwrap_or_default();
        let rows = answer.rows;
        let count = rows.len();
        let columns = columns(&rows, &key);
        let head = columns
            .iter()
            .map(|c| view! { <th>{c.clone()}</th> })
            .collect_view();
        let body = rows
            .into_iter()
            .map(|row| {
                let cells = if columns.is_empty() {
                    vec![api::display_value(&row)]
                } else {
                    columns
                        .iter()
                        .map(|c| row.get(c).map(api::display_value).unwrap_or_default())
                        .collect()
                };
                view! {
                    <tr data-test="test-row">
                        {cells.into_iter().map(|cell| view! { <td>{cell}</td> }).collect_view()}
                    </tr>
                }
            })
            .collect_view();
        let summary = move || i18n::rows_in(console.lang.get(), count, ms);
        Some(
            view! {
                <div class="result" data-test="test-result">
                    <p class="muted" data-test="test-ms">{summary}</p>
                    {if count == 0 {
                        view! { <p class="empty">{move || console.t(T::NoRows)}</p> }.into_any()
                    } else {
                        view! {
                            <div class="scroll">
                                <table class="grid rows">
                                    <thead><tr>{head}</tr></thead>
                                    <tbody>{body}</tbody>
                                </table>
                            </div>
                        }
                        .into_any()
                    }}
                </div>
            }
            .into_any(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_sent_as_numbers_only_when_written_as_one() {
        assert_eq!(param_value("42"), json!(42));
        assert_eq!(param_value("9.5"), json!(9.5));
        assert_eq!(param_value("007"), json!("007"));
        assert_eq!(param_value("KF100001"), json!("KF100001"));
        assert_eq!(param_value("1e3"), json!("1e3"));
    }

    #[test]
    fn the_key_comes_first() {
        let rows = [
            json!({"amount": 5, "order_no": "KF1", "status": "shipped"}),
            json!({"order_no": "KF2", "carrier": "SF"}),
        ];
        assert_eq!(
            columns(&rows, "order_no"),
            ["order_no", "amount", "status", "carrier"]
        );
        assert_eq!(columns(&rows, "missing")[0], "amount");
    }
}
