//! The inspector: a form for the selected step (one per node kind), its exits, and — with
//! nothing selected — the flow's variables. Every change is an `Op::edit_node` through the
//! history, made on `change` (when a field is left or Enter is pressed), so one edit is one
//! undo step. Problems of a field are shown under it, from the live validation.
//!
//! The form is rebuilt only when the step's *shape* changes (another step, an option added);
//! field values are read reactively, so an undo updates them without taking the focus away.

use std::collections::BTreeMap;

use leptos::prelude::*;

use flows::model::{
    Assignment, Branch, ChoiceOption, InputType, Node, NodeKind, Part, Priority, Text, Variable,
    Variant,
};
use flows::{Severity, Type};

use super::{Studio, tx};
use crate::editor::Op;

/// Applies `change` to a copy of step `id` and makes it an undoable edit (nothing if the copy
/// comes out equal).
fn edit(studio: Studio, id: &str, change: impl FnOnce(&mut Node)) {
    let Some(before) = studio.doc.with_untracked(|d| d.node(id).cloned()) else {
        return;
    };
    let mut after = before.clone();
    change(&mut after);
    if after == before {
        return;
    }
    match studio.doc.with_untracked(|d| Op::edit_node(d, after)) {
        Ok(op) => {
            studio.apply(&op);
        }
        Err(error) => studio.fail_text(error.to_string()),
    }
}

/// The variant of `text` for `locale`, exactly (a plain text counts for the default locale).
fn variant(text: &Text, locale: &str, default: &str) -> String {
    match text {
        Text::Plain(s) if locale == default => s.clone(),
        Text::Plain(_) => String::new(),
        Text::Localized(map) => map.get(locale).cloned().unwrap_or_default(),
    }
}

/// `text` with its `locale` variant set to `value` (an empty value removes the variant).
fn with_variant(text: &Text, locale: &str, default: &str, value: String) -> Text {
    let mut map: BTreeMap<String, String> = match text {
        Text::Plain(s) if !s.is_empty() => BTreeMap::from([(default.to_owned(), s.clone())]),
        Text::Plain(_) => BTreeMap::new(),
        Text::Localized(map) => map.clone(),
    };
    if value.is_empty() {
        map.remove(locale);
    } else {
        map.insert(locale.to_owned(), value);
    }
    Text::Localized(map)
}

const LOCALES: [(&str, &str); 2] = [("zh-CN", "中文"), ("en", "English")];

/// What decides whether the form must be rebuilt: the step, its kind and the number of its
/// repeated parts.
fn shape(node: &Node) -> String {
    let counts = match &node.kind {
        NodeKind::Message(m) => m
            .parts
            .iter()
            .map(|p| match p {
                Part::Text { .. } => 't',
                Part::Image { .. } => 'i',
                Part::Products { .. } => 'p',
                Part::Carousel { .. } => 'c',
            })
            .collect(),
        NodeKind::Choice(c) => format!("{}{}", c.options.len(), c.dynamic.is_some()),
        NodeKind::Condition(c) => c.branches.len().to_string(),
        NodeKind::Set(s) => s.assignments.len().to_string(),
        NodeKind::AbSplit(a) => a.variants.len().to_string(),
        _ => String::new(),
    };
    format!("{}|{}|{counts}", node.id, node.kind.name())
}

/// A field's reader and writer, over the selected step.
type Reader = std::sync::Arc<dyn Fn(&Node) -> String + Send + Sync>;
type Writer = std::sync::Arc<dyn Fn(&mut Node, String) + Send + Sync>;

fn get(f: impl Fn(&Node) -> String + Send + Sync + 'static) -> Reader {
    std::sync::Arc::new(f)
}

fn set(f: impl Fn(&mut Node, String) + Send + Sync + 'static) -> Writer {
    std::sync::Arc::new(f)
}

