//! The checked configuration (what `config::load` produces from `connectors.yaml`) and the
//! interface every driver implements. The YAML format itself is documented in
//! `docs/connectors.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use flows::Value;

/// Every connector of one `connectors.yaml`, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Connectors {
    pub connectors: Vec<Connector>,
    /// The entity the agent console shows next to a conversation, looked up by the visitor's
    /// identity under the entity's key (`customer:` in the file).
    pub customer: Option<CustomerSource>,
}

/// Which connector's entity holds customers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSource {
    pub connector: String,
    pub entity: String,
}

impl Connectors {
    pub fn get(&self, name: &str) -> Option<&Connector> {
        self.connectors.iter().find(|c| c.name == name)
    }
}

/// One connector: a driver, where to reach it, and its entities.
#[derive(Debug, Clone, PartialEq)]
pub struct Connector {
    /// What flows write in a lookup node's `connector` (`erp_mysql`).
    pub name: String,
    pub driver: DriverKind,
    /// Where the system is, with `${ENV}` references already replaced; its secrets never
    /// appear in `Debug`/`Display` output, logs or error texts.
    pub target: Target,
    /// The longest one call may take (default 5 s).
    pub timeout: Duration,
    /// How often a failed read is tried again (default 2; writes are never retried).
    pub retries: u32,
    /// Connections kept to a SQL database (default 5).
    pub pool_size: u32,
    /// After this many failures in a row the connector answers at once with an error for
    /// `breaker_cooldown`, then lets one call through to test it (default 5 and 30 s).
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    /// The entities, by name (`data_map` in the file).
    pub entities: BTreeMap<String, Entity>,
}

/// The closed set of drivers; plugins arrive through [`Driver`] implementations registered
/// under their own kind name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriverKind {
    MySql,
    Postgres,
    Sqlite,
    Http,
    Soap,
}

impl DriverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::MySql => "mysql",
            DriverKind::Postgres => "postgres",
            DriverKind::Sqlite => "sqlite",
            DriverKind::Http => "http",
            DriverKind::Soap => "soap",
        }
    }

    pub fn is_sql(self) -> bool {
        matches!(
            self,
            DriverKind::MySql | DriverKind::Postgres | DriverKind::Sqlite
        )
    }
}

/// Where a connector's system is.
#[derive(Clone, PartialEq)]
pub enum Target {
    /// A sqlx URL (`mysql://user:pass@host:3306/db`, `postgres://…`, `sqlite://path`); a
    /// Go-style DSN (`user:pass@tcp(host:3306)/db`) has been turned into one.
    Database { url: String },
    /// The base URL of a REST or SOAP service (`https://crm.example.com/api/`), and headers sent
    /// with every request (`Authorization: Bearer ${CRM_TOKEN}`).
    Service {
        base_url: String,
        headers: BTreeMap<String, String>,
    },
}

impl Target {
    /// The target with passwords and header values replaced by `***`, for logs and errors.
    pub fn redacted(&self) -> String {
        match self {
            Target::Database { url } => redact_url(url),
            Target::Service { base_url, headers } => {
                let names: Vec<&str> = headers.keys().map(String::as_str).collect();
                if names.is_empty() {
                    redact_url(base_url)
                } else {
                    format!("{} (headers {})", redact_url(base_url), names.join(", "))
                }
            }
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `scheme://user:***@host/…` for `scheme://user:password@host/…`; other text unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let user = authority[..at].split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..scheme_end], &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// An entity: a table (SQL) or an endpoint (REST, SOAP), its fields and operations.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub name: String,
    /// SQL: the table or view; REST/SOAP: unused.
    pub table: Option<String>,
    /// The field a `get` looks up by.
    pub key: String,
    /// The fields every row answers, in file order.
    pub fields: Vec<Field>,
    /// A field whose non-empty value turns the row into a connector error with that text
    /// (for systems that report failures inside their data).
    pub error_field: Option<String>,
    pub operations: BTreeMap<String, Operation>,
    /// How long a read of this entity may be cached (the cache issue); `None`: not cached.
    pub ttl: Option<Duration>,
    /// Whether the cache keeps this entity's answers in each process too (level 1), or only
    /// in Redis (`level1: false` in the file; default true).
    pub level1: bool,
}

impl Entity {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// One field of an entity's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub source: FieldSource,
    /// How the source's value becomes a flow value.
    pub ty: FieldType,
    /// Read for filters, ordering or `error_field`, but not answered.
    pub hidden: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldSource {
    /// A SQL expression over the table's columns, checked for the connector's dialect (see
    /// [`SqlExpr`]).
    Sql(SqlExpr),
    /// REST: a JSON pointer into one item of the response (`/customer/name`).
    Json(String),
    /// SOAP: a `/`-separated path of element local names inside one row element
    /// (`Address/City`).
    Xml(String),
}

/// A field map's SQL expression, already parsed and checked: only column references, literals,
/// operators, `CASE`, `CAST` and scalar function calls; no subqueries, no statements, no
/// comments, no placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlExpr {
    /// The expression as the SQL parser prints it back (so what runs is what was checked).
    pub sql: String,
    /// The columns it reads, lower-case, for checking against the real table at connect time.
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldType {
    /// Whatever the source gives: text, number, boolean or null.
    #[default]
    Auto,
    Text,
    Number,
    Bool,
    /// Text holding JSON (a list of tags, say), parsed into a list or map.
    Json,
}

/// What a lookup node may ask of an entity, under the operation's name.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// One row by key; the parameter is named after the key field. Answers zero or one row.
    Get,
    /// Rows matching the given parameters (each one a filter), at most `limit`, in `order_by`
    /// order.
    Search {
        filters: BTreeMap<String, Filter>,
        /// SQL drivers: checked `ORDER BY` items (expression and direction: `true` is
        /// descending).
        order_by: Vec<(SqlExpr, bool)>,
        limit: u32,
        /// SQL drivers: only the first row (in `order_by` order) of each value of this
        /// expression (one variant per product model, say).
        distinct_by: Option<SqlExpr>,
    },
    /// Like `Search`, with `page` and `page_size` parameters (page from 1; page size at most
    /// `max_page_size`).
    List {
        filters: BTreeMap<String, Filter>,
        order_by: Vec<(SqlExpr, bool)>,
        max_page_size: u32,
    },
    /// REST and SOAP: one request described by its template (the operation's parameters fill
    /// `{name}` holes, escaped for where they stand).
    Request(RequestTemplate),
}

impl Operation {
    /// Whether calling it twice does no harm (only such calls are retried).
    pub fn is_read(&self) -> bool {
        match self {
            Operation::Get | Operation::Search { .. } | Operation::List { .. } => true,
            Operation::Request(template) => template.read,
        }
    }
}

/// A parameter of a search: which field it compares, how, and whether it must be given.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: String,
    pub op: FilterOp,
    pub required: bool,
    /// The value compared when the parameter is not given (else the filter is left out).
    pub default: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// SQL `LIKE` with the parameter's `%` and `_` escaped and `%` around it.
    Contains,
}

