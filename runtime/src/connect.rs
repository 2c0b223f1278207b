//! Connectors in the server: the `connectors.yaml` in force (the bundled demo one unless
//! `--connectors FILE` names another), the live [`Registry`] that answers flows' lookups, and
//! reloading it without a restart (a file that fails to load or connect leaves the old one in
//! force).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use connectors::cache::{Cache, CacheConfig};
use connectors::config::{self, Problem};
use connectors::{ConnectorError, Registry};
use flows::engine::{LookupOutcome, LookupRequest, Millis};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};

use crate::auth::Admin;
use crate::conversation::{BoxFuture, Lookups};
use crate::demo::catalogue::Catalogue;
use crate::server::{ApiError, AppState};

/// The bundled file: the demo shop's catalogue as an SQLite connector.
pub const BUNDLED: &str = include_str!("../assets/connectors.yaml");

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub struct Source {
    /// `None`: the bundled file.
    pub file: Option<PathBuf>,
    /// kefu's data folder, `${DATA_DIR}` in the file.
    pub data_dir: PathBuf,
}

/// Why a configuration was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{name} has {} problem(s):\n{}", problems.len(), render(problems))]
    Invalid {
        name: String,
        problems: Vec<Problem>,
    },
    #[error("{0}")]
    Connect(ConnectorError),
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Source {
    fn name(&self) -> String {
        self.file.as_ref().map_or_else(
            || "the bundled connectors.yaml".to_owned(),
            |f| f.display().to_string(),
        )
    }

    fn text(&self) -> Result<String, LoadError> {
        match &self.file {
            None => Ok(BUNDLED.to_owned()),
            Some(path) => std::fs::read_to_string(path).map_err(|error| LoadError::Read {
                path: path.display().to_string(),
                error,
            }),
        }
    }

    /// Loads and checks the file (no connection is made).
    pub fn check(&self) -> Result<connectors::Connectors, LoadError> {
        let text = self.text()?;
        let data_dir = self.data_dir.display().to_string();
        let env = |name: &str| {
            if name == "DATA_DIR" {
                Some(data_dir.clone())
            } else {
                std::env::var(name).ok()
            }
        };
        config::load(&text, &env).map_err(|problems| LoadError::Invalid {
            name: self.name(),
            problems,
        })
    }

    /// Loads, checks and connects; reads of entities with a `ttl_ms` go through `cache`.
    pub async fn connect(&self, cache: Option<&Arc<Cache>>) -> Result<Registry, LoadError> {
        let checked = self.check()?;
        let registry = Registry::connect(checked)
            .await
            .map_err(LoadError::Connect)?;
        Ok(match cache {
            Some(cache) => registry.with_cache(Arc::clone(cache)),
            None => registry,
        })
    }
}

/// The connectors in force, answering flows' lookups; cheap to clone.
#[derive(Clone)]
pub struct Live {
    source: Source,
    registry: Arc<RwLock<Arc<Registry>>>,
    /// In-process, and in Redis when `KEFU_REDIS_URL` names one; it outlives reloads.
    cache: Option<Arc<Cache>>,
    /// Answers what no connector declares (the demo's `returns.create` and `tickets.create`).
    fallback: Option<Catalogue>,
}

impl Live {
    /// Loads and connects `source`; an invalid file stops the server from starting.
    pub async fn start(source: Source, fallback: Option<Catalogue>) -> Result<Live, LoadError> {
        let cache = match Cache::from_env(CacheConfig::default()).await {
            Ok(cache) => Some(Arc::new(cache)),
            Err(error) => {
                tracing::warn!(%error, "connector reads are not cached");
                None
            }
        };
        let registry = source.connect(cache.as_ref()).await?;
        Ok(Live {
            source,
            registry: Arc::new(RwLock::new(Arc::new(registry))),
            cache,
            fallback,
        })
    }

    /// The registry in force now.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Loads the file again; on success the new connectors answer from the next call on, on
    /// failure the old ones stay and the problems are returned.
    pub async fn reload(&self) -> Result<(), LoadError> {
        let registry = self.source.connect(self.cache.as_ref()).await?;
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(registry);
        tracing::info!(file = %self.source.name(), "connectors reloaded");
        Ok(())
    }

