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

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kefu-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn export_prints_the_module() {
    let output = kefu()
        .arg("export")
        .arg(repo("flows/library/guided-shopping.flow.json"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let module = String::from_utf8(output.stdout).unwrap();
    assert!(
        module.starts_with("// Generated by kefu codegen from guided-shopping (version 1,"),
        "{module}"
    );
    assert!(module.contains("pub struct GuidedShopping"), "{module}");
    assert!(output.stderr.is_empty());
}

#[test]
fn export_finds_sub_flows_beside_the_flow() {
    let output = kefu()
        .arg("export")
        .arg(repo("flows/library/returns.flow.json"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let module = String::from_utf8(output.stdout).unwrap();
    assert!(module.contains("mod flow_return_reason"), "{module}");
}

#[test]
fn export_writes_the_module_to_a_file_or_folder() {
    let dir = scratch("export");
    let file = dir.join("shopping.rs");
    std::fs::write(&file, "// an older module").unwrap();
    let flow = repo("flows/library/guided-shopping.flow.json");
    let output = kefu()
        .arg("export")
        .arg(&flow)
        .arg("-o")
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(output.stdout.is_empty(), "{}", text(&output));
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.starts_with("// Generated by kefu codegen from guided-shopping"),
        "{written}"
    );
    // The same bytes as on stdout: the output is deterministic.
    let printed = kefu().arg("export").arg(&flow).output().unwrap();
    assert_eq!(printed.stdout, written.as_bytes());
    // An unchanged module is not replaced (a build depending on it stays fresh).
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let before = std::fs::metadata(&file).unwrap().ino();
        let output = kefu()
            .arg("export")
            .arg(&flow)
            .arg("-o")
            .arg(&file)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), before);
    }

    // A folder gets the module under the flow's file name.
    let output = kefu()
        .arg("export")
        .arg(&flow)
        .arg("--output")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // No temporary file is left behind.
    assert_eq!(names, ["guided_shopping.rs", "shopping.rs"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn export_refuses_a_broken_flow_and_writes_nothing() {
    let dir = scratch("export-broken");
    let file = dir.join("broken.rs");
    let output = kefu()
        .arg("export")
        .arg(repo("flows/tests/broken/dead-end.flow.json"))
        .arg("-o")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "{}", text(&output));
    let out = text(&output);
    // Located like `kefu validate` locates it.
    assert!(
        out.contains("dead-end.flow.json:42: error[dead-end] node `big` port `next`"),
        "{out}"
    );
    assert!(
        out.contains("kefu: `broken` not exported: it has 1 error"),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();

    // Without `-o` nothing is printed on stdout either.
    let output = kefu()
        .arg("export")
        .arg(repo("flows/tests/broken/type-error.flow.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "{}", text(&output));
    assert!(
        text(&output).contains("type-error.flow.json:"),
        "{}",
        text(&output)
    );
}

#[test]
fn export_locates_errors_in_a_sub_flow_in_its_own_file() {
    let dir = scratch("export-sub");
    std::fs::copy(
        repo("flows/library/returns.flow.json"),
        dir.join("returns.flow.json"),
    )
    .unwrap();
    // `return-reason` with its first edge gone: its start node leads nowhere.
    let text_of = std::fs::read_to_string(repo("flows/library/return-reason.flow.json")).unwrap();
    let mut sub: serde_json::Value = serde_json::from_str(&text_of).unwrap();
    let edges = sub["edges"].as_array_mut().unwrap();
    assert_eq!(edges[0]["from"], "start");
    edges.remove(0);
    std::fs::write(
        dir.join("return-reason.flow.json"),
        serde_json::to_string_pretty(&sub).unwrap(),
    )
    .unwrap();
    let output = kefu()
        .arg("export")
        .arg(dir.join("returns.flow.json"))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output);
    assert!(
        out.contains("return-reason.flow.json:") && out.contains("node `start` port `next`"),
        "{out}"
    );
    assert!(
        out.contains("kefu: `returns` not exported: it calls `return-reason`, which has"),
        "{out}"
    );
}

#[test]
fn export_reports_a_file_that_is_no_flow() {
    let output = kefu()
        .arg("export")
        .arg(repo("flows/tests/broken/missing.flow.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(
        text(&output).contains("missing.flow.json: error: cannot read the file"),
        "{}",
        text(&output)
    );
}

#[test]
fn run_uses_the_compiled_module_of_an_unchanged_bundled_flow() {
    let flow = repo("flows/library/faq-hours.flow.json");
    let out = run_chat(&[flow.to_str().unwrap(), "--locale", "en"], "/quit\n");
    assert!(
        out.contains("kefu: `faq-hours` runs as the Rust module compiled into kefu"),
        "{out}"
    );
}

#[test]
fn run_interprets_an_edited_bundled_flow() {
    let dir = scratch("edited");
    let original = std::fs::read_to_string(repo("flows/library/faq-hours.flow.json")).unwrap();
    // Any change to the logic changes the content hash; the compiled module no longer fits.
    let edited = original.replacen("\"version\": 1", "\"version\": 2", 1);
    assert_ne!(edited, original);
    let path = dir.join("faq-hours.flow.json");
    std::fs::write(&path, edited).unwrap();
    let out = run_chat(&[path.to_str().unwrap(), "--locale", "en"], "/quit\n");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.contains("kefu: `faq-hours` runs on the interpreter"),
        "{out}"
    );
}

/// `GET /healthz` over a plain socket, retried until the server answers (or 10 s pass).
fn healthz(port: u16) -> String {
    use std::io::Read;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            return answer;
        }
        assert!(std::time::Instant::now() < deadline, "kefu did not listen");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn serve_keeps_its_data_in_sqlite_in_the_data_dir_and_restarts_on_it() {
    let dir = scratch("serve");
    for round in 0..2 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = kefu()
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&dir)
            .env_remove("KEFU_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let answer = healthz(port);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "round {round}: {answer}"
        );
        assert!(
            answer.contains(r#""database":"sqlite""#),
            "round {round}: {answer}"
        );
        assert!(dir.join("kefu.db").exists(), "round {round}");
    }
    // The bundled flows were published (once: the second start found them unchanged).
    let url = format!("sqlite://{}", dir.join("kefu.db").display());
    let published = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = runtime::store::Store::connect(&url).await.unwrap();
            store.flow_versions("guided-shopping").await.unwrap()
        });
    assert_eq!(published.len(), 1, "{published:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
