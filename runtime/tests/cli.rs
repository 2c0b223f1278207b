//! The `kefu` command line, run as a real process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn kefu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kefu"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn validate_accepts_the_bundled_library() {
    let files: Vec<PathBuf> = std::fs::read_dir(repo("flows/library"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".flow.json"))
        .collect();
    let output = kefu().arg("validate").args(&files).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains(&format!(
            "{} files checked: 0 errors, 0 warnings",
            files.len()
        )),
        "{}",
        text(&output)
    );
}

#[test]
fn validate_locates_problems_and_fails() {
    let output = kefu()
        .arg("validate")
        .arg(repo("flows/tests/broken/dead-end.flow.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output);
    // The line number points at the node's `"id"` in the file.
    assert!(
        out.contains("dead-end.flow.json:42: error[dead-end] node `big` port `next`"),
        "{out}"
    );
    assert!(out.contains("1 file checked: 1 error, 0 warnings"), "{out}");
}

#[test]
fn validate_json_output_is_machine_readable() {
    let output = kefu()
        .args(["validate", "--json"])
        .arg(repo("flows/tests/broken/syntax-error.flow.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let d = &report[0]["diagnostics"][0];
    assert_eq!(d["code"], "syntax-error");
    assert_eq!(d["field"], "branches[0].when");
    assert_eq!(d["span"]["column"], 10);
}

#[test]
fn validate_reports_unreadable_documents() {
    let dir = std::env::temp_dir().join(format!("kefu-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.flow.json");
    std::fs::write(&file, "{\"schema_version\": 2,\n\"id\": \"x\", \"nodes\": [{\"id\": \"a\", \"kind\": \"teleport\"}]}").unwrap();
    let output = kefu()
        .arg("validate")
        .arg(&file)
        .arg(dir.join("missing.flow.json"))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output);
    assert!(
        out.contains("bad.flow.json: error: at `name`")
            || out.contains("bad.flow.json: error: at `nodes[0]`"),
        "{out}"
    );
    assert!(
        out.contains("missing.flow.json: error: cannot read the file"),
        "{out}"
    );
}

fn run_chat(args: &[&str], script: &str) -> String {
    let mut child = kefu()
        .arg("run")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    text(&output)
}

#[test]
fn run_chats_with_the_shopping_flow_in_the_terminal() {
    let flow = repo("flows/library/guided-shopping.flow.json");
    let out = run_chat(
        &[flow.to_str().unwrap(), "--locale", "en"],
        "1\n5000\n1\n1\n/quit\n",
    );
    // The products come from `flows/library/fixtures.json`, found beside the flow.
    assert!(out.contains("(looking up demo.products.find"), "{out}");
    assert!(out.contains("¥"), "{out}");
    assert!(!out.contains("flow error"), "{out}");
}

#[test]
fn run_hands_over_and_back_with_slash_commands() {
    let flow = repo("flows/library/order-status.flow.json");
    let out = run_chat(
        &[flow.to_str().unwrap(), "--locale", "zh-CN"],
        "人工\n/handback\n取消\n",
    );
    assert!(out.contains("(handed over to"), "{out}");
    assert!(out.contains("(conversation ended: cancelled)"), "{out}");
}

#[test]
fn run_refuses_a_broken_flow() {
    let output = kefu()
        .arg("run")
        .arg(repo("flows/tests/broken/dead-end.flow.json"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("has errors; fix them first"),
        "{}",
        text(&output)
    );
}

#[test]
fn run_can_pretend_another_date() {
    let flow = repo("flows/library/returns.flow.json");
    let flow = flow.to_str().unwrap();
    let then = run_chat(
        &[flow, "--locale", "en", "--now", "2026-01-06T10:00"],
        "KF100004\n/quit\n",
    );
    assert!(
        then.contains("was delivered 4 day(s) ago, so it can still be returned"),
        "{then}"
    );
    let output = kefu()
        .args(["run", flow, "--now", "tomorrow"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("--now: expected a time like 2026-01-05"),
        "{}",
        text(&output)
    );
}
