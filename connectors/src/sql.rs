//! The SQL drivers (MySQL/MariaDB, PostgreSQL, SQLite) on sqlx pools.
//!
//! Statements are generated from the checked configuration only: the field maps' expressions
//! (already parsed and printed back by the SQL parser), identifiers quoted for the dialect, and
//! a placeholder for every value a caller supplies. At connect time every entity's table is
//! read (`information_schema.columns`, `pragma_table_info`) and a field map naming a column the
//! table lacks is refused; the entity's `SELECT` is then prepared once, which checks the
//! expressions against the real database and tells each field's SQL type (used to bind a
//! parameter as text or number to suit the column, which PostgreSQL insists on).
//!
//! Values in rows, by [`FieldType`]: `auto` gives integers and floating-point columns
//! (including MySQL `DECIMAL` and PostgreSQL `NUMERIC`) as numbers, text as text, booleans
//! (PostgreSQL `BOOL`, MySQL `TINYINT(1)`) as booleans and `NULL` as null; `json` parses text
//! (or a JSON column). Date and time columns have no flow type: `CAST` them to text in the
//! field map (`CAST(created_at AS CHAR)`), or the call fails with a message saying so.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;

use flows::Value;
use sqlx::mysql::{MySql, MySqlPool, MySqlPoolOptions, MySqlRow, MySqlValueRef};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow, PgValueFormat, PgValueRef, Postgres};
use sqlx::sqlite::{Sqlite, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteValueRef};
use sqlx::{
    AssertSqlSafe, Column, Decode, Executor, Row, SqlSafeStr, Statement, TypeInfo, ValueRef,
};

use crate::View;
use crate::model::{
    CallFuture, Connector, ConnectorError, Driver, DriverKind, Entity, FieldSource, FieldType,
    Filter, FilterOp, Operation, Params, Rows, SqlExpr, Target,
};
use crate::registry::{apply_error_field, convert, scrub};
use policy::sandbox::{MaskKind, Operand, RowFilter};

/// One SQL connector's pool and what was learnt about its tables at connect time.
pub struct SqlDriver {
    name: String,
    kind: DriverKind,
    pool: Pool,
    /// The connection URL's password, to scrub from any error text.
    secret: Option<String>,
    /// Per entity, per field: the SQL type the prepared `SELECT` reported.
    types: HashMap<String, HashMap<String, SqlType>>,
}

#[derive(Clone)]
enum Pool {
    MySql(MySqlPool),
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// What a field's SQL type means for binding a parameter compared with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqlType {
    Text,
    Number,
    Bool,
    Other,
}

/// The kind of value a filter compares, on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Bool,
}

