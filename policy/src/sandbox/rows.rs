//! Row filters: which rows of an entity a department sees, written as a condition over `row`
//! (the record) and `agent` (the person asking), e.g.
//! `row.region == agent.region && row.status != "archived"`.
//!
//! Only what translates to a SQL `WHERE` is accepted: comparisons of a column with a constant
//! or an agent attribute, `contains(list, row.column)` (SQL `IN`), `&&`, `||`, `!`, `true` and
//! `false`. The runtime turns a [`RowFilter`] bound to an agent into SQL with bound values;
//! [`RowFilter::matches`] is the same test on a record in memory.

use std::collections::BTreeSet;
use std::fmt;

use flows::Value;
use flows::expr::builtins::{self, Function};
use flows::expr::{BinaryOp, ExprKind, ExprNode, UnaryOp};

use crate::condition::{Located, Roots, type_name};
use crate::diagnostic::Diagnostic;
use crate::request::Subject;
use crate::syntax::{Source, Str};

const ROW_ROOTS: [&str; 2] = ["row", "agent"];

/// A comparison operator of a row filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// The SQL spelling.
    pub fn sql(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    /// `a op b` is `b flipped(op) a`.
    fn flipped(self) -> CompareOp {
        match self {
            CompareOp::Eq => CompareOp::Eq,
            CompareOp::Ne => CompareOp::Ne,
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Le => CompareOp::Ge,
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Ge => CompareOp::Le,
        }
    }

    fn binary(self) -> BinaryOp {
        match self {
            CompareOp::Eq => BinaryOp::Eq,
            CompareOp::Ne => BinaryOp::Ne,
            CompareOp::Lt => BinaryOp::Lt,
            CompareOp::Le => BinaryOp::Le,
            CompareOp::Gt => BinaryOp::Gt,
            CompareOp::Ge => BinaryOp::Ge,
        }
    }
}

/// What a column is compared with.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operand {
    /// A constant (for `In`, a list).
    Value(Value),
    /// An attribute of the agent: the field names after `agent.` (`["region"]`).
    Agent(Vec<String>),
}

impl Operand {
    fn resolve<'a>(&'a self, subject: &'a Subject) -> &'a Value {
        match self {
            Operand::Value(value) => value,
            Operand::Agent(path) => {
                let mut value = subject.value();
                for name in path {
                    value = builtins::field(value, name).unwrap_or(&Value::Null);
                }
                value
            }
        }
    }
}

/// A checked row filter.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowFilter {
    Const(bool),
    And(Box<RowFilter>, Box<RowFilter>),
    Or(Box<RowFilter>, Box<RowFilter>),
    Not(Box<RowFilter>),
    /// `column op operand`.
    Compare {
        column: String,
        op: CompareOp,
        operand: Operand,
    },
    /// `column IN operand` (a list).
    In {
        column: String,
        operand: Operand,
    },
}

impl RowFilter {
    pub(crate) fn parse(text: &Str, source: &Source<'_>) -> Result<RowFilter, Diagnostic> {
        let (located, ty) = Located::parse(text, source, &Roots(&ROW_ROOTS))?;
        let error = |offset: usize, message: String| {
            let location = located.location(offset);
            Diagnostic {
                line: location.line,
                column: location.column,
                message,
            }
        };
        if !matches!(ty, flows::Type::Bool | flows::Type::Any) {
            return Err(error(
                located.expr.span().start,
                format!(
                    "a row filter must be true or false, but this is {}",
                    type_name(&ty)
                ),
            ));
        }
        convert(located.expr.root()).map_err(|(offset, message)| error(offset, message))
    }

    /// The columns the filter reads (for the runtime to check against the table).
    pub fn columns(&self) -> BTreeSet<&str> {
        let mut columns = BTreeSet::new();
        self.walk(&mut |filter| match filter {
            RowFilter::Compare { column, .. } | RowFilter::In { column, .. } => {
                columns.insert(column.as_str());
            }
            RowFilter::Const(_) | RowFilter::And(..) | RowFilter::Or(..) | RowFilter::Not(_) => {}
        });
        columns
    }

    fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a RowFilter)) {
        f(self);
        match self {
            RowFilter::And(a, b) | RowFilter::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            RowFilter::Not(a) => a.walk(f),
            RowFilter::Const(_) | RowFilter::Compare { .. } | RowFilter::In { .. } => {}
        }
    }

    /// The filter with every agent attribute replaced by its value for `subject`: what the
    /// runtime turns into SQL with bound parameters.
    #[must_use]
    pub fn bind(&self, subject: &Subject) -> RowFilter {
        let operand = |operand: &Operand| Operand::Value(operand.resolve(subject).clone());
        match self {
            RowFilter::Const(b) => RowFilter::Const(*b),
            RowFilter::And(a, b) => {
                RowFilter::And(Box::new(a.bind(subject)), Box::new(b.bind(subject)))
            }
            RowFilter::Or(a, b) => {
                RowFilter::Or(Box::new(a.bind(subject)), Box::new(b.bind(subject)))
            }
            RowFilter::Not(a) => RowFilter::Not(Box::new(a.bind(subject))),
            RowFilter::Compare {
                column,
                op,
                operand: o,
            } => RowFilter::Compare {
                column: column.clone(),
                op: *op,
                operand: operand(o),
            },
            RowFilter::In { column, operand: o } => RowFilter::In {
                column: column.clone(),
                operand: operand(o),
            },
        }
    }

    /// Whether `subject` sees the record `row` (a map of column values).
    ///
    /// The logic is SQL's, with three values: a comparison with `null` on either side, or
    /// of values of different kinds (a string with a number, a list with anything), is
    /// *unknown*, for `==` and `!=` too; `!unknown` is unknown,
    /// `&&` and `||` follow Kleene's tables, and only a known `true` shows the row. So the
    /// test in memory and the `WHERE` clause the runtime makes agree, and a value of the wrong
    /// kind hides a row instead of revealing it.
    pub fn matches(&self, row: &Value, subject: &Subject) -> bool {
        self.test(row, subject) == Some(true)
    }

    fn test(&self, row: &Value, subject: &Subject) -> Option<bool> {
        match self {
            RowFilter::Const(b) => Some(*b),
            RowFilter::And(a, b) => match (a.test(row, subject), b.test(row, subject)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            RowFilter::Or(a, b) => match (a.test(row, subject), b.test(row, subject)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            RowFilter::Not(a) => a.test(row, subject).map(|b| !b),
            RowFilter::Compare {
                column,
                op,
                operand,
            } => {
                let value = builtins::field(row, column).unwrap_or(&Value::Null);
                let other = operand.resolve(subject);
                if !same_kind(value, other) {
                    return None;
                }
                builtins::binary(op.binary(), value, other)
                    .ok()
                    .and_then(|v| v.as_bool())
            }
            RowFilter::In { column, operand } => {
                let value = builtins::field(row, column).unwrap_or(&Value::Null);
                match (value, operand.resolve(subject)) {
                    (Value::Null | Value::List(_) | Value::Map(_), _) => None,
                    (_, Value::List(items)) => Some(
                        items
                            .iter()
                            .any(|item| same_kind(item, value) && builtins::equals(item, value)),
                    ),
                    _ => None,
                }
            }
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Value(Value::String(s)) => write!(f, "{s:?}"),
            Operand::Value(value) => write!(f, "{value}"),
            Operand::Agent(path) => write!(f, "agent.{}", path.join(".")),
        }
    }
}

/// The filter in the expression language (`row.region == agent.region`).
impl fmt::Display for RowFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowFilter::Const(b) => write!(f, "{b}"),
            RowFilter::And(a, b) => write!(f, "({a} && {b})"),
            RowFilter::Or(a, b) => write!(f, "({a} || {b})"),
            RowFilter::Not(a) => write!(f, "!{a}"),
            RowFilter::Compare {
                column,
                op,
                operand,
            } => write!(f, "row.{column} {} {operand}", op.binary().symbol()),
            RowFilter::In { column, operand } => write!(f, "contains({operand}, row.{column})"),
        }
    }
}

const SHAPES: &str = "a row filter compares a column (`row.<column>`) with a constant or an agent attribute (`agent.<name>`), tests membership with `contains(list, row.<column>)`, and combines these with `&&`, `||` and `!`";

type Problem = (usize, String);

