//! The demo catalogue: products, orders, returns and tickets in their own SQLite file
//! (`DATA_DIR/demo-shop.db`), seeded at first start, answering the `demo` lookups of the bundled
//! flows the way a company's shop systems would.
//!
//! # Lookups
//!
//! | entity.operation   | params                                   | rows |
//! |--------------------|------------------------------------------|------|
//! | `products.find`    | `category`, `max_price`?, `preference`?  | up to 10 products, best match first |
//! | `products.get`     | `id`                                     | the product, or none |
//! | `orders.get`       | `order_no`                               | the order, or none |
//! | `returns.create`   | `order_no`, `reason`, `details`?         | `rma_no`, `ship_by`, `address`, `refund_days` |
//! | `tickets.create`   | `email`, `message`, `topic`?, `session_id`?, `channel`? | `ticket_no` |
//!
//! A product row has `id`, `name`, `brand`, `category`, `price`, `description`, `image`, `url`,
//! `tags` and `colours` (the guided-shopping flow turns it into a product card).
//!
//! # The demo orders keep their age
//!
//! The orders are seeded relative to the time of seeding (shipped yesterday, delivered three days
//! ago, …), and every time of an order is shown shifted by the time since seeding. So KF100004 is
//! delivered three days before whenever someone tries the returns flow, weeks after the server
//! first started, and every branch of the flows stays reachable:
//!
//! | order    | status     | order-status flow        | returns flow |
//! |----------|------------|--------------------------|--------------|
//! | KF100001 | shipped    | shipped                  | not delivered yet |
//! | KF100002 | delayed    | delayed (2 days)         | not delivered yet |
//! | KF100003 | processing | processing               | not delivered yet |
//! | KF100004 | delivered 3 days ago, electronics  | other status | within 7 days |
//! | KF100005 | delivered 12 days ago, accessories | other status | within 30 days (not electronics) |
//! | KF100006 | delivered 13 days ago, electronics | other status | past the window |
//! | KF100007 | cancelled  | other status             | not delivered yet |
//! | KF100008 | delivered 45 days ago, accessories | other status | past the window |
//! | KF100009 | (lookup fails) | order system error   | order system error |
//! | KF100010 | delivered 2 days ago, electronics  | other status | within 7 days, but creating the return fails |
//!
//! KF100009 and KF100010 fail **on purpose**, so that the flows' failure paths can be shown: the
//! lookup of KF100009 answers an error ("timeout after 5 s"), and `returns.create` for KF100010
//! answers an error. KF100011 to KF100030 are ordinary orders of every status.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use flows::Value;
use flows::engine::support::civil;
use flows::engine::{LookupOutcome, LookupRequest, Millis};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow};
use sqlx::{Row, SqlitePool};

pub use super::images::image_svg;
pub use super::products::Product;
use super::products::{self, FITS, PREFERENCES};

/// The file name of the catalogue in the data directory.
pub const FILE_NAME: &str = "demo-shop.db";

/// The most rows `products.find` answers.
const MAX_FOUND: usize = 10;

/// Dates are shown in China Standard Time (UTC+8), where the demo shop is.
const SHOP_TZ_OFFSET_MINUTES: i32 = 480;

const DAY: Millis = 86_400_000;
const HOUR: Millis = 3_600_000;

/// Where returns are sent, in both languages of the flows.
const RETURNS_ADDRESS: &str = "上海市青浦区华新镇华志路 1688 号 kefu 退货仓 / kefu Returns Centre, 1688 Huazhi Rd, Qingpu, Shanghai";

/// Days a visitor has to send a return, and working days until the refund.
const RETURN_SHIP_DAYS: Millis = 7;
const REFUND_DAYS: i64 = 3;

/// The reasons the return-reason flow gives.
const RETURN_REASONS: &[&str] = &["damaged", "wrong_item", "changed_mind", "other"];

