//! The console's HTTP API (docs/console-api.md): its JSON types and `fetch` calls.
//!
//! Types are lenient: missing fields take defaults and unknown message bodies become
//! `Body::Unknown`, so a newer server never breaks the console.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestCredentials, RequestInit, Response};

/// A field that may be `null`: it takes its default, like a missing one.
fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// An account or team id: the API's ids may be numbers or strings; they go back as they came.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Num(i64),
    Str(String),
}

impl Default for Id {
    fn default() -> Id {
        Id::Str(String::new())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Team {
    #[serde(deserialize_with = "or_default")]
    pub id: Id,
    #[serde(deserialize_with = "or_default")]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct User {
    #[serde(deserialize_with = "or_default")]
    pub id: Id,
    #[serde(deserialize_with = "or_default")]
    pub login: String,
    #[serde(deserialize_with = "or_default")]
    pub name: String,
    #[serde(deserialize_with = "or_default")]
    pub role: String,
    pub team: Team,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

/// The answer to login and `me`.
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Assignee {
    #[serde(deserialize_with = "or_default")]
    pub id: Id,
    #[serde(deserialize_with = "or_default")]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Last {
    #[serde(deserialize_with = "or_default")]
    pub sender: String,
    pub text: Option<String>,
    #[serde(deserialize_with = "or_default")]
    pub at: f64,
}

/// A conversation as the lists show it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Summary {
    #[serde(deserialize_with = "or_default")]
    pub id: String,
    #[serde(deserialize_with = "or_default")]
    pub flow: String,
    #[serde(deserialize_with = "or_default")]
    pub version: u64,
    #[serde(deserialize_with = "or_default")]
    pub owner: String,
    #[serde(deserialize_with = "or_default")]
    pub status: String,
    pub queue: Option<String>,
    pub team: Value,
    #[serde(deserialize_with = "or_default")]
    pub priority: String,
    pub reason: Option<String>,
    pub assignee: Option<Assignee>,
    pub handed_off_at: Option<f64>,
    #[serde(deserialize_with = "or_default")]
    pub last_seq: u64,
    #[serde(deserialize_with = "or_default")]
    pub unread: u64,
    pub last: Option<Last>,
}

impl Summary {
    pub fn is_queued(&self) -> bool {
        self.owner == "queue" && self.status != "ended"
    }
}

/// One stored message (a `message` frame of docs/protocol.md).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Message {
    #[serde(deserialize_with = "or_default")]
    pub conversation: String,
    #[serde(deserialize_with = "or_default")]
    pub seq: u64,
    #[serde(deserialize_with = "or_default")]
    pub sender: String,
    #[serde(deserialize_with = "or_default")]
    pub at: f64,
    pub client_id: Option<String>,
    #[serde(deserialize_with = "lenient_body")]
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    Text {
        text: String,
    },
    Choice {
        #[serde(default)]
        option: String,
        #[serde(default)]
        label: String,
    },
    Image {
        url: String,
        #[serde(default)]
        alt: String,
    },
    Products {
        cards: Vec<Card>,
    },
    Carousel {
        cards: Vec<Card>,
    },
    Ask {
        prompt: String,
        #[serde(default, deserialize_with = "lenient_expect")]
        expect: Expect,
    },
    Notice {
        #[serde(default)]
        code: String,
        #[serde(default)]
        text: String,
    },
    #[default]
    #[serde(other)]
    Unknown,
}

fn lenient_body<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Body, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(Body::deserialize(value).unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Expect {
    Choice {
        options: Vec<ChoiceOption>,
    },
    Input {
        #[serde(default)]
        input_type: String,
    },
    #[default]
    #[serde(other)]
    Unknown,
}

fn lenient_expect<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Expect, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(Expect::deserialize(value).unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct ChoiceOption {
    #[serde(deserialize_with = "or_default")]
    pub id: String,
    #[serde(deserialize_with = "or_default")]
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Card {
    #[serde(deserialize_with = "or_default")]
    pub title: String,
    pub subtitle: Option<String>,
    pub price: Option<f64>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Handoff {
    pub reason: Option<String>,
    pub summary: Option<String>,
    pub queue: Option<String>,
    pub team: Value,
    pub priority: Option<String>,
    pub node: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Context {
    pub path: Vec<String>,
    pub variables: Map<String, Value>,
    pub handoff: Option<Handoff>,
    /// The visitor's customer record from the configured connector, when the visitor said who
    /// they are.
    pub customer: Option<Customer>,
}

/// The customer panel: the record's fields in the connector's order, or why it is missing.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Customer {
    pub source: String,
    pub fields: Vec<(String, Value)>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Note {
    pub author: Value,
    #[serde(deserialize_with = "or_default")]
    pub text: String,
    #[serde(deserialize_with = "or_default")]
    pub at: f64,
}

/// `GET /api/console/conversations/{id}`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Detail {
    pub conversation: Summary,
    pub messages: Vec<Message>,
    pub context: Context,
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Canned {
    pub id: Value,
    #[serde(deserialize_with = "or_default")]
    pub title: String,
    #[serde(deserialize_with = "or_default")]
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Agent {
    #[serde(deserialize_with = "or_default")]
    pub id: Id,
    #[serde(deserialize_with = "or_default")]
    pub name: String,
    pub team: Value,
    #[serde(deserialize_with = "or_default")]
    pub online: bool,
    #[serde(deserialize_with = "or_default")]
    pub active: u64,
    #[serde(deserialize_with = "or_default")]
    pub capacity: u64,
}

/// A team reference as the API writes it: an object `{id, name}` or a bare id.
pub fn team_id_and_name(team: &Value) -> Option<(Id, String)> {
    match team {
        Value::Object(object) => {
            let id = Id::deserialize(object.get("id")?).ok()?;
            let name = object
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| id.to_string(), str::to_owned);
            Some((id, name))
        }
        Value::String(s) => Some((Id::Str(s.clone()), s.clone())),
        Value::Number(n) => n.as_i64().map(|n| (Id::Num(n), n.to_string())),
        _ => None,
    }
}

/// A JSON value for display: strings without quotes, `null` as nothing.
pub fn display_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(object) => match object.get("name") {
            Some(Value::String(name)) => name.clone(),
            _ => value.to_string(),
        },
        // Flow numbers are floats: 23.0 reads as 23.
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Fills `{{variable}}` (or `{{ a.b }}`) placeholders from the conversation's variables;
/// unknown ones stay as they are, so the agent sees what is missing.
pub fn fill_template(template: &str, variables: &Map<String, Value>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let name = rest[start + 2..start + len].trim();
        out.push_str(&rest[..start]);
        let mut parts = name.split('.');
        let first = parts.next().and_then(|part| variables.get(part));
        let value = parts.fold(first, |value, part| value.and_then(|v| v.get(part)));
        match value {
            Some(value) => out.push_str(&display_value(value)),
            None => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// A failed API call.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The request did not reach the server, or its answer could not be read.
    Network(String),
    /// The server answered with an error status.
    Status {
        status: u16,
        message: String,
        /// From `Retry-After`, in seconds (a 429).
        retry_after: Option<u64>,
    },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Network(_) => None,
            ApiError::Status { status, .. } => Some(*status),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Network(message) => write!(f, "network error: {message}"),
            ApiError::Status {
                status, message, ..
            } if message.is_empty() => {
                write!(f, "HTTP {status}")
            }
            ApiError::Status { message, .. } => f.write_str(message),
        }
    }
}

fn js_error(value: &JsValue) -> ApiError {
    ApiError::Network(value.as_string().unwrap_or_else(|| format!("{value:?}")))
}

/// A server's answer, whatever its status.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) text: String,
    /// From `Retry-After`, in seconds.
    retry_after: Option<u64>,
}

impl Answer {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error of a non-2xx answer: its body's `error`, if it has one.
    pub(crate) fn error(&self) -> ApiError {
        let message = serde_json::from_str::<Value>(&self.text)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        ApiError::Status {
            status: self.status,
            message,
            retry_after: self.retry_after,
        }
    }
}

/// One request and its answer, whatever its status.
pub(crate) async fn exchange(
    method: &str,
    url: &str,
    body: Option<&Value>,
    csrf: Option<&str>,
) -> Result<Answer, ApiError> {
    exchange_text(method, url, body.map(Value::to_string).as_deref(), csrf).await
}

/// One request with a JSON body given as text (a file's content sent as it is).
pub(crate) async fn exchange_text(
    method: &str,
    url: &str,
    body: Option<&str>,
    csrf: Option<&str>,
) -> Result<Answer, ApiError> {
    let window = web_sys::window().ok_or_else(|| ApiError::Network("no window".into()))?;
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(RequestCredentials::SameOrigin);
    let headers = Headers::new().map_err(|e| js_error(&e))?;
    headers
        .set("Accept", "application/json")
        .map_err(|e| js_error(&e))?;
    if let Some(body) = body {
        headers
            .set("Content-Type", "application/json")
            .map_err(|e| js_error(&e))?;
        init.set_body(&JsValue::from_str(body));
    }
    if let Some(csrf) = csrf {
        headers
            .set("X-CSRF-Token", csrf)
            .map_err(|e| js_error(&e))?;
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(url, &init).map_err(|e| js_error(&e))?;
    let response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|e| js_error(&e))?;
    let response: Response = response.dyn_into().map_err(|e| js_error(&e))?;
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .map_err(|e| js_error(&e))?
            .as_string()
            .unwrap_or_default(),
        Err(e) => return Err(js_error(&e)),
    };
    let retry_after = response
        .headers()
        .get("Retry-After")
        .ok()
        .flatten()
        .and_then(|s| s.trim().parse().ok());
    Ok(Answer {
        status: response.status(),
        text,
        retry_after,
    })
}

/// One request; `Ok` carries the body of a 2xx answer.
pub(crate) async fn send(
    method: &str,
    url: &str,
    body: Option<&Value>,
    csrf: Option<&str>,
) -> Result<String, ApiError> {
    let answer = exchange(method, url, body, csrf).await?;
    if answer.ok() {
        Ok(answer.text)
    } else {
        Err(answer.error())
    }
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|error| ApiError::Network(format!("bad answer: {error}")))
}

pub async fn get<T: for<'de> Deserialize<'de>>(url: &str) -> Result<T, ApiError> {
    decode(&send("GET", url, None, None).await?)
}

/// A POST with the CSRF header; the answer's body is decoded when `T` wants one.
pub async fn post<T: for<'de> Deserialize<'de>>(
    url: &str,
    body: &Value,
    csrf: &str,
) -> Result<T, ApiError> {
    let text = send("POST", url, Some(body), Some(csrf)).await?;
    decode(if text.trim().is_empty() {
        "null"
    } else {
        &text
    })
}

pub async fn login(login: &str, password: &str) -> Result<Session, ApiError> {
    let body = serde_json::json!({ "login": login, "password": password });
    decode(&send("POST", "/api/auth/login", Some(&body), None).await?)
}

pub async fn me() -> Result<Session, ApiError> {
    get("/api/auth/me").await
}

pub async fn logout(csrf: &str) -> Result<(), ApiError> {
    send("POST", "/api/auth/logout", None, Some(csrf))
        .await
        .map(drop)
}

pub async fn conversations(view: &str) -> Result<Vec<Summary>, ApiError> {
    get(&format!("/api/console/conversations?view={view}")).await
}

pub async fn detail(id: &str) -> Result<Detail, ApiError> {
    get(&format!("/api/console/conversations/{}", encode(id))).await
}

/// `POST /api/console/conversations/{id}/{action}` answered with a `Summary`.
pub async fn act(id: &str, action: &str, body: &Value, csrf: &str) -> Result<Summary, ApiError> {
    post(
        &format!("/api/console/conversations/{}/{action}", encode(id)),
        body,
        csrf,
    )
    .await
}

pub async fn add_note(id: &str, text: &str, csrf: &str) -> Result<(), ApiError> {
    let url = format!("/api/console/conversations/{}/notes", encode(id));
    post::<Value>(&url, &serde_json::json!({ "text": text }), csrf)
        .await
        .map(drop)
}

pub async fn canned() -> Result<Vec<Canned>, ApiError> {
    get("/api/console/canned").await
}

pub async fn agents() -> Result<Vec<Agent>, ApiError> {
    get("/api/console/agents").await
}

/// A parameter of a connector operation.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Param {
    #[serde(deserialize_with = "or_default")]
    pub name: String,
    #[serde(deserialize_with = "or_default")]
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Operation {
    #[serde(deserialize_with = "or_default")]
    pub name: String,
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Entity {
    #[serde(deserialize_with = "or_default")]
    pub name: String,
    #[serde(deserialize_with = "or_default")]
    pub key: String,
    pub operations: Vec<Operation>,
}

/// A connector as `GET /api/admin/connectors` reports it (its target's secrets are `***`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Connector {
    #[serde(deserialize_with = "or_default")]
    pub name: String,
    #[serde(deserialize_with = "or_default")]
    pub driver: String,
    #[serde(deserialize_with = "or_default")]
    pub target: String,
    #[serde(deserialize_with = "or_default")]
    pub healthy: bool,
    pub health_error: Option<String>,
    /// `closed`, `open` or `half-open`.
    pub breaker: Option<String>,
    #[serde(deserialize_with = "or_default")]
    pub calls: u64,
    #[serde(deserialize_with = "or_default")]
    pub errors: u64,
    #[serde(deserialize_with = "or_default")]
    pub retries: u64,
    #[serde(deserialize_with = "or_default")]
    pub rejected: u64,
    pub last_error: Option<String>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub entities: Vec<Entity>,
    /// Reads of its cached entities (those with a `ttl_ms`).
    pub cache: Vec<EntityCache>,
}

/// One cached entity's reads.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct EntityCache {
    #[serde(deserialize_with = "or_default")]
    pub entity: String,
    /// Reads answered without a load of their own.
    pub hit_ratio: Option<f64>,
    #[serde(deserialize_with = "or_default")]
    pub loads: u64,
    pub hot_keys: Vec<HotKey>,
}

/// A key read often lately.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct HotKey {
    #[serde(deserialize_with = "or_default")]
    pub label: String,
    #[serde(deserialize_with = "or_default")]
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
struct Connectors {
    connectors: Vec<Connector>,
}

pub async fn connectors() -> Result<Vec<Connector>, ApiError> {
    get::<Connectors>("/api/admin/connectors")
        .await
        .map(|c| c.connectors)
}

/// The answer to "test this entity": its rows, or the error of the call; how long it took.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct TestAnswer {
    pub rows: Vec<Value>,
    pub error: Option<String>,
    pub ms: Option<f64>,
}

