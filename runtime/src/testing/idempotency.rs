//! [`MemoryIdempotency`]: an idempotency store in memory, counting its calls, that can be
//! made to fail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::idempotency::{Claim, IdempotencyStore, StoreError};

/// An [`IdempotencyStore`] in memory, cheap to clone (clones share the keys), for tests
/// and benchmarks. It counts the calls it takes, by kind, and [`fail`](Self::fail) makes
/// every call fail, as an unreachable store would.
///
/// ```
/// use kinesis_processor::{kinesis_processor, Outcome, RecordError};
/// use kinesis_processor::testing::{MemoryIdempotency, TestBatch};
///
/// #[kinesis_processor(format = text)]
/// async fn charge(_order: String) -> Result<(), RecordError> {
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryIdempotency::new();
/// let processor = charge().idempotency(store.clone());
/// let batch = TestBatch::new().text("order-1").build();
/// let first = processor.process(&batch).await.unwrap();
/// let again = processor.process(&batch).await.unwrap();
/// assert_eq!(first.records().next().unwrap().outcome(), Outcome::Succeeded);
/// assert_eq!(again.records().next().unwrap().outcome(), Outcome::Duplicate);
/// # });
/// ```
#[derive(Clone, Default)]
pub struct MemoryIdempotency {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: Mutex<HashMap<String, Entry>>,
    failing: AtomicBool,
    calls: [AtomicU64; 4],
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    done: bool,
    expires: SystemTime,
}

/// The calls a [`MemoryIdempotency`] took, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCalls {
    /// `find_done` calls: reads.
    pub reads: u64,
    /// `claim` calls.
    pub claims: u64,
    /// `complete` calls.
    pub completions: u64,
    /// `release` calls.
    pub releases: u64,
}

impl MemoryIdempotency {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call fail (`true`) or answer again (`false`).
    pub fn fail(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    /// The calls taken so far.
    pub fn calls(&self) -> StoreCalls {
        let [reads, claims, completions, releases] =
            self.inner.calls.each_ref().map(|calls| calls.load(Ordering::SeqCst));
        StoreCalls { reads, claims, completions, releases }
    }

    /// Whether `key` is done (and unexpired at `now`).
    pub fn is_done(&self, key: &str, now: SystemTime) -> bool {
        self.entries().get(key).is_some_and(|entry| entry.done && entry.expires > now)
    }

    /// Every key the store holds, claimed or done.
    pub fn keys(&self) -> Vec<String> {
        self.entries().keys().cloned().collect()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a call of kind `kind`, failing it if the store is failing.
    fn call(&self, kind: usize) -> Result<(), StoreError> {
        self.inner.calls[kind].fetch_add(1, Ordering::SeqCst);
        if self.inner.failing.load(Ordering::SeqCst) {
            return Err(StoreError::new("the in-memory store is failing on purpose"));
        }
        Ok(())
    }
}

impl IdempotencyStore for MemoryIdempotency {
    async fn find_done(&self, keys: &[String], now: SystemTime) -> Result<Vec<bool>, StoreError> {
        self.call(0)?;
        let entries = self.entries();
        let done = |key: &String| entries.get(key).is_some_and(|e| e.done && e.expires > now);
        Ok(keys.iter().map(done).collect())
    }

    async fn claim(
        &self,
        key: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<Claim, StoreError> {
        self.call(1)?;
        let mut entries = self.entries();
        match entries.get(key) {
            Some(entry) if entry.expires > now && entry.done => Ok(Claim::Done),
            Some(entry) if entry.expires > now => Ok(Claim::InProgress),
            _ => {
                entries.insert(key.to_owned(), Entry { done: false, expires: until });
                Ok(Claim::Claimed)
            }
        }
    }

    async fn complete(&self, keys: &[String], keep_until: SystemTime) -> Result<(), StoreError> {
        self.call(2)?;
        let mut entries = self.entries();
        for key in keys {
            entries.insert(key.clone(), Entry { done: true, expires: keep_until });
        }
        Ok(())
    }

    async fn release(&self, keys: &[String]) -> Result<(), StoreError> {
        self.call(3)?;
        let mut entries = self.entries();
        for key in keys {
            if entries.get(key).is_some_and(|entry| !entry.done) {
                entries.remove(key);
            }
        }
        Ok(())
    }
}
