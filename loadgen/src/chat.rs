//! `loadgen chat`: visitors that start a conversation and send texts, each waiting for the
//! ack and the bot's first reply before the next; the run's figures and report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::LoadArgs;
use crate::client::{self, Target, Ws};
use crate::stats::{Errors, Percentiles, RssSampler, mib};

/// Connections being opened at once, so that a thousand visitors do not overflow the
/// server's accept backlog.
const CONNECTING_AT_ONCE: usize = 500;

/// Counters all visitors update as they go.
pub struct Shared {
    visitors: u64,
    /// Visitors welcomed.
    pub started: AtomicU64,
    /// Visitors that sent all their texts.
    pub completed: AtomicU64,
    /// Visitor messages acknowledged.
    pub acked: AtomicU64,
    /// Bot (and system) messages received.
    pub bot: AtomicU64,
    pub errors: Mutex<Errors>,
    /// When every visitor had been welcomed, with the persisted count then.
    steady_start: Mutex<Option<(Instant, u64)>>,
    /// When the first visitor had sent all its texts, with the persisted count then.
    steady_end: Mutex<Option<(Instant, u64)>>,
}

impl Shared {
    pub fn new(visitors: usize) -> Shared {
        Shared {
            visitors: visitors as u64,
            started: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            bot: AtomicU64::new(0),
            errors: Mutex::default(),
            steady_start: Mutex::default(),
            steady_end: Mutex::default(),
        }
    }

    /// Messages known to be stored: visitor messages acknowledged and bot messages received.
    pub fn persisted(&self) -> u64 {
        self.acked.load(Ordering::Relaxed) + self.bot.load(Ordering::Relaxed)
    }

    pub fn error(&self, code: &str) {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(code);
    }

    pub fn errors(&self) -> Errors {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn welcomed(&self) {
        if self.started.fetch_add(1, Ordering::Relaxed) + 1 == self.visitors {
            *self
                .steady_start
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), self.persisted()));
        }
    }

    fn done(&self) {
        if self.completed.fetch_add(1, Ordering::Relaxed) == 0 {
            *self
                .steady_end
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), self.persisted()));
        }
    }
}

/// What one visitor did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `conversation` and `token` from `welcome`.
    pub conversation: Option<(String, String)>,
    /// Acknowledged messages: client id and seq.
    pub acked: Vec<(String, i64)>,
    /// A text sent and not (yet) acknowledged when the visitor stopped, and when it was sent.
    pub in_flight: Option<(String, Instant)>,
    /// Send → ack, in microseconds.
    pub ack_micros: Vec<u64>,
    /// Send → first bot message after the visitor's message, in microseconds.
    pub reply_micros: Vec<u64>,
}

/// Visitor number `index`: connects, starts a conversation, sends `messages` texts (forever
/// when `None`, until the connection ends).
pub async fn visitor(
    index: usize,
    target: &Target,
    load: &LoadArgs,
    messages: Option<u64>,
    connecting: &Semaphore,
    shared: &Shared,
) -> Outcome {
    let mut outcome = Outcome::default();
    let timeout = Duration::from_secs(load.timeout);
    let mut ws = {
        let _permit = connecting.acquire().await;
        match tokio::time::timeout(timeout, target.connect(index)).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(_)) => {
                shared.error("connect");
                return outcome;
            }
            Err(_) => {
                shared.error("connect_timeout");
                return outcome;
            }
        }
    };
    let start = json!({"type": "start", "flow": load.flow, "locale": load.locale});
    if client::send(&mut ws, &start).await.is_err() {
        shared.error("closed");
        return outcome;
    }
    let welcome = match tokio::time::timeout(timeout, client::next(&mut ws)).await {
        Ok(Some(frame)) => frame,
        Ok(None) => {
            shared.error("closed");
            return outcome;
        }
        Err(_) => {
            shared.error("timeout");
            return outcome;
        }
    };
    if welcome["type"] != "welcome" {
        shared.error(welcome["code"].as_str().unwrap_or("no_welcome"));
        return outcome;
    }
    let text = |field: &str| welcome[field].as_str().unwrap_or_default().to_owned();
    outcome.conversation = Some((text("conversation"), text("token")));
    shared.welcomed();

    let period = (load.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / load.rate));
    let mut next_send = Instant::now();
    let mut sent = 0;
    while messages.is_none_or(|m| sent < m) {
        tokio::time::sleep_until(next_send).await;
        let client_id = format!("lg{index}-{sent}");
        sent += 1;
        let frame = json!({"type": "message", "client_id": client_id, "text": load.text});
        match exchange(&mut ws, &frame, &client_id, timeout, shared, &mut outcome).await {
            Turn::Done { sent_at } => {
                if let Some(period) = period {
                    // Never two texts closer than the period: the server's token bucket
                    // refills at this rate.
                    next_send = sent_at + period;
                }
            }
            Turn::Stop => return outcome,
        }
    }
    shared.done();
    // Whatever the server still had to send arrives before the answer to a ping.
    let ping = json!({"type": "ping"});
    if client::send(&mut ws, &ping).await.is_ok() {
        let deadline = Instant::now() + timeout;
        while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, client::next(&mut ws)).await {
            match frame["type"].as_str().unwrap_or_default() {
                "pong" => break,
                "message" if frame["sender"] != "visitor" => {
                    shared.bot.fetch_add(1, Ordering::Relaxed);
                }
                "error" if frame["code"] == "rate_limited" => {
                    shared.error("rate_limited");
                    let wait = frame["retry_after_ms"].as_u64().unwrap_or(100);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    if client::send(&mut ws, &ping).await.is_err() {
                        break;
                    }
                }
                "error" => {
                    shared.error(frame["code"].as_str().unwrap_or("error"));
                    break;
                }
                _ => {}
            }
        }
    }
    let _ = ws.close(None).await;
    outcome
}

