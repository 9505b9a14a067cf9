//! [`Fold`]: a window processor's window state while its batch runs. Each call of the
//! function folds a record into a copy; only a call that succeeds puts its copy back, so a
//! failed, panicking or timed-out attempt leaves no trace.

use std::sync::{Mutex, PoisonError};

/// The window state that a window processor's records fold into: each call works on a
/// copy, and only a call that succeeds puts its copy back.
pub(crate) struct Fold<W>(Mutex<W>);

impl<W: Clone> Fold<W> {
    pub fn new(state: W) -> Self {
        Fold(Mutex::new(state))
    }

    pub fn copy(&self) -> W {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn keep(&self, state: W) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    /// The state folded so far.
    pub fn into_inner(self) -> W {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}
