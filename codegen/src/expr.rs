//! Expressions and templates into native Rust: each syntax-tree node becomes a direct call of
//! the builtin it means (`ops::gt`, `ops::field`, …), with the evaluator's error locations.

use flows::expr::{BinaryOp, ExprKind, ExprNode, Function, Segment, Span, Template, UnaryOp};
use flows::value::{Type, Value};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// What type generated code has: `&Value` (borrowed from variables), `Value`, or
/// `Result<Value, String>` (a builtin's result before `?`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Ref,
    Owned,
    Try,
    /// A plain `bool` (what comparisons with string literals and `&&`/`||` give).
    Bool,
}

/// Translates one expression or template; remembers whether the code reads `run` or `item`,
/// so that generated functions name unused parameters `_run` and `_item`.
pub struct ExprGen {
    /// Inside a dynamic choice label, where `item` is the list element.
    item_ctx: bool,
    pub uses_run: bool,
    pub uses_item: bool,
}

impl ExprGen {
    pub fn new(item_ctx: bool) -> ExprGen {
        ExprGen {
            item_ctx,
            uses_run: false,
            uses_item: false,
        }
    }

    /// Code of type `Result<Value, String>` for the whole expression.
    pub fn result(&mut self, node: &ExprNode) -> TokenStream {
        let (code, form) = self.expr(node);
        match form {
            Form::Try => code,
            Form::Owned => quote!(Ok(#code)),
            Form::Ref => quote!(Ok(#code.clone())),
            Form::Bool => quote!(Ok(Value::Bool(#code))),
        }
    }

    /// Code of type `Value`.
    fn owned(&mut self, node: &ExprNode) -> TokenStream {
        let (code, form) = self.expr(node);
        match form {
            Form::Owned => code,
            Form::Try => quote!(#code?),
            Form::Ref => quote!(#code.clone()),
            Form::Bool => quote!(Value::Bool(#code)),
        }
    }

    /// Code of type `String` for a template (without choosing a locale).
    pub fn template(&mut self, template: &Template) -> TokenStream {
        let segments = template.segments();
        if segments.iter().all(|s| matches!(s, Segment::Text(_))) {
            let text: String = segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Text(t) => Some(t.as_str()),
                    Segment::Hole(_) => None,
                })
                .collect();
            return if text.is_empty() {
                quote!(String::new())
            } else {
                quote!(String::from(#text))
            };
        }
        let mut pushes = Vec::new();
        for segment in segments {
            pushes.push(match segment {
                Segment::Text(text) if text.chars().count() == 1 => {
                    let c = text.chars().next().unwrap_or_default();
                    quote!(out.push(#c);)
                }
                Segment::Text(text) => quote!(out.push_str(#text);),
                Segment::Hole(expr) => {
                    let value = self.borrowed(expr.root());
                    quote!(rt::show(&mut out, #value);)
                }
            });
        }
        quote!({
            let mut out = String::new();
            #(#pushes)*
            out
        })
    }

    /// Code of type `&Value`.
    fn borrowed(&mut self, node: &ExprNode) -> TokenStream {
        reference(self.expr(node))
    }

    /// Code of type `bool` for an operand of `!`, `&&` or `||` (`op` as the message names it);
    /// a non-bool operand fails at `span`: the operand's for `&&`/`||`, the `!` node's for `!`,
    /// as in the evaluator.
    fn truth(&mut self, op: &str, node: &ExprNode, span: Span) -> TokenStream {
        match self.expr(node) {
            (code, Form::Bool) => code,
            other => {
                let value = reference(other);
                let at = at(span);
                quote!(ops::bool_operand(#op, #value).map_err(#at)?)
            }
        }
    }

    fn expr(&mut self, node: &ExprNode) -> (TokenStream, Form) {
        let at = at(node.span);
        match &node.kind {
            ExprKind::Literal(value) => (value_tokens(value), Form::Owned),
            ExprKind::List(items) => {
                let items: Vec<TokenStream> = items.iter().map(|i| self.owned(i)).collect();
                if items.is_empty() {
                    (quote!(Value::List(Vec::new())), Form::Owned)
                } else {
                    (quote!(Value::List(Vec::from([#(#items),*]))), Form::Owned)
                }
            }
            ExprKind::Var(name) => {
                if name == "item" && self.item_ctx {
                    self.uses_item = true;
                    (quote!(item), Form::Ref)
                } else if name == "sys" {
                    self.uses_run = true;
                    (quote!(run.sys()), Form::Ref)
                } else {
                    self.uses_run = true;
                    (quote!(rt::var(run, #name).map_err(#at)?), Form::Ref)
                }
            }
            ExprKind::Field {
                target,
                name,
                name_span,
            } => {
                let at = self::at(*name_span);
                match unbool(self.expr(target)) {
                    (t, Form::Ref) => (quote!(ops::field(#t, #name).map_err(#at)?), Form::Ref),
                    (t, Form::Owned) => (
                        quote!(ops::field(&#t, #name).map_err(#at)?.clone()),
                        Form::Owned,
                    ),
                    (t, Form::Try) => (
                        quote!(ops::field(&#t?, #name).map_err(#at)?.clone()),
                        Form::Owned,
                    ),
                    (_, Form::Bool) => unreachable!("unbool leaves no bool form"),
                }
            }
            ExprKind::Index { target, index } => {
                let (t, form) = unbool(self.expr(target));
                let i = self.borrowed(index);
                match form {
                    Form::Ref => (quote!(ops::index(#t, #i).map_err(#at)?), Form::Ref),
                    Form::Owned => (
                        quote!(ops::index(&#t, #i).map_err(#at)?.clone()),
                        Form::Owned,
                    ),
                    Form::Try => (
                        quote!(ops::index(&#t?, #i).map_err(#at)?.clone()),
                        Form::Owned,
                    ),
                    Form::Bool => unreachable!("unbool leaves no bool form"),
                }
            }
            ExprKind::Unary {
                op: UnaryOp::Not,
                operand,
            } => {
                // `!x` fails exactly when `x` is not a bool, at the `!`.
                let span = node.span;
                let inner = self.truth("!", operand, span);
                if is_negation(operand) {
                    // `!!x` reads badly (and clippy says so): negate the value instead.
                    let at = self::at(span);
                    (
                        quote!(ops::not(&Value::Bool(#inner)).map_err(#at)),
                        Form::Try,
                    )
                } else if is_compound(operand) {
                    (quote!(!(#inner)), Form::Bool)
                } else {
                    (quote!(!#inner), Form::Bool)
                }
            }
            ExprKind::Unary { op, operand } => {
                let f = match op {
                    UnaryOp::Not => quote!(ops::not),
                    UnaryOp::Neg => quote!(ops::neg),
                };
                let x = self.borrowed(operand);
                (quote!(#f(#x).map_err(#at)), Form::Try)
            }
            ExprKind::Binary {
                op: op @ (BinaryOp::And | BinaryOp::Or),
                lhs,
                rhs,
                ..
            } => {
                let symbol = op.symbol();
                let l = self.truth(symbol, lhs, lhs.span);
                let r = self.truth(symbol, rhs, rhs.span);
                let l = if is_compound(lhs) { quote!((#l)) } else { l };
                let r = if is_compound(rhs) { quote!((#r)) } else { r };
                let joint = if *op == BinaryOp::And {
                    quote!(&&)
                } else {
                    quote!(||)
                };
                (quote!(#l #joint #r), Form::Bool)
            }
            ExprKind::Binary {
                op: op @ (BinaryOp::Eq | BinaryOp::Ne),
                lhs,
                rhs,
                ..
            } if string_literal(lhs).is_some() || string_literal(rhs).is_some() => {
                // Comparing with a string literal needs no string value built: equality never
                // fails, and a literal has nothing to evaluate.
                let (text, other) = match string_literal(rhs) {
                    Some(text) => (text, lhs),
                    None => (string_literal(lhs).unwrap_or_default(), rhs),
                };
                let other = self.borrowed(other);
                let test = quote!(rt::is_str(#other, #text));
                let test = if *op == BinaryOp::Ne {
                    quote!(!#test)
                } else {
                    test
                };
                (test, Form::Bool)
            }
            ExprKind::Binary { op, lhs, rhs, .. } => {
                let f = format_ident!(
                    "{}",
                    match op {
                        BinaryOp::Eq => "eq",
                        BinaryOp::Ne => "ne",
                        BinaryOp::Lt => "lt",
                        BinaryOp::Le => "le",
                        BinaryOp::Gt => "gt",
                        BinaryOp::Ge => "ge",
                        BinaryOp::Add => "add",
                        BinaryOp::Sub => "sub",
                        BinaryOp::Mul => "mul",
                        BinaryOp::Div => "div",
                        BinaryOp::Rem => "rem",
                        // Handled above; kept total so a new operator fails to compile here.
                        BinaryOp::And | BinaryOp::Or => "binary",
                    }
                );
                let l = self.borrowed(lhs);
                let r = self.borrowed(rhs);
                (quote!(ops::#f(#l, #r).map_err(#at)), Form::Try)
            }
            ExprKind::Call { function, args, .. } => {
                let args: Vec<TokenStream> = args.iter().map(|a| self.borrowed(a)).collect();
                let call = match (function, args.as_slice()) {
                    (Function::Round, [x]) => quote!(ops::round(#x, None)),
                    (Function::Round, [x, digits]) => quote!(ops::round(#x, Some(#digits))),
                    (f, args) => {
                        let name = function_ident(*f);
                        quote!(ops::#name(#(#args),*))
                    }
                };
                (quote!(#call.map_err(#at)), Form::Try)
            }
        }
    }
}

/// Whether the code for `node` is a bare `a && b`, `a || b` or a negation, which needs
/// parentheses inside another boolean operator.
fn is_compound(node: &ExprNode) -> bool {
    matches!(
        &node.kind,
        ExprKind::Binary {
            op: BinaryOp::And | BinaryOp::Or,
            ..
        }
    ) || is_string_ne(node)
}

/// Whether the code for `node` starts with `!`.
fn is_negation(node: &ExprNode) -> bool {
    matches!(
        &node.kind,
        ExprKind::Unary {
            op: UnaryOp::Not,
            ..
        }
    ) || is_string_ne(node)
}

/// `x != 'text'`, generated as `!rt::is_str(x, "text")`.
fn is_string_ne(node: &ExprNode) -> bool {
    match &node.kind {
        ExprKind::Binary {
            op: BinaryOp::Ne,
            lhs,
            rhs,
            ..
        } => string_literal(lhs).is_some() || string_literal(rhs).is_some(),
        _ => false,
    }
}

/// Generated code of any form as code of type `&Value`.
fn reference((code, form): (TokenStream, Form)) -> TokenStream {
    match form {
        Form::Ref => code,
        Form::Owned => quote!(&#code),
        Form::Try => quote!(&#code?),
        Form::Bool => quote!(&Value::Bool(#code)),
    }
}

/// A `bool` form as a `Value`, for the few places that take a value apart.
fn unbool((code, form): (TokenStream, Form)) -> (TokenStream, Form) {
    match form {
        Form::Bool => (quote!(Value::Bool(#code)), Form::Owned),
        other => (code, other),
    }
}

fn string_literal(node: &ExprNode) -> Option<&str> {
    match &node.kind {
        ExprKind::Literal(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn function_ident(function: Function) -> proc_macro2::Ident {
    match function {
        Function::Where => format_ident!("r#where"),
        Function::StartsWith => format_ident!("starts_with"),
        Function::EndsWith => format_ident!("ends_with"),
        Function::IsEmpty => format_ident!("is_empty"),
        other => format_ident!("{}", other.name()),
    }
}

/// `rt::at(line, column)`: turns a builtin's message into a located one.
fn at(span: Span) -> TokenStream {
    let line = Literal::u32_unsuffixed(span.line);
    let column = Literal::u32_unsuffixed(span.column);
    quote!(rt::at(#line, #column))
}

/// A number literal that reads back as the same `f64`.
pub fn number(n: f64) -> TokenStream {
    let lit = Literal::f64_unsuffixed(n.abs());
    if n.is_sign_negative() {
        quote!(-#lit)
    } else {
        quote!(#lit)
    }
}

/// Code building `value`.
pub fn value_tokens(value: &Value) -> TokenStream {
    match value {
        Value::Null => quote!(Value::Null),
        Value::Bool(b) => quote!(Value::Bool(#b)),
        Value::Number(n) => {
            let n = number(*n);
            quote!(Value::Number(#n))
        }
        Value::String(s) => quote!(Value::String(String::from(#s))),
        Value::List(items) => {
            if items.is_empty() {
                return quote!(Value::List(Vec::new()));
            }
            let items = items.iter().map(value_tokens);
            quote!(Value::List(Vec::from([#(#items),*])))
        }
        Value::Map(map) => {
            let entries = map.iter().map(|(k, v)| {
                let v = value_tokens(v);
                quote!((String::from(#k), #v))
            });
            quote!(Value::Map(BTreeMap::from([#(#entries),*])))
        }
    }
}

/// Code building type `ty`.
pub fn type_tokens(ty: &Type) -> TokenStream {
    match ty {
        Type::Any => quote!(Type::Any),
        Type::Bool => quote!(Type::Bool),
        Type::Number => quote!(Type::Number),
        Type::String => quote!(Type::String),
        Type::Map => quote!(Type::Map),
        Type::List(elem) => {
            let elem = type_tokens(elem);
            quote!(Type::List(Box::new(#elem)))
        }
    }
}
