//! The hub: starts conversations, finds the running one for an id (loading it from the database
//! when its task is not running), and shuts them all down.
//!
//! Cancellation is a tree, like Go's `context`: the hub's token is the server's; each
//! conversation's token is a child of it, and each of its timers and lookups a child of that.
//! Cancelling the server's token stops every conversation after its current turn; ending a
//! conversation cancels exactly its timers and lookups; a visitor leaving cancels only their
//! connection (the gateway's token, also a child of the server's).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use flows::engine::{LoadFlowsError, StartInput};
use flows::{Engine, Interpreter, Library};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::actor::{Actor, Command};
use super::cluster::Cluster;
use super::{Lookups, State};
use crate::auth::sha256_hex;
use crate::engines::{Engines, SharedEngine};
use crate::store::{MessageWriter, Store, StoreError};

/// What conversations need from the server.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub writer: MessageWriter,
    pub engines: Arc<Engines>,
    pub lookups: Arc<dyn Lookups>,
    /// The other nodes sharing the database, when there are any.
    pub cluster: Option<Arc<Cluster>>,
}

/// How conversations behave; the defaults suit a server, tests shorten the times.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// A conversation nobody is connected to, with no timer or lookup pending (or ended), stops
    /// its task after this long; it is loaded again when needed.
    pub idle_timeout: Duration,
    /// Messages a slow connection may fall behind before it re-reads them from the database.
    pub event_capacity: usize,
    /// Commands that may queue for one conversation.
    pub command_capacity: usize,
    /// Give waiting conversations to online agents automatically (least busy first, within
    /// their capacity); otherwise agents claim them.
    pub auto_assign: bool,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            idle_timeout: Duration::from_secs(60),
            event_capacity: 32,
            command_capacity: 64,
            auto_assign: false,
        }
    }
}

/// What a new conversation starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct StartParams {
    pub flow: String,
    /// `None`: the flow's default language.
    pub locale: Option<String>,
    pub tz_offset_minutes: i32,
    pub channel: String,
    /// Who the visitor is, as the host page says (kept in the `started` event).
    pub visitor: std::collections::BTreeMap<String, String>,
}

/// A new conversation, and the secret that lets a visitor resume it.
pub struct Started {
    pub handle: ConversationHandle,
    pub token: String,
}

/// Why the hub could not give a conversation.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("there is no flow `{0}`")]
    UnknownFlow(String),
    #[error("there is no conversation `{0}`")]
    UnknownConversation(String),
    #[error("the token does not belong to conversation `{0}`")]
    BadToken(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The saved state cannot be read, or its flow version cannot be run any more.
    #[error("conversation `{id}` cannot be loaded: {reason}")]
    Unloadable { id: String, reason: String },
    /// Another node runs the conversation and did not answer.
    #[error("the node running conversation `{id}` does not answer: {reason}")]
    Unreachable { id: String, reason: String },
}

/// Why a visitor message was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum SendError {
    #[error("the conversation has ended")]
    Ended,
    /// Storing failed: the message was not acknowledged (a resend is safe).
    #[error("the message could not be stored")]
    Internal,
    /// The conversation's task stopped before answering (it went idle or failed); the hub
    /// loads it again.
    #[error("the conversation stopped")]
    Gone,
}

/// What a visitor sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VisitorInput {
    Text(String),
    /// An option id of the bot's last question.
    Choice(String),
}

/// What a conversation tells its connections.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A stored message: its `message` frame.
    Message {
        seq: i64,
        client_id: Option<Arc<str>>,
        frame: Arc<str>,
    },
    /// Any other frame (`state`, `typing` of the bot, `error`), ready to send.
    Frame(Arc<str>),
    /// A person is typing: shown to the other side only.
    Typing {
        sender: crate::store::Sender,
        on: bool,
    },
}

/// Waits `window` for a burst of queue changes to settle and drops the ones that arrived
/// meanwhile: the caller then handles the whole burst in one pass.
pub async fn settle(changes: &mut broadcast::Receiver<QueueChange>, window: Duration) {
    tokio::time::sleep(window).await;
    while !matches!(
        changes.try_recv(),
        Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
    ) {}
}

