//! A two-level cache for connector reads: level 1 in this process ([`moka`], TinyLFU
//! admission, weighed by the answer's size), level 2 in Redis (shared by every node), then the
//! source (the registry's call with its timeout, retries and breaker).
//!
//! # What is cached, under which key
//!
//! Only reads (`Operation::is_read`) of entities with a `ttl_ms` go through the cache; the
//! answer of one call (connector, entity, operation and parameters) is one entry, under
//! `{prefix}:c:{connector}:{entity}:{fingerprint}:{operation}:{hash}`. The hash is the SHA-256
//! (first 128 bits, hex) of the parameters as canonical JSON (maps in key order). The
//! fingerprint (8 hex digits) is a hash of the entity's configuration — connector name and
//! driver, table, key, fields, error field, operations; not the DSN, headers, TTL or
//! `level1` — so that after a `connectors.yaml` change answers of the old shape are no longer
//! found (they expire by their TTL). A [`Scope`] is the cache's view of one entity: its key
//! prefix and counters, built once per registry ([`Cache::scope`]).
//!
//! An empty answer is cached too (negative caching), for `min(ttl, negative_ttl)`; errors are
//! never cached. A level-2 value is one format byte ([`FORMAT`]) and JSON `{at, ttl, rows}`
//! (`at`: when it was loaded, Unix ms), stored with Redis's own expiry (`PX`). An entity with
//! `level1: false` is kept in Redis only (every read of it asks Redis).
//!
//! # The level-1 hit path
//!
//! A hit builds the key (the SHA-256 of the parameters, streamed from the JSON encoder without
//! a buffer), bumps the hot-key sketch (relaxed atomics; the top-K list's lock only for keys
//! already hot), counts the hit with one relaxed atomic and answers an `Arc` of the rows (no
//! copy). A hot key is answered by level 1's *front* (`Front`): a direct-mapped table of
//! entries moka holds, read without moka. Other keys are looked up in moka under a hash taken
//! from that SHA-256 (moka does not hash the key's text again); moka records every such read
//! and every 64th one applies the last 64 to its policy (TinyLFU sketch, LRU order, timer
//! wheel) on the reader's time — the 3–5 µs tail of a hit that is not hot
//! (`docs/benchmarks.md`). Every 16th front hit of a slot still goes through moka, so that
//! its admission and eviction keep seeing hot keys.
//!
//! # Single flight
//!
//! Concurrent misses of one key on one node become one load: level 1's `try_get_with` runs the
//! first caller's load (level 2, then the source) and the others wait for its result (an error
//! is handed to every waiter and not kept). Across nodes, each node loads at most once. An
//! entity kept in Redis only goes through the same `try_get_with`, with an entry that weighs
//! nothing and has expired by the time anyone reads it.
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
//! [`Cache::invalidate_entity`] every answer of an entity (of every fingerprint): in this
//! node's level 1 at once, in Redis (`DEL`, or `SCAN MATCH` + `UNLINK` for a whole entity — a
//! walk over the keyspace, meant for rare bulk changes), and in the other nodes' level 1
//! through a message on `{prefix}:cache:invalidate` (entity-wide: a moka invalidation
//! predicate on the key prefix, no generation numbers). A load under way while an invalidation
//! arrives neither writes level 2 nor stays in level 1. The keys of one call carry the
//! fingerprint: a node whose configuration of the entity differs (during a rolling change)
//! is reached by entity-wide invalidations only.
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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use moka::notification::RemovalCause;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Connector, ConnectorError, Entity, Params, Rows};

/// The environment variable the server reads the Redis URL from.
pub const REDIS_URL_ENV: &str = "KEFU_REDIS_URL";
/// The environment variable the server reads [`CacheConfig::prefix`] from (default `kefu`):
/// deployments (or test runs) sharing one Redis keep apart by it.
pub const PREFIX_ENV: &str = "KEFU_CACHE_PREFIX";
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
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

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

