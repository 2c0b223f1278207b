//! The flow designer's API (`docs/flow-api.md`): the designer's list of flows, creating a
//! flow (it exists as a draft until its first publish), drafts saved with optimistic
//! concurrency, publishing numbered versions with a note (refused while errors remain), the
//! version history, a diff of logic between versions, rollback, import of flow files, Rust
//! export of any document, and analytics (visits and drop-off per node of a version).
//!
//! A flow exists when the server's library holds it (bundled, or published), or the database
//! has a draft or a published version of it: a flow created here lives only in `flow_drafts`
//! until it is published, and other nodes see it from the database.
//!
//! Agents and admins may read; only admins change anything ([`Admin`]), and every change
//! carries the session's CSRF token (checked by the extractor). A published version becomes
//! the current one for new conversations at once (`Engines::publish`); conversations already
//! running stay on the version they started with. In a cluster the other nodes are told on
//! `kefu.flows` and load the version from the database.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flows::{Diagnostic, Flow, Library, Severity};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Admin, Caller};
use crate::conversation::now_ms;
use crate::engines::Engines;
use crate::server::{ApiError, AppState};
use crate::store::{DraftSaved, NewVersion, Store, VersionPublished};

/// The longest version note.
const MAX_NOTE: usize = 2000;

/// The longest flow id and flow name a new flow may have.
const MAX_ID: usize = 64;
const MAX_NAME: usize = 200;

/// Ids a new flow may not take: `/api/flows/{id}` would be these routes instead.
const RESERVED_IDS: [&str; 3] = ["import", "validate", "rust"];

/// `POST /api/flows` is routed in `server.rs`, next to `GET /api/flows`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/designer/flows", get(designer_flows))
        .route("/api/flows/rust", post(export_rust))
        .route("/api/flows/{id}/analytics", get(analytics))
        .route("/api/flows/import", post(import))
        .route("/api/flows/{id}/draft", get(get_draft).put(save_draft))
        .route("/api/flows/{id}/publish", post(publish))
        .route("/api/flows/{id}/rollback", post(rollback))
        .route("/api/flows/{id}/versions", get(versions))
        .route("/api/flows/{id}/versions/{version}", get(version))
        .route("/api/flows/{id}/diff", get(diff))
}

fn store_of(state: &AppState) -> Result<&Store, ApiError> {
    state.store.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "flow editing is not available on this server (it has no database)",
        )
    })
}

fn internal(error: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(%error, "flow API request failed");
    ApiError::internal()
}

fn no_flow(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no flow `{id}`"))
}

/// A response with `status` and a JSON body.
fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// The current published version of `id`: the server's library's, else the latest stored
/// one (a flow first published on another node); `None` for a flow never published.
async fn published(state: &AppState, store: &Store, id: &str) -> Result<Option<Flow>, ApiError> {
    if let Some(flow) = state.library().get(id) {
        return Ok(Some(flow.clone()));
    }
    match store.latest_flow(id).await.map_err(|e| internal(&e))? {
        Some(stored) => Ok(Some(load_stored(&stored.json)?)),
        None => Ok(None),
    }
}

/// Whether flow `id` exists: published (or bundled), or only a draft.
async fn exists(state: &AppState, store: &Store, id: &str) -> Result<bool, ApiError> {
    if published(state, store, id).await?.is_some() {
        return Ok(true);
    }
    Ok(store.draft(id).await.map_err(|e| internal(&e))?.is_some())
}

/// 404 unless flow `id` exists.
async fn require_flow(state: &AppState, store: &Store, id: &str) -> Result<(), ApiError> {
    if exists(state, store, id).await? {
        Ok(())
    } else {
        Err(no_flow(id))
    }
}

/// Every diagnostic of `flow`, with sub-flows looked up in the server's current flows.
fn diagnostics(state: &AppState, flow: &Flow) -> Vec<Diagnostic> {
    let mut library = Library::clone(&state.library());
    library.insert(flow.clone());
    flows::validate(flow, &library)
}

