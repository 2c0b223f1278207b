//! The type checker: the static type of every node, and errors that name the offending part
//! of the expression in words.

use super::ast::{BinaryOp, ExprKind, ExprNode, UnaryOp};
use super::builtins::Function;
use super::suggest::{close_names, did_you_mean};
use super::{ExprError, Span, TypeEnv};
use crate::value::Type;

pub(super) struct Checker<'a> {
    source: &'a str,
    offset: usize,
    env: &'a dyn TypeEnv,
}

/// "a string", "a list of numbers", … for messages.
pub(super) fn type_phrase(ty: &Type) -> String {
    match ty {
        Type::Any => "a value of any type".to_owned(),
        Type::Bool => "a bool (true or false)".to_owned(),
        Type::Number => "a number".to_owned(),
        Type::String => "a string".to_owned(),
        Type::Map => "a map".to_owned(),
        Type::List(elem) if **elem == Type::Any => "a list".to_owned(),
        Type::List(elem) => format!("a list of {}", plural(elem)),
    }
}

fn plural(ty: &Type) -> String {
    match ty {
        Type::Any => "values".to_owned(),
        Type::Bool => "bools".to_owned(),
        Type::Number => "numbers".to_owned(),
        Type::String => "strings".to_owned(),
        Type::Map => "maps".to_owned(),
        Type::List(elem) if **elem == Type::Any => "lists".to_owned(),
        Type::List(elem) => format!("lists of {}", plural(elem)),
    }
}

/// The most precise type both `a` and `b` have: equal types stay, lists of different
/// elements become lists of the common element type, anything else is `any`.
pub(super) fn common_type(a: &Type, b: &Type) -> Type {
    match (a, b) {
        _ if a == b => a.clone(),
        (Type::List(x), Type::List(y)) => Type::List(Box::new(common_type(x, y))),
        _ => Type::Any,
    }
}

/// Which values an argument or operand accepts, for checking and for messages.
#[derive(Clone, Copy)]
enum Want {
    Bool,
    Number,
    String,
    List,
    NumberList,
    StringListOrMap,
    StringListMapOrNull,
    StringOrNumber,
}

impl Want {
    fn accepts(self, ty: &Type) -> bool {
        match (self, ty) {
            (_, Type::Any)
            | (Want::Bool, Type::Bool)
            | (Want::Number | Want::StringOrNumber, Type::Number)
            | (Want::String | Want::StringOrNumber, Type::String)
            | (Want::List, Type::List(_))
            | (
                Want::StringListOrMap | Want::StringListMapOrNull,
                Type::String | Type::List(_) | Type::Map,
            ) => true,
            (Want::NumberList, Type::List(elem)) => elem.compatible(&Type::Number),
            _ => false,
        }
    }

    fn phrase(self) -> &'static str {
        match self {
            Want::Bool => "a bool (true or false)",
            Want::Number => "a number",
            Want::String => "a string",
            Want::List => "a list",
            Want::NumberList => "a list of numbers",
            Want::StringListOrMap => "a string, a list or a map",
            Want::StringListMapOrNull => "a string, a list, a map or null",
            Want::StringOrNumber => "a string or a number",
        }
    }
}

