//! Checks the SQL expressions of field maps and `order_by` items with a real SQL parser.
//!
//! A field map is an expression over one row of one table: column names, literals, operators,
//! `CASE`, `CAST` and scalar function calls. Everything else — statements, `;`, comments,
//! placeholders, subqueries, `EXISTS`, `*`, qualified names, aggregate and window functions — is
//! refused with a message naming it. The expression is fixed configuration written by an
//! administrator, never visitor input (which is always a bound parameter), so the check is
//! about catching mistakes and keeping the generated `SELECT` one row-wise projection, not
//! about trusting the author less than the database does. That is why scalar functions are
//! allowed whatever they do (`sleep`, `load_file`): what they may do is decided by the rights
//! of the database user the connector logs in as, which is the real limit.
//!
//! What runs is the parser's own rendering of the checked tree ([`SqlExpr::sql`]), so the text
//! that was checked and the text that is executed cannot drift apart.

use sqlparser::ast::{
    BinaryOperator, CastKind, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, InTarget,
    ObjectNamePart, Spanned, Value,
};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::model::{DriverKind, SqlExpr};

/// Longer expressions are refused: a field map is short, and the limit bounds the depth of the
/// tree (a chain of `+` is as deep as it is long) that printing and dropping walk recursively.
const MAX_CHARS: usize = 1000;

/// How deeply operators and calls may nest.
const MAX_DEPTH: usize = 100;

/// Functions that combine rows (or need a window); a field is computed from one row.
const AGGREGATES: &[&str] = &[
    "any_value",
    "approx_count_distinct",
    "array_agg",
    "avg",
    "bit_and",
    "bit_or",
    "bit_xor",
    "bool_and",
    "bool_or",
    "count",
    "cume_dist",
    "dense_rank",
    "every",
    "first_value",
    "group_concat",
    "json_agg",
    "json_arrayagg",
    "json_group_array",
    "json_group_object",
    "json_object_agg",
    "json_objectagg",
    "jsonb_agg",
    "jsonb_object_agg",
    "lag",
    "last_value",
    "lead",
    "listagg",
    "max",
    "median",
    "min",
    "mode",
    "nth_value",
    "ntile",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "rank",
    "row_number",
    "std",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "sum",
    "total",
    "var_pop",
    "var_samp",
    "variance",
    "xmlagg",
];

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub message: String,
    /// Where in the expression (in characters from its start) the problem is, when known.
    pub offset: Option<usize>,
}

impl ExprError {
    fn new(message: impl Into<String>, offset: Option<usize>) -> Self {
        ExprError {
            message: message.into(),
            offset,
        }
    }
}

/// Checks one field expression for `dialect` (a SQL driver).
pub fn check(expr: &str, dialect: DriverKind) -> Result<SqlExpr, ExprError> {
    let (parsed, _) = parse(expr, dialect, false)?;
    Ok(parsed)
}

/// Checks one `order_by` item, `expr [ASC|DESC]`; answers the expression and whether the order
/// is descending.
pub fn check_order_by(item: &str, dialect: DriverKind) -> Result<(SqlExpr, bool), ExprError> {
    parse(item, dialect, true)
}

