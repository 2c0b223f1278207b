//! The evaluator: walks the tree and computes values with the functions of [`builtins`].
//!
//! Values are borrowed from the variables where possible (`cart.items[0].price` clones only
//! the price), and only `&&`/`||` decide whether to evaluate their right side.

use std::borrow::Cow;

use super::ast::{BinaryOp, ExprKind, ExprNode};
use super::builtins;
use super::{EvalError, Span, ValueEnv};
use crate::value::Value;

fn located<T>(result: Result<T, String>, span: Span) -> Result<T, EvalError> {
    result.map_err(|message| EvalError { span, message })
}

pub(super) fn eval<'a>(
    node: &'a ExprNode,
    env: &'a dyn ValueEnv,
) -> Result<Cow<'a, Value>, EvalError> {
    Ok(match &node.kind {
        ExprKind::Literal(value) => Cow::Borrowed(value),
        ExprKind::List(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                values.push(eval(item, env)?.into_owned());
            }
            Cow::Owned(Value::List(values))
        }
        ExprKind::Var(name) => match env.var(name) {
            Some(value) => Cow::Borrowed(value),
            None => {
                return Err(EvalError {
                    span: node.span,
                    message: format!("the variable `{name}` does not exist"),
                });
            }
        },
        ExprKind::Field {
            target,
            name,
            name_span,
        } => match eval(target, env)? {
            Cow::Borrowed(value) => {
                Cow::Borrowed(located(builtins::field(value, name), *name_span)?)
            }
            Cow::Owned(value) => {
                Cow::Owned(located(builtins::field(&value, name), *name_span)?.clone())
            }
        },
        ExprKind::Index { target, index } => {
            let target = eval(target, env)?;
            let index = eval(index, env)?;
            match target {
                Cow::Borrowed(value) => {
                    Cow::Borrowed(located(builtins::index(value, &index), node.span)?)
                }
                Cow::Owned(value) => {
                    Cow::Owned(located(builtins::index(&value, &index), node.span)?.clone())
                }
            }
        }
        ExprKind::Unary { op, operand } => {
            let value = eval(operand, env)?;
            Cow::Owned(located(builtins::unary(*op, &value), node.span)?)
        }
        ExprKind::Binary {
            op: op @ (BinaryOp::And | BinaryOp::Or),
            lhs,
            rhs,
            ..
        } => {
            let op_text = op.symbol();
            let left = located(builtins::bool_operand(op_text, &*eval(lhs, env)?), lhs.span)?;
            // Short-circuit: `false && x` and `true || x` never evaluate `x`.
            if left == (*op == BinaryOp::Or) {
                return Ok(Cow::Owned(Value::Bool(left)));
            }
            let right = located(builtins::bool_operand(op_text, &*eval(rhs, env)?), rhs.span)?;
            Cow::Owned(Value::Bool(right))
        }
        ExprKind::Binary { op, lhs, rhs, .. } => {
            let left = eval(lhs, env)?;
            let right = eval(rhs, env)?;
            Cow::Owned(located(builtins::binary(*op, &left, &right), node.span)?)
        }
        ExprKind::Call { function, args, .. } => {
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                values.push(eval(arg, env)?);
            }
            let refs: Vec<&Value> = values.iter().map(|v| &**v).collect();
            Cow::Owned(located(builtins::call(*function, &refs), node.span)?)
        }
    })
}
