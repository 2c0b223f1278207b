//! OTLP/HTTP export of the audit trail: reads the durable log from a persisted cursor, turns
//! each line into an OpenTelemetry `LogRecord` and POSTs `ExportLogsServiceRequest`s
//! (protobuf) to `{endpoint}/v1/logs`.
//!
//! The exporter never drops: it sends only what is already on disk, moves its cursor
//! (`DIR/audit/otlp.cursor`: segment, byte offset in it, seq) only after the collector said yes, and retries with backoff
//! while it says no or cannot be reached — it lags instead. Delivery is at least once (a crash
//! between the collector's yes and the cursor's write resends that batch); every record carries
//! `kefu.audit.seq` so a collector can drop a repeat.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use super::log::{Reader, StoredRecord, audit_dir, segments};
use super::{Audit, AuditError, Decision};

/// Records per request: OTLP collectors take a few MB per request by default.
const BATCH: usize = 1000;
/// How often to look for new records when nothing said there are any (another process's).
const POLL: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where the exporter stands: the segment (its first seq) and byte offset after the last
/// exported line, and that line's seq. Stored as the text `SEGMENT OFFSET SEQ`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub segment: u64,
    pub offset: u64,
    pub seq: u64,
}

fn cursor_path(data_dir: &Path) -> PathBuf {
    audit_dir(data_dir).join("otlp.cursor")
}

/// Reads the cursor file. Versions before segments wrote `OFFSET SEQ` into the single
/// `audit.log`, which is now the segment starting at seq 1, so that is where such a cursor
/// points. A cursor whose segment is gone is found again by its seq (see [`read_batch`]).
fn read_cursor(path: &Path) -> Cursor {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Cursor::default();
    };
    parse_cursor(&text).unwrap_or_else(|| {
        tracing::warn!(path = %path.display(), "unreadable OTLP cursor; exporting from the start");
        Cursor::default()
    })
}

fn parse_cursor(text: &str) -> Option<Cursor> {
    let numbers = text
        .split_whitespace()
        .map(str::parse::<u64>)
        .collect::<Result<Vec<u64>, _>>()
        .ok()?;
    match numbers[..] {
        [segment, offset, seq] => Some(Cursor {
            segment,
            offset,
            seq,
        }),
        [offset, seq] => Some(Cursor {
            segment: 1,
            offset,
            seq,
        }),
        _ => None,
    }
}

/// Writes the cursor atomically (a new file renamed over the old), so a crash leaves the old
/// or the new one, never half of either.
fn write_cursor(path: &Path, cursor: Cursor) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("cursor.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    writeln!(file, "{} {} {}", cursor.segment, cursor.offset, cursor.seq)?;
    file.sync_data()?;
    std::fs::rename(&tmp, path)
}

/// Starts exporting the trail of `data_dir` to the OTLP/HTTP collector at `endpoint`
/// (`http://host:4318`); runs until `stop` is cancelled.
pub fn spawn(
    audit: &Audit,
    data_dir: &Path,
    endpoint: &str,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, AuditError> {
    let client = client()?;
    let url = format!("{}/v1/logs", endpoint.trim_end_matches('/'));
    let exporter = Exporter {
        client,
        url: Arc::from(url),
        dir: audit_dir(data_dir),
        cursor_file: cursor_path(data_dir),
    };
    let durable = audit.durable();
    Ok(tokio::spawn(exporter.run(durable, stop)))
}

fn client() -> Result<reqwest::Client, AuditError> {
    // rustls with ring and the OS's certificates, as the connectors' HTTP drivers do.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            use rustls_platform_verifier::BuilderVerifierExt;
            b.with_platform_verifier()
        })
        .map_err(|e| AuditError::Io(format!("OTLP export: cannot set up TLS: {e}")))?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| AuditError::Io(format!("OTLP export: cannot build the HTTP client: {e}")))
}

struct Exporter {
    client: reqwest::Client,
    url: Arc<str>,
    dir: PathBuf,
    cursor_file: PathBuf,
}

