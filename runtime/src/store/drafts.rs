//! The flow designer's drafts and the publication history of flows (migration `0004`).
//!
//! A flow has at most one draft, numbered by `revision` (1, 2, 3, … ; 0 means "no draft yet").
//! Saving names the revision it was based on and succeeds only if that is still the stored one
//! (a compare-and-set), so two people editing one flow never overwrite each other silently.
//! Publishing stores a new immutable version with its note and author and, in the same
//! transaction, sets the draft to the published document: after a publish the draft and the
//! current version agree.

use super::{Pool, Result, Store, StoreError, is_unique_violation, version_from_db};

/// A flow's draft as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub flow_id: String,
    pub revision: i64,
    pub document: String,
    pub updated_at: i64,
    pub updated_by: Option<String>,
}

/// What [`Store::save_draft`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftSaved {
    /// Stored as this revision.
    Saved(i64),
    /// Someone saved after the caller's revision was read: nothing was stored. `current` is
    /// the stored draft (its revision and document), for the caller to reload or merge.
    Conflict { current: Option<Draft> },
}

/// A version to publish, with its history columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion<'a> {
    pub flow_id: &'a str,
    pub version: u32,
    pub hash: &'a str,
    pub document: &'a str,
    pub note: &'a str,
    pub published_by: &'a str,
    pub published_at: i64,
}

/// What [`Store::publish_version`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionPublished {
    /// The version is stored and the draft now holds its document, as this revision.
    Published { draft_revision: i64 },
    /// The draft changed after the caller read it, or another publish took this version
    /// number first: nothing was stored.
    Conflict,
}

/// One published version with its history (`note`, `published_at`, `published_by` are empty
/// for versions published before migration `0004` and for the bundled flows).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VersionInfo {
    pub version: u32,
    pub hash: String,
    pub note: Option<String>,
    pub published_at: Option<i64>,
    pub published_by: Option<String>,
}

/// The statements of one dialect.
struct DraftSql {
    begin_write: Option<&'static str>,
    draft: &'static str,
    insert_draft: &'static str,
    update_draft: &'static str,
    insert_version: &'static str,
    versions: &'static str,
    /// Every draft, by flow id.
    all_drafts: &'static str,
    /// The highest published version of every flow, by flow id.
    latest_versions: &'static str,
}

const SQLITE: DraftSql = DraftSql {
    begin_write: Some("BEGIN IMMEDIATE"),
    draft: "SELECT flow_id, revision, document, updated_at, updated_by FROM flow_drafts WHERE flow_id = ?",
    insert_draft: "INSERT INTO flow_drafts (flow_id, revision, document, updated_at, updated_by) \
                   VALUES (?, 1, ?, ?, ?)",
    update_draft: "UPDATE flow_drafts SET revision = revision + 1, document = ?, updated_at = ?, updated_by = ? \
                   WHERE flow_id = ? AND revision = ?",
    insert_version: "INSERT INTO flow_versions \
                     (flow_id, version, hash, document, note, published_at, published_by) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
    versions: "SELECT version, hash, note, published_at, published_by FROM flow_versions \
               WHERE flow_id = ? ORDER BY version",
    all_drafts: "SELECT flow_id, revision, document, updated_at, updated_by FROM flow_drafts ORDER BY flow_id",
    latest_versions: "SELECT flow_id, MAX(version) FROM flow_versions GROUP BY flow_id ORDER BY flow_id",
};

const POSTGRES: DraftSql = DraftSql {
    begin_write: None,
    draft: "SELECT flow_id, revision, document, updated_at, updated_by FROM flow_drafts WHERE flow_id = $1",
    insert_draft: "INSERT INTO flow_drafts (flow_id, revision, document, updated_at, updated_by) \
                   VALUES ($1, 1, $2, $3, $4)",
    update_draft: "UPDATE flow_drafts SET revision = revision + 1, document = $1, updated_at = $2, updated_by = $3 \
                   WHERE flow_id = $4 AND revision = $5",
    insert_version: "INSERT INTO flow_versions \
                     (flow_id, version, hash, document, note, published_at, published_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
    versions: "SELECT version, hash, note, published_at, published_by FROM flow_versions \
               WHERE flow_id = $1 ORDER BY version",
    ..SQLITE
};

const MYSQL: DraftSql = DraftSql {
    begin_write: None,
    ..SQLITE
};

type DraftRow = (String, i64, String, i64, Option<String>);

fn draft_from_row((flow_id, revision, document, updated_at, updated_by): DraftRow) -> Draft {
    Draft {
        flow_id,
        revision,
        document,
        updated_at,
        updated_by,
    }
}

