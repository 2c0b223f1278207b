//! Figures: latency percentiles, error counts, the server's memory and CPU time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Percentiles of latencies recorded in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub count: usize,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(mut micros: Vec<u64>) -> Percentiles {
        if micros.is_empty() {
            return Percentiles::default();
        }
        micros.sort_unstable();
        let at = |q: f64| {
            // The nearest-rank percentile: the smallest value with at least q of all below it.
            let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            micros[rank - 1]
        };
        Percentiles {
            count: micros.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: micros[micros.len() - 1],
        }
    }

    pub fn line(&self) -> String {
        format!(
            "p50 {} ms, p90 {} ms, p99 {} ms, max {} ms ({} samples)",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max),
            self.count
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "count": self.count,
            "p50_ms": self.p50 as f64 / 1000.0,
            "p90_ms": self.p90 as f64 / 1000.0,
            "p99_ms": self.p99 as f64 / 1000.0,
            "max_ms": self.max as f64 / 1000.0,
        })
    }
}

fn ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1000.0)
}

/// Errors by code (protocol codes and the client's own: `connect`, `closed`, `timeout`, …).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Errors(pub BTreeMap<String, u64>);

impl Errors {
    pub fn add(&mut self, code: &str) {
        *self.0.entry(code.to_owned()).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn line(&self) -> String {
        if self.0.is_empty() {
            return "none".to_owned();
        }
        self.0
            .iter()
            .map(|(code, count)| format!("{code} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `VmRSS` and `VmHWM` of a process in KiB, from `/proc/PID/status`.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time (user + system) a process has used so far, in seconds, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its `)` are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `utime` and `stime` are fields 14 and 15, i.e. the 12th and 13th after the name.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // In clock ticks of `USER_HZ`, which is 100 on x86 and ARM Linux (`getconf CLK_TCK`;
    // asking `sysconf` would need libc).
    Some((utime + stime) as f64 / 100.0)
}

/// Samples a process's memory every 100 ms until stopped.
#[derive(Clone)]
pub struct RssSampler {
    pub pid: u32,
    /// The largest `VmRSS` seen (KiB).
    peak: Arc<AtomicU64>,
    /// The last `VmRSS` and `VmHWM` (KiB).
    last: Arc<AtomicU64>,
    hwm: Arc<AtomicU64>,
}

impl RssSampler {
    pub fn start(pid: u32, stop: CancellationToken) -> RssSampler {
        let sampler = RssSampler {
            pid,
            peak: Arc::default(),
            last: Arc::default(),
            hwm: Arc::default(),
        };
        sampler.sample();
        let this = sampler.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            while stop.run_until_cancelled(every.tick()).await.is_some() {
                this.sample();
            }
        });
        sampler
    }

    pub fn sample(&self) {
        if let Some((rss, hwm)) = memory_kib(self.pid) {
            self.peak.fetch_max(rss, Ordering::Relaxed);
            self.last.store(rss, Ordering::Relaxed);
            self.hwm.store(hwm, Ordering::Relaxed);
        }
    }

    pub fn peak_kib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn last_kib(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    pub fn hwm_kib(&self) -> u64 {
        self.hwm.load(Ordering::Relaxed)
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