    /// The console's customer panel for a visitor who said who they are: the configured
    /// customer entity's `get` by its key, as `{"source", "fields": [[name, value]…], "error"}`;
    /// `None` when no customer entity is configured or the visitor gave no such key.
    pub async fn customer(
        &self,
        visitor: &std::collections::BTreeMap<String, String>,
        view: Option<&connectors::View>,
    ) -> Option<JsonValue> {
        let registry = self.registry();
        let source = registry.connectors().customer.clone()?;
        let entity = registry
            .connectors()
            .get(&source.connector)?
            .entities
            .get(&source.entity)?
            .clone();
        let key = visitor.get(&entity.key)?;
        let params =
            connectors::Params::from([(entity.key.clone(), flows::Value::String(key.clone()))]);
        let name = format!("{}.{}", source.connector, source.entity);
        Some(
            match registry
                .call_in_view(&source.connector, &source.entity, "get", &params, view)
                .await
            {
                Ok(rows) => {
                    let fields: Vec<(String, flows::Value)> = rows
                        .into_iter()
                        .next()
                        .map(|mut row| {
                            entity
                                .fields
                                .iter()
                                .filter_map(|f| row.remove(&f.name).map(|v| (f.name.clone(), v)))
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({"source": name, "fields": fields, "error": null})
                }
                Err(error) => json!({"source": name, "fields": [], "error": error.to_string()}),
            },
        )
    }

    async fn lookup(&self, request: &LookupRequest, now: Millis) -> LookupOutcome {
        let registry = self.registry();
        let declared = registry
            .connectors()
            .get(&request.connector)
            .and_then(|c| c.entities.get(&request.entity))
            .is_some_and(|e| e.operations.contains_key(&request.operation));
        if !declared
            && let Some(catalogue) = &self.fallback
            && request.connector == "demo"
        {
            return catalogue.lookup(request, now).await;
        }
        match registry
            .call(
                &request.connector,
                &request.entity,
                &request.operation,
                &request.params,
            )
            .await
        {
            Ok(rows) => LookupOutcome::Rows(rows),
            Err(error) => LookupOutcome::Error(error.to_string()),
        }
    }
}

impl Lookups for Live {
    fn lookup<'a>(
        &'a self,
        request: &'a LookupRequest,
        now: Millis,
    ) -> BoxFuture<'a, LookupOutcome> {
        Box::pin(Live::lookup(self, request, now))
    }
}

