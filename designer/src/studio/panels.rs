//! Everything around the canvas: the top bar, the side panel (inspector, problems, outline,
//! preview, versions), the dialogs (publish, Rust, command palette, shortcuts), the banner of
//! a refused save, and the keyboard shortcuts.

use leptos::prelude::*;
use leptos::task::spawn_local;

use flows::Severity;
use flows::model::Position;

use super::api::{self, VersionInfo};
use super::geometry::{self, Direction};
use super::inspector::Inspector;
use super::kinds::kind;
use super::preview::Preview;
use super::{Dialog, Flashes, LangSwitch, Panel, Studio, read_file};
use crate::editor::Selection;

#[component]
pub fn TopBar() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let title = move || {
        studio.doc.with(|f| {
            let name = f
                .name
                .pick(studio.lang.get().tag(), &f.default_locale)
                .to_owned();
            if name.is_empty() { f.id.clone() } else { name }
        })
    };
    let status = move || {
        if studio.saving.get() {
            studio.t("Saving…", "正在保存…")
        } else if studio.dirty.get() {
            studio.t("Unsaved changes", "有未保存的修改")
        } else {
            studio.t("All changes saved", "已全部保存")
        }
    };
    view! {
        <header class="topbar">
            <button class="link" data-test="back-to-list" on:click=move |_| studio.close_flow()>
                "← " {move || studio.t("Flows", "流程")}
            </button>
            <strong class="flow-title" data-test="flow-title">{title}</strong>
            <span class="version" data-test="published-version">{move || match studio.published.get() {
                Some(v) => format!("v{v}"),
                None => studio.t("not published", "未发布").to_owned(),
            }}</span>
            <span class={move || if studio.dirty.get() { "save-state dirty" } else { "save-state" }} data-test="save-state">{status}</span>
            <span class="grow"></span>
            <Flashes />
            <button on:click=move |_| studio.undo() disabled=move || !studio.can_undo.get() title="Ctrl+Z" data-test="undo">
                {move || studio.t("Undo", "撤销")}
            </button>
            <button on:click=move |_| studio.redo() disabled=move || !studio.can_redo.get() title="Ctrl+Shift+Z" data-test="redo">
                {move || studio.t("Redo", "重做")}
            </button>
            <button on:click=move |_| studio.fit() title="F">{move || studio.t("Fit", "适应屏幕")}</button>
            <button on:click=move |_| studio.auto_layout() title="Shift+L" data-test="auto-layout">{move || studio.t("Tidy up", "自动布局")}</button>
            <label class="toggle"><input type="checkbox" prop:checked=move || studio.grid.get()
                on:change=move |ev| studio.grid.set(event_target_checked(&ev)) />
                {move || studio.t("Snap to grid", "对齐网格")}</label>
            <button on:click=move |_| studio.toggle_analytics() data-test="analytics"
                class:active=move || studio.analytics.with(Option::is_some)>
                {move || studio.t("Analytics", "数据")}
            </button>
            <details class="menu">
                <summary>{move || studio.t("File", "文件")}</summary>
                <div class="menu-items">
                    <label class="button">{move || studio.t("Import…", "导入…")}
                        <input type="file" accept=".json,application/json" class="hidden" data-test="import-here"
                            on:change=move |ev| read_file(studio, &ev) />
                    </label>
                    <button on:click=move |_| studio.export_json() data-test="export-json">{move || studio.t("Export JSON", "导出 JSON")}</button>
                    <button on:click=move |_| studio.export_rust() data-test="export-rust">{move || studio.t("Export Rust", "导出 Rust 代码")}</button>
                    <button on:click=move |_| studio.add_comment()>{move || studio.t("Add a note", "添加备注")}</button>
                </div>
            </details>
            <button on:click=move |_| studio.dialog.set(Some(Dialog::CommandPalette)) title="Ctrl+K">"⌘K"</button>
            <button on:click=move |_| studio.dialog.set(Some(Dialog::Help)) title="?">"?"</button>
            <LangSwitch />
            <button data-test="save" on:click=move |_| studio.save() disabled=move || studio.saving.get() title="Ctrl+S">
                {move || studio.t("Save", "保存")}
            </button>
            <button class="primary" data-test="publish" on:click=move |_| studio.dialog.set(Some(Dialog::Publish))>
                {move || studio.t("Publish…", "发布…")}
            </button>
        </header>
    }
}

