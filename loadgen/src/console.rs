//! `loadgen console`: agents with the console open (`/ws/agent`) and visitors who ask for a
//! human; handoffs per second and the time from a visitor's handoff to the `assigned` frame on
//! an agent's screen (the server must assign automatically: `kefu serve --auto-assign`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_util::sync::CancellationToken;

use crate::client::{self, Target, Ws};
use crate::handoffs::{Record, Report, RunFigures};
use crate::http::{self, Session};
use crate::stats::{Errors, RssSampler, cpu_seconds, mib};

/// Accounts created or signed in at once: the server hashes each password (Argon2id, tens of
/// milliseconds of CPU), so more at once only queues there.
const SIGNING_IN_AT_ONCE: usize = 8;

/// Visitor connections being opened at once (as `loadgen chat`).
const CONNECTING_AT_ONCE: usize = 500;

/// The most open conversations the server lets one agent have (`POST /api/admin/users`).
const MAX_CAPACITY: usize = 100;

/// The flow visitors start; its first question accepts any text, and `agent` is a global
/// keyword that hands the conversation off to the `support` queue.
pub const FLOW: &str = "order-status";

/// How the server renders the `queue` frame (`serde_json` keeps `type` first). Consoles get
/// one with up to 100 summaries after every change of the queue; they are counted, not parsed.
const QUEUE_PREFIX: &str = r#"{"type":"queue""#;

pub struct Options {
    /// `http://host:port` of the server.
    pub url: String,
    pub admin_password: String,
    pub agents: usize,
    pub visitors: usize,
    /// Visitors started per second in total; `None`: all at once.
    pub rate: Option<f64>,
    pub timeout: Duration,
    pub server_pid: Option<u32>,
    pub sources: Option<u8>,
    pub json: bool,
    /// Capacity of each agent; default: room for every visitor of this process.
    pub capacity: Option<usize>,
    /// After this process's visitors are done, keep the agents online until no `assigned`
    /// frame has come for this long.
    pub hold: Option<Duration>,
    /// Where to write the raw observations (`handoffs::Record`).
    pub record: Option<PathBuf>,
    /// Start the visitors at this wall-clock time (Unix seconds), so that several load
    /// generators have all their agents online first.
    pub start_at: Option<f64>,
}

/// What agents and visitors record as they go.
#[derive(Default)]
struct Shared {
    agents_online: AtomicU64,
    /// Visitors welcomed.
    welcomed: AtomicU64,
    /// Visitors that sent `agent`.
    handed_off: AtomicU64,
    /// Visitors that handed off or gave up.
    finished: AtomicU64,
    /// `assigned` frames received (including conversations this run did not start).
    assigned: AtomicU64,
    queue_frames: AtomicU64,
    queue_bytes: AtomicU64,
    /// Conversation → when its visitor sent `agent` (t0).
    handoffs: Mutex<HashMap<String, Instant>>,
    /// Conversation → when the first `assigned` frame for it arrived (t1), and at which agent.
    assignments: Mutex<HashMap<String, (Instant, usize)>>,
    /// When the last `assigned` frame arrived (for `--hold`).
    last_assigned: Mutex<Option<Instant>>,
    errors: Mutex<Errors>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn error(&self, code: &str) {
        lock(&self.errors).add(code);
    }

    /// What this run saw, with times as epoch nanoseconds (`anchor`: one instant and the wall
    /// clock then).
    fn record(
        &self,
        options: &Options,
        capacity: Option<usize>,
        (at, wall): (Instant, SystemTime),
    ) -> Record {
        let wall_ns = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let epoch_ns = |instant: Instant| {
            let since = instant.saturating_duration_since(at).as_nanos();
            u64::try_from(wall_ns + since).unwrap_or(u64::MAX)
        };
        Record {
            agents: options.agents,
            visitors: options.visitors,
            capacity,
            rate: options.rate.filter(|r| *r > 0.0),
            timeout: options.timeout,
            welcomed: self.welcomed.load(Ordering::Relaxed),
            handed_off: self.handed_off.load(Ordering::Relaxed),
            queue_frames: self.queue_frames.load(Ordering::Relaxed),
            queue_bytes: self.queue_bytes.load(Ordering::Relaxed),
            errors: lock(&self.errors).clone(),
            handoffs: lock(&self.handoffs)
                .iter()
                .map(|(conversation, &t0)| (conversation.clone(), epoch_ns(t0)))
                .collect(),
            assignments: lock(&self.assignments)
                .iter()
                .map(|(conversation, &(t1, agent))| (conversation.clone(), epoch_ns(t1), agent))
                .collect(),
        }
    }
}

