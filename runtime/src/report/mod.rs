//! The report: what a settled batch becomes. [`BatchReport`] holds the response for
//! Lambda and a row per unit (tests, local runs); [`BatchOutcome`] the response and the
//! counts alone (the Lambda loop); [`BatchSummary`] the counts behind the metrics.

mod response;
mod summary;

use std::fmt;

use aws_lambda_events::event::streams::KinesisEventResponse;

use crate::batch::Unit;
use crate::engine::{Conclude, Outcome, Settled};
pub use response::BatchOutcome;
pub use summary::BatchSummary;

/// The result of processing one invocation: the response that goes back to Lambda, and
/// the outcome of every record.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use kinesis_processor::{kinesis_processor, Outcome, RecordError};
/// use kinesis_processor::testing::TestBatch;
///
/// #[kinesis_processor(format = text, retries = 0)]
/// async fn shout(line: String) -> Result<(), RecordError> {
///     if line.is_empty() { Err(RecordError::retry("empty")) } else { Ok(()) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let event = TestBatch::new().text("a").text("").text("b").build();
/// let report = shout().process(event).await.unwrap();
/// let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
/// assert_eq!(outcomes, [Outcome::Succeeded, Outcome::Failed, Outcome::NotStarted]);
/// // Lambda resumes the shard at the failed record.
/// let failures = &report.response().batch_item_failures;
/// assert_eq!(failures[0].item_identifier.as_deref(), report.records().nth(1).unwrap().sequence_number());
/// # });
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BatchReport {
    outcome: BatchOutcome,
    rows: Vec<Row>,
    /// The strings of every row, end to end: one allocation for the whole batch.
    text: String,
}

#[derive(Clone, Debug)]
struct Row {
    shard_id: Option<Span>,
    sequence_number: Option<Span>,
    partition_key: Option<Span>,
    sub_sequence_number: Option<u64>,
    outcome: Outcome,
    attempts: u32,
    error: Option<String>,
    redelivered: bool,
}

/// A string inside [`BatchReport::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The string this span marks in `text`.
    fn of(self, text: &str) -> &str {
        &text[self.start as usize..self.end as usize]
    }
}

/// One record's outcome, borrowed from a [`BatchReport`].
#[derive(Clone, Copy)]
pub struct RecordOutcome<'r> {
    report: &'r BatchReport,
    row: &'r Row,
}

impl<'r> RecordOutcome<'r> {
    fn text(&self, span: Span) -> &'r str {
        span.of(&self.report.text)
    }

    fn optional(&self, span: Option<Span>) -> Option<&'r str> {
        span.map(|span| self.text(span))
    }

    /// The record's sequence number (the parent's, for a user record of an aggregate);
    /// `None` when the envelope had no valid one.
    pub fn sequence_number(&self) -> Option<&'r str> {
        self.optional(self.row.sequence_number)
    }

    /// The user record's position in its KPL aggregate.
    pub fn sub_sequence_number(&self) -> Option<u64> {
        self.row.sub_sequence_number
    }

    /// The partition key, when the envelope had one.
    pub fn partition_key(&self) -> Option<&'r str> {
        self.optional(self.row.partition_key)
    }

    /// The shard id, when the envelope named one.
    pub fn shard_id(&self) -> Option<&'r str> {
        self.optional(self.row.shard_id)
    }

    /// What became of the record.
    pub fn outcome(&self) -> Outcome {
        self.row.outcome
    }

    /// How many times the processing function was called for it.
    pub fn attempts(&self) -> u32 {
        self.row.attempts
    }

    /// The last error, for records that did not succeed.
    pub fn error(&self) -> Option<&'r str> {
        self.row.error.as_deref()
    }

    /// Whether Lambda will deliver the record again: it is at or after the reported
    /// checkpoint (a record that succeeded there is processed twice).
    pub fn redelivered(&self) -> bool {
        self.row.redelivered
    }
}

impl fmt::Debug for RecordOutcome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordOutcome")
            .field("sequence_number", &self.sequence_number())
            .field("sub_sequence_number", &self.sub_sequence_number())
            .field("partition_key", &self.partition_key())
            .field("outcome", &self.outcome())
            .field("attempts", &self.attempts())
            .field("error", &self.error())
            .field("redelivered", &self.redelivered())
            .finish()
    }
}

