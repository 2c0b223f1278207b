//! `connectors.yaml` loading: the documented example, located problems, `${ENV}`
//! substitution, SQL expressions per dialect, and properties over arbitrary input.

use connectors::config::{self, Problem};
use connectors::sqlexpr;
use connectors::{
    Connectors, DriverKind, FieldSource, FieldType, Filter, FilterOp, Operation, Target,
};
use expect_test::{Expect, expect};
use proptest::prelude::*;

fn env(name: &str) -> Option<String> {
    match name {
        "ERP_PASSWORD" => Some("p@ss:w/rd".to_owned()),
        "CRM_TOKEN" => Some("tok-123".to_owned()),
        "DATA_DIR" => Some("/var/lib/kefu".to_owned()),
        _ => None,
    }
}

fn load(yaml: &str) -> Result<Connectors, Vec<Problem>> {
    config::load(yaml, &env)
}

/// The one place that renders a load for snapshots: `ok` or one problem per line.
fn check(yaml: &str, expected: &Expect) {
    let actual = match load(yaml) {
        Ok(_) => "ok\n".to_owned(),
        Err(problems) => problems.iter().map(|p| format!("{p}\n")).collect(),
    };
    expected.assert_eq(&actual);
}

/// The YAML blocks of `docs/connectors.md`, joined: the second continues the first's list.
fn documented_example() -> String {
    let doc = include_str!("../../docs/connectors.md");
    let mut yaml = String::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.starts_with("```yaml") {
            inside = true;
        } else if line.starts_with("```") {
            inside = false;
        } else if inside {
            yaml.push_str(line);
            yaml.push('\n');
        }
    }
    yaml
}

