//! Several `kefu` processes (nodes) sharing one database and one NATS server behave as one.
//!
//! # How
//!
//! - **One task per conversation, cluster-wide.** The database records which node runs each
//!   conversation (`conversations.node`, migration `0003`). The node that starts a conversation
//!   runs it. Any other node that needs it (a visitor resuming there, an agent opening it)
//!   runs a *proxy* instead: a task with the same [`ConversationHandle`] whose commands travel
//!   to the owner as NATS requests (`kefu.node.NODE`) and whose events (messages, frames,
//!   typing) arrive on the conversation's subject (`kefu.conversation.ID`). Connections cannot
//!   tell a proxy from the real task.
//! - **Queue changes** (handoffs, assignments) are published on `kefu.queue`; every node passes
//!   other nodes' changes to its agents' consoles and its assigner.
//! - **Published flow versions** are announced on `kefu.flows` (flow id and version); every
//!   other node then loads the latest stored version of that flow into its `Engines`, so its
//!   new conversations and its flow API use it too.
//! - **A node's death.** Every node writes a heartbeat (`nodes.heartbeat_at`). A conversation
//!   whose node is not registered, has a stale heartbeat, or does not answer (NATS's "no
//!   responders", which the server reports as soon as the dead node's connection is gone) is
//!   taken over with a compare-and-set on `conversations.node`: only one node can win. The new
//!   owner loads it from the database exactly as after a restart — the saved session, then
//!   the visitor messages stored after it — so no acknowledged message is lost (a visitor
//!   message is acknowledged only once committed). Each node also sweeps for such orphans on
//!   every heartbeat, so timers and lookups of a dead node's conversations resume within
//!   `stale_after`. A node that stops gracefully lets its conversations go at once.
//! - **If two nodes ever ran one conversation** (a node paused longer than `stale_after` and
//!   woke up), the database refuses the second writer's messages (sequence numbers are a
//!   primary key); its task stops and the conversation is found at its new owner.
//!
//! NATS delivers at most once; a message event lost on the way shows up as a gap in sequence
//! numbers, which connections fill from the database (as they do after a lag).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, RequestErrorKind, Subscriber};
use bytes::Bytes;
use flows::FlowRef;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};

use super::actor::{Command, ConsoleAction, ConsoleError, ConsoleOutcome, Context};
use super::hub::{ConversationHandle, Hub, HubError, Outbound, SendError, Shared, VisitorInput};
use super::{QueueChange, State, Transition, now_ms};
use crate::store::{NodeOwner, Sender, Store};

/// How a node joins the others.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `nats://host:port`.
    pub nats_url: String,
    /// How often a node renews its heartbeat and looks for orphaned conversations.
    pub heartbeat: Duration,
    /// A node whose heartbeat is older than this is taken for dead.
    pub stale_after: Duration,
    /// How long a command to another node may take.
    pub request_timeout: Duration,
}

