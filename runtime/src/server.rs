//! The HTTP server: a health page and the flow API (list, fetch, validate, export as Rust).
//! `app()` builds the router so tests can call it without a socket.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use flows::{Diagnostic, Library};
use serde::Serialize;
use serde_json::json;

use crate::conversation::{Cluster, ClusterConfig, Hub, HubConfig, Lookups, Services};
use crate::demo::catalogue::Catalogue;
use crate::engines::Engines;
use crate::gateway::{Chat, GatewayLimits};
use crate::store::{MessageWriter, Store, StoreError, WriterConfig};
use tokio_util::sync::CancellationToken;

/// Shared server state.
pub struct AppState {
    /// The flows served and run, and the engine that runs each (compiled or interpreted).
    pub engines: Arc<Engines>,
    /// The database, when the server runs with one (`serve_blocking` always opens one).
    pub store: Option<Store>,
    /// Conversations and the chat gateway, when the server runs with a database.
    pub chat: Option<Chat>,
    /// The demo shop's catalogue (`/demo`), when the server has one.
    pub demo: Option<Catalogue>,
    /// Failed logins, for the login rate limit.
    pub login_limiter: crate::auth::LoginLimiter,
    /// The connectors in force (`connectors.yaml`), when the server has them.
    pub connectors: Option<crate::connect::Live>,
    /// The access policies and department sandboxes in force (`access`; bundled by default).
    pub access: Arc<crate::access::Access>,
    /// The audit trail (`audit`): `serve_blocking` keeps it in the data folder; a state built
    /// with [`AppState::new`] keeps none until one is set.
    pub audit: crate::audit::Audit,
}

impl AppState {
    /// State over `engines`: its library, and the compiled flows the embedding program
    /// registered.
    pub fn new(engines: Engines) -> AppState {
        AppState {
            engines: Arc::new(engines),
            store: None,
            chat: None,
            demo: None,
            login_limiter: crate::auth::LoginLimiter::default(),
            connectors: None,
            access: Arc::new(crate::access::Access::bundled()),
            audit: crate::audit::Audit::disabled(),
        }
    }

    /// State with the bundled flows, run as the modules compiled into `kefu`.
    pub fn bundled() -> Result<AppState, String> {
        let library =
            Library::bundled().map_err(|(file, e)| format!("bundled flow {file}: {e}"))?;
        let mut engines = Engines::new(library);
        for engine in crate::compiled::bundled() {
            engines.register(engine);
        }
        Ok(AppState::new(engines))
    }

    /// Adds conversations and the chat gateway, storing into `store` and answering lookups with
    /// `lookups`; everything stops when `shutdown` is cancelled. Needs a tokio runtime (it
    /// starts the message writer).
    pub fn with_chat(
        self,
        store: Store,
        lookups: Arc<dyn Lookups>,
        config: HubConfig,
        limits: GatewayLimits,
        shutdown: CancellationToken,
    ) -> AppState {
        self.with_chat_in(store, lookups, config, limits, shutdown, None)
    }

    /// [`with_chat`](Self::with_chat) as one node of `cluster` (other `kefu` processes sharing
    /// the database), when given.
    pub fn with_chat_in(
        mut self,
        store: Store,
        lookups: Arc<dyn Lookups>,
        config: HubConfig,
        limits: GatewayLimits,
        shutdown: CancellationToken,
        cluster: Option<Arc<Cluster>>,
    ) -> AppState {
        let writer = MessageWriter::spawn(store.clone(), WriterConfig::default());
        let services = Services {
            store: store.clone(),
            writer,
            engines: Arc::clone(&self.engines),
            lookups,
            cluster,
        };
        let hub = Hub::new(services, config, shutdown);
        let queue = crate::gateway::agent::queue_feed(&hub, store.clone());
        self.chat = Some(Chat {
            hub,
            limits,
            queue,
            identity_secret: None,
        });
        self.store = Some(store);
        self
    }