#[component]
pub fn SidePanel() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let tab = move |panel: Panel, en: &'static str, zh: &'static str, test: &'static str| {
        view! {
            <button role="tab" data-test=test aria-selected=move || (studio.panel.get() == panel).to_string()
                class:active=move || studio.panel.get() == panel
                on:click=move |_| studio.panel.set(panel)>
                {move || studio.t(en, zh)}
                {(panel == Panel::Problems).then(|| view! {
                    <span class={move || if studio.errors() > 0 { "count error" } else { "count" }} data-test="problem-count">
                        {move || studio.diagnostics.with(Vec::len)}
                    </span>
                })}
            </button>
        }
    };
    view! {
        <aside class="side">
            <div class="tabs" role="tablist">
                {tab(Panel::Inspector, "Inspector", "属性", "tab-inspector")}
                {tab(Panel::Problems, "Problems", "问题", "tab-problems")}
                {tab(Panel::Outline, "Outline", "大纲", "tab-outline")}
                {tab(Panel::Preview, "Preview", "预览", "tab-preview")}
                {tab(Panel::Versions, "Versions", "版本", "tab-versions")}
            </div>
            <div class="side-body" role="tabpanel">
                {move || match studio.panel.get() {
                    Panel::Inspector => view! { <Inspector /> }.into_any(),
                    Panel::Problems => view! { <Problems /> }.into_any(),
                    Panel::Outline => view! { <Outline /> }.into_any(),
                    Panel::Preview => view! { <Preview /> }.into_any(),
                    Panel::Versions => view! { <Versions /> }.into_any(),
                }}
            </div>
        </aside>
    }
}

