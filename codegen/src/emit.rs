//! One flow into one Rust module: a `Node` enum, a `WaitPoint` enum, a function per node, a
//! function per expression and per template with holes, and the `FlowCode` implementation the
//! shared step driver calls.

use std::collections::BTreeMap;

use flows::Flow;
use flows::expr::{self, Template};
use flows::model::{
    Call, Choice, Events, InputNode, KeywordEvent, Node, NodeKind, Part, Priority, Settings, Text,
    port,
};
use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use crate::CodegenError;
use crate::expr::{ExprGen, number, type_tokens, value_tokens};
use crate::names::Names;

/// Generates the module body for `flow`.
pub fn flow_module(flow: &Flow, flows_crate: &TokenStream) -> Result<TokenStream, CodegenError> {
    Emitter::new(flow)?.module(flows_crate)
}

struct Emitter<'f> {
    flow: &'f Flow,
    names: Names,
    /// Per node: its variant in the `Node` enum.
    variants: Vec<Ident>,
    /// Per node: port → target node.
    edges: Vec<BTreeMap<&'f str, usize>>,
    /// Generated helper functions and statics (expressions, templates, patterns).
    helpers: Vec<TokenStream>,
    /// Set when generated code calls a helper that reads `run`.
    reads_run: bool,
    /// Texts already generated, by node and purpose: the code that renders them.
    texts: BTreeMap<(String, String), TokenStream>,
}

fn error(flow: &Flow, node: &Node, message: impl std::fmt::Display) -> CodegenError {
    CodegenError::Prepare {
        flow: flow.id.clone(),
        node: node.id.clone(),
        message: message.to_string(),
    }
}