    /// The flows the server holds (the current version of each), as of now.
    pub fn library(&self) -> Arc<Library> {
        self.engines.library()
    }
}

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(health))
        .route("/ws/visitor", get(crate::gateway::visitor))
        .route("/ws/agent", get(crate::gateway::agent::agent))
        .route("/widget.js", get(widget))
        .route("/favicon.ico", get(favicon))
        .merge(crate::demo::web::routes())
        .merge(crate::auth::routes())
        .merge(crate::console::routes())
        .merge(crate::flow_api::routes())
        .merge(crate::connect::routes())
        .merge(crate::audit::api::routes())
        .merge(crate::access::routes())
        .merge(crate::web_app::routes())
        .route(
            "/api/flows",
            get(list_flows).post(crate::flow_api::create_flow),
        )
        .route("/api/flows/validate", post(validate_flow))
        .route("/api/flows/{id}", get(get_flow))
        .route("/api/flows/{id}/versions/{version}/rust", get(flow_as_rust))
        .with_state(state)
}

/// Starts the server with the bundled flows and blocks until Ctrl-C or SIGTERM; with
/// `cluster`, as one node of several sharing the database.
pub fn serve_blocking(
    addr: SocketAddr,
    database: &Database,
    hub: HubConfig,
    cluster: Option<ClusterConfig>,
    connectors: Option<PathBuf>,
    policies: Option<PathBuf>,
    otlp_endpoint: Option<String>,
) -> anyhow::Result<()> {
    if cluster.is_some() && database.url.is_none() {
        anyhow::bail!(
            "several nodes need a database they share: give `--database-url` (postgres://… or \
             mysql://…) with `--nats`"
        );
    }
    // Before anything starts: a policy file with problems stops the server with every one.
    let access = Arc::new(crate::access::Access::load(policies)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state = AppState::bundled().map_err(anyhow::Error::msg)?;
        let store = database.open(&state.library()).await?;
        let catalogue = database.catalogue().await?;
        // The demo catalogue answers what the connectors do not declare (its `create`s).
        let source = crate::connect::Source {
            file: connectors,
            data_dir: database.data_dir.clone(),
        };
        let live = crate::connect::Live::start(source, Some(catalogue.clone())).await?;
        let cluster = match cluster {
            Some(config) => Some(Cluster::join(&store, config).await?),
            None => None,
        };
        let mut state = state.with_chat_in(
            store,
            Arc::new(live.clone()),
            hub,
            GatewayLimits::default(),
            CancellationToken::new(),
            cluster,
        );
        state.demo = Some(catalogue);
        state.connectors = Some(live.clone());
        state.access = Arc::clone(&access);
        // Visitor identities must be signed by the site when a secret is set (`identity`).
        if let Some(chat) = &mut state.chat {
            chat.identity_secret = std::env::var("KEFU_IDENTITY_SECRET")
                .ok()
                .filter(|secret| !secret.is_empty())
                .map(|secret| Arc::from(secret.into_bytes()));
        }
        // The audit trail is written to the data folder first; the OTLP export reads it there.
        state.audit = crate::audit::Audit::open(&database.data_dir)?;
        if let Some(endpoint) = otlp_endpoint.filter(|e| !e.is_empty()) {
            crate::audit::export::spawn(
                &state.audit,
                &database.data_dir,
                &endpoint,
                CancellationToken::new(),
            )?;
        }
        tokio::spawn(reload_on_hangup(live));
        // Policies saved in the admin page (on this node or another) take over from the file.
        if let Some(store) = &state.store {
            access.adopt_stored(store).await?;
            tokio::spawn(crate::access::follow_stored(
                Arc::clone(&access),
                store.clone(),
            ));
        }
        tokio::spawn(crate::access::reload_on_hangup(access));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        // On a worker thread like every other task (`block_on` runs its future on this thread,
        // apart from the runtime's workers).
        tokio::spawn(serve(listener, Arc::new(state))).await?
    })
}

/// Reloads the connectors on SIGHUP (a file that fails keeps the old ones).
async fn reload_on_hangup(live: crate::connect::Live) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload connectors through the admin API");
            return;
        };
        while hangups.recv().await.is_some() {
            if let Err(error) = live.reload().await {
                tracing::error!(%error, "connectors not reloaded; the old ones stay in force");
            }
        }
    }
    #[cfg(not(unix))]
    drop(live);
}

