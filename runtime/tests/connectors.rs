//! Connectors in the server: the bundled `connectors.yaml` answers the bundled flows' lookups
//! exactly as the demo catalogue's own code did; `kefu connectors check`; the admin API
//! (health, "test this entity", reload that keeps the old file on failure); the console's
//! customer panel.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use flows::Value;
use flows::engine::{LookupOutcome, LookupRequest};
use runtime::connect::{Live, Source};
use runtime::conversation::{Lookups, now_ms};
use runtime::demo::catalogue::Catalogue;
use serde_json::json;

use crate::chat::{Options, Server, Visitor, temp_dir};
use crate::console::Api;

fn request(entity: &str, operation: &str, params: &[(&str, Value)]) -> LookupRequest {
    LookupRequest {
        request: 1,
        node: "n".to_owned(),
        connector: "demo".to_owned(),
        entity: entity.to_owned(),
        operation: operation.to_owned(),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    }
}

/// Rows without null fields (the catalogue's code left them out; a connector answers null), with
/// `delivered_at` (milliseconds since the shifted delivery, computed from two clocks a few
/// milliseconds apart) rounded to the minute.
fn comparable(outcome: LookupOutcome) -> Result<Vec<BTreeMap<String, Value>>, String> {
    match outcome {
        LookupOutcome::Rows(rows) => Ok(rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .filter(|(_, v)| *v != Value::Null)
                    .map(|(k, v)| match (k.as_str(), &v) {
                        ("delivered_at", Value::Number(ms)) => {
                            (k, Value::Number((ms / 60_000.0).round()))
                        }
                        _ => (k, v),
                    })
                    .collect()
            })
            .collect()),
        LookupOutcome::Error(error) => Err(error),
    }
}

#[tokio::test]
async fn the_bundled_connectors_answer_like_the_demo_catalogue() {
    let dir = temp_dir("connectors-equal");
    let catalogue = Catalogue::open(&dir, now_ms()).await.unwrap();
    let live = Live::start(
        Source {
            file: None,
            data_dir: dir.to_path_buf(),
        },
        Some(catalogue.clone()),
    )
    .await
    .unwrap();
    let mut requests = Vec::new();
    for (category, preferences) in [
        ("phones", &["camera", "battery", "value", "gaming", ""][..]),
        ("laptops", &["performance", "portable", "value", ""][..]),
        ("earphones", &["anc", "sport", "value", ""][..]),
        ("accessories", &[""][..]),
    ] {
        for budget in [None, Some(1500.0), Some(4000.0), Some(99_999.0)] {
            for preference in preferences {
                let mut params = vec![("category", Value::String(category.to_owned()))];
                if let Some(budget) = budget {
                    params.push(("max_price", Value::Number(budget)));
                }
                if !preference.is_empty() {
                    params.push(("preference", Value::String((*preference).to_owned())));
                }
                requests.push(request("products", "find", &params));
            }
        }
    }
    for n in 1..=31 {
        let order = Value::String(format!("KF1000{n:02}"));
        requests.push(request("orders", "get", &[("order_no", order)]));
    }
    let mut compared = 0;
    let mut with_rows = 0;
    for request in &requests {
        let now = now_ms();
        let expected = comparable(catalogue.lookup(request, now).await);
        let actual = comparable(Lookups::lookup(&live, request, now).await);
        // The catalogue checks a category's preferences itself; the connector just finds none.
        if let Err(error) = &expected
            && error.contains("unknown preference")
        {
            assert_eq!(actual, Ok(Vec::new()), "{request:?}");
            continue;
        }
        match (&actual, &expected) {
            // The connector's error names where it came from.
            (Err(got), Err(want)) => assert!(got.ends_with(want.as_str()), "{got} / {want}"),
            _ => assert_eq!(actual, expected, "{request:?}"),
        }
        compared += 1;
        with_rows += usize::from(matches!(&expected, Ok(rows) if !rows.is_empty()));
    }
    assert!(
        compared > 60 && with_rows > 50,
        "{compared} compared, {with_rows} with rows"
    );
    // The order system's deliberate failure arrives as the connector's error.
    let failed = Lookups::lookup(
        &live,
        &request(
            "orders",
            "get",
            &[("order_no", Value::String("KF100009".into()))],
        ),
        now_ms(),
    )
    .await;
    assert!(matches!(failed, LookupOutcome::Error(e) if e.contains("timeout")));
    // What no connector declares still goes to the catalogue (its `create`s).
    let ticket = Lookups::lookup(
        &live,
        &request(
            "tickets",
            "create",
            &[
                ("email", Value::String("a@example.com".into())),
                ("message", Value::String("hello".into())),
            ],
        ),
        now_ms(),
    )
    .await;
    assert!(matches!(ticket, LookupOutcome::Rows(rows) if rows.len() == 1));
}

