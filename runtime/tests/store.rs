//! The storage suite: every behaviour runs against every available backend — SQLite on a temp
//! file always, PostgreSQL and MySQL/MariaDB when `KEFU_TEST_POSTGRES_URL` / `KEFU_TEST_MYSQL_URL`
//! name a server. Each run gets a fresh database, dropped afterwards.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use runtime::store::{
    DraftSaved, FlowStat, NewConversation, NewEvent, NewMessage, NewSession, NewVersion,
    PolicyRevision, Published, Sender, StatKey, Store, StoreError, StoredMessage, VersionPublished,
};
use sqlx::{AssertSqlSafe, Connection, Executor};

/// A fresh, empty database on one backend.
pub(crate) enum TestDb {
    Sqlite {
        path: PathBuf,
    },
    Server {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    pub(crate) fn url(&self) -> String {
        match self {
            TestDb::Sqlite { path } => format!("sqlite://{}?mode=rwc", path.display()),
            TestDb::Server { url, .. } => url.clone(),
        }
    }

    /// Removes the database; called after the store is closed.
    pub(crate) async fn drop_database(self) {
        match self {
            TestDb::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            TestDb::Server {
                admin_url, name, ..
            } => {
                let statement = if admin_url.starts_with("mysql") {
                    format!("DROP DATABASE IF EXISTS {name}")
                } else {
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                };
                admin_execute(&admin_url, &statement).await;
            }
        }
    }
}

async fn admin_execute(admin_url: &str, statement: &str) {
    if admin_url.starts_with("mysql") {
        let mut connection = sqlx::MySqlConnection::connect(admin_url).await.unwrap();
        connection.execute(AssertSqlSafe(statement)).await.unwrap();
        connection.close().await.unwrap();
    } else {
        let mut connection = sqlx::PgConnection::connect(admin_url).await.unwrap();
        connection.execute(AssertSqlSafe(statement)).await.unwrap();
        connection.close().await.unwrap();
    }
}

/// A name no other test (or earlier run) uses.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!("kefu_t_{seconds}_{:016x}", hasher.finish())
}

/// `url` with its database path replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The backends to run on: SQLite always, the servers whose URL variable is set.
pub(crate) async fn backends(test: &str) -> Vec<TestDb> {
    let mut dbs = vec![TestDb::Sqlite {
        path: std::env::temp_dir().join(format!("{}.sqlite", unique_name())),
    }];
    for variable in ["KEFU_TEST_POSTGRES_URL", "KEFU_TEST_MYSQL_URL"] {
        match server_database(variable).await {
            Some(db) => dbs.push(db),
            None => eprintln!("{test}: {variable} is unset, skipping that backend"),
        }
    }
    dbs
}

/// A fresh database on the server `variable` names (`KEFU_TEST_POSTGRES_URL` or
/// `KEFU_TEST_MYSQL_URL`); `None` when it is unset.
pub(crate) async fn server_database(variable: &str) -> Option<TestDb> {
    let admin_url = std::env::var(variable).ok().filter(|url| !url.is_empty())?;
    let name = unique_name();
    let create = if admin_url.starts_with("mysql") {
        format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    } else {
        format!("CREATE DATABASE {name}")
    };
    admin_execute(&admin_url, &create).await;
    let url = with_database(&admin_url, &name);
    Some(TestDb::Server {
        admin_url,
        name,
        url,
    })
}

/// Runs `suite` on a fresh, migrated store for every backend, reporting the time each took.
async fn on_every_backend<F, Fut>(test: &str, suite: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    for db in backends(test).await {
        let store = Store::connect(&db.url()).await.unwrap();
        store.migrate().await.unwrap();
        let started = Instant::now();
        suite(store.clone()).await;
        eprintln!("{test} on {}: {:?}", store.backend(), started.elapsed());
        store.close().await;
        db.drop_database().await;
    }
}

fn conversation(id: &str) -> NewConversation {
    NewConversation {
        id: id.to_owned(),
        flow_id: "shop".to_owned(),
        flow_version: 1,
        flow_hash: "h1".to_owned(),
        owner: "bot".to_owned(),
        status: "open".to_owned(),
        created_at: 1_700_000_000_000,
        node: None,
    }
}

fn message(conversation: &str, body: &str, client_id: Option<&str>) -> NewMessage {
    NewMessage {
        conversation: conversation.to_owned(),
        sender: Sender::Visitor,
        kind: "text".to_owned(),
        body_json: body.to_owned(),
        client_id: client_id.map(str::to_owned),
        at: 1_700_000_000_001,
    }
}

fn seqs(messages: &[StoredMessage]) -> Vec<i64> {
    messages.iter().map(|m| m.seq).collect()
}

