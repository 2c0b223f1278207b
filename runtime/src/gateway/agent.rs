//! The agent WebSocket (`/ws/agent`, `docs/console-api.md`): the signed-in agent's queue as it
//! changes, the conversations they open (resumable by sequence number, like a visitor's), their
//! replies (acknowledged once stored) and typing in both directions.
//!
//! Each opened conversation gets a forwarding task (a child of the connection's token) that
//! subscribes to the conversation, reads what the agent missed from the database and then
//! forwards live frames, tagged with the conversation's id, into the connection's channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::Chat;
use super::frames::{error_frame, valid_client_id};
use crate::auth::Caller;
use crate::conversation::{ConsoleAction, ConsoleError, Hub, Outbound, message_frame};
use crate::server::AppState;
use crate::store::{ListView, Sender, Store};

/// Frames waiting for a slow console before its forwarders wait too.
const CHANNEL: usize = 256;

/// Changes of the queue closer together than this are sent to consoles as one (250 ms instead
/// of 50: a third of the frames in a 2,000-visitor burst, 146 MiB instead of 463, at the same
/// assignment rate; `assigned` frames are not delayed).
const QUEUE_COALESCE: std::time::Duration = std::time::Duration::from_millis(250);

/// Starts the task that renders the `queue` frame once per change (not once per console) and
/// publishes it; consoles send whatever is current. Ends with the hub.
pub fn queue_feed(hub: &Hub, store: Store) -> tokio::sync::watch::Receiver<Arc<QueueFrame>> {
    let (publish, feed) = tokio::sync::watch::channel(Arc::new(QueueFrame::default()));
    let mut changes = hub.queue_changes();
    let shutdown = hub.shutdown_token().clone();
    tokio::spawn(async move {
        loop {
            if let Some(frame) = render_queue(&store).await {
                publish.send_replace(Arc::new(frame));
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                change = changes.recv() => {
                    if matches!(change, Err(broadcast::error::RecvError::Closed)) {
                        return;
                    }
                }
            }
            // Render once for a whole burst of handoffs.
            crate::conversation::settle(&mut changes, QUEUE_COALESCE).await;
        }
    });
    feed
}

/// The `queue` frame, rendered once per change for every console: its text, and its
/// summaries for the consoles whose agents may not read them all (`send_queue`), so that no
/// console parses the text again.
pub struct QueueFrame {
    text: String,
    summaries: Vec<Value>,
}

impl Default for QueueFrame {
    fn default() -> QueueFrame {
        QueueFrame {
            text: r#"{"type":"queue","conversations":[]}"#.to_owned(),
            summaries: Vec::new(),
        }
    }
}

/// The `queue` frame: the waiting conversations, highest priority first.
async fn render_queue(store: &Store) -> Option<QueueFrame> {
    let conversations = match store.list_conversations(&ListView::Queue, 100).await {
        Ok(conversations) => conversations,
        Err(error) => {
            tracing::error!(%error, "cannot read the queue");
            return None;
        }
    };
    let mut summaries = Vec::with_capacity(conversations.len());
    for conversation in &conversations {
        summaries.push(crate::console::summary(store, conversation).await.ok()?);
    }
    let text = json!({"type": "queue", "conversations": summaries}).to_string();
    Some(QueueFrame { text, summaries })
}

/// A frame from the console.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AgentFrame {
    Open {
        conversation: String,
        #[serde(default)]
        last_seq: i64,
    },
    Close {
        conversation: String,
    },
    Message {
        conversation: String,
        client_id: String,
        text: String,
    },
    Typing {
        conversation: String,
        on: bool,
    },
    Read {
        #[allow(dead_code)]
        conversation: String,
        #[allow(dead_code)]
        seq: i64,
    },
    Ping {},
}

/// `GET /ws/agent`: the caller must be signed in, and the page must come from this server.
pub async fn agent(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let (Some(chat), Some(store)) = (state.chat.clone(), state.store.clone()) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the console is not available on this server",
        )
            .into_response();
    };
    // Cookies go with cross-site WebSocket requests too: only our own pages may connect.
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "cross-origin console connections are refused",
        )
            .into_response();
    }
    let hard_limit = chat.limits.max_frame * 4;
    upgrade
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        // As for visitors: small frames in, every frame flushed as it is sent.
        .read_buffer_size(super::READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let token = chat.hub.shutdown_token().child_token();
            tracing::debug!(peer = %peer, agent = %caller.user.login, "console connected");
            AgentConnection::run(socket, state, chat, store, caller, token).await;
        })
}

