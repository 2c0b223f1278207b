//! `loadgen crash`: `kill -9` during the chat load, then a restart on the same data, and a check
//! that every acknowledged message is still there under the same seq.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::LoadArgs;
use crate::chat::{self, Outcome, Shared, Turn};
use crate::client::{self, Target};
use crate::stats::Errors;

/// How long `kefu serve` may take to answer `/healthz` (PostgreSQL migrations included).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A `kefu serve` process.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    async fn start(
        kefu: &Path,
        data_dir: &Path,
        database_url: Option<&str>,
        addr: SocketAddr,
    ) -> anyhow::Result<Server> {
        let log = data_dir.join("kefu.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let mut command = Command::new(kefu);
        command
            .args(["serve", "--addr", &addr.to_string(), "--data-dir"])
            .arg(data_dir)
            .env_remove("KEFU_DATABASE_URL")
            .stdout(std::process::Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", kefu.display()))?;
        let mut server = Server { child, addr, log };
        server.wait_ready().await?;
        Ok(server)
    }

    /// Waits until `GET /healthz` answers 200.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "kefu exited with {status} before it was ready; see {}",
                    self.log.display()
                );
            }
            if let Ok(mut stream) = tokio::net::TcpStream::connect(self.addr).await {
                let _ = stream
                    .write_all(b"GET /healthz HTTP/1.0\r\nHost: kefu\r\n\r\n")
                    .await;
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer).await;
                if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "kefu did not answer /healthz within {} s; see {}",
                    READY_TIMEOUT.as_secs(),
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, then reap.
    async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// What the check after the restart found for one visitor.
#[derive(Default)]
struct Check {
    acked: u64,
    found: u64,
    lost: Vec<String>,
    wrong_seq: Vec<String>,
    in_flight: u64,
    in_flight_stored: u64,
    answers: bool,
    problem: Option<String>,
}

pub async fn main(
    load: &LoadArgs,
    kefu: &Path,
    data_dir: &Path,
    database_url: Option<&str>,
    kill_after: f64,
    json: bool,
) -> anyhow::Result<bool> {
    client::check_open_files(load.visitors)?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?
    };
    let server = Server::start(kefu, data_dir, database_url, addr).await?;
    eprintln!("kefu serves on {addr}; load for {kill_after} s, then SIGKILL");
    let url = format!("ws://{addr}/ws/visitor");
    let target = Target::new(&url, load.sources, load.visitors).await?;
    let load_task = {
        let (target, load) = (target.clone(), load.clone());
        tokio::spawn(async move { chat::run(&target, &load, None, None).await })
    };
    tokio::time::sleep(Duration::from_secs_f64(kill_after)).await;
    let killed_at = Instant::now();
    server.kill().await?;
    eprintln!("kefu killed; waiting for the visitors to notice");
    let run = load_task.await?;
    let load_errors = run.shared.errors();
    let acked_before: usize = run.outcomes.iter().map(|o| o.acked.len()).sum();
    let load_took = killed_at - run.started;

    let server = Server::start(kefu, data_dir, database_url, addr).await?;
    eprintln!("kefu restarted; checking {acked_before} acknowledged messages");
    let checking = Arc::new(Semaphore::new(500));
    let tasks: Vec<_> = run
        .outcomes
        .into_iter()
        .enumerate()
        .filter(|(_, outcome)| outcome.conversation.is_some())
        .map(|(index, outcome)| {
            let (target, load, checking) = (target.clone(), load.clone(), Arc::clone(&checking));
            tokio::spawn(async move {
                let _permit = checking.acquire().await;
                check(index, &target, &load, outcome, killed_at).await
            })
        })
        .collect();
    let mut total = Check::default();
    let mut conversations = 0;
    let mut silent = 0;
    let mut problems = Errors::default();
    for task in tasks {
        let check = task.await?;
        conversations += 1;
        total.acked += check.acked;
        total.found += check.found;
        total.in_flight += check.in_flight;
        total.in_flight_stored += check.in_flight_stored;
        total.lost.extend(check.lost);
        total.wrong_seq.extend(check.wrong_seq);
        if !check.answers {
            silent += 1;
        }
        if let Some(problem) = check.problem {
            problems.add(&problem);
        }
    }
    server.kill().await?;

    let ok = total.lost.is_empty()
        && total.wrong_seq.is_empty()
        && silent == 0
        && problems.0.is_empty()
        && total.acked > 0;
    if json {
        let report = json!({
            "visitors": load.visitors,
            "conversations": conversations,
            "load_s": load_took.as_secs_f64(),
            "acked_before_kill": total.acked,
            "found_after_restart": total.found,
            "lost": total.lost.len(),
            "wrong_seq": total.wrong_seq.len(),
            "in_flight_at_kill": total.in_flight,
            "in_flight_stored_anyway": total.in_flight_stored,
            "conversations_not_answering": silent,
            "check_problems": problems.0,
            "load_errors": load_errors.0,
            "ok": ok,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "visitors {}, conversations started {conversations}, killed after {:.2} s of load",
            load.visitors,
            load_took.as_secs_f64()
        );
        println!(
            "acknowledged before the kill {}, found after the restart {}, lost {}, under \
             another seq {}",
            total.acked,
            total.found,
            total.lost.len(),
            total.wrong_seq.len()
        );
        println!(
            "in flight (sent, not acknowledged) at the kill {}, stored anyway {}",
            total.in_flight, total.in_flight_stored
        );
        println!("conversations that did not answer a new message after the restart: {silent}");
        println!("problems while checking: {}", problems.line());
        println!(
            "errors during the load (`closed` is the kill): {}",
            load_errors.line()
        );
        for id in total.lost.iter().chain(&total.wrong_seq).take(20) {
            println!("  lost or renumbered: {id}");
        }
        println!("{}", if ok { "OK" } else { "FAILED" });
    }
    Ok(ok)
}