/// Every transaction here writes: taking SQLite's write lock up front makes a second writer
/// wait (up to the busy timeout) instead of failing when a read lock cannot be upgraded.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// How long a writer waits for SQLite's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema, one statement each (a prepared statement holds one). Money is in yuan, times
/// are Unix milliseconds.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS products (
        id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        name TEXT NOT NULL,
        brand TEXT NOT NULL,
        category TEXT NOT NULL,
        price REAL NOT NULL,
        description TEXT NOT NULL,
        tags TEXT NOT NULL,
        colours TEXT NOT NULL,
        position INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS products_by_category ON products (category, price)",
    "CREATE TABLE IF NOT EXISTS product_scores (
        product_id TEXT NOT NULL REFERENCES products (id),
        preference TEXT NOT NULL,
        score INTEGER NOT NULL,
        PRIMARY KEY (product_id, preference)
    )",
    "CREATE TABLE IF NOT EXISTS orders (
        order_no TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        item_name TEXT NOT NULL,
        product_id TEXT,
        category TEXT NOT NULL,
        amount REAL NOT NULL,
        carrier TEXT NOT NULL,
        tracking_no TEXT NOT NULL,
        ordered_at INTEGER NOT NULL,
        ship_by INTEGER,
        shipped_at INTEGER,
        eta INTEGER,
        delay_days INTEGER,
        delivered_at INTEGER,
        lookup_fault TEXT,
        return_fault TEXT
    )",
    "CREATE TABLE IF NOT EXISTS returns (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        rma_no TEXT UNIQUE,
        order_no TEXT NOT NULL REFERENCES orders (order_no),
        reason TEXT NOT NULL,
        details TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        ship_by INTEGER NOT NULL,
        refund_days INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS customers (
        email TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        phone TEXT NOT NULL,
        city TEXT NOT NULL,
        level TEXT NOT NULL,
        member_since TEXT NOT NULL,
        orders INTEGER NOT NULL,
        note TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS tickets (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket_no TEXT UNIQUE,
        email TEXT NOT NULL,
        message TEXT NOT NULL,
        topic TEXT NOT NULL,
        session_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        created_at INTEGER NOT NULL
    )",
];

/// The demo shop's customers (the shop page signs its visitor in as the first one), for the
/// console's customer panel: email, name, phone, city, level, member since, orders, note.
type CustomerSeed = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
);

/// Whether `email` is one of the demo shop's customers.
pub fn is_demo_customer(email: &str) -> bool {
    CUSTOMERS.iter().any(|customer| customer.0 == email)
}

const CUSTOMERS: &[CustomerSeed] = &[
    (
        "wang.xiaoming@example.com",
        "王小明 · Wang Xiaoming",
        "13812341234",
        "上海 · Shanghai",
        "VIP",
        "2021-03-14",
        23,
        "喜欢数码新品 · likes new gadgets",
    ),
    (
        "li.na@example.com",
        "李娜 · Li Na",
        "13987655678",
        "杭州 · Hangzhou",
        "regular",
        "2023-08-02",
        4,
        "",
    ),
    (
        "zhang.wei@example.com",
        "张伟 · Zhang Wei",
        "13600001111",
        "北京 · Beijing",
        "regular",
        "2024-11-20",
        1,
        "first order delayed once",
    ),
    (
        "chen.jing@example.com",
        "陈静 · Chen Jing",
        "13755552222",
        "深圳 · Shenzhen",
        "VIP",
        "2020-06-30",
        41,
        "prefers phone calls",
    ),
];

/// Views that let the bundled `connectors.yaml` read the catalogue as a company's SQLite
/// database, with field maps written as SQL expressions (`runtime/assets/connectors.yaml`).
fn views() -> [String; 2] {
    [
        // Every product once with no preference (score 0), and once per preference it fits.
        format!(
            "CREATE VIEW IF NOT EXISTS product_matches AS
             SELECT p.id, p.model, p.name, p.brand, p.category, p.price, p.description, p.tags,
                    p.colours, p.position, '' AS preference, 0 AS score
             FROM products p
             UNION ALL
             SELECT p.id, p.model, p.name, p.brand, p.category, p.price, p.description, p.tags,
                    p.colours, p.position, s.preference, s.score
             FROM products p JOIN product_scores s ON s.product_id = p.id
             WHERE s.score >= {FITS}"
        ),
        // The orders with `shift`, the milliseconds since seeding: the demo orders keep their
        // age (see the module's documentation).
        "CREATE VIEW IF NOT EXISTS orders_now AS
         SELECT o.*, CAST(strftime('%s', 'now') AS INTEGER) * 1000
                     - (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'seeded_at') AS shift
         FROM orders o"
            .to_owned(),
    ]
}

/// What can go wrong opening or reading the catalogue (lookups answer errors as values instead).
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("cannot create the directory of the demo catalogue {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("demo catalogue database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the demo catalogue's seeding time {0:?} is not a number")]
    Corrupt(String),
}

/// The demo shop's database. Cloning is cheap (a pool handle).
#[derive(Debug, Clone)]
pub struct Catalogue {
    pool: SqlitePool,
    /// When the catalogue was seeded: order times are shown shifted by the time since.
    seeded_at: Millis,
}

