//! The agent console (`/console`, docs/console-api.md): sign-in, the conversation lists and
//! the conversation view, kept live over the agent WebSocket.
//!
//! `Console` holds the whole state as signals (copyable handles) and is shared through
//! Leptos' context; `list` and `view` render it, `api` and `ws` talk to the server.

mod access;
pub(crate) mod api;
mod connectors;
pub(crate) mod i18n;
mod list;
mod style;
mod view;
mod ws;

use std::rc::Rc;
use std::time::Duration;

use leptos::html::Textarea;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Notification, NotificationOptions, NotificationPermission};

use api::{Agent, ApiError, Body, Canned, Context, Message, Note, Summary, User};
use i18n::{Lang, T};
use ws::{ServerFrame, Socket, SocketEvent};

/// The lists of the left pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Queue,
    Mine,
    All,
}

impl Tab {
    fn view(self) -> &'static str {
        match self {
            Tab::Queue => "queue",
            Tab::Mine => "mine",
            Tab::All => "all",
        }
    }
}

/// The pages of the console: admins also have the connectors and access pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Conversations,
    Connectors,
    Access,
}

/// The dialogs over the conversation view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialog {
    Transfer,
    HandBack,
}

/// A transcript entry: a stored message, or the agent's reply waiting for its `ack`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub message: Message,
    pub pending: bool,
}

/// The console's state. Every field is a copyable handle, so `Console` is `Copy`.
#[derive(Clone, Copy)]
pub struct Console {
    pub lang: RwSignal<Lang>,
    /// `None` until signed in (and after signing out).
    pub user: RwSignal<Option<User>>,
    /// `false` until the first `me` call answered.
    pub checked: RwSignal<bool>,
    pub csrf: RwSignal<String>,
    pub tab: RwSignal<Tab>,
    pub page: RwSignal<Page>,
    /// The connectors page (admins).
    pub connectors: connectors::State,
    /// The access page (admins): policies, checks, grants, the audit trail.
    pub access: access::State,
    pub queue: RwSignal<Vec<Summary>>,
    pub mine: RwSignal<Vec<Summary>>,
    pub all: RwSignal<Vec<Summary>>,
    /// The open conversation.
    pub selected: RwSignal<Option<String>>,
    pub current: RwSignal<Option<Summary>>,
    pub transcript: RwSignal<Vec<Entry>>,
    pub context: RwSignal<Context>,
    pub notes: RwSignal<Vec<Note>>,
    pub visitor_typing: RwSignal<bool>,
    pub connected: RwSignal<bool>,
    pub help: RwSignal<bool>,
    pub dialog: RwSignal<Option<Dialog>>,
    /// A message shown until dismissed (errors, "someone else has it").
    pub flash: RwSignal<Option<String>>,
    pub canned: RwSignal<Vec<Canned>>,
    pub agents: RwSignal<Vec<Agent>>,
    /// The clock for waiting times, ticking every few seconds.
    pub now: RwSignal<f64>,
    /// When the visitor's last `typing` frame came (the indicator goes out on its own after
    /// `TYPING_SHOWN_MS`, in case the "off" frame never comes).
    typing_at: StoredValue<f64>,
    /// Whether this session's socket has said `hello` before.
    greeted: StoredValue<bool>,
    /// The highest `seq` reported as read, per open conversation.
    read_up_to: StoredValue<u64>,
    /// Whether a refresh of "All" is due (see `Console::all_changed`).
    all_due: StoredValue<bool>,
    /// Counts the requests for "All", so that only the answer to the latest is shown.
    all_asked: StoredValue<u64>,
    socket: StoredValue<Option<Socket>, LocalStorage>,
    pub reply_ref: NodeRef<Textarea>,
    pub note_ref: NodeRef<Textarea>,
}

