//! Chat in the terminal with a bundled flow, run by the Rust module `build.rs` compiled from it.
//!
//! The modules are registered in a `runtime::engines::Engines` over the bundled library, which
//! runs a module only while it was generated from exactly the flow the library holds, and
//! interprets the flow otherwise (a flow without a module, or a stale module).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use flows::Library;
use flows::engine::StartInput;
use flows::fixtures::Fixtures;
use runtime::cli::run::{self, local_offset_minutes};
use runtime::engines::{Engines, SharedEngine};

// The modules `build.rs` wrote into OUT_DIR, one per flow.
mod guided_shopping {
    include!(concat!(env!("OUT_DIR"), "/guided_shopping.rs"));
}
mod order_status {
    include!(concat!(env!("OUT_DIR"), "/order_status.rs"));
}
mod returns {
    include!(concat!(env!("OUT_DIR"), "/returns.rs"));
}
mod faq_hours {
    include!(concat!(env!("OUT_DIR"), "/faq_hours.rs"));
}

/// Every compiled module, as an engine to register.
fn compiled() -> Vec<SharedEngine> {
    vec![
        Arc::new(guided_shopping::GuidedShopping::new()),
        Arc::new(order_status::OrderStatus::new()),
        Arc::new(returns::Returns::new()),
        Arc::new(faq_hours::FaqHours::new()),
    ]
}

/// Canned connector answers, the ones `kefu run` uses for the bundled flows.
const FIXTURES: &str = include_str!("../../../flows/library/fixtures.json");

#[derive(Parser)]
#[command(about = "Chat in the terminal with a bundled kefu flow, compiled to Rust at build time")]
struct Args {
    /// The flow to run: guided-shopping, order-status, returns, faq-hours (compiled) or
    /// return-reason (interpreted: it is compiled only into `returns`).
    #[arg(default_value = "guided-shopping")]
    flow: String,
    /// Language of the conversation (`zh-CN`, `en`, …).
    #[arg(long, default_value = "zh-CN")]
    locale: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The registry warns through `tracing` when a module is stale; show that on stderr.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let library = match Library::bundled() {
        Ok(library) => library,
        Err((file, error)) => {
            eprintln!("compiled-flows: {file}: error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut engines = Engines::new(library);
    let modules = compiled();
    for module in &modules {
        engines.register(Arc::clone(module));
    }
    let engine = match engines.engine_for(&args.flow) {
        Ok(engine) => engine,
        Err(error) => {
            let library = engines.library();
            let ids: Vec<&str> = library.flows().map(|f| f.id.as_str()).collect();
            eprintln!(
                "compiled-flows: error: {error} (the flows are: {})",
                ids.join(", ")
            );
            return ExitCode::FAILURE;
        }
    };
    let flow = engine.flow();
    let how = if modules.iter().any(|m| Arc::ptr_eq(m, &engine)) {
        "on the compiled module"
    } else {
        "in the interpreter"
    };
    eprintln!(
        "compiled-flows: running {} (version {}, hash {}) {how}",
        flow.id, flow.version, flow.hash
    );

    let fixtures = match Fixtures::from_json(FIXTURES) {
        Ok(fixtures) => fixtures,
        Err(error) => {
            eprintln!("compiled-flows: fixtures.json: error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let start = StartInput {
        // The session id decides A/B split buckets; `kefu run` uses the same one.
        session_id: "terminal".to_owned(),
        locale: args.locale,
        channel: "terminal".to_owned(),
        tz_offset_minutes: local_offset_minutes(),
        user: Default::default(),
    };
    // The same loop as `kefu run`: visitor lines from stdin until EOF or `/quit`.
    let chat = run::chat(
        &*engine,
        &fixtures,
        start,
        run::wall_clock,
        std::io::stdin().lock(),
        std::io::stdout().lock(),
    );
    match chat {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("compiled-flows: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use flows::Library;

    use super::compiled;

    /// A module generated from another version of its flow (or of a sub-flow) than the library
    /// holds would be passed over for the interpreter at run time; this catches it at test time.
    #[test]
    fn every_compiled_module_is_of_the_bundled_flow() {
        let Ok(library) = Library::bundled() else {
            panic!("the bundled library does not load");
        };
        let modules = compiled();
        assert_eq!(modules.len(), 4);
        for module in modules {
            let flow = module.flow();
            let Some(bundled) = library.flow_ref(&flow.id) else {
                panic!("`{}` is compiled but not in the library", flow.id);
            };
            assert_eq!(
                flow.hash, bundled.hash,
                "the module of `{}` is stale: rebuild it",
                flow.id
            );
            assert_eq!(flow, &bundled);
        }
    }
}
