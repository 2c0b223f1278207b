//! `loadgen idle`: many open connections that do nothing but answer pings, and what they cost
//! the server in memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{self, Target};
use crate::stats::{Errors, RssSampler, memory_kib, mib};

pub struct Options {
    pub url: String,
    pub connections: usize,
    /// Start a conversation with this flow on each connection.
    pub start: Option<String>,
    pub server_pid: Option<u32>,
    pub hold: Duration,
    pub concurrency: usize,
    pub sources: Option<u8>,
    pub json: bool,
}

/// How long one connection (and its `welcome`) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn main(options: Options) -> anyhow::Result<bool> {
    client::check_open_files(options.connections)?;
    let target = Target::new(&options.url, options.sources, options.connections).await?;
    let stop_sampling = CancellationToken::new();
    let rss = options
        .server_pid
        .map(|pid| RssSampler::start(pid, stop_sampling.clone()));
    let before_kib = rss.as_ref().map(RssSampler::last_kib);
    let own_before = memory_kib(std::process::id()).map(|(rss, _)| rss);

    let opened = Arc::new(AtomicU64::new(0));
    let closed_early = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Errors::default()));
    let hold = CancellationToken::new();
    let connecting = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let started = Instant::now();
    let progress_stop = CancellationToken::new();
    let progress = tokio::spawn(progress(
        Arc::clone(&opened),
        Arc::clone(&errors),
        options.connections,
        rss.clone(),
        started,
        progress_stop.clone(),
    ));

    let mut tasks = Vec::with_capacity(options.connections);
    for index in 0..options.connections {
        let permit = Arc::clone(&connecting).acquire_owned().await?;
        let (target, flow) = (target.clone(), options.start.clone());
        let (opened, closed_early, errors) = (
            Arc::clone(&opened),
            Arc::clone(&closed_early),
            Arc::clone(&errors),
        );
        let hold = hold.clone();
        tasks.push(tokio::spawn(async move {
            let error = |code: &str| {
                errors
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .add(code);
            };
            let mut ws = match tokio::time::timeout(CONNECT_TIMEOUT, target.connect(index)).await {
                Ok(Ok(ws)) => ws,
                Ok(Err(e)) => {
                    error(&connect_error(&e));
                    return;
                }
                Err(_) => {
                    error("connect_timeout");
                    return;
                }
            };
            if let Some(flow) = flow {
                let start = json!({"type": "start", "flow": flow, "locale": "en"});
                if client::send(&mut ws, &start).await.is_err() {
                    error("closed");
                    return;
                }
                match tokio::time::timeout(CONNECT_TIMEOUT, client::next(&mut ws)).await {
                    Ok(Some(frame)) if frame["type"] == "welcome" => {}
                    Ok(Some(frame)) => {
                        error(frame["code"].as_str().unwrap_or("no_welcome"));
                        return;
                    }
                    Ok(None) => {
                        error("closed");
                        return;
                    }
                    Err(_) => {
                        error("timeout");
                        return;
                    }
                }
            }
            opened.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            // Reading keeps the connection alive: tungstenite answers the server's pings.
            loop {
                tokio::select! {
                    () = hold.cancelled() => break,
                    frame = client::next(&mut ws) => if frame.is_none() {
                        closed_early.fetch_add(1, Ordering::Relaxed);
                        return;
                    },
                }
            }
            let _ = ws.close(None).await;
        }));
    }
    // Every connection is open or has failed.
    let failed = || {
        errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total()
    };
    while opened.load(Ordering::Relaxed) + failed() < options.connections as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_took = started.elapsed();
    eprintln!(
        "{} connections open after {:.1} s; holding them for {} s",
        opened.load(Ordering::Relaxed),
        open_took.as_secs_f64(),
        options.hold.as_secs()
    );
    tokio::time::sleep(options.hold).await;
    if let Some(rss) = &rss {
        rss.sample();
    }
    let held_kib = rss.as_ref().map(RssSampler::last_kib);
    let own_after = memory_kib(std::process::id()).map(|(rss, _)| rss);
    let still_open = opened.load(Ordering::Relaxed) - closed_early.load(Ordering::Relaxed);
    progress_stop.cancel();
    let _ = progress.await;
    hold.cancel();
    for task in tasks {
        let _ = task.await;
    }
    stop_sampling.cancel();

    let errors = errors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let per_connection = match (before_kib, held_kib) {
        (Some(before), Some(held)) if still_open > 0 => {
            Some(held.saturating_sub(before) as f64 * 1024.0 / still_open as f64)
        }
        _ => None,
    };
    if options.json {
        let report = json!({
            "connections": options.connections,
            "opened": opened.load(Ordering::Relaxed),
            "open_at_the_end": still_open,
            "closed_early": closed_early.load(Ordering::Relaxed),
            "started_conversations": options.start.is_some(),
            "open_s": open_took.as_secs_f64(),
            "hold_s": options.hold.as_secs(),
            "errors": errors.0,
            "server_rss_kib": rss.as_ref().map(|r| json!({
                "before": before_kib, "held": held_kib, "peak": r.peak_kib(), "vm_hwm": r.hwm_kib(),
            })),
            "server_bytes_per_connection": per_connection,
            "loadgen_rss_kib": {"before": own_before, "held": own_after},
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "connections {} asked, {} opened in {:.1} s, {still_open} still open after {} s{}",
            options.connections,
            opened.load(Ordering::Relaxed),
            open_took.as_secs_f64(),
            options.hold.as_secs(),
            if options.start.is_some() {
                " (each with a conversation)"
            } else {
                " (no conversation)"
            }
        );
        println!("errors: {}", errors.line());
        if let (Some(rss), Some(before), Some(held)) = (&rss, before_kib, held_kib) {
            println!(
                "server RSS: before {}, holding {}, peak {} (VmHWM {})",
                mib(before),
                mib(held),
                mib(rss.peak_kib()),
                mib(rss.hwm_kib())
            );
        }
        if let Some(bytes) = per_connection {
            println!(
                "server memory per connection: {:.1} KiB ((RSS holding − RSS before) / open \
                 connections)",
                bytes / 1024.0
            );
        }
        if let (Some(before), Some(after)) = (own_before, own_after) {
            println!(
                "loadgen RSS: before {}, holding {}",
                mib(before),
                mib(after)
            );
        }
    }
    Ok(true)
}

/// A short code for a failed connection: the OS error when there is one (`EADDRNOTAVAIL`
/// means the source address ran out of ports, `EMFILE` the open-files limit).
fn connect_error(error: &anyhow::Error) -> String {
    let io = error
        .chain()
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .map(|e| format!("connect: {}", e.kind()));
    io.unwrap_or_else(|| format!("connect: {}", error.root_cause()))
}

async fn progress(
    opened: Arc<AtomicU64>,
    errors: Arc<Mutex<Errors>>,
    connections: usize,
    rss: Option<RssSampler>,
    started: Instant,
    stop: CancellationToken,
) {
    let mut every =
        tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    while stop.run_until_cancelled(every.tick()).await.is_some() {
        let memory = rss.as_ref().map_or(String::new(), |rss| {
            format!(" | server RSS {}", mib(rss.last_kib()))
        });
        eprintln!(
            "[{:6.1}s] open {}/{connections} | errors {}{memory}",
            started.elapsed().as_secs_f64(),
            opened.load(Ordering::Relaxed),
            errors.lock().unwrap_or_else(PoisonError::into_inner).line(),
        );
    }
}
