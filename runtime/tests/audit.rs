//! The audit trail (`docs/audit.md`): the hash chain across segments and `kefu audit verify`,
//! rotation (under concurrent writers, across restarts and crashes mid-rotation), the OTLP
//! export against a real receiver process (restarted mid-test), and the admin search API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use runtime::audit::log::{Segment, segment_name, segments};
use runtime::audit::{Audit, AuditOptions, AuditRecord, Decision, Query};
use runtime::server::{AppState, Database};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::chat::temp_dir;

fn record(i: u64) -> AuditRecord {
    AuditRecord::new(format!("user{}", i % 3), "read", format!("customers::{i}"))
        .decided(
            if i.is_multiple_of(5) {
                Decision::Deny
            } else {
                Decision::Allow
            },
            vec![format!("policy-{}", i % 2)],
        )
        .ip(Some("10.0.0.7".to_owned()))
        .result_size(i)
}

async fn write(audit: &Audit, range: std::ops::RangeInclusive<u64>) {
    for i in range {
        audit.try_record(record(i)).await.unwrap();
    }
}

fn verify(dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Segments of 4 KiB: about a dozen records each.
const SMALL: AuditOptions = AuditOptions {
    segment_bytes: 4096,
};

fn trail(dir: &Path) -> PathBuf {
    dir.join("audit")
}

fn segments_of(dir: &Path) -> Vec<Segment> {
    segments(&trail(dir)).unwrap()
}

/// The segment of `dir` starting at `first`.
fn segment(dir: &Path, first: u64) -> PathBuf {
    trail(dir).join(segment_name(first))
}

/// The lines of one segment, parsed.
fn lines_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every line of the trail, oldest segment first.
fn all_lines(dir: &Path) -> Vec<Value> {
    segments_of(dir)
        .iter()
        .flat_map(|s| lines_of(&s.path))
        .collect()
}

/// Checks the trail as a reader sees it: seqs 1..=`count` once each and in order across the
/// segments, each segment named by its first line's seq, each line's `prev` the hash before it
/// (across segment boundaries too). Returns the segments.
fn assert_whole(dir: &Path, count: u64) -> Vec<Segment> {
    let segments = segments_of(dir);
    let mut expected = 1;
    let mut prev = runtime::audit::log::GENESIS.to_owned();
    for segment in &segments {
        let lines = lines_of(&segment.path);
        if let Some(first) = lines.first() {
            assert_eq!(first["seq"], segment.first, "{}", segment.name());
        }
        for line in lines {
            assert_eq!(line["seq"], expected, "{}", segment.name());
            assert_eq!(line["prev"], prev.as_str(), "seq {expected}");
            prev = line["hash"].as_str().unwrap().to_owned();
            expected += 1;
        }
    }
    assert_eq!(expected, count + 1, "records missing at the end");
    let (ok, out) = verify(dir);
    assert!(ok, "{out}");
    assert!(
        out.starts_with(&format!("OK: {count} audit records")),
        "{out}"
    );
    segments
}

#[tokio::test]
async fn verify_finds_an_edit_and_a_deleted_line() {
    let dir = temp_dir("audit-verify");
    {
        let audit = Audit::open(&dir).unwrap();
        write(&audit, 1..=40).await;
    }
    // A second start continues the chain where the first left it.
    {
        let audit = Audit::open(&dir).unwrap();
        assert_eq!(audit.try_record(record(41)).await.unwrap(), 41);
    }
    let (ok, out) = verify(&dir);
    assert!(ok, "{out}");
    assert!(out.starts_with("OK: 41 audit records"), "{out}");

    let log = segment(&dir, 1);
    assert_eq!(segments_of(&dir).len(), 1, "64 MiB hold 41 records");
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    // One byte of line 20's record changed (its actor).
    let mut edited = lines.clone();
    let changed = edited[19].replacen("\"actor\":\"user", "\"actor\":\"usex", 1);
    assert_ne!(changed, edited[19]);
    edited[19] = &changed;
    std::fs::write(&log, edited.join("\n") + "\n").unwrap();
    let (ok, out) = verify(&dir);
    assert!(!ok, "{out}");
    assert!(out.contains("line 20:") && out.contains("edited"), "{out}");

    // Line 30 removed: line 30 now holds seq 31.
    let mut deleted = lines.clone();
    deleted.remove(29);
    std::fs::write(&log, deleted.join("\n") + "\n").unwrap();
    let (ok, out) = verify(&dir);
    assert!(!ok, "{out}");
    assert!(
        out.contains("line 30:") && out.contains("sequence 31 follows 29"),
        "{out}"
    );

    // The last line removed cannot be seen from the file alone; the count says so.
    std::fs::write(&log, original).unwrap();
    let (ok, out) = verify(&dir);
    assert!(ok && out.starts_with("OK: 41"), "{out}");
}

/// A receiver process: `otlp-receiver` appending what it gets to `out`.
struct Receiver(Child);

impl Receiver {
    fn start(addr: &str, out: &Path) -> (Receiver, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_otlp-receiver"))
            .args(["--addr", addr, "--out"])
            .arg(out)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned();
        (Receiver(child), addr)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn received(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn until_received(out: &Path, count: usize) -> Vec<Value> {
    for _ in 0..300 {
        let got = received(out);
        if got.len() >= count {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the receiver got {} of {count} records",
        received(out).len()
    );
}

#[tokio::test]
async fn otlp_export_delivers_every_record_once_across_a_receiver_restart() {
    otlp_export("audit-otlp", AuditOptions::default(), true, 1..=1).await;
}

#[tokio::test]
async fn otlp_export_crosses_segments() {
    otlp_export("audit-otlp-segments", SMALL, false, 40..=100).await;
}

/// Exports 700 records while the receiver goes away and comes back, then 50 more after the
/// exporter itself restarts from its saved cursor (rewritten in the format of versions before
/// segments when `old_cursor`): every record arrives exactly once, from `segments` segments.
async fn otlp_export(
    name: &str,
    options: AuditOptions,
    old_cursor: bool,
    segments: std::ops::RangeInclusive<usize>,
) {
    let dir = temp_dir(name);
    let out = dir.join("received.jsonl");
    let (receiver, addr) = Receiver::start("127.0.0.1:0", &out);
    let audit = Audit::open_with(&dir, options).unwrap();
    let endpoint = format!("http://{addr}");
    let stop = CancellationToken::new();
    let exporter = runtime::audit::export::spawn(&audit, &dir, &endpoint, stop.clone()).unwrap();
    write(&audit, 1..=300).await;
    until_received(&out, 300).await;

    // The collector goes away; records keep being written and wait for it.
    drop(receiver);
    write(&audit, 301..=700).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received(&out).len(), 300);
    let (_receiver, _) = Receiver::start(&addr, &out);
    until_received(&out, 700).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    exporter.await.unwrap();
    assert_eq!(received(&out).len(), 700, "a record arrived twice");

    // The exporter restarts from its cursor: `SEGMENT OFFSET SEQ` of the last line sent.
    let cursor_file = trail(&dir).join("otlp.cursor");
    let cursor: Vec<u64> = std::fs::read_to_string(&cursor_file)
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let holding_700 = segments_of(&dir)
        .iter()
        .rev()
        .find(|s| s.first <= 700)
        .unwrap()
        .first;
    assert_eq!(cursor[0], holding_700, "{cursor:?}");
    assert_eq!(cursor[2], 700, "{cursor:?}");
    if old_cursor {
        // Before segments the cursor was `OFFSET SEQ` in the one file, now segment 1.
        assert_eq!(cursor[0], 1);
        std::fs::write(&cursor_file, format!("{} {}\n", cursor[1], cursor[2])).unwrap();
    }
    write(&audit, 701..=750).await;
    let stop = CancellationToken::new();
    let exporter = runtime::audit::export::spawn(&audit, &dir, &endpoint, stop.clone()).unwrap();
    let got = until_received(&out, 750).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    exporter.await.unwrap();

    let got_again = received(&out);
    assert_eq!(got_again.len(), 750, "a record arrived twice");
    let mut seqs: Vec<i64> = got
        .iter()
        .map(|r| r["attributes"]["kefu.audit.seq"].as_i64().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=750).collect::<Vec<i64>>());

    let five = got
        .iter()
        .find(|r| r["attributes"]["kefu.audit.seq"] == 5)
        .unwrap();
    assert_eq!(five["resource"]["service.name"], "kefu");
    assert_eq!(five["scope"], "kefu.audit");
    assert_eq!(five["event_name"], "kefu.audit");
    assert_eq!(five["severity_text"], "WARN");
    assert_eq!(five["body"], "user2 read customers::5: deny");
    let attributes = &five["attributes"];
    assert_eq!(attributes["kefu.audit.actor"], "user2");
    assert_eq!(attributes["kefu.audit.action"], "read");
    assert_eq!(attributes["kefu.audit.resource"], "customers::5");
    assert_eq!(attributes["kefu.audit.decision"], "deny");
    assert_eq!(attributes["kefu.audit.policies"], json!(["policy-1"]));
    assert_eq!(attributes["client.address"], "10.0.0.7");
    assert_eq!(attributes["kefu.audit.result_size"], 5);
    assert!(five["time_unix_nano"].as_u64().unwrap() > 1_600_000_000_000_000_000);
    // The hashes sent are the ones in the local log, whatever segment holds the line.
    let local = all_lines(&dir);
    for record in &got {
        let seq = record["attributes"]["kefu.audit.seq"].as_u64().unwrap();
        let line = &local[usize::try_from(seq).unwrap() - 1];
        assert_eq!(line["seq"], seq);
        assert_eq!(record["attributes"]["kefu.audit.hash"], line["hash"]);
        assert_eq!(record["attributes"]["kefu.audit.prev"], line["prev"]);
    }
    let count = assert_whole(&dir, 750).len();
    assert!(segments.contains(&count), "{count} segments");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn segments_rotate_under_concurrent_writers_and_keep_the_chain() {
    let dir = temp_dir("audit-rotate");
    let audit = Audit::open_with(&dir, SMALL).unwrap();
    let tasks: Vec<_> = (0..8u64)
        .map(|task| {
            let audit = audit.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..300 {
                    seqs.push(audit.try_record(record(task * 1000 + i)).await.unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    acknowledged.sort_unstable();
    assert_eq!(acknowledged, (1..=2400).collect::<Vec<u64>>());

    let segments = assert_whole(&dir, 2400);
    assert!(segments.len() > 20, "{segments:?}");
    // A segment ends at the first commit that reaches 4 KiB (a batch holds at most 8 records
    // here, one per writer); only the newest is still below it.
    let (newest, closed) = segments.split_last().unwrap();
    for segment in closed {
        let len = std::fs::metadata(&segment.path).unwrap().len();
        assert!((4096..4096 + 8 * 1024).contains(&len), "{segment:?}: {len}");
    }
    assert!(std::fs::metadata(&newest.path).unwrap().len() < 4096);
    assert_eq!(audit.path().unwrap(), newest.path);

    // A restart continues the seq and the chain in the newest segment.
    drop(audit);
    let audit = Audit::open_with(&dir, SMALL).unwrap();
    assert_eq!(audit.try_record(record(1)).await.unwrap(), 2401);
    let segments = assert_whole(&dir, 2401);
    let last = lines_of(&segments.last().unwrap().path);
    assert_eq!(last.last().unwrap()["seq"], 2401);
    assert_eq!(segments.last().unwrap().path, newest.path);
}

#[tokio::test]
async fn a_crash_at_any_point_of_a_rotation_loses_nothing() {
    let dir = temp_dir("audit-crash");
    {
        let audit = Audit::open_with(&dir, SMALL).unwrap();
        write(&audit, 1..=50).await;
    }
    let before = assert_whole(&dir, 50);

    // Killed after the next segment was created, before anything was written to it.
    if std::fs::metadata(&before.last().unwrap().path)
        .unwrap()
        .len()
        > 0
    {
        std::fs::File::create(segment(&dir, 51)).unwrap();
    }
    {
        let audit = Audit::open_with(&dir, SMALL).unwrap();
        assert_eq!(audit.try_record(record(51)).await.unwrap(), 51);
    }
    assert_eq!(lines_of(&segment(&dir, 51))[0]["seq"], 51);
    assert_whole(&dir, 51);

    // Killed while writing the first line of a new segment: the torn line was never
    // acknowledged; it is cut and its seq written again.
    {
        let audit = Audit::open_with(&dir, SMALL).unwrap();
        write(&audit, 52..=80).await;
    }
    let newest = segments_of(&dir).last().unwrap().clone();
    let mut next = newest.first;
    if !lines_of(&newest.path).is_empty() {
        next = 81;
    }
    std::fs::write(
        segment(&dir, next),
        format!("{{\"seq\":{next},\"prev\":\"ab"),
    )
    .unwrap();
    {
        let audit = Audit::open_with(&dir, SMALL).unwrap();
        assert_eq!(audit.try_record(record(81)).await.unwrap(), 81);
    }
    assert_whole(&dir, 81);

    // Killed after a commit filled the segment, before the rotation: the next start rotates.
    let big = temp_dir("audit-crash-full");
    {
        let audit = Audit::open(&big).unwrap();
        write(&audit, 1..=30).await;
    }
    assert_eq!(segments_of(&big).len(), 1);
    {
        let audit = Audit::open_with(&big, SMALL).unwrap();
        assert_eq!(audit.path().unwrap(), segment(&big, 31));
        assert_eq!(audit.try_record(record(31)).await.unwrap(), 31);
    }
    assert_eq!(lines_of(&segment(&big, 31)).len(), 1);
    assert_whole(&big, 31);
}

#[tokio::test]
async fn a_log_of_an_older_version_becomes_the_first_segment() {
    let dir = temp_dir("audit-legacy");
    {
        let audit = Audit::open(&dir).unwrap();
        write(&audit, 1..=20).await;
    }
    let legacy = trail(&dir).join("audit.log");
    std::fs::rename(segment(&dir, 1), &legacy).unwrap();
    // Verified as it is, before any writer renamed it.
    let (ok, out) = verify(&dir);
    assert!(ok && out.starts_with("OK: 20 audit records"), "{out}");
    {
        let audit = Audit::open_with(&dir, SMALL).unwrap();
        assert_eq!(audit.try_record(record(21)).await.unwrap(), 21);
    }
    assert!(!legacy.exists());
    assert_whole(&dir, 21);
}

#[tokio::test]
async fn verify_names_the_segment_of_an_edit_and_of_a_missing_segment() {
    let dir = temp_dir("audit-verify-segments");
    {
        let audit = Audit::open_with(&dir, SMALL).unwrap();
        write(&audit, 1..=120).await;
    }
    let segments = assert_whole(&dir, 120);
    assert!(segments.len() >= 6, "{segments:?}");
    let middle = &segments[segments.len() / 2];
    let after = &segments[segments.len() / 2 + 1];
    let original = std::fs::read_to_string(&middle.path).unwrap();

    // One byte of the third line of a middle segment.
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    let changed = lines[2].replacen("\"actor\":\"user", "\"actor\":\"usex", 1);
    assert_ne!(changed, lines[2]);
    lines[2] = changed;
    std::fs::write(&middle.path, lines.join("\n") + "\n").unwrap();
    let (ok, out) = verify(&dir);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("{} line 3:", middle.name())) && out.contains("edited"),
        "{out}"
    );

    // The whole segment deleted: the next one's first line does not follow.
    std::fs::remove_file(&middle.path).unwrap();
    let (ok, out) = verify(&dir);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("{} line 1:", after.name()))
            && out.contains(&format!(
                "sequence {} follows {}",
                after.first,
                middle.first - 1
            )),
        "{out}"
    );
    std::fs::write(&middle.path, &original).unwrap();
    assert_whole(&dir, 120);

    // The first segment deleted: the trail starts late.
    let first = std::fs::read_to_string(&segments[0].path).unwrap();
    std::fs::remove_file(&segments[0].path).unwrap();
    let (ok, out) = verify(&dir);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "{} line 1: the trail starts at sequence {}, not 1",
            segments[1].name(),
            segments[1].first
        )),
        "{out}"
    );
    std::fs::write(&segments[0].path, first).unwrap();

    // A segment renamed (moved out of its place).
    let renamed = segment(&dir, middle.first + 1);
    std::fs::rename(&middle.path, &renamed).unwrap();
    let (ok, out) = verify(&dir);
    assert!(!ok, "{out}");
    assert!(out.contains("name says it starts at sequence"), "{out}");
    std::fs::rename(&renamed, &middle.path).unwrap();
    assert_whole(&dir, 120);
}

#[tokio::test]
async fn search_pages_newest_first_across_segments_without_reading_old_ones() {
    let dir = temp_dir("audit-search-segments");
    let audit = Audit::open_with(&dir, SMALL).unwrap();
    write(&audit, 1..=100).await;
    let segments = assert_whole(&dir, 100);
    assert!(segments.len() >= 5, "{segments:?}");
    let search = |query: Query| {
        let audit = audit.clone();
        async move { audit.search(query).await.unwrap() }
    };
    let seqs = |page: &runtime::audit::Page| page.records.iter().map(|r| r.seq).collect::<Vec<_>>();

    // Every record, pages of 7, newest first.
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = search(Query {
            before,
            limit: Some(7),
            ..Query::default()
        })
        .await;
        all.extend(seqs(&page));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(all, (1..=100).rev().collect::<Vec<u64>>());

    // A page across a segment boundary.
    let boundary = segments[3].first;
    let page = search(Query {
        before: Some(boundary + 2),
        limit: Some(5),
        ..Query::default()
    })
    .await;
    assert_eq!(
        seqs(&page),
        [
            boundary + 1,
            boundary,
            boundary - 1,
            boundary - 2,
            boundary - 3
        ]
    );
    assert_eq!(page.next, Some(boundary - 3));

    // With a filter: one actor's records, pages of 4.
    let mut mine = Vec::new();
    let mut before = None;
    loop {
        let page = search(Query {
            actor: Some("user1".to_owned()),
            before,
            limit: Some(4),
            ..Query::default()
        })
        .await;
        mine.extend(seqs(&page));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let expected: Vec<u64> = (1..=100).rev().filter(|i| i % 3 == 1).collect();
    assert_eq!(mine, expected);

    // The oldest segment made unreadable (a folder in its place): recent pages never touch it;
    // a page that needs it, and the export, do.
    let oldest = &segments[0];
    let kept = dir.join("oldest-segment");
    std::fs::rename(&oldest.path, &kept).unwrap();
    std::fs::create_dir(&oldest.path).unwrap();
    let page = search(Query {
        limit: Some(5),
        ..Query::default()
    })
    .await;
    assert_eq!(seqs(&page), [100, 99, 98, 97, 96]);
    // A page of 3 takes 4 to know whether there is a next one: all from the second segment.
    let page = search(Query {
        before: Some(segments[1].first + 4),
        limit: Some(3),
        ..Query::default()
    })
    .await;
    assert_eq!(page.next, Some(segments[1].first + 1));
    let needs_oldest = Query {
        before: Some(segments[1].first + 1),
        limit: Some(3),
        ..Query::default()
    };
    assert!(audit.search(needs_oldest).await.is_err());
    assert!(runtime::audit::search_all(&trail(&dir), &Query::default()).is_err());
    std::fs::remove_dir(&oldest.path).unwrap();
    std::fs::rename(&kept, &oldest.path).unwrap();

    // The export: everything, oldest first, across segments.
    let exported = runtime::audit::search_all(&trail(&dir), &Query::default()).unwrap();
    assert_eq!(
        exported.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<u64>>()
    );
}

async fn call(state: &Arc<AppState>, request: Request<Body>) -> (StatusCode, String, Vec<u8>) {
    let response = runtime::server::app(Arc::clone(state))
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let disposition = response
        .headers()
        .get(header::CONTENT_DISPOSITION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, cookie.unwrap_or(disposition), bytes)
}

#[tokio::test]
async fn admins_search_and_export_the_trail() {
    let dir = temp_dir("audit-api");
    let mut state = AppState::bundled().unwrap();
    let database = Database {
        data_dir: dir.to_path_buf(),
        url: None,
    };
    state.store = Some(database.open(&state.library()).await.unwrap());
    state.audit = Audit::open(&dir).unwrap();
    let state = Arc::new(state);
    let login = |password: &str| {
        Request::post("/api/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"login": "admin", "password": password}).to_string(),
            ))
            .unwrap()
    };
    let password = std::env::var("KEFU_ADMIN_PASSWORD").unwrap_or_default();
    // Without KEFU_ADMIN_PASSWORD the bootstrap generated one; the test needs the known one.
    assert!(
        !password.is_empty(),
        "set KEFU_ADMIN_PASSWORD for this test"
    );
    let (status, _, _) = call(&state, login("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, cookie, _) = call(&state, login(&password)).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = cookie.split(';').next().unwrap().to_owned();
    write(&state.audit, 1..=30).await;

    let get = |uri: &str| {
        Request::get(uri)
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap()
    };
    // Sign-ins are in the trail: the failure denied, the success allowed.
    let (status, _, body) = call(&state, get("/api/admin/audit?action=sign-in")).await;
    assert_eq!(status, StatusCode::OK);
    let page: Value = serde_json::from_slice(&body).unwrap();
    let decisions: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["allow", "deny"], "{page}");

    // By person, newest first, paged.
    let (_, _, body) = call(&state, get("/api/admin/audit?actor=user1&limit=4")).await;
    let page: Value = serde_json::from_slice(&body).unwrap();
    let resources: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["resource"].as_str().unwrap())
        .collect();
    assert_eq!(
        resources,
        [
            "customers::28",
            "customers::25",
            "customers::22",
            "customers::19"
        ]
    );
    let next = page["next"].as_u64().unwrap();
    let (_, _, body) = call(
        &state,
        get(&format!(
            "/api/admin/audit?actor=user1&limit=4&before={next}"
        )),
    )
    .await;
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["records"][0]["record"]["resource"], "customers::16");

    // By resource prefix and time.
    let (_, _, body) = call(
        &state,
        get("/api/admin/audit?resource=customers::1&limit=100"),
    )
    .await;
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 11, "{page}");
    assert!(page.get("next").is_none());
    let (_, _, body) = call(&state, get("/api/admin/audit?from=0&to=1")).await;
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["records"], json!([]));

    // The export: JSON lines, as a download.
    let (status, disposition, body) =
        call(&state, get("/api/admin/audit/export?actor=user0")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let lines: Vec<Value> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[0]["record"]["resource"], "customers::3");

    // Signed out, nothing.
    let (status, _, _) = call(
        &state,
        Request::get("/api/admin/audit")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (ok, out) = verify(&dir);
    assert!(ok, "{out}");
}
