//! Tests of the expression language: one `check_*` helper per area, each the only place
//! that calls the API for that area. Update the snapshots with `UPDATE_EXPECT=1`.
#![allow(
    clippy::needless_pass_by_value,
    reason = "expect-test's convention: `check(input, expect![[...]])` takes the snapshot by value"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::*;
use crate::value::format_number;

fn ty(text: &str) -> Type {
    Type::parse(text).unwrap()
}

fn json(value: &serde_json::Value) -> Value {
    Value::from_json(value)
}

/// The variables every test sees, with their declared types and values.
fn variables() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("name", "string", json(&serde_json::json!("Ada"))),
        ("age", "number", json(&serde_json::json!(36))),
        ("vip", "bool", json(&serde_json::json!(true))),
        ("empty", "string", json(&serde_json::json!(""))),
        (
            "tags",
            "list<string>",
            json(&serde_json::json!(["new", "vip"])),
        ),
        (
            "prices",
            "list<number>",
            json(&serde_json::json!([9.5, 20, 0.5])),
        ),
        (
            "matrix",
            "list<list<number>>",
            json(&serde_json::json!([[1, 2], [3]])),
        ),
        (
            "cart",
            "map",
            json(&serde_json::json!({
                "items": [
                    {"sku": "A1", "price": 9.5, "qty": 2},
                    {"sku": "B2", "price": 20, "qty": 1},
                    "gift"
                ],
                "coupon": null,
                "total": 39
            })),
        ),
        (
            "rows",
            "list<map>",
            json(&serde_json::json!([
                {"city": "Shanghai", "open": true},
                {"city": "Beijing", "open": false},
                {"city": "Shanghai"}
            ])),
        ),
        (
            "row",
            "any",
            json(&serde_json::json!({"name": "Tea", "stock": 0})),
        ),
        ("nothing", "any", Value::Null),
        ("anything", "any", json(&serde_json::json!(42))),
        ("word", "any", json(&serde_json::json!("hello"))),
        ("flag", "any", json(&serde_json::json!(false))),
    ]
}

fn type_env() -> BTreeMap<String, Type> {
    variables()
        .into_iter()
        .map(|(name, t, _)| (name.to_owned(), ty(t)))
        .collect()
}

fn value_env() -> BTreeMap<String, Value> {
    variables()
        .into_iter()
        .map(|(name, _, v)| (name.to_owned(), v))
        .collect()
}

#[test]
fn test_variables_fit_their_types() {
    for (name, t, value) in variables() {
        assert!(value.fits(&ty(t)), "{name}");
    }
}

