//! Idempotency: each record's work done once, as far as a store of keys can make it.
//!
//! Kinesis through Lambda delivers at least once: a batch retried after a timeout, records
//! after a failure redelivered, a producer that retries a put. With
//! [`Processor::idempotency`](crate::Processor::idempotency), each record is claimed in an
//! [`IdempotencyStore`] before the function runs and marked done after it finishes
//! (succeeded, or dead-lettered and confirmed); a record already done is skipped as a
//! *duplicate* ([`Outcome::Duplicate`](crate::Outcome::Duplicate)) without calling the
//! function.
//!
//! - **Key.** By default the record's identity in the stream: its stream ARN, sequence
//!   number and sub-sequence number, so that each user record of a KPL aggregate is its
//!   own. [`idempotency_key`](crate::Processor::idempotency_key) (or the attribute's
//!   `idempotency_key = path::to::fn`) takes a key from the payload instead, for producers
//!   that retry one event under two sequence numbers. Keys are prefixed with the
//!   processor's name, so that functions can share one table.
//! - **States.** A claim holds until the invocation's deadline; a completion is kept for
//!   [`idempotency_keep_for`](crate::Processor::idempotency_keep_for) (1 hour by default);
//!   a record that does not finish has its claim released, so that a retry runs at once.
//!   A record in progress in another invocation is a retryable failure; an expired claim
//!   is taken over.
//! - **Fail closed.** A store that cannot be reached, throttles past the SDK's retries or
//!   answers nonsense makes the record a reported failure: the function never runs
//!   unguarded, unless [`idempotency_fail_open`](crate::Processor::idempotency_fail_open)
//!   chooses to (logged at `WARN` once per invocation).
//! - **Cheap per batch.** The records already done are found before the batch runs, with
//!   one [`find_done`](IdempotencyStore::find_done) call per
//!   [`read_batch_size`](IdempotencyStore::read_batch_size) keys; a record that runs costs a
//!   claim, and its completion or release is written in batches when the batch ends.
//! - **Window processors** make no per-record claims (the state Lambda carries makes them
//!   exact); their window end is guarded instead, keyed by shard and window start, so that
//!   a retried final invocation publishes once.
//!
//! What it does not guarantee: a function that fails after its side effect (or is cut at
//! the deadline) runs again, since its claim is released; and a completion that cannot be
//! written leaves the claim to expire at the deadline, after which a redelivery runs again.

#[cfg(feature = "dynamodb")]
mod dynamodb;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

#[cfg(feature = "dynamodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "dynamodb")))]
pub use dynamodb::DynamoDbIdempotency;

use crate::error::BoxError;

/// What a claim found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is now claimed by this invocation, until the expiry it was claimed with.
    Claimed,
    /// The key is done: the record is a duplicate.
    Done,
    /// Another invocation holds an unexpired claim on the key.
    InProgress,
}