/// The problems of the selected step whose field starts with `prefix` (all of them for "").
#[component]
fn FieldProblems(id: String, prefix: String) -> impl IntoView {
    let studio = expect_context::<Studio>();
    let messages = move || {
        studio.diagnostics.with(|all| {
            all.iter()
                .filter(|d| d.node.as_deref() == Some(id.as_str()))
                .filter(|d| {
                    if prefix.is_empty() {
                        d.field.is_none()
                    } else {
                        d.field
                            .as_deref()
                            .is_some_and(|f| f.starts_with(prefix.as_str()))
                    }
                })
                .map(|d| {
                    let at = d
                        .span
                        .map(|s| format!(" ({}:{})", s.line, s.column))
                        .unwrap_or_default();
                    (d.severity == Severity::Error, format!("{}{at}", d.message))
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        {move || messages().into_iter().map(|(error, text)| view! {
            <p class=if error { "field-problem error" } else { "field-problem warning" } role="alert" data-test="field-problem">{text}</p>
        }).collect_view()}
    }
}

/// The control a single-valued field is edited with.
enum Control {
    Line,
    Area,
    Select(Vec<(String, String)>),
}

/// A field of the selected step: its words, the control showing `read`'s value, an edit with
/// `write` when the control is left, and the field's problems under it.
#[allow(
    clippy::too_many_arguments,
    reason = "a field's place, words, control and accessors"
)]
fn field_with(
    studio: Studio,
    node: Memo<Option<Node>>,
    id: &str,
    label: (&'static str, &'static str),
    field: &str,
    control: Control,
    read: Reader,
    write: Writer,
) -> AnyView {
    let id = id.to_owned();
    let value = move || node.with(|n| n.as_ref().map(|n| read(n)).unwrap_or_default());
    let change = {
        let id = id.clone();
        move |ev: leptos::ev::Event| {
            let v = event_target_value(&ev);
            let write = write.clone();
            edit(studio, &id, move |n| write(n, v));
        }
    };
    let test = format!("field-{field}");
    let input = match control {
        Control::Line => view! {
            <input data-test=test data-field=field.to_owned() prop:value=value on:change=change />
        }
        .into_any(),
        Control::Area => view! {
            <textarea rows="3" data-test=test data-field=field.to_owned() prop:value=value on:change=change></textarea>
        }
        .into_any(),
        Control::Select(options) => view! {
            <select data-test=test data-field=field.to_owned() prop:value=value on:change=change>
                {options.into_iter().map(|(v, shown)| view! { <option value=v>{shown}</option> }).collect_view()}
            </select>
        }
        .into_any(),
    };
    view! {
        <label class="field">
            <span>{move || tx(studio.lang.get(), label.0, label.1)}</span>
            {input}
            <FieldProblems id=id prefix=field.to_owned() />
        </label>
    }
    .into_any()
}

/// One line of text.
fn line(
    studio: Studio,
    node: Memo<Option<Node>>,
    id: &str,
    label: (&'static str, &'static str),
    field: &str,
    read: Reader,
    write: Writer,
) -> AnyView {
    field_with(studio, node, id, label, field, Control::Line, read, write)
}

/// Several lines of text.
fn area(
    studio: Studio,
    node: Memo<Option<Node>>,
    id: &str,
    label: (&'static str, &'static str),
    field: &str,
    read: Reader,
    write: Writer,
) -> AnyView {
    field_with(studio, node, id, label, field, Control::Area, read, write)
}

/// One of `options` (value, shown text).
#[allow(
    clippy::too_many_arguments,
    reason = "a field's place, words, choices and accessors"
)]
fn select(
    studio: Studio,
    node: Memo<Option<Node>>,
    id: &str,
    label: (&'static str, &'static str),
    field: &str,
    options: Vec<(String, String)>,
    read: Reader,
    write: Writer,
) -> AnyView {
    field_with(
        studio,
        node,
        id,
        label,
        field,
        Control::Select(options),
        read,
        write,
    )
}

/// A text per language, with the variables offered as `{{name}}` chips.
fn text<R, W>(
    studio: Studio,
    node: Memo<Option<Node>>,
    id: &str,
    label: (&'static str, &'static str),
    field: &str,
    read: R,
    write: W,
) -> impl IntoView + use<R, W>
where
    R: Fn(&Node) -> Option<Text> + Clone + Send + Sync + 'static,
    W: Fn(&mut Node, Text) + Clone + Send + Sync + 'static,
{
    let default = studio.doc.with_untracked(|d| d.default_locale.clone());
    let variables: Vec<String> = studio
        .doc
        .with_untracked(|d| d.variables.iter().map(|v| v.name.clone()).collect());
    let rows = LOCALES
        .iter()
        .map(|(locale, name)| {
            let (locale, name) = (*locale, *name);
            let read = read.clone();
            let default = default.clone();
            let id = id.to_owned();
            let value = {
                let default = default.clone();
                let read = read.clone();
                move || {
                    node.with(|n| {
                        n.as_ref()
                            .and_then(&read)
                            .map(|t| variant(&t, locale, &default))
                            .unwrap_or_default()
                    })
                }
            };
            // Saves `v` as this language's variant of the text.
            let save = {
                let write = write.clone();
                move |v: String| {
                    let read = read.clone();
                    let write = write.clone();
                    let default = default.clone();
                    edit(studio, &id, move |n| {
                        let old = read(n).unwrap_or(Text::Plain(String::new()));
                        write(n, with_variant(&old, locale, &default, v));
                    });
                }
            };
            let area = NodeRef::<leptos::html::Textarea>::new();
            // The variables offered after `{{`: the names that start with what follows it.
            let offered = RwSignal::new(Vec::<String>::new());
            let input = {
                let variables = variables.clone();
                move |_| {
                    let Some(el) = area.get_untracked() else { return };
                    let caret = el.selection_start().ok().flatten().unwrap_or(0) as usize;
                    let found = completion(&el.value(), caret).map_or_else(Vec::new, |(_, partial)| {
                        variables.iter().filter(|v| v.starts_with(&partial)).cloned().collect()
                    });
                    offered.set(found);
                }
            };
            let change = {
                let save = save.clone();
                move |ev: leptos::ev::Event| save(event_target_value(&ev))
            };
            let pick = move |name: String| {
                let Some(el) = area.get_untracked() else { return };
                let caret = el.selection_start().ok().flatten().unwrap_or(0) as usize;
                if let Some((value, caret)) = complete(&el.value(), caret, &name) {
                    el.set_value(&value);
                    let _ = el.set_selection_range(caret as u32, caret as u32);
                    offered.set(Vec::new());
                    save(value);
                }
            };
            view! {
                <div class="lang-row">
                    <span class="lang-tag">{name}</span>
                    <textarea rows="2" node_ref=area data-test=format!("field-{field}-{locale}") data-field=format!("{field}-{locale}")
                        prop:value=value on:change=change on:input=input
                        on:blur=move |_| offered.set(Vec::new())></textarea>
                </div>
                <Show when=move || !offered.with(Vec::is_empty)>
                    <ul class="completions" role="listbox" data-test="completions">
                        {
                            let pick = pick.clone();
                            move || offered.get().into_iter().map(|v| {
                                let pick = pick.clone();
                                let shown = format!("{{{{{v}}}}}");
                                view! {
                                    <li role="option"><button class="chip" data-test="completion"
                                        on:mousedown=move |ev| { ev.prevent_default(); pick(v.clone()); }>{shown}</button></li>
                                }
                            }).collect_view()
                        }
                    </ul>
                </Show>
            }
        })
        .collect_view();
    view! {
        <div class="field">
            <span>{move || tx(studio.lang.get(), label.0, label.1)}</span>
            {rows}
            <FieldProblems id=id.to_owned() prefix=field.to_owned() />
        </div>
    }
}

