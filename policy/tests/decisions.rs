//! The decision table: subject, action, resource, context and the expected decision, over one
//! policy file that holds the seed's example exactly as written.

use expect_test::{Expect, expect};
use policy::{Context, Effect, Grant, PolicySet, Reason, Request, Resource, Subject};

use crate::{list, s};

/// 2026-03-02 (a Monday) 10:30 in China (UTC+8), in milliseconds.
const MONDAY_1030_CN: i64 = 1_772_418_600_000;
const HOUR: i64 = 3_600_000;

const POLICIES: &str = r#"
policy {
  description = "agents only see customers they served"
  effect      = "allow"
  resources   = ["customers::*"]
  actions     = ["read"]
  condition   = "contains(agent.service_history, resource.id)"
}

policy "admins" {
  description = "admins may do anything"
  effect      = "allow"
  subjects    = ["role:admin"]
  resources   = ["*"]
  actions     = ["*"]
}

policy "vip-locked" {
  description = "nobody but the VIP team touches VIP customers"
  effect      = "deny"
  resources   = ["customers::vip-*"]
  actions     = ["*"]
  condition   = "!contains(agent.teams, \"vip\")"
}

policy "office-hours" {
  description = "sales reads orders in office hours, on the console, from the office network"
  effect      = "allow"
  subjects    = ["team:sales"]
  resources   = ["orders::*"]
  actions     = ["read", "list"]
  condition   = "context.time >= \"09:00\" && context.time < \"18:00\" && context.weekday <= 5 && context.channel == \"console\" && starts_with(context.ip, \"10.\")"
}

policy "no-export" {
  effect    = "deny"
  subjects  = ["agent:intern"]
  resources = ["*::*"]
  actions   = ["export"]
}
"#;

fn policies() -> PolicySet {
    match policy::load(POLICIES) {
        Ok(config) => config.policies,
        Err(error) => panic!("{error}"),
    }
}

fn li() -> Subject {
    Subject::new("li")
        .team("sales")
        .role("agent")
        .attr("service_history", list(&["c-1", "c-2", "vip-9"]))
}

fn office() -> Context {
    Context::at_local(MONDAY_1030_CN, 480)
        .channel("console")
        .ip("10.1.2.3")
}

