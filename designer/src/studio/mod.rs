//! The flow designer (`/designer`): the flow list, and the editor of one flow — canvas,
//! palette, inspector, problems, outline, preview, versions — over the pure editing core in
//! `crate::editor` and the very `flows` crate the server runs (validation and the preview's
//! engine run here, in the browser).
//!
//! `Studio` holds the state as signals (copyable handles), shared through Leptos' context.
//! Every change to the document goes through [`Studio::apply`] (an invertible `Op` kept by the
//! `History`), so undo/redo, the dirty flag and live validation follow from one place.

mod api;
mod canvas;
mod geometry;
mod inspector;
mod kinds;
mod panels;
mod preview;
mod style;

use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use flows::model::{NodeId, Position};
use flows::{Diagnostic, Flow, Library, Severity};

use crate::console::api::{self as console_api, ApiError, User};
use crate::console::i18n::Lang;
use crate::editor::{self, History, Op, Selection};
use api::{Analytics, FlowRow, SaveError};
use geometry::View;

/// A text in both languages; the studio's words are written next to where they are used.
pub fn tx(lang: Lang, en: &'static str, zh: &'static str) -> &'static str {
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// The side panel's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Inspector,
    Problems,
    Outline,
    Preview,
    Versions,
}

/// What the pointer is doing on the canvas.
#[derive(Debug, Clone, PartialEq)]
pub enum Drag {
    /// Moving the selection: where the pointer went down (world) and how far it moved.
    Move { start: Position, delta: Position },
    /// Drawing an arrow from an exit; `at` is the pointer (world).
    Wire {
        from: NodeId,
        port: String,
        at: Position,
    },
    /// A rubber band (world corners).
    Band { a: Position, b: Position },
    /// Panning: the pointer (screen) and the view when it went down.
    Pan { start: Position, view: View },
    /// A kind dragged from the palette; `screen` is the pointer (client coordinates).
    Place {
        kind: &'static str,
        screen: Position,
        moved: bool,
    },
}

/// A modal over the editor.
#[derive(Debug, Clone, PartialEq)]
pub enum Dialog {
    Publish,
    Rust(String),
    CommandPalette,
    Help,
}

/// A refused save: the other person's revision and document, to reload or to merge into.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub message: String,
    pub revision: i64,
    pub current: Flow,
}

/// A short message in the top bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
}

#[derive(Clone, Copy)]
pub struct Studio {
    pub lang: RwSignal<Lang>,
    pub user: RwSignal<Option<User>>,
    pub checked: RwSignal<bool>,
    pub csrf: RwSignal<String>,
    pub flows: RwSignal<Vec<FlowRow>>,
    /// The flow being edited (`None`: the flow list).
    pub open: RwSignal<Option<String>>,
    pub doc: RwSignal<Flow>,
    history: StoredValue<History>,
    /// Whether undo / redo can do something (mirrors the history, for the buttons).
    pub can_undo: RwSignal<bool>,
    pub can_redo: RwSignal<bool>,
    pub revision: RwSignal<i64>,
    pub published: RwSignal<Option<u32>>,
    pub dirty: RwSignal<bool>,
    pub saving: RwSignal<bool>,
    pub selection: RwSignal<Selection>,
    pub diagnostics: Memo<Vec<Diagnostic>>,
    pub view: RwSignal<View>,
    pub drag: RwSignal<Option<Drag>>,
    /// The exit an arrow is being drawn from (follows `drag`, but changes only when a wire
    /// starts or ends, so steps can show whether they accept it without following the pointer).
    pub wiring: Memo<Option<(NodeId, String)>>,
    pub panel: RwSignal<Panel>,
    pub flash: RwSignal<Option<Flash>>,
    pub conflict: RwSignal<Option<Conflict>>,
    pub dialog: RwSignal<Option<Dialog>>,
    pub grid: RwSignal<bool>,
    pub analytics: RwSignal<Option<Analytics>>,
    pub canvas: NodeRef<Div>,
    origin: StoredValue<Position>,
    /// The flows a `call` node may name: the bundled ones (the server checks against its own).
    library: StoredValue<Library>,
    pub preview: preview::State,
}

