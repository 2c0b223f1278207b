//! The agent WebSocket (`/ws/agent`): frames, and a connection that reconnects with
//! exponential backoff and resumes every open conversation from the last `seq` it saw, so that
//! nothing is lost or repeated; unacknowledged messages are sent again with the same
//! `client_id` (the server stores a message once per `client_id`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use super::api::{Message, Summary, User};

const FIRST_BACKOFF_MS: u64 = 500;
const MAX_BACKOFF_MS: u64 = 30_000;

/// A frame from the server; unknown types are ignored. (The big variants are boxed.)
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Hello {
        user: Box<User>,
    },
    Queue {
        conversations: Vec<Summary>,
    },
    Assigned {
        conversation: Box<Summary>,
    },
    Message(Box<Message>),
    Ack {
        conversation: String,
        client_id: String,
        seq: u64,
    },
    Typing {
        conversation: String,
        #[serde(default)]
        on: bool,
    },
    State {
        conversation: String,
        #[serde(default)]
        owner: String,
        #[serde(default)]
        status: String,
    },
    Error {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        client_id: Option<String>,
    },
    #[serde(other)]
    Other,
}

/// What the console hears from the socket.
pub enum SocketEvent {
    Frame(Box<ServerFrame>),
    Connected(bool),
}

/// A message sent and not acknowledged yet.
struct Pending {
    conversation: String,
    client_id: String,
    text: String,
}

struct Inner {
    url: String,
    ws: Option<WebSocket>,
    backoff_ms: u64,
    stopped: bool,
    /// Open conversations and the highest `seq` seen in each.
    open: BTreeMap<String, u64>,
    pending: Vec<Pending>,
    on_event: Rc<dyn Fn(SocketEvent)>,
    /// The callbacks of the current WebSocket, kept alive as long as it is.
    callbacks: Vec<Closure<dyn FnMut(Event)>>,
}

/// The console's connection. Cloning shares it.
#[derive(Clone)]
pub struct Socket(Rc<RefCell<Inner>>);

impl Socket {
    /// Connects to `/ws/agent` on this page's host; `on_event` hears every frame.
    pub fn connect(on_event: Rc<dyn Fn(SocketEvent)>) -> Socket {
        let location = web_sys::window().map(|w| w.location());
        let host = location
            .as_ref()
            .and_then(|l| l.host().ok())
            .unwrap_or_default();
        let secure = location
            .and_then(|l| l.protocol().ok())
            .is_some_and(|p| p == "https:");
        let scheme = if secure { "wss" } else { "ws" };
        let socket = Socket(Rc::new(RefCell::new(Inner {
            url: format!("{scheme}://{host}/ws/agent"),
            ws: None,
            backoff_ms: FIRST_BACKOFF_MS,
            stopped: false,
            open: BTreeMap::new(),
            pending: Vec::new(),
            on_event,
            callbacks: Vec::new(),
        })));
        socket.dial();
        socket
    }

