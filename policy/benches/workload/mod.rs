//! The benchmarks' workload, shared by `decide.rs` and `cedar.rs`: N generated policies over
//! 20 entities and 8 actions, and a fixed mix of requests. Deterministic (no random source):
//! the same N always gives the same policies and requests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub const ENTITIES: [&str; 20] = [
    "customers",
    "orders",
    "tickets",
    "products",
    "returns",
    "invoices",
    "coupons",
    "notes",
    "calls",
    "chats",
    "leads",
    "contracts",
    "refunds",
    "shipments",
    "reviews",
    "surveys",
    "payments",
    "accounts",
    "visits",
    "tasks",
];
pub const ACTIONS: [&str; 8] = [
    "read", "list", "update", "delete", "export", "assign", "reply", "close",
];

/// One condition in both languages: kefu's (flow expressions) and Cedar's.
pub const CONDITIONS: [(&str, &str); 4] = [
    (
        "contains(agent.service_history, resource.id)",
        "principal.service_history.contains(resource.id)",
    ),
    (
        "context.hour >= 9 && context.hour < 18",
        "context.hour >= 9 && context.hour < 18",
    ),
    (
        "starts_with(context.ip, \\\"10.\\\")",
        "context.ip like \"10.*\"",
    ),
    (
        "resource.owner == agent.id",
        "resource.owner == principal.id",
    ),
];

/// The parts of a generated policy, for both engines.
#[derive(Debug, Clone)]
pub struct Spec {
    pub deny: bool,
    /// `None`: everyone; else `("role"|"team"|"agent", name)`.
    pub subject: Option<(&'static str, String)>,
    /// Empty: every action.
    pub actions: Vec<&'static str>,
    /// `None` entity: every entity; `vip` restricts ids to `vip-*`.
    pub entity: Option<&'static str>,
    pub vip: bool,
    pub condition: Option<usize>,
}

/// A small deterministic generator (SplitMix64).
pub struct Mix(u64);

impl Mix {
    pub fn new(seed: u64) -> Mix {
        Mix(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub fn specs(n: usize) -> Vec<Spec> {
    let mut mix = Mix::new(n as u64);
    (0..n)
        .map(|_| {
            let subject = match mix.below(4) {
                0 => None,
                1 => Some(("role", ["agent", "admin", "lead"][mix.below(3)].to_owned())),
                2 => Some(("team", format!("t{}", mix.below(5)))),
                _ => Some(("agent", format!("a{}", mix.below(50)))),
            };
            let actions = if mix.below(20) == 0 {
                Vec::new()
            } else {
                let first = ACTIONS[mix.below(ACTIONS.len())];
                let second = ACTIONS[mix.below(ACTIONS.len())];
                if first == second || mix.below(2) == 0 {
                    vec![first]
                } else {
                    vec![first, second]
                }
            };
            let entity = if mix.below(50) == 0 {
                None
            } else {
                Some(ENTITIES[mix.below(ENTITIES.len())])
            };
            Spec {
                deny: mix.below(10) == 0,
                subject,
                actions,
                entity,
                vip: mix.below(10) == 0,
                condition: (mix.below(3) == 0).then(|| mix.below(CONDITIONS.len())),
            }
        })
        .collect()
}

/// The specs as a kefu policy file.
pub fn policy_file(specs: &[Spec]) -> String {
    let mut text = String::new();
    for (i, spec) in specs.iter().enumerate() {
        text.push_str(&format!(
            "policy \"p{i}\" {{\n  effect = \"{}\"\n",
            if spec.deny { "deny" } else { "allow" }
        ));
        if let Some((kind, name)) = &spec.subject {
            text.push_str(&format!("  subjects = [\"{kind}:{name}\"]\n"));
        }
        let actions: Vec<String> = if spec.actions.is_empty() {
            vec!["\"*\"".to_owned()]
        } else {
            spec.actions.iter().map(|a| format!("\"{a}\"")).collect()
        };
        text.push_str(&format!("  actions = [{}]\n", actions.join(", ")));
        let id = if spec.vip { "vip-*" } else { "*" };
        text.push_str(&format!(
            "  resources = [\"{}::{id}\"]\n",
            spec.entity.unwrap_or("*")
        ));
        if let Some(c) = spec.condition {
            text.push_str(&format!("  condition = \"{}\"\n", CONDITIONS[c].0));
        }
        text.push_str("}\n");
    }
    text
}

/// One request of the mix.
#[derive(Debug, Clone)]
pub struct Ask {
    pub agent: String,
    pub team: String,
    pub role: &'static str,
    pub history: Vec<String>,
    pub action: &'static str,
    pub entity: &'static str,
    pub id: String,
    pub owner: String,
    pub hour: i64,
    pub ip: &'static str,
}

pub fn asks(count: usize) -> Vec<Ask> {
    let mut mix = Mix::new(7);
    (0..count)
        .map(|_| {
            let agent = format!("a{}", mix.below(50));
            let id = if mix.below(5) == 0 {
                format!("vip-{}", mix.below(100))
            } else {
                format!("{}", mix.below(100))
            };
            Ask {
                team: format!("t{}", mix.below(5)),
                role: ["agent", "admin", "lead"][mix.below(3)],
                history: (0..20).map(|_| format!("{}", mix.below(100))).collect(),
                action: ACTIONS[mix.below(ACTIONS.len())],
                entity: ENTITIES[mix.below(ENTITIES.len())],
                owner: if mix.below(2) == 0 {
                    agent.clone()
                } else {
                    format!("a{}", mix.below(50))
                },
                id,
                agent,
                hour: mix.below(24) as i64,
                ip: ["10.0.0.7", "192.168.1.9"][mix.below(2)],
            }
        })
        .collect()
}

/// Median, p99 and max of per-call nanoseconds (sorted in place).
pub fn percentiles(nanos: &mut [u64]) -> (u64, u64, u64) {
    nanos.sort_unstable();
    let at = |q: f64| nanos[((nanos.len() as f64 - 1.0) * q) as usize];
    (at(0.5), at(0.99), nanos[nanos.len() - 1])
}