/// An empty flow, shown while nothing is loaded.
fn blank() -> Flow {
    flows::from_json(r#"{"schema_version":2,"id":"","version":0,"name":"","nodes":[],"edges":[]}"#)
        .unwrap_or_else(|_| unreachable_blank())
}

#[allow(
    clippy::panic,
    reason = "the blank document is a constant the tests load"
)]
fn unreachable_blank() -> Flow {
    panic!("the blank flow document does not load")
}

impl Studio {
    fn new() -> Studio {
        let stored = local_storage().and_then(|s| s.get_item(LANG_KEY).ok().flatten());
        let navigator = web_sys::window().and_then(|w| w.navigator().language());
        let lang = Lang::from_tag(stored.or(navigator).as_deref().unwrap_or("en"));
        let doc = RwSignal::new(blank());
        let library = StoredValue::new(Library::bundled().unwrap_or_default());
        let diagnostics = Memo::new(move |_| {
            doc.with(|flow| {
                let mut library = library.with_value(Clone::clone);
                library.insert(flow.clone());
                flows::validate(flow, &library)
            })
        });
        let drag = RwSignal::new(None);
        let wiring = Memo::new(move |_| {
            drag.with(|d| match d {
                Some(Drag::Wire { from, port, .. }) => Some((from.clone(), port.clone())),
                _ => None,
            })
        });
        Studio {
            lang: RwSignal::new(lang),
            user: RwSignal::new(None),
            checked: RwSignal::new(false),
            csrf: RwSignal::new(String::new()),
            flows: RwSignal::new(Vec::new()),
            open: RwSignal::new(None),
            doc,
            history: StoredValue::new(History::new(500)),
            can_undo: RwSignal::new(false),
            can_redo: RwSignal::new(false),
            revision: RwSignal::new(0),
            published: RwSignal::new(None),
            dirty: RwSignal::new(false),
            saving: RwSignal::new(false),
            selection: RwSignal::new(Selection::default()),
            diagnostics,
            view: RwSignal::new(View::default()),
            drag,
            wiring,
            panel: RwSignal::new(Panel::Inspector),
            flash: RwSignal::new(None),
            conflict: RwSignal::new(None),
            dialog: RwSignal::new(None),
            grid: RwSignal::new(true),
            analytics: RwSignal::new(None),
            canvas: NodeRef::new(),
            origin: StoredValue::new(Position::default()),
            library,
            preview: preview::State::new(),
        }
    }