impl BatchReport {
    /// The response for Lambda: at most one `batchItemFailures` entry, the first record
    /// not finished. Empty when the whole batch is done.
    pub fn response(&self) -> &KinesisEventResponse {
        self.outcome.response()
    }

    /// The response, by value.
    pub fn into_response(self) -> KinesisEventResponse {
        self.outcome.into_response()
    }

    /// A window processor's `state`, as the response carries it (see
    /// [`BatchOutcome::window_state`]).
    pub fn window_state(&self) -> Option<&serde_json::Value> {
        self.outcome.window_state()
    }

    /// The sequence number Lambda will resume the shard from, if any.
    pub fn checkpoint(&self) -> Option<&str> {
        self.outcome.checkpoint()
    }

    /// Every unit's outcome, in stream order (each user record of an aggregate is one).
    pub fn records(&self) -> impl ExactSizeIterator<Item = RecordOutcome<'_>> + '_ {
        self.rows.iter().map(move |row| RecordOutcome { report: self, row })
    }

    /// Counts over the invocation.
    pub fn summary(&self) -> &BatchSummary {
        self.outcome.summary()
    }

    /// The response and the counts, without the rows.
    pub fn outcome(&self) -> &BatchOutcome {
        &self.outcome
    }
}

impl Conclude for BatchReport {
    fn conclude(settled: Settled<'_>) -> Self {
        let outcome = BatchOutcome::of(&settled);
        let mut rows = Rows::with_capacity(settled.units.len());
        for (index, unit) in settled.units.iter().enumerate() {
            let redelivered = settled.redelivered(unit);
            rows.push(unit, settled.outcomes[index], settled.attempts[index], redelivered);
        }
        let Rows { mut rows, text, .. } = rows;
        // Few units have an error: they are set by unit, not looked up for every row.
        for (unit, error) in settled.errors {
            rows[unit as usize].error = Some(error);
        }
        BatchReport { outcome, rows, text }
    }
}

/// The rows of a [`BatchReport`] while they are added, one per unit, with their strings
/// end to end in one text. Records of one shard share their shard id slice and the user
/// records of an aggregate their parent's sequence number, so a value that is the very
/// slice of the previous row's is stored once.
struct Rows<'u> {
    rows: Vec<Row>,
    text: String,
    shard_id: Repeated<'u>,
    sequence_number: Repeated<'u>,
}

impl<'u> Rows<'u> {
    fn with_capacity(units: usize) -> Self {
        Rows {
            rows: Vec::with_capacity(units),
            text: String::new(),
            shard_id: Repeated::default(),
            sequence_number: Repeated::default(),
        }
    }

    /// Adds the row of `unit`, its strings copied to the text.
    fn push(&mut self, unit: &Unit<'u>, outcome: Outcome, attempts: u32, redelivered: bool) {
        self.rows.push(Row {
            shard_id: self.shard_id.push(&mut self.text, unit.meta.shard_id()),
            sequence_number: self.sequence_number.push(&mut self.text, unit.meta.sequence_number),
            partition_key: unit.meta.partition_key.map(|key| push(&mut self.text, key)),
            sub_sequence_number: unit.meta.sub_sequence_number(),
            outcome,
            attempts,
            error: None,
            redelivered,
        });
    }
}

/// Appends `value` to `text`, returning where it is.
fn push(text: &mut String, value: &str) -> Span {
    let start = text.len() as u32;
    text.push_str(value);
    Span { start, end: text.len() as u32 }
}

/// The last value of one column and its span.
#[derive(Default)]
struct Repeated<'u> {
    last: Option<(&'u str, Span)>,
}

impl<'u> Repeated<'u> {
    fn push(&mut self, text: &mut String, value: Option<&'u str>) -> Option<Span> {
        let value = value?;
        Some(match self.last {
            Some((last, span)) if std::ptr::eq(last, value) => span,
            _ => {
                let span = push(text, value);
                self.last = Some((value, span));
                span
            }
        })
    }
}