pub async fn main(options: Options) -> anyhow::Result<bool> {
    if options.agents == 0 && options.visitors == 0 {
        bail!("nothing to do: --agents and --visitors are both 0");
    }
    // Room for every visitor, and one more, so that assignment never waits for a free agent
    // (with several load generators, `--capacity` says how much room each agent needs).
    let capacity = match (options.capacity, options.agents) {
        (_, 0) => None,
        (Some(capacity), _) => Some(capacity),
        (None, agents) => Some(options.visitors.div_ceil(agents) + 1),
    };
    if let Some(capacity) = capacity.filter(|c| *c > MAX_CAPACITY || *c == 0) {
        bail!(
            "{} visitors over {} agents need a capacity of {capacity} each; the server allows \
             1 to {MAX_CAPACITY}: use more agents or set --capacity",
            options.visitors,
            options.agents
        );
    }
    // Epoch time of any instant of this run: the records of several processes are joined on
    // the wall clock, while the run itself is timed on the monotonic one.
    let anchor = (Instant::now(), SystemTime::now());
    let connections = options.agents + options.visitors;
    client::check_open_files(connections)?;
    let base = ws_base(&options.url)?;
    let visitors_at =
        Target::new(&format!("{base}/ws/visitor"), options.sources, connections).await?;
    let agents_at = Target::new(&format!("{base}/ws/agent"), options.sources, connections).await?;
    let addr = visitors_at.addr;

    let stop_sampling = CancellationToken::new();
    let rss = options
        .server_pid
        .map(|pid| RssSampler::start(pid, stop_sampling.clone()));
    let before_kib = rss.as_ref().map(RssSampler::last_kib);

    let shared = Arc::new(Shared::default());
    let stop = CancellationToken::new();
    let (mut created_in, mut online_in) = (Duration::ZERO, Duration::ZERO);
    let mut agents: Vec<JoinHandle<()>> = Vec::new();
    if let Some(capacity) = capacity {
        // Accounts: created by the admin, then each signed in with its console open.
        let admin = http::login(addr, "admin", &options.admin_password)
            .await
            .context(
                "signing in as admin (is --admin-password the server's KEFU_ADMIN_PASSWORD?)",
            )?;
        let run_id = run_id();
        let password = format!("lg-pass-{run_id}");
        let began = Instant::now();
        let logins =
            create_agents(addr, &admin, options.agents, capacity, &run_id, &password).await?;
        created_in = began.elapsed();
        eprintln!(
            "{} agents created (capacity {capacity}) in {:.1} s",
            options.agents,
            created_in.as_secs_f64()
        );
        let began = Instant::now();
        let consoles = open_consoles(addr, &agents_at, logins, &password).await?;
        online_in = began.elapsed();
        agents = consoles
            .into_iter()
            .enumerate()
            .map(|(index, ws)| tokio::spawn(agent(index, ws, Arc::clone(&shared), stop.clone())))
            .collect();
        shared
            .agents_online
            .store(options.agents as u64, Ordering::Relaxed);
        eprintln!(
            "{} agents signed in with the console open in {:.1} s",
            options.agents,
            online_in.as_secs_f64()
        );
    }

    if let Some(rss) = &rss {
        rss.sample();
    }
    let agents_kib = rss.as_ref().map(RssSampler::last_kib);

    if let Some(at) = options.start_at {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if at > now {
            eprintln!("visitors start in {:.1} s (--start-at)", at - now);
            tokio::time::sleep(Duration::from_secs_f64(at - now)).await;
        } else {
            eprintln!("--start-at was {:.1} s ago: visitors start now", now - at);
        }
    }

    // Visitors, paced by `--rate`.
    let started = Instant::now();
    let cpu_before = cpu(options.server_pid);
    let progress_stop = CancellationToken::new();
    let progress = tokio::spawn(progress(
        Arc::clone(&shared),
        options.visitors,
        rss.clone(),
        started,
        progress_stop.clone(),
    ));
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let period = options
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let mut visitors = Vec::with_capacity(options.visitors);
    for index in 0..options.visitors {
        if let Some(period) = period {
            tokio::time::sleep_until(started + period * u32::try_from(index)?).await;
        }
        let (target, shared, connecting) = (
            visitors_at.clone(),
            Arc::clone(&shared),
            Arc::clone(&connecting),
        );
        let (timeout, stop) = (options.timeout, stop.clone());
        // After the agents, so that connections keep spreading over the source addresses.
        let source = options.agents + index;
        visitors.push(tokio::spawn(async move {
            let ws = hand_off(source, &target, timeout, &connecting, &shared).await;
            shared.finished.fetch_add(1, Ordering::Relaxed);
            if let Some(ws) = ws {
                hold(ws, &shared, &stop).await;
            }
        }));
    }

    // Every visitor handed off (or gave up); wait for the assignments or the timeout.
    let visitors_total = options.visitors as u64;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if shared.finished.load(Ordering::Relaxed) < visitors_total {
            continue;
        }
        let handoffs = lock(&shared.handoffs);
        let assignments = lock(&shared.assignments);
        if handoffs.keys().all(|c| assignments.contains_key(c)) {
            break;
        }
        let last = handoffs.values().max().copied().unwrap_or(started);
        if Instant::now() > last + options.timeout {
            break;
        }
    }
    let finished = Instant::now();
    let cpu_after = cpu(options.server_pid);
    if let Some(rss) = &rss {
        rss.sample();
    }
    // Other load generators' visitors may still be handed to these agents: stay online until
    // no `assigned` frame has come for `--hold`.
    if let Some(quiet) = options.hold.filter(|_| options.agents > 0) {
        eprintln!(
            "own visitors done; agents stay online until no assignment for {} s",
            quiet.as_secs_f64()
        );
        loop {
            let last = lock(&shared.last_assigned)
                .unwrap_or(finished)
                .max(finished);
            if Instant::now() >= last + quiet {
                break;
            }
            tokio::time::sleep_until(last + quiet).await;
        }
    }
    progress_stop.cancel();
    let _ = progress.await;
    stop.cancel();
    for task in visitors.into_iter().chain(agents) {
        let _ = task.await;
    }
    stop_sampling.cancel();

    let record = shared.record(&options, capacity, anchor);
    if let Some(path) = &options.record {
        record.write(path)?;
        eprintln!(
            "recorded {} handoffs and {} assignments in {} (`loadgen merge` joins several)",
            record.handoffs.len(),
            record.assignments.len(),
            path.display()
        );
    }
    let mut report = Report::of(std::slice::from_ref(&record), Some(options.timeout));
    report.run = Some(RunFigures {
        created_in,
        online_in,
        duration: finished - started,
        rss: rss.as_ref().map(|r| {
            (
                before_kib.unwrap_or_default(),
                agents_kib.unwrap_or_default(),
                r.peak_kib(),
                r.hwm_kib(),
                r.last_kib(),
            )
        }),
        cpu: cpu_before
            .zip(cpu_after)
            .map(|((server0, own0), (server1, own1))| (server1 - server0, own1 - own0)),
    });
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        report.print(FLOW);
    }
    Ok(true)
}