/// Resumes visitor `index`'s conversation from the start, compares the transcript with what
/// was acknowledged, and sends one more text.
async fn check(
    index: usize,
    target: &Target,
    load: &LoadArgs,
    mut outcome: Outcome,
    killed_at: Instant,
) -> Check {
    // A text sent after the kill (the visitor had not noticed yet) was never in flight.
    outcome.in_flight = outcome.in_flight.filter(|(_, sent)| *sent < killed_at);
    let mut check = Check {
        acked: outcome.acked.len() as u64,
        in_flight: u64::from(outcome.in_flight.is_some()),
        ..Check::default()
    };
    let Some((conversation, token)) = &outcome.conversation else {
        return check;
    };
    let timeout = Duration::from_secs(load.timeout);
    let Ok(mut ws) = target.connect(index).await else {
        check.problem = Some("connect".to_owned());
        return check;
    };
    let resume =
        json!({"type": "resume", "conversation": conversation, "token": token, "last_seq": 0});
    if client::send(&mut ws, &resume).await.is_err() {
        check.problem = Some("closed".to_owned());
        return check;
    }
    let mut stored = std::collections::HashMap::new();
    let mut last = None;
    let deadline = Instant::now() + timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, client::next(&mut ws)).await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                check.problem = Some("closed".to_owned());
                return check;
            }
            Err(_) => {
                check.problem = Some("timeout".to_owned());
                return check;
            }
        };
        match frame["type"].as_str().unwrap_or_default() {
            "welcome" => last = frame["last_seq"].as_i64(),
            "message" => {
                if let Some(id) = frame["client_id"].as_str() {
                    stored.insert(id.to_owned(), frame["seq"].as_i64().unwrap_or_default());
                }
            }
            "error" => {
                check.problem = Some(frame["code"].as_str().unwrap_or("error").to_owned());
                return check;
            }
            _ => {}
        }
        if let Some(last) = last
            && (last == 0 || frame["seq"].as_i64() == Some(last))
        {
            break;
        }
    }
    for (client_id, seq) in &outcome.acked {
        match stored.get(client_id) {
            Some(found) if found == seq => check.found += 1,
            Some(found) => check.wrong_seq.push(format!(
                "{conversation} {client_id}: acked {seq}, stored {found}"
            )),
            None => check
                .lost
                .push(format!("{conversation} {client_id}: acked {seq}, missing")),
        }
    }
    if let Some((id, _)) = &outcome.in_flight
        && stored.contains_key(id)
    {
        check.in_flight_stored = 1;
    }
    // The conversation goes on: a new text is stored after everything else and answered.
    let client_id = format!("lg{index}-after-restart");
    let text = json!({"type": "message", "client_id": client_id, "text": load.text});
    let shared = Shared::new(1);
    let mut after = Outcome::default();
    if let Turn::Done { .. } =
        chat::exchange(&mut ws, &text, &client_id, timeout, &shared, &mut after).await
    {
        check.answers = after
            .acked
            .first()
            .is_some_and(|(_, seq)| *seq > last.unwrap_or_default())
            && !after.reply_micros.is_empty();
    }
    let _ = ws.close(None).await;
    check
}
