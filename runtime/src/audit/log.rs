//! The durable, hash-chained audit log: one JSON line per record, appended by a single writer
//! thread with group commit (take a batch, write it, fsync, then acknowledge every record of
//! it), in segment files `DIR/audit/audit-<first seq, 20 digits>.log` that follow each other.
//!
//! A line is `{"seq":N,"prev":"<hex>","hash":"<hex>","record":{…}}`, where `hash` is SHA-256
//! over `prev`, `seq` and the exact bytes of `record` as they stand in the line. Hashing the
//! stored bytes (not a re-serialisation) means verification needs no canonical form: an edit of
//! any byte, a deleted line or a renumbered one breaks the chain at that line.
//!
//! The chain runs across segments: the first line of a segment has as `prev` the hash of the
//! last line of the one before. When the segment being written reaches its size (after a whole
//! group commit, so a batch never straddles two files) the writer creates the next one, named
//! by the seq its first line will have, and fsyncs the directory before writing to it. A crash
//! can therefore leave only: the newest segment ending in a torn line (cut at the next start,
//! as it was never acknowledged), or an empty newest segment (adopted at the next start, since
//! its name is exactly the next seq). Older segments are never written again.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};

use super::{AuditError, AuditRecord};

/// The `prev` of the first line: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How many records one group commit takes at most: large enough that one fsync covers a
/// burst, small enough that the first record of a batch does not wait long for the last.
const MAX_BATCH: usize = 8192;

/// The size after which the writer starts a new segment (a segment ends at the first group
/// commit that reaches it, so it can be larger by up to one batch).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// The single file of versions before segments; renamed to its segment name at open.
pub const LEGACY_NAME: &str = "audit.log";

/// The folder of the trail in `data_dir`.
pub fn audit_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit")
}

/// The file name of the segment whose first line has sequence number `first`: fixed width, so
/// names sort as their numbers do.
pub fn segment_name(first: u64) -> String {
    format!("audit-{first:020}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("audit-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One segment file of the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The sequence number of its first line, as its name says.
    pub first: u64,
    pub path: PathBuf,
}

impl Segment {
    /// The file name, for messages.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The segments in `dir`, oldest first; a missing folder has none. A legacy `audit.log` not yet
/// renamed (a trail of an older version that no writer has opened since) counts as a segment
/// starting at its first line's seq.
pub fn segments(dir: &Path) -> Result<Vec<Segment>, AuditError> {
    let io = |e: std::io::Error| AuditError::Io(format!("{}: {e}", dir.display()));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first) = parse_segment_name(name) {
            found.push(Segment {
                first,
                path: entry.path(),
            });
        } else if name == LEGACY_NAME {
            found.push(Segment {
                first: first_seq(&entry.path())?.unwrap_or(1),
                path: entry.path(),
            });
        }
    }
    found.sort_by_key(|s| (s.first, parse_segment_name(&s.name()).is_some()));
    Ok(found)
}

/// The seq of the first complete line of `path`, if it has one.
fn first_seq(path: &Path) -> Result<Option<u64>, AuditError> {
    let Some(mut reader) = Reader::open(path, 0)? else {
        return Ok(None);
    };
    Ok(match reader.next_line()? {
        Some((line, _)) => serde_json::from_slice::<RawLine<'_>>(line)
            .ok()
            .map(|l| l.seq),
        None => None,
    })
}

/// Makes the creation or renaming of a file in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A stored line with its record still as the bytes that were hashed.
#[derive(Deserialize)]
pub struct RawLine<'a> {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    #[serde(borrow)]
    pub record: &'a RawValue,
}

/// A stored line with its record parsed (what the search API and the exporter hand out).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRecord {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    pub record: AuditRecord,
}

