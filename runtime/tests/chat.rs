//! End-to-end chat over real WebSockets: a server on a loopback port with its SQLite database in
//! a temporary folder, and visitors speaking `docs/protocol.md` with tokio-tungstenite.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use runtime::conversation::{HubConfig, Lookups};
use runtime::engines::Engines;
use runtime::gateway::GatewayLimits;
use runtime::server::{AppState, Database, serve_until};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// How long a test waits for one frame before failing.
const WAIT: Duration = Duration::from_secs(10);

/// A fresh folder under the system's temp folder, removed when dropped.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir(name: &str) -> TempDir {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kefu-chat-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn fixtures() -> Arc<dyn Lookups> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows/library/fixtures.json"),
    )
    .unwrap();
    Arc::new(flows::fixtures::Fixtures::from_json(&text).unwrap())
}

/// A running server.
pub struct Server {
    pub addr: std::net::SocketAddr,
    /// The server's state: tests call its router directly for HTTP.
    pub state: Arc<AppState>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

#[derive(Default)]
pub struct Options {
    pub library: Option<flows::Library>,
    pub limits: GatewayLimits,
    pub hub: HubConfig,
    /// Answer lookups as `kefu serve` does — through the bundled `connectors.yaml` (or
    /// `connectors`), over the demo catalogue seeded in the data folder — and serve the demo
    /// shop, instead of the canned fixtures.
    pub catalogue: bool,
    /// With `catalogue`: this connectors file instead of the bundled one.
    pub connectors: Option<PathBuf>,
    /// Store in this database instead of SQLite in the data folder.
    pub database_url: Option<String>,
    /// Visitor identities must be signed with this secret (`KEFU_IDENTITY_SECRET`).
    pub identity_secret: Option<String>,
}

impl Server {
    /// Serves the bundled flows (or `options.library`) with data in `dir`, lookups answered by
    /// the bundled fixtures.
    pub async fn start(dir: &Path, options: Options) -> Server {
        let state = match options.library {
            Some(library) => AppState::new(Engines::new(library)),
            None => AppState::bundled().unwrap(),
        };
        let database = Database {
            data_dir: dir.to_owned(),
            url: options.database_url,
        };
        let store = database.open(&state.library()).await.unwrap();
        let stop = CancellationToken::new();
        let catalogue = if options.catalogue {
            Some(database.catalogue().await.unwrap())
        } else {
            None
        };
        let live = match &catalogue {
            Some(catalogue) => {
                let source = runtime::connect::Source {
                    file: options.connectors,
                    data_dir: dir.to_owned(),
                };
                Some(
                    runtime::connect::Live::start(source, Some(catalogue.clone()))
                        .await
                        .unwrap(),
                )
            }
            None => None,
        };
        let lookups = match &live {
            Some(live) => Arc::new(live.clone()) as Arc<dyn Lookups>,
            None => fixtures(),
        };
        let mut state = state.with_chat(store, lookups, options.hub, options.limits, stop.clone());
        if let (Some(chat), Some(secret)) = (&mut state.chat, options.identity_secret) {
            chat.identity_secret = Some(Arc::from(secret.into_bytes()));
        }
        // Like `kefu serve`: the audit trail in the data folder.
        if catalogue.is_some() {
            state.audit = runtime::audit::Audit::open(dir).unwrap();
        }
        state.demo = catalogue;
        state.connectors = live;
        let state = Arc::new(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve_until(listener, Arc::clone(&state), stop.clone()));
        Server {
            addr,
            state,
            stop,
            task,
        }
    }

    /// Shuts down gracefully and waits until everything is stored.
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the server stops in time")
            .unwrap()
            .unwrap();
    }
}

/// A visitor's connection.
pub struct Visitor {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub conversation: String,
    pub token: String,
    /// The highest seq seen (messages and acks).
    pub last_seq: i64,
}

impl Visitor {
    pub async fn connect(addr: std::net::SocketAddr) -> Visitor {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/visitor"))
            .await
            .unwrap();
        Visitor {
            ws,
            conversation: String::new(),
            token: String::new(),
            last_seq: 0,
        }
    }

