//! The run-time behaviour of every operator and function, as plain functions on values.
//!
//! The evaluator calls these functions, and code generated from a flow calls the very same
//! ones, so the interpreter and compiled flows share one definition of every operation.
//! Each returns `Err(message)` for a value of the wrong kind; the caller adds the location.
//! The messages are written for the person who built the flow.

use std::cmp::Ordering;

use super::ast::{BinaryOp, UnaryOp};
use crate::value::{Value, format_number};

/// What the operations return: a value, or a message saying what went wrong.
pub type BuiltinResult = Result<Value, String>;

/// The value a missing field or an out-of-range index reads as.
pub static NULL: Value = Value::Null;

/// The functions of the language. A closed enum: the parser only builds calls to these, and
/// the checker, the evaluator and the code generator each handle every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    Len,
    Contains,
    Lower,
    Upper,
    Trim,
    StartsWith,
    EndsWith,
    Join,
    Split,
    First,
    Last,
    Round,
    Floor,
    Ceil,
    Abs,
    Min,
    Max,
    Number,
    String,
    IsEmpty,
    Sum,
    Pluck,
    Where,
    Default,
}

impl Function {
    pub const ALL: [Function; 24] = [
        Function::Len,
        Function::Contains,
        Function::Lower,
        Function::Upper,
        Function::Trim,
        Function::StartsWith,
        Function::EndsWith,
        Function::Join,
        Function::Split,
        Function::First,
        Function::Last,
        Function::Round,
        Function::Floor,
        Function::Ceil,
        Function::Abs,
        Function::Min,
        Function::Max,
        Function::Number,
        Function::String,
        Function::IsEmpty,
        Function::Sum,
        Function::Pluck,
        Function::Where,
        Function::Default,
    ];

    /// The name the function is called by in expressions.
    pub fn name(self) -> &'static str {
        match self {
            Function::Len => "len",
            Function::Contains => "contains",
            Function::Lower => "lower",
            Function::Upper => "upper",
            Function::Trim => "trim",
            Function::StartsWith => "starts_with",
            Function::EndsWith => "ends_with",
            Function::Join => "join",
            Function::Split => "split",
            Function::First => "first",
            Function::Last => "last",
            Function::Round => "round",
            Function::Floor => "floor",
            Function::Ceil => "ceil",
            Function::Abs => "abs",
            Function::Min => "min",
            Function::Max => "max",
            Function::Number => "number",
            Function::String => "string",
            Function::IsEmpty => "is_empty",
            Function::Sum => "sum",
            Function::Pluck => "pluck",
            Function::Where => "where",
            Function::Default => "default",
        }
    }

    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The fewest and the most arguments the function takes.
    pub fn arity(self) -> (usize, usize) {
        match self {
            Function::Len
            | Function::Lower
            | Function::Upper
            | Function::Trim
            | Function::First
            | Function::Last
            | Function::Floor
            | Function::Ceil
            | Function::Abs
            | Function::Number
            | Function::String
            | Function::IsEmpty
            | Function::Sum => (1, 1),
            Function::Round => (1, 2),
            Function::Contains
            | Function::StartsWith
            | Function::EndsWith
            | Function::Join
            | Function::Split
            | Function::Min
            | Function::Max
            | Function::Pluck
            | Function::Default => (2, 2),
            Function::Where => (3, 3),
        }
    }

    /// What the function's arguments are, in words, for error messages.
    pub fn parameters(self) -> &'static str {
        match self {
            Function::Len => "a string, a list or a map",
            Function::Contains => "a string, a list or a map, and the value to look for",
            Function::Lower | Function::Upper | Function::Trim => "a string",
            Function::StartsWith => "a string and the prefix to look for",
            Function::EndsWith => "a string and the suffix to look for",
            Function::Join => "a list and the separator to put between its elements",
            Function::Split => "a string and the separator to split it at",
            Function::First | Function::Last => "a list",
            Function::Round => "a number, and optionally how many digits to keep after the point",
            Function::Floor | Function::Ceil | Function::Abs => "a number",
            Function::Min | Function::Max => "two numbers",
            Function::Number => "a string or a number",
            Function::String => "any value",
            Function::IsEmpty => "a string, a list, a map or null",
            Function::Sum => "a list of numbers",
            Function::Pluck => "a list of maps and a field name",
            Function::Where => "a list of maps, a field name and the value the field must equal",
            Function::Default => "a value and the fallback to use when it is null or empty",
        }
    }

    /// The message for a call with `given` arguments when the function takes another number.
    pub fn arity_message(self, given: usize) -> String {
        let (min, max) = self.arity();
        let count = match (min, max) {
            (1, 1) => "1 argument".to_owned(),
            (a, b) if a == b => format!("{a} arguments"),
            (a, b) => format!("{a} or {b} arguments"),
        };
        format!(
            "`{}` takes {count} ({}), but {}",
            self.name(),
            self.parameters(),
            match given {
                0 => "got none".to_owned(),
                1 => "got 1".to_owned(),
                n => format!("got {n}"),
            }
        )
    }
}