/// The chain hash of a line: SHA-256 over `prev`, `seq` and the record's bytes, each followed
/// by a newline so no two different triples hash the same text.
pub fn chain_hash(prev: &str, seq: u64, record: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(seq.to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(record);
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// One record waiting for the writer, and where to say it is durable.
pub(super) struct Pending {
    pub record: AuditRecord,
    pub done: oneshot::Sender<Result<u64, AuditError>>,
}

/// Where the chain stands: the last line's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Head {
    fn genesis() -> Head {
        Head {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// The writer's state: the segment being written, its length, and the head of the chain.
pub(super) struct Writer {
    dir: PathBuf,
    file: File,
    /// Bytes in `file` (all of them whole, fsynced lines).
    len: u64,
    head: Head,
    segment_bytes: u64,
    /// The first seq of the segment being written, shared with the handles (`Audit::path`).
    current: Arc<AtomicU64>,
}

impl Writer {
    /// The head of the chain (the last durable line).
    pub(super) fn head(&self) -> &Head {
        &self.head
    }

    /// The first seq of the segment being written, as the handles see it.
    pub(super) fn current(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.current)
    }

    /// Closes the segment being written and starts the next one, named by the next seq. The
    /// new file and its directory entry are durable before anything is written to it; a file of
    /// that name left empty by a crash between the two is taken over.
    fn rotate(&mut self) -> Result<(), AuditError> {
        let first = self.head.seq.saturating_add(1);
        let path = self.dir.join(segment_name(first));
        let io = |e: std::io::Error| AuditError::Io(format!("{}: {e}", path.display()));
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        if file.metadata().map_err(io)?.len() != 0 {
            return Err(AuditError::Corrupt(format!(
                "{} already holds lines; not writing to it",
                path.display()
            )));
        }
        sync_dir(&self.dir).map_err(io)?;
        self.file = file;
        self.len = 0;
        self.current.store(first, Ordering::Release);
        Ok(())
    }
}

/// Reads the last complete line of `file` for the head of its chain; `None` when it has no
/// complete line. With `cut`, a torn end (a write a crash cut short, so never acknowledged) is
/// cut off and the file's new length returned.
fn tail_head(file: &mut File, path: &Path, cut: bool) -> Result<(Option<Head>, u64), AuditError> {
    let io = |e: std::io::Error| AuditError::Io(format!("{}: {e}", path.display()));
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Ok((None, 0));
    }
    // Read the tail, enough for the last complete line of any sane size.
    let mut window = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut tail = Vec::new();
        Read::by_ref(file)
            .take(len - start)
            .read_to_end(&mut tail)
            .map_err(io)?;
        let Some(end) = tail.iter().rposition(|&b| b == b'\n') else {
            if start > 0 {
                window *= 4;
                continue;
            }
            // Not one complete line: the whole file is a torn first write.
            if !cut {
                return Ok((None, len));
            }
            tracing::warn!(path = %path.display(), "audit segment holds only a torn line; cut off");
            file.set_len(0).map_err(io)?;
            file.sync_all().map_err(io)?;
            return Ok((None, 0));
        };
        let before = tail[..end].iter().rposition(|&b| b == b'\n');
        if before.is_none() && start > 0 {
            window *= 4;
            continue;
        }
        let complete = start + end as u64 + 1;
        let mut kept = len;
        if complete < len && cut {
            tracing::warn!(
                path = %path.display(),
                bytes = len - complete,
                "audit segment ends in a torn line (never acknowledged); cut off"
            );
            file.set_len(complete).map_err(io)?;
            file.sync_all().map_err(io)?;
            kept = complete;
        }
        let last = &tail[before.map_or(0, |b| b + 1)..end];
        let line: RawLine<'_> = serde_json::from_slice(last).map_err(|e| {
            AuditError::Corrupt(format!("the last line of {}: {e}", path.display()))
        })?;
        return Ok((
            Some(Head {
                seq: line.seq,
                hash: line.hash,
            }),
            kept,
        ));
    }
}

/// Renames a legacy `audit.log` (versions before segments) to the segment name of its first
/// line, so the trail is only segments from here on.
fn adopt_legacy(dir: &Path) -> Result<(), AuditError> {
    let legacy = dir.join(LEGACY_NAME);
    if !legacy.exists() {
        return Ok(());
    }
    let first = first_seq(&legacy)?.unwrap_or(1);
    let target = dir.join(segment_name(first));
    if target.exists() {
        return Err(AuditError::Corrupt(format!(
            "both {} and {} exist; move one of them away",
            legacy.display(),
            target.display()
        )));
    }
    let io = |e: std::io::Error| AuditError::Io(format!("{}: {e}", legacy.display()));
    std::fs::rename(&legacy, &target).map_err(io)?;
    sync_dir(dir).map_err(io)?;
    tracing::info!(from = %legacy.display(), to = %target.display(), "audit log renamed to its first segment");
    Ok(())
}

