//! The syntax tree of an expression: what the parser builds and what the checker, the
//! evaluator and the code generator walk.

use super::Span;
use super::builtins::Function;
use crate::value::Value;

/// One node of the syntax tree with the span of the source text it was parsed from.
///
/// Parentheses leave no node: `(a + b) * c` is `Binary(Mul, Binary(Add, a, b), c)`. The span
/// of the inner node covers `a + b` without the parentheses; the span of the outer node covers
/// all of `(a + b) * c`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprNode {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `null`, `true`, `false`, a number or a string. Never a list or a map: list literals are
    /// [`ExprKind::List`] because their elements are expressions.
    Literal(Value),
    /// `[a, b, c]`.
    List(Vec<ExprNode>),
    /// The root of a variable path: `cart` in `cart.items[0]`.
    Var(String),
    /// `target.name`. `name_span` covers the name after the dot.
    Field {
        target: Box<ExprNode>,
        name: String,
        name_span: Span,
    },
    /// `target[index]`.
    Index {
        target: Box<ExprNode>,
        index: Box<ExprNode>,
    },
    /// `!operand`, `not operand`, `-operand`. The operator is at the start of the node's span.
    Unary { op: UnaryOp, operand: Box<ExprNode> },
    /// `lhs op rhs`. `op_span` covers the operator as written (`&&` or `and`).
    Binary {
        op: BinaryOp,
        op_span: Span,
        lhs: Box<ExprNode>,
        rhs: Box<ExprNode>,
    },
    /// `name(args)`. The parser guarantees that the function exists and that the number of
    /// arguments is one it accepts.
    Call {
        function: Function,
        name_span: Span,
        args: Vec<ExprNode>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnaryOp {
    /// `!` or `not`.
    Not,
    /// `-`.
    Neg,
}

impl UnaryOp {
    /// The operator's canonical spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Not => "!",
            UnaryOp::Neg => "-",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BinaryOp {
    /// `||` or `or`; short-circuits.
    Or,
    /// `&&` or `and`; short-circuits.
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    /// The operator's canonical spelling (`||`, not `or`).
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }

    /// Binding strength, 1 (weakest, `||`) to 6 (`*`); unary operators bind at 7 and postfix at 8.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq | BinaryOp::Ne => 3,
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => 4,
            BinaryOp::Add | BinaryOp::Sub => 5,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 6,
        }
    }

    /// Comparisons cannot be chained: `a < b < c` and `a == b == c` are parse errors.
    pub fn is_comparison(self) -> bool {
        matches!(self.precedence(), 3 | 4)
    }
}

impl ExprNode {
    /// Calls `f` on this node and every node below it, parents before children, left to right.
    pub fn walk(&self, f: &mut dyn FnMut(&ExprNode)) {
        f(self);
        match &self.kind {
            ExprKind::Literal(_) | ExprKind::Var(_) => {}
            ExprKind::List(items) => items.iter().for_each(|n| n.walk(f)),
            ExprKind::Field { target, .. } => target.walk(f),
            ExprKind::Index { target, index } => {
                target.walk(f);
                index.walk(f);
            }
            ExprKind::Unary { operand, .. } => operand.walk(f),
            ExprKind::Binary { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            ExprKind::Call { args, .. } => args.iter().for_each(|n| n.walk(f)),
        }
    }
}
