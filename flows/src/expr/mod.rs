//! The expression language: parsing with spans, type-checking against declared variables,
//! evaluation, and `{{expr}}` string templates. STUB: being written; the API below is the contract.

use std::collections::BTreeSet;
use std::fmt;

use crate::value::{Type, Value};

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

pub trait TypeEnv {
    fn var_type(&self, name: &str) -> Option<Type>;
}

pub trait ValueEnv {
    fn var(&self, name: &str) -> Option<&Value>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
}

impl Expr {
    pub fn check(&self, _env: &dyn TypeEnv) -> Result<Type, ExprError> {
        Ok(Type::Any)
    }
    pub fn eval(&self, _env: &dyn ValueEnv) -> Result<Value, EvalError> {
        Ok(Value::Bool(true))
    }
    pub fn variables(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

pub fn parse(src: &str) -> Result<Expr, ExprError> {
    Ok(Expr { source: src.to_owned() })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
}

impl Template {
    pub fn check(&self, _env: &dyn TypeEnv) -> Result<(), ExprError> {
        Ok(())
    }
    pub fn render(&self, _env: &dyn ValueEnv) -> Result<String, EvalError> {
        Ok(self.source.clone())
    }
    pub fn variables(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }
}

pub fn parse_template(src: &str) -> Result<Template, ExprError> {
    Ok(Template { source: src.to_owned() })
}
