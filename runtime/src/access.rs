//! Access control in the server (`docs/policies.md`, "In the server"): the policy file in force
//! (the bundled `assets/policies.kefu` unless `--policies FILE` names another; reloaded without
//! a restart, a file with problems leaving the old one in force), temporary grants stored in
//! the database, and the checks made where data leaves the server.
//!
//! Every check goes through [`check`], which builds the decision from the caller's account
//! (login, team, role, the customers they served), the grants in force and the time now, and
//! returns a [`Verdict`]: owned, serializable, with the explanation, so a route can refuse
//! with it and the audit trail can record it. Data that is allowed then goes through the
//! caller's department sandbox ([`Sandboxed`]): rows filtered and fields masked here, per
//! request, after the connectors' cache (which keeps the source's answer, unmasked, inside the
//! server), so one department's view never reaches another department's browser.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use flows::Value;
use policy::{Config, Context, Diagnostics, Grant, PolicyError, Request, Resource, Subject};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};

use crate::auth::{Admin, Caller};
use crate::conversation::now_ms;
use crate::server::{ApiError, AppState};
use crate::store::{GrantRow, PolicyRevision, Store, User};

/// The bundled policy file.
pub const BUNDLED: &str = include_str!("../assets/policies.kefu");

/// How many of an agent's newest assigned conversations make up their service history.
const HISTORY_LIMIT: i64 = 1000;

/// Grants that expired within this long are still passed to decisions, which ignore them but
/// list them as expired: "why can't li read this any more?" has an answer for a week.
const RECENTLY_EXPIRED_MS: i64 = 7 * 24 * 3600 * 1000;

/// Why a policy file was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{name}: {error}")]
    Invalid { name: String, error: PolicyError },
    #[error(
        "the policies in force were saved in the admin page (revision {revision}); the file is \
         not read while they are: edit them there"
    )]
    Superseded { revision: i64 },
}

impl LoadError {
    /// The located problems, when the file was read but is wrong.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            LoadError::Invalid {
                error: PolicyError::Invalid(diagnostics),
                ..
            } => Some(diagnostics),
            _ => None,
        }
    }
}

/// The policies and sandboxes in force; shared by every request, replaced whole on reload.
pub struct Access {
    file: Option<PathBuf>,
    config: RwLock<Arc<Config>>,
    origin: RwLock<Origin>,
}

/// Where the policies in force come from, and their text: what the admin page shows and edits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    /// `bundled`, `file` or `database` (saved in the admin page).
    pub source: &'static str,
    /// The file's path, `policies.kefu` for the bundled one, `revision N` for the database's.
    pub name: String,
    pub text: String,
    /// The database revision in force; 0 when a file is.
    pub revision: i64,
    pub updated_by: Option<String>,
    pub updated_at: Option<i64>,
}

impl Origin {
    fn of_file(file: Option<&PathBuf>, text: String) -> Origin {
        Origin {
            source: if file.is_some() { "file" } else { "bundled" },
            name: name(file),
            text,
            revision: 0,
            updated_by: None,
            updated_at: None,
        }
    }

    fn of_revision(revision: &PolicyRevision) -> Origin {
        Origin {
            source: "database",
            name: format!("revision {}", revision.revision),
            text: revision.text.clone(),
            revision: revision.revision,
            updated_by: Some(revision.author.clone()),
            updated_at: Some(revision.created_at),
        }
    }
}

/// Why a text typed in the admin page was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{0}")]
    Invalid(PolicyError),
    #[error(
        "someone saved the policies since you loaded them (revision {newest} is in force, you \
         edited revision {base}); load them again and redo your change"
    )]
    Stale { base: i64, newest: i64 },
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

impl Access {
    /// Reads `file` (`None`: the bundled file); an invalid file is refused with every problem.
    pub fn load(file: Option<PathBuf>) -> Result<Access, LoadError> {
        let (config, text) = read(file.as_ref())?;
        Ok(Access {
            origin: RwLock::new(Origin::of_file(file.as_ref(), text)),
            file,
            config: RwLock::new(Arc::new(config)),
        })
    }

    /// The bundled policies. They are checked by a test; should they ever fail to load, the
    /// server denies everything rather than run without policies.
    pub fn bundled() -> Access {
        Access::load(None).unwrap_or_else(|error| {
            tracing::error!(%error, "the bundled policies do not load; everything is denied");
            Access {
                file: None,
                config: RwLock::new(Arc::new(Config::default())),
                origin: RwLock::new(Origin::of_file(None, String::new())),
            }
        })
    }

