//! Chunk functions: many records to one downstream call, failures still per record.
//!
//! `#[kinesis_processor(chunk = N)]` on a function that takes a [`Chunk<T>`] in place of
//! the payload gives it up to `N` decoded records at once, in stream order, each with its
//! [`RecordMeta`]. It writes them with one bulk call (`BatchWriteItem`, `PutRecordBatch`,
//! `SendMessageBatch`, one S3 object) and answers with a [`ChunkError`] for what failed:
//!
//! - `Ok(())`: every record of the chunk succeeded;
//! - [`ChunkError::whole`] (or `?` on any error, which is retryable): every record failed;
//! - [`ChunkError::records`] or [`Chunk::fail_where`]: the records named failed, each
//!   retryable or rejected, and every other record succeeded.
//!
//! Only the retryable failures are tried again, as a smaller chunk, with the backoff and
//! the retries of a record; rejected records go to the dead-letter sink at once. A panic
//! fails the whole chunk, retryable.
//!
//! A chunk may hold several records of one partition key, in stream order, and no other
//! chunk in flight holds that key. If the downstream may take a later record of a key and
//! leave an earlier one, the retry writes the earlier one after it: where per-key order
//! matters downstream, fail a key's later records with its earlier failed one (or send a
//! key's records in order, one per call).
//!
//! ```
//! use kinesis_processor::{kinesis_processor, Chunk, ChunkError, RecordError};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Click { id: String }
//!
//! /// Writes up to 25 clicks per call; the ones the store did not take are tried again.
//! #[kinesis_processor(chunk = 25, concurrency = 4)]
//! async fn store(clicks: Chunk<Click>) -> Result<(), ChunkError> {
//!     let ids: Vec<&str> = clicks.payloads().map(|click| click.id.as_str()).collect();
//!     let unprocessed = write_all(&ids).await?; // an error: the whole chunk, retryable
//!     clicks.fail_where(|record| {
//!         let missed = unprocessed.contains(&record.payload().id);
//!         missed.then(|| RecordError::retry("the store did not take it"))
//!     })
//! }
//!
//! # async fn write_all(_: &[&str]) -> Result<Vec<String>, std::io::Error> { Ok(vec![]) }
//! # let _ = store;
//! ```

use std::fmt;

use crate::error::RecordError;
use crate::meta::RecordMeta;

/// The most records a chunk may hold; the attribute refuses a larger `chunk`.
pub const MAX_CHUNK: usize = 10_000;

/// Up to `chunk` decoded records, in stream order, for one call of a chunk function.
///
/// Records are named by their position in the chunk (`0..len()`), as [`iter`](Self::iter)
/// and [`ChunkError::records`] count them. A retry gets a smaller chunk: positions are
/// those of the chunk the call was given.
pub struct Chunk<'a, T> {
    records: Vec<ChunkRecord<'a, T>>,
}

/// One record of a [`Chunk`]: its decoded payload and its metadata.
pub struct ChunkRecord<'a, T> {
    payload: T,
    meta: &'a RecordMeta<'a>,
}

impl<'a, T> ChunkRecord<'a, T> {
    /// The decoded payload.
    ///
    /// ```
    /// # use kinesis_processor::chunk::ChunkRecord;
    /// fn length(record: &ChunkRecord<'_, String>) -> usize {
    ///     record.payload().len()
    /// }
    /// # let _ = length;
    /// ```
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// The record's metadata: sequence number, partition key, arrival time.
    ///
    /// ```
    /// # use kinesis_processor::chunk::ChunkRecord;
    /// fn key<'a>(record: &ChunkRecord<'a, String>) -> &'a str {
    ///     record.meta().partition_key()
    /// }
    /// # let _ = key;
    /// ```
    pub fn meta(&self) -> &'a RecordMeta<'a> {
        self.meta
    }

    /// The payload, by value.
    ///
    /// ```
    /// # use kinesis_processor::chunk::ChunkRecord;
    /// fn take(record: ChunkRecord<'_, String>) -> String {
    ///     record.into_payload()
    /// }
    /// # let _ = take;
    /// ```
    pub fn into_payload(self) -> T {
        self.payload
    }
}

impl<'a, T> Chunk<'a, T> {
    /// A chunk of these records, in stream order.
    pub(crate) fn new(
        payloads: Vec<T>,
        metas: impl IntoIterator<Item = &'a RecordMeta<'a>>,
    ) -> Self {
        let records = payloads
            .into_iter()
            .zip(metas)
            .map(|(payload, meta)| ChunkRecord { payload, meta })
            .collect();
        Chunk { records }
    }

