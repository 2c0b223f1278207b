//! A two-level cache for connector reads: level 1 in this process ([`moka`], TinyLFU
//! admission, weighed by the answer's size), level 2 in Redis (shared by every node), then the
//! source (the registry's call with its timeout, retries and breaker).
//!
//! # What is cached
//!
//! Only reads (`Operation::is_read`) of entities with a `ttl_ms` go through the cache; the
//! answer of one call (connector, entity, operation and parameters) is one entry, under
//! `{prefix}:c:{connector}:{entity}:{operation}:{hash}` where the hash is the SHA-256 (first
//! 128 bits, hex) of the parameters as canonical JSON (maps in key order). An empty answer is
//! cached too (negative caching), for `min(ttl, negative_ttl)`; errors are never cached. A
//! level-2 value is one format byte ([`FORMAT`]) and JSON `{at, ttl, rows}` (`at`: when it was
//! loaded, Unix ms), stored with Redis's own expiry (`PX`).
//!
//! # Single flight
//!
//! Concurrent misses of one key on one node become one load: level 1's `try_get_with` runs the
//! first caller's load (level 2, then the source) and the others wait for its result (an error
//! is handed to every waiter and not kept). Across nodes, each node loads at most once.
//!
//! # Hot keys
//!
//! moka decides admission to level 1 by itself (TinyLFU); the cache does not override it.
//! Beside it, a count-min sketch (4 × 2048 counters, halved every 20 480 reads: the decay)
//! and a top-K list over every cached read find the hot keys: those whose estimated count
//! reaches `hot_min_count`. Hot keys are what [`Cache::stats`] shows and what each node
//! publishes every `hot_publish_every` on `{prefix}:cache:hot`; a node that receives them marks
//! them hot for three periods. The only effect of being hot: a hot key's entry stays in level 1
//! for the entity's whole TTL, a cold key's for at most `cold_l1_ttl` (after which level 2
//! answers it, cheaply and in step with the other nodes).
//!
//! # Invalidation and the staleness bound
//!
//! [`Cache::invalidate`] drops the answers of one entity's operations for given parameters,
//! [`Cache::invalidate_entity`] every answer of an entity: in this node's level 1 at once, in
//! Redis (`DEL`, or `SCAN MATCH` + `UNLINK` for a whole entity — a walk over the keyspace,
//! meant for rare bulk changes), and in the other nodes' level 1 through a message on
//! `{prefix}:cache:invalidate` (entity-wide: a moka invalidation predicate on the key prefix,
//! no generation numbers). A load under way while an invalidation arrives neither writes
//! level 2 nor stays in level 1.
//!
//! The bound: without an invalidation, an answer is at most the entity's TTL old (a level-1
//! entry filled from level 2 expires when the level-2 value does). After an invalidation, other
//! nodes serve the old answer until the message reaches them (pub/sub delivery, normally
//! milliseconds). Messages sent while a node's subscription was down are lost: a node clears
//! its whole level 1 when it subscribes again, and until then the TTL bound holds.
//!
//! # Without Redis, and when Redis fails
//!
//! Without a Redis URL the cache is level 1 only. Every Redis call has a short timeout
//! (`redis_timeout`, 100 ms); a failure is counted, logged as a warning (at most one every
//! 10 s) and the read carries on with level 1 and the source: a Redis outage never becomes an
//! error. After a failure, reads leave Redis alone for a second (so a hung Redis does not add
//! its timeout to every read); invalidations always try. The connection manager and the
//! subscription reconnect by themselves.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use moka::notification::RemovalCause;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{ConnectorError, Entity, Params, Rows};

/// The environment variable the server reads the Redis URL from.
pub const REDIS_URL_ENV: &str = "KEFU_REDIS_URL";
/// The first byte of every level-2 value; a value with another first byte is a miss.
pub const FORMAT: u8 = 1;
/// How many recent load latencies each entity keeps for its percentiles.
const LATENCY_WINDOW: usize = 1024;
const SKETCH_ROWS: usize = 4;
const SKETCH_WIDTH: usize = 2048;
/// Reads between two halvings of the sketch and the top-K counts.
const DECAY_EVERY: u64 = 10 * SKETCH_WIDTH as u64;
/// At most one Redis warning in this time.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// After a failed Redis call, reads leave level 2 alone for this long (invalidations still
/// try), so that a hung Redis does not add its timeout to every read.
const REDIS_PAUSE: Duration = Duration::from_secs(1);

