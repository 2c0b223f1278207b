//! The connector cache across two `kefu` processes sharing one Redis (`KEFU_TEST_REDIS_URL`)
//! and one source (an SQLite file the test writes, named by the `connectors.yaml` both nodes
//! read): a row cached on both nodes, changed at the source, invalidated through node A's
//! admin API, is read fresh by node B well before node B's level-1 copy would have expired;
//! likewise for a whole entity. Then a reload on node A with another field map answers the new
//! shape at once (the configuration's fingerprint is part of the cache keys).
//!
//! Each run has Redis keys and channels of its own (`KEFU_CACHE_PREFIX`) and deletes its keys
//! at the end. Without `KEFU_TEST_REDIS_URL` the test says so and does nothing.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::chat::{Process, temp_dir};

/// A node's cold keys stay in its level 1 for 10 s (`CacheConfig::cold_l1_ttl`): an answer
/// that changes sooner than that came through the invalidation message.
const FRESH_WITHIN: Duration = Duration::from_secs(5);

/// A signed-in admin on one node.
struct Admin {
    addr: SocketAddr,
    cookie: String,
    csrf: String,
}

/// One HTTP/1.1 request; the status, the `Set-Cookie` value and the body (JSON, or the text as
/// a JSON string).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    admin: Option<&Admin>,
    body: Option<&Value>,
) -> (u16, Option<String>, Value) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(admin) = admin {
        request.push_str(&format!(
            "Cookie: {}\r\nX-CSRF-Token: {}\r\n",
            admin.cookie, admin.csrf
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
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_owned()
    };
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, cookie, json)
}

/// A chunked body's data.
fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

