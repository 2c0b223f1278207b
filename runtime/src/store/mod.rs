//! Durable storage of the session runtime: flows and their published versions, conversations,
//! messages, events and session states, on SQLite (the embedded default), PostgreSQL or
//! MySQL/MariaDB, with the same behaviour on all three.
//!
//! # Schema
//!
//! The migrations live in `runtime/migrations/{sqlite,postgres,mysql}/` and are embedded in the
//! binary; [`Store::migrate`] applies the ones a database lacks (running it again is a no-op).
//! Times are Unix milliseconds in 64-bit integers; JSON documents are text, stored and returned
//! byte-for-byte (MySQL tables are utf8mb4, so Chinese text and emoji survive).
//!
//! - `flow_versions (flow_id, version)`: published flow documents with their content hash. A
//!   published version is immutable: publishing it again with another hash is refused. Since
//!   `0004` each version may carry a note, a time and an author (`drafts.rs`).
//! - `flow_drafts (flow_id)`: the designer's one draft per flow, saved with a compare-and-set
//!   on its `revision` (`drafts.rs`).
//! - `flow_stats (flow_id, version, stat_key)`: how often each node and edge of a flow version
//!   was taken, incremented by upserts (`stats.rs`).
//! - `conversations (id)`: the flow version a conversation is pinned to, its owner and status,
//!   and two counters, `last_message_seq` and `last_event_seq`.
//! - `messages (conversation_id, seq)`, unique on `(conversation_id, client_id)`.
//! - `events (conversation_id, seq)`: one per state change.
//! - `sessions (conversation_id)`: only the latest session state (an older turn never replaces a
//!   newer one).
//!
//! # Sequence numbers and locking
//!
//! Messages and events are numbered 1, 2, 3, … per conversation, without gaps or duplicates, even
//! when several tasks or processes append to one conversation at once. The counter is the
//! conversation's own row: a write transaction first locks that row and reads the counter
//! (`SELECT … FOR UPDATE` on PostgreSQL and MySQL; on SQLite `BEGIN IMMEDIATE` already holds the
//! database's single write lock), inserts the rows numbered after it, stores the new counter and
//! commits. A concurrent writer waits on the lock and then reads the committed counter, so
//! numbers are never taken twice, and a rollback gives its numbers back. Because the lock is held
//! until commit, a conversation's messages also become visible in sequence order: a reader that
//! sees message `n` has already been able to see every message before it, which is what lets a
//! reconnecting client resume from its last sequence number.
//!
//! [`Store::append_messages`] writes a whole batch, across many conversations, in one transaction
//! (group commit: one durable flush for the batch). It locks the conversations in sorted order, so
//! two batches never wait on each other in a cycle. MySQL connections run at READ COMMITTED so that
//! a read after a lock sees what the previous lock holder committed.
//!
//! A message with a client id is idempotent: when `(conversation, client_id)` is already stored
//! (or appears earlier in the same batch) the stored message is returned instead of a new one.
//! The check runs under the conversation lock, so concurrent resends cannot both insert.

mod error;
mod sql;
mod types;
mod writer;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Executor, MySqlPool, PgPool, SqlitePool};

pub use accounts::{NewUser, Team, User};
pub use console::{ListView, Note};
pub use drafts::{Draft, DraftSaved, NewVersion, VersionInfo, VersionPublished};
pub use error::{Result, StoreError};
pub use types::{
    Backend, Conversation, FlowVersion, NewConversation, NewEvent, NewMessage, NewSession,
    Published, Routing, Sender, SessionState, StoredEvent, StoredFlow, StoredMessage,
};
pub use writer::{MessageWriter, WriteError, WriterConfig, WriterStats};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
static MYSQL_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/mysql");

/// Rows per multi-row message insert: seven binds a row stays under SQLite's historical limit of
/// 999 variables per statement (PostgreSQL and MySQL allow 65,535).
const MESSAGES_PER_INSERT: usize = 999 / 7;

/// Client ids per lookup query (plus the conversation id: under 999 variables).
const CLIENT_IDS_PER_QUERY: usize = 900;

/// Conversations per counter update (three variables each: under 999).
const COUNTERS_PER_UPDATE: usize = 999 / 3;

/// Rows per multi-row session upsert (three variables each: under 999).
const SESSIONS_PER_UPSERT: usize = 999 / 3;

