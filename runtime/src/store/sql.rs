//! The SQL text of every statement, once per dialect; the logic that runs them is shared.
//!
//! SQLite and MySQL take `?` placeholders, PostgreSQL `$1, $2, …`. Statements whose text is the
//! same apart from placeholders are written twice rather than rewritten at run time, so every
//! statement is a `&'static str` that sqlx can prepare and cache.

/// The statements of one dialect.
pub(super) struct Sql {
    /// The statement that opens a write transaction (`None`: the driver's plain `BEGIN`).
    pub begin_write: Option<&'static str>,
    pub flow_hash: &'static str,
    pub insert_flow: &'static str,
    pub flow_version: &'static str,
    pub latest_flow: &'static str,
    pub flow_versions: &'static str,
    pub insert_conversation: &'static str,
    pub conversation: &'static str,
    pub conversation_exists: &'static str,
    /// The ids of the conversations that have not ended, oldest first.
    pub open_conversations: &'static str,
    /// Reads `last_message_seq` and holds the conversation row until commit.
    pub lock_message_counter: &'static str,
    /// Start of the update of several conversations' `last_message_seq`; the caller appends
    /// `WHEN id THEN seq …  END WHERE id IN (…)` with placeholders (`sqlx::QueryBuilder`).
    pub set_message_counters: &'static str,
    /// Start of the query for stored messages of one conversation by client id; the caller appends
    /// the conversation bind and `AND client_id IN (…)` with placeholders (`sqlx::QueryBuilder`).
    pub messages_by_client_ids: &'static str,
    /// Start of the multi-row message insert; the caller appends `VALUES (…), (…)` with
    /// placeholders (`sqlx::QueryBuilder::push_values`), seven columns per row.
    pub insert_messages: &'static str,
    /// Whether the `client_id` comparison ignores trailing spaces (MySQL/MariaDB `utf8mb4_bin` is
    /// a PAD SPACE collation), so that `"a"` and `"a "` are the same client id.
    pub client_id_pads_spaces: bool,
    pub messages_after: &'static str,
    /// Reads `last_event_seq` and holds the conversation row until commit.
    pub lock_event_counter: &'static str,
    pub update_state: &'static str,
    /// Sets the console's columns: queue, team, priority, reason, assignee, handed_off_at.
    pub update_routing: &'static str,
    /// Remembers that an agent had the conversation (`conversation_agents`), and when they last
    /// got it (the newest served come first in `agent.service_history`).
    pub insert_served: &'static str,
    pub insert_event: &'static str,
    pub events_after: &'static str,
    pub save_session: &'static str,
    /// Start of the multi-row session upsert; the caller appends `VALUES (…), (…)` (three
    /// columns per row) and then `upsert_sessions`. At most one row per conversation.
    pub insert_sessions: &'static str,
    pub upsert_sessions: &'static str,
    pub load_session: &'static str,
}

/// SQLite: `BEGIN IMMEDIATE` takes the database's write lock up front, so the counter read
/// needs no row lock, and a waiting writer goes through the busy timeout instead of failing
/// with `SQLITE_BUSY` when it upgrades a read transaction.
pub(super) const SQLITE: Sql = Sql {
    begin_write: Some("BEGIN IMMEDIATE"),
    flow_hash: "SELECT hash FROM flow_versions WHERE flow_id = ? AND version = ?",
    insert_flow: "INSERT INTO flow_versions (flow_id, version, hash, document) VALUES (?, ?, ?, ?)",
    flow_version: "SELECT flow_id, version, hash, document FROM flow_versions WHERE flow_id = ? AND version = ?",
    latest_flow: "SELECT flow_id, version, hash, document FROM flow_versions WHERE flow_id = ? ORDER BY version DESC LIMIT 1",
    flow_versions: "SELECT version, hash FROM flow_versions WHERE flow_id = ? ORDER BY version",
    insert_conversation: "INSERT INTO conversations (id, flow_id, flow_version, flow_hash, owner, status, created_at, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    conversation: "SELECT id, flow_id, flow_version, flow_hash, owner, status, created_at, last_message_seq, last_event_seq, queue, team, priority, reason, assignee, handed_off_at FROM conversations WHERE id = ?",
    conversation_exists: "SELECT 1 FROM conversations WHERE id = ?",
    open_conversations: "SELECT id FROM conversations WHERE status <> 'ended' ORDER BY created_at, id",
    lock_message_counter: "SELECT last_message_seq FROM conversations WHERE id = ?",
    set_message_counters: "UPDATE conversations SET last_message_seq = CASE id",
    messages_by_client_ids: "SELECT seq, sender, kind, body, client_id, at FROM messages WHERE conversation_id = ",
    insert_messages: "INSERT INTO messages (conversation_id, seq, sender, kind, body, client_id, at) ",
    client_id_pads_spaces: false,
    messages_after: "SELECT seq, sender, kind, body, client_id, at FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
    lock_event_counter: "SELECT last_event_seq FROM conversations WHERE id = ?",
    update_state: "UPDATE conversations SET owner = ?, status = ?, last_event_seq = ? WHERE id = ?",
    update_routing: "UPDATE conversations SET queue = ?, team = ?, priority = ?, priority_rank = ?, reason = ?, assignee = ?, handed_off_at = ? WHERE id = ?",
    insert_served: "INSERT INTO conversation_agents (user_id, conversation_id, at) VALUES (?, ?, ?) \
                    ON CONFLICT (user_id, conversation_id) DO UPDATE SET at = excluded.at",
    insert_event: "INSERT INTO events (conversation_id, seq, at, kind, data) VALUES (?, ?, ?, ?, ?)",
    events_after: "SELECT seq, at, kind, data FROM events WHERE conversation_id = ? AND seq > ? ORDER BY seq",
    save_session: "INSERT INTO sessions (conversation_id, turn, state) VALUES (?, ?, ?) \
                   ON CONFLICT (conversation_id) DO UPDATE SET turn = excluded.turn, state = excluded.state \
                   WHERE excluded.turn >= sessions.turn",
    insert_sessions: "INSERT INTO sessions (conversation_id, turn, state) ",
    upsert_sessions: " ON CONFLICT (conversation_id) DO UPDATE SET turn = excluded.turn, state = excluded.state \
                      WHERE excluded.turn >= sessions.turn",
    load_session: "SELECT turn, state FROM sessions WHERE conversation_id = ?",
};