/// Calls `function` with already evaluated arguments, checking their number.
pub fn call(function: Function, args: &[&Value]) -> BuiltinResult {
    let (fewest, most) = function.arity();
    if args.len() < fewest || args.len() > most {
        return Err(function.arity_message(args.len()));
    }
    let arg = |i: usize| args.get(i).copied().unwrap_or(&NULL);
    match function {
        Function::Len => len(arg(0)),
        Function::Contains => contains(arg(0), arg(1)),
        Function::Lower => lower(arg(0)),
        Function::Upper => upper(arg(0)),
        Function::Trim => trim(arg(0)),
        Function::StartsWith => starts_with(arg(0), arg(1)),
        Function::EndsWith => ends_with(arg(0), arg(1)),
        Function::Join => join(arg(0), arg(1)),
        Function::Split => split(arg(0), arg(1)),
        Function::First => first(arg(0)),
        Function::Last => last(arg(0)),
        Function::Round => round(arg(0), args.get(1).copied()),
        Function::Floor => floor(arg(0)),
        Function::Ceil => ceil(arg(0)),
        Function::Abs => abs(arg(0)),
        Function::Min => min(arg(0), arg(1)),
        Function::Max => max(arg(0), arg(1)),
        Function::Number => number(arg(0)),
        Function::String => string(arg(0)),
        Function::IsEmpty => is_empty(arg(0)),
        Function::Sum => sum(arg(0)),
        Function::Pluck => pluck(arg(0), arg(1)),
        Function::Where => r#where(arg(0), arg(1), arg(2)),
        Function::Default => default(arg(0), arg(1)),
    }
}

/// "a number", "a string", "null", … for messages.
pub fn kind_phrase(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
    }
}

// ---- Paths -------------------------------------------------------------------------------

/// `target.name`. A missing key, and any field of `null`, read as `null`.
pub fn field<'a>(target: &'a Value, name: &str) -> Result<&'a Value, String> {
    match target {
        Value::Null => Ok(&NULL),
        Value::Map(map) => Ok(map.get(name).unwrap_or(&NULL)),
        other => Err(format!(
            "cannot read `.{name}`: only maps have fields, but this is {}",
            kind_phrase(other)
        )),
    }
}

/// `target[index]`: a whole number from 0 into a list, a string key into a map. An index out
/// of range, negative or fractional, a missing key, and any index into `null`, read as `null`.
pub fn index<'a>(target: &'a Value, index: &Value) -> Result<&'a Value, String> {
    match (target, index) {
        (Value::Null, _) => Ok(&NULL),
        (Value::List(items), Value::Number(n)) => Ok(list_index(*n, items.len())
            .and_then(|i| items.get(i))
            .unwrap_or(&NULL)),
        (Value::List(_), other) => Err(format!(
            "a list is indexed by a number, but the index is {}",
            kind_phrase(other)
        )),
        (Value::Map(map), Value::String(key)) => Ok(map.get(key).unwrap_or(&NULL)),
        (Value::Map(_), other) => Err(format!(
            "a map is indexed by a string key, but the key is {}",
            kind_phrase(other)
        )),
        (other, _) => Err(format!(
            "`[ ]` needs a list or a map, but this is {}",
            kind_phrase(other)
        )),
    }
}

/// The position `n` names in a list of `len` elements, if it names one.
fn list_index(n: f64, len: usize) -> Option<usize> {
    if n >= 0.0 && n.fract() == 0.0 && n < len as f64 {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked to be a whole number in 0..len"
        )]
        Some(n as usize)
    } else {
        None
    }
}

// ---- Operators ---------------------------------------------------------------------------

