//! Conditions: expressions of the flow language (`flows::expr`) over `agent`, `resource` and
//! `context`, parsed and type-checked when the file is loaded, with every error placed at
//! its line and column in the policy file.

use std::fmt;

use flows::expr::{Expr, TypeEnv, ValueEnv};
use flows::{Type, Value};

use crate::diagnostic::{Diagnostic, Location};
use crate::syntax::{Source, Str};

/// The roots a policy condition may read.
pub(crate) const CONDITION_ROOTS: [&str; 3] = ["agent", "resource", "context"];

/// The declared roots of an expression: each is a map whose fields are not known in advance,
/// so the checker catches syntax errors, unknown roots, unknown functions and wrong literal
/// types, and leaves the rest to evaluation.
pub(crate) struct Roots(pub(crate) &'static [&'static str]);

impl TypeEnv for Roots {
    fn var_type(&self, name: &str) -> Option<Type> {
        self.0.contains(&name).then_some(Type::Map)
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().map(|&name| name.to_owned()).collect()
    }
}

/// An expression read from a string of the file, with the file location of each of its bytes.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub(crate) expr: Expr,
    /// The file location of each byte of the expression's source, and of its end.
    locations: Vec<Location>,
}

impl Located {
    /// Parses and type-checks the expression in `text`; the type is returned for the caller
    /// to judge.
    pub(crate) fn parse(
        text: &Str,
        source: &Source<'_>,
        roots: &Roots,
    ) -> Result<(Located, Type), Diagnostic> {
        let locations = source.locations((0..=text.value.len()).map(|i| text.file_offset(i)));
        let at = |offset: usize, message: String| {
            let location = locations
                .get(offset)
                .or(locations.last())
                .copied()
                .unwrap_or(Location { line: 1, column: 1 });
            Diagnostic {
                line: location.line,
                column: location.column,
                message,
            }
        };
        if text.value.trim().is_empty() {
            return Err(at(0, "the expression is empty".to_owned()));
        }
        let file_message = |message: &str| {
            rewrite_positions(message, &text.value, |offset| {
                locations.get(offset).copied()
            })
        };
        let expr = flows::expr::parse(&text.value)
            .map_err(|e| at(e.span.start, file_message(&e.message)))?;
        let ty = expr
            .check(roots)
            .map_err(|e| at(e.span.start, file_message(&e.message)))?;
        Ok((Located { expr, locations }, ty))
    }

    pub(crate) fn location(&self, offset: usize) -> Location {
        self.locations
            .get(offset)
            .or(self.locations.last())
            .copied()
            .unwrap_or(Location { line: 1, column: 1 })
    }
}

/// A policy's condition: `true` lets the policy apply.
#[derive(Debug, Clone)]
pub struct Condition {
    located: Located,
}

/// Why a condition gave no `true` or `false`: a value of the wrong kind behind an attribute
/// (`contains` on a missing list), or a result that is not a bool.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConditionError {
    /// Where in the policy file the failing part of the condition is.
    pub location: Location,
    pub message: String,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// The values of the roots while a condition runs.
pub(crate) struct Env<'a> {
    pub(crate) agent: &'a Value,
    pub(crate) resource: &'a Value,
    pub(crate) context: &'a Value,
}

impl ValueEnv for Env<'_> {
    fn var(&self, name: &str) -> Option<&Value> {
        match name {
            "agent" => Some(self.agent),
            "resource" => Some(self.resource),
            "context" => Some(self.context),
            _ => None,
        }
    }
}

impl Condition {
    pub(crate) fn parse(text: &Str, source: &Source<'_>) -> Result<Condition, Diagnostic> {
        let (located, ty) = Located::parse(text, source, &Roots(&CONDITION_ROOTS))?;
        if !matches!(ty, Type::Bool | Type::Any) {
            let location = located.location(located.expr.span().start);
            return Err(Diagnostic {
                line: location.line,
                column: location.column,
                message: format!(
                    "a condition must be true or false, but this is {}",
                    type_name(&ty)
                ),
            });
        }
        Ok(Condition { located })
    }

    /// The condition as written.
    pub fn source(&self) -> &str {
        self.located.expr.source()
    }

    /// Where the condition starts in the policy file.
    pub fn location(&self) -> Location {
        self.located.location(0)
    }

    pub(crate) fn eval(&self, env: &Env<'_>) -> Result<bool, ConditionError> {
        match self.located.expr.eval(env) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(ConditionError {
                location: self.location(),
                message: format!(
                    "the condition gave {} instead of true or false",
                    flows::expr::builtins::kind_phrase(&other)
                ),
            }),
            Err(error) => Err(ConditionError {
                location: self.located.location(error.span.start),
                message: error.message,
            }),
        }
    }
}

/// The expression language's messages name positions in the expression ("the `(` at line 1,
/// column 25"); in a policy file they should name positions in the file.
fn rewrite_positions(
    message: &str,
    expression: &str,
    locate: impl Fn(usize) -> Option<Location>,
) -> String {
    const LINE: &str = "line ";
    const COLUMN: &str = ", column ";
    let number = |text: &str| -> (Option<usize>, usize) {
        let digits = text.chars().take_while(char::is_ascii_digit).count();
        (text.get(..digits).and_then(|d| d.parse().ok()), digits)
    };
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(LINE) {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let after_line = after.get(LINE.len()..).unwrap_or("");
        let (line, line_digits) = number(after_line);
        let tail = after_line.get(line_digits..).unwrap_or("");
        let (column, column_digits) = match tail.strip_prefix(COLUMN) {
            Some(t) => number(t),
            None => (None, 0),
        };
        let offset = line
            .zip(column)
            .and_then(|(line, column)| offset_of(expression, line, column));
        match offset.and_then(&locate) {
            Some(location) => {
                out.push_str(&format!(
                    "line {}, column {}",
                    location.line, location.column
                ));
                rest = tail.get(COLUMN.len() + column_digits..).unwrap_or("");
            }
            None => {
                out.push_str(LINE);
                rest = after_line;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The byte offset of a 1-based line and column (in characters) in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += text.get(start..)?.find('\n')? + 1;
    }
    let line_text = text.get(start..)?;
    let within = line_text
        .char_indices()
        .nth(column.checked_sub(1)?)
        .map_or(line_text.len(), |(i, _)| i);
    Some(start + within)
}

pub(crate) fn type_name(ty: &Type) -> &'static str {
    match ty {
        Type::Any => "a value of any type",
        Type::Bool => "a bool",
        Type::Number => "a number",
        Type::String => "a string",
        Type::Map => "a map",
        Type::List(_) => "a list",
    }
}
