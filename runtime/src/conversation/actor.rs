//! One conversation's task: it owns the session, takes one command at a time (a visitor
//! message, a timer, a lookup answer), steps the engine and carries out its effects.
//!
//! # A turn, and why a crash at any point loses nothing
//!
//! 1. A visitor message is stored (through the group-commit writer) and only then acknowledged.
//! 2. The engine steps. Its messages are stored with client ids `b:TURN:N`, where `TURN` is the
//!    session's turn count after the step; state changes are stored as events.
//! 3. The session is saved with the sequence number of the last visitor message it has taken
//!    (`input_seq`), its pending lookups and the visitor's token hash.
//!
//! After a crash the saved session is loaded and every visitor message after `input_seq` is
//! taken again. The engine is deterministic, so a turn taken again produces the same turn
//! number and the same client ids: messages already stored before the crash are found instead
//! of stored twice. Timers are re-armed from the session and pending lookups asked again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flows::engine::{
    Effect, Input, LookupOutcome, LookupRequest, LookupResult, Millis, StartInput, Trace, Waiting,
};
use flows::{FlowRef, Session};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::body::{Body, message_frame};
use super::hub::{ConversationHandle, HubError, Outbound, SendError, Shared, VisitorInput};
use super::{State, Transition, now_ms};
use crate::engines::SharedEngine;
use crate::store::{
    NewConversation, NewEvent, NewSession, Routing, Sender, StatKey, StoreError, StoredMessage,
    WriteError,
};

/// How long a lookup may take before the flow is told it failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) enum Command {
    Visitor {
        client_id: String,
        input: VisitorInput,
        reply: oneshot::Sender<Result<i64, SendError>>,
    },
    Snapshot(oneshot::Sender<(State, i64)>),
    /// What the console reads of the bot's work: the session's path and main variables.
    Context(oneshot::Sender<Context>),
    Console {
        action: ConsoleAction,
        reply: oneshot::Sender<Result<ConsoleOutcome, ConsoleError>>,
    },
    /// Someone in the conversation is typing (or stopped).
    Typing {
        sender: Sender,
        on: bool,
    },
    Timer {
        id: String,
        at: Millis,
    },
    LookupDone(LookupResult),
}

/// What is saved after every turn (the `sessions.state` column).
#[derive(Serialize, Deserialize)]
struct Saved<S> {
    format: u32,
    token_sha256: String,
    start: StartInput,
    /// The sequence number of the last visitor message the session has taken.
    input_seq: i64,
    /// Lookups asked and not yet answered, asked again after a restart.
    #[serde(default)]
    lookups: Vec<LookupRequest>,
    session: S,
}

const SAVED_FORMAT: u32 = 1;

/// The task stops after this (a storage failure): nothing is lost, the hub loads the
/// conversation again from what was stored.
struct Stop;

pub(super) struct Actor {
    shared: Arc<Shared>,
    id: Arc<str>,
    engine: SharedEngine,
    session: Session,
    state: State,
    token_sha256: String,
    start: StartInput,
    input_seq: i64,
    /// Pending lookups by request number.
    lookups: HashMap<u64, (LookupRequest, CancellationToken)>,
    timers: HashMap<String, CancellationToken>,
    /// The highest message sequence number this conversation has.
    last_seq: i64,
    /// Where it was handed off to and who has it.
    routing: Routing,
    /// The `turn` of the last save (saves only move forward).
    saved_turn: i64,
    token: CancellationToken,
    events: broadcast::Sender<Outbound>,
    /// For timers and lookups to answer through; set by [`Actor::handle`].
    commands: Option<mpsc::Sender<Command>>,
    /// Visitor messages stored after the saved session, to take on loading.
    replay: Vec<StoredMessage>,
    /// Recent client ids and their sequence numbers: a resend is answered from here, and a turn
    /// taken again after a crash finds the messages it stored before.
    known: Known,
}

/// Client ids of a conversation's recent messages, at most `KNOWN_CLIENT_IDS` (an older resend
/// is found in the database instead).
#[derive(Default)]
struct Known {
    seqs: HashMap<String, i64>,
    order: std::collections::VecDeque<String>,
}

const KNOWN_CLIENT_IDS: usize = 256;

impl Known {
    fn get(&self, client_id: &str) -> Option<i64> {
        self.seqs.get(client_id).copied()
    }

    fn insert(&mut self, client_id: &str, seq: i64) {
        if self.seqs.insert(client_id.to_owned(), seq).is_none() {
            self.order.push_back(client_id.to_owned());
            if self.order.len() > KNOWN_CLIENT_IDS
                && let Some(oldest) = self.order.pop_front()
            {
                self.seqs.remove(&oldest);
            }
        }
    }
}