/// The text before `caret` (a position in UTF-16 units, as the DOM counts) in `value`.
fn before_caret(value: &str, caret: usize) -> &str {
    let mut units = 0;
    for (at, c) in value.char_indices() {
        if units >= caret {
            return &value[..at];
        }
        units += c.len_utf16();
    }
    value
}

/// Whether the caret is in an unfinished `{{name`: the byte where `{{` starts and the part of
/// the name typed so far.
fn completion(value: &str, caret: usize) -> Option<(usize, String)> {
    let before = before_caret(value, caret);
    let open = before.rfind("{{")?;
    let partial = &before[open + 2..];
    partial
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        .then(|| (open, partial.to_owned()))
}

/// `value` with the unfinished `{{name` before the caret completed as `{{variable}}`, and the
/// caret after it (UTF-16 units).
fn complete(value: &str, caret: usize, variable: &str) -> Option<(String, usize)> {
    let (open, _) = completion(value, caret)?;
    let rest = &value[before_caret(value, caret).len()..];
    let head = format!("{}{{{{{variable}}}}}", &value[..open]);
    let caret = head.encode_utf16().count();
    Some((format!("{head}{rest}"), caret))
}

/// `key = value` lines for a map of strings (lookup parameters, sub-flow inputs).
fn map_to_lines(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn lines_to_map(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
    s.trim().parse().ok()
}

#[component]
pub fn Inspector() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let single = Memo::new(move |_| {
        studio.selection.with(|s| {
            (s.nodes.len() == 1 && s.comments.is_empty())
                .then(|| s.nodes.iter().next().cloned())
                .flatten()
        })
    });
    let node = Memo::new(move |_| {
        let id = single.get()?;
        studio.doc.with(|d| d.node(&id).cloned())
    });
    let node_shape = Memo::new(move |_| node.with(|n| n.as_ref().map(shape)));
    let count = move || studio.selection.with(|s| s.nodes.len() + s.comments.len());
    view! {
        <div class="inspector" data-test="inspector">
            {move || {
                node_shape.track();
                match node.get_untracked() {
                    Some(n) => form(studio, node, &n).into_any(),
                    None if count() > 1 => view! {
                        <div class="multi">
                            <p>{move || count()} " " {move || studio.t("selected", "项已选中")}</p>
                            <button on:click=move |_| studio.duplicate_selection()>{move || studio.t("Duplicate (Ctrl+D)", "复制一份 (Ctrl+D)")}</button>
                            <button on:click=move |_| studio.group_selection()>{move || studio.t("Group (Ctrl+G)", "编组 (Ctrl+G)")}</button>
                            <button class="danger" on:click=move |_| studio.delete_selection()>{move || studio.t("Delete (Del)", "删除 (Del)")}</button>
                        </div>
                    }.into_any(),
                    None => view! { <FlowSettings /> }.into_any(),
                }
            }}
        </div>
    }
}

