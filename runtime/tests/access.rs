//! Access control in the server (`docs/policies.md`, "In the server"): decisions explained
//! through the admin API (the seed's policy among them), temporary grants that expire and are
//! revoked, department sandboxes on the customer panel and the agent socket, connector tests
//! decided, and policy files with problems refused with every located problem.

use std::time::Duration;

use axum::http::StatusCode;
use runtime::conversation::now_ms;
use serde_json::{Value, json};

use crate::chat::{Options, Server, Visitor, temp_dir};
use crate::console::{Api, Session};

/// The demo customers used here (runtime/src/demo/catalogue.rs): a regular one and a VIP.
const REGULAR: &str = "zhang.wei@example.com";
const VIP: &str = "wang.xiaoming@example.com";

async fn server(name: &str) -> (Server, crate::chat::TempDir) {
    let dir = temp_dir(name);
    let server = Server::start(
        &dir,
        Options {
            catalogue: true,
            ..Options::default()
        },
    )
    .await;
    (server, dir)
}

/// A conversation of the customer `email`, handed to the queue, and claimed by `agent`.
async fn served(server: &Server, api: &Api, agent: &Session, email: &str) -> (String, Visitor) {
    let (id, visitor) = queued(server, email).await;
    let claim = api
        .post(
            &format!("/api/console/conversations/{id}/claim"),
            agent,
            None,
        )
        .await;
    assert_eq!(claim.status, StatusCode::OK, "{}", claim.body);
    (id, visitor)
}

/// A conversation of the customer `email`, waiting in the queue.
async fn queued(server: &Server, email: &str) -> (String, Visitor) {
    let mut visitor = Visitor::connect(server.addr).await;
    visitor
        .send(
            json!({"type": "start", "flow": "order-status", "locale": "en",
                     "visitor": {"email": email}}),
        )
        .await;
    let welcome = visitor.recv().await;
    let id = welcome["conversation"].as_str().unwrap().to_owned();
    visitor.conversation.clone_from(&id);
    visitor.bot_turn().await;
    visitor.say("agent").await;
    visitor
        .until(|f| f["body"]["code"] == "queue_position")
        .await;
    (id, visitor)
}