/// Where idempotency keys are kept: a DynamoDB table, or memory in tests.
///
/// Every method may fail with a [`StoreError`]; the runtime then fails closed. Times are
/// passed in, so that a store compares expiries against the invocation's clock.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::SystemTime;
/// use kinesis_processor::idempotency::{Claim, IdempotencyStore, StoreError};
///
/// /// Keys in a map: key -> (done, expiry).
/// #[derive(Default)]
/// struct Map(Mutex<HashMap<String, (bool, SystemTime)>>);
///
/// impl IdempotencyStore for Map {
///     async fn find_done(&self, keys: &[String], now: SystemTime) -> Result<Vec<bool>, StoreError> {
///         let map = self.0.lock().unwrap();
///         Ok(keys.iter().map(|key| matches!(map.get(key), Some((true, until))if *until > now)).collect())
///     }
///
///     async fn claim(&self, key: &str, now: SystemTime, until: SystemTime) -> Result<Claim, StoreError> {
///         let mut map = self.0.lock().unwrap();
///         match map.get(key) {
///             Some((true, expiry)) if *expiry > now => Ok(Claim::Done),
///             Some((false, expiry)) if *expiry > now => Ok(Claim::InProgress),
///             _ => {
///                 map.insert(key.to_owned(), (false, until));
///                 Ok(Claim::Claimed)
///             }
///         }
///     }
///
///     async fn complete(&self, keys: &[String], keep_until: SystemTime) -> Result<(), StoreError> {
///         let mut map = self.0.lock().unwrap();
///         keys.iter().for_each(|key| { map.insert(key.clone(), (true, keep_until)); });
///         Ok(())
///     }
///
///     async fn release(&self, keys: &[String]) -> Result<(), StoreError> {
///         let mut map = self.0.lock().unwrap();
///         keys.iter().for_each(|key| { map.remove(key); });
///         Ok(())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an idempotency store",
    label = "this does not implement `IdempotencyStore`",
    note = "use `DynamoDbIdempotency` (feature `dynamodb`), `MemoryIdempotency` (feature \
            `testing`), or implement `kinesis_processor::idempotency::IdempotencyStore`"
)]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Which of `keys` (at most [`read_batch_size`](Self::read_batch_size)) are done and
    /// unexpired at `now`: one answer per key, in order.
    fn find_done(
        &self,
        keys: &[String],
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Claims `key` until `until`, if it has no entry, or only an expired one (a claim or a
    /// completion past its expiry at `now`); otherwise says what holds it. Must be atomic
    /// (a conditional write): two invocations never both claim a key.
    fn claim(
        &self,
        key: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Marks claimed keys done, kept until `keep_until`.
    fn complete(
        &self,
        keys: &[String],
        keep_until: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Releases this invocation's claims on `keys` (their records did not finish), so that
    /// a retry can claim them at once.
    fn release(&self, keys: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The most keys one [`find_done`](Self::find_done) call takes (100 unless overridden,
    /// DynamoDB's `BatchGetItem` limit).
    fn read_batch_size(&self) -> usize {
        100
    }
}

impl<S: IdempotencyStore> IdempotencyStore for Arc<S> {
    fn find_done(
        &self,
        keys: &[String],
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send {
        (**self).find_done(keys, now)
    }

    fn claim(
        &self,
        key: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        (**self).claim(key, now, until)
    }

    fn complete(
        &self,
        keys: &[String],
        keep_until: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete(keys, keep_until)
    }

    fn release(&self, keys: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(keys)
    }

    fn read_batch_size(&self) -> usize {
        (**self).read_batch_size()
    }
}

/// Why a store call failed.
///
/// ```
/// use kinesis_processor::idempotency::StoreError;
/// let err = StoreError::new("the table does not exist");
/// assert_eq!(err.to_string(), "the table does not exist");
/// ```
#[derive(Clone, Debug)]
pub struct StoreError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl StoreError {
    /// Wraps any error or message.
    pub fn new(error: impl Into<BoxError>) -> Self {
        StoreError(Arc::from(error.into()))
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::error::error_chain(&*self.0))
    }
}

impl std::error::Error for StoreError {}

/// A boxed future of one store call.
pub(crate) type StoreFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The object-safe face of [`IdempotencyStore`], so that a `Processor` can hold any store.
pub(crate) trait ErasedStore: Send + Sync {
    fn find_done<'a>(&'a self, keys: &'a [String], now: SystemTime) -> StoreFuture<'a, Vec<bool>>;
    fn claim<'a>(
        &'a self,
        key: &'a str,
        now: SystemTime,
        until: SystemTime,
    ) -> StoreFuture<'a, Claim>;
    fn complete<'a>(&'a self, keys: &'a [String], keep_until: SystemTime) -> StoreFuture<'a, ()>;
    fn release<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, ()>;
    fn read_batch_size(&self) -> usize;
}

impl<S: IdempotencyStore> ErasedStore for S {
    fn find_done<'a>(&'a self, keys: &'a [String], now: SystemTime) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(IdempotencyStore::find_done(self, keys, now))
    }

    fn claim<'a>(
        &'a self,
        key: &'a str,
        now: SystemTime,
        until: SystemTime,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(IdempotencyStore::claim(self, key, now, until))
    }

    fn complete<'a>(&'a self, keys: &'a [String], keep_until: SystemTime) -> StoreFuture<'a, ()> {
        Box::pin(IdempotencyStore::complete(self, keys, keep_until))
    }

    fn release<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, ()> {
        Box::pin(IdempotencyStore::release(self, keys))
    }

    fn read_batch_size(&self) -> usize {
        IdempotencyStore::read_batch_size(self).max(1)
    }
}
