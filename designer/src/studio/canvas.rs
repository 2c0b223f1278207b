//! The canvas and the palette: nodes, arrows, comments and groups drawn from the document,
//! and what the pointer does to them (select, move, connect, rubber-band, pan, zoom, drop a
//! new node). Positions come from `geometry`, never from measuring the DOM.
//!
//! Drags are previews: while the pointer is down only `Studio::drag` changes (a node reads it
//! to draw itself shifted); the document changes once, with one undoable op, when it is
//! released. That keeps a drag over a 1,000-node flow to one small update per frame.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use flows::Severity;
use flows::model::{Edge, Node, Position};

use super::geometry::{self, NODE_WIDTH, PORT_ROW};
use super::kinds::{KINDS, kind};
use super::{Drag, Panel, Studio};
use crate::editor::{Op, Selection, can_connect, snap};

fn client(event: &web_sys::PointerEvent) -> Position {
    Position {
        x: f64::from(event.client_x()),
        y: f64::from(event.client_y()),
    }
}

fn sub(a: Position, b: Position) -> Position {
    Position {
        x: a.x - b.x,
        y: a.y - b.y,
    }
}

fn add(a: Position, b: Position) -> Position {
    Position {
        x: a.x + b.x,
        y: a.y + b.y,
    }
}

/// The node (`data-node`) under client coordinates, if any.
fn node_at(at: Position) -> Option<String> {
    let document = web_sys::window()?.document()?;
    let element = document.element_from_point(at.x as f32, at.y as f32)?;
    element
        .closest("[data-node]")
        .ok()??
        .get_attribute("data-node")
}

/// Whether client coordinates are over the canvas.
fn over_canvas(at: Position) -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.element_from_point(at.x as f32, at.y as f32))
        .and_then(|el| el.closest(".canvas").ok().flatten())
        .is_some()
}

#[component]
pub fn Palette() -> impl IntoView {
    let studio = expect_context::<Studio>();
    view! {
        <nav class="palette" aria-label=move || studio.t("Steps to add", "可添加的步骤")>
            <h2>{move || studio.t("Steps", "步骤")}</h2>
            {KINDS.iter().map(|k| {
                let k = *k;
                view! {
                    <button class="palette-item" data-kind=k.name data-test=format!("palette-{}", k.name)
                        title=move || k.hint(studio.lang.get())
                        style=format!("--kind:{}", k.color)
                        on:pointerdown=move |ev: web_sys::PointerEvent| {
                            if ev.button() != 0 { return; }
                            ev.prevent_default();
                            studio.measure_canvas();
                            studio.drag.set(Some(Drag::Place { kind: k.name, screen: client(&ev), moved: false }));
                        }
                        on:keydown=move |ev: web_sys::KeyboardEvent| {
                            if ev.key() == "Enter" || ev.key() == " " {
                                ev.prevent_default();
                                studio.add_node(k.name, studio.view_centre());
                            }
                        }>
                        <span class="swatch"></span>
                        {move || k.label(studio.lang.get())}
                    </button>
                }
            }).collect_view()}
            <p class="palette-tip">{move || studio.t(
                "Drag a step onto the canvas, or press Enter on it. Drag from an exit (●) to a step to connect.",
                "把步骤拖到画布上，或选中后按回车。从出口（●）拖到另一个步骤即可连线。")}</p>
        </nav>
        // The ghost that follows the pointer while a kind is dragged from the palette.
        <Show when=move || studio.drag.with(|d| matches!(d, Some(Drag::Place { moved: true, .. })))>
            {move || studio.drag.with(|d| match d {
                Some(Drag::Place { kind: name, screen, .. }) => {
                    let k = kind(name);
                    view! {
                        <div class="ghost" style=format!("left:{}px;top:{}px;--kind:{}", screen.x + 4.0, screen.y + 4.0, k.color)>
                            {k.label(studio.lang.get_untracked())}
                        </div>
                    }.into_any()
                }
                _ => ().into_any(),
            })}
        </Show>
    }
}