    /// The policies and sandboxes in force now.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Where the policies in force come from, with their text.
    pub fn origin(&self) -> Origin {
        self.origin
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts `config` in force instead of the file's (for programs that embed the server, and
    /// tests); a later reload reads the file again.
    pub fn install(&self, config: Config) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    fn put(&self, config: Config, origin: Origin) {
        // Both under the config's lock, so a reader never pairs one text with another's rules.
        let mut slot = self.config.write().unwrap_or_else(|e| e.into_inner());
        let mut current = self.origin.write().unwrap_or_else(|e| e.into_inner());
        // A saved revision never gives way to an older one (a follower that read the database
        // just before a save on this node lands after it).
        if origin.source == "database" && current.revision > origin.revision {
            return;
        }
        *current = origin;
        *slot = Arc::new(config);
    }

    /// Reads the file again; on success it decides from the next request on, on failure the
    /// old policies stay and the problems are returned. Policies saved in the admin page take
    /// precedence over the file: while they are in force the file is not read.
    pub fn reload(&self) -> Result<Arc<Config>, LoadError> {
        let origin = self.origin();
        if origin.source == "database" {
            return Err(LoadError::Superseded {
                revision: origin.revision,
            });
        }
        let (config, text) = read(self.file.as_ref())?;
        self.put(config, Origin::of_file(self.file.as_ref(), text));
        tracing::info!(file = %name(self.file.as_ref()), "policies reloaded");
        Ok(self.config())
    }

    /// Puts the newest revision saved in the database in force, if it is newer than the
    /// policies in force (at start, and every few seconds on every node, so a save on one node
    /// reaches the others). A revision that does not load (saved by a newer kefu, say) is
    /// logged and the policies in force stay.
    pub async fn adopt_stored(&self, store: &Store) -> Result<bool, crate::store::StoreError> {
        let Some(newest) = store.newest_policies().await? else {
            return Ok(false);
        };
        if newest.revision <= self.origin().revision {
            return Ok(false);
        }
        match policy::load(&newest.text) {
            Ok(config) => {
                self.put(config, Origin::of_revision(&newest));
                tracing::info!(
                    revision = newest.revision,
                    "policies saved in the database are in force"
                );
                Ok(true)
            }
            Err(error) => {
                tracing::error!(revision = newest.revision, %error,
                    "stored policies do not load; the policies in force stay");
                Ok(false)
            }
        }
    }

    /// Saves `text` as the revision after `base` (the one the admin edited) and puts it in
    /// force; refused whole when it does not load or when someone else saved in between.
    pub async fn save(
        &self,
        store: &Store,
        text: &str,
        base: i64,
        author: &str,
    ) -> Result<Origin, SaveError> {
        let config = policy::load(text).map_err(SaveError::Invalid)?;
        let newest = store.newest_policies().await?.map_or(0, |r| r.revision);
        if newest != base {
            return Err(SaveError::Stale { base, newest });
        }
        let revision = PolicyRevision {
            revision: base + 1,
            text: text.to_owned(),
            author: author.to_owned(),
            created_at: now_ms(),
        };
        if !store.insert_policies(&revision).await? {
            let newest = store.newest_policies().await?.map_or(0, |r| r.revision);
            return Err(SaveError::Stale { base, newest });
        }
        let origin = Origin::of_revision(&revision);
        self.put(config, origin.clone());
        tracing::info!(revision = revision.revision, author, "policies saved");
        Ok(origin)
    }
}

/// Every few seconds, the newest policies saved in the database (by this node or another).
pub async fn follow_stored(access: Arc<Access>, store: Store) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = access.adopt_stored(&store).await {
            tracing::warn!(%error, "cannot read the stored policies");
        }
    }
}

fn name(file: Option<&PathBuf>) -> String {
    file.map_or_else(
        || "the bundled policies.kefu".to_owned(),
        |f| f.display().to_string(),
    )
}

fn read(file: Option<&PathBuf>) -> Result<(Config, String), LoadError> {
    let text = match file {
        None => BUNDLED.to_owned(),
        Some(path) => std::fs::read_to_string(path).map_err(|error| LoadError::Read {
            path: path.display().to_string(),
            error,
        })?,
    };
    let config = policy::load(&text).map_err(|error| LoadError::Invalid {
        name: name(file),
        error,
    })?;
    Ok((config, text))
}

/// Reloads the policies on SIGHUP (a file with problems keeps the old ones).
pub async fn reload_on_hangup(access: Arc<Access>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload policies through the admin API");
            return;
        };
        while hangups.recv().await.is_some() {
            if let Err(error) = access.reload() {
                tracing::error!(%error, "policies not reloaded; the old ones stay in force");
            }
        }
    }
    #[cfg(not(unix))]
    drop(access);
}

/// A decision, owned: what a route acts on and what the audit trail records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    pub allowed: bool,
    /// The policy or grant that decided (`None`: denied by default).
    pub decided_by: Option<String>,
    /// The decision as text: the admin page's "why".
    pub explanation: String,
    /// The `policy::Decision` as JSON (effect, reason, every policy and grant that matched).
    pub decision: JsonValue,
    /// The access as the audit trail records it (who, action, resource, decision, from where).
    #[serde(skip)]
    record: crate::audit::AuditRecord,
}

