//! Pure helpers behind the engine's semantics, public so that generated code calls the very
//! same functions as the interpreter: answer validation, button matching, A/B buckets, the
//! `sys` variables and product cards.

use std::collections::BTreeMap;

use regex::Regex;

use super::{Card, Millis, Offered, Output, Session};
use crate::model::{InputType, Validation};
use crate::value::Value;

/// Checks a typed answer and returns the value to store, or `None` if it is not acceptable.
/// `pattern` is `validation.pattern`, compiled once by the caller.
pub fn validate_answer(
    input_type: InputType,
    validation: &Validation,
    pattern: Option<&Regex>,
    text: &str,
) -> Option<Value> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let length = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    if validation.min_length.is_some_and(|min| length < min)
        || validation.max_length.is_some_and(|max| length > max)
    {
        return None;
    }
    let value = match input_type {
        InputType::Text => Value::String(text.to_owned()),
        InputType::Number => {
            let n = parse_number(text)?;
            if validation.min.is_some_and(|min| n < min)
                || validation.max.is_some_and(|max| n > max)
            {
                return None;
            }
            Value::Number(n)
        }
        InputType::Email => {
            let (local, domain) = text.split_once('@')?;
            let ok = !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.chars().any(char::is_whitespace);
            if !ok {
                return None;
            }
            Value::String(text.to_owned())
        }
        InputType::Phone => {
            // Spaces, dashes, dots and brackets are how people group digits; drop them.
            let compact: String = text
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
                .collect();
            let digits = compact.strip_prefix('+').unwrap_or(&compact);
            if !(7..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            Value::String(compact)
        }
        InputType::Date => Value::String(parse_date(text)?),
    };
    if let Some(pattern) = pattern {
        let shown = match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !pattern.is_match(&shown) {
            return None;
        }
    }
    Some(value)
}

/// Parses a number as a visitor types it: `42`, `3.5`, `1,299` (thousands separators), and
/// full-width digits (`１２３`).
pub fn parse_number(text: &str) -> Option<f64> {
    let normal: String = text
        .chars()
        .filter(|c| *c != ',' && *c != '，')
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '．' => '.',
            other => other,
        })
        .collect();
    let n: f64 = normal.parse().ok()?;
    n.is_finite().then_some(n)
}

/// Accepts `YYYY-MM-DD`, `YYYY/MM/DD` and `YYYY.MM.DD` for a real calendar date and returns it
/// as `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<String> {
    let mut parts = text.split(['-', '/', '.']);
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=9999).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (1..=days_in_month)
        .contains(&day)
        .then(|| format!("{year:04}-{month:02}-{day:02}"))
}

/// Which offered button a typed answer means: the option's id or label (ignoring case and
/// surrounding whitespace) or its 1-based number.
pub fn match_choice<'a>(
    ids_and_labels: impl Iterator<Item = (&'a str, &'a str)>,
    text: &str,
) -> Option<usize> {
    let text = text.trim().to_lowercase();
    let number: Option<usize> = text.parse().ok();
    ids_and_labels
        .enumerate()
        .find(|(i, (id, label))| {
            number == Some(i + 1)
                || id.to_lowercase() == text
                || label.trim().to_lowercase() == text
        })
        .map(|(i, _)| i)
}

/// The A/B bucket of a session at a split node: FNV-1a (64 bit) of `session_id`, a `:` and the
/// node id, modulo the total weight. Stable across platforms, builds and restarts.
pub fn ab_bucket(session_id: &str, node: &str, total_weight: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in session_id
        .bytes()
        .chain(std::iter::once(b':'))
        .chain(node.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    u32::try_from(hash % u64::from(total_weight.max(1))).unwrap_or(0)
}

/// The civil date and time at `now` for a visitor `tz_offset_minutes` from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    /// ISO weekday: Monday = 1 … Sunday = 7.
    pub weekday: u32,
}

