//! Loads and checks `connectors.yaml` (format: `docs/connectors.md`) into [`Connectors`].
//!
//! The YAML is read into a tree that keeps every node's position, then converted by hand so
//! that every problem — an unknown key, a wrong type, a missing key, a bad DSN, an unset
//! `${VARIABLE}`, a refused SQL expression — is reported at once, at the line and column of the
//! offending value. Broken input is not exceptional: the loader answers the list of problems
//! and never panics. Secrets substituted from the environment never appear in a message.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use saphyr::{MarkedYaml, Marker, Scalar, YamlData, YamlLoader};
use saphyr_parser::{Event, Parser, ScanError, SpannedEventReceiver};

use crate::dsn;
use crate::model::{
    Connector, Connectors, CustomerSource, DriverKind, Entity, Field, FieldSource, FieldType,
    Filter, FilterOp, Operation, RequestTemplate, SqlExpr, Target,
};
use crate::sqlexpr;
use flows::Value;

/// Deeper nesting than this is refused before a tree is built (the file needs 6 levels).
const MAX_NESTING: usize = 32;

/// One problem in a `connectors.yaml`, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Why [`load_file`] gave no connectors.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Every problem of the file; the text has one `path:line:column: message` per line.
    #[error("{}", problems.iter().map(|p| format!("{}:{p}", path.display())).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// Loads a `connectors.yaml` text; `env` answers `${NAME}` references (including
/// `${DATA_DIR}`, which the caller maps to kefu's data folder).
pub fn load(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Connectors, Vec<Problem>> {
    let mut cx = Cx {
        lines: text.split('\n').collect(),
        env,
        problems: Vec::new(),
        level1: true,
    };
    let connectors = match parse_yaml(text) {
        Ok(Some(root)) => cx.file(&root),
        Ok(None) => (Vec::new(), None),
        Err(problem) => {
            cx.problems.push(problem);
            (Vec::new(), None)
        }
    };
    let (connectors, customer) = connectors;
    if cx.problems.is_empty() {
        Ok(Connectors {
            connectors,
            customer,
        })
    } else {
        let mut problems = cx.problems;
        problems.sort_by_key(|p| (p.line, p.column));
        Err(problems)
    }
}

/// Reads and loads the file at `path` (see [`load`]).
pub fn load_file(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Connectors, FileError> {
    let text = std::fs::read_to_string(path).map_err(|error| FileError::Read {
        path: path.to_owned(),
        error,
    })?;
    load(&text, env).map_err(|problems| FileError::Invalid {
        path: path.to_owned(),
        problems,
    })
}

/// The file's one document (`None` when empty), or its syntax error.
///
/// The parser's events are fed to saphyr's tree builder one by one rather than through
/// `Parser::load`, which recurses once per nesting level: `- - - - …` would overflow the stack.
/// Nesting is bounded here too, since the finished tree is dropped recursively.
fn parse_yaml(text: &str) -> Result<Option<MarkedYaml<'_>>, Problem> {
    let mut loader: YamlLoader<'_, MarkedYaml<'_>> = YamlLoader::default();
    let mut depth = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|error| syntax(&error))?;
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(problem_at(
                        span.start,
                        format!("nested more than {MAX_NESTING} levels deep"),
                    ));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
        loader.on_event(event, span);
        if let Some(error) = loader.error() {
            return Err(syntax(error));
        }
    }
    let mut documents = loader.into_documents().into_iter();
    let first = documents.next();
    if let Some(second) = documents.next() {
        return Err(problem_at(
            second.span.start,
            "the file must hold one YAML document",
        ));
    }
    Ok(first.filter(|root| {
        !matches!(
            root.data,
            YamlData::BadValue | YamlData::Value(Scalar::Null)
        )
    }))
}

fn syntax(error: &ScanError) -> Problem {
    problem_at(*error.marker(), format!("YAML syntax: {}", error.info()))
}

fn problem_at(at: Marker, message: impl Into<String>) -> Problem {
    Problem {
        line: at.line().max(1),
        column: at.col() + 1,
        message: message.into(),
    }
}

type Node<'i> = MarkedYaml<'i>;

/// A mapping's entries, with their keys' positions.
struct Obj<'n, 'i> {
    at: Marker,
    entries: Vec<(String, Marker, &'n Node<'i>)>,
}

impl<'n, 'i> Obj<'n, 'i> {
    fn get(&self, key: &str) -> Option<&'n Node<'i>> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, v)| *v)
    }

    fn key_at(&self, key: &str) -> Option<Marker> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, at, _)| *at)
    }
}

/// A string value after `${NAME}` substitution.
struct Text {
    value: String,
    at: Marker,
    /// Whether an environment variable went into it (then its text is never shown).
    substituted: bool,
}

struct Cx<'s> {
    lines: Vec<&'s str>,
    env: &'s dyn Fn(&str) -> Option<String>,
    problems: Vec<Problem>,
    /// The file's `cache.level1`: what an entity without its own `level1` gets.
    level1: bool,
}

