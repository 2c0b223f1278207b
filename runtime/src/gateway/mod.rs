//! The chat gateway: the visitor WebSocket (`/ws/visitor`), speaking `docs/protocol.md`.
//!
//! One task per connection reads frames, hands visitor messages to their conversation (and
//! acknowledges them once stored), and forwards the conversation's messages. A connection that
//! resumes first subscribes to the conversation, then reads what it missed from the database,
//! then forwards live messages it has not sent yet: nothing is missed and nothing is sent twice.

pub mod agent;
pub mod frames;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use self::frames::{ClientFrame, ack_frame, error_frame, rate_limited_frame, valid_client_id};
use crate::conversation::{
    ConversationHandle, Hub, HubError, Outbound, SendError, StartParams, VisitorInput,
    message_frame,
};
use crate::server::AppState;

/// The limits a connection must keep; the defaults are the protocol's.
#[derive(Debug, Clone)]
pub struct GatewayLimits {
    /// The largest text frame answered with `frame_too_large` (bytes).
    pub max_frame: usize,
    /// The longest visitor message (characters).
    pub max_text: usize,
    /// Frames per second a connection may send on average…
    pub rate_per_second: f64,
    /// …and in a burst.
    pub burst: f64,
    /// How often the server pings.
    pub ping_every: Duration,
    /// A connection from which nothing arrived for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for GatewayLimits {
    fn default() -> Self {
        GatewayLimits {
            max_frame: 16 * 1024,
            max_text: 2000,
            rate_per_second: 10.0,
            burst: 20.0,
            ping_every: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The read buffer of a connection (it grows for a larger frame, up to the frame limit).
const READ_BUFFER: usize = 1024;

/// The chat side of the server state.
#[derive(Clone)]
pub struct Chat {
    pub hub: Hub,
    pub limits: GatewayLimits,
    /// The queue as consoles see it (a rendered `queue` frame), kept current by one task.
    pub queue: tokio::sync::watch::Receiver<Arc<agent::QueueFrame>>,
    /// With a secret, visitor identities count only when signed with it (`crate::identity`).
    pub identity_secret: Option<Arc<[u8]>>,
}

/// `GET /ws/visitor`: upgrades to the visitor protocol.
pub async fn visitor(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(chat) = state.chat.clone() else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "chat is not available on this server",
        )
            .into_response();
    };
    // Frames a little over the limit still reach us, to be answered with an error frame;
    // far larger ones are cut off by the WebSocket layer before they fill memory.
    let hard_limit = chat.limits.max_frame * 4;
    upgrade
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        // Chat frames are small and most connections are idle: the defaults (128 KiB buffers
        // for each connection) would cost gigabytes at 100,000 connections. Every frame is
        // flushed as it is sent, so the write buffer only ever holds one frame.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let token = chat.hub.shutdown_token().child_token();
            Connection::new(socket, chat, token, peer).run().await;
        })
}

/// A token bucket: `rate` frames a second on average, `burst` at once.
struct RateLimiter {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl RateLimiter {
    fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            tokens: burst,
            rate,
            burst,
            last: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// Why a connection ends.
enum End {
    /// The client closed, or the socket failed.
    Gone,
    /// We close with this code and reason.
    Close(u16, &'static str),
}

struct Connection {
    socket: WebSocket,
    chat: Chat,
    token: CancellationToken,
    peer: std::net::SocketAddr,
    limiter: RateLimiter,
    last_seen: Instant,
    /// The conversation, once `start` or `resume` came.
    conversation: Option<Joined>,
}

struct Joined {
    handle: ConversationHandle,
    events: broadcast::Receiver<Outbound>,
    /// The highest sequence number sent on this connection (in a `message` or an `ack`).
    last_sent: i64,
}

impl Connection {
    fn new(
        socket: WebSocket,
        chat: Chat,
        token: CancellationToken,
        peer: std::net::SocketAddr,
    ) -> Connection {
        let limiter = RateLimiter::new(chat.limits.rate_per_second, chat.limits.burst);
        Connection {
            socket,
            chat,
            token,
            peer,
            limiter,
            last_seen: Instant::now(),
            conversation: None,
        }
    }