impl Kind {
    fn of(value: &Value) -> Option<Kind> {
        match value {
            Value::String(_) => Some(Kind::Text),
            Value::Number(_) => Some(Kind::Number),
            Value::Bool(_) => Some(Kind::Bool),
            _ => None,
        }
    }
}

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl SqlDriver {
    /// Opens a pool of `pool_size` connections, reads every entity's table and refuses field
    /// maps that name columns the table does not have.
    pub async fn connect(connector: &Connector) -> Result<SqlDriver, ConnectorError> {
        let name = connector.name.clone();
        let Target::Database { url } = &connector.target else {
            return Err(ConnectorError::Request(format!(
                "connector `{name}`: a {} connector needs a database URL (dsn)",
                connector.driver.as_str()
            )));
        };
        let secret = url_password(url);
        let size = connector.pool_size.max(1);
        let unavailable = |e: sqlx::Error| {
            ConnectorError::Unavailable(scrub(
                &format!(
                    "connector `{name}`: cannot connect to {}: {}",
                    connector.target.redacted(),
                    describe_error(&e)
                ),
                secret.as_deref(),
            ))
        };
        let pool = match connector.driver {
            DriverKind::MySql => Pool::MySql(
                MySqlPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(connector.timeout)
                    .connect(url)
                    .await
                    .map_err(unavailable)?,
            ),
            DriverKind::Postgres => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(connector.timeout)
                    .connect(url)
                    .await
                    .map_err(unavailable)?,
            ),
            DriverKind::Sqlite => Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(connector.timeout)
                    .connect(url)
                    .await
                    .map_err(unavailable)?,
            ),
            other => {
                return Err(ConnectorError::Request(format!(
                    "connector `{name}`: driver `{}` is not a SQL driver",
                    other.as_str()
                )));
            }
        };
        let mut driver = SqlDriver {
            name: name.clone(),
            kind: connector.driver,
            pool,
            secret,
            types: HashMap::new(),
        };
        for entity in connector.entities.values() {
            driver.check_entity(entity).await?;
        }
        Ok(driver)
    }

    /// Which driver this is.
    pub fn kind(&self) -> DriverKind {
        self.kind
    }

    async fn check_entity(&mut self, entity: &Entity) -> Result<(), ConnectorError> {
        let table = table_name(entity);
        let columns = self.table_columns(table).await.map_err(|e| {
            self.error(
                &format!("entity `{}`: reading the columns of `{table}`", entity.name),
                &e,
            )
        })?;
        if columns.is_empty() {
            return Err(ConnectorError::Request(format!(
                "connector `{}`, entity `{}`: the table `{table}` does not exist (or has no columns)",
                self.name, entity.name
            )));
        }
        let check = |what: &str, expr: &SqlExpr| -> Result<(), ConnectorError> {
            for column in &expr.columns {
                if !columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
                    return Err(ConnectorError::Request(format!(
                        "connector `{}`, entity `{}`, {what}: the table `{table}` has no column `{column}` (it has: {})",
                        self.name,
                        entity.name,
                        columns.join(", ")
                    )));
                }
            }
            Ok(())
        };
        for field in &entity.fields {
            check(
                &format!("field `{}`", field.name),
                sql_expr(&self.name, entity, &field.name)?,
            )?;
        }
        for (op_name, op) in &entity.operations {
            if let Operation::Search { order_by, .. } | Operation::List { order_by, .. } = op {
                for (expr, _) in order_by {
                    check(&format!("operation `{op_name}` (order_by)"), expr)?;
                }
            }
            if let Operation::Search {
                distinct_by: Some(expr),
                ..
            } = op
            {
                check(&format!("operation `{op_name}` (distinct_by)"), expr)?;
            }
        }
        // Prepare the entity's SELECT once: checks the expressions against the real database
        // (unknown functions, type errors) and tells each field's SQL type.
        let sql = self.select_list(entity)?;
        let probe = format!("SELECT {sql} FROM {}", self.quote_table(table)?);
        let types = self.field_types(&probe).await.map_err(|e| {
            self.error(
                &format!("entity `{}`: checking its field maps", entity.name),
                &e,
            )
        })?;
        let mut by_field = HashMap::new();
        for (field, ty) in entity.fields.iter().zip(types) {
            by_field.insert(field.name.clone(), ty);
        }
        self.types.insert(entity.name.clone(), by_field);
        Ok(())
    }

    async fn table_columns(&self, table: &str) -> Result<Vec<String>, sqlx::Error> {
        let (schema, table) = match table.split_once('.') {
            Some((s, t)) => (Some(s.to_owned()), t.to_owned()),
            None => (None, table.to_owned()),
        };
        Ok(match &self.pool {
            Pool::MySql(pool) => {
                let rows = sqlx::query(
                    "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                     WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? \
                     ORDER BY ordinal_position",
                )
                .bind(schema)
                .bind(table)
                .fetch_all(pool)
                .await?;
                rows.iter()
                    .map(|r| r.try_get_unchecked::<String, _>(0))
                    .collect::<Result<_, _>>()?
            }
            Pool::Postgres(pool) => {
                let rows = sqlx::query(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_name = $2 AND (table_schema = $1 OR ($1 IS NULL AND \
                     table_schema = ANY(current_schemas(false)))) ORDER BY ordinal_position",
                )
                .bind(schema)
                .bind(table)
                .fetch_all(pool)
                .await?;
                rows.iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<Result<_, _>>()?
            }
            Pool::Sqlite(pool) => {
                let rows =
                    sqlx::query("SELECT name FROM pragma_table_info(?, COALESCE(?, 'main'))")
                        .bind(table)
                        .bind(schema)
                        .fetch_all(pool)
                        .await?;
                rows.iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<Result<_, _>>()?
            }
        })
    }

    async fn field_types(&self, sql: &str) -> Result<Vec<SqlType>, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned()).into_sql_str();
        Ok(match &self.pool {
            Pool::MySql(pool) => {
                let st = pool.prepare(sql).await?;
                st.columns()
                    .iter()
                    .map(|c| sql_type(c.type_info().name()))
                    .collect()
            }
            Pool::Postgres(pool) => {
                let st = pool.prepare(sql).await?;
                st.columns()
                    .iter()
                    .map(|c| sql_type(c.type_info().name()))
                    .collect()
            }
            Pool::Sqlite(pool) => {
                let st = pool.prepare(sql).await?;
                st.columns()
                    .iter()
                    .map(|c| sql_type(c.type_info().name()))
                    .collect()
            }
        })
    }

    /// One read, through `view` when given: its row filter in the statement, its masks in the
    /// `SELECT` (or on each row as it is read, for fields SQL cannot mask as text).
    async fn read(
        &self,
        entity: &Entity,
        operation_name: &str,
        operation: &Operation,
        params: &Params,
        view: Option<&View>,
    ) -> Result<Rows, ConnectorError> {
        let (sql, binds) = self.statement(entity, operation_name, operation, params, view)?;
        let rows = self.run(entity, sql, binds).await?;
        let masked_after = view
            .map(|v| self.masked_after(entity, v))
            .unwrap_or_default();
        let mut out = Rows::with_capacity(rows.len());
        for values in rows {
            let mut row = BTreeMap::new();
            for (field, value) in entity.fields.iter().zip(values) {
                let value = convert(value, field.ty).map_err(|why| {
                    ConnectorError::Remote(format!(
                        "connector `{}`, entity `{}`, field `{}`: {why}",
                        self.name, entity.name, field.name
                    ))
                })?;
                let value = match masked_after.get(&field.name) {
                    Some(kind) => kind.mask(&value),
                    None => value,
                };
                row.insert(field.name.clone(), value);
            }
            apply_error_field(&self.name, entity, &mut row)?;
            out.push(row);
        }
        Ok(out)
    }

    fn quote(&self, ident: &str) -> Result<String, ConnectorError> {
        quote_ident(self.kind, ident)
            .map_err(|e| ConnectorError::Request(format!("connector `{}`: {e}", self.name)))
    }

    fn quote_table(&self, table: &str) -> Result<String, ConnectorError> {
        let parts: Vec<String> = table
            .split('.')
            .map(|p| self.quote(p))
            .collect::<Result<_, _>>()?;
        Ok(parts.join("."))
    }

    fn placeholder(&self, n: usize) -> String {
        match self.kind {
            DriverKind::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        }
    }

    fn select_list(&self, entity: &Entity) -> Result<String, ConnectorError> {
        self.select_list_in(entity, &BTreeMap::new())
    }

    /// The `SELECT` list with the fields of `masks` masked in SQL: those whose SQL type is text
    /// and whose values are answered as they are (`auto`, `text`). Others are masked as they
    /// are read ([`SqlDriver::masked_after`]).
    fn select_list_in(
        &self,
        entity: &Entity,
        masks: &BTreeMap<String, MaskKind>,
    ) -> Result<String, ConnectorError> {
        let mut items = Vec::with_capacity(entity.fields.len());
        for field in &entity.fields {
            let expr = sql_expr(&self.name, entity, &field.name)?;
            let value = match masks.get(&field.name) {
                Some(kind) if self.masks_in_sql(entity, field) => {
                    crate::sqlview::mask(self.kind, *kind, &paren(&expr.sql))
                }
                _ => expr.sql.clone(),
            };
            items.push(format!("{value} AS {}", self.quote(&field.name)?));
        }
        Ok(items.join(", "))
    }

    /// The SQL type the prepared `SELECT` reported for a field (`Other` when unknown).
    fn field_type(&self, entity: &Entity, field: &str) -> SqlType {
        self.types
            .get(&entity.name)
            .and_then(|t| t.get(field))
            .copied()
            .unwrap_or(SqlType::Other)
    }

    fn masks_in_sql(&self, entity: &Entity, field: &crate::model::Field) -> bool {
        matches!(field.ty, FieldType::Auto | FieldType::Text)
            && self.field_type(entity, &field.name) == SqlType::Text
    }

    /// The masks of `view` that the statement does not apply, for the rows as they are read.
    fn masked_after(&self, entity: &Entity, view: &View) -> BTreeMap<String, MaskKind> {
        view.masks
            .iter()
            .filter(|(name, _)| {
                entity
                    .field(name)
                    .is_some_and(|field| !self.masks_in_sql(entity, field))
            })
            .map(|(name, kind)| (name.clone(), *kind))
            .collect()
    }

    /// A view's row filter as a SQL condition, its values bound. A comparison that SQL cannot
    /// make as the filter means it — a field the entity lacks, a `null`, a value of the wrong
    /// kind for the column — is unknown (`1 = NULL`), which shows no row, as in memory.
    fn filter_sql(
        &self,
        entity: &Entity,
        filter: &RowFilter,
        binds: &mut Vec<Bind>,
    ) -> Result<String, ConnectorError> {
        const UNKNOWN: &str = "(1 = NULL)";
        // A column, with the kind of value it answers (as `convert` makes it), when known.
        let column = |name: &str| -> Result<Option<(String, Option<Kind>)>, ConnectorError> {
            let Some(field) = entity.field(name) else {
                return Ok(None);
            };
            let expr = sql_expr(&self.name, entity, name)?;
            let kind = match (field.ty, self.field_type(entity, name)) {
                (FieldType::Text, _) | (FieldType::Auto, SqlType::Text) => Some(Kind::Text),
                (FieldType::Number, _) | (FieldType::Auto, SqlType::Number) => Some(Kind::Number),
                // SQLite keeps booleans as integers: they are read as numbers.
                (FieldType::Auto, SqlType::Bool) if self.kind == DriverKind::Sqlite => {
                    Some(Kind::Number)
                }
                (FieldType::Bool, _) | (FieldType::Auto, SqlType::Bool) => Some(Kind::Bool),
                _ => None,
            };
            Ok(Some((paren(&expr.sql), kind)))
        };
        Ok(match filter {
            RowFilter::Const(true) => "(1 = 1)".to_owned(),
            RowFilter::Const(false) => "(1 = 0)".to_owned(),
            RowFilter::And(a, b) => format!(
                "({} AND {})",
                self.filter_sql(entity, a, binds)?,
                self.filter_sql(entity, b, binds)?
            ),
            RowFilter::Or(a, b) => format!(
                "({} OR {})",
                self.filter_sql(entity, a, binds)?,
                self.filter_sql(entity, b, binds)?
            ),
            RowFilter::Not(a) => format!("(NOT {})", self.filter_sql(entity, a, binds)?),
            // As in memory (`RowFilter::matches`): a comparison with a value of another kind
            // than the column's is unknown, `==` and `!=` included.
            RowFilter::Compare {
                column: name,
                op,
                operand: Operand::Value(value),
            } => match column(name)? {
                // A column whose kind the driver could not tell (SQLite's declared types, say)
                // is compared with the value as it is.
                Some((expr, kind))
                    if Kind::of(value).is_some() && (kind.is_none() || kind == Kind::of(value)) =>
                {
                    match to_bind(value, SqlType::Other) {
                        Ok(bind) => {
                            binds.push(bind);
                            format!("({expr} {} {})", op.sql(), self.placeholder(binds.len()))
                        }
                        Err(_) => UNKNOWN.to_owned(),
                    }
                }
                _ => UNKNOWN.to_owned(),
            },
            RowFilter::In {
                column: name,
                operand: Operand::Value(Value::List(items)),
            } => match column(name)? {
                Some((expr, kind)) => {
                    let mut marks = Vec::new();
                    // Items of another kind (and `null`s) match nothing, as in memory.
                    let fits = |v: &&Value| {
                        Kind::of(v).is_some() && (kind.is_none() || Kind::of(v) == kind)
                    };
                    for item in items.iter().filter(fits) {
                        if let Ok(bind) = to_bind(item, SqlType::Other) {
                            binds.push(bind);
                            marks.push(self.placeholder(binds.len()));
                        }
                    }
                    if marks.is_empty() {
                        // Known false, but unknown for a `NULL` column (as `x IN (…)` is).
                        format!("(CASE WHEN {expr} IS NULL THEN (1 = NULL) ELSE (1 = 0) END)")
                    } else {
                        format!("({expr} IN ({}))", marks.join(", "))
                    }
                }
                _ => UNKNOWN.to_owned(),
            },
            // Unbound agent attributes (a view is bound before it gets here) or a list that
            // is not one: nothing is known.
            RowFilter::Compare { .. } | RowFilter::In { .. } => UNKNOWN.to_owned(),
        })
    }

    /// The statement and its bound values for one call.
    fn statement(
        &self,
        entity: &Entity,
        operation_name: &str,
        operation: &Operation,
        params: &Params,
        view: Option<&View>,
    ) -> Result<(String, Vec<Bind>), ConnectorError> {
        let table = self.quote_table(table_name(entity))?;
        let mut binds = Vec::new();
        // A view's rows: the table filtered first (its values bound first, as they come first
        // in the statement), under the table's own name so the field maps read it unchanged.
        let filtered = match view.and_then(|v| v.rows.as_ref()) {
            Some(filter) => Some(format!(
                "(SELECT * FROM {table} WHERE {})",
                self.filter_sql(entity, filter, &mut binds)?
            )),
            None => None,
        };
        let source = match &filtered {
            Some(filtered) => {
                let name = table_name(entity);
                let alias = name.rsplit('.').next().unwrap_or(name);
                format!("{filtered} {}", self.quote(alias)?)
            }
            None => table.clone(),
        };
        let masks = view.map(|v| v.masks.clone()).unwrap_or_default();
        let select = self.select_list_in(entity, &masks)?;
        let mut sql = format!("SELECT {select} FROM {source}");
        let field_type = |field: &str| self.field_type(entity, field);
        let bad = |param: &str, why: &str| {
            ConnectorError::Request(format!(
                "connector `{}`, entity `{}`, operation `{operation_name}`: parameter `{param}` {why}",
                self.name, entity.name
            ))
        };
        match operation {
            Operation::Get => {
                let key = &entity.key;
                let expr = sql_expr(&self.name, entity, key)?;
                let value = params.get(key).ok_or_else(|| bad(key, "is missing"))?;
                let bind = to_bind(value, field_type(key)).map_err(|why| bad(key, &why))?;
                binds.push(bind);
                sql.push_str(&format!(
                    " WHERE {} = {} LIMIT 1",
                    paren(&expr.sql),
                    self.placeholder(binds.len())
                ));
            }
            Operation::Search {
                filters,
                order_by,
                limit,
                distinct_by,
            } => {
                let mut where_ = String::new();
                self.where_clause(
                    entity,
                    filters,
                    params,
                    &mut where_,
                    &mut binds,
                    &field_type,
                    &bad,
                )?;
                match distinct_by {
                    None => sql.push_str(&where_),
                    Some(distinct) => {
                        // The first row of each value, in the operation's order: ranked in a
                        // subquery over the table's own columns, which the field maps read.
                        let mut window = String::new();
                        self.order_by(order_by, &mut window);
                        sql = format!(
                            "SELECT {select} FROM (SELECT kefu_source.*, ROW_NUMBER() OVER (PARTITION BY {}{window}) AS kefu_rank FROM {} kefu_source{where_}) kefu_ranked WHERE kefu_rank = 1",
                            paren(&distinct.sql),
                            filtered.as_deref().unwrap_or(&table),
                        );
                    }
                }
                self.order_by(order_by, &mut sql);
                sql.push_str(&format!(" LIMIT {limit}"));
            }
            Operation::List {
                filters,
                order_by,
                max_page_size,
            } => {
                let page = match params.get("page") {
                    None | Some(Value::Null) => 1,
                    Some(v) => positive_int(v)
                        .ok_or_else(|| bad("page", "must be a whole number from 1"))?,
                };
                let page_size = match params.get("page_size") {
                    None | Some(Value::Null) => u64::from(*max_page_size),
                    Some(v) => positive_int(v)
                        .filter(|n| *n <= u64::from(*max_page_size))
                        .ok_or_else(|| {
                            bad(
                                "page_size",
                                &format!("must be a whole number from 1 to {max_page_size}"),
                            )
                        })?,
                };
                let paging: BTreeMap<String, Value> = params
                    .iter()
                    .filter(|(k, _)| k.as_str() != "page" && k.as_str() != "page_size")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.where_clause(
                    entity,
                    filters,
                    &paging,
                    &mut sql,
                    &mut binds,
                    &field_type,
                    &bad,
                )?;
                self.order_by(order_by, &mut sql);
                let offset = (page - 1).saturating_mul(page_size);
                sql.push_str(&format!(" LIMIT {page_size} OFFSET {offset}"));
            }
            Operation::Request(_) => {
                return Err(ConnectorError::Request(format!(
                    "connector `{}`, entity `{}`: operation `{operation_name}` is a REST/SOAP request, which a SQL connector cannot run",
                    self.name, entity.name
                )));
            }
        }
        Ok((sql, binds))
    }

    #[allow(clippy::too_many_arguments)]
    fn where_clause(
        &self,
        entity: &Entity,
        filters: &BTreeMap<String, Filter>,
        params: &Params,
        sql: &mut String,
        binds: &mut Vec<Bind>,
        field_type: &dyn Fn(&str) -> SqlType,
        bad: &dyn Fn(&str, &str) -> ConnectorError,
    ) -> Result<(), ConnectorError> {
        let mut clauses = Vec::new();
        for (param, filter) in filters {
            let Some(value) = params.get(param).or(filter.default.as_ref()) else {
                if filter.required {
                    return Err(bad(param, "is required"));
                }
                continue;
            };
            let expr = sql_expr(&self.name, entity, &filter.field)?;
            let bind = if filter.op == FilterOp::Contains {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(_) => value_text(value),
                    other => {
                        return Err(bad(
                            param,
                            &format!("must be text to search in, not {}", other.kind_name()),
                        ));
                    }
                };
                Bind::Text(format!("%{}%", escape_like(&text)))
            } else {
                to_bind(value, field_type(&filter.field)).map_err(|why| bad(param, &why))?
            };
            binds.push(bind);
            let ph = self.placeholder(binds.len());
            clauses.push(if filter.op == FilterOp::Contains {
                format!("{} LIKE {ph} ESCAPE '!'", paren(&expr.sql))
            } else {
                format!("{} {} {ph}", paren(&expr.sql), filter.op.sql())
            });
        }
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        Ok(())
    }

    fn order_by(&self, order_by: &[(SqlExpr, bool)], sql: &mut String) {
        if order_by.is_empty() {
            return;
        }
        let items: Vec<String> = order_by
            .iter()
            .map(|(expr, descending)| {
                format!(
                    "{} {}",
                    paren(&expr.sql),
                    if *descending { "DESC" } else { "ASC" }
                )
            })
            .collect();
        sql.push_str(" ORDER BY ");
        sql.push_str(&items.join(", "));
    }

    async fn run(
        &self,
        entity: &Entity,
        sql: String,
        binds: Vec<Bind>,
    ) -> Result<Vec<Vec<Value>>, ConnectorError> {
        let context = format!("entity `{}`", entity.name);
        let sql = AssertSqlSafe(sql);
        macro_rules! run_on {
            ($pool:expr, $decode:ident) => {{
                let mut query = sqlx::query(sql);
                for bind in binds {
                    query = match bind {
                        Bind::Text(s) => query.bind(s),
                        Bind::Int(n) => query.bind(n),
                        Bind::Float(f) => query.bind(f),
                        Bind::Bool(b) => query.bind(b),
                    };
                }
                let rows = query
                    .fetch_all($pool)
                    .await
                    .map_err(|e| self.error(&context, &e))?;
                rows.iter()
                    .map(|row| $decode(row))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| {
                        ConnectorError::Remote(format!("connector `{}`, {context}: {e}", self.name))
                    })?
            }};
        }
        Ok(match &self.pool {
            Pool::MySql(pool) => run_on!(pool, decode_mysql_row),
            Pool::Postgres(pool) => run_on!(pool, decode_pg_row),
            Pool::Sqlite(pool) => run_on!(pool, decode_sqlite_row),
        })
    }

    /// A sqlx error as a connector error: the server's refusal is `Remote`, anything about
    /// reaching it `Unavailable`; never the URL or its password.
    fn error(&self, context: &str, e: &sqlx::Error) -> ConnectorError {
        let text = scrub(
            &format!(
                "connector `{}`, {context}: {}",
                self.name,
                describe_error(e)
            ),
            self.secret.as_deref(),
        );
        match e {
            sqlx::Error::Database(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::TypeNotFound { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::RowNotFound => ConnectorError::Remote(text),
            _ => ConnectorError::Unavailable(text),
        }
    }
}

impl Driver for SqlDriver {
    fn call<'a>(
        &'a self,
        entity: &'a Entity,
        operation_name: &'a str,
        operation: &'a Operation,
        params: &'a Params,
    ) -> CallFuture<'a> {
        Box::pin(self.read(entity, operation_name, operation, params, None))
    }

    fn applies_views(&self) -> bool {
        true
    }

    fn call_in_view<'a>(
        &'a self,
        entity: &'a Entity,
        operation_name: &'a str,
        operation: &'a Operation,
        params: &'a Params,
        view: &'a View,
    ) -> CallFuture<'a> {
        Box::pin(self.read(entity, operation_name, operation, params, Some(view)))
    }

    fn ping(&self) -> Pin<Box<dyn Future<Output = Result<(), ConnectorError>> + Send + '_>> {
        Box::pin(async move {
            let result = match &self.pool {
                Pool::MySql(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
                Pool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
                Pool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
            };
            result.map_err(|e| self.error("ping", &e))
        })
    }
}

