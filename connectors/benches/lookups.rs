//! Lookups per second and latency percentiles of `get` through the [`Registry`] on SQLite,
//! PostgreSQL and MariaDB over loopback, 16 callers at once: plain, and through a department's
//! view (a row filter and a masked text field, both in the SQL statement).
//!
//! `KEFU_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!  KEFU_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test cargo bench -p connectors --bench lookups`
//! (a database whose URL is unset is left out). A plain measurement loop, not criterion's
//! statistics: the number wanted is throughput under concurrency.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connectors::{
    Connector, Connectors, DriverKind, Entity, Field, FieldSource, FieldType, Operation, Registry,
    SqlExpr, Target, View,
};
use flows::Value;
use sqlx::{AssertSqlSafe, Connection, Executor};

const CONCURRENCY: usize = 16;
const ROWS: i64 = 1000;
const DURATION: Duration = Duration::from_secs(5);

fn field(name: &str, sql: &str, columns: &[&str]) -> Field {
    Field {
        name: name.to_owned(),
        source: FieldSource::Sql(SqlExpr {
            sql: sql.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        }),
        ty: FieldType::Auto,
        hidden: false,
    }
}

fn config(kind: DriverKind, url: &str, table: &str) -> Connectors {
    let name_expr = if kind == DriverKind::MySql {
        "concat(first_name, ' ', last_name)"
    } else {
        "first_name || ' ' || last_name"
    };
    let entity = Entity {
        name: "customers".to_owned(),
        table: Some(table.to_owned()),
        key: "id".to_owned(),
        fields: vec![
            field("id", "id", &["id"]),
            field("name", name_expr, &["first_name", "last_name"]),
            field("balance", "balance", &["balance"]),
        ],
        error_field: None,
        operations: BTreeMap::from([("get".to_owned(), Operation::Get)]),
        ttl: None,
        level1: true,
    };
    Connectors {
        customer: None,
        connectors: vec![Connector {
            name: "db".to_owned(),
            driver: kind,
            target: Target::Database {
                url: url.to_owned(),
            },
            timeout: Duration::from_secs(5),
            retries: 2,
            pool_size: CONCURRENCY as u32,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            entities: BTreeMap::from([("customers".to_owned(), entity)]),
        }],
    }
}

async fn setup<C: Connection>(conn: &mut C, table: &str, decimal: &str)
where
    for<'c> &'c mut C: Executor<'c>,
{
    conn.execute(AssertSqlSafe(format!(
        "CREATE TABLE {table} (id INTEGER PRIMARY KEY, first_name VARCHAR(50), last_name VARCHAR(50), balance {decimal})"
    )))
    .await
    .expect("create");
    let values: Vec<String> = (1..=ROWS)
        .map(|i| format!("({i}, 'First{i}', 'Last{i}', {i}.25)"))
        .collect();
    conn.execute(AssertSqlSafe(format!(
        "INSERT INTO {table} VALUES {}",
        values.join(", ")
    )))
    .await
    .expect("insert");
}

/// A department's view as the server builds it: rows with a balance of at least 0 (all of the
/// benchmark's), the name masked.
fn view() -> View {
    let config = policy::load(
        "sandbox {\n  department = \"d\"\n  entity = \"customers\"\n  rows = \"row.balance >= 0\"\n  mask = { name = \"name\" }\n}\n",
    )
    .expect("the view's policy file");
    let sandbox = config.sandboxes.get("d", "customers").expect("the sandbox");
    View::of(sandbox, &policy::Subject::new("bench").team("d"))
}

/// Both modes for one database.
async fn measure_both(label: &str, registry: Registry) {
    let registry = Arc::new(registry);
    measure(label, Arc::clone(&registry), None).await;
    measure(&format!("{label}+view"), registry, Some(Arc::new(view()))).await;
}

async fn measure(label: &str, registry: Arc<Registry>, view: Option<Arc<View>>) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let registry = registry.clone();
        let view = view.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = worker as i64;
            while start.elapsed() < DURATION {
                let id = (i * 7919) % ROWS + 1;
                i += 1;
                let params = BTreeMap::from([("id".to_owned(), Value::Number(id as f64))]);
                let t = Instant::now();
                let rows = registry
                    .call_in_view("db", "customers", "get", &params, view.as_deref())
                    .await
                    .expect("get");
                latencies.push(t.elapsed());
                assert_eq!(rows.len(), 1);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "{label:<15} {:>8.0} lookups/s   p50 {:>7.3} ms   p99 {:>7.3} ms   ({} lookups, {CONCURRENCY} at once)",
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all.len()
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let unique = format!("kefu_bench_{}", std::process::id());

        let path = std::env::temp_dir().join(format!("{unique}.db"));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
            setup(&mut conn, "customers", "NUMERIC").await;
        }
        let registry = Registry::connect(config(DriverKind::Sqlite, &url, "customers"))
            .await
            .expect("sqlite registry");
        measure_both("sqlite", registry).await;
        let _ = std::fs::remove_file(&path);

        if let Ok(url) = std::env::var("KEFU_TEST_POSTGRES_URL") {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("postgres");
            conn.execute(AssertSqlSafe(format!("CREATE SCHEMA {unique}")))
                .await
                .expect("schema");
            let table = format!("{unique}.customers");
            setup(&mut conn, &table, "NUMERIC(10,2)").await;
            let registry = Registry::connect(config(DriverKind::Postgres, &url, &table))
                .await
                .expect("postgres registry");
            measure_both("postgres", registry).await;
            conn.execute(AssertSqlSafe(format!("DROP SCHEMA {unique} CASCADE")))
                .await
                .expect("drop");
        }

        if let Ok(url) = std::env::var("KEFU_TEST_MYSQL_URL") {
            let mut conn = sqlx::MySqlConnection::connect(&url).await.expect("mysql");
            conn.execute(AssertSqlSafe(format!("CREATE DATABASE {unique}")))
                .await
                .expect("database");
            let table = format!("{unique}.customers");
            setup(&mut conn, &table, "DECIMAL(10,2)").await;
            let registry = Registry::connect(config(DriverKind::MySql, &url, &table))
                .await
                .expect("mysql registry");
            measure_both("mariadb", registry).await;
            conn.execute(AssertSqlSafe(format!("DROP DATABASE {unique}")))
                .await
                .expect("drop");
        }
    });
}