/// How the cache behaves; `CacheConfig::default()` suits a server.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// The start of every Redis key and channel (`kefu`): `{prefix}:c:…`,
    /// `{prefix}:cache:invalidate`, `{prefix}:cache:hot`. Nodes that share a cache share it.
    pub prefix: String,
    /// Level 1's size, in bytes of keys and JSON-encoded answers (default 64 MiB).
    pub l1_max_bytes: u64,
    /// The longest a key that is not hot stays in level 1 (default 10 s; never beyond the TTL).
    pub cold_l1_ttl: Duration,
    /// How long an empty answer is kept, at most (default 5 s; never beyond the TTL).
    pub negative_ttl: Duration,
    /// The longest one Redis call may take before the cache goes on without it (100 ms).
    pub redis_timeout: Duration,
    /// How many keys the top-K list follows (default 32).
    pub hot_top_k: usize,
    /// The estimated recent reads that make a key hot (default 8).
    pub hot_min_count: u32,
    /// How often a node publishes its hot keys (default 5 s).
    pub hot_publish_every: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            prefix: "kefu".to_owned(),
            l1_max_bytes: 64 << 20,
            cold_l1_ttl: Duration::from_secs(10),
            negative_ttl: Duration::from_secs(5),
            redis_timeout: Duration::from_millis(100),
            hot_top_k: 32,
            hot_min_count: 8,
            hot_publish_every: Duration::from_secs(5),
        }
    }
}

/// The cache could not be set up (only a malformed Redis URL does that).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CacheError(pub String);

/// The read cache; share it (`Arc`) between the registry and whoever invalidates.
pub struct Cache {
    inner: Arc<Inner>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// One level-1 entry.
#[derive(Clone)]
struct Entry {
    rows: Arc<Rows>,
    /// How long it stays in level 1 from its insertion.
    l1_ttl: Duration,
    weight: u32,
}

struct Expiry;

impl moka::Expiry<String, Entry> for Expiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.l1_ttl)
    }
}

struct RedisLink {
    client: redis::Client,
    conn: ConnectionManager,
}

struct Inner {
    config: CacheConfig,
    /// This node's id in published messages (its own are ignored).
    node: String,
    /// `{prefix}:c:`
    key_prefix: String,
    invalidate_channel: String,
    hot_channel: String,
    l1: moka::future::Cache<String, Entry>,
    redis: Option<RedisLink>,
    stats: Arc<Mutex<Stats>>,
    hot: Mutex<HotKeys>,
    /// Keys other nodes found hot, until when.
    remote_hot: Mutex<HashMap<String, Instant>>,
    /// Bumped by every invalidation; a load that sees it change does not keep its answer.
    invalidations: AtomicU64,
    redis_down: AtomicBool,
    /// Until when reads skip level 2 (after a failure).
    redis_pause: Mutex<Option<Instant>>,
    warning: Mutex<(Option<Instant>, u64)>,
}

#[derive(Default)]
struct Stats {
    /// connector → entity → counters.
    entities: HashMap<String, HashMap<String, Counters>>,
    redis_errors: u64,
}

#[derive(Default)]
struct Counters {
    l1_hits: u64,
    l2_hits: u64,
    coalesced: u64,
    loads: u64,
    load_errors: u64,
    evictions: u64,
    expirations: u64,
    redis_errors: u64,
    latencies: VecDeque<Duration>,
}

/// The numbers of the whole cache, for the admin page.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheStats {
    /// `off` (no Redis configured), `up` or `down` (the last Redis call failed).
    pub redis: &'static str,
    /// Failed or timed-out Redis calls, of reads and of everything else.
    pub redis_errors: u64,
    pub l1_entries: u64,
    /// Level 1's weight: bytes of keys and encoded answers.
    pub l1_bytes: u64,
    /// The hottest keys (at most 10), hottest first.
    pub hot_keys: Vec<HotKey>,
    /// Per entity that was read through the cache, by connector then entity.
    pub entities: Vec<EntityCacheStats>,
}

/// One entity's numbers. Every read is one of: a level-1 hit, a level-2 hit, a coalesced read
/// (it waited for another read's load of the same key) or a load from the source.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityCacheStats {
    pub connector: String,
    pub entity: String,
    pub l1_hits: u64,
    pub l2_hits: u64,
    pub coalesced: u64,
    /// Reads level 1 did not answer (`l2_hits + loads`).
    pub misses: u64,
    /// Loads from the source (including failed ones).
    pub loads: u64,
    pub load_errors: u64,
    /// Over the last loads from the source (at most 1024).
    pub load_p50: Option<Duration>,
    pub load_p99: Option<Duration>,
    /// Level-1 entries pushed out (or refused) for room.
    pub evictions: u64,
    /// Level-1 entries that reached their TTL.
    pub expirations: u64,
    /// Failed or timed-out Redis calls of this entity's reads.
    pub redis_errors: u64,
    /// This entity's hottest keys (at most 10).
    pub hot_keys: Vec<HotKey>,
}

