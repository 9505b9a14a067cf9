//! What a simulated run did: deliveries, invocations, discarded batches, dead letters.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::dead_letter::DeadLetter;

/// A record of a batch Lambda gave up on, as its on-failure destination receives it.
#[derive(Clone, Debug)]
pub struct OnFailureRecord {
    /// The JSON document Lambda sends: `requestContext`, `responseContext`, `version`,
    /// `timestamp`, `KinesisBatchInfo`.
    pub document: Value,
    /// The sequence numbers of the discarded records.
    pub sequence_numbers: Vec<String>,
}

/// What the lanes count while they run.
#[derive(Clone, Debug, Default)]
pub(super) struct Log {
    pub(super) invocations: usize,
    pub(super) function_errors: usize,
    pub(super) timeouts: usize,
    pub(super) partial_responses: usize,
    pub(super) unknown_item_identifiers: usize,
    pub(super) order_violations: usize,
    pub(super) discarded: Vec<OnFailureRecord>,
    pub(super) expired_by_retention: usize,
    pub(super) window_invocations: usize,
    pub(super) final_invocations: usize,
    pub(super) missing_states: usize,
    pub(super) windows_closed: usize,
    pub(super) windows_terminated_early: usize,
    pub(super) windows_abandoned: usize,
}

/// What a simulated run did.
#[derive(Clone, Debug)]
pub struct MappingReport {
    pub(super) deliveries: HashMap<String, u32>,
    pub(super) log: Log,
    pub(super) stalled: bool,
    pub(super) dead_letters: Vec<DeadLetter>,
    pub(super) wall_time: Duration,
}

impl MappingReport {
    /// How many times the record with `sequence_number` was delivered.
    pub fn deliveries(&self, sequence_number: &str) -> u32 {
        self.deliveries.get(sequence_number).copied().unwrap_or(0)
    }

    /// Deliveries beyond each record's first, over the run.
    pub fn duplicates(&self) -> u64 {
        self.deliveries.values().map(|n| u64::from(n.saturating_sub(1))).sum()
    }

    /// Records never delivered (discarded for age, lost to retention, or not reached).
    pub fn never_delivered(&self) -> usize {
        self.deliveries.values().filter(|n| **n == 0).count()
    }

    /// Invocations of the function.
    pub fn invocations(&self) -> usize {
        self.log.invocations
    }

    /// Invocations that ended in a function error.
    pub fn function_errors(&self) -> usize {
        self.log.function_errors
    }

    /// Invocations that ran past the function timeout.
    pub fn timeouts(&self) -> usize {
        self.log.timeouts
    }

    /// Invocations whose response named a record to resume from (a partial batch).
    pub fn partial_responses(&self) -> usize {
        self.log.partial_responses
    }

    /// Responses that named an `itemIdentifier` that is not a sequence number of the batch
    /// (a sub-sequence number, an `eventID`, a record of another batch). Lambda's reading
    /// of one is not documented; by default the simulator fails the whole batch, as
    /// [`UnknownItemIdentifier`](super::UnknownItemIdentifier) says, so such a response
    /// costs a retry of every record. A correct processor never gives one: assert zero.
    pub fn unknown_item_identifiers(&self) -> usize {
        self.log.unknown_item_identifiers
    }

    /// User records delivered while an earlier user record of the same partition key, in
    /// another parallel lane of the same shard, was not yet finished: records whose
    /// per-key order the mapping did not keep.
    ///
    /// Lambda keeps per-key order across a shard's lanes (`ParallelizationFactor` above 1)
    /// by the Kinesis record's partition key. A KPL aggregate holds user records of many
    /// keys under its first one's key, so with aggregates a user key's records can run in
    /// two lanes at once. With plain records (or aggregates of one key each), or with a
    /// factor of 1, this is zero. The order between shards is never kept, and not counted.
    pub fn order_violations(&self) -> usize {
        self.log.order_violations
    }

    /// What the on-failure destination received.
    pub fn discarded(&self) -> &[OnFailureRecord] {
        &self.log.discarded
    }

    /// Records that passed the stream's retention before they were read.
    pub fn expired_by_retention(&self) -> usize {
        self.log.expired_by_retention
    }

    /// Invocations that carried a tumbling window (every invocation, final ones included,
    /// with [`EventSourceMapping::tumbling_window`](super::EventSourceMapping::tumbling_window)
    /// on; zero without).
    pub fn window_invocations(&self) -> usize {
        self.log.window_invocations
    }

    /// Final invocations of windows (`isFinalInvokeForWindow`, no records), retries
    /// included.
    pub fn final_invocations(&self) -> usize {
        self.log.final_invocations
    }

    /// Responses without a `state` object, which Lambda treats as failed invocations (with
    /// tumbling windows on; a null response counts too). A window processor gives none.
    pub fn missing_states(&self) -> usize {
        self.log.missing_states
    }

    /// Windows whose final invocation succeeded (an early termination counts as one).
    pub fn windows_closed(&self) -> usize {
        self.log.windows_closed
    }

    /// Windows ended early because a response's state passed 1 MB.
    pub fn windows_terminated_early(&self) -> usize {
        self.log.windows_terminated_early
    }

    /// Windows whose final invocation never succeeded: given up after
    /// `MaximumRetryAttempts` retries or once the window's newest record passed
    /// `MaximumRecordAgeInSeconds`. Their end-of-window processing was lost.
    pub fn windows_abandoned(&self) -> usize {
        self.log.windows_abandoned
    }

    /// Whether the run stopped at `max_invocations` rather than draining the stream.
    pub fn stalled(&self) -> bool {
        self.stalled
    }

    /// The dead letters of the sink given with [`EventSourceMapping::dead_letters`](super::EventSourceMapping::dead_letters).
    pub fn dead_letters(&self) -> &[DeadLetter] {
        &self.dead_letters
    }

    /// How long the run took.
    pub fn wall_time(&self) -> Duration {
        self.wall_time
    }
}