fn table_name(entity: &Entity) -> &str {
    entity.table.as_deref().unwrap_or(&entity.name)
}

fn sql_expr<'e>(
    connector: &str,
    entity: &'e Entity,
    field: &str,
) -> Result<&'e SqlExpr, ConnectorError> {
    match entity.field(field).map(|f| &f.source) {
        Some(FieldSource::Sql(expr)) => Ok(expr),
        Some(_) => Err(ConnectorError::Request(format!(
            "connector `{connector}`, entity `{}`, field `{field}`: a SQL connector's field needs a SQL expression",
            entity.name
        ))),
        None => Err(ConnectorError::Request(format!(
            "connector `{connector}`, entity `{}`: no field `{field}`",
            entity.name
        ))),
    }
}

/// An expression in parentheses unless it is a plain (possibly qualified) name.
fn paren(sql: &str) -> String {
    if sql
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        sql.to_owned()
    } else {
        format!("({sql})")
    }
}

/// Quotes an identifier for the dialect; refuses one containing the quote character or NUL.
fn quote_ident(kind: DriverKind, ident: &str) -> Result<String, String> {
    let q = if kind == DriverKind::MySql { '`' } else { '"' };
    if ident.is_empty() || ident.contains(q) || ident.contains('\0') {
        return Err(format!(
            "the name {ident:?} cannot be used as a SQL identifier"
        ));
    }
    Ok(format!("{q}{ident}{q}"))
}

