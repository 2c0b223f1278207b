//! Who is online, and automatic assignment: with `HubConfig::auto_assign`, a waiting
//! conversation goes to an online agent of its team (any team when it has none) who has room
//! (fewer open conversations than their capacity), the least busy first. Agents can still claim
//! by hand; the assigner claims on their behalf through the same conversation task, so the two
//! can never both win.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, broadcast};

use super::actor::{ConsoleAction, ConsoleError};
use super::hub::Hub;
use crate::store::{ListView, Store, User};

/// Changes closer together than this are handled in one pass.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(20);

/// Waiting conversations read per pass. A pass stops early once every online agent is full,
/// and the claims it makes wake the next pass, which reads the queue again.
const WAITING_PER_PASS: u32 = 500;

/// Agents with at least one console connection.
#[derive(Debug, Default)]
pub(super) struct Presence {
    online: Mutex<HashMap<String, (User, usize)>>,
    /// Woken when an agent comes online (the assigner may have work for them).
    pub(super) arrived: Notify,
}

impl Presence {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (User, usize)>> {
        self.online.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn online(&self) -> Vec<User> {
        self.lock().values().map(|(user, _)| user.clone()).collect()
    }

    pub(super) fn is_online(&self, user: &str) -> bool {
        self.lock().contains_key(user)
    }
}

/// Keeps an agent online while it lives (one per console connection).
pub struct OnlineGuard {
    presence: Arc<Presence>,
    user: String,
}

impl Drop for OnlineGuard {
    fn drop(&mut self) {
        let mut online = self.presence.lock();
        if let Some((_, count)) = online.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                online.remove(&self.user);
            }
        }
    }
}

impl Hub {
    /// Marks `user` online until the guard is dropped.
    pub fn agent_online(&self, user: &User) -> OnlineGuard {
        let presence = Arc::clone(&self.shared().presence);
        presence
            .lock()
            .entry(user.id.clone())
            .or_insert_with(|| (user.clone(), 0))
            .1 += 1;
        presence.arrived.notify_one();
        OnlineGuard {
            presence,
            user: user.id.clone(),
        }
    }

    /// Whether `user` has a console open.
    pub fn is_online(&self, user: &str) -> bool {
        self.shared().presence.is_online(user)
    }

    /// Assigns waiting conversations to online agents until none fits; runs until shutdown.
    pub(super) async fn run_assigner(self) {
        let mut changes = self.queue_changes();
        let shutdown = self.shutdown_token().clone();
        loop {
            self.assign_waiting().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.shared().presence.arrived.notified() => {}
                change = changes.recv() => {
                    if matches!(change, Err(broadcast::error::RecvError::Closed)) {
                        return;
                    }
                }
            }
            // A burst of handoffs is assigned in one pass.
            super::settle(&mut changes, COALESCE).await;
        }
    }

    async fn assign_waiting(&self) {
        let online: Vec<User> = self
            .shared()
            .presence
            .online()
            .into_iter()
            .filter(|u| u.role == "agent")
            .collect();
        if online.is_empty() {
            return;
        }
        let store: &Store = self.store();
        // One grouped count for every agent (not one list per online agent): what each has
        // open, that is assigned and not ended. Agents with none are missing from the map.
        let mut load = match store.open_assignments().await {
            Ok(load) => load,
            Err(error) => {
                tracing::warn!(%error, "cannot count open conversations for automatic assignment");
                return;
            }
        };
        let has_room = |agent: &User, load: &HashMap<String, i64>| {
            load.get(&agent.id).copied().unwrap_or(0) < agent.capacity
        };
        if !online.iter().any(|agent| has_room(agent, &load)) {
            return;
        }
        let Ok(waiting) = store
            .list_conversations(&ListView::Queue, WAITING_PER_PASS)
            .await
        else {
            return;
        };
        for conversation in waiting {
            // Everyone is full: the rest of the queue waits for the next change.
            if !online.iter().any(|agent| has_room(agent, &load)) {
                break;
            }
            let team = conversation.routing.team.as_deref();
            let chosen = online
                .iter()
                .filter(|agent| team.is_none_or(|t| agent.team.id == t))
                .filter(|agent| has_room(agent, &load))
                .min_by_key(|agent| (load.get(&agent.id).copied().unwrap_or(0), &agent.id));
            let Some(agent) = chosen else { continue };
            let Ok(handle) = self.get(&conversation.id).await else {
                continue;
            };
            let action = ConsoleAction::Claim {
                agent: agent.id.clone(),
                name: agent.name.clone(),
            };
            match handle.console(action).await {
                Ok(_) => {
                    tracing::info!(conversation = %conversation.id, agent = %agent.login, "assigned automatically");
                    *load.entry(agent.id.clone()).or_insert(0) += 1;
                }
                // Claimed by hand in the meantime.
                Err(ConsoleError::Conflict(_)) => {}
                Err(error) => {
                    tracing::warn!(conversation = %conversation.id, %error, "automatic assignment failed");
                }
            }
        }
    }
}