pub fn civil(now: Millis, tz_offset_minutes: i32) -> Civil {
    let local_minutes = now.div_euclid(60_000) + i64::from(tz_offset_minutes);
    let days = local_minutes.div_euclid(1440);
    let minute_of_day = local_minutes.rem_euclid(1440);
    // Days-to-civil conversion (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // 1970-01-01 was a Thursday (ISO weekday 4).
    let weekday = (days + 3).rem_euclid(7) + 1;
    let small = |v: i64| u32::try_from(v).unwrap_or(0);
    Civil {
        year,
        month: small(month),
        day: small(day),
        hour: small(minute_of_day / 60),
        minute: small(minute_of_day % 60),
        weekday: small(weekday),
    }
}

/// The value of the built-in `sys` variable during a step.
pub fn sys_value(session: &Session) -> Value {
    let c = civil(session.now, session.tz_offset_minutes);
    let mut map = BTreeMap::new();
    let mut put = |k: &str, v: Value| {
        map.insert(k.to_owned(), v);
    };
    put("session_id", Value::String(session.session_id.clone()));
    put("locale", Value::String(session.locale.clone()));
    put("channel", Value::String(session.channel.clone()));
    #[allow(
        clippy::cast_precision_loss,
        reason = "milliseconds fit f64 exactly until year 287396"
    )]
    put("now", Value::Number(session.now as f64));
    put("hour", Value::Number(f64::from(c.hour)));
    put("minute", Value::Number(f64::from(c.minute)));
    put("weekday", Value::Number(f64::from(c.weekday)));
    put(
        "date",
        Value::String(format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)),
    );
    Value::Map(map)
}

/// The fields of `sys`, for type-checking: all of them are strings or numbers.
pub const SYS_FIELDS: &[(&str, &str)] = &[
    ("session_id", "string"),
    ("locale", "string"),
    ("channel", "string"),
    ("now", "number"),
    ("hour", "number"),
    ("minute", "number"),
    ("weekday", "number"),
    ("date", "string"),
];

