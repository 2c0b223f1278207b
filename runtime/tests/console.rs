//! Accounts, sign-in and the console API through the router (`docs/console-api.md`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use runtime::server::{AppState, Database};
use runtime::store::{NewUser, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::chat::{Options, Server, TempDir, Visitor, bot_text, temp_dir};

/// The router over a fresh SQLite database (with its first accounts), and an extra admin and
/// agent with known passwords.
pub struct Api {
    pub state: Arc<AppState>,
    pub store: Store,
    _dir: Option<TempDir>,
}

/// `root` (admin) and `li` (agent), both with password `pass-word`, in team `support`.
async fn add_test_accounts(store: &Store) {
    for (login, role) in [("root", "admin"), ("li", "agent")] {
        store
            .create_user(&NewUser {
                id: format!("u-{login}"),
                login: login.to_owned(),
                name: login.to_owned(),
                role: role.to_owned(),
                team_id: "support".to_owned(),
                password_hash: runtime::auth::hash_password("pass-word").unwrap(),
                capacity: 3,
                created_at: 0,
            })
            .await
            .unwrap();
    }
}

/// A response: status, headers we look at, and the JSON body (or `null`).
pub struct Answer {
    pub status: StatusCode,
    pub set_cookie: Option<String>,
    pub retry_after: Option<String>,
    pub body: Value,
}

/// A signed-in account: its cookie and CSRF token.
#[derive(Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl Api {
    pub async fn new() -> Api {
        let dir = temp_dir("console");
        let mut state = AppState::bundled().unwrap();
        let database = Database {
            data_dir: dir.to_path_buf(),
            url: None,
        };
        let store = database.open(&state.library()).await.unwrap();
        add_test_accounts(&store).await;
        state.store = Some(store.clone());
        Api {
            state: Arc::new(state),
            store,
            _dir: Some(dir),
        }
    }

    /// The router of a running server (with its chat), and the test accounts.
    pub async fn of(server: &Server) -> Api {
        let store = server.state.store.clone().unwrap();
        add_test_accounts(&store).await;
        Api {
            state: Arc::clone(&server.state),
            store,
            _dir: None,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        session: Option<&Session>,
        csrf: bool,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(session) = session {
            request = request.header(header::COOKIE, &session.cookie);
            if csrf {
                request = request.header("x-csrf-token", &session.csrf);
            }
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        // As the server sees a client: from an address (the audit trail's "from where").
        let mut request = request;
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [10, 0, 0, 7],
                40000,
            ))));
        let response = runtime::server::app(Arc::clone(&self.state))
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let header_text = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned())
        };
        let set_cookie = header_text(header::SET_COOKIE);
        let retry_after = header_text(header::RETRY_AFTER);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            set_cookie,
            retry_after,
            body,
        }
    }

    /// `GET path` as `session`.
    pub async fn get(&self, path: &str, session: &Session) -> Answer {
        self.call("GET", path, Some(session), false, None, &[])
            .await
    }

    /// `POST path` as `session`, with its CSRF token.
    pub async fn post(&self, path: &str, session: &Session, body: Option<Value>) -> Answer {
        self.call("POST", path, Some(session), true, body, &[])
            .await
    }

    /// `DELETE path` as `session`, with its CSRF token.
    pub async fn delete(&self, path: &str, session: &Session) -> Answer {
        self.call("DELETE", path, Some(session), true, None, &[])
            .await
    }

    pub async fn login(&self, login: &str, password: &str) -> Answer {
        self.call(
            "POST",
            "/api/auth/login",
            None,
            false,
            Some(json!({"login": login, "password": password})),
            &[],
        )
        .await
    }

    /// Signs in and returns the session.
    pub async fn session(&self, login: &str, password: &str) -> Session {
        let answer = self.login(login, password).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let cookie = answer.set_cookie.unwrap();
        Session {
            cookie: cookie.split(';').next().unwrap().to_owned(),
            csrf: answer.body["csrf"].as_str().unwrap().to_owned(),
        }
    }
}

