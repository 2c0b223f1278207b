//! The raw observations of `loadgen console` (when each visitor handed off, when and where each
//! `assigned` frame arrived) and the report computed from them, for one run or for several
//! load generators measuring one cluster together (`loadgen merge`).
//!
//! Times are Unix-epoch nanoseconds, so that records of processes on one machine can be
//! joined: a conversation handed off by one process may be assigned to an agent of another.
//!
//! A record file (`loadgen console --record FILE`) is JSON lines: first
//! `{"kind":"run", …counters}`, then one `{"kind":"handoff","conversation":…,"t0_ns":…}` per
//! conversation this process handed off and one
//! `{"kind":"assigned","conversation":…,"t1_ns":…,"agent":…}` per conversation whose first
//! `assigned` frame reached one of this process's agents (`agent`: its index here).

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::stats::{Errors, Percentiles, mib};

/// What one `loadgen console` process saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// Agents this process kept online.
    pub agents: usize,
    /// Visitors this process started.
    pub visitors: usize,
    /// Capacity of this process's agents (`None` without agents).
    pub capacity: Option<usize>,
    /// Visitors started per second by this process; `None`: all at once.
    pub rate: Option<f64>,
    pub timeout: Duration,
    pub welcomed: u64,
    pub handed_off: u64,
    pub queue_frames: u64,
    pub queue_bytes: u64,
    pub errors: Errors,
    /// Conversation and t0 (the visitor sent `agent`), epoch ns.
    pub handoffs: Vec<(String, u64)>,
    /// Conversation, t1 (its first `assigned` frame at an agent of this process), epoch ns,
    /// and that agent's index.
    pub assignments: Vec<(String, u64, usize)>,
}

impl Record {
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::new(file);
        let run = json!({
            "kind": "run",
            "agents": self.agents,
            "visitors": self.visitors,
            "capacity": self.capacity,
            "rate_per_s": self.rate,
            "timeout_s": self.timeout.as_secs_f64(),
            "welcomed": self.welcomed,
            "handed_off": self.handed_off,
            "queue_frames": self.queue_frames,
            "queue_bytes": self.queue_bytes,
            "errors": self.errors.0,
        });
        writeln!(out, "{run}")?;
        for (conversation, t0) in &self.handoffs {
            let line = json!({"kind": "handoff", "conversation": conversation, "t0_ns": t0});
            writeln!(out, "{line}")?;
        }
        for (conversation, t1, agent) in &self.assignments {
            let line = json!({
                "kind": "assigned", "conversation": conversation, "t1_ns": t1, "agent": agent,
            });
            writeln!(out, "{line}")?;
        }
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn read(path: &Path) -> anyhow::Result<Record> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Record::parse(std::io::BufReader::new(file))
            .with_context(|| format!("reading {}", path.display()))
    }

    fn parse(input: impl BufRead) -> anyhow::Result<Record> {
        let mut record = Record::default();
        let mut seen_run = false;
        for (number, line) in input.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(&line)
                .with_context(|| format!("line {} is not JSON", number + 1))?;
            let uint = |name: &str| {
                value[name]
                    .as_u64()
                    .with_context(|| format!("line {}: no {name}", number + 1))
            };
            let text = |name: &str| {
                value[name]
                    .as_str()
                    .map(str::to_owned)
                    .with_context(|| format!("line {}: no {name}", number + 1))
            };
            match value["kind"].as_str().unwrap_or_default() {
                "run" => {
                    seen_run = true;
                    record.agents = usize::try_from(uint("agents")?)?;
                    record.visitors = usize::try_from(uint("visitors")?)?;
                    record.capacity = value["capacity"]
                        .as_u64()
                        .map(usize::try_from)
                        .transpose()?;
                    record.rate = value["rate_per_s"].as_f64();
                    record.timeout = Duration::from_secs_f64(
                        value["timeout_s"].as_f64().context("no timeout_s")?,
                    );
                    record.welcomed = uint("welcomed")?;
                    record.handed_off = uint("handed_off")?;
                    record.queue_frames = uint("queue_frames")?;
                    record.queue_bytes = uint("queue_bytes")?;
                    if let Some(errors) = value["errors"].as_object() {
                        for (code, count) in errors {
                            *record.errors.0.entry(code.clone()).or_default() +=
                                count.as_u64().unwrap_or_default();
                        }
                    }
                }
                "handoff" => record
                    .handoffs
                    .push((text("conversation")?, uint("t0_ns")?)),
                "assigned" => record.assignments.push((
                    text("conversation")?,
                    uint("t1_ns")?,
                    usize::try_from(uint("agent")?)?,
                )),
                other => bail!("line {}: unknown kind {other:?}", number + 1),
            }
        }
        if !seen_run {
            bail!("no \"run\" line: not a `loadgen console --record` file");
        }
        Ok(record)
    }
}

