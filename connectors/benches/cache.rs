//! The read cache on a Zipf workload over MariaDB: throughput and latency percentiles of `get`
//! through the [`Registry`] with no cache, with Redis only and with both levels, 16 callers at
//! once; the hit ratios from [`Cache::stats`] beside a plain LRU of the same size in entries;
//! and single-caller timings of a level-1 hit and a level-2 (Redis) hit.
//!
//! `KEFU_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test \
//!  KEFU_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench -p connectors --bench cache`
//! (those two are the defaults). It creates a database `kefu_cache_bench_{pid}` and Redis keys
//! under `kefu_cache_bench_{pid}`, and drops both at the end. A plain measurement loop, not
//! criterion's statistics. "Redis only" is the entity's `level1: false`, as a
//! `connectors.yaml` would say it.
//!
//! `cargo bench -p connectors --bench cache -- l1` measures only the level-1 hit (one warm key,
//! one caller, an in-memory source shaped like the table's rows, no database or Redis) —
//! the quick loop for work on the hit path. "L1 hit" is a hot key (answered by the hot-key
//! front); "L1 (moka)" makes no key hot (`hot_min_count` out of reach), so every hit goes
//! through moka, as a key read less often than `hot_min_count` times per decay period does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use connectors::cache::{Cache, CacheConfig, EntityCacheStats};
use connectors::{
    CallFuture, Connector, ConnectorError, Connectors, Driver, DriverKind, Entity, Field,
    FieldSource, FieldType, Operation, Params, Registry, Rows, SqlExpr, Target,
};
use flows::Value;
use sqlx::{AssertSqlSafe, Connection, Executor};

const CONCURRENCY: usize = 16;
const ROWS: usize = 100_000;
const DURATION: Duration = Duration::from_secs(10);
/// The Zipf exponent: key k (1-based rank) is read with probability ∝ 1 / k^s.
const ZIPF_S: f64 = 1.0;
const SEED: u64 = 0x6b65_6675_6361_6368;
/// Keys drawn in advance; the callers take them in turn (wrapping around if they run out).
const SEQUENCE: usize = 4_000_000;
/// Level 1's room in the "small level 1" run and the hit-ratio simulation.
const SMALL_L1: u64 = 1 << 20;
const MICRO_L1_ITERATIONS: usize = 200_000;
const MICRO_L2_ITERATIONS: usize = 20_000;

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

fn entity(table: &str, level1: bool) -> Entity {
    Entity {
        name: "customers".to_owned(),
        table: Some(table.to_owned()),
        key: "id".to_owned(),
        fields: vec![
            field("id", "id", &["id"]),
            field(
                "name",
                "concat(first_name, ' ', last_name)",
                &["first_name", "last_name"],
            ),
            field("balance", "balance", &["balance"]),
        ],
        error_field: None,
        operations: BTreeMap::from([("get".to_owned(), Operation::Get)]),
        ttl: Some(Duration::from_secs(600)),
        level1,
    }
}

fn config(url: &str, table: &str, level1: bool) -> Connectors {
    Connectors {
        customer: None,
        connectors: vec![Connector {
            name: "db".to_owned(),
            driver: DriverKind::MySql,
            target: Target::Database {
                url: url.to_owned(),
            },
            timeout: Duration::from_secs(5),
            retries: 2,
            pool_size: CONCURRENCY as u32,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            entities: BTreeMap::from([("customers".to_owned(), entity(table, level1))]),
        }],
    }
}

/// splitmix64: small, seedable, good enough for drawing keys.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `len` ids in 1..=n, Zipf-distributed with exponent `s` (id = rank), by inverting the CDF.
fn zipf_sequence(n: usize, s: f64, len: usize, seed: u64) -> Vec<u32> {
    let mut cdf = Vec::with_capacity(n);
    let mut sum = 0.0;
    for k in 1..=n {
        sum += 1.0 / (k as f64).powf(s);
        cdf.push(sum);
    }
    let mut rng = Rng(seed);
    (0..len)
        .map(|_| {
            let u = rng.next_f64() * sum;
            let rank = cdf.partition_point(|&c| c <= u).min(n - 1);
            rank as u32 + 1
        })
        .collect()
}