    pub fn t(self, en: &'static str, zh: &'static str) -> &'static str {
        tx(self.lang.get(), en, zh)
    }

    pub fn locale(self) -> &'static str {
        self.lang.get_untracked().tag()
    }

    pub fn say(self, text: impl Into<String>) {
        self.flash.set(Some(Flash {
            text: text.into(),
            error: false,
        }));
    }

    /// Shows an API failure; a 401 means the session is gone (back to signing in).
    pub fn fail(self, error: &ApiError) {
        if error.status() == Some(401) {
            self.user.set(None);
        }
        self.flash.set(Some(Flash {
            text: error.to_string(),
            error: true,
        }));
    }

    pub fn fail_text(self, text: impl Into<String>) {
        self.flash.set(Some(Flash {
            text: text.into(),
            error: true,
        }));
    }

    /// Makes a change through the history. A refused op changes nothing and says why.
    pub fn apply(self, op: &Op) -> bool {
        if op.is_empty() {
            return true;
        }
        let mut outcome = Ok(());
        self.doc.maybe_update(|flow| {
            self.history
                .update_value(|history| outcome = history.apply(flow, op));
            outcome.is_ok()
        });
        match outcome {
            Ok(()) => {
                self.changed();
                true
            }
            Err(error) => {
                self.fail_text(error.to_string());
                false
            }
        }
    }

    fn changed(self) {
        self.dirty.set(true);
        self.sync_history();
        let doc = self.doc;
        self.selection
            .update(|s| doc.with_untracked(|f| s.retain_existing(f)));
    }

    fn sync_history(self) {
        self.history.with_value(|h| {
            self.can_undo.set(h.can_undo());
            self.can_redo.set(h.can_redo());
        });
    }

    pub fn undo(self) {
        let mut done = false;
        self.doc.maybe_update(|flow| {
            self.history.update_value(|h| done = h.undo(flow));
            done
        });
        if done {
            self.changed();
        }
    }

    pub fn redo(self) {
        let mut done = false;
        self.doc.maybe_update(|flow| {
            self.history.update_value(|h| done = h.redo(flow));
            done
        });
        if done {
            self.changed();
        }
    }

    /// Replaces the document (a load, a reload, an import): the history starts again.
    fn replace(self, flow: Flow, dirty: bool) {
        self.doc.set(flow);
        self.history.update_value(History::clear);
        self.sync_history();
        self.selection.set(Selection::default());
        self.dirty.set(dirty);
        self.conflict.set(None);
        self.analytics.set(None);
        self.preview.reset();
    }

    /// Lists the flows (the designer's start page).
    pub fn refresh_flows(self) {
        spawn_local(async move {
            match api::flows().await {
                Ok(rows) => self.flows.set(rows),
                Err(error) => self.fail(&error),
            }
        });
    }

    /// Opens flow `id` in the editor (and the address bar).
    pub fn open_flow(self, id: String) {
        set_path(&format!("/designer/{}", api::encode(&id)));
        self.open.set(Some(id.clone()));
        self.replace(blank(), false);
        spawn_local(async move {
            match api::draft(&id).await {
                Ok(draft) => {
                    if self.open.get_untracked().as_deref() != Some(id.as_str()) {
                        return;
                    }
                    self.revision.set(draft.revision);
                    self.published.set(draft.published_version);
                    self.replace(draft.flow, false);
                    self.fit();
                }
                Err(error) => self.fail(&error),
            }
        });
    }

    pub fn close_flow(self) {
        if self.dirty.get_untracked()
            && !confirm(self.t(
                "Leave without saving? Your changes since the last save will be lost.",
                "不保存就离开吗？上次保存后的修改将丢失。",
            ))
        {
            return;
        }
        set_path("/designer");
        self.open.set(None);
        self.replace(blank(), false);
        self.refresh_flows();
    }

    /// Creates a flow (a draft only) and opens it.
    pub fn create_flow(self, id: String, name: String, then: Option<Flow>) {
        let csrf = self.csrf.get_untracked();
        spawn_local(async move {
            match api::create(&id, &name, &csrf).await {
                Ok(draft) => {
                    set_path(&format!("/designer/{}", api::encode(&id)));
                    self.open.set(Some(id));
                    self.revision.set(draft.revision);
                    self.published.set(None);
                    match then {
                        Some(flow) => self.replace(flow, true),
                        None => self.replace(draft.flow, false),
                    }
                    self.fit();
                }
                Err(error) => self.fail(&error),
            }
        });
    }

    pub fn save(self) {
        let Some(id) = self.open.get_untracked() else {
            return;
        };
        if self.saving.get_untracked() {
            return;
        }
        self.saving.set(true);
        let flow = self.doc.get_untracked();
        let revision = self.revision.get_untracked();
        let csrf = self.csrf.get_untracked();
        spawn_local(async move {
            match api::save(&id, revision, &flow, &csrf).await {
                Ok(revision) => {
                    self.revision.set(revision);
                    // Only clean if nothing changed while the save was on its way.
                    if self.doc.with_untracked(|d| *d == flow) {
                        self.dirty.set(false);
                    }
                    self.say(self.t("Saved", "已保存"));
                }
                Err(SaveError::Stale {
                    message,
                    revision,
                    current,
                }) => self.conflict.set(Some(Conflict {
                    message,
                    revision,
                    current: *current,
                })),
                Err(SaveError::Other(error)) => self.fail(&error),
            }
            self.saving.set(false);
        });
    }

    /// After a refused save: take the other person's document (mine is dropped).
    pub fn take_theirs(self) {
        if let Some(conflict) = self.conflict.get_untracked() {
            self.revision.set(conflict.revision);
            self.replace(conflict.current, false);
        }
    }

    /// After a refused save: keep my document and save it over theirs, knowingly.
    pub fn keep_mine(self) {
        if let Some(conflict) = self.conflict.get_untracked() {
            self.revision.set(conflict.revision);
            self.conflict.set(None);
            self.save();
        }
    }

    pub fn errors(self) -> usize {
        self.diagnostics
            .with(|d| d.iter().filter(|d| d.severity == Severity::Error).count())
    }

    /// The canvas' size in pixels.
    pub fn canvas_size(self) -> (f64, f64) {
        self.canvas.get_untracked().map_or((1000.0, 700.0), |el| {
            (f64::from(el.client_width()), f64::from(el.client_height()))
        })
    }

    /// Where the canvas is on the page (client coordinates of its top-left corner), as
    /// measured when the pointer last went down on it: measuring on every pointer move would
    /// force the browser to lay out a thousand boxes per frame.
    pub fn canvas_origin(self) -> Position {
        self.origin.get_value()
    }

    /// Measures the canvas' place on the page again (at the start of each drag).
    pub fn measure_canvas(self) {
        if let Some(el) = self.canvas.get_untracked() {
            let r = el.get_bounding_client_rect();
            self.origin.set_value(Position {
                x: r.left(),
                y: r.top(),
            });
        }
    }

    /// The world point under client coordinates.
    pub fn world_at(self, client: Position) -> Position {
        let o = self.canvas_origin();
        self.view.get_untracked().to_world(Position {
            x: client.x - o.x,
            y: client.y - o.y,
        })
    }

    pub fn fit(self) {
        let (w, h) = self.canvas_size();
        let view = self.doc.with_untracked(|f| geometry::fit(f, w, h));
        self.view.set(view);
    }

    pub fn zoom(self, factor: f64) {
        let (w, h) = self.canvas_size();
        self.view.update(|v| {
            *v = v.zoom_at(
                Position {
                    x: w / 2.0,
                    y: h / 2.0,
                },
                factor,
            );
        });
    }

    /// Selects node `id`, scrolls it into view and shows it in the inspector.
    pub fn focus_node(self, id: &str) {
        if self.doc.with_untracked(|f| f.node(id).is_none()) {
            return;
        }
        self.selection.set(Selection::node(id));
        let (w, h) = self.canvas_size();
        let p = self.doc.with_untracked(|f| geometry::position(f, id));
        let centre = Position {
            x: p.x + geometry::NODE_WIDTH / 2.0,
            y: p.y + 40.0,
        };
        self.view.update(|v| *v = v.centered_on(centre, w, h));
        if self.panel.get_untracked() != Panel::Preview {
            self.panel.set(Panel::Inspector);
        }
    }

    /// The middle of what the canvas shows, in world units.
    pub fn view_centre(self) -> Position {
        let (w, h) = self.canvas_size();
        self.view.get_untracked().to_world(Position {
            x: w / 2.0 - geometry::NODE_WIDTH / 2.0,
            y: h / 2.0 - 40.0,
        })
    }

    /// Adds a node of `kind` with its top-left corner at `at` and selects it.
    pub fn add_node(self, kind: &str, at: Position) {
        let at = if self.grid.get_untracked() {
            editor::snap(at, geometry::GRID)
        } else {
            at
        };
        let op = self.doc.with_untracked(|flow| {
            let taken = flow
                .nodes
                .iter()
                .map(|n| n.id.clone())
                .chain(flow.layout.nodes.keys().cloned())
                .collect();
            let id = editor::fresh_id(kind, &taken);
            kinds::new_node(kind, id).map(|node| Op::add_node(flow, node, Some(at)))
        });
        if let Some(op) = op {
            let added = Selection::added_by(&op);
            if self.apply(&op) {
                self.selection.set(added);
                self.panel.set(Panel::Inspector);
            }
        }
    }

    pub fn delete_selection(self) {
        let op = self
            .doc
            .with_untracked(|f| self.selection.with_untracked(|s| s.delete(f)));
        if self.apply(&op) {
            self.selection.set(Selection::default());
        }
    }

    pub fn duplicate_selection(self) {
        let op = self.doc.with_untracked(|f| {
            self.selection
                .with_untracked(|s| s.duplicate(f, Position { x: 40.0, y: 40.0 }))
        });
        let added = Selection::added_by(&op);
        if self.apply(&op) {
            self.selection.set(added);
        }
    }

    /// The selection as clipboard text (`None` when nothing is selected).
    pub fn copy_text(self) -> Option<String> {
        if self.selection.with_untracked(Selection::is_empty) {
            return None;
        }
        Some(
            self.doc
                .with_untracked(|f| self.selection.with_untracked(|s| editor::copy(f, s))),
        )
    }

    pub fn paste_text(self, text: &str) {
        let at = self.view_centre();
        match self.doc.with_untracked(|f| editor::paste(f, text, at)) {
            Ok(op) => {
                let added = Selection::added_by(&op);
                if self.apply(&op) {
                    self.selection.set(added);
                }
            }
            Err(error) => self.fail_text(error.to_string()),
        }
    }

    pub fn auto_layout(self) {
        let op = self.doc.with_untracked(geometry::auto_layout);
        if self.apply(&op) {
            self.fit();
        }
    }

    pub fn add_comment(self) {
        let at = self.view_centre();
        let op = self.doc.with_untracked(|f| {
            let taken = f.layout.comments.iter().map(|c| c.id.clone()).collect();
            Op::AddComment {
                index: f.layout.comments.len(),
                comment: flows::model::Comment {
                    id: editor::fresh_id("note", &taken),
                    text: tx(self.lang.get_untracked(), "A note", "备注").to_owned(),
                    position: at,
                },
            }
        });
        self.apply(&op);
    }

    /// Puts the selected nodes in a new group.
    pub fn group_selection(self) {
        let nodes: Vec<NodeId> = self
            .selection
            .with_untracked(|s| s.nodes.iter().cloned().collect());
        if nodes.is_empty() {
            return;
        }
        let op = self.doc.with_untracked(|f| {
            let taken = f.layout.groups.iter().map(|g| g.id.clone()).collect();
            Op::AddGroup {
                index: f.layout.groups.len(),
                group: flows::model::Group {
                    id: editor::fresh_id("group", &taken),
                    label: tx(self.lang.get_untracked(), "Group", "分组").to_owned(),
                    nodes,
                    color: None,
                },
            }
        });
        self.apply(&op);
    }

    pub fn export_json(self) {
        let (id, text) = self
            .doc
            .with_untracked(|f| (f.id.clone(), flows::to_json(f)));
        download(&format!("{id}.flow.json"), &text, "application/json");
    }

    pub fn export_rust(self) {
        let flow = self.doc.get_untracked();
        let csrf = self.csrf.get_untracked();
        spawn_local(async move {
            match api::rust(&flow, &csrf).await {
                Ok(code) => self.dialog.set(Some(Dialog::Rust(code))),
                Err(error) => self.fail(&error),
            }
        });
    }

    /// Reads a flow file: into the open flow if it is that flow, else as a new flow.
    pub fn import_file(self, text: String) {
        let csrf = self.csrf.get_untracked();
        spawn_local(async move {
            let imported = match api::import(&text, &csrf).await {
                Ok(imported) => imported,
                Err(error) => return self.fail(&error),
            };
            let open = self.open.get_untracked();
            if open.as_deref() == Some(imported.flow.id.as_str()) {
                // Undoable like any edit would be is not possible (a whole new document), so
                // it is marked unsaved: closing or reloading asks first.
                self.replace(imported.flow, true);
                self.fit();
                self.say(self.t(
                    "Imported into this flow; save to keep it",
                    "已导入到当前流程，保存后生效",
                ));
            } else if imported.exists {
                self.fail_text(format!(
                    "{} `{}` {}",
                    self.t("This file is flow", "该文件是流程"),
                    imported.flow.id,
                    self.t(
                        "which already exists: open that flow and import it there",
                        "，该流程已存在：请打开该流程后再导入",
                    )
                ));
            } else {
                let name = api::name_in(
                    &serde_json::to_value(&imported.flow.name).unwrap_or_default(),
                    self.locale(),
                )
                .unwrap_or_else(|| imported.flow.id.clone());
                self.create_flow(imported.flow.id.clone(), name, Some(imported.flow));
            }
            if let Some(from) = imported.migrated_from {
                self.say(format!(
                    "{} {from}",
                    self.t("Migrated from schema version", "已从旧格式迁移，版本")
                ));
            }
        });
    }

    pub fn toggle_analytics(self) {
        if self.analytics.get_untracked().is_some() {
            self.analytics.set(None);
            return;
        }
        let Some(id) = self.open.get_untracked() else {
            return;
        };
        let version = self.published.get_untracked();
        if version.is_none() {
            self.fail_text(self.t(
                "Publish the flow first: analytics count conversations of published versions",
                "请先发布：统计的是已发布版本的对话",
            ));
            return;
        }
        spawn_local(async move {
            match api::analytics(&id, version).await {
                Ok(stats) => self.analytics.set(Some(stats)),
                Err(error) => self.fail(&error),
            }
        });
    }
}

