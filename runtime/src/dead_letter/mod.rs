//! Dead letters: records that will not be processed, sent with their data to where
//! operators can inspect and replay them.
//!
//! A record becomes a dead letter when its processing function rejects it
//! ([`RecordError::reject`](crate::RecordError::reject)), when it cannot be decoded, when it
//! is older than `max_record_age`, or (with `on_retries_exhausted = dead_letter`) when its
//! retries run out. The runtime hands dead letters to a [`DeadLetterSink`] in batches and
//! counts a record as done only when the sink confirms it; a refused entry becomes the
//! batch's reported failure, so Lambda delivers the record again.
//!
//! A sink receives letters in the order records settle, not in stream order: a record
//! settled before it starts (undecodable envelope, expired) is queued as the engine reaches
//! it, one rejected by the function when its attempt ends, so the letter of an expired
//! record can come before that of a rejected one earlier in the stream. Each letter names
//! its shard, sequence and sub-sequence number, by which they can be put back in order.

#[cfg(any(feature = "sqs", feature = "sns", feature = "s3", feature = "dynamodb"))]
pub(crate) mod aws;
#[cfg(any(feature = "sqs", feature = "sns"))]
mod batching;
mod envelope;
mod log;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "sns")]
mod sns;
#[cfg(feature = "sqs")]
mod sqs;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use envelope::{DeadLetter, DeadLetterReason, ENVELOPE_VERSION};
pub use log::LogDeadLetter;
#[cfg(feature = "s3")]
#[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
pub use s3::S3DeadLetter;
#[cfg(feature = "sns")]
#[cfg_attr(docsrs, doc(cfg(feature = "sns")))]
pub use sns::{SnsDeadLetter, SNS_MAX_MESSAGE};
#[cfg(feature = "sqs")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqs")))]
pub use sqs::{SqsDeadLetter, SQS_DEFAULT_MAX_MESSAGE};

use crate::error::BoxError;

/// Where dead letters go: a queue, a topic, a bucket, the log.
///
/// `send` receives a batch of at most [`batch_size`](Self::batch_size) letters and answers
/// one result per letter, in order. Answer `Ok` only for letters the destination has
/// durably accepted: a letter answered `Err` (or not answered at all) is not acknowledged,
/// and its record is reported to Lambda to be delivered again.
///
/// ```
/// use kinesis_processor::dead_letter::{DeadLetter, DeadLetterSink, SinkError};
///
/// /// Writes each dead letter as a JSON line on standard error.
/// struct Stderr;
///
/// impl DeadLetterSink for Stderr {
///     async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), SinkError>> {
///         letters
///             .iter()
///             .map(|letter| {
///                 let line = serde_json::to_string(letter).map_err(SinkError::new)?;
///                 eprintln!("{line}");
///                 Ok(())
///             })
///             .collect()
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a dead-letter sink",
    label = "this does not implement `DeadLetterSink`",
    note = "use `LogDeadLetter`, a sink of the `sqs`, `sns` or `s3` features, or implement \
            `kinesis_processor::dead_letter::DeadLetterSink` for your type"
)]
pub trait DeadLetterSink: Send + Sync + 'static {
    /// Sends a batch of dead letters; answers one result per letter, in order.
    fn send(
        &self,
        letters: &[DeadLetter],
    ) -> impl Future<Output = Vec<Result<(), SinkError>>> + Send;

    /// The most letters one [`send`](Self::send) call takes (10 unless overridden).
    fn batch_size(&self) -> usize {
        10
    }

    /// Whether the sink writes each letter to the log itself, as
    /// [`LogDeadLetter`] does; the runtime then logs no line of its own for it, so that
    /// each dead letter is logged once (`false` unless overridden).
    fn logs_each_letter(&self) -> bool {
        false
    }

    /// Whether the sink takes letters at all (`true` unless overridden). `None` as a sink
    /// does not, and a processor given it behaves as one given no sink: permanent
    /// failures are reported to Lambda.
    fn takes_letters(&self) -> bool {
        true
    }
}

impl<S: DeadLetterSink> DeadLetterSink for Arc<S> {
    fn send(
        &self,
        letters: &[DeadLetter],
    ) -> impl Future<Output = Vec<Result<(), SinkError>>> + Send {
        (**self).send(letters)
    }

    fn batch_size(&self) -> usize {
        (**self).batch_size()
    }

    fn logs_each_letter(&self) -> bool {
        (**self).logs_each_letter()
    }

    fn takes_letters(&self) -> bool {
        (**self).takes_letters()
    }
}

