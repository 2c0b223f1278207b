//! The audit trail: who did what to which resource, the decision and the policies behind it,
//! when, from where and how much came back — for every data access and administrative change.
//!
//! Records are written durably first ([`log`]: hash-chained JSON lines in size-bounded segment
//! files, group-committed by one writer thread behind a bounded queue, so a burst slows
//! producers down instead of losing records) and exported from those files as OpenTelemetry
//! log records over OTLP/HTTP ([`export`]), with a persisted cursor, so a collector that is
//! down only delays them. `kefu audit verify` walks the chain across the segments
//! (`cli::audit`); `GET /api/admin/audit` searches them, newest segment first.

pub mod api;
pub mod export;
pub mod log;

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

pub use log::{Break, DEFAULT_SEGMENT_BYTES, StoredRecord, Verified, verify};

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
    /// An allowed `action` on `resource` by a signed-in caller, now, from their address.
    pub fn by(
        caller: &crate::auth::Caller,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> AuditRecord {
        let mut record = AuditRecord::new(&caller.user.login, action, resource);
        record.ip.clone_from(&caller.ip);
        record
    }

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
    dir: PathBuf,
    /// The first seq of the segment being written (the writer moves it on at a rotation).
    current: Arc<AtomicU64>,
    durable: watch::Receiver<u64>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("dir", &self.inner.as_ref().map(|i| &i.dir))
            .finish()
    }
}

/// How the trail is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditOptions {
    /// The size after which the writer starts a new segment (default 64 MiB).
    pub segment_bytes: u64,
}

impl Default for AuditOptions {
    fn default() -> AuditOptions {
        AuditOptions {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

impl Audit {
    /// The trail of `data_dir` (segments in `DIR/audit/`), continuing its chain; starts the
    /// writer thread, which runs as long as a handle does.
    pub fn open(data_dir: &Path) -> Result<Audit, AuditError> {
        Audit::open_with(data_dir, AuditOptions::default())
    }

    /// [`Audit::open`] with other options (small segments in tests).
    pub fn open_with(data_dir: &Path, options: AuditOptions) -> Result<Audit, AuditError> {
        let dir = log::audit_dir(data_dir);
        let writer = log::open(&dir, options.segment_bytes.max(1))?;
        let (queue, receiver) = mpsc::channel(QUEUE);
        let (durable_tx, durable) = watch::channel(writer.head().seq);
        let current = writer.current();
        std::thread::Builder::new()
            .name("kefu-audit".into())
            .spawn(move || log::run_writer(writer, receiver, &durable_tx))
            .map_err(|e| AuditError::Io(format!("cannot start the writer: {e}")))?;
        Ok(Audit {
            inner: Some(Arc::new(Inner {
                queue,
                dir,
                current,
                durable,
            })),
        })
    }

    /// A handle that keeps nothing: for servers embedded without a data folder (tests, or a
    /// program that builds its own `AppState` and opens no trail).
    pub fn disabled() -> Audit {
        Audit { inner: None }
    }

    /// The folder of the trail's segments, when the trail is kept.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.as_ref().map(|i| i.dir.as_path())
    }

    /// The segment being written now, when the trail is kept. Older records are in the
    /// segments before it ([`log::segments`] of [`Audit::dir`]).
    pub fn path(&self) -> Option<PathBuf> {
        self.inner.as_ref().map(|i| {
            i.dir
                .join(log::segment_name(i.current.load(Ordering::Acquire)))
        })
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
        let Some(dir) = self.dir().map(Path::to_path_buf) else {
            return Ok(Page::default());
        };
        tokio::task::spawn_blocking(move || search(&dir, &query))
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

/// Finds `query`'s page in the trail in `dir`: segments newest first, each read oldest line
/// first (keeping only its newest matches), until the page is full. Segments whose first seq
/// is not below `before` are skipped unread, so recent pages never read old segments.
pub fn search(dir: &Path, query: &Query) -> Result<Page, AuditError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    // One more than the page, to know whether there is a next one.
    let wanted = limit + 1;
    let mut records: Vec<StoredRecord> = Vec::with_capacity(wanted);
    for segment in log::segments(dir)?.iter().rev() {
        if records.len() == wanted {
            break;
        }
        if query.before.is_some_and(|b| segment.first >= b) {
            continue;
        }
        let room = wanted - records.len();
        let mut newest = VecDeque::with_capacity(room);
        for_each(&segment.path, |stored| {
            if query.before.is_some_and(|b| stored.seq >= b) {
                // Lines are in seq order: the rest of the segment is newer still.
                return ControlFlow::Break(());
            }
            if query.matches(stored.seq, &stored.record) {
                if newest.len() == room {
                    newest.pop_front();
                }
                newest.push_back(stored);
            }
            ControlFlow::Continue(())
        })?;
        records.extend(newest.into_iter().rev());
    }
    let more = records.len() > limit;
    records.truncate(limit);
    let next = if more {
        records.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(Page { records, next })
}

/// Every record matching `query` (its `limit` does not apply) in the trail in `dir`, oldest
/// first, across all segments: the export.
pub fn search_all(dir: &Path, query: &Query) -> Result<Vec<StoredRecord>, AuditError> {
    let mut found = Vec::new();
    for segment in log::segments(dir)? {
        if query.before.is_some_and(|b| segment.first >= b) {
            break;
        }
        for_each(&segment.path, |stored| {
            if query.matches(stored.seq, &stored.record) {
                found.push(stored);
            }
            ControlFlow::Continue(())
        })?;
    }
    Ok(found)
}

fn for_each(
    path: &Path,
    mut f: impl FnMut(StoredRecord) -> ControlFlow<()>,
) -> Result<(), AuditError> {
    let Some(mut reader) = log::Reader::open(path, 0)? else {
        // Not there any more (a rotation does not remove files; someone did): nothing to read.
        return Ok(());
    };
    while let Some((line, _)) = reader.next_line()? {
        // A damaged line is skipped here; `kefu audit verify` is where damage is reported.
        if let Ok(stored) = serde_json::from_slice::<StoredRecord>(line)
            && f(stored).is_break()
        {
            break;
        }
    }
    Ok(())
}
