//! Runtime values and their static types: what variables hold and what expressions produce.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value held by a flow variable or produced by an expression.
///
/// Maps are ordered (`BTreeMap`) so that serialization, display and comparison are
/// deterministic: the interpreter, the browser preview and generated code must agree byte for byte.
/// In JSON a value is the natural JSON value (`null`, `true`, `1.5`, `"text"`, `[..]`, `{..}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(untagged)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// The type this value has at run time (`Any` for `null`, element type `Any` for mixed lists).
    pub fn type_of(&self) -> Type {
        match self {
            Value::Null => Type::Any,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::List(items) => {
                let mut elem: Option<Type> = None;
                for item in items {
                    let t = item.type_of();
                    elem = Some(match elem {
                        None => t,
                        Some(e) if e == t => e,
                        Some(_) => Type::Any,
                    });
                }
                Type::List(Box::new(elem.unwrap_or(Type::Any)))
            }
            Value::Map(_) => Type::Map,
        }
    }

    /// Whether this value may be stored in a variable declared with type `ty`.
    /// `null` fits every type (an unset lookup field, for instance).
    pub fn fits(&self, ty: &Type) -> bool {
        match (self, ty) {
            (_, Type::Any) | (Value::Null, _) => true,
            (Value::Bool(_), Type::Bool)
            | (Value::Number(_), Type::Number)
            | (Value::String(_), Type::String)
            | (Value::Map(_), Type::Map) => true,
            (Value::List(items), Type::List(elem)) => items.iter().all(|v| v.fits(elem)),
            _ => false,
        }
    }

    /// The value a declared variable holds before anything assigns it.
    pub fn zero(ty: &Type) -> Value {
        match ty {
            Type::Any => Value::Null,
            Type::Bool => Value::Bool(false),
            Type::Number => Value::Number(0.0),
            Type::String => Value::String(String::new()),
            Type::List(_) => Value::List(Vec::new()),
            Type::Map => Value::Map(BTreeMap::new()),
        }
    }

    /// Truthiness is deliberately not defined: conditions must be `bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// Converts from JSON. Numbers become `f64`; this is the only numeric type of the language.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// Reads the natural JSON form directly. (A derived `untagged` impl would buffer every value
/// and try each variant in turn, which made reading a stored session about 20 times slower.)
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "the language has one number type, f64, as JSON does"
    )]
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "the language has one number type, f64, as JSON does"
    )]
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Number(n))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = BTreeMap::new();
        while let Some((key, value)) = access.next_entry::<String, Value>()? {
            map.insert(key, value);
        }
        Ok(Value::Map(map))
    }
}

/// Display is what templates print: strings without quotes, whole numbers without a
/// fraction (`3`, not `3.0`), lists joined with ", ", `null` as the empty string.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{}", format_number(*n)),
            Value::String(s) => f.write_str(s),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
            Value::Map(_) => {
                // Maps print as compact JSON (templates rarely print whole maps), with numbers
                // written the way everything else prints them (`20`, not `20.0`).
                let mut out = String::new();
                write_json(self, &mut out);
                f.write_str(&out)
            }
        }
    }
}

/// Compact JSON with people's numbers; non-finite numbers become `null` as in JSON.
fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_finite() => out.push_str(&format_number(*n)),
        Value::Number(_) => out.push_str("null"),
        Value::String(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                write_json(v, out);
            }
            out.push('}');
        }
    }
}

/// Formats a number the way a person writes it: `3`, `2.5`, `-0.125`.
/// Non-finite numbers (which arithmetic can produce) print as `NaN`, `inf`, `-inf`.
pub fn format_number(n: f64) -> String {
    // 2^53: beyond this, f64 cannot hold every integer, so print it as a float.
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "checked to be a whole number in range"
        )]
        let whole = n as i64;
        format!("{whole}")
    } else {
        format!("{n}")
    }
}