impl Actor {
    /// Creates a conversation in the database (its row, the `started` event and its first saved
    /// state); the task starts the flow when it runs.
    pub(super) async fn create(
        shared: Arc<Shared>,
        id: Arc<str>,
        engine: SharedEngine,
        start: StartInput,
        token_sha256: String,
        visitor: &std::collections::BTreeMap<String, String>,
    ) -> Result<Actor, HubError> {
        let flow = engine.flow().clone();
        let now = now_ms();
        let new = NewConversation {
            id: id.to_string(),
            flow_id: flow.id.clone(),
            flow_version: flow.version,
            flow_hash: flow.hash.clone(),
            owner: State::STARTED.owner.as_str().to_owned(),
            status: State::STARTED.status.as_str().to_owned(),
            created_at: now,
            node: shared.node().map(str::to_owned),
        };
        let data = serde_json::json!({
            "flow": flow.id, "version": flow.version, "hash": flow.hash,
            "locale": start.locale, "channel": start.channel, "visitor": visitor,
        });
        let started = NewEvent {
            at: now,
            kind: "started".to_owned(),
            data_json: data.to_string(),
        };
        let store = shared.services.store.clone();
        let session = engine.new_session();
        let mut actor = Actor::new(
            shared,
            id,
            engine,
            session,
            State::STARTED,
            token_sha256,
            start,
        );
        let Ok(first) = actor.session_save() else {
            return Err(HubError::Unloadable {
                id: actor.id.to_string(),
                reason: "its first state could not be written".to_owned(),
            });
        };
        // The row, the `started` event and the first saved state, in one transaction.
        store
            .create_conversation_with(&new, &started, &first)
            .await?;
        actor.saved_turn = first.turn;
        Ok(actor)
    }

    /// Loads a stored conversation: its state, its saved session, the engine of the flow version
    /// it is pinned to, and the visitor messages its session has not taken yet.
    /// Connections listening on `events` (those of an earlier task) follow this one.
    pub(super) async fn load(
        shared: Arc<Shared>,
        id: &str,
        events: Option<broadcast::Sender<Outbound>>,
    ) -> Result<Actor, HubError> {
        let unloadable = |reason: String| HubError::Unloadable {
            id: id.to_owned(),
            reason,
        };
        let store = shared.services.store.clone();
        let conversation = store
            .conversation(id)
            .await?
            .ok_or_else(|| HubError::UnknownConversation(id.to_owned()))?;
        let state = State::parse(&conversation.owner, &conversation.status).ok_or_else(|| {
            unloadable(format!(
                "unknown owner/status `{}`/`{}`",
                conversation.owner, conversation.status
            ))
        })?;
        let saved = store
            .load_session(id)
            .await?
            .ok_or_else(|| unloadable("it has no saved state".to_owned()))?;
        let parsed: Saved<Box<RawValue>> = serde_json::from_str(&saved.json)
            .map_err(|e| unloadable(format!("its saved state is damaged: {e}")))?;
        if parsed.format != SAVED_FORMAT {
            return Err(unloadable(format!(
                "its saved state has format {}, this server reads {SAVED_FORMAT}",
                parsed.format
            )));
        }
        let session = Session::from_json(parsed.session.get())
            .map_err(|e| unloadable(format!("its saved session is damaged: {e}")))?;
        let flow_ref = FlowRef {
            id: conversation.flow_id.clone(),
            version: conversation.flow_version,
            hash: conversation.flow_hash.clone(),
        };
        let engine = shared.engine_for(id, &flow_ref).await?;
        let mut replay = Vec::new();
        let mut known = Known::default();
        if !state.is_ended() {
            for message in store.messages_since(id, parsed.input_seq).await? {
                if let Some(client_id) = &message.client_id {
                    known.insert(client_id, message.seq);
                }
                if message.sender == Sender::Visitor {
                    replay.push(message);
                }
            }
        }
        let mut actor = Actor::new(
            shared,
            Arc::from(id),
            engine,
            session,
            state,
            parsed.token_sha256,
            parsed.start,
        );
        if let Some(events) = events {
            actor.events = events;
        }
        actor.input_seq = parsed.input_seq;
        actor.saved_turn = saved.turn;
        actor.last_seq = conversation.last_message_seq;
        actor.routing = conversation.routing.clone();
        actor.replay = replay;
        actor.known = known;
        for request in parsed.lookups {
            actor
                .lookups
                .insert(request.request, (request, CancellationToken::new()));
        }
        Ok(actor)
    }

