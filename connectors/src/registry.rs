//! The live connectors: one driver per connector, and every call's policy — the parameter
//! check, the connector's timeout, bounded retries of reads on transient failures (50 ms,
//! 100 ms, 200 ms, … between tries), a circuit breaker per connector and statistics for the
//! admin page.
//!
//! The breaker: after `breaker_failures` failed calls in a row (a call counts once, however
//! many tries it took; a `Request` error is the caller's mistake and does not count) the
//! connector is open: calls fail at once with [`ConnectorError::Open`] for
//! `breaker_cooldown`. Then one call is let through (half-open) while the others still fail
//! at once; its success closes the breaker, its failure opens it for another cooldown.
//!
//! With a [`Cache`] (`Registry::with_cache`), reads of entities with a `ttl_ms` are answered
//! from it; only its loads reach the driver, with the policy above. The cache's view of each
//! such entity (its [`Scope`]: key prefix with the configuration's fingerprint, counters) is
//! built once, when the cache is attached.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flows::Value;

use crate::View;
use crate::cache::{Cache, Scope};
use crate::model::{
    Connector, ConnectorError, Connectors, Driver, DriverKind, Entity, FieldType, Operation,
    Params, Rows,
};

/// How many recent call latencies each connector keeps for its percentiles.
const LATENCY_WINDOW: usize = 1024;
/// The first pause before a retry; it doubles for each further one.
const BACKOFF: Duration = Duration::from_millis(50);

/// The live connectors of one `connectors.yaml`.
pub struct Registry {
    connectors: Connectors,
    drivers: HashMap<String, Arc<dyn Driver>>,
    state: HashMap<String, Mutex<State>>,
    cache: Option<Arc<Cache>>,
    /// The cache's scope of each entity with a TTL, by connector then entity.
    scopes: HashMap<String, HashMap<String, Scope>>,
}

/// One connector's breaker and statistics.
#[derive(Default)]
struct State {
    failures_in_a_row: u32,
    open_until: Option<Instant>,
    /// When the half-open trial call under way started (a trial older than the connector's
    /// timeout was abandoned by its caller and no longer holds the others back).
    trial: Option<Instant>,
    calls: u64,
    errors: u64,
    retries: u64,
    rejected: u64,
    last_error: Option<String>,
    latencies: VecDeque<Duration>,
}

/// One connector's numbers, for the admin page.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorStats {
    pub name: String,
    pub driver: DriverKind,
    /// The target with secrets replaced by `***`.
    pub target: String,
    /// Calls made (each counted once, however many tries it took).
    pub calls: u64,
    /// Calls that failed (including those the open breaker refused).
    pub errors: u64,
    /// Extra tries of reads.
    pub retries: u64,
    /// Calls refused at once by the open breaker.
    pub rejected: u64,
    pub last_error: Option<String>,
    /// `closed`, `open` or `half-open`.
    pub breaker: &'static str,
    /// Over the last calls that reached the driver (at most 1024).
    pub latency_p50: Option<Duration>,
    pub latency_p99: Option<Duration>,
}

impl Registry {
    /// Connects every connector's driver (SQL pools read their tables; REST and SOAP build
    /// their HTTP clients). Fails with the first connector that cannot be set up.
    pub async fn connect(connectors: Connectors) -> Result<Registry, ConnectorError> {
        let mut drivers: HashMap<String, Arc<dyn Driver>> = HashMap::new();
        for connector in &connectors.connectors {
            drivers.insert(connector.name.clone(), build_driver(connector).await?);
        }
        Ok(Registry::with_drivers(connectors, drivers))
    }

    /// A registry over drivers built elsewhere (tests, plugins). A connector without a driver
    /// answers every call with an `Unavailable` error.
    pub fn with_drivers(
        connectors: Connectors,
        drivers: HashMap<String, Arc<dyn Driver>>,
    ) -> Registry {
        let state = connectors
            .connectors
            .iter()
            .map(|c| (c.name.clone(), Mutex::new(State::default())))
            .collect();
        Registry {
            connectors,
            drivers,
            state,
            cache: None,
            scopes: HashMap::new(),
        }
    }

