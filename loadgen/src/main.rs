//! `loadgen`: drives a kefu server over the visitor WebSocket (`docs/protocol.md`) and the agent
//! console (`docs/console-api.md`) and measures it: chat throughput and latency, the memory of
//! idle connections, durability under `kill -9`, and handoffs to agents.

mod chat;
mod client;
mod console;
mod crash;
mod handoffs;
mod http;
mod idle;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Load generator for kefu's visitor WebSocket and agent console",
    long_about = "Load generator for kefu's visitor WebSocket (docs/protocol.md) and agent \
        console (docs/console-api.md).\n\n\
        `chat` runs N visitors that each start a conversation and send M texts, and reports \
        ack latency (send → ack: the message is durable), reply latency (send → the first \
        bot message after it), persisted messages per second (visitor messages acked + bot \
        messages received) and errors by code.\n\
        `idle` opens N connections and holds them, and reports the server's memory per \
        connection.\n\
        `crash` starts `kefu serve`, runs the chat load, kills the server with SIGKILL, \
        restarts it on the same data and checks that every acknowledged message survived.\n\
        `console` creates agents, opens their consoles (`/ws/agent`) and has N visitors ask \
        for a human, and reports handoffs per second and the time from a handoff to the \
        `assigned` frame on an agent's screen; with `--record FILE` it also writes its raw \
        observations, and `merge` joins those of several load generators (one per node of a \
        cluster) into one report.\n\n\
        Progress goes to stderr once a second; the report goes to stdout (`--json` for a \
        machine-readable one)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// N visitors chat with a bot: throughput, ack and reply latency, errors, server RSS.
    Chat {
        #[command(flatten)]
        load: LoadArgs,
        /// Visitor WebSocket URL of a running server.
        #[arg(long, default_value = "ws://127.0.0.1:8080/ws/visitor")]
        url: String,
        /// Texts each visitor sends.
        #[arg(long, default_value_t = 100)]
        messages: u64,
        /// Sample this process's VmRSS / VmHWM (/proc/PID/status) during the run.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Opens N connections and holds them: server RSS and memory per connection.
    ///
    /// Each connection takes a file descriptor here and one in the server: raise the limit
    /// first, e.g. `bash -c 'ulimit -n 250000 && loadgen idle …'` (the server needs the same).
    /// Connections are spread over the source addresses 127.0.0.1 … 127.0.0.K so that more
    /// than one address's ephemeral ports can be used.
    Idle {
        /// Visitor WebSocket URL of a running server.
        #[arg(long, default_value = "ws://127.0.0.1:8080/ws/visitor")]
        url: String,
        /// Connections to open.
        #[arg(long)]
        connections: usize,
        /// Also start a conversation on each connection (flow `--flow`).
        #[arg(long)]
        start: bool,
        /// The flow `--start` uses.
        #[arg(long, default_value = "faq-hours")]
        flow: String,
        /// Sample this process's VmRSS / VmHWM (/proc/PID/status).
        #[arg(long)]
        server_pid: Option<u32>,
        /// How long to hold the connections open once they are all there.
        #[arg(long, default_value_t = 10)]
        hold: u64,
        /// Connections being opened at once.
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
        /// Loopback source addresses (127.0.0.1 … 127.0.0.K); default: one per 25,000
        /// connections.
        #[arg(long)]
        sources: Option<u8>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Starts kefu, runs the chat load, kills kefu (SIGKILL), restarts it and checks that
    /// every acknowledged message is stored with its seq; exits 1 if one was lost.
    Crash {
        #[command(flatten)]
        load: LoadArgs,
        /// The `kefu` binary.
        #[arg(long)]
        kefu: PathBuf,
        /// Data folder of the server (`kefu serve --data-dir`); its log goes to `kefu.log` there.
        #[arg(long)]
        data_dir: PathBuf,
        /// Database URL for `kefu serve --database-url` (default: SQLite in the data folder).
        #[arg(long)]
        database_url: Option<String>,
        /// Seconds of load before the kill.
        #[arg(long, default_value_t = 5.0)]
        kill_after: f64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Agents with the console open, visitors who ask for a human: handoffs per second and
    /// the time from handoff to the agent's screen.
    ///
    /// Signs in as admin, creates `--agents` agents in team `support` (with room for every
    /// visitor), signs each in and opens its console (`/ws/agent`). Then each visitor starts
    /// `order-status`, waits for the bot's first question and types `agent`; the handoff is
    /// timed from that text to the `assigned` frame on the console of the agent who got it.
    /// The server must assign automatically (`kefu serve --auto-assign`) and should have a
    /// fresh database (waiting conversations from earlier runs take agents' room). Every
    /// agent and visitor holds a connection: raise the open-files limit as for `idle`.
    Console {
        /// The server's HTTP URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The password of the account `admin` (the server's `KEFU_ADMIN_PASSWORD`).
        #[arg(long, env = "KEFU_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: String,
        /// Agents to create and keep online (0: visitors only, for another process's or
        /// node's agents).
        #[arg(long, default_value_t = 200)]
        agents: usize,
        /// Visitors that each hand one conversation off.
        #[arg(long, default_value_t = 2000)]
        visitors: usize,
        /// Visitors started per second in total (each hands off about when its first bot
        /// question arrives); default: all at once.
        #[arg(long)]
        rate: Option<f64>,
        /// Seconds to wait for each step of a visitor and for each assignment before
        /// counting a timeout.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Sample this process's VmRSS / VmHWM (/proc/PID/status) and CPU time.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Loopback source addresses (127.0.0.1 … 127.0.0.K); default: one per 25,000
        /// connections.
        #[arg(long)]
        sources: Option<u8>,
        /// Capacity of each agent (open conversations, 1 to 100); default: room for every
        /// visitor of this process, ⌈visitors / agents⌉ + 1. Set it when several load
        /// generators share a cluster, e.g. ⌈all visitors / all agents⌉.
        #[arg(long)]
        capacity: Option<usize>,
        /// After this process's visitors are done, keep its agents online until no
        /// `assigned` frame has come for this many seconds: other load generators' visitors
        /// may still be given to them.
        #[arg(long)]
        hold: Option<f64>,
        /// Write the raw observations to FILE (JSON lines: the counters, then t0 of every
        /// handoff and t1 and agent of every `assigned` frame, as Unix-epoch nanoseconds) for
        /// `loadgen merge`.
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// Start the visitors at this wall-clock time (Unix seconds, e.g. `$(($(date +%s) +
        /// 20))`) rather than as soon as the agents are online, so that load generators
        /// started one after the other all have their agents online first.
        #[arg(long, value_name = "UNIX_SECONDS")]
        start_at: Option<f64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Joins the records of several `loadgen console --record FILE` processes (e.g. one per
    /// node, each with its own agents and visitors) and prints one report, as for a single run.
    ///
    /// A conversation handed off by one process and assigned to another's agent is matched
    /// by its id; times are compared on the wall clock, so the processes must share one.
    Merge {
        /// Record files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Seconds from handoff to assignment after which it counts as a timeout; default:
        /// the longest `--timeout` of the records.
        #[arg(long)]
        timeout: Option<f64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// How visitors chat (shared by `chat` and `crash`).
#[derive(Args, Clone)]
pub struct LoadArgs {
    /// Concurrent visitors (one connection and one conversation each).
    #[arg(long, default_value_t = 100)]
    pub visitors: usize,
    /// The flow each visitor starts. Its bot must answer any text and never end or hand off:
    /// `faq-hours` and `guided-shopping` re-prompt on an unrecognised text (two bot messages
    /// per text).
    #[arg(long, default_value = "faq-hours")]
    pub flow: String,
    /// Locale of the conversations.
    #[arg(long, default_value = "en")]
    pub locale: String,
    /// What visitors type (avoid the flow's keywords such as "agent" or "human").
    #[arg(long, default_value = "what about drones?")]
    pub text: String,
    /// Texts per second per visitor at most; a visitor also waits for the ack and the first
    /// bot reply before its next text. The default, 10, is the server's default rate limit
    /// per connection (10 frames/s, bursts of 20); 0 = as fast as acks and replies come (then
    /// expect `rate_limited` errors: those texts are sent again after `retry_after_ms`).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Seconds to wait for an ack or a reply before counting a `timeout`.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Loopback source addresses (127.0.0.1 … 127.0.0.K) to spread connections over;
    /// default: one per 25,000 visitors.
    #[arg(long)]
    pub sources: Option<u8>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Chat {
                load,
                url,
                messages,
                server_pid,
                json,
            } => chat::main(&load, &url, messages, server_pid, json).await,
            Command::Idle {
                url,
                connections,
                start,
                flow,
                server_pid,
                hold,
                concurrency,
                sources,
                json,
            } => {
                idle::main(idle::Options {
                    url,
                    connections,
                    start: start.then_some(flow),
                    server_pid,
                    hold: std::time::Duration::from_secs(hold),
                    concurrency,
                    sources,
                    json,
                })
                .await
            }
            Command::Crash {
                load,
                kefu,
                data_dir,
                database_url,
                kill_after,
                json,
            } => {
                crash::main(
                    &load,
                    &kefu,
                    &data_dir,
                    database_url.as_deref(),
                    kill_after,
                    json,
                )
                .await
            }
            Command::Console {
                url,
                admin_password,
                agents,
                visitors,
                rate,
                timeout,
                server_pid,
                sources,
                capacity,
                hold,
                record,
                start_at,
                json,
            } => {
                console::main(console::Options {
                    url,
                    admin_password,
                    agents,
                    visitors,
                    rate,
                    timeout: std::time::Duration::from_secs(timeout),
                    server_pid,
                    sources,
                    json,
                    capacity,
                    hold: hold.map(std::time::Duration::from_secs_f64),
                    record,
                    start_at,
                })
                .await
            }
            Command::Merge {
                files,
                timeout,
                json,
            } => handoffs::merge(
                &files,
                timeout.map(std::time::Duration::from_secs_f64),
                console::FLOW,
                json,
            ),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}
