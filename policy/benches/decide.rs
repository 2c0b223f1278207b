//! Policy decisions per second and their latency with 10, 100 and 1,000 policies.
//!
//! `cargo bench -p policy --bench decide`; the figures go to `docs/benchmarks.md`. Before
//! criterion's runs, a plain loop times every call on its own and prints the median, p99 and
//! maximum, which criterion's averages do not show.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use flows::Value;
use policy::{Context, PolicySet, Request, Resource, Subject};

mod workload;
use workload::{Ask, asks, percentiles, policy_file, specs};

const SIZES: [usize; 3] = [10, 100, 1_000];
/// 2026-03-02 00:00 UTC, in milliseconds.
const DAY: i64 = 1_772_409_600_000;

struct Prepared {
    subject: Subject,
    action: &'static str,
    resource: Resource,
    context: Context,
}

fn prepare(ask: &Ask) -> Prepared {
    Prepared {
        subject: Subject::new(&ask.agent)
            .team(&ask.team)
            .role(ask.role)
            .attr(
                "service_history",
                Value::List(ask.history.iter().cloned().map(Value::String).collect()),
            ),
        action: ask.action,
        resource: Resource::new(ask.entity, &ask.id)
            .attr("owner", Value::String(ask.owner.clone())),
        context: Context::at(DAY + ask.hour * 3_600_000)
            .channel("console")
            .ip(ask.ip),
    }
}

fn set(n: usize) -> PolicySet {
    policy::load(&policy_file(&specs(n)))
        .expect("generated policies load")
        .policies
}

fn decide(set: &PolicySet, p: &Prepared) -> bool {
    let request = Request::new(&p.subject, p.action, &p.resource, &p.context);
    set.decide(&request, &[]).is_allowed()
}

/// Every call timed on its own: median, p99, max.
// The benchmark is the one place that reads the clock (the crate's clippy.toml forbids it).
#[allow(clippy::disallowed_methods)]
fn latencies() {
    let requests: Vec<Prepared> = asks(1_024).iter().map(prepare).collect();
    for n in SIZES {
        let set = set(n);
        let allowed = requests.iter().filter(|p| decide(&set, p)).count();
        // Warm up, then 200,000 timed calls.
        for p in requests.iter().cycle().take(50_000) {
            black_box(decide(&set, p));
        }
        let mut nanos = Vec::with_capacity(200_000);
        let started = Instant::now();
        for p in requests.iter().cycle().take(200_000) {
            let t = Instant::now();
            black_box(decide(&set, black_box(p)));
            nanos.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        let total = started.elapsed();
        let (median, p99, max) = percentiles(&mut nanos);
        eprintln!(
            "{n:>5} policies: median {:.2} µs, p99 {:.2} µs, max {:.1} µs, {:.0} decisions/s (timed loop); {allowed} of {} requests allowed",
            median as f64 / 1e3,
            p99 as f64 / 1e3,
            max as f64 / 1e3,
            200_000.0 / total.as_secs_f64(),
            requests.len(),
        );
    }
}

fn bench(c: &mut Criterion) {
    let requests: Vec<Prepared> = asks(1_024).iter().map(prepare).collect();
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(requests.len() as u64));
    for n in SIZES {
        let set = set(n);
        group.bench_function(format!("{n} policies/1024 requests"), |b| {
            b.iter(|| {
                let mut allowed = 0u32;
                for p in &requests {
                    allowed += u32::from(decide(&set, black_box(p)));
                }
                allowed
            });
        });
    }
    group.finish();
    let text = policy_file(&specs(1_000));
    c.bench_function("load/1000 policies", |b| {
        b.iter(|| policy::load(black_box(&text)).map(|c| c.policies.len()));
    });
}

fn main() {
    latencies();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