/// The form of one step.
fn form(studio: Studio, node: Memo<Option<Node>>, n: &Node) -> impl IntoView + use<> {
    let id = n.id.clone();
    let k = super::kinds::kind(n.kind.name());
    let lang = studio.lang.get_untracked();
    let vars: Vec<(String, String)> = std::iter::once((String::new(), "—".to_owned()))
        .chain(studio.doc.with_untracked(|d| {
            d.variables
                .iter()
                .map(|v| (v.name.clone(), v.name.clone()))
                .collect::<Vec<_>>()
        }))
        .collect();
    let body = match &n.kind {
        NodeKind::Start(_) => view! {
            <p class="hint">{tx(lang, "The conversation begins here. Connect its exit to the first step.", "对话从这里开始。把它的出口连到第一个步骤。")}</p>
        }.into_any(),
        NodeKind::Message(m) => message_form(studio, node, &id, m.parts.len(), &vars).into_any(),
        NodeKind::Choice(c) => {
            let options = c.options.len();
            let rows = (0..options).map(|i| {
                let id2 = id.clone();
                view! {
                    <fieldset class="repeat">
                        {line(studio, node, &id, ("Exit id", "出口标识"), &format!("options[{i}].id"),
                            get(move |n| match &n.kind { NodeKind::Choice(c) => c.options.get(i).map(|o| o.id.clone()).unwrap_or_default(), _ => String::new() }),
                            set(move |n, v| if let NodeKind::Choice(c) = &mut n.kind && let Some(o) = c.options.get_mut(i) { o.id = v.trim().to_owned(); }))}
                        {text(studio, node, &id, ("Button", "按钮文字"), &format!("options[{i}].label"),
                            move |n| match &n.kind { NodeKind::Choice(c) => c.options.get(i).map(|o| o.label.clone()), _ => None },
                            move |n, t| if let NodeKind::Choice(c) = &mut n.kind && let Some(o) = c.options.get_mut(i) { o.label = t; })}
                        <button class="link danger" data-test=format!("remove-option-{i}") on:click=move |_| edit(studio, &id2, move |n| if let NodeKind::Choice(c) = &mut n.kind && i < c.options.len() { c.options.remove(i); })>
                            {move || studio.t("Remove button", "删除按钮")}
                        </button>
                    </fieldset>
                }
            }).collect_view();
            let id3 = id.clone();
            view! {
                {text(studio, node, &id, ("Question", "问题"), "prompt",
                    |n| match &n.kind { NodeKind::Choice(c) => Some(c.prompt.clone()), _ => None },
                    |n, t| if let NodeKind::Choice(c) = &mut n.kind { c.prompt = t; })}
                {rows}
                <button data-test="add-option" on:click=move |_| edit(studio, &id3, |n| if let NodeKind::Choice(c) = &mut n.kind {
                    let taken = c.options.iter().map(|o| o.id.clone()).collect();
                    let oid = crate::editor::fresh_id("option", &taken);
                    c.options.push(ChoiceOption { id: oid, label: Text::Plain(String::new()) });
                })>{move || studio.t("+ Button", "+ 按钮")}</button>
                {select(studio, node, &id, ("Save the answer in", "把回答保存到"), "save_as", vars,
                    get(|n| match &n.kind { NodeKind::Choice(c) => c.save_as.clone().unwrap_or_default(), _ => String::new() }),
                    set(|n, v| if let NodeKind::Choice(c) = &mut n.kind { c.save_as = opt(&v); }))}
            }.into_any()
        }
        NodeKind::Input(_) => {
            let types = [InputType::Text, InputType::Number, InputType::Email, InputType::Phone, InputType::Date]
                .iter().map(|t| (t.name().to_owned(), t.name().to_owned())).collect();
            view! {
                {text(studio, node, &id, ("Question", "问题"), "prompt",
                    |n| match &n.kind { NodeKind::Input(i) => Some(i.prompt.clone()), _ => None },
                    |n, t| if let NodeKind::Input(i) = &mut n.kind { i.prompt = t; })}
                {select(studio, node, &id, ("Answer type", "回答类型"), "input_type", types,
                    get(|n| match &n.kind { NodeKind::Input(i) => i.input_type.name().to_owned(), _ => String::new() }),
                    set(|n, v| if let NodeKind::Input(i) = &mut n.kind && let Ok(t) = serde_json::from_value(serde_json::Value::String(v)) { i.input_type = t; }))}
                {select(studio, node, &id, ("Save the answer in", "把回答保存到"), "save_as", vars,
                    get(|n| match &n.kind { NodeKind::Input(i) => i.save_as.clone(), _ => String::new() }),
                    set(|n, v| if let NodeKind::Input(i) = &mut n.kind { i.save_as = v; }))}
                {line(studio, node, &id, ("Pattern (regular expression)", "格式（正则表达式）"), "validation.pattern",
                    get(|n| match &n.kind { NodeKind::Input(i) => i.validation.pattern.clone().unwrap_or_default(), _ => String::new() }),
                    set(|n, v| if let NodeKind::Input(i) = &mut n.kind { i.validation.pattern = opt(&v); }))}
                <div class="pair">
                    {line(studio, node, &id, ("Minimum", "最小值"), "validation.min",
                        get(|n| match &n.kind { NodeKind::Input(i) => i.validation.min.map(|v| v.to_string()).unwrap_or_default(), _ => String::new() }),
                        set(|n, v| if let NodeKind::Input(i) = &mut n.kind { i.validation.min = num(&v); }))}
                    {line(studio, node, &id, ("Maximum", "最大值"), "validation.max",
                        get(|n| match &n.kind { NodeKind::Input(i) => i.validation.max.map(|v| v.to_string()).unwrap_or_default(), _ => String::new() }),
                        set(|n, v| if let NodeKind::Input(i) = &mut n.kind { i.validation.max = num(&v); }))}
                </div>
                <div class="pair">
                    {line(studio, node, &id, ("Shortest", "最短"), "validation.min_length",
                        get(|n| match &n.kind { NodeKind::Input(i) => i.validation.min_length.map(|v| v.to_string()).unwrap_or_default(), _ => String::new() }),
                        set(|n, v| if let NodeKind::Input(i) = &mut n.kind { i.validation.min_length = num(&v); }))}
                    {line(studio, node, &id, ("Longest", "最长"), "validation.max_length",
                        get(|n| match &n.kind { NodeKind::Input(i) => i.validation.max_length.map(|v| v.to_string()).unwrap_or_default(), _ => String::new() }),
                        set(|n, v| if let NodeKind::Input(i) = &mut n.kind { i.validation.max_length = num(&v); }))}
                </div>
                {line(studio, node, &id, ("Retries", "重试次数"), "retries",
                    get(|n| match &n.kind { NodeKind::Input(i) => i.retries.to_string(), _ => String::new() }),
                    set(|n, v| if let NodeKind::Input(i) = &mut n.kind && let Some(r) = num(&v) { i.retries = r; }))}
                {text(studio, node, &id, ("Said after a wrong answer", "回答不符合时的提示"), "retry_prompt",
                    |n| match &n.kind { NodeKind::Input(i) => i.retry_prompt.clone(), _ => None },
                    |n, t| if let NodeKind::Input(i) = &mut n.kind { i.retry_prompt = Some(t).filter(|t| !t.variants().iter().all(|(_, s)| s.is_empty())); })}
            }.into_any()
        }
        NodeKind::Condition(c) => {
            let rows = (0..c.branches.len()).map(|i| {
                let id2 = id.clone();
                view! {
                    <fieldset class="repeat">
                        {line(studio, node, &id, ("Exit id", "出口标识"), &format!("branches[{i}].id"),
                            get(move |n| match &n.kind { NodeKind::Condition(c) => c.branches.get(i).map(|b| b.id.clone()).unwrap_or_default(), _ => String::new() }),
                            set(move |n, v| if let NodeKind::Condition(c) = &mut n.kind && let Some(b) = c.branches.get_mut(i) { b.id = v.trim().to_owned(); }))}
                        {line(studio, node, &id, ("When (expression)", "条件（表达式）"), &format!("branches[{i}].when"),
                            get(move |n| match &n.kind { NodeKind::Condition(c) => c.branches.get(i).map(|b| b.when.clone()).unwrap_or_default(), _ => String::new() }),
                            set(move |n, v| if let NodeKind::Condition(c) = &mut n.kind && let Some(b) = c.branches.get_mut(i) { b.when = v; }))}
                        <button class="link danger" on:click=move |_| edit(studio, &id2, move |n| if let NodeKind::Condition(c) = &mut n.kind && i < c.branches.len() { c.branches.remove(i); })>
                            {move || studio.t("Remove branch", "删除分支")}
                        </button>
                    </fieldset>
                }
            }).collect_view();
            let id3 = id.clone();
            view! {
                {rows}
                <button on:click=move |_| edit(studio, &id3, |n| if let NodeKind::Condition(c) = &mut n.kind {
                    let taken = c.branches.iter().map(|b| b.id.clone()).collect();
                    c.branches.push(Branch { id: crate::editor::fresh_id("branch", &taken), label: None, when: "true".to_owned() });
                })>{move || studio.t("+ Branch", "+ 分支")}</button>
                <p class="hint">{tx(lang, "Branches are tried in order; `default` is taken when none holds.", "按顺序判断各分支；都不满足时走 default。")}</p>
            }.into_any()
        }
        NodeKind::Set(s) => {
            let rows = (0..s.assignments.len()).map(|i| {
                let id2 = id.clone();
                view! {
                    <fieldset class="repeat">
                        {select(studio, node, &id, ("Variable", "变量"), &format!("assignments[{i}].var"), vars.clone(),
                            get(move |n| match &n.kind { NodeKind::Set(s) => s.assignments.get(i).map(|a| a.var.clone()).unwrap_or_default(), _ => String::new() }),
                            set(move |n, v| if let NodeKind::Set(s) = &mut n.kind && let Some(a) = s.assignments.get_mut(i) { a.var = v; }))}
                        {line(studio, node, &id, ("Value (expression)", "值（表达式）"), &format!("assignments[{i}].value"),
                            get(move |n| match &n.kind { NodeKind::Set(s) => s.assignments.get(i).map(|a| a.value.clone()).unwrap_or_default(), _ => String::new() }),
                            set(move |n, v| if let NodeKind::Set(s) = &mut n.kind && let Some(a) = s.assignments.get_mut(i) { a.value = v; }))}
                        <button class="link danger" on:click=move |_| edit(studio, &id2, move |n| if let NodeKind::Set(s) = &mut n.kind && i < s.assignments.len() { s.assignments.remove(i); })>
                            {move || studio.t("Remove", "删除")}
                        </button>
                    </fieldset>
                }
            }).collect_view();
            let id3 = id.clone();
            view! {
                {rows}
                <button on:click=move |_| edit(studio, &id3, |n| if let NodeKind::Set(s) = &mut n.kind {
                    s.assignments.push(Assignment { var: String::new(), value: String::new() });
                })>{move || studio.t("+ Assignment", "+ 赋值")}</button>
            }.into_any()
        }
        NodeKind::Lookup(_) => view! {
            {line(studio, node, &id, ("Connector", "连接器"), "connector",
                get(|n| match &n.kind { NodeKind::Lookup(l) => l.connector.clone(), _ => String::new() }),
                set(|n, v| if let NodeKind::Lookup(l) = &mut n.kind { l.connector = v.trim().to_owned(); }))}
            {line(studio, node, &id, ("Entity", "数据实体"), "entity",
                get(|n| match &n.kind { NodeKind::Lookup(l) => l.entity.clone(), _ => String::new() }),
                set(|n, v| if let NodeKind::Lookup(l) = &mut n.kind { l.entity = v.trim().to_owned(); }))}
            {line(studio, node, &id, ("Operation", "操作"), "operation",
                get(|n| match &n.kind { NodeKind::Lookup(l) => l.operation.clone(), _ => String::new() }),
                set(|n, v| if let NodeKind::Lookup(l) = &mut n.kind { l.operation = v.trim().to_owned(); }))}
            {area(studio, node, &id, ("Parameters (name = expression, one per line)", "参数（每行一个：名称 = 表达式）"), "params",
                get(|n| match &n.kind { NodeKind::Lookup(l) => map_to_lines(&l.params), _ => String::new() }),
                set(|n, v| if let NodeKind::Lookup(l) = &mut n.kind { l.params = lines_to_map(&v); }))}
            {select(studio, node, &id, ("Save the rows in", "把结果保存到"), "save_as", vars,
                get(|n| match &n.kind { NodeKind::Lookup(l) => l.save_as.clone().unwrap_or_default(), _ => String::new() }),
                set(|n, v| if let NodeKind::Lookup(l) = &mut n.kind { l.save_as = opt(&v); }))}
        }.into_any(),
        NodeKind::Handoff(_) => {
            let priorities = [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent].iter()
                .filter_map(|p| serde_json::to_value(p).ok()?.as_str().map(|s| (s.to_owned(), s.to_owned()))).collect();
            view! {
                {line(studio, node, &id, ("Queue", "队列"), "queue",
                    get(|n| match &n.kind { NodeKind::Handoff(h) => h.queue.clone().unwrap_or_default(), _ => String::new() }),
                    set(|n, v| if let NodeKind::Handoff(h) = &mut n.kind { h.queue = opt(&v); }))}
                {line(studio, node, &id, ("Team", "团队"), "team",
                    get(|n| match &n.kind { NodeKind::Handoff(h) => h.team.clone().unwrap_or_default(), _ => String::new() }),
                    set(|n, v| if let NodeKind::Handoff(h) = &mut n.kind { h.team = opt(&v); }))}
                {select(studio, node, &id, ("Priority", "优先级"), "priority", priorities,
                    get(|n| match &n.kind { NodeKind::Handoff(h) => serde_json::to_value(h.priority).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(), _ => String::new() }),
                    set(|n, v| if let NodeKind::Handoff(h) = &mut n.kind && let Ok(p) = serde_json::from_value(serde_json::Value::String(v)) { h.priority = p; }))}
                {text(studio, node, &id, ("Reason (for the agent)", "原因（给客服看）"), "reason",
                    |n| match &n.kind { NodeKind::Handoff(h) => Some(h.reason.clone()), _ => None },
                    |n, t| if let NodeKind::Handoff(h) = &mut n.kind { h.reason = t; })}
                {text(studio, node, &id, ("Said to the visitor", "对访客说"), "message",
                    |n| match &n.kind { NodeKind::Handoff(h) => h.message.clone(), _ => None },
                    |n, t| if let NodeKind::Handoff(h) = &mut n.kind { h.message = Some(t).filter(|t| !t.variants().iter().all(|(_, s)| s.is_empty())); })}
            }.into_any()
        }
        NodeKind::Wait(_) => view! {
            {line(studio, node, &id, ("Seconds", "秒数"), "seconds",
                get(|n| match &n.kind { NodeKind::Wait(w) => w.seconds.to_string(), _ => String::new() }),
                set(|n, v| if let NodeKind::Wait(w) = &mut n.kind && let Some(s) = num(&v) { w.seconds = s; }))}
            {select(studio, node, &id, ("Save a reply in", "把回复保存到"), "save_as", vars,
                get(|n| match &n.kind { NodeKind::Wait(w) => w.save_as.clone().unwrap_or_default(), _ => String::new() }),
                set(|n, v| if let NodeKind::Wait(w) = &mut n.kind { w.save_as = opt(&v); }))}
        }.into_any(),
        NodeKind::Call(_) => {
            let flows_known: Vec<(String, String)> = std::iter::once((String::new(), "—".to_owned()))
                .chain(studio.library.with_value(|l| l.flows().map(|f| (f.id.clone(), f.id.clone())).collect::<Vec<_>>()))
                .collect();
            view! {
                {select(studio, node, &id, ("Flow", "流程"), "flow", flows_known,
                    get(|n| match &n.kind { NodeKind::Call(c) => c.flow.clone(), _ => String::new() }),
                    set(|n, v| if let NodeKind::Call(c) = &mut n.kind { c.flow = v; }))}
                {area(studio, node, &id, ("Inputs (its variable = expression)", "输入（子流程变量 = 表达式）"), "inputs",
                    get(|n| match &n.kind { NodeKind::Call(c) => map_to_lines(&c.inputs), _ => String::new() }),
                    set(|n, v| if let NodeKind::Call(c) = &mut n.kind { c.inputs = lines_to_map(&v); }))}
                {area(studio, node, &id, ("Outputs (its variable = our variable)", "输出（子流程变量 = 本流程变量）"), "outputs",
                    get(|n| match &n.kind { NodeKind::Call(c) => map_to_lines(&c.outputs), _ => String::new() }),
                    set(|n, v| if let NodeKind::Call(c) = &mut n.kind { c.outputs = lines_to_map(&v); }))}
            }.into_any()
        }
        NodeKind::AbSplit(a) => {
            let rows = (0..a.variants.len()).map(|i| view! {
                <div class="pair">
                    {line(studio, node, &id, ("Exit id", "出口标识"), &format!("variants[{i}].id"),
                        get(move |n| match &n.kind { NodeKind::AbSplit(a) => a.variants.get(i).map(|v| v.id.clone()).unwrap_or_default(), _ => String::new() }),
                        set(move |n, v| if let NodeKind::AbSplit(a) = &mut n.kind && let Some(x) = a.variants.get_mut(i) { x.id = v.trim().to_owned(); }))}
                    {line(studio, node, &id, ("Weight", "权重"), &format!("variants[{i}].weight"),
                        get(move |n| match &n.kind { NodeKind::AbSplit(a) => a.variants.get(i).map(|v| v.weight.to_string()).unwrap_or_default(), _ => String::new() }),
                        set(move |n, v| if let NodeKind::AbSplit(a) = &mut n.kind && let Some(x) = a.variants.get_mut(i) && let Some(w) = num(&v) { x.weight = w; }))}
                </div>
            }).collect_view();
            let id3 = id.clone();
            view! {
                {rows}
                <button on:click=move |_| edit(studio, &id3, |n| if let NodeKind::AbSplit(a) = &mut n.kind {
                    let taken = a.variants.iter().map(|v| v.id.clone()).collect();
                    a.variants.push(Variant { id: crate::editor::fresh_id("variant", &taken), weight: 50 });
                })>{move || studio.t("+ Variant", "+ 分支")}</button>
            }.into_any()
        }
        NodeKind::Jump(_) => {
            let targets: Vec<(String, String)> = std::iter::once((String::new(), "—".to_owned()))
                .chain(studio.doc.with_untracked(|d| d.nodes.iter().filter(|x| x.id != id).map(|x| (x.id.clone(), x.id.clone())).collect::<Vec<_>>()))
                .collect();
            view! {
                {select(studio, node, &id, ("Continue at", "跳转到"), "target", targets,
                    get(|n| match &n.kind { NodeKind::Jump(j) => j.target.clone(), _ => String::new() }),
                    set(|n, v| if let NodeKind::Jump(j) = &mut n.kind { j.target = v; }))}
            }.into_any()
        }
        NodeKind::End(_) => view! {
            {line(studio, node, &id, ("Outcome (for reports)", "结果（用于统计）"), "outcome",
                get(|n| match &n.kind { NodeKind::End(e) => e.outcome.clone().unwrap_or_default(), _ => String::new() }),
                set(|n, v| if let NodeKind::End(e) = &mut n.kind { e.outcome = opt(&v); }))}
        }.into_any(),
    };
    let id_del = id.clone();
    let id_attr = id.clone();
    view! {
        <div class="node-form" data-test="node-form" data-node=id_attr>
            <h3 style=format!("--kind:{}", k.color)>
                <span class="swatch"></span>{k.label(lang)} " · " <code>{id.clone()}</code>
            </h3>
            {line(studio, node, &id, ("Label", "显示名称"), "label",
                get(|n| n.label.clone().unwrap_or_default()),
                set(|n, v| n.label = opt(&v)))}
            <FieldProblems id=id.clone() prefix=String::new() />
            {body}
            <Exits id=id />
            <button class="danger" data-test="delete-node" on:click=move |_| {
                studio.selection.set(crate::editor::Selection::node(&id_del));
                studio.delete_selection();
            }>{move || studio.t("Delete step", "删除步骤")}</button>
        </div>
    }
}