    async fn run(mut self) {
        let mut ping = tokio::time::interval(self.chat.limits.ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let end = loop {
            let outcome = tokio::select! {
                () = self.token.cancelled() => Err(End::Close(close_code::AWAY, "the server is shutting down")),
                frame = self.socket.next() => match frame {
                    Some(Ok(message)) => {
                        self.last_seen = Instant::now();
                        self.on_frame(message).await
                    }
                    Some(Err(_)) | None => Err(End::Gone),
                },
                event = recv(self.conversation.as_mut()) => self.on_event(event).await,
                _ = ping.tick() => self.heartbeat().await,
            };
            if let Err(end) = outcome {
                break end;
            }
        };
        if let End::Close(code, reason) = end {
            let close = Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }));
            let _ = self.socket.send(close).await;
        }
        // Leaving cancels exactly this connection's work; the conversation goes on.
        self.token.cancel();
    }

    async fn heartbeat(&mut self) -> Result<(), End> {
        if self.last_seen.elapsed() > self.chat.limits.idle_timeout {
            tracing::debug!(peer = %self.peer, "closing a silent connection");
            return Err(End::Close(close_code::AWAY, "no heartbeat"));
        }
        self.socket
            .send(Message::Ping(Default::default()))
            .await
            .map_err(|_| End::Gone)
    }

    async fn send(&mut self, frame: &str) -> Result<(), End> {
        self.socket
            .send(Message::Text(frame.into()))
            .await
            .map_err(|_| End::Gone)
    }

    async fn error(
        &mut self,
        code: &str,
        message: &str,
        client_id: Option<&str>,
    ) -> Result<(), End> {
        self.send(&error_frame(code, message, client_id, false))
            .await
    }

    async fn fatal(&mut self, code: &str, message: &str, close: u16) -> Result<(), End> {
        self.send(&error_frame(code, message, None, true)).await?;
        Err(End::Close(close, "refused"))
    }