    /// How many records the chunk holds (at least one).
    ///
    /// ```
    /// # use kinesis_processor::Chunk;
    /// fn size(chunk: &Chunk<'_, String>) -> usize {
    ///     chunk.len()
    /// }
    /// # let _ = size;
    /// ```
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the chunk holds no records; a chunk function is never called with one.
    ///
    /// ```
    /// # use kinesis_processor::Chunk;
    /// fn empty(chunk: &Chunk<'_, String>) -> bool {
    ///     chunk.is_empty()
    /// }
    /// # let _ = empty;
    /// ```
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records in stream order; the position of each is its index here.
    ///
    /// ```
    /// # use kinesis_processor::Chunk;
    /// fn lines(chunk: &Chunk<'_, String>) -> Vec<String> {
    ///     chunk.iter().map(|r| format!("{} {}", r.meta().sequence_number(), r.payload())).collect()
    /// }
    /// # let _ = lines;
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'_, ChunkRecord<'a, T>> {
        self.records.iter()
    }

    /// The payloads in stream order.
    ///
    /// ```
    /// # use kinesis_processor::Chunk;
    /// fn total(chunk: &Chunk<'_, u64>) -> u64 {
    ///     chunk.payloads().sum()
    /// }
    /// # let _ = total;
    /// ```
    pub fn payloads(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        self.records.iter().map(|record| &record.payload)
    }

    /// The record at `position`, if the chunk holds one there.
    ///
    /// ```
    /// # use kinesis_processor::Chunk;
    /// fn first(chunk: &Chunk<'_, String>) -> Option<String> {
    ///     chunk.get(0).map(|record| record.payload().clone())
    /// }
    /// # let _ = first;
    /// ```
    pub fn get(&self, position: usize) -> Option<&ChunkRecord<'a, T>> {
        self.records.get(position)
    }

    /// The records by value, in stream order (positions unchanged), for a call that takes
    /// the payloads; name failures afterwards with [`ChunkError::records`].
    ///
    /// ```
    /// # use kinesis_processor::Chunk;
    /// fn owned(chunk: Chunk<'_, String>) -> Vec<String> {
    ///     chunk.into_records().map(|record| record.into_payload()).collect()
    /// }
    /// # let _ = owned;
    /// ```
    pub fn into_records(self) -> impl ExactSizeIterator<Item = ChunkRecord<'a, T>> {
        self.records.into_iter()
    }

    /// The answer that fails each record for which `failed` gives an error, and lets every
    /// other record succeed: `Ok(())` when it gives none.
    ///
    /// ```
    /// # use kinesis_processor::{Chunk, ChunkError, RecordError};
    /// fn answer(chunk: &Chunk<'_, String>, refused: &[String]) -> Result<(), ChunkError> {
    ///     chunk.fail_where(|record| {
    ///         refused.contains(record.payload()).then(|| RecordError::retry("throttled"))
    ///     })
    /// }
    /// # let _ = answer;
    /// ```
    pub fn fail_where(
        &self,
        mut failed: impl FnMut(&ChunkRecord<'a, T>) -> Option<RecordError>,
    ) -> Result<(), ChunkError> {
        let failures: Vec<(usize, RecordError)> = self
            .records
            .iter()
            .enumerate()
            .filter_map(|(position, record)| failed(record).map(|error| (position, error)))
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ChunkError::records(failures))
        }
    }
}

impl<'c, 'a, T> IntoIterator for &'c Chunk<'a, T> {
    type Item = &'c ChunkRecord<'a, T>;
    type IntoIter = std::slice::Iter<'c, ChunkRecord<'a, T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// What failed in a chunk: all of it, or some records, each retryable or rejected.
///
/// Any error converts into a failure of the whole chunk (retryable, or rejected for
/// [`RecordError::reject`]), so `?` works on the bulk call:
///
/// ```
/// use kinesis_processor::{ChunkError, RecordError};
///
/// fn parse(text: &str) -> Result<(), ChunkError> {
///     let _n: u32 = text.parse()?; // the whole chunk, retryable
///     Ok(())
/// }
/// assert!(parse("x").is_err());
///
/// let some = ChunkError::records([(2, RecordError::reject("poison"))]);
/// assert_eq!(some.to_string(), "1 record of the chunk failed: [2] poison");
/// ```
pub struct ChunkError {
    failure: Failure,
}

enum Failure {
    /// Every record of the chunk failed with this error.
    Whole(RecordError),
    /// The records at these positions failed; the others succeeded.
    Records(Vec<(usize, RecordError)>),
}

impl ChunkError {
    /// Every record of the chunk failed: retried together if `error` is retryable,
    /// dead-lettered together if it is a rejection.
    ///
    /// ```
    /// # use kinesis_processor::{ChunkError, RecordError};
    /// let throttled = ChunkError::whole(RecordError::retry("throttled"));
    /// # let _ = throttled;
    /// ```
    pub fn whole(error: impl Into<RecordError>) -> Self {
        ChunkError { failure: Failure::Whole(error.into()) }
    }

