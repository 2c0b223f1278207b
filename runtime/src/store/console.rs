//! What the agent console reads: conversation lists by queue and assignee, and internal notes.

use super::{Conversation, Pool, Result, Routing, Store, StoreError, version_from_db};

/// Which conversations a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListView {
    /// Waiting in a queue: highest priority first, then the longest waiting.
    Queue,
    /// Assigned to this user and not ended, the longest handed off first.
    Assignee(String),
    /// Every conversation, newest first.
    All,
}

/// An internal note on a conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    pub author: String,
    pub author_name: String,
    pub text: String,
    pub at: i64,
}

struct ConsoleSql {
    open_assignments: &'static str,
    queue: &'static str,
    /// How many waiting conversations come before one in `queue`'s order.
    queue_ahead: &'static str,
    assigned: &'static str,
    all: &'static str,
    insert_note: &'static str,
    notes: &'static str,
}

/// The columns of `Store::conversation`, in its order.
macro_rules! columns {
    () => {
        "id, flow_id, flow_version, flow_hash, owner, status, created_at, last_message_seq, \
         last_event_seq, queue, team, priority, reason, assignee, handed_off_at"
    };
}

/// The conversations before `me` in the queue's order — priority first (`priority_rank`,
/// migration 0006, indexed with the status), then the longest waiting — (`WHERE` of
/// `queue_ahead`, after the placeholder for `me`'s id).
macro_rules! ahead_of_me {
    () => {
        concat!(
            " WHERE c.status = 'waiting' AND me.status = 'waiting' AND (",
            "c.priority_rank < me.priority_rank",
            " OR (c.priority_rank = me.priority_rank",
            " AND (c.handed_off_at < me.handed_off_at",
            " OR (c.handed_off_at = me.handed_off_at AND c.id < me.id))))"
        )
    };
}

const SQLITE: ConsoleSql = ConsoleSql {
    open_assignments: "SELECT assignee, COUNT(*) FROM conversations \
                       WHERE assignee IS NOT NULL AND status <> 'ended' GROUP BY assignee",
    queue: concat!(
        "SELECT ",
        columns!(),
        " FROM conversations WHERE status = 'waiting' ORDER BY priority_rank, handed_off_at, id LIMIT ?"
    ),
    queue_ahead: concat!(
        "SELECT COUNT(*) FROM (SELECT c.id FROM conversations c JOIN conversations me ON me.id = ?",
        ahead_of_me!(),
        " ORDER BY c.priority_rank, c.handed_off_at, c.id LIMIT ?) ahead"
    ),
    assigned: concat!(
        "SELECT ",
        columns!(),
        " FROM conversations WHERE assignee = ? AND status <> 'ended' ORDER BY handed_off_at, id LIMIT ?"
    ),
    all: concat!(
        "SELECT ",
        columns!(),
        " FROM conversations ORDER BY created_at DESC, id LIMIT ?"
    ),
    insert_note: "INSERT INTO notes (conversation_id, at, author, text) VALUES (?, ?, ?, ?)",
    notes: "SELECT n.author, u.name, n.text, n.at FROM notes n JOIN users u ON u.id = n.author \
            WHERE n.conversation_id = ? ORDER BY n.at",
};

// MySQL takes the SQLite text (`?` placeholders, nothing beyond standard SQL).

const POSTGRES: ConsoleSql = ConsoleSql {
    open_assignments: "SELECT assignee, COUNT(*) FROM conversations \
                       WHERE assignee IS NOT NULL AND status <> 'ended' GROUP BY assignee",
    queue: concat!(
        "SELECT ",
        columns!(),
        " FROM conversations WHERE status = 'waiting' ORDER BY priority_rank, handed_off_at, id LIMIT $1"
    ),
    queue_ahead: concat!(
        "SELECT COUNT(*) FROM (SELECT c.id FROM conversations c JOIN conversations me ON me.id = $1",
        ahead_of_me!(),
        " ORDER BY c.priority_rank, c.handed_off_at, c.id LIMIT $2) ahead"
    ),
    assigned: concat!(
        "SELECT ",
        columns!(),
        " FROM conversations WHERE assignee = $1 AND status <> 'ended' ORDER BY handed_off_at, id LIMIT $2"
    ),
    all: concat!(
        "SELECT ",
        columns!(),
        " FROM conversations ORDER BY created_at DESC, id LIMIT $1"
    ),
    insert_note: "INSERT INTO notes (conversation_id, at, author, text) VALUES ($1, $2, $3, $4)",
    notes: "SELECT n.author, u.name, n.text, n.at FROM notes n JOIN users u ON u.id = n.author \
            WHERE n.conversation_id = $1 ORDER BY n.at",
};

impl Store {
    /// At most `limit` conversations of `view`.
    pub async fn list_conversations(
        &self,
        view: &ListView,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        let limit = i64::from(limit);
        let rows: Vec<super::ConversationRow> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
            match view {
                ListView::Queue => {
                    sqlx::query_as(sql.queue).bind(limit).fetch_all(pool).await?
                }
                ListView::Assignee(user) => {
                    sqlx::query_as(sql.assigned)
                        .bind(user.as_str())
                        .bind(limit)
                        .fetch_all(pool)
                        .await?
                }
                ListView::All => sqlx::query_as(sql.all).bind(limit).fetch_all(pool).await?,
            }
        });
        rows.into_iter().map(conversation_from_row).collect()
    }

    /// How many waiting conversations come before `id` in the queue, counting at most `cap`
    /// (walking the queue's index in order, so a long queue costs no more than `cap` rows).
    pub async fn queue_ahead(&self, id: &str, cap: u32) -> Result<i64> {
        Ok(
            with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
                sqlx::query_scalar(sql.queue_ahead)
                    .bind(id)
                    .bind(i64::from(cap))
                    .fetch_one(pool)
                    .await?
            }),
        )
    }

    /// How many open conversations each agent has (agents with none are missing).
    pub async fn open_assignments(&self) -> Result<std::collections::HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
            sqlx::query_as(sql.open_assignments).fetch_all(pool).await?
        });
        Ok(rows.into_iter().collect())
    }

    /// Adds an internal note.
    pub async fn add_note(
        &self,
        conversation: &str,
        at: i64,
        author: &str,
        text: &str,
    ) -> Result<()> {
        let inserted = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
            sqlx::query(sql.insert_note)
                .bind(conversation)
                .bind(at)
                .bind(author)
                .bind(text)
                .execute(pool)
                .await
                .map(drop)
        });
        match inserted {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(error)) if error.is_foreign_key_violation() => {
                Err(StoreError::UnknownConversation(conversation.to_owned()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// A conversation's notes, oldest first.
    pub async fn notes(&self, conversation: &str) -> Result<Vec<Note>> {
        let rows: Vec<(String, String, String, i64)> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
            sqlx::query_as(sql.notes).bind(conversation).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(author, author_name, text, at)| Note {
                author,
                author_name,
                text,
                at,
            })
            .collect())
    }
}

pub(super) fn conversation_from_row(row: super::ConversationRow) -> Result<Conversation> {
    let (
        id,
        flow_id,
        flow_version,
        flow_hash,
        owner,
        status,
        created_at,
        last_message_seq,
        last_event_seq,
        queue,
        team,
        priority,
        reason,
        assignee,
        handed_off_at,
    ) = row;
    Ok(Conversation {
        id,
        flow_id,
        flow_version: version_from_db(flow_version)?,
        flow_hash,
        owner,
        status,
        created_at,
        last_message_seq,
        last_event_seq,
        routing: Routing {
            queue,
            team,
            priority,
            reason,
            assignee,
            handed_off_at,
        },
    })
}