pub enum Turn {
    /// The text was acknowledged and answered (or refused, or timed out).
    Done { sent_at: Instant },
    /// The connection or the conversation is over.
    Stop,
}

/// Sends one text and reads until its ack and the bot's first reply after it.
pub async fn exchange(
    ws: &mut Ws,
    text: &Value,
    client_id: &str,
    timeout: Duration,
    shared: &Shared,
    outcome: &mut Outcome,
) -> Turn {
    let mut sent_at = Instant::now();
    outcome.in_flight = Some((client_id.to_owned(), sent_at));
    if client::send(ws, text).await.is_err() {
        shared.error("closed");
        return Turn::Stop;
    }
    // The ack's seq, once it came; the reply is the first bot message numbered after it (a
    // late message of the previous turn may still arrive first).
    let mut ack_seq = None;
    // Bot messages seen before the ack: seq and arrival.
    let mut early = Vec::new();
    let mut replied = false;
    let deadline = sent_at + timeout;
    while ack_seq.is_none() || !replied {
        let frame = match tokio::time::timeout_at(deadline, client::next(ws)).await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                shared.error("closed");
                return Turn::Stop;
            }
            Err(_) => {
                shared.error(if ack_seq.is_none() {
                    "timeout_ack"
                } else {
                    "timeout_reply"
                });
                return Turn::Done { sent_at };
            }
        };
        let now = Instant::now();
        let micros = |at: Instant| (at - sent_at).as_micros() as u64;
        match frame["type"].as_str().unwrap_or_default() {
            "ack" if frame["client_id"] == client_id => {
                let seq = frame["seq"].as_i64().unwrap_or_default();
                ack_seq = Some(seq);
                outcome.ack_micros.push(micros(now));
                outcome.acked.push((client_id.to_owned(), seq));
                outcome.in_flight = None;
                shared.acked.fetch_add(1, Ordering::Relaxed);
                if let Some(&(_, at)) = early.iter().find(|(s, _)| *s > seq) {
                    outcome.reply_micros.push(micros(at));
                    replied = true;
                }
            }
            "message" if frame["sender"] != "visitor" => {
                shared.bot.fetch_add(1, Ordering::Relaxed);
                let seq = frame["seq"].as_i64().unwrap_or_default();
                match ack_seq {
                    Some(acked) if !replied && seq > acked => {
                        outcome.reply_micros.push(micros(now));
                        replied = true;
                    }
                    Some(_) => {}
                    None => early.push((seq, now)),
                }
            }
            "error" => {
                let code = frame["code"].as_str().unwrap_or("error");
                shared.error(code);
                if frame["fatal"] == true {
                    return Turn::Stop;
                }
                if code == "rate_limited" {
                    let wait = frame["retry_after_ms"].as_u64().unwrap_or(100);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    sent_at = Instant::now();
                    // Nothing was stored: the same text goes again, with the same client id.
                    if client::send(ws, text).await.is_err() {
                        shared.error("closed");
                        return Turn::Stop;
                    }
                } else if frame["client_id"] == client_id {
                    // Refused (`ended`, `message_too_long`, …): no ack will come.
                    outcome.in_flight = None;
                    return Turn::Done { sent_at };
                }
            }
            "state" if frame["owner"] != "bot" || frame["status"] != "active" => {
                // The bot will not answer any more: the flow is not fit for a load test.
                let owner = frame["owner"].as_str().unwrap_or("?");
                let status = frame["status"].as_str().unwrap_or("?");
                shared.error(&format!("conversation_{owner}_{status}"));
                return Turn::Stop;
            }
            _ => {}
        }
    }
    Turn::Done { sent_at }
}

