//! The audit trail (`docs/audit.md`): the hash chain and `kefu audit verify`, the OTLP export
//! against a real receiver process (restarted mid-test), and the admin search API.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use runtime::audit::{Audit, AuditRecord, Decision};
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

fn log_of(dir: &Path) -> std::path::PathBuf {
    dir.join("audit").join("audit.log")
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

    let original = std::fs::read_to_string(log_of(&dir)).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    // One byte of line 20's record changed (its actor).
    let mut edited = lines.clone();
    let changed = edited[19].replacen("\"actor\":\"user", "\"actor\":\"usex", 1);
    assert_ne!(changed, edited[19]);
    edited[19] = &changed;
    std::fs::write(log_of(&dir), edited.join("\n") + "\n").unwrap();
    let (ok, out) = verify(&dir);
    assert!(!ok, "{out}");
    assert!(out.contains("line 20:") && out.contains("edited"), "{out}");

    // Line 30 removed: line 30 now holds seq 31.
    let mut deleted = lines.clone();
    deleted.remove(29);
    std::fs::write(log_of(&dir), deleted.join("\n") + "\n").unwrap();
    let (ok, out) = verify(&dir);
    assert!(!ok, "{out}");
    assert!(
        out.contains("line 30:") && out.contains("sequence 31 follows 29"),
        "{out}"
    );

    // The last line removed cannot be seen from the file alone; the count says so.
    std::fs::write(log_of(&dir), original).unwrap();
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
    let dir = temp_dir("audit-otlp");
    let out = dir.join("received.jsonl");
    let (receiver, addr) = Receiver::start("127.0.0.1:0", &out);
    let audit = Audit::open(&dir).unwrap();
    let stop = CancellationToken::new();
    let exporter =
        runtime::audit::export::spawn(&audit, &dir, &format!("http://{addr}"), stop.clone())
            .unwrap();
    write(&audit, 1..=300).await;
    until_received(&out, 300).await;

    // The collector goes away; records keep being written and wait for it.
    drop(receiver);
    write(&audit, 301..=700).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received(&out).len(), 300);
    let (_receiver, _) = Receiver::start(&addr, &out);
    let got = until_received(&out, 700).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    exporter.await.unwrap();

    let got_again = received(&out);
    assert_eq!(got_again.len(), 700, "a record arrived twice");
    let mut seqs: Vec<i64> = got
        .iter()
        .map(|r| r["attributes"]["kefu.audit.seq"].as_i64().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=700).collect::<Vec<i64>>());

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
    // The hash in the record is the one in the local log.
    let local = std::fs::read_to_string(log_of(&dir)).unwrap();
    let line: Value = serde_json::from_str(local.lines().nth(4).unwrap()).unwrap();
    assert_eq!(attributes["kefu.audit.hash"], line["hash"]);
    assert!(five["time_unix_nano"].as_u64().unwrap() > 1_600_000_000_000_000_000);
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
