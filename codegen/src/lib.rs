//! Compiles kefu flows into Rust modules that behave exactly like the interpreter.
//!
//! [`compile`] turns a flow (and the sub-flows it calls) into the source of one module: a
//! struct implementing [`flows::Engine`], a `Node` and a `WaitPoint` enum per flow, one
//! function per node, and native code for every expression and template. The module runs on
//! the same step driver as the interpreter (`flows::engine::machine`), so sessions, effects
//! and statuses are the same types, and the differential tests (`tests/`) hold the two to
//! identical results after every step.
//!
//! Front ends: `kefu export FLOW.json`, the [`Builder`] for build scripts (in the style of
//! prost-build), and `GET /api/flows/{id}/versions/{v}/rust` for the designer.

mod emit;
mod expr;
mod names;

use std::path::{Path, PathBuf};

use flows::model::NodeKind;
use flows::validate::{Diagnostic, Severity};
use flows::{Flow, Library};
use proc_macro2::TokenStream;
use quote::quote;

/// Why a flow was not compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodegenError {
    /// The flow (or a sub-flow it calls) has validation errors: the same diagnostics as
    /// `flows::validate`, and the reason the designer refuses to publish it.
    #[error("flow `{flow}` has {} error(s); the first: {}", diagnostics.len(), diagnostics.first().map(ToString::to_string).unwrap_or_default())]
    Invalid {
        flow: String,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("flow `{flow}` calls `{callee}`, which is not among the flows given")]
    UnknownFlow { flow: String, callee: String },
    #[error("flow `{flow}`, node `{node}`: {message}")]
    Prepare {
        flow: String,
        node: String,
        message: String,
    },
    /// A bug in the generator: what it produced is not Rust.
    #[error("internal: the generated code does not parse: {0}")]
    Syntax(String),
}

/// How to compile.
#[derive(Debug, Clone)]
pub struct Options {
    /// Flows the compiled flow may call; every flow it calls, directly or not, is compiled into
    /// the same module.
    pub library: Library,
    /// How the generated code names the `flows` crate (`::flows` unless it is renamed).
    pub flows_crate: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            library: Library::new(),
            flows_crate: "::flows".into(),
        }
    }
}

impl Options {
    /// Options with the sub-flows in `library`.
    pub fn with_library(library: Library) -> Options {
        Options {
            library,
            ..Options::default()
        }
    }
}

/// The Rust type name of the engine generated for the flow `id`: `guided-shopping` →
/// `GuidedShopping`.
pub fn engine_name(id: &str) -> String {
    names::camel(id)
}

/// The module file name [`Builder`] writes for flow `id`: `guided-shopping` →
/// `guided_shopping.rs`.
pub fn file_name(id: &str) -> String {
    format!("{}.rs", module_name(id))
}

/// A snake_case name for flow `id`; an id without ASCII letters or digits (`客服`) is
/// spelled in hex, so that different ids never share a name.
fn module_name(id: &str) -> String {
    let snake = names::snake(id);
    if snake.is_empty() {
        let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("flow_{hex}")
    } else {
        snake
    }
}