impl Verdict {
    /// 403 with the explanation, for a denied request.
    pub fn refusal(&self) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!("not allowed: {}", self.explanation.trim_end()),
        )
    }

    /// The same verdict, its audit record carrying `detail` (how the access was made).
    #[must_use]
    pub fn with_detail(mut self, detail: JsonValue) -> Verdict {
        self.record = self.record.detail(detail);
        self
    }

    /// Records the access in the audit trail, with how many rows or items it returned
    /// (`None` for a denied access, which returned nothing).
    pub async fn audit(&self, state: &AppState, result_size: Option<u64>) {
        let mut record = self.record.clone();
        record.result_size = result_size;
        state.audit.record(record).await;
    }
}

/// Who is asking, with the account policies see and where from.
pub struct Asker<'a> {
    pub subject: Subject,
    pub user: &'a User,
    pub ip: Option<String>,
}

/// Who is asking, as policies see them: `agent.id` is the login, `agent.teams` the account's
/// team, `agent.roles` its role (`admin` or `agent`), `agent.user_id` the account id and
/// `agent.service_history` the customers (by the identity the widget sent under
/// `customer_key`, the customer entity's key) of the conversations assigned to them.
pub async fn subject(store: &Store, user: &User, customer_key: &str) -> Result<Subject, ApiError> {
    let started = store
        .started_of_assignee(&user.id, HISTORY_LIMIT)
        .await
        .map_err(|error| {
            tracing::error!(%error, "cannot read an agent's service history");
            ApiError::internal()
        })?;
    let mut history: Vec<Value> = Vec::new();
    for data in &started {
        let Ok(data) = serde_json::from_str::<JsonValue>(data) else {
            continue;
        };
        if let Some(id) = data["visitor"][customer_key].as_str() {
            let id = Value::String(id.to_owned());
            if !history.contains(&id) {
                history.push(id);
            }
        }
    }
    Ok(Subject::new(user.login.clone())
        .team(user.team.id.clone())
        .role(user.role.clone())
        .attr("user_id", Value::String(user.id.clone()))
        .attr("service_history", Value::List(history)))
}

/// The key under which visitors identify themselves as customers: the configured customer
/// entity's key, `email` without connectors.
pub fn customer_key(state: &AppState) -> String {
    state
        .connectors
        .as_ref()
        .and_then(|live| {
            let registry = live.registry();
            let source = registry.connectors().customer.clone()?;
            let key = registry
                .connectors()
                .get(&source.connector)?
                .entities
                .get(&source.entity)?
                .key
                .clone();
            Some(key)
        })
        .unwrap_or_else(|| "email".to_owned())
}