fn parse(text: &str, kind: DriverKind, direction: bool) -> Result<(SqlExpr, bool), ExprError> {
    let dialect: &dyn Dialect = match kind {
        DriverKind::MySql => &MySqlDialect {},
        DriverKind::Postgres => &PostgreSqlDialect {},
        DriverKind::Sqlite => &SQLiteDialect {},
        DriverKind::Http | DriverKind::Soap => {
            return Err(ExprError::new(
                format!("the {} driver does not take SQL expressions", kind.as_str()),
                None,
            ));
        }
    };
    if text.trim().is_empty() {
        return Err(ExprError::new("the expression is empty", None));
    }
    if text.chars().count() > MAX_CHARS {
        return Err(ExprError::new(
            format!("the expression is longer than {MAX_CHARS} characters"),
            None,
        ));
    }
    let tokens = Tokenizer::new(dialect, text)
        .tokenize_with_location()
        .map_err(|e| ExprError::new(strip_location(&e.message), offset_of(text, e.location)))?;
    refuse_tokens(text, &tokens)?;

    let mut parser = Parser::new(dialect).with_tokens_with_locations(tokens);
    let expr = parser.parse_expr().map_err(|e| parser_error(text, &e))?;
    let mut descending = false;
    if direction {
        let next = parser.peek_token();
        if let Token::Word(word) = &next.token
            && (word.keyword == Keyword::DESC || word.keyword == Keyword::ASC)
        {
            descending = word.keyword == Keyword::DESC;
            parser.next_token();
        }
    }
    let rest = parser.peek_token();
    if rest.token != Token::EOF {
        let expected = if direction {
            "the expression (and ASC or DESC)"
        } else {
            "the expression"
        };
        return Err(ExprError::new(
            format!("unexpected `{}` after {expected}", rest.token),
            offset_of(text, rest.span.start),
        ));
    }

    let mut walk = Walk {
        text,
        kind,
        columns: Vec::new(),
    };
    walk.expr(&expr, 0)?;
    let sql = expr.to_string();
    if !prints_back(&sql, dialect, &expr) {
        return Err(ExprError::new(
            "the expression does not read back the same once printed (escapes in a string \
             literal?); write it more simply",
            None,
        ));
    }
    Ok((
        SqlExpr {
            sql,
            columns: walk.columns,
        },
        descending,
    ))
}

/// Whether the printed expression parses back to the same tree and prints the same. What runs
/// is the printed text, so a literal the printer escapes differently from how the tokenizer
/// reads it (a MySQL string ending in a backslash, say) must not change what the text means.
fn prints_back(sql: &str, dialect: &dyn Dialect, expr: &Expr) -> bool {
    let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize_with_location() else {
        return false;
    };
    if refuse_tokens(sql, &tokens).is_err() {
        return false;
    }
    let mut parser = Parser::new(dialect).with_tokens_with_locations(tokens);
    match parser.parse_expr() {
        Ok(again) => {
            parser.peek_token().token == Token::EOF && again == *expr && again.to_string() == sql
        }
        Err(_) => false,
    }
}

/// Refuses what must never reach the parser's tree: comments (which could hide text from a
/// reader), placeholders (values are bound by the driver, not written here) and `;`.
fn refuse_tokens(text: &str, tokens: &[TokenWithSpan]) -> Result<(), ExprError> {
    for token in tokens {
        let message = match &token.token {
            Token::Whitespace(
                Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
            ) => "comments are not allowed in a field expression".to_owned(),
            Token::Placeholder(p) => format!(
                "placeholders (`{p}`) are not allowed in a field expression: parameters come from the operation's `params`"
            ),
            Token::SemiColon => {
                "`;` is not allowed: a field is one expression, not a statement".to_owned()
            }
            _ => continue,
        };
        return Err(ExprError::new(message, offset_of(text, token.span.start)));
    }
    Ok(())
}

fn parser_error(text: &str, error: &ParserError) -> ExprError {
    match error {
        ParserError::RecursionLimitExceeded => {
            ExprError::new("the expression is nested too deeply", None)
        }
        ParserError::TokenizerError(message) | ParserError::ParserError(message) => ExprError::new(
            strip_location(message),
            location_in(message).and_then(|l| offset_of(text, l)),
        ),
    }
}

/// The parser appends ` at Line: L, Column: C` to its messages; the caller reports the position
/// its own way.
fn strip_location(message: &str) -> String {
    match message.rfind(" at Line: ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn location_in(message: &str) -> Option<Location> {
    let at = message.rfind(" at Line: ")?;
    let rest = &message[at + " at Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(Location {
        line: line.trim().parse().ok()?,
        column: column.parse().ok()?,
    })
}