impl EntityCacheStats {
    /// The share of reads answered without a load of their own (levels 1 and 2, coalesced).
    pub fn hit_ratio(&self) -> Option<f64> {
        let hits = self.l1_hits + self.l2_hits + self.coalesced;
        let total = hits + self.loads;
        (total > 0).then(|| hits as f64 / total as f64)
    }

    /// The share of reads level 1 answered.
    pub fn l1_hit_ratio(&self) -> Option<f64> {
        let total = self.l1_hits + self.coalesced + self.misses;
        (total > 0).then(|| self.l1_hits as f64 / total as f64)
    }

    /// The share of level-1 misses level 2 answered.
    pub fn l2_hit_ratio(&self) -> Option<f64> {
        (self.misses > 0).then(|| self.l2_hits as f64 / self.misses as f64)
    }
}

/// A hot key: its Redis key, a readable label (`operation {params}`) and its estimated
/// recent reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotKey {
    pub key: String,
    pub label: String,
    pub count: u32,
}

#[derive(Serialize)]
struct StoredRef<'a> {
    at: u64,
    ttl: u64,
    rows: &'a Rows,
}

#[derive(Deserialize)]
struct Stored {
    at: u64,
    ttl: u64,
    rows: Rows,
}

/// What nodes say to each other.
#[derive(Serialize, Deserialize)]
struct Message {
    node: String,
    /// Keys to drop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keys: Vec<String>,
    /// A key prefix (an entity's) whose entries to drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entity_prefix: Option<String>,
    /// Keys the sender finds hot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hot: Vec<String>,
}

/// How a read was answered (inside the single-flight load).
const BY_NOTHING: u8 = 0;
const BY_L2: u8 = 1;
const BY_SOURCE: u8 = 2;

