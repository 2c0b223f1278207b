//! The drivers against real peers: SQLite on a temporary file (always), MariaDB/MySQL and
//! PostgreSQL when `KEFU_TEST_MYSQL_URL` / `KEFU_TEST_POSTGRES_URL` are set, a REST service
//! (axum, in this process), and a SOAP service written with spyne (Python; skipped with a
//! message when `python3 -c "import spyne"` fails — `pip install spyne lxml`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use connectors::http::HttpDriver;
use connectors::sql::SqlDriver;
use connectors::{
    Connector, ConnectorError, Connectors, Driver, DriverKind, Entity, Field, FieldSource,
    FieldType, Filter, FilterOp, Operation, Params, Registry, RequestTemplate, SqlExpr, Target,
};
use flows::Value;
use sqlx::{AssertSqlSafe, Connection, Executor};

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn n(x: f64) -> Value {
    Value::Number(x)
}

fn params(pairs: &[(&str, Value)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("kefu_conn_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

fn connector(name: &str, driver: DriverKind, target: Target, entities: Vec<Entity>) -> Connector {
    Connector {
        name: name.to_owned(),
        driver,
        target,
        timeout: Duration::from_secs(5),
        retries: 2,
        pool_size: 4,
        breaker_failures: 5,
        breaker_cooldown: Duration::from_secs(30),
        entities: entities.into_iter().map(|e| (e.name.clone(), e)).collect(),
    }
}

fn sql_field(name: &str, sql: &str, columns: &[&str], ty: FieldType) -> Field {
    Field {
        name: name.to_owned(),
        source: FieldSource::Sql(SqlExpr {
            sql: sql.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        }),
        ty,
        hidden: false,
    }
}

fn expr(sql: &str, columns: &[&str]) -> SqlExpr {
    SqlExpr {
        sql: sql.to_owned(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
    }
}

fn filter(field: &str, op: FilterOp, required: bool) -> Filter {
    Filter {
        field: field.to_owned(),
        op,
        required,
        default: None,
    }
}

// ---------------------------------------------------------------------------------------------
// SQL

/// The customers entity for a dialect; `table` may be schema-qualified.
fn customers(kind: DriverKind, table: &str, error_field: bool) -> Entity {
    let concat = match kind {
        DriverKind::MySql => "concat(first_name, ' ', last_name)",
        _ => "first_name || ' ' || last_name",
    };
    let mut operations = BTreeMap::new();
    operations.insert("get".to_owned(), Operation::Get);
    operations.insert(
        "by_name".to_owned(),
        Operation::Search {
            filters: BTreeMap::from([(
                "name".to_owned(),
                filter("name", FilterOp::Contains, true),
            )]),
            order_by: vec![(expr("last_name", &["last_name"]), false)],
            limit: 10,
            distinct_by: None,
        },
    );
    operations.insert(
        "by_tier".to_owned(),
        Operation::Search {
            filters: BTreeMap::from([
                ("tier".to_owned(), filter("tier", FilterOp::Eq, true)),
                ("min_id".to_owned(), filter("id", FilterOp::Ge, false)),
            ]),
            order_by: vec![(expr("id", &["id"]), true)], // descending
            limit: 10,
            distinct_by: None,
        },
    );
    operations.insert(
        "pages".to_owned(),
        Operation::List {
            filters: BTreeMap::from([(
                "min_balance".to_owned(),
                filter("balance", FilterOp::Ge, false),
            )]),
            order_by: vec![(expr("id", &["id"]), false)],
            max_page_size: 2,
        },
    );
    let mut fields = vec![
        sql_field("id", "id", &["id"], FieldType::Auto),
        sql_field(
            "name",
            concat,
            &["first_name", "last_name"],
            FieldType::Auto,
        ),
        sql_field(
            "tier",
            "CASE WHEN balance > 100 THEN 'gold' ELSE 'basic' END",
            &["balance"],
            FieldType::Auto,
        ),
        sql_field("balance", "balance", &["balance"], FieldType::Auto),
        sql_field("big", "big", &["big"], FieldType::Auto),
        sql_field("active", "active", &["active"], FieldType::Bool),
        sql_field("active_auto", "active", &["active"], FieldType::Auto),
        sql_field("tags", "tags", &["tags"], FieldType::Json),
        sql_field("id_text", "id", &["id"], FieldType::Text),
        sql_field("ratio", "ratio", &["ratio"], FieldType::Auto),
    ];
    if error_field {
        fields.push(sql_field("err", "err", &["err"], FieldType::Auto));
    }
    Entity {
        name: if error_field { "checked" } else { "customers" }.to_owned(),
        table: Some(table.to_owned()),
        key: "id".to_owned(),
        fields,
        error_field: error_field.then(|| "err".to_owned()),
        operations,
        ttl: None,
        level1: true,
    }
}

fn create_table_sql(kind: DriverKind, table: &str) -> Vec<String> {
    let (decimal, boolean, float) = match kind {
        DriverKind::MySql => ("DECIMAL(10,2)", "BOOLEAN", "DOUBLE"),
        DriverKind::Postgres => ("NUMERIC(10,2)", "BOOLEAN", "DOUBLE PRECISION"),
        _ => ("NUMERIC", "BOOLEAN", "REAL"),
    };
    vec![
        format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY, first_name VARCHAR(50), last_name VARCHAR(50), \
             balance {decimal}, big BIGINT, active {boolean}, tags TEXT, ratio {float}, err VARCHAR(100))"
        ),
        format!(
            "INSERT INTO {table} VALUES \
             (1, 'Ann', 'Lee', 150.50, 9007199254740000, TRUE, '[\"vip\",\"eu\"]', 0.25, NULL), \
             (2, 'Bob', 'O''Hara', 20.00, 5, FALSE, '[]', 1.5, 'account locked'), \
             (3, 'Cid', '50%_Off', 0, -7, TRUE, '[]', NULL, '')"
        ),
    ]
}

fn get_one(rows: &connectors::Rows) -> &BTreeMap<String, Value> {
    assert_eq!(rows.len(), 1, "one row expected: {rows:?}");
    &rows[0]
}

/// The whole SQL suite for one dialect, on a table that already holds the three rows.
async fn sql_suite(kind: DriverKind, url: &str, table: &str) {
    let target = Target::Database {
        url: url.to_owned(),
    };
    let config = Connectors {
        customer: None,
        connectors: vec![connector(
            "erp",
            kind,
            target.clone(),
            vec![customers(kind, table, false), customers(kind, table, true)],
        )],
    };
    let registry = Registry::connect(config.clone())
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: connect: {e}"));
    let call = |entity: &'static str, op: &'static str, p: Params| {
        let registry = &registry;
        async move { registry.call("erp", entity, op, &p).await }
    };

    // get: expressions (concat / ||, CASE), DECIMAL/NUMERIC, BIGINT, bool, JSON.
    let rows = call("customers", "get", params(&[("id", n(1.0))]))
        .await
        .expect("get 1");
    let row = get_one(&rows);
    assert_eq!(row["id"], n(1.0), "{kind:?}");
    assert_eq!(row["name"], s("Ann Lee"), "{kind:?}");
    assert_eq!(row["tier"], s("gold"), "{kind:?}");
    assert_eq!(row["balance"], n(150.5), "{kind:?}");
    assert_eq!(row["big"], n(9007199254740000.0), "{kind:?}");
    assert_eq!(row["active"], Value::Bool(true), "{kind:?}");
    // Auto: a real boolean column (PostgreSQL BOOL, MySQL TINYINT(1)) is a boolean; SQLite
    // keeps booleans as integers.
    let expected_active = if kind == DriverKind::Sqlite {
        n(1.0)
    } else {
        Value::Bool(true)
    };
    assert_eq!(row["active_auto"], expected_active, "{kind:?}");
    assert_eq!(
        row["tags"],
        Value::List(vec![s("vip"), s("eu")]),
        "{kind:?}"
    );
    assert_eq!(row["id_text"], s("1"), "{kind:?}");
    assert_eq!(row["ratio"], n(0.25), "{kind:?}");

    // A key given as text still finds the integer row (bound to suit the column).
    let rows = call("customers", "get", params(&[("id", s("2"))]))
        .await
        .expect("get '2'");
    assert_eq!(get_one(&rows)["name"], s("Bob O'Hara"));
    assert_eq!(get_one(&rows)["ratio"], n(1.5));
    // No such row.
    let rows = call("customers", "get", params(&[("id", n(99.0))]))
        .await
        .expect("get 99");
    assert!(rows.is_empty());
    // NULL → null.
    let rows = call("customers", "get", params(&[("id", n(3.0))]))
        .await
        .expect("get 3");
    assert_eq!(get_one(&rows)["ratio"], Value::Null);

    // search: contains with LIKE's wildcards as data.
    let rows = call("customers", "by_name", params(&[("name", s("Lee"))]))
        .await
        .expect("search Lee");
    assert_eq!(rows.len(), 1);
    let rows = call("customers", "by_name", params(&[("name", s("%_"))]))
        .await
        .expect("search %_");
    assert_eq!(rows.len(), 1, "{kind:?}: % and _ are escaped: {rows:?}");
    assert_eq!(rows[0]["id"], n(3.0));
    // SQL injection text is only data.
    let rows = call(
        "customers",
        "by_name",
        params(&[("name", s("' OR 1=1 --"))]),
    )
    .await
    .expect("injection");
    assert!(rows.is_empty(), "{kind:?}: {rows:?}");
    let rows = call(
        "customers",
        "by_tier",
        params(&[("tier", s("x' OR '1'='1"))]),
    )
    .await
    .expect("injection eq");
    assert!(rows.is_empty());
    // Filters on expressions, order_by DESC, an optional filter.
    let rows = call("customers", "by_tier", params(&[("tier", s("basic"))]))
        .await
        .expect("by tier");
    let ids: Vec<&Value> = rows.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, vec![&n(3.0), &n(2.0)], "{kind:?}");
    let rows = call(
        "customers",
        "by_tier",
        params(&[("tier", s("basic")), ("min_id", n(3.0))]),
    )
    .await
    .expect("by tier, min id");
    assert_eq!(rows.len(), 1);

    // list: pages.
    let rows = call(
        "customers",
        "pages",
        params(&[("page", n(2.0)), ("page_size", n(1.0))]),
    )
    .await
    .expect("page 2");
    assert_eq!(get_one(&rows)["id"], n(2.0));
    let rows = call("customers", "pages", params(&[("min_balance", n(10.0))]))
        .await
        .expect("min balance");
    assert_eq!(rows.len(), 2);
    let err = call("customers", "pages", params(&[("page_size", n(3.0))]))
        .await
        .expect_err("page size over the max");
    assert!(
        matches!(&err, ConnectorError::Request(m) if m.contains("page_size") && m.contains("1 to 2")),
        "{err:?}"
    );

    // Parameter checks.
    let err = call("customers", "by_name", params(&[("nmae", s("x"))]))
        .await
        .expect_err("unknown + missing");
    match &err {
        ConnectorError::Request(m) => {
            assert!(
                m.contains("`nmae`") && m.contains("missing") && m.contains("`name`"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    let err = call("customers", "get", params(&[("id", Value::List(vec![]))]))
        .await
        .expect_err("a list is no key");
    assert!(matches!(err, ConnectorError::Request(_)), "{err:?}");

    // error_field.
    let err = call("checked", "get", params(&[("id", n(2.0))]))
        .await
        .expect_err("error field");
    assert!(
        matches!(&err, ConnectorError::Remote(m) if m.contains("account locked")),
        "{err:?}"
    );
    let rows = call("checked", "get", params(&[("id", n(3.0))]))
        .await
        .expect("empty error field");
    assert!(!get_one(&rows).contains_key("err"));

    // ping and stats.
    for (name, result) in registry.ping_all().await {
        assert!(result.is_ok(), "{name}: {result:?}");
    }
    let stats = registry.stats();
    assert_eq!(stats[0].name, "erp");
    assert!(stats[0].calls >= 15);
    assert!(stats[0].latency_p99.is_some());
    assert!(!stats[0].target.contains("s3cret"));

    // A field map naming a column the table lacks is refused at connect.
    let mut bad = customers(kind, table, false);
    bad.fields.push(sql_field(
        "phone",
        "phone_no",
        &["phone_no"],
        FieldType::Auto,
    ));
    let err = SqlDriver::connect(&connector("erp", kind, target, vec![bad]))
        .await
        .err()
        .expect("unknown column refused");
    let text = err.to_string();
    for part in ["`erp`", "`customers`", "`phone`", "`phone_no`"] {
        assert!(text.contains(part), "{kind:?}: {part} in {text}");
    }
}

#[tokio::test]
async fn sqlite_driver() {
    let path = std::env::temp_dir().join(format!("{}.db", unique()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    {
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("sqlite file");
        for sql in create_table_sql(DriverKind::Sqlite, "customers") {
            conn.execute(AssertSqlSafe(sql)).await.expect("setup");
        }
    }
    sql_suite(DriverKind::Sqlite, &url, "customers").await;
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn mysql_driver() {
    let Ok(url) = std::env::var("KEFU_TEST_MYSQL_URL") else {
        eprintln!("skipped: KEFU_TEST_MYSQL_URL is not set");
        return;
    };
    let db = unique();
    let mut conn = sqlx::MySqlConnection::connect(&url)
        .await
        .expect("MySQL connection");
    conn.execute(AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .await
        .expect("create database");
    let table = format!("{db}.customers");
    for sql in create_table_sql(DriverKind::MySql, &table) {
        conn.execute(AssertSqlSafe(sql)).await.expect("setup");
    }
    sql_suite(DriverKind::MySql, &url, &table).await;
    conn.execute(AssertSqlSafe(format!("DROP DATABASE {db}")))
        .await
        .expect("drop database");
}

#[tokio::test]
async fn postgres_driver() {
    let Ok(url) = std::env::var("KEFU_TEST_POSTGRES_URL") else {
        eprintln!("skipped: KEFU_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = unique();
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .expect("PostgreSQL connection");
    conn.execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .expect("create schema");
    let table = format!("{schema}.customers");
    for sql in create_table_sql(DriverKind::Postgres, &table) {
        conn.execute(AssertSqlSafe(sql)).await.expect("setup");
    }
    sql_suite(DriverKind::Postgres, &url, &table).await;
    conn.execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await
        .expect("drop schema");
}

#[tokio::test]
async fn credentials_never_appear_in_errors() {
    for (kind, url) in [
        (
            DriverKind::MySql,
            "mysql://kefu:Sup3rS3cretPw@127.0.0.1:1/erp",
        ),
        (
            DriverKind::Postgres,
            "postgres://kefu:Sup3rS3cretPw@127.0.0.1:1/erp",
        ),
    ] {
        let mut c = connector(
            "erp",
            kind,
            Target::Database {
                url: url.to_owned(),
            },
            vec![],
        );
        c.timeout = Duration::from_secs(2);
        let err = SqlDriver::connect(&c).await.err().expect("nothing listens");
        let text = err.to_string();
        assert!(matches!(err, ConnectorError::Unavailable(_)), "{err:?}");
        assert!(!text.contains("Sup3rS3cretPw"), "{text}");
        assert!(text.contains("kefu:***@127.0.0.1:1"), "{text}");
    }
    // A wrong password against the real server: refused, and the text has no password.
    if let Ok(url) = std::env::var("KEFU_TEST_POSTGRES_URL") {
        let url = url.replacen(
            "postgres://postgres@",
            "postgres://nobody_kefu:Sup3rS3cretPw@",
            1,
        );
        let c = connector(
            "erp",
            DriverKind::Postgres,
            Target::Database { url },
            vec![],
        );
        if let Err(err) = SqlDriver::connect(&c).await {
            assert!(!err.to_string().contains("Sup3rS3cretPw"), "{err}");
        }
    }
    // REST: header values never appear.
    let mut headers = BTreeMap::new();
    headers.insert(
        "Authorization".to_owned(),
        "Bearer Sup3rS3cretPw".to_owned(),
    );
    let c = connector(
        "crm",
        DriverKind::Http,
        Target::Service {
            base_url: "http://127.0.0.1:1/api".to_owned(),
            headers,
        },
        vec![rest_entity()],
    );
    let registry = Registry::connect(Connectors {
        customer: None,
        connectors: vec![c],
    })
    .await
    .expect("http registry");
    let err = registry
        .call("crm", "customers", "get", &params(&[("id", n(1.0))]))
        .await
        .expect_err("nothing listens");
    assert!(!err.to_string().contains("Sup3rS3cretPw"), "{err}");
    assert!(!format!("{:?}", registry.stats()).contains("Sup3rS3cretPw"));
}

// ---------------------------------------------------------------------------------------------
// REST

#[derive(Default)]
struct Hits {
    slow: AtomicUsize,
    unavailable: AtomicUsize,
    flaky: AtomicUsize,
}

async fn rest_server() -> (String, Arc<Hits>) {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    use axum::{Json, Router};

    let hits = Arc::new(Hits::default());
    let app = Router::new()
        .route(
            "/api/customers/{id}",
            get(|Path(id): Path<String>, headers: HeaderMap| async move {
                let token = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                match id.as_str() {
                    "1" => Ok(Json(serde_json::json!({
                        "id": 1, "profile": {"name": "Ann Lee", "vip": true},
                        "email": "ann@example.com", "balance": "150.50", "token": token
                    }))),
                    "null" => Ok(Json(serde_json::Value::Null)),
                    // A path hole arrives percent-decoded, in one segment.
                    "a b/c" => Ok(Json(serde_json::json!({"id": "a b/c"}))),
                    _ => Err(StatusCode::NOT_FOUND),
                }
            }),
        )
        .route(
            "/api/customers/search",
            post(|Json(body): Json<serde_json::Value>| async move {
                // Answers the body it got, so the test sees how holes were filled.
                Json(serde_json::json!({"items": [
                    {"id": 1, "profile": {"name": "Ann Lee"}, "echo": body},
                    {"id": 2, "profile": {"name": "Bob"}, "echo": body}
                ]}))
            }),
        )
        .route(
            "/api/slow",
            get(|State(h): State<Arc<Hits>>| async move {
                h.slow.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(2)).await;
                Json(serde_json::json!([]))
            }),
        )
        .route(
            "/api/unavailable",
            get(|State(h): State<Arc<Hits>>| async move {
                h.unavailable.fetch_add(1, Ordering::SeqCst);
                (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance")
            }),
        )
        .route(
            "/api/teapot",
            get(|| async { (StatusCode::IM_A_TEAPOT, "no coffee") }),
        )
        .route(
            "/api/flaky",
            get(|State(h): State<Arc<Hits>>| async move {
                // Fails twice, then answers.
                if h.flaky.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err((StatusCode::SERVICE_UNAVAILABLE, "busy"))
                } else {
                    Ok(Json(serde_json::json!([{"id": 7}])))
                }
            }),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/api/"), hits)
}

fn json_field(name: &str, pointer: &str, ty: FieldType) -> Field {
    Field {
        name: name.to_owned(),
        source: FieldSource::Json(pointer.to_owned()),
        ty,
        hidden: false,
    }
}

fn request(method: &str, path: &str, body: Option<&str>, rows: &str, names: &[&str]) -> Operation {
    Operation::Request(RequestTemplate {
        method: method.to_owned(),
        path: path.to_owned(),
        body: body.map(str::to_owned),
        action: None,
        rows: rows.to_owned(),
        read: true,
        params: names.iter().map(|n| (*n).to_owned()).collect(),
    })
}

fn rest_entity() -> Entity {
    let mut operations = BTreeMap::new();
    operations.insert(
        "get".to_owned(),
        request("GET", "customers/{id}", None, "", &["id"]),
    );
    operations.insert(
        "search".to_owned(),
        request(
            "POST",
            "customers/search",
            Some(r#"{"email": "{email}", "limit": "{limit}", "note": "for {email}"}"#),
            "/items",
            &["email", "limit"],
        ),
    );
    operations.insert("slow".to_owned(), request("GET", "slow", None, "", &[]));
    operations.insert(
        "unavailable".to_owned(),
        request("GET", "unavailable", None, "", &[]),
    );
    operations.insert("teapot".to_owned(), request("GET", "teapot", None, "", &[]));
    operations.insert("flaky".to_owned(), request("GET", "flaky", None, "", &[]));
    Entity {
        name: "customers".to_owned(),
        table: None,
        key: "id".to_owned(),
        fields: vec![
            json_field("id", "/id", FieldType::Auto),
            json_field("name", "/profile/name", FieldType::Auto),
            json_field("vip", "/profile/vip", FieldType::Auto),
            json_field("balance", "/balance", FieldType::Number),
            json_field("token", "/token", FieldType::Auto),
            json_field("echo", "/echo", FieldType::Auto),
        ],
        error_field: None,
        operations,
        ttl: None,
        level1: true,
    }
}

fn rest_connector(base_url: &str) -> Connector {
    let mut headers = BTreeMap::new();
    headers.insert("Authorization".to_owned(), "Bearer t0ken".to_owned());
    let mut c = connector(
        "crm",
        DriverKind::Http,
        Target::Service {
            base_url: base_url.to_owned(),
            headers,
        },
        vec![rest_entity()],
    );
    c.timeout = Duration::from_millis(300);
    c
}

#[tokio::test]
async fn rest_driver_maps_json() {
    let (base, _) = rest_server().await;
    let registry = Registry::connect(Connectors {
        customer: None,
        connectors: vec![rest_connector(&base)],
    })
    .await
    .expect("registry");
    let call = |op: &'static str, p: Params| {
        let registry = &registry;
        async move { registry.call("crm", "customers", op, &p).await }
    };
    let rows = call("get", params(&[("id", n(1.0))])).await.expect("get");
    let row = get_one(&rows);
    assert_eq!(row["id"], n(1.0));
    assert_eq!(row["name"], s("Ann Lee"));
    assert_eq!(row["vip"], Value::Bool(true));
    assert_eq!(row["balance"], n(150.5));
    assert_eq!(
        row["token"],
        s("Bearer t0ken"),
        "connector headers are sent"
    );
    assert_eq!(row["echo"], Value::Null, "absent pointer: null");
    // 404 and null on a GET: no rows.
    assert!(
        call("get", params(&[("id", n(2.0))]))
            .await
            .expect("404")
            .is_empty()
    );
    assert!(
        call("get", params(&[("id", s("null"))]))
            .await
            .expect("null")
            .is_empty()
    );
    // Path holes are percent-encoded: one segment.
    let rows = call("get", params(&[("id", s("a b/c"))]))
        .await
        .expect("encoded");
    assert_eq!(get_one(&rows)["id"], s("a b/c"));
    // Body template: whole-string holes keep the type, inner holes take the text.
    let rows = call(
        "search",
        params(&[("email", s("a\"b@x")), ("limit", n(5.0))]),
    )
    .await
    .expect("search");
    assert_eq!(rows.len(), 2);
    let mut echo = BTreeMap::new();
    echo.insert("email".to_owned(), s("a\"b@x"));
    echo.insert("limit".to_owned(), n(5.0));
    echo.insert("note".to_owned(), s("for a\"b@x"));
    assert_eq!(rows[1]["echo"], Value::Map(echo));
    // Errors: a plain HTTP error is Remote with its status; unknown names are listed.
    let err = call("teapot", Params::new()).await.expect_err("418");
    assert!(
        matches!(&err, ConnectorError::Remote(m) if m.contains("HTTP 418") && m.contains("no coffee")),
        "{err:?}"
    );
    let err = registry
        .call("crm", "customers", "nope", &Params::new())
        .await
        .expect_err("unknown op");
    assert!(
        matches!(&err, ConnectorError::Request(m) if m.contains("`get`") && m.contains("`search`")),
        "{err:?}"
    );
    let err = registry
        .call("crn", "customers", "get", &Params::new())
        .await
        .expect_err("unknown connector");
    assert!(
        matches!(&err, ConnectorError::Request(m) if m.contains("`crm`")),
        "{err:?}"
    );
    let err = registry
        .call("crm", "orders", "get", &Params::new())
        .await
        .expect_err("unknown entity");
    assert!(
        matches!(&err, ConnectorError::Request(m) if m.contains("`customers`")),
        "{err:?}"
    );
    let err = call("get", Params::new()).await.expect_err("missing id");
    assert!(
        matches!(&err, ConnectorError::Request(m) if m.contains("`id`")),
        "{err:?}"
    );
}

#[tokio::test]
async fn rest_timeouts_retries_and_breaker() {
    let (base, hits) = rest_server().await;
    let mut c = rest_connector(&base);
    c.retries = 2;
    c.breaker_failures = 3;
    c.breaker_cooldown = Duration::from_millis(700);
    let registry = Registry::connect(Connectors {
        customer: None,
        connectors: vec![c],
    })
    .await
    .expect("registry");

    // A slow answer: the call's timeout, and the read is tried 1 + 2 times.
    let err = registry
        .call("crm", "customers", "slow", &Params::new())
        .await
        .expect_err("timeout");
    assert!(
        matches!(&err, ConnectorError::Unavailable(m) if m.contains("did not answer within 0.3 s")),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(hits.slow.load(Ordering::SeqCst), 3);

    // 503 is the service's availability: retried, and then a success.
    let rows = registry
        .call("crm", "customers", "flaky", &Params::new())
        .await
        .expect("third try answers");
    assert_eq!(get_one(&rows)["id"], n(7.0));
    assert_eq!(hits.flaky.load(Ordering::SeqCst), 3);

    // Failures in a row open the breaker: the server is no longer asked.
    for _ in 0..3 {
        let err = registry
            .call("crm", "customers", "unavailable", &Params::new())
            .await
            .expect_err("503");
        assert!(err.to_string().contains("HTTP 503"), "{err}");
    }
    let asked = hits.unavailable.load(Ordering::SeqCst);
    assert_eq!(asked, 9, "three calls, three tries each");
    for _ in 0..5 {
        let err = registry
            .call("crm", "customers", "unavailable", &Params::new())
            .await
            .expect_err("open");
        assert!(
            matches!(&err, ConnectorError::Open(m) if m.contains("HTTP 503")),
            "{err:?}"
        );
    }
    assert_eq!(
        hits.unavailable.load(Ordering::SeqCst),
        asked,
        "open: not asked"
    );
    let stats = &registry.stats()[0];
    assert_eq!(stats.breaker, "open");
    assert_eq!(stats.rejected, 5);
    assert!(
        stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 503"))
    );

    // After the cooldown one trial call goes through (no retries); it fails: open again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let err = registry
        .call("crm", "customers", "unavailable", &Params::new())
        .await
        .expect_err("trial fails");
    assert!(matches!(err, ConnectorError::Unavailable(_)), "{err:?}");
    assert_eq!(hits.unavailable.load(Ordering::SeqCst), asked + 1);
    let err = registry
        .call("crm", "customers", "get", &params(&[("id", n(1.0))]))
        .await
        .expect_err("open again");
    assert!(matches!(err, ConnectorError::Open(_)), "{err:?}");
    // After the next cooldown a good trial closes it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    registry
        .call("crm", "customers", "get", &params(&[("id", n(1.0))]))
        .await
        .expect("trial succeeds");
    registry
        .call("crm", "customers", "get", &params(&[("id", n(1.0))]))
        .await
        .expect("closed");
    assert_eq!(registry.stats()[0].breaker, "closed");
}

/// A driver that counts calls and always fails transiently, for the registry alone.
struct Failing(AtomicUsize);

impl Driver for Failing {
    fn call<'a>(
        &'a self,
        _: &'a Entity,
        _: &'a str,
        _: &'a Operation,
        _: &'a Params,
    ) -> connectors::CallFuture<'a> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err(ConnectorError::Unavailable("down".to_owned())) })
    }

    fn ping(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + '_>> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn writes_are_not_retried() {
    let mut entity = rest_entity();
    if let Some(Operation::Request(t)) = entity.operations.get_mut("search") {
        t.read = false;
    }
    let c = connector(
        "plug",
        DriverKind::Http,
        Target::Service {
            base_url: "http://127.0.0.1:1/".to_owned(),
            headers: BTreeMap::new(),
        },
        vec![entity],
    );
    let driver = Arc::new(Failing(AtomicUsize::new(0)));
    let registry = Registry::with_drivers(
        Connectors {
            customer: None,
            connectors: vec![c],
        },
        HashMap::from([("plug".to_owned(), driver.clone() as Arc<dyn Driver>)]),
    );
    let p = params(&[("email", s("x")), ("limit", n(1.0))]);
    let _ = registry.call("plug", "customers", "search", &p).await;
    assert_eq!(driver.0.load(Ordering::SeqCst), 1, "a write: one try");
    let _ = registry
        .call("plug", "customers", "get", &params(&[("id", n(1.0))]))
        .await;
    assert_eq!(driver.0.load(Ordering::SeqCst), 4, "a read: 1 + 2 tries");
    let stats = registry.stats();
    assert_eq!(
        (stats[0].calls, stats[0].errors, stats[0].retries),
        (2, 2, 2)
    );
}

// ---------------------------------------------------------------------------------------------
// SOAP

struct SoapService {
    child: tokio::process::Child,
    url: String,
}

async fn soap_service() -> Option<SoapService> {
    use tokio::io::AsyncBufReadExt;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/soap_service.py");
    let python = std::env::var("KEFU_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import spyne, lxml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: {python} with spyne is not available (pip install spyne lxml)");
        return None;
    }
    let mut child = tokio::process::Command::new(&python)
        .arg(script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the SOAP service");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the SOAP service starts")
        .expect("read")
        .expect("a line");
    let port = line
        .strip_prefix("PORT ")
        .expect("PORT line")
        .trim()
        .to_owned();
    Some(SoapService {
        child,
        url: format!("http://127.0.0.1:{port}/"),
    })
}

fn xml_field(name: &str, path: &str, ty: FieldType) -> Field {
    Field {
        name: name.to_owned(),
        source: FieldSource::Xml(path.to_owned()),
        ty,
        hidden: false,
    }
}

fn soap_op(action: &str, body: &str, rows: &str, names: &[&str]) -> Operation {
    Operation::Request(RequestTemplate {
        method: "POST".to_owned(),
        path: String::new(),
        body: Some(body.to_owned()),
        action: Some(action.to_owned()),
        rows: rows.to_owned(),
        read: true,
        params: names.iter().map(|n| (*n).to_owned()).collect(),
    })
}

#[tokio::test]
async fn soap_driver_against_spyne() {
    let Some(mut service) = soap_service().await else {
        return;
    };
    let orders = Entity {
        name: "orders".to_owned(),
        table: None,
        key: "customer".to_owned(),
        fields: vec![
            xml_field("order_no", "OrderNo", FieldType::Auto),
            xml_field("status", "Status", FieldType::Auto),
            xml_field("total", "Total", FieldType::Auto),
            xml_field("city", "Address/City", FieldType::Auto),
            xml_field("note", "Note", FieldType::Auto),
        ],
        error_field: None,
        operations: BTreeMap::from([(
            "by_customer".to_owned(),
            soap_op(
                "GetOrders",
                r#"<GetOrders xmlns="urn:kefu:test"><customer>{customer}</customer></GetOrders>"#,
                "GetOrdersResponse/GetOrdersResult/Order",
                &["customer"],
            ),
        )]),
        ttl: None,
        level1: true,
    };
    let echo = Entity {
        name: "echo".to_owned(),
        table: None,
        key: "text".to_owned(),
        fields: vec![xml_field("text", "", FieldType::Text)],
        error_field: None,
        operations: BTreeMap::from([(
            "echo".to_owned(),
            soap_op(
                "Echo",
                r#"<Echo xmlns="urn:kefu:test"><text>{text}</text></Echo>"#,
                "EchoResponse/EchoResult",
                &["text"],
            ),
        )]),
        ttl: None,
        level1: true,
    };
    let c = connector(
        "erp_soap",
        DriverKind::Soap,
        Target::Service {
            base_url: service.url.clone(),
            headers: BTreeMap::new(),
        },
        vec![orders, echo],
    );
    let registry = Registry::connect(Connectors {
        customer: None,
        connectors: vec![c],
    })
    .await
    .expect("registry");

    let rows = registry
        .call(
            "erp_soap",
            "orders",
            "by_customer",
            &params(&[("customer", s("c1"))]),
        )
        .await
        .expect("orders");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["order_no"], s("00042"), "leading zeros stay text");
    assert_eq!(rows[0]["status"], s("shipped"));
    assert_eq!(rows[0]["total"], n(12.5));
    assert_eq!(rows[0]["city"], s("Bonn"));
    assert_eq!(rows[0]["note"], Value::Null);
    assert_eq!(rows[1]["order_no"], n(43.0));
    assert_eq!(rows[1]["city"], s("Köln"));
    assert_eq!(rows[1]["note"], s("ring twice"));

    // A fault (HTTP 500 with a Fault): Remote with the fault string.
    let err = registry
        .call(
            "erp_soap",
            "orders",
            "by_customer",
            &params(&[("customer", s("zz"))]),
        )
        .await
        .expect_err("fault");
    assert!(
        matches!(&err, ConnectorError::Remote(m) if m.contains("no customer zz") && m.contains("NotFound")),
        "{err:?}"
    );

    // XML escaping: the text arrives as it was.
    let tricky = "a <b> & \"c\" 'd' </text><x>";
    let rows = registry
        .call("erp_soap", "echo", "echo", &params(&[("text", s(tricky))]))
        .await
        .expect("echo");
    assert_eq!(get_one(&rows)["text"], s(tricky));
    let _ = service.child.kill().await;
}

#[tokio::test]
async fn http_driver_without_registry() {
    // The driver alone (what a plugin host would wrap): 404 on a GET is no rows.
    let (base, _) = rest_server().await;
    let c = rest_connector(&base);
    let driver = HttpDriver::new(&c).expect("driver");
    let entity = &c.entities["customers"];
    let rows = driver
        .call(
            entity,
            "get",
            &entity.operations["get"],
            &params(&[("id", n(5.0))]),
        )
        .await
        .expect("404");
    assert!(rows.is_empty());
    driver.ping().await.expect("ping");
}