    async fn on_frame(&mut self, message: Message) -> Result<(), End> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return self
                    .error(
                        "bad_frame",
                        "binary frames are not part of the protocol; send JSON text",
                        None,
                    )
                    .await;
            }
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
            Message::Close(_) => return Err(End::Gone),
        };
        if text.len() > self.chat.limits.max_frame {
            let message = format!(
                "the frame has {} bytes; the limit is {}",
                text.len(),
                self.chat.limits.max_frame
            );
            return self
                .fatal("frame_too_large", &message, close_code::SIZE)
                .await;
        }
        if let Err(wait) = self.limiter.take(Instant::now()) {
            let client_id = client_id_of(text.as_str());
            // Rounded up: after waiting this long a token is there.
            let wait_ms = u64::try_from(wait.as_micros().div_ceil(1000))
                .unwrap_or(u64::MAX)
                .max(1);
            return self
                .send(&rate_limited_frame(client_id.as_deref(), wait_ms))
                .await;
        }
        let frame = match ClientFrame::parse(text.as_str()) {
            Ok(frame) => frame,
            Err(reason) => return self.error("bad_frame", &reason, None).await,
        };
        match frame {
            ClientFrame::Start {
                flow,
                locale,
                tz_offset_minutes,
                channel,
                visitor,
            } => {
                if let Err(reason) = frames::check_visitor(&visitor) {
                    return self.error("bad_frame", &reason, None).await;
                }
                if self.conversation.is_some() {
                    return self
                        .error(
                            "bad_frame",
                            "this connection has a conversation already",
                            None,
                        )
                        .await;
                }
                let visitor = match &self.chat.identity_secret {
                    None => visitor,
                    Some(_) if visitor.is_empty() => visitor,
                    Some(secret) => crate::identity::verified(secret, &visitor).unwrap_or_else(|| {
                        tracing::warn!(peer = %self.peer, "a visitor identity without a valid signature was dropped");
                        std::collections::BTreeMap::new()
                    }),
                };
                let params = StartParams {
                    flow,
                    locale,
                    tz_offset_minutes,
                    channel: channel.unwrap_or_else(|| "web".to_owned()),
                    visitor,
                };
                match self.chat.hub.start(params).await {
                    Ok(started) => self.join(started.handle, &started.token, 0, false).await,
                    Err(error) => self.refused(&error).await,
                }
            }
            ClientFrame::Resume {
                conversation,
                token,
                last_seq,
            } => {
                if self.conversation.is_some() {
                    return self
                        .error(
                            "bad_frame",
                            "this connection has a conversation already",
                            None,
                        )
                        .await;
                }
                match self.chat.hub.resume(&conversation, &token).await {
                    Ok(handle) => self.join(handle, &token, last_seq.max(0), true).await,
                    Err(error) => self.refused(&error).await,
                }
            }
            ClientFrame::Message { client_id, text } => {
                let chars = text.chars().count();
                if chars > self.chat.limits.max_text {
                    let message = format!(
                        "the message has {chars} characters; the limit is {}",
                        self.chat.limits.max_text
                    );
                    return self
                        .error("message_too_long", &message, Some(&client_id))
                        .await;
                }
                if text.trim().is_empty() {
                    return self
                        .error("bad_frame", "the message is empty", Some(&client_id))
                        .await;
                }
                self.visitor_message(client_id, VisitorInput::Text(text))
                    .await
            }
            ClientFrame::Choice { client_id, option } => {
                self.visitor_message(client_id, VisitorInput::Choice(option))
                    .await
            }
            ClientFrame::Typing { on } => {
                let Some(joined) = &self.conversation else {
                    return self.not_started().await;
                };
                // Shown to agents; nothing is stored.
                joined.handle.typing(crate::store::Sender::Visitor, on);
                Ok(())
            }
            ClientFrame::Read { .. } | ClientFrame::Ack { .. } => {
                if self.conversation.is_none() {
                    return self.not_started().await;
                }
                Ok(())
            }
            ClientFrame::Ping {} => self.send(r#"{"type":"pong"}"#).await,
        }
    }

    async fn not_started(&mut self) -> Result<(), End> {
        self.error(
            "not_started",
            "send `start` or `resume` before anything else",
            None,
        )
        .await
    }

    async fn refused(&mut self, error: &HubError) -> Result<(), End> {
        let code = match error {
            HubError::UnknownFlow(_) => "unknown_flow",
            HubError::UnknownConversation(_) => "unknown_conversation",
            HubError::BadToken(_) => "bad_token",
            HubError::ShuttingDown => {
                return self
                    .fatal("internal", &error.to_string(), close_code::AWAY)
                    .await;
            }
            HubError::Store(_) | HubError::Unloadable { .. } | HubError::Unreachable { .. } => {
                tracing::error!(peer = %self.peer, %error, "cannot start or resume a conversation");
                return self
                    .fatal(
                        "internal",
                        "the server failed; try again",
                        close_code::ERROR,
                    )
                    .await;
            }
        };
        self.fatal(code, &error.to_string(), close_code::POLICY)
            .await
    }

    /// Attaches the connection to a conversation: `welcome`, then everything after `last_seq`
    /// from the database, then live messages.
    async fn join(
        &mut self,
        mut handle: ConversationHandle,
        token: &str,
        last_seq: i64,
        resumed: bool,
    ) -> Result<(), End> {
        // A reloaded task (or proxy) sends on the same channel: subscribing first misses nothing.
        let events = handle.subscribe();
        let Ok((state, newest)) = self.chat.hub.snapshot(&mut handle).await else {
            return self
                .fatal(
                    "internal",
                    "the conversation stopped; resume again",
                    close_code::ERROR,
                )
                .await;
        };
        let welcome = serde_json::json!({
            "type": "welcome",
            "conversation": handle.id(),
            "token": token,
            "flow": handle.flow().id,
            "version": handle.flow().version,
            "owner": state.owner.as_str(),
            "status": state.status.as_str(),
            "last_seq": newest,
            "resumed": resumed,
        });
        self.send(&welcome.to_string()).await?;
        self.conversation = Some(Joined {
            handle,
            events,
            last_sent: last_seq,
        });
        self.catch_up().await
    }

    /// Sends what the database has after the last message sent.
    async fn catch_up(&mut self) -> Result<(), End> {
        let Some(joined) = &self.conversation else {
            return Ok(());
        };
        let id = joined.handle.id().to_owned();
        let missed = match self
            .chat
            .hub
            .store()
            .messages_since(&id, joined.last_sent)
            .await
        {
            Ok(missed) => missed,
            Err(error) => {
                tracing::error!(conversation = %id, %error, "cannot read messages to resend");
                return self
                    .fatal(
                        "internal",
                        "the server failed; resume again",
                        close_code::ERROR,
                    )
                    .await;
            }
        };
        for message in &missed {
            self.send(&message_frame(message)).await?;
            if let Some(joined) = &mut self.conversation {
                joined.last_sent = message.seq;
            }
        }
        Ok(())
    }

    async fn visitor_message(&mut self, client_id: String, input: VisitorInput) -> Result<(), End> {
        if !valid_client_id(&client_id) {
            return self
                .error(
                    "bad_frame",
                    "`client_id` must be 1–64 letters, digits, `-`, `_` or `.`",
                    None,
                )
                .await;
        }
        let Some(joined) = &mut self.conversation else {
            return self.not_started().await;
        };
        let mut handle = joined.handle.clone();
        let sent = self
            .chat
            .hub
            .send(&mut handle, client_id.clone(), input)
            .await;
        // After a reload the handle is the new task's; its events follow via `Closed`.
        if let Some(joined) = &mut self.conversation {
            joined.handle = handle;
        }
        match sent {
            Ok(seq) => self.acknowledge(&client_id, seq).await,
            Err(SendError::Ended) => {
                self.error(
                    "ended",
                    "the conversation has ended; start a new one",
                    Some(&client_id),
                )
                .await
            }
            Err(SendError::Internal | SendError::Gone) => {
                self.send(&error_frame(
                    "internal",
                    "the message was not stored; resume and send it again",
                    Some(&client_id),
                    true,
                ))
                .await?;
                Err(End::Close(close_code::ERROR, "internal error"))
            }
        }
    }

    /// Acknowledges the visitor message stored as `seq`. Every message numbered before it was
    /// published before the conversation answered: those waiting are sent first, so that frames
    /// with a `seq` leave in increasing order and a client resuming from the highest one it saw
    /// misses nothing. The message's own echo is not sent back; what came after it follows the
    /// ack.
    async fn acknowledge(&mut self, client_id: &str, seq: i64) -> Result<(), End> {
        use broadcast::error::{RecvError, TryRecvError};
        let mut later = Vec::new();
        // Whether the echo has passed: what the conversation published after it (its answer)
        // follows the ack.
        let mut echoed = false;
        while let Some(joined) = &mut self.conversation {
            match joined.events.try_recv() {
                Ok(Outbound::Message { seq: n, .. }) if n == seq => echoed = true,
                Ok(event @ Outbound::Message { seq: n, .. }) if n > seq => later.push(event),
                Ok(event) if echoed || !later.is_empty() => later.push(event),
                Ok(event) => self.on_event(Ok(event)).await?,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(missed)) => {
                    self.on_event(Err(RecvError::Lagged(missed))).await?;
                }
                Err(TryRecvError::Closed) => self.on_event(Err(RecvError::Closed)).await?,
            }
        }
        self.send(&ack_frame(client_id, seq)).await?;
        if let Some(joined) = &mut self.conversation {
            joined.last_sent = joined.last_sent.max(seq);
        }
        for event in later {
            self.on_event(Ok(event)).await?;
        }
        Ok(())
    }

    async fn on_event(
        &mut self,
        event: Result<Outbound, broadcast::error::RecvError>,
    ) -> Result<(), End> {
        match event {
            Ok(Outbound::Message { seq, frame, .. }) => {
                let Some(joined) = &mut self.conversation else {
                    return Ok(());
                };
                if seq <= joined.last_sent {
                    return Ok(());
                }
                if seq > joined.last_sent + 1 {
                    // A message this connection has not seen came between: read them in order.
                    return self.catch_up().await;
                }
                joined.last_sent = seq;
                self.send(&frame).await
            }
            Ok(Outbound::Frame(frame)) => self.send(&frame).await,
            Ok(Outbound::Typing { sender, on }) => {
                if sender == crate::store::Sender::Visitor {
                    return Ok(());
                }
                let frame =
                    serde_json::json!({"type": "typing", "sender": sender.as_str(), "on": on});
                self.send(&frame.to_string()).await
            }
            Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
            Err(broadcast::error::RecvError::Closed) => {
                // The conversation's task stopped (idle or failed): follow the one loaded next.
                let Some(joined) = &mut self.conversation else {
                    return Ok(());
                };
                let id = joined.handle.id().to_owned();
                match self.chat.hub.get(&id).await {
                    Ok(handle) => {
                        if let Some(joined) = &mut self.conversation {
                            joined.events = handle.subscribe();
                            joined.handle = handle;
                        }
                        self.catch_up().await
                    }
                    Err(error) => {
                        tracing::error!(conversation = %id, %error, "cannot follow a conversation");
                        self.fatal(
                            "internal",
                            "the server failed; resume again",
                            close_code::ERROR,
                        )
                        .await
                    }
                }
            }
        }
    }
}

/// The next event of the joined conversation; never ready before joining.
async fn recv(joined: Option<&mut Joined>) -> Result<Outbound, broadcast::error::RecvError> {
    match joined {
        Some(joined) => joined.events.recv().await,
        None => std::future::pending().await,
    }
}

/// The `client_id` of a frame, if it has one, for error frames about frames not parsed yet.
fn client_id_of(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct WithId {
        client_id: Option<String>,
    }
    serde_json::from_str::<WithId>(text).ok()?.client_id
}
