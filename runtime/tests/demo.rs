//! The demo catalogue: seeding, the `demo` lookups the bundled flows make, and the placeholder
//! pictures; and the bundled flows themselves played against it, branch by branch.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use flows::engine::{Input, LookupOutcome, LookupRequest, LookupResult, Millis, StartInput};
use flows::scenario::describe_effect;
use flows::{Effect, Engine, Interpreter, Library, Value};
use runtime::demo::catalogue::{Catalogue, FILE_NAME, image_svg};

/// Monday 2026-01-05, 10:00 in Shanghai (UTC+8).
const NOW: Millis = 1_767_578_400_000;
const DAY: Millis = 86_400_000;

/// A directory of its own under the system's temp dir, removed by the caller.
fn temp_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("kefu-demo-test-{}-{n}", std::process::id()))
}

fn params(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// One `demo` lookup; the request is built before the future, so the params may be temporaries.
fn lookup<'a>(
    catalogue: &'a Catalogue,
    entity: &str,
    operation: &str,
    pairs: &[(&str, Value)],
    now: Millis,
) -> impl Future<Output = LookupOutcome> + use<'a> {
    let request = LookupRequest {
        request: 1,
        node: "test".into(),
        connector: "demo".to_owned(),
        entity: entity.to_owned(),
        operation: operation.to_owned(),
        params: params(pairs),
    };
    async move { catalogue.lookup(&request, now).await }
}

fn rows(outcome: LookupOutcome) -> Vec<BTreeMap<String, Value>> {
    match outcome {
        LookupOutcome::Rows(rows) => rows,
        LookupOutcome::Error(message) => panic!("expected rows, got the error {message:?}"),
    }
}

fn error(outcome: LookupOutcome) -> String {
    match outcome {
        LookupOutcome::Error(message) => message,
        LookupOutcome::Rows(rows) => panic!("expected an error, got {rows:?}"),
    }
}

fn field<'a>(row: &'a BTreeMap<String, Value>, name: &str) -> &'a Value {
    row.get(name)
        .unwrap_or_else(|| panic!("no {name} in {row:?}"))
}

fn string(row: &BTreeMap<String, Value>, name: &str) -> String {
    match field(row, name) {
        Value::String(s) => s.clone(),
        other => panic!("{name} is not text: {other:?}"),
    }
}

fn number(row: &BTreeMap<String, Value>, name: &str) -> f64 {
    match field(row, name) {
        Value::Number(n) => *n,
        other => panic!("{name} is not a number: {other:?}"),
    }
}

async fn find(
    catalogue: &Catalogue,
    category: &str,
    budget: Option<f64>,
    preference: Option<&str>,
) -> Vec<BTreeMap<String, Value>> {
    let mut pairs = vec![("category", text(category))];
    pairs.extend(budget.map(|b| ("max_price", Value::Number(b))));
    pairs.extend(preference.map(|p| ("preference", text(p))));
    rows(lookup(catalogue, "products", "find", &pairs, NOW).await)
}