/// `kefu connectors check FILE`: every problem, or a summary; exit status 1 on problems.
pub fn check_command(file: &Path) -> std::process::ExitCode {
    let source = Source {
        file: Some(file.to_owned()),
        data_dir: PathBuf::from("data"),
    };
    match source.check() {
        Ok(checked) => {
            for connector in &checked.connectors {
                let entities: Vec<&str> = connector.entities.keys().map(String::as_str).collect();
                println!(
                    "{} ({}, {}): {}",
                    connector.name,
                    connector.driver.as_str(),
                    connector.target.redacted(),
                    entities.join(", ")
                );
            }
            println!("{}: ok", file.display());
            std::process::ExitCode::SUCCESS
        }
        Err(LoadError::Invalid { problems, .. }) => {
            for problem in &problems {
                eprintln!("{}:{problem}", file.display());
            }
            eprintln!("{}: {} problem(s)", file.display(), problems.len());
            std::process::ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{error}");
            std::process::ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The admin API: `/api/admin/connectors`

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/admin/connectors", get(list))
        .route("/api/admin/connectors/reload", post(reload))
        .route("/api/admin/connectors/test", post(test))
        .route("/api/admin/connectors/invalidate", post(invalidate))
        .route("/metrics", get(metrics))
}

/// Prometheus text: connector calls, errors and latency, and the cache's reads by level,
/// loads, evictions and Redis errors. Numbers only (no keys, targets or visitor data), so it
/// is served without signing in, for a scraper.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    use std::fmt::Write as _;
    let mut out = String::new();
    let label = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    if let Some(chat) = &state.chat {
        family(
            &mut out,
            "kefu_conversations_running",
            "gauge",
            "Conversation tasks running on this node.",
        );
        let _ = writeln!(out, "kefu_conversations_running {}", chat.hub.running());
    }
    if let Some(live) = &state.connectors {
        let stats = live.registry().stats();
        let counters = [
            ("kefu_connector_calls_total", "Calls made.", 0),
            ("kefu_connector_errors_total", "Calls that failed.", 1),
            ("kefu_connector_retries_total", "Extra tries of reads.", 2),
            (
                "kefu_connector_rejected_total",
                "Calls refused by the open breaker.",
                3,
            ),
        ];
        for (name, help, which) in counters {
            family(&mut out, name, "counter", help);
            for s in &stats {
                let value = [s.calls, s.errors, s.retries, s.rejected][which];
                let _ = writeln!(out, "{name}{{connector=\"{}\"}} {value}", label(&s.name));
            }
        }
        family(
            &mut out,
            "kefu_connector_latency_seconds",
            "gauge",
            "Call latency over the last calls, by quantile.",
        );
        for s in &stats {
            for (quantile, value) in [("0.5", s.latency_p50), ("0.99", s.latency_p99)] {
                if let Some(value) = value {
                    let _ = writeln!(
                        out,
                        "kefu_connector_latency_seconds{{connector=\"{}\",quantile=\"{quantile}\"}} {}",
                        label(&s.name),
                        value.as_secs_f64()
                    );
                }
            }
        }
        if let Some(cache) = &live.cache {
            let stats = cache.stats();
            family(
                &mut out,
                "kefu_cache_redis_up",
                "gauge",
                "1 when the last Redis call worked, 0 when it failed, -1 without Redis.",
            );
            let up = match stats.redis {
                "up" => 1,
                "down" => 0,
                _ => -1,
            };
            let _ = writeln!(out, "kefu_cache_redis_up {up}");
            family(
                &mut out,
                "kefu_cache_l1_entries",
                "gauge",
                "Entries in the in-process level.",
            );
            let _ = writeln!(out, "kefu_cache_l1_entries {}", stats.l1_entries);
            family(
                &mut out,
                "kefu_cache_l1_bytes",
                "gauge",
                "Bytes of keys and answers in the in-process level.",
            );
            let _ = writeln!(out, "kefu_cache_l1_bytes {}", stats.l1_bytes);
            family(
                &mut out,
                "kefu_cache_reads_total",
                "counter",
                "Cached reads by where they were answered.",
            );
            for e in &stats.entities {
                for (result, value) in [
                    ("l1", e.l1_hits),
                    ("l2", e.l2_hits),
                    ("coalesced", e.coalesced),
                    ("load", e.loads),
                ] {
                    let _ = writeln!(
                        out,
                        "kefu_cache_reads_total{{connector=\"{}\",entity=\"{}\",result=\"{result}\"}} {value}",
                        label(&e.connector),
                        label(&e.entity)
                    );
                }
            }
            let per_entity = [
                (
                    "kefu_cache_load_errors_total",
                    "Loads from the source that failed.",
                ),
                (
                    "kefu_cache_evictions_total",
                    "In-process entries pushed out for room.",
                ),
                (
                    "kefu_cache_expirations_total",
                    "In-process entries that reached their TTL.",
                ),
                (
                    "kefu_cache_redis_errors_total",
                    "Failed or timed-out Redis calls.",
                ),
            ];
            for (index, (name, help)) in per_entity.into_iter().enumerate() {
                family(&mut out, name, "counter", help);
                for e in &stats.entities {
                    let value = [e.load_errors, e.evictions, e.expirations, e.redis_errors][index];
                    let _ = writeln!(
                        out,
                        "{name}{{connector=\"{}\",entity=\"{}\"}} {value}",
                        label(&e.connector),
                        label(&e.entity)
                    );
                }
            }
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

fn live(state: &AppState) -> Result<&Live, ApiError> {
    state.connectors.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "connectors are not configured on this server",
        )
    })
}

fn millis(duration: Option<std::time::Duration>) -> JsonValue {
    duration.map_or(JsonValue::Null, |d| json!(d.as_secs_f64() * 1000.0))
}

/// Every connector: its entities and operations, health (a ping now), calls, errors, latency.
async fn list(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
) -> Result<Json<JsonValue>, ApiError> {
    let live = live(&state)?;
    let registry = live.registry();
    let pings = registry.ping_all().await;
    let stats = registry.stats();
    let cache = live.cache.as_ref().map(|cache| cache.stats());
    let cached = |connector: &str| -> Vec<JsonValue> {
        cache
            .iter()
            .flat_map(|c| &c.entities)
            .filter(|e| e.connector == connector)
            .map(|e| {
                let hot: Vec<JsonValue> = e
                    .hot_keys
                    .iter()
                    .map(|k| json!({"label": k.label, "count": k.count}))
                    .collect();
                json!({
                    "entity": e.entity, "hit_ratio": e.hit_ratio(), "l1_hits": e.l1_hits,
                    "l2_hits": e.l2_hits, "loads": e.loads, "evictions": e.evictions,
                    "load_p50_ms": millis(e.load_p50), "load_p99_ms": millis(e.load_p99),
                    "hot_keys": hot,
                })
            })
            .collect()
    };
    let connectors: Vec<JsonValue> = registry
        .connectors()
        .connectors
        .iter()
        .map(|connector| {
            let stat = stats.iter().find(|s| s.name == connector.name);
            let ping = pings.iter().find(|(name, _)| *name == connector.name);
            let entities: Vec<JsonValue> = connector
                .entities
                .values()
                .map(|entity| {
                    let operations: Vec<JsonValue> = entity
                        .operations
                        .iter()
                        .map(|(name, operation)| {
                            let params: Vec<JsonValue> =
                                connectors::registry::operation_params(entity, operation)
                                    .into_iter()
                                    .map(|(name, required)| json!({"name": name, "required": required}))
                                    .collect();
                            json!({"name": name, "params": params})
                        })
                        .collect();
                    json!({"name": entity.name, "key": entity.key, "operations": operations})
                })
                .collect();
            json!({
                "name": connector.name,
                "driver": connector.driver.as_str(),
                "target": connector.target.redacted(),
                "healthy": ping.is_some_and(|(_, result)| result.is_ok()),
                "health_error": ping.and_then(|(_, result)| result.as_ref().err().map(ToString::to_string)),
                "breaker": stat.map(|s| s.breaker),
                "calls": stat.map_or(0, |s| s.calls),
                "errors": stat.map_or(0, |s| s.errors),
                "retries": stat.map_or(0, |s| s.retries),
                "rejected": stat.map_or(0, |s| s.rejected),
                "last_error": stat.and_then(|s| s.last_error.clone()),
                "latency_p50_ms": millis(stat.and_then(|s| s.latency_p50)),
                "latency_p99_ms": millis(stat.and_then(|s| s.latency_p99)),
                "entities": entities,
                "cache": cached(&connector.name),
            })
        })
        .collect();
    let cache = cache.map(|c| {
        json!({"redis": c.redis, "redis_errors": c.redis_errors, "l1_entries": c.l1_entries,
               "l1_bytes": c.l1_bytes})
    });
    Ok(Json(json!({ "connectors": connectors, "cache": cache })))
}

/// Loads the file again; its problems (with line and column) when it cannot be taken.
async fn reload(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
) -> Result<Response, ApiError> {
    let live = live(&state)?;
    let reloaded = live.reload().await;
    let record = crate::audit::AuditRecord::by(&admin, "reload", "connectors::*")
        .detail(json!({ "ok": reloaded.is_ok() }));
    state.audit.record(record).await;
    match reloaded {
        Ok(()) => Ok(Json(json!({
            "connectors": live.registry().connectors().connectors.len()
        }))
        .into_response()),
        Err(LoadError::Invalid { problems, .. }) => {
            let problems: Vec<JsonValue> = problems
                .iter()
                .map(|p| json!({"line": p.line, "column": p.column, "message": p.message}))
                .collect();
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": "the file has problems; the connectors in force are unchanged", "problems": problems})),
            )
                .into_response())
        }
        Err(error) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": format!("{error}; the connectors in force are unchanged")})),
        )
            .into_response()),
    }
}

