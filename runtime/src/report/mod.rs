//! [`BatchReport`]: the response for Lambda and what became of every record; and
//! [`BatchOutcome`], the response and the counts alone.

use std::cmp::Ordering;
use std::fmt;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::streams::KinesisEventResponse;

use crate::dead_letter::DeadLetterReason;
use crate::engine::units::Unit;
use crate::engine::Context;
use crate::engine::Ledger;
use crate::error::Error;
use crate::event::Parsed;
use crate::sequence;

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

/// What one invocation tells Lambda, and its counts: a [`BatchReport`] without a row per
/// record. It is what the Lambda loop builds, since nothing there reads the rows; see
/// [`Processor::respond`](crate::Processor::respond).
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use std::time::Duration;
/// use kinesis_processor::{kinesis_processor, RecordError};
/// use kinesis_processor::testing::TestBatch;
///
/// #[kinesis_processor(format = text, retries = 0)]
/// async fn shout(line: String) -> Result<(), RecordError> {
///     if line.is_empty() { Err(RecordError::retry("empty")) } else { Ok(()) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let event = TestBatch::new().text("a").text("").text("b").build();
/// let outcome = shout().respond(event, "request-1", Duration::from_secs(60)).await.unwrap();
/// assert_eq!(outcome.summary().succeeded, 1);
/// assert_eq!(outcome.summary().not_started, 1);
/// assert_eq!(outcome.response().batch_item_failures.len(), 1);
/// # });
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BatchOutcome {
    response: KinesisEventResponse,
    summary: BatchSummary,
}

#[derive(Clone, Debug)]
struct Row {
    shard_id: Span,
    sequence_number: Span,
    partition_key: Span,
    sub_sequence_number: Option<u64>,
    outcome: Outcome,
    attempts: u32,
    error: Option<String>,
    redelivered: bool,
}

/// A string inside [`BatchReport::text`]; empty when the record lacked the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The string this span marks in `text`.
    pub(crate) fn of(self, text: &str) -> &str {
        &text[self.start as usize..self.end as usize]
    }
}

/// Where a record's strings already are in the report's text: for a report with rows
/// ([`Report::ROWS`]), the parser copies a valid record's sequence number and partition
/// key there while their bytes are in cache (`event::Collector::copy_strings`). Copying
/// them only now would read each record's text again after the whole payload, a trip to
/// memory per record: perf put those copies at 6% of the time on the 10,000-record
/// benchmark batch.
///
/// They are kept by record in `Parsed`, not in the work units: the driver reads every unit
/// back from memory, and Lambda's response has no rows.
///
/// A span that was not copied is marked inside the span rather than by an `Option`, which
/// keeps this at 16 bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Copied {
    sequence_number: Span,
    partition_key: Span,
}

impl Copied {
    /// Where a span would be that was not copied: no text reaches it.
    const NOT_COPIED: Span = Span { start: u32::MAX, end: u32::MAX };

    /// Both strings, copied.
    pub(crate) fn both(sequence_number: Span, partition_key: Span) -> Self {
        Copied { sequence_number, partition_key }
    }

    /// The same sequence number, and no partition key.
    pub(crate) fn without_partition_key(self) -> Self {
        Copied { partition_key: Self::NOT_COPIED, ..self }
    }

    pub(crate) fn sequence_number(self) -> Option<Span> {
        Some(self.sequence_number).filter(|span| *span != Self::NOT_COPIED)
    }

    pub(crate) fn partition_key(self) -> Option<Span> {
        Some(self.partition_key).filter(|span| *span != Self::NOT_COPIED)
    }
}

impl Default for Copied {
    /// Nothing copied.
    fn default() -> Self {
        Copied { sequence_number: Self::NOT_COPIED, partition_key: Self::NOT_COPIED }
    }
}