impl Console {
    fn new() -> Console {
        let stored = local_storage().and_then(|s| s.get_item(LANG_KEY).ok().flatten());
        let navigator = web_sys::window().and_then(|w| w.navigator().language());
        let lang = Lang::from_tag(stored.or(navigator).as_deref().unwrap_or("en"));
        Console {
            lang: RwSignal::new(lang),
            user: RwSignal::new(None),
            checked: RwSignal::new(false),
            csrf: RwSignal::new(String::new()),
            tab: RwSignal::new(Tab::Queue),
            page: RwSignal::new(Page::Conversations),
            connectors: connectors::State::new(),
            access: access::State::new(),
            queue: RwSignal::new(Vec::new()),
            mine: RwSignal::new(Vec::new()),
            all: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            current: RwSignal::new(None),
            transcript: RwSignal::new(Vec::new()),
            context: RwSignal::new(Context::default()),
            notes: RwSignal::new(Vec::new()),
            visitor_typing: RwSignal::new(false),
            connected: RwSignal::new(false),
            help: RwSignal::new(false),
            dialog: RwSignal::new(None),
            flash: RwSignal::new(None),
            canned: RwSignal::new(Vec::new()),
            agents: RwSignal::new(Vec::new()),
            now: RwSignal::new(js_sys::Date::now()),
            typing_at: StoredValue::new(0.0),
            greeted: StoredValue::new(false),
            read_up_to: StoredValue::new(0),
            all_due: StoredValue::new(false),
            all_asked: StoredValue::new(0),
            socket: StoredValue::new_local(None),
            reply_ref: NodeRef::new(),
            note_ref: NodeRef::new(),
        }
    }

