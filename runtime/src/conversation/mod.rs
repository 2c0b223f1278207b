//! Conversations: who owns one (the bot, a queue, an agent), its status, and the task that runs
//! its flow and carries out the engine's effects.
//!
//! Each running conversation is one task (an actor, `actor.rs`) that owns its session: visitor
//! messages, timers and lookup answers reach it through one channel, so turns never overlap.
//! After every turn the session is saved; after a restart (even `kill -9`) [`Hub::recover`]
//! brings every open conversation back where it was, pinned to the flow version it started on.
//! The [`Hub`] starts, finds and loads conversations, and shuts them all down.

mod actor;
mod assign;
mod body;
mod cluster;
mod hub;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use flows::engine::{LookupOutcome, LookupRequest, Millis};

pub use actor::{ConsoleAction, ConsoleError, ConsoleOutcome, Context};
pub use assign::OnlineGuard;
pub use body::{Body, message_frame};
pub use cluster::{Cluster, ClusterConfig};
pub use hub::{
    ConversationHandle, Hub, HubConfig, HubError, Outbound, QueueChange, SendError, Services,
    StartParams, Started, VisitorInput, settle,
};

/// Who is responsible for a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    /// The flow answers.
    Bot,
    /// Handed off; waiting for an agent to take it.
    Queue,
    /// A person answers.
    Agent,
}

/// Whether a conversation goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    /// Waiting in a queue.
    Waiting,
    Ended,
}

/// A conversation's owner and status; changes only through [`State::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub owner: Owner,
    pub status: Status,
}

/// A change of owner or status; each one is stored as an event named [`Transition::event`].
/// Its serde name is its event's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The bot handed the conversation to people (a handoff node or the "agent" keyword).
    HandedOff,
    /// An agent took it from the queue.
    Assigned,
    /// The agent gave it back to the bot.
    HandedBack,
    /// The agent passed it to another agent.
    Transferred,
    /// The agent passed it to a team: back to the queue.
    Requeued,
    /// The conversation is over.
    Ended,
}

/// A transition that the current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a conversation that is {from} cannot be {transition}")]
pub struct TransitionError {
    pub from: State,
    pub transition: Transition,
}

impl State {
    /// A new conversation: the bot talks.
    pub const STARTED: State = State {
        owner: Owner::Bot,
        status: Status::Active,
    };

    /// The state after `transition`, or why it is not allowed now.
    pub fn apply(self, transition: Transition) -> Result<State, TransitionError> {
        let next = match (self, transition) {
            (
                State {
                    owner: Owner::Bot,
                    status: Status::Active,
                },
                Transition::HandedOff,
            ) => State {
                owner: Owner::Queue,
                status: Status::Waiting,
            },
            (
                State {
                    owner: Owner::Queue,
                    status: Status::Waiting,
                },
                Transition::Assigned,
            ) => State {
                owner: Owner::Agent,
                status: Status::Active,
            },
            (
                State {
                    owner: Owner::Agent,
                    status: Status::Active,
                },
                Transition::HandedBack,
            ) => State::STARTED,
            (
                state @ State {
                    owner: Owner::Agent,
                    status: Status::Active,
                },
                Transition::Transferred,
            ) => state,
            (
                State {
                    owner: Owner::Agent,
                    status: Status::Active,
                },
                Transition::Requeued,
            ) => State {
                owner: Owner::Queue,
                status: Status::Waiting,
            },
            (state, Transition::Ended) if state.status != Status::Ended => State {
                owner: state.owner,
                status: Status::Ended,
            },
            (from, transition) => return Err(TransitionError { from, transition }),
        };
        Ok(next)
    }

    /// Reads a state as stored (`owner`, `status` columns).
    pub fn parse(owner: &str, status: &str) -> Option<State> {
        let owner = match owner {
            "bot" => Owner::Bot,
            "queue" => Owner::Queue,
            "agent" => Owner::Agent,
            _ => return None,
        };
        let status = match status {
            "active" => Status::Active,
            "waiting" => Status::Waiting,
            "ended" => Status::Ended,
            _ => return None,
        };
        Some(State { owner, status })
    }

    pub fn is_ended(self) -> bool {
        self.status == Status::Ended
    }
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Bot => "bot",
            Owner::Queue => "queue",
            Owner::Agent => "agent",
        }
    }
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Waiting => "waiting",
            Status::Ended => "ended",
        }
    }
}

impl Transition {
    /// The name of the event that records this transition.
    pub fn event(self) -> &'static str {
        match self {
            Transition::HandedOff => "handed_off",
            Transition::Assigned => "assigned",
            Transition::HandedBack => "handed_back",
            Transition::Transferred => "transferred",
            Transition::Requeued => "requeued",
            Transition::Ended => "ended",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.status.as_str(), self.owner.as_str())
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transition::HandedOff => "handed off",
            Transition::Assigned => "assigned",
            Transition::HandedBack => "handed back",
            Transition::Transferred => "transferred",
            Transition::Requeued => "requeued",
            Transition::Ended => "ended",
        })
    }
}

/// A boxed future, for the object-safe [`Lookups`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Answers the `lookup` effects of flows: the demo catalogue now, connectors later. Failures
/// are values (`LookupOutcome::Error`), which the flow routes through its error port.
pub trait Lookups: Send + Sync {
    fn lookup<'a>(
        &'a self,
        request: &'a LookupRequest,
        now: Millis,
    ) -> BoxFuture<'a, LookupOutcome>;
}

/// Canned answers (`flows/library/fixtures.json`), for tests and for running without a
/// catalogue.
impl Lookups for flows::fixtures::Fixtures {
    fn lookup<'a>(
        &'a self,
        request: &'a LookupRequest,
        _now: Millis,
    ) -> BoxFuture<'a, LookupOutcome> {
        Box::pin(async move { self.answer(request) })
    }
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> Millis {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX)
}

#[cfg(test)]
mod tests {
    use super::{Owner, State, Status, Transition};

    #[test]
    fn transitions_follow_the_table() {
        let queued = State::STARTED.apply(Transition::HandedOff);
        assert_eq!(
            queued,
            Ok(State {
                owner: Owner::Queue,
                status: Status::Waiting
            })
        );
        let Ok(queued) = queued else { return };
        let taken = queued.apply(Transition::Assigned);
        assert_eq!(
            taken.map(|s| s.owner),
            Ok(Owner::Agent),
            "an agent takes it from the queue"
        );
        assert_eq!(
            State::STARTED
                .apply(Transition::Assigned)
                .map_err(|e| e.to_string()),
            Err("a conversation that is active (bot) cannot be assigned".to_owned())
        );
        let ended = State::STARTED.apply(Transition::Ended);
        assert_eq!(ended.clone().map(State::is_ended), Ok(true));
        let Ok(ended) = ended else { return };
        assert!(ended.apply(Transition::Ended).is_err(), "ends once");
        assert!(ended.apply(Transition::HandedOff).is_err());
    }

    #[test]
    fn stored_states_parse_back() {
        for owner in [Owner::Bot, Owner::Queue, Owner::Agent] {
            for status in [Status::Active, Status::Waiting, Status::Ended] {
                let state = State { owner, status };
                assert_eq!(State::parse(owner.as_str(), status.as_str()), Some(state));
            }
        }
        assert_eq!(State::parse("robot", "active"), None);
    }
}
