//! Fuzz target: expressions and templates, as flow authors type them. Whatever the text:
//! no panic, every span inside the text, and a well-typed expression evaluates to a value of
//! its type (the soundness rule of `docs/expressions.md`).

#![no_main]

use std::collections::BTreeMap;

use flows::expr::{self, Span};
use flows::{Type, Value};
use libfuzzer_sys::fuzz_target;

/// The variables expressions see: one of each type, with values that fit.
fn variables() -> (BTreeMap<String, Type>, BTreeMap<String, Value>) {
    let json = serde_json::json!({
        "name": ["string", "Ada"],
        "age": ["number", 36],
        "vip": ["bool", true],
        "empty": ["string", ""],
        "tags": ["list<string>", ["new", "vip"]],
        "prices": ["list<number>", [9.5, 20, 0.5]],
        "matrix": ["list<list<number>>", [[1, 2], [3]]],
        "cart": ["map", {"items": [{"sku": "A1", "price": 9.5, "qty": 2}, "gift"], "coupon": null, "total": 39}],
        "rows": ["list<map>", [{"city": "Shanghai", "open": true}, {"city": "Beijing"}]],
        "row": ["any", {"name": "Tea", "stock": 0}],
        "nothing": ["any", null],
        "anything": ["any", 42],
        "sys": ["map", {"hour": 10, "date": "2026-01-05", "locale": "zh-CN"}]
    });
    let mut types = BTreeMap::new();
    let mut values = BTreeMap::new();
    if let serde_json::Value::Object(map) = json {
        for (name, pair) in map {
            let ty = pair[0].as_str().and_then(Type::parse).unwrap_or(Type::Any);
            types.insert(name.clone(), ty);
            values.insert(name, Value::from_json(&pair[1]));
        }
    }
    (types, values)
}

fn assert_span_in(src: &str, span: Span) {
    assert!(
        span.start <= span.end && span.end <= src.len(),
        "{span:?} in {src:?}"
    );
    assert!(
        src.is_char_boundary(span.start) && src.is_char_boundary(span.end),
        "{span:?} in {src:?}"
    );
    assert!(span.line >= 1 && span.column >= 1, "{span:?} in {src:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let (types, values) = variables();
    match expr::parse(src) {
        Ok(e) => {
            assert_eq!(e.to_string(), src);
            e.root().walk(&mut |node| assert_span_in(src, node.span));
            match e.check(&types) {
                Ok(ty) => match e.eval(&values) {
                    Ok(value) => assert!(value.fits(&ty), "{src:?}: {value:?} does not fit {ty}"),
                    Err(error) => assert_span_in(src, error.span),
                },
                Err(error) => assert_span_in(src, error.span),
            }
        }
        Err(error) => assert_span_in(src, error.span),
    }
    match expr::parse_template(src) {
        Ok(template) => {
            assert_eq!(template.to_string(), src);
            match template.check(&types) {
                Ok(()) => {
                    if let Err(error) = template.render(&values) {
                        assert_span_in(src, error.span);
                    }
                }
                Err(error) => assert_span_in(src, error.span),
            }
        }
        Err(error) => assert_span_in(src, error.span),
    }
});