/// A fingerprint of what a node's box shows, so that `<For>` re-creates a box only when its
/// node, position, problems or statistics changed.
fn fingerprint(parts: &[&str]) -> u64 {
    // FNV-1a: small, deterministic, good enough to tell two states of one node apart.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// One node as drawn: everything its box needs, computed from the document.
#[derive(Clone, PartialEq)]
struct Boxed {
    node: Node,
    at: Position,
    errors: usize,
    warnings: usize,
    stats: Option<(u64, u64)>,
    key: (String, u64),
}

fn summary(node: &Node, locale: &str) -> String {
    use flows::model::{NodeKind, Part};
    let text = |t: &flows::model::Text| t.pick(locale, "zh-CN").to_owned();
    match &node.kind {
        NodeKind::Start(_) => String::new(),
        NodeKind::Message(m) => m
            .parts
            .iter()
            .map(|p| match p {
                Part::Text { text: t } => text(t),
                Part::Image { url, .. } => format!("🖼 {url}"),
                Part::Products { from, .. } => format!("🛍 {from}"),
                Part::Carousel { cards } => format!("🎠 {}", cards.len()),
            })
            .collect::<Vec<_>>()
            .join(" · "),
        NodeKind::Choice(c) => text(&c.prompt),
        NodeKind::Input(i) => format!("{} → {}", text(&i.prompt), i.save_as),
        NodeKind::Condition(c) => c
            .branches
            .iter()
            .map(|b| b.when.clone())
            .collect::<Vec<_>>()
            .join(" | "),
        NodeKind::Set(s) => s
            .assignments
            .iter()
            .map(|a| format!("{} = {}", a.var, a.value))
            .collect::<Vec<_>>()
            .join("; "),
        NodeKind::Lookup(l) => format!("{}.{}.{}", l.connector, l.entity, l.operation),
        NodeKind::Handoff(h) => h
            .queue
            .clone()
            .or_else(|| h.team.clone())
            .unwrap_or_default(),
        NodeKind::Wait(w) => format!("{} s", w.seconds),
        NodeKind::Call(c) => c.flow.clone(),
        NodeKind::AbSplit(a) => a
            .variants
            .iter()
            .map(|v| format!("{} {}", v.id, v.weight))
            .collect::<Vec<_>>()
            .join(" / "),
        NodeKind::Jump(j) => format!("→ {}", j.target),
        NodeKind::End(e) => e.outcome.clone().unwrap_or_default(),
    }
}

#[component]
pub fn Canvas() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let boxes = Memo::new(move |_| {
        let locale = studio.lang.get().tag();
        let problems = studio.diagnostics.get();
        let stats = studio.analytics.get();
        studio.doc.with(|flow| {
            flow.nodes
                .iter()
                .map(|n| {
                    let at = geometry::position(flow, &n.id);
                    let count = |s: Severity| {
                        problems
                            .iter()
                            .filter(|d| d.severity == s && d.node.as_deref() == Some(n.id.as_str()))
                            .count()
                    };
                    let stats = stats.as_ref().map(|a| {
                        a.nodes
                            .get(&n.id)
                            .map_or((0, 0), |s| (s.visits, s.drop_off))
                    });
                    let errors = count(Severity::Error);
                    let warnings = count(Severity::Warning);
                    let json = serde_json::to_string(n).unwrap_or_default();
                    let key = fingerprint(&[
                        &json,
                        &format!("{:.1},{:.1}", at.x, at.y),
                        &format!("{errors}/{warnings}/{stats:?}/{locale}"),
                    ]);
                    Boxed {
                        node: n.clone(),
                        at,
                        errors,
                        warnings,
                        stats,
                        key: (n.id.clone(), key),
                    }
                })
                .collect::<Vec<_>>()
        })
    });
    let arrows = Memo::new(move |_| {
        let stats = studio.analytics.get();
        studio.doc.with(|flow| {
            flow.edges
                .iter()
                .filter_map(|e| {
                    let from = flow.node(&e.from)?;
                    let to_node = flow.node(&e.to)?;
                    let index = from.kind.ports().iter().position(|p| p.name == e.port)?;
                    let a = geometry::position(flow, &e.from);
                    let b = geometry::position(flow, &to_node.id);
                    let visits = stats.as_ref().map(|s| {
                        s.edges
                            .iter()
                            .find(|x| x.from == e.from && x.port == e.port && x.to == e.to)
                            .map_or(0, |x| x.visits)
                    });
                    Some((e.clone(), index, a, b, visits))
                })
                .collect::<Vec<_>>()
        })
    });

    // Wheel zoom needs a listener that may cancel scrolling (not a passive one).
    Effect::new(move |_| {
        let Some(el) = studio.canvas.get() else {
            return;
        };
        let on_wheel =
            Closure::<dyn FnMut(web_sys::WheelEvent)>::new(move |ev: web_sys::WheelEvent| {
                ev.prevent_default();
                studio.measure_canvas();
                let o = studio.canvas_origin();
                let at = Position {
                    x: f64::from(ev.client_x()) - o.x,
                    y: f64::from(ev.client_y()) - o.y,
                };
                if ev.ctrl_key()
                    || ev.meta_key()
                    || ev.delta_mode() != 0
                    || ev.delta_y().abs() > 40.0
                {
                    let factor = (-ev.delta_y() * 0.002).exp();
                    studio.view.update(|v| *v = v.zoom_at(at, factor));
                } else {
                    studio.view.update(|v| {
                        v.x -= ev.delta_x();
                        v.y -= ev.delta_y();
                    });
                }
            });
        let options = web_sys::AddEventListenerOptions::new();
        options.set_passive(false);
        let _ = el.add_event_listener_with_callback_and_add_event_listener_options(
            "wheel",
            on_wheel.as_ref().unchecked_ref(),
            &options,
        );
        on_wheel.forget();
    });

    let _ = window_event_listener(leptos::ev::pointermove, move |ev| pointer_move(studio, &ev));
    let _ = window_event_listener(leptos::ev::pointerup, move |ev| pointer_up(studio, &ev));

    let background_down = move |ev: web_sys::PointerEvent| {
        if ev.button() != 0 && ev.button() != 1 {
            return;
        }
        ev.prevent_default();
        studio.measure_canvas();
        let at = client(&ev);
        if ev.shift_key() {
            let w = studio.world_at(at);
            studio.drag.set(Some(Drag::Band { a: w, b: w }));
        } else {
            studio.selection.set(Selection::default());
            studio.drag.set(Some(Drag::Pan {
                start: at,
                view: studio.view.get_untracked(),
            }));
        }
        focus_canvas(studio);
    };

    view! {
        <div class="canvas" node_ref=studio.canvas tabindex="0" role="region" data-test="canvas"
            aria-label=move || studio.t("Flow canvas: arrow keys move between steps", "流程画布：方向键在步骤间移动")
            class:grid=move || studio.grid.get()
            style=move || { let v = studio.view.get(); format!("background-size:{0}px {0}px;background-position:{1}px {2}px", 20.0 * v.zoom, v.x, v.y) }
            on:pointerdown=background_down>
            <div class="world" style=move || { let v = studio.view.get(); format!("transform:translate({}px,{}px) scale({})", v.x, v.y, v.zoom) }>
                <Groups />
                <svg class="arrows" width="1" height="1" overflow="visible">
                    <defs>
                        <marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                            <path d="M0,0 L10,5 L0,10 z" fill="#64748b" />
                        </marker>
                    </defs>
                    <For each=move || arrows.get()
                        key=|(e, index, a, b, visits)| (e.from.clone(), e.port.clone(), e.to.clone(), *index, format!("{:.1},{:.1},{:.1},{:.1},{visits:?}", a.x, a.y, b.x, b.y))
                        let:arrow>
                        <Arrow edge=arrow.0 index=arrow.1 from_at=arrow.2 to_at=arrow.3 visits=arrow.4 />
                    </For>
                    <Wire />
                </svg>
                <Comments />
                <For each=move || boxes.get() key=|b| b.key.clone() let:boxed>
                    <NodeBox boxed=boxed />
                </For>
                <Band />
            </div>
            <Minimap />
            <Show when=move || studio.doc.with(|f| f.nodes.is_empty())>
                <p class="empty-hint">{move || studio.t("Drag a step from the left to begin.", "从左侧拖一个步骤开始。")}</p>
            </Show>
        </div>
    }
}