/// Whether the request's `Origin` (when a browser sent one) is this server.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin_host == host
}

struct AgentConnection {
    socket: WebSocket,
    state: Arc<AppState>,
    chat: Chat,
    store: Store,
    caller: Caller,
    token: CancellationToken,
    frames: mpsc::Receiver<String>,
    sender: mpsc::Sender<String>,
    /// The forwarders of the opened conversations.
    open: HashMap<String, CancellationToken>,
    last_seen: Instant,
    /// What the policies let this agent read of the queue, and since when (kept a few seconds:
    /// the queue changes several times a second under load).
    reader: Option<(Instant, crate::access::ListReader)>,
}

/// How long an agent's [`crate::access::ListReader`] decides the queue frames they are sent.
const READER_FOR: std::time::Duration = std::time::Duration::from_secs(5);

impl AgentConnection {
    async fn run(
        socket: WebSocket,
        state: Arc<AppState>,
        chat: Chat,
        store: Store,
        caller: Caller,
        token: CancellationToken,
    ) {
        let (sender, frames) = mpsc::channel(CHANNEL);
        let mut connection = AgentConnection {
            socket,
            state,
            chat,
            store,
            caller,
            token,
            frames,
            sender,
            open: HashMap::new(),
            last_seen: Instant::now(),
            reader: None,
        };
        connection.serve().await;
        connection.token.cancel();
    }