/// The time zone of `context.time` and friends: `KEFU_TZ_OFFSET_MINUTES`, else China's.
fn tz_offset_minutes() -> i32 {
    std::env::var("KEFU_TZ_OFFSET_MINUTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(480)
}

/// A context at the current time, local time in the server's time zone, from `channel`.
pub fn context_now(channel: &str) -> Context {
    Context::at_local(now_ms(), tz_offset_minutes()).channel(channel)
}

/// The grants in force at `now` and those expired lately, as the policy engine takes them (it
/// compares `expires_at` with the request's time, so expired ones allow nothing); a stored
/// grant whose patterns no longer parse is skipped (it can then allow nothing).
async fn grants_at(store: Option<&Store>, now: i64) -> Result<Vec<Grant>, ApiError> {
    let Some(store) = store else {
        return Ok(Vec::new());
    };
    let since = now.saturating_sub(RECENTLY_EXPIRED_MS);
    let rows = store.grants_expiring_after(since).await.map_err(|error| {
        tracing::error!(%error, "cannot read grants");
        ApiError::internal()
    })?;
    Ok(rows
        .iter()
        .filter_map(|row| match to_grant(row) {
            Ok(grant) => Some(grant),
            Err(error) => {
                tracing::warn!(grant = %row.id, %error, "a stored grant is skipped");
                None
            }
        })
        .collect())
}

fn to_grant(row: &GrantRow) -> Result<Grant, String> {
    let actions: Vec<String> =
        serde_json::from_str(&row.actions_json).map_err(|e| e.to_string())?;
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    let mut grant = Grant::new(
        row.id.clone(),
        &row.subject,
        &actions,
        &row.resource,
        row.expires_at,
    )
    .map_err(|e| e.to_string())?;
    grant.granted_by = Some(row.granted_by.clone());
    grant.reason = (!row.reason.is_empty()).then(|| row.reason.clone());
    Ok(grant)
}

/// May `subject` do `action` on `resource` now? The one place requests are decided: with the
/// policies in force and the grants stored (expired ones allow nothing: the context carries
/// the current time). Nothing is recorded yet: the caller records the access with
/// [`Verdict::audit`] once it knows what it returned (a denied access at once).
pub async fn decide(
    state: &AppState,
    subject: &Subject,
    action: &str,
    resource: &Resource,
    context: &Context,
) -> Result<Verdict, ApiError> {
    let grants = grants_at(state.store.as_ref(), context.now()).await?;
    let config = state.access.config();
    let decision = config
        .policies
        .decide(&Request::new(subject, action, resource, context), &grants);
    let allowed = decision.is_allowed();
    let decided_by = decision.decided_by().map(str::to_owned);
    let ip = match context.value() {
        Value::Map(fields) => match fields.get("ip") {
            Some(Value::String(ip)) => Some(ip.clone()),
            _ => None,
        },
        _ => None,
    };
    let mut record = crate::audit::AuditRecord::new(
        subject.id(),
        action,
        format!("{}::{}", resource.entity(), resource.id()),
    )
    .decided(
        if allowed {
            crate::audit::Decision::Allow
        } else {
            crate::audit::Decision::Deny
        },
        decided_by.iter().cloned().collect(),
    );
    record.ip = ip;
    tracing::debug!(
        subject = subject.id(),
        action,
        resource = %record.resource,
        allowed,
        decided_by = decided_by.as_deref().unwrap_or("default"),
        "access decided"
    );
    Ok(Verdict {
        allowed,
        decided_by,
        explanation: decision.to_string(),
        decision: serde_json::to_value(&decision).unwrap_or(JsonValue::Null),
        record,
    })
}

/// The context of a request made now by `caller` on `channel`: the time in the server's time
/// zone, the channel and the caller's address.
pub fn context_of(caller: &Caller, channel: &str) -> Context {
    let context = context_now(channel);
    match &caller.ip {
        Some(ip) => context.ip(ip.clone()),
        None => context,
    }
}

/// The sandbox a caller sees `entity` through. Admins are not sandboxed (they may do
/// everything and edit the policies); everyone else gets their team's view, which the
/// connectors apply in the call: in the SQL statement for SQL connectors, on the answer for
/// the others (`connectors::View`).
pub struct Sandboxed {
    view: Option<connectors::View>,
}

impl Sandboxed {
    pub fn new(state: &AppState, subject: &Subject, entity: &str, user: &User) -> Sandboxed {
        let view = (user.role != "admin")
            .then(|| {
                let config = state.access.config();
                config
                    .sandboxes
                    .view(subject, entity)
                    .map(|sandbox| connectors::View::of(sandbox, subject))
            })
            .flatten();
        Sandboxed { view }
    }

    /// The view the connector call goes through; `None`: the whole answer.
    pub fn view(&self) -> Option<&connectors::View> {
        self.view.as_ref()
    }
}

/// The console's customer panel for `caller` (`None` when there is nothing to show: no
/// connectors, no customer entity, a visitor without identity). Decided (`read` on
/// `<entity>::<key>`) before the connector is asked, then read through the caller's sandbox;
/// the access is audited with the number of rows shown. Denied, the panel holds no data and
/// says so (`allowed: false`, `error`, `reason`); it does not echo the decision, whose
/// resource names the customer the caller may not know about.
pub async fn customer_panel(
    state: &AppState,
    caller: &Caller,
    visitor: &BTreeMap<String, String>,
) -> Result<Option<JsonValue>, ApiError> {
    let Some(live) = &state.connectors else {
        return Ok(None);
    };
    if state.store.is_none() {
        return Ok(None);
    }
    let (entity, key, source) = {
        let registry = live.registry();
        let Some(source) = registry.connectors().customer.clone() else {
            return Ok(None);
        };
        let Some(key) = registry
            .connectors()
            .get(&source.connector)
            .and_then(|c| c.entities.get(&source.entity))
            .map(|e| e.key.clone())
        else {
            return Ok(None);
        };
        (
            source.entity.clone(),
            key,
            format!("{}.{}", source.connector, source.entity),
        )
    };
    let Some(id) = visitor.get(&key) else {
        return Ok(None);
    };
    let resource = Resource::new(entity.clone(), id.clone());
    let (verdict, subject) = decide_for(state, caller, "read", &resource).await?;
    if !verdict.allowed {
        verdict.audit(state, None).await;
        let panel = json!({
            "source": source,
            "fields": [],
            "allowed": false,
            "error": "not allowed: your access policies do not let you read this customer",
            "reason": verdict.decision["reason"],
        });
        return Ok(Some(panel));
    }
    // Through the department's view: rows outside it and unmasked values never leave the
    // connector (for SQL connectors, the database).
    let sandboxed = Sandboxed::new(state, &subject, &entity, &caller.user);
    let Some(mut panel) = live.customer(visitor, sandboxed.view()).await else {
        verdict.audit(state, Some(0)).await;
        return Ok(None);
    };
    let found = panel["fields"].as_array().is_some_and(|f| !f.is_empty());
    verdict.audit(state, Some(u64::from(found))).await;
    if !found && sandboxed.view().is_some_and(|v| v.rows.is_some()) && panel["error"].is_null() {
        panel["error"] = json!("not allowed: this customer is outside your department's view");
    }
    panel["allowed"] = json!(true);
    Ok(Some(panel))
}

/// Decides `action` on `resource` for `caller` now (channel `console`); refused, the refusal
/// is audited and answered as 403 with the explanation. Allowed, the route audits the access
/// with its result ([`Verdict::audit`]).
pub async fn require(
    state: &AppState,
    caller: &Caller,
    action: &str,
    resource: &Resource,
) -> Result<Verdict, ApiError> {
    let verdict = decide_for(state, caller, action, resource).await?.0;
    if verdict.allowed {
        Ok(verdict)
    } else {
        verdict.audit(state, None).await;
        Err(verdict.refusal())
    }
}

/// May `caller` read `conversation` (its transcript, variables and customer, in the console
/// API and through the agent socket)? `read` on `conversations::<id>`, the resource carrying
/// `status`, `flow`, `queue`, `team`, `priority` and `assignee` (the account id of the agent
/// who has it, `null` before) for conditions. To audit once the caller knows the result.
pub async fn conversation(
    state: &AppState,
    caller: &Caller,
    conversation: &crate::store::Conversation,
) -> Result<Verdict, ApiError> {
    let routing = &conversation.routing;
    let resource = conversation_resource(ConversationFacts {
        id: &conversation.id,
        status: &conversation.status,
        flow: &conversation.flow_id,
        queue: routing.queue.as_deref(),
        team: routing.team.as_deref(),
        priority: routing.priority.as_deref(),
        assignee: routing.assignee.as_deref(),
    });
    Ok(decide_for(state, caller, "read", &resource).await?.0)
}

/// What policies see of a conversation.
#[derive(Clone, Copy)]
struct ConversationFacts<'a> {
    id: &'a str,
    status: &'a str,
    flow: &'a str,
    queue: Option<&'a str>,
    team: Option<&'a str>,
    priority: Option<&'a str>,
    assignee: Option<&'a str>,
}