/// The operand of `!`, `&&` or `||` (`op` is the operator as written, for the message).
/// The evaluator short-circuits: the right side of `&&`/`||` is read only when needed.
pub fn bool_operand(op: &str, value: &Value) -> Result<bool, String> {
    value.as_bool().ok_or_else(|| {
        format!(
            "`{op}` needs true or false, but found {}",
            kind_phrase(value)
        )
    })
}

pub fn unary(op: UnaryOp, operand: &Value) -> BuiltinResult {
    match op {
        UnaryOp::Not => not(operand),
        UnaryOp::Neg => neg(operand),
    }
}

/// Every binary operator. `&&` and `||` here evaluate strictly (both sides already computed);
/// the evaluator and generated code short-circuit them with [`bool_operand`] instead.
pub fn binary(op: BinaryOp, a: &Value, b: &Value) -> BuiltinResult {
    match op {
        BinaryOp::Or => Ok(Value::Bool(bool_operand("||", a)? | bool_operand("||", b)?)),
        BinaryOp::And => Ok(Value::Bool(bool_operand("&&", a)? & bool_operand("&&", b)?)),
        BinaryOp::Eq => eq(a, b),
        BinaryOp::Ne => ne(a, b),
        BinaryOp::Lt => lt(a, b),
        BinaryOp::Le => le(a, b),
        BinaryOp::Gt => gt(a, b),
        BinaryOp::Ge => ge(a, b),
        BinaryOp::Add => add(a, b),
        BinaryOp::Sub => sub(a, b),
        BinaryOp::Mul => mul(a, b),
        BinaryOp::Div => div(a, b),
        BinaryOp::Rem => rem(a, b),
    }
}

pub fn not(operand: &Value) -> BuiltinResult {
    Ok(Value::Bool(!bool_operand("!", operand)?))
}

pub fn neg(operand: &Value) -> BuiltinResult {
    match operand {
        Value::Number(n) => Ok(Value::Number(-n)),
        other => Err(format!(
            "`-` needs a number, but found {}",
            kind_phrase(other)
        )),
    }
}

/// Deep structural equality: same kind and same contents. Numbers compare with `==` on `f64`
/// (so `NaN` equals nothing and `-0 == 0`); map keys and values must all be equal.
pub fn equals(a: &Value, b: &Value) -> bool {
    a == b
}

pub fn eq(a: &Value, b: &Value) -> BuiltinResult {
    Ok(Value::Bool(equals(a, b)))
}

pub fn ne(a: &Value, b: &Value) -> BuiltinResult {
    Ok(Value::Bool(!equals(a, b)))
}

/// Orders two numbers or two strings (strings by Unicode scalar values). `None` when a number
/// is `NaN`, so that every ordering comparison with `NaN` is false.
fn order(op: &str, a: &Value, b: &Value) -> Result<Option<Ordering>, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Ok(x.partial_cmp(y)),
        // UTF-8 byte order is Unicode scalar value order.
        (Value::String(x), Value::String(y)) => Ok(Some(x.as_str().cmp(y.as_str()))),
        _ => Err(format!(
            "`{op}` compares two numbers or two strings, but found {} and {}",
            kind_phrase(a),
            kind_phrase(b)
        )),
    }
}

pub fn lt(a: &Value, b: &Value) -> BuiltinResult {
    Ok(Value::Bool(order("<", a, b)? == Some(Ordering::Less)))
}

pub fn le(a: &Value, b: &Value) -> BuiltinResult {
    Ok(Value::Bool(matches!(
        order("<=", a, b)?,
        Some(Ordering::Less | Ordering::Equal)
    )))
}

pub fn gt(a: &Value, b: &Value) -> BuiltinResult {
    Ok(Value::Bool(order(">", a, b)? == Some(Ordering::Greater)))
}

pub fn ge(a: &Value, b: &Value) -> BuiltinResult {
    Ok(Value::Bool(matches!(
        order(">=", a, b)?,
        Some(Ordering::Greater | Ordering::Equal)
    )))
}

/// Adds numbers, concatenates strings, concatenates lists.
pub fn add(a: &Value, b: &Value) -> BuiltinResult {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => finite("+", x + y),
        (Value::String(x), Value::String(y)) => Ok(Value::String(format!("{x}{y}"))),
        (Value::List(x), Value::List(y)) => Ok(Value::List(x.iter().chain(y).cloned().collect())),
        _ => Err(format!(
            "`+` needs two numbers, two strings or two lists, but found {} and {}",
            kind_phrase(a),
            kind_phrase(b)
        )),
    }
}