/// `POST /api/admin/connectors/test`: a 400 (a mistake in the call) or 502 (the system
/// failed) is an answer too, with the error.
pub async fn test_connector(body: &Value, csrf: &str) -> Result<TestAnswer, ApiError> {
    let answer = exchange("POST", "/api/admin/connectors/test", Some(body), Some(csrf)).await?;
    match answer.status {
        200..300 => decode(&answer.text),
        400 | 502 => Ok(serde_json::from_str::<TestAnswer>(&answer.text)
            .ok()
            .filter(|a| a.error.is_some())
            .unwrap_or_else(|| TestAnswer {
                error: Some(answer.error().to_string()),
                ..TestAnswer::default()
            })),
        _ => Err(answer.error()),
    }
}

/// A problem of the connectors file, where it is.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Problem {
    #[serde(deserialize_with = "or_default")]
    pub line: u64,
    #[serde(deserialize_with = "or_default")]
    pub column: u64,
    #[serde(deserialize_with = "or_default")]
    pub message: String,
}

/// The answer to a reload: how many connectors are in force, or why the file was refused.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Reload {
    pub connectors: Option<u64>,
    pub error: Option<String>,
    pub problems: Vec<Problem>,
}

/// `POST /api/admin/connectors/reload`: a 422 (the file has problems) is an answer too.
pub async fn reload_connectors(csrf: &str) -> Result<Reload, ApiError> {
    let answer = exchange(
        "POST",
        "/api/admin/connectors/reload",
        Some(&Value::Object(Map::new())),
        Some(csrf),
    )
    .await?;
    match answer.status {
        200..300 => decode(&answer.text),
        422 => Ok(serde_json::from_str::<Reload>(&answer.text)
            .ok()
            .filter(|r| r.error.is_some())
            .unwrap_or_else(|| Reload {
                error: Some(answer.error().to_string()),
                ..Reload::default()
            })),
        _ => Err(answer.error()),
    }
}

