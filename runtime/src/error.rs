//! Errors: what processing one record can answer ([`RecordError`]) and what can stop a
//! whole invocation ([`Error`]).

use std::error::Error as StdError;
use std::fmt;

/// The boxed error type that record errors, decoders and sinks carry.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why processing one record did not succeed, and what the runtime should do about it.
///
/// A record error is either *retryable* (the record is attempted again in-process, then
/// reported to Lambda so that it is delivered again) or *permanent* (the record goes to the
/// dead-letter sink at once and the batch moves on). Any
/// `E: std::error::Error + Send + Sync + 'static` converts into a retryable error, so `?`
/// works on the errors of downstream calls:
///
/// ```
/// use kinesis_processor::RecordError;
///
/// fn store(line: &str) -> Result<(), RecordError> {
///     if line.is_empty() {
///         return Err(RecordError::reject("empty line")); // permanent: dead-lettered
///     }
///     let _n: u32 = line.parse()?; // a std error: retryable
///     Ok(())
/// }
/// assert!(store("").unwrap_err().is_permanent());
/// assert!(store("x").unwrap_err().is_retryable());
/// assert!(store("7").is_ok());
/// ```
pub struct RecordError {
    kind: RecordErrorKind,
    source: BoxError,
}

/// The two kinds of [`RecordError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordErrorKind {
    /// Try again: in-process up to `retries` times, then report the record to Lambda.
    Retryable,
    /// Never try again: dead-letter the record and move on.
    Permanent,
}

impl RecordError {
    /// A transient failure: the record is retried in-process, then reported to Lambda.
    ///
    /// ```
    /// # use kinesis_processor::RecordError;
    /// let err = RecordError::retry(format!("downstream answered {}", 503));
    /// assert!(err.is_retryable());
    /// ```
    pub fn retry(error: impl Into<BoxError>) -> Self {
        Self::new(RecordErrorKind::Retryable, error)
    }

    /// A permanent failure (a poison record): it is dead-lettered at once and the batch
    /// moves on. With no dead-letter sink configured it is reported like a retryable
    /// failure, so nothing is dropped silently.
    ///
    /// ```
    /// # use kinesis_processor::RecordError;
    /// let err = RecordError::reject("unknown event type");
    /// assert!(err.is_permanent());
    /// assert_eq!(err.to_string(), "unknown event type");
    /// ```
    pub fn reject(error: impl Into<BoxError>) -> Self {
        Self::new(RecordErrorKind::Permanent, error)
    }

    /// An error of the given kind.
    ///
    /// ```
    /// # use kinesis_processor::{RecordError, RecordErrorKind};
    /// let err = RecordError::new(RecordErrorKind::Permanent, "bad");
    /// assert_eq!(err.kind(), RecordErrorKind::Permanent);
    /// ```
    pub fn new(kind: RecordErrorKind, error: impl Into<BoxError>) -> Self {
        Self { kind, source: error.into() }
    }

    /// Which kind of error this is.
    ///
    /// ```
    /// # use kinesis_processor::{RecordError, RecordErrorKind};
    /// assert_eq!(RecordError::retry("x").kind(), RecordErrorKind::Retryable);
    /// ```
    pub fn kind(&self) -> RecordErrorKind {
        self.kind
    }

    /// Whether the runtime will try the record again.
    ///
    /// ```
    /// # use kinesis_processor::RecordError;
    /// assert!(RecordError::retry("timeout").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        self.kind == RecordErrorKind::Retryable
    }

    /// Whether the record is a poison record that must not be tried again.
    ///
    /// ```
    /// # use kinesis_processor::RecordError;
    /// assert!(RecordError::reject("poison").is_permanent());
    /// ```
    pub fn is_permanent(&self) -> bool {
        self.kind == RecordErrorKind::Permanent
    }

    /// The underlying error.
    ///
    /// ```
    /// # use kinesis_processor::RecordError;
    /// let err: RecordError = "x".parse::<u8>().unwrap_err().into();
    /// assert!(err.source().is::<std::num::ParseIntError>());
    /// ```
    pub fn source(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }

    /// The underlying error, by value.
    ///
    /// ```
    /// # use kinesis_processor::RecordError;
    /// let boxed = RecordError::reject("no").into_source();
    /// assert_eq!(boxed.to_string(), "no");
    /// ```
    pub fn into_source(self) -> BoxError {
        self.source
    }

    /// The error and its whole chain of causes, joined by `": "`.
    ///
    /// ```
    /// # use kinesis_processor::RecordError;
    /// let io = std::io::Error::new(std::io::ErrorKind::Other, "refused");
    /// assert_eq!(RecordError::retry(io).chain(), "refused");
    /// ```
    pub fn chain(&self) -> String {
        error_chain(self.source())
    }
}