/// What became of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The processing function returned `Ok`.
    Succeeded,
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
    /// Whether the record is done: succeeded or dead-lettered.
    ///
    /// ```
    /// use kinesis_processor::Outcome;
    /// assert!(Outcome::Succeeded.is_finished());
    /// assert!(!Outcome::TimedOut.is_finished());
    /// ```
    pub fn is_finished(self) -> bool {
        matches!(self, Outcome::Succeeded | Outcome::DeadLettered(_))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Succeeded => f.write_str("succeeded"),
            Outcome::DeadLettered(reason) => write!(f, "dead-lettered ({reason})"),
            Outcome::Failed => f.write_str("failed"),
            Outcome::TimedOut => f.write_str("timed out"),
            Outcome::NotStarted => f.write_str("not started"),
        }
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

    fn optional(&self, span: Span) -> Option<&'r str> {
        Some(self.text(span)).filter(|text| !text.is_empty())
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

/// Counts over one invocation: the numbers behind the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchSummary {
    /// Kinesis records in the invocation.
    pub records: usize,
    /// Records after de-aggregation (user records of KPL aggregates counted one by one).
    pub user_records: usize,
    /// Records that succeeded.
    pub succeeded: usize,
    /// Attempts beyond each record's first.
    pub retried_attempts: u64,
    /// Records reported to Lambda as failed.
    pub failed: usize,
    /// Records cut at the deadline.
    pub timed_out: usize,
    /// Records never started.
    pub not_started: usize,
    /// Records at or after the checkpoint, which Lambda delivers again (including any that
    /// succeeded there).
    pub redelivered: usize,
    /// Records whose dead letter the sink confirmed, by reason
    /// (in the order of [`DeadLetterReason::ALL`]).
    pub dead_lettered: [usize; 4],
    /// Records that could not be decoded (dead-lettered or not).
    pub decode_errors: usize,
    /// Records older than `max_record_age` (dead-lettered or not).
    pub expired: usize,
    /// The age of the oldest record when the invocation started: the iterator age.
    pub iterator_age: Option<Duration>,
    /// How long the invocation took.
    pub duration: Duration,
    /// The stream's name, from the first record that named one.
    pub stream_name: Option<String>,
    /// The shard, from the first record that named one.
    pub shard_id: Option<String>,
}

impl BatchSummary {
    /// Dead-lettered records with this reason.
    ///
    /// ```
    /// use kinesis_processor::{dead_letter::DeadLetterReason, BatchSummary};
    /// assert_eq!(BatchSummary::default().dead_lettered(DeadLetterReason::Expired), 0);
    /// ```
    pub fn dead_lettered(&self, reason: DeadLetterReason) -> usize {
        self.dead_lettered[reason_index(reason)]
    }

    /// Dead-lettered records, all reasons together.
    pub fn dead_lettered_total(&self) -> usize {
        self.dead_lettered.iter().sum()
    }
}

fn reason_index(reason: DeadLetterReason) -> usize {
    DeadLetterReason::ALL.iter().position(|r| *r == reason).unwrap_or(0)
}

/// How a finished batch becomes a report; the engine builds either kind.
pub(crate) trait Report: Sized {
    /// Whether the parser copies valid records' strings for the rows ([`Copied`]).
    const ROWS: bool;

    /// Builds the report at the end of an invocation, from what the parse found and the
    /// units' fate.
    fn build(
        parsed: Parsed,
        units: &[Unit<'_>],
        ledger: Ledger<'_, '_>,
        cx: &Context<'_>,
        duration: Duration,
    ) -> Result<Self, Error>;
}

impl Report for BatchReport {
    const ROWS: bool = true;

    fn build(
        mut parsed: Parsed,
        units: &[Unit<'_>],
        mut ledger: Ledger<'_, '_>,
        cx: &Context<'_>,
        duration: Duration,
    ) -> Result<Self, Error> {
        let text = Arena::new(std::mem::take(&mut parsed.text));
        let copied = std::mem::take(&mut parsed.copied);
        let mut rows = Rows { rows: Vec::with_capacity(units.len()), text, copied };
        let outcome = BatchOutcome::new(&parsed, units, &ledger, cx, duration, Some(&mut rows))?;
        let Rows { mut rows, text, .. } = rows;
        for (unit, error) in std::mem::take(&mut ledger.errors) {
            rows[unit as usize].error = Some(error);
        }
        Ok(BatchReport { outcome, rows, text: text.text })
    }
}

impl Report for BatchOutcome {
    const ROWS: bool = false;