/// The cache's view of one entity of one connector, as configured: the key prefix (with the
/// configuration's fingerprint), the TTL, whether level 1 keeps its answers, and its counters.
/// Built by [`Cache::scope`], once per registry; scopes of one entity share their counters.
#[derive(Clone)]
pub struct Scope {
    connector: String,
    entity: String,
    ttl: Option<Duration>,
    level1: bool,
    fingerprint: String,
    /// `{prefix}:c:{connector}:{entity}:{fingerprint}:`
    prefix: String,
    /// The FNV-1a state after `prefix` (a key's level-1 hash goes on from there).
    seed: u64,
    /// The entity's read operations (what [`Cache::invalidate`] drops).
    reads: Vec<String>,
    counters: Arc<Counters>,
}

impl Scope {
    pub fn connector(&self) -> &str {
        &self.connector
    }

    pub fn entity(&self) -> &str {
        &self.entity
    }

    /// 8 hex digits: a hash of the entity's configuration (see the module's documentation).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// How long answers are kept; `None`: the entity is not cached.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// Whether level 1 keeps this entity's answers (else Redis only).
    pub fn level1(&self) -> bool {
        self.level1
    }

    /// The Redis key of one call's answer:
    /// `{prefix}:c:{connector}:{entity}:{fingerprint}:{operation}:{hash}`.
    pub fn key(&self, operation: &str, params: &Params) -> String {
        self.make_key(operation, params).text.into_string()
    }

    fn make_key(&self, operation: &str, params: &Params) -> Key {
        let mut hasher = ShaWriter(Sha256::new());
        // Writing into a hasher cannot fail, and a `Params` always encodes.
        let _ = serde_json::to_writer(&mut hasher, params);
        let digest = hasher.0.finalize();
        let mut text = String::with_capacity(self.prefix.len() + operation.len() + 33);
        text.push_str(&self.prefix);
        text.push_str(operation);
        text.push(':');
        for byte in &digest[..16] {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 15)]));
        }
        let mut high = [0u8; 8];
        high.copy_from_slice(&digest[..8]);
        Key {
            hash: fnv(self.seed, operation.as_bytes()) ^ u64::from_be_bytes(high),
            text: text.into_boxed_str(),
        }
    }
}

/// A level-1 key: the Redis key's text and a hash of it that level 1 uses as is (FNV-1a of
/// the text up to the parameters' hash, mixed with the first 64 bits of that hash), so that a
/// hit does not hash the text again. [`Key::from_text`] gives the same hash for a key that
/// arrives as text (an invalidation message).
#[derive(Clone, PartialEq, Eq)]
struct Key {
    hash: u64,
    text: Box<str>,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Key {
    fn from_text(text: &str) -> Key {
        let hash = match text.rsplit_once(':') {
            Some((head, hex)) if hex.len() == 32 => match u64::from_str_radix(&hex[..16], 16) {
                Ok(high) => fnv(FNV_OFFSET, head.as_bytes()) ^ high,
                Err(_) => fnv(FNV_OFFSET, text.as_bytes()),
            },
            _ => fnv(FNV_OFFSET, text.as_bytes()),
        };
        Key {
            hash,
            text: text.into(),
        }
    }
}

/// Level 1's hasher: a [`Key`] writes its ready hash, which this passes through.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a `Key` is hashed: still a fair hash.
        self.0 = fnv(self.0 ^ FNV_OFFSET, bytes);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

type L1 = moka::future::Cache<Key, Arc<Entry>, BuildHasherDefault<KeyHasher>>;

/// FNV-1a of `bytes`, going on from `state`.
fn fnv(mut state: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        state = (state ^ u64::from(*byte)).wrapping_mul(FNV_PRIME);
    }
    state
}

/// Feeds the JSON encoder's output straight into SHA-256.
struct ShaWriter(Sha256);

