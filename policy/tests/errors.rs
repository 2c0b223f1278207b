//! Broken policy files: every problem at once, each at its line and column, and nothing
//! loaded.

use expect_test::{Expect, expect};

fn check(text: &str, expect: &Expect) {
    let got = match policy::load(text) {
        Ok(config) => format!(
            "loaded {} policies and {} sandboxes",
            config.policies.len(),
            config.sandboxes.len()
        ),
        Err(error) => error.to_string(),
    };
    expect.assert_eq(&got);
}

#[test]
fn syntax_errors_are_located() {
    check(
        r#"policy {
  effect = allow
  actions = ["read"
  resources = ["customers::*"]
}
policy {
  effect = "deny"
  actions = ["read"]
  resources = ["x::*"]
  condition = "resource.id == \q"
}
"#,
        &expect![[r#"
            the policy file has 4 problem(s):
            2:12: expected a value, found `allow`: strings are written in double quotes ("allow")
            4:3: expected `,` or `]` in the list, found `resources`
            10:31: unknown escape `\q`: strings know `\"`, `\\`, `\n`, `\t`, `\r` and `\u{…}`
            10:33: expected a value after `==`, found the end of the expression"#]],
    );
    check(
        "policy {\n  effect = \"allow\"\n  description = \"never closed\n}\n",
        &expect![[r#"
            the policy file has 2 problem(s):
            3:17: this string is never closed with `"`
            5:1: expected `}` to close the block, found the end of the file"#]],
    );
    check(
        "policy { effect = \"allow\" } ; polcy { }",
        &expect![[r#"
            the policy file has 4 problem(s):
            1:1: this `policy` block has no `actions` (e.g. `actions = ["read"]`)
            1:1: this `policy` block has no `resources` (e.g. `resources = ["customers::*"]`)
            1:29: unexpected character `;`
            1:31: unknown block `polcy`: a policy file holds `policy` and `sandbox` blocks"#]],
    );
}

#[test]
fn field_errors_are_located() {
    check(
        r#"
# Comments are fine, in both styles.
policy "a" {
  id = "b"                       // named twice
  effect = "permit"
  subjects = ["boss", "team:"]
  actions = ["read", "re ad"]
  resources = ["customers", "::1", "customers::"]
  conditon = "true"
}
policy "a" {
  effect = "allow"
  actions = []
  resources = "customers::*"
  effect = "deny"
}
"#,
        &expect![[r#"
            the policy file has 11 problem(s):
            4:3: the policy is named twice: by its label and by `id`
            5:12: unknown effect `permit`: write "allow" or "deny"
            6:15: `boss` is not a subject: write `agent:<id>`, `team:<id>`, `role:<name>` or `*`
            6:23: `team:` names no team: write the name right after the colon
            7:22: `re ad` is not an action: use letters, digits, `_`, `-`, `.`, `:` and `*` (e.g. `read`, `*`)
            8:16: `customers` is not a resource: write `<entity>::<id>`, e.g. `customers::*` or `orders::42`
            8:29: `::1` names no entity: write `<entity>::<id>`, e.g. `customers::1`
            8:36: `customers::` names no id: write `customers::*` for any id
            9:3: unknown field `conditon` in a `policy` block: the fields are `id`, `description`, `effect`, `subjects`, `actions`, `resources`, `condition`
            13:13: `actions` is empty, so the block could never apply
            15:3: `effect` is given twice"#]],
    );
}

#[test]
fn condition_errors_point_into_the_file() {
    check(
        r#"policy {
  effect    = "allow"
  actions   = ["read"]
  resources = ["customers::*"]
  condition = "contains(agnet.service_history, resource.id)"
}
policy {
  effect    = "allow"
  actions   = ["read"]
  resources = ["customers::*"]
  condition = "resource.id == "
}
policy {
  effect    = "allow"
  actions   = ["read"]
  resources = ["customers::*"]
  condition = "len(resource.id) + 1"
}
policy {
  effect    = "deny"
  actions   = ["read"]
  resources = ["customers::*"]
  condition = "context.hour < 9 ||
               contians(context.ip, \"10.\")"
}
policy {
  effect    = "deny"
  actions   = ["read"]
  resources = ["customers::*"]
  condition = "\"\u{5BA2}\" == resource.name && (resource.x == 1"
}
"#,
        &expect![[r#"
            the policy file has 5 problem(s):
            5:25: unknown variable `agnet` (did you mean `agent`?)
            11:31: expected a value after `==`, found the end of the expression
            17:16: a condition must be true or false, but this is a number
            24:16: unknown function `contians` (did you mean `contains`?)
            30:65: expected `)` to close the `(` at line 30, column 49, found the end of the expression"#]],
    );
}

#[test]
fn sandbox_errors_are_located() {
    check(
        r#"sandbox {
  department = "sales"
  entity     = "customers"
  rows       = "row.region == agent.region && len(row.name) > 2"
  mask       = { phone = "phone", email = "e-mail", id = 3 }
}
sandbox "x" {
  department = "sales"
  entity     = "customers"
  rows       = "agent.region == \"north\""
}
sandbox {
  department = "support"
  entity     = "customers"
  rows       = "row.a + 1 == 2"
  mask       = ["phone"]
}
sandbox {
  department = "support"
  entity     = "customers"
}
sandbox {
  entity = "orders table"
}
"#,
        &expect![[r#"
            the policy file has 9 problem(s):
            4:47: this comparison has no column on either side: a row filter compares a column (`row.<column>`) with a constant or an agent attribute (`agent.<name>`), tests membership with `contains(list, row.<column>)`, and combines these with `&&`, `||` and `!`
            5:43: unknown mask `e-mail`: the masks are `phone`, `email`, `id_number`, `address`, `name`, `redact`
            5:58: a mask is named by a string ("phone"), not a number
            7:9: a `sandbox` block has no label: name its `department` and `entity` inside
            10:17: this comparison has no column on either side: a row filter compares a column (`row.<column>`) with a constant or an agent attribute (`agent.<name>`), tests membership with `contains(list, row.<column>)`, and combines these with `&&`, `||` and `!`
            15:17: this comparison has no column on either side: a row filter compares a column (`row.<column>`) with a constant or an agent attribute (`agent.<name>`), tests membership with `contains(list, row.<column>)`, and combines these with `&&`, `||` and `!`
            16:16: `mask` maps fields to masks (`{ phone = "phone" }`), not a list
            22:1: this `sandbox` block has no `department` (e.g. `department = "sales"`)
            23:12: `orders table` is not a valid entity: use letters, digits, `_`, `-` and `.`"#]],
    );
}

#[test]
fn duplicates_are_refused() {
    check(
        r#"policy "p" {
  effect = "allow"
  actions = ["read"]
  resources = ["a::*"]
}
policy {
  id = "p"
  effect = "allow"
  actions = ["read"]
  resources = ["a::*"]
}
sandbox {
  department = "sales"
  entity = "customers"
}
sandbox {
  department = "sales"
  entity = "customers"
}
"#,
        &expect![[r#"
            the policy file has 2 problem(s):
            6:1: two policies have the id `p` (the other is at line 1)
            16:1: department `sales` already has a sandbox for `customers` (at line 12)"#]],
    );
}

#[test]
fn hostile_input_does_not_panic() {
    let deep = format!(
        "policy {{ x = {}{} }}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let deep_condition = format!(
        "policy {{ effect = \"allow\" actions = [\"a\"] resources = [\"a::*\"] condition = \"{}true{}\" }}",
        "(".repeat(5_000),
        ")".repeat(5_000)
    );
    let long_condition = format!(
        "policy {{ effect = \"allow\" actions = [\"a\"] resources = [\"a::*\"] condition = \"{}agnet.x\" }}",
        "resource.name == \\\"客户\\\" && ".repeat(3_000),
    );
    for text in [
        "",
        "{",
        "}",
        "policy",
        "policy {",
        "policy { effect = }",
        "policy { = }",
        "\"",
        "/*",
        "policy { condition = \"\\u{110000}\" }",
        "policy { condition = \"\\u{12345678}\" }",
        "policy { effect = -.-. }",
        "客服 { 政策 = \"允许\" }",
        &deep,
        &deep_condition,
        &long_condition,
    ] {
        // Any result is fine, as long as it is a result.
        let _ = policy::load(text);
    }
    check("", &expect![[r#"loaded 0 policies and 0 sandboxes"#]]);
    // Columns count characters, and escapes as written: `agnet` is at column 26.
    check(
        "policy { effect = \"allow\" actions = [\"a\"] resources = [\"a::*\"]\n  condition = \"\\\"客户\\\" == agnet.x\" }",
        &expect![[r#"
            the policy file has 1 problem(s):
            2:26: unknown variable `agnet` (did you mean `agent`?)"#]],
    );
}