/// A conversation entered or left a queue, or changed hands: agents' lists need refreshing.
#[derive(Debug, Clone)]
pub struct QueueChange {
    pub conversation: Arc<str>,
    /// The event's name (`handed_off`, `assigned`, `transferred`, `requeued`, `handed_back`,
    /// `ended`).
    pub event: &'static str,
    /// Who has the conversation now.
    pub assignee: Option<String>,
}

/// A running conversation; cheap to clone.
#[derive(Clone)]
pub struct ConversationHandle {
    pub(super) id: Arc<str>,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) events: broadcast::Sender<Outbound>,
    /// SHA-256 of the visitor's token, hex.
    pub(super) token_sha256: Arc<str>,
    pub(super) flow: Arc<flows::FlowRef>,
    /// The node that runs the conversation, when this handle is a proxy to it.
    pub(super) remote: Option<Arc<str>>,
}

impl ConversationHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The flow version the conversation runs.
    pub fn flow(&self) -> &flows::FlowRef {
        &self.flow
    }

    /// Messages and other frames from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Outbound> {
        self.events.subscribe()
    }

    /// Whether `token` is the visitor's secret for this conversation.
    pub fn token_matches(&self, token: &str) -> bool {
        sha256_hex(token).as_bytes() == self.token_sha256.as_bytes()
    }

    /// Stores a visitor message (idempotent by `client_id`) and returns its sequence number
    /// once it is durable; the bot's answer follows on [`subscribe`](Self::subscribe).
    pub async fn send(&self, client_id: String, input: VisitorInput) -> Result<i64, SendError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Visitor {
                client_id,
                input,
                reply,
            })
            .await
            .map_err(|_| SendError::Gone)?;
        answer.await.map_err(|_| SendError::Gone)?
    }

    /// The conversation's owner, status and highest message sequence number now.
    pub async fn snapshot(&self) -> Result<(State, i64), SendError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Snapshot(reply))
            .await
            .map_err(|_| SendError::Gone)?;
        answer.await.map_err(|_| SendError::Gone)
    }

    /// The bot's path and variables, and the state and routing now.
    pub async fn context(&self) -> Result<super::actor::Context, SendError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Context(reply))
            .await
            .map_err(|_| SendError::Gone)?;
        answer.await.map_err(|_| SendError::Gone)
    }

    /// Tells everyone else in the conversation that `sender` is typing (or stopped); dropped
    /// when the conversation is busy.
    pub fn typing(&self, sender: crate::store::Sender, on: bool) {
        let _ = self.commands.try_send(Command::Typing { sender, on });
    }

    /// Carries out an agent's or admin's action on the conversation.
    pub async fn console(
        &self,
        action: super::actor::ConsoleAction,
    ) -> Result<super::actor::ConsoleOutcome, super::actor::ConsoleError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Console { action, reply })
            .await
            .map_err(|_| super::actor::ConsoleError::Gone)?;
        answer.await.map_err(|_| super::actor::ConsoleError::Gone)?
    }

    fn is_running(&self) -> bool {
        !self.commands.is_closed()
    }
}

/// The running conversations; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) services: Services,
    pub(super) config: HubConfig,
    running: Mutex<HashMap<Arc<str>, ConversationHandle>>,
    /// Loading is rare (after a restart or an idle stop) and must not happen twice at once for
    /// one id; one lock for all loads keeps that simple.
    loading: tokio::sync::Mutex<()>,
    /// Engines of flow versions that are no longer the library's current ones, by (id, hash).
    pinned: Mutex<HashMap<(String, String), SharedEngine>>,
    pub(super) shutdown: CancellationToken,
    pub(super) tracker: TaskTracker,
    /// Queue and assignment changes of every conversation, for agents' consoles.
    pub(super) queue_changes: broadcast::Sender<QueueChange>,
    pub(super) presence: Arc<super::assign::Presence>,
}

