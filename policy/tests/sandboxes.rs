//! Data sandboxes: the masking functions on awkward text, and row filters on records.

use std::collections::BTreeMap;

use expect_test::expect;
use flows::Value;
use policy::{MaskKind, Subject};

use crate::{list, s};

#[test]
fn masks() {
    let cases = [
        (MaskKind::Phone, "13812341234", "138****1234"),
        (MaskKind::Phone, "+86 138 1234 1234", "+86**********1234"),
        (MaskKind::Phone, "1234567", "1******"),
        (MaskKind::Phone, "12", "1*"),
        (MaskKind::Phone, "1", "*"),
        (MaskKind::Phone, "", ""),
        (MaskKind::Email, "wang@example.com", "w***@example.com"),
        (MaskKind::Email, "w@example.com", "w***@example.com"),
        (MaskKind::Email, "@example.com", "***@example.com"),
        (MaskKind::Email, "王小明@例子.中国", "王***@例子.中国"),
        (MaskKind::Email, "a@b@c.cn", "a***@c.cn"),
        (MaskKind::Email, "no-at-sign", "n*********"),
        (MaskKind::Email, "trailing@", "t********"),
        (
            MaskKind::IdNumber,
            "110101199003071234",
            "110***********1234",
        ),
        (
            MaskKind::IdNumber,
            "11010119900307123X",
            "110***********123X",
        ),
        (MaskKind::IdNumber, "G1234", "G****"),
        (
            MaskKind::Address,
            "北京市朝阳区建国路88号",
            "北京市朝阳区****",
        ),
        (MaskKind::Address, "上海市", "上****"),
        (MaskKind::Address, "221B Baker Street, London", "221B B****"),
        (MaskKind::Address, "x", "****"),
        (MaskKind::Address, "", ""),
        (MaskKind::Name, "张三丰", "张**"),
        (MaskKind::Name, "王", "*"),
        (MaskKind::Name, "Wang Wei", "W*******"),
        (MaskKind::Redact, "anything at all", "***"),
        (MaskKind::Phone, "👨‍👩‍👧‍👦12345678", "👨\u{200d}👩********5678"),
    ];
    let mut failures = Vec::new();
    for (kind, input, expected) in cases {
        let got = kind.mask_str(input);
        if got != expected {
            failures.push(format!(
                "{kind}({input:?}) = {got:?}, expected {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn masks_of_values() {
    let values = Value::List(vec![
        Value::Number(13_812_341_234.0),
        s("13912345678"),
        Value::Null,
        Value::Bool(true),
        list(&["13000000000"]),
    ]);
    expect!["138****1234, 139****5678, , ***, 130****0000"]
        .assert_eq(&MaskKind::Phone.mask(&values).to_string());
}

const SANDBOXES: &str = r#"
sandbox {
  department = "sales"
  entity     = "customers"
  rows       = "row.region == agent.region && row.status != \"archived\""
  mask       = { phone = "phone", email = "email", id_card = "id_number", address = "address" }
}
sandbox {
  department = "*"
  entity     = "customers"
  rows       = "contains([\"public\", \"demo\"], row.kind) || row.owner == agent.id"
  mask       = { phone = "redact", "full name" = "name" }
}
sandbox {
  department = "support"
  entity     = "customers"
  rows       = "!(row.level >= 3) && contains(agent.regions, row.region)"
}
"#;

fn record(fields: &[(&str, Value)]) -> Value {
    Value::Map(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[test]
fn views_filter_rows_and_mask_fields() {
    let config = policy::load(SANDBOXES).unwrap();
    let sandboxes = &config.sandboxes;
    let sales = Subject::new("li").team("sales").attr("region", s("north"));
    let support = Subject::new("wang")
        .team("support")
        .attr("regions", list(&["north", "east"]));
    let other = Subject::new("zhao").team("finance");

    let view = sandboxes.view(&sales, "customers").unwrap();
    assert_eq!(view.department, "sales");
    expect![[r#"Some("(row.region == agent.region && row.status != \"archived\")")"#]].assert_eq(
        &format!("{:?}", view.rows.as_ref().map(ToString::to_string)),
    );
    let north = record(&[
        ("region", s("north")),
        ("status", s("active")),
        ("phone", s("13812341234")),
        ("email", s("li.lei@example.com")),
        ("id_card", s("110101199003071234")),
        ("address", s("北京市朝阳区建国路88号")),
        ("name", s("李雷")),
    ]);
    assert!(view.shows(&north, &sales));
    assert!(!view.shows(
        &record(&[("region", s("south")), ("status", s("active"))]),
        &sales
    ));
    assert!(!view.shows(
        &record(&[("region", s("north")), ("status", s("archived"))]),
        &sales
    ));
    // `!=` with a value of another kind is unknown, not true: a status that is a number or a
    // list hides the row instead of passing `status != "archived"`.
    for status in [Value::Number(1.0), list(&["archived"]), Value::Null] {
        assert!(!view.shows(
            &record(&[("region", s("north")), ("status", status.clone())]),
            &sales
        ));
    }
    let mut masked = north;
    view.mask_record(&mut masked);
    expect![[r#"{"address":"北京市朝阳区****","email":"l***@example.com","id_card":"110***********1234","name":"李雷","phone":"138****1234","region":"north","status":"active"}"#]]
        .assert_eq(&masked.to_string());

    // The bound filter is what the runtime turns into SQL: no agent attributes left.
    expect![[r#"(row.region == "north" && row.status != "archived")"#]]
        .assert_eq(&view.rows.as_ref().unwrap().bind(&sales).to_string());
    expect![[r#"{"region", "status"}"#]]
        .assert_eq(&format!("{:?}", view.rows.as_ref().unwrap().columns()));

    let view = sandboxes.view(&support, "customers").unwrap();
    assert!(view.shows(
        &record(&[("region", s("east")), ("level", Value::Number(2.0))]),
        &support
    ));
    assert!(!view.shows(
        &record(&[("region", s("east")), ("level", Value::Number(3.0))]),
        &support
    ));
    assert!(!view.shows(
        &record(&[("region", s("west")), ("level", Value::Number(1.0))]),
        &support
    ));
    // A level that is not a number cannot be compared: the row is hidden.
    assert!(!view.shows(
        &record(&[("region", s("east")), ("level", s("high"))]),
        &support
    ));
    assert!(view.masks.is_empty());

    // No sandbox of their own: the `*` one.
    let view = sandboxes.view(&other, "customers").unwrap();
    assert_eq!(view.department, "*");
    assert!(view.shows(&record(&[("kind", s("demo"))]), &other));
    assert!(view.shows(&record(&[("owner", s("zhao"))]), &other));
    assert!(!view.shows(
        &record(&[("kind", s("private")), ("owner", s("li"))]),
        &other
    ));
    let mut masked = record(&[("phone", s("13812341234")), ("full name", s("赵四"))]);
    view.mask_record(&mut masked);
    expect![[r#"{"full name":"赵*","phone":"***"}"#]].assert_eq(&masked.to_string());

    // No sandbox for the entity at all.
    assert!(sandboxes.view(&sales, "orders").is_none());
}