    /// The same registry with reads of entities that have a TTL going through `cache`.
    pub fn with_cache(mut self, cache: Arc<Cache>) -> Registry {
        self.scopes = self
            .connectors
            .connectors
            .iter()
            .map(|connector| {
                let scopes = connector
                    .entities
                    .values()
                    .filter(|entity| entity.ttl.is_some())
                    .map(|entity| (entity.name.clone(), cache.scope(connector, entity)))
                    .collect();
                (connector.name.clone(), scopes)
            })
            .collect();
        self.cache = Some(cache);
        self
    }

    /// The cache's scope of `entity` (only for a cached entity: one with a TTL).
    pub fn scope(&self, connector: &str, entity: &str) -> Option<&Scope> {
        self.scopes.get(connector)?.get(entity)
    }

    /// The read cache, when there is one.
    pub fn cache(&self) -> Option<&Arc<Cache>> {
        self.cache.as_ref()
    }

    /// Drops the cached answers of `entity`'s operations called with exactly `params` (for
    /// one row: `{key: value}`), on every node. Nothing to do without a cache or for an
    /// unknown entity.
    pub async fn invalidate(&self, connector: &str, entity: &str, params: &Params) {
        if let Some(cache) = &self.cache
            && let Some(scope) = self.scope(connector, entity)
        {
            cache.invalidate(scope, params).await;
        }
    }

    /// Drops the cached answers for one row of `entity`, named by its key's value: for the
    /// calls made with `{key: value}`, and — since readers may send a number as text or the
    /// other way round — with the value's other spelling (`42` and `"42"`). Returns whether
    /// the entity is cached here (has a TTL and the registry a cache).
    pub async fn invalidate_key(&self, connector: &str, entity: &str, value: &Value) -> bool {
        let (Some(cache), Some(scope), Some(ent)) = (
            &self.cache,
            self.scope(connector, entity),
            self.connectors
                .get(connector)
                .and_then(|c| c.entities.get(entity)),
        ) else {
            return false;
        };
        let mut values = vec![value.clone()];
        match value {
            Value::String(s) => {
                if let Ok(n) = s.trim().parse::<f64>()
                    && n.is_finite()
                {
                    values.push(Value::Number(n));
                }
            }
            Value::Number(n) => values.push(Value::String(number_text(*n))),
            _ => {}
        }
        for value in values {
            let params = Params::from([(ent.key.clone(), value)]);
            cache.invalidate(scope, &params).await;
        }
        true
    }

    /// Drops every cached answer of `entity`, on every node.
    pub async fn invalidate_entity(&self, connector: &str, entity: &str) {
        if let Some(cache) = &self.cache {
            cache.invalidate_entity(connector, entity).await;
        }
    }

    /// The configuration it runs.
    pub fn connectors(&self) -> &Connectors {
        &self.connectors
    }

    /// Runs `operation` of `entity` on `connector` with `params`.
    pub async fn call(
        &self,
        connector: &str,
        entity: &str,
        operation: &str,
        params: &Params,
    ) -> Result<Rows, ConnectorError> {
        self.call_shared(connector, entity, operation, params)
            .await
            .map(Arc::unwrap_or_clone)
    }