#[tokio::test]
async fn seeds_a_few_hundred_products_once() {
    let dir = temp_dir();
    let catalogue = Catalogue::open(&dir, NOW).await.unwrap();
    assert!(dir.join(FILE_NAME).exists());
    let all = catalogue.products(None, 10_000).await.unwrap();
    assert!(all.len() >= 300, "only {} products", all.len());
    for (category, low, high) in [
        ("phones", 699.0, 9999.0),
        ("laptops", 2999.0, 19999.0),
        ("earphones", 99.0, 2999.0),
    ] {
        let some = catalogue.products(Some(category), 10_000).await.unwrap();
        assert!(some.len() >= 40, "{category}: {}", some.len());
        assert!(some.windows(2).all(|w| w[0].price <= w[1].price));
        assert_eq!(some.first().map(|p| p.price), Some(low), "{category}");
        assert_eq!(some.last().map(|p| p.price), Some(high), "{category}");
    }
    let ids: std::collections::BTreeSet<_> = all.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "ids are unique");
    let orbit = catalogue.product("ph-orbit-14").await.unwrap().unwrap();
    assert_eq!(orbit.name, "Orbit 14");
    assert_eq!(orbit.price, 3299.0);
    assert_eq!(orbit.image, "/demo/img/ph-orbit-14.jpg");
    assert_eq!(orbit.url, "/demo/product/ph-orbit-14");
    assert!(
        orbit.description.contains("5500 mAh"),
        "{}",
        orbit.description
    );
    assert_eq!(catalogue.product("ph-nothing").await.unwrap(), None);
    let ticket = rows(
        lookup(
            &catalogue,
            "tickets",
            "create",
            &[
                ("email", text("a@example.com")),
                ("message", text("hello there")),
            ],
            NOW,
        )
        .await,
    );
    drop(catalogue);

    // A second start, days later, neither reseeds nor loses what was written.
    let again = Catalogue::open(&dir, NOW + 3 * DAY).await.unwrap();
    assert_eq!(again.products(None, 10_000).await.unwrap(), all);
    let order = rows(
        lookup(
            &again,
            "orders",
            "get",
            &[("order_no", text("KF100030"))],
            NOW,
        )
        .await,
    );
    assert_eq!(order.len(), 1);
    let none = rows(
        lookup(
            &again,
            "orders",
            "get",
            &[("order_no", text("KF100031"))],
            NOW,
        )
        .await,
    );
    assert!(none.is_empty());
    let next = rows(
        lookup(
            &again,
            "tickets",
            "create",
            &[
                ("email", text("b@example.com")),
                ("message", text("hello again")),
            ],
            NOW,
        )
        .await,
    );
    assert_ne!(
        string(&ticket[0], "ticket_no"),
        string(&next[0], "ticket_no")
    );
    drop(again);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn find_keeps_to_category_budget_and_preference() {
    let catalogue = Catalogue::in_memory(NOW).await.unwrap();
    for (category, prefix, preferences) in [
        ("phones", "ph-", ["camera", "battery", "value"]),
        ("laptops", "lt-", ["performance", "portable", "value"]),
        ("earphones", "ep-", ["anc", "sport", "value"]),
    ] {
        for preference in preferences {
            // The budget buttons of the guided-shopping flow, and no budget at all.
            for budget in [
                Some(1000.0),
                Some(3000.0),
                Some(6000.0),
                Some(12000.0),
                None,
            ] {
                let found = find(&catalogue, category, budget, Some(preference)).await;
                assert!(found.len() <= 10);
                let mut models = Vec::new();
                for row in &found {
                    let id = string(row, "id");
                    assert!(id.starts_with(prefix), "{id} in {category}");
                    assert!(number(row, "price") <= budget.unwrap_or(f64::MAX), "{id}");
                    let Value::List(tags) = field(row, "tags") else {
                        panic!("tags of {id}")
                    };
                    assert!(tags.contains(&text(preference)), "{id} fits {preference}");
                    assert_eq!(string(row, "image"), format!("/demo/img/{id}.jpg"));
                    assert_eq!(string(row, "url"), format!("/demo/product/{id}"));
                    assert!(!string(row, "name").is_empty());
                    assert!(!string(row, "brand").is_empty());
                    assert!(!string(row, "description").is_empty());
                    // One variant per model: `ph-orbit-14` and `ph-orbit-14-12gb-512gb` are one.
                    let catalogue_row = catalogue.product(&id).await.unwrap().unwrap();
                    assert!(!models.contains(&catalogue_row.model), "{id} twice");
                    models.push(catalogue_row.model);
                }
            }
            let unlimited = find(&catalogue, category, None, Some(preference)).await;
            assert!(
                !unlimited.is_empty(),
                "{category}/{preference} finds something"
            );
        }
    }
}