    /// A fixed text in the current language (reactive).
    pub fn t(self, text: T) -> &'static str {
        text.get(self.lang.get())
    }

    pub fn is_admin(self) -> bool {
        self.user.with(|u| u.as_ref().is_some_and(User::is_admin))
    }

    fn with_socket(self, f: impl FnOnce(&Socket)) {
        self.socket.with_value(|socket| {
            if let Some(socket) = socket {
                f(socket);
            }
        });
    }

    /// Signed in: connect, load the lists and what the reply box needs — or, when the
    /// designer sent the user here to sign in (`?next=/designer/…`), go back there.
    fn start(self, session: api::Session) {
        if let Some(next) = next_page()
            && let Some(location) = web_sys::window().map(|w| w.location())
        {
            let _ = location.assign(&next);
            return;
        }
        self.csrf.set(session.csrf);
        self.user.set(Some(session.user));
        let on_event: Rc<dyn Fn(SocketEvent)> = Rc::new(move |event| self.on_socket(event));
        self.socket.set_value(Some(Socket::connect(on_event)));
        self.refresh_lists();
        spawn_local(async move {
            if let Ok(canned) = api::canned().await {
                self.canned.set(canned);
            }
        });
        spawn_local(async move {
            if let Ok(agents) = api::agents().await {
                self.agents.set(agents);
            }
        });
    }

    fn sign_out(self) {
        let csrf = self.csrf.get_untracked();
        spawn_local(async move {
            let _ = api::logout(&csrf).await;
        });
        self.reset();
    }

    /// Back to the sign-in page (after signing out, or when the session expired).
    fn reset(self) {
        self.with_socket(Socket::stop);
        self.socket.set_value(None);
        self.user.set(None);
        self.greeted.set_value(false);
        self.csrf.set(String::new());
        self.selected.set(None);
        self.current.set(None);
        self.transcript.set(Vec::new());
        self.queue.set(Vec::new());
        self.mine.set(Vec::new());
        self.all.set(Vec::new());
        // An answer still on its way belongs to the account that signed out.
        self.all_asked.update_value(|n| *n += 1);
        self.dialog.set(None);
        self.page.set(Page::Conversations);
        self.connectors.clear();
        self.access.clear();
    }

    /// Shows an API failure; a 401 means the session is gone.
    pub fn fail(self, error: &ApiError) {
        if error.status() == Some(401) {
            self.reset();
        } else {
            self.flash.set(Some(error.to_string()));
        }
    }

    pub fn refresh_lists(self) {
        for tab in [Tab::Queue, Tab::Mine] {
            spawn_local(async move {
                match api::conversations(tab.view()).await {
                    Ok(list) => self.list(tab).set(list),
                    Err(error) => self.fail(&error),
                }
            });
        }
        self.refresh_all();
    }

    /// Reads "All" again (admins only). Answers can overtake each other: only the latest
    /// request's is shown.
    pub fn refresh_all(self) {
        if !self
            .user
            .with_untracked(|u| u.as_ref().is_some_and(User::is_admin))
        {
            return;
        }
        self.all_asked.update_value(|n| *n += 1);
        let asked = self.all_asked.get_value();
        spawn_local(async move {
            let answer = api::conversations(Tab::All.view()).await;
            if self.all_asked.get_value() != asked {
                return;
            }
            match answer {
                Ok(list) => self.all.set(list),
                Err(error) => self.fail(&error),
            }
        });
    }

    /// Conversations entered or left the queue or changed hands: "All" is read again after
    /// `ALL_REFRESH_MS`, once for every change in that time (the server sends one `queue`
    /// frame per burst of changes, so a busy queue costs at most one request per interval).
    fn all_changed(self) {
        if self.all_due.get_value()
            || !self
                .user
                .with_untracked(|u| u.as_ref().is_some_and(User::is_admin))
        {
            return;
        }
        self.all_due.set_value(true);
        set_timeout(
            move || {
                self.all_due.set_value(false);
                self.refresh_all();
            },
            Duration::from_millis(ALL_REFRESH_MS),
        );
    }

    pub fn list(self, tab: Tab) -> RwSignal<Vec<Summary>> {
        match tab {
            Tab::Queue => self.queue,
            Tab::Mine => self.mine,
            Tab::All => self.all,
        }
    }

    /// Replaces a conversation's summary everywhere it is shown, and keeps "Mine" to the
    /// conversations assigned to this agent and not ended.
    pub fn update_summary(self, summary: &Summary) {
        for list in [self.queue, self.mine, self.all] {
            list.update(|list| {
                if let Some(row) = list.iter_mut().find(|row| row.id == summary.id) {
                    *row = summary.clone();
                }
            });
        }
        let me = self
            .user
            .with_untracked(|u| u.as_ref().map(|u| u.id.clone()));
        let mine = summary.owner == "agent"
            && summary.status != "ended"
            && summary.assignee.as_ref().map(|a| &a.id) == me.as_ref();
        self.mine.update(|list| {
            let at = list.iter().position(|row| row.id == summary.id);
            match (at, mine) {
                (None, true) => list.insert(0, summary.clone()),
                (Some(at), false) => drop(list.remove(at)),
                _ => {}
            }
        });
        if summary.owner != "queue" {
            self.queue
                .update(|list| list.retain(|row| row.id != summary.id));
        }
        if self.selected.get_untracked().as_deref() == Some(summary.id.as_str()) {
            // What the customer panel may show depends on who has the conversation (access
            // policies: agents read the customers they serve), so it is read again when the
            // open conversation becomes this agent's (a claim, a transfer to them). Not when it
            // leaves them: they may no longer read it at all.
            let assignee = |s: &Summary| s.assignee.as_ref().map(|a| a.id.clone());
            let now_mine = me.is_some() && assignee(summary) == me;
            let became_mine = now_mine
                && self
                    .current
                    .with_untracked(|c| c.as_ref().is_some_and(|c| assignee(c) != me));
            self.current.set(Some(summary.clone()));
            if became_mine {
                self.refresh_context(summary.id.clone());
            }
        }
    }

    /// Reads the open conversation's context again (the customer panel with it).
    fn refresh_context(self, id: String) {
        spawn_local(async move {
            let Ok(detail) = api::detail(&id).await else {
                return;
            };
            if self.selected.get_untracked().as_deref() == Some(id.as_str()) {
                self.context.set(detail.context);
            }
        });
    }

    /// Opens a conversation: its transcript and context, then its live messages.
    pub fn select(self, id: String) {
        if let Some(previous) = self.selected.get_untracked()
            && previous != id
        {
            self.with_socket(|socket| socket.close(&previous));
        }
        let summary = [self.mine, self.queue, self.all]
            .iter()
            .find_map(|list| list.with_untracked(|l| l.iter().find(|s| s.id == id).cloned()));
        self.selected.set(Some(id.clone()));
        self.current.set(summary);
        self.transcript.set(Vec::new());
        self.context.set(Context::default());
        self.notes.set(Vec::new());
        self.visitor_typing.set(false);
        self.read_up_to.set_value(0);
        spawn_local(async move {
            let detail = match api::detail(&id).await {
                Ok(detail) => detail,
                Err(error) => return self.fail(&error),
            };
            if self.selected.get_untracked().as_deref() != Some(id.as_str()) {
                return; // Another conversation was opened meanwhile.
            }
            let last_seq = detail.messages.iter().map(|m| m.seq).max().unwrap_or(0);
            let mut entries: Vec<Entry> = detail
                .messages
                .into_iter()
                .map(|message| Entry {
                    message,
                    pending: false,
                })
                .collect();
            entries.sort_by_key(|e| e.message.seq);
            entries.dedup_by_key(|e| e.message.seq);
            self.transcript.set(entries);
            self.context.set(detail.context);
            self.notes.set(detail.notes);
            self.update_summary(&detail.conversation);
            self.current.set(Some(detail.conversation));
            self.with_socket(|socket| socket.open(&id, last_seq));
            self.mark_read();
        });
    }

    /// Tells the server (and the lists) that the open conversation has been seen.
    fn mark_read(self) {
        let Some(id) = self.selected.get_untracked() else {
            return;
        };
        let hidden = web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| d.hidden());
        if hidden {
            return;
        }
        let seq = self.transcript.with_untracked(|t| {
            t.iter()
                .filter(|e| !e.pending)
                .map(|e| e.message.seq)
                .max()
                .unwrap_or(0)
        });
        if seq > self.read_up_to.get_value() {
            self.read_up_to.set_value(seq);
            self.with_socket(|socket| socket.read(&id, seq));
        }
        for list in [self.queue, self.mine, self.all] {
            list.update(|list| {
                for row in list
                    .iter_mut()
                    .filter(|row| row.id == id && row.unread != 0)
                {
                    row.unread = 0;
                }
            });
        }
    }

    /// Sends a reply to the open conversation.
    pub fn send_reply(self, text: &str) {
        let text = text.trim();
        let Some(id) = self.selected.get_untracked() else {
            return;
        };
        if text.is_empty() {
            return;
        }
        let client_id = format!(
            "a-{:x}-{:x}",
            js_sys::Date::now() as u64,
            (js_sys::Math::random() * f64::from(u32::MAX)) as u64
        );
        self.transcript.update(|t| {
            t.push(Entry {
                message: Message {
                    conversation: id.clone(),
                    seq: 0,
                    sender: "agent".into(),
                    at: js_sys::Date::now(),
                    client_id: Some(client_id.clone()),
                    body: Body::Text {
                        text: text.to_owned(),
                    },
                },
                pending: true,
            });
        });
        self.with_socket(|socket| {
            socket.typing(&id, false);
            socket.message(&id, &client_id, text);
        });
    }

    pub fn typing(self, on: bool) {
        if let Some(id) = self.selected.get_untracked() {
            self.with_socket(|socket| socket.typing(&id, on));
        }
    }

    fn on_socket(self, event: SocketEvent) {
        match event {
            SocketEvent::Connected(on) => {
                self.connected.set(on);
                if !on {
                    // A connection refused because the session is gone: back to signing in.
                    spawn_local(async move {
                        if let Err(error) = api::me().await
                            && error.status() == Some(401)
                        {
                            self.reset();
                        }
                    });
                }
            }
            SocketEvent::Frame(frame) => self.on_frame(*frame),
        }
    }

    fn on_frame(self, frame: ServerFrame) {
        let selected = self.selected.get_untracked();
        let is_open = |id: &str| selected.as_deref() == Some(id);
        match frame {
            ServerFrame::Hello { user } => {
                self.user.set(Some(*user));
                // After a reconnect: whatever changed while the connection was down (the
                // first connection comes with the lists `start` loads).
                if self.greeted.get_value() {
                    self.refresh_lists();
                }
                self.greeted.set_value(true);
            }
            ServerFrame::Queue { conversations } => {
                self.queue.set(conversations);
                // The server sends the queue again after every handoff, assignment,
                // transfer, hand-back and end: the changes that "All" shows too.
                self.all_changed();
            }
            ServerFrame::Assigned { conversation } => {
                self.update_summary(&conversation);
                self.notify(&conversation);
            }
            ServerFrame::Message(message) => {
                if is_open(&message.conversation) {
                    if message.sender == "visitor" {
                        self.visitor_typing.set(false);
                    }
                    self.transcript.update(|t| add_message(t, *message));
                    self.mark_read();
                } else {
                    self.bump_unread(&message);
                }
            }
            ServerFrame::Ack {
                conversation,
                client_id,
                seq,
            } => {
                if is_open(&conversation) {
                    self.transcript.update(|t| acknowledge(t, &client_id, seq));
                }
            }
            ServerFrame::Typing { conversation, on } => {
                if is_open(&conversation) {
                    self.visitor_typing.set(on);
                    let at = js_sys::Date::now();
                    self.typing_at.set_value(at);
                    set_timeout(
                        move || {
                            if self.typing_at.get_value() == at {
                                self.visitor_typing.set(false);
                            }
                        },
                        Duration::from_millis(TYPING_SHOWN_MS),
                    );
                }
            }
            ServerFrame::State {
                conversation,
                owner,
                status,
            } => {
                let known = [self.mine, self.queue, self.all].iter().find_map(|list| {
                    list.with_untracked(|l| l.iter().find(|s| s.id == conversation).cloned())
                });
                let known = known.or_else(|| {
                    self.current
                        .get_untracked()
                        .filter(|current| current.id == conversation)
                });
                if let Some(mut summary) = known {
                    summary.owner = owner;
                    summary.status = status;
                    self.update_summary(&summary);
                }
            }
            ServerFrame::Error {
                code,
                message,
                client_id,
                ..
            } => {
                if let Some(client_id) = client_id {
                    self.transcript.update(|t| {
                        t.retain(|e| {
                            !(e.pending && e.message.client_id.as_ref() == Some(&client_id))
                        });
                    });
                }
                let text = if code == "ended" {
                    self.t(T::Ended).to_owned()
                } else {
                    format!("{code}: {message}")
                };
                self.flash.set(Some(text));
            }
            ServerFrame::Other => {}
        }
    }

    fn bump_unread(self, message: &Message) {
        for list in [self.queue, self.mine, self.all] {
            list.update(|list| {
                for row in list.iter_mut().filter(|row| row.id == message.conversation) {
                    if message.sender == "visitor" && message.seq > row.last_seq {
                        row.unread += 1;
                    }
                    row.last_seq = row.last_seq.max(message.seq);
                }
            });
        }
    }

    /// A browser notification for a newly assigned conversation (when permitted).
    fn notify(self, summary: &Summary) {
        if !notifications_supported()
            || Notification::permission() != NotificationPermission::Granted
        {
            return;
        }
        let options = NotificationOptions::new();
        let reason = summary.reason.clone().unwrap_or_default();
        options.set_body(&format!("{} · {reason}", summary.flow));
        options.set_tag(&summary.id);
        let Ok(notification) = Notification::new_with_options(self.t(T::NewAssigned), &options)
        else {
            return;
        };
        // A click brings the console forward with the conversation open. The closure runs at
        // most once; one that is never called (the notification was dismissed) stays
        // allocated with its notification, a small object per assignment.
        let id = summary.id.clone();
        let shown = notification.clone();
        let on_click = Closure::once_into_js(move || {
            if let Some(window) = web_sys::window() {
                let _ = window.focus();
            }
            shown.close();
            if self.user.with_untracked(Option::is_none) {
                return; // Signed out since.
            }
            if self.tab.get_untracked() == Tab::Queue {
                self.tab.set(Tab::Mine);
            }
            self.select(id);
        });
        notification.set_onclick(Some(on_click.unchecked_ref()));
    }
}