    /// [`Registry::call`] for a caller who sees the entity through `view` (a department's
    /// sandbox): drivers that apply views (SQL) get it in their statement, so only the rows in
    /// the view come back, already masked, and the call skips the cache (whose entries are the
    /// source's whole answers, shared by every caller); other drivers answer through the cache
    /// and their rows are filtered and masked here. `None`: the whole answer.
    pub async fn call_in_view(
        &self,
        connector: &str,
        entity: &str,
        operation: &str,
        params: &Params,
        view: Option<&View>,
    ) -> Result<Rows, ConnectorError> {
        let Some(view) = view else {
            return self.call(connector, entity, operation, params).await;
        };
        let applies = self
            .drivers
            .get(connector)
            .is_some_and(|driver| driver.applies_views());
        if !applies {
            let rows = self.call(connector, entity, operation, params).await?;
            return Ok(view.apply(rows));
        }
        let (config, ent, op) = self.resolve(connector, entity, operation)?;
        check_params(connector, ent, operation, op, params)?;
        self.call_source(config, ent, operation, op, params, Some(view))
            .await
    }

    /// The connector, entity and operation a call names, or why there is no such thing.
    fn resolve(
        &self,
        connector: &str,
        entity: &str,
        operation: &str,
    ) -> Result<(&Connector, &Entity, &Operation), ConnectorError> {
        let Some(config) = self.connectors.get(connector) else {
            let names: Vec<&str> = self
                .connectors
                .connectors
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(ConnectorError::Request(format!(
                "no connector `{connector}` (there are: {})",
                list(&names)
            )));
        };
        let Some(ent) = config.entities.get(entity) else {
            let names: Vec<&str> = config.entities.keys().map(String::as_str).collect();
            return Err(ConnectorError::Request(format!(
                "connector `{connector}` has no entity `{entity}` (it has: {})",
                list(&names)
            )));
        };
        let Some(op) = ent.operations.get(operation) else {
            let names: Vec<&str> = ent.operations.keys().map(String::as_str).collect();
            return Err(ConnectorError::Request(format!(
                "entity `{entity}` of connector `{connector}` has no operation `{operation}` (it has: {})",
                list(&names)
            )));
        };
        Ok((config, ent, op))
    }

    /// [`Registry::call`], answering the cache's own copy of the rows (no copy is made on a
    /// cache hit; an uncached answer is simply wrapped).
    pub async fn call_shared(
        &self,
        connector: &str,
        entity: &str,
        operation: &str,
        params: &Params,
    ) -> Result<Arc<Rows>, ConnectorError> {
        let (config, ent, op) = self.resolve(connector, entity, operation)?;
        check_params(connector, ent, operation, op, params)?;
        match &self.cache {
            Some(cache) if op.is_read() && ent.ttl.is_some() => {
                let Some(scope) = self.scope(connector, entity) else {
                    // Every entity with a TTL got a scope in `with_cache`.
                    return Err(ConnectorError::Unavailable(format!(
                        "connector `{connector}`, entity `{entity}`: no cache scope"
                    )));
                };
                cache
                    .get_or_load(scope, operation, params, || {
                        self.call_source(config, ent, operation, op, params, None)
                    })
                    .await
            }
            _ => self
                .call_source(config, ent, operation, op, params, None)
                .await
                .map(Arc::new),
        }
    }