const LANG_KEY: &str = "kefu.lang";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

fn set_path(path: &str) {
    if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(path));
    }
}

fn confirm(text: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(text).ok())
        .unwrap_or(true)
}

/// The flow id in `/designer/{id}`, if the address names one.
fn path_flow() -> Option<String> {
    let path = web_sys::window()?.location().pathname().ok()?;
    let rest = path.strip_prefix("/designer/")?.trim_end_matches('/');
    let id = js_sys::decode_uri_component(rest).ok()?.as_string()?;
    (!id.is_empty()).then_some(id)
}

/// Offers `text` as a file download.
pub fn download(name: &str, text: &str, mime: &str) {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Some(document) = web_sys::window().and_then(|w| w.document())
        && let Ok(a) = document.create_element("a")
        && let Ok(a) = a.dyn_into::<web_sys::HtmlAnchorElement>()
    {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// Whether keyboard focus is in a text field (shortcuts then leave keys alone).
fn typing_in_field() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.active_element())
        .is_some_and(|el| {
            matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                || el.get_attribute("contenteditable").is_some()
        })
}

#[component]
pub fn App() -> impl IntoView {
    let studio = Studio::new();
    provide_context(studio);
    Effect::new(move |_| {
        let lang = studio.lang.get();
        if let Some(storage) = local_storage() {
            let _ = storage.set_item(LANG_KEY, lang.tag());
        }
        if let Some(root) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        {
            let _ = root.set_attribute("lang", lang.tag());
        }
    });
    spawn_local(async move {
        match console_api::me().await {
            Ok(session) => {
                studio.csrf.set(session.csrf);
                studio.user.set(Some(session.user));
                match path_flow() {
                    Some(id) => studio.open_flow(id),
                    None => studio.refresh_flows(),
                }
            }
            Err(error) if error.status() == Some(401) => {}
            Err(error) => studio.fail(&error),
        }
        studio.checked.set(true);
    });
    let _ = window_event_listener(leptos::ev::keydown, move |event| {
        panels::shortcut(studio, &event);
    });
    let _ = window_event_listener(leptos::ev::popstate, move |_| match path_flow() {
        Some(id) => studio.open_flow(id),
        None => {
            studio.open.set(None);
            studio.refresh_flows();
        }
    });
    let _ = window_event_listener(leptos::ev::beforeunload, move |event| {
        if studio.dirty.get_untracked() {
            event.prevent_default();
            event.set_return_value("unsaved");
        }
    });
    let _ = window_event_listener(leptos::ev::copy, move |event| {
        clipboard(studio, &event, false);
    });
    let _ = window_event_listener(leptos::ev::cut, move |event| {
        clipboard(studio, &event, true);
    });
    let _ = window_event_listener(leptos::ev::paste, move |event| {
        if studio.open.get_untracked().is_none() || typing_in_field() {
            return;
        }
        if let Some(text) = event
            .clipboard_data()
            .and_then(|d| d.get_data("text/plain").ok())
        {
            event.prevent_default();
            studio.paste_text(&text);
        }
    });
    view! {
        <style>{style::CSS}</style>
        {move || {
            if !studio.checked.get() {
                view! { <p class="loading">"加载中… Loading…"</p> }.into_any()
            } else if studio.user.with(Option::is_none) {
                view! { <SignedOut /> }.into_any()
            } else if studio.open.with(Option::is_some) {
                view! { <Editor /> }.into_any()
            } else {
                view! { <FlowList /> }.into_any()
            }
        }}
    }
}