/// `GET /api/admin/policies`: the policy text in force and where it comes from.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Policies {
    /// `bundled`, `file` or `database`.
    #[serde(deserialize_with = "or_default")]
    pub source: String,
    #[serde(deserialize_with = "or_default")]
    pub name: String,
    #[serde(deserialize_with = "or_default")]
    pub text: String,
    /// What a save sends back, so that two admins do not overwrite each other.
    #[serde(deserialize_with = "or_default")]
    pub revision: u64,
    pub updated_by: Option<String>,
    pub updated_at: Option<f64>,
    #[serde(deserialize_with = "or_default")]
    pub policies: u64,
    #[serde(deserialize_with = "or_default")]
    pub sandboxes: u64,
}

pub async fn policies() -> Result<Policies, ApiError> {
    get("/api/admin/policies").await
}

/// Why the server did not take a policy text or file: its message and located problems.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Refusal {
    #[serde(deserialize_with = "or_default")]
    pub error: String,
    pub problems: Vec<Problem>,
}

impl Refusal {
    /// The refusal of a non-2xx answer: its body when it has the shape, else its error.
    fn of(answer: &Answer) -> Refusal {
        serde_json::from_str::<Refusal>(&answer.text)
            .ok()
            .filter(|r| !r.error.is_empty() || !r.problems.is_empty())
            .unwrap_or_else(|| Refusal {
                error: answer.error().to_string(),
                problems: Vec::new(),
            })
    }
}