    /// One call of the driver (through `view` when given, for a driver that applies views),
    /// with the timeout, the retries and the breaker.
    async fn call_source(
        &self,
        config: &Connector,
        ent: &Entity,
        operation: &str,
        op: &Operation,
        params: &Params,
        view: Option<&View>,
    ) -> Result<Rows, ConnectorError> {
        let connector = config.name.as_str();
        let entity = ent.name.as_str();
        let Some(driver) = self.drivers.get(connector) else {
            return Err(ConnectorError::Unavailable(format!(
                "connector `{connector}` has no driver"
            )));
        };
        let state = self
            .state
            .get(connector)
            .expect("a state for every configured connector");

        // The breaker.
        let is_trial = {
            let mut s = lock(state);
            s.calls += 1;
            let now = Instant::now();
            let trial_running = s
                .trial
                .is_some_and(|t| now.duration_since(t) < config.timeout + Duration::from_secs(1));
            match s.open_until {
                Some(until) if now < until || trial_running => {
                    s.errors += 1;
                    s.rejected += 1;
                    let left = until.saturating_duration_since(Instant::now());
                    let err = ConnectorError::Open(format!(
                        "connector `{connector}` is unavailable after {} failures in a row ({}); next try in {} s",
                        s.failures_in_a_row,
                        s.last_error.as_deref().unwrap_or("no error text"),
                        left.as_secs_f64().ceil() as u64
                    ));
                    return Err(err);
                }
                Some(_) => {
                    s.trial = Some(now);
                    true
                }
                None => false,
            }
        };

        let tries = if op.is_read() { config.retries + 1 } else { 1 };
        let started = Instant::now();
        let mut attempt = 0;
        let result = loop {
            let call = match view {
                Some(view) => driver.call_in_view(ent, operation, op, params, view),
                None => driver.call(ent, operation, op, params),
            };
            let result = match tokio::time::timeout(config.timeout, call).await {
                Ok(result) => result,
                Err(_) => Err(ConnectorError::Unavailable(format!(
                    "connector `{connector}` did not answer within {} ({entity}.{operation})",
                    seconds(config.timeout)
                ))),
            };
            attempt += 1;
            match result {
                Err(e) if e.is_transient() && attempt < tries && !is_trial => {
                    lock(state).retries += 1;
                    tokio::time::sleep(BACKOFF * 2u32.saturating_pow(attempt - 1)).await;
                }
                other => break other,
            }
        };

        let mut s = lock(state);
        if s.latencies.len() == LATENCY_WINDOW {
            s.latencies.pop_front();
        }
        s.latencies.push_back(started.elapsed());
        if is_trial {
            s.trial = None;
        }
        match &result {
            Ok(_) | Err(ConnectorError::Request(_)) => {
                s.failures_in_a_row = 0;
                s.open_until = None;
                if let Err(e) = &result {
                    s.errors += 1;
                    s.last_error = Some(e.to_string());
                }
            }
            Err(e) => {
                s.errors += 1;
                s.last_error = Some(e.to_string());
                s.failures_in_a_row += 1;
                if is_trial || s.failures_in_a_row >= config.breaker_failures.max(1) {
                    s.open_until = Some(Instant::now() + config.breaker_cooldown);
                    tracing::warn!(
                        connector,
                        failures = s.failures_in_a_row,
                        "connector breaker open: {e}"
                    );
                }
            }
        }
        drop(s);
        // Hidden fields served filters and ordering; they are not answered.
        result.map(|mut rows| {
            if ent.fields.iter().any(|f| f.hidden) {
                for row in &mut rows {
                    for field in ent.fields.iter().filter(|f| f.hidden) {
                        row.remove(&field.name);
                    }
                }
            }
            rows
        })
    }

    /// Each connector's numbers, in file order.
    pub fn stats(&self) -> Vec<ConnectorStats> {
        self.connectors
            .connectors
            .iter()
            .map(|c| {
                let s = lock(&self.state[&c.name]);
                let mut sorted: Vec<Duration> = s.latencies.iter().copied().collect();
                sorted.sort_unstable();
                let pct = |p: f64| -> Option<Duration> {
                    if sorted.is_empty() {
                        return None;
                    }
                    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
                    Some(sorted[i - 1])
                };
                let breaker = match s.open_until {
                    None => "closed",
                    Some(until) if Instant::now() < until => "open",
                    Some(_) => "half-open",
                };
                ConnectorStats {
                    name: c.name.clone(),
                    driver: c.driver,
                    target: c.target.redacted(),
                    calls: s.calls,
                    errors: s.errors,
                    retries: s.retries,
                    rejected: s.rejected,
                    last_error: s.last_error.clone(),
                    breaker,
                    latency_p50: pct(0.50),
                    latency_p99: pct(0.99),
                }
            })
            .collect()
    }