fn numbers(op: &str, a: &Value, b: &Value) -> Result<(f64, f64), String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Ok((*x, *y)),
        _ => Err(format!(
            "`{op}` needs two numbers, but found {} and {}",
            kind_phrase(a),
            kind_phrase(b)
        )),
    }
}

pub fn sub(a: &Value, b: &Value) -> BuiltinResult {
    let (x, y) = numbers("-", a, b)?;
    finite("-", x - y)
}

pub fn mul(a: &Value, b: &Value) -> BuiltinResult {
    let (x, y) = numbers("*", a, b)?;
    finite("*", x * y)
}

pub fn div(a: &Value, b: &Value) -> BuiltinResult {
    let (x, y) = numbers("/", a, b)?;
    if y == 0.0 {
        return Err("division by zero".to_owned());
    }
    finite("/", x / y)
}

/// Arithmetic never yields infinity or NaN: a result too large for a number is an error, so
/// every value a flow holds can be stored as JSON and read back the same.
fn finite(op: &str, n: f64) -> BuiltinResult {
    if n.is_finite() {
        Ok(Value::Number(n))
    } else {
        Err(format!("the result of `{op}` is too large to be a number"))
    }
}

/// The remainder of `x / y` with the sign of `x` (Rust's `%` on `f64`).
pub fn rem(a: &Value, b: &Value) -> BuiltinResult {
    let (x, y) = numbers("%", a, b)?;
    if y == 0.0 {
        return Err("division by zero".to_owned());
    }
    Ok(Value::Number(x % y))
}

// ---- Functions ---------------------------------------------------------------------------

fn string_arg<'a>(function: &str, position: &str, value: &'a Value) -> Result<&'a str, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(format!(
            "`{function}` needs a string{position}, but found {}",
            kind_phrase(other)
        )),
    }
}

fn number_arg(function: &str, position: &str, value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(n) => Ok(*n),
        other => Err(format!(
            "`{function}` needs a number{position}, but found {}",
            kind_phrase(other)
        )),
    }
}

fn list_arg<'a>(function: &str, value: &'a Value) -> Result<&'a [Value], String> {
    match value {
        Value::List(items) => Ok(items),
        other => Err(format!(
            "`{function}` needs a list, but found {}",
            kind_phrase(other)
        )),
    }
}

const FIRST: &str = "";
const SECOND: &str = " as its second argument";

/// The number of characters of a string, or of elements of a list or a map.
pub fn len(value: &Value) -> BuiltinResult {
    let n = match value {
        Value::String(s) => s.chars().count(),
        Value::List(items) => items.len(),
        Value::Map(map) => map.len(),
        other => {
            return Err(format!(
                "`len` needs a string, a list or a map, but found {}",
                kind_phrase(other)
            ));
        }
    };
    Ok(Value::Number(n as f64))
}

/// Substring of a string, element of a list (deep equality), key of a map.
pub fn contains(haystack: &Value, needle: &Value) -> BuiltinResult {
    let found = match (haystack, needle) {
        (Value::String(s), Value::String(part)) => s.contains(part.as_str()),
        (Value::String(_), other) => {
            return Err(format!(
                "`contains` looks for a string inside a string, but found {}",
                kind_phrase(other)
            ));
        }
        (Value::List(items), _) => items.iter().any(|item| equals(item, needle)),
        (Value::Map(map), Value::String(key)) => map.contains_key(key),
        (Value::Map(_), other) => {
            return Err(format!(
                "`contains` looks for a key (a string) in a map, but found {}",
                kind_phrase(other)
            ));
        }
        (other, _) => {
            return Err(format!(
                "`contains` needs a string, a list or a map, but found {}",
                kind_phrase(other)
            ));
        }
    };
    Ok(Value::Bool(found))
}

/// Lower case, by Unicode rules.
pub fn lower(value: &Value) -> BuiltinResult {
    Ok(Value::String(
        string_arg("lower", FIRST, value)?.to_lowercase(),
    ))
}

/// Upper case, by Unicode rules.
pub fn upper(value: &Value) -> BuiltinResult {
    Ok(Value::String(
        string_arg("upper", FIRST, value)?.to_uppercase(),
    ))
}

/// Without leading and trailing Unicode white space.
pub fn trim(value: &Value) -> BuiltinResult {
    Ok(Value::String(
        string_arg("trim", FIRST, value)?.trim().to_owned(),
    ))
}