impl Hub {
    /// A hub whose conversations stop when `shutdown` is cancelled.
    /// Needs a tokio runtime when `config.auto_assign` is on (the assigner is a task).
    pub fn new(services: Services, config: HubConfig, shutdown: CancellationToken) -> Hub {
        let auto_assign = config.auto_assign;
        let hub = Hub {
            shared: Arc::new(Shared {
                services,
                config,
                running: Mutex::new(HashMap::new()),
                loading: tokio::sync::Mutex::new(()),
                pinned: Mutex::new(HashMap::new()),
                shutdown,
                tracker: TaskTracker::new(),
                // Generous: a console that lags behind misses `assigned` frames (it logs it).
                queue_changes: broadcast::channel(4096).0,
                presence: Arc::default(),
            }),
        };
        if auto_assign {
            hub.shared.tracker.spawn(hub.clone().run_assigner());
        }
        if let Some(cluster) = &hub.shared.services.cluster {
            hub.start_cluster(cluster);
        }
        hub
    }

    pub(super) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(super) fn shared_arc(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    pub fn store(&self) -> &Store {
        &self.shared.services.store
    }

    /// The token every connection and conversation descends from.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shared.shutdown
    }

    /// Queue and assignment changes from now on.
    pub fn queue_changes(&self) -> broadcast::Receiver<QueueChange> {
        self.shared.queue_changes.subscribe()
    }

    /// How many conversation tasks are running.
    pub fn running(&self) -> usize {
        self.lock_running().len()
    }