    /// The records at these positions (in the chunk the call was given) failed, each
    /// with its own error; every other record of the chunk succeeded. A position named
    /// twice keeps its first error; a position outside the chunk fails the whole chunk,
    /// retryable, since the answer cannot be trusted.
    ///
    /// ```
    /// # use kinesis_processor::{ChunkError, RecordError};
    /// let two = ChunkError::records([
    ///     (0, RecordError::retry("unprocessed")),
    ///     (3, RecordError::reject("a field is too long")),
    /// ]);
    /// # let _ = two;
    /// ```
    pub fn records(failures: impl IntoIterator<Item = (usize, RecordError)>) -> Self {
        ChunkError { failure: Failure::Records(failures.into_iter().collect()) }
    }

    /// Each record's failure, by position in a chunk of `len` records: `None` for the
    /// records that succeeded.
    pub(crate) fn into_failures(self, len: usize) -> Vec<Option<RecordError>> {
        match self.failure {
            Failure::Whole(error) => copies(error, len),
            Failure::Records(failures) => {
                if let Some((position, _)) = failures.iter().find(|(at, _)| *at >= len) {
                    let error = OutOfChunk { position: *position, len };
                    return copies(RecordError::retry(error), len);
                }
                let mut by_position: Vec<Option<RecordError>> = (0..len).map(|_| None).collect();
                for (position, error) in failures {
                    by_position[position].get_or_insert(error);
                }
                by_position
            }
        }
    }

    /// Whether the answer names records that failed (not the whole chunk, and not none).
    pub(crate) fn is_partial(&self) -> bool {
        matches!(&self.failure, Failure::Records(failures) if !failures.is_empty())
    }
}

/// `len` errors of `error`'s kind and text: one for each record of the chunk.
fn copies(error: RecordError, len: usize) -> Vec<Option<RecordError>> {
    let kind = error.kind();
    let text = error.chain();
    let mut all: Vec<Option<RecordError>> =
        (1..len).map(|_| Some(RecordError::new(kind, text.clone()))).collect();
    all.insert(0, Some(error));
    all
}

impl<E: Into<RecordError>> From<E> for ChunkError {
    fn from(error: E) -> Self {
        ChunkError::whole(error)
    }
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            Failure::Whole(error) => write!(f, "the whole chunk failed: {error}"),
            Failure::Records(failures) => {
                let noun = if failures.len() == 1 { "record" } else { "records" };
                write!(f, "{} {noun} of the chunk failed:", failures.len())?;
                for (position, error) in failures.iter().take(3) {
                    write!(f, " [{position}] {error}")?;
                }
                if failures.len() > 3 {
                    f.write_str(" ..")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A chunk function named a record its chunk does not hold.
#[derive(Debug)]
struct OutOfChunk {
    position: usize,
    len: usize,
}

impl fmt::Display for OutOfChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the chunk function named record {} of a chunk of {}; its answer cannot be \
             trusted, so the whole chunk failed",
            self.position, self.len
        )
    }
}

impl std::error::Error for OutOfChunk {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_naming_no_record_lets_every_record_succeed_and_is_not_partial() {
        let none = ChunkError::records([]);
        assert!(!none.is_partial());
        assert!(none.into_failures(3).iter().all(Option::is_none));
    }

    #[test]
    fn a_position_named_twice_keeps_its_first_error() {
        let twice = ChunkError::records([
            (1, RecordError::reject("first")),
            (1, RecordError::retry("second")),
        ]);
        assert!(twice.is_partial());
        let failures = twice.into_failures(2);
        assert!(failures[0].is_none());
        assert_eq!(failures[1].as_ref().map(|e| e.is_permanent()), Some(true));
    }

    #[test]
    fn a_whole_failure_gives_every_record_its_kind_and_text() {
        let whole = ChunkError::whole(RecordError::reject("malformed"));
        assert!(!whole.is_partial());
        let failures = whole.into_failures(3);
        assert!(failures.iter().all(|e| e.as_ref().is_some_and(|e| e.is_permanent())));
        assert!(failures.iter().all(|e| e.as_ref().unwrap().to_string() == "malformed"));
    }
}