/// Messages per query when [`Store::messages_since`] reads a conversation's backlog.
const MESSAGES_PER_PAGE: u32 = 500;

/// How long a SQLite writer waits for the write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection pool to one database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// Flow statistics counted and not yet written (`stats.rs`).
    pending: std::sync::Arc<stats::PendingStats>,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool and `$sql` to the statements of its
/// dialect, chosen from `(sqlite, postgres, mysql)`. The body is the same text for every
/// backend; only the SQL differs. `with_pool!` uses the core statements (`sql.rs`); `accounts.rs`
/// and `console.rs` pass their own.
macro_rules! with_dialect {
    ($store:expr, $pool:ident, $sql:ident = ($sqlite:expr, $postgres:expr, $mysql:expr) => $body:block) => {
        match &$store.pool {
            Pool::Sqlite($pool) => {
                let $sql = $sqlite;
                $body
            }
            Pool::Postgres($pool) => {
                let $sql = $postgres;
                $body
            }
            Pool::MySql($pool) => {
                let $sql = $mysql;
                $body
            }
        }
    };
}

macro_rules! with_pool {
    ($store:expr, $pool:ident, $sql:ident => $body:block) => {
        with_dialect!($store, $pool, $sql = (&sql::SQLITE, &sql::POSTGRES, &sql::MYSQL) => $body)
    };
}

/// Opens a write transaction the way the dialect needs (see `Sql::begin_write`).
macro_rules! begin_write {
    ($pool:ident, $sql:ident) => {
        match $sql.begin_write {
            Some(statement) => $pool.begin_with(statement).await?,
            None => $pool.begin().await?,
        }
    };
}

// After the macros, which they use.
mod accounts;
mod console;
mod drafts;
mod grants;
mod nodes;
mod stats;

pub use grants::{GrantRow, PolicyRevision};
pub use nodes::NodeOwner;
pub use stats::{FlowStat, StatKey};

type FlowRow = (String, i64, String, String);
type ConversationRow = (
    String,
    String,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);
type MessageRow = (i64, String, String, String, Option<String>, i64);
type EventRow = (i64, i64, String, String);