fn message_form(
    studio: Studio,
    node: Memo<Option<Node>>,
    id: &str,
    parts: usize,
    vars: &[(String, String)],
) -> impl IntoView + use<> {
    let kinds = node.with_untracked(|n| match n.as_ref().map(|n| &n.kind) {
        Some(NodeKind::Message(m)) => m.parts.clone(),
        _ => Vec::new(),
    });
    let rows = (0..parts)
        .map(|i| {
            let id2 = id.to_owned();
            let part = match kinds.get(i) {
                Some(Part::Text { .. }) => text(studio, node, id, ("Text", "文字"), &format!("parts[{i}]"),
                    move |n| match &n.kind { NodeKind::Message(m) => match m.parts.get(i) { Some(Part::Text { text }) => Some(text.clone()), _ => None }, _ => None },
                    move |n, t| if let NodeKind::Message(m) = &mut n.kind && let Some(Part::Text { text }) = m.parts.get_mut(i) { *text = t; }).into_any(),
                Some(Part::Image { .. }) => line(studio, node, id, ("Picture URL", "图片地址"), &format!("parts[{i}].url"),
                    get(move |n| match &n.kind { NodeKind::Message(m) => match m.parts.get(i) { Some(Part::Image { url, .. }) => url.clone(), _ => String::new() }, _ => String::new() }),
                    set(move |n, v| if let NodeKind::Message(m) = &mut n.kind && let Some(Part::Image { url, .. }) = m.parts.get_mut(i) { *url = v; })).into_any(),
                Some(Part::Products { .. }) => select(studio, node, id, ("Product cards from the list", "商品卡片来自列表"), &format!("parts[{i}].from"), vars.to_vec(),
                    get(move |n| match &n.kind { NodeKind::Message(m) => match m.parts.get(i) { Some(Part::Products { from, .. }) => from.clone(), _ => String::new() }, _ => String::new() }),
                    set(move |n, v| if let NodeKind::Message(m) = &mut n.kind && let Some(Part::Products { from, .. }) = m.parts.get_mut(i) { *from = v; })).into_any(),
                Some(Part::Carousel { .. }) => area(studio, node, id, ("Carousel cards (JSON)", "轮播卡片（JSON）"), &format!("parts[{i}].cards"),
                    get(move |n| match &n.kind { NodeKind::Message(m) => match m.parts.get(i) { Some(Part::Carousel { cards }) => serde_json::to_string_pretty(cards).unwrap_or_default(), _ => String::new() }, _ => String::new() }),
                    set(move |n, v| if let NodeKind::Message(m) = &mut n.kind && let Some(Part::Carousel { cards }) = m.parts.get_mut(i) && let Ok(c) = serde_json::from_str(&v) { *cards = c; })).into_any(),
                None => ().into_any(),
            };
            view! {
                <fieldset class="repeat">
                    {part}
                    <button class="link danger" on:click=move |_| edit(studio, &id2, move |n| if let NodeKind::Message(m) = &mut n.kind && i < m.parts.len() { m.parts.remove(i); })>
                        {move || studio.t("Remove part", "删除这一段")}
                    </button>
                </fieldset>
            }
        })
        .collect_view();
    let add = |what: &'static str| {
        let id = id.to_owned();
        move |_| {
            edit(studio, &id, move |n| {
                if let NodeKind::Message(m) = &mut n.kind {
                    m.parts.push(match what {
                        "image" => Part::Image {
                            url: String::new(),
                            alt: None,
                        },
                        "products" => Part::Products {
                            from: String::new(),
                            limit: None,
                        },
                        _ => Part::Text {
                            text: Text::Plain(String::new()),
                        },
                    });
                }
            });
        }
    };
    view! {
        {rows}
        <div class="adders">
            <button on:click=add("text")>{move || studio.t("+ Text", "+ 文字")}</button>
            <button on:click=add("image")>{move || studio.t("+ Picture", "+ 图片")}</button>
            <button on:click=add("products")>{move || studio.t("+ Product cards", "+ 商品卡片")}</button>
        </div>
    }
}