#[test]
fn the_documented_example_loads() {
    let connectors = load(&documented_example()).unwrap_or_else(|problems| {
        panic!(
            "{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let names: Vec<&str> = connectors
        .connectors
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["erp_mysql", "crm", "orders_soap"]);

    let erp = connectors.get("erp_mysql").expect("erp");
    assert_eq!(erp.driver, DriverKind::MySql);
    assert_eq!(
        erp.target,
        Target::Database {
            url: "mysql://user:p%40ss%3Aw%2Frd@10.0.0.1:3306/erp".to_owned()
        }
    );
    assert_eq!(
        format!("{:?}", erp.target),
        "mysql://user:***@10.0.0.1:3306/erp"
    );
    assert_eq!(erp.timeout.as_millis(), 5000);
    assert_eq!(
        (erp.retries, erp.pool_size, erp.breaker_failures),
        (2, 5, 5)
    );
    let users = &erp.entities["user_table"];
    assert_eq!(users.table.as_deref(), Some("users"));
    assert_eq!(users.key, "id");
    let name = users.field("name").expect("name");
    let FieldSource::Sql(expr) = &name.source else {
        panic!("{name:?}")
    };
    assert_eq!(expr.sql, "concat(first_name, ' ', last_name)");
    assert_eq!(expr.columns, ["first_name", "last_name"]);
    assert_eq!(users.field("tags").map(|f| f.ty), Some(FieldType::Json));
    let Operation::Search {
        filters,
        order_by,
        limit,
        distinct_by: None,
    } = &users.operations["by_name"]
    else {
        panic!("{:?}", users.operations)
    };
    assert_eq!(
        filters["name"],
        Filter {
            field: "name".to_owned(),
            op: FilterOp::Contains,
            required: true,
            default: None,
        }
    );
    let order: Vec<(&str, bool)> = order_by.iter().map(|(e, d)| (e.sql.as_str(), *d)).collect();
    assert_eq!(order, [("name", false), ("id", true)]);
    assert_eq!(*limit, 20);
    assert_eq!(users.operations["get"], Operation::Get);

    let crm = connectors.get("crm").expect("crm");
    let Target::Service { base_url, headers } = &crm.target else {
        panic!("{:?}", crm.target)
    };
    assert_eq!(base_url, "https://crm.example.com/api/");
    assert_eq!(headers["Authorization"], "Bearer tok-123");
    let customers = &crm.entities["customers"];
    assert_eq!(
        customers.field("name").map(|f| &f.source),
        Some(&FieldSource::Json("/profile/name".to_owned()))
    );
    let Operation::Request(get) = &customers.operations["get"] else {
        panic!()
    };
    assert_eq!(
        (get.method.as_str(), get.path.as_str()),
        ("GET", "customers/{id}")
    );
    assert_eq!(
        (get.params.as_slice(), get.read),
        (&["id".to_owned()][..], true)
    );
    let Operation::Request(search) = &customers.operations["search"] else {
        panic!()
    };
    assert_eq!(search.params, ["email"]);
    assert_eq!(search.rows, "/items");
    assert!(search.read);

    let soap = connectors.get("orders_soap").expect("soap");
    let orders = &soap.entities["orders"];
    assert_eq!(
        orders.field("city").map(|f| &f.source),
        Some(&FieldSource::Xml("Address/City".to_owned()))
    );
    let Operation::Request(get) = &orders.operations["get"] else {
        panic!()
    };
    assert_eq!(get.method, "POST");
    assert_eq!(get.action.as_deref(), Some("urn:erp#GetOrder"));
    assert_eq!(get.params, ["order_no"]);
    assert_eq!(get.rows, "GetOrderResponse/Order");
}

#[test]
fn every_mistake_is_reported_with_its_position() {
    check(
        r#"connectors:
  - name: erp
    driver: mysql
    dsn: "user:pw@tcp(db:3306)/erp"
    timout_ms: 100
    retries: -1
    data_map:
      users:
        tabel: users
        key: uid
        fields:
          id: user_id
          name: "concat(first_name, (SELECT password FROM admins))"
          mail: { expr: email, type: text2 }
        operations:
          find:
            kind: search
            params:
              q: { field: nam, op: "~" }
            limit: 0
            order_by: ["id; DROP TABLE users"]
  - name: erp
    driver: oracle
  - driver: postgres
    dsn: "mysql://u:secret@h/d"
"#,
        &expect![[r#"
            5:5: unknown key `timout_ms` in a connector (did you mean `timeout_ms`?)
            6:14: `retries` must be between 0 and 10
            9:9: unknown key `tabel` in entity `users` (did you mean `table`?)
            10:14: the key `uid` is not a field of `users` (fields: id, name, mail)
            13:38: field `name`: subqueries are not allowed: a field reads one row of its own table
            14:38: unknown type `text2` (did you mean `text`?); types: auto, text, number, bool, json
            19:27: parameter `q` filters on `nam`, which is not a field (did you mean `name`?); fields: id, name, mail
            19:36: unknown op `~`; ops: = != < <= > >= contains (or eq ne lt le gt ge; quote the symbols in YAML)
            20:20: `limit` must be between 1 and 1000
            21:27: `order_by`: `;` is not allowed: a field is one expression, not a statement
            22:11: duplicate connector name `erp` (first at 2:11)
            23:13: unknown driver `oracle`; drivers: mysql, mariadb, postgres, sqlite, http, soap
            24:5: missing key `name` (what lookup nodes write in `connector`)
            25:10: bad `dsn`: a `mysql:` URL does not fit the postgres driver
        "#]],
    );
}

/// `cache: { level1 }` is every entity's default; an entity's own `level1` wins.
#[test]
fn level_1_is_switched_per_file_and_per_entity() {
    let file = |top: &str, own: &str| {
        format!(
            "{top}connectors:\n  - name: erp\n    driver: sqlite\n    dsn: \"x.db\"\n    data_map:\n      users:\n        ttl_ms: 1000\n{own}        fields: {{ id: id }}\n      orders:\n        ttl_ms: 1000\n        fields: {{ id: id }}\n"
        )
    };
    let level1 = |text: String| -> (bool, bool) {
        let loaded = load(&text).expect("loads");
        let erp = loaded.get("erp").expect("erp");
        (erp.entities["users"].level1, erp.entities["orders"].level1)
    };
    assert_eq!(level1(file("", "")), (true, true));
    assert_eq!(
        level1(file("cache: { level1: false }\n", "")),
        (false, false)
    );
    assert_eq!(
        level1(file("cache: { level1: false }\n", "        level1: true\n")),
        (true, false)
    );
    assert_eq!(level1(file("", "        level1: false\n")), (false, true));
    check(
        &file(
            "cache: { level1: no, levl1: true }\n",
            "        level1: 0\n",
        ),
        &expect![[r#"
            1:18: `cache.level1` must be true or false, not a string
            1:22: unknown key `levl1` in `cache` (did you mean `level1`?)
            9:17: `level1` must be true or false, not a number
        "#]],
    );
}

#[test]
fn service_mistakes() {
    check(
        r#"connectors:
  - name: crm
    driver: http
    dsn: "x"
    base_url: "ftp://crm"
    data_map:
      customers:
        table: customers
        fields: { id: "/id", name: "profile/name", bad: "/a~2" }
        operations:
          get: { method: GET, path: "customers/{uid}", rows: "items" }
          create: { method: POST, path: "customers", body: '{"name": {name}}' }
          fetch: { method: GET, path: "c/{id", body: '{}' }
  - name: orders
    driver: soap
    base_url: "http://erp/soap"
    data_map:
      orders:
        key: no
        fields: { no: "OrderNo", city: "/Address/City" }
        operations:
          get: { method: GET, body: "<GetOrder>{no}</GetOrder>" }
"#,
        &expect![[r#"
            4:5: `dsn` is for SQL connectors; a http connector takes `base_url`
            5:15: `base_url` must be an http:// or https:// URL
            8:9: `table` is for SQL connectors; a http entity is reached through its operations
            9:37: field `name`: a JSON pointer is "" (the whole item) or starts with `/` (`/profile/name`)
            9:60: field `bad`: in a JSON pointer `~` must be followed by 0 or 1
            11:16: a `get` takes exactly the key: its path or body must use `{id}` and no other hole (it uses: {uid})
            11:63: `rows`: a JSON pointer is "" (the whole item) or starts with `/` (`/profile/name`)
            12:71: `body` is not JSON: key must be a string at line 1 column 11
            13:42: `path`: `{` must start a `{name}` hole
            13:54: a GET request has no body
            20:40: field `city`: an element path is local element names separated by `/` (`Address/City`)
            22:16: missing key `rows` in operation `get` (the element path down to the rows, like `GetOrderResponse/Order`)
            22:26: a SOAP request is always POST
        "#]],
    );
}

#[test]
fn yaml_syntax_errors_are_one_problem() {
    check(
        "connectors:\n  - name: x\n   driver: mysql\n",
        &expect![[r#"
            3:4: YAML syntax: while parsing a block collection, did not find expected '-' indicator
        "#]],
    );
    check(
        "connectors: [\n",
        &expect![[r#"
            2:1: YAML syntax: while parsing a node, did not find expected node content
        "#]],
    );
    check(
        "a: 1\na: 2\n",
        &expect![[r#"
            2:1: YAML syntax: duplicated key in mapping
        "#]],
    );
    check("", &expect!["ok\n"]);
    check("connectors: []\n", &expect!["ok\n"]);
    check(
        "connectors: 3\n---\nx: 1\n",
        &expect![[r#"
            3:1: the file must hold one YAML document
        "#]],
    );
    check(
        "conectors: []\n",
        &expect![[r#"
            1:1: unknown key `conectors` in the file (did you mean `connectors`?)
        "#]],
    );
}

#[test]
fn absurd_nesting_is_a_problem_not_a_crash() {
    for text in [
        "- ".repeat(100_000),
        "[".repeat(100_000),
        format!("connectors:\n{}", "  ".repeat(10_000) + "a: "),
    ] {
        if let Err(problems) = load(&text) {
            assert_eq!(problems.len(), 1, "{problems:?}");
        }
    }
    check(
        &"- ".repeat(40),
        &expect![[r#"
            1:65: nested more than 32 levels deep
        "#]],
    );
}

#[test]
fn environment_variables_are_substituted_and_never_shown() {
    let yaml = r#"connectors:
  - name: db
    driver: sqlite
    dsn: "${DATA_DIR}/erp.db"
    data_map:
      t: { fields: { id: "id" } }
  - name: api
    driver: http
    base_url: "https://api/$${NOT_A_VAR}/"
    headers: { X-Key: "${API_KEY}", Authorization: "Bearer ${CRM_TOKEN}" }
    data_map:
      t: { fields: { id: /id }, operations: { get: { path: "t/{id}" } } }
"#;
    check(
        yaml,
        &expect![[r#"
            10:24: environment variable `API_KEY` is not set
        "#]],
    );
    let with_key = |name: &str| match name {
        "API_KEY" => Some("k-secret".to_owned()),
        other => env(other),
    };
    let connectors = config::load(yaml, &with_key).expect("loads with API_KEY");
    assert_eq!(
        connectors.connectors[0].target,
        Target::Database {
            url: "sqlite:///var/lib/kefu/erp.db".to_owned()
        }
    );
    let Target::Service { base_url, headers } = &connectors.connectors[1].target else {
        panic!()
    };
    assert_eq!(base_url, "https://api/${NOT_A_VAR}/");
    assert_eq!(headers["X-Key"], "k-secret");
    assert!(!format!("{:?}", connectors.connectors[1]).contains("k-secret"));

    // A secret that makes a value invalid is not echoed in the problem.
    let leaky = |name: &str| (name == "PW").then(|| "hunter2".to_owned());
    let problems = config::load(
        "connectors:\n  - name: a\n    driver: mysql\n    dsn: \"u:${PW}@tcp(h:1\"\n  - name: b\n    driver: postgres\n    dsn: \"postgres://h/d\"\n    data_map:\n      t: { fields: { id: \"${PW} (\" } }\n  - { name: c, driver: \"${PW}\" }\n",
        &leaky,
    )
    .expect_err("invalid");
    assert_eq!(problems.len(), 3, "{problems:?}");
    for problem in &problems {
        assert!(!problem.message.contains("hunter2"), "{problem}");
    }
}

#[test]
fn sql_dialects_decide_what_parses() {
    let file = |driver: &str, expr: &str| {
        format!(
            "connectors:\n  - name: c\n    driver: {driver}\n    dsn: \"{driver}://h/d\"\n    data_map:\n      t:\n        fields: {{ id: id, x: \"{expr}\" }}\n"
        )
    };
    for driver in ["postgres", "sqlite"] {
        check(
            &file(driver, "first_name || ' ' || last_name"),
            &expect!["ok\n"],
        );
    }
    check(
        &file("mysql", "concat(first_name, ' ', last_name)"),
        &expect!["ok\n"],
    );
    check(
        &file("postgres", "name = $1"),
        &expect![[r#"
            7:38: field `x`: placeholders (`$1`) are not allowed in a field expression: parameters come from the operation's `params`
        "#]],
    );
    check(
        &file("mysql", "name = ?"),
        &expect![[r#"
            7:38: field `x`: placeholders (`?`) are not allowed in a field expression: parameters come from the operation's `params`
        "#]],
    );
    check(
        &file("sqlite", "u.name"),
        &expect![[r#"
            7:31: field `x`: qualified names (`u.name`) are not allowed: a field reads its own table's columns, named alone
        "#]],
    );
}

#[test]
fn injection_attempts_are_refused_in_every_dialect() {
    let refused = [
        "1; DROP TABLE users",
        "(SELECT password FROM users)",
        "name -- comment",
        "name /* comment */",
        "EXISTS (SELECT 1)",
        "x IN (SELECT y FROM z)",
        "?",
        "*",
        "count(*)",
        "count(id)",
        "u.name",
        "group_concat(name)",
        "avg(price) OVER ()",
        "name UNION SELECT password FROM users",
        "name) OR (1=1",
    ];
    for dialect in [DriverKind::MySql, DriverKind::Postgres, DriverKind::Sqlite] {
        for expr in refused {
            assert!(
                sqlexpr::check(expr, dialect).is_err(),
                "{expr:?} accepted for {dialect:?}"
            );
        }
        if dialect != DriverKind::MySql {
            // In MySQL `$1` is a legal column name; elsewhere it is a placeholder.
            assert!(sqlexpr::check("$1", dialect).is_err(), "$1 for {dialect:?}");
        }
        // Scalar functions are allowed whatever they do: the expression is fixed configuration,
        // and the database user's rights limit what a function may do.
        let sleep = sqlexpr::check("sleep(10) OR 1=1", dialect).expect("scalar function");
        assert_eq!(sleep.sql, "sleep(10) OR 1 = 1");
        for allowed in [
            "price * 100",
            "CASE WHEN x > 0 THEN 'a' ELSE 'b' END",
            "COALESCE(nick, name)",
            "concat(first_name,' ',last_name)",
        ] {
            assert!(
                sqlexpr::check(allowed, dialect).is_ok(),
                "{allowed:?} refused for {dialect:?}"
            );
        }
    }
}

/// Text that looks like a connectors file: keys of the format, indentation, flow collections.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "connectors:",
        "- ",
        "  ",
        "name: ",
        "driver: ",
        "mysql",
        "postgres",
        "sqlite",
        "http",
        "soap",
        "dsn: ",
        "\"u:p@tcp(h:1)/d\"",
        "base_url: ",
        "\"https://x/\"",
        "data_map:",
        "fields:",
        "key: ",
        "id",
        "operations:",
        "get: {}",
        "kind: ",
        "search",
        "params:",
        "{ field: id, op: '>=' }",
        "order_by: ",
        "[\"id DESC\"]",
        "limit: ",
        "20",
        "-1",
        "\n",
        "{",
        "}",
        "[",
        "]",
        ",",
        ": ",
        "'",
        "\"",
        "${X}",
        "${",
        "&a ",
        "*a",
        "!t ",
        "#c",
        "? ",
        "|",
        ">",
        "---",
        "...",
        "concat(a,' ',b)",
        "(SELECT 1)",
        "\t",
        "é",
        "\u{0}",
    ]);
    prop::collection::vec(token, 0..60).prop_map(|parts| parts.concat())
}

/// Expressions built from the allowed grammar (and some refused bits).
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(vec!["a", "b", "price", "\"Name\"", "`x`", "NULL", "TRUE"])
            .prop_map(str::to_owned),
        (0u32..1000).prop_map(|n| n.to_string()),
        "[a-z ']{0,6}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+", "-", "*", "/", "=", "<>", "AND", "OR", "||", "LIKE"
                ]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("NOT {a}")),
            inner.clone().prop_map(|a| format!("{a} IS NOT NULL")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("coalesce({a}, {b})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("CASE WHEN {a} THEN {b} ELSE {c} END")),
            inner.clone().prop_map(|a| format!("CAST({a} AS CHAR)")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} IN ({b}, 1)")),
            (inner.clone(), inner.clone(), inner)
                .prop_map(|(a, b, c)| format!("{a} BETWEEN {b} AND {c}")),
        ]
    })
}

const DIALECTS: [DriverKind; 3] = [DriverKind::MySql, DriverKind::Postgres, DriverKind::Sqlite];

proptest! {
    #[test]
    fn the_loader_never_panics(text in any::<String>()) {
        let _ = load(&text);
    }

    #[test]
    fn the_loader_never_panics_on_yamlish_text(text in yamlish()) {
        if let Err(problems) = load(&text) {
            prop_assert!(!problems.is_empty());
            for p in problems {
                prop_assert!(p.line >= 1 && p.column >= 1, "{p}");
            }
        }
    }

    #[test]
    fn the_checker_never_panics(text in any::<String>()) {
        for dialect in DIALECTS {
            let _ = sqlexpr::check(&text, dialect);
            let _ = sqlexpr::check_order_by(&text, dialect);
        }
    }

    #[test]
    fn accepted_expressions_check_again_to_the_same(text in expression()) {
        for dialect in DIALECTS {
            if let Ok(checked) = sqlexpr::check(&text, dialect) {
                let again = sqlexpr::check(&checked.sql, dialect);
                prop_assert_eq!(again.as_ref(), Ok(&checked), "{} on {:?}", text, dialect);
            }
        }
    }
}
