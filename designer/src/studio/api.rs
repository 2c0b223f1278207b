//! The designer's calls to the flow API (docs/flow-api.md), on top of the console's `fetch`
//! helpers. Documents travel as JSON values and are read with `flows::from_json`, so a
//! document of an older schema is migrated exactly as the server does it.

use serde::Deserialize;
use serde_json::{Value, json};

use flows::{Diagnostic, Flow};

use crate::console::api::{ApiError, decode, exchange, exchange_text, get, post, send};

/// A row of the flow list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FlowRow {
    pub id: String,
    #[serde(default)]
    pub name: Value,
    #[serde(default)]
    pub published_version: Option<u32>,
    #[serde(default)]
    pub draft_revision: i64,
    #[serde(default)]
    pub nodes: usize,
}

impl FlowRow {
    /// The name in `locale` (a name may be one string or one per language).
    pub fn title(&self, locale: &str) -> String {
        name_in(&self.name, locale).unwrap_or_else(|| self.id.clone())
    }
}

/// A `Text`-shaped JSON value in `locale`, falling back to any variant.
pub fn name_in(value: &Value, locale: &str) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(map) => map
            .get(locale)
            .or_else(|| map.values().next())
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// A flow document from the server, or why it does not load here.
fn document(value: &Value) -> Result<Flow, ApiError> {
    flows::from_json(&value.to_string()).map_err(|e| {
        ApiError::Network(format!(
            "the server sent a flow this designer cannot read: {e}"
        ))
    })
}

pub async fn flows() -> Result<Vec<FlowRow>, ApiError> {
    get("/api/designer/flows").await
}

#[derive(Deserialize)]
struct RawDraft {
    revision: i64,
    #[serde(default)]
    published_version: Option<u32>,
    document: Value,
}

/// A flow's draft: what the designer edits.
pub struct Draft {
    pub revision: i64,
    pub published_version: Option<u32>,
    pub flow: Flow,
}

pub async fn draft(id: &str) -> Result<Draft, ApiError> {
    let raw: RawDraft = get(&format!("/api/flows/{}/draft", encode(id))).await?;
    Ok(Draft {
        revision: raw.revision,
        published_version: raw.published_version,
        flow: document(&raw.document)?,
    })
}

#[derive(Deserialize)]
struct Created {
    revision: i64,
    document: Value,
}

/// Creates a flow that exists only as a draft (revision 1).
pub async fn create(id: &str, name: &str, csrf: &str) -> Result<Draft, ApiError> {
    let created: Created = post("/api/flows", &json!({ "id": id, "name": name }), csrf).await?;
    Ok(Draft {
        revision: created.revision,
        published_version: None,
        flow: document(&created.document)?,
    })
}

/// Why a draft was not saved.
pub enum SaveError {
    /// Someone saved after this draft was loaded: their revision and document.
    Stale {
        message: String,
        revision: i64,
        current: Box<Flow>,
    },
    Other(ApiError),
}

/// Saves `flow` as the draft after `revision`; the new revision on success.
pub async fn save(id: &str, revision: i64, flow: &Flow, csrf: &str) -> Result<i64, SaveError> {
    let body = json!({ "revision": revision, "document": flow });
    let url = format!("/api/flows/{}/draft", encode(id));
    let answer = exchange("PUT", &url, Some(&body), Some(csrf))
        .await
        .map_err(SaveError::Other)?;
    if answer.ok() {
        #[derive(Deserialize)]
        struct Saved {
            revision: i64,
        }
        let saved: Saved = decode(&answer.text).map_err(SaveError::Other)?;
        return Ok(saved.revision);
    }
    if answer.status == 409 {
        #[derive(Deserialize)]
        struct Stale {
            error: String,
            current_revision: i64,
            current: Value,
        }
        if let Ok(stale) = serde_json::from_str::<Stale>(&answer.text) {
            let current = document(&stale.current).map_err(SaveError::Other)?;
            return Err(SaveError::Stale {
                message: stale.error,
                revision: stale.current_revision,
                current: Box::new(current),
            });
        }
    }
    Err(SaveError::Other(answer.error()))
}