/// `ws://host:port` for an `http://host:port` URL.
fn ws_base(url: &str) -> anyhow::Result<String> {
    let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("only http:// URLs are supported: {url}");
    }
    let host = uri.host().context("the URL has no host")?;
    Ok(format!("ws://{host}:{}", uri.port_u16().unwrap_or(80)))
}

/// A suffix that makes this run's agent logins new on a server that has seen earlier runs.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos & 0xff_ffff_ffff, std::process::id())
}

/// The server's and this process's CPU seconds so far.
fn cpu(server_pid: Option<u32>) -> Option<(f64, f64)> {
    Some((cpu_seconds(server_pid?)?, cpu_seconds(std::process::id())?))
}

/// Creates `count` agents in team `support` (a few at a time); returns their logins.
async fn create_agents(
    addr: std::net::SocketAddr,
    admin: &Session,
    count: usize,
    capacity: usize,
    run_id: &str,
    password: &str,
) -> anyhow::Result<Vec<String>> {
    let limit = Arc::new(Semaphore::new(SIGNING_IN_AT_ONCE));
    let tasks: Vec<_> = (0..count)
        .map(|index| {
            let login = format!("lg-agent-{index}-{run_id}");
            let body = json!({
                "login": login,
                "name": format!("Loadgen agent {index}"),
                "password": password,
                "role": "agent",
                "team": "support",
                "capacity": capacity,
            });
            let (admin, limit) = (admin.clone(), Arc::clone(&limit));
            tokio::spawn(async move {
                let _permit = limit.acquire().await?;
                let response = http::post(addr, "/api/admin/users", &body, Some(&admin)).await?;
                if response.status != 201 {
                    bail!("creating agent {login} failed: {}", response.reason());
                }
                Ok(login)
            })
        })
        .collect();
    let mut logins = Vec::with_capacity(count);
    for task in tasks {
        logins.push(task.await??);
    }
    Ok(logins)
}