/// The static type of a variable or an expression.
///
/// Written in flow files as `"string"`, `"number"`, `"bool"`, `"map"`, `"any"`, `"list"` (a list of
/// anything) or `"list<T>"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    /// Unknown until run time: fields of maps, lookup rows. Checked when the value is used.
    Any,
    Bool,
    Number,
    String,
    List(Box<Type>),
    Map,
}

impl Type {
    /// Whether a value of type `self` may be used where `expected` is required.
    /// `Any` is compatible in both directions and is checked at run time.
    pub fn compatible(&self, expected: &Type) -> bool {
        match (self, expected) {
            (Type::Any, _) | (_, Type::Any) => true,
            (Type::List(a), Type::List(b)) => a.compatible(b),
            (a, b) => a == b,
        }
    }

    pub fn parse(text: &str) -> Option<Type> {
        Type::parse_nested(text, 0)
    }

    /// Nesting deeper than this is refused, so an untrusted file cannot exhaust the stack.
    pub const MAX_NESTING: usize = 8;

    fn parse_nested(text: &str, depth: usize) -> Option<Type> {
        if depth > Type::MAX_NESTING {
            return None;
        }
        let text = text.trim();
        Some(match text {
            "any" => Type::Any,
            "bool" => Type::Bool,
            "number" => Type::Number,
            "string" => Type::String,
            "map" => Type::Map,
            "list" => Type::List(Box::new(Type::Any)),
            _ => {
                let inner = text.strip_prefix("list<")?.strip_suffix('>')?;
                Type::List(Box::new(Type::parse_nested(inner, depth + 1)?))
            }
        })
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Any => f.write_str("any"),
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Map => f.write_str("map"),
            Type::List(inner) => write!(f, "list<{inner}>"),
        }
    }
}

impl Serialize for Type {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Type {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Type::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown type `{text}`: expected string, number, bool, map, any, list or list<T>"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_through_text() {
        for text in [
            "any",
            "bool",
            "number",
            "string",
            "map",
            "list<any>",
            "list<list<map>>",
        ] {
            let ty = Type::parse(text).unwrap();
            assert_eq!(ty.to_string(), text);
        }
        assert_eq!(Type::parse("list"), Some(Type::List(Box::new(Type::Any))));
        assert_eq!(Type::parse("lst<string>"), None);
        assert_eq!(Type::parse("list<strin>"), None);
        let deep = format!("{}string{}", "list<".repeat(100_000), ">".repeat(100_000));
        assert_eq!(Type::parse(&deep), None);
    }

    #[test]
    fn numbers_print_like_people_write_them() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(-2.5), "-2.5");
        assert_eq!(format_number(1e20), "100000000000000000000");
        assert_eq!(
            Value::List(vec![
                Value::Number(1.0),
                Value::from_json(&serde_json::json!("a"))
            ])
            .to_string(),
            "1, a"
        );
    }

    #[test]
    fn values_read_from_json_like_from_json_trees() {
        let text =
            r#"{"a": [1, 2.5, -3, "x", null, true], "b": {"c": {}}, "big": 18446744073709551615}"#;
        let direct: Value = serde_json::from_str(text).unwrap();
        let tree: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(direct, Value::from_json(&tree));
        assert_eq!(
            serde_json::to_string(&direct).unwrap(),
            r#"{"a":[1.0,2.5,-3.0,"x",null,true],"b":{"c":{}},"big":1.8446744073709552e+19}"#
        );
        assert!(serde_json::from_str::<Value>("[1, ]").is_err());
    }

    #[test]
    fn values_fit_declared_types() {
        let list = Value::from_json(&serde_json::json!(["a", "b"]));
        assert!(list.fits(&Type::List(Box::new(Type::String))));
        assert!(!list.fits(&Type::List(Box::new(Type::Number))));
        assert!(Value::Null.fits(&Type::Number));
        assert!(!Value::Bool(true).fits(&Type::String));
    }
}