#[test]
fn kefu_connectors_check_lists_every_problem_with_its_place() {
    let dir = temp_dir("connectors-check");
    let kefu = env!("CARGO_BIN_EXE_kefu");
    let bundled = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/connectors.yaml");
    let ok = std::process::Command::new(kefu)
        .args(["connectors", "check", bundled])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(out.contains("demo (sqlite,"), "{out}");
    let broken = dir.join("connectors.yaml");
    std::fs::write(
        &broken,
        "connectors:\n  - name: erp\n    driver: mysql\n    dsn: \"root:s3cret@tcp(db:3306)/erp\"\n    data_map:\n      users:\n        fields:\n          id: \"user_id\"\n          name: \"(SELECT password FROM admins)\"\n          nick: \"nick -- comment\"\n  - name: erp\n    driver: oracle\n",
    )
    .unwrap();
    let bad = std::process::Command::new(kefu)
        .args(["connectors", "check"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    let path = broken.display().to_string();
    for expected in [
        format!("{path}:9:"),
        format!("{path}:10:"),
        format!("{path}:11:"),
        format!("{path}:12:"),
    ] {
        assert!(err.contains(&expected), "{expected} in:\n{err}");
    }
    assert!(!err.contains("s3cret"), "{err}");
}

#[tokio::test]
async fn admins_see_connectors_test_entities_and_reload_safely() {
    let dir = temp_dir("connectors-admin");
    let file = dir.join("connectors.yaml");
    std::fs::write(&file, runtime::connect::BUNDLED).unwrap();
    let server = Server::start(
        &dir,
        Options {
            catalogue: true,
            connectors: Some(file.clone()),
            ..Options::default()
        },
    )
    .await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let li = api.session("li", "pass-word").await;

    let list = api.get("/api/admin/connectors", &root).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let demo = &list.body["connectors"][0];
    assert_eq!(demo["name"], "demo");
    assert_eq!(demo["healthy"], true);
    assert_eq!(
        api.get("/api/admin/connectors", &li).await.status,
        StatusCode::FORBIDDEN
    );

    let test = |params| json!({"connector": "demo", "entity": "orders", "operation": "get", "params": params});
    let found = api
        .post(
            "/api/admin/connectors/test",
            &root,
            Some(test(json!({"order_no": "KF100001"}))),
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["rows"][0]["status"], "shipped");
    let refused = api
        .post(
            "/api/admin/connectors/test",
            &root,
            Some(test(json!({"nope": 1}))),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);

    // A broken file is refused with its problems, and the connectors in force go on.
    std::fs::write(
        &file,
        "connectors:\n  - name: demo\n    driver: sqlite\n    dsn: 42\n",
    )
    .unwrap();
    let reload = api.post("/api/admin/connectors/reload", &root, None).await;
    assert_eq!(
        reload.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reload.body
    );
    assert_eq!(reload.body["problems"][0]["line"], 4, "{}", reload.body);
    let still = api
        .post(
            "/api/admin/connectors/test",
            &root,
            Some(test(json!({"order_no": "KF100001"}))),
        )
        .await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.body);

    // A good file takes effect without a restart.
    let renamed = runtime::connect::BUNDLED.replace("      orders:\n", "      shipments:\n");
    std::fs::write(&file, renamed).unwrap();
    let reload = api.post("/api/admin/connectors/reload", &root, None).await;
    assert_eq!(reload.status, StatusCode::OK, "{}", reload.body);
    let moved = api
        .post(
            "/api/admin/connectors/test",
            &root,
            Some(
                json!({"connector": "demo", "entity": "shipments", "operation": "get",
                        "params": {"order_no": "KF100001"}}),
            ),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    server.stop().await;
}

#[tokio::test]
async fn the_console_shows_the_visitors_customer_record() {
    let dir = temp_dir("connectors-customer");
    let server = Server::start(
        &dir,
        Options {
            catalogue: true,
            ..Options::default()
        },
    )
    .await;
    let api = Api::of(&server).await;
    // An admin sees every conversation (an agent only the queue and their own).
    let root = api.session("root", "pass-word").await;
    let mut known = Visitor::connect(server.addr).await;
    known
        .send(
            json!({"type": "start", "flow": "order-status", "locale": "en",
                     "visitor": {"email": "wang.xiaoming@example.com"}}),
        )
        .await;
    let welcome = known.recv().await;
    let id = welcome["conversation"].as_str().unwrap().to_owned();
    let detail = api
        .get(&format!("/api/console/conversations/{id}"), &root)
        .await;
    let customer = &detail.body["context"]["customer"];
    assert_eq!(customer["source"], "demo.customers", "{}", detail.body);
    let fields: BTreeMap<String, serde_json::Value> =
        serde_json::from_value(customer["fields"].clone())
            .map(|pairs: Vec<(String, serde_json::Value)>| pairs.into_iter().collect())
            .unwrap();
    assert_eq!(fields["level"], "VIP");
    assert_eq!(fields["orders"].as_f64(), Some(23.0));

    // No identity: no panel. An unknown one: an empty record.
    let anonymous = Visitor::start(server.addr, "order-status", "en").await;
    let detail = api
        .get(
            &format!("/api/console/conversations/{}", anonymous.conversation),
            &root,
        )
        .await;
    assert!(
        detail.body["context"]["customer"].is_null(),
        "{}",
        detail.body
    );
    let mut stranger = Visitor::connect(server.addr).await;
    stranger
        .send(json!({"type": "start", "flow": "order-status", "visitor": {"email": "nobody@example.com"}}))
        .await;
    let id = stranger.recv().await["conversation"]
        .as_str()
        .unwrap()
        .to_owned();
    let detail = api
        .get(&format!("/api/console/conversations/{id}"), &root)
        .await;
    assert_eq!(detail.body["context"]["customer"]["fields"], json!([]));
    // A bad identity is refused at the start.
    let mut bad = Visitor::connect(server.addr).await;
    bad.send(json!({"type": "start", "flow": "order-status", "visitor": {"E-Mail": "x"}}))
        .await;
    let error = bad.recv().await;
    assert_eq!(error["code"], "bad_frame", "{error}");
    server.stop().await;
}

#[test]
fn the_server_refuses_to_start_with_a_broken_connectors_file() {
    let dir = temp_dir("connectors-refuse");
    let file = dir.join("connectors.yaml");
    std::fs::write(
        &file,
        "connectors:\n  - name: shop\n    driver: sqlite\n    dsn: \"sqlite://${DATA_DIR}/x.db\"\n    data_map:\n      orders:\n        fields: { id: \"id; DROP TABLE orders\" }\n",
    )
    .unwrap();
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap().to_string();
    drop(probe);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(["serve", "--addr", &addr, "--data-dir"])
        .arg(&*dir)
        .arg("--connectors")
        .arg(&file)
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_NATS_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("7:"), "the problem's line: {err}");
    assert!(err.contains("problem"), "{err}");
}

#[tokio::test]
async fn metrics_count_connector_calls_and_cache_hits() {
    use tower::ServiceExt;
    let dir = temp_dir("connectors-metrics");
    let server = Server::start(
        &dir,
        Options {
            catalogue: true,
            ..Options::default()
        },
    )
    .await;
    let api = Api::of(&server).await;
    let root = api.session("root", "pass-word").await;
    let find = json!({"connector": "demo", "entity": "products", "operation": "find",
                      "params": {"category": "phones", "max_price": 3000}});
    for _ in 0..2 {
        let found = api
            .post("/api/admin/connectors/test", &root, Some(find.clone()))
            .await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.body);
        assert!(!found.body["rows"].as_array().unwrap().is_empty());
    }
    // A scraper needs no session.
    let request = axum::http::Request::builder()
        .uri("/metrics")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = runtime::server::app(Arc::clone(&server.state))
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} in:\n{text}"))
    };
    // The products entity is cached (`ttl_ms`): one load, then an in-process hit.
    let products = r#"connector="demo",entity="products""#;
    assert_eq!(
        value(&format!(
            "kefu_cache_reads_total{{{products},result=\"load\"}}"
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            "kefu_cache_reads_total{{{products},result=\"l1\"}}"
        )),
        1.0
    );
    assert_eq!(value("kefu_connector_calls_total{connector=\"demo\"}"), 1.0);
    assert_eq!(value("kefu_cache_redis_up"), -1.0);
    assert!(
        text.contains("# TYPE kefu_connector_errors_total counter"),
        "{text}"
    );
    // The admin page's numbers: the hit ratio and the hot keys per cached entity.
    let list = api.get("/api/admin/connectors", &root).await;
    let cached = &list.body["connectors"][0]["cache"];
    let products = cached
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity"] == "products")
        .unwrap_or_else(|| panic!("{}", list.body));
    assert_eq!(products["hit_ratio"], 0.5);
    assert_eq!(products["loads"], 1);
    assert_eq!(list.body["cache"]["redis"], "off");
    server.stop().await;
}
