//! Group commit of messages and session states: one task owns the writes, takes every queued
//! request and stores them with a single [`Store::commit`] transaction, then answers each caller.
//!
//! A caller is answered only after its request is durable, so the chat gateway can acknowledge a
//! visitor message as soon as [`MessageWriter::append`] returns, and a conversation's turn (the
//! bot's messages and the session after them, [`MessageWriter::commit_turn`]) is stored whole or
//! not at all. There is no timer: while one batch is being committed the next requests queue up
//! and form the next batch, so batches grow with the load and a lone request is written at once.
//!
//! Batches are written one after another in arrival order, so a conversation's messages get their
//! sequence numbers in the order their appends reached the writer.
//!
//! Next to it, a small task writes the flow statistics conversations count in the store
//! (`stats.rs`) once a second while the writer runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot, watch};

/// How often the flow statistics counted in memory are written.
const STATS_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

use super::{NewMessage, NewSession, Store, StoreError, StoredMessage};

/// How the writer batches and how many requests may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// The most messages written in one transaction.
    pub max_batch: usize,
    /// How many requests may wait for the writer before [`MessageWriter::append`] waits too
    /// (back-pressure instead of unbounded memory).
    pub queue: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch: 512,
            queue: 8192,
        }
    }
}

/// Why an append through the writer failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The store refused this message (e.g. its conversation does not exist) or the database
    /// failed; the message was not stored.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer was closed before it accepted the message (which was then not stored), or its
    /// task ended abnormally (a panic, a bug) before answering; a resend with the same client id
    /// is safe either way.
    #[error("the message writer has stopped")]
    Stopped,
}

/// What the writer has done so far; for monitoring and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Committed `append_messages` transactions (a batch split after a failure counts each part).
    pub batches: u64,
    /// Messages answered with their stored message.
    pub messages: u64,
}

/// A handle to the writer task; cheap to clone. The task stops after [`close`](Self::close) or
/// when every handle is dropped, in both cases after writing and answering everything queued.
#[derive(Debug, Clone)]
pub struct MessageWriter {
    commands: mpsc::Sender<Command>,
    /// Its sender lives in the task, so `changed()` fails once the task has ended.
    stopped: watch::Receiver<()>,
    counters: Arc<Counters>,
}

#[derive(Debug)]
enum Command {
    Write(Request),
    Close,
}

/// Messages and at most one session state, stored together or not at all.
#[derive(Debug)]
struct Request {
    messages: Vec<NewMessage>,
    /// Messages their conversation's task has numbered itself.
    numbered: Vec<StoredMessage>,
    /// How many messages and numbered messages the request has (they are moved out while a
    /// batch is written).
    len: usize,
    numbered_len: usize,
    session: Option<NewSession>,
    reply: Reply,
}

type Reply = oneshot::Sender<Result<Vec<StoredMessage>, StoreError>>;

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    messages: AtomicU64,
}

impl MessageWriter {
    /// Starts the writer task on the current tokio runtime. A `max_batch` or `queue` of 0 is
    /// taken as 1.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn spawn(store: Store, config: WriterConfig) -> MessageWriter {
        let (commands, receiver) = mpsc::channel(config.queue.max(1));
        let (stopped_sender, stopped) = watch::channel(());
        let counters = Arc::new(Counters::default());
        tokio::spawn(flush_flow_stats(store.clone(), stopped.clone()));
        let task = Task {
            store,
            max_batch: config.max_batch.max(1),
            counters: Arc::clone(&counters),
            _stopped: stopped_sender,
        };
        tokio::spawn(task.run(receiver));
        MessageWriter {
            commands,
            stopped,
            counters,
        }
    }

    /// Stores `message` and returns it with its sequence number once it is committed.
    ///
    /// Cancelling the returned future does not withdraw a message the writer has accepted: it
    /// may still be stored (a resend with the same client id then returns it).
    pub async fn append(&self, message: NewMessage) -> Result<StoredMessage, WriteError> {
        let mut stored = self.write(vec![message], None).await?;
        stored.pop().ok_or(WriteError::Stopped)
    }

    /// Stores a conversation's turn, or part of one: messages its task has numbered (see
    /// [`Store::commit`]) and the session after them, in one transaction.
    pub async fn commit_turn(
        &self,
        numbered: Vec<StoredMessage>,
        session: Option<NewSession>,
    ) -> Result<(), WriteError> {
        self.request(Vec::new(), numbered, session).await.map(drop)
    }

    async fn write(
        &self,
        messages: Vec<NewMessage>,
        session: Option<NewSession>,
    ) -> Result<Vec<StoredMessage>, WriteError> {
        self.request(messages, Vec::new(), session).await
    }

    async fn request(
        &self,
        messages: Vec<NewMessage>,
        numbered: Vec<StoredMessage>,
        session: Option<NewSession>,
    ) -> Result<Vec<StoredMessage>, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Write(Request {
                len: messages.len(),
                numbered_len: numbered.len(),
                messages,
                numbered,
                session,
                reply,
            }))
            .await
            .map_err(|_| WriteError::Stopped)?;
        // A dropped reply means the task ended without answering (it panicked): the request may
        // or may not be stored, and the caller is told the writer stopped instead of waiting.
        Ok(answer.await.map_err(|_| WriteError::Stopped)??)
    }

    /// Stops accepting appends, waits until every accepted one is written and answered, and
    /// returns when the task has ended. Appends after this fail with [`WriteError::Stopped`].
    pub async fn close(&self) {
        // Fails only when the task has already ended.
        let _ = self.commands.send(Command::Close).await;
        let mut stopped = self.stopped.clone();
        // The value never changes; this returns when the task drops the sender.
        while stopped.changed().await.is_ok() {}
    }

    /// Batches committed and messages stored so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            messages: self.counters.messages.load(Ordering::Relaxed),
        }
    }
}

