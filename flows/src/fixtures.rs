//! Canned connector answers: lets `kefu run` and the designer's preview answer lookups
//! without a real connector (`flows/library/fixtures.json` is the demo shop's data).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::{LookupOutcome, LookupRequest};
use crate::value::Value;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    pub lookups: Vec<Fixture>,
}

/// One canned answer. It answers a request with the same connector, entity and operation
/// whose parameters include every `when` entry with an equal value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub connector: String,
    pub entity: String,
    pub operation: String,
    #[serde(default)]
    pub when: BTreeMap<String, Value>,
    #[serde(default)]
    pub rows: Vec<BTreeMap<String, Value>>,
    /// Answer with this error instead of rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Fixtures {
    pub fn from_json(text: &str) -> Result<Fixtures, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            format!("fixtures: at `{path}`: {}", e.into_inner())
        })
    }

    /// The first matching fixture's answer; an error outcome when none matches, so that a
    /// flow under test takes its `error` port rather than hanging.
    pub fn answer(&self, request: &LookupRequest) -> LookupOutcome {
        let found = self.lookups.iter().find(|f| {
            f.connector == request.connector
                && f.entity == request.entity
                && f.operation == request.operation
                && f.when
                    .iter()
                    .all(|(k, v)| request.params.get(k).is_some_and(|p| loosely_equal(p, v)))
        });
        match found {
            Some(Fixture {
                error: Some(error), ..
            }) => LookupOutcome::Error(error.clone()),
            Some(fixture) => LookupOutcome::Rows(fixture.rows.clone()),
            None => LookupOutcome::Error(format!(
                "no fixture answers {}.{}.{}",
                request.connector, request.entity, request.operation
            )),
        }
    }
}

/// Strings compare without regard to case, so that a visitor's `kf100001` finds `KF100001`.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(params: &[(&str, Value)]) -> LookupRequest {
        LookupRequest {
            request: 1,
            node: "n".into(),
            connector: "demo".into(),
            entity: "orders".into(),
            operation: "get".into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn first_matching_fixture_answers() {
        let fixtures = Fixtures::from_json(
            r#"{"lookups": [
                {"connector": "demo", "entity": "orders", "operation": "get", "when": {"order_no": "KF1"}, "rows": [{"status": "shipped"}]},
                {"connector": "demo", "entity": "orders", "operation": "get", "when": {"order_no": "KF2"}, "error": "timeout"},
                {"connector": "demo", "entity": "orders", "operation": "get", "rows": []}
            ]}"#,
        )
        .unwrap();
        let shipped = fixtures.answer(&request(&[("order_no", Value::String("kf1".into()))]));
        assert_eq!(
            shipped,
            LookupOutcome::Rows(vec![
                [("status".to_owned(), Value::String("shipped".into()))].into()
            ])
        );
        let failed = fixtures.answer(&request(&[("order_no", Value::String("KF2".into()))]));
        assert_eq!(failed, LookupOutcome::Error("timeout".into()));
        let none = fixtures.answer(&request(&[("order_no", Value::String("KF3".into()))]));
        assert_eq!(none, LookupOutcome::Rows(vec![]));
        let unknown = Fixtures::default().answer(&request(&[]));
        assert!(matches!(unknown, LookupOutcome::Error(e) if e.contains("demo.orders.get")));
    }

    #[test]
    fn malformed_fixtures_say_where() {
        let err = Fixtures::from_json(r#"{"lookups": [{"connector": "demo", "entity": 3}]}"#)
            .unwrap_err();
        assert!(err.contains("lookups[0].entity"), "{err}");
    }
}