/// Adds a live message to a transcript: once per `seq`, replacing the pending reply it
/// confirms, in `seq` order with pending replies last.
fn add_message(transcript: &mut Vec<Entry>, message: Message) {
    if transcript
        .iter()
        .any(|e| !e.pending && e.message.seq == message.seq)
    {
        return;
    }
    if let Some(client_id) = &message.client_id {
        transcript.retain(|e| !(e.pending && e.message.client_id.as_ref() == Some(client_id)));
    }
    transcript.push(Entry {
        message,
        pending: false,
    });
    transcript.sort_by_key(|e| (e.pending, e.message.seq));
}

/// The reply with `client_id` is stored under `seq`.
fn acknowledge(transcript: &mut Vec<Entry>, client_id: &str, seq: u64) {
    let stored = transcript
        .iter()
        .any(|e| !e.pending && e.message.seq == seq);
    if stored {
        transcript.retain(|e| !(e.pending && e.message.client_id.as_deref() == Some(client_id)));
    } else if let Some(entry) = transcript
        .iter_mut()
        .find(|e| e.pending && e.message.client_id.as_deref() == Some(client_id))
    {
        entry.pending = false;
        entry.message.seq = seq;
    }
    transcript.sort_by_key(|e| (e.pending, e.message.seq));
}