/// The answer to saving the policy text.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveAnswer {
    /// Taken: the policies now in force.
    Saved(Policies),
    /// 422: the text does not load; nothing changed.
    Invalid(Refusal),
    /// 409: someone else saved since the text was loaded.
    Conflict(String),
}

/// `PUT /api/admin/policies` with the revision the text was loaded at.
pub async fn save_policies(text: &str, revision: u64, csrf: &str) -> Result<SaveAnswer, ApiError> {
    let body = serde_json::json!({ "text": text, "revision": revision });
    let answer = exchange("PUT", "/api/admin/policies", Some(&body), Some(csrf)).await?;
    match answer.status {
        200..300 => decode(&answer.text).map(SaveAnswer::Saved),
        422 => Ok(SaveAnswer::Invalid(Refusal::of(&answer))),
        409 => Ok(SaveAnswer::Conflict(Refusal::of(&answer).error)),
        _ => Err(answer.error()),
    }
}

/// The answer to re-reading the policy file: how many policies and sandboxes are in force.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct PolicyCount {
    #[serde(deserialize_with = "or_default")]
    pub policies: u64,
    #[serde(deserialize_with = "or_default")]
    pub sandboxes: u64,
}

/// `POST /api/admin/policy/reload`: a 422 (the file has problems) is an answer too.
pub async fn reload_policies(csrf: &str) -> Result<Result<PolicyCount, Refusal>, ApiError> {
    let answer = exchange(
        "POST",
        "/api/admin/policy/reload",
        Some(&Value::Object(Map::new())),
        Some(csrf),
    )
    .await?;
    match answer.status {
        200..300 => decode(&answer.text).map(Ok),
        422 => Ok(Err(Refusal::of(&answer))),
        _ => Err(answer.error()),
    }
}