/// `conversations::<id>` with its attributes, the same from a stored conversation and from a
/// list's summary.
fn conversation_resource(facts: ConversationFacts<'_>) -> Resource {
    let text = |value: Option<&str>| value.map_or(Value::Null, |v| Value::String(v.to_owned()));
    Resource::new("conversations", facts.id.to_owned())
        .attr("status", text(Some(facts.status)))
        .attr("flow", text(Some(facts.flow)))
        .attr("queue", text(facts.queue))
        .attr("team", text(facts.team))
        .attr("priority", text(facts.priority))
        .attr("assignee", text(facts.assignee))
}

/// Decides many conversations for one caller at once — the console's lists and the queue the
/// agent socket pushes: the caller's subject, the grants and the policies are read once, then
/// each summary (`console::summary`) is decided in memory like [`conversation`] decides one.
pub struct ListReader {
    config: Arc<Config>,
    subject: Subject,
    grants: Vec<Grant>,
    context: Context,
}

impl ListReader {
    pub async fn new(state: &AppState, caller: &Caller) -> Result<ListReader, ApiError> {
        let subject = subject_of(state, caller).await?;
        let context = context_of(caller, "console");
        let grants = grants_at(state.store.as_ref(), context.now()).await?;
        Ok(ListReader {
            config: state.access.config(),
            subject,
            grants,
            context,
        })
    }

    /// Whether the caller may read the conversation a list's summary describes.
    pub fn may_read(&self, summary: &JsonValue) -> bool {
        let text = |name: &str| summary[name].as_str();
        let Some(id) = text("id") else {
            return false;
        };
        let resource = conversation_resource(ConversationFacts {
            id,
            status: text("status").unwrap_or_default(),
            flow: text("flow").unwrap_or_default(),
            queue: text("queue"),
            team: text("team"),
            priority: text("priority"),
            assignee: summary["assignee"]["id"].as_str(),
        });
        self.config
            .policies
            .decide(
                &Request::new(&self.subject, "read", &resource, &self.context),
                &self.grants,
            )
            .is_allowed()
    }

    /// The summaries the caller may read, in their order.
    pub fn filter(&self, summaries: Vec<JsonValue>) -> Vec<JsonValue> {
        summaries.into_iter().filter(|s| self.may_read(s)).collect()
    }
}

/// The caller's account as policies see it ([`subject`]); access control needs the database.
async fn subject_of(state: &AppState, caller: &Caller) -> Result<Subject, ApiError> {
    let store = state.store.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "access control needs the database",
        )
    })?;
    subject(store, &caller.user, &customer_key(state)).await
}

/// [`decide`] for a signed-in caller in the console: their account as the subject, the time,
/// channel `console` and their address as the context. Also returns the subject (for the
/// caller's sandbox).
async fn decide_for(
    state: &AppState,
    caller: &Caller,
    action: &str,
    resource: &Resource,
) -> Result<(Verdict, Subject), ApiError> {
    let subject = subject_of(state, caller).await?;
    let verdict = decide(
        state,
        &subject,
        action,
        resource,
        &context_of(caller, "console"),
    )
    .await?;
    Ok((verdict, subject))
}