#[derive(Deserialize)]
struct TestBody {
    connector: String,
    entity: String,
    operation: String,
    #[serde(default)]
    params: std::collections::BTreeMap<String, flows::Value>,
}

/// "Test this entity": one call, its rows or its error, and how long it took.
async fn test(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Json(body): Json<TestBody>,
) -> Result<Response, ApiError> {
    let registry = live(&state)?.registry();
    // Decided before the call; the rows go through the caller's sandbox (`access`).
    let (verdict, sandbox) = crate::access::connector_call(
        &state,
        &admin,
        &body.connector,
        &body.entity,
        &body.operation,
        &body.params,
    )
    .await?;
    if !verdict.allowed {
        verdict.audit(&state, None).await;
        return Err(verdict.refusal());
    }
    let began = std::time::Instant::now();
    let result = registry
        .call_in_view(
            &body.connector,
            &body.entity,
            &body.operation,
            &body.params,
            sandbox.view(),
        )
        .await;
    let ms = began.elapsed().as_secs_f64() * 1000.0;
    // The access, audited with what it returned and how it was made.
    verdict
        .with_detail(json!({
            "via": "connectors test",
            "connector": body.connector,
            "operation": body.operation,
            "ok": result.is_ok(),
        }))
        .audit(&state, result.as_ref().ok().map(|rows| rows.len() as u64))
        .await;
    Ok(match result {
        Ok(rows) => Json(json!({"rows": rows, "ms": ms})).into_response(),
        Err(error @ ConnectorError::Request(_)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error.to_string(), "ms": ms})),
        )
            .into_response(),
        Err(error) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": error.to_string(), "ms": ms})),
        )
            .into_response(),
    })
}