const LANG_KEY: &str = "kefu.lang";
const TYPING_SHOWN_MS: u64 = 8000;
/// "All" is read again at most this often while conversations change.
const ALL_REFRESH_MS: u64 = 500;
const FLASH_SHOWN_SECS: u64 = 8;
const NOTIFY_KEY: &str = "kefu.notifications-asked";

/// The page named by `?next=` after signing in: only a path of this site (`/…`, not `//…`).
fn next_page() -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok()?;
    let next = params.get("next")?;
    (next.starts_with('/') && !next.starts_with("//") && !next.contains('\\')).then_some(next)
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn notifications_supported() -> bool {
    web_sys::window().is_some_and(|w| {
        js_sys::Reflect::has(&w, &JsValue::from_str("Notification")).unwrap_or(false)
    })
}

/// Asks for permission to notify, once per browser (on the first sign-in).
fn ask_for_notifications() {
    let Some(storage) = local_storage() else {
        return;
    };
    if storage.get_item(NOTIFY_KEY).ok().flatten().is_some() || !notifications_supported() {
        return;
    }
    let _ = storage.set_item(NOTIFY_KEY, "1");
    if Notification::permission() == NotificationPermission::Default {
        let _ = Notification::request_permission();
    }
}

/// The whole console.
#[component]
pub fn App() -> impl IntoView {
    let console = Console::new();
    provide_context(console);

    Effect::new(move |_| {
        let lang = console.lang.get();
        if let Some(storage) = local_storage() {
            let _ = storage.set_item(LANG_KEY, lang.tag());
        }
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", lang.tag());
        }
        document().set_title(&format!("kefu · {}", T::Title.get(lang)));
    });
    let _ = set_interval_with_handle(
        move || console.now.set(js_sys::Date::now()),
        Duration::from_secs(5),
    );
    let _ = window_event_listener(leptos::ev::keydown, move |event| shortcut(console, &event));
    // Messages that came while the window was in the background are read when it is back.
    let _ = window_event_listener(leptos::ev::focus, move |_| console.mark_read());
    spawn_local(async move {
        if let Ok(session) = api::me().await {
            console.start(session);
        }
        console.checked.set(true);
    });

    // A memo, so that a fresh `User` (each `hello`) does not rebuild the whole page.
    let signed_in = Memo::new(move |_| console.user.with(Option::is_some));
    view! {
        <style>{style::CSS}</style>
        {move || {
            if !console.checked.get() {
                view! { <p class="loading">{console.t(T::Loading)}</p> }.into_any()
            } else if signed_in.get() {
                view! { <Workspace /> }.into_any()
            } else {
                view! { <Login /> }.into_any()
            }
        }}
    }
}

