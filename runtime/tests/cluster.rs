//! Two `kefu` processes on loopback ports sharing one PostgreSQL database and one NATS server:
//! a visitor on one node and agents on the other chat as if there were one server, and killing
//! the node that runs a conversation loses no acknowledged message.
//!
//! Needs `KEFU_TEST_POSTGRES_URL` and `KEFU_TEST_NATS_URL` (`.ci/run` sets both); without them
//! the test says so and does nothing.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use runtime::store::{NodeOwner, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::chat::{Process, Visitor, temp_dir};
use crate::store::server_database;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A signed-in account on one node.
struct Account {
    addr: SocketAddr,
    cookie: String,
    csrf: String,
}

/// One HTTP/1.1 request; returns the status, the `Set-Cookie` header and the JSON body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    account: Option<&Account>,
    body: Option<&Value>,
) -> (u16, Option<String>, Value) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(account) = account {
        request.push_str(&format!(
            "Cookie: {}\r\nX-CSRF-Token: {}\r\n",
            account.cookie, account.csrf
        ));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let cookie = head
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .map(|c| c.split(';').next().unwrap().to_owned());
    // Small JSON bodies: either whole or chunked in one piece.
    let json = serde_json::from_str(body)
        .or_else(|_| {
            let inner = body.split_once("\r\n").map_or("", |(_, rest)| rest);
            let end = inner.rfind("\r\n0\r\n").unwrap_or(inner.len());
            serde_json::from_str(&inner[..end])
        })
        .unwrap_or(Value::Null);
    (status, cookie, json)
}

async fn login(addr: SocketAddr, login: &str, password: &str) -> Account {
    let body = json!({"login": login, "password": password});
    let (status, cookie, answer) = http(addr, "POST", "/api/auth/login", None, Some(&body)).await;
    assert_eq!(status, 200, "{login} signs in: {answer}");
    Account {
        addr,
        cookie: cookie.unwrap(),
        csrf: answer["csrf"].as_str().unwrap().to_owned(),
    }
}

impl Account {
    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, _, answer) = http(self.addr, "POST", path, Some(self), Some(body)).await;
        (status, answer)
    }

    /// The console's WebSocket on this account's node, after its `hello`.
    async fn console(&self) -> Socket {
        let mut request = format!("ws://{}/ws/agent", self.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("cookie", self.cookie.parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        frame(&mut socket, |f| f["type"] == "hello").await;
        socket
    }
}

/// The next console frame that satisfies `wanted`.
async fn frame(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("a frame arrives in time")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = message {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if wanted(&frame) {
                return frame;
            }
        }
    }
}

async fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::text(frame.to_string())).await.unwrap();
}

fn lists(frame: &Value, conversation: &str) -> bool {
    frame["type"] == "queue"
        && frame["conversations"]
            .as_array()
            .is_some_and(|list| list.iter().any(|c| c["id"] == conversation))
}