/// A plain LRU (hash map + doubly linked list in a slab) that only counts hits.
struct Lru {
    capacity: usize,
    map: HashMap<u32, usize>,
    /// (key, prev, next); `usize::MAX` is "none".
    nodes: Vec<(u32, usize, usize)>,
    head: usize,
    tail: usize,
}

const NONE: usize = usize::MAX;

impl Lru {
    fn new(capacity: usize) -> Lru {
        Lru {
            capacity: capacity.max(1),
            map: HashMap::with_capacity(capacity),
            nodes: Vec::with_capacity(capacity),
            head: NONE,
            tail: NONE,
        }
    }

    fn unlink(&mut self, i: usize) {
        let (_, prev, next) = self.nodes[i];
        if prev == NONE {
            self.head = next;
        } else {
            self.nodes[prev].2 = next;
        }
        if next == NONE {
            self.tail = prev;
        } else {
            self.nodes[next].1 = prev;
        }
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].1 = NONE;
        self.nodes[i].2 = self.head;
        if self.head != NONE {
            self.nodes[self.head].1 = i;
        }
        self.head = i;
        if self.tail == NONE {
            self.tail = i;
        }
    }

    /// Reads `key`: true on a hit; on a miss it is inserted, the least recent key evicted.
    fn access(&mut self, key: u32) -> bool {
        if let Some(&i) = self.map.get(&key) {
            self.unlink(i);
            self.push_front(i);
            return true;
        }
        let i = if self.nodes.len() < self.capacity {
            self.nodes.push((key, NONE, NONE));
            self.nodes.len() - 1
        } else {
            let victim = self.tail;
            self.unlink(victim);
            self.map.remove(&self.nodes[victim].0);
            self.nodes[victim].0 = key;
            victim
        };
        self.map.insert(key, i);
        self.push_front(i);
        false
    }
}

fn lru_hit_ratio(keys: &[u32], capacity: usize) -> f64 {
    let mut lru = Lru::new(capacity);
    let hits = keys.iter().filter(|&&k| lru.access(k)).count();
    hits as f64 / keys.len().max(1) as f64
}

/// The table's row `id` as the driver answers it.
fn row(id: u32) -> Rows {
    vec![BTreeMap::from([
        ("id".to_owned(), Value::Number(f64::from(id))),
        (
            "name".to_owned(),
            Value::String(format!("First{id} Last{id}")),
        ),
        ("balance".to_owned(), Value::Number(f64::from(id) + 0.25)),
    ])]
}

fn params(id: u32) -> Params {
    BTreeMap::from([("id".to_owned(), Value::Number(f64::from(id)))])
}

/// Nanoseconds at percentile `p` of sorted samples.
fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn micros(ns: u64) -> f64 {
    ns as f64 / 1e3
}

struct Run {
    /// How many keys of the sequence were read (in about the order the callers took them).
    reads: usize,
}

async fn measure(label: &str, registry: Arc<Registry>, keys: Arc<Vec<u32>>) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let registry = registry.clone();
        let keys = keys.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            while start.elapsed() < DURATION {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let p = params(keys[i % keys.len()]);
                let t = Instant::now();
                let rows = registry
                    .call("db", "customers", "get", &p)
                    .await
                    .expect("get");
                latencies.push(t.elapsed().as_nanos() as u64);
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
    println!(
        "{label:<22} {:>9.0} lookups/s   p50 {:>9.1} µs   p99 {:>9.1} µs   ({} lookups, {CONCURRENCY} at once, {:.1} s)",
        all.len() as f64 / elapsed.as_secs_f64(),
        micros(pct(&all, 0.50)),
        micros(pct(&all, 0.99)),
        all.len(),
        elapsed.as_secs_f64()
    );
    Run {
        reads: next.load(Ordering::Relaxed),
    }
}