impl Admin {
    async fn login(addr: SocketAddr) -> Admin {
        let body = json!({"login": "admin", "password": "admin-password"});
        let (status, cookie, answer) =
            http(addr, "POST", "/api/auth/login", None, Some(&body)).await;
        assert_eq!(status, 200, "the admin signs in: {answer}");
        Admin {
            addr,
            cookie: cookie.unwrap(),
            csrf: answer["csrf"].as_str().unwrap().to_owned(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, _, answer) = http(self.addr, "POST", path, Some(self), Some(body)).await;
        (status, answer)
    }

    /// The row `id` of `crm.customers`, through "test this entity" (a registry call: the cache).
    async fn customer(&self, id: &str) -> Value {
        let body = json!({"connector": "crm", "entity": "customers", "operation": "get",
                          "params": {"id": id}});
        let (status, answer) = self.post("/api/admin/connectors/test", &body).await;
        assert_eq!(status, 200, "{answer}");
        answer["rows"][0].clone()
    }

    /// Polls node's reads of row `id` until its `level` is `want`, at most `FRESH_WITHIN`.
    async fn until_level(&self, id: &str, want: &str) -> Duration {
        let started = Instant::now();
        loop {
            let row = self.customer(id).await;
            if row["level"] == want {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < FRESH_WITHIN,
                "node {} still answers {row} after {FRESH_WITHIN:?}",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The node's `kefu_cache_reads_total` of `crm.customers` answered by `result`.
    async fn reads(&self, result: &str) -> f64 {
        let (status, _, text) = http(self.addr, "GET", "/metrics", None, None).await;
        assert_eq!(status, 200);
        let text = text.as_str().unwrap_or_default().to_owned();
        let series = format!(
            "kefu_cache_reads_total{{connector=\"crm\",entity=\"customers\",result=\"{result}\"}} "
        );
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} in:\n{text}"))
    }
}

/// The nodes' `connectors.yaml`: `crm.customers` over the SQLite file `db`, cached for 10
/// minutes; `tier` adds a field (another shape).
fn connectors_yaml(db: &Path, tier: bool) -> String {
    let tier = if tier {
        "          tier: \"upper(level)\"\n"
    } else {
        ""
    };
    format!(
        "connectors:\n  - name: crm\n    driver: sqlite\n    dsn: \"sqlite://{}\"\n    data_map:\n      customers:\n        key: id\n        ttl_ms: 600000\n        fields:\n          id: \"id\"\n          name: \"name\"\n          level: \"level\"\n{tier}",
        db.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_on_one_node_reaches_the_other_process() {
    let Some(redis) = std::env::var("KEFU_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("cache_nodes: KEFU_TEST_REDIS_URL is unset, skipping");
        return;
    };
    let shared = temp_dir("cache-nodes-source");
    let db = shared.join("crm.db");
    let mut source =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", db.display()))
            .await
            .unwrap();
    source
        .execute(
            "CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL, level TEXT NOT NULL)",
        )
        .await
        .unwrap();
    source
        .execute(
            "INSERT INTO customers VALUES ('c1', 'Wang Xiaoming', 'gold'), ('c2', 'Li Lei', 'silver')",
        )
        .await
        .unwrap();
    let file = shared.join("connectors.yaml");
    std::fs::write(&file, connectors_yaml(&db, false)).unwrap();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let prefix = format!("kefu-test-nodes-{}-{nanos}", std::process::id());
    let file_text = file.display().to_string();
    let env = [
        ("KEFU_REDIS_URL", redis.as_str()),
        ("KEFU_CACHE_PREFIX", prefix.as_str()),
        ("KEFU_CONNECTORS", file_text.as_str()),
        ("KEFU_ADMIN_PASSWORD", "admin-password"),
    ];
    let dirs = (temp_dir("cache-nodes-a"), temp_dir("cache-nodes-b"));
    let (a, b) = tokio::join!(
        Process::start_with(&dirs.0, None, &env),
        Process::start_with(&dirs.1, None, &env)
    );
    let (admin_a, admin_b) = tokio::join!(Admin::login(a.addr), Admin::login(b.addr));

    // Node A loads the row (both levels); node B takes it from Redis into its level 1.
    assert_eq!(admin_a.customer("c1").await["level"], "gold");
    assert_eq!(admin_b.customer("c1").await["level"], "gold");
    assert_eq!(
        admin_b.reads("load").await,
        0.0,
        "node B read node A's answer"
    );
    assert_eq!(admin_b.reads("l2").await, 1.0);

    // The source changes; both nodes still answer their cached copy.
    source
        .execute("UPDATE customers SET level = 'platinum' WHERE id = 'c1'")
        .await
        .unwrap();
    assert_eq!(admin_b.customer("c1").await["level"], "gold");
    assert_eq!(admin_b.reads("l1").await, 1.0, "a level-1 hit on node B");

    // Only admins, and only with the session's CSRF token, may invalidate.
    let one_row = json!({"connector": "crm", "entity": "customers", "key": "c1"});
    let forged = Admin {
        addr: a.addr,
        cookie: admin_a.cookie.clone(),
        csrf: "forged".to_owned(),
    };
    let (status, answer) = forged
        .post("/api/admin/connectors/invalidate", &one_row)
        .await;
    assert_eq!(status, 403, "{answer}");
    let (status, _, answer) = http(
        a.addr,
        "POST",
        "/api/admin/connectors/invalidate",
        None,
        Some(&one_row),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = admin_a
        .post(
            "/api/admin/connectors/invalidate",
            &json!({"connector": "crm", "entity": "orders"}),
        )
        .await;
    assert_eq!(status, 404, "{answer}");

    // Invalidated on node A: node B's next reads come to the new value within the pub/sub
    // delay, long before its level-1 copy (10 s) would have expired.
    let (status, answer) = admin_a
        .post("/api/admin/connectors/invalidate", &one_row)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["invalidated"], "key");
    let delay = admin_b.until_level("c1", "platinum").await;
    eprintln!("cache_nodes: one row's invalidation reached node B within {delay:?}");
    assert_eq!(admin_a.customer("c1").await["level"], "platinum");

    // A whole entity, likewise.
    assert_eq!(admin_b.customer("c2").await["level"], "silver");
    assert_eq!(admin_a.customer("c2").await["level"], "silver");
    source
        .execute("UPDATE customers SET level = 'gold' WHERE id = 'c2'")
        .await
        .unwrap();
    assert_eq!(admin_b.customer("c2").await["level"], "silver");
    let (status, answer) = admin_a
        .post(
            "/api/admin/connectors/invalidate",
            &json!({"connector": "crm", "entity": "customers"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["invalidated"], "entity");
    let delay = admin_b.until_level("c2", "gold").await;
    eprintln!("cache_nodes: the entity's invalidation reached node B within {delay:?}");

    // Another field map, reloaded on node A: its next read has the new shape, although the
    // old row is in its level 1 and in Redis (keys carry the configuration's fingerprint).
    assert!(admin_a.customer("c1").await.get("tier").is_none());
    std::fs::write(&file, connectors_yaml(&db, true)).unwrap();
    let (status, answer) = admin_a
        .post("/api/admin/connectors/reload", &json!({}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let row = admin_a.customer("c1").await;
    assert_eq!(row["tier"], "PLATINUM", "{row}");
    // Node B, not reloaded, keeps answering the shape of the file it runs.
    assert!(admin_b.customer("c1").await.get("tier").is_none());

    drop((a, b));
    source.close().await.unwrap();
    // This run's Redis keys.
    let cache = connectors::cache::Cache::new(
        connectors::cache::CacheConfig {
            prefix,
            ..connectors::cache::CacheConfig::default()
        },
        Some(&redis),
    )
    .await
    .unwrap();
    cache.invalidate_entity("crm", "customers").await;
}