    fn build(
        parsed: Parsed,
        units: &[Unit<'_>],
        ledger: Ledger<'_, '_>,
        cx: &Context<'_>,
        duration: Duration,
    ) -> Result<Self, Error> {
        BatchOutcome::new(&parsed, units, &ledger, cx, duration, None)
    }
}

impl BatchOutcome {
    /// The response and the counts; with `rows`, each unit's row too. Without rows it
    /// reads every unit only when the response names a checkpoint (for the redelivered
    /// count), and otherwise just the first, for the stream's name: the counts come from
    /// the ledger and the iterator age from the parse. (A pass over every unit at the end
    /// of a batch reads them back from memory; it was 1.5% of a 10,000-record batch in
    /// perf.)
    fn new<'u>(
        parsed: &Parsed,
        units: &[Unit<'u>],
        ledger: &Ledger<'_, '_>,
        cx: &Context<'_>,
        duration: Duration,
        rows: Option<&mut Rows<'u>>,
    ) -> Result<Self, Error> {
        let outcomes: Vec<Outcome> = ledger.outcomes().collect();
        let checkpoint = checkpoint(units, &outcomes)?;
        let mut response = KinesisEventResponse::default();
        if let Some(sequence_number) = checkpoint {
            response.add_failure(sequence_number);
        }
        let mut summary = BatchSummary {
            records: parsed.records,
            user_records: units.len(),
            retried_attempts: ledger.retried_attempts,
            duration,
            ..BatchSummary::default()
        };
        for (index, outcome) in outcomes.iter().enumerate() {
            summary.count(*outcome, ledger.reason(index));
        }
        // Lambda delivers again every record at or after the checkpoint.
        let redelivered = |unit: &Unit<'_>| match (checkpoint, unit.checkpoint()) {
            (Some(at), Some(own)) => sequence::compare(own, at) != Ordering::Less,
            _ => false,
        };
        match rows {
            Some(rows) => {
                for (index, (unit, outcome)) in units.iter().zip(&outcomes).enumerate() {
                    let again = redelivered(unit);
                    summary.redelivered += usize::from(again);
                    rows.push(unit, *outcome, ledger.attempts[index], again);
                }
            }
            None if checkpoint.is_some() => {
                summary.redelivered = units.iter().filter(|unit| redelivered(unit)).count();
            }
            None => {}
        }
        let named = units.iter().find(|unit| !unit.meta.event_source_arn().is_empty());
        summary.stream_name = named.map(|unit| unit.meta.stream_name().to_owned());
        summary.shard_id = units
            .iter()
            .find(|unit| !unit.meta.shard_id().is_empty())
            .map(|unit| unit.meta.shard_id().to_owned());
        summary.iterator_age = parsed.oldest_arrival.map(|millis| {
            let arrival = SystemTime::UNIX_EPOCH + Duration::from_millis(millis);
            cx.started.duration_since(arrival).unwrap_or_default()
        });
        Ok(BatchOutcome { response, summary })
    }

    /// The response for Lambda: at most one `batchItemFailures` entry, the first record
    /// not finished. Empty when the whole batch is done.
    pub fn response(&self) -> &KinesisEventResponse {
        &self.response
    }

    /// The response, by value.
    pub fn into_response(self) -> KinesisEventResponse {
        self.response
    }

    /// The sequence number Lambda will resume the shard from, if any.
    pub fn checkpoint(&self) -> Option<&str> {
        self.response.batch_item_failures.first()?.item_identifier.as_deref()
    }

    /// Counts over the invocation.
    pub fn summary(&self) -> &BatchSummary {
        &self.summary
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

    /// The sequence number Lambda will resume the shard from, if any.
    pub fn checkpoint(&self) -> Option<&str> {
        self.outcome.checkpoint()
    }

    /// Every record's outcome, in stream order (user records of aggregates one by one).
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

/// The rows of a [`BatchReport`] while they are added, one per unit.
struct Rows<'u> {
    rows: Vec<Row>,
    text: Arena<'u>,
    /// What the parser copied to the text, by record.
    copied: Vec<Copied>,
}

impl<'u> Rows<'u> {
    fn push(&mut self, unit: &Unit<'u>, outcome: Outcome, attempts: u32, redelivered: bool) {
        let copied = self.copied_for(unit);
        let text = &mut self.text;
        self.rows.push(Row {
            shard_id: text.shard_id.push(&mut text.text, unit.meta.shard_id()),
            sequence_number: copied.sequence_number().unwrap_or_else(|| {
                text.sequence_number.push(&mut text.text, unit.meta.sequence_number)
            }),
            partition_key: copied
                .partition_key()
                .unwrap_or_else(|| push(&mut text.text, unit.meta.partition_key)),
            sub_sequence_number: unit.meta.sub_sequence_number(),
            outcome,
            attempts,
            error: None,
            redelivered,
        });
    }