#[tokio::test]
async fn find_puts_the_best_match_first() {
    let catalogue = Catalogue::in_memory(NOW).await.unwrap();
    let names = |rows: &[BTreeMap<String, Value>]| -> Vec<String> {
        rows.iter().map(|r| string(r, "name")).collect()
    };
    let camera = find(&catalogue, "phones", None, Some("camera")).await;
    assert_eq!(names(&camera)[0], "Lumen X5 Ultra 16 GB/1 TB");
    let camera = find(&catalogue, "phones", Some(5000.0), Some("camera")).await;
    assert_eq!(names(&camera)[0], "Lumen X4 Pro");
    let battery = find(&catalogue, "phones", Some(2000.0), Some("battery")).await;
    assert_eq!(names(&battery)[0], "Pulse Rugged 2 12/256 GB");
    let portable = find(&catalogue, "laptops", None, Some("portable")).await;
    assert!(
        names(&portable)[0].starts_with("Lumen Air 13"),
        "{portable:?}"
    );
    let anc = find(&catalogue, "earphones", Some(500.0), Some("anc")).await;
    assert_eq!(names(&anc)[0], "Nova Buds 4 Pro");
    // Without a preference: the dearest the budget allows.
    let any = find(&catalogue, "laptops", Some(4000.0), None).await;
    assert!(number(&any[0], "price") > number(&any[any.len() - 1], "price"));
}

#[tokio::test]
async fn a_low_budget_finds_nothing() {
    let catalogue = Catalogue::in_memory(NOW).await.unwrap();
    for (category, budget, preference) in [
        ("phones", 300.0, "camera"),
        ("phones", 500.0, "value"),
        ("phones", 698.0, "battery"),
        ("laptops", 2500.0, "value"),
        ("earphones", 200.0, "anc"),
    ] {
        let found = find(&catalogue, category, Some(budget), Some(preference)).await;
        assert!(found.is_empty(), "{category} under {budget}: {found:?}");
    }
}

#[tokio::test]
async fn orders_are_found_missed_or_fail_on_purpose() {
    let catalogue = Catalogue::in_memory(NOW).await.unwrap();
    let get = |order_no: &'static str| {
        lookup(
            &catalogue,
            "orders",
            "get",
            &[("order_no", text(order_no))],
            NOW,
        )
    };
    let shipped = rows(get("KF100001").await);
    assert_eq!(shipped.len(), 1);
    let order = &shipped[0];
    assert_eq!(string(order, "status"), "shipped");
    assert_eq!(string(order, "item_name"), "Kite Note 13");
    assert_eq!(string(order, "carrier"), "SF Express");
    assert!(string(order, "tracking_no").starts_with("SF"));
    assert_eq!(string(order, "eta"), "2026-01-06");
    assert_eq!(number(order, "amount"), 1499.0);
    let delayed = rows(get("KF100002").await);
    assert_eq!(number(&delayed[0], "delay_days"), 2.0);
    let processing = rows(get("KF100003").await);
    assert_eq!(string(&processing[0], "ship_by"), "2026-01-06");
    assert_eq!(string(&processing[0], "carrier"), "");
    let cancelled = rows(get("KF100007").await);
    assert_eq!(string(&cancelled[0], "status"), "cancelled");
    assert!(rows(get("KF999999").await).is_empty());
    assert_eq!(error(get("KF100009").await), "timeout after 5 s");
    // The flows upper-case the number; a lookup from elsewhere may not.
    let lower = rows(
        lookup(
            &catalogue,
            "orders",
            "get",
            &[("order_no", text(" kf100004 "))],
            NOW,
        )
        .await,
    );
    assert_eq!(string(&lower[0], "order_no"), "KF100004");
    let mut statuses = std::collections::BTreeSet::new();
    for n in 100_001..=100_030 {
        if n == 100_009 {
            continue;
        }
        let no = format!("KF{n}");
        let found =
            rows(lookup(&catalogue, "orders", "get", &[("order_no", text(&no))], NOW).await);
        assert_eq!(found.len(), 1, "{no}");
        statuses.insert(string(&found[0], "status"));
    }
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        ["cancelled", "delayed", "delivered", "processing", "shipped"]
    );
}