impl Cache {
    /// A cache with level 2 in the Redis at `redis_url` (`redis://host:6379/0`), or level 1
    /// only. Redis need not be up: the cache starts anyway and connects when it can. Waits up
    /// to a second for the invalidation subscription. Must run inside a Tokio runtime.
    pub async fn new(config: CacheConfig, redis_url: Option<&str>) -> Result<Cache, CacheError> {
        let redis = match redis_url {
            None => None,
            Some(url) => {
                let client = redis::Client::open(url).map_err(|e| {
                    CacheError(format!(
                        "cache: the Redis URL {} is not usable: {e}",
                        crate::model::redact_url(url)
                    ))
                })?;
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.redis_timeout))
                    .set_response_timeout(Some(config.redis_timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(1));
                let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
                    .map_err(|e| CacheError(format!("cache: Redis connection manager: {e}")))?;
                Some(RedisLink { client, conn })
            }
        };
        let stats = Arc::new(Mutex::new(Stats::default()));
        let key_prefix = format!("{}:c:", config.prefix);
        let listener_stats = Arc::clone(&stats);
        let listener_prefix = key_prefix.clone();
        let l1 = moka::future::Cache::builder()
            .max_capacity(config.l1_max_bytes)
            .weigher(|_key: &String, entry: &Entry| entry.weight)
            .expire_after(Expiry)
            .support_invalidation_closures()
            .eviction_listener(move |key: Arc<String>, _entry: Entry, cause| {
                let (connector, entity) = split_key(&listener_prefix, &key);
                let mut stats = lock(&listener_stats);
                let counters = stats.counters(connector, entity);
                match cause {
                    RemovalCause::Size => counters.evictions += 1,
                    RemovalCause::Expired => counters.expirations += 1,
                    RemovalCause::Explicit | RemovalCause::Replaced => {}
                }
            })
            .build();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let inner = Arc::new(Inner {
            node: format!("{}-{nanos}", std::process::id()),
            invalidate_channel: format!("{}:cache:invalidate", config.prefix),
            hot_channel: format!("{}:cache:hot", config.prefix),
            key_prefix,
            hot: Mutex::new(HotKeys::new(config.hot_top_k)),
            config,
            l1,
            redis,
            stats,
            remote_hot: Mutex::new(HashMap::new()),
            invalidations: AtomicU64::new(0),
            redis_down: AtomicBool::new(false),
            redis_pause: Mutex::new(None),
            warning: Mutex::new((None, 0)),
        });
        let mut tasks = Vec::new();
        if inner.redis.is_some() {
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            tasks.push(tokio::spawn(subscribe_loop(Arc::clone(&inner), ready_tx)));
            tasks.push(tokio::spawn(publish_hot_loop(Arc::clone(&inner))));
            let _ = tokio::time::timeout(Duration::from_secs(1), ready_rx).await;
        }
        Ok(Cache { inner, tasks })
    }

    /// A cache with the Redis of `KEFU_REDIS_URL` when it is set (and not empty), else level 1
    /// only.
    pub async fn from_env(config: CacheConfig) -> Result<Cache, CacheError> {
        let url = std::env::var(REDIS_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty());
        Cache::new(config, url.as_deref()).await
    }

    /// The key of one call's answer: `{prefix}:c:{connector}:{entity}:{operation}:{hash}`.
    pub fn key(&self, connector: &str, entity: &str, operation: &str, params: &Params) -> String {
        let canonical = serde_json::to_vec(params).unwrap_or_default();
        let digest = Sha256::digest(&canonical);
        let mut key = format!("{}{connector}:{entity}:{operation}:", self.inner.key_prefix);
        for byte in &digest[..16] {
            key.push(char::from(HEX[usize::from(byte >> 4)]));
            key.push(char::from(HEX[usize::from(byte & 15)]));
        }
        key
    }

    /// The answer of `operation` of `entity` with `params`: from level 1, level 2, or `load`
    /// (whose answer is then kept for the entity's TTL; an empty one for the negative TTL).
    /// An entity without a TTL is not cached: `load` runs every time.
    pub async fn get_or_load<F, Fut>(
        &self,
        connector: &str,
        entity: &Entity,
        operation: &str,
        params: &Params,
        load: F,
    ) -> Result<Rows, ConnectorError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Rows, ConnectorError>>,
    {
        let Some(ttl) = entity.ttl else {
            return load().await;
        };
        let inner = &*self.inner;
        let key = self.key(connector, &entity.name, operation, params);
        inner.touch_hot(&key, || label(operation, params));
        if let Some(entry) = inner.l1.get(&key).await {
            inner.count(connector, &entity.name, |c| c.l1_hits += 1);
            return Ok((*entry.rows).clone());
        }

        let by = AtomicU8::new(BY_NOTHING);
        let epoch = inner.invalidations.load(Ordering::SeqCst);
        let load_time = Mutex::new(None);
        let init = async {
            if let Some((stored, size)) = inner.l2_get(connector, &entity.name, &key).await {
                by.store(BY_L2, Ordering::SeqCst);
                let left = Duration::from_millis(
                    (stored.at + stored.ttl)
                        .saturating_sub(now_ms())
                        .min(stored.ttl),
                );
                return Ok(Entry {
                    l1_ttl: inner.l1_ttl(&key, left),
                    rows: Arc::new(stored.rows),
                    weight: weight(&key, size),
                });
            }
            by.store(BY_SOURCE, Ordering::SeqCst);
            let started = Instant::now();
            let result = load().await;
            *load_time
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(started.elapsed());
            let rows = result?;
            let keep = if rows.is_empty() {
                ttl.min(inner.config.negative_ttl)
            } else {
                ttl
            };
            let at = now_ms();
            let mut encoded = vec![FORMAT];
            serde_json::to_writer(
                &mut encoded,
                &StoredRef {
                    at,
                    ttl: keep.as_millis() as u64,
                    rows: &rows,
                },
            )
            .map_err(|e| ConnectorError::Remote(format!("cache: cannot encode an answer: {e}")))?;
            if inner.invalidations.load(Ordering::SeqCst) == epoch {
                inner
                    .l2_set(connector, &entity.name, &key, encoded.clone(), keep)
                    .await;
            }
            Ok(Entry {
                l1_ttl: inner.l1_ttl(&key, keep),
                rows: Arc::new(rows),
                weight: weight(&key, encoded.len()),
            })
        };
        let result = inner
            .l1
            .try_get_with::<_, ConnectorError>(key.clone(), init)
            .await;
        let by = by.load(Ordering::SeqCst);
        let load_time = load_time
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.count(connector, &entity.name, |c| {
            match by {
                BY_L2 => c.l2_hits += 1,
                BY_SOURCE => {
                    c.loads += 1;
                    if result.is_err() {
                        c.load_errors += 1;
                    }
                }
                _ => c.coalesced += 1,
            }
            if let Some(t) = load_time {
                if c.latencies.len() == LATENCY_WINDOW {
                    c.latencies.pop_front();
                }
                c.latencies.push_back(t);
            }
        });
        match result {
            Ok(entry) => {
                if by != BY_NOTHING && inner.invalidations.load(Ordering::SeqCst) != epoch {
                    // Invalidated while it loaded: answer it this once, do not keep it.
                    inner.l1.invalidate(&key).await;
                }
                Ok((*entry.rows).clone())
            }
            Err(e) => Err((*e).clone()),
        }
    }

    /// Drops the cached answers of every operation of `entity` called with exactly `params`
    /// (for one row: `{key: value}` names its `get`), here, in Redis and on the other nodes.
    /// Searches and lists that happen to contain the row are not found this way: use
    /// [`Cache::invalidate_entity`], or let their TTL run out.
    pub async fn invalidate(&self, connector: &str, entity: &Entity, params: &Params) {
        let keys: Vec<String> = entity
            .operations
            .keys()
            .map(|op| self.key(connector, &entity.name, op, params))
            .collect();
        self.invalidate_keys(keys).await;
    }

    /// Drops the cached answer of one call, here, in Redis and on the other nodes.
    pub async fn invalidate_call(
        &self,
        connector: &str,
        entity: &str,
        operation: &str,
        params: &Params,
    ) {
        let key = self.key(connector, entity, operation, params);
        self.invalidate_keys(vec![key]).await;
    }

    async fn invalidate_keys(&self, keys: Vec<String>) {
        let inner = &*self.inner;
        inner.invalidations.fetch_add(1, Ordering::SeqCst);
        for key in &keys {
            inner.l1.invalidate(key).await;
        }
        let Some(redis) = &inner.redis else {
            return;
        };
        let mut conn = redis.conn.clone();
        let mut del = redis::cmd("DEL");
        for key in &keys {
            del.arg(key);
        }
        inner
            .redis_call("DEL", None, del.query_async::<()>(&mut conn))
            .await;
        inner
            .publish(
                &inner.invalidate_channel,
                &Message {
                    node: inner.node.clone(),
                    keys,
                    entity_prefix: None,
                    hot: Vec::new(),
                },
            )
            .await;
    }

    /// Drops every cached answer of `entity`, here, in Redis (a `SCAN` of the keyspace) and on
    /// the other nodes.
    pub async fn invalidate_entity(&self, connector: &str, entity: &str) {
        let inner = &*self.inner;
        let prefix = format!("{}{connector}:{entity}:", inner.key_prefix);
        inner.invalidations.fetch_add(1, Ordering::SeqCst);
        inner.drop_prefix(&prefix);
        let Some(redis) = &inner.redis else {
            return;
        };
        let mut conn = redis.conn.clone();
        let pattern = format!("{}*", glob_escape(&prefix));
        let scan = async {
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                if !keys.is_empty() {
                    redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async::<()>(&mut conn)
                        .await?;
                }
                if next == 0 {
                    return redis::RedisResult::Ok(());
                }
                cursor = next;
            }
        };
        // A walk over the keyspace: more time than one call.
        match tokio::time::timeout(inner.config.redis_timeout * 50, scan).await {
            Ok(Ok(())) => inner.redis_down.store(false, Ordering::SeqCst),
            Ok(Err(e)) => inner.redis_failed("SCAN/UNLINK", &e.to_string(), None),
            Err(_) => inner.redis_failed("SCAN/UNLINK", "timed out", None),
        }
        inner
            .publish(
                &inner.invalidate_channel,
                &Message {
                    node: inner.node.clone(),
                    keys: Vec::new(),
                    entity_prefix: Some(prefix),
                    hot: Vec::new(),
                },
            )
            .await;
    }

    /// The keys this node finds hot now (estimated recent reads at least `hot_min_count`),
    /// hottest first, and those other nodes said were hot.
    pub fn hot_keys(&self) -> (Vec<HotKey>, Vec<String>) {
        let local = self.inner.local_hot();
        let now = Instant::now();
        let mut remote: Vec<String> = lock(&self.inner.remote_hot)
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(k, _)| k.clone())
            .collect();
        remote.sort();
        (local, remote)
    }

    /// Whether `key` counts as hot here (found here, or announced by another node).
    pub fn is_hot(&self, key: &str) -> bool {
        self.inner.is_hot(key)
    }

    /// The cache's numbers.
    pub fn stats(&self) -> CacheStats {
        let inner = &*self.inner;
        let hot = inner.local_hot();
        let stats = lock(&inner.stats);
        let mut entities = Vec::new();
        for (connector, map) in &stats.entities {
            for (entity, c) in map {
                let mut sorted: Vec<Duration> = c.latencies.iter().copied().collect();
                sorted.sort_unstable();
                let pct = |p: f64| -> Option<Duration> {
                    if sorted.is_empty() {
                        return None;
                    }
                    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
                    Some(sorted[i - 1])
                };
                let prefix = format!("{}{connector}:{entity}:", inner.key_prefix);
                entities.push(EntityCacheStats {
                    connector: connector.clone(),
                    entity: entity.clone(),
                    l1_hits: c.l1_hits,
                    l2_hits: c.l2_hits,
                    coalesced: c.coalesced,
                    misses: c.l2_hits + c.loads,
                    loads: c.loads,
                    load_errors: c.load_errors,
                    load_p50: pct(0.50),
                    load_p99: pct(0.99),
                    evictions: c.evictions,
                    expirations: c.expirations,
                    redis_errors: c.redis_errors,
                    hot_keys: hot
                        .iter()
                        .filter(|h| h.key.starts_with(&prefix))
                        .take(10)
                        .cloned()
                        .collect(),
                });
            }
        }
        entities.sort_by(|a, b| (&a.connector, &a.entity).cmp(&(&b.connector, &b.entity)));
        CacheStats {
            redis: match (&inner.redis, inner.redis_down.load(Ordering::SeqCst)) {
                (None, _) => "off",
                (Some(_), false) => "up",
                (Some(_), true) => "down",
            },
            redis_errors: stats.redis_errors,
            l1_entries: inner.l1.entry_count(),
            l1_bytes: inner.l1.weighted_size(),
            hot_keys: hot.into_iter().take(10).collect(),
            entities,
        }
    }

    /// Applies level 1's pending work (expirations, evictions, invalidations) now, so that
    /// [`Cache::stats`] counts them; the cache does it by itself from time to time.
    pub async fn run_pending_tasks(&self) {
        self.inner.l1.run_pending_tasks().await;
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Inner {
    fn count(&self, connector: &str, entity: &str, f: impl FnOnce(&mut Counters)) {
        f(lock(&self.stats).counters(connector, entity));
    }

    fn touch_hot(&self, key: &str, label: impl FnOnce() -> String) {
        lock(&self.hot).touch(key, label);
    }

    fn local_hot(&self) -> Vec<HotKey> {
        lock(&self.hot).hot(self.config.hot_min_count)
    }

    fn is_hot(&self, key: &str) -> bool {
        if lock(&self.hot).is_hot(key, self.config.hot_min_count) {
            return true;
        }
        lock(&self.remote_hot)
            .get(key)
            .is_some_and(|until| *until > Instant::now())
    }

    /// How long a fresh entry with `left` to live stays in level 1.
    fn l1_ttl(&self, key: &str, left: Duration) -> Duration {
        if self.is_hot(key) {
            left
        } else {
            left.min(self.config.cold_l1_ttl)
        }
    }

    fn drop_prefix(&self, prefix: &str) {
        let prefix = prefix.to_owned();
        if let Err(e) = self
            .l1
            .invalidate_entries_if(move |key, _| key.starts_with(&prefix))
        {
            // Cannot happen (the builder enables closures); be safe rather than stale.
            tracing::warn!("cache: level-1 predicate refused ({e}); clearing level 1");
            self.l1.invalidate_all();
        }
    }

    /// Whether reads should leave Redis alone for now.
    fn redis_paused(&self) -> bool {
        lock(&self.redis_pause).is_some_and(|until| Instant::now() < until)
    }

    /// The level-2 value and its size in bytes.
    async fn l2_get(&self, connector: &str, entity: &str, key: &str) -> Option<(Stored, usize)> {
        let redis = self.redis.as_ref()?;
        if self.redis_paused() {
            return None;
        }
        let mut conn = redis.conn.clone();
        let bytes = self
            .redis_call(
                "GET",
                Some((connector, entity)),
                redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<Vec<u8>>>(&mut conn),
            )
            .await??;
        match bytes.split_first() {
            Some((&FORMAT, json)) => serde_json::from_slice(json).ok().map(|s| (s, bytes.len())),
            _ => None,
        }
    }

    async fn l2_set(
        &self,
        connector: &str,
        entity: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) {
        let Some(redis) = &self.redis else {
            return;
        };
        if self.redis_paused() {
            return;
        }
        let mut conn = redis.conn.clone();
        let ms = (ttl.as_millis() as u64).max(1);
        self.redis_call(
            "SET",
            Some((connector, entity)),
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ms)
                .query_async::<()>(&mut conn),
        )
        .await;
    }

    async fn publish(&self, channel: &str, message: &Message) {
        let Some(redis) = &self.redis else {
            return;
        };
        let Ok(payload) = serde_json::to_vec(message) else {
            return;
        };
        let mut conn = redis.conn.clone();
        self.redis_call(
            "PUBLISH",
            None,
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async::<i64>(&mut conn),
        )
        .await;
    }

    /// One Redis call within the timeout; `None` (counted and logged) when it fails.
    async fn redis_call<T>(
        &self,
        what: &str,
        entity: Option<(&str, &str)>,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        match tokio::time::timeout(self.config.redis_timeout, call).await {
            Ok(Ok(value)) => {
                self.redis_down.store(false, Ordering::SeqCst);
                *lock(&self.redis_pause) = None;
                Some(value)
            }
            Ok(Err(e)) => {
                self.redis_failed(what, &e.to_string(), entity);
                None
            }
            Err(_) => {
                self.redis_failed(
                    what,
                    &format!(
                        "no answer within {} ms",
                        self.config.redis_timeout.as_millis()
                    ),
                    entity,
                );
                None
            }
        }
    }

    fn redis_failed(&self, what: &str, error: &str, entity: Option<(&str, &str)>) {
        self.redis_down.store(true, Ordering::SeqCst);
        *lock(&self.redis_pause) = Some(Instant::now() + REDIS_PAUSE);
        {
            let mut stats = lock(&self.stats);
            stats.redis_errors += 1;
            if let Some((connector, entity)) = entity {
                stats.counters(connector, entity).redis_errors += 1;
            }
        }
        let mut warning = lock(&self.warning);
        let now = Instant::now();
        if warning
            .0
            .is_none_or(|last| now.duration_since(last) >= WARN_EVERY)
        {
            let suppressed = warning.1;
            *warning = (Some(now), 0);
            tracing::warn!(
                suppressed,
                "cache: Redis {what} failed ({error}); reads go on with level 1 and the source"
            );
        } else {
            warning.1 += 1;
        }
    }

    async fn on_message(&self, channel: &str, payload: &[u8]) {
        let Ok(message) = serde_json::from_slice::<Message>(payload) else {
            return;
        };
        if message.node == self.node {
            return;
        }
        if channel == self.invalidate_channel {
            self.invalidations.fetch_add(1, Ordering::SeqCst);
            for key in &message.keys {
                if key.starts_with(&self.key_prefix) {
                    self.l1.invalidate(key).await;
                }
            }
            if let Some(prefix) = &message.entity_prefix
                && prefix.starts_with(&self.key_prefix)
            {
                self.drop_prefix(prefix);
            }
        } else if channel == self.hot_channel {
            let until = Instant::now() + self.config.hot_publish_every * 3;
            let mut remote = lock(&self.remote_hot);
            let now = Instant::now();
            remote.retain(|_, t| *t > now);
            let room = self.config.hot_top_k * 8;
            for key in message.hot {
                if remote.len() >= room {
                    break;
                }
                if key.starts_with(&self.key_prefix) {
                    remote.insert(key, until);
                }
            }
        }
    }
}