    fn new(
        shared: Arc<Shared>,
        id: Arc<str>,
        engine: SharedEngine,
        session: Session,
        state: State,
        token_sha256: String,
        start: StartInput,
    ) -> Actor {
        let (events, _) = broadcast::channel(shared.config.event_capacity.max(1));
        let token = shared.shutdown.child_token();
        Actor {
            shared,
            id,
            engine,
            session,
            state,
            token_sha256,
            start,
            input_seq: 0,
            lookups: HashMap::new(),
            timers: HashMap::new(),
            last_seq: 0,
            routing: Routing::default(),
            saved_turn: 0,
            token,
            events,
            commands: None,
            replay: Vec::new(),
            known: Known::default(),
        }
    }

    /// The handle connections use, sending into `commands` (which timers and lookups use
    /// too).
    pub(super) fn handle(&mut self, commands: mpsc::Sender<Command>) -> ConversationHandle {
        self.commands = Some(commands.clone());
        ConversationHandle {
            id: Arc::clone(&self.id),
            commands,
            events: self.events.clone(),
            token_sha256: Arc::from(self.token_sha256.as_str()),
            flow: Arc::new(self.engine.flow().clone()),
            remote: None,
        }
    }

    /// Runs until the server shuts down, a storage failure, or the conversation goes idle.
    pub(super) async fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        if self.resume().await.is_err() {
            return self.stop();
        }
        loop {
            let idle = tokio::time::sleep(self.shared.config.idle_timeout);
            tokio::select! {
                biased;
                () = self.token.cancelled() => break,
                command = receiver.recv() => {
                    let Some(command) = command else { break };
                    if self.command(command).await.is_err() {
                        break;
                    }
                }
                () = idle, if self.is_idle() => {
                    let evicted = self
                        .commands
                        .as_ref()
                        .is_none_or(|mine| self.shared.evict(&self.id, mine, &receiver));
                    if evicted {
                        break;
                    }
                }
            }
        }
        self.stop();
    }

    /// Cancels this conversation's timers and lookups (its children in the cancellation tree).
    fn stop(&self) {
        self.token.cancel();
    }

    /// After creating or loading: start the flow, take the visitor messages stored since the
    /// last save, arm the timers and ask the pending lookups again.
    async fn resume(&mut self) -> Result<(), Stop> {
        if self.state.is_ended() {
            return Ok(());
        }
        if self.session.status() == flows::engine::Status::NotStarted {
            let start = Input::Start(self.start.clone());
            self.turn(&start, None).await?;
        }
        for message in std::mem::take(&mut self.replay) {
            let Some(input) = visitor_input(&message) else {
                self.input_seq = message.seq;
                continue;
            };
            self.take_visitor(&input, &message).await?;
        }
        let pending: Vec<LookupRequest> = self
            .lookups
            .values()
            .map(|(request, _)| request.clone())
            .collect();
        for request in pending {
            self.ask_lookup(request);
        }
        if !self.state.is_ended() {
            for (timer, at) in self.session.timers.clone() {
                self.arm_timer(timer, at);
            }
        }
        Ok(())
    }

    async fn command(&mut self, command: Command) -> Result<(), Stop> {
        match command {
            Command::Visitor {
                client_id,
                input,
                reply,
            } => {
                if self.state.is_ended() {
                    let _ = reply.send(Err(SendError::Ended));
                    return Ok(());
                }
                if let Some(seq) = self.known.get(&client_id) {
                    // A resend: answered with the stored message's number, taken once.
                    let _ = reply.send(Ok(seq));
                    return Ok(());
                }
                let body = self.visitor_body(&input);
                let stored = StoredMessage {
                    conversation: self.id.to_string(),
                    seq: self.last_seq + 1,
                    sender: Sender::Visitor,
                    kind: body.kind().to_owned(),
                    body_json: body.to_json(),
                    client_id: Some(client_id),
                    at: now_ms(),
                };
                match self
                    .shared
                    .services
                    .writer
                    .commit_turn(vec![stored.clone()], None)
                    .await
                {
                    Ok(()) => {}
                    Err(WriteError::Store(StoreError::MessageExists)) => {
                        // An older resend than `known` remembers (or another writer took the
                        // number, which the reload after `Stop` sorts out).
                        let client_id = stored.client_id.as_deref().unwrap_or_default();
                        let found = self
                            .shared
                            .services
                            .store
                            .message_by_client_id(&self.id, client_id)
                            .await;
                        if let Ok(Some(found)) = found {
                            self.known.insert(client_id, found.seq);
                            let _ = reply.send(Ok(found.seq));
                            return Ok(());
                        }
                        let _ = reply.send(Err(SendError::Internal));
                        return Err(Stop);
                    }
                    Err(error) => {
                        tracing::error!(conversation = %self.id, %error, "cannot store a visitor message");
                        let _ = reply.send(Err(SendError::Internal));
                        return Err(Stop);
                    }
                }
                let _ = reply.send(Ok(stored.seq));
                if let Some(client_id) = &stored.client_id {
                    self.known.insert(client_id, stored.seq);
                }
                self.publish(&stored);
                let input = match input {
                    VisitorInput::Text(text) => Input::Text(text),
                    VisitorInput::Choice(option) => Input::Choice(option),
                };
                self.take_visitor(&input, &stored).await
            }
            Command::Snapshot(reply) => {
                let _ = reply.send((self.state, self.last_seq));
                Ok(())
            }
            Command::Context(reply) => {
                let _ = reply.send(Context {
                    path: self.session.path.clone(),
                    variables: self.session.main_vars(),
                    state: self.state,
                    routing: self.routing.clone(),
                });
                Ok(())
            }
            Command::Console { action, reply } => self.console(action, reply).await,
            Command::Typing { sender, on } => {
                self.emit(Outbound::Typing { sender, on });
                Ok(())
            }
            Command::Timer { id, at } => {
                self.timers.remove(&id);
                if self.state.is_ended() || self.session.timers.get(&id) != Some(&at) {
                    return Ok(());
                }
                self.turn(&Input::Timer(id), None).await
            }
            Command::LookupDone(result) => {
                if self.lookups.remove(&result.request).is_none() {
                    return Ok(());
                }
                if self.lookups.is_empty() {
                    self.frame(r#"{"type":"typing","sender":"bot","on":false}"#);
                }
                self.turn(&Input::LookupResult(result), None).await
            }
        }
    }

    /// Adds the turn's node visits and edges to the flow statistics of the conversation's flow
    /// version (`store/stats.rs`). Traces of sub-flows are left out: the version they ran is
    /// not the conversation's.
    fn count_traces(&self, traces: Vec<Trace>) {
        if traces.is_empty() {
            return;
        }
        let flow = self.engine.flow();
        let keys = traces.into_iter().filter_map(|trace| match trace {
            Trace::NodeEntered { flow: id, node } if id == flow.id => {
                Some(StatKey::node(&flow.id, flow.version, node))
            }
            Trace::EdgeTaken {
                flow: id,
                from,
                port,
                to,
            } if id == flow.id => Some(StatKey::edge(&flow.id, flow.version, from, port, to)),
            _ => None,
        });
        self.shared.services.store.count_flow_stats(keys);
    }

    /// Takes a stored visitor message: the bot answers it while it owns the conversation;
    /// otherwise (a queue or an agent has it) the message only waits in the transcript.
    async fn take_visitor(&mut self, input: &Input, stored: &StoredMessage) -> Result<(), Stop> {
        if self.state.owner == super::Owner::Bot && !self.state.is_ended() {
            self.turn(input, Some(stored)).await
        } else {
            self.input_seq = self.input_seq.max(stored.seq);
            self.save().await
        }
    }

    /// One engine step and everything it asks for; saves the session at the end.
    async fn turn(&mut self, input: &Input, from: Option<&StoredMessage>) -> Result<(), Stop> {
        let now = now_ms();
        let step = self.engine.step(&mut self.session, input, now);
        let turn = self.session.turns;
        let mut bodies: Vec<(Sender, Body)> = Vec::new();
        let mut transitions: Vec<(Transition, serde_json::Value, Option<Routing>)> = Vec::new();
        let mut lookups = Vec::new();
        let mut traces = Vec::new();
        for effect in step.effects {
            match effect {
                Effect::Say { output, .. } => bodies.push((Sender::Bot, Body::from(output))),
                Effect::Ask { prompt, expect, .. } => {
                    bodies.push((Sender::Bot, Body::Ask { prompt, expect }));
                }
                Effect::Lookup(request) => lookups.push(request),
                Effect::Handoff(request) => {
                    // The flow says its own words before a handoff; the queue position follows.
                    let priority = serde_json::to_value(request.priority)
                        .ok()
                        .and_then(|p| p.as_str().map(str::to_owned));
                    let routing = Routing {
                        queue: request.queue.clone(),
                        team: request.team.clone(),
                        priority,
                        reason: Some(request.reason.clone()),
                        assignee: None,
                        handed_off_at: Some(now),
                    };
                    transitions.push((
                        Transition::HandedOff,
                        serde_json::json!({
                            "node": request.node, "queue": request.queue, "team": request.team,
                            "priority": request.priority, "reason": request.reason,
                            "summary": request.summary,
                        }),
                        Some(routing),
                    ));
                }
                Effect::SetTimer { id, at } => self.arm_timer(id, at),
                Effect::CancelTimer { id } => {
                    if let Some(timer) = self.timers.remove(&id) {
                        timer.cancel();
                    }
                }
                Effect::End { outcome } => {
                    bodies.push((Sender::System, self.notice("ended", None)));
                    transitions.push((
                        Transition::Ended,
                        serde_json::json!({ "outcome": outcome }),
                        None,
                    ));
                }
                Effect::Error { node, message } => {
                    tracing::warn!(conversation = %self.id, node = ?node, error = %message, "the flow reported an error");
                }
                Effect::Rejected { reason } => {
                    if let Some(stored) = from {
                        let frame = serde_json::json!({
                            "type": "error", "code": "not_expected", "message": reason,
                            "client_id": stored.client_id, "fatal": false,
                        });
                        self.frame(&frame.to_string());
                    }
                }
                Effect::Trace(trace) => traces.push(trace),
            }
        }
        // Numbered here: this task is the conversation's only writer. A message whose client
        // id is known was stored before a crash, by this very turn.
        let mut stored = Vec::with_capacity(bodies.len());
        let mut new = Vec::with_capacity(bodies.len());
        for (index, (sender, body)) in bodies.into_iter().enumerate() {
            let client_id = format!("b:{turn}:{index}");
            let seq = match self.known.get(&client_id) {
                Some(seq) => seq,
                None => {
                    self.last_seq += 1;
                    new.push(stored.len());
                    self.last_seq
                }
            };
            stored.push(StoredMessage {
                conversation: self.id.to_string(),
                seq,
                sender,
                kind: body.kind().to_owned(),
                body_json: body.to_json(),
                client_id: Some(client_id),
                at: now,
            });
        }
        if let Some(message) = from {
            self.input_seq = self.input_seq.max(message.seq);
        }
        // The lookups are pending from now on: saved with the session, asked once it is saved.
        for request in &lookups {
            self.lookups
                .insert(request.request, (request.clone(), CancellationToken::new()));
        }
        let session = self.session_save()?;
        let numbered = new.iter().map(|&index| stored[index].clone()).collect();
        if let Err(error) = self
            .shared
            .services
            .writer
            .commit_turn(numbered, Some(session))
            .await
        {
            tracing::error!(conversation = %self.id, %error, "cannot store a turn");
            return Err(Stop);
        }
        self.saved_turn += 1;
        // Counted once the turn is stored: a turn taken again after a failed commit or a crash
        // is counted once.
        self.count_traces(traces);
        for message in &stored {
            if let Some(client_id) = &message.client_id {
                self.known.insert(client_id, message.seq);
            }
            self.publish(message);
        }
        let transitioned = !transitions.is_empty();
        let mut queued = false;
        for (transition, data, routing) in transitions {
            queued |= transition == Transition::HandedOff;
            self.transition(transition, &data, now, routing).await?;
        }
        if queued {
            self.tell_position(now).await?;
        }
        for request in lookups {
            self.frame(r#"{"type":"typing","sender":"bot","on":true}"#);
            self.ask_lookup(request);
        }
        // A state change is stored after the turn: save again so the session is never older
        // than the state (after a crash in between, the turn is taken again and finds its
        // messages stored).
        if transitioned {
            self.save().await?;
        }
        Ok(())
    }

    /// Applies `transition`, storing it as an event, with the new `routing` when given.
    async fn transition(
        &mut self,
        transition: Transition,
        data: &serde_json::Value,
        now: Millis,
        routing: Option<Routing>,
    ) -> Result<(), Stop> {
        let next = match self.state.apply(transition) {
            Ok(next) => next,
            Err(error) => {
                tracing::warn!(conversation = %self.id, %error, "transition ignored");
                return Ok(());
            }
        };
        let event = NewEvent {
            at: now,
            kind: transition.event().to_owned(),
            data_json: data.to_string(),
        };
        let store = &self.shared.services.store;
        let (owner, status) = (next.owner.as_str(), next.status.as_str());
        let stored = match &routing {
            Some(routing) => {
                store
                    .set_state_routed(&self.id, owner, status, &event, routing)
                    .await
            }
            None => store.set_state(&self.id, owner, status, &event).await,
        };
        if let Err(error) = stored {
            tracing::error!(conversation = %self.id, %error, "cannot store a state change");
            return Err(Stop);
        }
        self.state = next;
        if let Some(routing) = routing {
            self.routing = routing;
        }
        self.shared
            .queue_changed(&self.id, transition, self.routing.assignee.clone());
        let frame = serde_json::json!({
            "type": "state", "owner": next.owner.as_str(), "status": next.status.as_str(),
        });
        self.frame(&frame.to_string());
        if next.is_ended() {
            for (_, timer) in self.timers.drain() {
                timer.cancel();
            }
            for (_, (_, lookup)) in self.lookups.drain() {
                lookup.cancel();
            }
        }
        Ok(())
    }

    /// Saves the session on its own (when no messages go with it).
    async fn save(&mut self) -> Result<(), Stop> {
        let session = self.session_save()?;
        let turn = session.turn;
        match self
            .shared
            .services
            .writer
            .commit_turn(Vec::new(), Some(session))
            .await
        {
            Ok(()) => {
                self.saved_turn = turn;
                Ok(())
            }
            Err(error) => {
                tracing::error!(conversation = %self.id, %error, "cannot save the session");
                Err(Stop)
            }
        }
    }

    /// What [`Actor::save`] stores: the session as the next saved turn.
    fn session_save(&self) -> Result<NewSession, Stop> {
        let saved = Saved {
            format: SAVED_FORMAT,
            token_sha256: self.token_sha256.clone(),
            start: self.start.clone(),
            input_seq: self.input_seq,
            lookups: self.lookups.values().map(|(r, _)| r.clone()).collect(),
            session: &self.session,
        };
        match serde_json::to_string(&saved) {
            Ok(json) => Ok(NewSession {
                conversation: self.id.to_string(),
                turn: self.saved_turn + 1,
                json,
            }),
            Err(error) => {
                tracing::error!(conversation = %self.id, %error, "cannot serialise the session");
                Err(Stop)
            }
        }
    }

    fn arm_timer(&mut self, id: String, at: Millis) {
        if let Some(previous) = self.timers.remove(&id) {
            previous.cancel();
        }
        let Some(commands) = self.commands.clone() else {
            return;
        };
        let token = self.token.child_token();
        self.timers.insert(id.clone(), token.clone());
        tokio::spawn(async move {
            let wait = Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0));
            tokio::select! {
                () = token.cancelled() => {}
                () = tokio::time::sleep(wait) => {
                    let _ = commands.send(Command::Timer { id, at }).await;
                }
            }
        });
    }

    fn ask_lookup(&mut self, request: LookupRequest) {
        let Some(commands) = self.commands.clone() else {
            return;
        };
        let token = self.token.child_token();
        self.lookups
            .insert(request.request, (request.clone(), token.clone()));
        let lookups = Arc::clone(&self.shared.services.lookups);
        tokio::spawn(async move {
            let asked = tokio::time::timeout(LOOKUP_TIMEOUT, lookups.lookup(&request, now_ms()));
            let outcome = tokio::select! {
                () = token.cancelled() => return,
                outcome = asked => outcome.unwrap_or_else(|_| LookupOutcome::Error(format!(
                    "`{}.{}.{}` did not answer within {} s",
                    request.connector, request.entity, request.operation, LOOKUP_TIMEOUT.as_secs()
                ))),
            };
            let result = LookupResult {
                request: request.request,
                outcome,
            };
            let _ = commands.send(Command::LookupDone(result)).await;
        });
    }

    /// An agent's (or admin's) action; the route has checked who may do it.
    async fn console(
        &mut self,
        action: ConsoleAction,
        reply: oneshot::Sender<Result<ConsoleOutcome, ConsoleError>>,
    ) -> Result<(), Stop> {
        use super::{Owner, Status};
        let now = now_ms();
        let refuse = |reply: oneshot::Sender<Result<ConsoleOutcome, ConsoleError>>, why: &str| {
            let _ = reply.send(Err(ConsoleError::Conflict(why.to_owned())));
            Ok(())
        };
        let mut seq = None;
        match action {
            ConsoleAction::Claim { agent, name } => {
                if self.state.owner != Owner::Queue {
                    return refuse(reply, "the conversation is not waiting in a queue");
                }
                let routing = Routing {
                    assignee: Some(agent.clone()),
                    ..self.routing.clone()
                };
                let data = serde_json::json!({ "agent": agent });
                self.transition(Transition::Assigned, &data, now, Some(routing))
                    .await?;
                self.system_message(self.notice("assigned", Some(&name)), now)
                    .await?;
            }
            ConsoleAction::Transfer {
                by,
                agent,
                team,
                note,
            } => {
                if self.state.owner != Owner::Agent {
                    return refuse(reply, "only a conversation an agent has can be transferred");
                }
                let data = serde_json::json!({
                    "by": by, "agent": agent.as_ref().map(|(id, _)| id), "team": team, "note": note,
                });
                if let Some((agent, name)) = agent {
                    let routing = Routing {
                        assignee: Some(agent),
                        ..self.routing.clone()
                    };
                    self.transition(Transition::Transferred, &data, now, Some(routing))
                        .await?;
                    self.system_message(self.notice("assigned", Some(&name)), now)
                        .await?;
                } else {
                    let routing = Routing {
                        team: team.or_else(|| self.routing.team.clone()),
                        assignee: None,
                        handed_off_at: Some(now),
                        ..self.routing.clone()
                    };
                    self.transition(Transition::Requeued, &data, now, Some(routing))
                        .await?;
                    self.system_message(self.notice("queued", None), now)
                        .await?;
                }
            }
            ConsoleAction::Resolve { by } => {
                if self.state.status == Status::Ended {
                    return refuse(reply, "the conversation has ended already");
                }
                self.system_message(self.notice("ended", None), now).await?;
                let data = serde_json::json!({ "by": by, "outcome": "resolved" });
                self.transition(Transition::Ended, &data, now, None).await?;
                self.save().await?;
            }
            ConsoleAction::HandBack { by, node } => {
                if self.state.owner != Owner::Agent {
                    return refuse(reply, "only a conversation an agent has can be handed back");
                }
                // Tried on a copy first: a node the flow cannot continue at is refused before
                // anything changes (the engine is deterministic, so the real step agrees).
                let trial = Input::HandBack(flows::engine::HandBack {
                    node: node.clone(),
                    vars: std::collections::BTreeMap::new(),
                });
                let mut copy = self.session.clone();
                let step = self.engine.step(&mut copy, &trial, now);
                if let Some(Effect::Rejected { reason }) = step
                    .effects
                    .iter()
                    .find(|e| matches!(e, Effect::Rejected { .. }))
                {
                    let why = format!("the bot cannot continue there: {reason}");
                    return refuse(reply, &why);
                }
                let routing = Routing {
                    assignee: None,
                    ..self.routing.clone()
                };
                let data = serde_json::json!({ "by": by, "node": node });
                self.transition(Transition::HandedBack, &data, now, Some(routing))
                    .await?;
                let input = Input::HandBack(flows::engine::HandBack {
                    node,
                    vars: std::collections::BTreeMap::new(),
                });
                self.turn(&input, None).await?;
            }
            ConsoleAction::Reply {
                agent,
                client_id,
                text,
            } => {
                if self.state.owner != Owner::Agent
                    || self.routing.assignee.as_deref() != Some(agent.as_str())
                {
                    return refuse(reply, "only the agent who has the conversation can reply");
                }
                let client_id = format!("a:{agent}:{client_id}");
                if let Some(known) = self.known.get(&client_id) {
                    seq = Some(known);
                } else {
                    let stored = self
                        .store_message(Sender::Agent, &Body::Text { text }, client_id, now)
                        .await?;
                    seq = Some(stored);
                }
            }
        }
        let _ = reply.send(Ok(ConsoleOutcome {
            state: self.state,
            routing: self.routing.clone(),
            seq,
        }));
        Ok(())
    }

    /// Stores one message this task numbers, outside a bot turn, and publishes it.
    async fn store_message(
        &mut self,
        sender: Sender,
        body: &Body,
        client_id: String,
        now: Millis,
    ) -> Result<i64, Stop> {
        let message = StoredMessage {
            conversation: self.id.to_string(),
            seq: self.last_seq + 1,
            sender,
            kind: body.kind().to_owned(),
            body_json: body.to_json(),
            client_id: Some(client_id),
            at: now,
        };
        if let Err(error) = self
            .shared
            .services
            .writer
            .commit_turn(vec![message.clone()], None)
            .await
        {
            tracing::error!(conversation = %self.id, %error, "cannot store a message");
            return Err(Stop);
        }
        if let Some(client_id) = &message.client_id {
            self.known.insert(client_id, message.seq);
        }
        self.publish(&message);
        Ok(message.seq)
    }

    /// Tells the visitor how many conversations are ahead of theirs in the queue.
    async fn tell_position(&mut self, now: Millis) -> Result<(), Stop> {
        // Beyond this many the visitor is told "more than": the count stays cheap however long
        // the queue.
        const EXACT_UP_TO: i64 = 50;
        let store = &self.shared.services.store;
        let Ok(ahead) = store.queue_ahead(&self.id, EXACT_UP_TO as u32 + 1).await else {
            // Only a courtesy: the conversation is queued whether or not it is told.
            return Ok(());
        };
        let text = match (self.session.locale.starts_with("zh"), ahead) {
            (true, 0) => "您是下一位，客服马上就来。".to_owned(),
            (true, n) if n > EXACT_UP_TO => format!("您前面还有 {EXACT_UP_TO} 位以上访客在等待。"),
            (true, n) => format!("您前面还有 {n} 位访客在等待。"),
            (false, 0) => "You are next in line.".to_owned(),
            (false, 1) => "1 person is ahead of you.".to_owned(),
            (false, n) if n > EXACT_UP_TO => {
                format!("More than {EXACT_UP_TO} people are ahead of you.")
            }
            (false, n) => format!("{n} people are ahead of you."),
        };
        let body = Body::Notice {
            code: "queue_position".to_owned(),
            text,
        };
        self.system_message(body, now).await
    }

    /// A system line (joined, queued, ended) outside a bot turn.
    async fn system_message(&mut self, body: Body, now: Millis) -> Result<(), Stop> {
        let client_id = format!("s:{}", self.last_seq + 1);
        self.store_message(Sender::System, &body, client_id, now)
            .await
            .map(drop)
    }

    fn is_idle(&self) -> bool {
        self.lookups.is_empty() && (self.timers.is_empty() || self.state.is_ended())
    }

    fn publish(&mut self, message: &StoredMessage) {
        self.last_seq = self.last_seq.max(message.seq);
        // No receiver is fine: the message is stored, and read back on resume.
        self.emit(Outbound::Message {
            seq: message.seq,
            client_id: message.client_id.as_deref().map(Arc::from),
            frame: Arc::from(message_frame(message)),
        });
    }

    fn frame(&self, frame: &str) {
        self.emit(Outbound::Frame(Arc::from(frame)));
    }

    /// Sends `event` to this node's connections and, in a cluster, to the other nodes'.
    fn emit(&self, event: Outbound) {
        if let Some(cluster) = &self.shared.services.cluster {
            cluster.publish_event(&self.id, &event);
        }
        let _ = self.events.send(event);
    }

    fn visitor_body(&self, input: &VisitorInput) -> Body {
        match input {
            VisitorInput::Text(text) => Body::Text { text: text.clone() },
            VisitorInput::Choice(option) => {
                let label = match &self.session.waiting {
                    Waiting::Choice { options, .. } => options
                        .iter()
                        .find(|o| &o.id == option)
                        .map(|o| o.label.clone()),
                    _ => None,
                };
                Body::Choice {
                    option: option.clone(),
                    label: label.unwrap_or_else(|| option.clone()),
                }
            }
        }
    }

    /// A system line in the conversation's language.
    fn notice(&self, code: &str, name: Option<&str>) -> Body {
        let chinese = self.session.locale.starts_with("zh");
        let name = name.unwrap_or_default();
        let text = match (code, chinese) {
            ("queued", true) => "正在为您转接人工客服，请稍候。".to_owned(),
            ("queued", false) => "Connecting you to an agent — please wait.".to_owned(),
            ("assigned", true) => format!("{name} 正在为您服务。"),
            ("assigned", false) => format!("{name} has joined the conversation."),
            ("ended", true) => "本次对话已结束。".to_owned(),
            (_, _) => "This conversation has ended.".to_owned(),
        };
        Body::Notice {
            code: code.to_owned(),
            text,
        }
    }
}