impl std::io::Write for ShaWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One level-1 entry.
struct Entry {
    rows: Arc<Rows>,
    /// How long it stays in level 1 from its insertion (zero for an entity kept in Redis
    /// only: the entry only carries a load's answer to the callers waiting for it).
    l1_ttl: Duration,
    /// When it was made (just before moka's insertion): the front's copy expires at
    /// `made + l1_ttl`, no later than moka's.
    made: Instant,
    weight: u32,
    counters: Arc<Counters>,
}

/// Slots of the hot-key front.
const FRONT_SLOTS: usize = 1024;
/// Every so many front hits of a slot, one read goes through moka instead, so that its
/// TinyLFU sketch and LRU order keep seeing the hot key.
const FRONT_SAMPLE: u32 = 16;

/// Level 1's front for hot keys: a direct-mapped table (slot = the key's hash modulo
/// [`FRONT_SLOTS`]) of entries moka holds. A hot key's hit is answered here without moka,
/// whose per-read bookkeeping — every 64th recorded read applies the last 64 to its policy on
/// the reader's own time — was the tail of the hit latency. A front entry is served only while
/// it has not expired and no invalidation happened since it was put (the cache's invalidation
/// count, read before the moka lookup that found it); moka's removal of the key (eviction,
/// expiry, invalidation) clears its slot, so the front holds nothing moka dropped for room.
struct Front {
    slots: Box<[std::sync::RwLock<Option<Arc<FrontEntry>>>]>,
}

struct FrontEntry {
    key: Key,
    entry: Arc<Entry>,
    expires: Instant,
    /// The cache's invalidation count when the entry was found in moka.
    epoch: u64,
    hits: AtomicU32,
}

/// What the front says about a key.
enum FrontRead {
    Hit(Arc<Rows>),
    /// Not there, or a sampled read that must go through moka.
    Miss,
}

impl Front {
    fn new() -> Front {
        Front {
            slots: (0..FRONT_SLOTS)
                .map(|_| std::sync::RwLock::new(None))
                .collect(),
        }
    }

    fn slot(&self, hash: u64) -> &std::sync::RwLock<Option<Arc<FrontEntry>>> {
        &self.slots[(hash % FRONT_SLOTS as u64) as usize]
    }