fn errors(diagnostics: &[Diagnostic]) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count()
}

/// A document as JSON (the stored text is what `flows::to_json` wrote).
fn document(flow: &Flow) -> Value {
    serde_json::to_value(flow).unwrap_or(Value::Null)
}

/// Reads a document sent by a client: 422 with the located reason when it is not a flow.
fn load(text: &str) -> Result<Flow, ApiError> {
    flows::from_json(text).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("this is not a flow document: {error}"),
        )
    })
}

/// Reads a stored document; one that no longer loads is a server problem.
pub(crate) fn load_stored(text: &str) -> Result<Flow, ApiError> {
    flows::from_json(text).map_err(|e| internal(&format!("a stored flow does not load: {e}")))
}

/// Whether two documents are the same flow apart from their version numbers.
fn same_document(a: &Flow, b: &Flow) -> bool {
    a == &Flow {
        version: a.version,
        ..b.clone()
    }
}

/// The draft of `id`: its revision (0 when none was saved) and its flow (the current
/// version's when none was saved).
async fn draft_of(state: &AppState, store: &Store, id: &str) -> Result<(i64, Flow), ApiError> {
    match store.draft(id).await.map_err(|e| internal(&e))? {
        Some(draft) => Ok((draft.revision, load_stored(&draft.document)?)),
        None => match published(state, store, id).await? {
            Some(flow) => Ok((0, flow)),
            None => Err(no_flow(id)),
        },
    }
}

/// A flow's documents (draft, versions, diffs) leave the server only for those the policies
/// let read it: `read` on `flows::<id>` (the bundled policies: every agent and admin).
async fn read_flow(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<crate::access::Verdict, ApiError> {
    let resource = policy::Resource::new("flows", id.to_owned());
    crate::access::require(state, caller, "read", &resource).await
}

async fn get_draft(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    let verdict = read_flow(&state, &caller, &id).await?;
    let (revision, flow) = draft_of(&state, store, &id).await?;
    verdict.audit(&state, Some(1)).await;
    let published = published(&state, store, &id).await?;
    let diagnostics = diagnostics(&state, &flow);
    Ok(answer(
        StatusCode::OK,
        json!({
            "revision": revision,
            "published_version": published.map(|f| f.version),
            "document": document(&flow),
            "errors": errors(&diagnostics),
            "diagnostics": diagnostics,
        }),
    ))
}

#[derive(Deserialize)]
struct SaveBody {
    /// The revision the client loaded (0: it loaded the published version, no draft).
    revision: i64,
    document: Value,
}

async fn save_draft(
    State(state): State<Arc<AppState>>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    Json(body): Json<SaveBody>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    require_flow(&state, store, &id).await?;
    if body.revision < 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`revision` is the draft revision you loaded (0 or more)",
        ));
    }
    // Pretty, so that the line and column of a load error point into a readable document.
    let text = serde_json::to_string_pretty(&body.document).unwrap_or_default();
    let flow = load(&text)?;
    if flow.id != id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the document is flow `{}`, not `{id}`; import it as its own flow or change its `id`",
                flow.id
            ),
        ));
    }
    let saved = store
        .save_draft(
            &id,
            body.revision,
            &flows::to_json(&flow),
            &caller.user.login,
            now_ms(),
        )
        .await
        .map_err(|e| internal(&e))?;
    match saved {
        DraftSaved::Saved(revision) => {
            let record = crate::audit::AuditRecord::by(&caller, "save", format!("flows::{id}"))
                .detail(json!({ "revision": revision }));
            state.audit.record(record).await;
            let diagnostics = diagnostics(&state, &flow);
            Ok(answer(
                StatusCode::OK,
                json!({
                    "revision": revision,
                    "errors": errors(&diagnostics),
                    "diagnostics": diagnostics,
                }),
            ))
        }
        DraftSaved::Conflict { current } => {
            let (revision, theirs, by) = match current {
                Some(draft) => (
                    draft.revision,
                    load_stored(&draft.document)?,
                    draft.updated_by,
                ),
                // No draft: the client's base was stale against a publish, so the current
                // version is what it should reload.
                None => match published(&state, store, &id).await? {
                    Some(flow) => (0, flow, None),
                    None => return Err(no_flow(&id)),
                },
            };
            let who = by.map_or_else(|| "someone".to_owned(), |login| format!("`{login}`"));
            Ok(answer(
                StatusCode::CONFLICT,
                json!({
                    "error": format!(
                        "not saved: {who} saved this flow after you loaded it (revision {revision}, \
                         you had {}). Reload it, or merge your changes into `current` and save \
                         again with `revision` {revision}",
                        body.revision
                    ),
                    "current_revision": revision,
                    "current": document(&theirs),
                }),
            ))
        }
    }
}

