//! The audit trail: who did what to which resource, the decision and the policies behind it,
//! when, from where and how much came back — for every data access and administrative change.
//!
//! Records are written durably first ([`log`]: a hash-chained JSON-lines file, group-committed
//! by one writer thread behind a bounded queue, so a burst slows producers down instead of
//! losing records) and exported from that file as OpenTelemetry log records over OTLP/HTTP
//! ([`export`]), with a persisted cursor, so a collector that is down only delays them.
//! `kefu audit verify` walks the chain (`cli::audit`); `GET /api/admin/audit` searches it.

pub mod api;
pub mod export;
pub mod log;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

pub use log::{Break, StoredRecord, verify};

/// How many records may wait for the writer before producers wait (backpressure, not loss).
const QUEUE: usize = 65_536;

/// Why the audit trail could not do something.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("audit log: {0}")]
    Io(String),
    #[error("audit log is damaged: {0}")]
    Corrupt(String),
    #[error("the audit writer has stopped")]
    Closed,
}

/// Allowed or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// One audited access or change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who: a login, `system`, or `visitor:ID`.
    pub actor: String,
    /// What: `read`, `publish`, `reload`, `invalidate`, `grant`, `revoke`, `sign-in`, …
    pub action: String,
    /// Which resource: `customers::42`, `flows::guided-shopping`, `connectors::shop`, …
    pub resource: String,
    pub decision: Decision,
    /// The ids of the policies that decided (empty when no policy engine was consulted).
    #[serde(default)]
    pub policies: Vec<String>,
    /// From where: the client's address, when known.
    #[serde(default)]
    pub ip: Option<String>,
    /// How many rows or items the access returned, for reads.
    #[serde(default)]
    pub result_size: Option<u64>,
    /// Anything else worth keeping (a version number, an error), as JSON.
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

impl AuditRecord {
    /// An allowed `action` on `resource` by `actor`, now.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> AuditRecord {
        AuditRecord {
            at_ms: crate::conversation::now_ms(),
            actor: actor.into(),
            action: action.into(),
            resource: resource.into(),
            decision: Decision::Allow,
            policies: Vec::new(),
            ip: None,
            result_size: None,
            detail: None,
        }
    }

    /// The decision and the policies that made it.
    #[must_use]
    pub fn decided(mut self, decision: Decision, policies: Vec<String>) -> AuditRecord {
        self.decision = decision;
        self.policies = policies;
        self
    }

    #[must_use]
    pub fn denied(mut self) -> AuditRecord {
        self.decision = Decision::Deny;
        self
    }

    #[must_use]
    pub fn ip(mut self, ip: Option<String>) -> AuditRecord {
        self.ip = ip;
        self
    }

    #[must_use]
    pub fn result_size(mut self, size: u64) -> AuditRecord {
        self.result_size = Some(size);
        self
    }

    #[must_use]
    pub fn detail(mut self, detail: serde_json::Value) -> AuditRecord {
        self.detail = Some(detail);
        self
    }
}

/// The handle producers hold: cheap to clone; every clone feeds the one writer.
#[derive(Clone)]
pub struct Audit {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    queue: mpsc::Sender<log::Pending>,
    path: PathBuf,
    durable: watch::Receiver<u64>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("path", &self.inner.as_ref().map(|i| &i.path))
            .finish()
    }
}

impl Audit {
    /// The trail of `data_dir` (`DIR/audit/audit.log`), continuing its chain; starts the
    /// writer thread, which runs as long as a handle does.
    pub fn open(data_dir: &Path) -> Result<Audit, AuditError> {
        let path = log::log_path(data_dir);
        let (file, head) = log::open(&path)?;
        let (queue, receiver) = mpsc::channel(QUEUE);
        let (durable_tx, durable) = watch::channel(head.seq);
        std::thread::Builder::new()
            .name("kefu-audit".into())
            .spawn(move || log::run_writer(file, head, receiver, &durable_tx))
            .map_err(|e| AuditError::Io(format!("cannot start the writer: {e}")))?;
        Ok(Audit {
            inner: Some(Arc::new(Inner {
                queue,
                path,
                durable,
            })),
        })
    }

    /// A handle that keeps nothing: for servers embedded without a data folder (tests, or a
    /// program that builds its own `AppState` and opens no trail).
    pub fn disabled() -> Audit {
        Audit { inner: None }
    }

    /// The log file, when the trail is kept.
    pub fn path(&self) -> Option<&Path> {
        self.inner.as_ref().map(|i| i.path.as_path())
    }