struct Task {
    store: Store,
    max_batch: usize,
    counters: Arc<Counters>,
    /// Dropped when the task ends, which wakes every `close()`.
    _stopped: watch::Sender<()>,
}

impl Task {
    async fn run(self, mut receiver: mpsc::Receiver<Command>) {
        let mut commands = Vec::with_capacity(self.max_batch);
        let mut batch = Vec::with_capacity(self.max_batch);
        // Returns 0 only when the channel is closed (by `close()` or by dropping every handle) and
        // empty, so everything accepted before is written first.
        while receiver.recv_many(&mut commands, self.max_batch).await > 0 {
            for command in commands.drain(..) {
                match command {
                    Command::Write(request) => batch.push(request),
                    // Refuses new sends; the ones already queued are still received.
                    Command::Close => receiver.close(),
                }
            }
            if !batch.is_empty() {
                self.write(std::mem::take(&mut batch)).await;
            }
        }
    }

    /// Writes `batch` in one transaction and answers every request. When the transaction fails
    /// it is rolled back as a whole, so the batch is retried in parts: the innocent requests are
    /// stored and each failing one gets its own error (`StoreError` is not `Clone`, and each
    /// error comes from the attempt that wrote that request alone).
    async fn write(&self, batch: Vec<Request>) {
        // A stack of parts still to write; the part on top is always the earliest, so arrival
        // order is kept.
        let mut pending = vec![batch];
        while let Some(mut part) = pending.pop() {
            let messages: Vec<NewMessage> = part
                .iter_mut()
                .flat_map(|request| std::mem::take(&mut request.messages))
                .collect();
            let numbered: Vec<StoredMessage> = part
                .iter_mut()
                .flat_map(|request| std::mem::take(&mut request.numbered))
                .collect();
            let sessions: Vec<NewSession> = part
                .iter()
                .filter_map(|request| request.session.clone())
                .collect();
            match self.store.commit(&messages, &numbered, &sessions).await {
                Ok(stored) => {
                    self.counters.batches.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .messages
                        .fetch_add((stored.len() + numbered.len()) as u64, Ordering::Relaxed);
                    let mut stored = stored.into_iter();
                    for request in part {
                        let mine: Vec<StoredMessage> = stored.by_ref().take(request.len).collect();
                        // The caller may have stopped waiting; its request is stored anyway.
                        let _ = request.reply.send(Ok(mine));
                    }
                }
                Err(error) => {
                    let mut part = restore(part, messages, numbered);
                    if part.len() == 1 {
                        if let Some(request) = part.pop() {
                            let _ = request.reply.send(Err(error));
                        }
                        continue;
                    }
                    if let StoreError::UnknownConversation(unknown) = &error {
                        // Everything for that conversation fails the same way; the rest is
                        // retried.
                        let (doomed, kept): (Vec<Request>, Vec<Request>) =
                            part.into_iter().partition(|r| r.touches(unknown));
                        if !doomed.is_empty() {
                            for request in doomed {
                                let error = StoreError::UnknownConversation(unknown.clone());
                                let _ = request.reply.send(Err(error));
                            }
                            if !kept.is_empty() {
                                pending.push(kept);
                            }
                            continue;
                        }
                        part = kept;
                    }
                    // Halving needs about 2·k·log₂ n transactions to isolate k bad requests.
                    tracing::warn!(%error, requests = part.len(), "a write batch failed; retrying it in halves");
                    let half = part.len() / 2;
                    let second = part.split_off(half);
                    pending.push(second);
                    pending.push(part);
                }
            }
        }
    }
}

/// Writes the store's flow statistics (`stats.rs`) every [`STATS_FLUSH`] while the writer
/// runs; what is counted after the last tick is written by `Store::close`.
async fn flush_flow_stats(store: Store, mut stopped: watch::Receiver<()>) {
    let mut ticks = tokio::time::interval(STATS_FLUSH);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(error) = store.flush_flow_stats().await {
                    tracing::warn!(%error, "flow statistics not written; retrying with the next flush");
                }
            }
            // Fails once the writer task has ended (its sender is dropped).
            changed = stopped.changed() => if changed.is_err() { return; }
        }
    }
}

impl Request {
    /// Whether this request writes to `conversation`.
    fn touches(&self, conversation: &str) -> bool {
        self.messages.iter().any(|m| m.conversation == conversation)
            || self.numbered.iter().any(|m| m.conversation == conversation)
            || self
                .session
                .as_ref()
                .is_some_and(|s| s.conversation == conversation)
    }
}

/// Gives each request of `part` its messages back (taken out in order for the batch).
fn restore(
    mut part: Vec<Request>,
    messages: Vec<NewMessage>,
    numbered: Vec<StoredMessage>,
) -> Vec<Request> {
    let mut messages = messages.into_iter();
    let mut numbered = numbered.into_iter();
    for request in &mut part {
        request.messages = messages.by_ref().take(request.len).collect();
        request.numbered = numbered.by_ref().take(request.numbered_len).collect();
    }
    part
}
