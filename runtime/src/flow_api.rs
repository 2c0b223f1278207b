//! The flow designer's API (`docs/flow-api.md`): drafts saved with optimistic concurrency,
//! publishing numbered versions with a note (refused while errors remain), the version
//! history, a diff of logic between versions, rollback, and import of flow files.
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

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
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

/// The current (published) flow `id` of the server's library.
fn current(state: &AppState, id: &str) -> Result<Flow, ApiError> {
    state.library().get(id).cloned().ok_or_else(|| no_flow(id))
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
fn load_stored(text: &str) -> Result<Flow, ApiError> {
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
        None => Ok((0, current(state, id)?)),
    }
}

async fn get_draft(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    let published = current(&state, &id)?;
    let (revision, flow) = draft_of(&state, store, &id).await?;
    let diagnostics = diagnostics(&state, &flow);
    Ok(answer(
        StatusCode::OK,
        json!({
            "revision": revision,
            "published_version": published.version,
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
    let published = current(&state, &id)?;
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
                None => (0, published, None),
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
    current(&state, &id)?;
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
    publish_flow(&state, store, flow, &note, &caller, revision).await
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
    current(&state, &id)?;
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
    publish_flow(&state, store, flow, &note, &caller, revision).await
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
    let latest = match store.latest_flow(&id).await.map_err(|e| internal(&e))? {
        Some(stored) => Some(load_stored(&stored.json)?),
        None => None,
    };
    let latest = latest.unwrap_or(current(state, &id)?);
    if same_document(&flow, &latest) {
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
    flow.version = latest.version.max(current(state, &id)?.version) + 1;
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
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    let history = store.version_history(&id).await.map_err(|e| internal(&e))?;
    if history.is_empty() && state.library().get(&id).is_none() {
        return Err(no_flow(&id));
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
    _caller: Caller,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    let version = parse_version(&version)?;
    let flow = stored_flow(store, &id, version).await?;
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
    _caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
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
    _admin: Admin,
    body: String,
) -> Result<Response, ApiError> {
    let flow = load(&body)?;
    let found = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("schema_version").and_then(Value::as_u64));
    let diagnostics = diagnostics(&state, &flow);
    Ok(answer(
        StatusCode::OK,
        json!({
            "document": document(&flow),
            "migrated_from": found.filter(|v| *v != u64::from(flows::model::SCHEMA_VERSION)),
            "exists": state.library().get(&flow.id).is_some(),
            "errors": errors(&diagnostics),
            "diagnostics": diagnostics,
        }),
    ))
}

/// Makes the latest stored version of each of the library's flows current in `engines` when
/// it is newer than the one it holds (versions published through this API before a restart,
/// or by another node). Returns how many flows changed.
pub async fn load_published(store: &Store, engines: &Engines) -> crate::store::Result<usize> {
    let ids: Vec<String> = engines.library().flows().map(|f| f.id.clone()).collect();
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