    /// Queues `record` (waiting while the queue is full) and returns what resolves once it is
    /// on disk, with its sequence number. For producers that pipeline many records.
    pub async fn submit(&self, record: AuditRecord) -> Result<Durable, AuditError> {
        let Some(inner) = &self.inner else {
            return Ok(Durable(None));
        };
        let (done, wait) = oneshot::channel();
        inner
            .queue
            .send(log::Pending { record, done })
            .await
            .map_err(|_| AuditError::Closed)?;
        Ok(Durable(Some(wait)))
    }

    /// Writes `record` and waits until it is durable; its sequence number (0 when disabled).
    pub async fn try_record(&self, record: AuditRecord) -> Result<u64, AuditError> {
        self.submit(record).await?.await
    }

    /// Writes `record` and waits until it is durable. A failure is logged: the access it
    /// describes has already happened, so it is not undone.
    pub async fn record(&self, record: AuditRecord) {
        if let Err(error) = self.try_record(record).await {
            tracing::error!(%error, "audit record not written");
        }
    }

    /// The highest sequence number on disk, and a way to wait for more.
    pub fn durable(&self) -> Option<watch::Receiver<u64>> {
        self.inner.as_ref().map(|i| i.durable.clone())
    }

    /// Records matching `query`, newest first.
    pub async fn search(&self, query: Query) -> Result<Page, AuditError> {
        let Some(path) = self.path().map(Path::to_path_buf) else {
            return Ok(Page::default());
        };
        tokio::task::spawn_blocking(move || search(&path, &query))
            .await
            .map_err(|e| AuditError::Io(format!("search stopped: {e}")))?
    }
}

/// Resolves when a submitted record is on disk.
pub struct Durable(Option<oneshot::Receiver<Result<u64, AuditError>>>);

impl IntoFuture for Durable {
    type Output = Result<u64, AuditError>;
    type IntoFuture = std::pin::Pin<Box<dyn Future<Output = Result<u64, AuditError>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            match self.0 {
                None => Ok(0),
                Some(wait) => wait.await.map_err(|_| AuditError::Closed)?,
            }
        })
    }
}

/// What to look for in the trail. Every field given must match.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Query {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Resources starting with this (`customers::` finds every customer).
    pub resource: Option<String>,
    /// Exactly this action.
    pub action: Option<String>,
    /// At or after, in ms since the epoch.
    pub from: Option<i64>,
    /// Before, in ms since the epoch.
    pub to: Option<i64>,
    /// Only records older than this sequence number (the `next` of a previous page).
    pub before: Option<u64>,
    /// At most this many (default 100, at most 1000); [`search_all`] ignores it.
    pub limit: Option<usize>,
}

impl Query {
    fn matches(&self, seq: u64, record: &AuditRecord) -> bool {
        self.before.is_none_or(|b| seq < b)
            && self.actor.as_ref().is_none_or(|a| &record.actor == a)
            && self.action.as_ref().is_none_or(|a| &record.action == a)
            && self
                .resource
                .as_ref()
                .is_none_or(|r| record.resource.starts_with(r.as_str()))
            && self.from.is_none_or(|f| record.at_ms >= f)
            && self.to.is_none_or(|t| record.at_ms < t)
    }
}

/// One page of search results: newest first, and where the next (older) page starts.
#[derive(Debug, Default, Serialize)]
pub struct Page {
    pub records: Vec<StoredRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// Scans the log for `query`'s page. The whole file is read: fine for the sizes an admin
/// searches today; an index (or a collector's search) is the answer when it is not.
pub fn search(path: &Path, query: &Query) -> Result<Page, AuditError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let mut newest = std::collections::VecDeque::with_capacity(limit + 1);
    for_each(path, |stored| {
        if query.matches(stored.seq, &stored.record) {
            if newest.len() == limit + 1 {
                newest.pop_front();
            }
            newest.push_back(stored);
        }
    })?;
    let more = newest.len() > limit;
    if more {
        newest.pop_front();
    }
    let records: Vec<StoredRecord> = newest.into_iter().rev().collect();
    let next = if more {
        records.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(Page { records, next })
}

/// Every record matching `query` (its `limit` does not apply), oldest first: the export.
pub fn search_all(path: &Path, query: &Query) -> Result<Vec<StoredRecord>, AuditError> {
    let mut found = Vec::new();
    for_each(path, |stored| {
        if query.matches(stored.seq, &stored.record) {
            found.push(stored);
        }
    })?;
    Ok(found)
}

fn for_each(path: &Path, mut f: impl FnMut(StoredRecord)) -> Result<(), AuditError> {
    let Some(mut reader) = log::Reader::open(path, 0)? else {
        return Ok(());
    };
    while let Some((line, _)) = reader.next_line()? {
        // A damaged line is skipped here; `kefu audit verify` is where damage is reported.
        if let Ok(stored) = serde_json::from_slice::<StoredRecord>(line) {
            f(stored);
        }
    }
    Ok(())
}
