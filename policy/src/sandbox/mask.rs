//! Masking functions: what a department sees of a phone number, an email address, an id
//! number, an address or a name. They count characters, not bytes, so Chinese text is cut
//! between characters, and they never panic, whatever the length of the text.

use std::fmt;
use std::str::FromStr;

use flows::Value;

/// How a field is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MaskKind {
    /// `13812341234` → `138****1234`: the first 3 and last 4 characters stay.
    Phone,
    /// `wang.wei@example.com` → `w***@example.com`: the first character of the local part and
    /// the domain stay; three stars hide the length.
    Email,
    /// `110101199003071234` → `110***********1234`: the first 3 and last 4 characters stay.
    IdNumber,
    /// `北京市朝阳区建国路88号` → `北京市朝阳区****`: the start (province, city, district)
    /// stays: at most 6 characters and at most half of the text.
    Address,
    /// `张三丰` → `张**`: the first character stays.
    Name,
    /// `***` whatever the value.
    Redact,
}

impl MaskKind {
    pub const ALL: [MaskKind; 6] = [
        MaskKind::Phone,
        MaskKind::Email,
        MaskKind::IdNumber,
        MaskKind::Address,
        MaskKind::Name,
        MaskKind::Redact,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MaskKind::Phone => "phone",
            MaskKind::Email => "email",
            MaskKind::IdNumber => "id_number",
            MaskKind::Address => "address",
            MaskKind::Name => "name",
            MaskKind::Redact => "redact",
        }
    }

    /// Masks a text.
    pub fn mask_str(self, text: &str) -> String {
        match self {
            MaskKind::Phone | MaskKind::IdNumber => keep_ends(text, 3, 4),
            MaskKind::Email => mask_email(text),
            MaskKind::Address => mask_address(text),
            MaskKind::Name => keep_ends(text, 1, 0),
            MaskKind::Redact => REDACTED.to_owned(),
        }
    }

    /// Masks a value: strings as text, numbers by their text (a phone number stored as a
    /// number), lists element by element; `null` stays `null` (nothing to hide) and anything
    /// else becomes `***`.
    pub fn mask(self, value: &Value) -> Value {
        match value {
            Value::Null => Value::Null,
            Value::String(text) => Value::String(self.mask_str(text)),
            Value::Number(_) => Value::String(self.mask_str(&value.to_string())),
            Value::List(items) => Value::List(items.iter().map(|v| self.mask(v)).collect()),
            Value::Bool(_) | Value::Map(_) => Value::String(REDACTED.to_owned()),
        }
    }
}

const REDACTED: &str = "***";

/// Masks the fields of a record (a map of field values) in place, each as `masks` says; other
/// values are left as they are.
pub fn mask_fields(masks: &std::collections::BTreeMap<String, MaskKind>, record: &mut Value) {
    if let Value::Map(fields) = record {
        for (name, kind) in masks {
            if let Some(value) = fields.get_mut(name) {
                *value = kind.mask(value);
            }
        }
    }
}

impl FromStr for MaskKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        MaskKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                let names: Vec<String> = MaskKind::ALL
                    .iter()
                    .map(|k| format!("`{}`", k.name()))
                    .collect();
                format!("unknown mask `{text}`: the masks are {}", names.join(", "))
            })
    }
}

impl fmt::Display for MaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for MaskKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Keeps the first `front` and the last `back` characters and puts a star for each one in
/// between. Text too short for that keeps only its first character (and a single character
/// becomes a star), so a short value is never shown whole.
pub fn keep_ends(text: &str, front: usize, back: usize) -> String {
    let count = text.chars().count();
    if count > front + back {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                if i < front || i >= count - back {
                    c
                } else {
                    '*'
                }
            })
            .collect()
    } else {
        match count {
            0 => String::new(),
            1 => "*".to_owned(),
            _ => text
                .chars()
                .enumerate()
                .map(|(i, c)| if i == 0 { c } else { '*' })
                .collect(),
        }
    }
}

fn mask_email(text: &str) -> String {
    match text.rsplit_once('@') {
        Some((local, domain)) if !domain.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        _ => keep_ends(text, 1, 0),
    }
}

fn mask_address(text: &str) -> String {
    let count = text.chars().count();
    let keep = (count / 2).min(6);
    let start: String = text.chars().take(keep).collect();
    if count == 0 {
        String::new()
    } else {
        format!("{start}****")
    }
}