fn entity_stats(cache: &Cache) -> EntityCacheStats {
    cache
        .stats()
        .entities
        .into_iter()
        .find(|e| e.connector == "db" && e.entity == "customers")
        .expect("stats of db.customers")
}

/// Prints the cache's ratios and a plain LRU's over the same keys with as many entries.
async fn report_cache(cache: &Cache, keys: &[u32], reads: usize) {
    cache.run_pending_tasks().await;
    let all = cache.stats();
    let s = entity_stats(cache);
    let total = s.l1_hits + s.coalesced + s.misses;
    let consumed: Vec<u32> = (0..reads).map(|i| keys[i % keys.len()]).collect();
    println!(
        "    reads {total}: L1 hits {} ({:.2} %), coalesced {}, L1 misses {} → L2 hits {} ({:.2} % of misses), loads {}; \
         overall hit ratio {:.2} %; L1 {} entries, {:.1} MiB; evictions {}, expirations {}, Redis errors {}",
        s.l1_hits,
        s.l1_hit_ratio().unwrap_or(0.0) * 100.0,
        s.coalesced,
        s.misses,
        s.l2_hits,
        s.l2_hit_ratio().unwrap_or(0.0) * 100.0,
        s.loads,
        s.hit_ratio().unwrap_or(0.0) * 100.0,
        all.l1_entries,
        all.l1_bytes as f64 / (1 << 20) as f64,
        s.evictions,
        s.expirations,
        all.redis_errors,
    );
    if all.l1_entries == 0 || s.l1_hits == 0 {
        return;
    }
    let lru = lru_hit_ratio(&consumed, all.l1_entries as usize);
    println!(
        "    plain LRU of {} entries over the same {} keys: hit ratio {:.2} % (moka L1 {:.2} %)",
        all.l1_entries,
        consumed.len(),
        lru * 100.0,
        s.l1_hit_ratio().unwrap_or(0.0) * 100.0,
    );
}

/// Level 1 alone (no Redis, an instant loader, one caller, no expiry in the run) over the
/// first `reads` keys: moka's hit ratio and a plain LRU's at the entry count moka ended with.
async fn hit_ratio_simulation(l1_bytes: u64, table: &str, keys: &[u32], reads: usize) {
    let cache = Cache::new(
        CacheConfig {
            l1_max_bytes: l1_bytes,
            cold_l1_ttl: Duration::from_secs(3600),
            ..CacheConfig::default()
        },
        None,
    )
    .await
    .expect("cache");
    let connectors = config("mysql://unused", table, true);
    let connector = &connectors.connectors[0];
    let scope = cache.scope(connector, &connector.entities["customers"]);
    // Every read is timed; those that did not call the loader were level-1 hits (hot keys
    // from the front, the others through moka).
    let mut hits = Vec::with_capacity(reads);
    for &id in &keys[..reads] {
        let p = params(id);
        let loaded = std::cell::Cell::new(false);
        let t = Instant::now();
        cache
            .get_or_load(&scope, "get", &p, || {
                loaded.set(true);
                async move { Ok(row(id)) }
            })
            .await
            .expect("get");
        let ns = t.elapsed().as_nanos() as u64;
        if !loaded.get() {
            hits.push(ns);
        }
    }
    hits.sort_unstable();
    cache.run_pending_tasks().await;
    let all = cache.stats();
    let s = entity_stats(&cache);
    let lru = lru_hit_ratio(&keys[..reads], all.l1_entries as usize);
    println!(
        "L1 {:>5.1} MiB, {reads} reads, 1 caller: moka (TinyLFU) hit ratio {:.2} % holding {} entries; plain LRU of {} entries {:.2} %",
        l1_bytes as f64 / (1 << 20) as f64,
        s.l1_hit_ratio().unwrap_or(0.0) * 100.0,
        all.l1_entries,
        all.l1_entries,
        lru * 100.0
    );
    println!(
        "           its {} level-1 hits (Cache::get_or_load): p50 {:.2} µs   p99 {:.2} µs   p99.9 {:.2} µs   over 2 µs {:.2} %",
        hits.len(),
        micros(pct(&hits, 0.50)),
        micros(pct(&hits, 0.99)),
        micros(pct(&hits, 0.999)),
        hits.iter().filter(|&&ns| ns > 2_000).count() as f64 * 100.0 / hits.len().max(1) as f64,
    );
}

