//! A flow prepared for interpretation: ids resolved to indices, edges to a lookup table, and
//! every expression and template parsed once.

use std::collections::BTreeMap;

use regex::Regex;

use super::machine::{Declared, VarTable};
use crate::expr::{self, Expr, Template};
use crate::model::{self, Flow, NodeKind, Part, Text};

pub(crate) struct Program {
    pub flow: Flow,
    pub index: BTreeMap<String, usize>,
    /// Per node: port → target node index.
    pub edges: Vec<BTreeMap<String, usize>>,
    pub nodes: Vec<Compiled>,
    pub vars: VarTable,
    pub start: usize,
}

/// A text with each locale's variant parsed as a template.
pub(crate) enum CText {
    Plain(Template),
    Localized(BTreeMap<String, Template>),
}

impl CText {
    fn new(text: &Text) -> Result<CText, String> {
        let parse = |s: &str| expr::parse_template(s).map_err(|e| e.to_string());
        Ok(match text {
            Text::Plain(s) => CText::Plain(parse(s)?),
            Text::Localized(map) => CText::Localized(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), parse(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }

    pub fn pick(&self, locale: &str, fallback: &str) -> Option<&Template> {
        match self {
            CText::Plain(t) => Some(t),
            CText::Localized(map) => model::pick_locale(map, locale, fallback),
        }
    }
}

pub(crate) enum CPart {
    Text(CText),
    Image { alt: Option<CText> },
    Products(Expr),
    Carousel(Vec<(CText, Option<CText>)>),
}

/// Per-node parsed content, in the same order as `flow.nodes`.
pub(crate) enum Compiled {
    Plain,
    Message(Vec<CPart>),
    Choice {
        prompt: CText,
        options: Vec<CText>,
        dynamic: Option<(Expr, CText)>,
        retry: Option<CText>,
    },
    Input {
        prompt: CText,
        retry: Option<CText>,
        pattern: Option<Regex>,
    },
    Exprs(Vec<(String, Expr)>),
    Handoff {
        reason: CText,
        summary: Option<CText>,
        message: Option<CText>,
    },
}

impl Program {
    pub fn new(flow: Flow) -> Result<Program, String> {
        let index: BTreeMap<String, usize> = flow
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        let mut edges = vec![BTreeMap::new(); flow.nodes.len()];
        for edge in &flow.edges {
            let (Some(&from), Some(&to)) = (index.get(&edge.from), index.get(&edge.to)) else {
                return Err(format!(
                    "edge {} -> {} joins unknown nodes",
                    edge.from, edge.to
                ));
            };
            edges[from].insert(edge.port.clone(), to);
        }
        let start = flow
            .nodes
            .iter()
            .position(|n| matches!(n.kind, NodeKind::Start(_)))
            .ok_or_else(|| format!("flow `{}` has no start node", flow.id))?;
        let vars = VarTable::new(
            flow.variables
                .iter()
                .map(|v| Declared {
                    name: v.name.clone(),
                    ty: v.ty.clone(),
                    scope: v.scope,
                    default: v.default.clone(),
                })
                .collect(),
        );
        let opt = |t: &Option<Text>| t.as_ref().map(CText::new).transpose();
        let exprs = |pairs: Vec<(&String, &String)>| -> Result<Compiled, String> {
            let parsed = pairs
                .into_iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        expr::parse(v).map_err(|e| format!("`{k}`: {e}"))?,
                    ))
                })
                .collect::<Result<_, String>>()?;
            Ok(Compiled::Exprs(parsed))
        };
        let mut nodes = Vec::with_capacity(flow.nodes.len());
        for node in &flow.nodes {
            let compiled = match &node.kind {
                NodeKind::Start(_)
                | NodeKind::Wait(_)
                | NodeKind::AbSplit(_)
                | NodeKind::Jump(_)
                | NodeKind::End(_) => Compiled::Plain,
                NodeKind::Message(m) => Compiled::Message(
                    m.parts
                        .iter()
                        .map(|p| {
                            Ok(match p {
                                Part::Text { text } => CPart::Text(CText::new(text)?),
                                Part::Image { alt, .. } => CPart::Image { alt: opt(alt)? },
                                Part::Products { from, .. } => {
                                    CPart::Products(expr::parse(from).map_err(|e| e.to_string())?)
                                }
                                Part::Carousel { cards } => CPart::Carousel(
                                    cards
                                        .iter()
                                        .map(|c| Ok((CText::new(&c.title)?, opt(&c.subtitle)?)))
                                        .collect::<Result<_, String>>()?,
                                ),
                            })
                        })
                        .collect::<Result<_, String>>()?,
                ),
                NodeKind::Choice(c) => Compiled::Choice {
                    prompt: CText::new(&c.prompt)?,
                    options: c
                        .options
                        .iter()
                        .map(|o| CText::new(&o.label))
                        .collect::<Result<_, _>>()?,
                    dynamic: match &c.dynamic {
                        Some(d) => Some((
                            expr::parse(&d.list).map_err(|e| e.to_string())?,
                            CText::new(&d.label)?,
                        )),
                        None => None,
                    },
                    retry: opt(&c.retry_prompt)?,
                },
                NodeKind::Input(i) => Compiled::Input {
                    prompt: CText::new(&i.prompt)?,
                    retry: opt(&i.retry_prompt)?,
                    pattern: match &i.validation.pattern {
                        Some(p) => Some(anchored(p)?),
                        None => None,
                    },
                },
                NodeKind::Condition(c) => {
                    exprs(c.branches.iter().map(|b| (&b.id, &b.when)).collect())?
                }
                NodeKind::Set(s) => {
                    exprs(s.assignments.iter().map(|a| (&a.var, &a.value)).collect())?
                }
                NodeKind::Lookup(l) => exprs(l.params.iter().collect())?,
                NodeKind::Call(c) => exprs(c.inputs.iter().collect())?,
                NodeKind::Handoff(h) => Compiled::Handoff {
                    reason: CText::new(&h.reason)?,
                    summary: opt(&h.summary)?,
                    message: opt(&h.message)?,
                },
            };
            nodes.push(compiled);
        }
        Ok(Program {
            flow,
            index,
            edges,
            nodes,
            vars,
            start,
        })
    }
}

/// Compiles a validation pattern so that it must match the whole answer.
pub fn anchored(pattern: &str) -> Result<Regex, String> {
    // The pattern must be a regular expression on its own, or `a)|(?:b` would escape the
    // anchors wrapped around it.
    Regex::new(pattern).map_err(|e| format!("invalid pattern: {e}"))?;
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("invalid pattern: {e}"))
}