/// Handoffs joined with assignments, over one or more records.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Handoffs whose first `assigned` frame came within the timeout.
    pub completed: usize,
    /// Handoffs without an `assigned` frame within the timeout.
    pub timeouts: usize,
    /// `assigned` frames for conversations no record handed off.
    pub other_assigned: usize,
    /// From the first handoff to the last assignment within the timeout.
    pub span: Duration,
    /// t1 − t0 in microseconds.
    pub latency: Percentiles,
    /// Fewest and most handoffs one agent received (over every agent of every record).
    pub per_agent: (usize, usize),
}

impl Outcome {
    pub fn join(records: &[Record], timeout: Duration) -> Outcome {
        // The first handoff and the first assignment of each conversation, over all records.
        let mut handoffs: HashMap<&str, u64> = HashMap::new();
        for record in records {
            for (conversation, t0) in &record.handoffs {
                handoffs
                    .entry(conversation)
                    .and_modify(|t| *t = (*t).min(*t0))
                    .or_insert(*t0);
            }
        }
        let mut assignments: HashMap<&str, (u64, usize, usize)> = HashMap::new();
        for (file, record) in records.iter().enumerate() {
            for (conversation, t1, agent) in &record.assignments {
                let entry = assignments
                    .entry(conversation)
                    .or_insert((*t1, file, *agent));
                if *t1 < entry.0 {
                    *entry = (*t1, file, *agent);
                }
            }
        }
        let mut per_agent: Vec<Vec<usize>> = records.iter().map(|r| vec![0; r.agents]).collect();
        let timeout_ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let mut latencies = Vec::with_capacity(handoffs.len());
        let (mut first, mut last) = (None::<u64>, None::<u64>);
        for (conversation, &t0) in &handoffs {
            first = Some(first.map_or(t0, |f| f.min(t0)));
            let Some(&(t1, file, agent)) = assignments.get(conversation) else {
                continue;
            };
            let took = t1.saturating_sub(t0);
            if took > timeout_ns {
                continue;
            }
            latencies.push(took / 1000);
            last = Some(last.map_or(t1, |l| l.max(t1)));
            if let Some(count) = per_agent[file].get_mut(agent) {
                *count += 1;
            }
        }
        let completed = latencies.len();
        let counts = per_agent.iter().flatten().copied();
        Outcome {
            completed,
            timeouts: handoffs.len() - completed,
            other_assigned: assignments
                .keys()
                .filter(|c| !handoffs.contains_key(*c))
                .count(),
            span: match (first, last) {
                (Some(first), Some(last)) => Duration::from_nanos(last.saturating_sub(first)),
                _ => Duration::ZERO,
            },
            latency: Percentiles::of(latencies),
            per_agent: (
                counts.clone().min().unwrap_or_default(),
                counts.max().unwrap_or_default(),
            ),
        }
    }

    pub fn handoffs_per_sec(&self) -> f64 {
        self.completed as f64 / self.span.as_secs_f64().max(1e-9)
    }
}