impl Store {
    /// The draft of flow `flow_id`, if one was ever saved.
    pub async fn draft(&self, flow_id: &str) -> Result<Option<Draft>> {
        let row: Option<DraftRow> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.draft).bind(flow_id).fetch_optional(pool).await?
        });
        Ok(row.map(draft_from_row))
    }

    /// Saves `document` as the draft of `flow_id` if its stored revision is still `expected`
    /// (0: no draft stored yet). Returns the new revision, or the stored draft on a conflict.
    pub async fn save_draft(
        &self,
        flow_id: &str,
        expected: i64,
        document: &str,
        by: &str,
        at: i64,
    ) -> Result<DraftSaved> {
        let stored = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            if expected == 0 {
                match sqlx::query(sql.insert_draft)
                    .bind(flow_id)
                    .bind(document)
                    .bind(at)
                    .bind(by)
                    .execute(pool)
                    .await
                {
                    Ok(_) => true,
                    // Someone else saved the first draft.
                    Err(error) if is_unique_violation(&error) => false,
                    Err(error) => return Err(error.into()),
                }
            } else {
                sqlx::query(sql.update_draft)
                    .bind(document)
                    .bind(at)
                    .bind(by)
                    .bind(flow_id)
                    .bind(expected)
                    .execute(pool)
                    .await?
                    .rows_affected()
                    == 1
            }
        });
        if stored {
            Ok(DraftSaved::Saved(expected + 1))
        } else {
            Ok(DraftSaved::Conflict {
                current: self.draft(flow_id).await?,
            })
        }
    }

    /// Stores `new` as a published version and, in the same transaction, makes its document the
    /// draft, provided the draft's revision is still `draft_revision` (0: no draft stored).
    pub async fn publish_version(
        &self,
        new: &NewVersion<'_>,
        draft_revision: i64,
    ) -> Result<VersionPublished> {
        with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            let mut tx = match sql.begin_write {
                Some(statement) => pool.begin_with(statement).await?,
                None => pool.begin().await?,
            };
            let inserted = sqlx::query(sql.insert_version)
                .bind(new.flow_id)
                .bind(i64::from(new.version))
                .bind(new.hash)
                .bind(new.document)
                .bind(new.note)
                .bind(new.published_at)
                .bind(new.published_by)
                .execute(&mut *tx)
                .await;
            match inserted {
                Ok(_) => {}
                // Another publish took this number; dropping `tx` rolls back.
                Err(error) if is_unique_violation(&error) => return Ok(VersionPublished::Conflict),
                Err(error) => return Err(error.into()),
            }
            let draft_stored = if draft_revision == 0 {
                match sqlx::query(sql.insert_draft)
                    .bind(new.flow_id)
                    .bind(new.document)
                    .bind(new.published_at)
                    .bind(new.published_by)
                    .execute(&mut *tx)
                    .await
                {
                    Ok(_) => true,
                    Err(error) if is_unique_violation(&error) => false,
                    Err(error) => return Err(error.into()),
                }
            } else {
                sqlx::query(sql.update_draft)
                    .bind(new.document)
                    .bind(new.published_at)
                    .bind(new.published_by)
                    .bind(new.flow_id)
                    .bind(draft_revision)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1
            };
            if !draft_stored {
                return Ok(VersionPublished::Conflict);
            }
            tx.commit().await?;
        });
        Ok(VersionPublished::Published {
            draft_revision: draft_revision + 1,
        })
    }

    /// Every saved draft, ordered by flow id (for the designer's list of flows).
    pub async fn drafts(&self) -> Result<Vec<Draft>> {
        let rows: Vec<DraftRow> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.all_drafts).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(draft_from_row).collect())
    }

    /// The highest published version of every flow that has one, ordered by flow id.
    pub async fn latest_versions(&self) -> Result<Vec<(String, u32)>> {
        let rows: Vec<(String, i64)> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.latest_versions).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|(id, version)| Ok((id, version_from_db(version)?)))
            .collect()
    }

    /// Every published version of a flow with its history, lowest first.
    pub async fn version_history(&self, flow_id: &str) -> Result<Vec<VersionInfo>> {
        type Row = (i64, String, Option<String>, Option<i64>, Option<String>);
        let rows: Vec<Row> = with_dialect!(self, pool, sql = (&SQLITE, &POSTGRES, &MYSQL) => {
            sqlx::query_as(sql.versions).bind(flow_id).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|(version, hash, note, published_at, published_by)| {
                Ok(VersionInfo {
                    version: version_from_db(version)?,
                    hash,
                    note,
                    published_at,
                    published_by,
                })
            })
            .collect::<Result<_, StoreError>>()
    }
}