#[tokio::test]
async fn orders_keep_their_age() {
    let catalogue = Catalogue::in_memory(NOW).await.unwrap();
    // (order, days since delivery: what the returns flow computes)
    for (order_no, days) in [
        ("KF100004", 3),
        ("KF100005", 12),
        ("KF100006", 13),
        ("KF100008", 45),
    ] {
        for later in [0, 1, 40] {
            let now = NOW + later * DAY + 5 * 3_600_000;
            let found = rows(
                lookup(
                    &catalogue,
                    "orders",
                    "get",
                    &[("order_no", text(order_no))],
                    now,
                )
                .await,
            );
            let delivered_at = number(&found[0], "delivered_at") as Millis;
            assert_eq!(
                (now - delivered_at).div_euclid(DAY),
                days,
                "{order_no} {later} days on"
            );
        }
    }
}

#[tokio::test]
async fn returns_and_tickets_are_written_with_distinct_numbers() {
    let catalogue = Catalogue::in_memory(NOW).await.unwrap();
    let create = |order_no: &'static str, reason: &'static str| {
        lookup(
            &catalogue,
            "returns",
            "create",
            &[
                ("order_no", text(order_no)),
                ("reason", text(reason)),
                ("details", text("")),
            ],
            NOW,
        )
    };
    let first = rows(create("KF100004", "changed_mind").await);
    let second = rows(create("KF100005", "wrong_item").await);
    let (a, b) = (string(&first[0], "rma_no"), string(&second[0], "rma_no"));
    assert_eq!(a, "RMA260105-0001");
    assert_eq!(b, "RMA260105-0002");
    assert_eq!(string(&first[0], "ship_by"), "2026-01-12");
    assert!(string(&first[0], "address").contains("Shanghai"));
    assert_eq!(number(&first[0], "refund_days"), 3.0);
    // The deliberate failure, an order that does not exist, one not delivered, a bad reason.
    assert!(error(create("KF100010", "changed_mind").await).contains("deliberate"));
    assert!(error(create("KF999999", "other").await).contains("KF999999"));
    assert!(error(create("KF100001", "other").await).contains("shipped"));
    assert!(error(create("KF100004", "bored").await).contains("\"bored\""));

    let ticket = |email: &'static str| {
        lookup(
            &catalogue,
            "tickets",
            "create",
            &[
                ("email", text(email)),
                ("message", text("Can I get an invoice?")),
                ("topic", text("invoice")),
                ("session_id", text("s-1")),
                ("channel", text("web")),
            ],
            NOW,
        )
    };
    let one = string(&rows(ticket("a@example.com").await)[0], "ticket_no");
    let two = string(&rows(ticket("b@example.com").await)[0], "ticket_no");
    assert_eq!(one, "TK-20260105-0001");
    assert_eq!(two, "TK-20260105-0002");
}