#[derive(Deserialize)]
struct PublishBody {
    #[serde(default)]
    note: String,
}

fn check_note(note: &str) -> Result<(), ApiError> {
    if note.chars().count() > MAX_NOTE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the note is longer than {MAX_NOTE} characters"),
        ));
    }
    Ok(())
}

async fn publish(
    State(state): State<Arc<AppState>>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    require_flow(&state, store, &id).await?;
    // The body may be left out (no note).
    let note = if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else {
        serde_json::from_slice::<PublishBody>(&body)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the body must be {{\"note\": \"…\"}}: {e}"),
                )
            })?
            .note
    };
    check_note(&note)?;
    let (revision, flow) = draft_of(&state, store, &id).await?;
    let response = publish_flow(&state, store, flow, &note, &caller, revision).await?;
    if response.status().is_success() {
        let record = crate::audit::AuditRecord::by(&caller, "publish", format!("flows::{id}"))
            .detail(json!({ "note": note }));
        state.audit.record(record).await;
    }
    Ok(response)
}

#[derive(Deserialize)]
struct RollbackBody {
    version: u32,
    #[serde(default)]
    note: Option<String>,
}

/// Publishes the content of an earlier version as a new version (and makes it the draft).
async fn rollback(
    State(state): State<Arc<AppState>>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    Json(body): Json<RollbackBody>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    require_flow(&state, store, &id).await?;
    let note = body
        .note
        .unwrap_or_else(|| format!("rollback to version {}", body.version));
    check_note(&note)?;
    let stored = store
        .flow_version(&id, body.version)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("flow `{id}` has no version {}", body.version),
            )
        })?;
    let flow = load_stored(&stored.json)?;
    let revision = store
        .draft(&id)
        .await
        .map_err(|e| internal(&e))?
        .map_or(0, |d| d.revision);
    let response = publish_flow(&state, store, flow, &note, &caller, revision).await?;
    if response.status().is_success() {
        let record = crate::audit::AuditRecord::by(&caller, "rollback", format!("flows::{id}"))
            .detail(json!({ "to_version": body.version, "note": note }));
        state.audit.record(record).await;
    }
    Ok(response)
}

