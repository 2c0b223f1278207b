//! Group commit of messages: one task owns the writes, takes every queued append and stores them
//! with a single [`Store::append_messages`] transaction, then answers each caller.
//!
//! A caller is answered only after its message is durable, so the chat gateway can acknowledge a
//! visitor message as soon as [`MessageWriter::append`] returns. There is no timer: while one
//! batch is being committed the next requests queue up and form the next batch, so batches grow
//! with the load and a lone message is written at once.
//!
//! Batches are written one after another in arrival order, so a conversation's messages get their
//! sequence numbers in the order their appends reached the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot, watch};

use super::{NewMessage, Store, StoreError, StoredMessage};

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
    Append(Request),
    /// Several messages that go into one batch, in this order.
    AppendAll(Vec<Request>),
    Close,
}

#[derive(Debug)]
struct Request {
    message: NewMessage,
    reply: Reply,
}

type Reply = oneshot::Sender<Result<StoredMessage, StoreError>>;

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
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Append(Request { message, reply }))
            .await
            .map_err(|_| WriteError::Stopped)?;
        // A dropped reply means the task ended without answering (it panicked): the message may
        // or may not be stored, and the caller is told the writer stopped instead of waiting.
        Ok(answer.await.map_err(|_| WriteError::Stopped)??)
    }

    /// Stores `messages` in this order, in one batch (so a conversation's messages get
    /// consecutive sequence numbers unless another task appends to it at the same time), and
    /// returns each stored message, or each message's own failure, once all are answered.
    pub async fn append_all(
        &self,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Result<StoredMessage, StoreError>>, WriteError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut answers = Vec::with_capacity(messages.len());
        let requests = messages
            .into_iter()
            .map(|message| {
                let (reply, answer) = oneshot::channel();
                answers.push(answer);
                Request { message, reply }
            })
            .collect();
        self.commands
            .send(Command::AppendAll(requests))
            .await
            .map_err(|_| WriteError::Stopped)?;
        let mut stored = Vec::with_capacity(answers.len());
        for answer in answers {
            stored.push(answer.await.map_err(|_| WriteError::Stopped)?);
        }
        Ok(stored)
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
                    Command::Append(request) => batch.push(request),
                    Command::AppendAll(requests) => batch.extend(requests),
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
    /// it is rolled back as a whole, so the batch is retried in parts: the innocent messages are
    /// stored and each failing one gets its own error (`StoreError` is not `Clone`, and each
    /// error comes from the attempt that wrote that message alone).
    async fn write(&self, batch: Vec<Request>) {
        let (messages, replies): (Vec<NewMessage>, Vec<Reply>) = batch
            .into_iter()
            .map(|request| (request.message, request.reply))
            .unzip();
        // A stack of parts still to write; the part on top is always the earliest, so arrival
        // order is kept.
        let mut pending = vec![(messages, replies)];
        while let Some((mut messages, mut replies)) = pending.pop() {
            match self.store.append_messages(&messages).await {
                Ok(stored) => {
                    self.counters.batches.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .messages
                        .fetch_add(stored.len() as u64, Ordering::Relaxed);
                    for (reply, stored) in replies.into_iter().zip(stored) {
                        // The caller may have stopped waiting; its message is stored anyway.
                        let _ = reply.send(Ok(stored));
                    }
                }
                Err(error) if messages.len() == 1 => {
                    if let Some(reply) = replies.pop() {
                        let _ = reply.send(Err(error));
                    }
                }
                Err(StoreError::UnknownConversation(unknown)) => {
                    // Everything for that conversation fails the same way; the rest is retried.
                    let mut kept = (Vec::new(), Vec::new());
                    for (message, reply) in messages.into_iter().zip(replies) {
                        if message.conversation == unknown {
                            let error = StoreError::UnknownConversation(unknown.clone());
                            let _ = reply.send(Err(error));
                        } else {
                            kept.0.push(message);
                            kept.1.push(reply);
                        }
                    }
                    if !kept.0.is_empty() {
                        pending.push(kept);
                    }
                }
                Err(error) => {
                    // Halving needs about 2·k·log₂ n transactions to isolate k bad messages.
                    tracing::warn!(%error, messages = messages.len(), "message batch failed; retrying it in halves");
                    let half = messages.len() / 2;
                    let second = (messages.split_off(half), replies.split_off(half));
                    pending.push(second);
                    pending.push((messages, replies));
                }
            }
        }
    }
}