    /// Pings every connector (each within its timeout), in file order.
    pub async fn ping_all(&self) -> Vec<(String, Result<(), ConnectorError>)> {
        let mut out = Vec::new();
        for c in &self.connectors.connectors {
            let result = match self.drivers.get(&c.name) {
                None => Err(ConnectorError::Unavailable(format!(
                    "connector `{}` has no driver",
                    c.name
                ))),
                Some(driver) => match tokio::time::timeout(c.timeout, driver.ping()).await {
                    Ok(r) => r,
                    Err(_) => Err(ConnectorError::Unavailable(format!(
                        "connector `{}` did not answer within {}",
                        c.name,
                        seconds(c.timeout)
                    ))),
                },
            };
            out.push((c.name.clone(), result));
        }
        out
    }
}

/// The built-in driver for a connector.
pub async fn build_driver(connector: &Connector) -> Result<Arc<dyn Driver>, ConnectorError> {
    Ok(match connector.driver {
        DriverKind::MySql | DriverKind::Postgres | DriverKind::Sqlite => {
            Arc::new(crate::sql::SqlDriver::connect(connector).await?)
        }
        DriverKind::Http => Arc::new(crate::http::HttpDriver::new(connector)?),
        DriverKind::Soap => Arc::new(crate::soap::SoapDriver::new(connector)?),
    })
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s} s")
    } else {
        format!("{s:.1} s")
    }
}

/// The parameters an operation takes: `(name, required)`.
pub fn operation_params(entity: &Entity, operation: &Operation) -> Vec<(String, bool)> {
    match operation {
        Operation::Get => vec![(entity.key.clone(), true)],
        Operation::Search { filters, .. } => filters
            .iter()
            .map(|(name, f)| (name.clone(), f.required))
            .collect(),
        Operation::List { filters, .. } => filters
            .iter()
            .map(|(name, f)| (name.clone(), f.required))
            .chain([("page".to_owned(), false), ("page_size".to_owned(), false)])
            .collect(),
        Operation::Request(t) => t.params.iter().map(|p| (p.clone(), true)).collect(),
    }
}