/// Stores `flow` as the next version of its id, makes it the draft (if the draft is still at
/// `revision`) and the current version of this node and of the others.
async fn publish_flow(
    state: &AppState,
    store: &Store,
    mut flow: Flow,
    note: &str,
    caller: &Caller,
    revision: i64,
) -> Result<Response, ApiError> {
    let id = flow.id.clone();
    let diagnostics = diagnostics(state, &flow);
    let count = errors(&diagnostics);
    if count > 0 {
        return Ok(answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({
                "error": format!(
                    "flow `{id}` has {count} error{}; fix {} before publishing",
                    if count == 1 { "" } else { "s" },
                    if count == 1 { "it" } else { "them" },
                ),
                "diagnostics": diagnostics,
            }),
        ));
    }
    let stored = match store.latest_flow(&id).await.map_err(|e| internal(&e))? {
        Some(stored) => Some(load_stored(&stored.json)?),
        None => None,
    };
    let held = state.library().get(&id).cloned();
    // The newest of what is stored and what this node runs; `None` before a new flow's first
    // publish.
    let latest = match (stored, held) {
        (Some(stored), Some(held)) if held.version > stored.version => Some(held),
        (Some(stored), _) => Some(stored),
        (None, held) => held,
    };
    if let Some(latest) = &latest
        && same_document(&flow, latest)
    {
        return Ok(answer(
            StatusCode::CONFLICT,
            json!({
                "error": format!(
                    "nothing to publish: the draft is the same as version {}",
                    latest.version
                ),
            }),
        ));
    }
    flow.version = latest.map_or(0, |latest| latest.version) + 1;
    let mut library = Library::clone(&state.library());
    library.insert(flow.clone());
    let hash = library
        .flow_ref(&id)
        .map(|r| r.hash)
        .ok_or_else(ApiError::internal)?;
    let json = flows::to_json(&flow);
    let published = store
        .publish_version(
            &NewVersion {
                flow_id: &id,
                version: flow.version,
                hash: &hash,
                document: &json,
                note,
                published_by: &caller.user.login,
                published_at: now_ms(),
            },
            revision,
        )
        .await
        .map_err(|e| internal(&e))?;
    let draft_revision = match published {
        VersionPublished::Published { draft_revision } => draft_revision,
        VersionPublished::Conflict => {
            return Ok(answer(
                StatusCode::CONFLICT,
                json!({
                    "error": "not published: someone saved or published this flow at the same \
                              time. Reload it and publish again",
                }),
            ));
        }
    };
    let version = flow.version;
    state.engines.publish(flow);
    if let Some(chat) = &state.chat {
        chat.hub.announce_flow(&id, version);
    }
    tracing::info!(flow = %id, version, hash = %hash, by = %caller.user.login, "flow published");
    Ok(answer(
        StatusCode::CREATED,
        json!({ "version": version, "hash": hash, "revision": draft_revision }),
    ))
}

async fn versions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    let verdict = read_flow(&state, &caller, &id).await?;
    let history = store.version_history(&id).await.map_err(|e| internal(&e))?;
    verdict.audit(&state, Some(history.len() as u64)).await;
    if history.is_empty() {
        require_flow(&state, store, &id).await?;
    }
    Ok(answer(StatusCode::OK, json!(history)))
}

fn parse_version(text: &str) -> Result<u32, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("version `{text}` is not a number"),
        )
    })
}

/// A stored version of `id`, as a flow.
async fn stored_flow(store: &Store, id: &str, version: u32) -> Result<Flow, ApiError> {
    let stored = store
        .flow_version(id, version)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("flow `{id}` has no version {version}"),
            )
        })?;
    load_stored(&stored.json)
}

async fn version(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    let version = parse_version(&version)?;
    let verdict = read_flow(&state, &caller, &id).await?;
    let flow = stored_flow(store, &id, version).await?;
    verdict
        .with_detail(json!({ "version": version }))
        .audit(&state, Some(1))
        .await;
    Ok(answer(StatusCode::OK, document(&flow)))
}

#[derive(Deserialize)]
struct DiffQuery {
    from: String,
    to: String,
}

/// What changed in the logic from one version to another (`draft` names the draft).
async fn diff(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    read_flow(&state, &caller, &id)
        .await?
        .audit(&state, Some(2))
        .await;
    let side = |name: String| {
        let state = &state;
        let id = &id;
        async move {
            if name == "draft" {
                Ok(draft_of(state, store, id).await?.1)
            } else {
                stored_flow(store, id, parse_version(&name)?).await
            }
        }
    };
    let from = side(query.from).await?;
    let to = side(query.to).await?;
    let changes = flows::diff::diff(&from, &to);
    Ok(answer(
        StatusCode::OK,
        json!({
            "from": from.version,
            "to": to.version,
            "same": changes.is_empty(),
            "changes": changes,
        }),
    ))
}

