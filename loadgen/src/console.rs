//! `loadgen console`: agents with the console open (`/ws/agent`) and visitors who ask for a
//! human; handoffs per second and the time from a visitor's handoff to the `assigned` frame on
//! an agent's screen (the server must assign automatically: `kefu serve --auto-assign`).

use std::collections::HashMap;
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
use crate::http::{self, Session};
use crate::stats::{Errors, Percentiles, RssSampler, cpu_seconds, mib};

/// Accounts created or signed in at once: the server hashes each password (Argon2id, tens of
/// milliseconds of CPU), so more at once only queues there.
const SIGNING_IN_AT_ONCE: usize = 8;

/// Visitor connections being opened at once (as `loadgen chat`).
const CONNECTING_AT_ONCE: usize = 500;

/// The most open conversations the server lets one agent have (`POST /api/admin/users`).
const MAX_CAPACITY: usize = 100;

/// The flow visitors start; its first question accepts any text, and `agent` is a global
/// keyword that hands the conversation off to the `support` queue.
const FLOW: &str = "order-status";

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
    errors: Mutex<Errors>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn error(&self, code: &str) {
        lock(&self.errors).add(code);
    }
}

pub async fn main(options: Options) -> anyhow::Result<bool> {
    if options.agents == 0 {
        bail!("--agents must be at least 1");
    }
    // Room for every visitor, and one more, so that assignment never waits for a free agent.
    let capacity = options.visitors.div_ceil(options.agents) + 1;
    if capacity > MAX_CAPACITY {
        bail!(
            "{} visitors over {} agents need a capacity of {capacity} each; the server allows \
             at most {MAX_CAPACITY}: use more agents",
            options.visitors,
            options.agents
        );
    }
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

    // Accounts: created by the admin, then each signed in with its console open.
    let admin = http::login(addr, "admin", &options.admin_password)
        .await
        .context("signing in as admin (is --admin-password the server's KEFU_ADMIN_PASSWORD?)")?;
    let run_id = run_id();
    let password = format!("lg-pass-{run_id}");
    let began = Instant::now();
    let logins = create_agents(addr, &admin, options.agents, capacity, &run_id, &password).await?;
    let created_in = began.elapsed();
    eprintln!(
        "{} agents created (capacity {capacity}) in {:.1} s",
        options.agents,
        created_in.as_secs_f64()
    );
    let shared = Arc::new(Shared::default());
    let stop = CancellationToken::new();
    let began = Instant::now();
    let consoles = open_consoles(addr, &agents_at, logins, &password).await?;
    let online_in = began.elapsed();
    let agents: Vec<JoinHandle<()>> = consoles
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

    if let Some(rss) = &rss {
        rss.sample();
    }
    let agents_kib = rss.as_ref().map(RssSampler::last_kib);

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
    progress_stop.cancel();
    let _ = progress.await;
    stop.cancel();
    for task in visitors.into_iter().chain(agents) {
        let _ = task.await;
    }
    stop_sampling.cancel();

    let report = Report::of(
        &shared,
        &options,
        capacity,
        (created_in, online_in, finished - started),
        rss.as_ref().map(|r| {
            (
                before_kib.unwrap_or_default(),
                agents_kib.unwrap_or_default(),
                r.peak_kib(),
                r.hwm_kib(),
                r.last_kib(),
            )
        }),
        cpu_before.zip(cpu_after),
    );
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        report.print();
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

struct Report {
    agents: usize,
    visitors: usize,
    capacity: usize,
    rate: Option<f64>,
    timeout: Duration,
    created_in: Duration,
    online_in: Duration,
    duration: Duration,
    welcomed: u64,
    handed_off: u64,
    /// Handoffs whose `assigned` frame came within the timeout.
    completed: usize,
    timeouts: usize,
    /// `assigned` frames for conversations this run did not hand off.
    other_assigned: usize,
    /// From the first handoff to the last assignment.
    span: Duration,
    latency: Percentiles,
    /// Fewest and most handoffs one agent received.
    per_agent: (usize, usize),
    queue_frames: u64,
    queue_bytes: u64,
    errors: Errors,
    rss: Option<(u64, u64, u64, u64, u64)>,
    /// Server and loadgen CPU seconds from the first visitor to the end.
    cpu: Option<(f64, f64)>,
}

impl Report {
    fn of(
        shared: &Shared,
        options: &Options,
        capacity: usize,
        (created_in, online_in, duration): (Duration, Duration, Duration),
        rss: Option<(u64, u64, u64, u64, u64)>,
        cpu: Option<((f64, f64), (f64, f64))>,
    ) -> Report {
        let handoffs = lock(&shared.handoffs);
        let assignments = lock(&shared.assignments);
        let mut latencies = Vec::with_capacity(handoffs.len());
        let mut per_agent = vec![0; options.agents];
        let (mut first, mut last) = (None::<Instant>, None::<Instant>);
        for (conversation, &t0) in handoffs.iter() {
            first = Some(first.map_or(t0, |f| f.min(t0)));
            let Some(&(t1, agent)) = assignments.get(conversation) else {
                continue;
            };
            let took = t1.saturating_duration_since(t0);
            if took > options.timeout {
                continue;
            }
            latencies.push(took.as_micros() as u64);
            last = Some(last.map_or(t1, |l| l.max(t1)));
            if let Some(count) = per_agent.get_mut(agent) {
                *count += 1;
            }
        }
        let completed = latencies.len();
        let other_assigned = assignments
            .keys()
            .filter(|c| !handoffs.contains_key(*c))
            .count();
        Report {
            agents: options.agents,
            visitors: options.visitors,
            capacity,
            rate: options.rate,
            timeout: options.timeout,
            created_in,
            online_in,
            duration,
            welcomed: shared.welcomed.load(Ordering::Relaxed),
            handed_off: shared.handed_off.load(Ordering::Relaxed),
            completed,
            timeouts: handoffs.len() - completed,
            other_assigned,
            span: match (first, last) {
                (Some(first), Some(last)) => last.saturating_duration_since(first),
                _ => Duration::ZERO,
            },
            latency: Percentiles::of(latencies),
            per_agent: (
                per_agent.iter().copied().min().unwrap_or_default(),
                per_agent.iter().copied().max().unwrap_or_default(),
            ),
            queue_frames: shared.queue_frames.load(Ordering::Relaxed),
            queue_bytes: shared.queue_bytes.load(Ordering::Relaxed),
            errors: lock(&shared.errors).clone(),
            rss,
            cpu: cpu.map(|((server0, own0), (server1, own1))| (server1 - server0, own1 - own0)),
        }
    }

    fn handoffs_per_sec(&self) -> f64 {
        self.completed as f64 / self.span.as_secs_f64().max(1e-9)
    }

    fn print(&self) {
        let rate = self
            .rate
            .map_or("all at once".to_owned(), |r| format!("{r} per second"));
        println!(
            "agents {} (capacity {} each; created in {:.1} s, consoles open in {:.1} s); \
             visitors {} started {rate}, flow {FLOW}",
            self.agents,
            self.capacity,
            self.created_in.as_secs_f64(),
            self.online_in.as_secs_f64(),
            self.visitors,
        );
        println!(
            "duration {:.2} s; welcomed {}, handed off {}, assigned within {} s {} \
             ({} timeouts); assigned frames for other conversations {}",
            self.duration.as_secs_f64(),
            self.welcomed,
            self.handed_off,
            self.timeout.as_secs(),
            self.completed,
            self.timeouts,
            self.other_assigned,
        );
        println!(
            "handoffs/s: {:.0} ({} over {:.2} s, first handoff → last assignment)",
            self.handoffs_per_sec(),
            self.completed,
            self.span.as_secs_f64()
        );
        println!("handoff → agent's screen: {}", self.latency.line());
        println!(
            "handoffs per agent: {} to {}; queue frames received {} ({})",
            self.per_agent.0,
            self.per_agent.1,
            self.queue_frames,
            mib(self.queue_bytes / 1024)
        );
        println!("errors: {}", self.errors.line());
        if let Some((before, agents, peak, hwm, last)) = self.rss {
            println!(
                "server RSS: before the agents {}, agents online {}, peak {} (VmHWM {}), at \
                 the end {}",
                mib(before),
                mib(agents),
                mib(peak),
                mib(hwm),
                mib(last)
            );
        }
        if let Some((server, own)) = self.cpu {
            let secs = self.duration.as_secs_f64().max(1e-9);
            println!(
                "CPU while the visitors ran: server {server:.1} s ({:.2} cores), loadgen \
                 {own:.1} s ({:.2} cores)",
                server / secs,
                own / secs
            );
        }
    }

    fn json(&self) -> Value {
        json!({
            "agents": self.agents,
            "capacity": self.capacity,
            "visitors": self.visitors,
            "rate_per_s": self.rate,
            "timeout_s": self.timeout.as_secs(),
            "agents_created_s": self.created_in.as_secs_f64(),
            "consoles_open_s": self.online_in.as_secs_f64(),
            "duration_s": self.duration.as_secs_f64(),
            "welcomed": self.welcomed,
            "handed_off": self.handed_off,
            "assigned": self.completed,
            "timeouts": self.timeouts,
            "assigned_other_conversations": self.other_assigned,
            "handoff_span_s": self.span.as_secs_f64(),
            "handoffs_per_s": self.handoffs_per_sec(),
            "handoff_to_screen": self.latency.json(),
            "handoffs_per_agent": {"min": self.per_agent.0, "max": self.per_agent.1},
            "queue_frames": self.queue_frames,
            "queue_bytes": self.queue_bytes,
            "errors": self.errors.0,
            "server_rss_kib": self.rss.map(|(before, agents, peak, hwm, last)| json!({
                "before": before, "agents_online": agents, "peak": peak, "vm_hwm": hwm,
                "end": last,
            })),
            "cpu_s": self.cpu.map(|(server, own)| json!({"server": server, "loadgen": own})),
        })
    }
}