impl ClusterConfig {
    pub fn new(nats_url: impl Into<String>) -> ClusterConfig {
        ClusterConfig {
            nats_url: nats_url.into(),
            heartbeat: Duration::from_secs(2),
            stale_after: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// This node's membership: its id, its NATS connection and its ordered outbox.
pub struct Cluster {
    node: Arc<str>,
    client: Client,
    config: ClusterConfig,
    /// Everything this node publishes goes out in the order it was produced.
    outbox: mpsc::UnboundedSender<(String, Bytes)>,
    /// Subscribed before the node was registered (nothing addressed to it is missed); taken by
    /// the hub's tasks.
    pending: Mutex<Option<(Subscriber, Subscriber, Subscriber)>>,
}

/// Why another node did not answer.
#[derive(Debug)]
enum Unreachable {
    /// Nobody listens on its subject: its connection to NATS is gone.
    Dead,
    /// It no longer runs the conversation.
    NotOwner,
    Other(String),
}

impl Cluster {
    /// Connects to NATS and registers a new node in `store`.
    pub async fn join(store: &Store, config: ClusterConfig) -> anyhow::Result<Arc<Cluster>> {
        let uuid = uuid::Uuid::new_v4().simple().to_string();
        let node: Arc<str> = Arc::from(format!("n-{}", &uuid[..12]));
        let client = ConnectOptions::new()
            .name(format!("kefu {node}"))
            .request_timeout(Some(config.request_timeout))
            .connection_timeout(Duration::from_secs(5))
            .connect(config.nats_url.as_str())
            .await
            .map_err(|error| anyhow::anyhow!("cannot connect to {}: {error}", config.nats_url))?;
        let requests = client.subscribe(node_subject(&node)).await?;
        let queue = client.subscribe(QUEUE_SUBJECT).await?;
        let flows = client.subscribe(FLOWS_SUBJECT).await?;
        client.flush().await?;
        store.register_node(&node, now_ms()).await?;
        let (outbox, mut outgoing) = mpsc::unbounded_channel::<(String, Bytes)>();
        let publisher = client.clone();
        tokio::spawn(async move {
            while let Some((subject, payload)) = outgoing.recv().await {
                if let Err(error) = publisher.publish(subject, payload).await {
                    tracing::warn!(%error, "cannot publish to the other nodes");
                }
            }
        });
        tracing::info!(node = %node, nats = %config.nats_url, "joined the cluster");
        Ok(Arc::new(Cluster {
            node,
            client,
            config,
            outbox,
            pending: Mutex::new(Some((requests, queue, flows))),
        }))
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    fn publish(&self, subject: String, payload: Vec<u8>) {
        // The publisher ends only with the cluster.
        let _ = self.outbox.send((subject, Bytes::from(payload)));
    }

    /// Tells the other nodes' connections to conversation `id` about `event`.
    pub(super) fn publish_event(&self, id: &str, event: &Outbound) {
        let wire = match event {
            Outbound::Message {
                seq,
                client_id,
                frame,
            } => WireEvent::Message {
                seq: *seq,
                client_id: client_id.as_deref().map(str::to_owned),
                frame: frame.to_string(),
            },
            Outbound::Frame(frame) => WireEvent::Frame {
                frame: frame.to_string(),
            },
            Outbound::Typing { sender, on } => WireEvent::Typing {
                sender: *sender,
                on: *on,
            },
        };
        if let Some(subject) = conversation_subject(id) {
            self.publish(subject, encode(&wire));
        }
    }

    /// Tells the other nodes' consoles and assigners about a queue change.
    pub(super) fn publish_queue_change(
        &self,
        conversation: &str,
        transition: Transition,
        assignee: Option<&str>,
    ) {
        let wire = WireQueueChange {
            origin: self.node.to_string(),
            conversation: conversation.to_owned(),
            event: transition,
            assignee: assignee.map(str::to_owned),
        };
        self.publish(QUEUE_SUBJECT.to_owned(), encode(&wire));
    }

    /// Tells the other nodes that version `version` of flow `id` was published.
    fn publish_flow_version(&self, id: &str, version: u32) {
        let wire = WireFlowPublished {
            origin: self.node.to_string(),
            flow: id.to_owned(),
            version,
        };
        self.publish(FLOWS_SUBJECT.to_owned(), encode(&wire));
    }

    async fn request(
        &self,
        owner: &str,
        conversation: &str,
        op: Op,
    ) -> Result<WireReply, Unreachable> {
        let request = WireRequest {
            conversation: conversation.to_owned(),
            op,
        };
        let answer = self
            .client
            .request(node_subject(owner), Bytes::from(encode(&request)))
            .await
            .map_err(|error| match error.kind() {
                RequestErrorKind::NoResponders => Unreachable::Dead,
                _ => Unreachable::Other(error.to_string()),
            })?;
        match serde_json::from_slice(&answer.payload) {
            Ok(WireReply::NotOwner) => Err(Unreachable::NotOwner),
            Ok(reply) => Ok(reply),
            Err(error) => Err(Unreachable::Other(format!("unreadable answer: {error}"))),
        }
    }

    /// A command that wants no answer.
    fn notify(&self, owner: &str, conversation: &str, op: Op) {
        let request = WireRequest {
            conversation: conversation.to_owned(),
            op,
        };
        self.publish(node_subject(owner), encode(&request));
    }
}

const QUEUE_SUBJECT: &str = "kefu.queue";
const FLOWS_SUBJECT: &str = "kefu.flows";

/// A flow version published on one node (the document itself is in the database).
#[derive(Serialize, Deserialize)]
struct WireFlowPublished {
    origin: String,
    flow: String,
    version: u32,
}

fn node_subject(node: &str) -> String {
    format!("kefu.node.{node}")
}

/// The subject of conversation `id`; `None` for an id no subject can carry (ids the server
/// gives are `c-` and hex digits).
fn conversation_subject(id: &str) -> Option<String> {
    let plain = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plain.then(|| format!("kefu.conversation.{id}"))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain data with string keys: serialising cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    Message {
        seq: i64,
        client_id: Option<String>,
        frame: String,
    },
    Frame {
        frame: String,
    },
    Typing {
        sender: Sender,
        on: bool,
    },
}

impl From<WireEvent> for Outbound {
    fn from(wire: WireEvent) -> Outbound {
        match wire {
            WireEvent::Message {
                seq,
                client_id,
                frame,
            } => Outbound::Message {
                seq,
                client_id: client_id.map(Arc::from),
                frame: Arc::from(frame),
            },
            WireEvent::Frame { frame } => Outbound::Frame(Arc::from(frame)),
            WireEvent::Typing { sender, on } => Outbound::Typing { sender, on },
        }
    }
}

#[derive(Serialize, Deserialize)]
struct WireQueueChange {
    origin: String,
    conversation: String,
    event: Transition,
    assignee: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct WireRequest {
    conversation: String,
    op: Op,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    /// What a proxy needs to stand in for the conversation; also checks that the node runs it.
    Describe,
    Visitor {
        client_id: String,
        input: VisitorInput,
    },
    Snapshot,
    Context,
    Console {
        action: ConsoleAction,
    },
    Typing {
        sender: Sender,
        on: bool,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireReply {
    Described {
        token_sha256: String,
        flow: FlowRef,
    },
    Sent(Result<i64, SendError>),
    Snapshot {
        state: State,
        last_seq: i64,
    },
    Context(Context),
    Console(Result<ConsoleOutcome, ConsoleError>),
    /// The node does not run the conversation (any more).
    NotOwner,
    Failed(String),
}

/// How long a proxy waits for the events of a message the owner has acknowledged, so that a
/// connection sees the message's predecessors before its acknowledgement.
const EVENT_WAIT: Duration = Duration::from_millis(500);

impl Hub {
    /// Starts this node's cluster tasks: answering other nodes, passing on their queue changes,
    /// the heartbeat and the sweep for orphaned conversations.
    pub(super) fn start_cluster(&self, cluster: &Arc<Cluster>) {
        let taken = cluster
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some((requests, queue, flows)) = taken else {
            return;
        };
        let tracker = &self.shared().tracker;
        tracker.spawn(self.clone().answer_requests(requests, Arc::clone(cluster)));
        tracker.spawn(self.clone().pass_queue_changes(queue, Arc::clone(cluster)));
        tracker.spawn(self.clone().follow_flows(flows, Arc::clone(cluster)));
        tracker.spawn(self.clone().keep_alive(Arc::clone(cluster)));
    }

    async fn answer_requests(self, mut requests: Subscriber, cluster: Arc<Cluster>) {
        let shutdown = self.shutdown_token().clone();
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => break,
                message = requests.next() => match message {
                    Some(message) => message,
                    None => break,
                },
            };
            let hub = self.clone();
            let cluster = Arc::clone(&cluster);
            self.shared().tracker.spawn(async move {
                let reply = match serde_json::from_slice::<WireRequest>(&message.payload) {
                    Ok(request) => hub.answer(request).await,
                    Err(error) => Some(WireReply::Failed(format!("unreadable request: {error}"))),
                };
                if let (Some(reply), Some(to)) = (reply, message.reply) {
                    cluster.publish(to.to_string(), encode(&reply));
                }
            });
        }
        // Dropping the subscription unsubscribes: from now on other nodes hear "no responders"
        // and take this node's conversations over.
    }

    /// Carries out another node's command on a conversation this node runs.
    async fn answer(&self, request: WireRequest) -> Option<WireReply> {
        let mut handle = match self.get_owned(&request.conversation).await {
            Ok(Some(handle)) => handle,
            Ok(None) => return Some(WireReply::NotOwner),
            Err(error) => return Some(WireReply::Failed(error.to_string())),
        };
        let failed = |error: &dyn std::fmt::Display| WireReply::Failed(error.to_string());
        Some(match request.op {
            Op::Describe => WireReply::Described {
                token_sha256: handle.token_sha256.to_string(),
                flow: handle.flow().clone(),
            },
            Op::Visitor { client_id, input } => {
                WireReply::Sent(self.send(&mut handle, client_id, input).await)
            }
            Op::Snapshot => match handle.snapshot().await {
                Ok((state, last_seq)) => WireReply::Snapshot { state, last_seq },
                Err(error) => failed(&error),
            },
            Op::Context => match handle.context().await {
                Ok(context) => WireReply::Context(context),
                Err(error) => failed(&error),
            },
            Op::Console { action } => WireReply::Console(handle.console(action).await),
            Op::Typing { sender, on } => {
                handle.typing(sender, on);
                return None;
            }
        })
    }

    async fn pass_queue_changes(self, mut queue: Subscriber, cluster: Arc<Cluster>) {
        let shutdown = self.shutdown_token().clone();
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => break,
                message = queue.next() => match message {
                    Some(message) => message,
                    None => break,
                },
            };
            let Ok(change) = serde_json::from_slice::<WireQueueChange>(&message.payload) else {
                tracing::warn!("unreadable queue change from another node");
                continue;
            };
            if change.origin == cluster.node() {
                continue;
            }
            // No console listening is fine.
            let _ = self.shared().queue_changes.send(QueueChange {
                conversation: Arc::from(change.conversation),
                event: change.event.event(),
                assignee: change.assignee,
            });
        }
    }

    /// Tells the other nodes, if any, that version `version` of flow `id` was published here
    /// (and is stored): they make it their current version too.
    pub fn announce_flow(&self, id: &str, version: u32) {
        if let Some(cluster) = &self.shared().services.cluster {
            cluster.publish_flow_version(id, version);
        }
    }

    /// Loads the versions other nodes publish.
    async fn follow_flows(self, mut flows: Subscriber, cluster: Arc<Cluster>) {
        let shutdown = self.shutdown_token().clone();
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => break,
                message = flows.next() => match message {
                    Some(message) => message,
                    None => break,
                },
            };
            let Ok(published) = serde_json::from_slice::<WireFlowPublished>(&message.payload)
            else {
                tracing::warn!("unreadable flow announcement from another node");
                continue;
            };
            if published.origin == cluster.node() {
                continue;
            }
            let engines = &self.shared().services.engines;
            match crate::flow_api::load_latest(self.store(), engines, &published.flow).await {
                Ok(_) => {}
                Err(error) => tracing::error!(
                    flow = %published.flow,
                    version = published.version,
                    %error,
                    "cannot load a flow version another node published"
                ),
            }
        }
    }

    async fn keep_alive(self, cluster: Arc<Cluster>) {
        let shutdown = self.shutdown_token().clone();
        let mut tick = tokio::time::interval(cluster.config.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let store = self.store();
            match store.heartbeat(cluster.node(), now_ms()).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        node = cluster.node(),
                        "this node's registration was gone; registering again"
                    );
                    if let Err(error) = store.register_node(cluster.node(), now_ms()).await {
                        tracing::error!(%error, "cannot register this node");
                    }
                }
                Err(error) => tracing::error!(%error, "cannot renew this node's heartbeat"),
            }
            if let Err(error) = self.sweep(&cluster).await {
                tracing::error!(%error, "cannot look for orphaned conversations");
            }
        }
    }

    /// Takes over the open conversations no live node runs; returns how many.
    pub(super) async fn sweep(&self, cluster: &Cluster) -> Result<usize, HubError> {
        let stale = i64::try_from(cluster.config.stale_after.as_millis()).unwrap_or(i64::MAX);
        let orphans = self
            .store()
            .orphaned_conversations(now_ms().saturating_sub(stale), 200)
            .await?;
        let mut taken = 0;
        for (id, seen) in orphans {
            if matches!(&seen, NodeOwner::Node(node) if node == cluster.node()) {
                // Ours, though our own heartbeat was late: it runs here already.
                continue;
            }
            if !self
                .store()
                .take_conversation(&id, cluster.node(), &seen)
                .await?
            {
                continue;
            }
            tracing::info!(conversation = %id, from = ?seen, "took over a conversation");
            match self.load_local(&id).await {
                Ok(_) => taken += 1,
                Err(error) => {
                    tracing::error!(conversation = %id, %error, "cannot resume a conversation");
                }
            }
        }
        Ok(taken)
    }

    /// The conversation `id` in a cluster: run here when this node owns it or may take it over,
    /// else a proxy to the node that runs it.
    pub(super) async fn get_clustered(
        &self,
        id: &str,
        cluster: &Cluster,
    ) -> Result<ConversationHandle, HubError> {
        let store = self.store();
        for _ in 0..3 {
            let seen = store.conversation_node(id).await?;
            match &seen {
                NodeOwner::Unknown => return Err(HubError::UnknownConversation(id.to_owned())),
                NodeOwner::Node(node) if node == cluster.node() => {
                    return self.load_local(id).await;
                }
                NodeOwner::Node(owner) if self.is_alive(owner, cluster).await? => {
                    match cluster.request(owner, id, Op::Describe).await {
                        Ok(WireReply::Described { token_sha256, flow }) => {
                            return self.spawn_proxy(id, owner, token_sha256, flow).await;
                        }
                        Ok(WireReply::Failed(reason)) => {
                            return Err(HubError::Unreachable {
                                id: id.to_owned(),
                                reason,
                            });
                        }
                        Ok(_) => {
                            return Err(HubError::Unreachable {
                                id: id.to_owned(),
                                reason: "unexpected answer".to_owned(),
                            });
                        }
                        // It changed hands meanwhile: look again.
                        Err(Unreachable::NotOwner) => continue,
                        Err(Unreachable::Dead) => {}
                        Err(Unreachable::Other(reason)) => {
                            return Err(HubError::Unreachable {
                                id: id.to_owned(),
                                reason,
                            });
                        }
                    }
                }
                NodeOwner::Node(_) | NodeOwner::Nobody => {}
            }
            if store.take_conversation(id, cluster.node(), &seen).await? {
                tracing::info!(conversation = %id, from = ?seen, "took over a conversation");
                return self.load_local(id).await;
            }
        }
        Err(HubError::Unreachable {
            id: id.to_owned(),
            reason: "it keeps changing nodes".to_owned(),
        })
    }

    /// The conversation `id` if this node runs it (loading it when it is not running);
    /// `None` when another node does.
    async fn get_owned(&self, id: &str) -> Result<Option<ConversationHandle>, HubError> {
        if let Some(handle) = self.running_handle(id)
            && handle.remote.is_none()
        {
            return Ok(Some(handle));
        }
        let node = self.shared().node().unwrap_or_default().to_owned();
        let seen = self.store().conversation_node(id).await?;
        match &seen {
            NodeOwner::Unknown => Err(HubError::UnknownConversation(id.to_owned())),
            NodeOwner::Node(owner) if *owner == node => self.load_local(id).await.map(Some),
            NodeOwner::Nobody if self.store().take_conversation(id, &node, &seen).await? => {
                self.load_local(id).await.map(Some)
            }
            NodeOwner::Node(_) | NodeOwner::Nobody => Ok(None),
        }
    }

    async fn is_alive(&self, node: &str, cluster: &Cluster) -> Result<bool, HubError> {
        let stale = i64::try_from(cluster.config.stale_after.as_millis()).unwrap_or(i64::MAX);
        Ok(self
            .store()
            .node_heartbeat(node)
            .await?
            .is_some_and(|at| at >= now_ms().saturating_sub(stale)))
    }

    async fn spawn_proxy(
        &self,
        id: &str,
        owner: &str,
        token_sha256: String,
        flow: FlowRef,
    ) -> Result<ConversationHandle, HubError> {
        let shared = self.shared_arc();
        let Some(cluster) = shared.services.cluster.clone() else {
            return Err(HubError::ShuttingDown);
        };
        let unreachable = |reason: String| HubError::Unreachable {
            id: id.to_owned(),
            reason,
        };
        let subject =
            conversation_subject(id).ok_or_else(|| HubError::UnknownConversation(id.to_owned()))?;
        let subscription = cluster
            .client
            .subscribe(subject)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        // Subscribed before anyone reads the backlog: nothing falls between the two.
        cluster
            .client
            .flush()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (commands, receiver) = mpsc::channel(shared.config.command_capacity.max(1));
        let events = self
            .reusable_events(id)
            .unwrap_or_else(|| broadcast::channel(shared.config.event_capacity.max(1)).0);
        let handle = ConversationHandle {
            id: Arc::from(id),
            commands: commands.clone(),
            events: events.clone(),
            token_sha256: Arc::from(token_sha256),
            flow: Arc::new(flow),
            remote: Some(Arc::from(owner)),
        };
        self.insert_running(&handle);
        let proxy = Proxy {
            shared: Arc::clone(&shared),
            cluster,
            id: Arc::from(id),
            owner: Arc::from(owner),
            commands,
            events,
        };
        shared.tracker.spawn(proxy.run(receiver, subscription));
        Ok(handle)
    }
}