/// Figures only a single run has.
pub struct RunFigures {
    /// Creating the agents, and signing them in with the console open.
    pub created_in: Duration,
    pub online_in: Duration,
    /// From the first visitor to the end.
    pub duration: Duration,
    /// Server RSS (KiB): before the agents, agents online, peak, VmHWM, at the end.
    pub rss: Option<(u64, u64, u64, u64, u64)>,
    /// Server and loadgen CPU seconds from the first visitor to the end.
    pub cpu: Option<(f64, f64)>,
}

/// The report of one run (`loadgen console`) or of several merged (`loadgen merge`).
pub struct Report {
    /// Record files merged (0: a single run, not from files).
    pub files: usize,
    pub agents: usize,
    pub visitors: usize,
    pub capacity: Option<usize>,
    /// Visitors started per second in total; `None`: all at once (or unknown).
    pub rate: Option<f64>,
    pub timeout: Duration,
    pub welcomed: u64,
    pub handed_off: u64,
    pub outcome: Outcome,
    pub queue_frames: u64,
    pub queue_bytes: u64,
    pub errors: Errors,
    pub run: Option<RunFigures>,
}

impl Report {
    /// Joins `records`; `timeout` defaults to the longest the records were run with.
    pub fn of(records: &[Record], timeout: Option<Duration>) -> Report {
        let timeout =
            timeout.unwrap_or_else(|| records.iter().map(|r| r.timeout).max().unwrap_or_default());
        let capacities: Vec<usize> = records.iter().filter_map(|r| r.capacity).collect();
        let mut errors = Errors::default();
        for record in records {
            for (code, count) in &record.errors.0 {
                *errors.0.entry(code.clone()).or_default() += count;
            }
        }
        let rates: Option<Vec<f64>> = records
            .iter()
            .filter(|r| r.visitors > 0)
            .map(|r| r.rate)
            .collect();
        Report {
            files: 0,
            agents: records.iter().map(|r| r.agents).sum(),
            visitors: records.iter().map(|r| r.visitors).sum(),
            capacity: capacities
                .first()
                .copied()
                .filter(|c| capacities.iter().all(|d| d == c)),
            rate: rates.map(|r| r.iter().sum()),
            timeout,
            welcomed: records.iter().map(|r| r.welcomed).sum(),
            handed_off: records.iter().map(|r| r.handed_off).sum(),
            outcome: Outcome::join(records, timeout),
            queue_frames: records.iter().map(|r| r.queue_frames).sum(),
            queue_bytes: records.iter().map(|r| r.queue_bytes).sum(),
            errors,
            run: None,
        }
    }

