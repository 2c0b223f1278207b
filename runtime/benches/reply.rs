//! Bot reply time on the server: from a visitor message reaching its conversation to the bot's
//! answer being stored and published to the connections — the message's commit, the engine
//! step and the turn's commit, without any socket. Prints percentiles (no criterion: the
//! budget is about p99, which criterion does not report).
//!
//!     cargo bench -p runtime --bench reply [-- TURNS [CONVERSATIONS]]

use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime::conversation::{Hub, HubConfig, Outbound, Services, StartParams, VisitorInput};
use runtime::engines::Engines;
use runtime::store::{MessageWriter, Store, WriterConfig};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let turns: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let conversations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(turns, conversations.max(1)))
}

async fn run(turns: usize, conversations: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("kefu-reply-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("kefu.db").display());
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let library = flows::Library::bundled().map_err(|(f, e)| anyhow::anyhow!("{f}: {e}"))?;
    let mut engines = Engines::new(library);
    for engine in runtime::compiled::bundled() {
        engines.register(engine);
    }
    let fixtures =
        flows::fixtures::Fixtures::from_json(include_str!("../../flows/library/fixtures.json"))
            .map_err(anyhow::Error::msg)?;
    let services = Services {
        store: store.clone(),
        writer: MessageWriter::spawn(store.clone(), WriterConfig::default()),
        engines: Arc::new(engines),
        lookups: Arc::new(fixtures),
        cluster: None,
    };
    let hub = Hub::new(services, HubConfig::default(), CancellationToken::new());
    let mut tasks = Vec::new();
    for _ in 0..conversations {
        let hub = hub.clone();
        let each = turns / conversations;
        tasks.push(tokio::spawn(async move { visitor(hub, each).await }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await??);
    }
    hub.shutdown().await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    times.sort_unstable();
    anyhow::ensure!(!times.is_empty(), "no turns were timed");
    let at = |q: f64| {
        let last = times.len() - 1;
        let index = (last as f64 * q).round() as usize;
        ms(times[index.min(last)])
    };
    println!(
        "bot reply, server side (faq-hours, {} turns over {conversations} conversation(s), SQLite): \
         p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        times.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One visitor typing `turns` texts, each timed until the bot's first answer is published.
async fn visitor(hub: Hub, turns: usize) -> anyhow::Result<Vec<Duration>> {
    let started = hub
        .start(StartParams {
            flow: "faq-hours".to_owned(),
            locale: Some("en".to_owned()),
            tz_offset_minutes: 480,
            channel: "bench".to_owned(),
            visitor: std::collections::BTreeMap::new(),
        })
        .await?;
    let mut handle = started.handle;
    let mut events = handle.subscribe();
    let mut times = Vec::with_capacity(turns);
    for turn in 0..turns {
        let began = Instant::now();
        let text = VisitorInput::Text("what about drones?".to_owned());
        let seq = hub
            .send(&mut handle, format!("t{turn}"), text)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // The first message numbered after the visitor's is the bot's answer.
        loop {
            if let Outbound::Message { seq: n, .. } = events.recv().await?
                && n > seq
            {
                break;
            }
        }
        times.push(began.elapsed());
        // The rest of the answer, before the next text.
        while let Ok(event) = tokio::time::timeout(Duration::from_millis(2), events.recv()).await {
            event?;
        }
    }
    Ok(times)
}