/// Opens (creating) the trail in `dir` and finds the head of its chain in the newest segment
/// (or, when that one is empty, the newest one before it with a line).
pub(super) fn open(dir: &Path, segment_bytes: u64) -> Result<Writer, AuditError> {
    let io = |e: std::io::Error| AuditError::Io(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    adopt_legacy(dir)?;
    let segments = segments(dir)?;
    let open_file = |path: &Path| {
        OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| AuditError::Io(format!("{}: {e}", path.display())))
    };
    let Some((newest, older)) = segments.split_last() else {
        let path = dir.join(segment_name(1));
        let file = open_file(&path)?;
        sync_dir(dir).map_err(io)?;
        return Ok(Writer {
            dir: dir.to_path_buf(),
            file,
            len: 0,
            head: Head::genesis(),
            segment_bytes,
            current: Arc::new(AtomicU64::new(1)),
        });
    };
    let mut file = open_file(&newest.path)?;
    let (head, len) = tail_head(&mut file, &newest.path, true)?;
    let head = match head {
        Some(head) => head,
        None => {
            // An empty newest segment: created by a rotation just before a crash (or before
            // the first write). The chain continues from the segments before it.
            let mut head = Head::genesis();
            for segment in older.iter().rev() {
                let mut older_file = File::open(&segment.path)
                    .map_err(|e| AuditError::Io(format!("{}: {e}", segment.path.display())))?;
                if let (Some(found), _) = tail_head(&mut older_file, &segment.path, false)? {
                    head = found;
                    break;
                }
            }
            if newest.first != head.seq.saturating_add(1) {
                return Err(AuditError::Corrupt(format!(
                    "{} is empty but the chain before it ends at seq {}",
                    newest.path.display(),
                    head.seq
                )));
            }
            head
        }
    };
    let mut writer = Writer {
        dir: dir.to_path_buf(),
        file,
        len,
        head,
        segment_bytes,
        current: Arc::new(AtomicU64::new(newest.first)),
    };
    if writer.len >= writer.segment_bytes
        && let Err(error) = writer.rotate()
    {
        // Full: the last run stopped after a commit and before the rotation. Failing again
        // here is not a reason to refuse records: the segment grows until a rotation works.
        tracing::error!(%error, "cannot start a new audit segment");
    }
    Ok(writer)
}

/// The writer thread: takes what is queued (up to [`MAX_BATCH`]), appends it as one write,
/// fsyncs, starts the next segment when this one is full, then acknowledges. Publishes the
/// durable sequence number for the exporter.
pub(super) fn run_writer(
    mut writer: Writer,
    mut queue: mpsc::Receiver<Pending>,
    durable: &watch::Sender<u64>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut buffer: Vec<u8> = Vec::with_capacity(1 << 20);
    while queue.blocking_recv().map(|p| batch.push(p)).is_some() {
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        buffer.clear();
        let mut next = writer.head.clone();
        let mut seqs = Vec::with_capacity(batch.len());
        for pending in &batch {
            let seq = next.seq.saturating_add(1);
            // A record is plain data; serialising it cannot fail, but a failure must not be
            // hidden, so it turns into the error acknowledgement below.
            let Ok(record) = serde_json::to_string(&pending.record) else {
                seqs.push(None);
                continue;
            };
            let hash = chain_hash(&next.hash, seq, record.as_bytes());
            buffer.extend_from_slice(b"{\"seq\":");
            buffer.extend_from_slice(seq.to_string().as_bytes());
            buffer.extend_from_slice(b",\"prev\":\"");
            buffer.extend_from_slice(next.hash.as_bytes());
            buffer.extend_from_slice(b"\",\"hash\":\"");
            buffer.extend_from_slice(hash.as_bytes());
            buffer.extend_from_slice(b"\",\"record\":");
            buffer.extend_from_slice(record.as_bytes());
            buffer.extend_from_slice(b"}\n");
            next = Head { seq, hash };
            seqs.push(Some(seq));
        }
        let outcome = match writer
            .file
            .write_all(&buffer)
            .and_then(|()| writer.file.sync_data())
        {
            Ok(()) => {
                writer.head = next;
                writer.len += buffer.len() as u64;
                durable.send_replace(writer.head.seq);
                // Rotate before acknowledging: once a producer hears back, the segments are
                // as a restart will find them (no second writer races a late rotation).
                if writer.len >= writer.segment_bytes
                    && let Err(error) = writer.rotate()
                {
                    // The records are durable; the segment just grows until a rotation works.
                    tracing::error!(%error, "cannot start a new audit segment");
                }
                Ok(())
            }
            Err(error) => {
                // Take back a partly written batch so the chain on disk stays whole; these
                // records were not acknowledged and their producers hear so.
                let _ = writer.file.set_len(writer.len);
                tracing::error!(error = %error, "audit records not written");
                Err(AuditError::Io(error.to_string()))
            }
        };
        for (pending, seq) in batch.drain(..).zip(seqs) {
            let answer = match (&outcome, seq) {
                (Ok(()), Some(seq)) => Ok(seq),
                (Ok(()), None) => Err(AuditError::Io("the record could not be encoded".into())),
                (Err(e), _) => Err(e.clone()),
            };
            // A producer that stopped waiting does not need the answer.
            let _ = pending.done.send(answer);
        }
    }
}

/// Reads a segment line by line from a byte offset: each complete line with the offset after it.
pub struct Reader {
    lines: BufReader<File>,
    offset: u64,
    buffer: Vec<u8>,
}