/// Refuses unknown parameters and missing required ones, naming them and what is expected.
pub fn check_params(
    connector: &str,
    entity: &Entity,
    operation_name: &str,
    operation: &Operation,
    params: &Params,
) -> Result<(), ConnectorError> {
    // The common case without building the list of expected parameters (a read's hot path).
    let fits = match operation {
        Operation::Get => {
            params.len() == 1
                && params
                    .get(&entity.key)
                    .is_some_and(|v| !matches!(v, Value::Null))
        }
        Operation::Search { filters, .. } | Operation::List { filters, .. } => {
            let list = matches!(operation, Operation::List { .. });
            params
                .keys()
                .all(|k| filters.contains_key(k) || (list && (k == "page" || k == "page_size")))
                && filters.iter().all(|(name, f)| {
                    !f.required || !matches!(params.get(name), None | Some(Value::Null))
                })
        }
        Operation::Request(t) => {
            params.keys().all(|k| t.params.contains(k))
                && t.params
                    .iter()
                    .all(|name| !matches!(params.get(name), None | Some(Value::Null)))
        }
    };
    if fits {
        return Ok(());
    }
    let expected = operation_params(entity, operation);
    let unknown: Vec<&str> = params
        .keys()
        .filter(|k| !expected.iter().any(|(name, _)| name == *k))
        .map(String::as_str)
        .collect();
    let missing: Vec<&str> = expected
        .iter()
        .filter(|(name, required)| {
            *required && matches!(params.get(name), None | Some(Value::Null))
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if unknown.is_empty() && missing.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    if !unknown.is_empty() {
        problems.push(format!("unknown parameter(s) {}", list(&unknown)));
    }
    if !missing.is_empty() {
        problems.push(format!("missing parameter(s) {}", list(&missing)));
    }
    let names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    Err(ConnectorError::Request(format!(
        "connector `{connector}`, entity `{}`, operation `{operation_name}`: {} (it takes: {})",
        entity.name,
        problems.join("; "),
        list(&names)
    )))
}

/// A source value as the field's type. `Auto` keeps it; the others convert text, numbers
/// and booleans where the meaning is clear, and explain otherwise. Null stays null.
pub fn convert(value: Value, ty: FieldType) -> Result<Value, String> {
    match (ty, value) {
        (_, Value::Null) => Ok(Value::Null),
        (FieldType::Auto, v) => Ok(v),
        (FieldType::Text, Value::String(s)) => Ok(Value::String(s)),
        (FieldType::Text, Value::Number(n)) => Ok(Value::String(number_text(n))),
        (FieldType::Text, Value::Bool(b)) => Ok(Value::String(b.to_string())),
        (FieldType::Text, v) => Err(format!("a {} is not text", v.kind_name())),
        (FieldType::Number, Value::Number(n)) => Ok(Value::Number(n)),
        (FieldType::Number, Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Value::Number(n)),
            _ if s.trim().is_empty() => Ok(Value::Null),
            _ => Err(format!("{s:?} is not a number")),
        },
        (FieldType::Number, v) => Err(format!("a {} is not a number", v.kind_name())),
        (FieldType::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (FieldType::Bool, Value::Number(n)) => Ok(Value::Bool(n != 0.0)),
        (FieldType::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" | "y" => Ok(Value::Bool(true)),
            "false" | "f" | "0" | "no" | "n" => Ok(Value::Bool(false)),
            "" => Ok(Value::Null),
            _ => Err(format!("{s:?} is not a boolean")),
        },
        (FieldType::Bool, v) => Err(format!("a {} is not a boolean", v.kind_name())),
        (FieldType::Json, Value::String(s)) => serde_json::from_str::<serde_json::Value>(&s)
            .map(|j| Value::from_json(&j))
            .map_err(|e| format!("the text is not JSON ({e})")),
        (FieldType::Json, v) => Ok(v),
    }
}

/// A number's text, without `.0` for whole numbers.
pub fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// The entity's `error_field`: a non-empty value turns the row into a `Remote` error with
/// that text; an empty one is removed from the row.
pub fn apply_error_field(
    connector: &str,
    entity: &Entity,
    row: &mut BTreeMap<String, Value>,
) -> Result<(), ConnectorError> {
    let Some(field) = &entity.error_field else {
        return Ok(());
    };
    match row.remove(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(()),
        Some(Value::Bool(false)) => Ok(()),
        Some(v) => {
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => number_text(n),
                other => format!("{other:?}"),
            };
            Err(ConnectorError::Remote(format!(
                "connector `{connector}`, entity `{}`: {text}",
                entity.name
            )))
        }
    }
}

/// `text` with every occurrence of `secret` replaced by `***`.
pub fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() => text.replace(secret, "***"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(
            convert(Value::Number(3.0), FieldType::Text),
            Ok(Value::String("3".into()))
        );
        assert_eq!(
            convert(Value::String(" 2.5 ".into()), FieldType::Number),
            Ok(Value::Number(2.5))
        );
        assert!(convert(Value::String("x".into()), FieldType::Number).is_err());
        assert_eq!(
            convert(Value::String("yes".into()), FieldType::Bool),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            convert(Value::Number(0.0), FieldType::Bool),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            convert(Value::String("[1,\"a\"]".into()), FieldType::Json),
            Ok(Value::List(vec![
                Value::Number(1.0),
                Value::String("a".into())
            ]))
        );
        assert!(convert(Value::String("{".into()), FieldType::Json).is_err());
        assert_eq!(convert(Value::Null, FieldType::Number), Ok(Value::Null));
    }

    #[test]
    fn secrets_are_scrubbed() {
        assert_eq!(scrub("a s3cret b", Some("s3cret")), "a *** b");
        assert_eq!(scrub("a b", None), "a b");
    }
}