/// A product card from a row: fields `id`, `name` (or `title`), `description`, `price`,
/// `image`, `url`. Rows that are not maps are skipped.
pub fn card_from(value: &Value) -> Option<Card> {
    let Value::Map(map) = value else { return None };
    let text = |k: &str| match map.get(k) {
        Some(Value::Null) | None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    Some(Card {
        id: text("id"),
        title: text("name").or_else(|| text("title")).unwrap_or_default(),
        subtitle: text("description"),
        price: map.get("price").and_then(Value::as_number),
        image: text("image"),
        url: text("url"),
    })
}

/// Product cards from the value of a `products` part's `from` expression: one card per row that
/// is a map, at most `limit`.
pub fn products(list: &Value, limit: Option<u32>) -> Result<Output, String> {
    let Value::List(rows) = list else {
        return Err(format!(
            "product cards need a list, but got a {}",
            list.kind_name()
        ));
    };
    let limit = limit.map_or(usize::MAX, |l| l as usize);
    Ok(Output::Products {
        cards: rows.iter().filter_map(card_from).take(limit).collect(),
    })
}

/// The elements a choice built from a list offers: at most `limit` (default 10).
pub fn option_items(list: &Value, limit: Option<u32>) -> Result<&[Value], String> {
    let Value::List(items) = list else {
        return Err(format!(
            "the options need a list, but got a {}",
            list.kind_name()
        ));
    };
    let limit = limit.unwrap_or(10) as usize;
    Ok(&items[..items.len().min(limit)])
}

/// A choice must offer at least one option.
pub fn some_options(offered: &[Offered]) -> Result<(), String> {
    if offered.is_empty() {
        Err("there are no options to offer: the list is empty".into())
    } else {
        Ok(())
    }
}

/// Whether the condition of branch `branch` holds, given what its expression gave.
pub fn branch_taken(branch: &str, value: Result<Value, String>) -> Result<bool, String> {
    match value.map_err(|message| format!("branch `{branch}`: {message}"))? {
        Value::Bool(b) => Ok(b),
        other => Err(format!(
            "the condition of branch `{branch}` gave a {} instead of true or false",
            other.kind_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_matches_known_dates() {
        // 2026-11-26T23:16:00Z is a Thursday; in UTC+8 it is Friday 07:16 on the 27th.
        let now = 1_795_734_960_000;
        assert_eq!(
            civil(now, 0),
            Civil {
                year: 2026,
                month: 11,
                day: 26,
                hour: 23,
                minute: 16,
                weekday: 4
            }
        );
        assert_eq!(
            civil(now, 480),
            Civil {
                year: 2026,
                month: 11,
                day: 27,
                hour: 7,
                minute: 16,
                weekday: 5
            }
        );
        assert_eq!(
            civil(0, 0),
            Civil {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                weekday: 4
            }
        );
        assert_eq!(civil(-60_000, 0).day, 31);
        // 2024-02-29 (a leap day) at noon UTC.
        assert_eq!(
            civil(1_709_208_000_000, 0),
            Civil {
                year: 2024,
                month: 2,
                day: 29,
                hour: 12,
                minute: 0,
                weekday: 4
            }
        );
    }

    #[test]
    fn answers_are_validated_by_type() {
        let none = Validation::default();
        let check = |t, s: &str| validate_answer(t, &none, None, s);
        assert_eq!(
            check(InputType::Number, " 1,299 "),
            Some(Value::Number(1299.0))
        );
        assert_eq!(check(InputType::Number, "１２"), Some(Value::Number(12.0)));
        assert_eq!(check(InputType::Number, "twelve"), None);
        assert_eq!(
            check(InputType::Email, "a@b.cn"),
            Some(Value::String("a@b.cn".into()))
        );
        assert_eq!(check(InputType::Email, "a@b"), None);
        assert_eq!(check(InputType::Email, "a b@c.cn"), None);
        assert_eq!(
            check(InputType::Phone, "138-0013 8000"),
            Some(Value::String("13800138000".into()))
        );
        assert_eq!(check(InputType::Phone, "12345"), None);
        assert_eq!(
            check(InputType::Date, "2024/2/29"),
            Some(Value::String("2024-02-29".into()))
        );
        assert_eq!(check(InputType::Date, "2023-02-29"), None);
        assert_eq!(check(InputType::Text, "   "), None);
        let bounded = Validation {
            min: Some(1.0),
            max: Some(10.0),
            ..Validation::default()
        };
        assert_eq!(
            validate_answer(InputType::Number, &bounded, None, "11"),
            None
        );
        let pattern = Regex::new("^KF[0-9]{6}$").unwrap();
        assert!(validate_answer(InputType::Text, &none, Some(&pattern), "KF123456").is_some());
        assert!(validate_answer(InputType::Text, &none, Some(&pattern), "KF12345").is_none());
    }

    #[test]
    fn buttons_match_by_number_id_or_label() {
        let options = [("phones", "手机"), ("laptops", "Laptops")];
        let find = |t| match_choice(options.iter().map(|(a, b)| (*a, *b)), t);
        assert_eq!(find("2"), Some(1));
        assert_eq!(find(" LAPTOPS "), Some(1));
        assert_eq!(find("手机"), Some(0));
        assert_eq!(find("phones"), Some(0));
        assert_eq!(find("3"), None);
    }

    #[test]
    fn ab_buckets_are_stable_and_spread() {
        assert_eq!(ab_bucket("s1", "split", 100), ab_bucket("s1", "split", 100));
        let low = (0..1000)
            .filter(|i| ab_bucket(&format!("s{i}"), "split", 100) < 50)
            .count();
        assert!((400..600).contains(&low), "{low} of 1000 in the lower half");
    }
}