/// One caller, `iterations` reads of a warm key through `registry` and through the cache
/// directly; prints p50/p99/p99.9.
async fn micro(label: &str, registry: &Registry, iterations: usize) {
    let cache = registry.cache().expect("a cache");
    let scope = registry.scope("db", "customers").expect("a cached entity");
    let p = params(1);
    registry
        .call("db", "customers", "get", &p)
        .await
        .expect("warm");
    let before = entity_stats(cache);
    let mut via_registry = Vec::with_capacity(iterations);
    let mut via_cache = Vec::with_capacity(iterations);
    // Two separate loops: interleaved, moka's periodic housekeeping (every so many reads)
    // would fall on the same one of the two each time.
    for _ in 0..iterations {
        let t = Instant::now();
        let rows = registry
            .call("db", "customers", "get", &p)
            .await
            .expect("get");
        via_registry.push(t.elapsed().as_nanos() as u64);
        assert_eq!(rows.len(), 1);
    }
    for _ in 0..iterations {
        let t = Instant::now();
        let rows = cache
            .get_or_load(scope, "get", &p, || async {
                Err(ConnectorError::Remote(
                    "the key is warm: no load expected".to_owned(),
                ))
            })
            .await
            .expect("get");
        via_cache.push(t.elapsed().as_nanos() as u64);
        assert_eq!(rows.len(), 1);
    }
    let after = entity_stats(cache);
    via_registry.sort_unstable();
    via_cache.sort_unstable();
    for (how, samples) in [
        ("Registry::call", &via_registry),
        ("Cache::get_or_load", &via_cache),
    ] {
        println!(
            "{label:<10} {how:<19} p50 {:>8.2} µs   p95 {:>8.2} µs   p98 {:>8.2} µs   p99 {:>8.2} µs   p99.9 {:>8.2} µs   max {:>9.1} µs   over 2 µs {:.2} %   ({iterations} reads)",
            micros(pct(samples, 0.50)),
            micros(pct(samples, 0.95)),
            micros(pct(samples, 0.98)),
            micros(pct(samples, 0.99)),
            micros(pct(samples, 0.999)),
            micros(*samples.last().expect("samples")),
            samples.iter().filter(|&&ns| ns > 2_000).count() as f64 * 100.0 / samples.len() as f64,
        );
    }
    println!(
        "           during it: L1 hits +{}, L2 hits +{}, coalesced +{}, loads +{}",
        after.l1_hits - before.l1_hits,
        after.l2_hits - before.l2_hits,
        after.coalesced - before.coalesced,
        after.loads - before.loads
    );
}

/// Redis's own round trip for the same value, for comparison with a level-2 hit.
async fn raw_redis_get(conn: &mut redis::aio::ConnectionManager, key: &str) {
    let mut samples = Vec::with_capacity(MICRO_L2_ITERATIONS);
    for _ in 0..MICRO_L2_ITERATIONS {
        let t = Instant::now();
        let _: Option<Vec<u8>> = redis::cmd("GET")
            .arg(key)
            .query_async(conn)
            .await
            .expect("GET");
        samples.push(t.elapsed().as_nanos() as u64);
    }
    samples.sort_unstable();
    println!(
        "raw GET    (redis crate)          p50 {:>8.2} µs   p99 {:>8.2} µs   p99.9 {:>8.2} µs   ({MICRO_L2_ITERATIONS} reads)",
        micros(pct(&samples, 0.50)),
        micros(pct(&samples, 0.99)),
        micros(pct(&samples, 0.999)),
    );
}