/// The agent WebSocket of `session`.
async fn agent_socket(
    addr: std::net::SocketAddr,
    session: &Session,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/ws/agent")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", session.cookie.parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

async fn check(api: &Api, admin: &Session, login: &str, action: &str, resource: &str) -> Value {
    let answer = api
        .post(
            "/api/admin/policy/check",
            admin,
            Some(
                json!({"subject": {"login": login}, "action": action, "resource": resource,
                        "context": {"channel": "console", "ip": "10.0.0.1"}}),
            ),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

#[tokio::test]
async fn decisions_are_explained_and_grants_allow_until_they_expire_or_are_revoked() {
    let (server, _dir) = server("access-decisions").await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let li = api.session("li", "pass-word").await;
    served(&server, &api, &li, REGULAR).await;

    // The decision table: (login, action, resource) → (effect, reason, decided by).
    let table = [
        (
            "li",
            "read",
            format!("customers::{REGULAR}"),
            "allow",
            "allowed",
            json!("policy-2"),
        ),
        (
            "li",
            "read",
            format!("customers::{VIP}"),
            "deny",
            "nothing_applied",
            json!(null),
        ),
        (
            "li",
            "export",
            format!("customers::{REGULAR}"),
            "deny",
            "nothing_matched",
            json!(null),
        ),
        (
            "li",
            "read",
            format!("orders::{REGULAR}"),
            "deny",
            "nothing_matched",
            json!(null),
        ),
        (
            "sales",
            "read",
            format!("customers::{REGULAR}"),
            "deny",
            "nothing_applied",
            json!(null),
        ),
        (
            "root",
            "read",
            format!("customers::{VIP}"),
            "allow",
            "allowed",
            json!("admins"),
        ),
        (
            "root",
            "delete",
            "orders::KF1".to_owned(),
            "allow",
            "allowed",
            json!("admins"),
        ),
    ];
    for (login, action, resource, effect, reason, by) in &table {
        let decision = check(&api, &root, login, action, resource).await;
        assert_eq!(
            decision["effect"], *effect,
            "{login} {action} {resource}: {decision}"
        );
        assert_eq!(
            decision["reason"], *reason,
            "{login} {action} {resource}: {decision}"
        );
        assert_eq!(
            decision["decided_by"], *by,
            "{login} {action} {resource}: {decision}"
        );
        assert!(
            decision["explanation"]
                .as_str()
                .unwrap()
                .contains(resource.as_str())
        );
    }
    let seed = check(&api, &root, "li", "read", &format!("customers::{REGULAR}")).await;
    assert_eq!(
        seed["matched"][0]["condition"], "contains(agent.service_history, resource.id)",
        "{seed}"
    );
    assert_eq!(seed["matched"][0]["outcome"], "applies", "{seed}");

    // Who may ask, and bad questions.
    let body = json!({"subject": {"login": "li"}, "action": "read", "resource": "customers::x"});
    let agent = api
        .post("/api/admin/policy/check", &li, Some(body.clone()))
        .await;
    assert_eq!(agent.status, StatusCode::FORBIDDEN);
    let no_csrf = api
        .call(
            "POST",
            "/api/admin/policy/check",
            Some(&root),
            false,
            Some(body),
            &[],
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let nobody = api
        .post(
            "/api/admin/policy/check",
            &root,
            Some(json!({"subject": {"login": "nobody"}, "action": "read", "resource": "customers::x"})),
        )
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND, "{}", nobody.body);
    let by_id = api
        .post(
            "/api/admin/policy/check",
            &root,
            Some(json!({"subject": {"id": "u-li"}, "action": "read",
                        "resource": format!("customers::{REGULAR}")})),
        )
        .await;
    assert_eq!(by_id.body["effect"], "allow", "{}", by_id.body);
    let malformed = api
        .post(
            "/api/admin/policy/check",
            &root,
            Some(json!({"subject": {"login": "li"}, "action": "read", "resource": "customers"})),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.body["error"].is_string());

    // A grant allows until it expires.
    let vip = format!("customers::{VIP}");
    let soon = now_ms() + 1500;
    let grant = api
        .post(
            "/api/admin/grants",
            &root,
            Some(
                json!({"subject": "agent:li", "actions": ["read"], "resource": vip,
                        "expires_at": soon, "reason": "ticket 4711"}),
            ),
        )
        .await;
    assert_eq!(grant.status, StatusCode::CREATED, "{}", grant.body);
    let short_id = grant.body["id"].as_str().unwrap().to_owned();
    assert_eq!(grant.body["granted_by"], "root");
    assert_eq!(grant.body["active"], true);
    let granted = check(&api, &root, "li", "read", &vip).await;
    assert_eq!(granted["effect"], "allow", "{granted}");
    assert_eq!(granted["decided_by"], short_id.as_str(), "{granted}");
    assert_eq!(
        check(&api, &root, "agent", "read", &vip).await["effect"],
        "deny"
    );
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(soon - now_ms() + 200).unwrap_or(0),
    ))
    .await;
    let expired = check(&api, &root, "li", "read", &vip).await;
    assert_eq!(expired["effect"], "deny", "{expired}");
    assert_eq!(expired["reason"], "nothing_applied", "{expired}");
    assert_eq!(expired["matched"][1]["id"], short_id.as_str(), "{expired}");
    assert_eq!(expired["matched"][1]["outcome"], "expired", "{expired}");

    // A team grant, then revoked.
    let team = api
        .post(
            "/api/admin/grants",
            &root,
            Some(
                json!({"subject": "team:sales", "actions": "read", "resource": "customers::*",
                        "expires_at": now_ms() + 3_600_000, "reason": "campaign"}),
            ),
        )
        .await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.body);
    let team_id = team.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        check(&api, &root, "sales", "read", &vip).await["effect"],
        "allow"
    );
    assert_eq!(
        check(&api, &root, "li", "read", &vip).await["effect"],
        "deny"
    );
    let list = api.get("/api/admin/grants", &root).await;
    assert_eq!(list.status, StatusCode::OK);
    let ids: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [team_id.as_str(), short_id.as_str()], "newest first");
    assert_eq!(list.body[0]["active"], true);
    assert_eq!(list.body[1]["active"], false, "expired grants stay listed");
    let revoke = api
        .delete(&format!("/api/admin/grants/{team_id}"), &root)
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    assert_eq!(
        check(&api, &root, "sales", "read", &vip).await["effect"],
        "deny"
    );
    let again = api
        .delete(&format!("/api/admin/grants/{team_id}"), &root)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    // Bad grants, and agents, are refused.
    for bad in [
        json!({"subject": "li", "actions": ["read"], "resource": "customers::*", "expires_at": 1}),
        json!({"subject": "agent:li", "actions": [], "resource": "customers::*", "expires_at": 1}),
        json!({"subject": "agent:li", "actions": ["read"], "resource": "customers", "expires_at": 1}),
    ] {
        let answer = api
            .post("/api/admin/grants", &root, Some(bad.clone()))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            answer.body
        );
        assert!(answer.body["error"].is_string());
    }
    let by_agent = api
        .post(
            "/api/admin/grants",
            &li,
            Some(
                json!({"subject": "agent:li", "actions": ["read"], "resource": "*",
                        "expires_at": now_ms() + 60_000}),
            ),
        )
        .await;
    assert_eq!(by_agent.status, StatusCode::FORBIDDEN);
    assert_eq!(
        api.get("/api/admin/grants", &li).await.status,
        StatusCode::FORBIDDEN
    );
    server.stop().await;
}

/// The customer panel's fields as a map.
fn fields(detail: &Value) -> serde_json::Map<String, Value> {
    detail["context"]["customer"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| (pair[0].as_str().unwrap().to_owned(), pair[1].clone()))
        .collect()
}

