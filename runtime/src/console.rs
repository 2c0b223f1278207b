//! The console API (`docs/console-api.md`): conversation lists and the whole context of one
//! conversation for agents, and their actions — claim, transfer, resolve, hand back, notes,
//! replies. Every route checks its caller ([`Caller`]): an agent sees the queue and the
//! conversations assigned to them; an admin sees everything.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Admin, Caller};
use crate::conversation::{ConsoleAction, ConsoleError, Hub, now_ms};
use crate::server::{ApiError, AppState};
use crate::store::{Conversation, ListView, Sender, Store, StoredMessage};

/// The longest note or reply.
const MAX_TEXT: usize = 4000;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/console/conversations", get(list))
        .route("/api/console/conversations/{id}", get(detail))
        .route("/api/console/conversations/{id}/claim", post(claim))
        .route("/api/console/conversations/{id}/transfer", post(transfer))
        .route("/api/console/conversations/{id}/resolve", post(resolve))
        .route("/api/console/conversations/{id}/hand-back", post(hand_back))
        .route("/api/console/conversations/{id}/notes", post(add_note))
        .route("/api/console/conversations/{id}/messages", post(reply))
        .route("/api/console/canned", get(canned))
        .route("/api/console/agents", get(agents))
        .route("/api/admin/users", get(list_users).post(create_user))
        .route("/api/admin/teams", post(create_team))
}

fn parts(state: &AppState) -> Result<(&Store, &Hub), ApiError> {
    match (&state.store, &state.chat) {
        (Some(store), Some(chat)) => Ok((store, &chat.hub)),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the console is not available on this server",
        )),
    }
}

/// The store alone, for routes that need no conversation task.
fn store_of(state: &AppState) -> Result<&Store, ApiError> {
    state.store.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "accounts are not available on this server",
        )
    })
}

fn internal(error: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(%error, "console request failed");
    ApiError::internal()
}

#[derive(Deserialize)]
struct ListQuery {
    view: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let (store, _) = parts(&state)?;
    let view = match query.view.as_deref().unwrap_or("queue") {
        "queue" => ListView::Queue,
        "mine" => ListView::Assignee(caller.user.id.clone()),
        "all" if caller.is_admin() => ListView::All,
        "all" => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "only admins may list every conversation",
            ));
        }
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("unknown view `{other}`: use queue, mine or all"),
            ));
        }
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let conversations = store
        .list_conversations(&view, limit)
        .await
        .map_err(|e| internal(&e))?;
    let mut summaries = Vec::with_capacity(conversations.len());
    for conversation in &conversations {
        summaries.push(summary(store, conversation).await?);
    }
    // Only the conversations the policies let the caller read (`access::ListReader`).
    let reader = crate::access::ListReader::new(&state, &caller).await?;
    let summaries = reader.filter(summaries);
    let audited = crate::audit::AuditRecord::by(
        &caller,
        "list",
        format!(
            "conversations::{}",
            query.view.as_deref().unwrap_or("queue")
        ),
    )
    .result_size(summaries.len() as u64);
    state.audit.record(audited).await;
    Ok(Json(summaries))
}

/// A conversation as lists show it: its state, routing, assignee, the last message and how many
/// visitor messages came since an agent last wrote.
pub(crate) async fn summary(store: &Store, conversation: &Conversation) -> Result<Value, ApiError> {
    let recent = store
        .messages_after(
            &conversation.id,
            (conversation.last_message_seq - 50).max(0),
            50,
        )
        .await
        .map_err(|e| internal(&e))?;
    let unread = recent
        .iter()
        .rev()
        .take_while(|m| m.sender != Sender::Agent)
        .filter(|m| m.sender == Sender::Visitor)
        .count();
    let last = recent
        .last()
        .map(|m| json!({ "sender": m.sender.as_str(), "text": preview(m), "at": m.at }));
    let assignee = match &conversation.routing.assignee {
        Some(id) => store
            .user(id)
            .await
            .map_err(|e| internal(&e))?
            .map(|u| json!({ "id": u.id, "name": u.name })),
        None => None,
    };
    let routing = &conversation.routing;
    Ok(json!({
        "id": conversation.id,
        "flow": conversation.flow_id,
        "version": conversation.flow_version,
        "owner": conversation.owner,
        "status": conversation.status,
        "queue": routing.queue,
        "team": routing.team,
        "priority": routing.priority,
        "reason": routing.reason,
        "assignee": assignee,
        "handed_off_at": routing.handed_off_at,
        "last_seq": conversation.last_message_seq,
        "unread": unread,
        "last": last,
    }))
}