/// Reads any flow document (migrating older schema versions) and answers with it in today's
/// schema and its diagnostics. Nothing is stored: the designer opens the result as a draft.
async fn import(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    body: String,
) -> Result<Response, ApiError> {
    let flow = load(&body)?;
    let record = crate::audit::AuditRecord::by(&admin, "import", format!("flows::{}", flow.id));
    state.audit.record(record).await;
    let found = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("schema_version").and_then(Value::as_u64));
    let diagnostics = diagnostics(&state, &flow);
    let exists = match &state.store {
        Some(store) => exists(&state, store, &flow.id).await?,
        None => state.library().get(&flow.id).is_some(),
    };
    Ok(answer(
        StatusCode::OK,
        json!({
            "document": document(&flow),
            "migrated_from": found.filter(|v| *v != u64::from(flows::model::SCHEMA_VERSION)),
            "exists": exists,
            "errors": errors(&diagnostics),
            "diagnostics": diagnostics,
        }),
    ))
}

/// `GET /api/designer/flows`: every flow, with its draft's name and size, sorted by id.
async fn designer_flows(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    use std::collections::BTreeMap;
    struct Entry {
        published: Option<u32>,
        revision: i64,
        /// The draft's document, else the current version's.
        flow: Option<Flow>,
    }
    let store = store_of(&state)?;
    let library = state.library();
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for flow in library.flows() {
        entries.insert(
            flow.id.clone(),
            Entry {
                published: Some(flow.version),
                revision: 0,
                flow: Some(flow.clone()),
            },
        );
    }
    // Flows published on another node that this one has not loaded yet.
    for (id, version) in store.latest_versions().await.map_err(|e| internal(&e))? {
        let entry = entries.entry(id).or_insert(Entry {
            published: None,
            revision: 0,
            flow: None,
        });
        entry.published = Some(entry.published.map_or(version, |v| v.max(version)));
    }
    for draft in store.drafts().await.map_err(|e| internal(&e))? {
        let flow = load_stored(&draft.document)?;
        let entry = entries.entry(draft.flow_id).or_insert(Entry {
            published: None,
            revision: 0,
            flow: None,
        });
        entry.revision = draft.revision;
        entry.flow = Some(flow);
    }
    let mut list = Vec::with_capacity(entries.len());
    for (id, entry) in entries {
        let flow = match entry.flow {
            Some(flow) => flow,
            // Published elsewhere, no draft, not in this node's library yet.
            None => match store.latest_flow(&id).await.map_err(|e| internal(&e))? {
                Some(stored) => load_stored(&stored.json)?,
                None => continue,
            },
        };
        list.push(json!({
            "id": id,
            "name": flow.name,
            "published_version": entry.published,
            "draft_revision": entry.revision,
            "nodes": flow.nodes.len(),
        }));
    }
    Ok(answer(StatusCode::OK, Value::Array(list)))
}

