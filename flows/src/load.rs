//! Reading flow documents: JSON syntax, the schema version check, migration of older
//! versions, and shape errors that say where in the file the problem is.

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::model::{Flow, SCHEMA_VERSION};

/// Why a document could not be read as a flow. Every variant says where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("not valid JSON (line {line}, column {column}): {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "the document has no `schema_version`; every flow file starts with `\"schema_version\": {SCHEMA_VERSION}`"
    )]
    MissingVersion,
    #[error(
        "this flow was written by a newer kefu (schema_version {found}); this kefu reads versions 1 to {SCHEMA_VERSION}. Upgrade kefu to open it"
    )]
    FutureVersion { found: u64 },
    #[error("`schema_version` must be a whole number from 1 to {SCHEMA_VERSION}, found {found}")]
    BadVersion { found: String },
    #[error("at `{path}`{}: {message}", location(*line, *column))]
    Shape {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("cannot migrate from schema_version {from}: at `{path}`: {message}")]
    Migration {
        from: u64,
        path: String,
        message: String,
    },
}

fn location(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" (line {line}, column {column})")
    }
}

/// Reads a flow from JSON text, migrating older schema versions to the current one.
pub fn from_json(text: &str) -> Result<Flow, LoadError> {
    #[derive(Deserialize)]
    struct Probe {
        schema_version: Option<Json>,
    }
    let probe: Probe = serde_json::from_str(text).map_err(|e| syntax_error(&e))?;
    let version = match probe.schema_version {
        None => return Err(LoadError::MissingVersion),
        Some(Json::Number(n)) => match n.as_u64() {
            Some(v) if v >= 1 => v,
            _ => {
                return Err(LoadError::BadVersion {
                    found: n.to_string(),
                });
            }
        },
        Some(other) => {
            return Err(LoadError::BadVersion {
                found: other.to_string(),
            });
        }
    };
    if version > u64::from(SCHEMA_VERSION) {
        return Err(LoadError::FutureVersion { found: version });
    }
    if version == u64::from(SCHEMA_VERSION) {
        // Deserializing from the text (not from a `Json` tree) keeps line and column numbers.
        let mut de = serde_json::Deserializer::from_str(text);
        return serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            LoadError::Shape {
                path,
                line: inner.line(),
                column: inner.column(),
                message: strip_location(&inner),
            }
        });
    }
    let json: Json = serde_json::from_str(text).map_err(|e| syntax_error(&e))?;
    let migrated = migrate(json, version)?;
    serde_path_to_error::deserialize(migrated).map_err(|e| {
        let path = e.path().to_string();
        LoadError::Shape {
            path,
            line: 0,
            column: 0,
            message: strip_location(e.inner()),
        }
    })
}

/// Writes a flow as pretty JSON, the form stored in files and sent to the designer.
pub fn to_json(flow: &Flow) -> String {
    // Serializing plain data types into a string cannot fail.
    serde_json::to_string_pretty(flow).unwrap_or_default()
}

fn syntax_error(e: &serde_json::Error) -> LoadError {
    LoadError::Syntax {
        line: e.line(),
        column: e.column(),
        message: strip_location(e),
    }
}

/// serde_json appends " at line L column C" to its messages; we report the location ourselves.
fn strip_location(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    }
}

/// Brings an older document up to the current schema, one version at a time.
fn migrate(mut json: Json, from: u64) -> Result<Json, LoadError> {
    let mut version = from;
    while version < u64::from(SCHEMA_VERSION) {
        json = match version {
            1 => v1_to_v2(json)?,
            _ => {
                return Err(LoadError::BadVersion {
                    found: version.to_string(),
                });
            }
        };
        version += 1;
    }
    Ok(json)
}

/// Version 1 kept each node's position inside the node, named the node kind `type`, and
/// wrote edges as `{"source": "node.port", "target": "node"}`. Version 2 moves positions
/// into `layout.nodes` (so moving a box does not change the logic), renames `type` to
/// `kind` and splits edges into `from`/`port`/`to`.
fn v1_to_v2(json: Json) -> Result<Json, LoadError> {
    let err = |path: &str, message: &str| LoadError::Migration {
        from: 1,
        path: path.to_owned(),
        message: message.to_owned(),
    };
    let Json::Object(mut doc) = json else {
        return Err(err("", "a flow must be a JSON object"));
    };
    let mut positions = Map::new();
    if let Some(Json::Array(nodes)) = doc.get_mut("nodes") {
        for (i, node) in nodes.iter_mut().enumerate() {
            let Json::Object(node) = node else {
                return Err(err(&format!("nodes[{i}]"), "a node must be a JSON object"));
            };
            if let Some(kind) = node.remove("type") {
                node.insert("kind".to_owned(), kind);
            }
            if let Some(position) = node.remove("position") {
                let id = node
                    .get("id")
                    .and_then(Json::as_str)
                    .ok_or_else(|| err(&format!("nodes[{i}].id"), "a node needs a string id"))?;
                positions.insert(id.to_owned(), position);
            }
        }
    }
    if let Some(Json::Array(edges)) = doc.get_mut("edges") {
        for (i, edge) in edges.iter_mut().enumerate() {
            let path = format!("edges[{i}]");
            let source = edge.get("source").and_then(Json::as_str).ok_or_else(|| {
                err(
                    &format!("{path}.source"),
                    "an edge needs a `source` like \"node.port\"",
                )
            })?;
            let (from, port) = source.rsplit_once('.').ok_or_else(|| {
                err(
                    &format!("{path}.source"),
                    "expected \"node.port\", found no `.`",
                )
            })?;
            let to = edge
                .get("target")
                .and_then(Json::as_str)
                .ok_or_else(|| err(&format!("{path}.target"), "an edge needs a string `target`"))?;
            let mut new = Map::new();
            new.insert("from".to_owned(), Json::String(from.to_owned()));
            new.insert("port".to_owned(), Json::String(port.to_owned()));
            new.insert("to".to_owned(), Json::String(to.to_owned()));
            *edge = Json::Object(new);
        }
    }
    let mut layout = Map::new();
    layout.insert("nodes".to_owned(), Json::Object(positions));
    doc.insert("layout".to_owned(), Json::Object(layout));
    doc.insert("schema_version".to_owned(), Json::from(2));
    Ok(Json::Object(doc))
}