    async fn serve(&mut self) {
        let mut queue = self.chat.hub.queue_changes();
        let mut feed = self.chat.queue.clone();
        let _online = self.chat.hub.agent_online(&self.caller.user);
        let hello = json!({"type": "hello", "user": self.caller.user});
        let current = feed.borrow_and_update().clone();
        if self.send(&hello.to_string()).await.is_err() || self.send_queue(&current).await.is_err()
        {
            return;
        }
        let mut ping = tokio::time::interval(self.chat.limits.ping_every);
        ping.tick().await;
        loop {
            let outcome = tokio::select! {
                () = self.token.cancelled() => Err(Some((close_code::AWAY, "the server is shutting down"))),
                frame = self.socket.next() => match frame {
                    Some(Ok(message)) => {
                        self.last_seen = Instant::now();
                        self.on_frame(message).await
                    }
                    Some(Err(_)) | None => Err(None),
                },
                Some(frame) = self.frames.recv() => self.send(&frame).await,
                changed = feed.changed() => match changed {
                    Ok(()) => {
                        let frame = feed.borrow_and_update().clone();
                        self.send_queue(&frame).await
                    }
                    Err(_) => Err(None),
                },
                change = queue.recv() => match change {
                    Ok(change) => self.on_queue_change(&change).await,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        // The queue frame still follows; only `assigned` notices were lost.
                        tracing::warn!(agent = %self.caller.user.login, missed, "a console fell behind the queue changes");
                        Ok(())
                    }
                    Err(broadcast::error::RecvError::Closed) => Err(None),
                },
                _ = ping.tick() => {
                    if self.last_seen.elapsed() > self.chat.limits.idle_timeout {
                        Err(Some((close_code::AWAY, "no heartbeat")))
                    } else {
                        self.socket.send(Message::Ping(Default::default())).await.map_err(|_| None)
                    }
                }
            };
            if let Err(end) = outcome {
                if let Some((code, reason)) = end {
                    let close = Message::Close(Some(CloseFrame {
                        code,
                        reason: Utf8Bytes::from_static(reason),
                    }));
                    let _ = self.socket.send(close).await;
                }
                return;
            }
        }
    }

    /// Sends the shared `queue` frame with only the conversations the policies let this agent
    /// read (the frame as it is when they may read them all; none when the decision cannot be
    /// made).
    async fn send_queue(&mut self, frame: &QueueFrame) -> Result<(), Option<(u16, &'static str)>> {
        self.refresh_reader().await;
        let readable: Vec<&Value> = match &self.reader {
            Some((_, reader)) => frame
                .summaries
                .iter()
                .filter(|summary| reader.may_read(summary))
                .collect(),
            None => Vec::new(),
        };
        if readable.len() == frame.summaries.len() {
            self.send(&frame.text).await
        } else {
            let text = json!({"type": "queue", "conversations": readable}).to_string();
            self.send(&text).await
        }
    }

    /// Reads the agent's subject and grants again when the last read is older than
    /// [`READER_FOR`] (none, so nothing is shown, when they cannot be read).
    async fn refresh_reader(&mut self) {
        let fresh = self
            .reader
            .as_ref()
            .is_some_and(|(since, _)| since.elapsed() < READER_FOR);
        if !fresh {
            self.reader = crate::access::ListReader::new(&self.state, &self.caller)
                .await
                .ok()
                .map(|reader| (Instant::now(), reader));
        }
    }

    async fn send(&mut self, frame: &str) -> Result<(), Option<(u16, &'static str)>> {
        self.socket
            .send(Message::Text(frame.into()))
            .await
            .map_err(|_| None)
    }

    async fn error(
        &mut self,
        code: &str,
        message: &str,
    ) -> Result<(), Option<(u16, &'static str)>> {
        self.send(&error_frame(code, message, None, false)).await
    }

    async fn on_queue_change(
        &mut self,
        change: &crate::conversation::QueueChange,
    ) -> Result<(), Option<(u16, &'static str)>> {
        let mine = change.assignee.as_deref() == Some(self.caller.user.id.as_str());
        if !mine || !matches!(change.event, "assigned" | "transferred") {
            return Ok(());
        }
        self.refresh_reader().await;
        if let Ok(Some(conversation)) = self.store.conversation(&change.conversation).await
            && let Ok(summary) = crate::console::summary(&self.store, &conversation).await
            // Decided like the queue's summaries (a policy may deny even one's own).
            && self
                .reader
                .as_ref()
                .is_some_and(|(_, reader)| reader.may_read(&summary))
        {
            let frame = json!({"type": "assigned", "conversation": summary});
            self.send(&frame.to_string()).await?;
        }
        Ok(())
    }

    async fn on_frame(&mut self, message: Message) -> Result<(), Option<(u16, &'static str)>> {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return Err(None),
            Message::Binary(_) => return self.error("bad_frame", "send JSON text frames").await,
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
        };
        if text.len() > self.chat.limits.max_frame {
            return self
                .error("frame_too_large", "the frame is too large")
                .await;
        }
        let frame: AgentFrame = match serde_json::from_str(text.as_str()) {
            Ok(frame) => frame,
            Err(error) => {
                let message = format!("the frame is not a valid console frame: {error}");
                return self.error("bad_frame", &message).await;
            }
        };
        match frame {
            AgentFrame::Open {
                conversation,
                last_seq,
            } => self.open_conversation(conversation, last_seq.max(0)).await,
            AgentFrame::Close { conversation } => {
                if let Some(forwarder) = self.open.remove(&conversation) {
                    forwarder.cancel();
                }
                Ok(())
            }
            AgentFrame::Message {
                conversation,
                client_id,
                text,
            } => self.reply(conversation, client_id, text).await,
            AgentFrame::Typing { conversation, on } => {
                if self.open.contains_key(&conversation)
                    && let Ok(handle) = self.chat.hub.get(&conversation).await
                {
                    handle.typing(Sender::Agent, on);
                }
                Ok(())
            }
            AgentFrame::Read { .. } => Ok(()),
            AgentFrame::Ping {} => self.send(r#"{"type":"pong"}"#).await,
        }
    }

    async fn open_conversation(
        &mut self,
        id: String,
        last_seq: i64,
    ) -> Result<(), Option<(u16, &'static str)>> {
        // Decided by the policies like the console API's reads, and audited: a subscription
        // is a read of the transcript.
        let allowed = match self.store.conversation(&id).await {
            Ok(Some(conversation)) => {
                match crate::access::conversation(&self.state, &self.caller, &conversation).await {
                    Ok(verdict) => {
                        verdict.audit(&self.state, None).await;
                        verdict.allowed
                    }
                    Err(_) => false,
                }
            }
            _ => false,
        };
        if !allowed {
            return self
                .error("unknown_conversation", &format!("no conversation `{id}`"))
                .await;
        }
        if let Some(previous) = self.open.remove(&id) {
            previous.cancel();
        }
        let token = self.token.child_token();
        self.open.insert(id.clone(), token.clone());
        let forwarder = Forwarder {
            id: Arc::from(id.as_str()),
            hub: self.chat.hub.clone(),
            store: self.store.clone(),
            sender: self.sender.clone(),
            last_sent: last_seq,
        };
        tokio::spawn(forwarder.run(token));
        Ok(())
    }

    async fn reply(
        &mut self,
        id: String,
        client_id: String,
        text: String,
    ) -> Result<(), Option<(u16, &'static str)>> {
        if !valid_client_id(&client_id) || text.trim().is_empty() || text.chars().count() > 4000 {
            return self
                .error(
                    "bad_frame",
                    "a reply needs a valid `client_id` and 1–4,000 characters",
                )
                .await;
        }
        let action = ConsoleAction::Reply {
            agent: self.caller.user.id.clone(),
            client_id: client_id.clone(),
            text,
        };
        let Ok(done) = self.chat.hub.console(&id, action).await else {
            return self
                .error("unknown_conversation", &format!("no conversation `{id}`"))
                .await;
        };
        match done {
            Ok(outcome) => {
                let frame = json!({
                    "type": "ack", "conversation": id, "client_id": client_id, "seq": outcome.seq,
                });
                self.send(&frame.to_string()).await
            }
            Err(ConsoleError::Conflict(why)) => {
                let frame = json!({
                    "type": "error", "code": "not_allowed", "message": why,
                    "conversation": id, "client_id": client_id, "fatal": false,
                });
                self.send(&frame.to_string()).await
            }
            Err(ConsoleError::Gone) => {
                self.error("internal", "the reply was not stored; send it again")
                    .await
            }
        }
    }
}