/// Why `id` may not name a new flow, if it may not.
fn check_new_id(id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    let first_ok = id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if id.is_empty() || id.len() > MAX_ID || !id.chars().all(allowed) || !first_ok {
        return Err(format!(
            "a flow id is 1 to {MAX_ID} characters: lowercase letters a–z, digits, `_` and `-`, \
             starting with a letter or a digit (like `spring-sale`)"
        ));
    }
    if RESERVED_IDS.contains(&id) {
        return Err(format!(
            "`{id}` is reserved (it names an API route); choose another flow id"
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct CreateBody {
    id: String,
    name: String,
}

/// `POST /api/flows`: a new flow, stored as its first draft (revision 1) with one start node;
/// it runs once it is published.
pub async fn create_flow(
    State(state): State<Arc<AppState>>,
    Admin(caller): Admin,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    let body: CreateBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body must be {{\"id\": \"…\", \"name\": \"…\"}}: {e}"),
        )
    })?;
    check_new_id(&body.id).map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, message))?;
    if body.name.trim().is_empty() || body.name.chars().count() > MAX_NAME {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("a flow name is 1 to {MAX_NAME} characters (not only spaces)"),
        ));
    }
    let taken = || {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("a flow with id `{}` exists already", body.id),
        )
    };
    if exists(&state, store, &body.id).await? {
        return Err(taken());
    }
    // Version 0: not published yet (publishing numbers it 1).
    let initial = json!({
        "schema_version": flows::model::SCHEMA_VERSION,
        "id": body.id,
        "version": 0,
        "name": body.name,
        "default_locale": "zh-CN",
        "variables": [],
        "nodes": [{"id": "start", "kind": "start"}],
        "edges": [],
        "layout": {"nodes": {"start": {"x": 80.0, "y": 80.0}}},
    });
    let flow: Flow = serde_json::from_value(initial)
        .map_err(|e| internal(&format!("the new flow document does not load: {e}")))?;
    let saved = store
        .save_draft(
            &body.id,
            0,
            &flows::to_json(&flow),
            &caller.user.login,
            now_ms(),
        )
        .await
        .map_err(|e| internal(&e))?;
    match saved {
        DraftSaved::Saved(revision) => {
            tracing::info!(flow = %body.id, by = %caller.user.login, "flow created");
            let record =
                crate::audit::AuditRecord::by(&caller, "create", format!("flows::{}", body.id));
            state.audit.record(record).await;
            Ok(answer(
                StatusCode::CREATED,
                json!({ "revision": revision, "document": document(&flow) }),
            ))
        }
        // Someone created it at the same moment.
        DraftSaved::Conflict { .. } => Err(taken()),
    }
}

/// `POST /api/flows/rust`: any flow document (migrated like an import) as the Rust module
/// `codegen::compile` generates, like `GET /api/flows/{id}/versions/{v}/rust`. Sub-flows are
/// the server's current ones.
async fn export_rust(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    body: String,
) -> Result<Response, ApiError> {
    let flow = load(&body)?;
    let id = flow.id.clone();
    let mut library = Library::clone(&state.library());
    library.insert(flow.clone());
    // Generating and formatting a module takes milliseconds of CPU: off the async workers.
    let compiled = tokio::task::spawn_blocking(move || {
        codegen::compile(&flow, &codegen::Options::with_library(library))
    })
    .await
    .map_err(|e| internal(&format!("code generation panicked: {e}")))?;
    match compiled {
        Ok(code) => Ok((
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".to_owned(),
                ),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", codegen::file_name(&id)),
                ),
            ],
            code,
        )
            .into_response()),
        Err(codegen::CodegenError::Invalid { flow, diagnostics }) => {
            let error = if flow == id {
                format!("flow `{id}` has errors; fix them before exporting it")
            } else {
                format!("flow `{id}` calls `{flow}`, which has errors; fix them before exporting")
            };
            Ok(answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({
                    "error": error,
                    "flow": flow,
                    "errors": errors(&diagnostics),
                    "diagnostics": diagnostics,
                }),
            ))
        }
        Err(error @ codegen::CodegenError::Syntax(_)) => Err(internal(&error)),
        Err(error) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            error.to_string(),
        )),
    }
}

#[derive(Deserialize)]
struct AnalyticsQuery {
    version: Option<String>,
}