/// Compiles `flow` and the sub-flows it calls into one Rust module, formatted. Deterministic:
/// the same flows and options give the same bytes.
pub fn compile(flow: &Flow, options: &Options) -> Result<String, CodegenError> {
    let mut library = options.library.clone();
    library.insert(flow.clone());

    // The flow first, then every flow it calls, each once, in a fixed order.
    let mut set: Vec<&Flow> = Vec::new();
    let mut todo = vec![flow.id.clone()];
    while let Some(id) = todo.pop() {
        if set.iter().any(|f| f.id == id) {
            continue;
        }
        let Some(current) = library.get(&id) else {
            let caller = set.last().map(|f| f.id.clone()).unwrap_or_default();
            return Err(CodegenError::UnknownFlow {
                flow: caller,
                callee: id,
            });
        };
        let errors: Vec<Diagnostic> = flows::validate(current, &library)
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        if !errors.is_empty() {
            return Err(CodegenError::Invalid {
                flow: id,
                diagnostics: errors,
            });
        }
        let mut callees: Vec<String> = current
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Call(call) => Some(call.flow.clone()),
                _ => None,
            })
            .collect();
        callees.sort();
        callees.reverse();
        todo.extend(callees);
        set.push(current);
    }
    set[1..].sort_by(|a, b| a.id.cmp(&b.id));

    let flow_ref = library
        .flow_ref(&flow.id)
        .ok_or_else(|| CodegenError::UnknownFlow {
            flow: flow.id.clone(),
            callee: flow.id.clone(),
        })?;
    let flows_crate: TokenStream = options
        .flows_crate
        .parse()
        .map_err(|e| CodegenError::Syntax(format!("flows_crate: {e}")))?;

    let mut modules = Vec::new();
    let mut module_names = Vec::new();
    for f in &set {
        let name = quote::format_ident!("flow_{}", module_name(&f.id));
        let body = emit::flow_module(f, &flows_crate)?;
        let docs = format!(" The flow `{}` (version {}).", f.id, f.version);
        modules.push(quote! {
            #[doc = #docs]
            mod #name {
                #body
            }
        });
        module_names.push(name);
    }
    let main_module = &module_names[0];
    let subs = &module_names[1..];
    let subs = if subs.is_empty() {
        quote!(Vec::new())
    } else {
        quote!(vec![#(Box::new(#subs::Code)),*])
    };
    let engine = quote::format_ident!("{}", engine_name(&flow.id));
    let (id, hash) = (&flow_ref.id, &flow_ref.hash);
    let version = proc_macro2::Literal::u32_unsuffixed(flow_ref.version);
    let engine_doc = format!(
        " The flow `{id}` (version {version}) compiled to Rust: an [`Engine`] that gives the same effects, statuses and sessions as the interpreter."
    );
    let tokens = quote! {
        use #flows_crate::compiled::prelude::*;

        /// The id of the compiled flow.
        pub const ID: &str = #id;
        /// The version of the compiled flow.
        pub const VERSION: u32 = #version;
        /// The content hash of the flow and the sub-flows it calls (as in `FlowRef::hash`).
        pub const HASH: &str = #hash;

        #[doc = #engine_doc]
        pub struct #engine {
            machine: Machine,
        }

        impl #engine {
            pub fn new() -> #engine {
                let flow = FlowRef {
                    id: String::from(ID),
                    version: VERSION,
                    hash: String::from(HASH),
                };
                #engine {
                    machine: Machine::new(flow, Box::new(#main_module::Code), #subs),
                }
            }
        }

        impl Default for #engine {
            fn default() -> Self {
                Self::new()
            }
        }

        impl Engine for #engine {
            fn flow(&self) -> &FlowRef {
                self.machine.flow()
            }

            fn step(&self, session: &mut Session, input: &Input, now: Millis) -> Step {
                self.machine.step(session, input, now)
            }
        }

        #(#modules)*
    };
    let file: syn::File = syn::parse2(tokens).map_err(|e| CodegenError::Syntax(e.to_string()))?;
    let code = spaced(&prettyplease::unparse(&file));
    Ok(format!(
        "// Generated by kefu codegen from {id} (version {version}, content hash {hash}) — do not edit by hand.\n\
         // Regenerate with `kefu export` or `codegen::Builder`; docs/codegen.md says what is guaranteed.\n\n{code}"
    ))
}

