//! The read cache through the registry, with a counting fake driver: level 1 alone, and with
//! the real Redis at `KEFU_TEST_REDIS_URL` (the Redis tests are skipped with a message when it
//! is not set) — two caches sharing it stand in for two nodes here; two `kefu` processes do
//! in `runtime/tests/cache_nodes.rs`. The outage test starts its own `redis-server` (skipped
//! when there is none), kills it halfway and starts it again on the same port.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use connectors::cache::{Cache, CacheConfig};
use connectors::{
    Connector, ConnectorError, Connectors, Driver, DriverKind, Entity, Field, FieldSource,
    FieldType, Operation, Params, Registry, RequestTemplate, Rows, Target,
};
use flows::Value;

/// A driver that counts its calls. `id` `none` answers no row; `flaky` fails its first call;
/// any other id answers `{id, version}` with the driver's current version.
struct Fake {
    calls: AtomicUsize,
    flaky_calls: AtomicUsize,
    version: AtomicUsize,
    delay: Duration,
}

impl Fake {
    fn new(delay: Duration) -> Arc<Fake> {
        Arc::new(Fake {
            calls: AtomicUsize::new(0),
            flaky_calls: AtomicUsize::new(0),
            version: AtomicUsize::new(0),
            delay,
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Driver for Fake {
    fn call<'a>(
        &'a self,
        _: &'a Entity,
        _: &'a str,
        _: &'a Operation,
        params: &'a Params,
    ) -> connectors::CallFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            let id = match params.get("id") {
                Some(Value::String(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            match id.as_str() {
                "none" => Ok(Vec::new()),
                "flaky" if self.flaky_calls.fetch_add(1, Ordering::SeqCst) == 0 => {
                    Err(ConnectorError::Remote("the source refused".to_owned()))
                }
                _ => Ok(vec![BTreeMap::from([
                    ("id".to_owned(), Value::String(id)),
                    (
                        "version".to_owned(),
                        Value::Number(self.version.load(Ordering::SeqCst) as f64),
                    ),
                ])]),
            }
        })
    }

    fn ping(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + '_>> {
        Box::pin(async { Ok(()) })
    }
}

fn field(name: &str) -> Field {
    Field {
        name: name.to_owned(),
        source: FieldSource::Json(format!("/{name}")),
        ty: FieldType::Auto,
        hidden: false,
    }
}

fn entity(name: &str, ttl: Option<Duration>) -> Entity {
    Entity {
        name: name.to_owned(),
        table: None,
        key: "id".to_owned(),
        fields: vec![field("id"), field("version")],
        error_field: None,
        operations: BTreeMap::from([
            ("get".to_owned(), Operation::Get),
            (
                "touch".to_owned(),
                Operation::Request(RequestTemplate {
                    method: "POST".to_owned(),
                    path: "touch/{id}".to_owned(),
                    body: None,
                    action: None,
                    rows: String::new(),
                    read: false,
                    params: vec!["id".to_owned()],
                }),
            ),
        ]),
        ttl,
        level1: true,
    }
}

fn connectors() -> Connectors {
    Connectors {
        customer: None,
        connectors: vec![Connector {
            name: "fake".to_owned(),
            driver: DriverKind::Http,
            target: Target::Service {
                base_url: "http://127.0.0.1:1/".to_owned(),
                headers: BTreeMap::new(),
            },
            timeout: Duration::from_secs(5),
            retries: 0,
            pool_size: 1,
            breaker_failures: 50,
            breaker_cooldown: Duration::from_secs(1),
            entities: [
                entity("customer", Some(Duration::from_secs(60))),
                entity("short", Some(Duration::from_millis(300))),
                entity("plain", None),
                Entity {
                    level1: false,
                    ..entity("remote", Some(Duration::from_secs(60)))
                },
            ]
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect(),
        }],
    }
}

/// Keys and channels of their own for each test (tests and runs share the Redis).
fn config() -> CacheConfig {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    CacheConfig {
        prefix: format!(
            "kefu-test-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ),
        negative_ttl: Duration::from_millis(300),
        ..CacheConfig::default()
    }
}

fn shared_redis() -> Option<String> {
    std::env::var("KEFU_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

async fn node(config: CacheConfig, redis: Option<&str>, driver: &Arc<Fake>) -> Registry {
    let cache = Cache::new(config, redis).await.expect("cache");
    registry(connectors(), driver, Arc::new(cache))
}

/// A registry of `connectors` over the fake driver and `cache` (what a reload builds).
fn registry(connectors: Connectors, driver: &Arc<Fake>, cache: Arc<Cache>) -> Registry {
    Registry::with_drivers(
        connectors,
        HashMap::from([("fake".to_owned(), Arc::clone(driver) as Arc<dyn Driver>)]),
    )
    .with_cache(cache)
}

fn id(value: &str) -> Params {
    BTreeMap::from([("id".to_owned(), Value::String(value.to_owned()))])
}

async fn get(registry: &Registry, entity: &str, key: &str) -> Result<Rows, ConnectorError> {
    registry.call("fake", entity, "get", &id(key)).await
}

fn version(rows: &Rows) -> f64 {
    match rows.first().and_then(|r| r.get("version")) {
        Some(Value::Number(n)) => *n,
        other => panic!("no version in {other:?}"),
    }
}

fn entity_stats(registry: &Registry, entity: &str) -> connectors::cache::EntityCacheStats {
    let stats = registry.cache().expect("a cache").stats();
    stats
        .entities
        .into_iter()
        .find(|e| e.connector == "fake" && e.entity == entity)
        .unwrap_or_else(|| panic!("no numbers for {entity}"))
}

/// Level 1 hits, TTL expiry, negative caching, errors not cached, uncached entities and
/// writes — with the shared Redis when there is one, else level 1 alone.
async fn basics(redis: Option<&str>) {
    let driver = Fake::new(Duration::ZERO);
    let registry = node(config(), redis, &driver).await;

    // A hit.
    let first = get(&registry, "customer", "1").await.expect("read");
    let second = get(&registry, "customer", "1").await.expect("read");
    assert_eq!(first, second);
    assert_eq!(driver.calls(), 1, "the second read is a level-1 hit");
    let s = entity_stats(&registry, "customer");
    assert_eq!((s.l1_hits, s.loads, s.misses), (1, 1, 1));
    assert_eq!(s.hit_ratio(), Some(0.5));
    assert!(s.load_p50.is_some() && s.load_p99.is_some());
    // Other parameters are another key.
    get(&registry, "customer", "2").await.expect("read");
    assert_eq!(driver.calls(), 2);

    // TTL expiry (300 ms).
    get(&registry, "short", "1").await.expect("read");
    get(&registry, "short", "1").await.expect("read");
    assert_eq!(driver.calls(), 3);
    tokio::time::sleep(Duration::from_millis(400)).await;
    get(&registry, "short", "1").await.expect("read");
    assert_eq!(driver.calls(), 4, "expired in both levels");

    // Negative caching: an empty answer is kept, for the negative TTL (300 ms here).
    assert!(
        get(&registry, "customer", "none")
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        get(&registry, "customer", "none")
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(driver.calls(), 5, "the empty answer was cached");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        get(&registry, "customer", "none")
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(
        driver.calls(),
        6,
        "the empty answer expired after the short TTL"
    );

    // Errors are not cached.
    let err = get(&registry, "customer", "flaky")
        .await
        .expect_err("fails once");
    assert_eq!(err, ConnectorError::Remote("the source refused".to_owned()));
    get(&registry, "customer", "flaky")
        .await
        .expect("then answers");
    assert_eq!(driver.calls(), 8);
    assert_eq!(entity_stats(&registry, "customer").load_errors, 1);

    // An entity without a TTL, and writes, are never cached.
    get(&registry, "plain", "1").await.expect("read");
    get(&registry, "plain", "1").await.expect("read");
    assert_eq!(driver.calls(), 10);
    registry
        .call("fake", "customer", "touch", &id("1"))
        .await
        .expect("write");
    registry
        .call("fake", "customer", "touch", &id("1"))
        .await
        .expect("write");
    assert_eq!(driver.calls(), 12);

    let stats = registry.cache().expect("a cache").stats();
    assert_eq!(stats.redis, if redis.is_some() { "up" } else { "off" });
    assert_eq!(stats.redis_errors, 0);
    assert!(stats.l1_entries <= 6 && stats.l1_bytes <= 64 << 20);
}

#[tokio::test]
async fn level_1_alone() {
    basics(None).await;
}

#[tokio::test]
async fn with_the_shared_redis() {
    let Some(url) = shared_redis() else {
        eprintln!("skipped: KEFU_TEST_REDIS_URL is not set");
        return;
    };
    basics(Some(&url)).await;
}

#[tokio::test]
async fn a_second_node_hits_level_2() {
    let Some(url) = shared_redis() else {
        eprintln!("skipped: KEFU_TEST_REDIS_URL is not set");
        return;
    };
    let driver = Fake::new(Duration::ZERO);
    let config = config();
    let a = node(config.clone(), Some(&url), &driver).await;
    let b = node(config, Some(&url), &driver).await;
    let from_a = get(&a, "customer", "1").await.expect("read");
    let from_b = get(&b, "customer", "1").await.expect("read");
    assert_eq!(from_a, from_b);
    assert_eq!(driver.calls(), 1, "node B read node A's answer from Redis");
    get(&b, "customer", "1").await.expect("read");
    let s = entity_stats(&b, "customer");
    assert_eq!((s.l2_hits, s.l1_hits, s.loads), (1, 1, 0));
    assert_eq!(s.l2_hit_ratio(), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stampede_is_one_source_query() {
    let redis = shared_redis();
    if redis.is_none() {
        eprintln!("KEFU_TEST_REDIS_URL is not set: level 1 only");
    }
    let driver = Fake::new(Duration::from_millis(100));
    let registry = Arc::new(node(config(), redis.as_deref(), &driver).await);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let registry = Arc::clone(&registry);
        tasks.push(tokio::spawn(async move {
            get(&registry, "customer", "cold").await
        }));
    }
    for task in tasks {
        let rows = task.await.expect("task").expect("read");
        assert_eq!(rows.len(), 1);
    }
    assert_eq!(driver.calls(), 1, "100 concurrent misses, one source query");
    let s = entity_stats(&registry, "customer");
    assert_eq!(s.loads, 1);
    assert_eq!(s.l1_hits + s.coalesced, 99);
}

/// Reads on `b` until it answers `want` (its level 1 dropped the old answer), at most 2 s.
async fn until_version(b: &Registry, key: &str, want: f64) -> Duration {
    let started = Instant::now();
    loop {
        let rows = get(b, "customer", key).await.expect("read");
        if version(&rows) == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "node B still answers the old version after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn invalidation_reaches_the_other_node() {
    let Some(url) = shared_redis() else {
        eprintln!("skipped: KEFU_TEST_REDIS_URL is not set");
        return;
    };
    let driver = Fake::new(Duration::ZERO);
    let config = config();
    let a = node(config.clone(), Some(&url), &driver).await;
    let b = node(config, Some(&url), &driver).await;

    // One key.
    assert_eq!(version(&get(&a, "customer", "1").await.expect("read")), 0.0);
    assert_eq!(version(&get(&b, "customer", "1").await.expect("read")), 0.0);
    assert_eq!(driver.calls(), 1);
    driver.version.store(1, Ordering::SeqCst);
    a.invalidate("fake", "customer", &id("1")).await;
    let delay = until_version(&b, "1", 1.0).await;
    assert_eq!(driver.calls(), 2, "node B's next read reached the source");
    eprintln!("invalidation of one key reached node B in {delay:?}");
    assert_eq!(version(&get(&a, "customer", "1").await.expect("read")), 1.0);
    assert_eq!(
        driver.calls(),
        2,
        "node A reads node B's fresh answer from Redis"
    );

    // A whole entity.
    get(&a, "customer", "2").await.expect("read");
    get(&b, "customer", "2").await.expect("read");
    assert_eq!(driver.calls(), 3);
    driver.version.store(2, Ordering::SeqCst);
    a.invalidate_entity("fake", "customer").await;
    let delay = until_version(&b, "2", 2.0).await;
    assert_eq!(driver.calls(), 4, "node B's next read reached the source");
    eprintln!("invalidation of an entity reached node B in {delay:?}");
    assert_eq!(version(&get(&b, "customer", "1").await.expect("read")), 2.0);
    assert_eq!(driver.calls(), 5, "key 1 was dropped too");
    // Another entity's answers stay.
    get(&a, "short", "9").await.expect("read");
    a.invalidate_entity("fake", "customer").await;
    get(&a, "short", "9").await.expect("read");
    assert_eq!(driver.calls(), 6);
}

/// Hot keys are answered by level 1's front (without moka's bookkeeping): an invalidation,
/// here or from another node, and the TTL still end those answers at once.
#[tokio::test]
async fn hot_keys_answered_by_the_front_are_still_invalidated_and_expire() {
    let redis = shared_redis();
    if redis.is_none() {
        eprintln!("KEFU_TEST_REDIS_URL is not set: one node only");
    }
    let driver = Fake::new(Duration::ZERO);
    let config = CacheConfig {
        hot_min_count: 2,
        ..config()
    };
    let a = node(config.clone(), redis.as_deref(), &driver).await;
    async fn hot(registry: &Registry, key: &str, want: f64) {
        for _ in 0..40 {
            let rows = get(registry, "customer", key).await.expect("read");
            assert_eq!(version(&rows), want);
        }
    }

    // Invalidated here.
    hot(&a, "1", 0.0).await;
    assert_eq!(driver.calls(), 1);
    driver.version.store(1, Ordering::SeqCst);
    a.invalidate("fake", "customer", &id("1")).await;
    hot(&a, "1", 1.0).await;
    assert_eq!(driver.calls(), 2);
    a.invalidate_entity("fake", "customer").await;
    driver.version.store(2, Ordering::SeqCst);
    hot(&a, "1", 2.0).await;
    assert_eq!(driver.calls(), 3);
    let s = entity_stats(&a, "customer");
    assert_eq!(s.l1_hits + s.loads + s.l2_hits, 120);

    // Expired (300 ms TTL, a hot key keeps it in level 1 to the end).
    for _ in 0..20 {
        get(&a, "short", "1").await.expect("read");
    }
    assert_eq!(driver.calls(), 4);
    tokio::time::sleep(Duration::from_millis(400)).await;
    get(&a, "short", "1").await.expect("read");
    assert_eq!(driver.calls(), 5, "expired, though hot");

    // Invalidated on another node.
    if let Some(url) = &redis {
        let b = node(config, Some(url), &driver).await;
        hot(&b, "1", 2.0).await;
        hot(&a, "1", 2.0).await;
        let calls = driver.calls();
        driver.version.store(3, Ordering::SeqCst);
        a.invalidate("fake", "customer", &id("1")).await;
        let delay = until_version(&b, "1", 3.0).await;
        eprintln!("invalidation of a hot key reached node B in {delay:?}");
        assert_eq!(driver.calls(), calls + 1);
        driver.version.store(4, Ordering::SeqCst);
        hot(&b, "1", 3.0).await;
        a.invalidate_entity("fake", "customer").await;
        until_version(&b, "1", 4.0).await;
    }
}

#[tokio::test]
async fn hot_keys_are_found_and_shared() {
    let Some(url) = shared_redis() else {
        eprintln!("skipped: KEFU_TEST_REDIS_URL is not set");
        return;
    };
    let driver = Fake::new(Duration::ZERO);
    let config = CacheConfig {
        hot_min_count: 4,
        hot_publish_every: Duration::from_millis(100),
        ..config()
    };
    let a = node(config.clone(), Some(&url), &driver).await;
    let b = node(config, Some(&url), &driver).await;
    for _ in 0..10 {
        get(&a, "customer", "popular").await.expect("read");
    }
    get(&a, "customer", "rare").await.expect("read");
    let s = entity_stats(&a, "customer");
    assert_eq!(s.hot_keys.len(), 1, "{:?}", s.hot_keys);
    assert!(s.hot_keys[0].count >= 10);
    assert!(s.hot_keys[0].label.contains("popular"));
    let key = s.hot_keys[0].key.clone();
    let cache_b = b.cache().expect("a cache");
    assert!(!cache_b.is_hot(&key));
    let started = Instant::now();
    while !cache_b.is_hot(&key) {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "node B never heard of the hot key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache_b.hot_keys().1, vec![key]);
}

/// After a `connectors.yaml` change the entity's answers live under other keys (the
/// configuration's fingerprint): a reload that changes its field map misses both levels; one
/// that changes only a secret or the TTL keeps hitting; an entity-wide invalidation drops the
/// answers of every fingerprint.
async fn reconfigured(redis: Option<&str>) {
    let driver = Fake::new(Duration::ZERO);
    let cache = Arc::new(Cache::new(config(), redis).await.expect("cache"));
    let before = registry(connectors(), &driver, Arc::clone(&cache));
    let scope = before.scope("fake", "customer").expect("cached");
    assert_eq!(scope.fingerprint().len(), 8);
    let key = scope.key("get", &id("1"));
    assert!(
        key.contains(&format!(":c:fake:customer:{}:get:", scope.fingerprint())),
        "{key}"
    );
    get(&before, "customer", "1").await.expect("read");
    assert_eq!(driver.calls(), 1);

    // Another target and headers (secrets), another TTL: the same shape, the same keys.
    let mut same = connectors();
    let connector = &mut same.connectors[0];
    connector.target = Target::Service {
        base_url: "http://127.0.0.1:2/".to_owned(),
        headers: BTreeMap::from([("Authorization".to_owned(), "Bearer other".to_owned())]),
    };
    if let Some(customer) = connector.entities.get_mut("customer") {
        customer.ttl = Some(Duration::from_secs(30));
    }
    let again = registry(same, &driver, Arc::clone(&cache));
    assert_eq!(
        again
            .scope("fake", "customer")
            .expect("cached")
            .fingerprint(),
        scope.fingerprint()
    );
    get(&again, "customer", "1").await.expect("read");
    assert_eq!(driver.calls(), 1, "an unchanged shape still hits");

    // Another field map: the old answer is not served.
    let mut changed = connectors();
    if let Some(customer) = changed.connectors[0].entities.get_mut("customer") {
        customer.fields.push(field("name"));
    }
    let after = registry(changed, &driver, Arc::clone(&cache));
    assert_ne!(
        after
            .scope("fake", "customer")
            .expect("cached")
            .fingerprint(),
        scope.fingerprint()
    );
    get(&after, "customer", "1").await.expect("read");
    assert_eq!(
        driver.calls(),
        2,
        "the new shape's first read reached the source"
    );
    get(&after, "customer", "1").await.expect("read");
    assert_eq!(driver.calls(), 2, "and is kept under its new key");
    // The other entities' keys did not change.
    get(&before, "short", "1").await.expect("read");
    get(&after, "short", "1").await.expect("read");
    assert_eq!(driver.calls(), 3);

    // An entity-wide invalidation reaches the answers of both shapes.
    after.invalidate_entity("fake", "customer").await;
    get(&before, "customer", "1").await.expect("read");
    get(&after, "customer", "1").await.expect("read");
    assert_eq!(driver.calls(), 5);
}

#[tokio::test]
async fn a_reload_that_changes_an_entity_misses_level_1() {
    reconfigured(None).await;
}

#[tokio::test]
async fn a_reload_that_changes_an_entity_misses_level_2() {
    let Some(url) = shared_redis() else {
        eprintln!("skipped: KEFU_TEST_REDIS_URL is not set");
        return;
    };
    reconfigured(Some(&url)).await;
}

/// The fingerprint of a loaded file: the same for another password, another for another field.
#[test]
fn the_fingerprint_follows_the_shape_not_the_secrets() {
    let file = |password: &str, name: &str| {
        format!(
            "connectors:\n  - name: erp\n    driver: mysql\n    dsn: \"root:{password}@tcp(db:3306)/erp\"\n    data_map:\n      users:\n        ttl_ms: 1000\n        fields:\n          id: \"user_id\"\n          name: \"{name}\"\n"
        )
    };
    let fingerprint = |text: String| {
        let loaded = connectors::config::load(&text, &|_| None).expect("loads");
        let connector = &loaded.connectors[0];
        connectors::cache::fingerprint(connector, &connector.entities["users"])
    };
    let first = fingerprint(file("s3cret", "nick"));
    assert_eq!(first, fingerprint(file("other", "nick")));
    assert_ne!(first, fingerprint(file("s3cret", "concat(nick, '!')")));
}

/// `level1: false`: the entity is read from Redis only (or, without Redis, from the source
/// every time), concurrent misses still coalesce, and nothing of it stays in level 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn level_1_can_be_switched_off() {
    let shared = shared_redis();
    let mut modes = vec![None];
    match &shared {
        Some(url) => modes.push(Some(url.as_str())),
        None => {
            eprintln!("KEFU_TEST_REDIS_URL is not set: level 1 switched off without Redis only");
        }
    }
    for redis in modes {
        let driver = Fake::new(Duration::ZERO);
        let registry = node(config(), redis, &driver).await;
        for _ in 0..3 {
            let rows = get(&registry, "remote", "1").await.expect("read");
            assert_eq!(version(&rows), 0.0);
        }
        let s = entity_stats(&registry, "remote");
        assert_eq!(s.l1_hits, 0);
        if redis.is_some() {
            assert_eq!(driver.calls(), 1, "Redis answered the later reads");
            assert_eq!((s.l2_hits, s.loads), (2, 1));
        } else {
            assert_eq!(driver.calls(), 3, "without Redis every read is a load");
            assert_eq!(s.loads, 3);
        }
        let cache = registry.cache().expect("a cache");
        cache.run_pending_tasks().await;
        let stats = cache.stats();
        assert_eq!(stats.l1_bytes, 0, "{stats:?}");
        assert_eq!(entity_stats(&registry, "remote").expirations, 0);

        // A stampede is still one load.
        let slow = Fake::new(Duration::from_millis(100));
        let registry = Arc::new(node(config(), redis, &slow).await);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let registry = Arc::clone(&registry);
            tasks.push(tokio::spawn(async move {
                get(&registry, "remote", "cold").await
            }));
        }
        for task in tasks {
            task.await.expect("task").expect("read");
        }
        assert_eq!(slow.calls(), 1, "50 concurrent misses, one source query");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `redis-server` of the test's own on `port` (none of the machine's), or `None` when
/// there is no `redis-server` to start.
async fn own_redis(port: u16) -> Option<tokio::process::Child> {
    let child = tokio::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(child)
}

/// Redis stops mid-test (its own `redis-server`, killed) and starts again on the same port:
/// reads never fail, and afterwards the cache is back on Redis with a cleared level 1.
#[tokio::test]
async fn a_redis_outage_is_not_an_error() {
    let port = free_port();
    let Some(mut child) = own_redis(port).await else {
        eprintln!("skipped: no redis-server to start");
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    let driver = Fake::new(Duration::ZERO);
    let config = config();
    let registry = node(config.clone(), Some(&url), &driver).await;
    get(&registry, "customer", "1").await.expect("read");
    assert_eq!(registry.cache().expect("a cache").stats().redis, "up");

    child.kill().await.expect("kill redis-server");

    // Level 1 still answers; a new key comes from the source; each within a short time.
    let t = Instant::now();
    get(&registry, "customer", "1").await.expect("level 1");
    assert_eq!(driver.calls(), 1);
    get(&registry, "customer", "2").await.expect("the source");
    assert_eq!(driver.calls(), 2);
    get(&registry, "customer", "2").await.expect("level 1");
    assert_eq!(driver.calls(), 2);
    registry.invalidate("fake", "customer", &id("1")).await;
    get(&registry, "customer", "1").await.expect("the source");
    assert_eq!(driver.calls(), 3);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    let stats = registry.cache().expect("a cache").stats();
    assert_eq!(stats.redis, "down");
    // The lost subscription, the invalidation's `DEL` and `PUBLISH` at least (reads may have
    // skipped Redis for a second after the first failure).
    assert!(stats.redis_errors >= 2, "{stats:?}");

    // Redis comes back (empty: it kept nothing): the subscription returns by itself, level 1
    // was cleared (messages of the gap are lost), and answers go to Redis again.
    let _back = own_redis(port).await.expect("redis-server starts again");
    let started = Instant::now();
    while registry.cache().expect("a cache").stats().redis != "up" {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the cache did not reconnect to Redis"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("back on Redis {:?} after it restarted", started.elapsed());
    get(&registry, "customer", "2").await.expect("read");
    assert_eq!(
        driver.calls(),
        4,
        "level 1 was cleared when the subscription came back"
    );
    // The connection for reads may need a failed call to notice the new server: answers
    // reach Redis again within a few tries.
    let other = node(config, Some(&url), &driver).await;
    let started = Instant::now();
    for n in 0.. {
        let key = format!("after-{n}");
        get(&registry, "customer", &key).await.expect("read");
        let calls = driver.calls();
        get(&other, "customer", &key).await.expect("read");
        if driver.calls() == calls {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "answers never reached Redis again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A cache whose Redis is not there from the start works too.
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let t = Instant::now();
    let driver = Fake::new(Duration::ZERO);
    let registry = node(self::config(), Some(&dead), &driver).await;
    get(&registry, "customer", "1").await.expect("the source");
    get(&registry, "customer", "1").await.expect("level 1");
    assert_eq!(driver.calls(), 1);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(registry.cache().expect("a cache").stats().redis_errors >= 1);
}

#[tokio::test]
async fn a_malformed_redis_url_is_refused() {
    let err = Cache::new(config(), Some("not a url"))
        .await
        .err()
        .expect("refused");
    assert!(err.0.contains("Redis URL"), "{err}");
}

/// The server runs calls on spawned tasks: a call through the cache must stay `Send`.
#[tokio::test]
async fn a_cached_call_is_send() {
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let driver = Fake::new(Duration::ZERO);
    let registry = Arc::new(node(config(), None, &driver).await);
    let task = tokio::spawn(async move { assert_send(get(&registry, "customer", "1")).await });
    task.await.expect("task").expect("read");
}