impl Cx<'_> {
    fn problem(&mut self, at: Marker, message: impl Into<String>) {
        self.problems.push(problem_at(at, message));
    }

    /// The position of the `offset`-th character of a string value starting at `at`: exact
    /// when the source spells the value literally up to there (plain or quoted, no escapes,
    /// one line), else the value's start.
    fn locate(&self, at: Marker, value: &str, offset: usize) -> (usize, usize) {
        let start = (at.line().max(1), at.col() + 1);
        let Some(line) = self.lines.get(at.line().wrapping_sub(1)) else {
            return start;
        };
        let mut source = line.chars().skip(at.col()).peekable();
        let quote = usize::from(matches!(source.peek(), Some('"' | '\'')));
        let source = source.skip(quote);
        let literal = value
            .chars()
            .take(offset)
            .zip(source)
            .take_while(|(a, b)| a == b && *a != '\n')
            .count();
        if literal == offset && value.chars().count() >= offset {
            (start.0, start.1 + quote + offset)
        } else {
            start
        }
    }

    fn problem_in(&mut self, text: &Text, offset: Option<usize>, message: impl Into<String>) {
        let (line, column) = match offset {
            Some(offset) => self.locate(text.at, &text.value, offset),
            None => (text.at.line().max(1), text.at.col() + 1),
        };
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }

    // ---- Reading nodes -------------------------------------------------------------------

    fn obj<'n, 'i>(
        &mut self,
        node: &'n Node<'i>,
        what: &str,
        allowed: Option<&[&str]>,
    ) -> Option<Obj<'n, 'i>> {
        let YamlData::Mapping(mapping) = &node.data else {
            self.problem(
                node.span.start,
                format!("{what} must be a mapping, not {}", kind(node)),
            );
            return None;
        };
        let mut entries = Vec::new();
        for (key, value) in mapping {
            let name = match &key.data {
                YamlData::Value(Scalar::String(s)) => s.to_string(),
                _ => {
                    self.problem(
                        key.span.start,
                        format!("keys must be names, not {}", kind(key)),
                    );
                    continue;
                }
            };
            if let Some(allowed) = allowed
                && !allowed.contains(&name.as_str())
            {
                let message = match did_you_mean(&name, allowed) {
                    Some(close) => {
                        format!("unknown key `{name}` in {what} (did you mean `{close}`?)")
                    }
                    None => format!(
                        "unknown key `{name}` in {what}; expected one of: {}",
                        allowed.join(", ")
                    ),
                };
                self.problem(key.span.start, message);
                continue;
            }
            entries.push((name, key.span.start, value));
        }
        Some(Obj {
            at: node.span.start,
            entries,
        })
    }

    fn text(&mut self, node: &Node<'_>, what: &str) -> Option<Text> {
        let YamlData::Value(Scalar::String(raw)) = &node.data else {
            self.problem(
                node.span.start,
                format!("{what} must be a string, not {}", kind(node)),
            );
            return None;
        };
        self.substitute(raw, node.span.start)
    }

    /// Replaces `${NAME}` by the variable's value (`$${` stands for a literal `${`).
    fn substitute(&mut self, raw: &str, at: Marker) -> Option<Text> {
        let mut value = String::with_capacity(raw.len());
        let mut substituted = false;
        let mut ok = true;
        let mut rest = raw;
        let mut offset = 0; // characters of `raw` consumed
        while let Some(dollar) = rest.find('$') {
            value.push_str(&rest[..dollar]);
            offset += rest[..dollar].chars().count();
            let after = &rest[dollar..];
            if let Some(tail) = after.strip_prefix("$${") {
                value.push_str("${");
                rest = tail;
                offset += 3;
            } else if let Some(tail) = after.strip_prefix("${") {
                let Some(close) = tail.find('}') else {
                    let (line, column) = self.locate(at, raw, offset);
                    self.problems.push(Problem {
                        line,
                        column,
                        message: "`${` without its closing `}`".to_owned(),
                    });
                    return None;
                };
                let name = &tail[..close];
                if !is_identifier(name) {
                    let (line, column) = self.locate(at, raw, offset);
                    self.problems.push(Problem {
                        line,
                        column,
                        message: format!(
                            "`${{{name}}}`: an environment variable's name is letters, digits and `_`"
                        ),
                    });
                    ok = false;
                } else if let Some(v) = (self.env)(name) {
                    value.push_str(&v);
                    substituted = true;
                } else {
                    let (line, column) = self.locate(at, raw, offset);
                    self.problems.push(Problem {
                        line,
                        column,
                        message: format!("environment variable `{name}` is not set"),
                    });
                    ok = false;
                }
                offset += 2 + name.chars().count() + 1;
                rest = &tail[close + 1..];
            } else {
                value.push('$');
                offset += 1;
                rest = &after[1..];
            }
        }
        value.push_str(rest);
        ok.then_some(Text {
            value,
            at,
            substituted,
        })
    }

    fn uint(&mut self, node: &Node<'_>, what: &str, min: u64, max: u64) -> Option<u64> {
        match &node.data {
            YamlData::Value(Scalar::Integer(i)) => match u64::try_from(*i) {
                Ok(n) if (min..=max).contains(&n) => Some(n),
                _ => {
                    self.problem(
                        node.span.start,
                        format!("{what} must be between {min} and {max}"),
                    );
                    None
                }
            },
            _ => {
                self.problem(
                    node.span.start,
                    format!("{what} must be a whole number, not {}", kind(node)),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node<'_>, what: &str) -> Option<bool> {
        if let YamlData::Value(Scalar::Boolean(b)) = &node.data {
            Some(*b)
        } else {
            self.problem(
                node.span.start,
                format!("{what} must be true or false, not {}", kind(node)),
            );
            None
        }
    }

    /// A number under `key` of `obj`, `default` when absent.
    fn number(&mut self, obj: &Obj<'_, '_>, key: &str, min: u64, max: u64, default: u64) -> u64 {
        match obj.get(key) {
            Some(node) => self
                .uint(node, &format!("`{key}`"), min, max)
                .unwrap_or(default),
            None => default,
        }
    }

    fn name(&mut self, text: &Text, what: &str, rule: fn(&str) -> bool, explain: &str) -> bool {
        let valid = rule(&text.value);
        if !valid {
            self.problem_in(
                text,
                None,
                format!("{what} `{}` is not valid: {explain}", text.value),
            );
        }
        valid
    }

    // ---- The file ------------------------------------------------------------------------

    fn file(&mut self, root: &Node<'_>) -> (Vec<Connector>, Option<CustomerSource>) {
        let Some(top) = self.obj(root, "the file", Some(&["cache", "connectors", "customer"]))
        else {
            return (Vec::new(), None);
        };
        // Before the connectors: it is their entities' default.
        if let Some(node) = top.get("cache") {
            self.cache(node);
        }
        let Some(list) = top.get("connectors") else {
            // A misspelt key was reported already, with a suggestion.
            if matches!(&root.data, YamlData::Mapping(m) if m.is_empty()) {
                self.problem(top.at, "missing key `connectors`");
            }
            return (Vec::new(), None);
        };
        let connectors = self.connector_list(list);
        let customer = top
            .get("customer")
            .and_then(|node| self.customer(node, &connectors));
        (connectors, customer)
    }

    /// `cache: { level1 }`: the default of every entity's `level1`.
    fn cache(&mut self, node: &Node<'_>) {
        let Some(obj) = self.obj(node, "`cache`", Some(&["level1"])) else {
            return;
        };
        if let Some(n) = obj.get("level1")
            && let Some(level1) = self.boolean(n, "`cache.level1`")
        {
            self.level1 = level1;
        }
    }

    /// `customer: { connector, entity }`: an entity with a `get`.
    fn customer(&mut self, node: &Node<'_>, connectors: &[Connector]) -> Option<CustomerSource> {
        let obj = self.obj(node, "`customer`", Some(&["connector", "entity"]))?;
        let text = |cx: &mut Self, key: &str| match obj.get(key) {
            Some(n) => cx.text(n, &format!("`customer.{key}`")),
            None => {
                cx.problem(obj.at, format!("missing key `{key}` in `customer`"));
                None
            }
        };
        let connector = text(self, "connector");
        let entity = text(self, "entity");
        let (connector, entity) = (connector?, entity?);
        let Some(found) = connectors.iter().find(|c| c.name == connector.value) else {
            // Its connector may have had problems of its own, reported already.
            if self.problems.is_empty() {
                let message = format!(
                    "`customer.connector`: there is no connector `{}`",
                    connector.value
                );
                self.problem_in(&connector, None, message);
            }
            return None;
        };
        let Some(table) = found.entities.get(&entity.value) else {
            let message = format!(
                "`customer.entity`: connector `{}` has no entity `{}`",
                connector.value, entity.value
            );
            self.problem_in(&entity, None, message);
            return None;
        };
        if !table.operations.contains_key("get") {
            let message = format!(
                "`customer.entity`: entity `{}` needs a `get` operation (the console looks a customer up by its key)",
                entity.value
            );
            self.problem_in(&entity, None, message);
            return None;
        }
        Some(CustomerSource {
            connector: connector.value,
            entity: entity.value,
        })
    }

    fn connector_list(&mut self, list: &Node<'_>) -> Vec<Connector> {
        let items: &[Node<'_>] = match &list.data {
            YamlData::Sequence(items) => items,
            YamlData::Value(Scalar::Null) => &[],
            _ => {
                self.problem(
                    list.span.start,
                    format!("`connectors` must be a list, not {}", kind(list)),
                );
                return Vec::new();
            }
        };
        let mut seen: HashMap<String, Marker> = HashMap::new();
        let mut connectors = Vec::new();
        for item in items {
            let (name, connector) = self.connector(item);
            if let Some(name) = name {
                if let Some(first) = seen.get(&name.value) {
                    let message = format!(
                        "duplicate connector name `{}` (first at {}:{})",
                        name.value,
                        first.line(),
                        first.col() + 1
                    );
                    self.problem(name.at, message);
                } else {
                    seen.insert(name.value, name.at);
                }
            }
            connectors.extend(connector);
        }
        connectors
    }

    fn connector(&mut self, node: &Node<'_>) -> (Option<Text>, Option<Connector>) {
        const KEYS: &[&str] = &[
            "name",
            "driver",
            "dsn",
            "base_url",
            "headers",
            "timeout_ms",
            "retries",
            "pool_size",
            "breaker",
            "data_map",
        ];
        let Some(obj) = self.obj(node, "a connector", Some(KEYS)) else {
            return (None, None);
        };
        let name = match obj.get("name") {
            Some(n) => self.text(n, "`name`").filter(|name| {
                self.name(
                    name,
                    "connector name",
                    is_name,
                    "use letters, digits, `_`, `-` and `.`",
                )
            }),
            None => {
                self.problem(
                    obj.at,
                    "missing key `name` (what lookup nodes write in `connector`)",
                );
                None
            }
        };
        let driver = match obj.get("driver") {
            Some(n) => self.text(n, "`driver`").and_then(|t| self.driver(&t)),
            None => {
                self.problem(
                    obj.at,
                    "missing key `driver` (mysql, mariadb, postgres, sqlite, http or soap)",
                );
                None
            }
        };
        let Some(driver) = driver else {
            return (name, None);
        };

        let target = self.target(&obj, driver);
        let timeout = self.number(&obj, "timeout_ms", 1, 600_000, 5_000);
        let retries = self.number(&obj, "retries", 0, 10, 2);
        let pool_size = if driver.is_sql() {
            self.number(&obj, "pool_size", 1, 100, 5)
        } else {
            if let Some(at) = obj.key_at("pool_size") {
                self.problem(at, "`pool_size` is for SQL connectors");
            }
            5
        };
        let (breaker_failures, breaker_cooldown) = match obj.get("breaker") {
            Some(node) => match self.obj(node, "`breaker`", Some(&["failures", "cooldown_ms"])) {
                Some(b) => (
                    self.number(&b, "failures", 1, 1_000, 5),
                    self.number(&b, "cooldown_ms", 0, 3_600_000, 30_000),
                ),
                None => (5, 30_000),
            },
            None => (5, 30_000),
        };
        let mut entities = BTreeMap::new();
        if let Some(node) = obj.get("data_map")
            && let Some(map) = self.obj(node, "`data_map`", None)
        {
            for (entity_name, at, value) in &map.entries {
                let entity_name_text = Text {
                    value: entity_name.clone(),
                    at: *at,
                    substituted: false,
                };
                if !self.name(
                    &entity_name_text,
                    "entity name",
                    is_name,
                    "use letters, digits, `_`, `-` and `.`",
                ) {
                    continue;
                }
                if let Some(entity) = self.entity(entity_name, value, driver) {
                    entities.insert(entity_name.clone(), entity);
                }
            }
        }

        let connector = match (&name, target) {
            (Some(name), Some(target)) => Some(Connector {
                name: name.value.clone(),
                driver,
                target,
                timeout: Duration::from_millis(timeout),
                retries: u32::try_from(retries).unwrap_or(2),
                pool_size: u32::try_from(pool_size).unwrap_or(5),
                breaker_failures: u32::try_from(breaker_failures).unwrap_or(5),
                breaker_cooldown: Duration::from_millis(breaker_cooldown),
                entities,
            }),
            _ => None,
        };
        (name, connector)
    }

    fn driver(&mut self, text: &Text) -> Option<DriverKind> {
        const DRIVERS: &[&str] = &["mysql", "mariadb", "postgres", "sqlite", "http", "soap"];
        match text.value.as_str() {
            "mysql" | "mariadb" => Some(DriverKind::MySql),
            "postgres" | "postgresql" => Some(DriverKind::Postgres),
            "sqlite" => Some(DriverKind::Sqlite),
            "http" => Some(DriverKind::Http),
            "soap" => Some(DriverKind::Soap),
            other => {
                let hint = did_you_mean(&other.to_ascii_lowercase(), DRIVERS)
                    .map(|d| format!(" (did you mean `{d}`?)"))
                    .unwrap_or_default();
                let shown = if text.substituted { "" } else { other };
                self.problem_in(
                    text,
                    None,
                    format!(
                        "unknown driver `{shown}`{hint}; drivers: mysql, mariadb, postgres, sqlite, http, soap"
                    ),
                );
                None
            }
        }
    }

    fn target(&mut self, obj: &Obj<'_, '_>, driver: DriverKind) -> Option<Target> {
        let name = driver.as_str();
        if driver.is_sql() {
            for key in ["base_url", "headers"] {
                if let Some(at) = obj.key_at(key) {
                    self.problem(
                        at,
                        format!("`{key}` is for http and soap connectors; a {name} connector takes `dsn`"),
                    );
                }
            }
            let Some(node) = obj.get("dsn") else {
                self.problem(
                    obj.at,
                    format!("missing key `dsn` (where the {name} database is)"),
                );
                return None;
            };
            let text = self.text(node, "`dsn`")?;
            match dsn::to_url(&text.value, driver) {
                Ok(url) => Some(Target::Database { url }),
                Err(message) => {
                    self.problem_in(&text, None, format!("bad `dsn`: {message}"));
                    None
                }
            }
        } else {
            if let Some(at) = obj.key_at("dsn") {
                self.problem(
                    at,
                    format!("`dsn` is for SQL connectors; a {name} connector takes `base_url`"),
                );
            }
            let Some(node) = obj.get("base_url") else {
                self.problem(
                    obj.at,
                    format!("missing key `base_url` (where the {name} service is)"),
                );
                return None;
            };
            let base = self.text(node, "`base_url`")?;
            let scheme_ok = ["http://", "https://"].iter().any(|s| {
                base.value
                    .get(..s.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(s))
            });
            if !scheme_ok || base.value.chars().any(char::is_whitespace) {
                self.problem_in(&base, None, "`base_url` must be an http:// or https:// URL");
                return None;
            }
            let mut headers = BTreeMap::new();
            let mut ok = true;
            if let Some(node) = obj.get("headers") {
                match self.obj(node, "`headers`", None) {
                    Some(map) => {
                        for (header, at, value) in &map.entries {
                            let valid = !header.is_empty()
                                && header.bytes().all(|b| {
                                    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
                                });
                            if !valid {
                                self.problem(*at, format!("`{header}` is not a header name"));
                                ok = false;
                                continue;
                            }
                            match self.text(value, &format!("header `{header}`")) {
                                Some(v) if v.value.contains(['\r', '\n']) => {
                                    self.problem(
                                        v.at,
                                        format!("header `{header}` holds a line break"),
                                    );
                                    ok = false;
                                }
                                Some(v) => {
                                    headers.insert(header.clone(), v.value);
                                }
                                None => ok = false,
                            }
                        }
                    }
                    None => ok = false,
                }
            }
            ok.then_some(Target::Service {
                base_url: base.value,
                headers,
            })
        }
    }

    // ---- Entities ------------------------------------------------------------------------

    fn entity(&mut self, name: &str, node: &Node<'_>, driver: DriverKind) -> Option<Entity> {
        const SQL_KEYS: &[&str] = &[
            "table",
            "key",
            "fields",
            "error_field",
            "operations",
            "ttl_ms",
            "level1",
        ];
        const SERVICE_KEYS: &[&str] = &[
            "key",
            "fields",
            "error_field",
            "operations",
            "ttl_ms",
            "level1",
        ];
        let what = format!("entity `{name}`");
        let keys = if driver.is_sql() {
            SQL_KEYS
        } else {
            if let YamlData::Mapping(m) = &node.data {
                for (key, _) in m {
                    if matches!(&key.data, YamlData::Value(Scalar::String(s)) if s == "table") {
                        self.problem(
                            key.span.start,
                            format!("`table` is for SQL connectors; a {} entity is reached through its operations", driver.as_str()),
                        );
                    }
                }
            }
            SERVICE_KEYS
        };
        let allowed: Vec<&str> = if driver.is_sql() {
            keys.to_vec()
        } else {
            // `table` was reported above with a better message than "unknown key".
            keys.iter().copied().chain(["table"]).collect()
        };
        let obj = self.obj(node, &what, Some(&allowed))?;
        let mut ok = true;

        let table = if driver.is_sql() {
            match obj.get("table") {
                Some(n) => match self.text(n, "`table`") {
                    Some(t)
                        if self.name(
                            &t,
                            "table name",
                            is_table,
                            "use `name` or `schema.name` (letters, digits, `_`)",
                        ) =>
                    {
                        Some(t.value)
                    }
                    _ => {
                        ok = false;
                        None
                    }
                },
                None => Some(name.to_owned()),
            }
        } else {
            None
        };

        let key = match obj.get("key") {
            Some(n) => match self.text(n, "`key`") {
                Some(t) => Some(t),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };

        let fields = match obj.get("fields") {
            Some(n) => self.fields(n, driver),
            None => {
                self.problem(obj.at, format!("missing key `fields` in {what}"));
                None
            }
        };
        // Without fields the checks below would only repeat that problem.
        let (fields, names, fields_ok) = fields?;
        ok &= fields_ok;
        let field_names: Vec<&str> = names.iter().map(String::as_str).collect();

        let key_name = key.as_ref().map_or("id", |k| k.value.as_str()).to_owned();
        if !field_names.contains(&key_name.as_str()) {
            let message = format!(
                "the key `{key_name}` is not a field of `{name}` (fields: {}){}",
                field_names.join(", "),
                if key.is_none() { "; set `key`" } else { "" }
            );
            match &key {
                Some(k) => self.problem_in(k, None, message),
                None => self.problem(obj.at, message),
            }
            ok = false;
        }

        let error_field = match obj.get("error_field") {
            Some(n) => match self.text(n, "`error_field`") {
                Some(t) if field_names.contains(&t.value.as_str()) => Some(t.value),
                Some(t) => {
                    let message = format!("`error_field` `{}` is not a field of `{name}`", t.value);
                    self.problem_in(&t, None, message);
                    ok = false;
                    None
                }
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };

        let ttl = match obj.get("ttl_ms") {
            Some(n) => match self.uint(n, "`ttl_ms`", 0, 86_400_000) {
                Some(0) => None,
                Some(ms) => Some(Duration::from_millis(ms)),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let level1 = match obj.get("level1") {
            Some(n) => match self.boolean(n, "`level1`") {
                Some(level1) => level1,
                None => {
                    ok = false;
                    self.level1
                }
            },
            None => self.level1,
        };

        let operations = match obj.get("operations") {
            Some(n) => self.operations(n, driver, &key_name, &field_names),
            None if driver.is_sql() => Some(BTreeMap::from([("get".to_owned(), Operation::Get)])),
            None => {
                self.problem(
                    obj.at,
                    format!(
                        "missing key `operations` in {what}: a {} entity needs its requests",
                        driver.as_str()
                    ),
                );
                None
            }
        };

        let operations = operations?;
        ok.then(|| Entity {
            name: name.to_owned(),
            table,
            key: key_name,
            fields,
            error_field,
            operations,
            ttl,
            level1,
        })
    }

    /// The fields that are right, the names of all (for checks that refer to them), and
    /// whether all are right.
    fn fields(
        &mut self,
        node: &Node<'_>,
        driver: DriverKind,
    ) -> Option<(Vec<Field>, Vec<String>, bool)> {
        let map = self.obj(node, "`fields`", None)?;
        if map.entries.is_empty() {
            self.problem(
                map.at,
                "`fields` is empty: an entity needs at least one field",
            );
            return None;
        }
        let long_key = if driver.is_sql() { "expr" } else { "path" };
        let mut fields = Vec::new();
        let names = map
            .entries
            .iter()
            .map(|(name, _, _)| name.clone())
            .collect();
        let mut ok = true;
        for (name, at, value) in &map.entries {
            if !is_identifier(name) {
                self.problem(
                    *at,
                    format!("field name `{name}` is not valid: use letters, digits and `_`, not starting with a digit"),
                );
                ok = false;
                continue;
            }
            let mut hidden = false;
            let (source, ty) = if let YamlData::Mapping(_) = &value.data {
                let Some(long) = self.obj(
                    value,
                    &format!("field `{name}`"),
                    Some(&[long_key, "type", "hidden"]),
                ) else {
                    ok = false;
                    continue;
                };
                hidden = match long.get("hidden") {
                    Some(n) => match self.boolean(n, "`hidden`") {
                        Some(h) => h,
                        None => {
                            ok = false;
                            continue;
                        }
                    },
                    None => false,
                };
                let ty = match long.get("type") {
                    Some(t) => self.field_type(t),
                    None => Some(FieldType::Auto),
                };
                let source = match long.get(long_key) {
                    Some(s) => self.text(s, &format!("`{long_key}`")),
                    None => {
                        self.problem(
                            long.at,
                            format!("missing key `{long_key}` in field `{name}`"),
                        );
                        None
                    }
                };
                match (source, ty) {
                    (Some(s), Some(t)) => (s, t),
                    _ => {
                        ok = false;
                        continue;
                    }
                }
            } else {
                match self.text(value, &format!("field `{name}`")) {
                    Some(s) => (s, FieldType::Auto),
                    None => {
                        ok = false;
                        continue;
                    }
                }
            };
            match self.source(&source, driver, name) {
                Some(source) => fields.push(Field {
                    name: name.clone(),
                    source,
                    ty,
                    hidden,
                }),
                None => ok = false,
            }
        }
        Some((fields, names, ok))
    }

    fn field_type(&mut self, node: &Node<'_>) -> Option<FieldType> {
        const TYPES: &[&str] = &["auto", "text", "number", "bool", "json"];
        let t = self.text(node, "`type`")?;
        match t.value.as_str() {
            "auto" => Some(FieldType::Auto),
            "text" => Some(FieldType::Text),
            "number" => Some(FieldType::Number),
            "bool" => Some(FieldType::Bool),
            "json" => Some(FieldType::Json),
            other => {
                let hint = did_you_mean(other, TYPES)
                    .map(|d| format!(" (did you mean `{d}`?)"))
                    .unwrap_or_default();
                let message = format!("unknown type `{other}`{hint}; types: {}", TYPES.join(", "));
                self.problem_in(&t, None, message);
                None
            }
        }
    }

    fn source(&mut self, text: &Text, driver: DriverKind, field: &str) -> Option<FieldSource> {
        match driver {
            DriverKind::MySql | DriverKind::Postgres | DriverKind::Sqlite => {
                match sqlexpr::check(&text.value, driver) {
                    Ok(expr) => Some(FieldSource::Sql(expr)),
                    Err(e) => {
                        self.expr_problem(text, &e, &format!("field `{field}`"));
                        None
                    }
                }
            }
            DriverKind::Http => match json_pointer_problem(&text.value) {
                None => Some(FieldSource::Json(text.value.clone())),
                Some((offset, message)) => {
                    self.problem_in(text, Some(offset), format!("field `{field}`: {message}"));
                    None
                }
            },
            DriverKind::Soap => match xml_path_problem(&text.value) {
                None => Some(FieldSource::Xml(text.value.clone())),
                Some(message) => {
                    self.problem_in(text, None, format!("field `{field}`: {message}"));
                    None
                }
            },
        }
    }

    fn expr_problem(&mut self, text: &Text, error: &sqlexpr::ExprError, what: &str) {
        if text.substituted {
            // The parser's message may quote the expression, which now holds a variable's value.
            self.problem_in(
                text,
                None,
                format!("{what}: not an allowed SQL expression (details hidden: it uses an environment variable)"),
            );
        } else {
            self.problem_in(text, error.offset, format!("{what}: {}", error.message));
        }
    }

    // ---- Operations ----------------------------------------------------------------------

    fn operations(
        &mut self,
        node: &Node<'_>,
        driver: DriverKind,
        key: &str,
        fields: &[&str],
    ) -> Option<BTreeMap<String, Operation>> {
        let map = self.obj(node, "`operations`", None)?;
        let mut operations = BTreeMap::new();
        let mut ok = true;
        for (name, at, value) in &map.entries {
            if !is_name(name) {
                self.problem(
                    *at,
                    format!("operation name `{name}` is not valid: use letters, digits, `_`, `-` and `.`"),
                );
                ok = false;
                continue;
            }
            let operation = if driver.is_sql() {
                self.sql_operation(name, value, driver, fields)
            } else {
                self.request(name, value, driver, key)
            };
            match operation {
                Some(op) => {
                    operations.insert(name.clone(), op);
                }
                None => ok = false,
            }
        }
        if operations.is_empty() && ok {
            self.problem(
                map.at,
                "`operations` is empty: an entity needs at least one",
            );
            return None;
        }
        ok.then_some(operations)
    }

    fn sql_operation(
        &mut self,
        name: &str,
        node: &Node<'_>,
        driver: DriverKind,
        fields: &[&str],
    ) -> Option<Operation> {
        const KEYS: &[&str] = &[
            "kind",
            "params",
            "order_by",
            "limit",
            "max_page_size",
            "distinct_by",
        ];
        let what = format!("operation `{name}`");
        let obj = self.obj(node, &what, Some(KEYS))?;
        let kind = match obj.get("kind") {
            Some(n) => {
                let t = self.text(n, "`kind`")?;
                match t.value.as_str() {
                    k @ ("get" | "search" | "list") => k.to_owned(),
                    other => {
                        let hint = did_you_mean(other, &["get", "search", "list"])
                            .map(|d| format!(" (did you mean `{d}`?)"))
                            .unwrap_or_default();
                        let message =
                            format!("unknown kind `{other}`{hint}; kinds: get, search, list");
                        self.problem_in(&t, None, message);
                        return None;
                    }
                }
            }
            None if matches!(name, "get" | "search" | "list") => name.to_owned(),
            None => {
                self.problem(
                    obj.at,
                    format!("missing key `kind` in {what} (get, search or list)"),
                );
                return None;
            }
        };
        let refuse = |cx: &mut Self, keys: &[&str], why: &str| {
            let mut clean = true;
            for key in keys {
                if let Some(at) = obj.key_at(key) {
                    cx.problem(at, format!("a {kind} operation takes no `{key}`{why}"));
                    clean = false;
                }
            }
            clean
        };
        match kind.as_str() {
            "get" => refuse(
                self,
                &[
                    "params",
                    "order_by",
                    "limit",
                    "max_page_size",
                    "distinct_by",
                ],
                ": it looks up one row by the key",
            )
            .then_some(Operation::Get),
            "search" => {
                let clean = refuse(self, &["max_page_size"], " (that is for `list`)");
                let filters = self.filters(&obj, fields, false);
                let order_by = self.order_by(&obj, driver);
                let limit = self.number(&obj, "limit", 1, 1_000, 20);
                let distinct_by = match obj.get("distinct_by") {
                    None => Some(None),
                    Some(node) => self.text(node, "`distinct_by`").and_then(|text| {
                        match sqlexpr::check(&text.value, driver) {
                            Ok(expr) => Some(Some(expr)),
                            Err(e) => {
                                self.expr_problem(&text, &e, "`distinct_by`");
                                None
                            }
                        }
                    }),
                };
                let (filters, order_by, distinct_by) = (filters?, order_by?, distinct_by?);
                clean.then(|| Operation::Search {
                    filters,
                    order_by,
                    limit: u32::try_from(limit).unwrap_or(20),
                    distinct_by,
                })
            }
            _ => {
                let clean = refuse(
                    self,
                    &["limit", "distinct_by"],
                    " (a list pages with `max_page_size`)",
                );
                let filters = self.filters(&obj, fields, true);
                let order_by = self.order_by(&obj, driver);
                let max = self.number(&obj, "max_page_size", 1, 1_000, 100);
                let (filters, order_by) = (filters?, order_by?);
                clean.then(|| Operation::List {
                    filters,
                    order_by,
                    max_page_size: u32::try_from(max).unwrap_or(100),
                })
            }
        }
    }

    fn filters(
        &mut self,
        obj: &Obj<'_, '_>,
        fields: &[&str],
        paged: bool,
    ) -> Option<BTreeMap<String, Filter>> {
        let mut filters = BTreeMap::new();
        let Some(node) = obj.get("params") else {
            return Some(filters);
        };
        let map = self.obj(node, "`params`", None)?;
        let mut ok = true;
        for (param, at, value) in &map.entries {
            if !is_identifier(param) {
                self.problem(
                    *at,
                    format!("parameter name `{param}` is not valid: use letters, digits and `_`"),
                );
                ok = false;
                continue;
            }
            if paged && matches!(param.as_str(), "page" | "page_size") {
                self.problem(*at, format!("`{param}` is the list's own parameter"));
                ok = false;
                continue;
            }
            let Some(spec) = self.obj(
                value,
                &format!("parameter `{param}`"),
                Some(&["field", "op", "required", "default"]),
            ) else {
                ok = false;
                continue;
            };
            let field = match spec.get("field") {
                Some(n) => self.text(n, "`field`").map(|t| (t.value.clone(), Some(t))),
                None => Some((param.clone(), None)),
            };
            let Some((field, field_text)) = field else {
                ok = false;
                continue;
            };
            if !fields.contains(&field.as_str()) {
                let names = fields;
                let hint = did_you_mean(&field, names)
                    .map(|d| format!(" (did you mean `{d}`?)"))
                    .unwrap_or_default();
                let message = format!(
                    "parameter `{param}` filters on `{field}`, which is not a field{hint}; fields: {}",
                    names.join(", ")
                );
                match &field_text {
                    Some(t) => self.problem_in(t, None, message),
                    None => self.problem(*at, format!("{message} (set `field`)")),
                }
                ok = false;
            }
            let op = match spec.get("op") {
                Some(n) => self.text(n, "`op`").and_then(|t| {
                    let op = filter_op(&t.value);
                    if op.is_none() {
                        let message = format!(
                            "unknown op `{}`; ops: = != < <= > >= contains (or eq ne lt le gt ge; quote the symbols in YAML)",
                            t.value
                        );
                        self.problem_in(&t, None, message);
                    }
                    op
                }),
                None => Some(FilterOp::Eq),
            };
            let required = match spec.get("required") {
                Some(n) => self.boolean(n, "`required`"),
                None => Some(false),
            };
            let default = match spec.get("default") {
                None => Some(None),
                Some(n) => match &n.data {
                    YamlData::Value(Scalar::String(s)) => Some(Some(Value::String(s.to_string()))),
                    YamlData::Value(Scalar::Integer(i)) => Some(Some(Value::Number(*i as f64))),
                    YamlData::Value(Scalar::FloatingPoint(f)) => Some(Some(Value::Number(**f))),
                    YamlData::Value(Scalar::Boolean(b)) => Some(Some(Value::Bool(*b))),
                    _ => {
                        self.problem(
                            n.span.start,
                            format!(
                                "`default` must be a string, number or true/false, not {}",
                                kind(n)
                            ),
                        );
                        None
                    }
                },
            };
            match (op, required, default) {
                (Some(op), Some(required), Some(default)) => {
                    filters.insert(
                        param.clone(),
                        Filter {
                            field,
                            op,
                            required,
                            default,
                        },
                    );
                }
                _ => ok = false,
            }
        }
        ok.then_some(filters)
    }

    fn order_by(&mut self, obj: &Obj<'_, '_>, driver: DriverKind) -> Option<Vec<(SqlExpr, bool)>> {
        let Some(node) = obj.get("order_by") else {
            return Some(Vec::new());
        };
        let items: Vec<&Node<'_>> = match &node.data {
            YamlData::Sequence(items) => items.iter().collect(),
            YamlData::Value(Scalar::String(_)) => vec![node],
            _ => {
                self.problem(
                    node.span.start,
                    format!("`order_by` must be a list of strings, not {}", kind(node)),
                );
                return None;
            }
        };
        let mut order = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(text) = self.text(item, "an `order_by` item") else {
                ok = false;
                continue;
            };
            match sqlexpr::check_order_by(&text.value, driver) {
                Ok(o) => order.push(o),
                Err(e) => {
                    self.expr_problem(&text, &e, "`order_by`");
                    ok = false;
                }
            }
        }
        ok.then_some(order)
    }

    fn request(
        &mut self,
        name: &str,
        node: &Node<'_>,
        driver: DriverKind,
        key: &str,
    ) -> Option<Operation> {
        const HTTP_KEYS: &[&str] = &["method", "path", "body", "rows", "read"];
        const SOAP_KEYS: &[&str] = &["method", "path", "action", "body", "rows", "read"];
        let soap = driver == DriverKind::Soap;
        let what = format!("operation `{name}`");
        let obj = self.obj(node, &what, Some(if soap { SOAP_KEYS } else { HTTP_KEYS }))?;
        let mut ok = true;

        let method = match obj.get("method") {
            Some(n) => match self.text(n, "`method`") {
                Some(t) => {
                    let method = t.value.to_ascii_uppercase();
                    let allowed: &[&str] = if soap {
                        &["POST"]
                    } else {
                        &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
                    };
                    if !allowed.contains(&method.as_str()) {
                        let message = if soap {
                            "a SOAP request is always POST".to_owned()
                        } else {
                            format!(
                                "unknown method `{}`; methods: {}",
                                t.value,
                                allowed.join(", ")
                            )
                        };
                        self.problem_in(&t, None, message);
                        ok = false;
                    }
                    method
                }
                None => {
                    ok = false;
                    String::new()
                }
            },
            None if soap => "POST".to_owned(),
            None => "GET".to_owned(),
        };

        let mut params: Vec<String> = Vec::new();
        let path = match obj.get("path") {
            Some(n) => match self.text(n, "`path`") {
                Some(t) => {
                    if let Some((offset, message)) = path_problem(&t.value) {
                        self.problem_in(&t, Some(offset), format!("`path`: {message}"));
                        ok = false;
                    }
                    collect_holes(&t.value, &mut params);
                    t.value
                }
                None => {
                    ok = false;
                    String::new()
                }
            },
            None => String::new(),
        };

        let body = match obj.get("body") {
            Some(n) => match self.text(n, "`body`") {
                Some(t) => {
                    if !soap && matches!(method.as_str(), "GET" | "HEAD") {
                        self.problem_in(&t, None, format!("a {method} request has no body"));
                        ok = false;
                    } else if !soap {
                        if let Err(e) = serde_json::from_str::<serde_json::Value>(&t.value) {
                            let offset = line_column_offset(&t.value, e.line(), e.column());
                            let message = if t.substituted {
                                "`body` is not JSON".to_owned()
                            } else {
                                format!("`body` is not JSON: {e}")
                            };
                            self.problem_in(&t, offset, message);
                            ok = false;
                        }
                    } else if !t.value.trim_start().starts_with('<') {
                        self.problem_in(&t, None, "a SOAP `body` is the body element's XML");
                        ok = false;
                    }
                    collect_holes(&t.value, &mut params);
                    Some(t.value)
                }
                None => {
                    ok = false;
                    None
                }
            },
            None if soap => {
                self.problem(
                    obj.at,
                    format!("missing key `body` in {what} (the SOAP body element)"),
                );
                ok = false;
                None
            }
            None => None,
        };

        let action = match obj.get("action") {
            Some(n) => match self.text(n, "`action`") {
                Some(t) if t.value.contains(['\r', '\n', '"']) => {
                    self.problem_in(&t, None, "`action` holds a line break or `\"`");
                    ok = false;
                    None
                }
                Some(t) => Some(t.value),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };

        let rows = match obj.get("rows") {
            Some(n) => match self.text(n, "`rows`") {
                Some(t) => {
                    let problem = if soap {
                        xml_path_problem(&t.value).map(|m| (0, m))
                    } else {
                        json_pointer_problem(&t.value)
                    };
                    if let Some((offset, message)) = problem {
                        self.problem_in(&t, Some(offset), format!("`rows`: {message}"));
                        ok = false;
                    }
                    t.value
                }
                None => {
                    ok = false;
                    String::new()
                }
            },
            None if soap => {
                self.problem(
                    obj.at,
                    format!("missing key `rows` in {what} (the element path down to the rows, like `GetOrderResponse/Order`)"),
                );
                ok = false;
                String::new()
            }
            None => String::new(),
        };

        let read = match obj.get("read") {
            Some(n) => self.boolean(n, "`read`").unwrap_or_else(|| {
                ok = false;
                false
            }),
            None => {
                matches!(method.as_str(), "GET" | "HEAD")
                    || matches!(name, "get" | "search" | "list")
            }
        };

        if name == "get" && params != [key] {
            let message = format!(
                "a `get` takes exactly the key: its path or body must use `{{{key}}}` and no other hole (it uses: {})",
                if params.is_empty() {
                    "none".to_owned()
                } else {
                    params
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            self.problem(obj.at, message);
            ok = false;
        }

        ok.then_some(Operation::Request(RequestTemplate {
            method,
            path,
            body,
            action,
            rows,
            read,
            params,
        }))
    }
}

// ---- Small checks ----------------------------------------------------------------------------

fn kind(node: &Node<'_>) -> &'static str {
    match &node.data {
        YamlData::Value(Scalar::String(_)) | YamlData::Representation(..) => "a string",
        YamlData::Value(Scalar::Integer(_) | Scalar::FloatingPoint(_)) => "a number",
        YamlData::Value(Scalar::Boolean(_)) => "true/false",
        YamlData::Value(Scalar::Null) => "nothing (null)",
        YamlData::Sequence(_) => "a list",
        YamlData::Mapping(_) => "a mapping",
        YamlData::Tagged(..) => "a tagged value",
        YamlData::Alias(_) | YamlData::BadValue => "an invalid value",
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: fields and parameters (they become SQL aliases and `{holes}`).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Connector, entity and operation names: letters, digits, `_`, `-` and `.`.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `table` or `schema.table`, each part an identifier (the driver quotes them).
fn is_table(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| is_identifier(p))
}

fn filter_op(op: &str) -> Option<FilterOp> {
    Some(match op {
        "=" | "==" | "eq" => FilterOp::Eq,
        "!=" | "<>" | "ne" => FilterOp::Ne,
        "<" | "lt" => FilterOp::Lt,
        "<=" | "le" => FilterOp::Le,
        ">" | "gt" => FilterOp::Gt,
        ">=" | "ge" => FilterOp::Ge,
        "contains" => FilterOp::Contains,
        _ => return None,
    })
}

/// A JSON pointer (RFC 6901) is empty or starts with `/`, and `~` only escapes `0` or `1`.
fn json_pointer_problem(pointer: &str) -> Option<(usize, String)> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Some((
            0,
            "a JSON pointer is \"\" (the whole item) or starts with `/` (`/profile/name`)"
                .to_owned(),
        ));
    }
    let chars: Vec<char> = pointer.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '~' && !matches!(chars.get(i + 1), Some('0' | '1')) {
            return Some((
                i,
                "in a JSON pointer `~` must be followed by 0 or 1".to_owned(),
            ));
        }
    }
    None
}

/// A SOAP path: element local names separated by `/`.
fn xml_path_problem(path: &str) -> Option<String> {
    let valid = !path.is_empty()
        && path.split('/').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        });
    (!valid).then(|| {
        "an element path is local element names separated by `/` (`Address/City`)".to_owned()
    })
}

/// A request path: no white space, and every `{` starts a `{name}` hole.
fn path_problem(path: &str) -> Option<(usize, String)> {
    for (i, (byte_index, c)) in path.char_indices().enumerate() {
        if c.is_whitespace() {
            return Some((
                i,
                "white space in a path must be percent-encoded".to_owned(),
            ));
        }
        if c == '{' {
            let rest = &path[byte_index + 1..];
            let hole = rest
                .split_once('}')
                .is_some_and(|(name, _)| is_identifier(name));
            if !hole {
                return Some((i, "`{` must start a `{name}` hole".to_owned()));
            }
        }
        if c == '}'
            && !path[..byte_index]
                .rsplit_once('{')
                .is_some_and(|(_, name)| is_identifier(name))
        {
            return Some((i, "`}` must end a `{name}` hole".to_owned()));
        }
    }
    None
}

/// Appends the `{name}` holes of `text` to `params`, each once, in order of appearance.
fn collect_holes(text: &str, params: &mut Vec<String>) {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some((name, _)) = rest.split_once('}')
            && is_identifier(name)
            && !params.iter().any(|p| p == name)
        {
            params.push(name.to_owned());
        }
    }
}

/// The character offset of a 1-based line and column in `text`.
fn line_column_offset(text: &str, line: usize, column: usize) -> Option<usize> {
    let mut offset = 0;
    for (index, content) in text.split('\n').enumerate() {
        if index + 1 == line {
            return Some(offset + column.saturating_sub(1).min(content.chars().count()));
        }
        offset += content.chars().count() + 1;
    }
    None
}

/// The closest of `candidates` to a misspelt `word`, if close enough to be a likely typo.
fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance counting a swap of neighbours as one edit (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 3 {
        return a.len().abs_diff(b.len());
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::{did_you_mean, distance, path_problem};

    #[test]
    fn suggestions() {
        assert_eq!(distance("tabel", "table"), 1);
        assert_eq!(did_you_mean("tabel", &["table", "key"]), Some("table"));
        assert_eq!(did_you_mean("fields", &["table", "key"]), None);
        assert_eq!(
            did_you_mean("dta_map", &["data_map", "dsn"]),
            Some("data_map")
        );
    }

    #[test]
    fn paths() {
        assert_eq!(path_problem("customers/{id}"), None);
        assert!(path_problem("customers/{id").is_some());
        assert!(path_problem("customers/{ id}").is_some());
        assert!(path_problem("a}b").is_some());
        assert!(path_problem("a b").is_some());
    }
}