/// Everything the visitors of one run did.
pub struct Run {
    pub shared: Arc<Shared>,
    pub outcomes: Vec<Outcome>,
    pub started: Instant,
    pub finished: Instant,
}

impl Run {
    /// Persisted messages per second over the steady phase (every visitor welcomed, none
    /// finished), or over the whole run when there was none; and that phase's length.
    pub fn steady_rate(&self) -> (f64, Duration, bool) {
        let lock =
            |m: &Mutex<Option<(Instant, u64)>>| *m.lock().unwrap_or_else(PoisonError::into_inner);
        let whole = || {
            let took = self.finished - self.started;
            (
                self.shared.persisted() as f64 / took.as_secs_f64().max(1e-9),
                took,
                false,
            )
        };
        match (
            lock(&self.shared.steady_start),
            lock(&self.shared.steady_end),
        ) {
            (Some((from, before)), Some((to, after))) if to - from >= Duration::from_secs(1) => {
                let took = to - from;
                ((after - before) as f64 / took.as_secs_f64(), took, true)
            }
            _ => whole(),
        }
    }
}

/// Runs `load.visitors` visitors to the end (or until their connections end), printing
/// progress to stderr every second.
pub async fn run(
    target: &Target,
    load: &LoadArgs,
    messages: Option<u64>,
    rss: Option<&RssSampler>,
) -> Run {
    let shared = Arc::new(Shared::new(load.visitors));
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let started = Instant::now();
    let stop = CancellationToken::new();
    let progress = tokio::spawn(progress(
        Arc::clone(&shared),
        load.visitors,
        rss.cloned(),
        started,
        stop.clone(),
    ));
    let tasks: Vec<_> = (0..load.visitors)
        .map(|index| {
            let (target, load) = (target.clone(), load.clone());
            let (shared, connecting) = (Arc::clone(&shared), Arc::clone(&connecting));
            tokio::spawn(async move {
                visitor(index, &target, &load, messages, &connecting, &shared).await
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(outcome) => outcomes.push(outcome),
            Err(_) => {
                shared.error("loadgen_panic");
                outcomes.push(Outcome::default());
            }
        }
    }
    let finished = Instant::now();
    stop.cancel();
    let _ = progress.await;
    Run {
        shared,
        outcomes,
        started,
        finished,
    }
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
        let persisted = shared.persisted();
        let elapsed = started.elapsed().as_secs_f64();
        let memory = rss.as_ref().map_or(String::new(), |rss| {
            format!(" | server RSS {}", mib(rss.last_kib()))
        });
        eprintln!(
            "[{elapsed:6.1}s] visitors {}/{visitors} started, {} done | persisted {persisted} \
             ({} msg/s now, {:.0} avg) | errors {}{memory}",
            shared.started.load(Ordering::Relaxed),
            shared.completed.load(Ordering::Relaxed),
            persisted - before,
            persisted as f64 / elapsed,
            shared.errors().total(),
        );
        before = persisted;
    }
}

pub async fn main(
    load: &LoadArgs,
    url: &str,
    messages: u64,
    server_pid: Option<u32>,
    json: bool,
) -> anyhow::Result<bool> {
    client::check_open_files(load.visitors)?;
    let target = Target::new(url, load.sources, load.visitors).await?;
    let stop = CancellationToken::new();
    let rss = server_pid.map(|pid| RssSampler::start(pid, stop.clone()));
    let before_kib = rss.as_ref().map(RssSampler::last_kib);
    let run = run(&target, load, Some(messages), rss.as_ref()).await;
    if let Some(rss) = &rss {
        rss.sample();
    }
    stop.cancel();
    let report = Report::of(&run, load, messages, rss.as_ref(), before_kib);
    if json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        report.print();
    }
    Ok(true)
}