/// Each exit of the step with the step it leads to: the keyboard's way to draw arrows.
#[component]
fn Exits(id: String) -> impl IntoView {
    let studio = expect_context::<Studio>();
    let rows = move || {
        studio.doc.with(|d| {
            let Some(n) = d.node(&id) else {
                return Vec::new();
            };
            let targets: Vec<String> = d.nodes.iter().map(|x| x.id.clone()).collect();
            n.kind
                .ports()
                .into_iter()
                .map(|p| {
                    let to = d
                        .edge(&id, &p.name)
                        .map(|e| e.to.clone())
                        .unwrap_or_default();
                    (id.clone(), p.name, p.required, to, targets.clone())
                })
                .collect()
        })
    };
    let rows2 = rows.clone();
    view! {
        <Show when=move || !rows2().is_empty()>
            <h4>{move || studio.t("Exits", "出口")}</h4>
        </Show>
        {move || rows().into_iter().map(|(from, port, required, to, targets)| {
            let change = {
                let (from, port) = (from, port.clone());
                move |ev: leptos::ev::Event| {
                    let target = event_target_value(&ev);
                    let op = studio.doc.with_untracked(|d| {
                        let old = d.edge(&from, &port).cloned();
                        if target.is_empty() {
                            old.map(|edge| Op::Disconnect { edge })
                        } else {
                            Some(Op::reconnect(d, flows::model::Edge { from: from.clone(), port: port.clone(), to: target }))
                        }
                    });
                    if let Some(op) = op {
                        studio.apply(&op);
                    }
                }
            };
            view! {
                <label class="field exit">
                    <span><code>{port.clone()}</code>{(!required).then_some(" (optional)")}</span>
                    <select data-test=format!("exit-{port}") prop:value=to on:change=change>
                        <option value="">"—"</option>
                        {targets.into_iter().map(|t| view! { <option value=t>{t.clone()}</option> }).collect_view()}
                    </select>
                </label>
            }
        }).collect_view()}
    }
}