    fn get(&self, key: &Key, epoch: u64) -> FrontRead {
        let slot = self
            .slot(key.hash)
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(found) = slot.as_ref() else {
            return FrontRead::Miss;
        };
        if found.key != *key || found.epoch != epoch || Instant::now() >= found.expires {
            return FrontRead::Miss;
        }
        if (found.hits.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(FRONT_SAMPLE) {
            return FrontRead::Miss;
        }
        FrontRead::Hit(Arc::clone(&found.entry.rows))
    }

    fn put(&self, key: &Key, entry: &Arc<Entry>, epoch: u64) {
        let expires = entry.made + entry.l1_ttl;
        let mut slot = self
            .slot(key.hash)
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The same entry again (a sampled read): keep its count.
        if let Some(found) = slot.as_ref()
            && found.key == *key
            && Arc::ptr_eq(&found.entry, entry)
            && found.epoch == epoch
        {
            return;
        }
        *slot = Some(Arc::new(FrontEntry {
            key: key.clone(),
            entry: Arc::clone(entry),
            expires,
            epoch,
            hits: AtomicU32::new(0),
        }));
    }

    fn remove(&self, key: &Key) {
        let mut slot = self
            .slot(key.hash)
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.as_ref().is_some_and(|found| found.key == *key) {
            *slot = None;
        }
    }
}

struct Expiry;

impl moka::Expiry<Key, Arc<Entry>> for Expiry {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &Arc<Entry>,
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
    l1: L1,
    /// Hot keys' entries, answered without moka.
    front: Arc<Front>,
    redis: Option<RedisLink>,
    /// Each entity's counters, by (connector, entity); they outlive reloads.
    entities: Mutex<BTreeMap<(String, String), Arc<Counters>>>,
    redis_errors: AtomicU64,
    hot: HotKeys,
    /// Keys other nodes found hot, until when.
    remote_hot: Mutex<HashMap<String, Instant>>,
    /// Bumped by every invalidation; a load that sees it change does not keep its answer.
    invalidations: AtomicU64,
    redis_down: AtomicBool,
    /// Until when reads skip level 2 (after a failure).
    redis_pause: Mutex<Option<Instant>>,
    warning: Mutex<(Option<Instant>, u64)>,
}

/// One entity's counters: relaxed atomics, so that a hit counts without a lock.
#[derive(Default)]
struct Counters {
    l1_hits: AtomicU64,
    l2_hits: AtomicU64,
    coalesced: AtomicU64,
    loads: AtomicU64,
    load_errors: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    redis_errors: AtomicU64,
    latencies: Mutex<VecDeque<Duration>>,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
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

/// 8 hex digits of the SHA-256 of what shapes an entity's answers: the connector's name and
/// driver and the entity's table, key, fields, error field and operations (their `Debug`
/// forms: the configuration as checked, with SQL expressions as the parser printed them).
/// Secrets (DSN, headers), the TTL and `level1` are left out.
pub fn fingerprint(connector: &Connector, entity: &Entity) -> String {
    let description = format!(
        "{}\n{}\n{}\n{:?}\n{}\n{:?}\n{:?}\n{:?}",
        connector.name,
        connector.driver.as_str(),
        entity.name,
        entity.table,
        entity.key,
        entity.fields,
        entity.error_field,
        entity.operations
    );
    let digest = Sha256::digest(description.as_bytes());
    let mut out = String::with_capacity(8);
    for byte in &digest[..4] {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 15)]));
    }
    out
}

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
        let key_prefix = format!("{}:c:", config.prefix);
        let front = Arc::new(Front::new());
        let listener_front = Arc::clone(&front);
        let l1: L1 = moka::future::Cache::builder()
            .max_capacity(config.l1_max_bytes)
            .weigher(|_key: &Key, entry: &Arc<Entry>| entry.weight)
            .expire_after(Expiry)
            .support_invalidation_closures()
            .eviction_listener(move |key: Arc<Key>, entry: Arc<Entry>, cause| {
                // An entry of a Redis-only entity was never meant to be read.
                if entry.l1_ttl.is_zero() {
                    return;
                }
                listener_front.remove(&key);
                match cause {
                    RemovalCause::Size => bump(&entry.counters.evictions),
                    RemovalCause::Expired => bump(&entry.counters.expirations),
                    RemovalCause::Explicit | RemovalCause::Replaced => {}
                }
            })
            .build_with_hasher(BuildHasherDefault::default());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let inner = Arc::new(Inner {
            node: format!("{}-{nanos}", std::process::id()),
            invalidate_channel: format!("{}:cache:invalidate", config.prefix),
            hot_channel: format!("{}:cache:hot", config.prefix),
            key_prefix,
            hot: HotKeys::new(config.hot_top_k),
            config,
            l1,
            front,
            redis,
            entities: Mutex::new(BTreeMap::new()),
            redis_errors: AtomicU64::new(0),
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
    /// only; `KEFU_CACHE_PREFIX`, when set (and not empty), replaces `config.prefix`.
    pub async fn from_env(mut config: CacheConfig) -> Result<Cache, CacheError> {
        let url = std::env::var(REDIS_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty());
        if let Some(prefix) = std::env::var(PREFIX_ENV)
            .ok()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
        {
            config.prefix = prefix;
        }
        Cache::new(config, url.as_deref()).await
    }

    /// The cache's view of `entity` of `connector` as configured now (build it once: it hashes
    /// the configuration).
    pub fn scope(&self, connector: &Connector, entity: &Entity) -> Scope {
        let fingerprint = fingerprint(connector, entity);
        let prefix = format!(
            "{}{}:{}:{fingerprint}:",
            self.inner.key_prefix, connector.name, entity.name
        );
        let counters = Arc::clone(
            lock(&self.inner.entities)
                .entry((connector.name.clone(), entity.name.clone()))
                .or_default(),
        );
        Scope {
            connector: connector.name.clone(),
            entity: entity.name.clone(),
            ttl: entity.ttl,
            level1: entity.level1,
            seed: fnv(FNV_OFFSET, prefix.as_bytes()),
            fingerprint,
            prefix,
            reads: entity
                .operations
                .iter()
                .filter(|(_, op)| op.is_read())
                .map(|(name, _)| name.clone())
                .collect(),
            counters,
        }
    }

    /// The answer of `operation` of the scope's entity with `params`: from level 1, level 2,
    /// or `load` (whose answer is then kept for the entity's TTL; an empty one for the
    /// negative TTL). An entity without a TTL is not cached: `load` runs every time.
    pub async fn get_or_load<F, Fut>(
        &self,
        scope: &Scope,
        operation: &str,
        params: &Params,
        load: F,
    ) -> Result<Arc<Rows>, ConnectorError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Rows, ConnectorError>>,
    {
        let Some(ttl) = scope.ttl else {
            return load().await.map(Arc::new);
        };
        let inner = &*self.inner;
        let key = scope.make_key(operation, params);
        let hot = inner
            .hot
            .touch(key.hash, &key.text, inner.config.hot_min_count, || {
                label(operation, params)
            });
        let counters = &scope.counters;
        // Read before looking anything up: an invalidation after this makes what is found
        // here unfit for the front (and a load's answer unfit to keep).
        let epoch = inner.invalidations.load(Ordering::SeqCst);
        if scope.level1 {
            if hot && let FrontRead::Hit(rows) = inner.front.get(&key, epoch) {
                bump(&counters.l1_hits);
                return Ok(rows);
            }
            if let Some(entry) = inner.l1.get(&key).await {
                bump(&counters.l1_hits);
                if hot {
                    inner.front.put(&key, &entry, epoch);
                }
                return Ok(Arc::clone(&entry.rows));
            }
        }

        let by = AtomicU8::new(BY_NOTHING);
        let load_time = Mutex::new(None);
        // A Redis-only entity's entry weighs nothing and has expired when anyone reads it.
        let l1_ttl = |left: Duration| {
            if scope.level1 {
                inner.l1_ttl(&key.text, left)
            } else {
                Duration::ZERO
            }
        };
        let entry_weight = |encoded: usize| {
            if scope.level1 {
                weight(&key.text, encoded)
            } else {
                0
            }
        };
        let init = async {
            if let Some((stored, size)) = inner.l2_get(counters, &key.text).await {
                by.store(BY_L2, Ordering::SeqCst);
                let left = Duration::from_millis(
                    (stored.at + stored.ttl)
                        .saturating_sub(now_ms())
                        .min(stored.ttl),
                );
                return Ok(Arc::new(Entry {
                    l1_ttl: l1_ttl(left),
                    made: Instant::now(),
                    rows: Arc::new(stored.rows),
                    weight: entry_weight(size),
                    counters: Arc::clone(counters),
                }));
            }
            by.store(BY_SOURCE, Ordering::SeqCst);
            let started = Instant::now();
            let result = load().await;
            *lock(&load_time) = Some(started.elapsed());
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
            let size = encoded.len();
            if inner.invalidations.load(Ordering::SeqCst) == epoch {
                inner.l2_set(counters, &key.text, encoded, keep).await;
            }
            Ok(Arc::new(Entry {
                l1_ttl: l1_ttl(keep),
                made: Instant::now(),
                rows: Arc::new(rows),
                weight: entry_weight(size),
                counters: Arc::clone(counters),
            }))
        };
        let result = inner
            .l1
            .try_get_with::<_, ConnectorError>(key.clone(), init)
            .await;
        let by = by.load(Ordering::SeqCst);
        match by {
            BY_L2 => bump(&counters.l2_hits),
            BY_SOURCE => {
                bump(&counters.loads);
                if result.is_err() {
                    bump(&counters.load_errors);
                }
            }
            _ => bump(&counters.coalesced),
        }
        if let Some(t) = load_time
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            let mut latencies = lock(&counters.latencies);
            if latencies.len() == LATENCY_WINDOW {
                latencies.pop_front();
            }
            latencies.push_back(t);
        }
        match result {
            Ok(entry) => {
                if by != BY_NOTHING
                    && (!scope.level1 || inner.invalidations.load(Ordering::SeqCst) != epoch)
                {
                    // Invalidated while it loaded: answer it this once, do not keep it. (A
                    // Redis-only entry has expired already; removing it now keeps it out of
                    // level 1's numbers.)
                    inner.l1.invalidate(&key).await;
                }
                Ok(Arc::clone(&entry.rows))
            }
            Err(e) => Err((*e).clone()),
        }
    }

    /// Drops the cached answers of every read operation of the scope's entity called with
    /// exactly `params` (for one row: `{key: value}` names its `get`), here, in Redis and on
    /// the other nodes. Searches and lists that happen to contain the row are not found this
    /// way: use [`Cache::invalidate_entity`], or let their TTL run out.
    pub async fn invalidate(&self, scope: &Scope, params: &Params) {
        let keys: Vec<Key> = scope
            .reads
            .iter()
            .map(|op| scope.make_key(op, params))
            .collect();
        self.invalidate_keys(keys).await;
    }

    /// Drops the cached answer of one call, here, in Redis and on the other nodes.
    pub async fn invalidate_call(&self, scope: &Scope, operation: &str, params: &Params) {
        let key = scope.make_key(operation, params);
        self.invalidate_keys(vec![key]).await;
    }

    async fn invalidate_keys(&self, keys: Vec<Key>) {
        let inner = &*self.inner;
        inner.invalidations.fetch_add(1, Ordering::SeqCst);
        for key in &keys {
            inner.l1.invalidate(key).await;
        }
        let Some(redis) = &inner.redis else {
            return;
        };
        let keys: Vec<String> = keys.into_iter().map(|k| k.text.into_string()).collect();
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

    /// Drops every cached answer of `entity` (whatever the configuration it was read with),
    /// here, in Redis (a `SCAN` of the keyspace) and on the other nodes.
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
        let mut entities = Vec::new();
        for ((connector, entity), c) in lock(&inner.entities).iter() {
            let (l1_hits, l2_hits, coalesced, loads) = (
                read(&c.l1_hits),
                read(&c.l2_hits),
                read(&c.coalesced),
                read(&c.loads),
            );
            // An entity with a scope that was never read is not shown.
            if l1_hits + l2_hits + coalesced + loads == 0 {
                continue;
            }
            let mut sorted: Vec<Duration> = lock(&c.latencies).iter().copied().collect();
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
                l1_hits,
                l2_hits,
                coalesced,
                misses: l2_hits + loads,
                loads,
                load_errors: read(&c.load_errors),
                load_p50: pct(0.50),
                load_p99: pct(0.99),
                evictions: read(&c.evictions),
                expirations: read(&c.expirations),
                redis_errors: read(&c.redis_errors),
                hot_keys: hot
                    .iter()
                    .filter(|h| h.key.starts_with(&prefix))
                    .take(10)
                    .cloned()
                    .collect(),
            });
        }
        CacheStats {
            redis: match (&inner.redis, inner.redis_down.load(Ordering::SeqCst)) {
                (None, _) => "off",
                (Some(_), false) => "up",
                (Some(_), true) => "down",
            },
            redis_errors: read(&inner.redis_errors),
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
    fn local_hot(&self) -> Vec<HotKey> {
        self.hot.hot(self.config.hot_min_count)
    }

    fn is_hot(&self, key: &str) -> bool {
        if self.hot.is_hot(key, self.config.hot_min_count) {
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
            .invalidate_entries_if(move |key, _| key.text.starts_with(&prefix))
        {
            // Cannot happen (the builder enables closures); be safe rather than stale.
            tracing::warn!(error = %e, "cache: level-1 predicate refused; clearing level 1");
            self.l1.invalidate_all();
        }
    }

    /// Whether reads should leave Redis alone for now.
    fn redis_paused(&self) -> bool {
        lock(&self.redis_pause).is_some_and(|until| Instant::now() < until)
    }

    /// The level-2 value and its size in bytes.
    async fn l2_get(&self, counters: &Counters, key: &str) -> Option<(Stored, usize)> {
        let redis = self.redis.as_ref()?;
        if self.redis_paused() {
            return None;
        }
        let mut conn = redis.conn.clone();
        let bytes = self
            .redis_call(
                "GET",
                Some(counters),
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

    async fn l2_set(&self, counters: &Counters, key: &str, value: Vec<u8>, ttl: Duration) {
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
            Some(counters),
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
        counters: Option<&Counters>,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        match tokio::time::timeout(self.config.redis_timeout, call).await {
            Ok(Ok(value)) => {
                self.redis_down.store(false, Ordering::SeqCst);
                *lock(&self.redis_pause) = None;
                Some(value)
            }
            Ok(Err(e)) => {
                self.redis_failed(what, &e.to_string(), counters);
                None
            }
            Err(_) => {
                self.redis_failed(
                    what,
                    &format!(
                        "no answer within {} ms",
                        self.config.redis_timeout.as_millis()
                    ),
                    counters,
                );
                None
            }
        }
    }

    fn redis_failed(&self, what: &str, error: &str, counters: Option<&Counters>) {
        self.redis_down.store(true, Ordering::SeqCst);
        *lock(&self.redis_pause) = Some(Instant::now() + REDIS_PAUSE);
        bump(&self.redis_errors);
        if let Some(counters) = counters {
            bump(&counters.redis_errors);
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
                error = %error,
                "cache: Redis {what} failed; reads go on with level 1 and the source"
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
                    self.l1.invalidate(&Key::from_text(key)).await;
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

/// A count-min sketch with a top-K list: the hot-key detector. The sketch's counters are
/// relaxed atomics (a lost increment under contention only makes an estimate a little low);
/// the top-K list, behind a lock, is only touched by keys whose estimate reaches the hot
/// threshold, so that a read of a cold key takes no lock.
struct HotKeys {
    counters: Box<[AtomicU32]>,
    reads: AtomicU64,
    top: Mutex<Vec<TopEntry>>,
    k: usize,
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
            counters: (0..SKETCH_ROWS * SKETCH_WIDTH)
                .map(|_| AtomicU32::new(0))
                .collect(),
            reads: AtomicU64::new(0),
            top: Mutex::new(Vec::with_capacity(k)),
            k: k.max(1),
        }
    }

    fn slots(hash: u64) -> impl Iterator<Item = usize> {
        // Double hashing: row i uses h1 + i·h2.
        let h1 = hash as u32 as usize;
        let h2 = ((hash >> 32) as usize) | 1;
        (0..SKETCH_ROWS)
            .map(move |i| i * SKETCH_WIDTH + h1.wrapping_add(i.wrapping_mul(h2)) % SKETCH_WIDTH)
    }

    #[cfg(test)]
    fn estimate(&self, hash: u64) -> u32 {
        HotKeys::slots(hash)
            .map(|i| self.counters[i].load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }

    /// Counts one read of `key` (whose hash is `hash`); a key estimated at `min` reads or
    /// more enters (or updates) the top-K list. Returns whether the key's estimate reaches
    /// `min` (whether it is hot here).
    fn touch(&self, hash: u64, key: &str, min: u32, label: impl FnOnce() -> String) -> bool {
        let mut count = u32::MAX;
        for i in HotKeys::slots(hash) {
            let now = self.counters[i]
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1);
            count = count.min(now);
        }
        let hot = count >= min;
        if hot {
            // A busy list is left alone: the count is refreshed by the key's next read.
            let top = match self.top.try_lock() {
                Ok(top) => Some(top),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if let Some(mut top) = top {
                if let Some(entry) = top.iter_mut().find(|e| e.hash == hash && e.key == key) {
                    entry.count = count;
                } else if top.len() < self.k {
                    top.push(TopEntry {
                        hash,
                        key: key.to_owned(),
                        label: label(),
                        count,
                    });
                } else if let Some(coldest) = top.iter_mut().min_by_key(|e| e.count)
                    && coldest.count < count
                {
                    *coldest = TopEntry {
                        hash,
                        key: key.to_owned(),
                        label: label(),
                        count,
                    };
                }
            }
        }
        let reads = self.reads.fetch_add(1, Ordering::Relaxed) + 1;
        if reads.is_multiple_of(DECAY_EVERY) {
            for c in &self.counters {
                c.store(c.load(Ordering::Relaxed) / 2, Ordering::Relaxed);
            }
            let mut top = lock(&self.top);
            for e in top.iter_mut() {
                e.count /= 2;
            }
            top.retain(|e| e.count > 0);
        }
        hot
    }

    fn is_hot(&self, key: &str, min: u32) -> bool {
        lock(&self.top)
            .iter()
            .any(|e| e.key == key && e.count >= min)
    }

    fn hot(&self, min: u32) -> Vec<HotKey> {
        let mut hot: Vec<HotKey> = lock(&self.top)
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

    fn hash(key: &str) -> u64 {
        Key::from_text(key).hash
    }

    #[test]
    fn the_sketch_finds_the_hot_key_and_decays() {
        let hot = HotKeys::new(4);
        for i in 0..200 {
            hot.touch(hash("k:hot"), "k:hot", 8, || "hot".to_owned());
            let cold = format!("k:cold{i}");
            hot.touch(hash(&cold), &cold, 8, || "cold".to_owned());
        }
        let found = hot.hot(8);
        assert_eq!(found.len(), 1, "only one key is read often");
        assert_eq!(found[0].key, "k:hot");
        assert!(found[0].count >= 200);
        for i in 0..DECAY_EVERY {
            let other = format!("k:other{}", i % 1000);
            hot.touch(hash(&other), &other, 8, String::new);
        }
        assert!(hot.estimate(hash("k:hot")) < 200, "halved");
    }

    #[test]
    fn a_key_read_as_text_has_the_hash_it_was_built_with() {
        let scope = Scope {
            connector: "erp".to_owned(),
            entity: "customer".to_owned(),
            ttl: Some(Duration::from_secs(1)),
            level1: true,
            fingerprint: "0badcafe".to_owned(),
            prefix: "kefu:c:erp:customer:0badcafe:".to_owned(),
            seed: fnv(FNV_OFFSET, b"kefu:c:erp:customer:0badcafe:"),
            reads: vec!["get".to_owned()],
            counters: Arc::default(),
        };
        let params = Params::from([("id".to_owned(), flows::Value::Number(42.0))]);
        let built = scope.make_key("get", &params);
        assert!(
            built.text.starts_with("kefu:c:erp:customer:0badcafe:get:"),
            "{}",
            built.text
        );
        assert_eq!(
            built.text.len(),
            "kefu:c:erp:customer:0badcafe:get:".len() + 32
        );
        let parsed = Key::from_text(&built.text);
        assert_eq!(parsed.hash, built.hash);
        assert!(parsed == built);
        let other = scope.make_key("find", &params);
        assert_ne!(other.hash, built.hash);
        // Text that is no key of ours still hashes, and matches nothing.
        assert_ne!(Key::from_text("kefu:c:odd").hash, built.hash);
    }

    #[test]
    fn keys_escape() {
        assert_eq!(glob_escape("a*b[c]"), "a\\*b\\[c\\]");
    }
}