impl Catalogue {
    /// Opens `DATA_DIR/demo-shop.db`, creating the directory and the file when missing, and the
    /// tables, seeded with the products and demo orders, when empty. Opening it again changes
    /// nothing.
    pub async fn open(data_dir: &Path, now: Millis) -> Result<Catalogue, CatalogueError> {
        // Blocking, but once at start and before the server takes requests.
        std::fs::create_dir_all(data_dir).map_err(|source| CatalogueError::Directory {
            path: data_dir.display().to_string(),
            source,
        })?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(FILE_NAME))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Catalogue::prepare(pool, now).await
    }

    /// The same in memory, for tests: gone when the last clone is dropped.
    pub async fn in_memory(now: Millis) -> Result<Catalogue, CatalogueError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // Every connection to an in-memory database would get its own empty database, and the
        // one connection must live as long as the pool.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Catalogue::prepare(pool, now).await
    }

    /// Creates the tables and seeds them when empty, all in one transaction, so a start that
    /// fails halfway leaves an empty catalogue that the next start seeds again.
    async fn prepare(pool: SqlitePool, now: Millis) -> Result<Catalogue, CatalogueError> {
        let mut tx = pool.begin_with(BEGIN_WRITE).await?;
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&mut *tx).await?;
        }
        for statement in views() {
            // Built from constants only.
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await?;
        }
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'seeded_at'")
                .fetch_optional(&mut *tx)
                .await?;
        let seeded_at = match stored {
            Some(text) => text
                .parse::<Millis>()
                .map_err(|_| CatalogueError::Corrupt(text))?,
            None => {
                seed(&mut tx, now).await?;
                now
            }
        };
        // Customers came later than the rest: an older catalogue gets them too.
        let customers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers")
            .fetch_one(&mut *tx)
            .await?;
        if customers == 0 {
            for (email, name, phone, city, level, since, orders, note) in CUSTOMERS {
                sqlx::query(
                    "INSERT INTO customers (email, name, phone, city, level, member_since, orders, note)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .bind(email)
                .bind(name)
                .bind(phone)
                .bind(city)
                .bind(level)
                .bind(since)
                .bind(orders)
                .bind(note)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Catalogue { pool, seeded_at })
    }

    /// Answers one `demo` lookup of a flow. Never panics: an unknown connector, entity or
    /// operation, a missing or mistyped parameter and a database failure all answer
    /// [`LookupOutcome::Error`] with an English message naming what was wrong.
    pub async fn lookup(&self, request: &LookupRequest, now: Millis) -> LookupOutcome {
        if request.connector != "demo" {
            return LookupOutcome::Error(format!(
                "unknown connector \"{}\": the demo catalogue answers only the \"demo\" connector",
                request.connector
            ));
        }
        let what = format!("demo.{}.{}", request.entity, request.operation);
        let params = Params {
            what: &what,
            map: &request.params,
        };
        let answer = match (request.entity.as_str(), request.operation.as_str()) {
            ("products", "find") => self.find(&params).await,
            ("products", "get") => self.get_product(&params).await,
            ("orders", "get") => self.get_order(&params, now).await,
            ("returns", "create") => self.create_return(&params, now).await,
            ("tickets", "create") => self.create_ticket(&params, now).await,
            ("products" | "orders" | "returns" | "tickets", operation) => {
                let known = match request.entity.as_str() {
                    "products" => "find or get",
                    "orders" => "get",
                    _ => "create",
                };
                Err(Failure::Request(format!(
                    "unknown operation \"{operation}\" on demo.{} (expected {known})",
                    request.entity
                )))
            }
            (entity, _) => Err(Failure::Request(format!(
                "unknown entity \"{entity}\" of the demo connector (expected products, orders, returns or tickets)"
            ))),
        };
        match answer {
            Ok(rows) => LookupOutcome::Rows(rows),
            Err(Failure::Request(message)) => LookupOutcome::Error(message),
            Err(Failure::Database(error)) => {
                tracing::warn!(lookup = %what, error = %error, "demo catalogue lookup failed");
                LookupOutcome::Error(format!("{what} failed: the demo catalogue is unavailable"))
            }
        }
    }

    /// For the shop page: the products of one category (or all), cheapest first, at most
    /// `limit`.
    pub async fn products(
        &self,
        category: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Product>, CatalogueError> {
        let rows = sqlx::query(
            "SELECT id, model, name, brand, category, price, description, tags, colours
             FROM products WHERE ?1 IS NULL OR category = ?1
             ORDER BY price, position LIMIT ?2",
        )
        .bind(category)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(product_from_row).collect()
    }

    /// One product by id.
    pub async fn product(&self, id: &str) -> Result<Option<Product>, CatalogueError> {
        let row = sqlx::query(
            "SELECT id, model, name, brand, category, price, description, tags, colours
             FROM products WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(product_from_row).transpose()
    }

    /// `products.find`: the products of a category within the budget that fit the preference,
    /// best score first and, among equals, the dearest the visitor can afford; one variant per
    /// model.
    async fn find(&self, params: &Params<'_>) -> Answer {
        params.only(&["category", "max_price", "preference"])?;
        let category = params
            .text("category")?
            .ok_or_else(|| params.missing("category"))?;
        let Some((_, preferences)) = PREFERENCES.iter().find(|(c, _)| *c == category) else {
            return Err(Failure::Request(format!(
                "{}: unknown category \"{category}\" (expected {})",
                params.what,
                or_list(PREFERENCES.iter().map(|(c, _)| *c))
            )));
        };
        let max_price = params.number("max_price")?.unwrap_or(f64::MAX);
        let preference = params.text("preference")?;
        if let Some(preference) = preference
            && !preferences.contains(&preference)
        {
            let expected = if preferences.is_empty() {
                format!("{category} have no preferences")
            } else {
                format!("expected {}", or_list(preferences.iter().copied()))
            };
            return Err(Failure::Request(format!(
                "{}: unknown preference \"{preference}\" for {category} ({expected})",
                params.what
            )));
        }
        let rows = match preference {
            Some(preference) => {
                sqlx::query(
                    "SELECT p.id, p.model, p.name, p.brand, p.category, p.price, p.description,
                            p.tags, p.colours
                     FROM products p
                     JOIN product_scores s ON s.product_id = p.id AND s.preference = ?2
                     WHERE p.category = ?1 AND p.price <= ?3 AND s.score >= ?4
                     ORDER BY s.score DESC, p.price DESC, p.position",
                )
                .bind(category)
                .bind(preference)
                .bind(max_price)
                .bind(i64::from(FITS))
                .fetch_all(&self.pool)
                .await?
            }
            // Without a preference, the dearest the visitor can afford come first.
            None => {
                sqlx::query(
                    "SELECT id, model, name, brand, category, price, description, tags, colours
                     FROM products WHERE category = ?1 AND price <= ?2
                     ORDER BY price DESC, position",
                )
                .bind(category)
                .bind(max_price)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let mut models = Vec::new();
        let mut found = Vec::new();
        for row in &rows {
            let product = product_from_row(row)?;
            // The rows are in order, so the first variant of a model is its best one.
            if models.contains(&product.model) {
                continue;
            }
            models.push(product.model.clone());
            found.push(product_value(&product));
            if found.len() == MAX_FOUND {
                break;
            }
        }
        Ok(found)
    }

    /// `products.get`: one product by `id`.
    async fn get_product(&self, params: &Params<'_>) -> Answer {
        params.only(&["id"])?;
        let id = params.text("id")?.ok_or_else(|| params.missing("id"))?;
        let product = self.product(id).await?;
        Ok(product.iter().map(product_value).collect())
    }

    /// `orders.get`: the order, none for an unknown number, or the deliberate failure of
    /// KF100009.
    async fn get_order(&self, params: &Params<'_>, now: Millis) -> Answer {
        params.only(&["order_no"])?;
        let order_no = params
            .text("order_no")?
            .ok_or_else(|| params.missing("order_no"))?
            .trim()
            .to_uppercase();
        let row = sqlx::query(
            "SELECT order_no, status, item_name, product_id, category, amount, carrier,
                    tracking_no, ordered_at, ship_by, shipped_at, eta, delay_days, delivered_at,
                    lookup_fault
             FROM orders WHERE order_no = ?1",
        )
        .bind(&order_no)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Vec::new());
        };
        if let Some(fault) = row.try_get::<Option<String>, _>("lookup_fault")? {
            return Err(Failure::Request(fault));
        }
        // Shift every time by the time since seeding: the demo orders keep their age.
        let shift = now - self.seeded_at;
        let time = |column: &str| -> Result<Option<Millis>, sqlx::Error> {
            Ok(row.try_get::<Option<i64>, _>(column)?.map(|t| t + shift))
        };
        let mut order = BTreeMap::new();
        let text = |s: String| Value::String(s);
        order.insert("order_no".to_owned(), text(row.try_get("order_no")?));
        order.insert("status".to_owned(), text(row.try_get("status")?));
        order.insert("item_name".to_owned(), text(row.try_get("item_name")?));
        if let Some(id) = row.try_get::<Option<String>, _>("product_id")? {
            order.insert("product_id".to_owned(), text(id));
        }
        order.insert("category".to_owned(), text(row.try_get("category")?));
        order.insert("amount".to_owned(), Value::Number(row.try_get("amount")?));
        order.insert("carrier".to_owned(), text(row.try_get("carrier")?));
        order.insert("tracking_no".to_owned(), text(row.try_get("tracking_no")?));
        if let Some(at) = time("ordered_at")? {
            order.insert("ordered_at".to_owned(), text(date(at)));
        }
        for column in ["ship_by", "shipped_at", "eta"] {
            if let Some(at) = time(column)? {
                order.insert(column.to_owned(), text(date(at)));
            }
        }
        if let Some(days) = row.try_get::<Option<i64>, _>("delay_days")? {
            order.insert("delay_days".to_owned(), Value::Number(days as f64));
        }
        // Milliseconds, as the returns flow computes the days since delivery from it.
        if let Some(at) = time("delivered_at")? {
            order.insert("delivered_at".to_owned(), Value::Number(at as f64));
        }
        Ok(vec![order])
    }

    /// `returns.create`: books a return of a delivered order and answers its RMA number, the
    /// date to send it by, the address and the refund time.
    async fn create_return(&self, params: &Params<'_>, now: Millis) -> Answer {
        params.only(&["order_no", "reason", "details"])?;
        let order_no = params
            .text("order_no")?
            .ok_or_else(|| params.missing("order_no"))?
            .trim()
            .to_uppercase();
        let reason = params
            .text("reason")?
            .ok_or_else(|| params.missing("reason"))?;
        if !RETURN_REASONS.contains(&reason) {
            return Err(Failure::Request(format!(
                "{}: unknown reason \"{reason}\" (expected {})",
                params.what,
                or_list(RETURN_REASONS.iter().copied())
            )));
        }
        let details = params.text("details")?.unwrap_or_default();
        // Orders never change, so the check needs no transaction.
        let order: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, return_fault FROM orders WHERE order_no = ?1")
                .bind(&order_no)
                .fetch_optional(&self.pool)
                .await?;
        match order {
            None => {
                return Err(Failure::Request(format!(
                    "{}: there is no order {order_no} to return",
                    params.what
                )));
            }
            Some((_, Some(fault))) => return Err(Failure::Request(fault)),
            Some((status, None)) if status != "delivered" => {
                return Err(Failure::Request(format!(
                    "{}: order {order_no} cannot be returned before it is delivered (status: {status})",
                    params.what
                )));
            }
            Some(_) => {}
        }
        let ship_by = now + RETURN_SHIP_DAYS * DAY;
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO returns (order_no, reason, details, created_at, ship_by, refund_days)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING seq",
        )
        .bind(&order_no)
        .bind(reason)
        .bind(details)
        .bind(now)
        .bind(ship_by)
        .bind(REFUND_DAYS)
        .fetch_one(&mut *tx)
        .await?;
        // The number follows the row's sequence number, so it is unique without a retry loop.
        let day = civil(now, SHOP_TZ_OFFSET_MINUTES);
        let rma_no = format!(
            "RMA{:02}{:02}{:02}-{seq:04}",
            day.year % 100,
            day.month,
            day.day
        );
        sqlx::query("UPDATE returns SET rma_no = ?1 WHERE seq = ?2")
            .bind(&rma_no)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(vec![BTreeMap::from([
            ("rma_no".to_owned(), Value::String(rma_no)),
            ("ship_by".to_owned(), Value::String(date(ship_by))),
            (
                "address".to_owned(),
                Value::String(RETURNS_ADDRESS.to_owned()),
            ),
            ("refund_days".to_owned(), Value::Number(REFUND_DAYS as f64)),
        ])])
    }

    /// `tickets.create`: stores a visitor's message and answers its ticket number.
    async fn create_ticket(&self, params: &Params<'_>, now: Millis) -> Answer {
        params.only(&["email", "message", "topic", "session_id", "channel"])?;
        let email = params
            .text("email")?
            .ok_or_else(|| params.missing("email"))?;
        let message = params
            .text("message")?
            .ok_or_else(|| params.missing("message"))?;
        let topic = params.text("topic")?.unwrap_or_default();
        let session_id = params.text("session_id")?.unwrap_or_default();
        let channel = params.text("channel")?.unwrap_or_default();
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO tickets (email, message, topic, session_id, channel, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING seq",
        )
        .bind(email)
        .bind(message)
        .bind(topic)
        .bind(session_id)
        .bind(channel)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let day = civil(now, SHOP_TZ_OFFSET_MINUTES);
        let ticket_no = format!("TK-{}{:02}{:02}-{seq:04}", day.year, day.month, day.day);
        sqlx::query("UPDATE tickets SET ticket_no = ?1 WHERE seq = ?2")
            .bind(&ticket_no)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(vec![BTreeMap::from([(
            "ticket_no".to_owned(),
            Value::String(ticket_no),
        )])])
    }
}

type Answer = Result<Vec<BTreeMap<String, Value>>, Failure>;

/// Why a lookup did not answer rows: the request was wrong (the message goes to the flow), or
/// the database failed (logged; the flow gets a generic message).
enum Failure {
    Request(String),
    Database(String),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Failure {
        Failure::Database(error.to_string())
    }
}

impl From<CatalogueError> for Failure {
    fn from(error: CatalogueError) -> Failure {
        Failure::Database(error.to_string())
    }
}

/// The params of one lookup, with the checks every operation needs.
struct Params<'a> {
    what: &'a str,
    map: &'a BTreeMap<String, Value>,
}