fn focus_canvas(studio: Studio) {
    if let Some(el) = studio.canvas.get_untracked() {
        let _ = el.focus();
    }
}

/// How far the selection is being dragged (zero when it is not).
fn drag_delta(studio: Studio) -> Position {
    match studio.drag.get() {
        Some(Drag::Move { delta, .. }) => delta,
        _ => Position::default(),
    }
}

#[component]
fn NodeBox(boxed: Boxed) -> impl IntoView {
    let studio = expect_context::<Studio>();
    let Boxed {
        node,
        at,
        errors,
        warnings,
        stats,
        ..
    } = boxed;
    let id = node.id.clone();
    let k = kind(node.kind.name());
    let ports = node.kind.ports();
    let height = geometry::node_height(&node);
    let selected = {
        let id = id.clone();
        Memo::new(move |_| studio.selection.with(|s| s.contains_node(&id)))
    };
    let style = move || {
        let d = if selected.get() {
            drag_delta(studio)
        } else {
            Position::default()
        };
        format!(
            "transform:translate({}px,{}px);width:{NODE_WIDTH}px;height:{height}px;--kind:{}",
            at.x + d.x,
            at.y + d.y,
            k.color
        )
    };
    // Reads only `wiring` (which changes when an arrow starts or ends, not on every pointer
    // move), so a drag does not touch the boxes it does not move.
    let wiring = studio.wiring;
    let target_state = {
        let id = id.clone();
        Memo::new(move |_| match wiring.get() {
            Some((from, port)) => {
                let edge = Edge {
                    from,
                    port,
                    to: id.clone(),
                };
                if studio.doc.with_untracked(|f| can_connect(f, &edge).is_ok()) {
                    "target-ok"
                } else {
                    "target-bad"
                }
            }
            None => "",
        })
    };
    let down = {
        let id = id.clone();
        move |ev: web_sys::PointerEvent| {
            if ev.button() != 0 {
                return;
            }
            ev.stop_propagation();
            ev.prevent_default();
            studio.measure_canvas();
            let additive = ev.shift_key() || ev.ctrl_key() || ev.meta_key();
            if additive {
                studio.selection.update(|s| s.click_node(&id, true));
            } else if !studio.selection.with_untracked(|s| s.contains_node(&id)) {
                studio.selection.set(Selection::node(&id));
            }
            if studio.panel.get_untracked() != Panel::Preview {
                studio.panel.set(Panel::Inspector);
            }
            studio.drag.set(Some(Drag::Move {
                start: studio.world_at(client(&ev)),
                delta: Position::default(),
            }));
            focus_canvas(studio);
        }
    };
    let label = node.label.clone().unwrap_or_else(|| id.clone());
    let text = summary(&node, studio.locale());
    let port_rows = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let from = id.clone();
            let name = port.name.clone();
            let connected = studio
                .doc
                .with_untracked(|f| f.edge(&from, &name).is_some());
            let down = {
                let from = from.clone();
                move |ev: web_sys::PointerEvent| {
                    if ev.button() != 0 {
                        return;
                    }
                    ev.stop_propagation();
                    ev.prevent_default();
                    studio.measure_canvas();
                    studio.drag.set(Some(Drag::Wire {
                        from: from.clone(),
                        port: name.clone(),
                        at: studio.world_at(client(&ev)),
                    }));
                }
            };
            view! {
                <div class="port-row" style=format!("top:{}px", geometry::NODE_HEAD + PORT_ROW * i as f64)>
                    <span class="port-name">{port.name.clone()}{(!port.required).then_some(" ?")}</span>
                    <span class="port" class:connected=connected data-port=port.name.clone()
                        data-test=format!("port-{}-{}", from, port.name)
                        title=move || studio.t("Drag to a step to connect", "拖到一个步骤上连线")
                        on:pointerdown=down></span>
                </div>
            }
        })
        .collect_view();
    view! {
        <div class={move || format!("node {} {}", if selected.get() { "selected" } else { "" }, target_state.get())}
            data-node=id.clone() data-kind=k.name data-test=format!("node-{id}")
            style=style on:pointerdown=down
            role="group" aria-label=format!("{} {}", k.en, label)>
            <div class="node-head">
                <span class="node-kind">{move || k.label(studio.lang.get())}</span>
                <span class="node-title">{label.clone()}</span>
                {(errors > 0).then(|| view! { <span class="badge error" title="errors" data-test="node-errors">{errors}</span> })}
                {(errors == 0 && warnings > 0).then(|| view! { <span class="badge warning" title="warnings">{warnings}</span> })}
            </div>
            <div class="node-summary">{text}</div>
            <span class="port-in" title="in"></span>
            {port_rows}
            {stats.map(|(visits, drop)| view! {
                <div class="node-stats" data-test="node-stats" data-visits=visits data-drop-off=drop>
                    {move || studio.t("entered ", "进入 ")} {visits}
                    {move || studio.t(" · stopped here ", " · 在此离开 ")} {drop}
                </div>
            })}
        </div>
    }
}

