//! The API of the audit trail: `GET /api/admin/audit` (search, newest first, paged) and
//! `GET /api/admin/audit/export` (every match as a JSON-lines download). Who may use them is
//! the policies' decision (`read` and `export` on `audit::trail`): admins by the bundled
//! policies, anyone else by a policy or a temporary grant — legal reading the trail
//! themselves, say, for a week.

use std::sync::Arc;

use axum::extract::{Query as QueryString, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::Query;
use crate::auth::Caller;
use crate::server::{ApiError, AppState};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/admin/audit", get(search))
        .route("/api/admin/audit/export", get(export))
}

fn failed(error: &super::AuditError) -> ApiError {
    tracing::error!(%error, "cannot read the audit trail");
    ApiError::internal()
}

/// `{"records": [{seq, prev, hash, record}…], "next"?}`: pass `next` as `before` for the
/// next (older) page. Reading the trail is itself audited.
async fn search(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryString(query): QueryString<Query>,
) -> Result<Response, ApiError> {
    let verdict = crate::access::require(&state, &caller, "read", &trail()).await?;
    let page = state.audit.search(query).await.map_err(|e| failed(&e))?;
    verdict.audit(&state, Some(page.records.len() as u64)).await;
    Ok(Json(page).into_response())
}

/// The resource the trail is, for policies.
fn trail() -> policy::Resource {
    policy::Resource::new("audit", "trail")
}

/// Every matching record, oldest first, one JSON line each, as a file to save.
async fn export(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    QueryString(query): QueryString<Query>,
) -> Result<Response, ApiError> {
    let verdict = crate::access::require(&state, &caller, "export", &trail()).await?;
    let Some(dir) = state.audit.dir().map(std::path::Path::to_path_buf) else {
        return Ok(attachment(String::new()));
    };
    let found = tokio::task::spawn_blocking(move || super::search_all(&dir, &query))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "audit export stopped");
            ApiError::internal()
        })?
        .map_err(|e| failed(&e))?;
    let mut body = String::new();
    for stored in &found {
        if let Ok(line) = serde_json::to_string(stored) {
            body.push_str(&line);
            body.push('\n');
        }
    }
    verdict.audit(&state, Some(found.len() as u64)).await;
    Ok(attachment(body))
}

fn attachment(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"kefu-audit.jsonl\"",
            ),
        ],
        body,
    )
        .into_response()
}