impl Params<'_> {
    /// Refuses a parameter the operation does not know: a misspelt name in a flow should be
    /// found in the preview, not silently ignored.
    fn only(&self, known: &[&str]) -> Result<(), Failure> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(unknown) => Err(Failure::Request(format!(
                "{}: unknown parameter \"{unknown}\" (expected {})",
                self.what,
                or_list(known.iter().copied())
            ))),
            None => Ok(()),
        }
    }

    /// A text parameter; `None` when absent or null (an unset flow variable).
    fn text(&self, name: &str) -> Result<Option<&str>, Failure> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.mistyped(name, "text", other)),
        }
    }

    /// A number parameter; `None` when absent or null.
    fn number(&self, name: &str) -> Result<Option<f64>, Failure> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.is_finite() => Ok(Some(*n)),
            Some(other) => Err(self.mistyped(name, "number", other)),
        }
    }

    fn missing(&self, name: &str) -> Failure {
        Failure::Request(format!(
            "{}: the parameter \"{name}\" is missing",
            self.what
        ))
    }

    fn mistyped(&self, name: &str, expected: &str, got: &Value) -> Failure {
        let shown = match got {
            Value::String(text) => format!("\"{text}\""),
            other => other.to_string(),
        };
        Failure::Request(format!(
            "{}: the parameter \"{name}\" must be a {expected}, but it is the {} {shown}",
            self.what,
            got.kind_name()
        ))
    }
}