#[derive(Debug, Clone, Deserialize)]
pub struct Published {
    pub version: u32,
    pub revision: i64,
}

/// Why publishing was refused: the server's words and, for a flow with errors, its diagnostics.
pub struct PublishError {
    pub error: ApiError,
    pub diagnostics: Vec<Diagnostic>,
}

pub async fn publish(id: &str, note: &str, csrf: &str) -> Result<Published, PublishError> {
    let url = format!("/api/flows/{}/publish", encode(id));
    let body = json!({ "note": note });
    let answer = exchange("POST", &url, Some(&body), Some(csrf))
        .await
        .map_err(|error| PublishError {
            error,
            diagnostics: Vec::new(),
        })?;
    if answer.ok() {
        return decode(&answer.text).map_err(|error| PublishError {
            error,
            diagnostics: Vec::new(),
        });
    }
    #[derive(Deserialize, Default)]
    struct Refusal {
        #[serde(default)]
        diagnostics: Vec<Diagnostic>,
    }
    let refusal: Refusal = serde_json::from_str(&answer.text).unwrap_or_default();
    Err(PublishError {
        error: answer.error(),
        diagnostics: refusal.diagnostics,
    })
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VersionInfo {
    pub version: u32,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub published_at: Option<f64>,
    #[serde(default)]
    pub published_by: Option<String>,
}

pub async fn versions(id: &str) -> Result<Vec<VersionInfo>, ApiError> {
    get(&format!("/api/flows/{}/versions", encode(id))).await
}

/// The logic changes between two versions (`draft` or a number), as the server words them.
pub async fn diff(id: &str, from: &str, to: &str) -> Result<Value, ApiError> {
    get(&format!(
        "/api/flows/{}/diff?from={}&to={}",
        encode(id),
        encode(from),
        encode(to)
    ))
    .await
}

pub async fn rollback(id: &str, version: u32, csrf: &str) -> Result<Published, ApiError> {
    post(
        &format!("/api/flows/{}/rollback", encode(id)),
        &json!({ "version": version }),
        csrf,
    )
    .await
}

/// An imported file, migrated to the current schema; nothing is stored yet.
pub struct Imported {
    pub flow: Flow,
    pub exists: bool,
    pub migrated_from: Option<u32>,
}

pub async fn import(text: &str, csrf: &str) -> Result<Imported, ApiError> {
    #[derive(Deserialize)]
    struct Raw {
        document: Value,
        #[serde(default)]
        exists: bool,
        #[serde(default)]
        migrated_from: Option<u32>,
    }
    // The body is the file's text as it is: the server reports where a bad file is wrong.
    let answer = exchange_text("POST", "/api/flows/import", Some(text), Some(csrf)).await?;
    if !answer.ok() {
        return Err(answer.error());
    }
    let raw: Raw = decode(&answer.text)?;
    Ok(Imported {
        flow: document(&raw.document)?,
        exists: raw.exists,
        migrated_from: raw.migrated_from,
    })
}

/// The Rust module `codegen` makes of `flow`.
pub async fn rust(flow: &Flow, csrf: &str) -> Result<String, ApiError> {
    let body = serde_json::to_value(flow).unwrap_or(Value::Null);
    send("POST", "/api/flows/rust", Some(&body), Some(csrf)).await
}

/// Visits per node and per arrow of one published version.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Analytics {
    pub version: u32,
    pub conversations: u64,
    pub nodes: std::collections::BTreeMap<String, NodeStats>,
    pub edges: Vec<EdgeStats>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct NodeStats {
    pub visits: u64,
    pub drop_off: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct EdgeStats {
    pub from: String,
    pub port: String,
    pub to: String,
    pub visits: u64,
}

pub async fn analytics(id: &str, version: Option<u32>) -> Result<Analytics, ApiError> {
    let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
    get(&format!("/api/flows/{}/analytics{query}", encode(id))).await
}

/// A path segment, percent-encoded (flow ids are plain, but a typed URL may not be).
pub fn encode(segment: &str) -> String {
    js_sys::encode_uri_component(segment)
        .as_string()
        .unwrap_or_default()
}
