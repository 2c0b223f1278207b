//! How often the nodes and edges of each published flow version were taken (migration `0007`,
//! table `flow_stats`), for the designer's analytics.
//!
//! Conversations count into an in-memory tally ([`Store::count_flow_stats`]: a lock and a few
//! map updates per turn) that is written as upserts (`visits = visits + n`) at most about once
//! a second ([`Store::flush_flow_stats`], driven by the message writer) and when the store is
//! closed. Counting is kept out of the turn's own transaction on purpose: every conversation of
//! a flow increments the same hot rows (the start node above all), and with several nodes
//! sharing a database those row locks would serialise the nodes' message writers. The price is
//! that a crash (not a graceful stop) loses up to a second of counts, and that another node's
//! last second is not visible yet; statistics are not messages, so that is acceptable.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::{Pool, Result, Store};

/// Rows per multi-row upsert (seven variables each: under SQLite's 999).
const STATS_PER_UPSERT: usize = 999 / 7;

/// What one counter counts: a node of a flow version (`port` and `target` empty) or an edge
/// (`node` is where it starts).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatKey {
    pub flow_id: String,
    pub version: u32,
    pub node: String,
    pub port: String,
    pub target: String,
}

impl StatKey {
    /// The counter of visits of `node`.
    pub fn node(flow_id: &str, version: u32, node: String) -> StatKey {
        StatKey {
            flow_id: flow_id.to_owned(),
            version,
            node,
            port: String::new(),
            target: String::new(),
        }
    }

    /// The counter of the edge `from` `port` → `to`.
    pub fn edge(flow_id: &str, version: u32, from: String, port: String, to: String) -> StatKey {
        StatKey {
            flow_id: flow_id.to_owned(),
            version,
            node: from,
            port,
            target: to,
        }
    }

    /// The `stat_key` column: SHA-256 (hex) of node, port and target joined by NUL, so the
    /// primary key stays short however long the ids are.
    fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.node.as_bytes());
        hasher.update([0]);
        hasher.update(self.port.as_bytes());
        hasher.update([0]);
        hasher.update(self.target.as_bytes());
        hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// One stored counter of a flow version: a node (`port` and `target` empty) or an edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStat {
    pub node: String,
    pub port: String,
    pub target: String,
    pub visits: u64,
}

/// Counts not yet written; shared by every clone of a [`Store`].
#[derive(Debug, Default)]
pub(super) struct PendingStats {
    counts: Mutex<HashMap<StatKey, u64>>,
    /// Held while a flush writes, so that two flushes (the timer's and `close`'s) never
    /// interleave and `close` returns only after everything counted is written.
    flushing: tokio::sync::Mutex<()>,
}

struct StatsSql {
    begin_write: Option<&'static str>,
    insert: &'static str,
    upsert: &'static str,
    read: &'static str,
}

const SQLITE: StatsSql = StatsSql {
    begin_write: Some("BEGIN IMMEDIATE"),
    insert: "INSERT INTO flow_stats (flow_id, version, stat_key, node, port, target, visits) ",
    upsert: " ON CONFLICT (flow_id, version, stat_key) DO UPDATE SET visits = flow_stats.visits + excluded.visits",
    read: "SELECT node, port, target, visits FROM flow_stats WHERE flow_id = ? AND version = ? \
           ORDER BY node, port, target",
};

const POSTGRES: StatsSql = StatsSql {
    begin_write: None,
    read: "SELECT node, port, target, visits FROM flow_stats WHERE flow_id = $1 AND version = $2 \
           ORDER BY node, port, target",
    ..SQLITE
};

const MYSQL: StatsSql = StatsSql {
    begin_write: None,
    upsert: " ON DUPLICATE KEY UPDATE visits = visits + VALUES(visits)",
    ..SQLITE
};

impl Store {
    /// Adds one visit to each of `keys` in the in-memory tally; written by the next
    /// [`flush_flow_stats`](Self::flush_flow_stats).
    pub fn count_flow_stats(&self, keys: impl IntoIterator<Item = StatKey>) {
        let mut counts = self
            .pending
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            *counts.entry(key).or_insert(0) += 1;
        }
    }

    /// Writes the tally (one transaction) and returns how many counters it updated. When the
    /// write fails the counts go back into the tally for the next flush.
    pub async fn flush_flow_stats(&self) -> Result<usize> {
        let _flushing = self.pending.flushing.lock().await;
        let taken = std::mem::take(
            &mut *self
                .pending
                .counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if taken.is_empty() {
            return Ok(0);
        }
        // Sorted, so that writers on several nodes lock the rows in the same order.
        let mut rows: Vec<(StatKey, u64)> = taken.into_iter().collect();
        rows.sort_unstable();
        match self.add_flow_stats(&rows).await {
            Ok(()) => Ok(rows.len()),
            Err(error) => {
                let mut counts = self
                    .pending
                    .counts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for (key, visits) in rows {
                    *counts.entry(key).or_insert(0) += visits;
                }
                Err(error)
            }
        }
    }

    /// Adds `visits` to each counter in one transaction (creating the missing ones). The rows
    /// should be sorted and their keys distinct.
    pub async fn add_flow_stats(&self, rows: &[(StatKey, u64)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let keyed: Vec<(&StatKey, String, i64)> = rows
            .iter()
            .map(|(key, visits)| (key, key.hash(), i64::try_from(*visits).unwrap_or(i64::MAX)))
            .collect();
        with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            let mut tx = match sql.begin_write {
                Some(statement) => pool.begin_with(statement).await?,
                None => pool.begin().await?,
            };
            for chunk in keyed.chunks(STATS_PER_UPSERT) {
                let mut query = sqlx::QueryBuilder::new(sql.insert);
                query.push_values(chunk, |mut row, (key, hash, visits)| {
                    row.push_bind(key.flow_id.as_str())
                        .push_bind(i64::from(key.version))
                        .push_bind(hash.as_str())
                        .push_bind(key.node.as_str())
                        .push_bind(key.port.as_str())
                        .push_bind(key.target.as_str())
                        .push_bind(*visits);
                });
                query.push(sql.upsert);
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every stored counter of version `version` of `flow_id`, ordered by node, port, target.
    pub async fn flow_stats(&self, flow_id: &str, version: u32) -> Result<Vec<FlowStat>> {
        type Row = (String, String, String, i64);
        let rows: Vec<Row> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.read)
                .bind(flow_id)
                .bind(i64::from(version))
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(node, port, target, visits)| FlowStat {
                node,
                port,
                target,
                visits: u64::try_from(visits).unwrap_or(0),
            })
            .collect())
    }
}
