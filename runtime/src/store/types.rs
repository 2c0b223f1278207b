//! The values that go into and come out of the store.

use std::fmt;
use std::str::FromStr;

use super::error::StoreError;

/// Which database a [`Store`](super::Store) talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        })
    }
}

/// A published flow version, with its JSON document exactly as it was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFlow {
    pub id: String,
    pub version: u32,
    pub hash: String,
    pub json: String,
}

/// One published version of a flow, without its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowVersion {
    pub version: u32,
    pub hash: String,
}

/// What [`publish_flow`](super::Store::publish_flow) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The version was stored.
    New,
    /// The same id, version and hash were already stored; nothing changed.
    Unchanged,
}

/// A conversation to create, pinned to the flow version it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConversation {
    pub id: String,
    pub flow_id: String,
    pub flow_version: u32,
    pub flow_hash: String,
    pub owner: String,
    pub status: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The node that runs it, when several share the database.
    pub node: Option<String>,
}

/// A stored conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: String,
    pub flow_id: String,
    pub flow_version: u32,
    pub flow_hash: String,
    pub owner: String,
    pub status: String,
    pub created_at: i64,
    /// The sequence number of the conversation's last message (0: none yet).
    pub last_message_seq: i64,
    /// The sequence number of the conversation's last event (0: none yet).
    pub last_event_seq: i64,
    /// Where it was handed off to and who has it (all `None` until a handoff).
    pub routing: Routing,
}

/// A handed-off conversation's routing and assignment, for the console.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Routing {
    pub queue: Option<String>,
    pub team: Option<String>,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: Option<String>,
    pub reason: Option<String>,
    /// The user id of the agent who has it.
    pub assignee: Option<String>,
    /// Unix milliseconds.
    pub handed_off_at: Option<i64>,
}

impl Routing {
    /// The queue's order of priorities (`priority_rank` in the database): urgent 0, high 1,
    /// normal 2, anything else 3.
    pub fn priority_rank(&self) -> i32 {
        match self.priority.as_deref() {
            Some("urgent") => 0,
            Some("high") => 1,
            Some("normal") => 2,
            _ => 3,
        }
    }
}

/// An event to append with a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unix milliseconds.
    pub at: i64,
    pub kind: String,
    pub data_json: String,
}

/// A stored event; `seq` counts 1, 2, 3, … per conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub conversation: String,
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub data_json: String,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sender {
    Visitor,
    Bot,
    Agent,
    System,
}

impl Sender {
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Visitor => "visitor",
            Sender::Bot => "bot",
            Sender::Agent => "agent",
            Sender::System => "system",
        }
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sender {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "visitor" => Ok(Sender::Visitor),
            "bot" => Ok(Sender::Bot),
            "agent" => Ok(Sender::Agent),
            "system" => Ok(Sender::System),
            other => Err(StoreError::Corrupt(format!(
                "unknown message sender `{other}`"
            ))),
        }
    }
}

/// A message to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub conversation: String,
    pub sender: Sender,
    pub kind: String,
    pub body_json: String,
    /// The id a client gave the message; a resend with the same id returns the stored message.
    pub client_id: Option<String>,
    /// Unix milliseconds.
    pub at: i64,
}

/// A stored message; `seq` counts 1, 2, 3, … per conversation without gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub conversation: String,
    pub seq: i64,
    pub sender: Sender,
    pub kind: String,
    pub body_json: String,
    pub client_id: Option<String>,
    pub at: i64,
}

/// The latest saved session state of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    pub conversation: String,
    pub turn: i64,
    pub json: String,
}

/// A session state to save with a batch (see [`Store::commit`](super::Store::commit)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub conversation: String,
    pub turn: i64,
    pub json: String,
}