/// A line of text standing for a message in a list.
fn preview(message: &StoredMessage) -> String {
    let body: Value = serde_json::from_str(&message.body_json).unwrap_or(Value::Null);
    let text = body["text"]
        .as_str()
        .or_else(|| body["prompt"].as_str())
        .or_else(|| body["label"].as_str())
        .unwrap_or_else(|| body["type"].as_str().unwrap_or_default());
    text.chars().take(120).collect()
}

/// The conversation and the decision to let `caller` read it (`access::conversation`: the
/// policies decide, by default admins always and agents while it waits in a queue or is
/// assigned to them). Refused, the refusal is audited and the answer is 404: whether a
/// conversation exists is not for everyone to learn. Allowed, the caller audits the access.
async fn readable(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Conversation, crate::access::Verdict), ApiError> {
    let (store, _) = parts(state)?;
    let missing = || ApiError::new(StatusCode::NOT_FOUND, format!("no conversation `{id}`"));
    let conversation = store
        .conversation(id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(missing)?;
    let verdict = crate::access::conversation(state, caller, &conversation).await?;
    if verdict.allowed {
        Ok((conversation, verdict))
    } else {
        verdict.audit(state, None).await;
        Err(missing())
    }
}

/// The conversation if the caller may read it ([`readable`]), the access audited.
async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Conversation, ApiError> {
    let (conversation, verdict) = readable(state, caller, id).await?;
    verdict.audit(state, None).await;
    Ok(conversation)
}

/// Like [`visible`], for actions only the assignee (or an admin) may take.
async fn assigned(state: &AppState, caller: &Caller, id: &str) -> Result<Conversation, ApiError> {
    let conversation = visible(state, caller, id).await?;
    let mine = conversation.routing.assignee.as_deref() == Some(caller.user.id.as_str());
    if mine || caller.is_admin() {
        Ok(conversation)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only the agent who has the conversation may do this",
        ))
    }
}

async fn detail(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (store, hub) = parts(&state)?;
    let (conversation, verdict) = readable(&state, &caller, &id).await?;
    let context = hub
        .context(&id)
        .await
        .map_err(|e| internal(&e))?
        .map_err(|e| internal(&e))?;
    let messages: Vec<Value> = store
        .messages_since(&id, 0)
        .await
        .map_err(|e| internal(&e))?
        .iter()
        .map(|message| {
            json!({
                "type": "message",
                "conversation": id,
                "seq": message.seq,
                "sender": message.sender.as_str(),
                "at": message.at,
                "client_id": message.client_id,
                "body": serde_json::from_str::<Value>(&message.body_json).unwrap_or(Value::Null),
            })
        })
        .collect();
    let events = store.events_after(&id, 0).await.map_err(|e| internal(&e))?;
    let handoff = events
        .iter()
        .rev()
        .find(|e| e.kind == "handed_off")
        .and_then(|e| serde_json::from_str::<Value>(&e.data_json).ok());
    let notes = store.notes(&id).await.map_err(|e| internal(&e))?;
    // Who the visitor said they are (the widget's `data-visitor-*`), kept in `started`.
    let visitor: std::collections::BTreeMap<String, String> = events
        .iter()
        .find(|e| e.kind == "started")
        .and_then(|e| serde_json::from_str::<Value>(&e.data_json).ok())
        .and_then(|data| serde_json::from_value(data["visitor"].clone()).ok())
        .unwrap_or_default();
    // Decided, sandboxed and audited for the caller (`access`): masked before it leaves the
    // connector.
    let customer = crate::access::customer_panel(&state, &caller, &visitor).await?;
    // The bot's lookups, as the caller's department may see them.
    let flow = conversation_flow(&state, store, &conversation).await?;
    let variables =
        crate::access::variables_in_view(&state, &caller.user, flow.as_ref(), context.variables)
            .await?;
    verdict.audit(&state, Some(messages.len() as u64)).await;
    Ok(Json(json!({
        "conversation": summary(store, &conversation).await?,
        "messages": messages,
        "context": {
            "path": context.path,
            "variables": variables,
            "handoff": handoff,
            "customer": customer,
        },
        "notes": notes,
    })))
}

/// The flow version a conversation runs: the library's when it is that version, else the
/// stored one (`None` if neither has it).
async fn conversation_flow(
    state: &AppState,
    store: &Store,
    conversation: &Conversation,
) -> Result<Option<flows::Flow>, ApiError> {
    if let Some(flow) = state
        .library()
        .get(&conversation.flow_id)
        .filter(|f| f.version == conversation.flow_version)
    {
        return Ok(Some(flow.clone()));
    }
    match store
        .flow_version(&conversation.flow_id, conversation.flow_version)
        .await
        .map_err(|e| internal(&e))?
    {
        Some(stored) => crate::flow_api::load_stored(&stored.json).map(Some),
        None => Ok(None),
    }
}

