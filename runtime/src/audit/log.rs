//! The durable, hash-chained audit log: one JSON line per record in `DIR/audit/audit.log`,
//! appended by a single writer thread with group commit (take a batch, write it, fsync, then
//! acknowledge every record of it).
//!
//! A line is `{"seq":N,"prev":"<hex>","hash":"<hex>","record":{…}}`, where `hash` is SHA-256
//! over `prev`, `seq` and the exact bytes of `record` as they stand in the line. Hashing the
//! stored bytes (not a re-serialisation) means verification needs no canonical form: an edit of
//! any byte, a deleted line or a renumbered one breaks the chain at that line.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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

/// The file of the log in `data_dir`.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("audit.log")
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

/// Opens (creating) the log and finds the head of its chain. A torn last line (a write that
/// a crash cut short, so it was never acknowledged) is cut off.
pub(super) fn open(path: &Path) -> Result<(File, Head), AuditError> {
    let io = |e: std::io::Error| AuditError::Io(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        // Make the new file's directory entry durable too.
        if let Some(dir) = path.parent()
            && let Ok(dir) = File::open(dir)
        {
            let _ = dir.sync_all();
        }
        return Ok((file, Head::genesis()));
    }
    // Read the tail, enough for the last complete line of any sane size.
    let mut window = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut tail = Vec::new();
        Read::read_to_end(&mut file, &mut tail).map_err(io)?;
        let Some(end) = tail.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                // Not one complete line: the whole file is a torn first write.
                tracing::warn!(path = %path.display(), "audit log holds only a torn line; cut off");
                file.set_len(0).map_err(io)?;
                return Ok((file, Head::genesis()));
            }
            window *= 4;
            continue;
        };
        let complete = start + end as u64 + 1;
        let before = tail[..end].iter().rposition(|&b| b == b'\n');
        if before.is_none() && start > 0 {
            window *= 4;
            continue;
        }
        if complete < len {
            tracing::warn!(
                path = %path.display(),
                bytes = len - complete,
                "audit log ends in a torn line (never acknowledged); cut off"
            );
            file.set_len(complete).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let last = &tail[before.map_or(0, |b| b + 1)..end];
        let line: RawLine<'_> = serde_json::from_slice(last).map_err(|e| {
            AuditError::Corrupt(format!("the last line of {}: {e}", path.display()))
        })?;
        return Ok((
            file,
            Head {
                seq: line.seq,
                hash: line.hash,
            },
        ));
    }
}

/// The writer thread: takes what is queued (up to [`MAX_BATCH`]), appends it as one write,
/// fsyncs, then acknowledges. Publishes the durable sequence number for the exporter.
pub(super) fn run_writer(
    mut file: File,
    mut head: Head,
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
        let mut next = head.clone();
        let mut seqs = Vec::with_capacity(batch.len());
        for pending in &batch {
            let seq = next.seq + 1;
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
        let before = file.metadata().map(|m| m.len());
        let outcome = match file.write_all(&buffer).and_then(|()| file.sync_data()) {
            Ok(()) => {
                head = next;
                durable.send_replace(head.seq);
                Ok(())
            }
            Err(error) => {
                // Take back a partly written batch so the chain on disk stays whole; these
                // records were not acknowledged and their producers hear so.
                if let Ok(before) = before {
                    let _ = file.set_len(before);
                }
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

/// Reads the log line by line from a byte offset: each complete line with the offset after it.
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
    /// 1-based line number in the file.
    pub line: u64,
    pub problem: String,
}

/// Walks the whole log: the number of records when every line fits its predecessor.
pub fn verify(path: &Path) -> Result<Result<u64, Break>, AuditError> {
    let Some(mut reader) = Reader::open(path, 0)? else {
        return Ok(Ok(0));
    };
    let mut head = Head::genesis();
    let mut line_no = 0;
    let mut end = 0;
    while let Some((bytes, offset)) = reader.next_line()? {
        line_no += 1;
        end = offset;
        let fail = |problem: String| {
            Ok(Err(Break {
                line: line_no,
                problem,
            }))
        };
        let line: RawLine<'_> = match serde_json::from_slice(bytes) {
            Ok(line) => line,
            Err(e) => return fail(format!("not an audit line: {e}")),
        };
        if line.seq != head.seq + 1 {
            return fail(format!(
                "sequence {} follows {} (a line is missing or out of place)",
                line.seq, head.seq
            ));
        }
        if line.prev != head.hash {
            return fail(
                "`prev` does not match the previous line's hash (a line before it was removed or \
                 changed)"
                    .to_owned(),
            );
        }
        let hash = chain_hash(&line.prev, line.seq, line.record.get().as_bytes());
        if hash != line.hash {
            return fail("the hash does not match the content (the line was edited)".to_owned());
        }
        if let Err(e) = serde_json::from_str::<AuditRecord>(line.record.get()) {
            return fail(format!("the record is not an audit record: {e}"));
        }
        head = Head {
            seq: line.seq,
            hash: line.hash,
        };
    }
    let len = std::fs::metadata(path)
        .map_err(|e| AuditError::Io(e.to_string()))?
        .len();
    if end < len {
        return Ok(Err(Break {
            line: line_no + 1,
            problem: "the file ends in an incomplete line".to_owned(),
        }));
    }
    Ok(Ok(head.seq))
}
