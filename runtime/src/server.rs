//! The HTTP server: a health page and the flow API. `app()` builds the router so tests can
//! call it without a socket.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flows::{Diagnostic, Library};
use serde::Serialize;
use serde_json::json;

/// Shared, read-only server state.
pub struct AppState {
    pub library: Library,
}

impl AppState {
    /// State with the bundled flows.
    pub fn bundled() -> Result<AppState, String> {
        let library =
            Library::bundled().map_err(|(file, e)| format!("bundled flow {file}: {e}"))?;
        Ok(AppState { library })
    }
}

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(health))
        .route("/api/flows", get(list_flows))
        .route("/api/flows/validate", post(validate_flow))
        .route("/api/flows/{id}", get(get_flow))
        .with_state(state)
}

/// Starts the server and blocks until Ctrl-C or SIGTERM.
pub fn serve_blocking(addr: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state = Arc::new(AppState::bundled().map_err(anyhow::Error::msg)?);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "kefu is listening");
        axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        tracing::info!("kefu stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// An API error: a status and a message for the client.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

#[derive(Serialize)]
struct FlowSummary {
    id: String,
    version: u32,
    hash: String,
    name: flows::model::Text,
    nodes: usize,
}

async fn list_flows(State(state): State<Arc<AppState>>) -> Json<Vec<FlowSummary>> {
    let flows = state
        .library
        .flows()
        .map(|f| FlowSummary {
            id: f.id.clone(),
            version: f.version,
            hash: flows::library::content_hash(f),
            name: f.name.clone(),
            nodes: f.nodes.len(),
        })
        .collect();
    Json(flows)
}

async fn get_flow(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<flows::Flow>, ApiError> {
    state
        .library
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("no flow `{id}`"),
        })
}

#[derive(Serialize)]
struct ValidateResponse {
    errors: usize,
    warnings: usize,
    diagnostics: Vec<Diagnostic>,
}

/// Validates a flow document sent as the body. Sub-flows are looked up among the bundled
/// flows. A document that is not a flow at all gets 422 with the located reason.
async fn validate_flow(
    State(state): State<Arc<AppState>>,
    body: String,
) -> Result<Json<ValidateResponse>, ApiError> {
    let flow = flows::from_json(&body).map_err(|e| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: e.to_string(),
    })?;
    let mut library = state.library.clone();
    library.insert(flow.clone());
    let diagnostics = flows::validate(&flow, &library);
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == flows::Severity::Error)
        .count();
    Ok(Json(ValidateResponse {
        errors,
        warnings: diagnostics.len() - errors,
        diagnostics,
    }))
}