#[tokio::test]
async fn signing_in_and_out() {
    let api = Api::new().await;
    let wrong = api.login("root", "nope").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["error"], "wrong login or password");
    let unknown = api.login("nobody", "pass-word").await;
    assert_eq!(unknown.body, wrong.body, "an unknown login looks the same");

    let answer = api.login("root", "pass-word").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["user"]["role"], "admin");
    assert_eq!(answer.body["user"]["team"]["id"], "support");
    assert!(answer.body["user"].get("password_hash").is_none());
    let cookie = answer.set_cookie.unwrap();
    assert!(cookie.starts_with("kefu_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let session = Session {
        cookie: cookie.split(';').next().unwrap().to_owned(),
        csrf: answer.body["csrf"].as_str().unwrap().to_owned(),
    };
    let me = api.get("/api/auth/me", &session).await;
    assert_eq!(
        (me.status, &me.body["user"]["login"]),
        (StatusCode::OK, &json!("root"))
    );
    assert_eq!(me.body["csrf"], session.csrf.as_str());
    let anonymous = api
        .call("GET", "/api/auth/me", None, false, None, &[])
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    // Signing out changes something: without the CSRF header it is refused.
    let forged = api
        .call("POST", "/api/auth/logout", Some(&session), false, None, &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let out = api
        .call("POST", "/api/auth/logout", Some(&session), true, None, &[])
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    let after = api.get("/api/auth/me", &session).await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "the session is gone"
    );
    // Behind a TLS proxy the cookie is Secure.
    let tls = api
        .call(
            "POST",
            "/api/auth/login",
            None,
            false,
            Some(json!({"login": "li", "password": "pass-word"})),
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert!(tls.set_cookie.unwrap().contains("; Secure"));
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let api = Api::new().await;
    for _ in 0..5 {
        assert_eq!(
            api.login("li", "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let blocked = api.login("li", "pass-word").await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        blocked.body
    );
    let wait: u64 = blocked.retry_after.unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    // Another login from the same address is not blocked by li's failures…
    assert_eq!(api.login("root", "pass-word").await.status, StatusCode::OK);
    // …until the address has failed 20 times.
    for i in 0..15 {
        api.login(&format!("x{i}"), "guess").await;
    }
    let address = api.login("admin", "whatever").await;
    assert_eq!(address.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_first_start_creates_an_admin_and_a_demo_agent() {
    let api = Api::new().await;
    let logins: Vec<String> = api
        .store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| format!("{}:{}", u.login, u.role))
        .collect();
    assert_eq!(
        logins,
        [
            "admin:admin",
            "agent:agent",
            "li:agent",
            "root:admin",
            "sales:agent"
        ]
    );
    let agent = api.session("agent", "agent").await;
    let me = api.get("/api/auth/me", &agent).await;
    assert_eq!(me.body["user"]["role"], "agent");
    // Starting again creates nothing more.
    assert_eq!(runtime::auth::bootstrap(&api.store).await.unwrap(), None);
    assert_eq!(api.store.users().await.unwrap().len(), 5);
}

#[tokio::test]
async fn an_agent_takes_over_a_handed_off_conversation_and_hands_it_back() {
    let dir = temp_dir("takeover");
    let server = Server::start(&dir, Options::default()).await;
    let api = Api::of(&server).await;
    let mut visitor = Visitor::start(server.addr, "order-status", "en").await;
    visitor.bot_turn().await;
    visitor.say("agent").await;
    let queued = visitor.bot_turn().await;
    assert_eq!(queued.last().unwrap()["owner"], "queue");
    let id = visitor.conversation.clone();

    let agent = api.session("li", "pass-word").await;
    let other = api.session("agent", "agent").await;
    let queue = api
        .get("/api/console/conversations?view=queue", &agent)
        .await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    let entry = queue
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap();
    assert_eq!(
        (&entry["status"], &entry["queue"], &entry["priority"]),
        (&json!("waiting"), &json!("support"), &json!("normal")),
        "{entry}"
    );
    assert_eq!(entry["unread"], 1, "the visitor's `agent`: {entry}");
    assert!(
        entry["reason"].as_str().unwrap().contains("agent"),
        "{entry}"
    );

    // The whole context: transcript, the bot's path, its variables, the handoff.
    let detail = api
        .get(&format!("/api/console/conversations/{id}"), &agent)
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let messages = detail.body["messages"].as_array().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m["sender"] == "visitor" && m["body"]["text"] == "agent")
    );
    assert!(
        !detail.body["context"]["path"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(detail.body["context"]["variables"].is_object());
    assert!(
        detail.body["context"]["handoff"]["reason"].is_string(),
        "{}",
        detail.body
    );

    // Claiming needs the CSRF token; then the visitor is told who has joined.
    let claim = format!("/api/console/conversations/{id}/claim");
    let forged = api
        .call("POST", &claim, Some(&agent), false, None, &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let claimed = api
        .call("POST", &claim, Some(&agent), true, None, &[])
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.body);
    assert_eq!(claimed.body["assignee"]["id"], "u-li");
    assert_eq!(claimed.body["owner"], "agent");
    let joined = visitor.until(|f| f["body"]["code"] == "assigned").await;
    assert!(
        joined
            .iter()
            .any(|f| f["type"] == "state" && f["owner"] == "agent")
    );
    assert_eq!(
        joined.last().unwrap()["body"]["text"],
        "li has joined the conversation."
    );
    let again = api
        .call("POST", &claim, Some(&other), true, None, &[])
        .await;
    assert_eq!(
        again.status,
        StatusCode::NOT_FOUND,
        "no longer visible to another agent"
    );

    // The visitor and the agent talk; the bot stays quiet.
    visitor.say("my parcel is lost").await;
    let ack = visitor.until(|f| f["type"] == "ack").await;
    assert!(ack.iter().all(|f| f["sender"] != "bot"));
    let sent = api
        .post(
            &format!("/api/console/conversations/{id}/messages"),
            &agent,
            Some(json!({"text": "Sorry to hear that — let me check.", "client_id": "r1"})),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let reply = visitor.until(|f| f["sender"] == "agent").await;
    assert_eq!(
        reply.last().unwrap()["body"]["text"],
        "Sorry to hear that — let me check."
    );
    let note = api
        .post(
            &format!("/api/console/conversations/{id}/notes"),
            &agent,
            Some(json!({"text": "VIP customer"})),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED);
    let detail = api
        .get(&format!("/api/console/conversations/{id}"), &agent)
        .await;
    assert_eq!(detail.body["notes"][0]["text"], "VIP customer");
    assert_eq!(
        detail.body["conversation"]["unread"], 0,
        "the agent wrote last"
    );

    // A node the flow cannot continue at is refused, and nothing changes.
    let nowhere = api
        .post(
            &format!("/api/console/conversations/{id}/hand-back"),
            &agent,
            Some(json!({"node": "no_such_node"})),
        )
        .await;
    assert_eq!(nowhere.status, StatusCode::CONFLICT, "{}", nowhere.body);
    assert!(
        nowhere.body["error"]
            .as_str()
            .unwrap()
            .starts_with("the bot cannot continue there")
    );
    // Hand back: the flow continues where the handoff node says.
    let back = api
        .post(
            &format!("/api/console/conversations/{id}/hand-back"),
            &agent,
            None,
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_eq!(back.body["owner"], "bot");
    let resumed = visitor.bot_turn().await;
    assert!(
        resumed
            .iter()
            .any(|f| f["type"] == "state" && f["owner"] == "bot")
    );
    assert!(
        resumed
            .iter()
            .filter_map(bot_text)
            .any(|t| t.starts_with("Please enter your order number")),
        "{resumed:?}"
    );
    server.stop().await;
}

/// Starts a conversation that a visitor hands off; returns its id and the visitor (who has been
/// told their place in the queue).
async fn queued(server: &Server) -> (String, Visitor) {
    let (id, visitor, _) = queued_at(server).await;
    (id, visitor)
}

/// [`queued`], with what the visitor was told of their place in the queue.
async fn queued_at(server: &Server) -> (String, Visitor, String) {
    let mut visitor = Visitor::start(server.addr, "order-status", "en").await;
    visitor.bot_turn().await;
    visitor.say("agent").await;
    let told = visitor
        .until(|f| f["body"]["code"] == "queue_position")
        .await;
    let place = told.last().unwrap()["body"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    (visitor.conversation.clone(), visitor, place)
}

/// Every route with every role (and none): who may do what.
#[tokio::test]
async fn every_route_checks_its_caller() {
    let dir = temp_dir("matrix");
    let server = Server::start(
        &dir,
        Options {
            catalogue: true,
            ..Options::default()
        },
    )
    .await;
    let api = Api::of(&server).await;
    let li = api.session("li", "pass-word").await;
    let root = api.session("root", "pass-word").await;
    let other = api.session("agent", "agent").await;
    let (q, _v1, first) = queued_at(&server).await;
    let (mine, _v2, second) = queued_at(&server).await;
    let (theirs, _v3, third) = queued_at(&server).await;
    assert_eq!(
        [first, second, third],
        [
            "You are next in line.",
            "1 person is ahead of you.",
            "2 people are ahead of you."
        ]
    );
    for (id, who) in [(&mine, &li), (&theirs, &other)] {
        let claimed = api
            .post(&format!("/api/console/conversations/{id}/claim"), who, None)
            .await;
        assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.body);
    }
    let c = "/api/console/conversations";
    let text = || Some(json!({"text": "hello"}));
    let f = "/api/flows/faq-hours";
    let faq = serde_json::to_value(server.state.library().get("faq-hours").unwrap()).unwrap();
    // (method, path, body, expected without a session, as agent `li`, as admin `root`)
    let table: Vec<(&str, String, Option<Value>, [u16; 3])> = vec![
        ("GET", "/".to_owned(), None, [200, 200, 200]),
        ("GET", "/healthz".to_owned(), None, [200, 200, 200]),
        ("GET", "/api/flows".to_owned(), None, [200, 200, 200]),
        (
            "GET",
            "/api/flows/faq-hours".to_owned(),
            None,
            [200, 200, 200],
        ),
        (
            "GET",
            "/api/flows/faq-hours/versions/1/rust".to_owned(),
            None,
            [200, 200, 200],
        ),
        ("GET", "/widget.js".to_owned(), None, [200, 200, 200]),
        ("GET", "/demo".to_owned(), None, [200, 200, 200]),
        (
            "GET",
            "/demo/api/products?category=phones".to_owned(),
            None,
            [200, 200, 200],
        ),
        ("GET", "/api/auth/me".to_owned(), None, [401, 200, 200]),
        ("GET", format!("{c}?view=queue"), None, [401, 200, 200]),
        ("GET", format!("{c}?view=mine"), None, [401, 200, 200]),
        ("GET", format!("{c}?view=all"), None, [401, 403, 200]),
        ("GET", format!("{c}/{q}"), None, [401, 200, 200]),
        ("GET", format!("{c}/{mine}"), None, [401, 200, 200]),
        ("GET", format!("{c}/{theirs}"), None, [401, 404, 200]),
        (
            "GET",
            format!("{c}/no-such-conversation"),
            None,
            [401, 404, 404],
        ),
        ("POST", format!("{c}/{mine}/notes"), text(), [401, 201, 201]),
        (
            "POST",
            format!("{c}/{theirs}/notes"),
            text(),
            [401, 404, 201],
        ),
        ("POST", format!("{c}/{q}/notes"), text(), [401, 403, 201]),
        (
            "POST",
            format!("{c}/{mine}/messages"),
            text(),
            [401, 200, 409],
        ),
        (
            "POST",
            format!("{c}/{theirs}/messages"),
            text(),
            [401, 404, 409],
        ),
        ("POST", format!("{c}/{q}/resolve"), None, [401, 403, 200]),
        (
            "POST",
            format!("{c}/{theirs}/hand-back"),
            None,
            [401, 404, 200],
        ),
        (
            "POST",
            format!("{c}/{mine}/transfer"),
            Some(json!({"team": "support"})),
            [401, 200, 409],
        ),
        (
            "GET",
            "/api/console/canned".to_owned(),
            None,
            [401, 200, 200],
        ),
        (
            "GET",
            "/api/console/agents".to_owned(),
            None,
            [401, 200, 200],
        ),
        (
            "GET",
            "/api/admin/connectors".to_owned(),
            None,
            [401, 403, 200],
        ),
        ("GET", "/metrics".to_owned(), None, [200, 200, 200]),
        (
            "POST",
            "/api/admin/connectors/test".to_owned(),
            Some(
                json!({"connector": "demo", "entity": "orders", "operation": "get",
                        "params": {"order_no": "KF100001"}}),
            ),
            [401, 403, 200],
        ),
        (
            "POST",
            "/api/admin/connectors/reload".to_owned(),
            None,
            [401, 403, 200],
        ),
        // Access control (`docs/policies.md`, "In the server"): admins only.
        ("GET", "/api/admin/grants".to_owned(), None, [401, 403, 200]),
        (
            "POST",
            "/api/admin/grants".to_owned(),
            Some(json!({"subject": "agent:li", "actions": ["read"],
                        "resource": "customers::*", "expires_at": 1})),
            [401, 403, 201],
        ),
        (
            "DELETE",
            "/api/admin/grants/no-such-grant".to_owned(),
            None,
            [401, 403, 404],
        ),
        (
            "POST",
            "/api/admin/policy/check".to_owned(),
            Some(json!({"subject": {"login": "li"}, "action": "read",
                        "resource": "customers::x"})),
            [401, 403, 200],
        ),
        (
            "POST",
            "/api/admin/policy/reload".to_owned(),
            None,
            [401, 403, 200],
        ),
        (
            "GET",
            "/api/admin/policies".to_owned(),
            None,
            [401, 403, 200],
        ),
        // Saving the bundled text again changes nothing the rows below depend on.
        (
            "PUT",
            "/api/admin/policies".to_owned(),
            Some(json!({"text": runtime::access::BUNDLED, "revision": 0})),
            [401, 403, 200],
        ),
        // The flow designer's API (`docs/flow-api.md`): agents read, admins change.
        ("GET", format!("{f}/draft"), None, [401, 200, 200]),
        (
            "PUT",
            format!("{f}/draft"),
            Some(json!({"revision": 0, "document": faq.clone()})),
            [401, 403, 200],
        ),
        // The draft just saved is the current version.
        (
            "POST",
            format!("{f}/publish"),
            Some(json!({"note": "n"})),
            [401, 403, 409],
        ),
        (
            "POST",
            format!("{f}/rollback"),
            Some(json!({"version": 1})),
            [401, 403, 409],
        ),
        ("GET", format!("{f}/versions"), None, [401, 200, 200]),
        ("GET", format!("{f}/versions/1"), None, [401, 200, 200]),
        (
            "GET",
            format!("{f}/diff?from=1&to=draft"),
            None,
            [401, 200, 200],
        ),
        (
            "POST",
            "/api/flows/import".to_owned(),
            Some(faq.clone()),
            [401, 403, 200],
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, expected) in &table {
        for (session, want) in [
            (None, expected[0]),
            (Some(&li), expected[1]),
            (Some(&root), expected[2]),
        ] {
            let got = api
                .call(method, path, session, true, body.clone(), &[])
                .await
                .status
                .as_u16();
            if got != want {
                let who =
                    session.map_or(
                        "nobody",
                        |s| if std::ptr::eq(s, &li) { "li" } else { "root" },
                    );
                wrong.push(format!("{method} {path} as {who}: {got}, expected {want}"));
            }
        }
        // Without the CSRF token, nothing changes for anyone.
        if *method != "GET" {
            let forged = api
                .call(method, path, Some(&root), false, body.clone(), &[])
                .await;
            if forged.status != StatusCode::FORBIDDEN {
                wrong.push(format!("{method} {path} without CSRF: {}", forged.status));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    server.stop().await;
}

/// A console's WebSocket, signed in with `session`.
async fn agent_socket(
    server: &Server,
    session: Option<&Session>,
    origin: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ws/agent", server.addr)
        .into_client_request()
        .unwrap();
    if let Some(session) = session {
        request
            .headers_mut()
            .insert("cookie", session.cookie.parse().unwrap());
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// The next text frame of a console socket that satisfies `wanted`.
async fn next_frame(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    use futures_util::StreamExt;
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a frame arrives in time")
            .expect("the socket is open")
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if wanted(&frame) {
                return frame;
            }
        }
    }
}

#[tokio::test]
async fn the_console_socket_follows_the_queue_and_talks_with_the_visitor() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let dir = temp_dir("agent-socket");
    let server = Server::start(&dir, Options::default()).await;
    let api = Api::of(&server).await;
    let li = api.session("li", "pass-word").await;
    // Signed out, or from another site's page: refused at the handshake.
    assert!(agent_socket(&server, None, None).await.is_err());
    let port = server.addr.port();
    assert!(
        agent_socket(&server, Some(&li), Some("http://evil.example"))
            .await
            .is_err()
    );
    let own = format!("http://127.0.0.1:{port}");
    let mut console = agent_socket(&server, Some(&li), Some(&own)).await.unwrap();
    let hello = next_frame(&mut console, |f| f["type"] == "hello").await;
    assert_eq!(hello["user"]["login"], "li");
    next_frame(&mut console, |f| f["type"] == "queue").await;

    let (id, mut visitor) = queued(&server).await;
    let queue = next_frame(&mut console, |f| {
        f["type"] == "queue"
            && f["conversations"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["id"] == id.as_str()))
    })
    .await;
    assert!(queue["conversations"].is_array());
    let claimed = api
        .post(&format!("/api/console/conversations/{id}/claim"), &li, None)
        .await;
    assert_eq!(claimed.status, StatusCode::OK);
    let assigned = next_frame(&mut console, |f| f["type"] == "assigned").await;
    assert_eq!(assigned["conversation"]["id"], id.as_str());

    // Open the conversation: everything so far, tagged with its id, in order.
    let open = json!({"type": "open", "conversation": id, "last_seq": 0});
    console.send(Message::text(open.to_string())).await.unwrap();
    let first = next_frame(&mut console, |f| f["type"] == "message").await;
    assert_eq!(
        (first["seq"].as_i64(), &first["conversation"]),
        (Some(1), &json!(id))
    );
    // Typing both ways, then a reply that the visitor sees.
    visitor.send(json!({"type": "typing", "on": true})).await;
    let typing = next_frame(&mut console, |f| f["type"] == "typing").await;
    assert_eq!(
        (&typing["sender"], &typing["on"]),
        (&json!("visitor"), &json!(true))
    );
    let typing = json!({"type": "typing", "conversation": id, "on": true});
    console
        .send(Message::text(typing.to_string()))
        .await
        .unwrap();
    let seen = visitor.until(|f| f["type"] == "typing").await;
    assert_eq!(seen.last().unwrap()["sender"], "agent");
    let reply =
        json!({"type": "message", "conversation": id, "client_id": "c-1", "text": "您好！"});
    console
        .send(Message::text(reply.to_string()))
        .await
        .unwrap();
    let ack = next_frame(&mut console, |f| f["type"] == "ack").await;
    assert_eq!(
        (&ack["conversation"], &ack["client_id"]),
        (&json!(id), &json!("c-1"))
    );
    let shown = visitor.until(|f| f["sender"] == "agent").await;
    let shown = shown.last().unwrap();
    assert_eq!(
        (&shown["body"]["text"], &shown["seq"]),
        (&json!("您好！"), &ack["seq"])
    );
    // The visitor's answer reaches the console live.
    visitor.say("谢谢").await;
    let answer = next_frame(&mut console, |f| {
        f["sender"] == "visitor" && f["body"]["text"] == "谢谢"
    })
    .await;
    assert_eq!(answer["conversation"], id.as_str());
    server.stop().await;
}

#[tokio::test]
async fn waiting_conversations_go_to_online_agents_with_room() {
    let dir = temp_dir("auto-assign");
    let server = Server::start(
        &dir,
        Options {
            hub: runtime::conversation::HubConfig {
                auto_assign: true,
                ..runtime::conversation::HubConfig::default()
            },
            ..Options::default()
        },
    )
    .await;
    let api = Api::of(&server).await;
    let li = api.session("li", "pass-word").await;
    let mut console = agent_socket(&server, Some(&li), None).await.unwrap();
    next_frame(&mut console, |f| f["type"] == "hello").await;
    // li's capacity is 3: the fourth conversation waits.
    let mut visitors = Vec::new();
    for _ in 0..4 {
        let mut visitor = Visitor::start(server.addr, "order-status", "en").await;
        visitor.bot_turn().await;
        visitor.say("agent").await;
        visitors.push(visitor);
    }
    let mut taken = Vec::new();
    for _ in 0..3 {
        let assigned = next_frame(&mut console, |f| f["type"] == "assigned").await;
        assert_eq!(assigned["conversation"]["assignee"]["id"], "u-li");
        taken.push(assigned["conversation"]["id"].as_str().unwrap().to_owned());
    }
    let mut joined = 0;
    for visitor in &mut visitors {
        let frames = visitor
            .frames_for(std::time::Duration::from_millis(300))
            .await
            .0;
        if frames.iter().any(|f| f["body"]["code"] == "assigned") {
            joined += 1;
        }
    }
    assert_eq!(joined, 3, "three visitors were told li joined");
    let queue = api.get("/api/console/conversations?view=queue", &li).await;
    assert_eq!(queue.body.as_array().unwrap().len(), 1, "{}", queue.body);
    let waiting = queue.body[0]["id"].as_str().unwrap().to_owned();
    // An ended conversation does not count against li's capacity: resolving one gives li room,
    // and the waiting one goes to li.
    let resolved = api
        .post(
            &format!("/api/console/conversations/{}/resolve", taken[0]),
            &li,
            None,
        )
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    let assigned = next_frame(&mut console, |f| f["type"] == "assigned").await;
    assert_eq!(
        (
            &assigned["conversation"]["id"],
            &assigned["conversation"]["assignee"]["id"]
        ),
        (&json!(waiting), &json!("u-li"))
    );
    // li is full again: the next one waits.
    let (waiting, _visitor) = queued(&server).await;
    let queue = api.get("/api/console/conversations?view=queue", &li).await;
    assert_eq!(queue.body[0]["id"], waiting.as_str(), "{}", queue.body);
    // When another agent comes online, the waiting one goes to them.
    let other = api.session("agent", "agent").await;
    let mut second = agent_socket(&server, Some(&other), None).await.unwrap();
    let assigned = next_frame(&mut second, |f| f["type"] == "assigned").await;
    assert_eq!(
        (
            &assigned["conversation"]["id"],
            &assigned["conversation"]["assignee"]["id"]
        ),
        (&json!(waiting), &json!("u-agent"))
    );
    let agents = api.get("/api/console/agents", &li).await;
    let online: Vec<&str> = agents
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["online"] == true)
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(online, ["u-agent", "u-li"]);
    server.stop().await;
}

#[tokio::test]
async fn a_conversation_is_transferred_with_a_note_and_resolved() {
    let dir = temp_dir("transfer");
    let server = Server::start(&dir, Options::default()).await;
    let api = Api::of(&server).await;
    let li = api.session("li", "pass-word").await;
    let other = api.session("agent", "agent").await;
    let (id, mut visitor) = queued(&server).await;
    let c = format!("/api/console/conversations/{id}");
    let claimed = api
        .call("POST", &format!("{c}/claim"), Some(&li), true, None, &[])
        .await;
    assert_eq!(claimed.status, StatusCode::OK);
    let neither = api
        .post(&format!("{c}/transfer"), &li, Some(json!({"note": "?"})))
        .await;
    assert_eq!(neither.status, StatusCode::BAD_REQUEST);
    let moved = api
        .post(
            &format!("{c}/transfer"),
            &li,
            Some(json!({"agent": "u-agent", "note": "Asks about an invoice"})),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body["assignee"]["id"], "u-agent");
    let told = visitor
        .until(|f| f["body"]["text"] == "小李 · Demo agent has joined the conversation.")
        .await;
    assert!(!told.is_empty());
    let gone = api.get(&c, &li).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "li no longer has it");
    let detail = api.get(&c, &other).await;
    assert_eq!(detail.body["notes"][0]["text"], "Asks about an invoice");
    assert_eq!(detail.body["notes"][0]["author"], "u-li");
    let resolved = api.post(&format!("{c}/resolve"), &other, None).await;
    assert_eq!(resolved.status, StatusCode::OK);
    assert_eq!(resolved.body["status"], "ended");
    let end = visitor
        .until(|f| f["type"] == "state" && f["status"] == "ended")
        .await;
    assert!(end.iter().any(|f| f["body"]["code"] == "ended"));
    visitor.say("hello?").await;
    assert_eq!(visitor.recv().await["code"], "ended");
    let again = api.post(&format!("{c}/resolve"), &other, None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    server.stop().await;
}

#[tokio::test]
async fn admins_create_accounts_and_bad_ones_are_refused() {
    let api = Api::new().await;
    let root = api.session("root", "pass-word").await;
    let create = |body: Value| {
        let api = &api;
        let root = root.clone();
        async move { api.post("/api/admin/users", &root, Some(body)).await }
    };
    let made = create(json!({"login": "zhang", "name": "张三", "password": "12345678", "role": "agent", "team": "support", "capacity": 2})).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(
        (&made.body["name"], &made.body["capacity"]),
        (&json!("张三"), &json!(2))
    );
    assert_eq!(api.login("zhang", "12345678").await.status, StatusCode::OK);
    let cases = [
        (
            json!({"login": "zhang", "name": "", "password": "12345678", "role": "agent", "team": "support"}),
            409,
            "already exists",
        ),
        (
            json!({"login": "a b", "name": "", "password": "12345678", "role": "agent", "team": "support"}),
            400,
            "`login`",
        ),
        (
            json!({"login": "x", "name": "", "password": "short", "role": "agent", "team": "support"}),
            400,
            "`password`",
        ),
        (
            json!({"login": "x", "name": "", "password": "12345678", "role": "owner", "team": "support"}),
            400,
            "`role`",
        ),
        (
            json!({"login": "x", "name": "", "password": "12345678", "role": "agent", "team": "nowhere"}),
            400,
            "no such team",
        ),
    ];
    for (body, status, message) in cases {
        let answer = create(body.clone()).await;
        assert_eq!(answer.status.as_u16(), status, "{body} → {}", answer.body);
        assert!(
            answer.body["error"].as_str().unwrap().contains(message),
            "{}",
            answer.body
        );
    }
}