struct Case {
    name: &'static str,
    subject: Subject,
    action: &'static str,
    resource: Resource,
    context: Context,
    grants: Vec<Grant>,
    expected: (Effect, Reason, Option<&'static str>),
}

fn case(
    name: &'static str,
    subject: Subject,
    action: &'static str,
    resource: (&str, &str),
    context: Context,
    expected: (Effect, Reason, Option<&'static str>),
) -> Case {
    Case {
        name,
        subject,
        action,
        resource: Resource::new(resource.0, resource.1),
        context,
        grants: Vec::new(),
        expected,
    }
}

#[test]
fn decision_table() {
    use Effect::{Allow, Deny};
    use Reason::{Allowed, Denied, NothingApplied, NothingMatched};
    let set = policies();
    let grant = |expires_at: i64| {
        vec![Grant::new("g-1", "agent:wang", &["read"], "orders::2026-*", expires_at).unwrap()]
    };
    let team_grant = vec![
        Grant::new(
            "g-2",
            "team:support",
            &["read", "list"],
            "tickets::*",
            MONDAY_1030_CN + HOUR,
        )
        .unwrap(),
    ];
    let wang = || Subject::new("wang").team("support").role("agent");
    let cases = vec![
        // The seed's policy: served customers only.
        case(
            "served customer",
            li(),
            "read",
            ("customers", "c-1"),
            office(),
            (Allow, Allowed, Some("policy-1")),
        ),
        case(
            "customer not served",
            li(),
            "read",
            ("customers", "c-3"),
            office(),
            (Deny, NothingApplied, None),
        ),
        case(
            "no history at all",
            wang(),
            "read",
            ("customers", "c-1"),
            office(),
            (Deny, NothingApplied, None),
        ),
        case(
            "other action",
            li(),
            "update",
            ("customers", "c-1"),
            office(),
            (Deny, NothingMatched, None),
        ),
        case(
            "other entity",
            li(),
            "read",
            ("products", "c-1"),
            office(),
            (Deny, NothingMatched, None),
        ),
        // Wildcards: `*` actions and `*` resources for admins.
        case(
            "admin anything",
            Subject::new("root").role("admin"),
            "delete",
            ("tickets", "7"),
            office(),
            (Allow, Allowed, Some("admins")),
        ),
        // Deny overrides: li served vip-9, but is not in the VIP team.
        case(
            "deny beats allow",
            li(),
            "read",
            ("customers", "vip-9"),
            office(),
            (Deny, Denied, Some("vip-locked")),
        ),
        case(
            "deny beats admin",
            Subject::new("root").role("admin"),
            "read",
            ("customers", "vip-1"),
            office(),
            (Deny, Denied, Some("vip-locked")),
        ),
        case(
            "vip team passes",
            Subject::new("root").role("admin").team("vip"),
            "read",
            ("customers", "vip-1"),
            office(),
            (Allow, Allowed, Some("admins")),
        ),
        case(
            "deny by agent",
            Subject::new("intern").role("admin"),
            "export",
            ("orders", "1"),
            office(),
            (Deny, Denied, Some("no-export")),
        ),
        // Conditions on the context: time window, weekday, channel, IP prefix.
        case(
            "office hours",
            li(),
            "list",
            ("orders", "o-1"),
            office(),
            (Allow, Allowed, Some("office-hours")),
        ),
        case(
            "before nine",
            li(),
            "read",
            ("orders", "o-1"),
            Context::at_local(MONDAY_1030_CN - 2 * HOUR, 480)
                .channel("console")
                .ip("10.1.2.3"),
            (Deny, NothingApplied, None),
        ),
        case(
            "at six",
            li(),
            "read",
            ("orders", "o-1"),
            Context::at_local(MONDAY_1030_CN + 7 * HOUR + 1_800_000, 480)
                .channel("console")
                .ip("10.1.2.3"),
            (Deny, NothingApplied, None),
        ),
        case(
            "saturday",
            li(),
            "read",
            ("orders", "o-1"),
            Context::at_local(MONDAY_1030_CN + 5 * 24 * HOUR, 480)
                .channel("console")
                .ip("10.1.2.3"),
            (Deny, NothingApplied, None),
        ),
        case(
            "wrong channel",
            li(),
            "read",
            ("orders", "o-1"),
            Context::at_local(MONDAY_1030_CN, 480)
                .channel("web")
                .ip("10.1.2.3"),
            (Deny, NothingApplied, None),
        ),
        case(
            "outside network",
            li(),
            "read",
            ("orders", "o-1"),
            Context::at_local(MONDAY_1030_CN, 480)
                .channel("console")
                .ip("203.0.113.7"),
            (Deny, NothingApplied, None),
        ),
        // No address at all: `starts_with(null, …)` fails, and a failing allow does not allow.
        case(
            "no address",
            li(),
            "read",
            ("orders", "o-1"),
            Context::at_local(MONDAY_1030_CN, 480).channel("console"),
            (Deny, NothingApplied, None),
        ),
        case(
            "other team",
            wang(),
            "read",
            ("orders", "o-1"),
            office(),
            (Deny, NothingMatched, None),
        ),
        Case {
            grants: grant(MONDAY_1030_CN + HOUR),
            ..case(
                "grant in force",
                wang(),
                "read",
                ("orders", "2026-001"),
                office(),
                (Allow, Allowed, Some("g-1")),
            )
        },
        Case {
            grants: grant(MONDAY_1030_CN),
            ..case(
                "grant expired at now",
                wang(),
                "read",
                ("orders", "2026-001"),
                office(),
                (Deny, NothingApplied, None),
            )
        },
        Case {
            grants: grant(MONDAY_1030_CN - HOUR),
            ..case(
                "grant expired",
                wang(),
                "read",
                ("orders", "2026-001"),
                office(),
                (Deny, NothingApplied, None),
            )
        },
        Case {
            grants: grant(MONDAY_1030_CN + HOUR),
            ..case(
                "grant other resource",
                wang(),
                "read",
                ("orders", "2025-001"),
                office(),
                (Deny, NothingMatched, None),
            )
        },
        Case {
            grants: grant(MONDAY_1030_CN + HOUR),
            ..case(
                "grant other action",
                wang(),
                "list",
                ("orders", "2026-001"),
                office(),
                (Deny, NothingMatched, None),
            )
        },
        Case {
            grants: grant(MONDAY_1030_CN + HOUR),
            ..case(
                "grant other person",
                li(),
                "read",
                ("orders", "2026-001"),
                Context::at(MONDAY_1030_CN),
                (Deny, NothingApplied, None),
            )
        },
        Case {
            grants: team_grant.clone(),
            ..case(
                "team grant",
                wang(),
                "list",
                ("tickets", "5"),
                office(),
                (Allow, Allowed, Some("g-2")),
            )
        },
        Case {
            grants: team_grant,
            ..case(
                "team grant, no member",
                li(),
                "list",
                ("tickets", "5"),
                office(),
                (Deny, NothingMatched, None),
            )
        },
        Case {
            grants: vec![
                Grant::new(
                    "g-3",
                    "agent:wang",
                    &["read"],
                    "customers::*",
                    MONDAY_1030_CN + HOUR,
                )
                .unwrap(),
            ],
            ..case(
                "grant does not beat deny",
                wang().attr("x", s("y")),
                "read",
                ("customers", "vip-2"),
                office(),
                (Deny, Denied, Some("vip-locked")),
            )
        },
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let request = Request::new(&c.subject, c.action, &c.resource, &c.context);
        let decision = set.decide(&request, &c.grants);
        let got = (decision.effect, decision.reason, decision.decided_by());
        if got != c.expected {
            failures.push(format!(
                "{}: expected {:?}, got {got:?}\n{decision}",
                c.name, c.expected
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn check_explain(
    subject: &Subject,
    action: &str,
    resource: &Resource,
    context: &Context,
    grants: &[Grant],
    expect: &Expect,
) {
    let set = policies();
    let decision = set.decide(&Request::new(subject, action, resource, context), grants);
    expect.assert_eq(&decision.to_string());
}

#[test]
fn explanations() {
    check_explain(
        &li(),
        "read",
        &Resource::new("customers", "vip-9"),
        &office(),
        &[],
        &expect![[r#"
            deny: agent `li` may not `read` `customers::vip-9`
              allow policy `policy-1` (line 2): applies
              deny  policy `vip-locked` (line 18): applies
            an explicit deny beats every allow: policy `vip-locked` (line 18)"#]],
    );
    check_explain(
        &li(),
        "read",
        &Resource::new("orders", "o-1"),
        &Context::at_local(MONDAY_1030_CN, 480).channel("console"),
        &[Grant::new("g-9", "agent:li", &["read"], "orders::*", MONDAY_1030_CN).unwrap()],
        &expect![[r#"
            deny: agent `li` may not `read` `orders::o-1`
              allow policy `office-hours` (line 26): condition failed (32:133: `starts_with` needs a string, but found null), so it does not allow
              allow grant `g-9`: expired (at 1772418600000 ms)
            denied by default: no allow applied (conditions false or failed, grants expired)"#]],
    );
    check_explain(
        &Subject::new("nobody"),
        "read",
        &Resource::new("customers", "c-1"),
        &office(),
        &[],
        &expect![[r#"
            deny: agent `nobody` may not `read` `customers::c-1`
              allow policy `policy-1` (line 2): condition failed (7:18: `contains` needs a string, a list or a map, but found null), so it does not allow
            denied by default: no allow applied (conditions false or failed, grants expired)"#]],
    );
}

#[test]
fn decisions_serialize_for_the_admin_page() {
    let set = policies();
    let subject = li();
    let resource = Resource::new("customers", "c-2");
    let context = office();
    let decision = set.decide(&Request::new(&subject, "read", &resource, &context), &[]);
    let json = serde_json::to_string_pretty(&decision).unwrap();
    expect![[r#"
        {
          "effect": "allow",
          "reason": "allowed",
          "subject": "li",
          "action": "read",
          "resource": "customers::c-2",
          "matched": [
            {
              "kind": "policy",
              "id": "policy-1",
              "effect": "allow",
              "description": "agents only see customers they served",
              "line": 2,
              "condition": "contains(agent.service_history, resource.id)",
              "outcome": "applies"
            }
          ]
        }"#]]
    .assert_eq(&json);
}

#[test]
fn grants_round_trip_through_json() {
    let mut grant = Grant::new(
        "g-1",
        "team:sales",
        &["read", "list"],
        "orders::*",
        1_767_225_600_000,
    )
    .unwrap();
    grant.granted_by = Some("admin".to_owned());
    let json = serde_json::to_string(&grant).unwrap();
    expect![[r#"{"id":"g-1","subject":"team:sales","actions":["read","list"],"resource":"orders::*","expires_at":1767225600000,"granted_by":"admin"}"#]]
        .assert_eq(&json);
    let back: Grant = serde_json::from_str(&json).unwrap();
    assert_eq!(back, grant);
    let broken = serde_json::from_str::<Grant>(&json.replace("orders::*", "orders"));
    expect![[r#"Err(Error("`orders` is not a resource: write `<entity>::<id>`, e.g. `customers::*` or `orders::42`", line: 1, column: 80))"#]]
        .assert_eq(&format!("{broken:?}"));
    expect![[r#"Err(Grant { id: "g-2", message: "`boss` is not a subject: write `agent:<id>`, `team:<id>`, `role:<name>` or `*`" })"#]]
        .assert_eq(&format!("{:?}", Grant::new("g-2", "boss", &["read"], "orders::*", 0)));
}

#[test]
fn a_failed_condition_serializes_its_error_next_to_the_outcome() {
    let set = policies();
    let subject = Subject::new("nobody");
    let resource = Resource::new("customers", "c-1");
    let context = office();
    let decision = set.decide(&Request::new(&subject, "read", &resource, &context), &[]);
    let json = serde_json::to_value(&decision).unwrap();
    let matched = &json["matched"][0];
    assert_eq!(matched["outcome"], "condition_error", "{json}");
    assert!(matched["error"].is_object(), "{json}");
}