/// The character offset of a 1-based line and column; `None` for the parser's empty location.
fn offset_of(text: &str, location: Location) -> Option<usize> {
    if location.line == 0 || location.column == 0 {
        return None;
    }
    let line = usize::try_from(location.line).ok()?;
    let column = usize::try_from(location.column).ok()?;
    let mut offset = 0;
    for (index, content) in text.split('\n').enumerate() {
        if index + 1 == line {
            let length = content.chars().count();
            return Some(offset + (column - 1).min(length));
        }
        offset += content.chars().count() + 1;
    }
    None
}

struct Walk<'t> {
    text: &'t str,
    kind: DriverKind,
    columns: Vec<String>,
}

impl Walk<'_> {
    fn refuse(&self, node: &Expr, message: impl Into<String>) -> ExprError {
        ExprError::new(message, offset_of(self.text, node.span().start))
    }

    fn expr(&mut self, node: &Expr, depth: usize) -> Result<(), ExprError> {
        if depth > MAX_DEPTH {
            return Err(ExprError::new("the expression is nested too deeply", None));
        }
        let depth = depth + 1;
        match node {
            Expr::Identifier(ident) => {
                if ident.quote_style.is_none() && ident.value.starts_with('@') {
                    return Err(self.refuse(
                        node,
                        format!("variables (`{}`) are not allowed in a field expression", ident.value),
                    ));
                }
                let column = ident.value.to_lowercase();
                if !self.columns.contains(&column) {
                    self.columns.push(column);
                }
                Ok(())
            }
            Expr::CompoundIdentifier(_) => Err(self.refuse(
                node,
                format!(
                    "qualified names (`{node}`) are not allowed: a field reads its own table's columns, named alone"
                ),
            )),
            Expr::Value(value) => match &value.value {
                Value::Placeholder(p) => Err(self.refuse(
                    node,
                    format!("placeholders (`{p}`) are not allowed in a field expression"),
                )),
                _ => Ok(()),
            },
            Expr::TypedString(_) => Ok(()),
            Expr::BinaryOp { left, op, right } => {
                if *op == BinaryOperator::Assignment {
                    return Err(self.refuse(node, "assignments (`:=`) are not allowed"));
                }
                self.expr(left, depth)?;
                self.expr(right, depth)
            }
            Expr::UnaryOp { expr, .. }
            | Expr::Nested(expr)
            | Expr::IsNull(expr)
            | Expr::IsNotNull(expr)
            | Expr::IsTrue(expr)
            | Expr::IsNotTrue(expr)
            | Expr::IsFalse(expr)
            | Expr::IsNotFalse(expr)
            | Expr::IsUnknown(expr)
            | Expr::IsNotUnknown(expr)
            | Expr::Collate { expr, .. }
            | Expr::Extract { expr, .. }
            | Expr::Ceil { expr, .. }
            | Expr::Floor { expr, .. } => self.expr(expr, depth),
            Expr::Cast {
                kind: CastKind::Cast | CastKind::TryCast | CastKind::SafeCast | CastKind::DoubleColon,
                expr,
                ..
            } => self.expr(expr, depth),
            Expr::Convert { expr, styles, .. } => {
                self.expr(expr, depth)?;
                self.all(styles, depth)
            }
            Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                self.expr(a, depth)?;
                self.expr(b, depth)
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                self.expr(expr, depth)?;
                self.expr(low, depth)?;
                self.expr(high, depth)
            }
            Expr::In { expr, target, .. } => match target {
                InTarget::List(list) => {
                    self.expr(expr, depth)?;
                    self.all(list, depth)
                }
                InTarget::Subquery(_) => Err(self.refuse(
                    node,
                    "`IN (subquery)` is not allowed: a field reads one row of its own table",
                )),
                InTarget::Unnest(_) | InTarget::Table { .. } => {
                    Err(self.refuse(node, "`IN` takes a list of values here"))
                }
            },
            Expr::Like {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::SimilarTo {
                expr,
                pattern,
                escape_char,
                ..
            } => {
                self.expr(expr, depth)?;
                self.expr(pattern, depth)?;
                match escape_char {
                    Some(e) => self.expr(e, depth),
                    None => Ok(()),
                }
            }
            Expr::RLike { expr, pattern, .. } => {
                self.expr(expr, depth)?;
                self.expr(pattern, depth)
            }
            Expr::AtTimeZone {
                timestamp,
                time_zone,
            } => {
                self.expr(timestamp, depth)?;
                self.expr(time_zone, depth)
            }
            Expr::Position { expr, r#in } => {
                self.expr(expr, depth)?;
                self.expr(r#in, depth)
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                self.expr(expr, depth)?;
                self.opt(substring_from.as_deref(), depth)?;
                self.opt(substring_for.as_deref(), depth)
            }
            Expr::Trim {
                expr,
                trim_what,
                trim_characters,
                ..
            } => {
                self.expr(expr, depth)?;
                self.opt(trim_what.as_deref(), depth)?;
                self.all(trim_characters.as_deref().unwrap_or_default(), depth)
            }
            Expr::Overlay {
                expr,
                overlay_what,
                overlay_from,
                overlay_for,
            } => {
                self.expr(expr, depth)?;
                self.expr(overlay_what, depth)?;
                self.expr(overlay_from, depth)?;
                self.opt(overlay_for.as_deref(), depth)
            }
            Expr::Interval(interval) => self.expr(&interval.value, depth),
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                self.opt(operand.as_deref(), depth)?;
                for when in conditions {
                    self.expr(&when.condition, depth)?;
                    self.expr(&when.result, depth)?;
                }
                self.opt(else_result.as_deref(), depth)
            }
            Expr::Function(function) => self.function(node, function, depth),
            Expr::Subquery(_) => Err(self.refuse(
                node,
                "subqueries are not allowed: a field reads one row of its own table",
            )),
            Expr::Exists { .. } => Err(self.refuse(
                node,
                "`EXISTS` is not allowed: a field reads one row of its own table",
            )),
            Expr::Wildcard(_) | Expr::QualifiedWildcard(..) => Err(self.refuse(
                node,
                "`*` is not allowed: a field is one expression",
            )),
            _ => Err(self.refuse(
                node,
                format!(
                    "`{}` is not allowed in a field expression (allowed: columns, literals, operators, CASE, CAST and scalar functions)",
                    snippet(&node.to_string())
                ),
            )),
        }
    }

    fn all(&mut self, nodes: &[Expr], depth: usize) -> Result<(), ExprError> {
        nodes.iter().try_for_each(|n| self.expr(n, depth))
    }

    fn opt(&mut self, node: Option<&Expr>, depth: usize) -> Result<(), ExprError> {
        node.map_or(Ok(()), |n| self.expr(n, depth))
    }

    fn function(
        &mut self,
        node: &Expr,
        function: &sqlparser::ast::Function,
        depth: usize,
    ) -> Result<(), ExprError> {
        let name = match function.name.0.as_slice() {
            [ObjectNamePart::Identifier(ident)] => ident.value.to_lowercase(),
            _ => {
                return Err(self.refuse(
                    node,
                    format!(
                        "qualified function names (`{}`) are not allowed",
                        function.name
                    ),
                ));
            }
        };
        let arguments = match &function.args {
            FunctionArguments::None => &[][..],
            FunctionArguments::Subquery(_) => {
                return Err(self.refuse(node, "subqueries are not allowed as function arguments"));
            }
            FunctionArguments::List(list) => {
                if list.duplicate_treatment.is_some() {
                    return Err(self.refuse(
                        node,
                        format!("`DISTINCT`/`ALL` in a call of `{name}` is not allowed"),
                    ));
                }
                if !list.clauses.is_empty() {
                    return Err(self.refuse(
                        node,
                        format!("clauses inside the call of `{name}` (ORDER BY, LIMIT, …) are not allowed"),
                    ));
                }
                &list.args[..]
            }
        };
        // SQLite's `min(a, b)` and `max(a, b)` with several arguments are scalar functions.
        let scalar_min_max = self.kind == DriverKind::Sqlite
            && (name == "min" || name == "max")
            && arguments.len() > 1;
        if AGGREGATES.contains(&name.as_str()) && !scalar_min_max {
            return Err(self.refuse(
                node,
                format!(
                    "aggregate and window functions (`{name}`) are not allowed: a field is computed from one row"
                ),
            ));
        }
        if function.over.is_some() || !function.within_group.is_empty() {
            return Err(self.refuse(
                node,
                "window functions (`OVER`, `WITHIN GROUP`) are not allowed",
            ));
        }
        if function.filter.is_some() {
            return Err(self.refuse(node, "`FILTER` is not allowed: it belongs to aggregates"));
        }
        if function.null_treatment.is_some()
            || function.uses_odbc_syntax
            || !matches!(function.parameters, FunctionArguments::None)
        {
            return Err(self.refuse(
                node,
                format!("this form of calling `{name}` is not allowed"),
            ));
        }
        for argument in arguments {
            let value = match argument {
                FunctionArg::Unnamed(value) | FunctionArg::Named { arg: value, .. } => value,
                FunctionArg::ExprNamed { .. } => {
                    return Err(self.refuse(node, "expression-named arguments are not allowed"));
                }
            };
            match value {
                FunctionArgExpr::Expr(e) => self.expr(e, depth)?,
                FunctionArgExpr::Wildcard
                | FunctionArgExpr::QualifiedWildcard(_)
                | FunctionArgExpr::WildcardWithOptions(_) => {
                    return Err(self.refuse(
                        node,
                        format!("`*` is not allowed as an argument (of `{name}`)"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The start of a long text, for messages.
fn snippet(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::{check, check_order_by};
    use crate::model::DriverKind::{self, MySql, Postgres, Sqlite};

    const SQL: [DriverKind; 3] = [MySql, Postgres, Sqlite];

    fn refused(expr: &str, dialect: DriverKind) -> String {
        match check(expr, dialect) {
            Ok(ok) => panic!("{expr:?} was accepted for {dialect:?} as {ok:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn injections_are_refused_in_every_dialect() {
        let cases = [
            ("1; DROP TABLE users", "`;`"),
            ("(SELECT password FROM users)", "subqueries"),
            ("name -- comment", "comments"),
            ("name /* c */", "comments"),
            ("EXISTS (SELECT 1)", "EXISTS"),
            ("x IN (SELECT y FROM z)", "IN (subquery)"),
            ("*", ""),
            ("count(*)", ""),
            ("u.name", "qualified"),
            ("sum(price)", "aggregate"),
            ("row_number() OVER (ORDER BY id)", ""),
            ("name UNION SELECT password FROM users", "unexpected"),
            ("", "empty"),
        ];
        for dialect in SQL {
            for (expr, needle) in cases {
                let message = refused(expr, dialect);
                assert!(
                    message.contains(needle),
                    "{expr:?} on {dialect:?}: {message}"
                );
            }
        }
    }

    #[test]
    fn placeholders_are_refused() {
        assert!(refused("?", MySql).contains("placeholders"));
        assert!(refused("name = ?", Sqlite).contains("placeholders"));
        assert!(refused("$1", Postgres).contains("placeholders"));
        assert!(refused("@x", MySql).contains("variables"));
        assert!(refused("name # comment", MySql).contains("comments"));
    }

    #[test]
    fn row_expressions_are_accepted() {
        let both = [
            (
                "concat(first_name,' ',last_name)",
                "concat(first_name, ' ', last_name)",
            ),
            ("price * 100", "price * 100"),
            (
                "CASE WHEN x > 0 THEN 'a' ELSE 'b' END",
                "CASE WHEN x > 0 THEN 'a' ELSE 'b' END",
            ),
            ("COALESCE(nick, name)", "COALESCE(nick, name)"),
            (
                "CAST(price AS DECIMAL(10,2))",
                "CAST(price AS DECIMAL(10,2))",
            ),
            ("deleted_at IS NULL", "deleted_at IS NULL"),
            ("age BETWEEN 18 AND 65", "age BETWEEN 18 AND 65"),
            ("status IN ('a', 'b')", "status IN ('a', 'b')"),
            ("name LIKE 'A%'", "name LIKE 'A%'"),
            ("sleep(10) OR 1=1", "sleep(10) OR 1 = 1"),
        ];
        for dialect in SQL {
            for (expr, sql) in both {
                let checked =
                    check(expr, dialect).unwrap_or_else(|e| panic!("{expr:?} on {dialect:?}: {e}"));
                assert_eq!(checked.sql, sql, "{dialect:?}");
            }
        }
        for dialect in [Postgres, Sqlite] {
            let checked = check("first_name || ' ' || last_name", dialect).expect("concatenation");
            assert_eq!(checked.columns, ["first_name", "last_name"]);
        }
        assert_eq!(
            check("Upper(Name) || NAME", Postgres)
                .expect("columns")
                .columns,
            ["name"]
        );
        assert!(check("min(a, b)", Sqlite).is_ok());
        assert!(check("min(a, b)", MySql).is_err());
    }

    #[test]
    fn errors_point_into_the_expression() {
        let e = check("a + (SELECT 1)", MySql).expect_err("subquery");
        assert_eq!(e.offset, Some(5), "at SELECT");
        let e = check("name -- x", Postgres).expect_err("comment");
        assert_eq!(e.offset, Some(5));
        let e = check("a b", Sqlite).expect_err("two expressions");
        assert_eq!(e.offset, Some(2));
        assert!(e.message.contains("`b`"), "{}", e.message);
    }

    #[test]
    fn order_by_items() {
        let (expr, descending) = check_order_by("id DESC", MySql).expect("desc");
        assert_eq!((expr.sql.as_str(), descending), ("id", true));
        let (expr, descending) = check_order_by("lower(name) asc", Postgres).expect("asc");
        assert_eq!((expr.sql.as_str(), descending), ("lower(name)", false));
        assert!(check_order_by("name", Sqlite).is_ok_and(|(_, d)| !d));
        assert!(check_order_by("id DESC, name", MySql).is_err());
        assert!(check_order_by("id DESC NULLS FIRST", Postgres).is_err());
        assert!(check("id DESC", MySql).is_err());
    }

    #[test]
    fn deep_and_long_expressions_are_refused_not_crashed() {
        let long = vec!["a"; 600].join("+");
        assert!(check(&long, MySql).is_err());
        let deep = format!("{}a{}", "(".repeat(300), ")".repeat(300));
        assert!(check(&deep, Postgres).is_err());
        let chain = vec!["a"; 200].join("+");
        assert!(check(&chain, Sqlite).is_err());
        let fine = vec!["a"; 50].join("+");
        assert!(check(&fine, Sqlite).is_ok());
    }

    #[test]
    fn literals_that_print_differently_are_refused() {
        // The printer does not double a backslash, which MySQL reads as an escape: `'a\\'`
        // would run as the unterminated `'a\'`.
        let e = check(r"concat('a\\', b)", MySql).expect_err("backslash");
        assert!(e.message.contains("read back"), "{}", e.message);
        assert!(check(r"concat('a\\', b)", Postgres).is_ok());
        assert!(check("'it''s'", MySql).is_ok());
    }

    #[test]
    fn not_for_http() {
        assert!(check("a", DriverKind::Http).is_err());
    }
}