/// Stands in for a conversation another node runs.
struct Proxy {
    shared: Arc<Shared>,
    cluster: Arc<Cluster>,
    id: Arc<str>,
    owner: Arc<str>,
    /// Its own sender, to tell its entry in the running map from a newer one.
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Outbound>,
}

/// The owner is gone or no longer runs the conversation: the proxy stops, and the hub finds
/// the conversation again.
struct OwnerGone;

impl Proxy {
    async fn run(self, mut receiver: mpsc::Receiver<Command>, subscription: Subscriber) {
        let token = self.shared.shutdown.child_token();
        let (seen, seen_by_commands) = watch::channel(0_i64);
        let forwarding = tokio::spawn(forward(
            subscription,
            self.events.clone(),
            seen,
            token.clone(),
        ));
        loop {
            let idle = tokio::time::sleep(self.shared.config.idle_timeout);
            tokio::select! {
                biased;
                () = token.cancelled() => break,
                command = receiver.recv() => {
                    let Some(command) = command else { break };
                    if self.relay(command, &seen_by_commands, &mut receiver).await.is_err() {
                        break;
                    }
                }
                () = idle => {
                    if self.shared.evict(&self.id, &self.commands, &receiver) {
                        break;
                    }
                }
            }
        }
        token.cancel();
        let _ = forwarding.await;
        drop(receiver);
        self.shared.forget_if_stopped(&self.id);
    }