fn convert(node: &ExprNode) -> Result<RowFilter, Problem> {
    match &node.kind {
        ExprKind::Literal(Value::Bool(b)) => Ok(RowFilter::Const(*b)),
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => Ok(RowFilter::Not(Box::new(convert(operand)?))),
        ExprKind::Binary { op, lhs, rhs, .. } => {
            let compare = match op {
                BinaryOp::And => {
                    return Ok(RowFilter::And(
                        Box::new(convert(lhs)?),
                        Box::new(convert(rhs)?),
                    ));
                }
                BinaryOp::Or => {
                    return Ok(RowFilter::Or(
                        Box::new(convert(lhs)?),
                        Box::new(convert(rhs)?),
                    ));
                }
                BinaryOp::Eq => CompareOp::Eq,
                BinaryOp::Ne => CompareOp::Ne,
                BinaryOp::Lt => CompareOp::Lt,
                BinaryOp::Le => CompareOp::Le,
                BinaryOp::Gt => CompareOp::Gt,
                BinaryOp::Ge => CompareOp::Ge,
                BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                    return Err((node.span.start, format!("no arithmetic here: {SHAPES}")));
                }
            };
            if let Some(column) = column(lhs) {
                Ok(RowFilter::Compare {
                    column,
                    op: compare,
                    operand: operand(rhs, false)?,
                })
            } else if let Some(column) = column(rhs) {
                Ok(RowFilter::Compare {
                    column,
                    op: compare.flipped(),
                    operand: operand(lhs, false)?,
                })
            } else {
                Err((
                    node.span.start,
                    format!("this comparison has no column on either side: {SHAPES}"),
                ))
            }
        }
        ExprKind::Call {
            function: Function::Contains,
            args,
            ..
        } => match args.as_slice() {
            [list, item] => match column(item) {
                Some(column) => Ok(RowFilter::In {
                    column,
                    operand: operand(list, true)?,
                }),
                None => Err((
                    item.span.start,
                    format!("the second argument of `contains` must be a column: {SHAPES}"),
                )),
            },
            _ => Err((node.span.start, SHAPES.to_owned())),
        },
        _ => Err((node.span.start, SHAPES.to_owned())),
    }
}

/// `row.<column>`.
fn column(node: &ExprNode) -> Option<String> {
    match &node.kind {
        ExprKind::Field { target, name, .. } if matches!(&target.kind, ExprKind::Var(root) if root == "row") => {
            Some(name.clone())
        }
        _ => None,
    }
}

/// `agent.<a>.<b>…` as its field names.
fn agent_path(node: &ExprNode) -> Option<Vec<String>> {
    match &node.kind {
        ExprKind::Var(root) if root == "agent" => Some(Vec::new()),
        ExprKind::Field { target, name, .. } => {
            let mut path = agent_path(target)?;
            path.push(name.clone());
            Some(path)
        }
        _ => None,
    }
}

fn operand(node: &ExprNode, list: bool) -> Result<Operand, Problem> {
    if let Some(path) = agent_path(node).filter(|p| !p.is_empty()) {
        return Ok(Operand::Agent(path));
    }
    match &node.kind {
        ExprKind::Literal(value) if !list => Ok(Operand::Value(value.clone())),
        ExprKind::List(items) if list => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match &item.kind {
                    ExprKind::Literal(value) => values.push(value.clone()),
                    _ => {
                        return Err((
                            item.span.start,
                            "a list in a row filter holds constants only".to_owned(),
                        ));
                    }
                }
            }
            Ok(Operand::Value(Value::List(values)))
        }
        _ if list => Err((
            node.span.start,
            "`contains` in a row filter looks in a list of constants or an agent attribute"
                .to_owned(),
        )),
        _ => Err((
            node.span.start,
            format!("compare a column with a constant or an agent attribute: {SHAPES}"),
        )),
    }
}

/// Whether a comparison of `a` with `b` is known: both text, both numbers or both booleans.
/// Anything else (a `null`, a list, a number against text) is unknown — as SQL makes it, and so
/// that a value of an unexpected kind hides a row rather than shows it.
fn same_kind(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::String(_), Value::String(_))
            | (Value::Number(_), Value::Number(_))
            | (Value::Bool(_), Value::Bool(_))
    )
}