#[tokio::test]
async fn each_department_gets_its_own_view_and_never_another_ones() {
    let (server, _dir) = server("access-sandboxes").await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let li = api.session("li", "pass-word").await;
    let sales = api.session("sales", "sales").await;

    // The agent socket of the support agent, open while everything happens.
    let mut socket = agent_socket(server.addr, &li).await;

    let (for_li, _v1) = served(&server, &api, &li, REGULAR).await;
    let (for_sales, _v2) = served(&server, &api, &sales, REGULAR).await;
    let (vip_for_sales, _v3) = served(&server, &api, &sales, VIP).await;
    let (vip_waiting, _v4) = queued(&server, VIP).await;

    // The admin is not sandboxed: the whole record.
    let whole = api
        .get(&format!("/api/console/conversations/{for_li}"), &root)
        .await;
    let raw = fields(&whole.body);
    let text = |name: &str| raw[name].as_str().unwrap().to_owned();
    let (phone, email, name, note) = (text("phone"), text("email"), text("name"), text("note"));
    assert_eq!(email, REGULAR);

    // Support: phone and email masked, the rest whole; nothing unmasked anywhere in the answer.
    let support = api
        .get(&format!("/api/console/conversations/{for_li}"), &li)
        .await;
    assert_eq!(support.status, StatusCode::OK);
    let seen = fields(&support.body);
    assert_eq!(seen["phone"], policy::MaskKind::Phone.mask_str(&phone));
    assert_eq!(seen["email"], policy::MaskKind::Email.mask_str(&email));
    assert_eq!(seen["name"], name.as_str());
    let body = support.body.to_string();
    assert!(!body.contains(&phone) && !body.contains(&email), "{body}");

    // Sales: the email whole, phone and name masked, the note redacted.
    let other = api
        .get(&format!("/api/console/conversations/{for_sales}"), &sales)
        .await;
    let seen = fields(&other.body);
    assert_eq!(seen["email"], email.as_str());
    assert_eq!(seen["phone"], policy::MaskKind::Phone.mask_str(&phone));
    assert_eq!(seen["name"], policy::MaskKind::Name.mask_str(&name));
    assert_eq!(seen["note"], "***");
    let body = other.body.to_string();
    assert!(
        !body.contains(&phone) && !body.contains(&name) && !body.contains(&note),
        "{body}"
    );

    // Neither sees the other's conversation, so neither gets the other's view.
    for (id, who) in [(&for_sales, &li), (&for_li, &sales)] {
        let answer = api
            .get(&format!("/api/console/conversations/{id}"), who)
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
    }

    // Sales does not see VIP customers at all (the row filter), though it served this one.
    let vip = api
        .get(
            &format!("/api/console/conversations/{vip_for_sales}"),
            &sales,
        )
        .await;
    assert_eq!(
        vip.body["context"]["customer"]["fields"],
        json!([]),
        "{}",
        vip.body
    );
    assert!(
        vip.body["context"]["customer"]["error"]
            .as_str()
            .unwrap()
            .contains("not allowed")
    );
    assert!(!vip.body.to_string().contains("13812341234"));

    // A waiting conversation of a customer the agent never served: the panel says no.
    let denied = api
        .get(&format!("/api/console/conversations/{vip_waiting}"), &li)
        .await;
    assert_eq!(denied.status, StatusCode::OK);
    let panel = &denied.body["context"]["customer"];
    assert_eq!(panel["allowed"], false, "{panel}");
    assert_eq!(panel["fields"], json!([]));
    assert!(panel["error"].as_str().unwrap().starts_with("not allowed"));
    assert_eq!(panel["reason"], "nothing_applied");
    let body = denied.body.to_string();
    assert!(
        !body.contains("13812341234") && !body.contains(VIP),
        "{body}"
    );

    // What came over the support agent's socket meanwhile holds no customer field unmasked.
    let mut frames = Vec::new();
    loop {
        use futures_util::StreamExt;
        match tokio::time::timeout(Duration::from_millis(500), socket.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) => {
                frames.push(text.to_string());
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    assert!(!frames.is_empty(), "the socket said something");
    for frame in &frames {
        for secret in [&phone, &email, &note, &"13812341234".to_owned()] {
            assert!(!frame.contains(secret.as_str()), "{secret} in {frame}");
        }
    }

    // Every panel read left an audit record: who, what, the decision and the policy, from
    // where, how many rows were shown; and no masked value in any record.
    let trail = |actor: &str| {
        let query = runtime::audit::Query {
            actor: Some(actor.to_owned()),
            resource: Some("customers::".to_owned()),
            ..runtime::audit::Query::default()
        };
        let audit = server.state.audit.clone();
        async move { audit.search(query).await.unwrap().records }
    };
    let li_reads = trail("li").await;
    let read = |records: &[runtime::audit::StoredRecord], resource: &str| {
        records
            .iter()
            .find(|r| r.record.resource == resource)
            .map(|r| r.record.clone())
            .unwrap_or_else(|| panic!("no record of {resource}: {records:?}"))
    };
    let shown = read(&li_reads, &format!("customers::{REGULAR}"));
    assert_eq!(
        (shown.action.as_str(), shown.decision, shown.result_size),
        ("read", runtime::audit::Decision::Allow, Some(1))
    );
    assert_eq!(shown.policies, ["policy-2"]);
    assert_eq!(shown.ip.as_deref(), Some("10.0.0.7"));
    let refused = read(&li_reads, &format!("customers::{VIP}"));
    assert_eq!(
        (refused.decision, refused.result_size),
        (runtime::audit::Decision::Deny, None)
    );
    let outside = read(&trail("sales").await, &format!("customers::{VIP}"));
    assert_eq!(
        (outside.decision, outside.result_size),
        (runtime::audit::Decision::Allow, Some(0)),
        "allowed, but outside the department's view: nothing shown"
    );
    let every = runtime::audit::search_all(
        server.state.audit.dir().unwrap(),
        &runtime::audit::Query::default(),
    )
    .unwrap();
    assert!(every.len() >= 6, "{every:?}");
    let log = serde_json::to_string(&every).unwrap();
    for secret in [&phone, &note, &"13812341234".to_owned()] {
        assert!(!log.contains(secret.as_str()), "{secret} in the audit log");
    }
    server.stop().await;
}

#[tokio::test]
async fn connector_tests_are_decided_before_the_call() {
    let (server, _dir) = server("access-connectors").await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let test = |email: &str| {
        json!({"connector": "demo", "entity": "customers", "operation": "get",
               "params": {"email": email}})
    };
    let allowed = api
        .post("/api/admin/connectors/test", &root, Some(test(REGULAR)))
        .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);
    assert_eq!(
        allowed.body["rows"][0]["email"], REGULAR,
        "admins are not sandboxed"
    );

    // A deny beats the admins' allow: 403 with the explanation, and no data.
    let mut text = runtime::access::BUNDLED.to_owned();
    text.push_str(
        r#"
policy "no-vip-tests" {
  description = "nobody tests with VIP customers"
  effect = "deny"
  resources = ["customers::wang*"]
  actions = ["read"]
}
"#,
    );
    server.state.access.install(policy::load(&text).unwrap());
    let denied = api
        .post("/api/admin/connectors/test", &root, Some(test(VIP)))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    let error = denied.body["error"].as_str().unwrap();
    assert!(error.contains("no-vip-tests"), "{error}");
    assert!(denied.body.get("rows").is_none());
    let still = api
        .post("/api/admin/connectors/test", &root, Some(test(REGULAR)))
        .await;
    assert_eq!(still.status, StatusCode::OK);
    server.stop().await;
}

#[test]
fn policy_files_with_problems_are_refused_with_every_problem_located() {
    let dir = temp_dir("access-files");
    let file = dir.join("policies.kefu");
    std::fs::write(&file, runtime::access::BUNDLED).unwrap();
    let access = runtime::access::Access::load(Some(file.clone())).unwrap();
    let before = access.config().policies.len();

    let bad = r#"policy {
  effect = allow
  actions = ["read"]
  resources = ["customers::*"]
}
policy {
  effect = "allow"
  actions = ["read"]
  resources = ["customers::*"]
  condition = "contains(agnet.teams, \"x\")"
}
"#;
    std::fs::write(&file, bad).unwrap();
    let error = access.reload().unwrap_err();
    let located: Vec<(u32, u32)> = error
        .diagnostics()
        .unwrap()
        .0
        .iter()
        .map(|d| (d.line, d.column))
        .collect();
    assert!(located.len() >= 2, "{error}");
    assert_eq!(located[0].0, 2, "{error}");
    assert!(located.iter().any(|(line, _)| *line == 10), "{error}");
    assert_eq!(
        access.config().policies.len(),
        before,
        "the old policies stay"
    );
    assert!(runtime::access::Access::load(Some(file.clone())).is_err());

    // `kefu serve` refuses to start with it, and says where the problems are.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(["serve", "--addr", "127.0.0.1:0", "--policies"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("2:12"), "{stderr}");
}