pub fn starts_with(value: &Value, prefix: &Value) -> BuiltinResult {
    let s = string_arg("starts_with", FIRST, value)?;
    let prefix = string_arg("starts_with", SECOND, prefix)?;
    Ok(Value::Bool(s.starts_with(prefix)))
}

pub fn ends_with(value: &Value, suffix: &Value) -> BuiltinResult {
    let s = string_arg("ends_with", FIRST, value)?;
    let suffix = string_arg("ends_with", SECOND, suffix)?;
    Ok(Value::Bool(s.ends_with(suffix)))
}

/// The elements as templates print them, with `separator` between them.
pub fn join(list: &Value, separator: &Value) -> BuiltinResult {
    let items = list_arg("join", list)?;
    let separator = string_arg("join", SECOND, separator)?;
    let parts: Vec<String> = items.iter().map(Value::to_string).collect();
    Ok(Value::String(parts.join(separator)))
}

/// The pieces between occurrences of `separator`; an empty separator splits into characters.
pub fn split(value: &Value, separator: &Value) -> BuiltinResult {
    let s = string_arg("split", FIRST, value)?;
    let separator = string_arg("split", SECOND, separator)?;
    let parts: Vec<Value> = if separator.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(separator)
            .map(|part| Value::String(part.to_owned()))
            .collect()
    };
    Ok(Value::List(parts))
}

/// The first element, or `null` for an empty list.
pub fn first(list: &Value) -> BuiltinResult {
    Ok(list_arg("first", list)?
        .first()
        .cloned()
        .unwrap_or(Value::Null))
}

/// The last element, or `null` for an empty list.
pub fn last(list: &Value) -> BuiltinResult {
    Ok(list_arg("last", list)?
        .last()
        .cloned()
        .unwrap_or(Value::Null))
}

/// The most digits `round` keeps after the decimal point.
pub const MAX_ROUND_DIGITS: u32 = 15;

/// Rounds half away from zero, to a whole number or to `digits` digits after the point.
/// Rounding looks at the number as it prints (`round(1.005, 2)` is `1.01`), not at the
/// nearest binary fraction, which is what a person checking the result by eye expects.
pub fn round(value: &Value, digits: Option<&Value>) -> BuiltinResult {
    let x = number_arg("round", FIRST, value)?;
    let digits = match digits {
        None => 0,
        Some(d) => {
            let d = number_arg("round", " of digits as its second argument", d)?;
            if d.fract() != 0.0 || !(0.0..=f64::from(MAX_ROUND_DIGITS)).contains(&d) {
                return Err(format!(
                    "`round` keeps a whole number of digits from 0 to {MAX_ROUND_DIGITS}, but was asked for {}",
                    format_number(d)
                ));
            }
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked to be a whole number in 0..=15"
            )]
            let d = d as u32;
            d
        }
    };
    Ok(Value::Number(round_decimal(x, digits)))
}

/// Rounds the shortest decimal form of `x` half away from zero at `digits` digits after the
/// point.
fn round_decimal(x: f64, digits: u32) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    // `{:e}` prints the shortest digits that read back as `x`: "1.005e0", "1e-7", "1.2e20".
    let text = format!("{:e}", x.abs());
    let Some((mantissa, exponent)) = text.split_once('e') else {
        return x;
    };
    let Ok(exponent) = exponent.parse::<i64>() else {
        return x;
    };
    let mantissa: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    // The value is 0.DDDD × 10^(exponent + 1); keep the digits worth at least 10^-digits.
    let keep = exponent + i64::from(digits) + 1;
    let Ok(keep) = usize::try_from(keep) else {
        return 0.0_f64.copysign(x);
    };
    if keep >= mantissa.len() {
        return x;
    }
    let mut kept = mantissa[..keep].to_vec();
    if mantissa[keep] >= b'5' {
        // Add one unit in the last kept place, carrying through nines.
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, b'1');
                break;
            }
            i -= 1;
            if kept[i] == b'9' {
                kept[i] = b'0';
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    if kept.is_empty() {
        kept.push(b'0');
    }
    let kept = String::from_utf8(kept).unwrap_or_default();
    format!("{kept}e-{digits}")
        .parse::<f64>()
        .map_or(x, |rounded| rounded.copysign(x))
}

pub fn floor(value: &Value) -> BuiltinResult {
    Ok(Value::Number(number_arg("floor", FIRST, value)?.floor()))
}