/// A conversation's variables as `caller` may see them. Rows the bot read through the
/// connectors go through the caller's view of their entity (rows outside it become `null` or
/// are left out of a list, masked fields are masked), so the bot's lookups do not show an agent
/// what their department's sandbox hides:
/// - a variable a `lookup` of the flow filled (`save_as`) is a row (or rows) of that entity;
/// - anywhere else in the variables (a button's chosen row, a sub-flow's outputs, a copy), a
///   map holding the key field of an entity the caller sees through a view is taken as a row
///   of that entity — more may be masked than needed, nothing less.
///
/// Values a flow copied field by field (`set phone = order.phone`) are not traced.
pub async fn variables_in_view(
    state: &AppState,
    user: &User,
    flow: Option<&flows::Flow>,
    mut variables: BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, ApiError> {
    if user.role == "admin" {
        return Ok(variables);
    }
    let Some(store) = &state.store else {
        // Without accounts there is nobody to show them to.
        return Ok(BTreeMap::new());
    };
    let subject = subject(store, user, &customer_key(state)).await?;
    // Every entity the caller sees through a view, with its key field.
    let entities: Vec<(String, String)> = state
        .connectors
        .as_ref()
        .map(|live| {
            live.registry()
                .connectors()
                .connectors
                .iter()
                .flat_map(|c| c.entities.values())
                .map(|e| (e.name.clone(), e.key.clone()))
                .collect()
        })
        .unwrap_or_default();
    let views: Vec<EntityView> = entities
        .into_iter()
        .filter_map(|(entity, key)| {
            let sandboxed = Sandboxed::new(state, &subject, &entity, user);
            sandboxed.view.map(|view| EntityView { entity, key, view })
        })
        .collect();
    if views.is_empty() {
        return Ok(variables);
    }
    let saved: BTreeMap<&str, &str> = flow
        .map(|flow| {
            flow.nodes
                .iter()
                .filter_map(|node| match &node.kind {
                    flows::model::NodeKind::Lookup(lookup) => lookup
                        .save_as
                        .as_deref()
                        .map(|name| (name, lookup.entity.as_str())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for (name, value) in &mut variables {
        let taken = std::mem::replace(value, Value::Null);
        let saved_view = saved
            .get(name.as_str())
            .and_then(|entity| views.iter().find(|v| v.entity == *entity));
        *value = match saved_view {
            Some(saved) => rows_in_view(&saved.view, taken),
            None => through_views(&views, taken),
        };
    }
    Ok(variables)
}

/// An entity the caller sees through a view, with its key field.
struct EntityView {
    entity: String,
    key: String,
    view: connectors::View,
}

/// A value a lookup saved (a row or a list of rows) through `view`.
fn rows_in_view(view: &connectors::View, value: Value) -> Value {
    match value {
        Value::Map(row) => view.apply(vec![row]).pop().map_or(Value::Null, Value::Map),
        Value::List(items) => Value::List(
            items
                .into_iter()
                .filter_map(|item| match item {
                    Value::Map(row) => view.apply(vec![row]).pop().map(Value::Map),
                    // Not a row: nothing the view can tell apart, so nothing is shown.
                    _ => None,
                })
                .collect(),
        ),
        Value::Null => Value::Null,
        // Not a row where one was saved: masked whole, to be safe.
        _ => Value::String("***".to_owned()),
    }
}

/// Any value, with every map that holds the key field of a viewed entity taken as a row of it
/// (dropped from lists, `null` elsewhere, when outside the view).
fn through_views(views: &[EntityView], value: Value) -> Value {
    let view_of = |row: &BTreeMap<String, Value>| views.iter().find(|v| row.contains_key(&v.key));
    match value {
        Value::Map(row) => {
            if let Some(found) = view_of(&row) {
                return found
                    .view
                    .apply(vec![row])
                    .pop()
                    .map_or(Value::Null, Value::Map);
            }
            Value::Map(
                row.into_iter()
                    .map(|(k, v)| (k, through_views(views, v)))
                    .collect(),
            )
        }
        Value::List(items) => Value::List(
            items
                .into_iter()
                .filter_map(|item| {
                    let was_row = matches!(&item, Value::Map(row) if view_of(row).is_some());
                    match through_views(views, item) {
                        Value::Null if was_row => None,
                        other => Some(other),
                    }
                })
                .collect(),
        ),
        other => other,
    }
}

/// Decides a connector call started by `caller` (`read` for operations that only read, else
/// the operation's name, on `<entity>::<key value>`; `*` for a search without a key), and
/// returns the verdict (to audit with the call's result) with the sandbox its rows go
/// through.
pub async fn connector_call(
    state: &AppState,
    caller: &Caller,
    connector: &str,
    entity: &str,
    operation: &str,
    params: &BTreeMap<String, Value>,
) -> Result<(Verdict, Sandboxed), ApiError> {
    let (action, key) = state
        .connectors
        .as_ref()
        .and_then(|live| {
            let registry = live.registry();
            let declared = registry.connectors().get(connector)?.entities.get(entity)?;
            let action = declared
                .operations
                .get(operation)
                .filter(|op| op.is_read())
                .map_or_else(|| operation.to_owned(), |_| "read".to_owned());
            Some((action, declared.key.clone()))
        })
        .unwrap_or_else(|| (operation.to_owned(), String::new()));
    let id = match params.get(&key) {
        Some(Value::String(text)) => text.clone(),
        // Whole numbers as `42`, not `42.0`: ids are written that way in policies.
        Some(Value::Number(n)) if n.is_finite() && n.fract() == 0.0 => format!("{n:.0}"),
        Some(Value::Number(n)) => n.to_string(),
        _ => "*".to_owned(),
    };
    let resource = Resource::new(entity.to_owned(), id);
    let (verdict, subject) = decide_for(state, caller, &action, &resource).await?;
    let sandboxed = Sandboxed::new(state, &subject, entity, &caller.user);
    Ok((verdict, sandboxed))
}

// ---------------------------------------------------------------------------------------------
// The admin API: grants, "can X do Y on Z, and why", reload.

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/admin/grants", get(list_grants).post(create_grant))
        .route("/api/admin/grants/{id}", delete(revoke_grant))
        .route("/api/admin/policy/check", post(explain))
        .route("/api/admin/policy/reload", post(reload))
        .route("/api/admin/policies", get(policies).put(save_policies))
}

fn store_of(state: &AppState) -> Result<&Store, ApiError> {
    state.store.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "grants need the database; this server has none",
        )
    })
}

fn internal(error: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(%error, "access request failed");
    ApiError::internal()
}

fn grant_json(row: &GrantRow, now: i64) -> JsonValue {
    let actions: JsonValue = serde_json::from_str(&row.actions_json).unwrap_or(JsonValue::Null);
    json!({
        "id": row.id, "subject": row.subject, "actions": actions, "resource": row.resource,
        "expires_at": row.expires_at, "granted_by": row.granted_by, "reason": row.reason,
        "created_at": row.created_at, "active": now < row.expires_at,
    })
}

/// One action or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Actions {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct NewGrant {
    subject: String,
    actions: Actions,
    resource: String,
    expires_at: i64,
    #[serde(default)]
    reason: String,
}

async fn create_grant(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Json(body): Json<NewGrant>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    let actions = match body.actions {
        Actions::One(action) => vec![action],
        Actions::Many(actions) => actions,
    };
    let id = format!("g-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let refs: Vec<&str> = actions.iter().map(String::as_str).collect();
    // The same checks as when a grant is read back, so a stored grant always parses.
    Grant::new(
        id.clone(),
        &body.subject,
        &refs,
        &body.resource,
        body.expires_at,
    )
    .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, error.to_string()))?;
    if body.reason.chars().count() > 1000 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the reason is longer than 1000 characters",
        ));
    }
    let now = now_ms();
    let row = GrantRow {
        id,
        subject: body.subject.trim().to_owned(),
        actions_json: serde_json::to_string(&actions).map_err(|e| internal(&e))?,
        resource: body.resource.trim().to_owned(),
        expires_at: body.expires_at,
        granted_by: admin.user.login.clone(),
        reason: body.reason,
        created_at: now,
    };
    store.insert_grant(&row).await.map_err(|e| internal(&e))?;
    tracing::info!(grant = %row.id, subject = %row.subject, resource = %row.resource,
                   expires_at = row.expires_at, admin = %admin.user.login, "grant created");
    let audited = crate::audit::AuditRecord::by(&admin,
        "grant",
        format!("grants::{}", row.id),
    )
    .detail(
        json!({ "subject": row.subject, "resource": row.resource, "expires_at": row.expires_at }),
    );
    state.audit.record(audited).await;
    Ok((StatusCode::CREATED, Json(grant_json(&row, now))).into_response())
}