impl FilterOp {
    pub fn sql(self) -> &'static str {
        match self {
            FilterOp::Eq => "=",
            FilterOp::Ne => "<>",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
            FilterOp::Contains => "LIKE",
        }
    }
}

/// A REST or SOAP request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTemplate {
    /// `GET`, `POST`, … (SOAP: always `POST`).
    pub method: String,
    /// Relative to the connector's base URL; `{name}` holes are percent-encoded.
    pub path: String,
    /// REST: a JSON body whose string values may be `{name}` (replaced by the parameter's
    /// value, keeping its type); SOAP: the body element's XML, whose `{name}` holes are
    /// XML-escaped; the driver wraps it in the envelope.
    pub body: Option<String>,
    /// SOAP: the `SOAPAction`.
    pub action: Option<String>,
    /// REST: a JSON pointer to the rows (an array, or one object) in the response (`/data`);
    /// SOAP: the path of local element names down to the row elements (`GetOrderResponse/Order`).
    pub rows: String,
    /// Whether it only reads (then it may be retried).
    pub read: bool,
    /// The parameters it takes (the `{name}` holes); others are refused.
    pub params: Vec<String>,
}

/// Named parameters of one call.
pub type Params = BTreeMap<String, Value>;

/// Rows of an answer.
pub type Rows = Vec<BTreeMap<String, Value>>;

/// Why a call failed. Texts name the connector, entity and operation, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The call does not fit the configuration (unknown entity or operation, a missing,
    /// unknown or mistyped parameter): a mistake in the flow.
    #[error("{0}")]
    Request(String),
    /// The system answered with a failure (a SOAP fault, an HTTP error status, a refused
    /// statement, an `error_field`).
    #[error("{0}")]
    Remote(String),
    /// The system could not be reached, or did not answer in time.
    #[error("{0}")]
    Unavailable(String),
    /// The circuit breaker is open after repeated failures.
    #[error("{0}")]
    Open(String),
}

impl ConnectorError {
    /// Whether trying again may help (only for reads).
    pub fn is_transient(&self) -> bool {
        matches!(self, ConnectorError::Unavailable(_))
    }
}

/// The future a driver returns.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<Rows, ConnectorError>> + Send + 'a>>;

/// What every driver implements: run one operation of one entity. Object-safe, so drivers can
/// be chosen at run time (and, later, loaded as plugins). Timeouts, retries and the circuit
/// breaker are the registry's business, not the driver's.
pub trait Driver: Send + Sync {
    /// Runs `operation` (named `operation_name`) of `entity` with `params`, already checked
    /// against the operation's parameters.
    fn call<'a>(
        &'a self,
        entity: &'a Entity,
        operation_name: &'a str,
        operation: &'a Operation,
        params: &'a Params,
    ) -> CallFuture<'a>;

    /// Whether [`Driver::call_in_view`] applies views in the call itself (SQL drivers, in
    /// their statement). Drivers that do not answer whole and the registry filters and masks.
    fn applies_views(&self) -> bool {
        false
    }

    /// [`Driver::call`] as seen through `view`: only the rows in it, masked fields masked.
    /// Only called when [`Driver::applies_views`] says so.
    fn call_in_view<'a>(
        &'a self,
        entity: &'a Entity,
        operation_name: &'a str,
        operation: &'a Operation,
        params: &'a Params,
        view: &'a crate::View,
    ) -> CallFuture<'a> {
        let _ = (operation_name, operation, params, view);
        Box::pin(async move {
            Err(ConnectorError::Unavailable(format!(
                "entity `{}`: this driver cannot apply a data sandbox in its calls",
                entity.name
            )))
        })
    }

    /// Checks that the system answers (a `SELECT 1`, a `HEAD` of the base URL).
    fn ping(&self) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + '_>>;
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("mysql://root:s3cret@10.0.0.1:3306/erp?ssl=true"),
            "mysql://root:***@10.0.0.1:3306/erp?ssl=true"
        );
        assert_eq!(
            redact_url("postgres://kefu@db/kefu"),
            "postgres://kefu:***@db/kefu"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