pub fn ceil(value: &Value) -> BuiltinResult {
    Ok(Value::Number(number_arg("ceil", FIRST, value)?.ceil()))
}

pub fn abs(value: &Value) -> BuiltinResult {
    Ok(Value::Number(number_arg("abs", FIRST, value)?.abs()))
}

/// The smaller number; if one of them is `NaN`, the other.
pub fn min(a: &Value, b: &Value) -> BuiltinResult {
    let x = number_arg("min", FIRST, a)?;
    let y = number_arg("min", SECOND, b)?;
    Ok(Value::Number(x.min(y)))
}

/// The larger number; if one of them is `NaN`, the other.
pub fn max(a: &Value, b: &Value) -> BuiltinResult {
    let x = number_arg("max", FIRST, a)?;
    let y = number_arg("max", SECOND, b)?;
    Ok(Value::Number(x.max(y)))
}

/// A number unchanged, or a string read as a number after trimming white space: an optional
/// sign, digits with an optional decimal point, an optional exponent (`1e3`).
pub fn number(value: &Value) -> BuiltinResult {
    match value {
        Value::Number(n) => Ok(Value::Number(*n)),
        Value::String(s) => parse_number(s.trim())
            .map(Value::Number)
            .ok_or_else(|| format!("`number` cannot read {s:?} as a number")),
        other => Err(format!(
            "`number` needs a string or a number, but found {}",
            kind_phrase(other)
        )),
    }
}

/// `[+-]? (digits ("." digits?)? | "." digits) ([eE] [+-]? digits)?`, finite.
fn parse_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let digits = |mut i: usize| {
        let from = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i, i - from)
    };
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let (after_int, int_digits) = digits(i);
    i = after_int;
    let mut frac_digits = 0;
    if bytes.get(i) == Some(&b'.') {
        (i, frac_digits) = digits(i + 1);
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let (after_exp, exp_digits) = digits(i);
        if exp_digits == 0 {
            return None;
        }
        i = after_exp;
    }
    if i != bytes.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// The value as templates print it.
pub fn string(value: &Value) -> BuiltinResult {
    Ok(Value::String(value.to_string()))
}

/// `null`, `""`, `[]` and `{}` are empty.
pub fn is_empty(value: &Value) -> BuiltinResult {
    let empty = match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::List(items) => items.is_empty(),
        Value::Map(map) => map.is_empty(),
        other => {
            return Err(format!(
                "`is_empty` needs a string, a list, a map or null, but found {}",
                kind_phrase(other)
            ));
        }
    };
    Ok(Value::Bool(empty))
}

/// The sum of a list of numbers, added from first to last; 0 for an empty list.
pub fn sum(list: &Value) -> BuiltinResult {
    let mut total = 0.0;
    for (i, item) in list_arg("sum", list)?.iter().enumerate() {
        match item {
            Value::Number(n) => total += n,
            other => {
                return Err(format!(
                    "`sum` needs a list of numbers, but element {} is {}",
                    i + 1,
                    kind_phrase(other)
                ));
            }
        }
    }
    finite("sum", total)
}

/// The field `name` of every element: `null` where an element is not a map or lacks it.
pub fn pluck(list: &Value, name: &Value) -> BuiltinResult {
    let items = list_arg("pluck", list)?;
    let name = string_arg("pluck", " (the field name) as its second argument", name)?;
    Ok(Value::List(
        items
            .iter()
            .map(|item| match item {
                Value::Map(map) => map.get(name).cloned().unwrap_or(Value::Null),
                _ => Value::Null,
            })
            .collect(),
    ))
}

/// The elements that are maps whose field `name` equals `value` (deep equality; a missing
/// field reads as `null`).
pub fn r#where(list: &Value, name: &Value, value: &Value) -> BuiltinResult {
    let items = list_arg("where", list)?;
    let name = string_arg("where", " (the field name) as its second argument", name)?;
    Ok(Value::List(
        items
            .iter()
            .filter(|item| match item {
                Value::Map(map) => equals(map.get(name).unwrap_or(&NULL), value),
                _ => false,
            })
            .cloned()
            .collect(),
    ))
}

/// `value`, unless it is `null` or the empty string: then `fallback`.
pub fn default(value: &Value, fallback: &Value) -> BuiltinResult {
    Ok(match value {
        Value::Null => fallback.clone(),
        Value::String(s) if s.is_empty() => fallback.clone(),
        other => other.clone(),
    })
}