/// Every grant, in force or expired, newest first.
async fn list_grants(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
) -> Result<Json<Vec<JsonValue>>, ApiError> {
    let store = store_of(&state)?;
    let now = now_ms();
    let rows = store.grants(1000).await.map_err(|e| internal(&e))?;
    Ok(Json(rows.iter().map(|row| grant_json(row, now)).collect()))
}

async fn revoke_grant(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let store = store_of(&state)?;
    if store.delete_grant(&id).await.map_err(|e| internal(&e))? {
        tracing::info!(grant = %id, admin = %admin.user.login, "grant revoked");
        let audited = crate::audit::AuditRecord::by(&admin, "revoke", format!("grants::{id}"));
        state.audit.record(audited).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no grant `{id}`"),
        ))
    }
}

#[derive(Deserialize)]
struct Who {
    login: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize, Default)]
struct CheckContext {
    channel: Option<String>,
    ip: Option<String>,
}

#[derive(Deserialize)]
struct CheckBody {
    subject: Who,
    action: String,
    resource: String,
    #[serde(default)]
    context: CheckContext,
}

/// "Can X do Y on Z, and why": the decision for an account, as it would be made now.
async fn explain(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Json(body): Json<CheckBody>,
) -> Result<Json<JsonValue>, ApiError> {
    let store = store_of(&state)?;
    let user = match (&body.subject.login, &body.subject.id) {
        (Some(login), _) => store
            .user_by_login(login)
            .await
            .map_err(|e| internal(&e))?
            .map(|(user, _)| user),
        (None, Some(id)) => store.user(id).await.map_err(|e| internal(&e))?,
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "`subject` needs a `login` or an `id`",
            ));
        }
    }
    .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such account"))?;
    let Some((entity, id)) = body.resource.split_once("::") else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "resource `{}` is not `<entity>::<id>` (customers::42)",
                body.resource
            ),
        ));
    };
    let subject = subject(store, &user, &customer_key(&state)).await?;
    let mut context = Context::at_local(now_ms(), tz_offset_minutes());
    if let Some(channel) = body.context.channel {
        context = context.channel(channel);
    }
    if let Some(ip) = body.context.ip {
        context = context.ip(ip);
    }
    let resource = Resource::new(entity.to_owned(), id.to_owned());
    let verdict = decide(&state, &subject, &body.action, &resource, &context).await?;
    // Asking is not the access asked about: the trail records the admin's question.
    let asked = crate::audit::AuditRecord::by(&admin, "explain", "policies::*").detail(
        json!({"subject": user.login, "action": body.action, "resource": body.resource,
               "allowed": verdict.allowed, "decided_by": verdict.decided_by}),
    );
    state.audit.record(asked).await;
    let mut answer = verdict.decision;
    answer["explanation"] = json!(verdict.explanation);
    answer["allowed"] = json!(verdict.allowed);
    answer["decided_by"] = json!(verdict.decided_by);
    Ok(Json(answer))
}