/// `GET /api/flows/{id}/analytics?version=v`: visits and drop-off per node and visits per edge
/// of a published version (the latest by default), from `flow_stats`.
async fn analytics(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<AnalyticsQuery>,
) -> Result<Response, ApiError> {
    use std::collections::BTreeMap;
    let store = store_of(&state)?;
    read_flow(&state, &caller, &id)
        .await?
        .with_detail(json!({ "analytics": true }))
        .audit(&state, None)
        .await;
    let flow = match query.version.as_deref() {
        Some(text) => {
            let version = parse_version(text)?;
            match state.library().get(&id).filter(|f| f.version == version) {
                Some(flow) => flow.clone(),
                None => stored_flow(store, &id, version).await?,
            }
        }
        None => match published(&state, store, &id).await? {
            Some(flow) => {
                // This node may lag behind a publish on another node.
                match store.latest_flow(&id).await.map_err(|e| internal(&e))? {
                    Some(stored) if stored.version > flow.version => load_stored(&stored.json)?,
                    _ => flow,
                }
            }
            None if exists(&state, store, &id).await? => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("flow `{id}` has no published version yet"),
                ));
            }
            None => return Err(no_flow(&id)),
        },
    };
    // What this node counted and has not written yet (at most a second's worth).
    if let Err(error) = store.flush_flow_stats().await {
        tracing::warn!(%error, "flow statistics not written before reading them");
    }
    let stats = store
        .flow_stats(&id, flow.version)
        .await
        .map_err(|e| internal(&e))?;
    // Every node of the version, counted or not.
    let mut visits: BTreeMap<&str, u64> = flow.nodes.iter().map(|n| (n.id.as_str(), 0)).collect();
    let mut leaving: BTreeMap<&str, u64> = BTreeMap::new();
    let mut edges = Vec::new();
    for stat in &stats {
        if stat.port.is_empty() && stat.target.is_empty() {
            *visits.entry(stat.node.as_str()).or_insert(0) += stat.visits;
        } else {
            *leaving.entry(stat.node.as_str()).or_insert(0) += stat.visits;
            edges.push(json!({
                "from": stat.node, "port": stat.port, "to": stat.target, "visits": stat.visits,
            }));
        }
    }
    let start = flow
        .nodes
        .iter()
        .find(|n| matches!(n.kind, flows::model::NodeKind::Start(_)))
        .map_or(0, |n| visits.get(n.id.as_str()).copied().unwrap_or(0));
    let nodes: serde_json::Map<String, Value> = visits
        .iter()
        .map(|(&node, &count)| {
            let left = leaving.get(node).copied().unwrap_or(0);
            (
                node.to_owned(),
                json!({ "visits": count, "drop_off": count.saturating_sub(left) }),
            )
        })
        .collect();
    Ok(answer(
        StatusCode::OK,
        json!({
            "version": flow.version,
            "conversations": start,
            "nodes": nodes,
            "edges": edges,
        }),
    ))
}

/// Makes the latest stored version of each flow (the library's and those only in the
/// database) current in `engines` when it is newer than the one it holds (versions published
/// through this API before a restart, or by another node). Returns how many flows changed.
pub async fn load_published(store: &Store, engines: &Engines) -> crate::store::Result<usize> {
    // The library's flows and every flow published in the database (flows created through
    // this API are in the database only).
    let mut ids: std::collections::BTreeSet<String> =
        engines.library().flows().map(|f| f.id.clone()).collect();
    ids.extend(store.latest_versions().await?.into_iter().map(|(id, _)| id));
    let mut changed = 0;
    for id in ids {
        if load_latest(store, engines, &id).await? {
            changed += 1;
        }
    }
    Ok(changed)
}

/// Makes the latest stored version of `id` current in `engines` if it is newer than the one
/// it holds; whether it did.
pub async fn load_latest(store: &Store, engines: &Engines, id: &str) -> crate::store::Result<bool> {
    let Some(stored) = store.latest_flow(id).await? else {
        return Ok(false);
    };
    let held = engines.library().get(id).map_or(0, |f| f.version);
    if stored.version <= held {
        return Ok(false);
    }
    match flows::from_json(&stored.json) {
        Ok(flow) => {
            let flow_ref = engines.publish(flow);
            tracing::info!(flow = %id, version = flow_ref.version, "running the latest published version");
            Ok(true)
        }
        Err(error) => {
            tracing::error!(flow = %id, version = stored.version, %error, "a published version does not load; keeping the one in use");
            Ok(false)
        }
    }
}