/// Puts a blank line between items (prettyplease leaves none), so the module reads like
/// hand-written code: after an item's closing line, before the next item at the same depth.
fn spaced(code: &str) -> String {
    const ITEM_STARTS: [&str; 11] = [
        "///", "#[", "fn ", "pub ", "impl ", "mod ", "const ", "static ", "enum ", "struct ",
        "use ",
    ];
    let indent = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = code.lines().collect();
    let mut out = String::with_capacity(code.len() + code.len() / 16);
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        let Some(next) = lines.get(i + 1) else { break };
        let trimmed = line.trim();
        let ends_item = trimmed == "}" || trimmed.ends_with(';');
        let starts_item = ITEM_STARTS.iter().any(|s| next.trim_start().starts_with(s));
        if ends_item && starts_item && indent(line) == indent(next) {
            out.push('\n');
        }
    }
    out
}

/// Why [`Builder::compile_to`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {error}", path.display())]
    Load {
        path: PathBuf,
        error: flows::LoadError,
    },
    #[error("{}: {error}", path.display())]
    Compile { path: PathBuf, error: CodegenError },
}

/// Compiles flow files into Rust modules from a build script, in the style of prost-build:
///
/// ```no_run
/// // build.rs
/// let out_dir = std::env::var("OUT_DIR").unwrap();
/// codegen::Builder::new()
///     .flow("flows/guided-shopping.flow.json")
///     .compile_to(&out_dir)
///     .unwrap();
/// // src/main.rs:
/// // mod guided_shopping { include!(concat!(env!("OUT_DIR"), "/guided_shopping.rs")); }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    flows: Vec<PathBuf>,
    sub_flows: Vec<PathBuf>,
    flows_crate: Option<String>,
    rerun_if_changed: bool,
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            rerun_if_changed: true,
            ..Builder::default()
        }
    }

    /// A flow file to compile into its own module (`<id>.rs`).
    #[must_use]
    pub fn flow(mut self, path: impl AsRef<Path>) -> Builder {
        self.flows.push(path.as_ref().to_owned());
        self
    }

    /// A flow file that compiled flows may call, compiled only as part of its callers.
    #[must_use]
    pub fn sub_flow(mut self, path: impl AsRef<Path>) -> Builder {
        self.sub_flows.push(path.as_ref().to_owned());
        self
    }

    /// How generated code names the `flows` crate, if the dependency is renamed.
    #[must_use]
    pub fn flows_crate(mut self, path: &str) -> Builder {
        self.flows_crate = Some(path.to_owned());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for every flow file (on by default).
    #[must_use]
    pub fn rerun_if_changed(mut self, on: bool) -> Builder {
        self.rerun_if_changed = on;
        self
    }

    /// Compiles every flow given with [`Builder::flow`] into `out_dir/<id>.rs` and returns
    /// the files written. A file whose content did not change is left untouched.
    pub fn compile_to(self, out_dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, BuildError> {
        let out_dir = out_dir.as_ref();
        let mut library = Library::new();
        let mut mains = Vec::new();
        for (path, main) in self
            .flows
            .iter()
            .map(|p| (p, true))
            .chain(self.sub_flows.iter().map(|p| (p, false)))
        {
            if self.rerun_if_changed {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            let text = std::fs::read_to_string(path).map_err(|error| BuildError::Io {
                path: path.clone(),
                error,
            })?;
            let flow = flows::from_json(&text).map_err(|error| BuildError::Load {
                path: path.clone(),
                error,
            })?;
            if main {
                mains.push((path.clone(), flow.clone()));
            }
            library.insert(flow);
        }
        let mut options = Options::with_library(library);
        if let Some(krate) = self.flows_crate {
            options.flows_crate = krate;
        }
        let mut written = Vec::new();
        for (path, flow) in mains {
            let code = compile(&flow, &options).map_err(|error| BuildError::Compile {
                path: path.clone(),
                error,
            })?;
            let target = out_dir.join(file_name(&flow.id));
            let io = |error| BuildError::Io {
                path: target.clone(),
                error,
            };
            if std::fs::read_to_string(&target).ok().as_deref() != Some(code.as_str()) {
                std::fs::write(&target, code).map_err(io)?;
            }
            written.push(target);
        }
        Ok(written)
    }
}
