//! Undo and redo as stacks of inverse ops.

use std::collections::VecDeque;

use flows::Flow;

use super::ops::{EditError, Op};

/// The undo and redo stacks of one open flow. Each entry is the op that takes one edit back
/// (undo) or makes it again (redo); nothing here copies the document.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Inverses of the edits made, oldest first.
    undo: VecDeque<Op>,
    /// Ops that redo undone edits, the next one last.
    redo: Vec<Op>,
    limit: usize,
}

impl Default for History {
    fn default() -> Self {
        History::new(History::DEFAULT_LIMIT)
    }
}

impl History {
    /// How many edits can be undone by default.
    pub const DEFAULT_LIMIT: usize = 200;

    /// A history that keeps at most `limit` edits to undo (older ones are forgotten).
    pub fn new(limit: usize) -> Self {
        History {
            undo: VecDeque::new(),
            redo: Vec::new(),
            limit,
        }
    }

    /// Applies `op` to `flow` as a new edit: it can be undone, and nothing undone before can
    /// be redone any more. A failed op changes neither the flow nor the history; an op that
    /// changes nothing (an empty batch) is not recorded.
    pub fn apply(&mut self, flow: &mut Flow, op: &Op) -> Result<(), EditError> {
        let inverse = op.apply(flow)?;
        if op.is_empty() {
            return Ok(());
        }
        self.redo.clear();
        self.undo.push_back(inverse);
        while self.undo.len() > self.limit {
            self.undo.pop_front();
        }
        Ok(())
    }

    /// Takes the last edit back. Returns whether anything was undone. If the flow was changed
    /// behind the history's back so that the edit no longer applies, the flow is left as it
    /// is, the history is cleared and the answer is `false`.
    pub fn undo(&mut self, flow: &mut Flow) -> bool {
        let Some(inverse) = self.undo.pop_back() else {
            return false;
        };
        match inverse.apply(flow) {
            Ok(redo) => {
                self.redo.push(redo);
                true
            }
            Err(_) => {
                self.clear();
                false
            }
        }
    }

    /// Makes the last undone edit again. Returns whether anything was redone.
    pub fn redo(&mut self, flow: &mut Flow) -> bool {
        let Some(op) = self.redo.pop() else {
            return false;
        };
        match op.apply(flow) {
            Ok(inverse) => {
                self.undo.push_back(inverse);
                while self.undo.len() > self.limit {
                    self.undo.pop_front();
                }
                true
            }
            Err(_) => {
                self.clear();
                false
            }
        }
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// How many edits can be undone.
    pub fn undo_len(&self) -> usize {
        self.undo.len()
    }

    /// How many undone edits can be redone.
    pub fn redo_len(&self) -> usize {
        self.redo.len()
    }

    /// Forgets every edit (after loading another version of the flow, say).
    pub fn clear(&mut self) {
        self.undo.clear();
        self.redo.clear();
    }
}
