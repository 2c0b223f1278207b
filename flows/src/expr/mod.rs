//! The expression language: parsing with spans, type-checking against declared variables,
//! evaluation, and `{{expr}}` string templates. `docs/expressions.md` is the specification.
//!
//! The pieces: [`lexer`] turns text into tokens, [`parser`] builds the [`ExprNode`] tree,
//! [`check`] computes static types, [`eval`] computes values by calling [`builtins`], and
//! [`template`] cuts message text into literal text and expression holes. Generated code calls
//! the same [`builtins`] functions as the evaluator, so both engines share one definition of
//! every operation.

mod ast;
pub mod builtins;
mod check;
mod eval;
mod lexer;
mod parser;
mod suggest;
mod template;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::value::{Type, Value};

pub use ast::{BinaryOp, ExprKind, ExprNode, UnaryOp};
pub use builtins::Function;
pub use template::{Segment, Template, parse_template};

/// The deepest an expression may nest; see "Limits" in `docs/expressions.md`. It keeps the
/// parser, the checker and the evaluator far from the stack's end, also in the browser.
pub const MAX_DEPTH: u32 = 64;

/// A location in expression source. `start`/`end` are byte offsets; `line`/`column` are
/// 1-based and count characters, and describe `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub column: u32,
}

/// A parse or type error, located in the expression's source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {}, column {}: {message}", span.line, span.column)]
pub struct ExprError {
    pub span: Span,
    pub message: String,
}

/// An error while evaluating (division by zero, a value of the wrong kind behind an `any`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {}, column {}: {message}", span.line, span.column)]
pub struct EvalError {
    pub span: Span,
    pub message: String,
}

/// The declared variables an expression is checked against.
pub trait TypeEnv {
    /// The declared type of the root variable `name`, or `None` if no such variable exists.
    fn var_type(&self, name: &str) -> Option<Type>;

    /// Every declared variable name. Only used to suggest a name when an expression uses an
    /// unknown one ("did you mean `name`?"); the default offers no suggestions.
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The current values of variables while an expression is evaluated.
pub trait ValueEnv {
    /// The value of the root variable `name`; `None` makes evaluation fail.
    fn var(&self, name: &str) -> Option<&Value>;
}

impl TypeEnv for BTreeMap<String, Type> {
    fn var_type(&self, name: &str) -> Option<Type> {
        self.get(name).cloned()
    }

    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

impl ValueEnv for BTreeMap<String, Value> {
    fn var(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// A parsed expression: its source text and its syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// The text the expression was parsed from (for a template hole, the text between the
    /// braces without surrounding whitespace).
    source: String,
    /// Where `source` starts in the text that spans refer to: 0 for [`parse`], the hole's
    /// position for an expression inside a template.
    offset: usize,
    root: ExprNode,
}

impl Expr {
    /// The root of the syntax tree.
    pub fn root(&self) -> &ExprNode {
        &self.root
    }

    /// The kind of the root node.
    pub fn kind(&self) -> &ExprKind {
        &self.root.kind
    }

    /// The span of the root node (parentheses around the whole expression excluded).
    pub fn span(&self) -> Span {
        self.root.span
    }

    /// The source text, as [`Display`](fmt::Display) prints it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The static type of the expression, or the first type error (in source order).
    pub fn check(&self, env: &dyn TypeEnv) -> Result<Type, ExprError> {
        check::Checker::new(&self.source, self.offset, env).check(&self.root)
    }

    /// Evaluates the expression. The result fits the type [`Expr::check`] returned, provided
    /// the variables hold values that fit their declared types.
    pub fn eval(&self, env: &dyn ValueEnv) -> Result<Value, EvalError> {
        eval::eval(&self.root, env).map(std::borrow::Cow::into_owned)
    }

    /// The root names of the variables the expression reads (`cart` for `cart.items[0]`).
    pub fn variables(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        self.root.walk(&mut |node| {
            if let ExprKind::Var(name) = &node.kind {
                names.insert(name.clone());
            }
        });
        names
    }

    /// The source text of a node of this expression, if the node belongs to it.
    pub fn text_of(&self, span: Span) -> Option<&str> {
        self.source
            .get(span.start.checked_sub(self.offset)?..span.end.checked_sub(self.offset)?)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Parses an expression. Spans in the tree and in errors are positions in `src`.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    let lines = lexer::Lines::new(src);
    let (root, _) = parser::Parser::new(src, &lines, 0, None).parse()?;
    Ok(Expr {
        source: src.to_owned(),
        offset: 0,
        root,
    })
}