    pub fn print(&self, flow: &str) {
        let rate = self
            .rate
            .map_or("all at once".to_owned(), |r| format!("{r} per second"));
        let capacity = self
            .capacity
            .map_or("mixed".to_owned(), |c| format!("capacity {c} each"));
        match &self.run {
            Some(run) => println!(
                "agents {} ({capacity}; created in {:.1} s, consoles open in {:.1} s); \
                 visitors {} started {rate}, flow {flow}",
                self.agents,
                run.created_in.as_secs_f64(),
                run.online_in.as_secs_f64(),
                self.visitors,
            ),
            None => println!(
                "{} record files merged: agents {} ({capacity}); visitors {} started {rate} \
                 in total, flow {flow}",
                self.files, self.agents, self.visitors,
            ),
        }
        let duration = self.run.as_ref().map_or(String::new(), |run| {
            format!("duration {:.2} s; ", run.duration.as_secs_f64())
        });
        let outcome = &self.outcome;
        println!(
            "{duration}welcomed {}, handed off {}, assigned within {} s {} ({} timeouts); \
             assigned frames for other conversations {}",
            self.welcomed,
            self.handed_off,
            self.timeout.as_secs(),
            outcome.completed,
            outcome.timeouts,
            outcome.other_assigned,
        );
        println!(
            "handoffs/s: {:.0} ({} over {:.2} s, first handoff → last assignment)",
            outcome.handoffs_per_sec(),
            outcome.completed,
            outcome.span.as_secs_f64()
        );
        println!("handoff → agent's screen: {}", outcome.latency.line());
        println!(
            "handoffs per agent: {} to {}; queue frames received {} ({})",
            outcome.per_agent.0,
            outcome.per_agent.1,
            self.queue_frames,
            mib(self.queue_bytes / 1024)
        );
        println!("errors: {}", self.errors.line());
        let Some(run) = &self.run else {
            return;
        };
        if let Some((before, agents, peak, hwm, last)) = run.rss {
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
        if let Some((server, own)) = run.cpu {
            let secs = run.duration.as_secs_f64().max(1e-9);
            println!(
                "CPU while the visitors ran: server {server:.1} s ({:.2} cores), loadgen \
                 {own:.1} s ({:.2} cores)",
                server / secs,
                own / secs
            );
        }
    }

    pub fn json(&self) -> Value {
        let outcome = &self.outcome;
        let mut report = json!({
            "agents": self.agents,
            "capacity": self.capacity,
            "visitors": self.visitors,
            "rate_per_s": self.rate,
            "timeout_s": self.timeout.as_secs(),
            "welcomed": self.welcomed,
            "handed_off": self.handed_off,
            "assigned": outcome.completed,
            "timeouts": outcome.timeouts,
            "assigned_other_conversations": outcome.other_assigned,
            "handoff_span_s": outcome.span.as_secs_f64(),
            "handoffs_per_s": outcome.handoffs_per_sec(),
            "handoff_to_screen": outcome.latency.json(),
            "handoffs_per_agent": {"min": outcome.per_agent.0, "max": outcome.per_agent.1},
            "queue_frames": self.queue_frames,
            "queue_bytes": self.queue_bytes,
            "errors": self.errors.0,
        });
        if let Some(run) = &self.run {
            report["agents_created_s"] = json!(run.created_in.as_secs_f64());
            report["consoles_open_s"] = json!(run.online_in.as_secs_f64());
            report["duration_s"] = json!(run.duration.as_secs_f64());
            report["server_rss_kib"] = json!(run.rss.map(|(before, agents, peak, hwm, last)| {
                json!({
                    "before": before, "agents_online": agents, "peak": peak, "vm_hwm": hwm,
                    "end": last,
                })
            }));
            report["cpu_s"] = json!(
                run.cpu
                    .map(|(server, own)| json!({"server": server, "loadgen": own}))
            );
        } else {
            report["files"] = json!(self.files);
        }
        report
    }
}

/// `loadgen merge FILE…`: joins the records of several `loadgen console --record` processes
/// and prints one report.
pub fn merge(
    files: &[PathBuf],
    timeout: Option<Duration>,
    flow: &str,
    as_json: bool,
) -> anyhow::Result<bool> {
    if files.is_empty() {
        bail!("no record files given");
    }
    let records = files
        .iter()
        .map(|path| Record::read(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut report = Report::of(&records, timeout);
    report.files = records.len();
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        report.print(flow);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Outcome, Record, Report};

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn record(agents: usize, visitors: usize) -> Record {
        Record {
            agents,
            visitors,
            capacity: (agents > 0).then_some(100),
            rate: Some(50.0),
            timeout: Duration::from_secs(30),
            ..Record::default()
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let mut one = record(2, 3);
        one.welcomed = 3;
        one.handed_off = 2;
        one.queue_frames = 7;
        one.queue_bytes = 700;
        one.errors.add("timeout_welcome");
        one.handoffs = vec![("c1".into(), 10 * S), ("c2".into(), 11 * S)];
        one.assignments = vec![("c1".into(), 12 * S, 1)];
        let path =
            std::env::temp_dir().join(format!("loadgen-record-{}.jsonl", std::process::id()));
        one.write(&path).expect("written");
        let back = Record::read(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        assert_eq!(back, one);
    }

    #[test]
    fn merging_joins_handoffs_and_assignments_across_files() {
        // Process A: 2 agents, hands off a1 … a4; process B: 2 agents, hands off b1 … b4.
        // Some conversations of A are assigned to B's agents and the other way round.
        let base = 1_800_000_000 * S;
        let mut a = record(2, 4);
        let mut b = record(2, 4);
        for i in 0..4 {
            a.handoffs.push((format!("a{i}"), base + i * S));
            b.handoffs.push((format!("b{i}"), base + i * S + 500 * MS));
        }
        a.handed_off = 4;
        b.handed_off = 4;
        // Latencies: a0 100 ms (at A's agent 0), a1 200 ms (B's agent 1), a2 300 ms (A's 1),
        // a3 never; b0 400 ms (A's 0), b1 500 ms (B's 0), b2 40 s (over the timeout),
        // b3 600 ms (B's 1), and c9, which neither handed off (A's 0).
        a.assignments = vec![
            ("a0".into(), base + 100 * MS, 0),
            ("a2".into(), base + 2 * S + 300 * MS, 1),
            ("b0".into(), base + 900 * MS, 0),
            ("c9".into(), base + 5 * S, 0),
        ];
        b.assignments = vec![
            ("a1".into(), base + S + 200 * MS, 1),
            ("b1".into(), base + S + S, 0),
            ("b2".into(), base + 2 * S + 500 * MS + 40 * S, 0),
            ("b3".into(), base + 3 * S + 1100 * MS, 1),
            // A later duplicate frame for a0 at another agent: the first one counts.
            ("a0".into(), base + 3 * S, 0),
        ];
        let timeout = Duration::from_secs(30);

        // Each file alone misses what the other's agents got.
        let alone = Outcome::join(std::slice::from_ref(&a), timeout);
        assert_eq!((alone.completed, alone.timeouts), (2, 2));

        let merged = Outcome::join(&[a.clone(), b.clone()], timeout);
        assert_eq!(merged.completed, 6);
        assert_eq!(merged.timeouts, 2, "a3 never assigned, b2 too late");
        assert_eq!(merged.other_assigned, 1, "c9");
        // Latencies 100, 200, 300, 400, 500, 600 ms, in µs, nearest rank.
        assert_eq!(merged.latency.count, 6);
        assert_eq!(merged.latency.p50, 300_000);
        assert_eq!(merged.latency.p90, 600_000);
        assert_eq!(merged.latency.p99, 600_000);
        assert_eq!(merged.latency.max, 600_000);
        // First handoff (a0 at base) → last assignment in time (b3 at base + 4.1 s).
        assert_eq!(merged.span, Duration::from_millis(4100));
        assert!((merged.handoffs_per_sec() - 6.0 / 4.1).abs() < 1e-9);
        // A's agents: 0 got a0, b0; 1 got a2. B's agents: 0 got b1; 1 got a1, b3.
        assert_eq!(merged.per_agent, (1, 2));

        let report = Report::of(&[a, b, record(0, 0)], None);
        assert_eq!(
            (report.agents, report.visitors, report.handed_off),
            (4, 8, 8)
        );
        assert_eq!(report.capacity, Some(100));
        assert_eq!(report.rate, Some(100.0));
        assert_eq!(report.outcome.completed, 6);
    }

    #[test]
    fn percentiles_over_many_merged_handoffs() {
        // 1,000 conversations, latencies 1 … 1,000 ms, handed off by two processes and
        // assigned alternately at their agents.
        let base = 1_800_000_000 * S;
        let (mut a, mut b) = (record(1, 500), record(1, 500));
        for i in 1..=1000u64 {
            let id = format!("c{i}");
            let (hands, gets) = if i % 2 == 0 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            hands.handoffs.push((id.clone(), base));
            gets.assignments.push((id, base + i * MS, 0));
        }
        let merged = Outcome::join(&[a, b], Duration::from_secs(30));
        assert_eq!((merged.completed, merged.timeouts), (1000, 0));
        assert_eq!(merged.latency.p50, 500_000);
        assert_eq!(merged.latency.p90, 900_000);
        assert_eq!(merged.latency.p99, 990_000);
        assert_eq!(merged.latency.max, 1_000_000);
        assert_eq!(merged.per_agent, (500, 500));
    }
}