/// Signs every agent in and opens its console; each has received `hello` when this returns.
async fn open_consoles(
    addr: std::net::SocketAddr,
    target: &Target,
    logins: Vec<String>,
    password: &str,
) -> anyhow::Result<Vec<Ws>> {
    let limit = Arc::new(Semaphore::new(SIGNING_IN_AT_ONCE));
    let tasks: Vec<_> = logins
        .into_iter()
        .enumerate()
        .map(|(index, login)| {
            let (target, limit, password) =
                (target.clone(), Arc::clone(&limit), password.to_owned());
            tokio::spawn(async move {
                let session = {
                    let _permit = limit.acquire().await?;
                    http::login(addr, &login, &password).await?
                };
                let mut ws = target
                    .connect_with_cookie(index, Some(&session.cookie))
                    .await
                    .with_context(|| format!("opening the console of {login}"))?;
                match tokio::time::timeout(Duration::from_secs(30), client::next(&mut ws)).await {
                    Ok(Some(frame)) if frame["type"] == "hello" => Ok(ws),
                    Ok(Some(frame)) => bail!("the console of {login} began with {frame}"),
                    Ok(None) => bail!("the console of {login} closed before hello"),
                    Err(_) => bail!("the console of {login} sent no hello within 30 s"),
                }
            })
        })
        .collect();
    let mut consoles = Vec::with_capacity(tasks.len());
    for task in tasks {
        consoles.push(task.await??);
    }
    Ok(consoles)
}

/// Agent number `index`: reads its console until stopped, noting when each `assigned` frame
/// arrives. It never answers: the figure is the time to the screen, not to a reply.
async fn agent(index: usize, mut ws: Ws, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => break,
            message = ws.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_)) | Err(_)) | None => {
                shared.error("agent_closed");
                return;
            }
            // tungstenite answers pings while we poll.
            Some(Ok(_)) => continue,
        };
        let now = Instant::now();
        if text.starts_with(QUEUE_PREFIX) {
            shared.queue_frames.fetch_add(1, Ordering::Relaxed);
            shared
                .queue_bytes
                .fetch_add(text.len() as u64, Ordering::Relaxed);
            continue;
        }
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            shared.error("agent_bad_json");
            continue;
        };
        match frame["type"].as_str().unwrap_or_default() {
            "assigned" => {
                shared.assigned.fetch_add(1, Ordering::Relaxed);
                *lock(&shared.last_assigned) = Some(now);
                if let Some(id) = frame["conversation"]["id"].as_str() {
                    lock(&shared.assignments)
                        .entry(id.to_owned())
                        .or_insert((now, index));
                }
            }
            "error" => shared.error(&format!(
                "agent_{}",
                frame["code"].as_str().unwrap_or("error")
            )),
            _ => {}
        }
    }
    let _ = ws.close(None).await;
}

