//! The session: everything a conversation's engine needs between steps, serializable so that a
//! conversation survives a restart and stays pinned to the flow version it started on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FlowRef, Millis, Status};
use crate::model::NodeId;
use crate::value::Value;

/// Version of the session's serialized form; bumped when its shape changes.
pub const SESSION_FORMAT: u32 = 1;

/// How many recent nodes the session remembers for handoff context.
pub const PATH_LIMIT: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub format: u32,
    pub flow: FlowRef,
    pub session_id: String,
    pub locale: String,
    pub channel: String,
    pub tz_offset_minutes: i32,
    /// The `now` of the latest step.
    pub now: Millis,
    /// The call stack: `frames[0]` runs the main flow, the last frame runs the current flow.
    pub frames: Vec<Frame>,
    pub waiting: Waiting,
    /// Unaccepted answers at the current choice or input node.
    pub attempts: u32,
    /// The next lookup request number.
    pub next_request: u64,
    /// Armed timers: id → when it fires.
    pub timers: BTreeMap<String, Millis>,
    /// The most recent nodes entered (at most `PATH_LIMIT`), as `node` in the main flow and
    /// `flow/node` in sub-flows.
    pub path: Vec<String>,
    /// Completed steps.
    pub turns: u64,
}

/// One running flow on the call stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub flow: String,
    /// The `call` node (in the frame below) that started this frame.
    pub call_node: Option<NodeId>,
    pub vars: BTreeMap<String, Value>,
}

/// What the session waits for. The node named is in the current (last) frame's flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Waiting {
    NotStarted,
    Choice {
        node: NodeId,
        options: Vec<Offered>,
    },
    Input {
        node: NodeId,
    },
    Lookup {
        node: NodeId,
        request: u64,
    },
    Agent {
        resume: Resume,
    },
    Timer {
        node: NodeId,
        timer: String,
        at: Millis,
    },
    Ended {
        outcome: String,
    },
}

/// A button on offer: what the visitor saw and, for options built from a list, the element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offered {
    pub id: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Where the bot continues when an agent hands the conversation back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum Resume {
    /// Leave the handoff node through its `return` port.
    HandoffReturn { node: NodeId },
    /// Enter this node again (where the visitor was when they asked for an agent).
    Reenter { node: NodeId },
}

impl Session {
    pub fn new(flow: FlowRef) -> Self {
        Session {
            format: SESSION_FORMAT,
            flow,
            session_id: String::new(),
            locale: String::new(),
            channel: String::new(),
            tz_offset_minutes: 0,
            now: 0,
            frames: Vec::new(),
            waiting: Waiting::NotStarted,
            attempts: 0,
            next_request: 1,
            timers: BTreeMap::new(),
            path: Vec::new(),
            turns: 0,
        }
    }

    pub fn status(&self) -> Status {
        match self.waiting {
            Waiting::NotStarted => Status::NotStarted,
            Waiting::Choice { .. } => Status::AwaitingChoice,
            Waiting::Input { .. } => Status::AwaitingText,
            Waiting::Lookup { .. } => Status::AwaitingLookup,
            Waiting::Agent { .. } => Status::AwaitingAgent,
            Waiting::Timer { .. } => Status::AwaitingTimer,
            Waiting::Ended { .. } => Status::Ended,
        }
    }

    /// The main flow's variables (what a handoff shows the agent).
    pub fn main_vars(&self) -> BTreeMap<String, Value> {
        self.frames
            .first()
            .map(|f| f.vars.clone())
            .unwrap_or_default()
    }

    /// Serializes to JSON (the form the runtime stores).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a stored session, refusing formats this engine does not know.
    pub fn from_json(text: &str) -> Result<Session, String> {
        let session: Session =
            serde_json::from_str(text).map_err(|e| format!("not a valid session: {e}"))?;
        if session.format != SESSION_FORMAT {
            return Err(format!(
                "session format {} is not supported (this engine reads format {SESSION_FORMAT})",
                session.format
            ));
        }
        Ok(session)
    }
}
