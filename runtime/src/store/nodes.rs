//! Nodes (kefu processes sharing the database) and which node runs each conversation
//! (migration `0003`).
//!
//! A node writes its heartbeat every few seconds. A conversation's `node` names the node whose
//! task runs it; another node takes it over only with a compare-and-set from the owner it saw,
//! so two nodes that both decide to take over the same conversation cannot both win.

use super::{Pool, Result, Store};

struct NodeSql {
    insert_node: &'static str,
    heartbeat: &'static str,
    delete_node: &'static str,
    release_all: &'static str,
    node_heartbeat: &'static str,
    conversation_node: &'static str,
    set_node: &'static str,
    take_unowned: &'static str,
    take_from: &'static str,
    orphaned: &'static str,
}

const SQLITE: NodeSql = NodeSql {
    insert_node: "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES (?, ?, ?)",
    heartbeat: "UPDATE nodes SET heartbeat_at = ? WHERE id = ?",
    delete_node: "DELETE FROM nodes WHERE id = ?",
    release_all: "UPDATE conversations SET node = NULL WHERE node = ?",
    node_heartbeat: "SELECT heartbeat_at FROM nodes WHERE id = ?",
    conversation_node: "SELECT node FROM conversations WHERE id = ?",
    set_node: "UPDATE conversations SET node = ? WHERE id = ?",
    take_unowned: "UPDATE conversations SET node = ? WHERE id = ? AND node IS NULL",
    take_from: "UPDATE conversations SET node = ? WHERE id = ? AND node = ?",
    orphaned: "SELECT c.id, c.node FROM conversations c LEFT JOIN nodes n ON n.id = c.node \
               WHERE c.status <> 'ended' AND (c.node IS NULL OR n.id IS NULL OR n.heartbeat_at < ?) \
               ORDER BY c.created_at, c.id LIMIT ?",
};

const POSTGRES: NodeSql = NodeSql {
    insert_node: "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, $2, $3)",
    heartbeat: "UPDATE nodes SET heartbeat_at = $1 WHERE id = $2",
    delete_node: "DELETE FROM nodes WHERE id = $1",
    release_all: "UPDATE conversations SET node = NULL WHERE node = $1",
    node_heartbeat: "SELECT heartbeat_at FROM nodes WHERE id = $1",
    conversation_node: "SELECT node FROM conversations WHERE id = $1",
    set_node: "UPDATE conversations SET node = $1 WHERE id = $2",
    take_unowned: "UPDATE conversations SET node = $1 WHERE id = $2 AND node IS NULL",
    take_from: "UPDATE conversations SET node = $1 WHERE id = $2 AND node = $3",
    orphaned: "SELECT c.id, c.node FROM conversations c LEFT JOIN nodes n ON n.id = c.node \
               WHERE c.status <> 'ended' AND (c.node IS NULL OR n.id IS NULL OR n.heartbeat_at < $1) \
               ORDER BY c.created_at, c.id LIMIT $2",
};

/// Who runs a conversation, as the database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOwner {
    /// No such conversation.
    Unknown,
    /// No node (it was created by a single server, or its node stopped and let it go).
    Nobody,
    Node(String),
}

impl Store {
    /// Registers this process as node `id`.
    pub async fn register_node(&self, id: &str, now: i64) -> Result<()> {
        with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
            sqlx::query(sql.insert_node).bind(id).bind(now).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    /// Renews node `id`'s heartbeat; `false` when its row is gone.
    pub async fn heartbeat(&self, id: &str, now: i64) -> Result<bool> {
        let rows = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
            sqlx::query(sql.heartbeat).bind(now).bind(id).execute(pool).await?.rows_affected()
        });
        Ok(rows > 0)
    }

    /// Node `id` stops: its conversations belong to nobody (any node may take them at once)
    /// and its row goes.
    pub async fn deregister_node(&self, id: &str) -> Result<()> {
        with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
            sqlx::query(sql.release_all).bind(id).execute(pool).await?;
            sqlx::query(sql.delete_node).bind(id).execute(pool).await?;
        });
        Ok(())
    }

    /// Node `id`'s last heartbeat (Unix milliseconds), `None` when it is not registered.
    pub async fn node_heartbeat(&self, id: &str) -> Result<Option<i64>> {
        Ok(
            with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
                sqlx::query_scalar(sql.node_heartbeat).bind(id).fetch_optional(pool).await?
            }),
        )
    }

    /// The node that runs conversation `id`.
    pub async fn conversation_node(&self, id: &str) -> Result<NodeOwner> {
        let row: Option<Option<String>> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
            sqlx::query_scalar(sql.conversation_node).bind(id).fetch_optional(pool).await?
        });
        Ok(match row {
            None => NodeOwner::Unknown,
            Some(None) => NodeOwner::Nobody,
            Some(Some(node)) => NodeOwner::Node(node),
        })
    }

    /// Records that node `node` runs the new conversation `id` (it created it).
    pub async fn set_conversation_node(&self, id: &str, node: &str) -> Result<()> {
        with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
            sqlx::query(sql.set_node).bind(node).bind(id).execute(pool).await?;
        });
        Ok(())
    }

    /// Makes `node` run conversation `id` if its owner is still `seen` (compare-and-set);
    /// returns whether it did.
    pub async fn take_conversation(&self, id: &str, node: &str, seen: &NodeOwner) -> Result<bool> {
        let rows = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
            match seen {
                NodeOwner::Unknown => 0,
                NodeOwner::Nobody => sqlx::query(sql.take_unowned)
                    .bind(node)
                    .bind(id)
                    .execute(pool)
                    .await?
                    .rows_affected(),
                // Already ours: an update to the same value counts no rows on MySQL.
                NodeOwner::Node(owner) if owner == node => 1,
                NodeOwner::Node(owner) => sqlx::query(sql.take_from)
                    .bind(node)
                    .bind(id)
                    .bind(owner)
                    .execute(pool)
                    .await?
                    .rows_affected(),
            }
        });
        Ok(rows > 0)
    }

    /// Open conversations that no live node runs: none, a node that is not registered, or one
    /// whose last heartbeat is older than `stale_before`; oldest first, at most `limit`, with
    /// the owner each was seen with.
    pub async fn orphaned_conversations(
        &self,
        stale_before: i64,
        limit: u32,
    ) -> Result<Vec<(String, NodeOwner)>> {
        let rows: Vec<(String, Option<String>)> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &SQLITE) => {
            sqlx::query_as(sql.orphaned)
                .bind(stale_before)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, node)| (id, node.map_or(NodeOwner::Nobody, NodeOwner::Node)))
            .collect())
    }
}