async fn delete_keys(conn: &mut redis::aio::ConnectionManager, pattern: &str) -> usize {
    let mut cursor = 0u64;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        if !keys.is_empty() {
            deleted += keys.len();
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(conn)
                .await
                .expect("UNLINK");
        }
        if next == 0 {
            return deleted;
        }
        cursor = next;
    }
}

/// An in-memory source: row `id` of the table, at once.
struct Memory;

impl Driver for Memory {
    fn call<'a>(
        &'a self,
        _: &'a Entity,
        _: &'a str,
        _: &'a Operation,
        params: &'a Params,
    ) -> CallFuture<'a> {
        let id = match params.get("id") {
            Some(Value::Number(n)) => *n as u32,
            _ => 0,
        };
        Box::pin(async move { Ok(row(id)) })
    }

    fn ping(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + '_>> {
        Box::pin(async { Ok(()) })
    }
}

/// `-- l1`: the level-1 hit alone, over an in-memory source (see the module's documentation).
fn level_1_only() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for (label, hot_min_count) in [("L1 hit", 8), ("L1 (moka)", u32::MAX)] {
            let cache = Arc::new(
                Cache::new(
                    CacheConfig {
                        hot_min_count,
                        ..CacheConfig::default()
                    },
                    None,
                )
                .await
                .expect("cache"),
            );
            let registry = Registry::with_drivers(
                config("mysql://unused", "customers", true),
                HashMap::from([("db".to_owned(), Arc::new(Memory) as Arc<dyn Driver>)]),
            )
            .with_cache(cache);
            for _ in 0..3 {
                micro(label, &registry, MICRO_L1_ITERATIONS).await;
            }
        }
        let keys = zipf_sequence(ROWS, ZIPF_S, 1_000_000, SEED);
        for l1_bytes in [SMALL_L1, 64 * SMALL_L1] {
            hit_ratio_simulation(l1_bytes, "customers", &keys, keys.len()).await;
        }
    });
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if std::env::args().any(|a| a == "l1") {
        level_1_only();
        return;
    }
    let mysql_url = std::env::var("KEFU_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let redis_url = std::env::var("KEFU_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let unique = format!("kefu_cache_bench_{}", std::process::id());
        let mut conn = sqlx::MySqlConnection::connect(&mysql_url)
            .await
            .expect("mysql");
        conn.execute(AssertSqlSafe(format!("CREATE DATABASE {unique}")))
            .await
            .expect("database");
        let table = format!("{unique}.customers");
        conn.execute(AssertSqlSafe(format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY, first_name VARCHAR(50), last_name VARCHAR(50), balance DECIMAL(10,2))"
        )))
        .await
        .expect("create");
        for chunk in (1..=ROWS).collect::<Vec<_>>().chunks(5000) {
            let values: Vec<String> = chunk
                .iter()
                .map(|i| format!("({i}, 'First{i}', 'Last{i}', {i}.25)"))
                .collect();
            conn.execute(AssertSqlSafe(format!(
                "INSERT INTO {table} VALUES {}",
                values.join(", ")
            )))
            .await
            .expect("insert");
        }

        let keys = Arc::new(zipf_sequence(ROWS, ZIPF_S, SEQUENCE, SEED));
        let distinct = {
            let mut seen = vec![false; ROWS + 1];
            keys.iter().for_each(|&k| seen[k as usize] = true);
            seen.iter().filter(|&&s| s).count()
        };
        println!(
            "MariaDB, {ROWS} rows; Zipf s = {ZIPF_S} over ids 1..={ROWS}, seed {SEED:#x}, {SEQUENCE} keys drawn ({distinct} distinct, id 1 is {:.2} % of reads); {CONCURRENCY} callers, {} s per mode, caches start cold",
            keys.iter().filter(|&&k| k == 1).count() as f64 * 100.0 / keys.len() as f64,
            DURATION.as_secs()
        );

        let client = redis::Client::open(redis_url.as_str()).expect("redis url");
        let mut redis_conn = redis::aio::ConnectionManager::new(client)
            .await
            .expect("redis");

        // 1. No cache.
        let plain = Arc::new(
            Registry::connect(config(&mysql_url, &table, true))
                .await
                .expect("registry"),
        );
        measure("no cache", plain, keys.clone()).await;

        // 2. Redis only: the entity's `level1: false`.
        let redis_only_cache = Arc::new(
            Cache::new(
                CacheConfig {
                    prefix: format!("{unique}_r"),
                    ..CacheConfig::default()
                },
                Some(&redis_url),
            )
            .await
            .expect("cache"),
        );
        let redis_only = Arc::new(
            Registry::connect(config(&mysql_url, &table, false))
                .await
                .expect("registry")
                .with_cache(redis_only_cache.clone()),
        );
        let run = measure("Redis only", redis_only.clone(), keys.clone()).await;
        report_cache(&redis_only_cache, &keys, run.reads).await;

        // 3. Both levels, default configuration (64 MiB of level 1).
        let two_cache = Arc::new(
            Cache::new(
                CacheConfig {
                    prefix: format!("{unique}_2"),
                    ..CacheConfig::default()
                },
                Some(&redis_url),
            )
            .await
            .expect("cache"),
        );
        let two = Arc::new(
            Registry::connect(config(&mysql_url, &table, true))
                .await
                .expect("registry")
                .with_cache(two_cache.clone()),
        );
        let run = measure("two levels (64 MiB L1)", two.clone(), keys.clone()).await;
        report_cache(&two_cache, &keys, run.reads).await;

        // 3b. Both levels with a small level 1, where admission and eviction matter.
        let small_cache = Arc::new(
            Cache::new(
                CacheConfig {
                    prefix: format!("{unique}_s"),
                    l1_max_bytes: SMALL_L1,
                    ..CacheConfig::default()
                },
                Some(&redis_url),
            )
            .await
            .expect("cache"),
        );
        let small = Arc::new(
            Registry::connect(config(&mysql_url, &table, true))
                .await
                .expect("registry")
                .with_cache(small_cache.clone()),
        );
        let run = measure("two levels (1 MiB L1)", small, keys.clone()).await;
        report_cache(&small_cache, &keys, run.reads).await;

        println!();
        for l1_bytes in [SMALL_L1, 4 * SMALL_L1, 64 * SMALL_L1] {
            hit_ratio_simulation(l1_bytes, &table, &keys, 1_000_000).await;
        }

        println!();
        micro("L1 hit", &two, MICRO_L1_ITERATIONS).await;
        let moka_path = Registry::connect(config(&mysql_url, &table, true))
            .await
            .expect("registry")
            .with_cache(Arc::new(
                Cache::new(
                    CacheConfig {
                        prefix: format!("{unique}_m"),
                        hot_min_count: u32::MAX,
                        ..CacheConfig::default()
                    },
                    Some(&redis_url),
                )
                .await
                .expect("cache"),
            ));
        micro("L1 (moka)", &moka_path, MICRO_L1_ITERATIONS).await;
        micro("L2 hit", &redis_only, MICRO_L2_ITERATIONS).await;
        raw_redis_get(
            &mut redis_conn,
            &redis_only
                .scope("db", "customers")
                .expect("a cached entity")
                .key("get", &params(1)),
        )
        .await;

        drop((redis_only, two));
        drop((redis_only_cache, two_cache, small_cache));
        let deleted = delete_keys(&mut redis_conn, &format!("{unique}_*")).await;
        println!("\ncleaned up: {deleted} Redis keys, database {unique}");
        conn.execute(AssertSqlSafe(format!("DROP DATABASE {unique}")))
            .await
            .expect("drop");
    });
}