impl Exporter {
    async fn run(
        self,
        mut durable: Option<tokio::sync::watch::Receiver<u64>>,
        stop: CancellationToken,
    ) {
        let mut cursor = read_cursor(&self.cursor_file);
        let mut backoff = Duration::from_millis(100);
        tracing::info!(url = %self.url, seq = cursor.seq, "exporting the audit trail over OTLP");
        loop {
            let limit = durable.as_ref().map_or(u64::MAX, |d| *d.borrow());
            let dir = self.dir.clone();
            let from = cursor;
            let batch = tokio::task::spawn_blocking(move || read_batch(&dir, from, limit)).await;
            let (records, next) = match batch {
                Ok(Ok(found)) => found,
                Ok(Err(error)) => {
                    tracing::error!(%error, "cannot read the audit log for export");
                    (Vec::new(), cursor)
                }
                Err(error) => {
                    tracing::error!(%error, "audit export read stopped");
                    (Vec::new(), cursor)
                }
            };
            if records.is_empty() {
                let changed = async {
                    match durable.as_mut() {
                        Some(d) => {
                            if d.changed().await.is_err() {
                                // The writer stopped: nothing more will come from it.
                                std::future::pending::<()>().await;
                            }
                        }
                        None => tokio::time::sleep(POLL).await,
                    }
                };
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = changed => {}
                    () = tokio::time::sleep(POLL) => {}
                }
                continue;
            }
            match self.send(&records).await {
                Ok(()) => {
                    cursor = next;
                    backoff = Duration::from_millis(100);
                    let file = self.cursor_file.clone();
                    let saved =
                        tokio::task::spawn_blocking(move || write_cursor(&file, cursor)).await;
                    if !matches!(saved, Ok(Ok(()))) {
                        tracing::warn!(
                            "cannot save the OTLP cursor; a restart resends some records"
                        );
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, url = %self.url, retry_in_ms = backoff.as_millis() as u64, "OTLP export failed; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn send(&self, records: &[StoredRecord]) -> Result<(), String> {
        let body = request(records).encode_to_vec();
        let response = self
            .client
            .post(&*self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {status}"))
        }
    }
}

/// Up to [`BATCH`] complete lines after `cursor` in the trail in `dir`, none past `limit`
/// (the durable seq), and the cursor after them.
///
/// The segments are listed before any is read: a segment with a later one in that list was
/// closed before the listing (the writer starts the next segment only after its last batch is
/// fsynced), so reading it to its end saw all of it and going on to the next loses nothing.
/// The newest segment in the list is read up to its current end and no further. A cursor whose
/// segment is not there (a fresh cursor, or one moved over from another trail) starts at the
/// segment that holds the seq after it; lines up to its seq are skipped, never sent twice.
fn read_batch(
    dir: &Path,
    cursor: Cursor,
    limit: u64,
) -> Result<(Vec<StoredRecord>, Cursor), AuditError> {
    let segments = segments(dir)?;
    let (mut index, mut offset) = match segments.iter().position(|s| s.first == cursor.segment) {
        Some(index) => (index, cursor.offset),
        None => (
            segments
                .iter()
                .rposition(|s| s.first <= cursor.seq.saturating_add(1))
                .unwrap_or(0),
            0,
        ),
    };
    let mut out = Vec::new();
    let mut next = cursor;
    while let Some(segment) = segments.get(index) {
        if let Some(mut reader) = Reader::open(&segment.path, offset)? {
            while out.len() < BATCH {
                let Some((line, end)) = reader.next_line()? else {
                    break;
                };
                let stored: StoredRecord = serde_json::from_slice(line).map_err(|e| {
                    AuditError::Corrupt(format!(
                        "{} line after seq {}: {e}",
                        segment.name(),
                        next.seq
                    ))
                })?;
                if stored.seq > limit {
                    return Ok((out, next));
                }
                next = Cursor {
                    segment: segment.first,
                    offset: end,
                    seq: next.seq.max(stored.seq),
                };
                if stored.seq > cursor.seq {
                    out.push(stored);
                }
            }
        }
        if out.len() >= BATCH {
            break;
        }
        index += 1;
        offset = 0;
    }
    Ok((out, next))
}

/// The OTLP request for `records`: one resource (`service.name = kefu`), one scope
/// (`kefu.audit`), one log record each.
pub fn request(records: &[StoredRecord]) -> ExportLogsServiceRequest {
    let log_records = records.iter().map(log_record).collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![string("service.name", "kefu")],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "kefu.audit".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..InstrumentationScope::default()
                }),
                log_records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

fn log_record(stored: &StoredRecord) -> LogRecord {
    let r = &stored.record;
    let nanos = u64::try_from(r.at_ms)
        .unwrap_or(0)
        .saturating_mul(1_000_000);
    let (severity, text) = match r.decision {
        Decision::Allow => (SeverityNumber::Info, "INFO"),
        Decision::Deny => (SeverityNumber::Warn, "WARN"),
    };
    let mut attributes = vec![
        int("kefu.audit.seq", stored.seq),
        string("kefu.audit.hash", &stored.hash),
        string("kefu.audit.prev", &stored.prev),
        string("kefu.audit.actor", &r.actor),
        string("kefu.audit.action", &r.action),
        string("kefu.audit.resource", &r.resource),
        string("kefu.audit.decision", r.decision.as_str()),
        KeyValue {
            key: "kefu.audit.policies".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: r
                        .policies
                        .iter()
                        .map(|p| AnyValue {
                            value: Some(any_value::Value::StringValue(p.clone())),
                        })
                        .collect(),
                })),
            }),
            ..KeyValue::default()
        },
    ];
    if let Some(ip) = &r.ip {
        attributes.push(string("client.address", ip));
    }
    if let Some(size) = r.result_size {
        attributes.push(int("kefu.audit.result_size", size));
    }
    if let Some(detail) = &r.detail {
        attributes.push(string("kefu.audit.detail", &detail.to_string()));
    }
    LogRecord {
        time_unix_nano: nanos,
        observed_time_unix_nano: nanos,
        severity_number: severity as i32,
        severity_text: text.into(),
        event_name: "kefu.audit".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(format!(
                "{} {} {}: {}",
                r.actor,
                r.action,
                r.resource,
                r.decision.as_str()
            ))),
        }),
        attributes,
        ..LogRecord::default()
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: u64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(
                i64::try_from(value).unwrap_or(i64::MAX),
            )),
        }),
        ..KeyValue::default()
    }
}

#[cfg(test)]
mod tests {
    use super::{Cursor, parse_cursor};

    #[test]
    fn cursors_of_both_formats_are_read() {
        assert_eq!(
            parse_cursor("4097 1234 56\n"),
            Some(Cursor {
                segment: 4097,
                offset: 1234,
                seq: 56
            })
        );
        // Before segments: `OFFSET SEQ` in `audit.log`, which became the segment of seq 1.
        assert_eq!(
            parse_cursor("1234 56\n"),
            Some(Cursor {
                segment: 1,
                offset: 1234,
                seq: 56
            })
        );
        assert_eq!(parse_cursor("12 x 56"), None);
        assert_eq!(parse_cursor(""), None);
    }
}