#[tokio::test]
async fn migrations_are_idempotent() {
    on_every_backend("migrations_are_idempotent", |store| async move {
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        store
            .create_conversation(&conversation("c1"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        assert!(store.conversation("c1").await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn unsupported_url_scheme_is_a_clear_error() {
    let error = Store::connect("redis://user:secret@127.0.0.1/0")
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::UnsupportedUrl { .. }),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("`redis`") && !text.contains("secret"),
        "{text}"
    );
}

#[tokio::test]
async fn published_flow_versions_are_immutable() {
    on_every_backend("published_flow_versions_are_immutable", |store| async move {
        assert_eq!(store.latest_flow("shop").await.unwrap(), None);
        assert_eq!(
            store.publish_flow("shop", 1, "h1", r#"{"v":1}"#).await.unwrap(),
            Published::New
        );
        assert_eq!(
            store.publish_flow("shop", 1, "h1", r#"{"v":1}"#).await.unwrap(),
            Published::Unchanged
        );
        let error = store
            .publish_flow("shop", 1, "h2", r#"{"v":"changed"}"#)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::FlowVersionConflict { existing, .. } if existing == "h1"),
            "{error}"
        );
        store.publish_flow("shop", 3, "h3", r#"{"v":3}"#).await.unwrap();
        store.publish_flow("shop", 2, "h2", r#"{"v":2}"#).await.unwrap();
        store.publish_flow("other", 9, "o9", "{}").await.unwrap();

        let v1 = store.flow_version("shop", 1).await.unwrap().unwrap();
        assert_eq!((v1.hash.as_str(), v1.json.as_str()), ("h1", r#"{"v":1}"#));
        assert_eq!(store.flow_version("shop", 4).await.unwrap(), None);
        let latest = store.latest_flow("shop").await.unwrap().unwrap();
        assert_eq!((latest.version, latest.hash.as_str()), (3, "h3"));
        let versions: Vec<(u32, String)> = store
            .flow_versions("shop")
            .await
            .unwrap()
            .into_iter()
            .map(|v| (v.version, v.hash))
            .collect();
        assert_eq!(
            versions,
            [(1, "h1".to_owned()), (2, "h2".to_owned()), (3, "h3".to_owned())]
        );
        assert!(store.flow_versions("nothing").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn drafts_are_saved_with_compare_and_set_and_published_with_notes() {
    on_every_backend("drafts", |store| async move {
        assert_eq!(store.draft("shop").await.unwrap(), None);
        store
            .publish_flow("shop", 1, "h1", r#"{"v":1}"#)
            .await
            .unwrap();
        // The first save expects no draft; a second first save conflicts.
        let first = store
            .save_draft("shop", 0, r#"{"d":"一"}"#, "root", 10)
            .await
            .unwrap();
        assert_eq!(first, DraftSaved::Saved(1));
        let DraftSaved::Conflict { current } = store
            .save_draft("shop", 0, r#"{"d":"x"}"#, "li", 11)
            .await
            .unwrap()
        else {
            panic!("a second first save must conflict");
        };
        let current = current.unwrap();
        assert_eq!(
            (
                current.revision,
                current.document.as_str(),
                current.updated_by.as_deref()
            ),
            (1, r#"{"d":"一"}"#, Some("root"))
        );
        assert_eq!(
            store
                .save_draft("shop", 1, r#"{"d":2}"#, "li", 12)
                .await
                .unwrap(),
            DraftSaved::Saved(2)
        );
        // A stale revision changes nothing.
        assert!(matches!(
            store.save_draft("shop", 1, r#"{"d":"stale"}"#, "root", 13).await.unwrap(),
            DraftSaved::Conflict { current: Some(d) } if d.revision == 2
        ));
        assert!(matches!(
            store
                .save_draft("nothing", 3, "{}", "root", 13)
                .await
                .unwrap(),
            DraftSaved::Conflict { current: None }
        ));
        let draft = store.draft("shop").await.unwrap().unwrap();
        assert_eq!((draft.revision, draft.updated_at), (2, 12));

        let v2 = NewVersion {
            flow_id: "shop",
            version: 2,
            hash: "h2",
            document: r#"{"v":2}"#,
            note: "better greeting 更好",
            published_by: "root",
            published_at: 20,
        };
        // Publishing from a stale draft revision stores nothing.
        assert_eq!(
            store.publish_version(&v2, 1).await.unwrap(),
            VersionPublished::Conflict
        );
        assert_eq!(store.latest_flow("shop").await.unwrap().unwrap().version, 1);
        assert_eq!(
            store.publish_version(&v2, 2).await.unwrap(),
            VersionPublished::Published { draft_revision: 3 }
        );
        let draft = store.draft("shop").await.unwrap().unwrap();
        assert_eq!((draft.revision, draft.document.as_str()), (3, r#"{"v":2}"#));
        // The same version number again: refused, the draft unchanged.
        assert_eq!(
            store.publish_version(&v2, 3).await.unwrap(),
            VersionPublished::Conflict
        );
        assert_eq!(store.draft("shop").await.unwrap().unwrap().revision, 3);
        // A flow without a draft gets one when it is published.
        let other = NewVersion {
            flow_id: "other",
            version: 1,
            hash: "o1",
            document: "{}",
            note: "",
            published_by: "root",
            published_at: 30,
        };
        assert_eq!(
            store.publish_version(&other, 0).await.unwrap(),
            VersionPublished::Published { draft_revision: 1 }
        );

        let history = store.version_history("shop").await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(
            (
                history[0].version,
                history[0].note.as_deref(),
                history[0].published_at
            ),
            (1, None, None)
        );
        assert_eq!(
            (
                history[1].version,
                history[1].hash.as_str(),
                history[1].note.as_deref(),
                history[1].published_at,
                history[1].published_by.as_deref()
            ),
            (
                2,
                "h2",
                Some("better greeting 更好"),
                Some(20),
                Some("root")
            )
        );
        assert!(store.version_history("nothing").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn policy_revisions_take_the_next_number_once() {
    on_every_backend("policy_revisions", |store| async move {
        assert_eq!(store.newest_policies().await.unwrap(), None);
        // Chinese text and a text longer than MySQL's TEXT (64 KiB) keep every byte.
        let text = format!("# 策略\n{}", "policy {}\n".repeat(8000));
        let first = PolicyRevision {
            revision: 1,
            text: text.clone(),
            author: "管理员".to_owned(),
            created_at: 1_700_000_000_000,
        };
        assert!(store.insert_policies(&first).await.unwrap());
        let rival = PolicyRevision {
            text: "other".to_owned(),
            ..first.clone()
        };
        assert!(
            !store.insert_policies(&rival).await.unwrap(),
            "a second save of revision 1 is refused"
        );
        let second = PolicyRevision {
            revision: 2,
            text: "second".to_owned(),
            ..first.clone()
        };
        assert!(store.insert_policies(&second).await.unwrap());
        assert_eq!(store.newest_policies().await.unwrap(), Some(second));
    })
    .await;
}

#[tokio::test]
async fn flow_stats_add_up_per_version_node_and_edge() {
    on_every_backend("flow_stats", |store| async move {
        let stat = |node: &str, port: &str, target: &str, visits: u64| FlowStat {
            node: node.to_owned(),
            port: port.to_owned(),
            target: target.to_owned(),
            visits,
        };
        let node = |v: u32, n: &str| StatKey::node("shop", v, n.to_owned());
        let edge = |v: u32, from: &str, port: &str, to: &str| {
            StatKey::edge("shop", v, from.to_owned(), port.to_owned(), to.to_owned())
        };
        assert_eq!(store.flow_stats("shop", 1).await.unwrap(), []);
        // Node ids have no length limit and may be Chinese.
        let long = "节点".repeat(200);
        store
            .add_flow_stats(&[
                (node(1, "start"), 3),
                (edge(1, "start", "next", "ask"), 2),
                (node(1, &long), 1),
            ])
            .await
            .unwrap();
        // Increments add to what is stored, and new counters appear.
        store
            .add_flow_stats(&[
                (node(1, "ask"), 2),
                (node(1, "start"), 4),
                (edge(1, "start", "next", "ask"), 5),
                (edge(1, "start", "other", "ask"), 1),
            ])
            .await
            .unwrap();
        // Another version and another flow are apart.
        store
            .add_flow_stats(&[(node(2, "start"), 9)])
            .await
            .unwrap();
        store
            .add_flow_stats(&[(StatKey::node("faq", 1, "start".to_owned()), 7)])
            .await
            .unwrap();
        let mut expected = vec![
            stat("ask", "", "", 2),
            stat("start", "", "", 7),
            stat("start", "next", "ask", 7),
            stat("start", "other", "ask", 1),
            stat(&long, "", "", 1),
        ];
        expected.sort_by(|a, b| (&a.node, &a.port, &a.target).cmp(&(&b.node, &b.port, &b.target)));
        let mut got = store.flow_stats("shop", 1).await.unwrap();
        got.sort_by(|a, b| (&a.node, &a.port, &a.target).cmp(&(&b.node, &b.port, &b.target)));
        assert_eq!(got, expected);
        assert_eq!(
            store.flow_stats("shop", 2).await.unwrap(),
            [stat("start", "", "", 9)]
        );

        // Counted in memory, written by a flush (the same key twice is one row of 2).
        store.count_flow_stats([
            node(3, "start"),
            node(3, "start"),
            edge(3, "start", "next", "end"),
        ]);
        assert_eq!(store.flow_stats("shop", 3).await.unwrap(), []);
        assert_eq!(store.flush_flow_stats().await.unwrap(), 2);
        assert_eq!(store.flush_flow_stats().await.unwrap(), 0);
        assert_eq!(
            store.flow_stats("shop", 3).await.unwrap(),
            [stat("start", "", "", 2), stat("start", "next", "end", 1)]
        );
        // Many counters in one flush (several statements in one transaction).
        store.count_flow_stats((0..400).map(|i| node(4, &format!("n{i:03}"))));
        assert_eq!(store.flush_flow_stats().await.unwrap(), 400);
        let many = store.flow_stats("shop", 4).await.unwrap();
        assert_eq!(many.len(), 400);
        assert!(many.iter().all(|s| s.visits == 1));
    })
    .await;
}

#[tokio::test]
async fn drafts_and_latest_versions_of_every_flow() {
    on_every_backend("drafts_list", |store| async move {
        assert_eq!(store.drafts().await.unwrap(), []);
        assert_eq!(store.latest_versions().await.unwrap(), []);
        for (id, version) in [("b", 1), ("a", 1), ("b", 2), ("b", 3)] {
            store
                .publish_flow(id, version, &format!("h{version}"), "{}")
                .await
                .unwrap();
        }
        store.save_draft("c", 0, "{}", "root", 1).await.unwrap();
        store.save_draft("a", 0, "{}", "root", 2).await.unwrap();
        store
            .save_draft("a", 1, "{\"x\":1}", "li", 3)
            .await
            .unwrap();
        assert_eq!(
            store.latest_versions().await.unwrap(),
            [("a".to_owned(), 1), ("b".to_owned(), 3)]
        );
        let drafts = store.drafts().await.unwrap();
        let summary: Vec<(&str, i64, &str)> = drafts
            .iter()
            .map(|d| (d.flow_id.as_str(), d.revision, d.document.as_str()))
            .collect();
        assert_eq!(summary, [("a", 2, "{\"x\":1}"), ("c", 1, "{}")]);
    })
    .await;
}

#[tokio::test]
async fn conversation_state_changes_append_events() {
    on_every_backend(
        "conversation_state_changes_append_events",
        |store| async move {
            let new = conversation("c1");
            store.create_conversation(&new).await.unwrap();
            let error = store.create_conversation(&new).await.unwrap_err();
            assert!(
                matches!(error, StoreError::ConversationExists(_)),
                "{error}"
            );

            let stored = store.conversation("c1").await.unwrap().unwrap();
            assert_eq!(
                (
                    stored.flow_id.as_str(),
                    stored.flow_version,
                    stored.flow_hash.as_str()
                ),
                ("shop", 1, "h1")
            );
            assert_eq!(
                (stored.owner.as_str(), stored.status.as_str()),
                ("bot", "open")
            );
            assert_eq!((stored.last_message_seq, stored.last_event_seq), (0, 0));
            assert_eq!(store.conversation("nope").await.unwrap(), None);

            let handoff = NewEvent {
                at: 10,
                kind: "handoff".to_owned(),
                data_json: r#"{"queue":"售前"}"#.to_owned(),
            };
            let first = store
                .set_state("c1", "queue", "waiting", &handoff)
                .await
                .unwrap();
            assert_eq!(first.seq, 1);
            let claim = NewEvent {
                at: 20,
                kind: "claimed".to_owned(),
                data_json: r#"{"agent":"a7"}"#.to_owned(),
            };
            let second = store
                .set_state("c1", "agent", "active", &claim)
                .await
                .unwrap();
            assert_eq!(second.seq, 2);

            let stored = store.conversation("c1").await.unwrap().unwrap();
            assert_eq!(
                (stored.owner.as_str(), stored.status.as_str()),
                ("agent", "active")
            );
            assert_eq!(stored.last_event_seq, 2);
            assert_eq!(
                store.events_after("c1", 0).await.unwrap(),
                [first, second.clone()]
            );
            assert_eq!(store.events_after("c1", 1).await.unwrap(), [second]);
            assert!(store.events_after("c1", 2).await.unwrap().is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn a_batch_numbers_each_conversation_from_one() {
    on_every_backend(
        "a_batch_numbers_each_conversation_from_one",
        |store| async move {
            for id in ["a", "b", "c"] {
                store.create_conversation(&conversation(id)).await.unwrap();
            }
            let batch = [
                message("b", r#"{"n":"b1"}"#, None),
                message("a", r#"{"n":"a1"}"#, None),
                message("b", r#"{"n":"b2"}"#, None),
                message("c", r#"{"n":"c1"}"#, Some("x")),
                message("a", r#"{"n":"a2"}"#, Some("x")),
                message("b", r#"{"n":"b3"}"#, None),
            ];
            let stored = store.append_messages(&batch).await.unwrap();
            let got: Vec<(&str, i64, &str)> = stored
                .iter()
                .map(|m| (m.conversation.as_str(), m.seq, m.body_json.as_str()))
                .collect();
            assert_eq!(
                got,
                [
                    ("b", 1, r#"{"n":"b1"}"#),
                    ("a", 1, r#"{"n":"a1"}"#),
                    ("b", 2, r#"{"n":"b2"}"#),
                    ("c", 1, r#"{"n":"c1"}"#),
                    ("a", 2, r#"{"n":"a2"}"#),
                    ("b", 3, r#"{"n":"b3"}"#),
                ]
            );
            let next = store
                .append_messages(&[message("a", "{}", None)])
                .await
                .unwrap();
            assert_eq!(seqs(&next), [3]);
            assert_eq!(
                store
                    .conversation("b")
                    .await
                    .unwrap()
                    .unwrap()
                    .last_message_seq,
                3
            );
            assert_eq!(
                seqs(&store.messages_after("a", 0, 100).await.unwrap()),
                [1, 2, 3]
            );
            assert!(store.append_messages(&[]).await.unwrap().is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn a_resent_client_id_returns_the_stored_message() {
    on_every_backend(
        "a_resent_client_id_returns_the_stored_message",
        |store| async move {
            store.create_conversation(&conversation("c")).await.unwrap();
            store.create_conversation(&conversation("d")).await.unwrap();
            let first = store
                .append_messages(&[message("c", r#"{"text":"hi"}"#, Some("m-1"))])
                .await
                .unwrap();
            assert_eq!(seqs(&first), [1]);

            // The resend (even with another body), a twin inside one batch, and the same client id
            // in another conversation.
            let batch = [
                message("c", r#"{"text":"hi (resent)"}"#, Some("m-1")),
                message("c", r#"{"text":"next"}"#, Some("m-2")),
                message("c", r#"{"text":"next (twin)"}"#, Some("m-2")),
                message("d", r#"{"text":"elsewhere"}"#, Some("m-1")),
                message("c", r#"{"text":"no id"}"#, None),
            ];
            let stored = store.append_messages(&batch).await.unwrap();
            assert_eq!(stored[0], first[0]);
            assert_eq!(stored[1], stored[2]);
            let got: Vec<(&str, i64, &str)> = stored
                .iter()
                .map(|m| (m.conversation.as_str(), m.seq, m.body_json.as_str()))
                .collect();
            assert_eq!(
                got,
                [
                    ("c", 1, r#"{"text":"hi"}"#),
                    ("c", 2, r#"{"text":"next"}"#),
                    ("c", 2, r#"{"text":"next"}"#),
                    ("d", 1, r#"{"text":"elsewhere"}"#),
                    ("c", 3, r#"{"text":"no id"}"#),
                ]
            );
            assert_eq!(
                seqs(&store.messages_after("c", 0, 100).await.unwrap()),
                [1, 2, 3]
            );
            assert_eq!(
                store
                    .conversation("c")
                    .await
                    .unwrap()
                    .unwrap()
                    .last_message_seq,
                3
            );
        },
    )
    .await;
}

#[tokio::test]
async fn messages_after_pages_in_order() {
    on_every_backend("messages_after_pages_in_order", |store| async move {
        store.create_conversation(&conversation("c")).await.unwrap();
        store
            .create_conversation(&conversation("other"))
            .await
            .unwrap();
        let batch: Vec<NewMessage> = (1..=25)
            .map(|n| message("c", &format!(r#"{{"n":{n}}}"#), None))
            .collect();
        store.append_messages(&batch).await.unwrap();
        store
            .append_messages(&[message("other", "{}", None)])
            .await
            .unwrap();

        let mut pages = Vec::new();
        let mut after = 0;
        loop {
            let page = store.messages_after("c", after, 10).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            pages.push(seqs(&page));
        }
        assert_eq!(
            pages,
            [
                (1..=10).collect::<Vec<_>>(),
                (11..=20).collect(),
                (21..=25).collect()
            ]
        );
        let tail = store.messages_after("c", 23, 10).await.unwrap();
        assert_eq!(tail[0].body_json, r#"{"n":24}"#);
        assert_eq!(tail[0].sender, Sender::Visitor);
        assert!(store.messages_after("c", 0, 0).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn sessions_keep_only_the_latest_turn() {
    on_every_backend("sessions_keep_only_the_latest_turn", |store| async move {
        store.create_conversation(&conversation("c")).await.unwrap();
        assert_eq!(store.load_session("c").await.unwrap(), None);
        store.save_session("c", 1, r#"{"turn":1}"#).await.unwrap();
        store.save_session("c", 2, r#"{"turn":2}"#).await.unwrap();
        let loaded = store.load_session("c").await.unwrap().unwrap();
        assert_eq!((loaded.turn, loaded.json.as_str()), (2, r#"{"turn":2}"#));

        // A late save of an older turn does not replace the newer state; the same turn does.
        store
            .save_session("c", 1, r#"{"turn":"stale"}"#)
            .await
            .unwrap();
        let loaded = store.load_session("c").await.unwrap().unwrap();
        assert_eq!((loaded.turn, loaded.json.as_str()), (2, r#"{"turn":2}"#));
        store
            .save_session("c", 2, r#"{"turn":"2b"}"#)
            .await
            .unwrap();
        let loaded = store.load_session("c").await.unwrap().unwrap();
        assert_eq!((loaded.turn, loaded.json.as_str()), (2, r#"{"turn":"2b"}"#));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_gap_free_sequence_numbers() {
    const TASKS: usize = 8;
    const APPENDS: usize = 50;
    on_every_backend(
        "concurrent_appends_get_gap_free_sequence_numbers",
        |store| async move {
            store
                .create_conversation(&conversation("hot"))
                .await
                .unwrap();
            store
                .create_conversation(&conversation("side"))
                .await
                .unwrap();
            let mut tasks = Vec::new();
            for task in 0..TASKS {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut seqs = Vec::new();
                    for n in 0..APPENDS {
                        // Every other batch also writes to a second conversation, in either order,
                        // and every third message carries a client id.
                        let client_id = (n % 3 == 0).then(|| format!("t{task}-{n}"));
                        let mut batch = vec![message("hot", "{}", client_id.as_deref())];
                        if n % 2 == 0 {
                            let side = message("side", "{}", None);
                            if task % 2 == 0 {
                                batch.push(side);
                            } else {
                                batch.insert(0, side);
                            }
                        }
                        let stored = store.append_messages(&batch).await.unwrap();
                        seqs.extend(
                            stored
                                .iter()
                                .filter(|m| m.conversation == "hot")
                                .map(|m| m.seq),
                        );
                    }
                    seqs
                }));
            }
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await.unwrap());
            }
            all.sort_unstable();
            let expected: Vec<i64> = (1..=i64::try_from(TASKS * APPENDS).unwrap()).collect();
            assert_eq!(all, expected);
            let stored = store.messages_after("hot", 0, 1000).await.unwrap();
            assert_eq!(seqs(&stored), expected);
            let side = store.messages_after("side", 0, 1000).await.unwrap();
            assert_eq!(
                seqs(&side),
                (1..=i64::try_from(TASKS * APPENDS / 2).unwrap()).collect::<Vec<_>>()
            );
        },
    )
    .await;
}

#[tokio::test]
async fn unknown_conversations_are_errors() {
    on_every_backend("unknown_conversations_are_errors", |store| async move {
        store
            .create_conversation(&conversation("known"))
            .await
            .unwrap();
        let unknown = |result: Result<(), StoreError>| match result {
            Err(StoreError::UnknownConversation(id)) => assert_eq!(id, "ghost"),
            other => panic!("expected an unknown conversation, got {other:?}"),
        };
        // The whole batch fails: the known conversation's message is not stored either.
        unknown(
            store
                .append_messages(&[message("known", "{}", None), message("ghost", "{}", None)])
                .await
                .map(drop),
        );
        assert!(
            store
                .messages_after("known", 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        unknown(store.messages_after("ghost", 0, 10).await.map(drop));
        unknown(store.events_after("ghost", 0).await.map(drop));
        let event = NewEvent {
            at: 1,
            kind: "x".to_owned(),
            data_json: "{}".to_owned(),
        };
        unknown(
            store
                .set_state("ghost", "bot", "open", &event)
                .await
                .map(drop),
        );
        unknown(store.save_session("ghost", 1, "{}").await);
        unknown(store.load_session("ghost").await.map(drop));
        // The failed calls left the known conversation untouched and usable.
        let stored = store
            .append_messages(&[message("known", "{}", None)])
            .await
            .unwrap();
        assert_eq!(seqs(&stored), [1]);
    })
    .await;
}

#[tokio::test]
async fn a_commit_stores_messages_and_sessions_together() {
    on_every_backend(
        "a_commit_stores_messages_and_sessions_together",
        |store| async move {
            for id in ["a", "b", "open_ended"] {
                store.create_conversation(&conversation(id)).await.unwrap();
            }
            let session = |id: &str, turn: i64| NewSession {
                conversation: id.to_owned(),
                turn,
                json: format!("{{\"turn\":{turn}}}"),
            };
            store.save_session("b", 5, "{\"turn\":5}").await.unwrap();
            let stored = store
                .commit(
                    &[
                        message("a", "{}", None),
                        message("b", "{}", Some("x")),
                        message("a", "{}", None),
                    ],
                    &[],
                    // Two turns of `a` in one batch: the later one is kept; `b` keeps its newer turn.
                    &[session("a", 2), session("a", 1), session("b", 4)],
                )
                .await
                .unwrap();
            assert_eq!(seqs(&stored), [1, 1, 2]);
            let a = store.load_session("a").await.unwrap().unwrap();
            assert_eq!((a.turn, a.json.as_str()), (2, "{\"turn\":2}"));
            let b = store.load_session("b").await.unwrap().unwrap();
            assert_eq!(b.turn, 5, "an older turn never replaces a newer one");
            // A session of an unknown conversation fails the whole commit.
            match store
                .commit(
                    &[message("open_ended", "{}", None)],
                    &[],
                    &[session("ghost", 1)],
                )
                .await
            {
                Err(StoreError::UnknownConversation(id)) => assert_eq!(id, "ghost"),
                other => panic!("expected an unknown conversation, got {other:?}"),
            }
            assert!(
                store
                    .messages_after("open_ended", 0, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            // Sessions alone commit too.
            store
                .commit(&[], &[], &[session("open_ended", 1)])
                .await
                .unwrap();
            assert_eq!(
                store
                    .load_session("open_ended")
                    .await
                    .unwrap()
                    .unwrap()
                    .turn,
                1
            );
        },
    )
    .await;
}

#[tokio::test]
async fn messages_numbered_by_their_writer_are_stored_as_numbered() {
    on_every_backend("messages_numbered_by_their_writer", |store| async move {
        store.create_conversation(&conversation("n")).await.unwrap();
        let numbered = |seq: i64, client_id: &str| StoredMessage {
            conversation: "n".to_owned(),
            seq,
            sender: Sender::Bot,
            kind: "text".to_owned(),
            body_json: format!("{{\"n\":{seq}}}"),
            client_id: Some(client_id.to_owned()),
            at: 7,
        };
        let first = [numbered(1, "b:1:0"), numbered(2, "b:1:1")];
        store.commit(&[], &first, &[]).await.unwrap();
        assert_eq!(store.messages_after("n", 0, 10).await.unwrap(), first);
        let conversation = store.conversation("n").await.unwrap().unwrap();
        assert_eq!(conversation.last_message_seq, 2, "the counter follows");
        // The locking path continues after them.
        let appended = store
            .append_messages(&[message("n", "{}", None)])
            .await
            .unwrap();
        assert_eq!(seqs(&appended), [3]);
        // A taken number, or a taken client id, fails the whole commit.
        for clash in [numbered(3, "b:2:0"), numbered(4, "b:1:0")] {
            let result = store
                .commit(&[], &[numbered(5, "b:9:9"), clash.clone()], &[])
                .await;
            assert!(
                matches!(result, Err(StoreError::MessageExists)),
                "{clash:?}: {result:?}"
            );
        }
        assert_eq!(store.messages_after("n", 3, 10).await.unwrap(), []);
        assert_eq!(
            store.message_by_client_id("n", "b:1:1").await.unwrap(),
            Some(numbered(2, "b:1:1"))
        );
        assert_eq!(store.message_by_client_id("n", "nope").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn json_round_trips_byte_for_byte() {
    on_every_backend("json_round_trips_byte_for_byte", |store| async move {
        // Spacing, key order, escapes, Chinese text, emoji (outside the BMP) and a long body.
        let body = format!(
            "{{ \"text\" : \"您好，请问有什么可以帮您？😀👍🏽\",\"z\":1,\"a\":[1.50, -0e0],\"esc\":\"\\u00e9\\n\\\"\", \"long\":\"{}\" }}",
            "长".repeat(30_000)
        );
        store.create_conversation(&conversation("会话-😀")).await.unwrap();
        let stored = store
            .append_messages(&[message("会话-😀", &body, Some("客户端-1"))])
            .await
            .unwrap();
        let read = store.messages_after("会话-😀", 0, 10).await.unwrap();
        assert_eq!(read, stored);
        assert_eq!(read[0].body_json.as_bytes(), body.as_bytes());
        assert_eq!(read[0].client_id.as_deref(), Some("客户端-1"));

        store.publish_flow("导购", 1, "h", &body).await.unwrap();
        let flow = store.flow_version("导购", 1).await.unwrap().unwrap();
        assert_eq!(flow.json.as_bytes(), body.as_bytes());
        store.save_session("会话-😀", 1, &body).await.unwrap();
        let session = store.load_session("会话-😀").await.unwrap().unwrap();
        assert_eq!(session.json.as_bytes(), body.as_bytes());
        let event = NewEvent {
            at: 1,
            kind: "转人工".to_owned(),
            data_json: body.clone(),
        };
        store.set_state("会话-😀", "队列", "等待", &event).await.unwrap();
        let events = store.events_after("会话-😀", 0).await.unwrap();
        assert_eq!(events[0].data_json.as_bytes(), body.as_bytes());
        assert_eq!(events[0].kind, "转人工");
        let conversation = store.conversation("会话-😀").await.unwrap().unwrap();
        assert_eq!((conversation.owner.as_str(), conversation.status.as_str()), ("队列", "等待"));
    })
    .await;
}

/// The group-committing writer in front of `append_messages`.
mod message_writer {
    use std::collections::BTreeMap;

    use runtime::store::{MessageWriter, StoreError, WriteError, WriterConfig};
    use sqlx::{Connection, Executor};

    use super::{conversation, message, on_every_backend, seqs};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_are_group_committed_with_gap_free_numbers() {
        const CONVERSATIONS: usize = 10;
        const PER_CONVERSATION: usize = 100;
        on_every_backend(
            "concurrent_appends_are_group_committed_with_gap_free_numbers",
            |store| async move {
                for c in 0..CONVERSATIONS {
                    store
                        .create_conversation(&conversation(&format!("c{c}")))
                        .await
                        .unwrap();
                }
                let writer = MessageWriter::spawn(store.clone(), WriterConfig::default());
                let mut tasks = Vec::new();
                for n in 0..CONVERSATIONS * PER_CONVERSATION {
                    let writer = writer.clone();
                    tasks.push(tokio::spawn(async move {
                        let id = format!("c{}", n % CONVERSATIONS);
                        let body = format!("{{\"n\":{n}}}");
                        let stored = writer.append(message(&id, &body, None)).await.unwrap();
                        // Every caller gets its own message back.
                        assert_eq!(
                            (stored.conversation.as_str(), stored.body_json.as_str()),
                            (id.as_str(), body.as_str())
                        );
                        stored
                    }));
                }
                let mut by_conversation: BTreeMap<String, Vec<i64>> = BTreeMap::new();
                for task in tasks {
                    let stored = task.await.unwrap();
                    by_conversation
                        .entry(stored.conversation)
                        .or_default()
                        .push(stored.seq);
                }
                let expected: Vec<i64> = (1..=i64::try_from(PER_CONVERSATION).unwrap()).collect();
                assert_eq!(by_conversation.len(), CONVERSATIONS);
                for (id, mut numbers) in by_conversation {
                    numbers.sort_unstable();
                    assert_eq!(numbers, expected, "{id}");
                    let stored = store.messages_after(&id, 0, 1000).await.unwrap();
                    assert_eq!(seqs(&stored), expected, "{id}");
                }
                let stats = writer.stats();
                assert_eq!(stats.messages, 1000);
                assert!(stats.batches < 1000, "not batched: {stats:?}");
                eprintln!("1000 appends in {} batches", stats.batches);
                writer.close().await;
            },
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_message_for_an_unknown_conversation_fails_alone() {
        const APPENDS: usize = 300;
        const GHOST: usize = 150;
        on_every_backend(
            "a_message_for_an_unknown_conversation_fails_alone",
            |store| async move {
                store
                    .create_conversation(&conversation("real"))
                    .await
                    .unwrap();
                let writer = MessageWriter::spawn(store.clone(), WriterConfig::default());
                let mut tasks = Vec::new();
                for n in 0..APPENDS {
                    let writer = writer.clone();
                    let id = if n == GHOST { "ghost" } else { "real" };
                    tasks.push(tokio::spawn(async move {
                        writer.append(message(id, "{}", None)).await
                    }));
                }
                let mut numbers = Vec::new();
                for (n, task) in tasks.into_iter().enumerate() {
                    match task.await.unwrap() {
                        Ok(stored) => {
                            assert_ne!(n, GHOST);
                            numbers.push(stored.seq);
                        }
                        Err(WriteError::Store(StoreError::UnknownConversation(id))) => {
                            assert_eq!((n, id.as_str()), (GHOST, "ghost"));
                        }
                        Err(error) => panic!("append {n} failed: {error}"),
                    }
                }
                numbers.sort_unstable();
                let expected: Vec<i64> = (1..=i64::try_from(APPENDS - 1).unwrap()).collect();
                assert_eq!(numbers, expected);
                let stored = store.messages_after("real", 0, 1000).await.unwrap();
                assert_eq!(seqs(&stored), expected);
                let stats = writer.stats();
                assert_eq!(stats.messages, u64::try_from(APPENDS - 1).unwrap());
                // The ghost shared a batch with innocent messages.
                assert!(stats.batches < 299, "not batched: {stats:?}");
                writer.close().await;
            },
        )
        .await;
    }

    // One thread, so that the spawned appends are all queued before the test calls `close()`.
    #[tokio::test(flavor = "current_thread")]
    async fn close_answers_every_accepted_append_and_then_refuses() {
        const APPENDS: usize = 500;
        on_every_backend(
            "close_answers_every_accepted_append_and_then_refuses",
            |store| async move {
                store.create_conversation(&conversation("c")).await.unwrap();
                let config = WriterConfig {
                    max_batch: 64,
                    queue: 1024,
                };
                let writer = MessageWriter::spawn(store.clone(), config);
                let mut tasks = Vec::new();
                for n in 0..APPENDS {
                    let writer = writer.clone();
                    tasks.push(tokio::spawn(async move {
                        let client_id = format!("m{n}");
                        writer.append(message("c", "{}", Some(&client_id))).await
                    }));
                }
                // Lets every spawned task send its append; none is answered yet.
                tokio::task::yield_now().await;
                writer.close().await;
                for (n, task) in tasks.into_iter().enumerate() {
                    let stored = task.await.unwrap().unwrap();
                    assert_eq!(stored.client_id, Some(format!("m{n}")));
                }
                let expected: Vec<i64> = (1..=i64::try_from(APPENDS).unwrap()).collect();
                let stored = store.messages_after("c", 0, 1000).await.unwrap();
                assert_eq!(seqs(&stored), expected);
                assert!(writer.stats().batches >= 8, "{:?}", writer.stats());
                // Closed for good: later appends are refused and a second close returns at once.
                let late = writer.append(message("c", "{}", None)).await;
                assert!(matches!(late, Err(WriteError::Stopped)), "{late:?}");
                writer.clone().close().await;
                assert_eq!(
                    store.messages_after("c", 0, 1000).await.unwrap().len(),
                    APPENDS
                );
            },
        )
        .await;
    }

    #[tokio::test]
    async fn dropping_every_handle_writes_the_queue_and_stops() {
        on_every_backend(
            "dropping_every_handle_writes_the_queue_and_stops",
            |store| async move {
                store.create_conversation(&conversation("c")).await.unwrap();
                let writer = MessageWriter::spawn(store.clone(), WriterConfig::default());
                let pending: Vec<_> = (0..20)
                    .map(|_| {
                        let writer = writer.clone();
                        tokio::spawn(async move { writer.append(message("c", "{}", None)).await })
                    })
                    .collect();
                drop(writer);
                for task in pending {
                    task.await.unwrap().unwrap();
                }
                let stored = store.messages_after("c", 0, 100).await.unwrap();
                assert_eq!(seqs(&stored), (1..=20).collect::<Vec<_>>());
            },
        )
        .await;
    }

    /// A failure the store cannot attribute (here a trigger refusing one body) makes the writer
    /// split the batch until the bad message is alone. SQLite only: the trigger needs raw SQL.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failing_batch_is_split_until_the_bad_message_is_alone() {
        const APPENDS: usize = 200;
        let db = super::TestDb::Sqlite {
            path: std::env::temp_dir().join(format!("{}.sqlite", super::unique_name())),
        };
        let store = runtime::store::Store::connect(&db.url()).await.unwrap();
        store.migrate().await.unwrap();
        store.create_conversation(&conversation("c")).await.unwrap();
        let mut connection = sqlx::SqliteConnection::connect(&db.url()).await.unwrap();
        connection
            .execute(
                "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.body = '\"poison\"' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned message'); END",
            )
            .await
            .unwrap();
        connection.close().await.unwrap();
        let poisoned = |n: usize| n % 70 == 13;
        let writer = MessageWriter::spawn(store.clone(), WriterConfig::default());
        let mut tasks = Vec::new();
        for n in 0..APPENDS {
            let writer = writer.clone();
            let body = if poisoned(n) { "\"poison\"" } else { "{}" };
            tasks.push(tokio::spawn(async move {
                writer.append(message("c", body, None)).await
            }));
        }
        let mut numbers = Vec::new();
        for (n, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(stored) => {
                    assert!(!poisoned(n), "{n} was stored");
                    numbers.push(stored.seq);
                }
                Err(WriteError::Store(StoreError::Database(error))) => {
                    assert!(poisoned(n), "{n} failed: {error}");
                    assert!(error.to_string().contains("poisoned message"), "{error}");
                }
                Err(error) => panic!("append {n} failed: {error}"),
            }
        }
        let good = (0..APPENDS).filter(|&n| !poisoned(n)).count();
        numbers.sort_unstable();
        let expected: Vec<i64> = (1..=i64::try_from(good).unwrap()).collect();
        assert_eq!(numbers, expected);
        let stored = store.messages_after("c", 0, 1000).await.unwrap();
        assert_eq!(seqs(&stored), expected);
        // The innocent were written in batches, not one by one.
        let stats = writer.stats();
        assert!(stats.batches < u64::try_from(good).unwrap(), "{stats:?}");
        writer.close().await;
        store.close().await;
        db.drop_database().await;
    }
}

#[tokio::test]
async fn accounts_and_sessions() {
    use runtime::store::NewUser;
    on_every_backend("accounts_and_sessions", |store| async move {
        store.ensure_team("support", "客服部").await.unwrap();
        store.ensure_team("support", "ignored").await.unwrap();
        let user = |id: &str, login: &str, team: &str| NewUser {
            id: id.to_owned(),
            login: login.to_owned(),
            name: format!("名字 {login}"),
            role: "agent".to_owned(),
            team_id: team.to_owned(),
            password_hash: "$argon2id$…".to_owned(),
            capacity: 4,
            created_at: 1,
        };
        assert_eq!(store.count_users().await.unwrap(), 0);
        store
            .create_user(&user("u1", "li", "support"))
            .await
            .unwrap();
        match store.create_user(&user("u2", "li", "support")).await {
            Err(StoreError::UserExists(login)) => assert_eq!(login, "li"),
            other => panic!("a login is unique: {other:?}"),
        }
        assert!(
            store
                .create_user(&user("u3", "wang", "nowhere"))
                .await
                .is_err(),
            "the team must exist"
        );
        let (found, hash) = store.user_by_login("li").await.unwrap().unwrap();
        assert_eq!((found.team.name.as_str(), found.capacity), ("客服部", 4));
        assert_eq!(hash, "$argon2id$…");
        assert_eq!(store.user("u1").await.unwrap(), Some(found.clone()));
        assert_eq!(store.users().await.unwrap(), std::slice::from_ref(&found));
        store
            .create_auth_session("tokenhash", "u1", "csrf-1", 10, 100)
            .await
            .unwrap();
        let (signed_in, csrf) = store.auth_session("tokenhash", 50).await.unwrap().unwrap();
        assert_eq!((signed_in.id.as_str(), csrf.as_str()), ("u1", "csrf-1"));
        assert_eq!(
            store.auth_session("tokenhash", 100).await.unwrap(),
            None,
            "expired"
        );
        store.delete_auth_session("tokenhash").await.unwrap();
        assert_eq!(store.auth_session("tokenhash", 50).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn the_console_lists_queues_assignments_and_notes() {
    use runtime::store::{ListView, NewUser, Routing};
    on_every_backend("the_console_lists", |store| async move {
        store.ensure_team("support", "Support").await.unwrap();
        store
            .create_user(&NewUser {
                id: "u1".to_owned(),
                login: "li".to_owned(),
                name: "Li".to_owned(),
                role: "agent".to_owned(),
                team_id: "support".to_owned(),
                password_hash: "x".to_owned(),
                capacity: 5,
                created_at: 1,
            })
            .await
            .unwrap();
        let event = |kind: &str| NewEvent {
            at: 1,
            kind: kind.to_owned(),
            data_json: "{}".to_owned(),
        };
        let routed = |priority: &str, at: i64, assignee: Option<&str>| Routing {
            queue: Some("support".to_owned()),
            team: None,
            priority: Some(priority.to_owned()),
            reason: Some("asked".to_owned()),
            assignee: assignee.map(str::to_owned),
            handed_off_at: Some(at),
        };
        // Waiting: an old normal one, a newer urgent one; one assigned; one never handed off.
        for (id, priority, at) in [
            ("old", "normal", 10),
            ("urgent", "urgent", 20),
            ("taken", "high", 5),
        ] {
            store.create_conversation(&conversation(id)).await.unwrap();
            store
                .set_state_routed(
                    id,
                    "queue",
                    "waiting",
                    &event("handed_off"),
                    &routed(priority, at, None),
                )
                .await
                .unwrap();
        }
        store
            .create_conversation(&conversation("bot"))
            .await
            .unwrap();
        store
            .set_state_routed(
                "taken",
                "agent",
                "active",
                &event("assigned"),
                &routed("high", 5, Some("u1")),
            )
            .await
            .unwrap();
        match store
            .set_state_routed(
                "bot",
                "agent",
                "active",
                &event("assigned"),
                &routed("high", 5, Some("ghost")),
            )
            .await
        {
            Err(StoreError::UnknownUser(user)) => assert_eq!(user, "ghost"),
            other => panic!("an unknown assignee is refused: {other:?}"),
        }
        let ids = |list: Vec<runtime::store::Conversation>| {
            list.into_iter().map(|c| c.id).collect::<Vec<_>>()
        };
        // A place in the queue: the urgent one first; counting stops at the cap.
        assert_eq!(store.queue_ahead("urgent", 10).await.unwrap(), 0);
        assert_eq!(store.queue_ahead("old", 10).await.unwrap(), 1);
        assert_eq!(store.queue_ahead("old", 1).await.unwrap(), 1);
        assert_eq!(
            store.queue_ahead("taken", 10).await.unwrap(),
            0,
            "not waiting"
        );
        assert_eq!(
            ids(store
                .list_conversations(&ListView::Queue, 10)
                .await
                .unwrap()),
            ["urgent", "old"]
        );
        assert_eq!(
            ids(store.list_conversations(&ListView::Queue, 1).await.unwrap()),
            ["urgent"]
        );
        let mine = store
            .list_conversations(&ListView::Assignee("u1".to_owned()), 10)
            .await
            .unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].routing, routed("high", 5, Some("u1")));
        assert_eq!(
            store
                .list_conversations(&ListView::All, 10)
                .await
                .unwrap()
                .len(),
            4
        );
        let open = store.open_assignments().await.unwrap();
        assert_eq!(open.get("u1"), Some(&1));
        store.add_note("taken", 7, "u1", "VIP 客户").await.unwrap();
        let notes = store.notes("taken").await.unwrap();
        assert_eq!(
            (
                notes[0].author_name.as_str(),
                notes[0].text.as_str(),
                notes[0].at
            ),
            ("Li", "VIP 客户", 7)
        );
        assert!(matches!(
            store.add_note("ghost", 7, "u1", "x").await,
            Err(StoreError::UnknownConversation(_))
        ));
    })
    .await;
}