/// With nothing selected: the flow's variables.
#[component]
fn FlowSettings() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let name = RwSignal::new(String::new());
    let ty = RwSignal::new("string".to_owned());
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked().trim().to_owned();
        let Ok(t) = serde_json::from_value::<Type>(serde_json::Value::String(ty.get_untracked()))
        else {
            return;
        };
        let op = studio.doc.with_untracked(|d| Op::AddVariable {
            index: d.variables.len(),
            variable: Variable {
                name: n,
                ty: t,
                scope: flows::model::Scope::Conversation,
                default: None,
                description: None,
            },
        });
        if studio.apply(&op) {
            name.set(String::new());
        }
    };
    let lang = move || studio.lang.get();
    view! {
        <div class="flow-settings">
            <h3>{move || studio.t("This flow", "当前流程")}</h3>
            <p class="hint">{move || tx(lang(), "Select a step to edit it. Shift-click or Shift-drag selects several.", "选中一个步骤即可编辑。按住 Shift 点击或拖动可多选。")}</p>
            <h4>{move || studio.t("Variables", "变量")}</h4>
            <ul class="variables" data-test="variables">
                {move || studio.doc.with(|d| d.variables.clone()).into_iter().map(|v| {
                    let n = v.name.clone();
                    let ty = serde_json::to_value(&v.ty).ok().and_then(|t| t.as_str().map(str::to_owned)).unwrap_or_default();
                    view! {
                        <li><code>{v.name}</code> " : " {ty}
                            <button class="link danger" on:click=move |_| { studio.apply(&Op::RemoveVariable { name: n.clone() }); }>"×"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <form class="add-variable" on:submit=add>
                <input data-test="variable-name" required pattern="[A-Za-z_][A-Za-z0-9_]*" placeholder="budget"
                    prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                <select data-test="variable-type" prop:value=move || ty.get() on:change=move |ev| ty.set(event_target_value(&ev))>
                    {["string", "number", "bool", "list", "list<map>", "map", "any"].into_iter().map(|t| view! { <option value=t>{t}</option> }).collect_view()}
                </select>
                <button type="submit" data-test="variable-add">{move || studio.t("Add", "添加")}</button>
            </form>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_gains_a_language_without_losing_the_other() {
        let plain = Text::Plain("你好".to_owned());
        let both = with_variant(&plain, "en", "zh-CN", "Hello".to_owned());
        assert_eq!(variant(&both, "zh-CN", "zh-CN"), "你好");
        assert_eq!(variant(&both, "en", "zh-CN"), "Hello");
        let only_en = with_variant(&both, "zh-CN", "zh-CN", String::new());
        assert_eq!(variant(&only_en, "zh-CN", "zh-CN"), "");
        assert_eq!(variant(&only_en, "en", "zh-CN"), "Hello");
    }

    #[test]
    fn variables_are_offered_after_double_braces_and_completed() {
        // "您好 {{na" with the caret at the end: 2 CJK characters are 2 UTF-16 units.
        let value = "您好 {{na";
        let caret = value.encode_utf16().count();
        assert_eq!(completion(value, caret), Some((7, "na".to_owned())));
        assert_eq!(completion("{{name}} ok", 11), None);
        assert_eq!(completion("no braces", 9), None);
        let (done, at) = complete("您好 {{na!", 7, "name").expect("completes");
        assert_eq!(done, "您好 {{name}}!");
        assert_eq!(at, "您好 {{name}}".encode_utf16().count());
    }

    #[test]
    fn parameter_lines_round_trip() {
        let map = lines_to_map("q = budget\n\n  limit=  5 \nnot a pair");
        assert_eq!(map.get("q").map(String::as_str), Some("budget"));
        assert_eq!(map.get("limit").map(String::as_str), Some("5"));
        assert_eq!(map.len(), 2);
        assert_eq!(lines_to_map(&map_to_lines(&map)), map);
    }

    #[test]
    fn the_form_is_rebuilt_only_when_the_shape_changes() {
        let mut node = crate::studio::kinds::new_node("choice", "ask".to_owned()).expect("a kind");
        let before = shape(&node);
        if let NodeKind::Choice(c) = &mut node.kind {
            c.prompt = Text::Plain("Which one?".to_owned());
        }
        assert_eq!(shape(&node), before);
        if let NodeKind::Choice(c) = &mut node.kind {
            c.options.pop();
        }
        assert_ne!(shape(&node), before);
    }
}
