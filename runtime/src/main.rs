//! `kefu`: the server (the default) and the developer commands `validate`, `run` and `export`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kefu",
    version,
    about = "kefu customer-service platform: server and flow tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web UI and API (the default when no command is given).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "KEFU_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Where the embedded SQLite database lives (`DIR/kefu.db`).
        #[arg(long, env = "KEFU_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// Use this database instead (`postgres://…`, `mysql://…` or `sqlite://…`).
        #[arg(long, env = "KEFU_DATABASE_URL")]
        database_url: Option<String>,
        /// Give conversations handed to people to online agents automatically (least busy
        /// first, within their capacity) instead of waiting for an agent to claim them.
        #[arg(long, env = "KEFU_AUTO_ASSIGN")]
        auto_assign: bool,
        /// Run as one node of several sharing `--database-url`, connected through this NATS
        /// server (`nats://127.0.0.1:4222`).
        #[arg(long, env = "KEFU_NATS_URL")]
        nats: Option<String>,
        /// The connectors to other systems (`docs/connectors.md`); by default the bundled
        /// demo-shop one. SIGHUP or the admin API reloads it.
        #[arg(long, env = "KEFU_CONNECTORS")]
        connectors: Option<PathBuf>,
        /// The access policies and department sandboxes (`docs/policies.md`); by default the
        /// bundled ones. SIGHUP or the admin API reloads them.
        #[arg(long, env = "KEFU_POLICIES")]
        policies: Option<PathBuf>,
        /// Export the audit trail as OpenTelemetry log records to this OTLP/HTTP collector
        /// (`http://127.0.0.1:4318`); off by default. The trail is always kept in DATA_DIR.
        #[arg(long, env = "KEFU_OTLP_ENDPOINT")]
        otlp_endpoint: Option<String>,
    },
    /// Work with the audit trail (`DATA_DIR/audit/audit-<first seq>.log` segments).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Work with `connectors.yaml`.
    Connectors {
        #[command(subcommand)]
        command: ConnectorsCommand,
    },
    /// Check flow files and print every problem; exits 1 if any has errors.
    Validate {
        /// Flow files (`*.flow.json`). Sub-flows are looked up among these and the other
        /// flow files in the same folders.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print diagnostics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Chat with a flow in the terminal.
    Run {
        /// The flow file.
        file: PathBuf,
        /// Language of the conversation (`zh-CN`, `en`, …).
        #[arg(long, default_value = "zh-CN")]
        locale: String,
        /// Canned connector answers; by default `fixtures.json` next to the flow, if present.
        #[arg(long)]
        fixtures: Option<PathBuf>,
        /// Session id (it decides A/B split buckets).
        #[arg(long, default_value = "terminal")]
        session_id: String,
        /// Pretend the conversation starts at this local time (`2026-01-05` or
        /// `2026-01-05T10:00`, in `KEFU_TZ_OFFSET_MINUTES`, default UTC+8); time then runs on.
        #[arg(long)]
        now: Option<String>,
    },
    /// Compile a flow into a Rust module (the flows it calls included) and print it.
    Export {
        /// The flow file. Sub-flows are looked up among the flow files in the same folder.
        file: PathBuf,
        /// Write the module to this file instead (or into this folder, named after the flow).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain: prints OK with the count, or the first line that was edited,
    /// removed or put out of place (exit code 1).
    Verify {
        #[arg(long, env = "KEFU_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConnectorsCommand {
    /// Check a connectors file and print every problem with its line and column; exits 1 if
    /// it has any. Connects to nothing.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve {
        addr: default_addr(),
        data_dir: default_data_dir(),
        database_url: std::env::var("KEFU_DATABASE_URL").ok(),
        auto_assign: std::env::var("KEFU_AUTO_ASSIGN").is_ok_and(|v| v == "1" || v == "true"),
        nats: std::env::var("KEFU_NATS_URL")
            .ok()
            .filter(|url| !url.is_empty()),
        connectors: std::env::var_os("KEFU_CONNECTORS").map(PathBuf::from),
        policies: std::env::var_os("KEFU_POLICIES").map(PathBuf::from),
        otlp_endpoint: std::env::var("KEFU_OTLP_ENDPOINT")
            .ok()
            .filter(|url| !url.is_empty()),
    }) {
        Command::Serve {
            addr,
            data_dir,
            database_url,
            auto_assign,
            nats,
            connectors,
            policies,
            otlp_endpoint,
        } => {
            runtime::telemetry::init();
            let database = runtime::server::Database {
                data_dir,
                url: database_url,
            };
            let hub = runtime::conversation::HubConfig {
                auto_assign,
                ..runtime::conversation::HubConfig::default()
            };
            let cluster = nats.map(runtime::conversation::ClusterConfig::new);
            match runtime::server::serve_blocking(
                addr,
                &database,
                hub,
                cluster,
                connectors,
                policies,
                otlp_endpoint,
            ) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "server stopped");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Validate { files, json } => runtime::cli::validate::main(&files, json),
        Command::Run {
            file,
            locale,
            fixtures,
            session_id,
            now,
        } => runtime::cli::run::main(
            &file,
            &locale,
            fixtures.as_deref(),
            &session_id,
            now.as_deref(),
        ),
        Command::Export { file, output } => runtime::cli::export::main(&file, output.as_deref()),
        Command::Audit {
            command: AuditCommand::Verify { data_dir },
        } => runtime::cli::audit::verify(&data_dir),
        Command::Connectors {
            command: ConnectorsCommand::Check { file },
        } => runtime::connect::check_command(&file),
    }
}

fn default_addr() -> SocketAddr {
    std::env::var("KEFU_ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)))
}

/// `KEFU_DATA_DIR`, else `data` (when `kefu` runs without a command, clap sees no arguments).
fn default_data_dir() -> PathBuf {
    std::env::var_os("KEFU_DATA_DIR").map_or_else(|| PathBuf::from("data"), PathBuf::from)
}