#[component]
fn Problems() -> impl IntoView {
    let studio = expect_context::<Studio>();
    view! {
        <Show when=move || !studio.diagnostics.with(Vec::is_empty)
            fallback=move || view! { <p class="all-good" data-test="no-problems">{move || studio.t("No problems: this flow can be published.", "没有问题：可以发布。")}</p> }>
            <ul class="problems" data-test="problems">
                {move || studio.diagnostics.get().into_iter().map(|d| {
                    let node = d.node.clone();
                    let error = d.severity == Severity::Error;
                    let place = [d.node.clone(), d.port.clone().map(|p| format!("→{p}")), d.field.clone()]
                        .into_iter().flatten().collect::<Vec<_>>().join(" ");
                    view! {
                        <li>
                            <button class=if error { "problem error" } else { "problem warning" } data-test="problem"
                                on:click=move |_| if let Some(n) = &node { studio.focus_node(n); }>
                                <span class="severity">{if error { "✖" } else { "⚠" }}</span>
                                <span class="message">{d.message}</span>
                                <code class="where">{place}</code>
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </Show>
    }
}

/// The steps as a searchable list: the canvas for a keyboard and a screen reader.
#[component]
fn Outline() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let query = RwSignal::new(String::new());
    let rows = move || {
        let q = query.get().to_lowercase();
        let lang = studio.lang.get();
        let problems = studio.diagnostics.get();
        studio.doc.with(|f| {
            geometry::reading_order(f)
                .into_iter()
                .filter_map(|id| {
                    let n = f.node(&id)?;
                    let k = kind(n.kind.name());
                    let label = n.label.clone().unwrap_or_default();
                    let text = format!("{id} {label} {} {}", k.en, k.zh).to_lowercase();
                    if !q.is_empty() && !text.contains(&q) {
                        return None;
                    }
                    let errors = problems
                        .iter()
                        .filter(|d| {
                            d.node.as_deref() == Some(id.as_str()) && d.severity == Severity::Error
                        })
                        .count();
                    let exits = n
                        .kind
                        .ports()
                        .into_iter()
                        .map(|p| match f.edge(&id, &p.name) {
                            Some(e) => format!("{} → {}", p.name, e.to),
                            None => format!("{} → ∅", p.name),
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    Some((id, k.label(lang), label, errors, exits))
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        <div class="outline">
            <input type="search" data-test="outline-search" aria-label=move || studio.t("Find a step", "查找步骤")
                placeholder=move || studio.t("Find a step…", "查找步骤…")
                prop:value=move || query.get() on:input=move |ev| query.set(event_target_value(&ev)) />
            <ul role="listbox" aria-label=move || studio.t("Steps", "步骤") data-test="outline">
                {move || rows().into_iter().map(|(id, kind_label, label, errors, exits)| {
                    let selected = {
                        let id = id.clone();
                        move || studio.selection.with(|s| s.contains_node(&id))
                    };
                    let pick = id.clone();
                    let selected2 = selected.clone();
                    view! {
                        <li role="option" aria-selected=move || selected2().to_string()>
                            <button class="outline-row" class:selected=selected data-test="outline-row"
                                on:click=move |_| studio.focus_node(&pick)>
                                <span class="kind">{kind_label}</span>
                                <code>{id}</code>
                                <span class="label">{label}</span>
                                {(errors > 0).then(|| view! { <span class="badge error">{errors}</span> })}
                                <span class="exits">{exits}</span>
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
    }
}

#[component]
fn Versions() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let list = RwSignal::new(Vec::<VersionInfo>::new());
    let diff = RwSignal::new(None::<(u32, serde_json::Value)>);
    let load = move || {
        let Some(id) = studio.open.get_untracked() else {
            return;
        };
        spawn_local(async move {
            match api::versions(&id).await {
                Ok(v) => list.set(v),
                Err(error) => studio.fail(&error),
            }
        });
    };
    load();
    Effect::new(move |_| {
        studio.published.track();
        load();
    });
    let show_diff = move |version: u32| {
        let Some(id) = studio.open.get_untracked() else {
            return;
        };
        spawn_local(async move {
            match api::diff(&id, &version.to_string(), "draft").await {
                Ok(d) => diff.set(Some((version, d))),
                Err(error) => studio.fail(&error),
            }
        });
    };
    let rollback = move |version: u32| {
        if !super::confirm(&format!(
            "{} {version}?",
            studio.t(
                "Publish the content of version",
                "把以下版本的内容重新发布："
            )
        )) {
            return;
        }
        let Some(id) = studio.open.get_untracked() else {
            return;
        };
        let csrf = studio.csrf.get_untracked();
        spawn_local(async move {
            match api::rollback(&id, version, &csrf).await {
                Ok(p) => {
                    studio.published.set(Some(p.version));
                    studio.open_flow(id);
                    studio.say(format!(
                        "{} v{}",
                        studio.t("Rolled back; now", "已回滚，当前为"),
                        p.version
                    ));
                }
                Err(error) => studio.fail(&error),
            }
        });
    };
    view! {
        <div class="versions" data-test="versions">
            <Show when=move || !list.with(Vec::is_empty)
                fallback=move || view! { <p class="hint">{move || studio.t("Not published yet.", "尚未发布。")}</p> }>
                <ul>
                    {move || list.get().into_iter().rev().map(|v| {
                        let when = v.published_at.map(|ms| {
                            let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
                            d.to_locale_string(studio.locale(), &wasm_bindgen::JsValue::UNDEFINED).as_string().unwrap_or_default()
                        }).unwrap_or_default();
                        let n = v.version;
                        view! {
                            <li data-test="version-row">
                                <strong>"v" {n}</strong> " " <span class="hint">{when} " " {v.published_by.clone().unwrap_or_default()}</span>
                                <p>{v.note.unwrap_or_default()}</p>
                                <button on:click=move |_| show_diff(n)>{move || studio.t("Compare with draft", "与草稿比较")}</button>
                                <button on:click=move |_| rollback(n)>{move || studio.t("Roll back to this", "回滚到此版本")}</button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </Show>
            {move || diff.get().map(|(v, d)| {
                let same = d.get("same").and_then(serde_json::Value::as_bool).unwrap_or(false);
                let changes = d.get("changes").cloned().unwrap_or_default();
                let lines: Vec<String> = changes.as_object().map(|m| m.iter().filter(|(_, v)| v.as_array().is_some_and(|a| !a.is_empty())).map(|(k, v)| {
                    let items: Vec<String> = v.as_array().into_iter().flatten().map(|x| match x {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Object(o) if o.contains_key("fields") => format!("{} ({})", o.get("id").and_then(|i| i.as_str()).unwrap_or(""), o.get("fields").map(ToString::to_string).unwrap_or_default()),
                        serde_json::Value::Object(o) => format!("{} —{}→ {}", o.get("from").and_then(|i| i.as_str()).unwrap_or(""), o.get("port").and_then(|i| i.as_str()).unwrap_or(""), o.get("to").and_then(|i| i.as_str()).unwrap_or("")),
                        other => other.to_string(),
                    }).collect();
                    format!("{k}: {}", items.join(", "))
                }).collect()).unwrap_or_default();
                view! {
                    <div class="diff" data-test="diff">
                        <h4>"v" {v} " → " {move || studio.t("draft", "草稿")}</h4>
                        {if same {
                            view! { <p>{move || studio.t("Same logic (only the layout may differ).", "逻辑相同（可能只有布局不同）。")}</p> }.into_any()
                        } else {
                            view! { <ul>{lines.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}</ul> }.into_any()
                        }}
                    </div>
                }
            })}
        </div>
    }
}

#[component]
pub fn ConflictBanner() -> impl IntoView {
    let studio = expect_context::<Studio>();
    view! {
        <div class="conflict" role="alertdialog" data-test="conflict">
            <p>{move || studio.conflict.with(|c| c.as_ref().map(|c| c.message.clone()).unwrap_or_default())}</p>
            <button data-test="conflict-reload" on:click=move |_| studio.take_theirs()>
                {move || studio.t("Load their version (drop mine)", "载入对方的版本（放弃我的修改）")}
            </button>
            <button data-test="conflict-keep" on:click=move |_| studio.keep_mine()>
                {move || studio.t("Keep mine and save over theirs", "保留我的修改并覆盖")}
            </button>
            <button on:click=move |_| {
                if let Some(c) = studio.conflict.get_untracked() {
                    super::download(&format!("{}-theirs.flow.json", c.current.id), &flows::to_json(&c.current), "application/json");
                }
            }>{move || studio.t("Download theirs to compare", "下载对方版本以便比较")}</button>
        </div>
    }
}

/// The commands of the command palette: (English, Chinese, shortcut, action).
/// A command: its words in English and Chinese, its shortcut, and what it does.
type Command = (&'static str, &'static str, &'static str, fn(Studio));

fn commands() -> Vec<Command> {
    vec![
        ("Save", "保存", "Ctrl+S", |s| s.save()),
        ("Publish…", "发布…", "", |s| {
            s.dialog.set(Some(Dialog::Publish));
        }),
        ("Undo", "撤销", "Ctrl+Z", |s| s.undo()),
        ("Redo", "重做", "Ctrl+Shift+Z", |s| s.redo()),
        ("Select all", "全选", "Ctrl+A", |s| {
            s.selection.set(s.doc.with_untracked(Selection::all));
        }),
        ("Delete selection", "删除所选", "Del", |s| {
            s.delete_selection();
        }),
        ("Duplicate selection", "复制所选", "Ctrl+D", |s| {
            s.duplicate_selection();
        }),
        ("Group selection", "编组所选", "Ctrl+G", |s| {
            s.group_selection();
        }),
        ("Add a note", "添加备注", "Shift+N", |s| s.add_comment()),
        (
            "Tidy up (automatic layout)",
            "自动布局",
            "Shift+L",
            |s| s.auto_layout(),
        ),
        ("Fit to screen", "适应屏幕", "F", |s| s.fit()),
        ("Zoom in", "放大", "+", |s| s.zoom(1.25)),
        ("Zoom out", "缩小", "-", |s| s.zoom(0.8)),
        ("Show problems", "查看问题", "", |s| {
            s.panel.set(Panel::Problems);
        }),
        ("Show outline", "查看大纲", "", |s| {
            s.panel.set(Panel::Outline);
        }),
        ("Preview from the start", "从头预览", "", |s| {
            s.panel.set(Panel::Preview);
            super::preview::start(s, None);
        }),
        ("Show versions", "查看版本", "", |s| {
            s.panel.set(Panel::Versions);
        }),
        ("Export JSON", "导出 JSON", "", |s| s.export_json()),
        ("Export Rust", "导出 Rust 代码", "", |s| s.export_rust()),
        ("Analytics overlay", "数据叠加", "", |s| {
            s.toggle_analytics();
        }),
        ("Keyboard shortcuts", "快捷键", "?", |s| {
            s.dialog.set(Some(Dialog::Help));
        }),
    ]
}

#[component]
pub fn Dialogs() -> impl IntoView {
    let studio = expect_context::<Studio>();
    view! {
        {move || studio.dialog.get().map(|d| {
            let body = match d {
                Dialog::Publish => view! { <PublishDialog /> }.into_any(),
                Dialog::Rust(code) => view! { <RustDialog code=code /> }.into_any(),
                Dialog::CommandPalette => view! { <CommandPalette /> }.into_any(),
                Dialog::Help => view! { <Help /> }.into_any(),
            };
            view! {
                <div class="backdrop" on:click=move |_| studio.dialog.set(None)>
                    <div class="dialog" role="dialog" aria-modal="true" on:click=|ev| ev.stop_propagation()>
                        {body}
                    </div>
                </div>
            }
        })}
    }
}

#[component]
fn PublishDialog() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let note = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let publish = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(id) = studio.open.get_untracked() else {
            return;
        };
        busy.set(true);
        let csrf = studio.csrf.get_untracked();
        let flow = studio.doc.get_untracked();
        let revision = studio.revision.get_untracked();
        let dirty = studio.dirty.get_untracked();
        let note = note.get_untracked();
        spawn_local(async move {
            // Publishing publishes the saved draft: save first what is on screen.
            if dirty {
                match api::save(&id, revision, &flow, &csrf).await {
                    Ok(r) => {
                        studio.revision.set(r);
                        studio.dirty.set(false);
                    }
                    Err(api::SaveError::Stale {
                        message,
                        revision,
                        current,
                    }) => {
                        busy.set(false);
                        studio.dialog.set(None);
                        studio.conflict.set(Some(super::Conflict {
                            message,
                            revision,
                            current: *current,
                        }));
                        return;
                    }
                    Err(api::SaveError::Other(error)) => {
                        busy.set(false);
                        return studio.fail(&error);
                    }
                }
            }
            match api::publish(&id, &note, &csrf).await {
                Ok(p) => {
                    studio.revision.set(p.revision);
                    studio.published.set(Some(p.version));
                    studio.dialog.set(None);
                    studio.say(format!(
                        "{} v{}",
                        studio.t("Published", "已发布"),
                        p.version
                    ));
                }
                Err(refusal) => {
                    studio.fail(&refusal.error);
                    if !refusal.diagnostics.is_empty() {
                        studio.dialog.set(None);
                        studio.panel.set(Panel::Problems);
                    }
                }
            }
            busy.set(false);
        });
    };
    view! {
        <form class="publish" on:submit=publish data-test="publish-dialog">
            <h2>{move || studio.t("Publish a new version", "发布新版本")}</h2>
            <Show when=move || { studio.errors() > 0 }>
                <p class="error" data-test="publish-blocked">
                    {move || format!("{} {}", studio.errors(), studio.t("errors remain: fix them before publishing.", "个错误未解决：请先修复再发布。"))}
                </p>
            </Show>
            <label>{move || studio.t("What changed (for the version history)", "修改说明（记录在版本历史中）")}
                <textarea data-test="publish-note" rows="3" maxlength="2000" prop:value=move || note.get()
                    on:input=move |ev| note.set(event_target_value(&ev))></textarea>
            </label>
            <p class="hint">{move || studio.t("New conversations use the new version at once; running ones finish on theirs.", "新对话立即使用新版本；进行中的对话仍用原版本。")}</p>
            <div class="buttons">
                <button type="button" on:click=move |_| studio.dialog.set(None)>{move || studio.t("Cancel", "取消")}</button>
                <button type="submit" class="primary" data-test="publish-confirm" disabled={move || busy.get() || studio.errors() > 0}>
                    {move || studio.t("Publish", "发布")}
                </button>
            </div>
        </form>
    }
}

#[component]
fn RustDialog(code: String) -> impl IntoView {
    let studio = expect_context::<Studio>();
    let file = studio
        .doc
        .with_untracked(|f| format!("{}.rs", f.id.replace('-', "_")));
    let text = code.clone();
    view! {
        <div class="rust" data-test="rust-dialog">
            <h2>{move || studio.t("The flow as a Rust module", "流程的 Rust 模块")}</h2>
            <pre class="code" data-test="rust-code">{code}</pre>
            <div class="buttons">
                <button on:click=move |_| studio.dialog.set(None)>{move || studio.t("Close", "关闭")}</button>
                <button class="primary" on:click=move |_| super::download(&file, &text, "text/x-rust")>
                    {move || studio.t("Download", "下载")}
                </button>
            </div>
        </div>
    }
}

#[component]
fn CommandPalette() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let query = RwSignal::new(String::new());
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });
    let matching = move || {
        let q = query.get().to_lowercase();
        commands()
            .into_iter()
            .filter(|(en, zh, _, _)| {
                q.is_empty() || en.to_lowercase().contains(&q) || zh.contains(&q)
            })
            .collect::<Vec<_>>()
    };
    let run = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some((_, _, _, action)) = matching().into_iter().next() {
            studio.dialog.set(None);
            action(studio);
        }
    };
    view! {
        <form class="palette-dialog" on:submit=run data-test="command-palette">
            <input node_ref=input data-test="command-input" placeholder=move || studio.t("Type a command…", "输入命令…")
                prop:value=move || query.get() on:input=move |ev| query.set(event_target_value(&ev)) />
            <ul>
                {move || matching().into_iter().map(|(en, zh, keys, action)| view! {
                    <li><button type="button" on:click=move |_| { studio.dialog.set(None); action(studio); }>
                        {move || studio.t(en, zh)} <kbd>{keys}</kbd>
                    </button></li>
                }).collect_view()}
            </ul>
        </form>
    }
}

#[component]
fn Help() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let rows: Vec<(&str, &str, &str)> = vec![
        (
            "←↑→↓",
            "Go to the nearest step in that direction",
            "移到该方向最近的步骤",
        ),
        ("Shift + ←↑→↓", "Move the selected steps", "移动所选步骤"),
        (
            "Enter",
            "Edit the selected step (inspector)",
            "编辑所选步骤",
        ),
        ("Del / Backspace", "Delete the selection", "删除所选"),
        (
            "Ctrl+C / X / V",
            "Copy / cut / paste (also between tabs)",
            "复制 / 剪切 / 粘贴（可跨标签页）",
        ),
        ("Ctrl+D", "Duplicate", "复制一份"),
        ("Ctrl+A", "Select all", "全选"),
        ("Ctrl+G", "Group the selection", "编组"),
        ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo", "撤销 / 重做"),
        ("Ctrl+S", "Save the draft", "保存草稿"),
        ("Ctrl+K", "Command palette", "命令面板"),
        ("F, +, -", "Fit, zoom in, zoom out", "适应屏幕、放大、缩小"),
        (
            "Shift+L, Shift+N",
            "Tidy up, add a note",
            "自动布局、添加备注",
        ),
        ("Shift + drag", "Select with a rectangle", "框选"),
        ("Escape", "Clear the selection / close", "取消选择 / 关闭"),
    ];
    view! {
        <div class="help" data-test="help">
            <h2>{move || studio.t("Keyboard shortcuts", "快捷键")}</h2>
            <table>
                {rows.into_iter().map(|(k, en, zh)| view! { <tr><td><kbd>{k}</kbd></td><td>{move || studio.t(en, zh)}</td></tr> }).collect_view()}
            </table>
            <button on:click=move |_| studio.dialog.set(None)>{move || studio.t("Close", "关闭")}</button>
        </div>
    }
}

/// The designer's keyboard shortcuts (see `Help`).
pub fn shortcut(studio: Studio, event: &web_sys::KeyboardEvent) {
    if studio.open.get_untracked().is_none() {
        return;
    }
    let key = event.key();
    let ctrl = event.ctrl_key() || event.meta_key();
    let shift = event.shift_key();
    let handled = match (ctrl, key.as_str()) {
        (true, "s") => {
            studio.save();
            true
        }
        (true, "k") => {
            studio.dialog.set(Some(Dialog::CommandPalette));
            true
        }
        (_, "Escape") => {
            if studio.dialog.get_untracked().is_some() {
                studio.dialog.set(None);
            } else {
                studio.selection.set(Selection::default());
                studio.drag.set(None);
            }
            true
        }
        _ if super::typing_in_field() || studio.dialog.get_untracked().is_some() => false,
        (true, "z") if shift => {
            studio.redo();
            true
        }
        (true, "Z") | (true, "y") => {
            studio.redo();
            true
        }
        (true, "z") => {
            studio.undo();
            true
        }
        (true, "a") => {
            studio
                .selection
                .set(studio.doc.with_untracked(Selection::all));
            true
        }
        (true, "d") => {
            studio.duplicate_selection();
            true
        }
        (true, "g") => {
            studio.group_selection();
            true
        }
        (false, "Delete" | "Backspace") => {
            studio.delete_selection();
            true
        }
        (false, "f") => {
            studio.fit();
            true
        }
        (false, "+" | "=") => {
            studio.zoom(1.25);
            true
        }
        (false, "-") => {
            studio.zoom(0.8);
            true
        }
        (false, "?") => {
            studio.dialog.set(Some(Dialog::Help));
            true
        }
        (false, "L") if shift => {
            studio.auto_layout();
            true
        }
        (false, "N") if shift => {
            studio.add_comment();
            true
        }
        (false, "Enter") => {
            studio.panel.set(Panel::Inspector);
            true
        }
        (false, "ArrowLeft" | "ArrowRight" | "ArrowUp" | "ArrowDown") => {
            let direction = match key.as_str() {
                "ArrowLeft" => Direction::Left,
                "ArrowRight" => Direction::Right,
                "ArrowUp" => Direction::Up,
                _ => Direction::Down,
            };
            arrow(studio, direction, shift);
            true
        }
        _ => false,
    };
    if handled {
        event.prevent_default();
    }
}

/// An arrow key: with Shift, moves the selection a grid step; without, selects the nearest
/// step that way (or the first step when nothing is selected).
fn arrow(studio: Studio, direction: Direction, shift: bool) {
    if shift {
        let step = geometry::GRID;
        let delta = match direction {
            Direction::Left => Position { x: -step, y: 0.0 },
            Direction::Right => Position { x: step, y: 0.0 },
            Direction::Up => Position { x: 0.0, y: -step },
            Direction::Down => Position { x: 0.0, y: step },
        };
        let op = studio.doc.with_untracked(|f| {
            studio
                .selection
                .with_untracked(|s| s.move_by(f, delta, None))
        });
        studio.apply(&op);
        return;
    }
    let current = studio
        .selection
        .with_untracked(|s| s.nodes.iter().next().cloned());
    let next = studio.doc.with_untracked(|f| match current {
        Some(id) => geometry::neighbour(f, &id, direction),
        None => geometry::reading_order(f).into_iter().next(),
    });
    if let Some(id) = next {
        studio.focus_node(&id);
    }
}