#[derive(Deserialize)]
struct InvalidateBody {
    connector: String,
    entity: String,
    /// One row's key value; without it (or `null`), every cached answer of the entity.
    #[serde(default)]
    key: Option<flows::Value>,
}

/// "The data changed": drops cached answers here, in Redis and on the other nodes — those of
/// one row (`key`: the calls made with `{entity's key: value}`, as text or number) or every
/// answer of the entity.
async fn invalidate(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Json(body): Json<InvalidateBody>,
) -> Result<Response, ApiError> {
    let registry = live(&state)?.registry();
    let Some(entity) = registry
        .connectors()
        .get(&body.connector)
        .and_then(|c| c.entities.get(&body.entity))
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "connector `{}` has no entity `{}`",
                body.connector, body.entity
            ),
        ));
    };
    if entity.ttl.is_none() || registry.cache().is_none() {
        return Ok(Json(json!({
            "invalidated": null,
            "reason": "the entity is not cached (it has no ttl_ms)",
        }))
        .into_response());
    }
    let scope = match body.key {
        None | Some(flows::Value::Null) => {
            registry
                .invalidate_entity(&body.connector, &body.entity)
                .await;
            "entity"
        }
        Some(key @ (flows::Value::String(_) | flows::Value::Number(_) | flows::Value::Bool(_))) => {
            registry
                .invalidate_key(&body.connector, &body.entity, &key)
                .await;
            "key"
        }
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "`key` must be text, a number or a boolean (or absent for the whole entity)",
            ));
        }
    };
    tracing::info!(
        admin = %admin.user.login,
        connector = %body.connector,
        entity = %body.entity,
        scope,
        "connector cache invalidated"
    );
    let record = crate::audit::AuditRecord::by(
        &admin,
        "invalidate",
        format!("connectors::{}::{}", body.connector, body.entity),
    )
    .detail(json!({ "scope": scope }));
    state.audit.record(record).await;
    Ok(Json(json!({ "invalidated": scope })).into_response())
}