/// `a, b or c`.
fn or_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_owned(),
        None => "nothing".to_owned(),
    }
}

/// The civil date at `at` in the shop's time zone, `2026-01-05`.
fn date(at: Millis) -> String {
    let day = civil(at, SHOP_TZ_OFFSET_MINUTES);
    format!("{}-{:02}-{:02}", day.year, day.month, day.day)
}

fn product_from_row(row: &SqliteRow) -> Result<Product, CatalogueError> {
    let list = |text: String| -> Vec<String> {
        text.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let id: String = row.try_get("id")?;
    Ok(Product {
        image: format!("/demo/img/{id}.jpg"),
        url: format!("/demo/product/{id}"),
        model: row.try_get("model")?,
        name: row.try_get("name")?,
        brand: row.try_get("brand")?,
        category: row.try_get("category")?,
        price: row.try_get("price")?,
        description: row.try_get("description")?,
        tags: list(row.try_get("tags")?),
        colours: list(row.try_get("colours")?),
        id,
    })
}

/// A product as a lookup row (the flows turn it into a product card).
fn product_value(product: &Product) -> BTreeMap<String, Value> {
    let text = |s: &str| Value::String(s.to_owned());
    let list = |items: &[String]| Value::List(items.iter().map(|s| text(s)).collect());
    BTreeMap::from([
        ("id".to_owned(), text(&product.id)),
        ("name".to_owned(), text(&product.name)),
        ("brand".to_owned(), text(&product.brand)),
        ("category".to_owned(), text(&product.category)),
        ("price".to_owned(), Value::Number(product.price)),
        ("description".to_owned(), text(&product.description)),
        ("image".to_owned(), text(&product.image)),
        ("url".to_owned(), text(&product.url)),
        ("tags".to_owned(), list(&product.tags)),
        ("colours".to_owned(), list(&product.colours)),
    ])
}

// ---------------------------------------------------------------------------------------------
// Seeding

/// Writes the products, their scores and the demo orders, and the seeding time.
async fn seed(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    now: Millis,
) -> Result<(), sqlx::Error> {
    for (position, seed) in products::all().iter().enumerate() {
        let p = &seed.product;
        sqlx::query(
            "INSERT INTO products (id, model, name, brand, category, price, description, tags,
                                   colours, position)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(&p.id)
        .bind(&p.model)
        .bind(&p.name)
        .bind(&p.brand)
        .bind(&p.category)
        .bind(p.price)
        .bind(&p.description)
        // Tags and colour names never contain commas: a list in one column is enough.
        .bind(p.tags.join(","))
        .bind(p.colours.join(","))
        .bind(position as i64)
        .execute(&mut **tx)
        .await?;
        for (preference, score) in &seed.scores {
            sqlx::query(
                "INSERT INTO product_scores (product_id, preference, score) VALUES (?1, ?2, ?3)",
            )
            .bind(&p.id)
            .bind(*preference)
            .bind(i64::from(*score))
            .execute(&mut **tx)
            .await?;
        }
    }
    for order in demo_orders(now) {
        sqlx::query(
            "INSERT INTO orders (order_no, status, item_name, product_id, category, amount,
                                 carrier, tracking_no, ordered_at, ship_by, shipped_at, eta,
                                 delay_days, delivered_at, lookup_fault, return_fault)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )
        .bind(&order.order_no)
        .bind(order.status)
        .bind(&order.item_name)
        .bind(&order.product_id)
        .bind(order.category)
        .bind(order.amount)
        .bind(order.carrier)
        .bind(&order.tracking_no)
        .bind(order.ordered_at)
        .bind(order.ship_by)
        .bind(order.shipped_at)
        .bind(order.eta)
        .bind(order.delay_days)
        .bind(order.delivered_at)
        .bind(order.lookup_fault)
        .bind(order.return_fault)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("INSERT INTO meta (key, value) VALUES ('seeded_at', ?1)")
        .bind(now.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One seeded order.
struct Order {
    order_no: String,
    status: &'static str,
    item_name: String,
    product_id: Option<String>,
    /// `electronics` or `accessories`: the returns flow allows 30 days for non-electronics.
    category: &'static str,
    amount: f64,
    carrier: &'static str,
    tracking_no: String,
    ordered_at: Millis,
    ship_by: Option<Millis>,
    shipped_at: Option<Millis>,
    eta: Option<Millis>,
    delay_days: Option<i64>,
    delivered_at: Option<Millis>,
    lookup_fault: Option<&'static str>,
    return_fault: Option<&'static str>,
}

/// How an order's story is told relative to the seeding time, in days ago (negative: ahead).
#[derive(Clone, Copy)]
enum Story {
    Processing { ordered: i64 },
    Shipped { ordered: i64, eta_in: i64 },
    Delayed { ordered: i64, eta_in: i64, by: i64 },
    Delivered { ordered: i64, delivered: i64 },
    Cancelled { ordered: i64 },
}

const CARRIERS: &[(&str, &str)] = &[
    ("SF Express", "SF"),
    ("JD Logistics", "JDX"),
    ("ZTO Express", "ZTO"),
    ("YTO Express", "YT"),
    ("EMS", "EM"),
];

/// The orders KF100001–KF100010: (item, product id, category, amount, story, carrier index).
#[rustfmt::skip] // A table reads best one row per line.
const NAMED_ORDERS: [NamedOrder; 10] = {
    use Story::{Cancelled, Delayed, Delivered, Processing, Shipped};
    [
        ("Kite Note 13", Some("ph-kite-note-13"), "electronics", 1499.0, Shipped { ordered: 2, eta_in: 1 }, 0),
        ("Lumen Air 13", Some("lt-lumen-air-13"), "electronics", 6999.0, Delayed { ordered: 5, eta_in: 2, by: 2 }, 1),
        ("Orbit Buds 4 + silicone case", Some("ep-orbit-buds-4"), "electronics", 748.0, Processing { ordered: 0 }, 0),
        ("Kite Buds 6 Pro", Some("ep-kite-buds-6-pro"), "electronics", 399.0, Delivered { ordered: 6, delivered: 3 }, 2),
        ("Orbit leather phone case", Some("ac-orbit-leather-phone-case"), "accessories", 129.0, Delivered { ordered: 15, delivered: 12 }, 2),
        ("Kite Book 15", Some("lt-kite-book-15"), "electronics", 3499.0, Delivered { ordered: 16, delivered: 13 }, 0),
        ("Lumen X5", Some("ph-lumen-x5"), "electronics", 4299.0, Cancelled { ordered: 4 }, 0),
        ("Kite laptop sleeve 15″", Some("ac-kite-laptop-sleeve-15"), "accessories", 159.0, Delivered { ordered: 48, delivered: 45 }, 3),
        ("Aster 9", Some("ph-aster-9"), "electronics", 2799.0, Shipped { ordered: 1, eta_in: 2 }, 0),
        ("Nova Buds 5 Pro", Some("ep-nova-buds-5-pro"), "electronics", 599.0, Delivered { ordered: 4, delivered: 2 }, 1),
    ]
};

type NamedOrder = (
    &'static str,
    Option<&'static str>,
    &'static str,
    f64,
    Story,
    usize,
);

/// The demo orders, relative to `now`: KF100001–KF100010 for the flows' branches (see the
/// module documentation), then KF100011–KF100030.
fn demo_orders(now: Millis) -> Vec<Order> {
    use Story::{Cancelled, Delayed, Delivered, Processing, Shipped};
    let mut orders = Vec::new();
    for (index, (item, product, category, amount, story, carrier)) in
        NAMED_ORDERS.into_iter().enumerate()
    {
        let order_no = format!("KF{}", 100_001 + index);
        let mut order = order(now, order_no, item.to_owned(), story, carrier);
        order.product_id = product.map(str::to_owned);
        order.category = category;
        order.amount = amount;
        orders.push(order);
    }
    orders[8].lookup_fault = Some("timeout after 5 s");
    orders[9].return_fault =
        Some("the returns service did not answer (a deliberate failure of the demo shop)");
    // Twenty more, of every status, for agents and testers to look up.
    let stories = [
        Delivered {
            ordered: 9,
            delivered: 5,
        },
        Shipped {
            ordered: 2,
            eta_in: 1,
        },
        Delivered {
            ordered: 25,
            delivered: 21,
        },
        Processing { ordered: 1 },
        Delivered {
            ordered: 4,
            delivered: 1,
        },
        Delayed {
            ordered: 6,
            eta_in: 1,
            by: 3,
        },
        Delivered {
            ordered: 70,
            delivered: 66,
        },
        Cancelled { ordered: 10 },
        Shipped {
            ordered: 3,
            eta_in: 0,
        },
        Delivered {
            ordered: 11,
            delivered: 8,
        },
    ];
    let all = products::all();
    for index in 0..20 {
        // A deterministic spread over the catalogue: a step coprime to its size.
        let seed = &all[(index * 37 + 11) % all.len()];
        let product = &seed.product;
        let story = stories[index % stories.len()];
        let order_no = format!("KF{}", 100_011 + index);
        let mut order = order(now, order_no, product.name.clone(), story, index);
        order.product_id = Some(product.id.clone());
        if product.category == "accessories" {
            order.category = "accessories";
        }
        order.amount = product.price;
        orders.push(order);
    }
    orders
}

/// An order told by `story`, with a tracking number from its carrier once shipped.
fn order(now: Millis, order_no: String, item_name: String, story: Story, carrier: usize) -> Order {
    // Mid-morning in the shop's time zone, whatever the hour of seeding, so "3 days ago" is a
    // whole day and not 2.9 on a visitor's clock.
    let days_ago = |days: i64| now - days * DAY - 2 * HOUR;
    let (carrier, prefix) = CARRIERS[carrier % CARRIERS.len()];
    let number: u64 = order_no[2..]
        .parse::<u64>()
        .unwrap_or(0)
        .wrapping_mul(2_654_435_761)
        % 10_000_000_000;
    let mut order = Order {
        tracking_no: format!("{prefix}{number:010}"),
        carrier,
        order_no,
        status: "",
        item_name,
        product_id: None,
        category: "electronics",
        amount: 0.0,
        ordered_at: 0,
        ship_by: None,
        shipped_at: None,
        eta: None,
        delay_days: None,
        delivered_at: None,
        lookup_fault: None,
        return_fault: None,
    };
    match story {
        Story::Processing { ordered } => {
            order.status = "processing";
            order.ordered_at = days_ago(ordered);
            order.ship_by = Some(days_ago(-1));
            order.eta = Some(days_ago(-3));
            order.carrier = "";
            order.tracking_no = String::new();
        }
        Story::Shipped { ordered, eta_in } => {
            order.status = "shipped";
            order.ordered_at = days_ago(ordered);
            order.shipped_at = Some(days_ago(ordered - 1));
            order.eta = Some(days_ago(-eta_in));
        }
        Story::Delayed {
            ordered,
            eta_in,
            by,
        } => {
            order.status = "delayed";
            order.ordered_at = days_ago(ordered);
            order.shipped_at = Some(days_ago(ordered - 1));
            order.eta = Some(days_ago(-eta_in));
            order.delay_days = Some(by);
        }
        Story::Delivered { ordered, delivered } => {
            order.status = "delivered";
            order.ordered_at = days_ago(ordered);
            order.shipped_at = Some(days_ago(ordered - 1));
            order.delivered_at = Some(days_ago(delivered));
        }
        Story::Cancelled { ordered } => {
            order.status = "cancelled";
            order.ordered_at = days_ago(ordered);
            order.carrier = "";
            order.tracking_no = String::new();
        }
    }
    order
}