/// Copy or cut of the selection into the system clipboard, so it pastes in another tab.
fn clipboard(studio: Studio, event: &web_sys::ClipboardEvent, cut: bool) {
    if studio.open.get_untracked().is_none() || typing_in_field() {
        return;
    }
    let (Some(text), Some(data)) = (studio.copy_text(), event.clipboard_data()) else {
        return;
    };
    if data.set_data("text/plain", &text).is_ok() {
        event.prevent_default();
        if cut {
            studio.delete_selection();
        }
    }
}

#[component]
fn SignedOut() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let next = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_else(|| "/designer".to_owned());
    let href = format!("/console?next={}", api::encode(&next));
    view! {
        <div class="signed-out">
            <h1>"kefu · " {move || studio.t("Flow designer", "流程设计器")}</h1>
            <p>{move || studio.t("Sign in to design flows.", "请先登录再设计流程。")}</p>
            <a class="button primary" data-test="designer-sign-in" href=href>
                {move || studio.t("Sign in", "登录")}
            </a>
            <LangSwitch />
        </div>
    }
}

#[component]
pub fn LangSwitch() -> impl IntoView {
    let studio = expect_context::<Studio>();
    view! {
        <button class="lang" data-test="lang-switch"
            on:click=move |_| studio.lang.update(|l| *l = l.other())>
            {move || studio.lang.get().other().name()}
        </button>
    }
}