    async fn relay(
        &self,
        command: Command,
        seen: &watch::Receiver<i64>,
        receiver: &mut mpsc::Receiver<Command>,
    ) -> Result<(), OwnerGone> {
        let cluster = &self.cluster;
        // On failure the reply channel is dropped: the caller sees `Gone` and asks the hub
        // again. The proxy is closed first, so that the hub no longer finds it then.
        match command {
            Command::Visitor {
                client_id,
                input,
                reply,
            } => {
                if let WireReply::Sent(result) =
                    self.ask(Op::Visitor { client_id, input }, receiver).await?
                {
                    if let Ok(seq) = result {
                        wait_for_event(seen, seq).await;
                    }
                    let _ = reply.send(result);
                }
            }
            Command::Snapshot(reply) => {
                if let WireReply::Snapshot { state, last_seq } =
                    self.ask(Op::Snapshot, receiver).await?
                {
                    let _ = reply.send((state, last_seq));
                }
            }
            Command::Context(reply) => {
                if let WireReply::Context(context) = self.ask(Op::Context, receiver).await? {
                    let _ = reply.send(context);
                }
            }
            Command::Console { action, reply } => {
                if let WireReply::Console(result) =
                    self.ask(Op::Console { action }, receiver).await?
                {
                    if let Ok(ConsoleOutcome { seq: Some(seq), .. }) = &result {
                        wait_for_event(seen, *seq).await;
                    }
                    let _ = reply.send(result);
                }
            }
            Command::Typing { sender, on } => {
                cluster.notify(&self.owner, &self.id, Op::Typing { sender, on });
            }
            // Only a conversation's own task arms timers and asks lookups.
            Command::Timer { .. } | Command::LookupDone(_) => {}
        }
        Ok(())
    }