/// A sink chosen at run time: `Some(sink)`, or `None` for no sink at all.
///
/// ```
/// use kinesis_processor::dead_letter::LogDeadLetter;
/// # use kinesis_processor::{kinesis_processor, RecordError};
/// # #[kinesis_processor(format = text)]
/// # async fn store(_line: String) -> Result<(), RecordError> { Ok(()) }
///
/// let log = std::env::var("DEAD_LETTERS").as_deref() != Ok("none");
/// let processor = store().dead_letter(log.then(LogDeadLetter::new));
/// # let _ = processor;
/// ```
impl<S: DeadLetterSink> DeadLetterSink for Option<S> {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), SinkError>> {
        match self {
            Some(sink) => sink.send(letters).await,
            None => vec![Err(SinkError::new("no dead-letter sink is configured")); letters.len()],
        }
    }

    fn batch_size(&self) -> usize {
        self.as_ref().map_or(10, DeadLetterSink::batch_size)
    }

    fn logs_each_letter(&self) -> bool {
        self.as_ref().is_some_and(DeadLetterSink::logs_each_letter)
    }

    fn takes_letters(&self) -> bool {
        self.as_ref().is_some_and(DeadLetterSink::takes_letters)
    }
}

/// A dead-letter sink behind a pointer, so that a program can choose one at run time:
/// every [`DeadLetterSink`] is one, and `Box<dyn DynDeadLetterSink>` is a sink again.
///
/// ```
/// use kinesis_processor::dead_letter::{DynDeadLetterSink, LogDeadLetter};
/// # #[cfg(feature = "testing")] {
/// use kinesis_processor::testing::MemoryDeadLetter;
/// # use kinesis_processor::{kinesis_processor, RecordError};
/// # #[kinesis_processor(format = text)]
/// # async fn store(_line: String) -> Result<(), RecordError> { Ok(()) }
///
/// let sink: Box<dyn DynDeadLetterSink> = if std::env::var_os("IN_MEMORY").is_some() {
///     Box::new(MemoryDeadLetter::new())
/// } else {
///     Box::new(LogDeadLetter::new())
/// };
/// let processor = store().dead_letter(sink);
/// # let _ = processor;
/// # }
/// ```
pub trait DynDeadLetterSink: Send + Sync + 'static {
    /// [`DeadLetterSink::send`], with its future boxed.
    fn send_dyn<'a>(&'a self, letters: &'a [DeadLetter]) -> SendFuture<'a>;
    /// [`DeadLetterSink::batch_size`].
    fn batch_size_dyn(&self) -> usize;
    /// [`DeadLetterSink::logs_each_letter`].
    fn logs_each_letter_dyn(&self) -> bool;
    /// [`DeadLetterSink::takes_letters`].
    fn takes_letters_dyn(&self) -> bool;
}

impl<S: DeadLetterSink> DynDeadLetterSink for S {
    fn send_dyn<'a>(&'a self, letters: &'a [DeadLetter]) -> SendFuture<'a> {
        Box::pin(self.send(letters))
    }

    fn batch_size_dyn(&self) -> usize {
        self.batch_size()
    }

    fn logs_each_letter_dyn(&self) -> bool {
        self.logs_each_letter()
    }

    fn takes_letters_dyn(&self) -> bool {
        self.takes_letters()
    }
}

impl DeadLetterSink for Box<dyn DynDeadLetterSink> {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), SinkError>> {
        (**self).send_dyn(letters).await
    }

    fn batch_size(&self) -> usize {
        (**self).batch_size_dyn()
    }

    fn logs_each_letter(&self) -> bool {
        (**self).logs_each_letter_dyn()
    }

    fn takes_letters(&self) -> bool {
        (**self).takes_letters_dyn()
    }
}

/// Why a sink did not accept a dead letter. Cheap to clone, so that one failed call can
/// answer for every letter it carried.
///
/// ```
/// use kinesis_processor::dead_letter::SinkError;
/// let err = SinkError::new("queue does not exist");
/// assert_eq!(err.clone().to_string(), "queue does not exist");
/// ```
#[derive(Clone, Debug)]
pub struct SinkError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl SinkError {
    /// Wraps any error or message.
    pub fn new(error: impl Into<BoxError>) -> Self {
        SinkError(Arc::from(error.into()))
    }
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::error::error_chain(&*self.0))
    }
}

impl std::error::Error for SinkError {}

/// A boxed future of one sink call.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Vec<Result<(), SinkError>>> + Send + 'a>>;

/// The object-safe face of [`DeadLetterSink`], so a `Processor` can hold any sink.
pub(crate) trait ErasedSink: Send + Sync {
    /// Sends letters it owns, so the future needs no borrow of the caller's buffer.
    fn send_owned(&self, letters: Vec<DeadLetter>) -> SendFuture<'_>;
    fn batch_size(&self) -> usize;
    fn logs_each_letter(&self) -> bool;
}

impl<S: DeadLetterSink> ErasedSink for S {
    fn send_owned(&self, letters: Vec<DeadLetter>) -> SendFuture<'_> {
        Box::pin(async move { self.send(&letters).await })
    }

    fn batch_size(&self) -> usize {
        DeadLetterSink::batch_size(self).max(1)
    }

    fn logs_each_letter(&self) -> bool {
        DeadLetterSink::logs_each_letter(self)
    }
}