#[component]
fn FlowList() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let new_id = RwSignal::new(String::new());
    let new_name = RwSignal::new(String::new());
    let is_admin = move || studio.user.with(|u| u.as_ref().is_some_and(User::is_admin));
    let create = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let id = new_id.get_untracked().trim().to_owned();
        let name = new_name.get_untracked().trim().to_owned();
        let name = if name.is_empty() { id.clone() } else { name };
        studio.create_flow(id, name, None);
    };
    view! {
        <div class="flow-list">
            <header class="topbar">
                <strong>"kefu · " {move || studio.t("Flow designer", "流程设计器")}</strong>
                <span class="grow"></span>
                <Flashes />
                <a href="/console">{move || studio.t("Agent console", "客服工作台")}</a>
                <a href="/demo">{move || studio.t("Demo shop", "演示商店")}</a>
                <LangSwitch />
            </header>
            <main>
                <h1>{move || studio.t("Flows", "流程")}</h1>
                <table class="flows" data-test="flow-table">
                    <thead><tr>
                        <th>{move || studio.t("Name", "名称")}</th>
                        <th>"ID"</th>
                        <th>{move || studio.t("Published", "已发布版本")}</th>
                        <th>{move || studio.t("Steps", "步骤数")}</th>
                    </tr></thead>
                    <tbody>
                        <For each=move || studio.flows.get() key=|row| row.id.clone() let:row>
                            {
                                let id = row.id.clone();
                                let title = row.title(studio.locale());
                                let published = row.published_version;
                                view! {
                                    <tr>
                                        <td><a href="#" data-test="open-flow" data-flow=id.clone()
                                            on:click=move |ev| { ev.prevent_default(); studio.open_flow(id.clone()); }>
                                            {title}
                                        </a></td>
                                        <td><code>{row.id.clone()}</code></td>
                                        <td>{move || published.map_or_else(
                                            || studio.t("draft only", "仅草稿").to_owned(),
                                            |v| format!("v{v}"))}</td>
                                        <td>{row.nodes}</td>
                                    </tr>
                                }
                            }
                        </For>
                    </tbody>
                </table>
                <Show when=is_admin>
                    <form class="new-flow" on:submit=create data-test="new-flow">
                        <h2>{move || studio.t("New flow", "新建流程")}</h2>
                        <label>"ID "
                            <input data-test="new-flow-id" required pattern="[a-z0-9][a-z0-9_\\-]{0,63}"
                                placeholder="spring-sale"
                                title=move || studio.t("lowercase letters, digits, - and _", "小写字母、数字、- 和 _")
                                prop:value=move || new_id.get()
                                on:input=move |ev| new_id.set(event_target_value(&ev)) />
                        </label>
                        <label>{move || studio.t("Name", "名称")} " "
                            <input data-test="new-flow-name" placeholder=move || studio.t("Spring sale guide", "春季促销导购")
                                prop:value=move || new_name.get()
                                on:input=move |ev| new_name.set(event_target_value(&ev)) />
                        </label>
                        <button type="submit" class="primary" data-test="new-flow-create">
                            {move || studio.t("Create", "创建")}
                        </button>
                        <label class="button">
                            {move || studio.t("Import a file…", "导入文件…")}
                            <input type="file" accept=".json,application/json" class="hidden"
                                data-test="import-file" on:change=move |ev| read_file(studio, &ev) />
                        </label>
                    </form>
                </Show>
            </main>
        </div>
    }
}