    fn dial(&self) {
        let url = self.0.borrow().url.clone();
        let Ok(ws) = WebSocket::new(&url) else {
            self.retry_later();
            return;
        };
        let on_open = {
            let socket = self.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| socket.opened())
        };
        let on_message = {
            let socket = self.clone();
            Closure::<dyn FnMut(Event)>::new(move |event: Event| {
                if let Some(text) = event
                    .dyn_ref::<MessageEvent>()
                    .and_then(|m| m.data().as_string())
                {
                    socket.received(&text);
                }
            })
        };
        let on_close = {
            let socket = self.clone();
            Closure::<dyn FnMut(Event)>::new(move |event: Event| {
                let _ = event.dyn_ref::<CloseEvent>();
                socket.closed();
            })
        };
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let mut inner = self.0.borrow_mut();
        inner.callbacks = vec![on_open, on_message, on_close];
        inner.ws = Some(ws);
    }

    /// On (re)connect: reopen every open conversation from its last `seq`, then resend what
    /// was not acknowledged.
    fn opened(&self) {
        let (frames, on_event) = {
            let inner = self.0.borrow();
            let mut frames: Vec<Value> = inner
                .open
                .iter()
                .map(|(id, seq)| json!({"type": "open", "conversation": id, "last_seq": seq}))
                .collect();
            frames.extend(inner.pending.iter().map(|p| {
                json!({"type": "message", "conversation": p.conversation,
                       "client_id": p.client_id, "text": p.text})
            }));
            (frames, inner.on_event.clone())
        };
        for frame in &frames {
            self.send_raw(frame);
        }
        on_event(SocketEvent::Connected(true));
    }

    fn received(&self, text: &str) {
        let Ok(frame) = serde_json::from_str::<ServerFrame>(text) else {
            return;
        };
        let on_event = {
            let mut inner = self.0.borrow_mut();
            match &frame {
                ServerFrame::Hello { .. } => inner.backoff_ms = FIRST_BACKOFF_MS,
                ServerFrame::Message(message) => {
                    if let Some(seen) = inner.open.get_mut(&message.conversation) {
                        *seen = (*seen).max(message.seq);
                    }
                }
                ServerFrame::Ack { client_id, .. } => {
                    // Stored: never resend it. An ack does not move `last_seq` (only
                    // `message` frames do), so a resume brings the reply back as a
                    // `message`, which the transcript recognises by its `seq`.
                    inner.pending.retain(|p| &p.client_id != client_id);
                }
                ServerFrame::Error {
                    client_id: Some(client_id),
                    ..
                } => inner.pending.retain(|p| &p.client_id != client_id),
                _ => {}
            }
            inner.on_event.clone()
        };
        on_event(SocketEvent::Frame(Box::new(frame)));
    }

    fn closed(&self) {
        let (stopped, on_event) = {
            let mut inner = self.0.borrow_mut();
            inner.ws = None;
            (inner.stopped, inner.on_event.clone())
        };
        if !stopped {
            on_event(SocketEvent::Connected(false));
            self.retry_later();
        }
    }

    fn retry_later(&self) {
        let delay = {
            let mut inner = self.0.borrow_mut();
            let delay = inner.backoff_ms;
            inner.backoff_ms = (delay * 2).min(MAX_BACKOFF_MS);
            delay
        };
        let socket = self.clone();
        leptos::prelude::set_timeout(
            move || {
                if !socket.0.borrow().stopped {
                    socket.dial();
                }
            },
            Duration::from_millis(delay),
        );
    }

    fn send_raw(&self, frame: &Value) {
        let ws = self.0.borrow().ws.clone();
        if let Some(ws) = ws
            && ws.ready_state() == WebSocket::OPEN
        {
            let _ = ws.send_with_str(&frame.to_string());
        }
    }

    /// Receives `conversation`'s messages after `last_seq`, then live (also after reconnects).
    pub fn open(&self, conversation: &str, last_seq: u64) {
        self.0
            .borrow_mut()
            .open
            .insert(conversation.to_owned(), last_seq);
        self.send_raw(&json!({"type": "open", "conversation": conversation, "last_seq": last_seq}));
    }

    pub fn close(&self, conversation: &str) {
        self.0.borrow_mut().open.remove(conversation);
        self.send_raw(&json!({"type": "close", "conversation": conversation}));
    }

    /// Sends a reply; it is sent again after a reconnect until the server acknowledges it.
    pub fn message(&self, conversation: &str, client_id: &str, text: &str) {
        self.0.borrow_mut().pending.push(Pending {
            conversation: conversation.to_owned(),
            client_id: client_id.to_owned(),
            text: text.to_owned(),
        });
        self.send_raw(&json!({"type": "message", "conversation": conversation,
                              "client_id": client_id, "text": text}));
    }

    pub fn typing(&self, conversation: &str, on: bool) {
        self.send_raw(&json!({"type": "typing", "conversation": conversation, "on": on}));
    }

    pub fn read(&self, conversation: &str, seq: u64) {
        self.send_raw(&json!({"type": "read", "conversation": conversation, "seq": seq}));
    }

    /// Closes for good (signing out).
    pub fn stop(&self) {
        let ws = {
            let mut inner = self.0.borrow_mut();
            inner.stopped = true;
            inner.ws.take()
        };
        if let Some(ws) = ws {
            // Detach the callbacks first: they are dropped below, and a dropped callback
            // must never be called.
            ws.set_onopen(None);
            ws.set_onmessage(None);
            ws.set_onclose(None);
            let _ = ws.close();
        }
        self.0.borrow_mut().callbacks.clear();
    }
}
