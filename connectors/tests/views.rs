//! Department views applied by the SQL drivers in their statements (`connectors::View`):
//! against SQLite always, MariaDB/MySQL and PostgreSQL when `KEFU_TEST_MYSQL_URL` /
//! `KEFU_TEST_POSTGRES_URL` are set.
//!
//! Two kinds of check. Differential: for a few hundred generated rows (Chinese, emoji, `@`s,
//! empty and `NULL` values, every length around the masks' edges) and several row filters,
//! the rows the database answers through a view are exactly the rows of the whole answer
//! filtered and masked in memory by `policy`'s functions. And "in the query": a search limited
//! to 5 rows still answers 5 rows of the view when the first rows of the table are outside
//! it, and a `get` of a row outside the view answers nothing.

use connectors::{Connectors, DriverKind, Params, Registry, Rows, View};
use flows::Value;
use policy::Subject;
use sqlx::{AssertSqlSafe, Connection, Executor};

const ROWS: usize = 300;

/// Deterministic text: lengths 0–13 over ASCII, `@`, `.`, Chinese, an emoji and `*`.
fn text(seed: &mut u64) -> Option<String> {
    let mut next = || {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as usize
    };
    if next() % 10 == 0 {
        return None;
    }
    const ALPHABET: [char; 12] = [
        'a', 'Z', '7', '@', '.', '-', '王', '小', '明', '😀', ' ', '*',
    ];
    let len = next() % 14;
    Some(
        (0..len)
            .map(|_| ALPHABET[next() % ALPHABET.len()])
            .collect(),
    )
}

struct Person {
    id: i64,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    address: Option<String>,
    region: Option<&'static str>,
    level: &'static str,
    balance: f64,
}

fn people() -> Vec<Person> {
    let mut seed = 42;
    (1..=ROWS as i64)
        .map(|id| Person {
            id,
            name: text(&mut seed),
            phone: text(&mut seed),
            email: text(&mut seed),
            address: text(&mut seed),
            region: [Some("east"), Some("west"), None][id as usize % 3],
            // The first ten are VIPs: a view without VIPs starts at 11.
            level: if id <= 10 || id % 7 == 0 {
                "VIP"
            } else {
                "regular"
            },
            balance: (id * 37 % 500) as f64 + 0.5,
        })
        .collect()
}

fn yaml(driver: &str, table: &str) -> String {
    format!(
        r#"connectors:
  - name: "db"
    driver: "{driver}"
    dsn: "${{DSN}}"
    data_map:
      people:
        table: "{table}"
        key: "id"
        fields:
          id: "id"
          name: "name"
          phone: "phone"
          email: "email"
          address: "address"
          region: "region"
          level: "level"
          balance: "balance"
        operations:
          get: {{}}
          all:
            kind: search
            order_by: ["id"]
            limit: 1000
          first5:
            kind: search
            order_by: ["id"]
            limit: 5
          pages:
            kind: list
            order_by: ["id"]
            max_page_size: 3
"#
    )
}

/// A view as the server makes it: a department's sandbox from a policy file, bound to an agent
/// of region `east`.
fn view(rows: Option<&str>) -> View {
    let rows = rows.map_or_else(String::new, |r| format!("  rows = {r:?}\n"));
    let text = format!(
        "sandbox {{\n  department = \"d\"\n  entity = \"people\"\n{rows}  mask = {{ name = \"name\", phone = \"phone\", email = \"email\", address = \"address\", level = \"redact\", balance = \"phone\" }}\n}}\n"
    );
    let config = policy::load(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let subject = Subject::new("li")
        .team("d")
        .attr("region", Value::String("east".into()))
        .attr(
            "regions",
            Value::List(vec![
                Value::String("east".into()),
                Value::String("north".into()),
            ]),
        );
    View::of(
        config.sandboxes.get("d", "people").expect("the sandbox"),
        &subject,
    )
}

const FILTERS: [Option<&str>; 7] = [
    None,
    Some("row.level != \"VIP\""),
    Some("row.region == agent.region"),
    Some("contains(agent.regions, row.region) && row.balance >= 100"),
    Some("!(row.balance > 250) || row.level == \"VIP\""),
    Some("row.region != \"west\""),
    Some("row.nickname == \"x\" || row.id < 4"),
];

fn ids(rows: &Rows) -> Vec<f64> {
    rows.iter()
        .map(|r| match r["id"] {
            Value::Number(n) => n,
            ref other => panic!("id {other:?}"),
        })
        .collect()
}

async fn suite(kind: DriverKind, dsn: &str, table: &str) {
    let driver = match kind {
        DriverKind::MySql => "mysql",
        DriverKind::Postgres => "postgres",
        _ => "sqlite",
    };
    let env = |name: &str| match name {
        "DSN" => Some(dsn.to_owned()),
        _ => None,
    };
    let config: Connectors = connectors::config::load(&yaml(driver, table), &env)
        .unwrap_or_else(|problems| panic!("{problems:?}"));
    let registry = Registry::connect(config).await.expect("connect");
    let call = |op: &'static str, params: Params, view: Option<View>| {
        let registry = &registry;
        async move {
            registry
                .call_in_view("db", "people", op, &params, view.as_ref())
                .await
                .unwrap_or_else(|e| panic!("{kind:?} {op}: {e}"))
        }
    };
    let whole = call("all", Params::new(), None).await;
    assert_eq!(whole.len(), ROWS, "{kind:?}");

    for filter in FILTERS {
        let view = view(filter);
        let expected = view.apply(whole.clone());
        let got = call("all", Params::new(), Some(view.clone())).await;
        assert_eq!(
            ids(&got),
            ids(&expected),
            "{kind:?}, rows = {filter:?}: the database's rows are the view's"
        );
        for (got, expected) in got.iter().zip(&expected) {
            assert_eq!(got, expected, "{kind:?}, rows = {filter:?}: masked alike");
        }
        // Masked values never are the originals (where there was something to hide).
        for (got, original) in got.iter().zip(
            whole
                .iter()
                .filter(|r| expected.iter().any(|e| e["id"] == r["id"])),
        ) {
            if let Value::String(phone) = &original["phone"]
                && phone.chars().count() > 1
                && !phone.contains('*')
            {
                assert_ne!(got["phone"], original["phone"], "{kind:?}");
            }
        }
    }

    // In the query: five rows of the view, though the table's first ten are VIPs.
    let no_vips = view(FILTERS[1]);
    let first5 = call("first5", Params::new(), Some(no_vips.clone())).await;
    assert_eq!(ids(&first5), [11.0, 12.0, 13.0, 15.0, 16.0], "{kind:?}");
    let page2 = call(
        "pages",
        Params::from([("page".to_owned(), Value::Number(2.0))]),
        Some(no_vips.clone()),
    )
    .await;
    assert_eq!(ids(&page2), [15.0, 16.0, 17.0], "{kind:?}");
    let vip = Params::from([("id".to_owned(), Value::Number(3.0))]);
    assert!(
        call("get", vip.clone(), Some(no_vips.clone()))
            .await
            .is_empty()
    );
    assert_eq!(call("get", vip, None).await.len(), 1);
    let regular = Params::from([("id".to_owned(), Value::String("12".into()))]);
    let row = call("get", regular, Some(no_vips)).await;
    assert_eq!(row[0]["level"], Value::String("***".into()), "{kind:?}");
}