struct Report {
    visitors: usize,
    started: u64,
    completed: u64,
    messages: u64,
    flow: String,
    rate: f64,
    duration: Duration,
    steady: Duration,
    steady_found: bool,
    msgs_per_sec: f64,
    acked: u64,
    bot: u64,
    ack: Percentiles,
    reply: Percentiles,
    errors: Errors,
    rss: Option<(u64, u64, u64, u64)>,
}

impl Report {
    fn of(
        run: &Run,
        load: &LoadArgs,
        messages: u64,
        rss: Option<&RssSampler>,
        before_kib: Option<u64>,
    ) -> Report {
        let (msgs_per_sec, steady, steady_found) = run.steady_rate();
        let all = |f: fn(&Outcome) -> &Vec<u64>| {
            run.outcomes
                .iter()
                .flat_map(|o| f(o).iter().copied())
                .collect::<Vec<_>>()
        };
        Report {
            visitors: load.visitors,
            started: run.shared.started.load(Ordering::Relaxed),
            completed: run.shared.completed.load(Ordering::Relaxed),
            messages,
            flow: load.flow.clone(),
            rate: load.rate,
            duration: run.finished - run.started,
            steady,
            steady_found,
            msgs_per_sec,
            acked: run.shared.acked.load(Ordering::Relaxed),
            bot: run.shared.bot.load(Ordering::Relaxed),
            ack: Percentiles::of(all(|o| &o.ack_micros)),
            reply: Percentiles::of(all(|o| &o.reply_micros)),
            errors: run.shared.errors(),
            rss: rss.map(|r| {
                (
                    before_kib.unwrap_or_default(),
                    r.peak_kib(),
                    r.hwm_kib(),
                    r.last_kib(),
                )
            }),
        }
    }

    fn print(&self) {
        let rate = if self.rate > 0.0 {
            format!("at most {} texts/s per visitor", self.rate)
        } else {
            "as fast as acks come".to_owned()
        };
        println!(
            "visitors {} (started {}, completed {}), {} texts each, flow {}, {rate}",
            self.visitors, self.started, self.completed, self.messages, self.flow
        );
        println!(
            "duration {:.2} s; persisted {} (visitor messages acked {}, bot messages {})",
            self.duration.as_secs_f64(),
            self.acked + self.bot,
            self.acked,
            self.bot
        );
        println!(
            "persisted msg/s: {:.0} ({})",
            self.msgs_per_sec,
            if self.steady_found {
                format!(
                    "steady phase: all visitors started, none finished, {:.2} s",
                    self.steady.as_secs_f64()
                )
            } else {
                "whole run: no steady phase of 1 s or more".to_owned()
            }
        );
        println!("ack latency:   {}", self.ack.line());
        println!("reply latency: {}", self.reply.line());
        println!("errors: {}", self.errors.line());
        if let Some((before, peak, hwm, last)) = self.rss {
            println!(
                "server RSS: before {}, peak {} (VmHWM {}), at the end {}",
                mib(before),
                mib(peak),
                mib(hwm),
                mib(last)
            );
        }
    }

    fn json(&self) -> Value {
        json!({
            "visitors": self.visitors,
            "started": self.started,
            "completed": self.completed,
            "messages_per_visitor": self.messages,
            "flow": self.flow,
            "rate_per_visitor": self.rate,
            "duration_s": self.duration.as_secs_f64(),
            "persisted": self.acked + self.bot,
            "visitor_messages_acked": self.acked,
            "bot_messages": self.bot,
            "persisted_per_s": self.msgs_per_sec,
            "steady_phase_s": self.steady_found.then_some(self.steady.as_secs_f64()),
            "ack_latency": self.ack.json(),
            "reply_latency": self.reply.json(),
            "errors": self.errors.0,
            "server_rss_kib": self.rss.map(|(before, peak, hwm, last)| json!({
                "before": before, "peak": peak, "vm_hwm": hwm, "end": last,
            })),
        })
    }
}