impl<'a> Checker<'a> {
    pub(super) fn new(source: &'a str, offset: usize, env: &'a dyn TypeEnv) -> Checker<'a> {
        Checker {
            source,
            offset,
            env,
        }
    }

    fn error(span: Span, message: String) -> ExprError {
        ExprError { span, message }
    }

    /// A sub-expression as the user wrote it ("`cart.total`"), or `fallback` when it is too
    /// long to quote in a message.
    fn quote(&self, node: &ExprNode, fallback: &str) -> String {
        let text = node
            .span
            .start
            .checked_sub(self.offset)
            .zip(node.span.end.checked_sub(self.offset))
            .and_then(|(start, end)| self.source.get(start..end));
        match text {
            Some(text) if text.chars().count() <= 40 && !text.contains('\n') => {
                format!("`{text}`")
            }
            _ => fallback.to_owned(),
        }
    }

    pub(super) fn check(&self, node: &ExprNode) -> Result<Type, ExprError> {
        match &node.kind {
            ExprKind::Literal(value) => Ok(value.type_of()),
            ExprKind::List(items) => {
                let mut elem: Option<Type> = None;
                for item in items {
                    let ty = self.check(item)?;
                    elem = Some(match elem {
                        None => ty,
                        Some(e) => common_type(&e, &ty),
                    });
                }
                Ok(Type::List(Box::new(elem.unwrap_or(Type::Any))))
            }
            ExprKind::Var(name) => self.env.var_type(name).ok_or_else(|| {
                let names = self.env.names();
                let close = close_names(name, names.iter().map(String::as_str), false);
                Self::error(
                    node.span,
                    format!("unknown variable `{name}`{}", did_you_mean(&close)),
                )
            }),
            ExprKind::Field {
                target,
                name,
                name_span,
            } => {
                let ty = self.check(target)?;
                match ty {
                    Type::Map | Type::Any => Ok(Type::Any),
                    Type::List(_) => {
                        let list = self.quote(target, "the list");
                        let hint = match list.strip_prefix('`').and_then(|l| l.strip_suffix('`')) {
                            Some(l) => format!(
                                ": to take `{name}` from every element, write `pluck({l}, \"{name}\")`; to take it from the first element, write `{l}[0].{name}`"
                            ),
                            None => format!(
                                ": to take `{name}` from every element, use `pluck`; to take it from one element, pick that element first with `[0]`"
                            ),
                        };
                        Err(Self::error(
                            *name_span,
                            format!(
                                "`.{name}` needs a map, but {list} is {}{hint}",
                                type_phrase(&ty),
                            ),
                        ))
                    }
                    _ => Err(Self::error(
                        *name_span,
                        format!(
                            "`.{name}` needs a map, but {} is {}",
                            self.quote(target, "the value before the dot"),
                            type_phrase(&ty)
                        ),
                    )),
                }
            }
            ExprKind::Index { target, index } => {
                let target_ty = self.check(target)?;
                let index_ty = self.check(index)?;
                match (&target_ty, &index_ty) {
                    (Type::List(elem), Type::Number | Type::Any) => Ok((**elem).clone()),
                    (Type::Map, Type::String | Type::Any) => Ok(Type::Any),
                    (Type::Any, Type::Number | Type::String | Type::Any) => Ok(Type::Any),
                    (Type::List(_), _) => Err(Self::error(
                        index.span,
                        format!(
                            "a list is indexed by a number (0 for the first element), but {} is {}",
                            self.quote(index, "the index"),
                            type_phrase(&index_ty)
                        ),
                    )),
                    (Type::Map | Type::Any, _) => Err(Self::error(
                        index.span,
                        format!(
                            "a map is indexed by a string key, but {} is {}",
                            self.quote(index, "the key"),
                            type_phrase(&index_ty)
                        ),
                    )),
                    _ => Err(Self::error(
                        target.span,
                        format!(
                            "`[ ]` needs a list or a map, but {} is {}",
                            self.quote(target, "the value before `[`"),
                            type_phrase(&target_ty)
                        ),
                    )),
                }
            }
            ExprKind::Unary { op, operand } => {
                let ty = self.check(operand)?;
                let op_text = self.op_text(node.span.start, op.symbol());
                let (want, result) = match op {
                    UnaryOp::Not => (Want::Bool, Type::Bool),
                    UnaryOp::Neg => (Want::Number, Type::Number),
                };
                if !want.accepts(&ty) {
                    return Err(Self::error(
                        operand.span,
                        format!(
                            "`{op_text}` needs {}, but {} is {}",
                            want.phrase(),
                            self.quote(operand, "its operand"),
                            type_phrase(&ty)
                        ),
                    ));
                }
                Ok(result)
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                let lt = self.check(lhs)?;
                let rt = self.check(rhs)?;
                let op_text = self.op_text(op_span.start, op.symbol());
                self.binary(*op, &op_text, node, lhs, &lt, rhs, &rt)
            }
            ExprKind::Call { function, args, .. } => {
                let mut types = Vec::with_capacity(args.len());
                for arg in args {
                    types.push(self.check(arg)?);
                }
                self.call(*function, args, &types)
            }
        }
    }

    /// The operator as written (`and` or `&&`).
    fn op_text(&self, start: usize, canonical: &str) -> String {
        let start = start.saturating_sub(self.offset);
        let rest = self.source.get(start..).unwrap_or("");
        ["and", "or", "not"]
            .into_iter()
            .find(|word| rest.starts_with(word))
            .unwrap_or(canonical)
            .to_owned()
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the two operands with their types"
    )]
    fn binary(
        &self,
        op: BinaryOp,
        op_text: &str,
        node: &ExprNode,
        lhs: &ExprNode,
        lt: &Type,
        rhs: &ExprNode,
        rt: &Type,
    ) -> Result<Type, ExprError> {
        let side = |n: &ExprNode, t: &Type, fallback: &str| {
            format!("{} is {}", self.quote(n, fallback), type_phrase(t))
        };
        let operands = |want: Want| -> Result<(), ExprError> {
            for (n, t, fallback) in [(lhs, lt, "the left side"), (rhs, rt, "the right side")] {
                if !want.accepts(t) {
                    let phrase = match want {
                        Want::Bool => "a bool (true or false) on both sides",
                        _ => "numbers",
                    };
                    return Err(Self::error(
                        n.span,
                        format!("`{op_text}` needs {phrase}, but {}", side(n, t, fallback)),
                    ));
                }
            }
            Ok(())
        };
        match op {
            BinaryOp::And | BinaryOp::Or => {
                operands(Want::Bool)?;
                Ok(Type::Bool)
            }
            BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                operands(Want::Number)?;
                Ok(Type::Number)
            }
            BinaryOp::Eq | BinaryOp::Ne => {
                if lt.compatible(rt) {
                    return Ok(Type::Bool);
                }
                let hint = match lt {
                    Type::List(elem) if rt.compatible(elem) => {
                        ": to check whether a list holds a value, write `contains(list, value)`"
                    }
                    _ => "",
                };
                Err(Self::error(
                    node.span,
                    format!(
                        "`{op_text}` compares values of the same type, but {} and {}{hint}",
                        side(lhs, lt, "the left side"),
                        side(rhs, rt, "the right side")
                    ),
                ))
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                for (n, t, fallback) in [(lhs, lt, "the left side"), (rhs, rt, "the right side")] {
                    if !matches!(t, Type::Number | Type::String | Type::Any) {
                        return Err(Self::error(
                            n.span,
                            format!(
                                "`{op_text}` compares two numbers or two strings, but {}",
                                side(n, t, fallback)
                            ),
                        ));
                    }
                }
                if lt.compatible(rt) {
                    Ok(Type::Bool)
                } else {
                    Err(Self::error(
                        node.span,
                        format!(
                            "`{op_text}` compares two numbers or two strings, but {} and {}",
                            side(lhs, lt, "the left side"),
                            side(rhs, rt, "the right side")
                        ),
                    ))
                }
            }
            BinaryOp::Add => self.add(node, lhs, lt, rhs, rt),
        }
    }

    fn add(
        &self,
        node: &ExprNode,
        lhs: &ExprNode,
        lt: &Type,
        rhs: &ExprNode,
        rt: &Type,
    ) -> Result<Type, ExprError> {
        for (n, t, fallback) in [(lhs, lt, "the left side"), (rhs, rt, "the right side")] {
            if matches!(t, Type::Bool | Type::Map) {
                return Err(Self::error(
                    n.span,
                    format!(
                        "`+` needs two numbers, two strings or two lists, but {} is {}",
                        self.quote(n, fallback),
                        type_phrase(t)
                    ),
                ));
            }
        }
        match (lt, rt) {
            (Type::Any, Type::Any) => Ok(Type::Any),
            (Type::Any, Type::List(_)) | (Type::List(_), Type::Any) => {
                Ok(Type::List(Box::new(Type::Any)))
            }
            (Type::Any, t) | (t, Type::Any) => Ok(t.clone()),
            (Type::List(_), Type::List(_)) => Ok(common_type(lt, rt)),
            (a, b) if a == b => Ok(a.clone()),
            _ => {
                let hint = if matches!(
                    (lt, rt),
                    (Type::String, Type::Number) | (Type::Number, Type::String)
                ) {
                    ": to put a number into text, convert it with `string(...)` or use a template"
                } else {
                    ""
                };
                Err(Self::error(
                    node.span,
                    format!(
                        "`+` needs two numbers, two strings or two lists, but {} is {} and {} is {}{hint}",
                        self.quote(lhs, "the left side"),
                        type_phrase(lt),
                        self.quote(rhs, "the right side"),
                        type_phrase(rt)
                    ),
                ))
            }
        }
    }

    /// The type of a call, checking each argument against what the function accepts.
    fn call(
        &self,
        function: Function,
        args: &[ExprNode],
        types: &[Type],
    ) -> Result<Type, ExprError> {
        let name = function.name();
        let require = |i: usize, want: Want| -> Result<(), ExprError> {
            let (Some(arg), Some(ty)) = (args.get(i), types.get(i)) else {
                return Ok(());
            };
            if want.accepts(ty) {
                return Ok(());
            }
            let position = match i {
                0 => String::new(),
                1 => " as its second argument".to_owned(),
                _ => " as its third argument".to_owned(),
            };
            Err(Self::error(
                arg.span,
                format!(
                    "`{name}` needs {}{position}, but {} is {}",
                    want.phrase(),
                    self.quote(arg, "the argument"),
                    type_phrase(ty)
                ),
            ))
        };
        let arg_type = |i: usize| types.get(i).cloned().unwrap_or(Type::Any);
        let element = |ty: Type| match ty {
            Type::List(elem) => *elem,
            _ => Type::Any,
        };
        Ok(match function {
            Function::Len => {
                require(0, Want::StringListOrMap)?;
                Type::Number
            }
            Function::Contains => {
                require(0, Want::StringListOrMap)?;
                let (haystack, needle) = (arg_type(0), arg_type(1));
                let wanted = match &haystack {
                    Type::String => Some((Type::String, "a string inside a string".to_owned())),
                    Type::Map => Some((Type::String, "a key (a string) in a map".to_owned())),
                    Type::List(elem) => Some((
                        (**elem).clone(),
                        format!("{} in {}", type_phrase(elem), type_phrase(&haystack)),
                    )),
                    _ => None,
                };
                if let (Some((want, what)), Some(arg)) = (wanted, args.get(1))
                    && !needle.compatible(&want)
                {
                    return Err(Self::error(
                        arg.span,
                        format!(
                            "`contains` looks for {what}, but {} is {}",
                            self.quote(arg, "the second argument"),
                            type_phrase(&needle)
                        ),
                    ));
                }
                Type::Bool
            }
            Function::Lower | Function::Upper | Function::Trim => {
                require(0, Want::String)?;
                Type::String
            }
            Function::StartsWith | Function::EndsWith => {
                require(0, Want::String)?;
                require(1, Want::String)?;
                Type::Bool
            }
            Function::Join => {
                require(0, Want::List)?;
                require(1, Want::String)?;
                Type::String
            }
            Function::Split => {
                require(0, Want::String)?;
                require(1, Want::String)?;
                Type::List(Box::new(Type::String))
            }
            Function::First | Function::Last => {
                require(0, Want::List)?;
                element(arg_type(0))
            }
            Function::Round => {
                require(0, Want::Number)?;
                require(1, Want::Number)?;
                Type::Number
            }
            Function::Floor | Function::Ceil | Function::Abs => {
                require(0, Want::Number)?;
                Type::Number
            }
            Function::Min | Function::Max => {
                require(0, Want::Number)?;
                require(1, Want::Number)?;
                Type::Number
            }
            Function::Number => {
                require(0, Want::StringOrNumber)?;
                Type::Number
            }
            Function::String => Type::String,
            Function::IsEmpty => {
                require(0, Want::StringListMapOrNull)?;
                Type::Bool
            }
            Function::Sum => {
                require(0, Want::NumberList)?;
                Type::Number
            }
            Function::Pluck => {
                require(0, Want::List)?;
                require(1, Want::String)?;
                Type::List(Box::new(Type::Any))
            }
            Function::Where => {
                require(0, Want::List)?;
                require(1, Want::String)?;
                Type::List(Box::new(Type::Map))
            }
            Function::Default => common_type(&arg_type(0), &arg_type(1)),
        })
    }
}