/// Reads the file chosen in an `<input type=file>` and imports it.
pub fn read_file(studio: Studio, event: &leptos::ev::Event) {
    let Some(input) = event
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
    else {
        return;
    };
    let Some(file) = input.files().and_then(|files| files.get(0)) else {
        return;
    };
    input.set_value("");
    spawn_local(async move {
        match wasm_bindgen_futures::JsFuture::from(file.text()).await {
            Ok(text) => studio.import_file(text.as_string().unwrap_or_default()),
            Err(_) => studio.fail_text(studio.t("The file could not be read", "无法读取该文件")),
        }
    });
}

#[component]
pub fn Flashes() -> impl IntoView {
    let studio = expect_context::<Studio>();
    view! {
        <Show when=move || studio.flash.with(Option::is_some)>
            <span class={move || if studio.flash.with(|f| f.as_ref().is_some_and(|f| f.error)) { "flash error" } else { "flash" }}
                role="status" data-test="flash">
                {move || studio.flash.with(|f| f.as_ref().map(|f| f.text.clone()).unwrap_or_default())}
                <button class="link" aria-label="dismiss" on:click=move |_| studio.flash.set(None)>"×"</button>
            </span>
        </Show>
    }
}

/// The editor of one flow: top bar, palette, canvas and the side panel.
#[component]
fn Editor() -> impl IntoView {
    let studio = expect_context::<Studio>();
    view! {
        <div class="editor">
            <panels::TopBar />
            <div class="workspace">
                <canvas::Palette />
                <canvas::Canvas />
                <panels::SidePanel />
            </div>
            <panels::Dialogs />
            <Show when=move || studio.conflict.with(Option::is_some)>
                <panels::ConflictBanner />
            </Show>
        </div>
    }
}

pub fn mount() {
    let app = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("app"));
    match app.and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok()) {
        Some(app) => {
            app.set_inner_html("");
            mount_to(app, App).forget();
        }
        None => mount_to_body(App),
    }
}