fn rows_sql(table: &str) -> Vec<(String, Vec<Option<String>>, f64, i64)> {
    people()
        .into_iter()
        .map(|p| {
            (
                format!("INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                vec![
                    p.name,
                    p.phone,
                    p.email,
                    p.address,
                    p.region.map(str::to_owned),
                    Some(p.level.to_owned()),
                ],
                p.balance,
                p.id,
            )
        })
        .collect()
}

const COLUMNS: &str = "(id INTEGER PRIMARY KEY, name VARCHAR(100), phone VARCHAR(100), \
                       email VARCHAR(100), address VARCHAR(100), region VARCHAR(20), \
                       level VARCHAR(20), balance NUMERIC(10,2))";

macro_rules! fill {
    ($conn:expr, $table:expr, $dollar:expr) => {{
        $conn
            .execute(AssertSqlSafe(format!("CREATE TABLE {} {COLUMNS}", $table)))
            .await
            .expect("create table");
        for (sql, texts, balance, id) in rows_sql($table) {
            let sql = if $dollar {
                let mut n = 0;
                sql.chars()
                    .map(|c| {
                        if c == '?' {
                            n += 1;
                            format!("${n}")
                        } else {
                            c.to_string()
                        }
                    })
                    .collect()
            } else {
                sql
            };
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(id);
            for text in texts {
                query = query.bind(text);
            }
            query
                .bind(balance)
                .execute(&mut $conn)
                .await
                .expect("insert");
        }
    }};
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("test setup")
        .as_nanos();
    format!("kefu_views_{}_{nanos}", std::process::id())
}

#[tokio::test]
async fn sqlite_applies_views_in_the_query() {
    let path = std::env::temp_dir().join(format!("{}.db", unique()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    {
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("test setup");
        fill!(conn, "people", false);
    }
    suite(DriverKind::Sqlite, &url, "people").await;
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn mysql_applies_views_in_the_query() {
    let Ok(url) = std::env::var("KEFU_TEST_MYSQL_URL") else {
        eprintln!("skipped: KEFU_TEST_MYSQL_URL is not set");
        return;
    };
    let db = unique();
    let mut conn = sqlx::MySqlConnection::connect(&url)
        .await
        .expect("test setup");
    conn.execute(AssertSqlSafe(format!(
        "CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    )))
    .await
    .expect("test setup");
    let table = format!("{db}.people");
    fill!(conn, &table, false);
    suite(DriverKind::MySql, &url, &table).await;
    conn.execute(AssertSqlSafe(format!("DROP DATABASE {db}")))
        .await
        .expect("test setup");
}

#[tokio::test]
async fn postgres_applies_views_in_the_query() {
    let Ok(url) = std::env::var("KEFU_TEST_POSTGRES_URL") else {
        eprintln!("skipped: KEFU_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = unique();
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("test setup");
    conn.execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .expect("test setup");
    let table = format!("{schema}.people");
    fill!(conn, &table, true);
    suite(DriverKind::Postgres, &url, &table).await;
    conn.execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await
        .expect("test setup");
}