#[tokio::test]
async fn policies_saved_in_the_admin_page_are_checked_whole_kept_as_revisions_and_followed() {
    let (server, _dir) = server("access-saved-policies").await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let li = api.session("li", "pass-word").await;
    served(&server, &api, &li, REGULAR).await;
    let regular = format!("customers::{REGULAR}");

    let shown = api.get("/api/admin/policies", &root).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["source"], "bundled");
    assert_eq!(shown.body["revision"], 0);
    assert_eq!(shown.body["text"], runtime::access::BUNDLED);
    let bundled = policy::load(runtime::access::BUNDLED).unwrap();
    assert_eq!(shown.body["policies"], bundled.policies.len());
    assert_eq!(shown.body["sandboxes"], bundled.sandboxes.len());

    // A text with problems: every one located, nothing saved, the old policies decide.
    let mut broken = runtime::access::BUNDLED.to_owned();
    let first_new_line = broken.lines().count() + 2;
    broken.push_str("\npolicy {\n  effect = \"alow\"\n  actions = [\"read\"]\n  resources = [\"customers::*\"]\n  condition = \"agnet.id == 1\"\n}\n");
    let refused = api
        .put(
            "/api/admin/policies",
            &root,
            json!({"text": broken, "revision": 0}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    let lines: Vec<u64> = refused.body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["line"].as_u64().unwrap())
        .collect();
    assert!(
        lines.contains(&(first_new_line as u64 + 1)),
        "{}",
        refused.body
    );
    assert!(
        lines.contains(&(first_new_line as u64 + 4)),
        "{}",
        refused.body
    );
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("nothing was saved")
    );
    assert_eq!(
        check(&api, &root, "li", "read", &regular).await["effect"],
        "allow"
    );
    assert_eq!(
        api.get("/api/admin/policies", &root).await.body["source"],
        "bundled"
    );

    // A good text: revision 1, in force at once, shown with its author.
    let mut stricter = runtime::access::BUNDLED.to_owned();
    stricter.push_str(&format!(
        "\npolicy \"no-regulars-for-li\" {{\n  effect = \"deny\"\n  subjects = [\"agent:li\"]\n  actions = [\"read\"]\n  resources = [\"customers::{REGULAR}\"]\n}}\n"
    ));
    let saved = api
        .put(
            "/api/admin/policies",
            &root,
            json!({"text": stricter, "revision": 0}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.body["source"], "database");
    assert_eq!(saved.body["revision"], 1);
    assert_eq!(saved.body["updated_by"], "root");
    assert_eq!(saved.body["policies"], bundled.policies.len() + 1);
    let decided = check(&api, &root, "li", "read", &regular).await;
    assert_eq!(decided["effect"], "deny", "{decided}");
    assert_eq!(decided["decided_by"], "no-regulars-for-li", "{decided}");

    // Someone saving over revision 0 again would lose revision 1: refused.
    let stale = api
        .put(
            "/api/admin/policies",
            &root,
            json!({"text": runtime::access::BUNDLED, "revision": 0}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(
        stale.body["error"].as_str().unwrap().contains("revision 1"),
        "{}",
        stale.body
    );
    // While saved policies are in force, the file is not read.
    let reload = api.post("/api/admin/policy/reload", &root, None).await;
    assert_eq!(
        reload.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reload.body
    );
    assert!(
        reload.body["error"]
            .as_str()
            .unwrap()
            .contains("admin page"),
        "{}",
        reload.body
    );
    assert_eq!(
        check(&api, &root, "li", "read", &regular).await["effect"],
        "deny"
    );

    // Another node (another `Access` on the same database) takes the newest revision.
    let other = runtime::access::Access::bundled();
    assert!(other.adopt_stored(&api.store).await.unwrap());
    assert_eq!(other.origin().revision, 1);
    assert_eq!(other.config().policies.len(), bundled.policies.len() + 1);
    assert!(
        !other.adopt_stored(&api.store).await.unwrap(),
        "nothing newer"
    );

    // Agents cannot read or change them.
    assert_eq!(
        api.get("/api/admin/policies", &li).await.status,
        StatusCode::FORBIDDEN
    );
    server.stop().await;
}

#[tokio::test]
async fn conversations_are_opened_as_the_policies_say_over_the_api_and_the_socket() {
    let (server, _dir) = server("access-conversations").await;
    let api = Api::of(&server).await;
    let li = api.session("li", "pass-word").await;
    let sales = api.session("sales", "sales").await;
    let (waiting, _visitor) = queued(&server, REGULAR).await;
    let path = format!("/api/console/conversations/{waiting}");

    // The bundled policy: every agent reads what waits in a queue.
    assert_eq!(api.get(&path, &sales).await.status, StatusCode::OK);

    // A deny for sales on waiting conversations beats it, over the API and the socket.
    let mut text = runtime::access::BUNDLED.to_owned();
    text.push_str(
        r#"
policy "sales-not-the-queue" {
  description = "sales does not read the support queue"
  effect = "deny"
  subjects = ["team:sales"]
  actions = ["read"]
  resources = ["conversations::*"]
  condition = "resource.status == \"waiting\""
}
"#,
    );
    server.state.access.install(policy::load(&text).unwrap());
    assert_eq!(
        api.get(&path, &sales).await.status,
        StatusCode::NOT_FOUND,
        "refused like a conversation that does not exist"
    );
    assert_eq!(api.get(&path, &li).await.status, StatusCode::OK);
    let open = |session: &Session| {
        let session = session.clone();
        let waiting = waiting.clone();
        let addr = server.addr;
        async move {
            use futures_util::{SinkExt, StreamExt};
            use tokio_tungstenite::tungstenite::Message;
            let mut socket = agent_socket(addr, &session).await;
            let frame = json!({"type": "open", "conversation": waiting, "last_seq": 0});
            socket.send(Message::text(frame.to_string())).await.unwrap();
            // The answer to the open: an error, or the conversation's messages.
            loop {
                let next = tokio::time::timeout(Duration::from_secs(5), socket.next())
                    .await
                    .expect("an answer to the open")
                    .unwrap()
                    .unwrap();
                let Message::Text(text) = next else { continue };
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "error" || frame["conversation"] == json!(waiting) {
                    return frame;
                }
            }
        }
    };
    // The queue, over HTTP and in the socket's `queue` frame, shows sales nothing of it.
    let queue = |session: &Session| {
        let session = session.clone();
        let api = &api;
        async move {
            let listed = api
                .get("/api/console/conversations?view=queue", &session)
                .await;
            assert_eq!(listed.status, StatusCode::OK);
            listed.body.as_array().unwrap().len()
        }
    };
    assert_eq!((queue(&sales).await, queue(&li).await), (0, 1));
    let queue_frame = |session: &Session| {
        let session = session.clone();
        let addr = server.addr;
        async move {
            use futures_util::StreamExt;
            use tokio_tungstenite::tungstenite::Message;
            let mut socket = agent_socket(addr, &session).await;
            // The queue frames of the next second (the feed renders changes 250 ms apart): the
            // last one is the queue as it is.
            let mut last = None;
            while let Ok(Some(Ok(message))) =
                tokio::time::timeout(Duration::from_millis(1000), socket.next()).await
            {
                let Message::Text(text) = message else {
                    continue;
                };
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "queue" {
                    last = Some(frame["conversations"].as_array().unwrap().len());
                }
            }
            last.expect("a queue frame")
        }
    };
    assert_eq!((queue_frame(&sales).await, queue_frame(&li).await), (0, 1));
    let refused = open(&sales).await;
    assert_eq!(refused["code"], "unknown_conversation", "{refused}");
    let followed = open(&li).await;
    assert_eq!(followed["type"], "message", "{followed}");

    // Each decision is in the audit trail with its policy.
    let records = server
        .state
        .audit
        .search(runtime::audit::Query {
            resource: Some(format!("conversations::{waiting}")),
            ..runtime::audit::Query::default()
        })
        .await
        .unwrap()
        .records;
    let by = |actor: &str, decision| {
        records
            .iter()
            .filter(|r| r.record.actor == actor && r.record.decision == decision)
            .count()
    };
    assert_eq!(
        by("sales", runtime::audit::Decision::Deny),
        2,
        "{records:?}"
    );
    assert!(
        by("li", runtime::audit::Decision::Allow) >= 2,
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .filter(|r| r.record.actor == "sales"
                && r.record.decision == runtime::audit::Decision::Deny)
            .all(|r| r.record.policies == ["sales-not-the-queue"])
    );
    server.stop().await;
}

#[tokio::test]
async fn flow_documents_leave_the_server_only_for_those_who_may_read_them() {
    let (server, _dir) = server("access-flows").await;
    let api = Api::of(&server).await;
    let li = api.session("li", "pass-word").await;
    let sales = api.session("sales", "sales").await;
    let paths = [
        "/api/flows/faq-hours/draft",
        "/api/flows/faq-hours/versions",
        "/api/flows/faq-hours/versions/1",
        "/api/flows/faq-hours/diff?from=1&to=draft",
    ];
    for path in paths {
        assert_eq!(api.get(path, &sales).await.status, StatusCode::OK, "{path}");
    }
    let mut text = runtime::access::BUNDLED.to_owned();
    text.push_str(
        r#"
policy "sales-no-faq" {
  effect = "deny"
  subjects = ["team:sales"]
  actions = ["read"]
  resources = ["flows::faq-*"]
}
"#,
    );
    server.state.access.install(policy::load(&text).unwrap());
    for path in paths {
        let refused = api.get(path, &sales).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        let error = refused.body["error"].as_str().unwrap();
        assert!(error.contains("sales-no-faq"), "{path}: {error}");
        assert_eq!(api.get(path, &li).await.status, StatusCode::OK, "{path}");
    }
    // Other flows stay readable for sales.
    let other = api.get("/api/flows/order-status/draft", &sales).await;
    assert_eq!(other.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn the_bots_lookups_are_shown_to_agents_through_their_departments_view() {
    let (server, _dir) = server("access-variables").await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let li = api.session("li", "pass-word").await;
    let mut text = runtime::access::BUNDLED.to_owned();
    text.push_str(
        "\nsandbox {\n  department = \"support\"\n  entity = \"orders\"\n  mask = { tracking_no = \"redact\", item_name = \"name\" }\n}\n",
    );
    server.state.access.install(policy::load(&text).unwrap());

    // The bot looks the order up (`save_as: order`), then the visitor asks for a person.
    let mut visitor = Visitor::connect(server.addr).await;
    visitor
        .send(json!({"type": "start", "flow": "order-status", "locale": "en"}))
        .await;
    let welcome = visitor.recv().await;
    let id = welcome["conversation"].as_str().unwrap().to_owned();
    visitor.conversation.clone_from(&id);
    visitor.bot_turn().await;
    visitor.say("KF100001").await;
    visitor.bot_turn().await;
    visitor.choose("agent").await;
    visitor
        .until(|f| f["body"]["code"] == "queue_position")
        .await;
    let claim = api
        .post(&format!("/api/console/conversations/{id}/claim"), &li, None)
        .await;
    assert_eq!(claim.status, StatusCode::OK, "{}", claim.body);

    let path = format!("/api/console/conversations/{id}");
    let whole = api.get(&path, &root).await.body["context"]["variables"]["order"].clone();
    let tracking = whole["tracking_no"].as_str().unwrap().to_owned();
    let item = whole["item_name"].as_str().unwrap().to_owned();
    assert!(!tracking.is_empty() && item.chars().count() > 1, "{whole}");

    let seen = api.get(&path, &li).await.body;
    let order = &seen["context"]["variables"]["order"];
    assert_eq!(order["tracking_no"], "***", "{order}");
    assert_eq!(order["item_name"], policy::MaskKind::Name.mask_str(&item));
    assert_eq!(order["order_no"], "KF100001", "unmasked fields stay");
    // (The transcript still holds what the bot told the visitor from that lookup: messages
    // are shown as they were sent.)
    let variables = seen["context"]["variables"].to_string();
    assert!(
        !variables.contains(&tracking) && !variables.contains(&item),
        "{variables}"
    );

    // Rows elsewhere in the variables (a button's chosen row, a sub-flow's outputs): any map
    // with the entity's key field is taken as one of its rows; with no flow known, too.
    let row = |no: &str| {
        flows::Value::Map(
            [
                ("order_no", flows::Value::String(no.to_owned())),
                ("tracking_no", flows::Value::String("SF123".to_owned())),
                ("item_name", flows::Value::String("Kite".to_owned())),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        )
    };
    let variables = std::collections::BTreeMap::from([
        ("picked".to_owned(), row("KF1")),
        (
            "outputs".to_owned(),
            flows::Value::Map(std::collections::BTreeMap::from([(
                "orders".to_owned(),
                flows::Value::List(vec![row("KF2"), flows::Value::Number(3.0)]),
            )])),
        ),
        ("budget".to_owned(), flows::Value::Number(3000.0)),
    ]);
    let user = api.store.user_by_login("li").await.unwrap().unwrap().0;
    let Ok(seen) = runtime::access::variables_in_view(&server.state, &user, None, variables).await
    else {
        panic!("variables_in_view failed");
    };
    let text = serde_json::to_string(&seen).unwrap();
    assert!(!text.contains("SF123") && !text.contains("Kite"), "{text}");
    assert!(text.contains("KF1") && text.contains("KF2"), "{text}");
    assert_eq!(seen["budget"], flows::Value::Number(3000.0));
    server.stop().await;
}

#[tokio::test]
async fn a_temporary_grant_lets_someone_who_is_not_an_admin_read_the_audit_trail() {
    let (server, _dir) = server("access-audit-grant").await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let li = api.session("li", "pass-word").await;
    for path in ["/api/admin/audit", "/api/admin/audit/export"] {
        let refused = api.get(path, &li).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            refused.body["error"]
                .as_str()
                .unwrap()
                .contains("not allowed"),
            "{}",
            refused.body
        );
    }
    let granted = api
        .post(
            "/api/admin/grants",
            &root,
            Some(json!({"subject": "agent:li", "actions": ["read", "export"],
                        "resource": "audit::*", "expires_at": now_ms() + 3_600_000,
                        "reason": "legal review"})),
        )
        .await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.body);
    let grant = granted.body["id"].as_str().unwrap().to_owned();
    let page = api.get("/api/admin/audit?actor=li", &li).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let records = page.body["records"].as_array().unwrap();
    assert!(
        records
            .iter()
            .any(|r| r["record"]["resource"] == "audit::trail" && r["record"]["decision"] == "deny"),
        "li's refused reads are in the trail: {records:?}"
    );
    assert_eq!(
        api.get("/api/admin/audit/export", &li).await.status,
        StatusCode::OK
    );
    let revoked = api
        .delete(&format!("/api/admin/grants/{grant}"), &root)
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/api/admin/audit", &li).await.status,
        StatusCode::FORBIDDEN
    );
    // The trail says who read it, allowed by which grant.
    let trail = api.get("/api/admin/audit?resource=audit::", &root).await;
    let reads: Vec<&Value> = trail.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["record"]["actor"] == "li" && r["record"]["decision"] == "allow")
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(
        reads
            .iter()
            .all(|r| r["record"]["policies"] == json!([grant]))
    );
    server.stop().await;
}

#[tokio::test]
async fn accounts_and_teams_created_by_admins_are_in_the_audit_trail() {
    let (server, _dir) = server("access-admin-changes").await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let team = api
        .post(
            "/api/admin/teams",
            &root,
            Some(json!({"id": "legal", "name": "法务 · Legal"})),
        )
        .await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.body);
    let user = api
        .post(
            "/api/admin/users",
            &root,
            Some(
                json!({"login": "wang", "name": "王律师", "password": "pass-word-1",
                        "role": "agent", "team": "legal"}),
            ),
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED, "{}", user.body);
    let records = server
        .state
        .audit
        .search(runtime::audit::Query {
            action: Some("create".to_owned()),
            ..runtime::audit::Query::default()
        })
        .await
        .unwrap()
        .records;
    let made: Vec<(&str, &str, Option<&str>)> = records
        .iter()
        .map(|r| {
            (
                r.record.actor.as_str(),
                r.record.resource.as_str(),
                r.record.ip.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        made,
        [
            ("root", "accounts::wang", Some("10.0.0.7")),
            ("root", "teams::legal", Some("10.0.0.7"))
        ]
    );
    assert!(
        !serde_json::to_string(&records)
            .unwrap()
            .contains("pass-word-1"),
        "no password in the trail"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_agent_who_served_a_customer_still_has_served_them_after_a_transfer() {
    let (server, _dir) = server("access-history").await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let li = api.session("li", "pass-word").await;
    let resource = format!("customers::{REGULAR}");
    assert_eq!(
        check(&api, &root, "li", "read", &resource).await["effect"],
        "deny"
    );
    let (id, _visitor) = served(&server, &api, &li, REGULAR).await;
    assert_eq!(
        check(&api, &root, "li", "read", &resource).await["effect"],
        "allow"
    );
    // Back to the queue: li no longer has it, but served this customer.
    let transfer = api
        .post(
            &format!("/api/console/conversations/{id}/transfer"),
            &li,
            Some(json!({"team": "support"})),
        )
        .await;
    assert_eq!(transfer.status, StatusCode::OK, "{}", transfer.body);
    let decided = check(&api, &root, "li", "read", &resource).await;
    assert_eq!(decided["effect"], "allow", "{decided}");
    assert_eq!(decided["decided_by"], "policy-2");
    server.stop().await;
}

#[tokio::test]
async fn with_a_secret_only_identities_the_site_signed_make_a_customer_served() {
    let dir = temp_dir("access-identity");
    let server = Server::start(
        &dir,
        Options {
            catalogue: true,
            identity_secret: Some("shop-secret".to_owned()),
            ..Options::default()
        },
    )
    .await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let li = api.session("li", "pass-word").await;
    let resource = format!("customers::{REGULAR}");
    // The shop's server side signs its customer (the demo does it at /demo/api/identity).
    let identity = api
        .get(&format!("/demo/api/identity?email={REGULAR}"), &root)
        .await
        .body;
    let signature = identity["signature"].as_str().unwrap().to_owned();
    let expected = runtime::identity::sign(
        b"shop-secret",
        &std::collections::BTreeMap::from([("email".to_owned(), REGULAR.to_owned())]),
    );
    assert_eq!(signature, expected);
    let stranger = api
        .get("/demo/api/identity?email=someone@else.com", &root)
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);

    // Anyone can claim an email: unsigned (or signed for another email), it is dropped.
    let claim = |visitor: Value| {
        let api = &api;
        let li = &li;
        let addr = server.addr;
        async move {
            let mut socket = Visitor::connect(addr).await;
            socket
                .send(json!({"type": "start", "flow": "order-status", "locale": "en", "visitor": visitor}))
                .await;
            let id = socket.recv().await["conversation"]
                .as_str()
                .unwrap()
                .to_owned();
            socket.conversation.clone_from(&id);
            socket.bot_turn().await;
            socket.say("agent").await;
            socket
                .until(|f| f["body"]["code"] == "queue_position")
                .await;
            let claimed = api
                .post(&format!("/api/console/conversations/{id}/claim"), li, None)
                .await;
            assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.body);
            let detail = api
                .get(&format!("/api/console/conversations/{id}"), li)
                .await;
            detail.body["context"]["customer"].clone()
        }
    };
    let unsigned = claim(json!({"email": REGULAR})).await;
    assert_eq!(unsigned, Value::Null, "no identity, no panel");
    let wrong = claim(
        json!({"email": REGULAR, "signature": runtime::identity::sign(
            b"shop-secret",
            &std::collections::BTreeMap::from([("email".to_owned(), VIP.to_owned())]),
        )}),
    )
    .await;
    assert_eq!(wrong, Value::Null, "a signature for another email");
    assert_eq!(
        check(&api, &root, "li", "read", &resource).await["effect"],
        "deny",
        "claimed identities do not make li have served the customer"
    );

    let signed = claim(json!({"email": REGULAR, "signature": signature})).await;
    assert_eq!(signed["allowed"], true, "{signed}");
    assert_eq!(
        check(&api, &root, "li", "read", &resource).await["effect"],
        "allow"
    );
    server.stop().await;
}