/// A value as a literal: strings quoted, so that `"1"` and `1` differ in snapshots.
fn repr(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(*n),
        Value::String(s) => format!("{s:?}"),
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Map(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}: {}", repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// An error as a user sees it: position, message, the source line and carets under the span.
fn render_error(src: &str, span: Span, message: &str) -> String {
    assert!(
        span.start <= span.end && span.end <= src.len(),
        "span out of bounds: {span:?}"
    );
    assert!(src.is_char_boundary(span.start) && src.is_char_boundary(span.end));
    let line_text = src.lines().nth(span.line as usize - 1).unwrap_or("");
    let line_start = src[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let column = src[line_start..span.start].chars().count() + 1;
    assert_eq!(column, span.column as usize, "column of {span:?}");
    assert_eq!(
        src[..span.start].matches('\n').count() + 1,
        span.line as usize
    );
    let line_end = line_start + line_text.len();
    let width = src[span.start..span.end.clamp(span.start, line_end.max(span.start))]
        .chars()
        .count()
        .max(1);
    // Trailing white space would not survive formatting of the snapshots.
    format!(
        "{}:{}: {message}\n{}\n{}{}",
        span.line,
        span.column,
        line_text.trim_end(),
        " ".repeat(span.column as usize - 1),
        "^".repeat(width)
    )
}

/// The tree as an s-expression, to show precedence and structure.
fn sexp(node: &ExprNode) -> String {
    match &node.kind {
        ExprKind::Literal(value) => repr(value),
        ExprKind::List(items) => {
            let items: Vec<String> = items.iter().map(sexp).collect();
            format!("(list {})", items.join(" ")).replace("(list )", "(list)")
        }
        ExprKind::Var(name) => name.clone(),
        ExprKind::Field { target, name, .. } => format!("(. {} {name})", sexp(target)),
        ExprKind::Index { target, index } => format!("([] {} {})", sexp(target), sexp(index)),
        ExprKind::Unary { op, operand } => format!("({} {})", op.symbol(), sexp(operand)),
        ExprKind::Binary { op, lhs, rhs, .. } => {
            format!("({} {} {})", op.symbol(), sexp(lhs), sexp(rhs))
        }
        ExprKind::Call { function, args, .. } => {
            let args: Vec<String> = args.iter().map(sexp).collect();
            format!("({} {})", function.name(), args.join(" "))
        }
    }
}

fn check_parse(src: &str, expect: Expect) {
    let actual = match parse(src) {
        Ok(expr) => {
            assert_eq!(expr.to_string(), src);
            sexp(expr.root())
        }
        Err(error) => render_error(src, error.span, &error.message),
    };
    expect.assert_eq(&actual);
}

fn check_parse_error(src: &str, expect: Expect) {
    let error = parse(src).expect_err("the expression should not parse");
    expect.assert_eq(&render_error(src, error.span, &error.message));
}

fn check_type(src: &str, expect: Expect) {
    let expr = parse(src).unwrap();
    let actual = match expr.check(&type_env()) {
        Ok(t) => t.to_string(),
        Err(error) => render_error(src, error.span, &error.message),
    };
    expect.assert_eq(&actual);
}

/// Checks, then evaluates; the value must fit the static type.
fn check_eval(src: &str, expect: Expect) {
    let expr = parse(src).unwrap();
    let t = match expr.check(&type_env()) {
        Ok(t) => t,
        Err(error) => panic!(
            "type error: {}",
            render_error(src, error.span, &error.message)
        ),
    };
    let actual = match expr.eval(&value_env()) {
        Ok(value) => {
            assert!(value.fits(&t), "{} does not fit {t}", repr(&value));
            format!("{} : {t}", repr(&value))
        }
        Err(error) => render_error(src, error.span, &error.message),
    };
    expect.assert_eq(&actual);
}

fn check_template(src: &str, expect: Expect) {
    let actual = match parse_template(src) {
        Err(error) => format!("parse: {}", render_error(src, error.span, &error.message)),
        Ok(template) => {
            assert_eq!(template.to_string(), src);
            match template.check(&type_env()) {
                Err(error) => format!("type: {}", render_error(src, error.span, &error.message)),
                Ok(()) => match template.render(&value_env()) {
                    Ok(text) => text,
                    Err(error) => {
                        format!("eval: {}", render_error(src, error.span, &error.message))
                    }
                },
            }
        }
    };
    expect.assert_eq(&actual);
}

#[test]
fn parse_literals() {
    check_parse("12", expect!["12"]);
    check_parse("3.5", expect!["3.5"]);
    check_parse("0.25", expect!["0.25"]);
    check_parse("007", expect!["7"]);
    check_parse(r#""double""#, expect![[r#""double""#]]);
    check_parse("'single'", expect![[r#""single""#]]);
    check_parse(
        r#"'it\'s \"quoted\" \\ back\nslash\ttab \u{4F60}\u{597D}'"#,
        expect![[r#""it's \"quoted\" \\ back\nslash\ttab 你好""#]],
    );
    check_parse(r#""你好""#, expect![[r#""你好""#]]);
    check_parse("true", expect!["true"]);
    check_parse("false", expect!["false"]);
    check_parse("null", expect!["null"]);
    check_parse("[]", expect!["(list)"]);
    check_parse("[1, 'a', [true]]", expect![[r#"(list 1 "a" (list true))"#]]);
}

#[test]
fn parse_precedence() {
    check_parse("a || b && c", expect!["(|| a (&& b c))"]);
    check_parse("a or b and c", expect!["(|| a (&& b c))"]);
    check_parse("a && b == c", expect!["(&& a (== b c))"]);
    check_parse("a == b < c", expect!["(== a (< b c))"]);
    check_parse("a < b + c", expect!["(< a (+ b c))"]);
    check_parse("a + b * c", expect!["(+ a (* b c))"]);
    check_parse("a * -b", expect!["(* a (- b))"]);
    check_parse("-a.b[0]", expect!["(- ([] (. a b) 0))"]);
    check_parse("!x && not y", expect!["(&& (! x) (! y))"]);
    check_parse("not a == b", expect!["(== (! a) b)"]);
    check_parse("- - 1", expect!["(- (- 1))"]);
    check_parse("a - b - c", expect!["(- (- a b) c)"]);
    check_parse("a / b % c * d", expect!["(* (% (/ a b) c) d)"]);
    check_parse("(a + b) * c", expect!["(* (+ a b) c)"]);
    check_parse("a < b == c > d", expect!["(== (< a b) (> c d))"]);
    check_parse(
        "cart.items[0].price",
        expect!["(. ([] (. cart items) 0) price)"],
    );
    check_parse(
        "row['first name'].x.and.null",
        expect![[r#"(. (. (. ([] row "first name") x) and) null)"#]],
    );
    check_parse(
        "len(tags) + round(1.5, 0)",
        expect!["(+ (len tags) (round 1.5 0))"],
    );
    check_parse("len (tags)", expect!["(len tags)"]);
    check_parse(
        "len(split(name, ''))",
        expect![[r#"(len (split name ""))"#]],
    );
    check_parse("  spaced \n\t+ out  ", expect!["(+ spaced out)"]);
    check_parse("a　+　b", expect!["(+ a b)"]);
}

#[test]
fn parse_spans() {
    let src = "len(cart.items)\n  + (2 * x)";
    let expr = parse(src).unwrap();
    let mut spans = String::new();
    expr.root().walk(&mut |node| {
        let text = expr.text_of(node.span).unwrap();
        writeln!(
            spans,
            "{}:{} {:?} {}",
            node.span.line,
            node.span.column,
            text,
            sexp(node)
        )
        .unwrap();
    });
    expect![[r#"
        1:1 "len(cart.items)\n  + (2 * x)" (+ (len (. cart items)) (* 2 x))
        1:1 "len(cart.items)" (len (. cart items))
        1:5 "cart.items" (. cart items)
        1:5 "cart" cart
        2:6 "2 * x" (* 2 x)
        2:6 "2" 2
        2:10 "x" x
    "#]]
    .assert_eq(&spans);
    assert_eq!(expr.span(), expr.root().span);
    assert_eq!(expr.source(), src);
}

#[test]
fn parse_errors() {
    check_parse_error(
        "",
        expect![[r#"
        1:1: the expression is empty: write a value, a variable or a calculation

        ^"#]],
    );
    check_parse_error(
        "   ",
        expect![[r#"
        1:4: the expression is empty: write a value, a variable or a calculation
   
           ^"#]],
    );
    check_parse_error(
        "a +",
        expect![[r#"
        1:4: expected a value after `+`, found the end of the expression
        a +
           ^"#]],
    );
    check_parse_error(
        "a + * b",
        expect![[r#"
        1:5: expected a value after `+`, found `*`
        a + * b
            ^"#]],
    );
    check_parse_error(
        "* b",
        expect![[r#"
        1:1: expected a value, found `*`
        * b
        ^"#]],
    );
    check_parse_error(
        "a b",
        expect![[r#"
        1:3: expected an operator or the end of the expression, found `b` (is an operator missing between the two?)
        a b
          ^"#]],
    );
    check_parse_error(
        "a 'b'",
        expect![[r#"
        1:3: expected an operator or the end of the expression, found `'b'` (is an operator missing between the two?)
        a 'b'
          ^^^"#]],
    );
    check_parse_error(
        "(a + b",
        expect![[r#"
        1:7: expected `)` to close the `(` at line 1, column 1, found the end of the expression
        (a + b
              ^"#]],
    );
    check_parse_error(
        "(a + b]",
        expect![[r#"
        1:7: expected `)` to close the `(` at line 1, column 1, found `]`
        (a + b]
              ^"#]],
    );
    check_parse_error(
        "a + b)",
        expect![[r#"
        1:6: unmatched `)`: there is no `(` before it that it closes
        a + b)
             ^"#]],
    );
    check_parse_error(
        "a]",
        expect![[r#"
        1:2: unmatched `]`: there is no `[` before it that it closes
        a]
         ^"#]],
    );
    check_parse_error(
        "()",
        expect![[r#"
        1:2: expected a value after `(`, found `)`
        ()
         ^"#]],
    );
    check_parse_error(
        "[1, 2",
        expect![[r#"
        1:6: expected `,` or `]` to close the list that starts at line 1, column 1, found the end of the expression
        [1, 2
             ^"#]],
    );
    check_parse_error(
        "[1 2]",
        expect![[r#"
        1:4: expected `,` or `]` to close the list that starts at line 1, column 1, found `2`
        [1 2]
           ^"#]],
    );
    check_parse_error(
        "[1,]",
        expect![[r#"
        1:4: expected a value after `,`, found `]`
        [1,]
           ^"#]],
    );
    check_parse_error(
        "len(a b)",
        expect![[r#"
        1:7: expected `,` or `)` after an argument of `len`, found `b`
        len(a b)
              ^"#]],
    );
    check_parse_error(
        "len(a,)",
        expect![[r#"
        1:7: expected a value after `,`, found `)`
        len(a,)
              ^"#]],
    );
    check_parse_error(
        "x[0",
        expect![[r#"
        1:4: expected `]` to close the `[` at line 1, column 2, found the end of the expression
        x[0
           ^"#]],
    );
    check_parse_error(
        "x[]",
        expect![[r#"
        1:3: expected a value after `[`, found `]`
        x[]
          ^"#]],
    );
    check_parse_error(
        "x.",
        expect![[r#"
        1:3: expected a field name after `.`, found the end of the expression
        x.
          ^"#]],
    );
    check_parse_error(
        "x.0",
        expect![[r#"
        1:3: expected a field name after `.`, found `0`: to take an element of a list, write `[0]`
        x.0
          ^"#]],
    );
    check_parse_error(
        "x.'a'",
        expect![[r#"
        1:3: expected a field name after `.`, found `'a'`
        x.'a'
          ^^^"#]],
    );
    check_parse_error(
        "(x)(1)",
        expect![[r#"
        1:4: only functions can be called, like `len(items)`: there is nothing to call before this `(`
        (x)(1)
           ^"#]],
    );
    check_parse_error(
        "x.y(1)",
        expect![[r#"
        1:4: only functions can be called, like `len(items)`: there is nothing to call before this `(`
        x.y(1)
           ^"#]],
    );
    check_parse_error(
        "a < b < c",
        expect![[r#"
        1:7: comparisons cannot be chained: `<` cannot follow another comparison; compare two values at a time and combine the results with `&&`, like `a < b && b < c`
        a < b < c
              ^"#]],
    );
    check_parse_error(
        "a >= b <= c",
        expect![[r#"
        1:8: comparisons cannot be chained: `<=` cannot follow another comparison; compare two values at a time and combine the results with `&&`, like `a < b && b < c`
        a >= b <= c
               ^^"#]],
    );
    check_parse_error(
        "a == b != c",
        expect![[r#"
        1:8: comparisons cannot be chained: `!=` cannot follow another comparison; compare two values at a time and combine the results with `&&`, like `a < b && b < c`
        a == b != c
               ^^"#]],
    );
}

#[test]
fn parse_errors_tokens() {
    check_parse_error(
        "'unclosed",
        expect![[r#"
        1:1: unclosed string: add a closing ' at the end of the text
        'unclosed
        ^^^^^^^^^"#]],
    );
    check_parse_error(
        "\"unclosed\nover lines",
        expect![[r#"
        1:1: unclosed string: add a closing " at the end of the text
        "unclosed
        ^^^^^^^^^"#]],
    );
    check_parse_error(
        r"'ends with \",
        expect![[r#"
        1:12: unclosed string: it ends with a lone `\`
        'ends with \
                   ^"#]],
    );
    check_parse_error(
        r"'bad \q escape'",
        expect![[r#"
        1:6: unknown escape `\q` in a string: the escapes are `\\`, `\'`, `\"`, `\n`, `\t` and `\u{...}`
        'bad \q escape'
             ^^"#]],
    );
    check_parse_error(
        r"'\u{110000}'",
        expect![[r#"
        1:2: `\u{110000}` is not a Unicode character
        '\u{110000}'
         ^^^^^^^^^^"#]],
    );
    check_parse_error(
        r"'\u{D800}'",
        expect![[r#"
        1:2: `\u{D800}` is not a Unicode character
        '\u{D800}'
         ^^^^^^^^"#]],
    );
    check_parse_error(
        r"'\u0041'",
        expect![[r#"
        1:2: invalid `\u` escape: write the character's hexadecimal code between braces, like `\u{4F60}`
        '\u0041'
         ^^"#]],
    );
    check_parse_error(
        r"'\u{}'",
        expect![[r#"
        1:2: invalid `\u` escape: write the character's hexadecimal code between braces, like `\u{4F60}`
        '\u{}'
         ^^^"#]],
    );
    check_parse_error(
        r"'\u{1234567}'",
        expect![[r#"
        1:2: invalid `\u` escape: write the character's hexadecimal code between braces, like `\u{4F60}`
        '\u{1234567}'
         ^^^^^^^^^^"#]],
    );
    check_parse_error(
        "12abc",
        expect![[r#"
        1:1: `12abc` is not a number: write numbers like `12` or `3.5`
        12abc
        ^^^^^"#]],
    );
    check_parse_error(
        "1e5",
        expect![[r#"
        1:1: `1e5` is not a number: write numbers like `12` or `3.5`
        1e5
        ^^^"#]],
    );
    check_parse_error(
        "1.5.6",
        expect![[r#"
        1:5: expected a field name after `.`, found `6`: to take an element of a list, write `[6]`
        1.5.6
            ^"#]],
    );
    check_parse_error(
        ".5",
        expect![[r#"
        1:1: expected a value, found `.`
        .5
        ^"#]],
    );
    check_parse_error(
        "+1",
        expect![[r#"
        1:1: expected a value, found `+`
        +1
        ^"#]],
    );
    check_parse_error(
        &"9".repeat(400),
        expect![[r#"
        1:1: this number is too large
        9999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"#]],
    );
    check_parse_error(
        "a = b",
        expect![[r#"
        1:3: `=` is not an operator: to compare two values, write `==`
        a = b
          ^"#]],
    );
    check_parse_error(
        "a & b",
        expect![[r#"
        1:3: a single `&` is not an operator: write `&&` (or `and`)
        a & b
          ^"#]],
    );
    check_parse_error(
        "a | b",
        expect![[r#"
        1:3: a single `|` is not an operator: write `||` (or `or`)
        a | b
          ^"#]],
    );
    check_parse_error(
        "a $ b",
        expect![[r#"
        1:3: unexpected character `$`
        a $ b
          ^"#]],
    );
    check_parse_error(
        "名字",
        expect![[r#"
        1:1: unexpected character `名`
        名字
        ^"#]],
    );
    check_parse_error(
        "len（tags）",
        expect![[r#"
        1:4: unexpected full-width character `（`: did you mean `(`?
        len（tags）
           ^"#]],
    );
    check_parse_error(
        "“quoted”",
        expect![[r#"
        1:1: unexpected character `“`: write strings between straight quotes, like "text" or 'text'
        “quoted”
        ^"#]],
    );
    check_parse_error(
        "{{ name }}",
        expect![[r#"
        1:1: unexpected `{`: expressions are written without braces (`{{ }}` only marks expressions inside message texts)
        {{ name }}
        ^"#]],
    );
}

#[test]
fn parse_errors_functions() {
    check_parse_error(
        "lenght(tags)",
        expect![[r#"
        1:1: unknown function `lenght` (did you mean `len`?)
        lenght(tags)
        ^^^^^^"#]],
    );
    check_parse_error(
        "length(tags)",
        expect![[r#"
        1:1: unknown function `length` (did you mean `len`?)
        length(tags)
        ^^^^^^"#]],
    );
    check_parse_error(
        "Upper(name)",
        expect![[r#"
        1:1: unknown function `Upper` (did you mean `upper`?)
        Upper(name)
        ^^^^^"#]],
    );
    check_parse_error(
        "startswith(name, 'A')",
        expect![[r#"
        1:1: unknown function `startswith` (did you mean `starts_with`?)
        startswith(name, 'A')
        ^^^^^^^^^^"#]],
    );
    check_parse_error(
        "frobnicate(1)",
        expect![[r#"
        1:1: unknown function `frobnicate`
        frobnicate(1)
        ^^^^^^^^^^"#]],
    );
    check_parse_error(
        "len()",
        expect![[r#"
        1:1: `len` takes 1 argument (a string, a list or a map), but got none
        len()
        ^^^^^"#]],
    );
    check_parse_error(
        "len(a, b)",
        expect![[r#"
        1:1: `len` takes 1 argument (a string, a list or a map), but got 2
        len(a, b)
        ^^^^^^^^^"#]],
    );
    check_parse_error(
        "round()",
        expect![[r#"
        1:1: `round` takes 1 or 2 arguments (a number, and optionally how many digits to keep after the point), but got none
        round()
        ^^^^^^^"#]],
    );
    check_parse_error(
        "round(1, 2, 3)",
        expect![[r#"
        1:1: `round` takes 1 or 2 arguments (a number, and optionally how many digits to keep after the point), but got 3
        round(1, 2, 3)
        ^^^^^^^^^^^^^^"#]],
    );
    check_parse_error(
        "where(rows)",
        expect![[r#"
        1:1: `where` takes 3 arguments (a list of maps, a field name and the value the field must equal), but got 1
        where(rows)
        ^^^^^^^^^^^"#]],
    );
    check_parse_error(
        "contains('a')",
        expect![[r#"
        1:1: `contains` takes 2 arguments (a string, a list or a map, and the value to look for), but got 1
        contains('a')
        ^^^^^^^^^^^^^"#]],
    );
}

#[test]
fn parse_errors_on_later_lines() {
    check_parse_error(
        "age > 3 &&\n  name == 'x' +\n",
        expect![[r#"
        3:1: expected a value after `+`, found the end of the expression

        ^"#]],
    );
    check_parse_error(
        "\n\n  (1 +\n 2",
        expect![[r#"
        4:3: expected `)` to close the `(` at line 3, column 3, found the end of the expression
         2
          ^"#]],
    );
    check_parse_error(
        "'你好' +\n  '世界' ＋ 1",
        expect![[r#"
        2:8: unexpected full-width character `＋`: did you mean `+`?
          '世界' ＋ 1
               ^"#]],
    );
}

#[test]
fn limits() {
    let nested = |open: &str, inner: &str, close: &str, n: usize| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    // 64 levels are fine, 65 are not: parentheses count as a level.
    assert!(parse(&nested("(", "1", ")", 63)).is_ok());
    check_parse_error(
        &nested("(", "1", ")", 64),
        expect![[r#"
        1:65: this expression is nested too deeply (more than 64 levels): split it into smaller steps
        ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))
                                                                        ^"#]],
    );
    assert!(parse(&nested("-", "1", "", 63)).is_ok());
    check_parse_error(
        &nested("-", "1", "", 64),
        expect![[r#"
        1:65: this expression is nested too deeply (more than 64 levels): split it into smaller steps
        ----------------------------------------------------------------1
                                                                        ^"#]],
    );
    assert!(parse(&format!("x{}", ".a".repeat(63))).is_ok());
    check_parse_error(
        &format!("x{}", ".a".repeat(64)),
        expect![[r#"
        1:1: this expression is nested too deeply (more than 64 levels): split it into smaller steps
        x.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"#]],
    );
    check_parse_error(
        &format!("1{}", " + 1".repeat(64)),
        expect![[r#"
        1:1: this expression is nested too deeply (more than 64 levels): split it into smaller steps
        1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"#]],
    );
    // Far beyond the limit: an error, not a stack overflow.
    for src in [
        nested("(", "1", ")", 100_000),
        nested("[", "1", "]", 100_000),
        nested("len(", "1", ")", 100_000),
        nested("x[", "1", "]", 100_000),
        nested("!", "true", "", 100_000),
        nested("not ", "true", "", 100_000),
        nested("-", "1", "", 100_000),
        format!("x{}", ".a".repeat(100_000)),
        format!("x{}", "[0]".repeat(100_000)),
        format!("1{}", "+1".repeat(100_000)),
        "(".repeat(100_000),
    ] {
        let error = parse(&src).unwrap_err();
        assert!(
            error.message.contains("nested too deeply"),
            "{}",
            error.message
        );
    }
}

#[test]
fn types_of_literals_and_paths() {
    check_type("1", expect!["number"]);
    check_type("'a'", expect!["string"]);
    check_type("true", expect!["bool"]);
    check_type("null", expect!["any"]);
    check_type("[]", expect!["list<any>"]);
    check_type("[1, 2]", expect!["list<number>"]);
    check_type("[1, 'a']", expect!["list<any>"]);
    check_type("[1, null]", expect!["list<any>"]);
    check_type("[[1], [2, 3]]", expect!["list<list<number>>"]);
    check_type("[[1], ['a']]", expect!["list<list<any>>"]);
    check_type("[[], [1]]", expect!["list<list<any>>"]);
    check_type("name", expect!["string"]);
    check_type("tags", expect!["list<string>"]);
    check_type("tags[0]", expect!["string"]);
    check_type("tags[anything]", expect!["string"]);
    check_type("matrix[0]", expect!["list<number>"]);
    check_type("matrix[0][1]", expect!["number"]);
    check_type("cart.items", expect!["any"]);
    check_type("cart['items']", expect!["any"]);
    check_type("cart.items[0].price", expect!["any"]);
    check_type("row.name", expect!["any"]);
    check_type("row[0]", expect!["any"]);
    check_type("rows[0].city", expect!["any"]);
}

#[test]
fn type_errors_of_paths() {
    check_type(
        "nmae",
        expect![[r#"
        1:1: unknown variable `nmae` (did you mean `name`?)
        nmae
        ^^^^"#]],
    );
    check_type(
        "Name",
        expect![[r#"
        1:1: unknown variable `Name` (did you mean `name`?)
        Name
        ^^^^"#]],
    );
    check_type(
        "tag",
        expect![[r#"
        1:1: unknown variable `tag` (did you mean `tags`?)
        tag
        ^^^"#]],
    );
    check_type(
        "customer.name",
        expect![[r#"
        1:1: unknown variable `customer`
        customer.name
        ^^^^^^^^"#]],
    );
    check_type(
        "name.first",
        expect![[r#"
        1:6: `.first` needs a map, but `name` is a string
        name.first
             ^^^^^"#]],
    );
    check_type(
        "age.x",
        expect![[r#"
        1:5: `.x` needs a map, but `age` is a number
        age.x
            ^"#]],
    );
    check_type(
        "rows.city",
        expect![[r#"
        1:6: `.city` needs a map, but `rows` is a list of maps: to take `city` from every element, write `pluck(rows, "city")`; to take it from the first element, write `rows[0].city`
        rows.city
             ^^^^"#]],
    );
    check_type(
        "tags['a']",
        expect![[r#"
        1:6: a list is indexed by a number (0 for the first element), but `'a'` is a string
        tags['a']
             ^^^"#]],
    );
    check_type(
        "cart[0]",
        expect![[r#"
        1:6: a map is indexed by a string key, but `0` is a number
        cart[0]
             ^"#]],
    );
    check_type(
        "row[true]",
        expect![[r#"
        1:5: a map is indexed by a string key, but `true` is a bool (true or false)
        row[true]
            ^^^^"#]],
    );
    check_type(
        "name[0]",
        expect![[r#"
        1:1: `[ ]` needs a list or a map, but `name` is a string
        name[0]
        ^^^^"#]],
    );
    check_type(
        "vip[0]",
        expect![[r#"
        1:1: `[ ]` needs a list or a map, but `vip` is a bool (true or false)
        vip[0]
        ^^^"#]],
    );
    check_type(
        "[1, nmae]",
        expect![[r#"
        1:5: unknown variable `nmae` (did you mean `name`?)
        [1, nmae]
            ^^^^"#]],
    );
}

#[test]
fn types_of_operators() {
    check_type("!vip", expect!["bool"]);
    check_type("not flag", expect!["bool"]);
    check_type("-age", expect!["number"]);
    check_type("-anything", expect!["number"]);
    check_type("vip && flag || false", expect!["bool"]);
    check_type("age == 3", expect!["bool"]);
    check_type("name != null", expect!["bool"]);
    check_type("tags == []", expect!["bool"]);
    check_type("row == 3", expect!["bool"]);
    check_type("age < 3", expect!["bool"]);
    check_type("name >= 'B'", expect!["bool"]);
    check_type("anything <= 3", expect!["bool"]);
    check_type("age + 1", expect!["number"]);
    check_type("name + '!'", expect!["string"]);
    check_type("tags + ['x']", expect!["list<string>"]);
    check_type("tags + prices", expect!["list<any>"]);
    check_type("anything + 1", expect!["number"]);
    check_type("'a' + anything", expect!["string"]);
    check_type("anything + tags", expect!["list<any>"]);
    check_type("anything + word", expect!["any"]);
    check_type("age - 1 * 2 / 3 % 4", expect!["number"]);
}

#[test]
fn type_errors_of_operators() {
    check_type(
        "!age",
        expect![[r#"
        1:2: `!` needs a bool (true or false), but `age` is a number
        !age
         ^^^"#]],
    );
    check_type(
        "not name",
        expect![[r#"
        1:5: `not` needs a bool (true or false), but `name` is a string
        not name
            ^^^^"#]],
    );
    check_type(
        "-name",
        expect![[r#"
        1:2: `-` needs a number, but `name` is a string
        -name
         ^^^^"#]],
    );
    check_type(
        "vip && age",
        expect![[r#"
        1:8: `&&` needs a bool (true or false) on both sides, but `age` is a number
        vip && age
               ^^^"#]],
    );
    check_type(
        "name or vip",
        expect![[r#"
        1:1: `or` needs a bool (true or false) on both sides, but `name` is a string
        name or vip
        ^^^^"#]],
    );
    check_type(
        "age == name",
        expect![[r#"
        1:1: `==` compares values of the same type, but `age` is a number and `name` is a string
        age == name
        ^^^^^^^^^^^"#]],
    );
    check_type(
        "tags != prices",
        expect![[r#"
        1:1: `!=` compares values of the same type, but `tags` is a list of strings and `prices` is a list of numbers
        tags != prices
        ^^^^^^^^^^^^^^"#]],
    );
    check_type(
        "tags == 'new'",
        expect![[r#"
        1:1: `==` compares values of the same type, but `tags` is a list of strings and `'new'` is a string: to check whether a list holds a value, write `contains(list, value)`
        tags == 'new'
        ^^^^^^^^^^^^^"#]],
    );
    check_type(
        "age < name",
        expect![[r#"
        1:1: `<` compares two numbers or two strings, but `age` is a number and `name` is a string
        age < name
        ^^^^^^^^^^"#]],
    );
    check_type(
        "vip > false",
        expect![[r#"
        1:1: `>` compares two numbers or two strings, but `vip` is a bool (true or false)
        vip > false
        ^^^"#]],
    );
    check_type(
        "tags < tags",
        expect![[r#"
        1:1: `<` compares two numbers or two strings, but `tags` is a list of strings
        tags < tags
        ^^^^"#]],
    );
    check_type(
        "age + name",
        expect![[r#"
        1:1: `+` needs two numbers, two strings or two lists, but `age` is a number and `name` is a string: to put a number into text, convert it with `string(...)` or use a template
        age + name
        ^^^^^^^^^^"#]],
    );
    check_type(
        "'Total: ' + age",
        expect![[r#"
        1:1: `+` needs two numbers, two strings or two lists, but `'Total: '` is a string and `age` is a number: to put a number into text, convert it with `string(...)` or use a template
        'Total: ' + age
        ^^^^^^^^^^^^^^^"#]],
    );
    check_type(
        "tags + 'x'",
        expect![[r#"
        1:1: `+` needs two numbers, two strings or two lists, but `tags` is a list of strings and `'x'` is a string
        tags + 'x'
        ^^^^^^^^^^"#]],
    );
    check_type(
        "vip + 1",
        expect![[r#"
        1:1: `+` needs two numbers, two strings or two lists, but `vip` is a bool (true or false)
        vip + 1
        ^^^"#]],
    );
    check_type(
        "anything + cart",
        expect![[r#"
        1:12: `+` needs two numbers, two strings or two lists, but `cart` is a map
        anything + cart
                   ^^^^"#]],
    );
    check_type(
        "name - 1",
        expect![[r#"
        1:1: `-` needs numbers, but `name` is a string
        name - 1
        ^^^^"#]],
    );
    check_type(
        "age * tags",
        expect![[r#"
        1:7: `*` needs numbers, but `tags` is a list of strings
        age * tags
              ^^^^"#]],
    );
    check_type(
        "1 / vip",
        expect![[r#"
        1:5: `/` needs numbers, but `vip` is a bool (true or false)
        1 / vip
            ^^^"#]],
    );
    check_type(
        "1 % 'a'",
        expect![[r#"
        1:5: `%` needs numbers, but `'a'` is a string
        1 % 'a'
            ^^^"#]],
    );
    check_type(
        "(name + 'long text that goes on and on') - 1",
        expect![[r#"
        1:2: `-` needs numbers, but `name + 'long text that goes on and on'` is a string
        (name + 'long text that goes on and on') - 1
         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"#]],
    );
    check_type(
        "age > 3 &&\n  nmae == 'x'",
        expect![[r#"
        2:3: unknown variable `nmae` (did you mean `name`?)
          nmae == 'x'
          ^^^^"#]],
    );
}

#[test]
fn types_of_functions() {
    check_type("len(name)", expect!["number"]);
    check_type("len(tags)", expect!["number"]);
    check_type("len(cart)", expect!["number"]);
    check_type("len(row)", expect!["number"]);
    check_type("contains(name, 'A')", expect!["bool"]);
    check_type("contains(tags, 'vip')", expect!["bool"]);
    check_type("contains(cart, 'items')", expect!["bool"]);
    check_type("contains(row, 1)", expect!["bool"]);
    check_type("contains(prices, anything)", expect!["bool"]);
    check_type("lower(name)", expect!["string"]);
    check_type("upper(word)", expect!["string"]);
    check_type("trim(name)", expect!["string"]);
    check_type("starts_with(name, 'A')", expect!["bool"]);
    check_type("ends_with(name, 'a')", expect!["bool"]);
    check_type("join(tags, ', ')", expect!["string"]);
    check_type("split(name, '')", expect!["list<string>"]);
    check_type("first(tags)", expect!["string"]);
    check_type("last(matrix)", expect!["list<number>"]);
    check_type("first(row)", expect!["any"]);
    check_type("round(age)", expect!["number"]);
    check_type("round(age, 2)", expect!["number"]);
    check_type("floor(1.5) + ceil(1.5) + abs(-1)", expect!["number"]);
    check_type("min(age, 3) + max(age, 3)", expect!["number"]);
    check_type("number(name)", expect!["number"]);
    check_type("number(age)", expect!["number"]);
    check_type("string(cart)", expect!["string"]);
    check_type(
        "is_empty(null) || is_empty(tags) || is_empty(cart) || is_empty(name)",
        expect!["bool"],
    );
    check_type("sum(prices)", expect!["number"]);
    check_type("sum([])", expect!["number"]);
    check_type("pluck(rows, 'city')", expect!["list<any>"]);
    check_type("where(rows, 'city', 'Shanghai')", expect!["list<map>"]);
    check_type("default(name, 'guest')", expect!["string"]);
    check_type("default(row.name, 'guest')", expect!["any"]);
    check_type("default(tags, [])", expect!["list<any>"]);
}

#[test]
fn type_errors_of_functions() {
    check_type(
        "len(age)",
        expect![[r#"
        1:5: `len` needs a string, a list or a map, but `age` is a number
        len(age)
            ^^^"#]],
    );
    check_type(
        "len(vip)",
        expect![[r#"
        1:5: `len` needs a string, a list or a map, but `vip` is a bool (true or false)
        len(vip)
            ^^^"#]],
    );
    check_type(
        "contains(age, 1)",
        expect![[r#"
        1:10: `contains` needs a string, a list or a map, but `age` is a number
        contains(age, 1)
                 ^^^"#]],
    );
    check_type(
        "contains(name, 1)",
        expect![[r#"
        1:16: `contains` looks for a string inside a string, but `1` is a number
        contains(name, 1)
                       ^"#]],
    );
    check_type(
        "contains(tags, 1)",
        expect![[r#"
        1:16: `contains` looks for a string in a list of strings, but `1` is a number
        contains(tags, 1)
                       ^"#]],
    );
    check_type(
        "contains(cart, 1)",
        expect![[r#"
        1:16: `contains` looks for a key (a string) in a map, but `1` is a number
        contains(cart, 1)
                       ^"#]],
    );
    check_type(
        "lower(age)",
        expect![[r#"
        1:7: `lower` needs a string, but `age` is a number
        lower(age)
              ^^^"#]],
    );
    check_type(
        "upper(tags)",
        expect![[r#"
        1:7: `upper` needs a string, but `tags` is a list of strings
        upper(tags)
              ^^^^"#]],
    );
    check_type(
        "trim(cart)",
        expect![[r#"
        1:6: `trim` needs a string, but `cart` is a map
        trim(cart)
             ^^^^"#]],
    );
    check_type(
        "starts_with(name, 1)",
        expect![[r#"
        1:19: `starts_with` needs a string as its second argument, but `1` is a number
        starts_with(name, 1)
                          ^"#]],
    );
    check_type(
        "ends_with(1, name)",
        expect![[r#"
        1:11: `ends_with` needs a string, but `1` is a number
        ends_with(1, name)
                  ^"#]],
    );
    check_type(
        "join(name, ', ')",
        expect![[r#"
        1:6: `join` needs a list, but `name` is a string
        join(name, ', ')
             ^^^^"#]],
    );
    check_type(
        "join(tags, 0)",
        expect![[r#"
        1:12: `join` needs a string as its second argument, but `0` is a number
        join(tags, 0)
                   ^"#]],
    );
    check_type(
        "split(tags, ',')",
        expect![[r#"
        1:7: `split` needs a string, but `tags` is a list of strings
        split(tags, ',')
              ^^^^"#]],
    );
    check_type(
        "first(name)",
        expect![[r#"
        1:7: `first` needs a list, but `name` is a string
        first(name)
              ^^^^"#]],
    );
    check_type(
        "last(cart)",
        expect![[r#"
        1:6: `last` needs a list, but `cart` is a map
        last(cart)
             ^^^^"#]],
    );
    check_type(
        "round('1.5')",
        expect![[r#"
        1:7: `round` needs a number, but `'1.5'` is a string
        round('1.5')
              ^^^^^"#]],
    );
    check_type(
        "round(1.5, '2')",
        expect![[r#"
        1:12: `round` needs a number as its second argument, but `'2'` is a string
        round(1.5, '2')
                   ^^^"#]],
    );
    check_type(
        "floor(name)",
        expect![[r#"
        1:7: `floor` needs a number, but `name` is a string
        floor(name)
              ^^^^"#]],
    );
    check_type(
        "ceil(vip)",
        expect![[r#"
        1:6: `ceil` needs a number, but `vip` is a bool (true or false)
        ceil(vip)
             ^^^"#]],
    );
    check_type(
        "abs(tags)",
        expect![[r#"
        1:5: `abs` needs a number, but `tags` is a list of strings
        abs(tags)
            ^^^^"#]],
    );
    check_type(
        "min(1, '2')",
        expect![[r#"
        1:8: `min` needs a number as its second argument, but `'2'` is a string
        min(1, '2')
               ^^^"#]],
    );
    check_type(
        "max(name, 2)",
        expect![[r#"
        1:5: `max` needs a number, but `name` is a string
        max(name, 2)
            ^^^^"#]],
    );
    check_type(
        "number(vip)",
        expect![[r#"
        1:8: `number` needs a string or a number, but `vip` is a bool (true or false)
        number(vip)
               ^^^"#]],
    );
    check_type(
        "is_empty(age)",
        expect![[r#"
        1:10: `is_empty` needs a string, a list, a map or null, but `age` is a number
        is_empty(age)
                 ^^^"#]],
    );
    check_type(
        "sum(tags)",
        expect![[r#"
        1:5: `sum` needs a list of numbers, but `tags` is a list of strings
        sum(tags)
            ^^^^"#]],
    );
    check_type(
        "sum(age)",
        expect![[r#"
        1:5: `sum` needs a list of numbers, but `age` is a number
        sum(age)
            ^^^"#]],
    );
    check_type(
        "pluck(cart, 'x')",
        expect![[r#"
        1:7: `pluck` needs a list, but `cart` is a map
        pluck(cart, 'x')
              ^^^^"#]],
    );
    check_type(
        "pluck(rows, 1)",
        expect![[r#"
        1:13: `pluck` needs a string as its second argument, but `1` is a number
        pluck(rows, 1)
                    ^"#]],
    );
    check_type(
        "where(rows, 1, 'x')",
        expect![[r#"
        1:13: `where` needs a string as its second argument, but `1` is a number
        where(rows, 1, 'x')
                    ^"#]],
    );
    check_type(
        "where(name, 'city', 'x')",
        expect![[r#"
        1:7: `where` needs a list, but `name` is a string
        where(name, 'city', 'x')
              ^^^^"#]],
    );
    check_type(
        "len(nmae)",
        expect![[r#"
        1:5: unknown variable `nmae` (did you mean `name`?)
        len(nmae)
            ^^^^"#]],
    );
}

#[test]
fn eval_literals_and_paths() {
    check_eval("12", expect!["12 : number"]);
    check_eval("'a' ", expect![[r#""a" : string"#]]);
    check_eval(
        "[1, 'a', null, [true]]",
        expect![[r#"[1, "a", null, [true]] : list<any>"#]],
    );
    check_eval("name", expect![[r#""Ada" : string"#]]);
    check_eval("cart.items[0].price", expect!["9.5 : any"]);
    check_eval("cart['items'][1]['sku']", expect![[r#""B2" : any"#]]);
    check_eval("tags[1]", expect![[r#""vip" : string"#]]);
    check_eval("matrix[1][0]", expect!["3 : number"]);
    check_eval("row.name", expect![[r#""Tea" : any"#]]);
    check_eval("rows[2]", expect![[r#"{city: "Shanghai"} : map"#]]);
}

#[test]
fn eval_safe_navigation() {
    check_eval("tags[2]", expect!["null : string"]);
    check_eval("tags[-1]", expect!["null : string"]);
    check_eval("tags[0.5]", expect!["null : string"]);
    check_eval("tags[1.0]", expect![[r#""vip" : string"#]]);
    check_eval("cart.missing", expect!["null : any"]);
    check_eval("cart.missing.deeper[3].still", expect!["null : any"]);
    check_eval("cart.coupon.code", expect!["null : any"]);
    check_eval("rows[2].open", expect!["null : any"]);
    check_eval("rows[7].city", expect!["null : any"]);
    check_eval("nothing.x", expect!["null : any"]);
    check_eval("nothing[0]", expect!["null : any"]);
    check_eval("nothing['k']", expect!["null : any"]);
    check_eval("rows[5].city == null", expect!["true : bool"]);
}

#[test]
fn eval_path_errors() {
    check_eval(
        "cart.items[2].price",
        expect![[r#"
        1:15: cannot read `.price`: only maps have fields, but this is a string
        cart.items[2].price
                      ^^^^^"#]],
    );
    check_eval(
        "word.length",
        expect![[r#"
        1:6: cannot read `.length`: only maps have fields, but this is a string
        word.length
             ^^^^^^"#]],
    );
    check_eval(
        "anything[0]",
        expect![[r#"
        1:1: `[ ]` needs a list or a map, but this is a number
        anything[0]
        ^^^^^^^^^^^"#]],
    );
    check_eval(
        "row[0]",
        expect![[r#"
        1:1: a map is indexed by a string key, but the key is a number
        row[0]
        ^^^^^^"#]],
    );
    check_eval(
        "cart.items['first']",
        expect![[r#"
        1:1: a list is indexed by a number, but the index is a string
        cart.items['first']
        ^^^^^^^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "cart.items[nothing]",
        expect![[r#"
        1:1: a list is indexed by a number, but the index is null
        cart.items[nothing]
        ^^^^^^^^^^^^^^^^^^^"#]],
    );
}

#[test]
fn eval_unary_and_logic() {
    check_eval("!vip", expect!["false : bool"]);
    check_eval("not flag", expect!["true : bool"]);
    check_eval("!!vip", expect!["true : bool"]);
    check_eval("-age", expect!["-36 : number"]);
    check_eval("- -age", expect!["36 : number"]);
    check_eval(
        "-word",
        expect![[r#"
        1:1: `-` needs a number, but found a string
        -word
        ^^^^^"#]],
    );
    check_eval(
        "!anything",
        expect![[r#"
        1:1: `!` needs true or false, but found a number
        !anything
        ^^^^^^^^^"#]],
    );
    check_eval("vip && flag", expect!["false : bool"]);
    check_eval("vip and true", expect!["true : bool"]);
    check_eval("flag || vip", expect!["true : bool"]);
    check_eval("flag or false", expect!["false : bool"]);
    // Short-circuit: the right side is not evaluated.
    check_eval("false && 1 / 0 == 1", expect!["false : bool"]);
    check_eval("true || 1 / 0 == 1", expect!["true : bool"]);
    check_eval("flag && anything", expect!["false : bool"]);
    check_eval("vip || anything", expect!["true : bool"]);
    // Evaluated when needed.
    check_eval(
        "true && 1 / 0 == 1",
        expect![[r#"
        1:9: division by zero
        true && 1 / 0 == 1
                ^^^^^"#]],
    );
    check_eval(
        "vip && anything",
        expect![[r#"
        1:8: `&&` needs true or false, but found a number
        vip && anything
               ^^^^^^^^"#]],
    );
    check_eval(
        "flag or anything",
        expect![[r#"
        1:9: `||` needs true or false, but found a number
        flag or anything
                ^^^^^^^^"#]],
    );
    check_eval(
        "nothing && true",
        expect![[r#"
        1:1: `&&` needs true or false, but found null
        nothing && true
        ^^^^^^^"#]],
    );
}

#[test]
fn eval_equality() {
    check_eval("1 == 1.0", expect!["true : bool"]);
    check_eval("0 == -0", expect!["true : bool"]);
    check_eval("0.1 + 0.2 == 0.3", expect!["false : bool"]);
    check_eval("'a' == 'a'", expect!["true : bool"]);
    check_eval("'a' != 'A'", expect!["true : bool"]);
    check_eval("[1, [2, 'x']] == [1, [2, 'x']]", expect!["true : bool"]);
    check_eval("[1, 2] == [2, 1]", expect!["false : bool"]);
    check_eval("[1] == [1, 1]", expect!["false : bool"]);
    check_eval("rows[0] == rows[0]", expect!["true : bool"]);
    check_eval("rows[0] == rows[2]", expect!["false : bool"]);
    check_eval(
        "cart.items[0] == first(where(cart.items, 'sku', 'A1'))",
        expect!["true : bool"],
    );
    check_eval("null == null", expect!["true : bool"]);
    check_eval("nothing == null", expect!["true : bool"]);
    check_eval("name == null", expect!["false : bool"]);
    check_eval("anything == 'a'", expect!["false : bool"]);
    check_eval("word != 42", expect!["true : bool"]);
    check_eval("flag == 0", expect!["false : bool"]);
}

#[test]
fn eval_comparisons() {
    check_eval("1 < 2", expect!["true : bool"]);
    check_eval("2 <= 2", expect!["true : bool"]);
    check_eval("2 > 2", expect!["false : bool"]);
    check_eval("-1 >= -1.5", expect!["true : bool"]);
    check_eval("'apple' < 'banana'", expect!["true : bool"]);
    check_eval("'Zebra' < 'apple'", expect!["true : bool"]);
    check_eval("'z' < 'é'", expect!["true : bool"]);
    check_eval("'a' < 'ab'", expect!["true : bool"]);
    check_eval("'10' < '9'", expect!["true : bool"]);
    check_eval("word >= 'hello'", expect!["true : bool"]);
    check_eval(
        "word < 3",
        expect![[r#"
        1:1: `<` compares two numbers or two strings, but found a string and a number
        word < 3
        ^^^^^^^^"#]],
    );
    check_eval(
        "nothing > 1",
        expect![[r#"
        1:1: `>` compares two numbers or two strings, but found null and a number
        nothing > 1
        ^^^^^^^^^^^"#]],
    );
}

#[test]
fn eval_arithmetic() {
    check_eval("1 + 2 * 3", expect!["7 : number"]);
    check_eval("(1 + 2) * 3", expect!["9 : number"]);
    check_eval("0.1 + 0.2", expect!["0.30000000000000004 : number"]);
    check_eval("7 - 10", expect!["-3 : number"]);
    check_eval("7 / 2", expect!["3.5 : number"]);
    check_eval("1 / 3", expect!["0.3333333333333333 : number"]);
    check_eval("7 % 3", expect!["1 : number"]);
    check_eval("-7 % 3", expect!["-1 : number"]);
    check_eval("7.5 % 2", expect!["1.5 : number"]);
    check_eval(
        "name + ' ' + 'Lovelace'",
        expect![[r#""Ada Lovelace" : string"#]],
    );
    check_eval(
        "tags + ['x', 'y']",
        expect![[r#"["new", "vip", "x", "y"] : list<string>"#]],
    );
    check_eval("[] + []", expect!["[] : list<any>"]);
    check_eval("anything + 1", expect!["43 : number"]);
    check_eval(
        "1 / 0",
        expect![[r#"
        1:1: division by zero
        1 / 0
        ^^^^^"#]],
    );
    check_eval(
        "1 / (age - 36)",
        expect![[r#"
        1:1: division by zero
        1 / (age - 36)
        ^^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "5 % 0",
        expect![[r#"
        1:1: division by zero
        5 % 0
        ^^^^^"#]],
    );
    check_eval(
        "1 / -0",
        expect![[r#"
        1:1: division by zero
        1 / -0
        ^^^^^^"#]],
    );
    check_eval(
        "anything + 'a'",
        expect![[r#"
        1:1: `+` needs two numbers, two strings or two lists, but found a number and a string
        anything + 'a'
        ^^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "word - 1",
        expect![[r#"
        1:1: `-` needs two numbers, but found a string and a number
        word - 1
        ^^^^^^^^"#]],
    );
    check_eval(
        "nothing * 2",
        expect![[r#"
        1:1: `*` needs two numbers, but found null and a number
        nothing * 2
        ^^^^^^^^^^^"#]],
    );
    check_eval(
        "len(word) +\n  (1 / (age - 36))",
        expect![[r#"
        2:4: division by zero
          (1 / (age - 36))
           ^^^^^^^^^^^^^^"#]],
    );
}

#[test]
fn eval_string_functions() {
    check_eval("len('你好')", expect!["2 : number"]);
    check_eval("len(empty)", expect!["0 : number"]);
    check_eval("len(tags)", expect!["2 : number"]);
    check_eval("len(cart)", expect!["3 : number"]);
    check_eval("len(word)", expect!["5 : number"]);
    check_eval(
        "len(anything)",
        expect![[r#"
        1:1: `len` needs a string, a list or a map, but found a number
        len(anything)
        ^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "len(nothing)",
        expect![[r#"
        1:1: `len` needs a string, a list or a map, but found null
        len(nothing)
        ^^^^^^^^^^^^"#]],
    );
    check_eval("lower('ÀBC Straße')", expect![[r#""àbc straße" : string"#]]);
    check_eval("upper('straße')", expect![[r#""STRASSE" : string"#]]);
    check_eval(r"trim('  a b \n\t')", expect![[r#""a b" : string"#]]);
    check_eval(
        r"trim('\u{3000}全角\u{3000}')",
        expect![[r#""全角" : string"#]],
    );
    check_eval(
        "lower(anything)",
        expect![[r#"
        1:1: `lower` needs a string, but found a number
        lower(anything)
        ^^^^^^^^^^^^^^^"#]],
    );
    check_eval("starts_with(name, 'Ad')", expect!["true : bool"]);
    check_eval("starts_with(name, '')", expect!["true : bool"]);
    check_eval("ends_with(name, 'DA')", expect!["false : bool"]);
    check_eval(
        "ends_with(word, anything)",
        expect![[r#"
        1:1: `ends_with` needs a string as its second argument, but found a number
        ends_with(word, anything)
        ^^^^^^^^^^^^^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "split('a,b,,c', ',')",
        expect![[r#"["a", "b", "", "c"] : list<string>"#]],
    );
    check_eval(
        "split('a, b', ', ')",
        expect![[r#"["a", "b"] : list<string>"#]],
    );
    check_eval("split('', ',')", expect![[r#"[""] : list<string>"#]]);
    check_eval(
        "split('你好', '')",
        expect![[r#"["你", "好"] : list<string>"#]],
    );
    check_eval(
        "split('abc', 'abc')",
        expect![[r#"["", ""] : list<string>"#]],
    );
    check_eval("join(tags, ', ')", expect![[r#""new, vip" : string"#]]);
    check_eval(
        "join([1, 2.5, true, null, 'x', [3, 4]], '-')",
        expect![[r#""1-2.5-true--x-3, 4" : string"#]],
    );
    check_eval("join([], ',')", expect![[r#""" : string"#]]);
    check_eval(
        "join(anything, ',')",
        expect![[r#"
        1:1: `join` needs a list, but found a number
        join(anything, ',')
        ^^^^^^^^^^^^^^^^^^^"#]],
    );
    check_eval("string(3)", expect![[r#""3" : string"#]]);
    check_eval("string(2.50)", expect![[r#""2.5" : string"#]]);
    check_eval("string(null)", expect![[r#""" : string"#]]);
    check_eval("string(tags)", expect![[r#""new, vip" : string"#]]);
    check_eval(
        "string(cart.items[1])",
        expect![[r#""{\"price\":20,\"qty\":1,\"sku\":\"B2\"}" : string"#]],
    );
    check_eval("string(false)", expect![[r#""false" : string"#]]);
}

#[test]
fn eval_contains() {
    check_eval("contains(name, 'd')", expect!["true : bool"]);
    check_eval("contains(name, '')", expect!["true : bool"]);
    check_eval("contains(name, 'x')", expect!["false : bool"]);
    check_eval("contains(tags, 'vip')", expect!["true : bool"]);
    check_eval("contains(tags, 'VIP')", expect!["false : bool"]);
    check_eval("contains(matrix, [1, 2])", expect!["true : bool"]);
    check_eval("contains(cart.items, rows[0])", expect!["false : bool"]);
    check_eval("contains(cart.items, 'gift')", expect!["true : bool"]);
    check_eval("contains(cart, 'coupon')", expect!["true : bool"]);
    check_eval("contains(row, 'price')", expect!["false : bool"]);
    check_eval(
        "contains(word, 1)",
        expect![[r#"
        1:1: `contains` looks for a string inside a string, but found a number
        contains(word, 1)
        ^^^^^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "contains(row, anything)",
        expect![[r#"
        1:1: `contains` looks for a key (a string) in a map, but found a number
        contains(row, anything)
        ^^^^^^^^^^^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "contains(anything, 1)",
        expect![[r#"
        1:1: `contains` needs a string, a list or a map, but found a number
        contains(anything, 1)
        ^^^^^^^^^^^^^^^^^^^^^"#]],
    );
}

#[test]
fn eval_number_functions() {
    check_eval("round(2.5)", expect!["3 : number"]);
    check_eval("round(-2.5)", expect!["-3 : number"]);
    check_eval("round(2.4999)", expect!["2 : number"]);
    check_eval("round(-0.4)", expect!["0 : number"]);
    check_eval("round(1.005, 2)", expect!["1.01 : number"]);
    check_eval("round(2.345, 2)", expect!["2.35 : number"]);
    check_eval("round(-1.005, 2)", expect!["-1.01 : number"]);
    check_eval("round(1234.5678, 1)", expect!["1234.6 : number"]);
    check_eval("round(99.995, 2)", expect!["100 : number"]);
    check_eval("round(9.5, 0)", expect!["10 : number"]);
    check_eval("round(0.0004, 3)", expect!["0 : number"]);
    check_eval("round(0.0005, 3)", expect!["0.001 : number"]);
    check_eval("round(0.00000001, 2)", expect!["0 : number"]);
    check_eval(
        "round(123456789012345678, 2)",
        expect!["123456789012345680 : number"],
    );
    check_eval("round(0.1 + 0.2, 15)", expect!["0.3 : number"]);
    check_eval(
        "round(1, 2.5)",
        expect![[r#"
        1:1: `round` keeps a whole number of digits from 0 to 15, but was asked for 2.5
        round(1, 2.5)
        ^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "round(1, -1)",
        expect![[r#"
        1:1: `round` keeps a whole number of digits from 0 to 15, but was asked for -1
        round(1, -1)
        ^^^^^^^^^^^^"#]],
    );
    check_eval(
        "round(1, 16)",
        expect![[r#"
        1:1: `round` keeps a whole number of digits from 0 to 15, but was asked for 16
        round(1, 16)
        ^^^^^^^^^^^^"#]],
    );
    check_eval(
        "round(word)",
        expect![[r#"
        1:1: `round` needs a number, but found a string
        round(word)
        ^^^^^^^^^^^"#]],
    );
    check_eval("floor(1.5)", expect!["1 : number"]);
    check_eval("floor(-1.5)", expect!["-2 : number"]);
    check_eval("ceil(1.2)", expect!["2 : number"]);
    check_eval("ceil(-1.5)", expect!["-1 : number"]);
    check_eval("abs(-3)", expect!["3 : number"]);
    check_eval("abs(age)", expect!["36 : number"]);
    check_eval("min(age, 3)", expect!["3 : number"]);
    check_eval("max(age, 3)", expect!["36 : number"]);
    check_eval("min(-1, -1.5)", expect!["-1.5 : number"]);
    check_eval(
        "max(word, 1)",
        expect![[r#"
        1:1: `max` needs a number, but found a string
        max(word, 1)
        ^^^^^^^^^^^^"#]],
    );
    check_eval("number(' 42 ')", expect!["42 : number"]);
    check_eval("number('3.5')", expect!["3.5 : number"]);
    check_eval("number('-1e3')", expect!["-1000 : number"]);
    check_eval("number('.5')", expect!["0.5 : number"]);
    check_eval("number('5.')", expect!["5 : number"]);
    check_eval("number('+7')", expect!["7 : number"]);
    check_eval("number(age)", expect!["36 : number"]);
    check_eval("number(anything)", expect!["42 : number"]);
    check_eval(
        "number('abc')",
        expect![[r#"
        1:1: `number` cannot read "abc" as a number
        number('abc')
        ^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "number('')",
        expect![[r#"
        1:1: `number` cannot read "" as a number
        number('')
        ^^^^^^^^^^"#]],
    );
    check_eval(
        "number('1,000')",
        expect![[r#"
        1:1: `number` cannot read "1,000" as a number
        number('1,000')
        ^^^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "number('12元')",
        expect![[r#"
        1:1: `number` cannot read "12元" as a number
        number('12元')
        ^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "number('inf')",
        expect![[r#"
        1:1: `number` cannot read "inf" as a number
        number('inf')
        ^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "number('NaN')",
        expect![[r#"
        1:1: `number` cannot read "NaN" as a number
        number('NaN')
        ^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "number('1e999')",
        expect![[r#"
        1:1: `number` cannot read "1e999" as a number
        number('1e999')
        ^^^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "number('1e')",
        expect![[r#"
        1:1: `number` cannot read "1e" as a number
        number('1e')
        ^^^^^^^^^^^^"#]],
    );
    check_eval(
        "number(flag)",
        expect![[r#"
        1:1: `number` needs a string or a number, but found a bool
        number(flag)
        ^^^^^^^^^^^^"#]],
    );
    check_eval(
        "number(nothing)",
        expect![[r#"
        1:1: `number` needs a string or a number, but found null
        number(nothing)
        ^^^^^^^^^^^^^^^"#]],
    );
}

#[test]
fn eval_list_functions() {
    check_eval("first(tags)", expect![[r#""new" : string"#]]);
    check_eval("last(prices)", expect!["0.5 : number"]);
    check_eval("first([])", expect!["null : any"]);
    check_eval("last(split('', 'x'))", expect![[r#""" : string"#]]);
    check_eval("first(matrix)", expect!["[1, 2] : list<number>"]);
    check_eval(
        "first(word)",
        expect![[r#"
        1:1: `first` needs a list, but found a string
        first(word)
        ^^^^^^^^^^^"#]],
    );
    check_eval("sum(prices)", expect!["30 : number"]);
    check_eval("sum([])", expect!["0 : number"]);
    check_eval(
        "sum([0.1, 0.2, 0.3])",
        expect!["0.6000000000000001 : number"],
    );
    check_eval(
        "sum(pluck(cart.items, 'qty'))",
        expect![[r#"
        1:1: `sum` needs a list of numbers, but element 3 is null
        sum(pluck(cart.items, 'qty'))
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "sum(anything)",
        expect![[r#"
        1:1: `sum` needs a list, but found a number
        sum(anything)
        ^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "pluck(cart.items, 'sku')",
        expect![[r#"["A1", "B2", null] : list<any>"#]],
    );
    check_eval(
        "pluck(rows, 'open')",
        expect!["[true, false, null] : list<any>"],
    );
    check_eval("pluck([], 'x')", expect!["[] : list<any>"]);
    check_eval(
        "pluck(anything, 'x')",
        expect![[r#"
        1:1: `pluck` needs a list, but found a number
        pluck(anything, 'x')
        ^^^^^^^^^^^^^^^^^^^^"#]],
    );
    check_eval(
        "where(rows, 'city', 'Shanghai')",
        expect![[r#"[{city: "Shanghai", open: true}, {city: "Shanghai"}] : list<map>"#]],
    );
    check_eval(
        "where(rows, 'open', null)",
        expect![[r#"[{city: "Shanghai"}] : list<map>"#]],
    );
    check_eval(
        "where(cart.items, 'sku', 'B2')",
        expect![[r#"[{price: 20, qty: 1, sku: "B2"}] : list<map>"#]],
    );
    check_eval("where(rows, 'city', 1)", expect!["[] : list<map>"]);
    check_eval("len(where(rows, 'open', true)) > 0", expect!["true : bool"]);
    check_eval(
        "where(word, 'x', 1)",
        expect![[r#"
        1:1: `where` needs a list, but found a string
        where(word, 'x', 1)
        ^^^^^^^^^^^^^^^^^^^"#]],
    );
    check_eval("is_empty('')", expect!["true : bool"]);
    check_eval("is_empty(' ')", expect!["false : bool"]);
    check_eval("is_empty(nothing)", expect!["true : bool"]);
    check_eval("is_empty([])", expect!["true : bool"]);
    check_eval("is_empty(tags)", expect!["false : bool"]);
    check_eval("is_empty(cart)", expect!["false : bool"]);
    check_eval("is_empty(cart.coupon)", expect!["true : bool"]);
    check_eval(
        "is_empty(anything)",
        expect![[r#"
        1:1: `is_empty` needs a string, a list, a map or null, but found a number
        is_empty(anything)
        ^^^^^^^^^^^^^^^^^^"#]],
    );
}

#[test]
fn eval_default() {
    check_eval("default(nothing, 'x')", expect![[r#""x" : any"#]]);
    check_eval("default(empty, 'guest')", expect![[r#""guest" : string"#]]);
    check_eval("default(name, 'guest')", expect![[r#""Ada" : string"#]]);
    check_eval("default(0, 1)", expect!["0 : number"]);
    check_eval("default(false, true)", expect!["false : bool"]);
    check_eval("default([], [1])", expect!["[] : list<any>"]);
    check_eval(
        "default(cart.coupon.code, 'none')",
        expect![[r#""none" : any"#]],
    );
    // Every argument is evaluated, even when the first one is used.
    check_eval(
        "default(name, 1 / 0)",
        expect![[r#"
        1:15: division by zero
        default(name, 1 / 0)
                      ^^^^^"#]],
    );
}

#[test]
fn eval_unknown_variable_at_run_time() {
    let expr = parse("1 +\n  missing").unwrap();
    let error = expr.eval(&BTreeMap::<String, Value>::new()).unwrap_err();
    expect![[r#"
        2:3: the variable `missing` does not exist
          missing
          ^^^^^^^"#]]
    .assert_eq(&render_error("1 +\n  missing", error.span, &error.message));
    assert_eq!(
        error.to_string(),
        "line 2, column 3: the variable `missing` does not exist"
    );
}

#[test]
fn variables_are_root_names() {
    let expr = parse("cart.items[len(tags)].price + sum(prices) + row[name] + x").unwrap();
    expect![[r#"{"cart", "name", "prices", "row", "tags", "x"}"#]]
        .assert_eq(&format!("{:?}", expr.variables()));
    assert!(parse("1 + len('a')").unwrap().variables().is_empty());
}

#[test]
fn builtins_on_values_the_syntax_cannot_write() {
    let nan = Value::Number(f64::NAN);
    let one = Value::Number(1.0);
    assert_eq!(builtins::eq(&nan, &nan), Ok(Value::Bool(false)));
    assert_eq!(builtins::lt(&nan, &one), Ok(Value::Bool(false)));
    assert_eq!(builtins::ge(&nan, &one), Ok(Value::Bool(false)));
    assert_eq!(builtins::min(&nan, &one), Ok(one.clone()));
    assert_eq!(
        builtins::round(&Value::Number(f64::INFINITY), Some(&one)),
        Ok(Value::Number(f64::INFINITY))
    );
    let big = Value::Number(1e308);
    assert_eq!(
        builtins::mul(&big, &Value::Number(10.0)),
        Err("the result of `*` is too large to be a number".to_owned())
    );
    assert_eq!(
        builtins::add(&big, &big),
        Err("the result of `+` is too large to be a number".to_owned())
    );
    assert_eq!(
        builtins::sum(&Value::List(vec![big.clone(), big])),
        Err("the result of `sum` is too large to be a number".to_owned())
    );
    // A call with the wrong number of arguments (only generated code could make one).
    expect!["`len` takes 1 argument (a string, a list or a map), but got none"]
        .assert_eq(&builtins::call(Function::Len, &[]).unwrap_err());
    expect!["`&&` needs true or false, but found a number"]
        .assert_eq(&builtins::binary(BinaryOp::And, &Value::Bool(true), &one).unwrap_err());
    for f in Function::ALL {
        assert_eq!(Function::from_name(f.name()), Some(f));
    }
}

#[test]
fn templates() {
    check_template("Hello {{ name }}!", expect!["Hello Ada!"]);
    check_template(
        "Hello {{name}}, you are {{age}}.",
        expect!["Hello Ada, you are 36."],
    );
    check_template("{{name}}{{age}}", expect!["Ada36"]);
    check_template("no holes at all", expect!["no holes at all"]);
    check_template("", expect![[""]]);
    check_template(
        "{{ tags }} / {{ prices }} / {{ vip }} / [{{ nothing }}]",
        expect!["new, vip / 9.5, 20, 0.5 / true / []"],
    );
    check_template(
        "{{ cart.items[1] }}",
        expect![[r#"{"price":20,"qty":1,"sku":"B2"}"#]],
    );
    check_template(
        "Total: {{ round(sum(prices) * 1.13, 2) }} 元",
        expect!["Total: 33.9 元"],
    );
    check_template("{{\n  default(row.name, 'friend')\n}}", expect!["Tea"]);
    check_template(
        r"Write \{{ name }} to insert a name",
        expect!["Write {{ name }} to insert a name"],
    );
    check_template(r"\{{{{ name }}", expect!["{{Ada"]);
    check_template("a }} b { c } {d}", expect!["a }} b { c } {d}"]);
    check_template("{{ '}}' + \"{{\" }}", expect!["}}{{"]);
    check_template("您好，{{ name }}！", expect!["您好，Ada！"]);
}

#[test]
fn template_errors() {
    check_template(
        "Hello {{ }}!",
        expect![[r#"
        parse: 1:7: empty `{{ }}`: put an expression between the braces, like `{{ name }}`
        Hello {{ }}!
              ^^^^^"#]],
    );
    check_template(
        "Hello {{}}",
        expect![[r#"
        parse: 1:7: empty `{{ }}`: put an expression between the braces, like `{{ name }}`
        Hello {{}}
              ^^^^"#]],
    );
    check_template(
        "Hello {{ name",
        expect![[r#"
        parse: 1:7: this `{{` is never closed: end the expression with `}}`
        Hello {{ name
              ^^"#]],
    );
    check_template(
        "Hello {{",
        expect![[r#"
        parse: 1:7: this `{{` is never closed: end the expression with `}}`
        Hello {{
              ^^"#]],
    );
    check_template(
        "Hello {{ name }",
        expect![[r#"
        parse: 1:15: unexpected `}`: the expression must end with `}}`
        Hello {{ name }
                      ^"#]],
    );
    check_template(
        "Hello {{ name } and more",
        expect![[r#"
        parse: 1:15: unexpected `}`: the expression must end with `}}`
        Hello {{ name } and more
                      ^"#]],
    );
    check_template(
        "Hello {{ name more }}",
        expect![[r#"
        parse: 1:15: expected an operator or `}}`, found `more` (is an operator missing between the two?)
        Hello {{ name more }}
                      ^^^^"#]],
    );
    check_template(
        "Hello {{ 'unclosed }}",
        expect![[r#"
        parse: 1:10: unclosed string: add a closing ' at the end of the text
        Hello {{ 'unclosed }}
                 ^^^^^^^^^^^^"#]],
    );
    check_template(
        "Hello {{ name + }}",
        expect![[r#"
        parse: 1:17: expected a value after `+`, found `}}`
        Hello {{ name + }}
                        ^^"#]],
    );
    check_template(
        "{{ a }} and {{ (b }}",
        expect![[r#"
        parse: 1:19: expected `)` to close the `(` at line 1, column 16, found `}}`
        {{ a }} and {{ (b }}
                          ^^"#]],
    );
    check_template(
        "Line one\nLine two {{ nmae }}",
        expect![[r#"
        type: 2:13: unknown variable `nmae` (did you mean `name`?)
        Line two {{ nmae }}
                    ^^^^"#]],
    );
    check_template(
        "第一行\n  第二行：{{ lenght(tags) }}",
        expect![[r#"
        parse: 2:10: unknown function `lenght` (did you mean `len`?)
          第二行：{{ lenght(tags) }}
                 ^^^^^^"#]],
    );
    check_template(
        "Dear {{ name }},\nyour total is {{\n  age +\n  name }}.",
        expect![[r#"
        type: 3:3: `+` needs two numbers, two strings or two lists, but `age` is a number and `name` is a string: to put a number into text, convert it with `string(...)` or use a template
          age +
          ^^^^^"#]],
    );
    check_template(
        "{{ name }} owes {{ 1 / (age - 36) }}",
        expect![[r#"
        eval: 1:20: division by zero
        {{ name }} owes {{ 1 / (age - 36) }}
                           ^^^^^^^^^^^^^^"#]],
    );
}

#[test]
fn template_structure() {
    let template = parse_template("Hi {{ name }}, \\{{x}} {{ len(tags) }}").unwrap();
    let segments: Vec<String> = template
        .segments()
        .iter()
        .map(|segment| match segment {
            Segment::Text(text) => format!("text {text:?}"),
            Segment::Hole(expr) => {
                let span = expr.span();
                format!(
                    "hole {:?} at {}:{} = {}",
                    expr.source(),
                    span.line,
                    span.column,
                    sexp(expr.root())
                )
            }
        })
        .collect();
    expect![[r#"
        text "Hi "
        hole "name" at 1:7 = name
        text ", {{x}} "
        hole "len(tags)" at 1:26 = (len tags)"#]]
    .assert_eq(&segments.join("\n"));
    expect![[r#"{"name", "tags"}"#]].assert_eq(&format!("{:?}", template.variables()));
    let Segment::Hole(hole) = &template.segments()[1] else {
        panic!("expected a hole")
    };
    assert_eq!(hole.to_string(), "name");
    assert_eq!(hole.text_of(hole.span()), Some("name"));
}

/// Texts made of pieces of the language, to reach deeper than random characters do.
fn token_soup() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "(",
        ")",
        "[",
        "]",
        ",",
        ".",
        "+",
        "-",
        "*",
        "/",
        "%",
        "!",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "and",
        "or",
        "not",
        "true",
        "false",
        "null",
        "0",
        "1",
        "2.5",
        "-3",
        "\"a\"",
        "'b'",
        "''",
        "'é'",
        "\"",
        "'",
        "\\",
        "\\u{41}",
        "{{",
        "}}",
        "\\{{",
        "{",
        "}",
        "=",
        "&",
        "|",
        "（",
        "名",
        "name",
        "age",
        "vip",
        "tags",
        "prices",
        "matrix",
        "cart",
        "items",
        "rows",
        "row",
        "nothing",
        "anything",
        "word",
        "flag",
        "empty",
        "x",
        "len",
        "contains",
        "lower",
        "upper",
        "trim",
        "starts_with",
        "ends_with",
        "join",
        "split",
        "first",
        "last",
        "round",
        "floor",
        "ceil",
        "abs",
        "min",
        "max",
        "number",
        "string",
        "is_empty",
        "sum",
        "pluck",
        "where",
        "default",
        "lenght",
    ]);
    let separator = prop::sample::select(vec!["", " ", "\n"]);
    prop::collection::vec((piece, separator), 0..40).prop_map(|pieces| {
        pieces
            .into_iter()
            .map(|(piece, separator)| format!("{piece}{separator}"))
            .collect()
    })
}

fn assert_span_in(src: &str, span: Span) {
    assert!(
        span.start <= span.end && span.end <= src.len(),
        "{span:?} in {src:?}"
    );
    assert!(src.is_char_boundary(span.start) && src.is_char_boundary(span.end));
    let line_start = src[..span.start].rfind('\n').map_or(0, |i| i + 1);
    assert_eq!(
        span.line as usize,
        src[..span.start].matches('\n').count() + 1
    );
    assert_eq!(
        span.column as usize,
        src[line_start..span.start].chars().count() + 1
    );
}

/// Whatever the input: no panic, errors located inside it, and well-typed expressions
/// evaluate to values of their type.
fn never_panics(src: &str) {
    let (types, values) = (type_env(), value_env());
    match parse(src) {
        Ok(expr) => {
            assert_eq!(expr.to_string(), src);
            expr.root().walk(&mut |node| assert_span_in(src, node.span));
            expr.root().walk(&mut |node| {
                if let ExprKind::Binary { op_span, .. } = &node.kind {
                    assert_span_in(src, *op_span);
                }
            });
            match expr.check(&types) {
                Ok(t) => match expr.eval(&values) {
                    Ok(value) => assert!(value.fits(&t), "{src:?}: {value:?} does not fit {t}"),
                    Err(error) => assert_span_in(src, error.span),
                },
                Err(error) => assert_span_in(src, error.span),
            }
        }
        Err(error) => assert_span_in(src, error.span),
    }
    match parse_template(src) {
        Ok(template) => {
            for segment in template.segments() {
                if let Segment::Hole(expr) = segment {
                    expr.root().walk(&mut |node| assert_span_in(src, node.span));
                }
            }
            if template.check(&types).is_ok()
                && let Err(error) = template.render(&values)
            {
                assert_span_in(src, error.span);
            }
        }
        Err(error) => assert_span_in(src, error.span),
    }
}

proptest! {
    #[test]
    fn random_text_never_panics(src in "(\\PC|\n|\\{\\{|\\}\\})*") {
        never_panics(&src);
    }

    #[test]
    fn random_token_soup_never_panics(src in token_soup()) {
        never_panics(&src);
    }
}

#[test]
fn long_lines_of_chinese_text_locate_errors() {
    let line = "您好，{{ name }}！".repeat(5_000);
    let src = format!("{line}\n{line}{{{{ nmae }}}}");
    let error = parse_template(&src)
        .unwrap()
        .check(&type_env())
        .unwrap_err();
    assert_eq!((error.span.line, error.span.column), (2, 5_000 * 14 + 4));
}
