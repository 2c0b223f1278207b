//! Properties over random policy files and requests: an added allow never denies what was
//! allowed, an added deny never allows what was denied, and the index finds exactly the
//! policies a linear scan would.

use policy::{Context, Effect, Grant, PolicySet, Request, Resource, Subject};
use proptest::prelude::*;
use proptest::sample::select;

use crate::list;

const SUBJECTS: [&str; 7] = [
    "*",
    "agent:a",
    "agent:b",
    "team:x",
    "team:y",
    "role:admin",
    "role:agent",
];
const ACTIONS: [&str; 5] = ["read", "write", "export", "*", "re*"];
const RESOURCES: [&str; 8] = [
    "customers::*",
    "customers::1",
    "customers::vip-*",
    "orders::*",
    "orders::2",
    "*::1",
    "*",
    "cust*::*",
];
const CONDITIONS: [&str; 7] = [
    "true",
    "false",
    "contains(agent.history, resource.id)",
    "context.hour < 12",
    "resource.id == \\\"1\\\" || context.channel == \\\"web\\\"",
    // Fails when the subject has no `level`: a failing deny still denies.
    "agent.level > 2",
    "starts_with(context.ip, \\\"10.\\\")",
];

fn policy_text() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        proptest::collection::vec(select(&SUBJECTS[..]), 0..3),
        proptest::collection::vec(select(&ACTIONS[..]), 1..3),
        proptest::collection::vec(select(&RESOURCES[..]), 1..3),
        proptest::option::of(select(&CONDITIONS[..])),
    )
        .prop_map(|(allow, subjects, actions, resources, condition)| {
            let quoted = |items: &[&str]| {
                items
                    .iter()
                    .map(|i| format!("\"{i}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut text = format!(
                "policy {{\n  effect = \"{}\"\n  actions = [{}]\n  resources = [{}]\n",
                if allow { "allow" } else { "deny" },
                quoted(&actions),
                quoted(&resources)
            );
            if !subjects.is_empty() {
                text.push_str(&format!("  subjects = [{}]\n", quoted(&subjects)));
            }
            if let Some(condition) = condition {
                text.push_str(&format!("  condition = \"{condition}\"\n"));
            }
            text.push_str("}\n");
            text
        })
}

#[derive(Debug, Clone)]
struct Req {
    subject: Subject,
    action: &'static str,
    resource: Resource,
    context: Context,
}

fn request() -> impl Strategy<Value = Req> {
    (
        select(&["a", "b", "c"][..]),
        proptest::option::of(select(&["x", "y"][..])),
        proptest::option::of(select(&["admin", "agent"][..])),
        proptest::option::of(0..5u32),
        select(&["read", "write", "export", "delete"][..]),
        select(&["customers", "orders", "tickets"][..]),
        select(&["1", "2", "vip-1"][..]),
        0..24i64,
        select(&["web", "console"][..]),
        select(&["10.0.0.1", "192.168.1.1"][..]),
    )
        .prop_map(
            |(id, team, role, level, action, entity, rid, hour, channel, ip)| {
                let mut subject = Subject::new(id).attr("history", list(&["1", "vip-1"]));
                if let Some(team) = team {
                    subject = subject.team(team);
                }
                if let Some(role) = role {
                    subject = subject.role(role);
                }
                if let Some(level) = level {
                    subject = subject.attr("level", flows::Value::Number(f64::from(level)));
                }
                Req {
                    subject,
                    action,
                    resource: Resource::new(entity, rid),
                    context: Context::at(hour * 3_600_000).channel(channel).ip(ip),
                }
            },
        )
}

fn set(texts: &[String]) -> PolicySet {
    match policy::load(&texts.concat()) {
        Ok(config) => config.policies,
        Err(error) => panic!("{error}\n{}", texts.concat()),
    }
}

fn allowed(set: &PolicySet, req: &Req, grants: &[Grant]) -> bool {
    let request = Request::new(&req.subject, req.action, &req.resource, &req.context);
    set.decide(&request, grants).is_allowed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_added_allow_never_denies(base in proptest::collection::vec(policy_text(), 0..12), extra in policy_text(), req in request()) {
        prop_assume!(extra.contains("\"allow\""));
        let before = set(&base);
        let mut more = base;
        more.push(extra);
        let after = set(&more);
        prop_assert!(!allowed(&before, &req, &[]) || allowed(&after, &req, &[]));
    }

    #[test]
    fn an_added_deny_never_allows(base in proptest::collection::vec(policy_text(), 0..12), extra in policy_text(), req in request()) {
        prop_assume!(extra.contains("\"deny\""));
        let before = set(&base);
        let mut more = base;
        more.insert(0, extra);
        let after = set(&more);
        prop_assert!(allowed(&before, &req, &[]) || !allowed(&after, &req, &[]));
    }

    #[test]
    fn an_added_grant_never_denies(base in proptest::collection::vec(policy_text(), 0..12), req in request(), subject in select(&SUBJECTS[..]), action in select(&ACTIONS[..]), resource in select(&RESOURCES[..]), expires_at in 0..30i64) {
        let set = set(&base);
        let grant = Grant::new("g", subject, &[action], resource, expires_at * 3_600_000).unwrap();
        prop_assert!(!allowed(&set, &req, &[]) || allowed(&set, &req, &[grant]));
    }

    #[test]
    fn the_index_finds_what_a_scan_finds(base in proptest::collection::vec(policy_text(), 0..20), req in request()) {
        let set = set(&base);
        let request = Request::new(&req.subject, req.action, &req.resource, &req.context);
        let decision = set.decide(&request, &[]);
        let found: Vec<&str> = decision.matched.iter().map(|m| match m.rule {
            policy::Rule::Policy(p) => p.id(),
            policy::Rule::Grant(g) => g.id.as_str(),
        }).collect();
        let scanned: Vec<&str> = set.policies().iter().filter(|p| p.targets(&request)).map(|p| p.id()).collect();
        prop_assert_eq!(found, scanned);
        // Deny overrides, checked against the scan too.
        let any_deny = decision.matched.iter().any(|m| m.effect() == Effect::Deny && m.applies());
        prop_assert!(!(any_deny && decision.is_allowed()));
    }
}