    /// Starts a conversation with `params.flow`; the bot's first messages follow at once.
    pub async fn start(&self, params: StartParams) -> Result<Started, HubError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(HubError::ShuttingDown);
        }
        let engines = &self.shared.services.engines;
        let engine = engines
            .engine_for(&params.flow)
            .map_err(|error| match error {
                LoadFlowsError::UnknownFlow(id) => HubError::UnknownFlow(id),
                other => HubError::Unloadable {
                    id: String::new(),
                    reason: other.to_string(),
                },
            })?;
        let id: Arc<str> = Arc::from(format!("c-{}", uuid::Uuid::new_v4().simple()));
        let token = uuid::Uuid::new_v4().simple().to_string();
        let locale = params.locale.unwrap_or_else(|| {
            engines
                .library()
                .get(&params.flow)
                .map(|f| f.default_locale.clone())
                .unwrap_or_default()
        });
        let start = StartInput {
            session_id: id.to_string(),
            locale,
            channel: params.channel,
            tz_offset_minutes: params.tz_offset_minutes,
            user: std::collections::BTreeMap::new(),
        };
        let actor = Actor::create(
            Arc::clone(&self.shared),
            Arc::clone(&id),
            engine,
            start,
            sha256_hex(&token),
            &params.visitor,
        )
        .await?;
        let handle = self.spawn(actor);
        Ok(Started { handle, token })
    }

    /// The running conversation `id` if the token is its visitor's, loading it if needed.
    pub async fn resume(&self, id: &str, token: &str) -> Result<ConversationHandle, HubError> {
        let handle = self.get(id).await?;
        if handle.token_matches(token) {
            Ok(handle)
        } else {
            Err(HubError::BadToken(id.to_owned()))
        }
    }

    /// The running conversation `id`, loaded from the database when its task is not running
    /// (in a cluster: a proxy when another node runs it).
    pub async fn get(&self, id: &str) -> Result<ConversationHandle, HubError> {
        if let Some(handle) = self.running_handle(id) {
            return Ok(handle);
        }
        if self.shared.shutdown.is_cancelled() {
            return Err(HubError::ShuttingDown);
        }
        match &self.shared.services.cluster {
            Some(cluster) => self.get_clustered(id, cluster).await,
            None => self.load_local(id).await,
        }
    }

    /// Conversation `id` run by a task on this node, loaded from the database unless it runs.
    pub(super) async fn load_local(&self, id: &str) -> Result<ConversationHandle, HubError> {
        let _loading = self.shared.loading.lock().await;
        if let Some(handle) = self.running_handle(id)
            && handle.remote.is_none()
        {
            return Ok(handle);
        }
        let events = self.reusable_events(id);
        let actor = Actor::load(Arc::clone(&self.shared), id, events).await?;
        Ok(self.spawn(actor))
    }

    /// Sends a visitor message to conversation `handle`, loading it again once if its task
    /// stopped in between (a resend with the same client id is stored once).
    pub async fn send(
        &self,
        handle: &mut ConversationHandle,
        client_id: String,
        input: VisitorInput,
    ) -> Result<i64, SendError> {
        match handle.send(client_id.clone(), input.clone()).await {
            Err(SendError::Gone) => {
                let reloaded = self.get(&handle.id).await.map_err(|error| {
                    tracing::warn!(conversation = %handle.id, %error, "cannot reload a conversation");
                    SendError::Internal
                })?;
                *handle = reloaded;
                handle.send(client_id, input).await
            }
            other => other,
        }
    }

    /// Conversation `id`'s owner, status and highest sequence number, asking a freshly found
    /// task once more if `handle`'s had stopped (`handle` then becomes the new one).
    pub async fn snapshot(
        &self,
        handle: &mut ConversationHandle,
    ) -> Result<(State, i64), SendError> {
        match handle.snapshot().await {
            Err(SendError::Gone) => {
                *handle = self.get(&handle.id).await.map_err(|error| {
                    tracing::warn!(conversation = %handle.id, %error, "cannot reload a conversation");
                    SendError::Internal
                })?;
                handle.snapshot().await
            }
            other => other,
        }
    }

    /// Carries out a console action on conversation `id`, once more with a freshly found task
    /// if the first had stopped (it went idle, failed, or its node died).
    pub async fn console(
        &self,
        id: &str,
        action: super::actor::ConsoleAction,
    ) -> Result<Result<super::actor::ConsoleOutcome, super::actor::ConsoleError>, HubError> {
        match self.get(id).await?.console(action.clone()).await {
            Err(super::actor::ConsoleError::Gone) => Ok(self.get(id).await?.console(action).await),
            other => Ok(other),
        }
    }

    /// The bot's path and variables in conversation `id` (see [`Hub::console`] for retrying).
    pub async fn context(
        &self,
        id: &str,
    ) -> Result<Result<super::actor::Context, SendError>, HubError> {
        match self.get(id).await?.context().await {
            Err(SendError::Gone) => Ok(self.get(id).await?.context().await),
            other => Ok(other),
        }
    }

    /// Brings back every conversation that has not ended (after a restart): each resumes its
    /// timers and lookups and answers the visitor messages stored after its last saved turn.
    /// Returns how many were loaded; one that cannot be loaded is logged and skipped.
    pub async fn recover(&self) -> Result<usize, HubError> {
        if let Some(cluster) = &self.shared.services.cluster {
            // Only the ones no live node runs.
            return self.sweep(cluster).await;
        }
        let ids = self.shared.services.store.open_conversations().await?;
        let mut loaded = 0;
        for id in ids {
            match self.get(&id).await {
                Ok(_) => loaded += 1,
                Err(error) => {
                    tracing::error!(conversation = %id, %error, "cannot resume a conversation");
                }
            }
        }
        Ok(loaded)
    }

    /// Stops every conversation after its current turn and waits for their tasks, then for the
    /// message writer to store everything queued.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
        self.lock_running().clear();
        self.shared.services.writer.close().await;
        if let Some(cluster) = &self.shared.services.cluster
            && let Err(error) = self.store().deregister_node(cluster.node()).await
        {
            tracing::error!(%error, "cannot let this node's conversations go");
        }
    }

    fn spawn(&self, mut actor: Actor) -> ConversationHandle {
        let (commands, receiver) = mpsc::channel(self.shared.config.command_capacity.max(1));
        let handle = actor.handle(commands);
        self.insert_running(&handle);
        let shared = Arc::clone(&self.shared);
        let id = Arc::clone(&handle.id);
        self.shared.tracker.spawn(async move {
            actor.run(receiver).await;
            // Normally the actor has removed itself already; after a failure it has not.
            shared.forget_if_stopped(&id);
        });
        handle
    }

    pub(super) fn running_handle(&self, id: &str) -> Option<ConversationHandle> {
        self.lock_running()
            .get(id)
            .filter(|handle| handle.is_running())
            .cloned()
    }

    pub(super) fn insert_running(&self, handle: &ConversationHandle) {
        self.lock_running()
            .insert(Arc::clone(&handle.id), handle.clone());
    }

    /// The event channel of a stopped task for `id` that connections still listen to: the next
    /// task (or proxy) for `id` sends on it, so they follow without noticing.
    pub(super) fn reusable_events(&self, id: &str) -> Option<broadcast::Sender<Outbound>> {
        self.lock_running()
            .get(id)
            .filter(|handle| handle.events.receiver_count() > 0)
            .map(|handle| handle.events.clone())
    }

    fn lock_running(&self) -> MutexGuard<'_, HashMap<Arc<str>, ConversationHandle>> {
        self.shared.lock_running()
    }
}

