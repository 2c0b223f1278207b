//! Durable audit records per second: N producers write records, each counted only when the
//! writer acknowledges it (after the fsync of its batch); at the end every line of every
//! segment is counted and the hash chain verified across them (zero loss). Segments have the
//! default size (64 MiB, about 190,000 records), so a run of more records includes rotations. Prints the rate (no criterion: the figure is a
//! throughput under a durability condition, not a per-call time).
//!
//!     cargo bench -p runtime --bench audit [-- RECORDS [PRODUCERS [IN_FLIGHT]]]

use std::collections::VecDeque;
use std::time::Instant;

use runtime::audit::{Audit, AuditRecord, Decision};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let records: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let producers: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let in_flight: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(512);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(records, producers.max(1), in_flight.max(1)))
}

async fn run(records: u64, producers: u64, in_flight: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("kefu-audit-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let audit = Audit::open(&dir)?;
    let per = records / producers;
    let began = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let audit = audit.clone();
        // Each producer is like a stream of requests: up to `in_flight` of its records wait
        // for their fsync at once; a record counts only once acknowledged.
        tasks.push(tokio::spawn(async move {
            let mut waiting = VecDeque::with_capacity(in_flight);
            let mut acked = 0u64;
            for i in 0..per {
                let record =
                    AuditRecord::new(format!("agent{p}"), "read", format!("customers::{i}"))
                        .decided(Decision::Allow, vec!["support-reads-own-customers".into()])
                        .ip(Some("10.1.2.3".into()))
                        .result_size(1);
                waiting.push_back(audit.submit(record).await?);
                if waiting.len() == in_flight
                    && let Some(durable) = waiting.pop_front()
                {
                    durable.await?;
                    acked += 1;
                }
            }
            for durable in waiting {
                durable.await?;
                acked += 1;
            }
            anyhow::Ok(acked)
        }));
    }
    let mut acked = 0;
    for task in tasks {
        acked += task.await??;
    }
    let elapsed = began.elapsed();
    let trail = audit.dir().map(std::path::Path::to_path_buf);
    drop(audit);
    let Some(trail) = trail else {
        anyhow::bail!("the trail has no folder");
    };
    let segments = runtime::audit::log::segments(&trail)?;
    let (mut lines, mut bytes) = (0u64, 0u64);
    for segment in &segments {
        lines += std::fs::read_to_string(&segment.path)?.lines().count() as u64;
        bytes += std::fs::metadata(&segment.path)?.len();
    }
    let verified = runtime::audit::verify(&trail)?;
    println!(
        "audit: {acked} records durable in {:.2} s = {:.0} records/s ({producers} producers, \
         {in_flight} in flight each, {:.0} bytes/record, {} segments)",
        elapsed.as_secs_f64(),
        acked as f64 / elapsed.as_secs_f64(),
        bytes as f64 / acked.max(1) as f64,
        segments.len(),
    );
    println!(
        "zero loss: {} lines written for {} submitted; chain {}",
        lines,
        per * producers,
        match &verified {
            Ok(verified) => format!("verified ({} records)", verified.records),
            Err(broken) => format!(
                "BROKEN at {} line {}: {}",
                broken.segment, broken.line, broken.problem
            ),
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
    if lines != per * producers || acked != lines || verified.is_err() {
        anyhow::bail!("records were lost or the chain is broken");
    }
    Ok(())
}
