//! [`Fold`]: a window processor's window state while its batch runs. Each call of the
//! function folds a record into a copy; only a call that succeeds puts its copy back, so a
//! failed, panicking or timed-out attempt leaves no trace.
//!
//! Lambda checkpoints whole Kinesis records: when a user record of a KPL aggregate is
//! unfinished, the whole aggregate is delivered again. So the fold also keeps the state
//! from before the aggregate being processed, to answer with when the checkpoint is there.

use std::sync::{Mutex, PoisonError};

use crate::batch::Unit;

/// The window state that a window processor's records fold into.
pub(crate) struct Fold<W> {
    state: Mutex<W>,
    /// The Kinesis record (by position in the payload) of the aggregate being processed,
    /// and the state before its first user record.
    before_aggregate: Mutex<Option<(usize, W)>>,
}

impl<W: Clone> Fold<W> {
    pub fn new(state: W) -> Self {
        Fold { state: Mutex::new(state), before_aggregate: Mutex::new(None) }
    }

    /// A copy of the state, for one call to fold into.
    pub fn copy(&self) -> W {
        lock(&self.state).clone()
    }

    /// Keeps the copy a successful call folded into.
    pub fn keep(&self, state: W) {
        *lock(&self.state) = state;
    }

    /// The batch reaches `unit` (units are reached in stream order, one at a time): the
    /// first user record of an aggregate keeps the state from before it.
    pub fn reach(&self, unit: &Unit<'_>) {
        if !unit.meta.is_aggregated() {
            return;
        }
        let mut before = lock(&self.before_aggregate);
        if before.as_ref().is_none_or(|(record, _)| *record != unit.record) {
            *before = Some((unit.record, self.copy()));
        }
    }

    /// The state to answer with: the fold so far, or, when the checkpoint is in an
    /// aggregate (`checkpoint_record`), the state from before that aggregate.
    pub fn answer(self, checkpoint_record: Option<usize>) -> W {
        let before = self.before_aggregate.into_inner().unwrap_or_else(PoisonError::into_inner);
        match (before, checkpoint_record) {
            (Some((record, state)), Some(checkpoint)) if record == checkpoint => state,
            _ => self.state.into_inner().unwrap_or_else(PoisonError::into_inner),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