/// Where the server keeps its data: the embedded SQLite database in `data_dir`, unless `url`
/// names another database.
#[derive(Debug, Clone)]
pub struct Database {
    pub data_dir: PathBuf,
    pub url: Option<String>,
}

impl Database {
    /// The URL to connect to.
    pub fn url(&self) -> String {
        self.url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("kefu.db").display()
            )
        })
    }

    /// Connects, brings the schema up to date and publishes the flows of `library` (a version
    /// already published with other content is kept, with a warning).
    pub async fn open(&self, library: &Library) -> anyhow::Result<Store> {
        if self.url.is_none() {
            std::fs::create_dir_all(&self.data_dir).map_err(|error| {
                anyhow::anyhow!("cannot create {}: {error}", self.data_dir.display())
            })?;
        }
        let store = Store::connect(&self.url()).await?;
        store.migrate().await?;
        for flow in library.flows() {
            let Some(flow_ref) = library.flow_ref(&flow.id) else {
                continue;
            };
            match store
                .publish_flow(
                    &flow.id,
                    flow.version,
                    &flow_ref.hash,
                    &flows::to_json(flow),
                )
                .await
            {
                Ok(_) => {}
                Err(error @ StoreError::FlowVersionConflict { .. }) => {
                    tracing::warn!(%error, "a bundled flow differs from its published version");
                }
                Err(error) => return Err(error.into()),
            }
        }
        crate::auth::bootstrap(&store).await?;
        tracing::info!(database = %store.backend(), "storage ready");
        Ok(store)
    }

    /// The demo shop's catalogue, which answers the bundled flows' lookups: always a SQLite
    /// file in the data folder (it stands in for another company system, whatever database
    /// kefu itself uses), seeded at first start.
    pub async fn catalogue(&self) -> anyhow::Result<Catalogue> {
        let catalogue = Catalogue::open(&self.data_dir, crate::conversation::now_ms()).await?;
        Ok(catalogue)
    }
}

/// Serves `state` on `listener` until Ctrl-C or SIGTERM: for programs that build their own
/// state (their flows, their compiled modules registered in `state.engines`).
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> anyhow::Result<()> {
    let stop = state
        .chat
        .as_ref()
        .map_or_else(CancellationToken::new, |chat| {
            chat.hub.shutdown_token().clone()
        });
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        on_signal.cancel();
    });
    serve_until(listener, state, stop).await
}

/// Serves `state` on `listener` until `stop` is cancelled (the chat's shutdown token, when the
/// state has chat: cancelling either stops everything), then shuts down gracefully: open
/// conversations stop after their current turn, every queued message is stored, the database
/// is closed. Conversations that were open when the server last stopped are resumed first.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    if let Some(store) = &state.store {
        // Versions published through the flow API before this start are the current ones.
        let newer = crate::flow_api::load_published(store, &state.engines).await?;
        if newer > 0 {
            tracing::info!(flows = newer, "published versions loaded from the database");
        }
    }
    if let Some(chat) = &state.chat {
        let resumed = chat.hub.recover().await?;
        if resumed > 0 {
            tracing::info!(conversations = resumed, "open conversations resumed");
        }
    }
    tracing::info!(addr = %listener.local_addr()?, "kefu is listening");
    let chat_stop = state
        .chat
        .as_ref()
        .map(|chat| chat.hub.shutdown_token().clone());
    let graceful = stop.clone();
    // Chat frames are small and answered at once: Nagle's algorithm would hold a bot's message
    // back until the client's delayed ACK of the previous frame (about 40 ms on Linux).
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app(Arc::clone(&state)).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        graceful.cancelled().await;
        // Closes every visitor connection (their tokens descend from the chat's).
        if let Some(chat_stop) = chat_stop {
            chat_stop.cancel();
        }
    })
    .await?;
    if let Some(chat) = &state.chat {
        chat.hub.shutdown().await;
    }
    if let Some(store) = &state.store {
        store.close().await;
    }
    tracing::info!("kefu stopped");
    Ok(())
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

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