/// Renders an error and its causes as one line, outermost first.
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        // Many errors repeat their cause in their own message; do not say it twice.
        if !text.ends_with(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

impl<E: StdError + Send + Sync + 'static> From<E> for RecordError {
    fn from(error: E) -> Self {
        Self::retry(error)
    }
}

impl fmt::Debug for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordError")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

/// What can stop an invocation, or the processor, as a whole.
///
/// Per-record failures never surface here: they are the records' outcomes in the
/// [`BatchReport`](crate::BatchReport), and its counts in a
/// [`BatchOutcome`](crate::BatchOutcome). An `Error` from an invocation makes Lambda retry the
/// whole batch, which is the safe answer when the batch cannot be acknowledged record by
/// record.
///
/// Its `Debug` form is its message, so that `main` returning one prints a readable line:
/// `Error: configuration: DEAD_LETTER_QUEUE_URL is not set`.
#[non_exhaustive]
pub enum Error {
    /// The invocation payload is not a Kinesis batch (not JSON, no `Records` array, or the
    /// records of another event source).
    InvalidEvent(String),
    /// A record that is not finished has no usable sequence number, so no checkpoint can be
    /// named for it: the whole batch must be retried.
    Uncheckpointable(String),
    /// A window processor's event has no tumbling window, or a `window` or `state` it
    /// cannot read.
    InvalidWindow(String),
    /// The window-end function failed on a final invocation without records: Lambda
    /// retries the invocation, and with it the window end.
    WindowEnd(String),
    /// Configuration is missing or invalid (an environment variable, an option).
    Config(String),
    /// An I/O error (reading an event file, a lookup table, ...).
    Io(std::io::Error),
    /// A local run (outside Lambda) could not do all it was asked: an unknown option, an
    /// event file that could not be read or processed.
    LocalRun(String),
    /// Any other error: the Lambda runtime, a user's set-up code.
    Other(BoxError),
}

impl Error {
    /// Wraps any error, for set-up code in `main`.
    ///
    /// ```
    /// let err = kinesis_processor::Error::other("lookup table is empty");
    /// assert_eq!(err.to_string(), "lookup table is empty");
    /// ```
    pub fn other(error: impl Into<BoxError>) -> Self {
        Error::Other(error.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidEvent(why) => write!(f, "not a Kinesis event: {why}"),
            Error::Uncheckpointable(why) => {
                write!(f, "the batch must be retried whole: {why}")
            }
            Error::InvalidWindow(why) => write!(f, "not a window event: {why}"),
            Error::WindowEnd(why) => write!(f, "the window-end function failed: {why}"),
            Error::Config(why) => write!(f, "configuration: {why}"),
            Error::LocalRun(why) => f.write_str(why),
            Error::Io(error) => fmt::Display::fmt(error, f),
            Error::Other(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Io(error) => Some(error),
            Error::Other(error) => Some(&**error),
            _ => None,
        }
    }
}

impl Error {
    /// The variant's name, for the `errorType` of Lambda's error response.
    fn kind(&self) -> &'static str {
        match self {
            Error::InvalidEvent(_) => "InvalidEvent",
            Error::Uncheckpointable(_) => "Uncheckpointable",
            Error::InvalidWindow(_) => "InvalidWindow",
            Error::WindowEnd(_) => "WindowEnd",
            Error::Config(_) => "Config",
            Error::Io(_) => "Io",
            Error::LocalRun(_) => "LocalRun",
            Error::Other(_) => "Other",
        }
    }
}

/// Lambda's error response for a failed invocation: `errorType` names the variant
/// (`kinesis_processor::InvalidEvent`, ...), `errorMessage` is the message.
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: format!("kinesis_processor::{}", error.kind()),
            error_message: error.to_string(),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Io(error)
    }
}