#[component]
fn Login() -> impl IntoView {
    let console = expect_context::<Console>();
    let login = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match api::login(&login.get_untracked(), &password.get_untracked()).await {
                Ok(session) => {
                    ask_for_notifications();
                    console.start(session);
                }
                Err(ApiError::Status {
                    status: 429,
                    retry_after,
                    ..
                }) => {
                    let lang = console.lang.get_untracked();
                    error.set(Some(i18n::retry_in(lang, retry_after.unwrap_or(60))));
                }
                Err(ApiError::Status { status: 401, .. }) => {
                    error.set(Some(console.t(T::WrongLogin).to_owned()));
                }
                Err(other) => error.set(Some(other.to_string())),
            }
            busy.set(false);
        });
    };
    view! {
        <div class="login-page">
            <form class="login" on:submit=submit>
                <h1>"kefu · " {move || console.t(T::Title)}</h1>
                <label>
                    {move || console.t(T::Login)}
                    <input data-test="login-login" name="login" autocomplete="username" required
                        prop:value=move || login.get()
                        on:input=move |ev| login.set(event_target_value(&ev)) />
                </label>
                <label>
                    {move || console.t(T::Password)}
                    <input data-test="login-password" name="password" type="password"
                        autocomplete="current-password" required
                        prop:value=move || password.get()
                        on:input=move |ev| password.set(event_target_value(&ev)) />
                </label>
                <Show when=move || error.with(Option::is_some)>
                    <p class="error" data-test="login-error" role="alert">
                        {move || error.get().unwrap_or_default()}
                    </p>
                </Show>
                <button data-test="login-submit" type="submit" disabled=move || busy.get()>
                    {move || console.t(T::SignIn)}
                </button>
                <LangSwitch />
            </form>
        </div>
    }
}