impl Shared {
    fn lock_running(&self) -> MutexGuard<'_, HashMap<Arc<str>, ConversationHandle>> {
        // The map is consistent after every operation on it.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This node's id in a cluster.
    pub(super) fn node(&self) -> Option<&str> {
        self.services.cluster.as_deref().map(Cluster::node)
    }

    /// Tells consoles and assigners (of every node) that a conversation's queue or assignee
    /// changed.
    pub(super) fn queue_changed(
        &self,
        conversation: &Arc<str>,
        transition: super::Transition,
        assignee: Option<String>,
    ) {
        if let Some(cluster) = &self.services.cluster {
            cluster.publish_queue_change(conversation, transition, assignee.as_deref());
        }
        // No console listening is fine.
        let _ = self.queue_changes.send(QueueChange {
            conversation: Arc::clone(conversation),
            event: transition.event(),
            assignee,
        });
    }

    /// Removes the idle task for `id` whose commands go to `mine`, unless someone has just
    /// started using it: no connection subscribed and no command queued. Returns whether the
    /// task may end (it was removed, or a newer task has replaced it).
    pub(super) fn evict(
        &self,
        id: &str,
        mine: &mpsc::Sender<Command>,
        receiver: &mpsc::Receiver<Command>,
    ) -> bool {
        let mut running = self.lock_running();
        let Some(handle) = running.get(id) else {
            return true;
        };
        if !handle.commands.same_channel(mine) {
            return true;
        }
        if handle.events.receiver_count() > 0 || !receiver.is_empty() {
            return false;
        }
        running.remove(id);
        true
    }

    /// Forgets a stopped task for `id`, unless connections still listen on its events (the
    /// next task for `id` takes them over).
    pub(super) fn forget_if_stopped(&self, id: &str) {
        let mut running = self.lock_running();
        if running
            .get(id)
            .is_some_and(|h| !h.is_running() && h.events.receiver_count() == 0)
        {
            running.remove(id);
        }
    }

    /// The engine for a conversation pinned to `flow_ref`: the library's when it is that
    /// version, else an interpreter of the stored version (with the library's sub-flows, which
    /// must give the same hash).
    pub(super) async fn engine_for(
        &self,
        id: &str,
        flow_ref: &flows::FlowRef,
    ) -> Result<SharedEngine, HubError> {
        let unloadable = |reason: String| HubError::Unloadable {
            id: id.to_owned(),
            reason,
        };
        let engines = &self.services.engines;
        if let Ok(engine) = engines.engine_for(&flow_ref.id)
            && engine.flow().hash == flow_ref.hash
        {
            return Ok(engine);
        }
        let key = (flow_ref.id.clone(), flow_ref.hash.clone());
        if let Some(engine) = self.lock_pinned().get(&key) {
            return Ok(Arc::clone(engine));
        }
        let stored = self
            .services
            .store
            .flow_version(&flow_ref.id, flow_ref.version)
            .await?
            .ok_or_else(|| {
                unloadable(format!(
                    "flow `{}` version {} is not stored",
                    flow_ref.id, flow_ref.version
                ))
            })?;
        let flow = flows::from_json(&stored.json).map_err(|e| unloadable(e.to_string()))?;
        let mut library = Library::clone(&engines.library());
        library.insert(flow);
        let interpreter =
            Interpreter::new(&library, &flow_ref.id).map_err(|e| unloadable(e.to_string()))?;
        if interpreter.flow().hash != flow_ref.hash {
            return Err(unloadable(format!(
                "flow `{}` version {} (hash {}) can no longer be rebuilt: it calls sub-flows that \
                 have changed since (hash now {})",
                flow_ref.id,
                flow_ref.version,
                flow_ref.hash,
                interpreter.flow().hash
            )));
        }
        let engine: SharedEngine = Arc::new(interpreter);
        self.lock_pinned().insert(key, Arc::clone(&engine));
        Ok(engine)
    }

    fn lock_pinned(&self) -> MutexGuard<'_, HashMap<(String, String), SharedEngine>> {
        self.pinned.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