/// `%`, `_` and the escape character `!` escaped for `LIKE … ESCAPE '!'` (the same in every
/// dialect, unlike a backslash, which MySQL string literals treat specially).
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(c);
    }
    out
}

fn positive_int(value: &Value) -> Option<u64> {
    let n = match value {
        Value::Number(n) => *n,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (n.fract() == 0.0 && (1.0..9.0e15).contains(&n)).then_some(n as u64)
}

/// A number's text, without `.0` for whole numbers.
fn value_text(value: &Value) -> String {
    match value {
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => format!("{}", *n as i64),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// A parameter as a bound value, matched to the SQL type of what it is compared with.
fn to_bind(value: &Value, ty: SqlType) -> Result<Bind, String> {
    let number = |n: f64| {
        if n.fract() == 0.0 && n.abs() < 9.0e15 {
            Bind::Int(n as i64)
        } else {
            Bind::Float(n)
        }
    };
    match (value, ty) {
        (Value::Number(_), SqlType::Text) => Ok(Bind::Text(value_text(value))),
        (Value::Number(n), _) => Ok(number(*n)),
        (Value::String(s), SqlType::Number) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(number(n)),
            _ => Err(format!("must be a number, not {s:?}")),
        },
        (Value::String(s), _) => Ok(Bind::Text(s.clone())),
        (Value::Bool(b), SqlType::Number) => Ok(Bind::Int(i64::from(*b))),
        (Value::Bool(b), _) => Ok(Bind::Bool(*b)),
        (other, _) => Err(format!(
            "must be text, a number or a boolean, not {}",
            other.kind_name()
        )),
    }
}

fn sql_type(name: &str) -> SqlType {
    let name = name.to_ascii_uppercase();
    // MySQL reports text with a binary collation (`utf8mb4_bin`) as `VARBINARY`/`BINARY`.
    if name.contains("CHAR")
        || name.contains("TEXT")
        || name.contains("BINARY")
        || name == "NAME"
        || name == "ENUM"
    {
        SqlType::Text
    } else if name.contains("INT")
        || name.contains("DECIMAL")
        || name.contains("NUMERIC")
        || name.contains("FLOAT")
        || name.contains("DOUBLE")
        || name.contains("REAL")
    {
        SqlType::Number
    } else if name.starts_with("BOOL") {
        SqlType::Bool
    } else {
        SqlType::Other
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(decode_err)`
fn decode_err(e: sqlx::error::BoxDynError) -> String {
    format!("cannot read a value: {e}")
}

fn unsupported(column: &str, ty: &str) -> String {
    format!(
        "column `{column}` has SQL type {ty}, which has no flow value; CAST it to text in the field map"
    )
}

fn number(n: f64) -> Value {
    Value::Number(n)
}

fn decode_mysql_row(row: &MySqlRow) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw: MySqlValueRef<'_> = row.try_get_raw(i).map_err(|e| e.to_string())?;
        if raw.is_null() {
            out.push(Value::Null);
            continue;
        }
        let ty = raw.type_info().name().to_owned();
        let value = match ty.as_str() {
            "BOOLEAN" => Value::Bool(<i8 as Decode<MySql>>::decode(raw).map_err(decode_err)? != 0),
            t if t.ends_with("UNSIGNED") => {
                number(<u64 as Decode<MySql>>::decode(raw).map_err(decode_err)? as f64)
            }
            "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" | "YEAR" => {
                number(<i64 as Decode<MySql>>::decode(raw).map_err(decode_err)? as f64)
            }
            "FLOAT" => number(f64::from(
                <f32 as Decode<MySql>>::decode(raw).map_err(decode_err)?,
            )),
            "DOUBLE" => number(<f64 as Decode<MySql>>::decode(raw).map_err(decode_err)?),
            "DECIMAL" => {
                let text = <&str as Decode<MySql>>::decode(raw).map_err(decode_err)?;
                number(
                    text.trim()
                        .parse()
                        .map_err(|_| format!("cannot read the DECIMAL {text:?}"))?,
                )
            }
            "DATE" | "TIME" | "DATETIME" | "TIMESTAMP" | "GEOMETRY" | "BIT" => {
                return Err(unsupported(column.name(), &ty));
            }
            // Text of every kind, JSON, ENUM/SET, and binary strings (read as UTF-8).
            _ => Value::String(
                <&str as Decode<MySql>>::decode(raw)
                    .map_err(decode_err)?
                    .to_owned(),
            ),
        };
        out.push(value);
    }
    Ok(out)
}

fn decode_pg_row(row: &PgRow) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw: PgValueRef<'_> = row.try_get_raw(i).map_err(|e| e.to_string())?;
        if raw.is_null() {
            out.push(Value::Null);
            continue;
        }
        let ty = raw.type_info().name().to_owned();
        let value = match ty.as_str() {
            "BOOL" => Value::Bool(<bool as Decode<Postgres>>::decode(raw).map_err(decode_err)?),
            "INT2" => number(f64::from(
                <i16 as Decode<Postgres>>::decode(raw).map_err(decode_err)?,
            )),
            "INT4" => number(f64::from(
                <i32 as Decode<Postgres>>::decode(raw).map_err(decode_err)?,
            )),
            "INT8" => number(<i64 as Decode<Postgres>>::decode(raw).map_err(decode_err)? as f64),
            "FLOAT4" => number(f64::from(
                <f32 as Decode<Postgres>>::decode(raw).map_err(decode_err)?,
            )),
            "FLOAT8" => number(<f64 as Decode<Postgres>>::decode(raw).map_err(decode_err)?),
            "NUMERIC" => match raw.format() {
                PgValueFormat::Binary => {
                    pg_numeric(raw.as_bytes().map_err(decode_err)?).map_or(Value::Null, number)
                }
                PgValueFormat::Text => number(
                    raw.as_str()
                        .map_err(decode_err)?
                        .parse()
                        .map_err(|_| "cannot read a NUMERIC".to_owned())?,
                ),
            },
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" | "UNKNOWN" | "JSON"
            | "XML" => Value::String(raw.as_str().map_err(decode_err)?.to_owned()),
            "JSONB" => {
                let bytes = raw.as_bytes().map_err(decode_err)?;
                // Binary JSONB: a version byte (1), then the text.
                let text = match (raw.format(), bytes.first()) {
                    (PgValueFormat::Binary, Some(1)) => &bytes[1..],
                    _ => bytes,
                };
                Value::String(String::from_utf8_lossy(text).into_owned())
            }
            _ => return Err(unsupported(column.name(), &ty)),
        };
        out.push(value);
    }
    Ok(out)
}

/// PostgreSQL's binary `NUMERIC`: digit count, weight, sign, scale, then base-10000 digits.
/// `None` for NaN.
fn pg_numeric(bytes: &[u8]) -> Option<f64> {
    let word = |i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]))
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16;
    let sign = word(4)?;
    if sign == 0xC000 {
        return None;
    }
    // Through text keeps the decimal digits exact until the final rounding to f64.
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    text.push_str("0.");
    for d in 0..ndigits {
        text.push_str(&format!("{:04}", word(8 + 2 * d)?));
    }
    let mantissa: f64 = text.parse().ok()?;
    Some(mantissa * 10f64.powi(4 * (i32::from(weight) + 1)))
}

fn decode_sqlite_row(row: &SqliteRow) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(row.len());
    for (i, _) in row.columns().iter().enumerate() {
        let raw: SqliteValueRef<'_> = row.try_get_raw(i).map_err(|e| e.to_string())?;
        if raw.is_null() {
            out.push(Value::Null);
            continue;
        }
        // SQLite types values, not columns: the storage class of this very value.
        let ty = raw.type_info().name().to_owned();
        let value = match ty.as_str() {
            "INTEGER" | "BOOLEAN" | "INT8" => {
                number(<i64 as Decode<Sqlite>>::decode(raw).map_err(decode_err)? as f64)
            }
            "REAL" | "NUMERIC" => number(<f64 as Decode<Sqlite>>::decode(raw).map_err(decode_err)?),
            _ => Value::String(<String as Decode<Sqlite>>::decode(raw).map_err(decode_err)?),
        };
        out.push(value);
    }
    Ok(out)
}

/// The password in a URL (`scheme://user:password@host/…`), to scrub from error texts.
fn url_password(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}

/// A sqlx error's text without anything that could hold the URL (configuration errors quote
/// it); the server's own message for refused statements.
fn describe_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => format!("the database refused it: {}", db.message()),
        sqlx::Error::Configuration(_) => "the database URL is not valid".to_owned(),
        sqlx::Error::Io(io) => format!("I/O error: {io}"),
        sqlx::Error::Tls(_) => "TLS error".to_owned(),
        sqlx::Error::PoolTimedOut => "no connection became free in time".to_owned(),
        sqlx::Error::PoolClosed => "the pool is closed".to_owned(),
        sqlx::Error::Protocol(p) => format!("protocol error: {p}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_per_dialect() {
        assert_eq!(
            quote_ident(DriverKind::MySql, "name").as_deref(),
            Ok("`name`")
        );
        assert_eq!(
            quote_ident(DriverKind::Postgres, "name").as_deref(),
            Ok("\"name\"")
        );
        assert!(quote_ident(DriverKind::MySql, "a`b").is_err());
        assert!(quote_ident(DriverKind::Sqlite, "a\"b").is_err());
        assert!(quote_ident(DriverKind::MySql, "a\"b").is_ok());
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_off!"), "50!%!_off!!");
    }

    #[test]
    fn binds_follow_the_column_type() {
        assert_eq!(
            to_bind(&Value::Number(7.0), SqlType::Other),
            Ok(Bind::Int(7))
        );
        assert_eq!(
            to_bind(&Value::Number(7.5), SqlType::Other),
            Ok(Bind::Float(7.5))
        );
        assert_eq!(
            to_bind(&Value::Number(7.0), SqlType::Text),
            Ok(Bind::Text("7".into()))
        );
        assert_eq!(
            to_bind(&Value::String("12".into()), SqlType::Number),
            Ok(Bind::Int(12))
        );
        assert!(to_bind(&Value::String("x".into()), SqlType::Number).is_err());
        assert!(to_bind(&Value::List(vec![]), SqlType::Other).is_err());
        assert!(to_bind(&Value::Null, SqlType::Other).is_err());
    }

    #[test]
    fn pg_numeric_binary() {
        // 12345.67: ndigits 3, weight 1, sign 0, dscale 2, digits 1 2345 6700
        let bytes = [0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x1A, 0x2C];
        assert!((pg_numeric(&bytes).unwrap_or_default() - 12345.67).abs() < 1e-9);
        // -0.5: ndigits 1, weight -1, sign 0x4000, digits 5000
        let bytes = [0, 1, 0xFF, 0xFF, 0x40, 0, 0, 1, 0x13, 0x88];
        assert!((pg_numeric(&bytes).unwrap_or_default() + 0.5).abs() < 1e-12);
        // zero: no digits
        assert_eq!(pg_numeric(&[0, 0, 0, 0, 0, 0, 0, 0]), Some(0.0));
    }

    #[test]
    fn url_passwords_are_found() {
        assert_eq!(
            url_password("mysql://root:s3cret@h/db").as_deref(),
            Some("s3cret")
        );
        assert_eq!(url_password("mysql://root@h/db"), None);
        assert_eq!(url_password("sqlite://x.db"), None);
    }
}