/// Whether `caller` may see conversation `id` (as the console API decides).
/// Forwards one conversation's frames to a console connection.
struct Forwarder {
    id: Arc<str>,
    hub: Hub,
    store: Store,
    sender: mpsc::Sender<String>,
    last_sent: i64,
}

impl Forwarder {
    async fn run(mut self, token: CancellationToken) {
        tokio::select! {
            () = token.cancelled() => {}
            () = self.forward() => {}
        }
    }

    async fn forward(&mut self) {
        loop {
            let Ok(handle) = self.hub.get(&self.id).await else {
                return;
            };
            let mut events = handle.subscribe();
            if self.catch_up().await.is_err() {
                return;
            }
            loop {
                let frame = match events.recv().await {
                    Ok(Outbound::Message { seq, frame, .. }) => {
                        if seq <= self.last_sent {
                            continue;
                        }
                        if seq > self.last_sent + 1 {
                            if self.catch_up().await.is_err() {
                                return;
                            }
                            continue;
                        }
                        self.last_sent = seq;
                        tagged(&self.id, &frame)
                    }
                    Ok(Outbound::Frame(frame)) => tagged(&self.id, &frame),
                    Ok(Outbound::Typing { sender, on }) => {
                        if sender != Sender::Visitor {
                            continue;
                        }
                        json!({"type": "typing", "conversation": &*self.id, "sender": "visitor", "on": on})
                            .to_string()
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if self.catch_up().await.is_err() {
                            return;
                        }
                        continue;
                    }
                    // The conversation's task stopped: follow the next one.
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if self.sender.send(frame).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Sends what the database has after the last message sent.
    async fn catch_up(&mut self) -> Result<(), ()> {
        let missed = self
            .store
            .messages_since(&self.id, self.last_sent)
            .await
            .map_err(
                |error| tracing::error!(conversation = %self.id, %error, "cannot read messages"),
            )?;
        for message in &missed {
            self.sender
                .send(tagged(&self.id, &message_frame(message)))
                .await
                .map_err(drop)?;
            self.last_sent = message.seq;
        }
        Ok(())
    }
}

/// `frame` (a JSON object) with `"conversation"` added.
fn tagged(conversation: &str, frame: &str) -> String {
    match serde_json::from_str::<Value>(frame) {
        Ok(Value::Object(mut object)) => {
            object.insert("conversation".to_owned(), Value::from(conversation));
            Value::Object(object).to_string()
        }
        _ => frame.to_owned(),
    }
}
