//! The engine's answer: what became of each unit, and the checkpoint the ledger decided.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::batch::Unit;
use crate::dead_letter::DeadLetterReason;

/// What became of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The processing function returned `Ok`.
    Succeeded,
    /// Its idempotency key was done in an earlier invocation: the function was not called
    /// (see [`idempotency`](crate::idempotency)). Done, and never reported.
    Duplicate,
    /// The dead-letter sink confirmed the record's dead letter.
    DeadLettered(DeadLetterReason),
    /// It failed and is reported to Lambda (retries ran out, or it was rejected or
    /// undecodable with no sink to take it, or the sink refused its dead letter).
    Failed,
    /// The deadline came while it was being processed, or while it waited for its first
    /// poll beside other running records; its future was dropped.
    TimedOut,
    /// It was never started: an earlier failure or the deadline stopped the batch first,
    /// or its dead letter was withheld because Lambda delivers it again anyway.
    NotStarted,
}

impl Outcome {
    /// Whether the record is done: succeeded, a duplicate, or dead-lettered.
    ///
    /// ```
    /// use kinesis_processor::Outcome;
    /// assert!(Outcome::Succeeded.is_finished());
    /// assert!(!Outcome::TimedOut.is_finished());
    /// ```
    pub fn is_finished(self) -> bool {
        matches!(self, Outcome::Succeeded | Outcome::Duplicate | Outcome::DeadLettered(_))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Succeeded => f.write_str("succeeded"),
            Outcome::Duplicate => f.write_str("duplicate (done before; skipped)"),
            Outcome::DeadLettered(reason) => write!(f, "dead-lettered ({reason})"),
            Outcome::Failed => f.write_str("failed"),
            Outcome::TimedOut => f.write_str("timed out"),
            Outcome::NotStarted => f.write_str("not started"),
        }
    }
}

/// A chunk function's calls over a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChunkCounts {
    /// Calls of the chunk function, retries included.
    pub calls: u64,
    /// Records over those calls.
    pub records: u64,
    /// Calls that answered that some of their records failed.
    pub partial_failures: u64,
}

/// A batch run to its end: every unit with its outcome, and the checkpoint. The report,
/// the Lambda response and the metrics are built from it and nothing else.
pub(crate) struct Settled<'s> {
    /// How many Kinesis records the payload held.
    pub records: usize,
    /// The units, in stream order.
    pub units: &'s [Unit<'s>],
    /// Each unit's outcome, by position in `units`.
    pub outcomes: Vec<Outcome>,
    /// How many times the function was called for each unit.
    pub attempts: Vec<u32>,
    /// The last error of each unit that has one.
    pub errors: HashMap<u32, String>,
    /// The dead-letter reason each unit was given, even if its letter then failed.
    pub reasons: Vec<Option<DeadLetterReason>>,
    /// Attempts beyond each unit's first, over the batch.
    pub retried_attempts: u64,
    /// A chunk function's calls.
    pub chunks: ChunkCounts,
    /// The sequence number Lambda resumes the shard from, if any (see
    /// [`Ledger::checkpoint`](super::ledger::Ledger::checkpoint)).
    pub checkpoint: Option<&'s str>,
    /// The earliest arrival of a valid record, in milliseconds since 1970.
    pub oldest_arrival: Option<u64>,
    /// The wall-clock time the invocation started.
    pub started: SystemTime,
    /// How long the batch took.
    pub duration: Duration,
    /// A window processor's answer: the window state of the records before the checkpoint.
    pub state: Option<Box<serde_json::value::RawValue>>,
}

impl Settled<'_> {
    /// Whether Lambda delivers `unit` again: it is at or after the checkpoint.
    pub fn redelivered(&self, unit: &Unit<'_>) -> bool {
        super::ledger::at_or_after(unit, self.checkpoint)
    }
}

/// What a settled batch becomes at the end of an invocation: a report with rows, or the
/// response and counts alone.
pub(crate) trait Conclude: Sized {
    /// Builds the value from the batch's end.
    fn conclude(settled: Settled<'_>) -> Self;
}