#[component]
fn LangSwitch() -> impl IntoView {
    let console = expect_context::<Console>();
    view! {
        <button type="button" class="lang" data-test="lang-switch"
            on:click=move |_| console.lang.update(|l| *l = l.other())>
            {move || console.lang.get().other().name()}
        </button>
    }
}

/// The signed-in layout: header, lists, conversation, overlays.
#[component]
fn Workspace() -> impl IntoView {
    let console = expect_context::<Console>();
    // A message goes away on a click, or by itself after a while.
    Effect::new(move |_| {
        if let Some(text) = console.flash.get() {
            set_timeout(
                move || {
                    if console.flash.get_untracked().as_deref() == Some(text.as_str()) {
                        console.flash.set(None);
                    }
                },
                Duration::from_secs(FLASH_SHOWN_SECS),
            );
        }
    });
    let name = move || {
        console
            .user
            .with(|u| u.as_ref().map(|u| u.name.clone()).unwrap_or_default())
    };
    view! {
        <div class="console">
            <header>
                <strong>"kefu · " {move || console.t(T::Title)}</strong>
                <span class="status" data-test="ws-status" class:online=move || console.connected.get()>
                    {move || if console.connected.get() { console.t(T::Connected) } else { console.t(T::Reconnecting) }}
                </span>
                <Show when=move || console.is_admin()>
                    <PageSwitch />
                </Show>
                <span class="spacer"></span>
                <span data-test="user-name">{name}</span>
                <LangSwitch />
                <button type="button" data-test="help-button" on:click=move |_| console.help.update(|h| *h = !*h)>"?"</button>
                <button type="button" data-test="logout" on:click=move |_| console.sign_out()>
                    {move || console.t(T::SignOut)}
                </button>
            </header>
            <Show when=move || console.flash.with(Option::is_some)>
                <div class="flash" data-test="flash" role="alert" on:click=move |_| console.flash.set(None)>
                    {move || console.flash.get().unwrap_or_default()}
                </div>
            </Show>
            // Hidden rather than dropped while an admin page is open, so that a draft
            // reply or note survives a look at the admin pages.
            <main class:hidden=move || console.page.get() != Page::Conversations>
                <list::ConversationList />
                <view::ConversationView />
            </main>
            <Show when=move || console.page.get() == Page::Connectors && console.is_admin()>
                <connectors::ConnectorsPage />
            </Show>
            <Show when=move || console.page.get() == Page::Access && console.is_admin()>
                <access::AccessPage />
            </Show>
            <Show when=move || console.help.get()>
                <Help />
            </Show>
        </div>
    }
}

/// The admin's way between the conversations and the admin pages.
#[component]
fn PageSwitch() -> impl IntoView {
    let console = expect_context::<Console>();
    let button = move |page: Page, label: T, test: &'static str| {
        view! {
            <button type="button" data-test=test class:active=move || console.page.get() == page
                aria-pressed=move || (console.page.get() == page).to_string()
                on:click=move |_| console.page.set(page)>
                {move || console.t(label)}
            </button>
        }
    };
    view! {
        <nav class="pages">
            {button(Page::Conversations, T::Conversations, "conversations-button")}
            {button(Page::Connectors, T::Connectors, "connectors-button")}
            {button(Page::Access, T::Access, "access-button")}
        </nav>
    }
}

#[component]
fn Help() -> impl IntoView {
    let console = expect_context::<Console>();
    view! {
        <div class="overlay" data-test="help-overlay" on:click=move |_| console.help.set(false)>
            <div class="dialog" on:click=|ev| ev.stop_propagation()>
                <h2>{move || console.t(T::Shortcuts)}</h2>
                <table>
                    {move || i18n::shortcuts(console.lang.get())
                        .into_iter()
                        .map(|(keys, what)| view! { <tr><td><kbd>{keys}</kbd></td><td>{what}</td></tr> })
                        .collect_view()}
                </table>
            </div>
        </div>
    }
}