#[component]
fn Arrow(
    edge: Edge,
    index: usize,
    from_at: Position,
    to_at: Position,
    visits: Option<u64>,
) -> impl IntoView {
    let studio = expect_context::<Studio>();
    let (from, to) = (edge.from.clone(), edge.to.clone());
    // Which ends move with the selection; only an arrow with a moving end follows the drag.
    let moving = Memo::new(move |_| {
        studio
            .selection
            .with(|s| (s.contains_node(&from), s.contains_node(&to)))
    });
    let d = move || {
        let (mut a, mut b) = (from_at, to_at);
        let (from_moves, to_moves) = moving.get();
        if (from_moves || to_moves)
            && let Some(Drag::Move { delta, .. }) = studio.drag.get()
        {
            if from_moves {
                a = add(a, delta);
            }
            if to_moves {
                b = add(b, delta);
            }
        }
        geometry::arrow_path(geometry::output_anchor(a, index), geometry::input_anchor(b))
    };
    let remove = {
        let edge = edge.clone();
        move |ev: web_sys::MouseEvent| {
            ev.stop_propagation();
            studio.apply(&Op::Disconnect { edge: edge.clone() });
        }
    };
    let d2 = d;
    let mid = geometry::output_anchor(from_at, index);
    let end = geometry::input_anchor(to_at);
    view! {
        <g class="arrow" data-from=edge.from.clone() data-port=edge.port.clone() data-to=edge.to>
            <path class="arrow-hit" d=d on:dblclick=remove>
                <title>{move || studio.t("Double-click to remove this arrow", "双击删除这条连线")}</title>
            </path>
            <path class="arrow-line" d=d2 marker-end="url(#arrowhead)" />
            {visits.map(|v| view! {
                <text class="arrow-stats" x=(mid.x + end.x) / 2.0 y=(mid.y + end.y) / 2.0 - 4.0>{v}</text>
            })}
        </g>
    }
}

