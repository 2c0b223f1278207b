//! Temporary grants (migration `0008`, table `access_grants`) and the facts access decisions
//! read from the store: which customers an agent served.
//!
//! Policies edited in the admin pages are stored as numbered revisions (migration `0009`,
//! table `policy_revisions`); the newest is in force.
//!
//! A grant is stored in columns with its patterns as text; `access` turns rows back into
//! `policy::Grant`s (checking the patterns again) when it decides. Revoking deletes the row.

use super::{Pool, Result, Store, is_unique_violation};

/// A stored grant, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub id: String,
    /// `agent:<login>`, `team:<id>`, …
    pub subject: String,
    /// A JSON list of action patterns.
    pub actions_json: String,
    pub resource: String,
    pub expires_at: i64,
    pub granted_by: String,
    pub reason: String,
    pub created_at: i64,
}

type Row = (String, String, String, String, i64, String, String, i64);

struct GrantSql {
    insert: &'static str,
    list: &'static str,
    expiring_after: &'static str,
    delete: &'static str,
    started_of_assignee: &'static str,
    policy_newest: &'static str,
    policy_insert: &'static str,
}

const SQLITE: GrantSql = GrantSql {
    insert: "INSERT INTO access_grants (id, subject, actions, resource, expires_at, granted_by, reason, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    list: "SELECT id, subject, actions, resource, expires_at, granted_by, reason, created_at \
           FROM access_grants ORDER BY created_at DESC, id DESC LIMIT ?",
    expiring_after: "SELECT id, subject, actions, resource, expires_at, granted_by, reason, created_at \
               FROM access_grants WHERE expires_at > ? ORDER BY created_at, id",
    delete: "DELETE FROM access_grants WHERE id = ?",
    started_of_assignee: "SELECT e.data FROM events e JOIN conversation_agents a ON a.conversation_id = e.conversation_id \
                          WHERE a.user_id = ? AND e.kind = 'started' ORDER BY a.at DESC LIMIT ?",
    policy_newest: "SELECT revision, text, author, created_at FROM policy_revisions \
                    ORDER BY revision DESC LIMIT 1",
    policy_insert: "INSERT INTO policy_revisions (revision, text, author, created_at) VALUES (?, ?, ?, ?)",
};

const POSTGRES: GrantSql = GrantSql {
    insert: "INSERT INTO access_grants (id, subject, actions, resource, expires_at, granted_by, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    list: "SELECT id, subject, actions, resource, expires_at, granted_by, reason, created_at \
           FROM access_grants ORDER BY created_at DESC, id DESC LIMIT $1",
    expiring_after: "SELECT id, subject, actions, resource, expires_at, granted_by, reason, created_at \
               FROM access_grants WHERE expires_at > $1 ORDER BY created_at, id",
    delete: "DELETE FROM access_grants WHERE id = $1",
    started_of_assignee: "SELECT e.data FROM events e JOIN conversation_agents a ON a.conversation_id = e.conversation_id \
                          WHERE a.user_id = $1 AND e.kind = 'started' ORDER BY a.at DESC LIMIT $2",
    policy_newest: "SELECT revision, text, author, created_at FROM policy_revisions \
                    ORDER BY revision DESC LIMIT 1",
    policy_insert: "INSERT INTO policy_revisions (revision, text, author, created_at) VALUES ($1, $2, $3, $4)",
};

const MYSQL: GrantSql = SQLITE;

fn from_row(
    (id, subject, actions_json, resource, expires_at, granted_by, reason, created_at): Row,
) -> GrantRow {
    GrantRow {
        id,
        subject,
        actions_json,
        resource,
        expires_at,
        granted_by,
        reason,
        created_at,
    }
}

impl Store {
    /// Stores a new grant.
    pub async fn insert_grant(&self, grant: &GrantRow) -> Result<()> {
        with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query(sql.insert)
                .bind(&grant.id)
                .bind(&grant.subject)
                .bind(&grant.actions_json)
                .bind(&grant.resource)
                .bind(grant.expires_at)
                .bind(&grant.granted_by)
                .bind(&grant.reason)
                .bind(grant.created_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The newest `limit` grants, in force or expired, newest first.
    pub async fn grants(&self, limit: i64) -> Result<Vec<GrantRow>> {
        let rows: Vec<Row> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.list).bind(limit).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// The grants that expire after `moment`, oldest first (in force at `moment`; the policy
    /// engine checks expiry again against each request's time).
    pub async fn grants_expiring_after(&self, moment: i64) -> Result<Vec<GrantRow>> {
        let rows: Vec<Row> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.expiring_after).bind(moment).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Revokes grant `id`; whether there was one.
    pub async fn delete_grant(&self, id: &str) -> Result<bool> {
        let affected = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query(sql.delete).bind(id).execute(pool).await?.rows_affected()
        });
        Ok(affected > 0)
    }

    /// The `started` event data (JSON text, with the visitor's identity) of the newest `limit`
    /// conversations user `assignee` has had (now or before a transfer; `conversation_agents`,
    /// migration 0010): what `agent.service_history` is made of.
    pub async fn started_of_assignee(&self, assignee: &str, limit: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.started_of_assignee)
                .bind(assignee)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(data,)| data).collect())
    }

    /// The newest stored policy revision, if an admin ever saved one.
    pub async fn newest_policies(&self) -> Result<Option<PolicyRevision>> {
        let row: Option<(i64, String, String, i64)> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.policy_newest).fetch_optional(pool).await?
        });
        Ok(
            row.map(|(revision, text, author, created_at)| PolicyRevision {
                revision,
                text,
                author,
                created_at,
            }),
        )
    }

    /// Stores `revision` if it is the next one: false when another save took its number first
    /// (the caller's copy is stale), so two admins saving at once never overwrite each other.
    pub async fn insert_policies(&self, revision: &PolicyRevision) -> Result<bool> {
        let inserted = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query(sql.policy_insert)
                .bind(revision.revision)
                .bind(&revision.text)
                .bind(&revision.author)
                .bind(revision.created_at)
                .execute(pool)
                .await
                .map(|_| ())
        });
        match inserted {
            Ok(_) => Ok(true),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}

/// One saved text of the policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRevision {
    /// 1, 2, 3, … in the order they were saved.
    pub revision: i64,
    pub text: String,
    /// The admin's login.
    pub author: String,
    pub created_at: i64,
}