/// The site's icon (browsers ask for it on every page without one of their own).
async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#2563eb"/><text x="16" y="23" font-family="system-ui, sans-serif" font-size="19" font-weight="700" fill="#fff" text-anchor="middle">K</text></svg>"##,
    )
        .into_response()
}

/// The visitor widget: one script tag on any site.
async fn widget() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../assets/widget.js"),
    )
        .into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let database = state.store.as_ref().map(|s| s.backend().to_string());
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "database": database,
    }))
}

#[derive(Serialize)]
struct FlowSummary {
    id: String,
    version: u32,
    /// The hash conversations and compiled modules are pinned to (`FlowRef::hash`: the flow
    /// and every sub-flow it calls).
    hash: String,
    name: flows::model::Text,
    nodes: usize,
}

async fn list_flows(State(state): State<Arc<AppState>>) -> Json<Vec<FlowSummary>> {
    let library = state.library();
    let flows = library
        .flows()
        .map(|f| FlowSummary {
            id: f.id.clone(),
            version: f.version,
            hash: library
                .flow_ref(&f.id)
                .map_or_else(|| flows::library::content_hash(f), |r| r.hash),
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
        .library()
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| no_flow(&id))
}

fn no_flow(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no flow `{id}`"))
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
    let flow = flows::from_json(&body)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let mut library = Library::clone(&state.library());
    library.insert(flow.clone());
    Ok(Json(ValidateResponse::new(flows::validate(
        &flow, &library,
    ))))
}

impl ValidateResponse {
    fn new(diagnostics: Vec<Diagnostic>) -> ValidateResponse {
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == flows::Severity::Error)
            .count();
        ValidateResponse {
            errors,
            warnings: diagnostics.len() - errors,
            diagnostics,
        }
    }
}

/// Why codegen refused a flow: the validate endpoint's body, with the flow that has the
/// errors (the requested one or a sub-flow it calls) and a message like every other error.
#[derive(Serialize)]
struct RefusedResponse {
    error: String,
    flow: String,
    #[serde(flatten)]
    report: ValidateResponse,
}

/// The flow `id` compiled to a Rust module (what `kefu export` writes), as a download. The
/// server keeps only the current version of each flow, so any other version is not found.
async fn flow_as_rust(
    State(state): State<Arc<AppState>>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, Response> {
    let version: u32 = version.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("version `{version}` is not a number"),
        )
        .into_response()
    })?;
    let library = state.library();
    let flow = library
        .get(&id)
        .ok_or_else(|| no_flow(&id).into_response())?;
    if flow.version != version {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "flow `{id}` has no version {version}; the server holds version {} only",
                flow.version
            ),
        )
        .into_response());
    }
    let flow = flow.clone();
    // Generating and formatting a module takes milliseconds of CPU: off the async workers.
    let compiled = tokio::task::spawn_blocking({
        let library = Library::clone(&library);
        move || codegen::compile(&flow, &codegen::Options::with_library(library))
    })
    .await;
    match compiled {
        Ok(Ok(code)) => Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", codegen::file_name(&id)),
                ),
            ],
            code,
        )
            .into_response()),
        Ok(Err(codegen::CodegenError::Invalid { flow, diagnostics })) => {
            let error = if flow == id {
                format!("flow `{id}` has errors; fix them before exporting it")
            } else {
                format!("flow `{id}` calls `{flow}`, which has errors; fix them before exporting")
            };
            Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(RefusedResponse {
                    error,
                    flow,
                    report: ValidateResponse::new(diagnostics),
                }),
            )
                .into_response())
        }
        Ok(Err(error @ codegen::CodegenError::Syntax(_))) => {
            tracing::error!(flow = %id, %error, "code generation failed");
            Err(internal_error())
        }
        Ok(Err(error)) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string()).into_response())
        }
        Err(error) => {
            tracing::error!(flow = %id, %error, "code generation panicked");
            Err(internal_error())
        }
    }
}

fn internal_error() -> Response {
    ApiError::internal().into_response()
}

impl ApiError {
    /// A failure of the server; the details are in its log, not in the answer.
    pub fn internal() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}