#[tokio::test]
async fn bad_requests_answer_errors_that_name_the_problem() {
    let catalogue = Catalogue::in_memory(NOW).await.unwrap();
    let unknown_entity = error(lookup(&catalogue, "cars", "find", &[], NOW).await);
    assert!(unknown_entity.contains("\"cars\""), "{unknown_entity}");
    let unknown_operation = error(lookup(&catalogue, "orders", "delete", &[], NOW).await);
    assert!(
        unknown_operation.contains("\"delete\""),
        "{unknown_operation}"
    );
    let bad_budget = error(
        lookup(
            &catalogue,
            "products",
            "find",
            &[("category", text("phones")), ("max_price", text("abc"))],
            NOW,
        )
        .await,
    );
    assert!(
        bad_budget.contains("max_price") && bad_budget.contains("abc"),
        "{bad_budget}"
    );
    let missing = error(lookup(&catalogue, "products", "find", &[], NOW).await);
    assert!(missing.contains("category"), "{missing}");
    let bad_category = error(
        lookup(
            &catalogue,
            "products",
            "find",
            &[("category", text("cars"))],
            NOW,
        )
        .await,
    );
    assert!(bad_category.contains("\"cars\""), "{bad_category}");
    let bad_preference = error(
        lookup(
            &catalogue,
            "products",
            "find",
            &[
                ("category", text("laptops")),
                ("preference", text("camera")),
            ],
            NOW,
        )
        .await,
    );
    assert!(bad_preference.contains("\"camera\""), "{bad_preference}");
    let misspelt = error(
        lookup(
            &catalogue,
            "products",
            "find",
            &[
                ("category", text("phones")),
                ("max_prise", Value::Number(1.0)),
            ],
            NOW,
        )
        .await,
    );
    assert!(misspelt.contains("\"max_prise\""), "{misspelt}");
    let number_for_text = error(
        lookup(
            &catalogue,
            "orders",
            "get",
            &[("order_no", Value::Number(100_001.0))],
            NOW,
        )
        .await,
    );
    assert!(number_for_text.contains("order_no"), "{number_for_text}");

    let mut request = LookupRequest {
        request: 1,
        node: "test".into(),
        connector: "crm".to_owned(),
        entity: "orders".to_owned(),
        operation: "get".to_owned(),
        params: BTreeMap::new(),
    };
    let unknown_connector = error(catalogue.lookup(&request, NOW).await);
    assert!(unknown_connector.contains("\"crm\""), "{unknown_connector}");
    // The lookup future can move between threads (the server runs it on its runtime).
    request.connector = "demo".to_owned();
    fn assert_send<T: Send>(_: &T) {}
    let future = catalogue.lookup(&request, NOW);
    assert_send(&future);
    drop(future);
}

#[test]
fn pictures_for_products_categories_and_nothing_else() {
    let orbit = image_svg("ph-orbit-14.jpg").unwrap();
    assert!(orbit.starts_with("<svg"), "{orbit}");
    assert!(orbit.contains("Orbit 14"));
    assert!(orbit.trim_end().ends_with("</svg>"));
    let sleeve = image_svg("ac-kite-laptop-sleeve-15.jpg").unwrap();
    assert!(sleeve.contains("Kite laptop sleeve 15″"));
    let phones = image_svg("category-phones.jpg").unwrap();
    assert!(phones.contains("Phones"));
    assert!(image_svg("category-earphones.jpg").is_some());
    assert!(image_svg("payment-methods.png").unwrap().contains("Alipay"));
    assert_eq!(image_svg("ph-nothing.jpg"), None);
    assert_eq!(image_svg("category-cars.jpg"), None);
    assert_eq!(image_svg("../secrets.jpg"), None);
}

/// Plays one bundled flow against the catalogue: the inputs in turn, answering every lookup
/// from the catalogue. Returns the effects as the scenario transcripts describe them.
async fn play(flow: &str, inputs: &[Input], catalogue: &Catalogue, now: Millis) -> Vec<String> {
    let library = Library::bundled().unwrap();
    let engine = Interpreter::new(&library, flow).unwrap();
    let mut session = engine.new_session();
    let start = Input::Start(StartInput {
        session_id: format!("demo-{flow}"),
        locale: "en".to_owned(),
        channel: "web".to_owned(),
        tz_offset_minutes: 480,
        user: BTreeMap::new(),
    });
    let mut lines = Vec::new();
    for input in std::iter::once(&start).chain(inputs) {
        let mut input = input.clone();
        loop {
            let step = engine.step(&mut session, &input, now);
            let mut pending = None;
            for effect in &step.effects {
                lines.push(describe_effect(effect));
                if let Effect::Lookup(request) = effect {
                    pending = Some(request.clone());
                }
            }
            let Some(request) = pending else { break };
            input = Input::LookupResult(LookupResult {
                request: request.request,
                outcome: catalogue.lookup(&request, now).await,
            });
        }
    }
    lines
}

fn reached(lines: &[String], node: &str) -> bool {
    lines.iter().any(|l| l.contains(node))
}