fn says(frame: &Value, sender: &str, text: &str) -> bool {
    frame["type"] == "message" && frame["sender"] == sender && frame["body"]["text"] == text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_serve_one_conversation_and_a_dead_node_loses_nothing() {
    let Some(Nodes { db, a, b, _dirs }) = Nodes::start("two_nodes").await else {
        return;
    };
    let store = Store::connect(&db.url()).await.unwrap();

    // A second agent, created on node B.
    let admin = login(b.addr, "admin", "admin-password").await;
    let new_user = json!({"login": "wang", "name": "Wang", "password": "wang-password",
                          "role": "agent", "team": "support"});
    let (status, wang) = admin.post("/api/admin/users", &new_user).await;
    assert_eq!(status, 201, "{wang}");
    let wang_id = wang["id"].as_str().unwrap().to_owned();

    // The demo agent's console is on node B.
    let agent = login(b.addr, "agent", "agent").await;
    let mut console_b = agent.console().await;

    // A visitor on node A asks for a person: node A runs the conversation, and the handoff
    // reaches the console on node B.
    let mut visitor = Visitor::start(a.addr, "order-status", "en").await;
    visitor.bot_turn().await;
    visitor.say("agent").await;
    visitor
        .until(|f| f["body"]["code"] == "queue_position")
        .await;
    let id = visitor.conversation.clone();
    frame(&mut console_b, |f| lists(f, &id)).await;

    // Claimed on node B.
    let claim = format!("/api/console/conversations/{id}/claim");
    let (status, claimed) = agent.post(&claim, &json!({})).await;
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(claimed["assignee"]["id"], "u-agent", "{claimed}");
    frame(&mut console_b, |f| {
        f["type"] == "assigned" && f["conversation"]["id"] == id.as_str()
    })
    .await;
    visitor.until(|f| f["body"]["code"] == "assigned").await;

    // The agent opens it on node B: the transcript from node A's conversation, then live.
    send(
        &mut console_b,
        json!({"type": "open", "conversation": id, "last_seq": 0}),
    )
    .await;
    frame(&mut console_b, |f| says(f, "visitor", "agent")).await;
    send(
        &mut console_b,
        json!({"type": "message", "conversation": id, "client_id": "b-1", "text": "Hello from node B"}),
    )
    .await;
    let ack = frame(&mut console_b, |f| f["type"] == "ack").await;
    assert_eq!(ack["client_id"], "b-1");
    visitor
        .until(|f| says(f, "agent", "Hello from node B"))
        .await;

    // Typing and messages from node A reach the console on node B.
    visitor.send(json!({"type": "typing", "on": true})).await;
    frame(&mut console_b, |f| f["type"] == "typing" && f["on"] == true).await;
    let said = visitor.say("my parcel is late").await;
    let acked = visitor.until(|f| f["type"] == "ack").await;
    let acked_seq = acked.last().unwrap()["seq"].as_i64().unwrap();
    frame(&mut console_b, |f| says(f, "visitor", "my parcel is late")).await;

    // Transferred on node B to Wang, whose console is on node A.
    let wang_a = login(a.addr, "wang", "wang-password").await;
    let mut console_a = wang_a.console().await;
    let transfer = format!("/api/console/conversations/{id}/transfer");
    let (status, moved) = agent
        .post(
            &transfer,
            &json!({"agent": wang_id, "note": "parcel question"}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    frame(&mut console_a, |f| {
        f["type"] == "assigned" && f["conversation"]["id"] == id.as_str()
    })
    .await;

    // Node A, which runs the conversation and holds the visitor's connection, dies.
    let NodeOwner::Node(node_a) = store.conversation_node(&id).await.unwrap() else {
        panic!("node A runs the conversation");
    };
    let token = visitor.token.clone();
    a.kill();
    drop(visitor);

    // The visitor comes back through node B: everything acknowledged is there.
    let (mut visitor, welcome) = Visitor::resume(b.addr, &id, &token, 0).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let last = welcome["last_seq"].as_i64().unwrap();
    let transcript = visitor.until(|f| f["seq"].as_i64() == Some(last)).await;
    let kept = transcript
        .iter()
        .find(|f| f["client_id"] == said.as_str())
        .expect("the acknowledged message survived");
    assert_eq!(kept["seq"], acked_seq);
    assert!(
        transcript
            .iter()
            .any(|f| says(f, "agent", "Hello from node B"))
    );

    // Node B runs it now, and it goes on: Wang, signed in on node B, answers.
    let NodeOwner::Node(now_on) = store.conversation_node(&id).await.unwrap() else {
        panic!("a node runs the conversation");
    };
    assert_ne!(now_on, node_a, "node B took the conversation over");
    let again = visitor.say("still there?").await;
    let ack = visitor.until(|f| f["type"] == "ack").await;
    let ack = ack.last().unwrap();
    assert_eq!(ack["client_id"], again.as_str());
    assert!(ack["seq"].as_i64().unwrap() > last);
    let wang_b = login(b.addr, "wang", "wang-password").await;
    let reply = format!("/api/console/conversations/{id}/messages");
    let (status, answer) = wang_b
        .post(&reply, &json!({"text": "Wang here, on node B"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    visitor
        .until(|f| says(f, "agent", "Wang here, on node B"))
        .await;
    visitor.close().await;

    // A node that stops gracefully lets its conversations go at once.
    terminate(b);
    assert_eq!(
        store.conversation_node(&id).await.unwrap(),
        NodeOwner::Nobody
    );
    store.close().await;
    db.drop_database().await;
}

/// Two `kefu` nodes on a fresh PostgreSQL database and the NATS server, admin password
/// `admin-password`; `None` (said on stderr) when the test's variables are unset.
struct Nodes {
    db: crate::store::TestDb,
    a: Process,
    b: Process,
    _dirs: (crate::chat::TempDir, crate::chat::TempDir),
}

impl Nodes {
    async fn start(test: &str) -> Option<Nodes> {
        let Some(nats) = std::env::var("KEFU_TEST_NATS_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            eprintln!("{test}: KEFU_TEST_NATS_URL is unset, skipping");
            return None;
        };
        let Some(db) = server_database("KEFU_TEST_POSTGRES_URL").await else {
            eprintln!("{test}: KEFU_TEST_POSTGRES_URL is unset, skipping");
            return None;
        };
        let url = db.url();
        let env = [
            ("KEFU_DATABASE_URL", url.as_str()),
            ("KEFU_NATS_URL", nats.as_str()),
            ("KEFU_ADMIN_PASSWORD", "admin-password"),
        ];
        let dirs = (
            temp_dir(&format!("{test}-a")),
            temp_dir(&format!("{test}-b")),
        );
        // Started together: both migrate and create the first accounts on one empty database.
        let (a, b) = tokio::join!(
            Process::start_with(&dirs.0, None, &env),
            Process::start_with(&dirs.1, None, &env)
        );
        Some(Nodes {
            db,
            a,
            b,
            _dirs: dirs,
        })
    }
}

/// `kill -TERM` and wait for the process to stop.
fn terminate(process: Process) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &process.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    process.wait();
}

/// A version published on one node becomes the current one on the other (`kefu.flows`).
#[tokio::test]
async fn a_version_published_on_one_node_runs_on_the_other() {
    let Some(Nodes { db, a, b, _dirs }) = Nodes::start("flows_across_nodes").await else {
        return;
    };
    let admin = login(a.addr, "admin", "admin-password").await;
    let draft = "/api/flows/faq-hours/draft";
    let (status, _, loaded) = http(a.addr, "GET", draft, Some(&admin), None).await;
    assert_eq!(status, 200, "{loaded}");
    let mut document = loaded["document"].clone();
    for node in document["nodes"].as_array_mut().unwrap() {
        if node["id"] == "welcome" {
            node["parts"][0]["text"]["en"] = json!("Published on node A");
        }
    }
    let body = json!({"revision": 0, "document": document});
    let (status, _, saved) = http(a.addr, "PUT", draft, Some(&admin), Some(&body)).await;
    assert_eq!(status, 200, "{saved}");
    let (status, published) = admin
        .post("/api/flows/faq-hours/publish", &json!({"note": "from A"}))
        .await;
    assert_eq!(status, 201, "{published}");

    // Node B hears of it and runs it for its new conversations.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, flow) = http(b.addr, "GET", "/api/flows/faq-hours", None, None).await;
        if flow["version"] == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node B still runs {}",
            flow["version"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut visitor = Visitor::start(b.addr, "faq-hours", "en").await;
    let texts: Vec<String> = visitor
        .bot_turn()
        .await
        .iter()
        .filter_map(crate::chat::bot_text)
        .collect();
    assert_eq!(texts[0], "Published on node A");
    visitor.close().await;
    terminate(a);
    terminate(b);
    db.drop_database().await;
}