    /// Connects and starts a conversation; returns the visitor after `welcome`.
    pub async fn start(addr: std::net::SocketAddr, flow: &str, locale: &str) -> Visitor {
        let mut visitor = Visitor::connect(addr).await;
        visitor
            .send(json!({"type": "start", "flow": flow, "locale": locale}))
            .await;
        let welcome = visitor.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["resumed"], false);
        visitor.conversation = welcome["conversation"].as_str().unwrap().to_owned();
        visitor.token = welcome["token"].as_str().unwrap().to_owned();
        visitor
    }

    /// Connects again and resumes after `last_seq`; returns the visitor and the `welcome`.
    pub async fn resume(
        addr: std::net::SocketAddr,
        conversation: &str,
        token: &str,
        last_seq: i64,
    ) -> (Visitor, Value) {
        let mut visitor = Visitor::connect(addr).await;
        visitor
            .send(json!({"type": "resume", "conversation": conversation, "token": token, "last_seq": last_seq}))
            .await;
        let welcome = visitor.recv().await;
        visitor.conversation = conversation.to_owned();
        visitor.token = token.to_owned();
        visitor.last_seq = last_seq;
        (visitor, welcome)
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next protocol frame (pings are answered by tungstenite); panics on close or timeout.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Some(frame) => frame,
            None => panic!("the server closed the connection"),
        }
    }

    /// The next protocol frame, or `None` when the connection closed.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame arrives in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if let Some(seq) = frame["seq"].as_i64()
                        && (frame["type"] == "message" || frame["type"] == "ack")
                    {
                        self.last_seq = self.last_seq.max(seq);
                    }
                    return Some(frame);
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Frames until one satisfies `done` (included).
    pub async fn until(&mut self, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.recv().await;
            let stop = done(&frame);
            frames.push(frame);
            if stop {
                return frames;
            }
        }
    }

    /// Frames until the bot asks something or the conversation changes hands or ends.
    pub async fn bot_turn(&mut self) -> Vec<Value> {
        self.until(|f| {
            f["body"]["type"] == "ask" || (f["type"] == "state" && f["status"] != "active")
        })
        .await
    }

    /// A client id no other visitor of this test binary uses (a client id is unique per
    /// conversation: a reused one is taken for a resend).
    fn client_id(&mut self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        format!("v-{}", NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends a text and returns its client id.
    pub async fn say(&mut self, text: &str) -> String {
        let id = self.client_id();
        self.send(json!({"type": "message", "client_id": id, "text": text}))
            .await;
        id
    }

    /// Presses a button and returns the client id.
    pub async fn choose(&mut self, option: &str) -> String {
        let id = self.client_id();
        self.send(json!({"type": "choice", "client_id": id, "option": option}))
            .await;
        id
    }

    /// Every frame that arrives within `duration`, and whether the server closed the
    /// connection in that time.
    pub async fn frames_for(&mut self, duration: Duration) -> (Vec<Value>, bool) {
        let mut frames = Vec::new();
        let deadline = tokio::time::Instant::now() + duration;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return (frames, false),
                Ok(Some(Ok(Message::Text(text)))) => {
                    frames.push(serde_json::from_str(&text).unwrap());
                }
                Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return (frames, true),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Sends `ping` and returns the frames before the `pong`: what the server had still to
    /// send at that moment.
    pub async fn until_pong(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"})).await;
        let mut frames = self.until(|f| f["type"] == "pong").await;
        frames.pop();
        frames
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// What a bot message shows, as the scenario files write it: its text, an ask's prompt, or
/// `image URL`.
pub fn bot_text(frame: &Value) -> Option<String> {
    if frame["type"] != "message" || frame["sender"] != "bot" {
        return None;
    }
    let body = &frame["body"];
    if body["type"] == "image" {
        return Some(format!("image {}", body["url"].as_str()?));
    }
    body["text"]
        .as_str()
        .or_else(|| body["prompt"].as_str())
        .map(str::to_owned)
}

/// The part of a scenario's `say[node]: …` / `ask[node]: …` expectation that the visitor sees.
fn visible_text(expect: &str) -> Option<String> {
    let rest = expect
        .strip_prefix("say[")
        .or_else(|| expect.strip_prefix("ask["))?;
    let (_, text) = rest.split_once("]: ")?;
    let text = text.split(" [").next().unwrap_or(text);
    let text = match text.rsplit_once(" (") {
        Some((head, tail)) if tail.ends_with(')') && !tail.contains(' ') => head,
        _ => text,
    };
    Some(text.replace('⏎', "\n"))
}

#[tokio::test]
async fn a_visitor_completes_each_bundled_flow_over_the_socket() {
    let dir = temp_dir("flows");
    let server = Server::start(&dir, Options::default()).await;
    let mut played = Vec::new();
    for flow in ["guided-shopping", "order-status", "returns", "faq-hours"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../flows/library/{flow}.scenarios.json"));
        let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        // Scenarios the socket can play as they are: no clock (no timers, no delivery dates
        // compared with today), no agent, ending in `ended`.
        let playable = file["scenarios"].as_array().unwrap().iter().find(|s| {
            let steps = s["steps"].as_array().unwrap();
            steps.iter().all(|step| {
                ["advance", "timer", "hand_back", "restart", "cancel"]
                    .iter()
                    .all(|key| step.get(*key).is_none())
                    && !step.to_string().contains("delivered_at")
            }) && steps.last().unwrap()["status"] == "ended"
        });
        let scenario = playable.unwrap_or_else(|| panic!("{flow} has a scenario to play"));
        let locale = scenario["start"]["locale"].as_str().unwrap();
        let mut visitor = Visitor::start(server.addr, flow, locale).await;
        let mut transcript = visitor.bot_turn().await;
        let steps = scenario["steps"].as_array().unwrap();
        let mut index = 0;
        while index < steps.len() {
            let step = &steps[index];
            let client_id = if let Some(text) = step["text"].as_str() {
                visitor.say(text).await
            } else {
                visitor.choose(step["choice"].as_str().unwrap()).await
            };
            let mut turn = visitor.bot_turn().await;
            let ack = turn
                .iter()
                .find(|f| f["type"] == "ack")
                .unwrap_or_else(|| panic!("{flow}: step {index} was acknowledged: {turn:?}"));
            assert_eq!(ack["client_id"], client_id.as_str());
            // The server answers lookups itself: their expectations belong to this turn.
            let mut expects: Vec<&Value> = step["expect"].as_array().unwrap().iter().collect();
            while steps
                .get(index + 1)
                .is_some_and(|next| next.get("lookup").is_some())
            {
                index += 1;
                expects.extend(steps[index]["expect"].as_array().unwrap());
            }
            for expect in expects {
                let Some(text) = visible_text(expect.as_str().unwrap()) else {
                    continue;
                };
                assert!(
                    turn.iter()
                        .filter_map(bot_text)
                        .any(|shown| shown.contains(&text)),
                    "{flow} ({}), step {index}: the bot says {text:?}; it said {:#?}",
                    scenario["name"],
                    turn.iter().filter_map(bot_text).collect::<Vec<_>>()
                );
            }
            transcript.append(&mut turn);
            index += 1;
        }
        let last = transcript.last().unwrap();
        assert_eq!(
            (&last["type"], &last["status"]),
            (&json!("state"), &json!("ended")),
            "{flow}: the conversation ends"
        );
        // Every message arrived once, in order, numbered without gaps.
        let seqs: Vec<i64> = transcript
            .iter()
            .filter(|f| f["type"] == "message" || f["type"] == "ack")
            .map(|f| f["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "{flow}");
        // After the end, messages are refused.
        visitor.say("hello?").await;
        let refused = visitor.recv().await;
        assert_eq!(refused["code"], "ended", "{refused}");
        visitor.close().await;
        played.push(flow);
    }
    assert_eq!(played.len(), 4);
    server.stop().await;
}

/// The message frames among `frames`.
fn messages(frames: &[Value]) -> Vec<&Value> {
    frames.iter().filter(|f| f["type"] == "message").collect()
}

#[tokio::test]
async fn resuming_after_a_drop_misses_nothing_and_repeats_nothing() {
    let dir = temp_dir("resume");
    let server = Server::start(&dir, Options::default()).await;
    let mut visitor = Visitor::start(server.addr, "guided-shopping", "en").await;
    visitor.bot_turn().await;
    let seen = visitor.last_seq;
    let (conversation, token) = (visitor.conversation.clone(), visitor.token.clone());
    // The visitor presses a button and the connection drops before anything comes back.
    visitor.choose("phones").await;
    visitor.close().await;

    let (mut again, welcome) = Visitor::resume(server.addr, &conversation, &token, seen).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["resumed"], true);
    assert_eq!(welcome["conversation"], conversation.as_str());
    let frames = again.bot_turn().await;
    let missed = messages(&frames);
    let seqs: Vec<i64> = missed.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        ((seen + 1)..=(seen + seqs.len() as i64)).collect::<Vec<_>>()
    );
    // The press is there (stored before the drop), with the label the visitor saw.
    assert_eq!(missed[0]["sender"], "visitor");
    assert_eq!(
        missed[0]["body"],
        json!({"type": "choice", "option": "phones", "label": "Phones"})
    );
    assert!(
        bot_text(missed.last().unwrap())
            .unwrap()
            .starts_with("What's your budget"),
        "{frames:?}"
    );
    assert!(again.until_pong().await.is_empty(), "nothing is sent twice");

    // A second tab reads the whole conversation from the start, once, in order.
    let (mut tab, welcome) = Visitor::resume(server.addr, &conversation, &token, 0).await;
    let last = welcome["last_seq"].as_i64().unwrap();
    assert_eq!(last, again.last_seq);
    let all = tab.until(|f| f["seq"].as_i64() == Some(last)).await;
    let seqs: Vec<i64> = all.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    // A message sent on one tab reaches the other.
    again.say("3000").await;
    let echoed = tab.until(|f| f["sender"] == "visitor").await;
    assert_eq!(echoed.last().unwrap()["body"]["text"], "3000");
    tab.close().await;
    again.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_resent_message_is_stored_and_answered_once() {
    let dir = temp_dir("resend");
    let server = Server::start(&dir, Options::default()).await;
    let mut visitor = Visitor::start(server.addr, "order-status", "en").await;
    visitor.bot_turn().await;
    visitor
        .send(json!({"type": "message", "client_id": "same-1", "text": "KF100001"}))
        .await;
    let turn = visitor.bot_turn().await;
    let ack = turn.iter().find(|f| f["type"] == "ack").unwrap().clone();
    let (conversation, token) = (visitor.conversation.clone(), visitor.token.clone());
    visitor.close().await;
    // The client did not see the ack (say) and sends the message again after resuming.
    let (mut again, welcome) =
        Visitor::resume(server.addr, &conversation, &token, welcome_seq(&turn)).await;
    assert_eq!(welcome["type"], "welcome");
    again
        .send(json!({"type": "message", "client_id": "same-1", "text": "KF100001"}))
        .await;
    let before_pong = again.until_pong().await;
    assert_eq!(before_pong, vec![ack], "the same ack, and no second answer");
    again.close().await;
    server.stop().await;
}

/// The highest seq among `frames`.
fn welcome_seq(frames: &[Value]) -> i64 {
    frames
        .iter()
        .filter_map(|f| f["seq"].as_i64())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn bad_frames_get_clear_errors_and_change_nothing() {
    let dir = temp_dir("bad");
    let server = Server::start(&dir, Options::default()).await;
    let mut visitor = Visitor::connect(server.addr).await;
    visitor
        .send(json!({"type": "message", "client_id": "a", "text": "hi"}))
        .await;
    assert_eq!(visitor.recv().await["code"], "not_started");
    visitor.send_text("not json".to_owned()).await;
    let error = visitor.recv().await;
    assert_eq!(error["code"], "bad_frame");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("at line 1 column 2"),
        "{error}"
    );
    visitor
        .send(json!({"type": "start", "flow": "no-such-flow"}))
        .await;
    let error = visitor.recv().await;
    assert_eq!(
        (&error["code"], &error["fatal"]),
        (&json!("unknown_flow"), &json!(true)),
        "{error}"
    );
    assert!(visitor.next().await.is_none(), "closed after a fatal error");

    let mut visitor = Visitor::start(server.addr, "faq-hours", "en").await;
    visitor.bot_turn().await;
    let before = visitor.last_seq;
    let cases = [
        (
            json!({"type": "message", "client_id": "x", "text": "字".repeat(2001)}),
            "message_too_long",
            "the message has 2001 characters; the limit is 2000",
        ),
        (
            json!({"type": "message", "client_id": "x", "text": "  "}),
            "bad_frame",
            "the message is empty",
        ),
        (
            json!({"type": "message", "client_id": "b:1:0", "text": "hi"}),
            "bad_frame",
            "`client_id` must be",
        ),
        (
            json!({"type": "choice", "client_id": "x"}),
            "bad_frame",
            "missing field `option`",
        ),
        (
            json!({"type": "shout"}),
            "bad_frame",
            "unknown variant `shout`",
        ),
        (
            json!({"type": "start", "flow": "faq-hours"}),
            "bad_frame",
            "this connection has a conversation already",
        ),
    ];
    for (frame, code, message) in cases {
        visitor.send(frame.clone()).await;
        let error = visitor.recv().await;
        assert_eq!(error["code"], code, "{frame} → {error}");
        assert_eq!(error["fatal"], false);
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{frame} → {error}"
        );
    }
    visitor
        .ws
        .send(Message::binary(vec![1_u8, 2, 3]))
        .await
        .unwrap();
    assert_eq!(visitor.recv().await["code"], "bad_frame");
    // A button that is not offered: stored, refused, unanswered.
    let id = visitor.choose("no-such-option").await;
    let refused = visitor.until(|f| f["type"] == "error").await;
    assert_eq!(refused.last().unwrap()["code"], "not_expected");
    assert_eq!(refused.last().unwrap()["client_id"], id.as_str());
    assert!(messages(&refused).iter().all(|m| m["sender"] != "bot"));
    // Nothing else was stored and the connection still works.
    let rest = visitor.until_pong().await;
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        visitor.last_seq,
        before + 1,
        "only the refused press is stored"
    );
    // A frame over 16 KiB closes the connection with an error first.
    visitor
        .send_text(format!("{{\"pad\":\"{}\"}}", "x".repeat(17 * 1024)))
        .await;
    let error = visitor.recv().await;
    assert_eq!(
        (&error["code"], &error["fatal"]),
        (&json!("frame_too_large"), &json!(true))
    );
    assert!(visitor.next().await.is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_flood_is_rate_limited() {
    let dir = temp_dir("flood");
    let limits = GatewayLimits {
        rate_per_second: 1.0,
        burst: 3.0,
        ..GatewayLimits::default()
    };
    let server = Server::start(
        &dir,
        Options {
            limits,
            ..Options::default()
        },
    )
    .await;
    let mut visitor = Visitor::connect(server.addr).await;
    for _ in 0..4 {
        visitor.send(json!({"type": "ping"})).await;
    }
    let mut frames = Vec::new();
    for _ in 0..4 {
        frames.push(visitor.recv().await);
    }
    let kinds: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["pong", "pong", "pong", "error"]);
    assert_eq!(frames[3]["code"], "rate_limited");
    let wait = frames[3]["retry_after_ms"].as_u64().unwrap();
    assert!((1..=1000).contains(&wait), "{wait}");
    tokio::time::sleep(Duration::from_millis(wait)).await;
    visitor.send(json!({"type": "ping"})).await;
    assert_eq!(visitor.recv().await["type"], "pong", "allowed again later");
    server.stop().await;
}

#[tokio::test]
async fn heartbeats_close_silent_connections_only() {
    let dir = temp_dir("heartbeat");
    let limits = GatewayLimits {
        ping_every: Duration::from_millis(50),
        idle_timeout: Duration::from_millis(300),
        ..GatewayLimits::default()
    };
    let server = Server::start(
        &dir,
        Options {
            limits,
            ..Options::default()
        },
    )
    .await;
    // This client reads all the time, so tungstenite answers every ping.
    let mut alive = Visitor::start(server.addr, "faq-hours", "en").await;
    // This one stops reading (a frozen tab): its pongs never go out.
    let mut silent = Visitor::start(server.addr, "faq-hours", "en").await;
    let (_, closed) = alive.frames_for(Duration::from_millis(900)).await;
    assert!(!closed, "a client that answers pings stays connected");
    let (_, closed) = silent.frames_for(Duration::from_millis(500)).await;
    assert!(closed, "a silent client is disconnected");
    assert!(alive.until_pong().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn conversations_go_on_after_a_restart_on_every_database() {
    for db in crate::store::backends("conversations_go_on_after_a_restart").await {
        let dir = temp_dir("restart");
        let options = || Options {
            database_url: Some(db.url()),
            ..Options::default()
        };
        let server = Server::start(&dir, options()).await;
        let mut visitor = Visitor::start(server.addr, "order-status", "en").await;
        visitor.bot_turn().await;
        visitor.say("KF100001").await;
        let turn = visitor.bot_turn().await;
        assert_eq!(
            bot_text(messages(&turn).last().unwrap()).as_deref(),
            Some("Is there anything else I can help with?")
        );
        let (conversation, token, seen) = (
            visitor.conversation.clone(),
            visitor.token.clone(),
            visitor.last_seq,
        );
        visitor.close().await;
        server.stop().await;

        let server = Server::start(&dir, options()).await;
        let (mut visitor, welcome) =
            Visitor::resume(server.addr, &conversation, &token, seen).await;
        assert_eq!(welcome["last_seq"], seen, "{}", db.url());
        assert_eq!(welcome["status"], "active");
        visitor.choose("done").await;
        let end = visitor.bot_turn().await;
        assert!(
            messages(&end)
                .iter()
                .any(|m| bot_text(m).is_some_and(|t| t.starts_with("Thanks for your patience"))),
            "{end:?}"
        );
        assert_eq!(end.last().unwrap()["status"], "ended");
        visitor.close().await;
        server.stop().await;
        // Every change of state was stored as an event.
        let store = runtime::store::Store::connect(&db.url()).await.unwrap();
        let events: Vec<String> = store
            .events_after(&conversation, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(events, ["started", "ended"]);
        let stored = store.conversation(&conversation).await.unwrap().unwrap();
        assert_eq!(
            (stored.owner.as_str(), stored.status.as_str()),
            ("bot", "ended")
        );
        store.close().await;
        db.drop_database().await;
    }
}

/// A flow that waits one second between two messages.
fn waiting_library() -> flows::Library {
    pause_library(1, "Time is up.")
}

/// Version `version` of the `pause` flow, saying `last` after its wait.
fn pause_library(version: u32, last: &str) -> flows::Library {
    let flow = json!({
        "schema_version": 2, "id": "pause", "version": version, "name": "Pause", "default_locale": "en",
        "nodes": [
            {"id": "start", "kind": "start"},
            {"id": "hello", "kind": "message", "parts": [{"type": "text", "text": "One moment…"}]},
            {"id": "wait", "kind": "wait", "seconds": 1},
            {"id": "done", "kind": "message", "parts": [{"type": "text", "text": last}]},
            {"id": "end", "kind": "end"}
        ],
        "edges": [
            {"from": "start", "port": "next", "to": "hello"},
            {"from": "hello", "port": "next", "to": "wait"},
            {"from": "wait", "port": "timeout", "to": "done"},
            {"from": "done", "port": "next", "to": "end"}
        ]
    });
    let flow = flows::from_json(&flow.to_string()).unwrap();
    let mut library = flows::Library::default();
    library.insert(flow);
    let problems = flows::validate(library.get("pause").unwrap(), &library);
    assert!(
        problems
            .iter()
            .all(|d| d.severity != flows::Severity::Error),
        "{problems:?}"
    );
    library
}

#[tokio::test]
async fn a_timer_armed_before_a_restart_fires_after_it() {
    let dir = temp_dir("timer");
    let options = || Options {
        library: Some(waiting_library()),
        ..Options::default()
    };
    let server = Server::start(&dir, options()).await;
    let mut visitor = Visitor::start(server.addr, "pause", "en").await;
    let hello = visitor.recv().await;
    assert_eq!(bot_text(&hello).as_deref(), Some("One moment…"));
    let (conversation, token) = (visitor.conversation.clone(), visitor.token.clone());
    visitor.close().await;
    // Stopped while the timer is armed; the new server arms it again from the saved session.
    server.stop().await;
    let server = Server::start(&dir, options()).await;
    let (mut visitor, welcome) = Visitor::resume(server.addr, &conversation, &token, 1).await;
    assert_eq!(welcome["status"], "active", "{welcome}");
    let rest = visitor
        .until(|f| f["type"] == "state" && f["status"] == "ended")
        .await;
    let texts: Vec<String> = rest.iter().filter_map(bot_text).collect();
    assert_eq!(texts, ["Time is up."]);
    visitor.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_bot_stays_quiet_while_the_conversation_waits_for_an_agent() {
    let dir = temp_dir("queue");
    let server = Server::start(&dir, Options::default()).await;
    let mut visitor = Visitor::start(server.addr, "order-status", "en").await;
    visitor.bot_turn().await;
    visitor.say("agent").await;
    let turn = visitor.bot_turn().await;
    let state = turn.last().unwrap();
    assert_eq!(
        (&state["owner"], &state["status"]),
        (&json!("queue"), &json!("waiting"))
    );
    // Then how many are ahead: none.
    let position = visitor
        .until(|f| f["body"]["code"] == "queue_position")
        .await;
    assert_eq!(
        position.last().unwrap()["body"]["text"],
        "You are next in line."
    );
    let id = visitor.say("hello? is anyone there").await;
    let frames = visitor.until_pong().await;
    assert_eq!(frames.len(), 1, "only the ack: {frames:?}");
    assert_eq!(frames[0]["client_id"], id.as_str());
    server.stop().await;
}

/// A `kefu serve` process on a free loopback port.
pub struct Process {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl Process {
    async fn start(dir: &Path, addr: Option<std::net::SocketAddr>) -> Process {
        Process::start_with(dir, addr, &[]).await
    }

    /// With these environment variables (`KEFU_DATABASE_URL`, `KEFU_NATS_URL`, …); its log is
    /// `DIR/kefu.log`.
    pub async fn start_with(
        dir: &Path,
        addr: Option<std::net::SocketAddr>,
        env: &[(&str, &str)],
    ) -> Process {
        let addr = addr.unwrap_or_else(|| {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        });
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kefu"));
        command
            .args(["serve", "--addr", &addr.to_string(), "--data-dir"])
            .arg(dir)
            .env_remove("KEFU_DATABASE_URL")
            .env_remove("KEFU_NATS_URL")
            .env_remove("KEFU_AUTO_ASSIGN")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("kefu.log")).unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let process = Process {
            child: command.spawn().unwrap(),
            addr,
        };
        process.wait_ready().await;
        process
    }

    /// Waits until `GET /healthz` answers (a start migrates the database and seeds the demo
    /// shop: on a busy machine or database that takes longer than one frame's `WAIT`).
    async fn wait_ready(&self) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let deadline = tokio::time::Instant::now() + 3 * WAIT;
        loop {
            if let Ok(mut stream) = TcpStream::connect(self.addr).await {
                let _ = stream
                    .write_all(b"GET /healthz HTTP/1.0\r\nHost: kefu\r\n\r\n")
                    .await;
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer).await;
                if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "kefu starts in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself.
    pub fn wait(mut self) {
        self.child.wait().unwrap();
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    /// A test that fails leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An acknowledged visitor message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Acked {
    conversation: String,
    token: String,
    client_id: String,
    seq: i64,
}

#[tokio::test]
async fn kill_9_during_a_load_loses_no_acknowledged_message() {
    let dir = temp_dir("kill");
    let kefu = Process::start(&dir, None).await;
    let addr = kefu.addr;
    let acked = Arc::new(std::sync::Mutex::new(Vec::<Acked>::new()));
    let mut visitors = Vec::new();
    for _ in 0..8 {
        let acked = Arc::clone(&acked);
        visitors.push(tokio::spawn(async move {
            let mut visitor = Visitor::connect(addr).await;
            visitor
                .send(json!({"type": "start", "flow": "faq-hours", "locale": "en"}))
                .await;
            // The server may die before it welcomes this visitor.
            let Some(welcome) = visitor.next().await else {
                return;
            };
            visitor.conversation = welcome["conversation"].as_str().unwrap().to_owned();
            visitor.token = welcome["token"].as_str().unwrap().to_owned();
            // Sends until the server dies; every ack is recorded at once.
            loop {
                let client_id = visitor.say("what about drones?").await;
                loop {
                    let Some(frame) = visitor.next().await else {
                        return;
                    };
                    if frame["type"] == "ack" {
                        assert_eq!(frame["client_id"], client_id.as_str());
                        acked.lock().unwrap().push(Acked {
                            conversation: visitor.conversation.clone(),
                            token: visitor.token.clone(),
                            client_id,
                            seq: frame["seq"].as_i64().unwrap(),
                        });
                        break;
                    }
                    if frame["code"] == "rate_limited" {
                        let wait = frame["retry_after_ms"].as_u64().unwrap();
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                        break;
                    }
                }
            }
        }));
    }
    // Killed in full flow: once a few dozen messages are acknowledged, with more in flight.
    let deadline = tokio::time::Instant::now() + WAIT;
    while acked.lock().unwrap().len() < 40 {
        assert!(tokio::time::Instant::now() < deadline, "the load runs");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    kefu.kill();
    for visitor in visitors {
        visitor.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40, "the load ran: {} acks", acked.len());

    let kefu = Process::start(&dir, None).await;
    let mut conversations: Vec<(&str, &str)> = acked
        .iter()
        .map(|a| (a.conversation.as_str(), a.token.as_str()))
        .collect();
    conversations.sort_unstable();
    conversations.dedup();
    for (conversation, token) in conversations {
        let (mut visitor, welcome) = Visitor::resume(kefu.addr, conversation, token, 0).await;
        let last = welcome["last_seq"].as_i64().unwrap();
        let transcript = visitor.until(|f| f["seq"].as_i64() == Some(last)).await;
        for expected in acked.iter().filter(|a| a.conversation == conversation) {
            let found = transcript
                .iter()
                .find(|f| f["client_id"] == expected.client_id.as_str())
                .unwrap_or_else(|| panic!("{expected:?} survived the kill"));
            assert_eq!(found["seq"], expected.seq, "{expected:?}");
            assert_eq!(found["sender"], "visitor");
        }
        // The conversation goes on: a new message is stored after everything else.
        let id = visitor.say("still there?").await;
        let ack = visitor.until(|f| f["type"] == "ack").await;
        let ack = ack.last().unwrap();
        assert_eq!(ack["client_id"], id.as_str());
        assert!(ack["seq"].as_i64().unwrap() > last);
        visitor.close().await;
    }
    kefu.kill();
}

#[tokio::test]
async fn a_resend_of_an_old_message_is_found_in_the_database() {
    let dir = temp_dir("old-resend");
    let limits = GatewayLimits {
        rate_per_second: 10_000.0,
        burst: 10_000.0,
        ..GatewayLimits::default()
    };
    let server = Server::start(
        &dir,
        Options {
            limits,
            ..Options::default()
        },
    )
    .await;
    let mut visitor = Visitor::start(server.addr, "faq-hours", "en").await;
    visitor.bot_turn().await;
    // More messages than a conversation remembers client ids of (256).
    let first = visitor.say("tell me about drones").await;
    let first_ack = visitor
        .bot_turn()
        .await
        .into_iter()
        .find(|f| f["type"] == "ack")
        .unwrap();
    for _ in 0..260 {
        visitor.say("and about kites?").await;
        // The ack, then the bot's answer (ending with its question again).
        visitor.bot_turn().await;
    }
    visitor
        .send(json!({"type": "message", "client_id": first, "text": "tell me about drones"}))
        .await;
    let answer = visitor.until_pong().await;
    assert_eq!(
        answer,
        vec![first_ack],
        "the old ack, and nothing stored or answered"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_conversation_stays_on_the_flow_version_it_started_on() {
    let dir = temp_dir("pinned");
    let server = Server::start(
        &dir,
        Options {
            library: Some(pause_library(1, "Time is up.")),
            ..Options::default()
        },
    )
    .await;
    let mut old = Visitor::start(server.addr, "pause", "en").await;
    old.recv().await;
    let (conversation, token) = (old.conversation.clone(), old.token.clone());
    old.close().await;
    server.stop().await;
    // Version 2 is published while the conversation waits on version 1.
    let server = Server::start(
        &dir,
        Options {
            library: Some(pause_library(2, "Version two says goodbye.")),
            ..Options::default()
        },
    )
    .await;
    let (mut old, welcome) = Visitor::resume(server.addr, &conversation, &token, 1).await;
    assert_eq!(welcome["version"], 1, "{welcome}");
    let rest = old
        .until(|f| f["type"] == "state" && f["status"] == "ended")
        .await;
    let texts: Vec<String> = rest.iter().filter_map(bot_text).collect();
    assert_eq!(texts, ["Time is up."]);
    let mut new = Visitor::connect(server.addr).await;
    new.send(json!({"type": "start", "flow": "pause"})).await;
    assert_eq!(new.recv().await["version"], 2);
    let rest = new
        .until(|f| f["type"] == "state" && f["status"] == "ended")
        .await;
    let texts: Vec<String> = rest.iter().filter_map(bot_text).collect();
    assert_eq!(texts, ["One moment…", "Version two says goodbye."]);
    server.stop().await;
}