#[tokio::test]
async fn every_branch_of_order_status_is_reachable() {
    let catalogue = Catalogue::in_memory(NOW).await.unwrap();
    for (order_no, node) in [
        ("KF100001", "say[say_shipped]"),
        ("KF100002", "say[say_delayed]"),
        ("KF100003", "say[say_processing]"),
        ("KF100007", "say[say_other_status]"),
        ("KF100004", "say[say_other_status]"),
        ("KF123456", "ask[not_found]"),
        ("KF100009", "say[say_lookup_error]"),
    ] {
        let lines = play(
            "order-status",
            &[Input::Text(order_no.to_owned())],
            &catalogue,
            NOW + 10 * DAY,
        )
        .await;
        assert!(
            reached(&lines, node),
            "{order_no} → {node}:\n{}",
            lines.join("\n")
        );
    }
}

#[tokio::test]
async fn every_branch_of_returns_is_reachable() {
    let catalogue = Catalogue::in_memory(NOW).await.unwrap();
    let wrong_item = Input::Choice("wrong_item".to_owned());
    for (order_no, node) in [
        ("KF100004", "say[say_confirm]"),
        ("KF100005", "say[say_confirm]"),
        ("KF100006", "say[say_not_eligible]"),
        ("KF100008", "say[say_not_eligible]"),
        ("KF100001", "say[say_not_delivered]"),
        ("KF100007", "say[say_not_delivered]"),
        ("KF123456", "ask[not_found]"),
        ("KF100009", "say[say_lookup_error]"),
        ("KF100010", "say[say_create_failed]"),
    ] {
        // Weeks after seeding: the orders have kept their age.
        let lines = play(
            "returns",
            &[Input::Text(order_no.to_lowercase()), wrong_item.clone()],
            &catalogue,
            NOW + 20 * DAY,
        )
        .await;
        assert!(
            reached(&lines, node),
            "{order_no} → {node}:\n{}",
            lines.join("\n")
        );
    }
}

#[tokio::test]
async fn guided_shopping_shows_products_or_offers_to_adjust() {
    let catalogue = Catalogue::in_memory(NOW).await.unwrap();
    for (category, budget, preference, node) in [
        ("phones", "3000", "camera", "say[show_products]"),
        ("phones", "300", "camera", "ask[no_match]"),
        ("laptops", "6000", "portable", "say[show_products]"),
        ("earphones", "500", "sport", "say[show_products]"),
    ] {
        let inputs = [
            Input::Choice(category.to_owned()),
            Input::Text(budget.to_owned()),
            Input::Choice(preference.to_owned()),
        ];
        let lines = play("guided-shopping", &inputs, &catalogue, NOW).await;
        assert!(
            reached(&lines, node),
            "{category} {budget} {preference} → {node}:\n{}",
            lines.join("\n")
        );
    }
}

#[tokio::test]
async fn faq_hours_leaves_a_ticket_out_of_hours() {
    let catalogue = Catalogue::in_memory(NOW).await.unwrap();
    // Sunday 2026-01-04, 10:00 in Shanghai: nobody is in.
    let sunday = NOW - DAY;
    let inputs = [
        Input::Choice("human".to_owned()),
        Input::Choice("leave".to_owned()),
        Input::Text("visitor@example.com".to_owned()),
        Input::Text("Where is my invoice for KF100004?".to_owned()),
    ];
    let lines = play("faq-hours", &inputs, &catalogue, sunday).await;
    assert!(reached(&lines, "TK-20260104-0001"), "{}", lines.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_returns_get_distinct_numbers() {
    let dir = temp_dir();
    let catalogue = Catalogue::open(&dir, NOW).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let catalogue = catalogue.clone();
            tokio::spawn(async move {
                let order_no = if i % 2 == 0 { "KF100004" } else { "KF100005" };
                let outcome = lookup(
                    &catalogue,
                    "returns",
                    "create",
                    &[("order_no", text(order_no)), ("reason", text("other"))],
                    NOW,
                )
                .await;
                string(&rows(outcome)[0], "rma_no")
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap());
    }
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 16);
    assert_eq!(numbers[15], "RMA260105-0016");
    drop(catalogue);
    std::fs::remove_dir_all(&dir).unwrap();
}