impl Reader {
    /// Opens `path` at `offset`; a missing file reads as empty.
    pub fn open(path: &Path, offset: u64) -> Result<Option<Reader>, AuditError> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AuditError::Io(format!("{}: {e}", path.display()))),
        };
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| AuditError::Io(e.to_string()))?;
        Ok(Some(Reader {
            lines: BufReader::with_capacity(1 << 16, file),
            offset,
            buffer: Vec::new(),
        }))
    }

    /// The next complete line (without its newline) and the offset after it; `None` at the end
    /// or before a line still being written.
    pub fn next_line(&mut self) -> Result<Option<(&[u8], u64)>, AuditError> {
        self.buffer.clear();
        let read = self
            .lines
            .read_until(b'\n', &mut self.buffer)
            .map_err(|e| AuditError::Io(e.to_string()))?;
        if read == 0 || self.buffer.last() != Some(&b'\n') {
            return Ok(None);
        }
        self.offset += read as u64;
        self.buffer.pop();
        Ok(Some((&self.buffer, self.offset)))
    }
}

/// The first place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The segment's file name.
    pub segment: String,
    /// 1-based line number in the segment.
    pub line: u64,
    pub problem: String,
}

/// What an intact trail holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Records (the last seq: the chain starts at 1).
    pub records: u64,
    pub segments: usize,
}

/// Walks every segment of the trail in `dir`, oldest first, line by line: each line must
/// follow its predecessor (the last line of the previous segment for a segment's first), the
/// first line of all must be seq 1 (a trail starting later lost its first segments), and a
/// segment's name must be the seq of its first line.
pub fn verify(dir: &Path) -> Result<Result<Verified, Break>, AuditError> {
    let segments = segments(dir)?;
    let mut head: Option<Head> = None;
    for segment in &segments {
        let name = segment.name();
        let Some(mut reader) = Reader::open(&segment.path, 0)? else {
            return Err(AuditError::Io(format!(
                "{} disappeared while being read",
                segment.path.display()
            )));
        };
        let mut line_no = 0;
        let mut end = 0;
        while let Some((bytes, offset)) = reader.next_line()? {
            line_no += 1;
            end = offset;
            let fail = |problem: String| {
                Ok(Err(Break {
                    segment: name.clone(),
                    line: line_no,
                    problem,
                }))
            };
            let line: RawLine<'_> = match serde_json::from_slice(bytes) {
                Ok(line) => line,
                Err(e) => return fail(format!("not an audit line: {e}")),
            };
            if line_no == 1 && line.seq != segment.first && name != LEGACY_NAME {
                return fail(format!(
                    "the segment's name says it starts at sequence {}, its first line is {}",
                    segment.first, line.seq
                ));
            }
            let (expected_seq, expected_prev) = head
                .as_ref()
                .map_or((1, GENESIS), |h| (h.seq.saturating_add(1), h.hash.as_str()));
            if line.seq != expected_seq {
                return fail(match &head {
                    None => format!(
                        "the trail starts at sequence {}, not 1 (the segments before it are \
                         missing)",
                        line.seq
                    ),
                    Some(h) if line_no == 1 => format!(
                        "sequence {} follows {} (a whole segment before this one is missing, \
                         or lines at the end of the previous one)",
                        line.seq, h.seq
                    ),
                    Some(h) => format!(
                        "sequence {} follows {} (a line is missing or out of place)",
                        line.seq, h.seq
                    ),
                });
            }
            if line.prev != expected_prev {
                return fail(
                    "`prev` does not match the previous line's hash (a line before it was removed \
                     or changed)"
                        .to_owned(),
                );
            }
            let hash = chain_hash(&line.prev, line.seq, line.record.get().as_bytes());
            if hash != line.hash {
                return fail(
                    "the hash does not match the content (the line was edited)".to_owned(),
                );
            }
            if let Err(e) = serde_json::from_str::<AuditRecord>(line.record.get()) {
                return fail(format!("the record is not an audit record: {e}"));
            }
            head = Some(Head {
                seq: line.seq,
                hash: line.hash,
            });
        }
        let len = std::fs::metadata(&segment.path)
            .map_err(|e| AuditError::Io(format!("{}: {e}", segment.path.display())))?
            .len();
        if end < len {
            return Ok(Err(Break {
                segment: name,
                line: line_no + 1,
                problem: "the segment ends in an incomplete line".to_owned(),
            }));
        }
        let next = head.as_ref().map_or(1, |h| h.seq.saturating_add(1));
        if line_no == 0 && segment.first != next && name != LEGACY_NAME {
            return Ok(Err(Break {
                segment: name,
                line: 1,
                problem: format!(
                    "the segment is empty and named for sequence {}, but the chain before it \
                     ends at {}",
                    segment.first,
                    next - 1
                ),
            }));
        }
    }
    Ok(Ok(Verified {
        records: head.map_or(0, |h| h.seq),
        segments: segments.len(),
    }))
}