/// Runs `action` on the conversation and answers with its summary.
async fn act(
    store: &Store,
    hub: &Hub,
    id: &str,
    action: ConsoleAction,
) -> Result<Response, ApiError> {
    match hub.console(id, action).await.map_err(|e| internal(&e))? {
        Ok(outcome) => {
            let conversation = store
                .conversation(id)
                .await
                .map_err(|e| internal(&e))?
                .ok_or_else(ApiError::internal)?;
            let mut answer = summary(store, &conversation).await?;
            if let Some(seq) = outcome.seq {
                answer["seq"] = json!(seq);
            }
            Ok(Json(answer).into_response())
        }
        Err(ConsoleError::Conflict(why)) => Err(ApiError::new(StatusCode::CONFLICT, why)),
        Err(error @ ConsoleError::Gone) => Err(internal(&error)),
    }
}

async fn claim(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (store, hub) = parts(&state)?;
    visible(&state, &caller, &id).await?;
    let action = ConsoleAction::Claim {
        agent: caller.user.id.clone(),
        name: caller.user.name.clone(),
    };
    act(store, hub, &id, action).await
}

#[derive(Deserialize)]
struct TransferBody {
    agent: Option<String>,
    team: Option<String>,
    note: Option<String>,
}

async fn transfer(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<TransferBody>,
) -> Result<Response, ApiError> {
    let (store, hub) = parts(&state)?;
    assigned(&state, &caller, &id).await?;
    let agent = match (&body.agent, &body.team) {
        (Some(agent), None) => {
            let user = store
                .user(agent)
                .await
                .map_err(|e| internal(&e))?
                .ok_or_else(|| {
                    ApiError::new(StatusCode::BAD_REQUEST, format!("no agent `{agent}`"))
                })?;
            Some((user.id, user.name))
        }
        (None, Some(_)) => None,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give either `agent` or `team`",
            ));
        }
    };
    let note = body.note.filter(|n| !n.trim().is_empty());
    if let Some(note) = &note {
        store
            .add_note(&id, now_ms(), &caller.user.id, note)
            .await
            .map_err(|e| internal(&e))?;
    }
    let action = ConsoleAction::Transfer {
        by: caller.user.id.clone(),
        agent,
        team: body.team,
        note,
    };
    act(store, hub, &id, action).await
}

async fn resolve(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (store, hub) = parts(&state)?;
    assigned(&state, &caller, &id).await?;
    let action = ConsoleAction::Resolve {
        by: caller.user.id.clone(),
    };
    act(store, hub, &id, action).await
}

#[derive(Deserialize, Default)]
struct HandBackBody {
    node: Option<String>,
}

async fn hand_back(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<HandBackBody>>,
) -> Result<Response, ApiError> {
    let (store, hub) = parts(&state)?;
    assigned(&state, &caller, &id).await?;
    let Json(body) = body.unwrap_or_default();
    let action = ConsoleAction::HandBack {
        by: caller.user.id.clone(),
        node: body.node.filter(|n| !n.is_empty()),
    };
    act(store, hub, &id, action).await
}

#[derive(Deserialize)]
struct TextBody {
    text: String,
    client_id: Option<String>,
}

fn checked_text(text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the text is empty"));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the text has {chars} characters; the limit is {MAX_TEXT}"),
        ));
    }
    Ok(())
}

async fn add_note(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<TextBody>,
) -> Result<Response, ApiError> {
    let (store, _) = parts(&state)?;
    assigned(&state, &caller, &id).await?;
    checked_text(&body.text)?;
    store
        .add_note(&id, now_ms(), &caller.user.id, &body.text)
        .await
        .map_err(|e| internal(&e))?;
    Ok(StatusCode::CREATED.into_response())
}

/// A reply to the visitor (`client_id` makes a resend safe).
async fn reply(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<TextBody>,
) -> Result<Response, ApiError> {
    let (store, hub) = parts(&state)?;
    assigned(&state, &caller, &id).await?;
    checked_text(&body.text)?;
    let client_id = body
        .client_id
        .filter(|c| crate::gateway::frames::valid_client_id(c))
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let action = ConsoleAction::Reply {
        agent: caller.user.id.clone(),
        client_id,
        text: body.text,
    };
    act(store, hub, &id, action).await
}

