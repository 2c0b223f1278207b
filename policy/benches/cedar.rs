//! The comparison engine: the same workload as `decide.rs` on Cedar (`cedar-policy`), which
//! also serves as an oracle (both engines must give the same answers on it).
//!
//! `cargo bench -p policy --features cedar --bench cedar`. Cedar is an optional dependency,
//! turned on by that feature only, so the workspace's builds and tests never compile it.

// Cedar's API takes std's hash collections; nothing here iterates over them.
#![allow(clippy::disallowed_types)]

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression,
};
use criterion::{Criterion, Throughput};

mod workload;
use workload::{Ask, CONDITIONS, Spec, asks, percentiles, policy_file, specs};

const SIZES: [usize; 3] = [10, 100, 1_000];
const DAY: i64 = 1_772_409_600_000;

fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(kind).expect("entity type"),
        EntityId::new(id),
    )
}

fn cedar_text(specs: &[Spec]) -> String {
    let mut text = String::new();
    for spec in specs {
        let mut when = Vec::new();
        let principal = match &spec.subject {
            Some(("agent", id)) => format!("principal == User::\"{id}\""),
            Some((kind, name)) => {
                when.push(format!("principal.{kind}s.contains(\"{name}\")"));
                "principal".to_owned()
            }
            None => "principal".to_owned(),
        };
        let action = match spec.actions.as_slice() {
            [] => "action".to_owned(),
            [one] => format!("action == Action::\"{one}\""),
            many => format!(
                "action in [{}]",
                many.iter()
                    .map(|a| format!("Action::\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let resource = match spec.entity {
            Some(entity) => format!("resource is {entity}"),
            None => "resource".to_owned(),
        };
        if spec.vip {
            when.push("resource.id like \"vip-*\"".to_owned());
        }
        if let Some(c) = spec.condition {
            when.push(format!("({})", CONDITIONS[c].1));
        }
        let effect = if spec.deny { "forbid" } else { "permit" };
        text.push_str(&format!("{effect}({principal}, {action}, {resource})"));
        if !when.is_empty() {
            text.push_str(&format!(" when {{ {} }}", when.join(" && ")));
        }
        text.push_str(";\n");
    }
    text
}

struct Prepared {
    request: Request,
    entities: Entities,
}

fn strings(items: &[&str]) -> RestrictedExpression {
    RestrictedExpression::new_set(
        items
            .iter()
            .map(|s| RestrictedExpression::new_string((*s).to_owned())),
    )
}

fn prepare(ask: &Ask) -> Prepared {
    let principal = uid("User", &ask.agent);
    let history: Vec<&str> = ask.history.iter().map(String::as_str).collect();
    let user = Entity::new(
        principal.clone(),
        HashMap::from([
            (
                "id".to_owned(),
                RestrictedExpression::new_string(ask.agent.clone()),
            ),
            ("roles".to_owned(), strings(&[ask.role])),
            ("teams".to_owned(), strings(&[&ask.team])),
            ("agents".to_owned(), strings(&[&ask.agent])),
            ("service_history".to_owned(), strings(&history)),
        ]),
        HashSet::new(),
    )
    .expect("user entity");
    let resource = uid(ask.entity, &ask.id);
    let thing = Entity::new(
        resource.clone(),
        HashMap::from([
            (
                "id".to_owned(),
                RestrictedExpression::new_string(ask.id.clone()),
            ),
            (
                "owner".to_owned(),
                RestrictedExpression::new_string(ask.owner.clone()),
            ),
        ]),
        HashSet::new(),
    )
    .expect("resource entity");
    let context = Context::from_pairs([
        ("hour".to_owned(), RestrictedExpression::new_long(ask.hour)),
        (
            "ip".to_owned(),
            RestrictedExpression::new_string(ask.ip.to_owned()),
        ),
    ])
    .expect("context");
    let request = Request::new(
        principal,
        uid("Action", ask.action),
        resource,
        context,
        None,
    )
    .expect("request");
    let entities = Entities::from_entities([user, thing], None).expect("entities");
    Prepared { request, entities }
}

/// The same asks on kefu's engine, for the oracle check.
fn kefu_answers(n: usize, asks: &[Ask]) -> Vec<bool> {
    let set = policy::load(&policy_file(&specs(n)))
        .expect("generated policies load")
        .policies;
    asks.iter()
        .map(|ask| {
            let subject = policy::Subject::new(&ask.agent)
                .team(&ask.team)
                .role(ask.role)
                .attr(
                    "service_history",
                    flows::Value::List(
                        ask.history
                            .iter()
                            .cloned()
                            .map(flows::Value::String)
                            .collect(),
                    ),
                );
            let resource = policy::Resource::new(ask.entity, &ask.id)
                .attr("owner", flows::Value::String(ask.owner.clone()));
            let context = policy::Context::at(DAY + ask.hour * 3_600_000).ip(ask.ip);
            set.decide(
                &policy::Request::new(&subject, ask.action, &resource, &context),
                &[],
            )
            .is_allowed()
        })
        .collect()
}

#[allow(clippy::disallowed_methods)]
fn latencies() {
    let asks = asks(1_024);
    let requests: Vec<Prepared> = asks.iter().map(prepare).collect();
    let authorizer = Authorizer::new();
    for n in SIZES {
        let set = PolicySet::from_str(&cedar_text(&specs(n))).expect("cedar policies parse");
        let answers: Vec<bool> = requests
            .iter()
            .map(|p| {
                authorizer
                    .is_authorized(&p.request, &set, &p.entities)
                    .decision()
                    == Decision::Allow
            })
            .collect();
        let kefu = kefu_answers(n, &asks);
        let disagree = answers.iter().zip(&kefu).filter(|(a, b)| a != b).count();
        for p in requests.iter().cycle().take(20_000) {
            black_box(authorizer.is_authorized(&p.request, &set, &p.entities));
        }
        let calls = 20_000;
        let mut nanos = Vec::with_capacity(calls);
        let started = Instant::now();
        for p in requests.iter().cycle().take(calls) {
            let t = Instant::now();
            black_box(authorizer.is_authorized(&p.request, &set, black_box(&p.entities)));
            nanos.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        let total = started.elapsed();
        let (median, p99, max) = percentiles(&mut nanos);
        eprintln!(
            "cedar {n:>5} policies: median {:.2} µs, p99 {:.2} µs, max {:.1} µs, {:.0} decisions/s; {} allowed; disagreements with kefu: {disagree}",
            median as f64 / 1e3,
            p99 as f64 / 1e3,
            max as f64 / 1e3,
            calls as f64 / total.as_secs_f64(),
            answers.iter().filter(|a| **a).count(),
        );
    }
}

fn bench(c: &mut Criterion) {
    // 128 requests per iteration and 10 samples: Cedar is slow enough with 1,000 policies that
    // criterion's defaults would take many minutes.
    let requests: Vec<Prepared> = asks(128).iter().map(prepare).collect();
    let authorizer = Authorizer::new();
    let mut group = c.benchmark_group("cedar");
    group.sample_size(10);
    group.throughput(Throughput::Elements(requests.len() as u64));
    for n in SIZES {
        let set = PolicySet::from_str(&cedar_text(&specs(n))).expect("cedar policies parse");
        group.bench_function(format!("{n} policies/128 requests"), |b| {
            b.iter(|| {
                requests
                    .iter()
                    .filter(|p| {
                        authorizer
                            .is_authorized(&p.request, &set, &p.entities)
                            .decision()
                            == Decision::Allow
                    })
                    .count()
            });
        });
    }
    group.finish();
}

fn main() {
    latencies();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
