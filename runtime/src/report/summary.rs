//! [`BatchSummary`]: the counts of one invocation, behind the metrics.

use std::time::{Duration, SystemTime};

use crate::batch::Unit;
use crate::dead_letter::DeadLetterReason;
use crate::engine::{Outcome, Settled};

/// Counts over one invocation: the numbers behind the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchSummary {
    /// Kinesis records in the invocation.
    pub records: usize,
    /// Units: records after de-aggregation (each user record of a KPL aggregate is one).
    pub units: usize,
    /// Records that succeeded.
    pub succeeded: usize,
    /// Records skipped as duplicates: their idempotency key was done before.
    pub duplicates: usize,
    /// Attempts beyond each record's first.
    pub retried_attempts: u64,
    /// Calls of a chunk function, retries included (0 for any other function).
    pub chunks: usize,
    /// Records over those calls; with `chunks`, the records per chunk.
    pub chunk_records: usize,
    /// Chunk calls that answered that some of their records failed.
    pub partial_chunk_failures: usize,
    /// Records reported to Lambda as failed.
    pub failed: usize,
    /// Records that timed out at the deadline.
    pub timed_out: usize,
    /// Records never started.
    pub not_started: usize,
    /// Records at or after the checkpoint, which Lambda delivers again (including any that
    /// succeeded there).
    pub redelivered: usize,
    /// Records whose dead letter the sink confirmed, by reason (in the order of
    /// [`DeadLetterReason::ALL`]); read with [`dead_lettered`](Self::dead_lettered).
    pub(crate) dead_lettered: [usize; 4],
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

    /// The mean records per call of a chunk function; `None` for any other function.
    ///
    /// ```
    /// use kinesis_processor::BatchSummary;
    /// assert_eq!(BatchSummary::default().records_per_chunk(), None);
    /// ```
    pub fn records_per_chunk(&self) -> Option<f64> {
        (self.chunks > 0).then(|| self.chunk_records as f64 / self.chunks as f64)
    }
}

fn reason_index(reason: DeadLetterReason) -> usize {
    DeadLetterReason::ALL.iter().position(|r| *r == reason).unwrap_or(0)
}

impl BatchSummary {
    /// The counts of a settled batch. Reads every unit only when the response names a
    /// checkpoint (for the redelivered count); otherwise the counts come from the outcomes.
    pub(crate) fn of(settled: &Settled<'_>) -> Self {
        let mut summary = BatchSummary {
            records: settled.records,
            units: settled.units.len(),
            retried_attempts: settled.retried_attempts,
            chunks: settled.chunks.calls as usize,
            chunk_records: settled.chunks.records as usize,
            partial_chunk_failures: settled.chunks.partial_failures as usize,
            duration: settled.duration,
            ..BatchSummary::default()
        };
        for (outcome, reason) in settled.outcomes.iter().zip(&settled.reasons) {
            summary.count(*outcome, *reason);
        }
        if settled.checkpoint.is_some() {
            summary.redelivered =
                settled.units.iter().filter(|unit| settled.redelivered(unit)).count();
        }
        let named = settled.units.iter().find(|unit| unit.meta.source.event_source_arn.is_some());
        summary.stream_name = named.map(|unit| unit.meta.stream_name().to_owned());
        summary.shard_id = first_shard_id(settled.units).map(str::to_owned);
        summary.iterator_age = settled.oldest_arrival.map(|millis| {
            let arrival = SystemTime::UNIX_EPOCH + Duration::from_millis(millis);
            settled.started.duration_since(arrival).unwrap_or_default()
        });
        summary
    }

    fn count(&mut self, outcome: Outcome, reason: Option<DeadLetterReason>) {
        match outcome {
            Outcome::Succeeded => self.succeeded += 1,
            Outcome::Duplicate => self.duplicates += 1,
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

/// The shard of the first unit that named one.
fn first_shard_id<'u>(units: &[Unit<'u>]) -> Option<&'u str> {
    units.iter().find_map(|unit| unit.meta.shard_id())
}