/// A policy or grant that targets a checked request, and what came of it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Matched {
    /// `policy` or `grant`.
    #[serde(deserialize_with = "or_default")]
    pub kind: String,
    #[serde(deserialize_with = "or_default")]
    pub id: String,
    #[serde(deserialize_with = "or_default")]
    pub effect: String,
    pub description: Option<String>,
    pub line: Option<u64>,
    pub condition: Option<String>,
    /// `applies`, `condition_false`, `condition_error` (with `error`) or `expired`.
    #[serde(deserialize_with = "or_default")]
    pub outcome: String,
    pub error: Value,
}

/// `POST /api/admin/policy/check`: the decision, as the server would make it now.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct CheckAnswer {
    /// The request, as decided: the account's login and `entity::id`.
    #[serde(deserialize_with = "or_default")]
    pub subject: String,
    #[serde(deserialize_with = "or_default")]
    pub resource: String,
    #[serde(deserialize_with = "or_default")]
    pub allowed: bool,
    pub decided_by: Option<String>,
    #[serde(deserialize_with = "or_default")]
    pub explanation: String,
    #[serde(deserialize_with = "or_default")]
    pub reason: String,
    pub matched: Vec<Matched>,
}

pub async fn check_policy(body: &Value, csrf: &str) -> Result<CheckAnswer, ApiError> {
    post("/api/admin/policy/check", body, csrf).await
}

/// A temporary grant (`GET /api/admin/grants`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Grant {
    #[serde(deserialize_with = "or_default")]
    pub id: String,
    #[serde(deserialize_with = "or_default")]
    pub subject: String,
    #[serde(deserialize_with = "or_default")]
    pub actions: Vec<String>,
    #[serde(deserialize_with = "or_default")]
    pub resource: String,
    #[serde(deserialize_with = "or_default")]
    pub expires_at: f64,
    #[serde(deserialize_with = "or_default")]
    pub granted_by: String,
    #[serde(deserialize_with = "or_default")]
    pub reason: String,
    #[serde(deserialize_with = "or_default")]
    pub created_at: f64,
    #[serde(deserialize_with = "or_default")]
    pub active: bool,
}