    async fn ask(
        &self,
        op: Op,
        receiver: &mut mpsc::Receiver<Command>,
    ) -> Result<WireReply, OwnerGone> {
        match self.cluster.request(&self.owner, &self.id, op).await {
            Ok(reply) => Ok(reply),
            Err(Unreachable::Dead | Unreachable::NotOwner) => {
                receiver.close();
                Err(OwnerGone)
            }
            Err(Unreachable::Other(reason)) => {
                tracing::warn!(conversation = %self.id, node = %self.owner, %reason, "a command to another node failed");
                Ok(WireReply::Failed(reason))
            }
        }
    }
}

/// Passes the owner's events to this node's connections.
async fn forward(
    mut subscription: Subscriber,
    events: broadcast::Sender<Outbound>,
    seen: watch::Sender<i64>,
    token: tokio_util::sync::CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = token.cancelled() => break,
            message = subscription.next() => match message {
                Some(message) => message,
                None => break,
            },
        };
        let Ok(wire) = serde_json::from_slice::<WireEvent>(&message.payload) else {
            tracing::warn!("unreadable conversation event from another node");
            continue;
        };
        let event = Outbound::from(wire);
        if let Outbound::Message { seq, .. } = &event {
            seen.send_modify(|last| *last = (*last).max(*seq));
        }
        // No connection listening is fine.
        let _ = events.send(event);
    }
}

async fn wait_for_event(seen: &watch::Receiver<i64>, seq: i64) {
    let mut seen = seen.clone();
    let _ = tokio::time::timeout(EVENT_WAIT, seen.wait_for(|last| *last >= seq)).await;
}
