//! Templates: message text with `{{ expr }}` holes, parsed into literal text and expressions.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};

use super::lexer::Lines;
use super::parser::Parser;
use super::{EvalError, Expr, ExprError, TypeEnv, ValueEnv};

/// A parsed template. Spans of the expressions in its holes are positions in the template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

/// A piece of a template: literal text, or a hole whose value is printed.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// Text printed as it is (`\{{` already turned into `{{`).
    Text(String),
    /// An expression printed with `Value`'s `Display`.
    Hole(Expr),
}

impl Template {
    /// The text and holes in order; neighbouring texts are merged, and there are no empty texts.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The template text, as [`Display`](fmt::Display) prints it.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn holes(&self) -> impl Iterator<Item = &Expr> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Hole(expr) => Some(expr),
            Segment::Text(_) => None,
        })
    }

    /// Checks every hole, in order; holes may have any type. Returns the first error.
    pub fn check(&self, env: &dyn TypeEnv) -> Result<(), ExprError> {
        for hole in self.holes() {
            hole.check(env)?;
        }
        Ok(())
    }

    /// The text with every hole replaced by its value as `Value`'s `Display` prints it.
    pub fn render(&self, env: &dyn ValueEnv) -> Result<String, EvalError> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Hole(expr) => {
                    // Printed from the borrowed value: a hole showing a list does not copy it.
                    let value = super::eval::eval(&expr.root, env)?;
                    let _ = write!(out, "{value}");
                }
            }
        }
        Ok(out)
    }

    /// The root names of the variables the holes read.
    pub fn variables(&self) -> BTreeSet<String> {
        self.holes().flat_map(Expr::variables).collect()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Parses a template: text with `{{ expr }}` holes; `\{{` is a literal `{{`.
pub fn parse_template(src: &str) -> Result<Template, ExprError> {
    let lines = Lines::new(src);
    let mut segments = Vec::new();
    let mut text = String::new();
    let mut pos = 0;
    while let Some(rest) = src.get(pos..).filter(|rest| !rest.is_empty()) {
        if rest.starts_with("\\{{") {
            text.push_str("{{");
            pos += 3;
        } else if rest.starts_with("{{") {
            if !text.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut text)));
            }
            let inner_start = pos + 2;
            let (root, end) = Parser::new(src, &lines, inner_start, Some(pos)).parse()?;
            // The hole's text without the braces and the white space inside them.
            let inner = src.get(inner_start..end - 2).unwrap_or("");
            let leading = inner.len() - inner.trim_start().len();
            segments.push(Segment::Hole(Expr {
                source: inner.trim().to_owned(),
                offset: inner_start + leading,
                root,
            }));
            pos = end;
        } else {
            let c = rest.chars().next().unwrap_or_default();
            text.push(c);
            pos += c.len_utf8();
        }
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    Ok(Template {
        source: src.to_owned(),
        segments,
    })
}