pub async fn grants() -> Result<Vec<Grant>, ApiError> {
    get("/api/admin/grants").await
}

/// `POST /api/admin/grants`: a 400 says which field is wrong (shown as it is).
pub async fn create_grant(body: &Value, csrf: &str) -> Result<Grant, ApiError> {
    post("/api/admin/grants", body, csrf).await
}

pub async fn revoke_grant(id: &str, csrf: &str) -> Result<(), ApiError> {
    let url = format!("/api/admin/grants/{}", encode(id));
    send("DELETE", &url, None, Some(csrf)).await.map(drop)
}

/// One record of the audit trail (`docs/audit.md`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct AuditRecord {
    #[serde(deserialize_with = "or_default")]
    pub at_ms: f64,
    #[serde(deserialize_with = "or_default")]
    pub actor: String,
    #[serde(deserialize_with = "or_default")]
    pub action: String,
    #[serde(deserialize_with = "or_default")]
    pub resource: String,
    /// `allow` or `deny`.
    #[serde(deserialize_with = "or_default")]
    pub decision: String,
    #[serde(deserialize_with = "or_default")]
    pub policies: Vec<String>,
    pub ip: Option<String>,
    pub result_size: Option<u64>,
    pub detail: Value,
}

/// A record as the log stores it: its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct StoredRecord {
    #[serde(deserialize_with = "or_default")]
    pub seq: u64,
    #[serde(deserialize_with = "or_default")]
    pub hash: String,
    pub record: AuditRecord,
}

/// A page of the audit trail, newest first; `next` goes into `before` for the older page.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct AuditPage {
    pub records: Vec<StoredRecord>,
    pub next: Option<u64>,
}

/// `GET /api/admin/audit?QUERY` (`query` as `access::audit_query` writes it).
pub async fn audit(query: &str) -> Result<AuditPage, ApiError> {
    get(&format!("/api/admin/audit?{query}")).await
}

/// A path segment, percent-encoded.
fn encode(segment: &str) -> String {
    String::from(js_sys::encode_uri_component(segment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_take_variables() {
        let variables = json!({"name": "Li Lei", "order": {"id": 42}, "n": 3});
        let Value::Object(variables) = variables else {
            unreachable!()
        };
        assert_eq!(
            fill_template(
                "Hi {{name}}, order {{ order.id }} x{{n}} {{missing}}",
                &variables
            ),
            "Hi Li Lei, order 42 x3 {{missing}}"
        );
        assert_eq!(fill_template("no end {{name", &variables), "no end {{name");
    }

    #[test]
    fn unknown_bodies_do_not_break_a_transcript() {
        let message: Message = serde_json::from_value(json!({
            "seq": 3, "sender": "bot", "at": 1, "body": {"type": "hologram", "x": 1}
        }))
        .unwrap();
        assert_eq!(message.body, Body::Unknown);
        let message: Message = serde_json::from_value(json!({
            "seq": 4, "sender": "bot", "at": 1,
            "body": {"type": "ask", "prompt": "Which?", "expect": {"type": "choice",
                "options": [{"id": "a", "label": "A"}]}}
        }))
        .unwrap();
        let Body::Ask {
            expect: Expect::Choice { options },
            ..
        } = message.body
        else {
            panic!("not a choice: {message:?}")
        };
        assert_eq!(options[0].label, "A");
    }

    #[test]
    fn nulls_take_defaults() {
        let summary: Summary = serde_json::from_value(json!({
            "id": "c-1", "flow": "faq", "version": null, "owner": "bot", "status": "active",
            "priority": null, "reason": null, "assignee": null, "last_seq": 3, "unread": null
        }))
        .unwrap();
        assert_eq!(
            (summary.priority.as_str(), summary.version, summary.last_seq),
            ("", 0, 3)
        );
    }

    #[test]
    fn ids_go_back_as_they_came() {
        let agent: Agent =
            serde_json::from_value(json!({"id": 7, "team": {"id": "t1", "name": "Support"}}))
                .unwrap();
        assert_eq!(serde_json::to_value(&agent.id).unwrap(), json!(7));
        assert_eq!(
            team_id_and_name(&agent.team),
            Some((Id::Str("t1".into()), "Support".into()))
        );
    }
}