/// The arrow being drawn from an exit to the pointer.
#[component]
fn Wire() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let d = move || match studio.drag.get() {
        Some(Drag::Wire { from, port, at }) => studio.doc.with_untracked(|f| {
            let node = f.node(&from)?;
            let index = node.kind.ports().iter().position(|p| p.name == port)?;
            let start = geometry::output_anchor(geometry::position(f, &from), index);
            Some(geometry::arrow_path(start, at))
        }),
        _ => None,
    };
    view! {
        <Show when=move || d().is_some()>
            <path class="arrow-line wire" d=move || d().unwrap_or_default() />
        </Show>
    }
}

#[component]
fn Band() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let rect = move || match studio.drag.get() {
        Some(Drag::Band { a, b }) => Some(format!(
            "left:{}px;top:{}px;width:{}px;height:{}px",
            a.x.min(b.x),
            a.y.min(b.y),
            (a.x - b.x).abs(),
            (a.y - b.y).abs()
        )),
        _ => None,
    };
    view! {
        <Show when=move || rect().is_some()>
            <div class="band" style=move || rect().unwrap_or_default()></div>
        </Show>
    }
}

#[component]
fn Comments() -> impl IntoView {
    let studio = expect_context::<Studio>();
    view! {
        <For each=move || studio.doc.with(|f| f.layout.comments.clone())
            key=|c| (c.id.clone(), c.text.clone(), format!("{:.1},{:.1}", c.position.x, c.position.y))
            let:comment>
            {
                let id = comment.id.clone();
                let selected = {
                    let id = id.clone();
                    move || studio.selection.with(|s| s.contains_comment(&id))
                };
                let style = {
                    let selected = selected.clone();
                    move || {
                        let d = if selected() { drag_delta(studio) } else { Position::default() };
                        format!("transform:translate({}px,{}px)", comment.position.x + d.x, comment.position.y + d.y)
                    }
                };
                let down = {
                    let id = id.clone();
                    move |ev: web_sys::PointerEvent| {
                        if ev.button() != 0 { return; }
                        ev.stop_propagation();
                        studio.measure_canvas();
                        let additive = ev.shift_key();
                        if !additive && !studio.selection.with_untracked(|s| s.contains_comment(&id)) {
                            studio.selection.set(Selection::default());
                        }
                        studio.selection.update(|s| if !s.contains_comment(&id) { s.click_comment(&id, true) });
                        studio.drag.set(Some(Drag::Move { start: studio.world_at(client(&ev)), delta: Position::default() }));
                    }
                };
                let edit = {
                    move |ev: leptos::ev::Event| {
                        studio.apply(&Op::EditComment { id: id.clone(), text: event_target_value(&ev) });
                    }
                };
                view! {
                    <div class="comment" class:selected=selected style=style on:pointerdown=down data-test="comment">
                        <textarea aria-label=move || studio.t("Note", "备注") on:change=edit
                            on:pointerdown=|ev| ev.stop_propagation()>{comment.text}</textarea>
                    </div>
                }
            }
        </For>
    }
}