/// Visitor number `index`: starts `order-status`, waits for its first question and answers
/// `agent`; returns the connection once the handoff is sent.
async fn hand_off(
    index: usize,
    target: &Target,
    timeout: Duration,
    connecting: &Semaphore,
    shared: &Shared,
) -> Option<Ws> {
    let mut ws = {
        let _permit = connecting.acquire().await;
        match tokio::time::timeout(timeout, target.connect(index)).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(_)) => {
                shared.error("connect");
                return None;
            }
            Err(_) => {
                shared.error("connect_timeout");
                return None;
            }
        }
    };
    let start = json!({"type": "start", "flow": FLOW, "locale": "en"});
    if client::send(&mut ws, &start).await.is_err() {
        shared.error("closed");
        return None;
    }
    let deadline = Instant::now() + timeout;
    let mut conversation = None;
    // Until the bot's first `ask`, after `welcome`.
    loop {
        let frame = match tokio::time::timeout_at(deadline, client::next(&mut ws)).await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                shared.error("closed");
                return None;
            }
            Err(_) => {
                shared.error(if conversation.is_none() {
                    "timeout_welcome"
                } else {
                    "timeout_ask"
                });
                return None;
            }
        };
        match frame["type"].as_str().unwrap_or_default() {
            "welcome" => {
                conversation = frame["conversation"].as_str().map(str::to_owned);
                shared.welcomed.fetch_add(1, Ordering::Relaxed);
            }
            "message" if frame["body"]["type"] == "ask" => break,
            "error" => {
                shared.error(frame["code"].as_str().unwrap_or("error"));
                if frame["fatal"] == true {
                    return None;
                }
            }
            _ => {}
        }
    }
    let Some(conversation) = conversation else {
        shared.error("no_welcome");
        return None;
    };
    let text = json!({"type": "message", "client_id": format!("lg{index}-agent"), "text": "agent"});
    lock(&shared.handoffs).insert(conversation, Instant::now());
    if client::send(&mut ws, &text).await.is_err() {
        shared.error("closed");
        return None;
    }
    shared.handed_off.fetch_add(1, Ordering::Relaxed);
    Some(ws)
}

/// Keeps a visitor's connection open (answering pings) until the run ends.
async fn hold(mut ws: Ws, shared: &Shared, stop: &CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            frame = client::next(&mut ws) => match frame {
                Some(frame) if frame["type"] == "error" => {
                    shared.error(frame["code"].as_str().unwrap_or("error"));
                }
                Some(_) => {}
                None => {
                    shared.error("closed");
                    return;
                }
            },
        }
    }
    let _ = ws.close(None).await;
}

async fn progress(
    shared: Arc<Shared>,
    visitors: usize,
    rss: Option<RssSampler>,
    started: Instant,
    stop: CancellationToken,
) {
    let mut every =
        tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    let mut before = 0;
    while stop.run_until_cancelled(every.tick()).await.is_some() {
        let assigned = shared.assigned.load(Ordering::Relaxed);
        let memory = rss.as_ref().map_or(String::new(), |rss| {
            format!(" | server RSS {}", mib(rss.last_kib()))
        });
        eprintln!(
            "[{:6.1}s] agents {} online | visitors {}/{visitors} welcomed, {} handed off | \
             assigned {assigned} ({}/s now) | queue frames {} ({}) | errors {}{memory}",
            started.elapsed().as_secs_f64(),
            shared.agents_online.load(Ordering::Relaxed),
            shared.welcomed.load(Ordering::Relaxed),
            shared.handed_off.load(Ordering::Relaxed),
            assigned - before,
            shared.queue_frames.load(Ordering::Relaxed),
            mib(shared.queue_bytes.load(Ordering::Relaxed) / 1024),
            lock(&shared.errors).total(),
        );
        before = assigned;
    }
}
