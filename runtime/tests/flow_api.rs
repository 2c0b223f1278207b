//! The flow designer's API through the router (`docs/flow-api.md`): drafts with optimistic
//! concurrency, publishing, the version history, diffs, rollback and import.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::chat::{Options, Server, Visitor, bot_text, temp_dir};
use crate::console::{Answer, Api, Session};

const FLOW: &str = "faq-hours";

impl Api {
    /// `PUT path` as `session`, with its CSRF token.
    pub async fn put(&self, path: &str, session: &Session, body: Value) -> Answer {
        self.call("PUT", path, Some(session), true, Some(body), &[])
            .await
    }
}

/// The English text of the `welcome` message of a faq-hours document.
fn welcome(document: &Value) -> &str {
    let node = document["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "welcome")
        .unwrap();
    node["parts"][0]["text"]["en"].as_str().unwrap()
}

fn set_welcome(document: &mut Value, text: &str) {
    let node = document["nodes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["id"] == "welcome")
        .unwrap();
    node["parts"][0]["text"]["en"] = json!(text);
}

/// The bot's texts of a visitor's next turn.
async fn bot_texts(visitor: &mut Visitor) -> Vec<String> {
    visitor
        .bot_turn()
        .await
        .iter()
        .filter_map(bot_text)
        .collect()
}

async fn server() -> (Server, Api, Session, Session, crate::chat::TempDir) {
    let dir = temp_dir("flow-api");
    let server = Server::start(&dir, Options::default()).await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let li = api.session("li", "pass-word").await;
    (server, api, root, li, dir)
}

#[tokio::test]
async fn drafts_refuse_stale_saves_and_offer_the_current_one() {
    let (server, api, root, li, _dir) = server().await;
    let path = format!("/api/flows/{FLOW}/draft");
    let first = api.get(&path, &li).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["revision"], 0);
    assert_eq!(first.body["document"]["version"], 1);
    assert_eq!(first.body["errors"], 0);

    // Two admins load revision 0; the first save wins.
    let mut mine = first.body["document"].clone();
    set_welcome(&mut mine, "Mine");
    let saved = api
        .put(&path, &root, json!({"revision": 0, "document": mine}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.body["revision"], 1);
    assert!(saved.body["diagnostics"].is_array());

    let mut theirs = first.body["document"].clone();
    set_welcome(&mut theirs, "Theirs");
    let stale = api
        .put(&path, &root, json!({"revision": 0, "document": theirs}))
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    let message = stale.body["error"].as_str().unwrap();
    assert!(
        message.contains("`root` saved this flow after you loaded it"),
        "{message}"
    );
    assert_eq!(stale.body["current_revision"], 1);
    assert_eq!(welcome(&stale.body["current"]), "Mine");

    // Reloading gives the saved draft; saving on top of it works.
    let reloaded = api.get(&path, &root).await;
    assert_eq!(reloaded.body["revision"], 1);
    assert_eq!(welcome(&reloaded.body["document"]), "Mine");
    let merged = api
        .put(&path, &root, json!({"revision": 1, "document": theirs}))
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    assert_eq!(merged.body["revision"], 2);

    // Not a flow: 422 with where; another flow's document: 400; agents may not save.
    let mut broken = theirs.clone();
    broken["nodes"][1]["kind"] = json!("teleport");
    let bad = api
        .put(&path, &root, json!({"revision": 2, "document": broken}))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let error = bad.body["error"].as_str().unwrap();
    assert!(error.contains("nodes[1]"), "{error}");
    assert!(error.contains("line"), "{error}");
    let mut other = theirs.clone();
    other["id"] = json!("returns");
    let wrong = api
        .put(&path, &root, json!({"revision": 2, "document": other}))
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    let agent = api
        .put(&path, &li, json!({"revision": 2, "document": theirs}))
        .await;
    assert_eq!(agent.status, StatusCode::FORBIDDEN);
    assert_eq!(api.get(&path, &root).await.body["revision"], 2);
    server.stop().await;
}

#[tokio::test]
async fn publishing_switches_new_conversations_and_keeps_running_ones() {
    let (server, api, root, _li, _dir) = server().await;
    let draft = format!("/api/flows/{FLOW}/draft");
    let publish = format!("/api/flows/{FLOW}/publish");

    // Nothing changed yet.
    let nothing = api.post(&publish, &root, Some(json!({"note": "x"}))).await;
    assert_eq!(nothing.status, StatusCode::CONFLICT, "{}", nothing.body);
    assert!(
        nothing.body["error"]
            .as_str()
            .unwrap()
            .contains("nothing to publish")
    );

    let mut before = Visitor::start(server.addr, FLOW, "en").await;
    let old_welcome = bot_texts(&mut before).await;
    assert!(
        old_welcome[0].starts_with("Hi! I'm the kefu help bot"),
        "{old_welcome:?}"
    );

    // A draft with an error (an edge to a node that does not exist) is refused.
    let mut document = api.get(&draft, &root).await.body["document"].clone();
    set_welcome(&mut document, "Welcome to version two!");
    let mut broken = document.clone();
    broken["edges"][0]["to"] = json!("nowhere");
    let saved = api
        .put(&draft, &root, json!({"revision": 0, "document": broken}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert!(saved.body["errors"].as_u64().unwrap() > 0, "{}", saved.body);
    let refused = api
        .post(&publish, &root, Some(json!({"note": "broken"})))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("before publishing")
    );
    assert!(!refused.body["diagnostics"].as_array().unwrap().is_empty());

    // Fixed: published as version 2, with its note.
    let saved = api
        .put(&draft, &root, json!({"revision": 1, "document": document}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let published = api
        .post(&publish, &root, Some(json!({"note": "friendlier welcome"})))
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    assert_eq!(published.body["version"], 2);
    let hash = published.body["hash"].as_str().unwrap().to_owned();
    assert_eq!(server.state.library().get(FLOW).unwrap().version, 2);
    let listed = api.get("/api/flows", &root).await;
    let entry = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == FLOW)
        .unwrap()
        .clone();
    assert_eq!(
        (entry["version"].clone(), entry["hash"].clone()),
        (json!(2), json!(hash))
    );
    // Publishing again: the draft is the published version now.
    let again = api.post(&publish, &root, None).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(api.get(&draft, &root).await.body["document"]["version"], 2);

    // A new conversation runs version 2; the one started before stays on version 1.
    let mut after = Visitor::start(server.addr, FLOW, "en").await;
    assert_eq!(bot_texts(&mut after).await[0], "Welcome to version two!");
    before.say("restart").await;
    let restarted = bot_texts(&mut before).await;
    assert!(
        restarted
            .iter()
            .any(|t| t.starts_with("Hi! I'm the kefu help bot")),
        "{restarted:?}"
    );
    let stored = server
        .state
        .store
        .as_ref()
        .unwrap()
        .conversation(&before.conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.flow_version, 1);

    // The history has both versions, with who and why.
    let versions = api.get(&format!("/api/flows/{FLOW}/versions"), &root).await;
    assert_eq!(versions.status, StatusCode::OK, "{}", versions.body);
    let versions = versions.body.as_array().unwrap().clone();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["note"], Value::Null);
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[1]["note"], "friendlier welcome");
    assert_eq!(versions[1]["published_by"], "root");
    assert_eq!(versions[1]["hash"], json!(hash));
    assert!(versions[1]["published_at"].as_i64().unwrap() > 0);
    let v1 = api
        .get(&format!("/api/flows/{FLOW}/versions/1"), &root)
        .await;
    assert_eq!(v1.status, StatusCode::OK);
    assert!(welcome(&v1.body).starts_with("Hi!"));
    let missing = api
        .get(&format!("/api/flows/{FLOW}/versions/9"), &root)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    before.close().await;
    after.close().await;
    server.stop().await;
}

#[tokio::test]
async fn diffs_ignore_layout_and_rollback_publishes_the_old_content() {
    let (server, api, root, li, _dir) = server().await;
    let draft = format!("/api/flows/{FLOW}/draft");
    let publish = format!("/api/flows/{FLOW}/publish");
    let original = api.get(&draft, &root).await.body["document"].clone();

    // Version 2 only moves a box.
    let mut moved = original.clone();
    moved["layout"]["nodes"]["welcome"] = json!({"x": 999.0, "y": 555.0});
    let saved = api
        .put(&draft, &root, json!({"revision": 0, "document": moved}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let v2 = api
        .post(&publish, &root, Some(json!({"note": "tidy"})))
        .await;
    assert_eq!(v2.status, StatusCode::CREATED, "{}", v2.body);
    let same = api
        .get(&format!("/api/flows/{FLOW}/diff?from=1&to=2"), &li)
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    assert_eq!(same.body["same"], true, "{}", same.body);

    // Version 3 changes the welcome message.
    let mut edited = moved.clone();
    set_welcome(&mut edited, "Changed");
    let revision = v2.body["revision"].as_i64().unwrap();
    let saved = api
        .put(
            &draft,
            &root,
            json!({"revision": revision, "document": edited}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    // The draft can be compared with a version before it is published.
    let pending = api
        .get(&format!("/api/flows/{FLOW}/diff?from=2&to=draft"), &root)
        .await;
    assert_eq!(pending.body["changes"]["nodes_changed"][0]["id"], "welcome");
    let v3 = api
        .post(&publish, &root, Some(json!({"note": "new text"})))
        .await;
    assert_eq!(v3.status, StatusCode::CREATED, "{}", v3.body);
    let changed = api
        .get(&format!("/api/flows/{FLOW}/diff?from=1&to=3"), &root)
        .await;
    assert_eq!(changed.body["same"], false);
    assert_eq!(
        changed.body["changes"]["nodes_changed"],
        json!([{"id": "welcome", "fields": ["parts"]}])
    );
    assert_eq!(changed.body["changes"]["nodes_added"], json!([]));
    assert_eq!(changed.body["changes"]["edges_added"], json!([]));
    let bad = api
        .get(&format!("/api/flows/{FLOW}/diff?from=1&to=8"), &root)
        .await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);

    // Rolling back to 1 publishes its content as version 4 (and makes it the draft).
    let rollback = format!("/api/flows/{FLOW}/rollback");
    let agent = api.post(&rollback, &li, Some(json!({"version": 1}))).await;
    assert_eq!(agent.status, StatusCode::FORBIDDEN);
    let rolled = api
        .post(&rollback, &root, Some(json!({"version": 1})))
        .await;
    assert_eq!(rolled.status, StatusCode::CREATED, "{}", rolled.body);
    assert_eq!(rolled.body["version"], 4);
    let back = api
        .get(&format!("/api/flows/{FLOW}/diff?from=1&to=4"), &root)
        .await;
    assert_eq!(back.body["same"], true, "{}", back.body);
    let current = api.get(&draft, &root).await;
    assert_eq!(current.body["document"]["version"], 4);
    assert!(welcome(&current.body["document"]).starts_with("Hi!"));
    let versions = api.get(&format!("/api/flows/{FLOW}/versions"), &root).await;
    assert_eq!(versions.body[3]["note"], "rollback to version 1");
    let mut visitor = Visitor::start(server.addr, FLOW, "en").await;
    assert!(bot_texts(&mut visitor).await[0].starts_with("Hi!"));
    let nowhere = api
        .post(&rollback, &root, Some(json!({"version": 42})))
        .await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    visitor.close().await;
    server.stop().await;
}

#[tokio::test]
async fn import_migrates_old_documents_and_locates_errors() {
    let (server, api, root, _li, _dir) = server().await;
    let v1 = json!({
      "schema_version": 1,
      "id": "old",
      "name": "Old flow",
      "nodes": [
        {"id": "start", "type": "start", "position": {"x": 10, "y": 20}},
        {"id": "done", "type": "end", "position": {"x": 250, "y": 20}}
      ],
      "edges": [{"source": "start.next", "target": "done"}]
    });
    let imported = api.post("/api/flows/import", &root, Some(v1)).await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.body);
    assert_eq!(imported.body["document"]["schema_version"], 2);
    assert_eq!(imported.body["migrated_from"], 1);
    assert_eq!(
        imported.body["document"]["edges"],
        json!([{"from": "start", "port": "next", "to": "done"}])
    );
    assert_eq!(
        imported.body["document"]["layout"]["nodes"]["done"]["x"],
        250.0
    );
    assert_eq!(imported.body["errors"], 0);
    assert_eq!(imported.body["exists"], false);
    // Nothing was stored.
    assert_eq!(
        api.get("/api/flows/old/versions", &root).await.status,
        StatusCode::NOT_FOUND
    );

    let garbage = api
        .call("POST", "/api/flows/import", Some(&root), true, None, &[])
        .await;
    assert_eq!(garbage.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (body, expected) in [
        (
            "{\"schema_version\": 2,\n \"id\": ",
            "not valid JSON (line 2",
        ),
        ("[1, 2, 3]", "not a flow document"),
        ("{\"id\": \"x\"}", "no `schema_version`"),
        ("{\"schema_version\": 99}", "newer kefu"),
    ] {
        let answer = import_text(&api, &root, body).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let error = answer.body["error"].as_str().unwrap();
        assert!(error.contains(expected), "{body}: {error}");
    }
    server.stop().await;
}

/// `POST /api/flows/import` with `text` as the raw body.
async fn import_text(api: &Api, session: &Session, text: &str) -> Answer {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;
    let request = Request::builder()
        .method("POST")
        .uri("/api/flows/import")
        .header(header::COOKIE, &session.cookie)
        .header("x-csrf-token", &session.csrf)
        .body(Body::from(text.to_owned()))
        .unwrap();
    let response = runtime::server::app(std::sync::Arc::clone(&api.state))
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        set_cookie: None,
        retry_after: None,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

#[tokio::test]
async fn a_restarted_server_runs_the_latest_published_version() {
    let dir = temp_dir("flow-api-restart");
    let server = Server::start(&dir, Options::default()).await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let draft = format!("/api/flows/{FLOW}/draft");
    let mut document = api.get(&draft, &root).await.body["document"].clone();
    set_welcome(&mut document, "Still version two");
    api.put(&draft, &root, json!({"revision": 0, "document": document}))
        .await;
    let published = api
        .post(&format!("/api/flows/{FLOW}/publish"), &root, None)
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    server.stop().await;

    let server = Server::start(&dir, Options::default()).await;
    // The server loads published versions before it accepts connections.
    let mut visitor = Visitor::start(server.addr, FLOW, "en").await;
    assert_eq!(server.state.library().get(FLOW).unwrap().version, 2);
    assert_eq!(bot_texts(&mut visitor).await[0], "Still version two");
    visitor.close().await;
    server.stop().await;
}

const NEW: &str = "spring-sale";

/// A new flow made whole: start → a message → end.
fn fixed(document: &Value) -> Value {
    let mut document = document.clone();
    document["nodes"] = json!([
        {"id": "start", "kind": "start"},
        {"id": "hello", "kind": "message", "parts": [{"type": "text", "text": "Spring sale: 20% off!"}]},
        {"id": "done", "kind": "end", "outcome": "completed"}
    ]);
    document["edges"] = json!([
        {"from": "start", "port": "next", "to": "hello"},
        {"from": "hello", "port": "next", "to": "done"}
    ]);
    document["layout"]["nodes"]["hello"] = json!({"x": 300.0, "y": 80.0});
    document["layout"]["nodes"]["done"] = json!({"x": 520.0, "y": 80.0});
    document
}

/// A visitor of flow `id` who reads the bot's words until the conversation ends.
async fn visit(server: &Server, id: &str) -> Vec<String> {
    let mut visitor = Visitor::start(server.addr, id, "en").await;
    let texts = bot_texts(&mut visitor).await;
    visitor.close().await;
    texts
}

/// A raw `method uri` with `body` as text: the status, the content type and the body text.
async fn raw(
    api: &Api,
    method: &str,
    uri: &str,
    session: Option<&Session>,
    csrf: bool,
    body: &str,
) -> (StatusCode, String, String) {
    raw_on(&api.state, method, uri, session, csrf, body).await
}

/// [`raw`] through the router of `state`.
async fn raw_on(
    state: &std::sync::Arc<runtime::server::AppState>,
    method: &str,
    uri: &str,
    session: Option<&Session>,
    csrf: bool,
    body: &str,
) -> (StatusCode, String, String) {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(session) = session {
        request = request.header(header::COOKIE, &session.cookie);
        if csrf {
            request = request.header("x-csrf-token", &session.csrf);
        }
    }
    if !body.is_empty() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request.body(Body::from(body.to_owned())).unwrap();
    let response = runtime::server::app(std::sync::Arc::clone(state))
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn a_new_flow_is_a_draft_until_published_then_runs_and_is_counted() {
    let dir = temp_dir("flow-api-new");
    let server = Server::start(&dir, Options::default()).await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let li = api.session("li", "pass-word").await;

    // Created: one start node, a draft at revision 1, never published.
    let created = api
        .post(
            "/api/flows",
            &root,
            Some(json!({"id": NEW, "name": "Spring sale"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["revision"], 1);
    let document = created.body["document"].clone();
    assert_eq!(document["schema_version"], 2);
    assert_eq!(document["id"], NEW);
    assert_eq!(document["version"], 0);
    assert_eq!(document["name"], "Spring sale");
    assert_eq!(document["default_locale"], "zh-CN");
    assert_eq!(document["variables"], json!([]));
    assert_eq!(document["nodes"], json!([{"id": "start", "kind": "start"}]));
    assert_eq!(document["edges"], json!([]));
    assert_eq!(
        document["layout"]["nodes"],
        json!({"start": {"x": 80.0, "y": 80.0}})
    );

    // The designer's list: every flow by id, the new one unpublished.
    let list = api.get("/api/designer/flows", &li).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let list = list.body.as_array().unwrap().clone();
    let ids: Vec<&str> = list.iter().map(|f| f["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    for bundled in ["faq-hours", "guided-shopping", "order-status", "returns"] {
        assert!(ids.contains(&bundled), "{ids:?}");
    }
    let entry = |id: &str| list.iter().find(|f| f["id"] == id).unwrap().clone();
    assert_eq!(
        entry(NEW),
        json!({"id": NEW, "name": "Spring sale", "published_version": null,
               "draft_revision": 1, "nodes": 1})
    );
    let faq = entry("faq-hours");
    assert_eq!(faq["published_version"], 1);
    assert_eq!(faq["draft_revision"], 0);
    assert_eq!(faq["name"]["en"], "FAQ and business hours");
    assert!(faq["nodes"].as_u64().unwrap() > 10, "{faq}");

    // It behaves like any flow in the draft routes, without a published version.
    let draft = format!("/api/flows/{NEW}/draft");
    let publish = format!("/api/flows/{NEW}/publish");
    let loaded = api.get(&draft, &li).await;
    assert_eq!(loaded.status, StatusCode::OK, "{}", loaded.body);
    assert_eq!(loaded.body["revision"], 1);
    assert_eq!(loaded.body["published_version"], Value::Null);
    assert_eq!(loaded.body["document"], document);
    assert!(
        loaded.body["errors"].as_u64().unwrap() > 0,
        "{}",
        loaded.body
    );
    let versions = api.get(&format!("/api/flows/{NEW}/versions"), &li).await;
    assert_eq!(versions.status, StatusCode::OK, "{}", versions.body);
    assert_eq!(versions.body, json!([]));
    let refused = api.post(&publish, &root, None).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("before publishing"),
        "{}",
        refused.body
    );
    let analytics = format!("/api/flows/{NEW}/analytics");
    let unpublished = api.get(&analytics, &li).await;
    assert_eq!(
        unpublished.status,
        StatusCode::NOT_FOUND,
        "{}",
        unpublished.body
    );
    assert!(unpublished.body["error"].is_string());

    // Fixed and published as version 1.
    let whole = fixed(&document);
    let saved = api
        .put(&draft, &root, json!({"revision": 1, "document": whole}))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.body["revision"], 2);
    assert_eq!(saved.body["errors"], 0, "{}", saved.body);
    let pending = api
        .get(&format!("/api/flows/{NEW}/diff?from=draft&to=draft"), &li)
        .await;
    assert_eq!(pending.status, StatusCode::OK, "{}", pending.body);
    assert_eq!(pending.body["same"], true);
    let published = api
        .post(&publish, &root, Some(json!({"note": "first"})))
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    assert_eq!(published.body["version"], 1);
    assert_eq!(published.body["revision"], 3);
    let loaded = api.get(&draft, &li).await;
    assert_eq!(loaded.body["published_version"], 1);
    assert_eq!(loaded.body["document"]["version"], 1);
    let versions = api.get(&format!("/api/flows/{NEW}/versions"), &li).await;
    assert_eq!(versions.body[0]["version"], 1);
    assert_eq!(versions.body[0]["note"], "first");
    let diff = api
        .get(&format!("/api/flows/{NEW}/diff?from=draft&to=1"), &li)
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.body);
    assert_eq!(diff.body["same"], true, "{}", diff.body);
    let list = api.get("/api/designer/flows", &li).await;
    let listed = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == NEW)
        .unwrap()
        .clone();
    assert_eq!(
        (
            listed["published_version"].clone(),
            listed["draft_revision"].clone(),
            listed["nodes"].clone()
        ),
        (json!(1), json!(3), json!(3))
    );

    // Visitors run it; each conversation counts once per node and edge.
    for _ in 0..2 {
        let texts = visit(&server, NEW).await;
        assert_eq!(texts, ["Spring sale: 20% off!"]);
    }
    let expected = json!({
        "version": 1,
        "conversations": 2,
        "nodes": {
            "start": {"visits": 2, "drop_off": 0},
            "hello": {"visits": 2, "drop_off": 0},
            "done": {"visits": 2, "drop_off": 2},
        },
        "edges": [
            {"from": "hello", "port": "next", "to": "done", "visits": 2},
            {"from": "start", "port": "next", "to": "hello", "visits": 2},
        ],
    });
    let counted = api.get(&analytics, &li).await;
    assert_eq!(counted.status, StatusCode::OK, "{}", counted.body);
    assert_eq!(counted.body, expected);
    let by_version = api.get(&format!("{analytics}?version=1"), &root).await;
    assert_eq!(by_version.body, expected);
    for (path, status) in [
        (format!("{analytics}?version=2"), StatusCode::NOT_FOUND),
        (format!("{analytics}?version=two"), StatusCode::BAD_REQUEST),
        (
            "/api/flows/nope/analytics".to_owned(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let answer = api.get(&path, &li).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        assert!(answer.body["error"].is_string(), "{path}");
    }
    // A bundled flow's version has every node, counted or not.
    let faq = api.get("/api/flows/faq-hours/analytics", &li).await;
    assert_eq!(faq.status, StatusCode::OK, "{}", faq.body);
    assert_eq!(faq.body["version"], 1);
    assert_eq!(faq.body["conversations"], 0);
    assert_eq!(
        faq.body["nodes"]["welcome"],
        json!({"visits": 0, "drop_off": 0})
    );
    assert_eq!(faq.body["edges"], json!([]));
    server.stop().await;

    // After a restart the flow still runs (it is only in the database), and the counts go
    // on; what was counted last is written when the server stops.
    let server = Server::start(&dir, Options::default()).await;
    // (The server loads published versions before it accepts connections.)
    assert_eq!(visit(&server, NEW).await, ["Spring sale: 20% off!"]);
    assert_eq!(server.state.library().get(NEW).unwrap().version, 1);
    server.stop().await;
    let store =
        runtime::store::Store::connect(&format!("sqlite://{}", dir.join("kefu.db").display()))
            .await
            .unwrap();
    let stats = store.flow_stats(NEW, 1).await.unwrap();
    let start = stats
        .iter()
        .find(|s| s.node == "start" && s.port.is_empty())
        .unwrap();
    assert_eq!(start.visits, 3, "{stats:?}");
    store.close().await;
}

#[tokio::test]
async fn creating_a_flow_refuses_taken_ids_and_bad_names() {
    let (server, api, root, li, _dir) = server().await;
    let create = |id: &str, name: &str| json!({"id": id, "name": name});
    let made = api
        .post("/api/flows", &root, Some(create(NEW, "Sale")))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    // Exactly 64 characters, starting with a digit, and a Chinese name of 200 characters.
    let longest = format!("9{}", "a".repeat(63));
    let made = api
        .post(
            "/api/flows",
            &root,
            Some(create(&longest, &"促".repeat(200))),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);

    for (id, name, status, says) in [
        ("faq-hours", "FAQ", StatusCode::CONFLICT, "exists"),
        (NEW, "Again", StatusCode::CONFLICT, "exists"),
        ("", "x", StatusCode::BAD_REQUEST, "a–z"),
        ("Sale", "x", StatusCode::BAD_REQUEST, "a–z"),
        ("-sale", "x", StatusCode::BAD_REQUEST, "starting with"),
        ("_sale", "x", StatusCode::BAD_REQUEST, "starting with"),
        ("spring sale", "x", StatusCode::BAD_REQUEST, "a–z"),
        ("促销", "x", StatusCode::BAD_REQUEST, "a–z"),
        (&"a".repeat(65), "x", StatusCode::BAD_REQUEST, "64"),
        ("rust", "x", StatusCode::BAD_REQUEST, "reserved"),
        ("ok", "", StatusCode::BAD_REQUEST, "name"),
        ("ok", "   ", StatusCode::BAD_REQUEST, "name"),
        ("ok", &"n".repeat(201), StatusCode::BAD_REQUEST, "200"),
    ] {
        let answer = api.post("/api/flows", &root, Some(create(id, name))).await;
        assert_eq!(answer.status, status, "{id:?} {name:?}: {}", answer.body);
        let error = answer.body["error"].as_str().unwrap();
        assert!(error.contains(says), "{id:?}: {error}");
    }
    let malformed = api
        .post("/api/flows", &root, Some(json!({"id": "ok"})))
        .await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.body
    );
    assert!(malformed.body["error"].is_string());

    // Only admins, with the CSRF token; nothing was created by the refusals.
    let body = Some(create("by-agent", "x"));
    let agent = api.post("/api/flows", &li, body.clone()).await;
    assert_eq!(agent.status, StatusCode::FORBIDDEN);
    let forged = api
        .call("POST", "/api/flows", Some(&root), false, body.clone(), &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let nobody = api.call("POST", "/api/flows", None, true, body, &[]).await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    let list = api.get("/api/designer/flows", &li).await;
    let ids: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&"ok") && !ids.contains(&"by-agent"),
        "{ids:?}"
    );
    assert!(ids.contains(&NEW) && ids.contains(&longest.as_str()));
    let nobody = api
        .call("GET", "/api/designer/flows", None, false, None, &[])
        .await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    let nobody = api
        .call(
            "GET",
            "/api/flows/faq-hours/analytics",
            None,
            false,
            None,
            &[],
        )
        .await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    // `GET /api/flows` (open) is still the list of current versions.
    let open = api.call("GET", "/api/flows", None, false, None, &[]).await;
    assert_eq!(open.status, StatusCode::OK);
    // A draft of a flow that does not exist is still refused.
    let ghost = api
        .put(
            "/api/flows/ghost/draft",
            &root,
            json!({"revision": 0, "document": {}}),
        )
        .await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND, "{}", ghost.body);
    server.stop().await;
}

#[tokio::test]
async fn any_document_exports_as_rust() {
    let (server, api, root, li, _dir) = server().await;
    let created = api
        .post(
            "/api/flows",
            &root,
            Some(json!({"id": NEW, "name": "Sale"})),
        )
        .await;
    let whole = fixed(&created.body["document"]).to_string();

    // Agents and admins; the same module the version route gives for a published flow.
    let (status, content_type, code) =
        raw(&api, "POST", "/api/flows/rust", Some(&li), true, &whole).await;
    assert_eq!(status, StatusCode::OK, "{code}");
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert!(code.contains("Spring sale: 20% off!"), "{code}");
    let faq = serde_json::to_string(server.state.library().get("faq-hours").unwrap()).unwrap();
    let (status, _, from_document) =
        raw(&api, "POST", "/api/flows/rust", Some(&root), true, &faq).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, from_version) = raw(
        &api,
        "GET",
        "/api/flows/faq-hours/versions/1/rust",
        None,
        false,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(from_document, from_version);
    // An old schema is migrated, as import does.
    let v1 = json!({
      "schema_version": 1, "id": "old", "name": "Old flow",
      "nodes": [
        {"id": "start", "type": "start", "position": {"x": 10, "y": 20}},
        {"id": "done", "type": "end", "position": {"x": 250, "y": 20}}
      ],
      "edges": [{"source": "start.next", "target": "done"}]
    });
    let (status, _, code) = raw(
        &api,
        "POST",
        "/api/flows/rust",
        Some(&li),
        true,
        &v1.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{code}");

    // Refusals: a flow with errors, a document that is not a flow, no CSRF token, no session.
    let (status, _, body) = raw(
        &api,
        "POST",
        "/api/flows/rust",
        Some(&li),
        true,
        &created.body["document"].to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("has errors"),
        "{body}"
    );
    let (status, _, body) = raw(
        &api,
        "POST",
        "/api/flows/rust",
        Some(&li),
        true,
        "{\"schema_version\": 2,\n \"id\": ",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["error"].as_str().unwrap().contains("line 2"), "{body}");
    let (status, _, _) = raw(&api, "POST", "/api/flows/rust", Some(&li), false, &whole).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = raw(&api, "POST", "/api/flows/rust", None, false, &whole).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

/// Two servers on one PostgreSQL database (without NATS): what one creates and publishes, the
/// other lists and edits from the database, and runs after its restart.
#[tokio::test]
async fn a_new_flow_is_seen_by_another_node_through_the_database() {
    let Some(db) = crate::store::server_database("KEFU_TEST_POSTGRES_URL").await else {
        eprintln!("KEFU_TEST_POSTGRES_URL is unset, skipping");
        return;
    };
    let options = || Options {
        database_url: Some(db.url()),
        ..Options::default()
    };
    let (dir_a, dir_b) = (temp_dir("flow-api-a"), temp_dir("flow-api-b"));
    let a = Server::start(&dir_a, options()).await;
    let b = Server::start(&dir_b, options()).await;
    let api = Api::of(&a).await;
    let root = api.session("root", "pass-word").await;
    let on_b = |method: &'static str, uri: String, body: Option<Value>| {
        let state = std::sync::Arc::clone(&b.state);
        let root = root.clone();
        async move {
            let text = body.map(|b| b.to_string()).unwrap_or_default();
            let (status, _, text) = raw_on(&state, method, &uri, Some(&root), true, &text).await;
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };

    let created = api
        .post(
            "/api/flows",
            &root,
            Some(json!({"id": NEW, "name": "Sale"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // B lists it, refuses to create it again, and saves the fixed draft.
    let (status, list) = on_b("GET", "/api/designer/flows".to_owned(), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert!(
        list.as_array().unwrap().iter().any(|f| f["id"] == NEW),
        "{list}"
    );
    let (status, _) = on_b(
        "POST",
        "/api/flows".to_owned(),
        Some(json!({"id": NEW, "name": "Again"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let whole = fixed(&created.body["document"]);
    let (status, saved) = on_b(
        "PUT",
        format!("/api/flows/{NEW}/draft"),
        Some(json!({"revision": 1, "document": whole})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");

    // A publishes; B sees the version in the database at once (its runtime follows on the
    // NATS announcement in a cluster, or at its next start).
    let published = api
        .post(&format!("/api/flows/{NEW}/publish"), &root, None)
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    let (_, draft) = on_b("GET", format!("/api/flows/{NEW}/draft"), None).await;
    assert_eq!(draft["published_version"], 1, "{draft}");
    assert_eq!(visit(&a, NEW).await, ["Spring sale: 20% off!"]);
    // A's counts reach the database within about a second; B reads them there.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, counted) = on_b("GET", format!("/api/flows/{NEW}/analytics"), None).await;
        assert_eq!(status, StatusCode::OK, "{counted}");
        if counted["conversations"] == 1 {
            assert_eq!(counted["nodes"]["done"]["visits"], 1, "{counted}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{counted}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.stop().await;
    let b = Server::start(&dir_b, options()).await;
    assert_eq!(visit(&b, NEW).await, ["Spring sale: 20% off!"]);
    a.stop().await;
    b.stop().await;
    db.drop_database().await;
}