#[component]
fn Groups() -> impl IntoView {
    let studio = expect_context::<Studio>();
    view! {
        <For each=move || studio.doc.with(|f| f.layout.groups.iter().filter_map(|g| {
                let r = geometry::group_rect(f, &g.nodes)?;
                Some((g.id.clone(), g.label.clone(), format!("left:{}px;top:{}px;width:{}px;height:{}px", r.x, r.y, r.w, r.h)))
            }).collect::<Vec<_>>())
            key=|g| g.clone()
            let:group>
            <div class="group" style=group.2 data-test="group">
                <span class="group-label">{group.1.clone()}</span>
            </div>
        </For>
    }
}

/// The whole flow in small, with the part the canvas shows; a click moves the view there.
#[component]
fn Minimap() -> impl IntoView {
    let studio = expect_context::<Studio>();
    const W: f64 = 180.0;
    const H: f64 = 120.0;
    let frame = Memo::new(move |_| {
        studio.doc.with(|f| {
            let b = geometry::bounds(f)?;
            let scale = (W / b.w).min(H / b.h).min(0.25);
            let rects: Vec<(f64, f64, f64, f64, &'static str)> = f
                .nodes
                .iter()
                .map(|n| {
                    let p = geometry::position(f, &n.id);
                    (
                        (p.x - b.x) * scale,
                        (p.y - b.y) * scale,
                        (NODE_WIDTH * scale).max(2.0),
                        (geometry::node_height(n) * scale).max(2.0),
                        kind(n.kind.name()).color,
                    )
                })
                .collect();
            Some((b, scale, rects))
        })
    });
    let viewport = move || {
        let (b, scale, _) = frame.get()?;
        let v = studio.view.get();
        let (w, h) = studio.canvas_size();
        let tl = v.to_world(Position::default());
        let br = v.to_world(Position { x: w, y: h });
        Some(format!(
            "x:{};y:{};w:{};h:{}",
            (tl.x - b.x) * scale,
            (tl.y - b.y) * scale,
            (br.x - tl.x) * scale,
            (br.y - tl.y) * scale
        ))
    };
    let click = move |ev: web_sys::MouseEvent| {
        ev.stop_propagation();
        let Some((b, scale, _)) = frame.get_untracked() else {
            return;
        };
        let world = Position {
            x: f64::from(ev.offset_x()) / scale + b.x,
            y: f64::from(ev.offset_y()) / scale + b.y,
        };
        let (w, h) = studio.canvas_size();
        studio.view.update(|v| *v = v.centered_on(world, w, h));
    };
    view! {
        <Show when=move || frame.with(Option::is_some)>
            <svg class="minimap" width=W height=H on:click=click on:pointerdown=|ev| ev.stop_propagation()
                aria-hidden="true">
                {move || frame.get().map(|(_, _, rects)| rects.into_iter().map(|(x, y, w, h, c)| view! {
                    <rect x=x y=y width=w height=h fill=c opacity="0.7" />
                }).collect_view())}
                {move || viewport().map(|s| {
                    let n: Vec<f64> = s.split(';').filter_map(|p| p.split(':').nth(1)?.parse().ok()).collect();
                    let get = |i: usize| n.get(i).copied().unwrap_or(0.0);
                    view! { <rect class="minimap-view" x=get(0) y=get(1) width=get(2) height=get(3) /> }
                })}
            </svg>
        </Show>
    }
}

fn pointer_move(studio: Studio, ev: &web_sys::PointerEvent) {
    let Some(drag) = studio.drag.get_untracked() else {
        return;
    };
    let at = client(ev);
    let next = match drag {
        Drag::Move { start, .. } => Drag::Move {
            start,
            delta: sub(studio.world_at(at), start),
        },
        Drag::Wire { from, port, .. } => Drag::Wire {
            from,
            port,
            at: studio.world_at(at),
        },
        Drag::Band { a, .. } => Drag::Band {
            a,
            b: studio.world_at(at),
        },
        Drag::Pan { start, view } => {
            let d = sub(at, start);
            studio.view.set(geometry::View {
                x: view.x + d.x,
                y: view.y + d.y,
                zoom: view.zoom,
            });
            return;
        }
        Drag::Place {
            kind,
            screen,
            moved,
        } => Drag::Place {
            kind,
            screen: at,
            moved: moved || (at.x - screen.x).abs() + (at.y - screen.y).abs() > 3.0,
        },
    };
    studio.drag.set(Some(next));
}

fn pointer_up(studio: Studio, ev: &web_sys::PointerEvent) {
    let Some(drag) = studio.drag.get_untracked() else {
        return;
    };
    studio.drag.set(None);
    let at = client(ev);
    match drag {
        Drag::Move { delta, .. } => {
            if delta.x.abs() + delta.y.abs() < 1.0 {
                return;
            }
            let grid = studio.grid.get_untracked().then_some(geometry::GRID);
            let op = studio.doc.with_untracked(|f| {
                studio
                    .selection
                    .with_untracked(|s| s.move_by(f, delta, grid))
            });
            studio.apply(&op);
        }
        Drag::Wire { from, port, .. } => {
            let Some(to) = node_at(at) else { return };
            let edge = Edge { from, port, to };
            let op = studio.doc.with_untracked(|f| {
                // Dropping on the node the exit already leads to changes nothing.
                if f.edges.contains(&edge) {
                    None
                } else {
                    Some(Op::reconnect(f, edge.clone()))
                }
            });
            if let Some(op) = op {
                // `reconnect` frees a taken exit first; the check of the new arrow is `Connect`'s.
                studio.apply(&op);
            }
        }
        Drag::Band { a, b } => {
            let within = studio.doc.with_untracked(|f| Selection::within(f, a, b));
            if ev.shift_key() {
                studio.selection.update(|s| s.extend(within));
            } else {
                studio.selection.set(within);
            }
        }
        Drag::Pan { .. } => {}
        Drag::Place { kind, moved, .. } => {
            if !moved {
                studio.add_node(kind, studio.view_centre());
            } else if over_canvas(at) {
                let w = studio.world_at(at);
                let w = Position {
                    x: w.x - NODE_WIDTH / 2.0,
                    y: w.y - 18.0,
                };
                let w = if studio.grid.get_untracked() {
                    snap(w, geometry::GRID)
                } else {
                    w
                };
                studio.add_node(kind, w);
            }
        }
    }
}