/// The keyboard shortcuts (listed in `i18n::shortcuts`).
fn shortcut(console: Console, event: &web_sys::KeyboardEvent) {
    if console.user.with_untracked(Option::is_none)
        || event.ctrl_key()
        || event.meta_key()
        || event.alt_key()
    {
        return;
    }
    let key = event.key();
    let in_field = event
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
    if key == "Escape" {
        console.help.set(false);
        console.dialog.set(None);
        if let Some(active) = document()
            .active_element()
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = active.blur();
        }
        return;
    }
    if in_field || console.dialog.with_untracked(Option::is_some) {
        return;
    }
    if console.page.get_untracked() != Page::Conversations {
        // The conversation shortcuts would act on a conversation out of sight.
        if key == "?" {
            console.help.update(|h| *h = !*h);
            event.prevent_default();
        }
        return;
    }
    let handled = match key.as_str() {
        "?" => {
            console.help.update(|h| *h = !*h);
            true
        }
        "j" | "k" => {
            list::move_selection(console, if key == "j" { 1 } else { -1 });
            true
        }
        "1" => set_tab(console, Tab::Queue),
        "2" => set_tab(console, Tab::Mine),
        "3" if console.is_admin() => set_tab(console, Tab::All),
        "c" => view::claim(console),
        "t" => view::open_dialog(console, Dialog::Transfer),
        "e" => view::resolve(console),
        "b" => view::open_dialog(console, Dialog::HandBack),
        "r" => focus(console.reply_ref),
        "n" => focus(console.note_ref),
        _ => false,
    };
    if handled {
        event.prevent_default();
    }
}

fn set_tab(console: Console, tab: Tab) -> bool {
    console.tab.set(tab);
    true
}

fn focus(target: NodeRef<Textarea>) -> bool {
    match target.get_untracked() {
        Some(element) => element.focus().is_ok(),
        None => false,
    }
}

/// Mounts the console into `#app` (or the body).
pub fn mount() {
    let app = document()
        .get_element_by_id("app")
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
    match app {
        Some(app) => {
            app.set_inner_html("");
            mount_to(app, App).forget();
        }
        None => mount_to_body(App),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(seq: u64, sender: &str, client_id: Option<&str>, pending: bool) -> Entry {
        Entry {
            message: Message {
                seq,
                sender: sender.into(),
                client_id: client_id.map(str::to_owned),
                body: Body::Text {
                    text: format!("m{seq}"),
                },
                ..Message::default()
            },
            pending,
        }
    }

    fn seqs(transcript: &[Entry]) -> Vec<(u64, bool)> {
        transcript
            .iter()
            .map(|e| (e.message.seq, e.pending))
            .collect()
    }

    #[test]
    fn live_messages_are_added_once_in_order() {
        let mut t = vec![
            text(1, "bot", None, false),
            text(0, "agent", Some("a-1"), true),
        ];
        add_message(&mut t, text(3, "visitor", None, false).message);
        add_message(&mut t, text(2, "visitor", None, false).message);
        add_message(&mut t, text(3, "visitor", None, false).message);
        assert_eq!(seqs(&t), [(1, false), (2, false), (3, false), (0, true)]);
        // The server's echo of the pending reply replaces it.
        add_message(&mut t, text(4, "agent", Some("a-1"), false).message);
        assert_eq!(seqs(&t), [(1, false), (2, false), (3, false), (4, false)]);
    }

    #[test]
    fn an_ack_stores_the_pending_reply() {
        let mut t = vec![
            text(1, "bot", None, false),
            text(0, "agent", Some("a-1"), true),
        ];
        acknowledge(&mut t, "a-1", 2);
        assert_eq!(seqs(&t), [(1, false), (2, false)]);
        // An ack after the echo leaves one copy.
        let mut t = vec![text(0, "agent", Some("a-2"), true)];
        add_message(&mut t, text(5, "agent", None, false).message);
        acknowledge(&mut t, "a-2", 5);
        assert_eq!(seqs(&t), [(5, false)]);
    }
}