impl Store {
    /// Connects to `sqlite://PATH?mode=rwc` (or `sqlite::memory:`), `postgres://…` or
    /// `mysql://…`. Call [`migrate`](Self::migrate) before using a new database.
    pub async fn connect(url: &str) -> Result<Store> {
        let scheme = url.split(':').next().unwrap_or_default();
        let pool = match scheme {
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
                    // Measured with `loadgen chat` (docs/benchmarks.md): a 16 MiB page cache per
                    // connection instead of 2 MiB, and checkpoints every 10,000 WAL pages
                    // instead of 1,000, took 1,000 chatting visitors from 9.6k to 14.3k stored
                    // messages per second; larger values gained little more.
                    .pragma("cache_size", "-16000")
                    .pragma("wal_autocheckpoint", "10000");
                // Every connection to an in-memory database would get its own empty database.
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                let max = if in_memory { 1 } else { 8 };
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(max)
                        .connect_with(options)
                        .await?,
                )
            }
            "postgres" | "postgresql" => Pool::Postgres(PgPoolOptions::new().connect(url).await?),
            "mysql" | "mariadb" => {
                let options = MySqlConnectOptions::from_str(url)?;
                let pool = MySqlPoolOptions::new()
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            connection
                                .execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?;
                Pool::MySql(pool)
            }
            other => {
                return Err(StoreError::UnsupportedUrl {
                    scheme: other.to_owned(),
                });
            }
        };
        Ok(Store {
            pool,
            pending: std::sync::Arc::default(),
        })
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
            Pool::MySql(_) => Backend::MySql,
        }
    }

    /// Applies the embedded migrations the database lacks; running it again changes nothing.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
            Pool::MySql(pool) => MYSQL_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Writes the flow statistics still counted in memory, then closes every connection,
    /// waiting for the ones in use to be returned.
    pub async fn close(&self) {
        if let Err(error) = self.flush_flow_stats().await {
            tracing::warn!(%error, "flow statistics not written before closing the database");
        }
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
            Pool::MySql(pool) => pool.close().await,
        }
    }

    /// Publishes a flow version. Publishing the same id and version again is a no-op when the
    /// hash is the same and an error when it differs: a published version never changes.
    pub async fn publish_flow(
        &self,
        id: &str,
        version: u32,
        hash: &str,
        json: &str,
    ) -> Result<Published> {
        let conflict = |existing: String| StoreError::FlowVersionConflict {
            id: id.to_owned(),
            version,
            existing,
            attempted: hash.to_owned(),
        };
        with_pool!(self, pool, sql => {
            let existing: Option<String> = sqlx::query_scalar(sql.flow_hash)
                .bind(id)
                .bind(i64::from(version))
                .fetch_optional(pool)
                .await?;
            match existing {
                Some(existing) if existing == hash => return Ok(Published::Unchanged),
                Some(existing) => return Err(conflict(existing)),
                None => {}
            }
            let inserted = sqlx::query(sql.insert_flow)
                .bind(id)
                .bind(i64::from(version))
                .bind(hash)
                .bind(json)
                .execute(pool)
                .await;
            match inserted {
                Ok(_) => Ok(Published::New),
                // Someone published the same version in between: compare with theirs.
                Err(error) if is_unique_violation(&error) => {
                    let existing: Option<String> = sqlx::query_scalar(sql.flow_hash)
                        .bind(id)
                        .bind(i64::from(version))
                        .fetch_optional(pool)
                        .await?;
                    match existing {
                        Some(existing) if existing == hash => Ok(Published::Unchanged),
                        Some(existing) => Err(conflict(existing)),
                        None => Err(error.into()),
                    }
                }
                Err(error) => Err(error.into()),
            }
        })
    }

    /// One published version of a flow.
    pub async fn flow_version(&self, id: &str, version: u32) -> Result<Option<StoredFlow>> {
        let row: Option<FlowRow> = with_pool!(self, pool, sql => {
            sqlx::query_as(sql.flow_version)
                .bind(id)
                .bind(i64::from(version))
                .fetch_optional(pool)
                .await?
        });
        row.map(flow_from_row).transpose()
    }

    /// The highest published version of a flow.
    pub async fn latest_flow(&self, id: &str) -> Result<Option<StoredFlow>> {
        let row: Option<FlowRow> = with_pool!(self, pool, sql => {
            sqlx::query_as(sql.latest_flow).bind(id).fetch_optional(pool).await?
        });
        row.map(flow_from_row).transpose()
    }

    /// Every published version of a flow, lowest first.
    pub async fn flow_versions(&self, id: &str) -> Result<Vec<FlowVersion>> {
        let rows: Vec<(i64, String)> = with_pool!(self, pool, sql => {
            sqlx::query_as(sql.flow_versions).bind(id).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|(version, hash)| {
                Ok(FlowVersion {
                    version: version_from_db(version)?,
                    hash,
                })
            })
            .collect()
    }

    /// Creates a conversation; its id must be new.
    pub async fn create_conversation(&self, new: &NewConversation) -> Result<()> {
        let inserted = with_pool!(self, pool, sql => {
            sqlx::query(sql.insert_conversation)
                .bind(&new.id)
                .bind(&new.flow_id)
                .bind(i64::from(new.flow_version))
                .bind(&new.flow_hash)
                .bind(&new.owner)
                .bind(&new.status)
                .bind(new.created_at)
                .bind(&new.node)
                .execute(pool)
                .await
                .map(drop)
        });
        match inserted {
            Ok(()) => Ok(()),
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::ConversationExists(new.id.clone()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Creates a conversation with its first event (sequence number 1) and its first saved
    /// session, in one transaction: a conversation never exists without them.
    pub async fn create_conversation_with(
        &self,
        new: &NewConversation,
        event: &NewEvent,
        session: &NewSession,
    ) -> Result<()> {
        with_pool!(self, pool, sql => {
            let mut tx = begin_write!(pool, sql);
            let inserted = sqlx::query(sql.insert_conversation)
                .bind(&new.id)
                .bind(&new.flow_id)
                .bind(i64::from(new.flow_version))
                .bind(&new.flow_hash)
                .bind(&new.owner)
                .bind(&new.status)
                .bind(new.created_at)
                .bind(&new.node)
                .execute(&mut *tx)
                .await;
            match inserted {
                Ok(_) => {}
                Err(error) if is_unique_violation(&error) => {
                    return Err(StoreError::ConversationExists(new.id.clone()));
                }
                Err(error) => return Err(error.into()),
            }
            sqlx::query(sql.insert_event)
                .bind(&new.id)
                .bind(1_i64)
                .bind(event.at)
                .bind(&event.kind)
                .bind(&event.data_json)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sql.update_state)
                .bind(&new.owner)
                .bind(&new.status)
                .bind(1_i64)
                .bind(&new.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sql.save_session)
                .bind(&session.conversation)
                .bind(session.turn)
                .bind(&session.json)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// A conversation, if it exists.
    pub async fn conversation(&self, id: &str) -> Result<Option<Conversation>> {
        let row: Option<ConversationRow> = with_pool!(self, pool, sql => {
            sqlx::query_as(sql.conversation).bind(id).fetch_optional(pool).await?
        });
        row.map(console::conversation_from_row).transpose()
    }

    /// The ids of every conversation that has not ended, oldest first: the ones to bring back
    /// after a restart.
    pub async fn open_conversations(&self) -> Result<Vec<String>> {
        Ok(with_pool!(self, pool, sql => {
            sqlx::query_scalar(sql.open_conversations).fetch_all(pool).await?
        }))
    }

    /// Sets a conversation's owner and status and appends `event`, in one transaction; returns
    /// the stored event with its sequence number.
    pub async fn set_state(
        &self,
        id: &str,
        owner: &str,
        status: &str,
        event: &NewEvent,
    ) -> Result<StoredEvent> {
        self.change_state(id, owner, status, event, None).await
    }

    /// [`set_state`](Self::set_state) that also sets the conversation's routing and
    /// assignment, in the same transaction.
    pub async fn set_state_routed(
        &self,
        id: &str,
        owner: &str,
        status: &str,
        event: &NewEvent,
        routing: &Routing,
    ) -> Result<StoredEvent> {
        self.change_state(id, owner, status, event, Some(routing))
            .await
    }

    async fn change_state(
        &self,
        id: &str,
        owner: &str,
        status: &str,
        event: &NewEvent,
        routing: Option<&Routing>,
    ) -> Result<StoredEvent> {
        with_pool!(self, pool, sql => {
            let mut tx = begin_write!(pool, sql);
            let last: Option<i64> = sqlx::query_scalar(sql.lock_event_counter)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(last) = last else {
                return Err(StoreError::UnknownConversation(id.to_owned()));
            };
            let seq = last + 1;
            sqlx::query(sql.update_state)
                .bind(owner)
                .bind(status)
                .bind(seq)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sql.insert_event)
                .bind(id)
                .bind(seq)
                .bind(event.at)
                .bind(&event.kind)
                .bind(&event.data_json)
                .execute(&mut *tx)
                .await?;
            if let Some(routing) = routing {
                let updated = sqlx::query(sql.update_routing)
                    .bind(routing.queue.as_deref())
                    .bind(routing.team.as_deref())
                    .bind(routing.priority.as_deref())
                    .bind(routing.priority_rank())
                    .bind(routing.reason.as_deref())
                    .bind(routing.assignee.as_deref())
                    .bind(routing.handed_off_at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await;
                match updated {
                    Ok(_) => {}
                    Err(sqlx::Error::Database(error)) if error.is_foreign_key_violation() => {
                        return Err(StoreError::UnknownUser(
                            routing.assignee.clone().unwrap_or_default(),
                        ));
                    }
                    Err(error) => return Err(error.into()),
                }
                // Whoever has it now has served it: kept after a transfer
                // (`agent.service_history`).
                if let Some(assignee) = &routing.assignee {
                    sqlx::query(sql.insert_served)
                        .bind(assignee)
                        .bind(id)
                        .bind(event.at)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(StoredEvent {
                conversation: id.to_owned(),
                seq,
                at: event.at,
                kind: event.kind.clone(),
                data_json: event.data_json.clone(),
            })
        })
    }

    /// The events of a conversation after sequence number `seq`, in order.
    pub async fn events_after(&self, conversation: &str, seq: i64) -> Result<Vec<StoredEvent>> {
        let rows: Vec<EventRow> = with_pool!(self, pool, sql => {
            sqlx::query_as(sql.events_after)
                .bind(conversation)
                .bind(seq)
                .fetch_all(pool)
                .await?
        });
        if rows.is_empty() {
            self.require_conversation(conversation).await?;
        }
        Ok(rows
            .into_iter()
            .map(|(seq, at, kind, data_json)| StoredEvent {
                conversation: conversation.to_owned(),
                seq,
                at,
                kind,
                data_json,
            })
            .collect())
    }

    /// Appends a batch of messages, for any number of conversations, in one transaction, and
    /// returns the stored message for each input in input order. Each conversation's new messages
    /// get the next sequence numbers in input order. A message whose `(conversation, client_id)`
    /// is already stored, or appears earlier in the batch, is not stored again: its entry is the
    /// stored message. An unknown conversation fails the whole batch.
    pub async fn append_messages(&self, messages: &[NewMessage]) -> Result<Vec<StoredMessage>> {
        self.commit(messages, &[], &[]).await
    }

    /// [`append_messages`](Self::append_messages), messages numbered by their writer, and
    /// [`save_session`](Self::save_session), for many conversations in one transaction: a
    /// conversation's turn (the messages it produced and the session after it) becomes durable
    /// at once, and many turns share one flush. Of several sessions of one conversation the one
    /// with the highest turn is saved.
    ///
    /// `numbered` messages carry their sequence number: the conversation's single writer (its
    /// task) numbers them, which saves locking and reading the counter. A number or client id
    /// that is already taken fails the whole transaction with [`StoreError::MessageExists`]; the
    /// counter is set to the highest number written.
    pub async fn commit(
        &self,
        messages: &[NewMessage],
        numbered: &[StoredMessage],
        sessions: &[NewSession],
    ) -> Result<Vec<StoredMessage>> {
        if messages.is_empty() && numbered.is_empty() && sessions.is_empty() {
            return Ok(Vec::new());
        }
        let mut tops: BTreeMap<&str, i64> = BTreeMap::new();
        for message in numbered {
            let top = tops.entry(message.conversation.as_str()).or_insert(0);
            *top = (*top).max(message.seq);
        }
        // The latest session of each conversation (an upsert may not touch a row twice).
        let mut latest: BTreeMap<&str, &NewSession> = BTreeMap::new();
        for session in sessions {
            let entry = latest
                .entry(session.conversation.as_str())
                .or_insert(session);
            if session.turn > entry.turn {
                *entry = session;
            }
        }
        let sessions: Vec<&NewSession> = latest.into_values().collect();
        // Sorted, so that conversations are always locked in the same order (no deadlocks).
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (index, message) in messages.iter().enumerate() {
            groups
                .entry(message.conversation.as_str())
                .or_default()
                .push(index);
        }
        let mut stored: Vec<Option<StoredMessage>> = vec![None; messages.len()];
        with_pool!(self, pool, sql => {
            // How the database compares client ids, for matching them here.
            let key = |client_id: &'_ str| -> String {
                if sql.client_id_pads_spaces {
                    client_id.trim_end_matches(' ').to_owned()
                } else {
                    client_id.to_owned()
                }
            };
            let mut tx = begin_write!(pool, sql);
            // Indices of the inputs to insert, grouped by conversation and in sequence order.
            let mut new_rows: Vec<usize> = Vec::new();
            // The new counter of each conversation that got messages.
            let mut counters: Vec<(&str, i64)> = Vec::new();
            for (&conversation, indices) in &groups {
                let last: Option<i64> = sqlx::query_scalar(sql.lock_message_counter)
                    .bind(conversation)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(start) = last else {
                    return Err(StoreError::UnknownConversation(conversation.to_owned()));
                };
                // The stored messages answering this conversation's client ids, read under the lock.
                let mut client_ids: Vec<&str> = Vec::new();
                let mut asked: HashSet<&str> = HashSet::new();
                for &index in indices {
                    if let Some(client_id) = messages[index].client_id.as_deref()
                        && asked.insert(client_id)
                    {
                        client_ids.push(client_id);
                    }
                }
                let mut existing: HashMap<String, StoredMessage> = HashMap::new();
                for chunk in client_ids.chunks(CLIENT_IDS_PER_QUERY) {
                    let mut query = sqlx::QueryBuilder::new(sql.messages_by_client_ids);
                    query.push_bind(conversation).push(" AND client_id IN (");
                    let mut list = query.separated(", ");
                    for &client_id in chunk {
                        list.push_bind(client_id);
                    }
                    query.push(")");
                    let rows: Vec<MessageRow> =
                        query.build_query_as().fetch_all(&mut *tx).await?;
                    for row in rows {
                        let message = message_from_row(conversation, row)?;
                        if let Some(client_id) = message.client_id.as_deref() {
                            existing.insert(key(client_id), message);
                        }
                    }
                }
                let mut last = start;
                // Client id → index of the input whose stored message answers it.
                let mut by_client_id: HashMap<String, usize> = HashMap::new();
                for &index in indices {
                    let message = &messages[index];
                    if let Some(client_id) = message.client_id.as_deref() {
                        let client_key = key(client_id);
                        if let Some(&first) = by_client_id.get(&client_key) {
                            stored[index] = stored[first].clone();
                            continue;
                        }
                        if let Some(found) = existing.remove(&client_key) {
                            stored[index] = Some(found);
                            by_client_id.insert(client_key, index);
                            continue;
                        }
                        by_client_id.insert(client_key, index);
                    }
                    last += 1;
                    stored[index] = Some(StoredMessage {
                        conversation: conversation.to_owned(),
                        seq: last,
                        sender: message.sender,
                        kind: message.kind.clone(),
                        body_json: message.body_json.clone(),
                        client_id: message.client_id.clone(),
                        at: message.at,
                    });
                    new_rows.push(index);
                }
                if last != start {
                    counters.push((conversation, last));
                }
            }
            // Every conversation is locked: insert the new messages, many rows per statement.
            for chunk in new_rows.chunks(MESSAGES_PER_INSERT) {
                let mut query = sqlx::QueryBuilder::new(sql.insert_messages);
                query.push_values(chunk, |mut row, &index| {
                    let message = &messages[index];
                    let seq = stored[index].as_ref().map_or(0, |stored| stored.seq);
                    row.push_bind(message.conversation.as_str())
                        .push_bind(seq)
                        .push_bind(message.sender.as_str())
                        .push_bind(message.kind.as_str())
                        .push_bind(message.body_json.as_str())
                        .push_bind(message.client_id.as_deref())
                        .push_bind(message.at);
                });
                query.build().execute(&mut *tx).await?;
            }
            for chunk in counters.chunks(COUNTERS_PER_UPDATE) {
                let mut query = sqlx::QueryBuilder::new(sql.set_message_counters);
                for &(conversation, last) in chunk {
                    query
                        .push(" WHEN ")
                        .push_bind(conversation)
                        .push(" THEN ")
                        .push_bind(last);
                }
                query.push(" END WHERE id IN (");
                let mut ids = query.separated(", ");
                for &(conversation, _) in chunk {
                    ids.push_bind(conversation);
                }
                query.push(")");
                query.build().execute(&mut *tx).await?;
            }
            for chunk in numbered.chunks(MESSAGES_PER_INSERT) {
                let mut query = sqlx::QueryBuilder::new(sql.insert_messages);
                query.push_values(chunk, |mut row, message| {
                    row.push_bind(message.conversation.as_str())
                        .push_bind(message.seq)
                        .push_bind(message.sender.as_str())
                        .push_bind(message.kind.as_str())
                        .push_bind(message.body_json.as_str())
                        .push_bind(message.client_id.as_deref())
                        .push_bind(message.at);
                });
                match query.build().execute(&mut *tx).await {
                    Ok(_) => {}
                    Err(error) if is_unique_violation(&error) => {
                        return Err(StoreError::MessageExists);
                    }
                    Err(sqlx::Error::Database(error)) if error.is_foreign_key_violation() => {
                        return Err(StoreError::UnknownConversation(
                            chunk.first().map(|m| m.conversation.clone()).unwrap_or_default(),
                        ));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            let tops: Vec<(&str, i64)> = tops.into_iter().collect();
            for chunk in tops.chunks(COUNTERS_PER_UPDATE) {
                let mut query = sqlx::QueryBuilder::new(sql.set_message_counters);
                for &(conversation, last) in chunk {
                    query
                        .push(" WHEN ")
                        .push_bind(conversation)
                        .push(" THEN ")
                        .push_bind(last);
                }
                query.push(" END WHERE id IN (");
                let mut ids = query.separated(", ");
                for &(conversation, _) in chunk {
                    ids.push_bind(conversation);
                }
                query.push(")");
                query.build().execute(&mut *tx).await?;
            }
            for chunk in sessions.chunks(SESSIONS_PER_UPSERT) {
                let mut query = sqlx::QueryBuilder::new(sql.insert_sessions);
                query.push_values(chunk, |mut row, session| {
                    row.push_bind(session.conversation.as_str())
                        .push_bind(session.turn)
                        .push_bind(session.json.as_str());
                });
                query.push(sql.upsert_sessions);
                if let Err(error) = query.build().execute(&mut *tx).await {
                    return Err(match error {
                        sqlx::Error::Database(e) if e.is_foreign_key_violation() => {
                            StoreError::UnknownConversation(
                                chunk.first().map(|s| s.conversation.clone()).unwrap_or_default(),
                            )
                        }
                        other => other.into(),
                    });
                }
            }
            tx.commit().await?;
        });
        stored
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| StoreError::Corrupt("a message of the batch was not stored".to_owned()))
    }

    /// At most `limit` messages of a conversation after sequence number `seq`, in order.
    pub async fn messages_after(
        &self,
        conversation: &str,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        let rows: Vec<MessageRow> = with_pool!(self, pool, sql => {
            sqlx::query_as(sql.messages_after)
                .bind(conversation)
                .bind(seq)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        if rows.is_empty() {
            self.require_conversation(conversation).await?;
        }
        rows.into_iter()
            .map(|row| message_from_row(conversation, row))
            .collect()
    }

    /// The stored message of a conversation with this client id, if there is one.
    pub async fn message_by_client_id(
        &self,
        conversation: &str,
        client_id: &str,
    ) -> Result<Option<StoredMessage>> {
        let rows: Vec<MessageRow> = with_pool!(self, pool, sql => {
            let mut query = sqlx::QueryBuilder::new(sql.messages_by_client_ids);
            query
                .push_bind(conversation)
                .push(" AND client_id = ")
                .push_bind(client_id);
            query.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter()
            .next()
            .map(|row| message_from_row(conversation, row))
            .transpose()
    }

    /// Every message of a conversation after sequence number `seq`, in order (read in pages of
    /// `MESSAGES_PER_PAGE`).
    pub async fn messages_since(&self, conversation: &str, seq: i64) -> Result<Vec<StoredMessage>> {
        let mut all = Vec::new();
        let mut after = seq;
        loop {
            let page = self
                .messages_after(conversation, after, MESSAGES_PER_PAGE)
                .await?;
            let full = page.len() == MESSAGES_PER_PAGE as usize;
            if let Some(last) = page.last() {
                after = last.seq;
            }
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Saves a conversation's session state after `turn`, replacing the saved one unless that is
    /// from a later turn (a late, stale save never overwrites a newer state).
    pub async fn save_session(&self, conversation: &str, turn: i64, json: &str) -> Result<()> {
        let saved = with_pool!(self, pool, sql => {
            sqlx::query(sql.save_session)
                .bind(conversation)
                .bind(turn)
                .bind(json)
                .execute(pool)
                .await
                .map(drop)
        });
        match saved {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(error)) if error.is_foreign_key_violation() => {
                Err(StoreError::UnknownConversation(conversation.to_owned()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The latest saved session state of a conversation (`None`: never saved).
    pub async fn load_session(&self, conversation: &str) -> Result<Option<SessionState>> {
        let row: Option<(i64, String)> = with_pool!(self, pool, sql => {
            sqlx::query_as(sql.load_session)
                .bind(conversation)
                .fetch_optional(pool)
                .await?
        });
        match row {
            Some((turn, json)) => Ok(Some(SessionState {
                conversation: conversation.to_owned(),
                turn,
                json,
            })),
            None => {
                self.require_conversation(conversation).await?;
                Ok(None)
            }
        }
    }

    /// Fails with [`StoreError::UnknownConversation`] unless the conversation exists.
    async fn require_conversation(&self, id: &str) -> Result<()> {
        let found = with_pool!(self, pool, sql => {
            sqlx::query(sql.conversation_exists)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .is_some()
        });
        if found {
            Ok(())
        } else {
            Err(StoreError::UnknownConversation(id.to_owned()))
        }
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error) if error.is_unique_violation())
}

fn version_from_db(version: i64) -> Result<u32> {
    u32::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("flow version {version} is out of range")))
}

fn flow_from_row((id, version, hash, json): FlowRow) -> Result<StoredFlow> {
    Ok(StoredFlow {
        id,
        version: version_from_db(version)?,
        hash,
        json,
    })
}

fn message_from_row(conversation: &str, row: MessageRow) -> Result<StoredMessage> {
    let (seq, sender, kind, body_json, client_id, at) = row;
    Ok(StoredMessage {
        conversation: conversation.to_owned(),
        seq,
        sender: sender.parse()?,
        kind,
        body_json,
        client_id,
        at,
    })
}
