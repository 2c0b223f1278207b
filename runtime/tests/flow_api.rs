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