/// Keeps the subscription to the invalidation and hot-key channels, reconnecting with a
/// backoff; after a gap it clears level 1 (messages of the gap are lost).
async fn subscribe_loop(inner: Arc<Inner>, ready: tokio::sync::oneshot::Sender<()>) {
    let Some(redis) = &inner.redis else {
        return;
    };
    let mut ready = Some(ready);
    let mut had_gap = false;
    let mut backoff = Duration::from_millis(100);
    loop {
        let connect = async {
            let mut pubsub = redis.client.get_async_pubsub().await?;
            pubsub
                .subscribe(&[&inner.invalidate_channel, &inner.hot_channel])
                .await?;
            redis::RedisResult::Ok(pubsub)
        };
        match tokio::time::timeout(Duration::from_secs(1), connect).await {
            Ok(Ok(pubsub)) => {
                inner.redis_down.store(false, Ordering::SeqCst);
                *lock(&inner.redis_pause) = None;
                if had_gap {
                    inner.invalidations.fetch_add(1, Ordering::SeqCst);
                    inner.l1.invalidate_all();
                    tracing::info!("cache: subscribed to Redis again; level 1 cleared");
                }
                backoff = Duration::from_millis(100);
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    inner
                        .on_message(msg.get_channel_name(), msg.get_payload_bytes())
                        .await;
                }
                inner.redis_failed("subscription", "connection lost", None);
            }
            Ok(Err(e)) => inner.redis_failed("SUBSCRIBE", &e.to_string(), None),
            Err(_) => inner.redis_failed("SUBSCRIBE", "no answer within 1 s", None),
        }
        had_gap = true;
        // Redis is not there: do not keep `new` waiting.
        drop(ready.take());
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Publishes this node's hot keys every `hot_publish_every`.
async fn publish_hot_loop(inner: Arc<Inner>) {
    let mut ticks = tokio::time::interval(inner.config.hot_publish_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let hot: Vec<String> = inner.local_hot().into_iter().map(|h| h.key).collect();
        if hot.is_empty() {
            continue;
        }
        inner
            .publish(
                &inner.hot_channel,
                &Message {
                    node: inner.node.clone(),
                    keys: Vec::new(),
                    entity_prefix: None,
                    hot,
                },
            )
            .await;
    }
}

impl Stats {
    fn counters(&mut self, connector: &str, entity: &str) -> &mut Counters {
        if !self.entities.contains_key(connector) {
            self.entities.insert(connector.to_owned(), HashMap::new());
        }
        let map = self
            .entities
            .get_mut(connector)
            .expect("inserted just above");
        if !map.contains_key(entity) {
            map.insert(entity.to_owned(), Counters::default());
        }
        map.get_mut(entity).expect("inserted just above")
    }
}

/// A count-min sketch with a top-K list: the hot-key detector.
struct HotKeys {
    counters: Vec<u32>,
    top: Vec<TopEntry>,
    k: usize,
    reads: u64,
}

struct TopEntry {
    hash: u64,
    key: String,
    label: String,
    count: u32,
}

impl HotKeys {
    fn new(k: usize) -> HotKeys {
        HotKeys {
            counters: vec![0; SKETCH_ROWS * SKETCH_WIDTH],
            top: Vec::with_capacity(k),
            k: k.max(1),
            reads: 0,
        }
    }

    fn slots(hash: u64) -> impl Iterator<Item = usize> {
        // Double hashing: row i uses h1 + i·h2.
        let h1 = hash as u32 as usize;
        let h2 = ((hash >> 32) as usize) | 1;
        (0..SKETCH_ROWS)
            .map(move |i| i * SKETCH_WIDTH + h1.wrapping_add(i.wrapping_mul(h2)) % SKETCH_WIDTH)
    }

    fn estimate(&self, hash: u64) -> u32 {
        HotKeys::slots(hash)
            .map(|i| self.counters[i])
            .min()
            .unwrap_or(0)
    }

    fn touch(&mut self, key: &str, label: impl FnOnce() -> String) {
        let hash = hash_key(key);
        for i in HotKeys::slots(hash) {
            self.counters[i] = self.counters[i].saturating_add(1);
        }
        let count = self.estimate(hash);
        if let Some(entry) = self.top.iter_mut().find(|e| e.hash == hash && e.key == key) {
            entry.count = count;
        } else if self.top.len() < self.k {
            self.top.push(TopEntry {
                hash,
                key: key.to_owned(),
                label: label(),
                count,
            });
        } else if let Some(coldest) = self.top.iter_mut().min_by_key(|e| e.count)
            && coldest.count < count
        {
            *coldest = TopEntry {
                hash,
                key: key.to_owned(),
                label: label(),
                count,
            };
        }
        self.reads += 1;
        if self.reads.is_multiple_of(DECAY_EVERY) {
            for c in &mut self.counters {
                *c /= 2;
            }
            for e in &mut self.top {
                e.count /= 2;
            }
            self.top.retain(|e| e.count > 0);
        }
    }

    fn is_hot(&self, key: &str, min: u32) -> bool {
        self.top.iter().any(|e| e.key == key && e.count >= min)
    }

    fn hot(&self, min: u32) -> Vec<HotKey> {
        let mut hot: Vec<HotKey> = self
            .top
            .iter()
            .filter(|e| e.count >= min)
            .map(|e| HotKey {
                key: e.key.clone(),
                label: e.label.clone(),
                count: e.count,
            })
            .collect();
        hot.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        hot
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hash_key(key: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// `operation {params}`, short, for the admin page.
fn label(operation: &str, params: &Params) -> String {
    let mut text = format!(
        "{operation} {}",
        serde_json::to_string(params).unwrap_or_default()
    );
    if text.len() > 120 {
        let mut end = 117;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// A level-1 entry's weight: its key, its encoded answer and some overhead.
fn weight(key: &str, encoded: usize) -> u32 {
    u32::try_from(key.len() + encoded + 64).unwrap_or(u32::MAX)
}

/// `(connector, entity)` of a key under `prefix` (`("", "")` for a foreign key).
fn split_key<'a>(prefix: &str, key: &'a str) -> (&'a str, &'a str) {
    let rest = key.strip_prefix(prefix).unwrap_or_default();
    let mut parts = rest.splitn(3, ':');
    (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    )
}

/// `text` with Redis glob characters escaped, for `SCAN MATCH`.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sketch_finds_the_hot_key_and_decays() {
        let mut hot = HotKeys::new(4);
        for i in 0..200 {
            hot.touch("k:hot", || "hot".to_owned());
            hot.touch(&format!("k:cold{i}"), || "cold".to_owned());
        }
        let found = hot.hot(8);
        assert_eq!(found.len(), 1, "only one key is read often");
        assert_eq!(found[0].key, "k:hot");
        assert!(found[0].count >= 200);
        for i in 0..DECAY_EVERY {
            hot.touch(&format!("k:other{}", i % 1000), String::new);
        }
        assert!(hot.estimate(hash_key("k:hot")) < 200, "halved");
    }

    #[test]
    fn keys_split_and_escape() {
        assert_eq!(
            split_key("kefu:c:", "kefu:c:erp:customer:get:abc"),
            ("erp", "customer")
        );
        assert_eq!(glob_escape("a*b[c]"), "a\\*b\\[c\\]");
    }
}