/// PostgreSQL: `SELECT … FOR UPDATE` locks the conversation row until commit.
pub(super) const POSTGRES: Sql = Sql {
    begin_write: None,
    flow_hash: "SELECT hash FROM flow_versions WHERE flow_id = $1 AND version = $2",
    insert_flow: "INSERT INTO flow_versions (flow_id, version, hash, document) VALUES ($1, $2, $3, $4)",
    flow_version: "SELECT flow_id, version, hash, document FROM flow_versions WHERE flow_id = $1 AND version = $2",
    latest_flow: "SELECT flow_id, version, hash, document FROM flow_versions WHERE flow_id = $1 ORDER BY version DESC LIMIT 1",
    flow_versions: "SELECT version, hash FROM flow_versions WHERE flow_id = $1 ORDER BY version",
    insert_conversation: "INSERT INTO conversations (id, flow_id, flow_version, flow_hash, owner, status, created_at, node) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    conversation: "SELECT id, flow_id, flow_version, flow_hash, owner, status, created_at, last_message_seq, last_event_seq, queue, team, priority, reason, assignee, handed_off_at FROM conversations WHERE id = $1",
    conversation_exists: "SELECT 1 FROM conversations WHERE id = $1",
    open_conversations: "SELECT id FROM conversations WHERE status <> 'ended' ORDER BY created_at, id",
    lock_message_counter: "SELECT last_message_seq FROM conversations WHERE id = $1 FOR UPDATE",
    set_message_counters: "UPDATE conversations SET last_message_seq = CASE id",
    messages_by_client_ids: "SELECT seq, sender, kind, body, client_id, at FROM messages WHERE conversation_id = ",
    insert_messages: "INSERT INTO messages (conversation_id, seq, sender, kind, body, client_id, at) ",
    client_id_pads_spaces: false,
    messages_after: "SELECT seq, sender, kind, body, client_id, at FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    lock_event_counter: "SELECT last_event_seq FROM conversations WHERE id = $1 FOR UPDATE",
    update_state: "UPDATE conversations SET owner = $1, status = $2, last_event_seq = $3 WHERE id = $4",
    update_routing: "UPDATE conversations SET queue = $1, team = $2, priority = $3, priority_rank = $4, reason = $5, assignee = $6, handed_off_at = $7 WHERE id = $8",
    insert_served: "INSERT INTO conversation_agents (user_id, conversation_id, at) VALUES ($1, $2, $3) \
                    ON CONFLICT (user_id, conversation_id) DO UPDATE SET at = excluded.at",
    insert_event: "INSERT INTO events (conversation_id, seq, at, kind, data) VALUES ($1, $2, $3, $4, $5)",
    events_after: "SELECT seq, at, kind, data FROM events WHERE conversation_id = $1 AND seq > $2 ORDER BY seq",
    save_session: "INSERT INTO sessions (conversation_id, turn, state) VALUES ($1, $2, $3) \
                   ON CONFLICT (conversation_id) DO UPDATE SET turn = excluded.turn, state = excluded.state \
                   WHERE excluded.turn >= sessions.turn",
    insert_sessions: "INSERT INTO sessions (conversation_id, turn, state) ",
    upsert_sessions: " ON CONFLICT (conversation_id) DO UPDATE SET turn = excluded.turn, state = excluded.state \
                      WHERE excluded.turn >= sessions.turn",
    load_session: "SELECT turn, state FROM sessions WHERE conversation_id = $1",
};

/// MySQL / MariaDB: `SELECT … FOR UPDATE` locks the conversation row until commit (the
/// connections run at READ COMMITTED, see `Store::connect`). MariaDB has no `UPDATE … RETURNING`.
pub(super) const MYSQL: Sql = Sql {
    begin_write: None,
    lock_message_counter: "SELECT last_message_seq FROM conversations WHERE id = ? FOR UPDATE",
    lock_event_counter: "SELECT last_event_seq FROM conversations WHERE id = ? FOR UPDATE",
    client_id_pads_spaces: true,
    insert_served: "INSERT INTO conversation_agents (user_id, conversation_id, at) VALUES (?, ?, ?) \
                    ON DUPLICATE KEY UPDATE at = VALUES(at)",
    // `state` is assigned before `turn`: MySQL evaluates the assignments left to right.
    save_session: "INSERT INTO sessions (conversation_id, turn, state) VALUES (?, ?, ?) \
                   ON DUPLICATE KEY UPDATE state = IF(VALUES(turn) >= turn, VALUES(state), state), \
                   turn = GREATEST(turn, VALUES(turn))",
    upsert_sessions: " ON DUPLICATE KEY UPDATE state = IF(VALUES(turn) >= turn, VALUES(state), state), \
                      turn = GREATEST(turn, VALUES(turn))",
    ..SQLITE
};