/// Reads the policy file again; its located problems when it cannot be taken.
async fn reload(State(state): State<Arc<AppState>>, Admin(admin): Admin) -> Response {
    let reloaded = state.access.reload();
    let audited = crate::audit::AuditRecord::by(&admin, "reload", "policies::*")
        .detail(json!({ "ok": reloaded.is_ok() }));
    state.audit.record(audited).await;
    match reloaded {
        Ok(config) => Json(json!({
            "policies": config.policies.len(),
            "sandboxes": config.sandboxes.len(),
        }))
        .into_response(),
        Err(error) => unprocessable(
            &format!("{error}; the policies in force are unchanged"),
            error.diagnostics(),
        ),
    }
}

/// 422 with the message and every located problem (`{line, column, message}`).
fn unprocessable(error: &str, diagnostics: Option<&Diagnostics>) -> Response {
    let problems: Vec<JsonValue> = diagnostics
        .map(|d| {
            d.0.iter()
                .map(|p| json!({"line": p.line, "column": p.column, "message": p.message}))
                .collect()
        })
        .unwrap_or_default();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "error": error, "problems": problems })),
    )
        .into_response()
}

fn origin_json(origin: &Origin, config: &Config) -> JsonValue {
    let mut answer = serde_json::to_value(origin).unwrap_or_else(|_| json!({}));
    answer["policies"] = json!(config.policies.len());
    answer["sandboxes"] = json!(config.sandboxes.len());
    answer
}

/// The policies in force: where they come from, their text and how many there are.
async fn policies(State(state): State<Arc<AppState>>, _admin: Admin) -> Json<JsonValue> {
    Json(origin_json(&state.access.origin(), &state.access.config()))
}

#[derive(Deserialize)]
struct SavePolicies {
    text: String,
    /// The revision the admin loaded and edited (0: the file's policies).
    revision: i64,
}

/// The most a policy text may hold.
const MAX_POLICY_TEXT: usize = 1 << 20;

/// Saves the admin's text as a new revision and puts it in force on every node; refused whole
/// (422 with every located problem, 409 when someone saved in between).
async fn save_policies(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Json(body): Json<SavePolicies>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    if body.text.len() > MAX_POLICY_TEXT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the policies are longer than {MAX_POLICY_TEXT} bytes"),
        ));
    }
    let saved = state
        .access
        .save(store, &body.text, body.revision, &admin.user.login)
        .await;
    let audited = crate::audit::AuditRecord::by(&admin, "edit", "policies::*");
    match saved {
        Ok(origin) => {
            let config = state.access.config();
            state
                .audit
                .record(audited.detail(json!({
                    "revision": origin.revision,
                    "policies": config.policies.len(),
                    "sandboxes": config.sandboxes.len(),
                })))
                .await;
            Ok(Json(origin_json(&origin, &config)).into_response())
        }
        Err(SaveError::Invalid(error)) => {
            let diagnostics = match &error {
                PolicyError::Invalid(diagnostics) => Some(diagnostics),
                PolicyError::Grant { .. } => None,
            };
            state
                .audit
                .record(
                    audited
                        .decided(crate::audit::Decision::Deny, Vec::new())
                        .detail(json!({ "error": "invalid", "base": body.revision })),
                )
                .await;
            Ok(unprocessable(
                &format!("{error}; nothing was saved"),
                diagnostics,
            ))
        }
        Err(SaveError::Stale { base, newest }) => {
            state
                .audit
                .record(
                    audited
                        .decided(crate::audit::Decision::Deny, Vec::new())
                        .detail(json!({ "error": "stale", "base": base, "newest": newest })),
                )
                .await;
            let error = SaveError::Stale { base, newest };
            Err(ApiError::new(StatusCode::CONFLICT, error.to_string()))
        }
        Err(SaveError::Store(error)) => Err(internal(&error)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bundled_policies_load() {
        let config = policy::load(super::BUNDLED);
        assert!(config.is_ok(), "{config:?}");
    }
}