/// The engine input a stored visitor message stands for.
fn visitor_input(message: &StoredMessage) -> Option<Input> {
    match serde_json::from_str::<Body>(&message.body_json).ok()? {
        Body::Text { text } => Some(Input::Text(text)),
        Body::Choice { option, .. } => Some(Input::Choice(option)),
        _ => None,
    }
}

/// What the console sees of the bot's work in a conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    pub path: Vec<String>,
    pub variables: std::collections::BTreeMap<String, flows::Value>,
    pub state: State,
    pub routing: Routing,
}

/// What an agent or admin does to a conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ConsoleAction {
    /// Take it from the queue (`agent` is a user id, `name` what the visitor is told).
    Claim {
        agent: String,
        name: String,
    },
    /// To another agent (id, name), or back to the queue of a team.
    Transfer {
        by: String,
        agent: Option<(String, String)>,
        team: Option<String>,
        note: Option<String>,
    },
    Resolve {
        by: String,
    },
    /// The bot continues, at `node` or where the flow says.
    HandBack {
        by: String,
        node: Option<String>,
    },
    /// A message to the visitor (idempotent by `client_id`).
    Reply {
        agent: String,
        client_id: String,
        text: String,
    },
}

/// The conversation after a console action.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsoleOutcome {
    pub state: State,
    pub routing: Routing,
    /// The sequence number of the reply, for `Reply`.
    pub seq: Option<i64>,
}

/// Why a console action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ConsoleError {
    /// The conversation is not in a state that allows it (someone else was quicker).
    #[error("{0}")]
    Conflict(String),
    #[error("the conversation stopped; try again")]
    Gone,
}
