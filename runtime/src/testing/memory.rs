//! [`MemoryDeadLetter`]: a dead-letter sink that keeps letters in memory, for tests.

use std::sync::{Arc, Mutex, PoisonError};

use crate::dead_letter::{DeadLetter, DeadLetterSink, SinkError};

type Refusal = dyn Fn(&DeadLetter) -> Option<String> + Send + Sync;

/// Keeps every dead letter it confirms. Clones share one store, so a test keeps a clone
/// and hands another to the processor.
///
/// ```
/// use kinesis_processor::testing::MemoryDeadLetter;
/// let dlq = MemoryDeadLetter::default();
/// let processor_side = dlq.clone();
/// # let _ = processor_side;
/// assert!(dlq.records().is_empty());
/// ```
#[derive(Clone, Default)]
pub struct MemoryDeadLetter {
    store: Arc<Mutex<Vec<DeadLetter>>>,
    refuse: Option<Arc<Refusal>>,
}

impl MemoryDeadLetter {
    /// An empty sink that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink that refuses the letters for which `refuse` returns a reason, and keeps
    /// the others: a sink's partial batch failure, for tests.
    ///
    /// ```
    /// use kinesis_processor::testing::MemoryDeadLetter;
    /// let dlq = MemoryDeadLetter::refusing(|letter| {
    ///     (letter.partition_key.as_deref() == Some("bad")).then(|| "throttled".to_owned())
    /// });
    /// # let _ = dlq;
    /// ```
    pub fn refusing(
        refuse: impl Fn(&DeadLetter) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        MemoryDeadLetter { store: Arc::default(), refuse: Some(Arc::new(refuse)) }
    }

    /// Every dead letter confirmed so far, in the order received.
    pub fn records(&self) -> Vec<DeadLetter> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl DeadLetterSink for MemoryDeadLetter {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), SinkError>> {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        letters
            .iter()
            .map(|letter| {
                if let Some(why) = self.refuse.as_ref().and_then(|refuse| refuse(letter)) {
                    return Err(SinkError::new(why));
                }
                store.push(letter.clone());
                Ok(())
            })
            .collect()
    }
}

impl std::fmt::Debug for MemoryDeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryDeadLetter").field("records", &self.records().len()).finish()
    }
}