    /// What the parser copied of the unit's strings: its record's, but a user record of an
    /// aggregate has its own partition key, which was not in the envelope.
    fn copied_for(&self, unit: &Unit<'u>) -> Copied {
        let record = self.copied.get(unit.record).copied().unwrap_or_default();
        if unit.meta.is_aggregated() {
            record.without_partition_key()
        } else {
            record
        }
    }
}

/// Appends `value` to `text`, returning where it is.
pub(crate) fn push(text: &mut String, value: &str) -> Span {
    let start = text.len() as u32;
    text.push_str(value);
    Span { start, end: text.len() as u32 }
}

/// The report's strings while rows are added. A batch comes from one shard, and the user
/// records of an aggregate share their parent's sequence number, so a value that is the
/// very slice of the previous row's is stored once and its span reused. Only the slice is
/// compared, not the text: reading each record's text again once the whole batch is parsed
/// is a trip to memory (perf: comparing sequence numbers by content was 5% of the time on
/// the 10,000-record benchmark batch). The parser hands every record of a shard the same
/// shard id slice (`event::Collector::share_shard_id`).
struct Arena<'u> {
    text: String,
    shard_id: Repeated<'u>,
    sequence_number: Repeated<'u>,
}

impl Arena<'_> {
    fn new(text: String) -> Self {
        Arena { text, shard_id: Repeated::default(), sequence_number: Repeated::default() }
    }
}

/// The last value of one column and its span.
#[derive(Default)]
struct Repeated<'u> {
    last: Option<(&'u str, Span)>,
}

impl<'u> Repeated<'u> {
    fn push(&mut self, text: &mut String, value: &'u str) -> Span {
        match self.last {
            Some((last, span)) if std::ptr::eq(last, value) => span,
            _ => {
                let span = push(text, value);
                self.last = Some((value, span));
                span
            }
        }
    }
}

impl BatchSummary {
    fn count(&mut self, outcome: Outcome, reason: Option<DeadLetterReason>) {
        match outcome {
            Outcome::Succeeded => self.succeeded += 1,
            Outcome::DeadLettered(reason) => self.dead_lettered[reason_index(reason)] += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::TimedOut => self.timed_out += 1,
            Outcome::NotStarted => self.not_started += 1,
        }
        match reason {
            Some(DeadLetterReason::DecodeError) => self.decode_errors += 1,
            Some(DeadLetterReason::Expired) => self.expired += 1,
            _ => {}
        }
    }
}

/// The checkpoint: the lowest sequence number among records not finished.
///
/// Lambda resumes the shard from it and delivers everything after it again, so naming any
/// later record would lose the unfinished ones before it. A record that is not finished
/// and has no valid sequence number cannot be named at all: the batch must fail whole.
fn checkpoint<'u>(units: &[Unit<'u>], outcomes: &[Outcome]) -> Result<Option<&'u str>, Error> {
    let mut lowest: Option<&'u str> = None;
    for (unit, outcome) in units.iter().zip(outcomes) {
        if outcome.is_finished() {
            continue;
        }
        let Some(sequence_number) = unit.checkpoint() else {
            return Err(Error::Uncheckpointable(format!(
                "record {} ({}) is {outcome} and has no valid sequence number to report",
                unit.record,
                unit.problem().unwrap_or("no problem recorded"),
            )));
        };
        if lowest.is_none_or(|low| sequence::compare(sequence_number, low) == Ordering::Less) {
            lowest = Some(sequence_number);
        }
    }
    Ok(lowest)
}