impl<'f> Emitter<'f> {
    fn new(flow: &'f Flow) -> Result<Emitter<'f>, CodegenError> {
        let mut names = Names::default();
        // Reserve the fixed names of the module.
        for fixed in [
            "Code",
            "Node",
            "WaitPoint",
            "NODES",
            "IDS",
            "VARS",
            "EVENTS",
            "SETTINGS",
            "Some",
            "None",
            "Ok",
            "Err",
            "Option",
            "Result",
            "String",
            "Value",
            "Vec",
            "Box",
        ] {
            names.reserve(fixed);
        }
        let variants = flow.nodes.iter().map(|n| names.camel(&n.id)).collect();
        let index: BTreeMap<&str, usize> = flow
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        let mut edges = vec![BTreeMap::new(); flow.nodes.len()];
        for edge in &flow.edges {
            if let (Some(&from), Some(&to)) =
                (index.get(edge.from.as_str()), index.get(edge.to.as_str()))
            {
                edges[from].insert(edge.port.as_str(), to);
            }
        }
        Ok(Emitter {
            flow,
            names,
            variants,
            edges,
            helpers: Vec::new(),
            reads_run: false,
            texts: BTreeMap::new(),
        })
    }

    fn node_ref(&self, node: usize) -> TokenStream {
        let v = &self.variants[node];
        quote!(Node::#v as usize)
    }

    fn module(mut self, flows_crate: &TokenStream) -> Result<TokenStream, CodegenError> {
        let flow = self.flow;
        let count = Literal::usize_unsuffixed(flow.nodes.len());
        let variants = self.variants.clone();
        let variant_docs = flow.nodes.iter().map(|n| doc(&node_summary(n)));
        let ids: Vec<&str> = flow.nodes.iter().map(|n| n.id.as_str()).collect();

        let mut enters = Vec::new();
        let mut arms = Vec::new();
        for (i, node) in flow.nodes.iter().enumerate() {
            let name = self.names.snake(&["enter", &node.id]);
            let body = self.enter(i, node)?;
            let docs = doc(&node_summary(node));
            enters.push(quote! {
                #docs
                fn #name(run: &mut Run<'_>) -> Result<Next, String> {
                    #body
                }
            });
            let v = &self.variants[i];
            arms.push(quote!(Some(Node::#v) => #name(run),));
        }

        let start = flow
            .nodes
            .iter()
            .position(|n| matches!(n.kind, NodeKind::Start(_)))
            .ok_or_else(|| CodegenError::Prepare {
                flow: flow.id.clone(),
                node: String::new(),
                message: "the flow has no start node".into(),
            })?;
        let start = self.node_ref(start);

        let mut edge_arms = Vec::new();
        for (from, ports) in self.edges.iter().enumerate() {
            let v = &self.variants[from];
            for (port, &to) in ports {
                let t = &self.variants[to];
                edge_arms.push(quote!((Node::#v, #port) => Node::#t,));
            }
        }
        let edge_body = if edge_arms.is_empty() {
            quote! {
                let _ = (node, port);
                None
            }
        } else {
            quote! {
                let to = match (NODES.get(node)?, port) {
                    #(#edge_arms)*
                    _ => return None,
                };
                Some(to as usize)
            }
        };

        let waits = self.wait_points()?;
        let vars = self.var_table();
        let events = events_tokens(&flow.events);
        let settings = settings_tokens(&flow.settings);
        let id = &flow.id;
        let default_locale = &flow.default_locale;
        let helpers = &self.helpers;
        let index_arms = flow.nodes.iter().zip(&variants).map(|(n, v)| {
            let id = &n.id;
            quote!(#id => Node::#v,)
        });
        let WaitPoints {
            enum_def,
            wait_spec,
            reprompt,
            check_answer,
        } = waits;

        Ok(quote! {
            use #flows_crate::compiled::prelude::*;

            /// This flow's behaviour, for the shared step driver.
            pub struct Code;

            /// The nodes, numbered as in the flow file.
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            #[allow(clippy::enum_variant_names, reason = "named after the flow's node ids")]
            enum Node {
                #(#variant_docs #variants,)*
            }

            const NODES: [Node; #count] = [#(Node::#variants),*];

            const IDS: [&str; #count] = [#(#ids),*];

            #enum_def

            static VARS: LazyLock<VarTable> = LazyLock::new(|| #vars);

            static EVENTS: LazyLock<Events> = LazyLock::new(|| #events);

            static SETTINGS: LazyLock<Settings> = LazyLock::new(|| #settings);

            impl FlowCode for Code {
                fn id(&self) -> &str {
                    #id
                }

                fn default_locale(&self) -> &str {
                    #default_locale
                }

                fn start(&self) -> usize {
                    #start
                }

                fn node_id(&self, node: usize) -> &str {
                    IDS.get(node).copied().unwrap_or_default()
                }

                fn node_index(&self, id: &str) -> Option<usize> {
                    let node = match id {
                        #(#index_arms)*
                        _ => return None,
                    };
                    Some(node as usize)
                }

                fn edge(&self, node: usize, port: &str) -> Option<usize> {
                    #edge_body
                }

                fn vars(&self) -> &VarTable {
                    &VARS
                }

                fn events(&self) -> &Events {
                    &EVENTS
                }

                fn settings(&self) -> &Settings {
                    &SETTINGS
                }

                fn enter(&self, run: &mut Run<'_>, node: usize) -> Result<Next, String> {
                    match NODES.get(node) {
                        #(#arms)*
                        None => Err(String::from("internal: no such node")),
                    }
                }

                #wait_spec

                #reprompt

                #check_answer
            }

            #(#enters)*

            #(#helpers)*
        })
    }

    // ---- Nodes -----------------------------------------------------------------------------

    /// Leaves `node` through `port`: straight to the known target, or the "nothing is
    /// connected" failure.
    fn leave(&self, node: usize, port: &str) -> TokenStream {
        let from = self.node_ref(node);
        match self.edges[node].get(port) {
            Some(&to) => {
                let to = self.node_ref(to);
                quote!(run.take(#from, #port, #to))
            }
            None => quote!(run.no_edge(#from, #port)),
        }
    }

    fn enter(&mut self, i: usize, node: &'f Node) -> Result<TokenStream, CodegenError> {
        let me = self.node_ref(i);
        let flow = self.flow;
        Ok(match &node.kind {
            NodeKind::Start(_) => {
                let next = self.leave(i, port::NEXT);
                quote!(Ok(#next))
            }
            NodeKind::Message(message) => {
                let mut says = Vec::new();
                for (p, part) in message.parts.iter().enumerate() {
                    let what = format!("part{}", p + 1);
                    let output = match part {
                        Part::Text { text } => {
                            let text = self.text(node, &what, text)?;
                            quote!(Output::Text { text: #text })
                        }
                        Part::Image { url, alt } => {
                            let alt = match alt {
                                Some(alt) => self.text(node, &format!("{what}_alt"), alt)?,
                                None => quote!(String::new()),
                            };
                            quote!(Output::Image { url: String::from(#url), alt: #alt })
                        }
                        Part::Products { from, limit } => {
                            let list = self.expression(node, &format!("{what}_products"), from)?;
                            let limit = option_u32(*limit);
                            quote!(support::products(&#list?, #limit)?)
                        }
                        Part::Carousel { cards } => {
                            let mut built = Vec::new();
                            for (c, card) in cards.iter().enumerate() {
                                let title = self.text(
                                    node,
                                    &format!("{what}_card{}_title", c + 1),
                                    &card.title,
                                )?;
                                let subtitle = match &card.subtitle {
                                    Some(s) => {
                                        let s = self.text(
                                            node,
                                            &format!("{what}_card{}_subtitle", c + 1),
                                            s,
                                        )?;
                                        quote!(Some(#s))
                                    }
                                    None => quote!(None),
                                };
                                let image = option_string(card.image.as_deref());
                                let url = option_string(card.url.as_deref());
                                built.push(quote!(Card {
                                    id: None,
                                    title: #title,
                                    subtitle: #subtitle,
                                    price: None,
                                    image: #image,
                                    url: #url,
                                }));
                            }
                            quote!(Output::Carousel { cards: Vec::from([#(#built),*]) })
                        }
                    };
                    says.push(quote!(run.say(#me, #output);));
                }
                let next = self.leave(i, port::NEXT);
                quote! {
                    #(#says)*
                    Ok(#next)
                }
            }
            NodeKind::Choice(choice) => self.choice(i, node, choice)?,
            NodeKind::Input(input) => {
                let prompt = self.text(node, "prompt", &input.prompt)?;
                let ty = input_type(input);
                quote! {
                    let prompt = #prompt;
                    Ok(run.ask(#me, prompt, #ty))
                }
            }
            NodeKind::Condition(condition) => {
                let mut branches = Vec::new();
                for branch in &condition.branches {
                    let f = self.expression(node, &branch.id, &branch.when)?;
                    let id = &branch.id;
                    let next = self.leave(i, id);
                    branches.push(quote! {
                        if support::branch_taken(#id, #f)? {
                            return Ok(#next);
                        }
                    });
                }
                let next = self.leave(i, port::DEFAULT);
                quote! {
                    #(#branches)*
                    Ok(#next)
                }
            }
            NodeKind::Set(set) => {
                let mut sets = Vec::new();
                for a in &set.assignments {
                    let f = self.expression(node, &a.var, &a.value)?;
                    let var = &a.var;
                    let context = format!("`{var}`: {{m}}");
                    sets.push(quote! {
                        let value = #f.map_err(|m| format!(#context))?;
                        run.set_var(#var, value)?;
                    });
                }
                let next = self.leave(i, port::NEXT);
                quote! {
                    #(#sets)*
                    Ok(#next)
                }
            }
            NodeKind::Lookup(lookup) => {
                let mut params = Vec::new();
                for (name, param) in &lookup.params {
                    let f = self.expression(node, name, param)?;
                    let context = format!("parameter `{name}`: {{m}}");
                    params.push(quote! {
                        params.insert(String::from(#name), #f.map_err(|m| format!(#context))?);
                    });
                }
                let (connector, entity, operation) =
                    (&lookup.connector, &lookup.entity, &lookup.operation);
                let declare = if params.is_empty() {
                    quote!(let params = BTreeMap::new();)
                } else {
                    quote!(let mut params = BTreeMap::new();)
                };
                quote! {
                    #declare
                    #(#params)*
                    Ok(run.lookup(#me, #connector, #entity, #operation, params))
                }
            }
            NodeKind::Handoff(handoff) => {
                let reason = self.text(node, "reason", &handoff.reason)?;
                let summary = self.optional_text(node, "summary", handoff.summary.as_ref())?;
                let message = self.optional_text(node, "message", handoff.message.as_ref())?;
                let queue = option_str(handoff.queue.as_deref());
                let team = option_str(handoff.team.as_deref());
                let priority = priority(handoff.priority);
                quote! {
                    let texts = HandoffTexts {
                        reason: #reason,
                        summary: #summary,
                        message: #message,
                    };
                    let to = HandoffTo {
                        queue: #queue,
                        team: #team,
                        priority: #priority,
                    };
                    Ok(run.handoff(#me, &to, texts))
                }
            }
            NodeKind::Wait(wait) => {
                let seconds = Literal::u64_unsuffixed(wait.seconds);
                quote!(Ok(run.wait(#me, #seconds)))
            }
            NodeKind::Call(call) => self.call(i, node, call)?,
            NodeKind::AbSplit(split) => {
                let variants = split.variants.iter().map(|v| {
                    let (id, weight) = (&v.id, Literal::u32_unsuffixed(v.weight));
                    quote!((#id, #weight))
                });
                quote!(Ok(run.ab_split(#me, &[#(#variants),*])))
            }
            NodeKind::Jump(jump) => match flow.nodes.iter().position(|n| n.id == jump.target) {
                Some(target) => {
                    let target = self.node_ref(target);
                    quote!(Ok(run.jump(#me, #target)))
                }
                None => {
                    return Err(error(
                        flow,
                        node,
                        format!("jump to a missing node `{}`", jump.target),
                    ));
                }
            },
            NodeKind::End(end) => {
                let outcome = option_str(end.outcome.as_deref());
                quote!(Ok(run.end_node(#outcome)))
            }
        })
    }

    fn choice(
        &mut self,
        i: usize,
        node: &'f Node,
        choice: &'f Choice,
    ) -> Result<TokenStream, CodegenError> {
        let me = self.node_ref(i);
        let offered = match &choice.dynamic {
            None => {
                let mut options = Vec::new();
                for option in &choice.options {
                    let label = self.text(node, &format!("{}_label", option.id), &option.label)?;
                    let id = &option.id;
                    options.push(quote!(Offered {
                        id: String::from(#id),
                        label: #label,
                        value: None,
                    }));
                }
                quote!(let offered = Vec::from([#(#options),*]);)
            }
            Some(dynamic) => {
                let list = self.expression(node, "options", &dynamic.list)?;
                let label = self.item_label(node, &dynamic.label)?;
                let limit = option_u32(dynamic.limit);
                quote! {
                    let list = #list?;
                    let items = support::option_items(&list, #limit)?;
                    let mut offered = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        offered.push(Offered {
                            id: (i + 1).to_string(),
                            label: #label,
                            value: Some(item.clone()),
                        });
                    }
                }
            }
        };
        let prompt = self.text(node, "prompt", &choice.prompt)?;
        Ok(quote! {
            #offered
            support::some_options(&offered)?;
            let prompt = #prompt;
            Ok(run.offer(#me, prompt, offered))
        })
    }

    fn call(
        &mut self,
        i: usize,
        node: &'f Node,
        call: &'f Call,
    ) -> Result<TokenStream, CodegenError> {
        let me = self.node_ref(i);
        let callee = &call.flow;
        let mut inputs = Vec::new();
        for (name, input) in &call.inputs {
            let f = self.expression(node, &format!("input_{name}"), input)?;
            let context = format!("input `{name}`: {{m}}");
            inputs.push(quote! {
                frame.input(#name, #f.map_err(|m| format!(#context))?)?;
            });
        }
        let declare = if inputs.is_empty() {
            quote!(let frame = run.begin_call(#callee)?;)
        } else {
            quote!(let mut frame = run.begin_call(#callee)?;)
        };
        Ok(quote! {
            #declare
            #(#inputs)*
            Ok(run.enter_call(#me, frame))
        })
    }

    // ---- Wait points -----------------------------------------------------------------------

    fn wait_points(&mut self) -> Result<WaitPoints, CodegenError> {
        let flow = self.flow;
        let waits: Vec<(usize, &Node)> = flow
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.kind.is_wait_point() || matches!(n.kind, NodeKind::Call(_)))
            .collect();
        if waits.is_empty() {
            return Ok(WaitPoints {
                enum_def: TokenStream::new(),
                wait_spec: quote! {
                    fn wait_spec(&self, _node: usize) -> Option<WaitSpec<'_>> {
                        None
                    }
                },
                reprompt: quote! {
                    fn reprompt(&self, _run: &Run<'_>, _node: usize) -> Result<(Option<String>, String), String> {
                        Err(String::from("internal: node was not prepared"))
                    }
                },
                check_answer: quote! {
                    fn check_answer(&self, _node: usize, _text: &str) -> Option<Value> {
                        None
                    }
                },
            });
        }
        let variants: Vec<Ident> = waits
            .iter()
            .map(|(i, _)| self.variants[*i].clone())
            .collect();
        let docs = waits.iter().map(|(_, n)| doc(&node_summary(n)));
        let mut specs = Vec::new();
        let mut reprompts = Vec::new();
        let mut asking = Vec::new();
        let mut inputs = Vec::new();
        self.reads_run = false;
        let mut checks = Vec::new();
        for ((_, node), v) in waits.iter().zip(&variants) {
            let spec = match &node.kind {
                NodeKind::Choice(c) => {
                    let save_as = option_str(c.save_as.as_deref());
                    let dynamic = c.dynamic.is_some();
                    let retry = self.optional_text(node, "retry", c.retry_prompt.as_ref())?;
                    let prompt = self.text(node, "prompt", &c.prompt)?;
                    reprompts.push(reprompt_arm(v, &retry, &prompt));
                    asking.push(v.clone());
                    quote!(WaitSpec::Choice { save_as: #save_as, dynamic: #dynamic })
                }
                NodeKind::Input(input) => {
                    let save_as = &input.save_as;
                    let retries = Literal::u32_unsuffixed(input.retries);
                    let ty = input_type(input);
                    let retry = self.optional_text(node, "retry", input.retry_prompt.as_ref())?;
                    let prompt = self.text(node, "prompt", &input.prompt)?;
                    reprompts.push(reprompt_arm(v, &retry, &prompt));
                    asking.push(v.clone());
                    inputs.push(v.clone());
                    checks.push(self.check(node, v, input)?);
                    quote!(WaitSpec::Input { save_as: #save_as, retries: #retries, input_type: #ty })
                }
                NodeKind::Lookup(l) => {
                    let save_as = option_str(l.save_as.as_deref());
                    quote!(WaitSpec::Lookup { save_as: #save_as })
                }
                NodeKind::Wait(w) => {
                    let save_as = option_str(w.save_as.as_deref());
                    quote!(WaitSpec::Wait { save_as: #save_as })
                }
                NodeKind::Call(c) => {
                    let outputs = c.outputs.iter().map(|(k, v)| quote!((#k, #v)));
                    quote!(WaitSpec::Call { outputs: Vec::from([#(#outputs),*]) })
                }
                NodeKind::Handoff(_) => quote!(WaitSpec::Handoff),
                _ => continue,
            };
            specs.push(quote!(WaitPoint::#v => #spec,));
        }
        let at_arms = variants.iter().map(|v| quote!(Node::#v => WaitPoint::#v,));
        let others: Vec<&Ident> = self
            .variants
            .iter()
            .filter(|v| !variants.contains(v))
            .collect();
        let reprompt = if reprompts.is_empty() {
            quote! {
                fn reprompt(&self, _run: &Run<'_>, _node: usize) -> Result<(Option<String>, String), String> {
                    Err(String::from("internal: node was not prepared"))
                }
            }
        } else {
            let run = if self.reads_run {
                quote!(run)
            } else {
                quote!(_run)
            };
            let silent: Vec<&Ident> = variants.iter().filter(|v| !asking.contains(v)).collect();
            let none = if silent.is_empty() {
                quote!(None)
            } else {
                quote!(None #(| Some(WaitPoint::#silent))*)
            };
            quote! {
                fn reprompt(&self, #run: &Run<'_>, node: usize) -> Result<(Option<String>, String), String> {
                    match WaitPoint::at(node) {
                        #(#reprompts)*
                        #none => Err(String::from("internal: node was not prepared")),
                    }
                }
            }
        };
        let check_answer = if checks.is_empty() {
            quote! {
                fn check_answer(&self, _node: usize, _text: &str) -> Option<Value> {
                    None
                }
            }
        } else {
            // The other wait points, named: no wildcard that a new variant would fall into.
            let others: Vec<&Ident> = variants.iter().filter(|v| !inputs.contains(v)).collect();
            let others = if others.is_empty() {
                TokenStream::new()
            } else {
                quote!(#(WaitPoint::#others)|* => None,)
            };
            quote! {
                fn check_answer(&self, node: usize, text: &str) -> Option<Value> {
                    match WaitPoint::at(node)? {
                        #(#checks)*
                        #others
                    }
                }
            }
        };
        Ok(WaitPoints {
            enum_def: quote! {
                /// Where a conversation in this flow can wait (for the visitor, a connector, an
                /// agent, a timer or a sub-flow): the states a session can be in between steps.
                #[derive(Clone, Copy, Debug, PartialEq, Eq)]
                #[allow(clippy::enum_variant_names, reason = "named after the flow's node ids")]
                enum WaitPoint {
                    #(#docs #variants,)*
                }

                impl WaitPoint {
                    fn at(node: usize) -> Option<WaitPoint> {
                        Some(match NODES.get(node)? {
                            #(#at_arms)*
                            #(Node::#others)|* => return None,
                        })
                    }
                }
            },
            wait_spec: quote! {
                fn wait_spec(&self, node: usize) -> Option<WaitSpec<'_>> {
                    Some(match WaitPoint::at(node)? {
                        #(#specs)*
                    })
                }
            },
            reprompt,
            check_answer,
        })
    }

    /// The arm of `check_answer` for an input node.
    fn check(
        &mut self,
        node: &Node,
        v: &Ident,
        input: &InputNode,
    ) -> Result<TokenStream, CodegenError> {
        let ty = input_type(input);
        let val = &input.validation;
        let (min, max) = (option_f64(val.min), option_f64(val.max));
        let (min_length, max_length) = (option_u32(val.min_length), option_u32(val.max_length));
        let pattern = match &val.pattern {
            Some(source) => {
                flows::engine::anchored(source).map_err(|m| error(self.flow, node, m))?;
                let name = self.names.snake(&[&node.id, "pattern"]);
                let name = Ident::new(&name.to_string().to_uppercase(), name.span());
                let text = format!(
                    " The answer pattern of `{}`, anchored: `{source}`.",
                    node.id
                );
                self.helpers.push(quote! {
                    #[doc = #text]
                    static #name: LazyLock<Option<Regex>> = LazyLock::new(|| rt::pattern(#source));
                });
                quote!(#name.as_ref())
            }
            None => quote!(None),
        };
        Ok(quote! {
            WaitPoint::#v => support::validate_answer(
                #ty,
                &Validation {
                    pattern: None,
                    min: #min,
                    max: #max,
                    min_length: #min_length,
                    max_length: #max_length,
                },
                #pattern,
                text,
            ),
        })
    }

    // ---- Expressions and texts -------------------------------------------------------------

    /// A call of a new function computing `source` (type `Result<Value, String>`).
    fn expression(
        &mut self,
        node: &Node,
        what: &str,
        source: &str,
    ) -> Result<TokenStream, CodegenError> {
        let parsed =
            expr::parse(source).map_err(|e| error(self.flow, node, format!("`{what}`: {e}")))?;
        let mut generator = ExprGen::new(false);
        let body = generator.result(parsed.root());
        let name = self.names.snake(&[&node.id, what]);
        let run = if generator.uses_run {
            quote!(run)
        } else {
            quote!(_run)
        };
        let docs = doc(&format!("`{}`", doc_escape(source)));
        self.helpers.push(quote! {
            #docs
            fn #name(#run: &Run<'_>) -> Result<Value, String> {
                #body
            }
        });
        self.reads_run = true;
        Ok(quote!(#name(run)))
    }

    fn optional_text(
        &mut self,
        node: &Node,
        what: &str,
        text: Option<&Text>,
    ) -> Result<TokenStream, CodegenError> {
        Ok(match text {
            Some(text) => {
                let text = self.text(node, what, text)?;
                quote!(Some(#text))
            }
            None => quote!(None),
        })
    }

    /// Code of type `String` rendering `text` in the visitor's locale (with `?` inside).
    fn text(&mut self, node: &Node, what: &str, text: &Text) -> Result<TokenStream, CodegenError> {
        let key = (node.id.clone(), what.to_owned());
        if let Some(code) = self.texts.get(&key) {
            if code.to_string().contains("run") {
                self.reads_run = true;
            }
            return Ok(code.clone());
        }
        let code = self.text_with(node, what, text, false)?;
        self.texts.insert(key, code.clone());
        Ok(code)
    }

    /// A dynamic choice label, which can read `item`.
    fn item_label(&mut self, node: &Node, text: &Text) -> Result<TokenStream, CodegenError> {
        self.text_with(node, "option_label", text, true)
    }

    fn text_with(
        &mut self,
        node: &Node,
        what: &str,
        text: &Text,
        item_ctx: bool,
    ) -> Result<TokenStream, CodegenError> {
        let parse = |s: &str| {
            expr::parse_template(s).map_err(|e| error(self.flow, node, format!("`{what}`: {e}")))
        };
        let mut generator = ExprGen::new(item_ctx);
        let (body, source) = match text {
            Text::Plain(s) => {
                let template: Template = parse(s)?;
                let body = generator.template(&template);
                if !generator.uses_run && !generator.uses_item {
                    // Fixed text: no function needed.
                    return Ok(body);
                }
                (body, s.clone())
            }
            Text::Localized(map) => {
                if map.is_empty() {
                    return Ok(quote!(String::new()));
                }
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                let mut arms = Vec::new();
                for (i, s) in map.values().enumerate() {
                    let body = generator.template(&parse(s)?);
                    let i = Literal::usize_unsuffixed(i);
                    arms.push(quote!(Some(#i) => #body,));
                }
                generator.uses_run = true;
                let default_locale = &self.flow.default_locale;
                let body = quote! {
                    match rt::pick(&[#(#keys),*], run, #default_locale) {
                        #(#arms)*
                        _ => String::new(),
                    }
                };
                let source = map
                    .get(&self.flow.default_locale)
                    .or_else(|| map.values().next())
                    .cloned()
                    .unwrap_or_default();
                (body, source)
            }
        };
        let name = self.names.snake(&[&node.id, what]);
        let run = if generator.uses_run {
            quote!(run)
        } else {
            quote!(_run)
        };
        let docs = doc(&format!("\"{}\"", doc_escape(&source)));
        self.reads_run = true;
        if item_ctx {
            let item = if generator.uses_item {
                quote!(item)
            } else {
                quote!(_item)
            };
            self.helpers.push(quote! {
                #docs
                fn #name(#run: &Run<'_>, #item: &Value) -> Result<String, String> {
                    Ok(#body)
                }
            });
            Ok(quote!(#name(run, item)?))
        } else {
            self.helpers.push(quote! {
                #docs
                fn #name(#run: &Run<'_>) -> Result<String, String> {
                    Ok(#body)
                }
            });
            Ok(quote!(#name(run)?))
        }
    }

    fn var_table(&self) -> TokenStream {
        let vars = self.flow.variables.iter().map(|v| {
            let name = &v.name;
            let ty = type_tokens(&v.ty);
            let scope = match v.scope {
                flows::model::Scope::Conversation => quote!(Scope::Conversation),
                flows::model::Scope::User => quote!(Scope::User),
            };
            let default = match &v.default {
                Some(value) => {
                    let value = value_tokens(value);
                    quote!(Some(#value))
                }
                None => quote!(None),
            };
            quote!(Declared {
                name: String::from(#name),
                ty: #ty,
                scope: #scope,
                default: #default,
            })
        });
        quote!(VarTable::new(Vec::from([#(#vars),*])))
    }
}

/// The arm of `reprompt` for a choice or input node: the retry text first, then the prompt.
fn reprompt_arm(v: &Ident, retry: &TokenStream, prompt: &TokenStream) -> TokenStream {
    if retry.to_string() == "None" {
        quote!(Some(WaitPoint::#v) => Ok((None, #prompt)),)
    } else {
        quote! {
            Some(WaitPoint::#v) => {
                let retry = #retry;
                Ok((retry, #prompt))
            }
        }
    }
}

struct WaitPoints {
    enum_def: TokenStream,
    wait_spec: TokenStream,
    reprompt: TokenStream,
    check_answer: TokenStream,
}

/// `` `ask_budget` "Budget" (input) `` for doc comments.
fn node_summary(node: &Node) -> String {
    let kind = node.kind.name();
    match &node.label {
        Some(label) if !label.is_empty() => {
            format!("`{}` \"{}\" ({kind})", node.id, doc_escape(label))
        }
        _ => format!("`{}` ({kind})", node.id),
    }
}

/// Text shown in a doc comment on one line: control characters (tabs, line breaks) escaped.
fn doc_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn doc(text: &str) -> TokenStream {
    let text = format!(" {text}");
    quote!(#[doc = #text])
}

fn option_str(s: Option<&str>) -> TokenStream {
    match s {
        Some(s) => quote!(Some(#s)),
        None => quote!(None),
    }
}

fn option_string(s: Option<&str>) -> TokenStream {
    match s {
        Some(s) => quote!(Some(String::from(#s))),
        None => quote!(None),
    }
}

fn option_u32(n: Option<u32>) -> TokenStream {
    match n {
        Some(n) => {
            let n = Literal::u32_unsuffixed(n);
            quote!(Some(#n))
        }
        None => quote!(None),
    }
}

fn option_f64(n: Option<f64>) -> TokenStream {
    match n {
        Some(n) => {
            let n = number(n);
            quote!(Some(#n))
        }
        None => quote!(None),
    }
}

fn input_type(input: &InputNode) -> TokenStream {
    use flows::model::InputType;
    match input.input_type {
        InputType::Text => quote!(InputType::Text),
        InputType::Number => quote!(InputType::Number),
        InputType::Email => quote!(InputType::Email),
        InputType::Phone => quote!(InputType::Phone),
        InputType::Date => quote!(InputType::Date),
    }
}

fn priority(p: Priority) -> TokenStream {
    match p {
        Priority::Low => quote!(Priority::Low),
        Priority::Normal => quote!(Priority::Normal),
        Priority::High => quote!(Priority::High),
        Priority::Urgent => quote!(Priority::Urgent),
    }
}

fn keyword_event(e: &KeywordEvent) -> TokenStream {
    let enabled = e.enabled;
    let keywords = &e.keywords;
    let target = option_string(e.target.as_deref());
    quote!(KeywordEvent {
        enabled: #enabled,
        keywords: Vec::from([#(String::from(#keywords)),*]),
        target: #target,
    })
}

fn events_tokens(events: &Events) -> TokenStream {
    let agent = keyword_event(&events.agent);
    let restart = keyword_event(&events.restart);
    let cancel = keyword_event(&events.cancel);
    let inactivity = match &events.inactivity {
        Some(i) => {
            let seconds = Literal::u64_unsuffixed(i.seconds);
            let target = option_string(i.target.as_deref());
            quote!(Some(Inactivity { seconds: #seconds, target: #target }))
        }
        None => quote!(None),
    };
    let error = option_string(events.error.target.as_deref());
    quote!(Events {
        agent: #agent,
        restart: #restart,
        cancel: #cancel,
        inactivity: #inactivity,
        error: ErrorEvent { target: #error },
    })
}

fn settings_tokens(settings: &Settings) -> TokenStream {
    let budget = Literal::u32_unsuffixed(settings.step_budget);
    let queue = &settings.default_queue;
    let offset = match settings.utc_offset_minutes {
        Some(m) => {
            let lit = Literal::i32_unsuffixed(m.abs());
            if m < 0 {
                quote!(Some(-#lit))
            } else {
                quote!(Some(#lit))
            }
        }
        None => quote!(None),
    };
    quote!(Settings {
        step_budget: #budget,
        default_queue: String::from(#queue),
        utc_offset_minutes: #offset,
    })
}