/// Canned replies, in both languages; `{{name}}` stands for the conversation's variable `name`.
async fn canned(_caller: Caller) -> Json<Value> {
    Json(json!([
        {"id": "greet", "title": "问候 · Greeting",
         "text": "您好，我是人工客服，很高兴为您服务！/ Hello, I'm here to help!"},
        {"id": "checking", "title": "查询中 · Checking",
         "text": "请稍等，我帮您查一下。/ One moment please, I'm checking that for you."},
        {"id": "order", "title": "订单 · Order",
         "text": "您的订单 {{order_no}} 我这边已经看到了。/ I can see your order {{order_no}}."},
        {"id": "budget", "title": "预算 · Budget",
         "text": "您的预算是 ¥{{budget}}，我为您推荐几款合适的。/ With a budget of ¥{{budget}}, here are a few good options."},
        {"id": "anything_else", "title": "还有吗 · Anything else",
         "text": "还有其他可以帮您的吗？/ Is there anything else I can help with?"},
    ]))
}

/// The accounts an agent can transfer to, with how many open conversations each has.
async fn agents(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    let (store, hub) = parts(&state)?;
    let users = store.users().await.map_err(|e| internal(&e))?;
    let mut agents = Vec::with_capacity(users.len());
    for user in users {
        let active = store
            .list_conversations(&ListView::Assignee(user.id.clone()), 500)
            .await
            .map_err(|e| internal(&e))?
            .len();
        agents.push(json!({
            "id": user.id,
            "name": user.name,
            "role": user.role,
            "team": user.team,
            "online": hub.is_online(&user.id),
            "active": active,
            "capacity": user.capacity,
        }));
    }
    Ok(Json(agents))
}

/// Every account (admins only).
async fn list_users(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
) -> Result<Json<Vec<crate::store::User>>, ApiError> {
    let store = store_of(&state)?;
    Ok(Json(store.users().await.map_err(|e| internal(&e))?))
}

#[derive(Deserialize)]
struct NewUserBody {
    login: String,
    name: String,
    password: String,
    role: String,
    team: String,
    capacity: Option<i64>,
}

/// Creates an account (admins only).
async fn create_user(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Json(body): Json<NewUserBody>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    let bad = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, message);
    let login_ok = !body.login.is_empty()
        && body.login.len() <= 64
        && body
            .login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !login_ok {
        return Err(bad("`login` must be 1–64 letters, digits, `-`, `_` or `.`"));
    }
    if body.password.chars().count() < 8 {
        return Err(bad("`password` must have at least 8 characters"));
    }
    if !matches!(body.role.as_str(), "admin" | "agent") {
        return Err(bad("`role` must be `admin` or `agent`"));
    }
    let capacity = body.capacity.unwrap_or(5);
    if !(1..=100).contains(&capacity) {
        return Err(bad("`capacity` must be between 1 and 100"));
    }
    let name = if body.name.trim().is_empty() {
        body.login.clone()
    } else {
        body.name.clone()
    };
    let password = body.password;
    let hash = crate::auth::hashing(move || crate::auth::hash_password(&password))
        .await
        .ok_or_else(ApiError::internal)?
        .map_err(|e| internal(&e))?;
    let user = crate::store::NewUser {
        id: format!("u-{}", uuid::Uuid::new_v4().simple()),
        login: body.login,
        name,
        role: body.role,
        team_id: body.team,
        password_hash: hash,
        capacity,
        created_at: now_ms(),
    };
    match store.create_user(&user).await {
        Ok(()) => {}
        Err(error @ crate::store::StoreError::UserExists(_)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, error.to_string()));
        }
        Err(crate::store::StoreError::Database(sqlx::Error::Database(error)))
            if error.is_foreign_key_violation() =>
        {
            return Err(bad("there is no such team"));
        }
        Err(error) => return Err(internal(&error)),
    }
    let created = store
        .user(&user.id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(ApiError::internal)?;
    let record =
        crate::audit::AuditRecord::by(&admin, "create", format!("accounts::{}", created.login))
            .detail(json!({ "role": created.role, "team": created.team.id }));
    state.audit.record(record).await;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[derive(Deserialize)]
struct NewTeamBody {
    id: String,
    name: String,
}

/// Creates a team (admins only); an existing id is left as it is.
async fn create_team(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Json(body): Json<NewTeamBody>,
) -> Result<Response, ApiError> {
    let store = store_of(&state)?;
    if body.id.is_empty() || body.id.len() > 64 || body.name.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a team needs an `id` (1–64 characters) and a `name`",
        ));
    }
    store
        .ensure_team(&body.id, &body.name)
        .await
        .map_err(|e| internal(&e))?;
    let record = crate::audit::AuditRecord::by(&admin, "create", format!("teams::{}", body.id))
        .detail(json!({ "name": body.name }));
    state.audit.record(record).await;
    Ok(StatusCode::CREATED.into_response())
}
