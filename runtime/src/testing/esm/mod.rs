//! [`EventSourceMapping`]: Lambda's Kinesis event source mapping, simulated in process, to
//! see what a processor does under Lambda's retry and checkpoint rules without deploying.
//!
//! The rules follow the AWS documentation; each has a test that cites it:
//! - *Lambda parameters for Kinesis event source mappings*: `BatchSize` (default 100, at
//!   most 10,000), `MaximumBatchingWindowInSeconds`, `MaximumRetryAttempts` and
//!   `MaximumRecordAgeInSeconds` (-1: infinite), `ParallelizationFactor` (1 to 10),
//!   `BisectBatchOnFunctionError`, `FunctionResponseTypes`.
//! - *Configuring partial batch response with Kinesis Data Streams and Lambda*: the lowest
//!   reported sequence number is the checkpoint; an empty or null list (or response) is a
//!   complete success; an empty or null `itemIdentifier`, or one under a wrong key name, is
//!   a complete failure; without `ReportBatchItemFailures` the response is ignored; a
//!   partial response with bisection splits the batch at the reported record.
//! - *Retain discarded batch records for a Kinesis Data Streams event source*: a function
//!   error (or timeout) retries the whole batch until the retries or the record age run
//!   out, then the records are discarded to the on-failure destination; splitting a batch
//!   does not consume the retry quota.
//! - *Lambda quotas*: an invocation payload holds at most 6 MB. A batch is cut by the
//!   exact size of the event it becomes (every field of every record, as serialized).
//! - *Using Lambda with Kinesis*: records with one partition key are processed in order,
//!   also with a parallelization factor above 1. The event's records carry what Lambda
//!   sends: no `explicitHashKey` (a KPL aggregate's user records keep theirs inside it).
//! - *Using Lambda with Kinesis*, "Time windows" ([`EventSourceMapping::tumbling_window`],
//!   `TumblingWindowInSeconds` 0 to 900): windows by record arrival time, each record in
//!   `[floor(arrival / length) * length, + length)`, and a batch never spans two. The event
//!   carries `window` (`start`, `end`, RFC 3339), `state` (`{}` on a window's first
//!   invocation, then the `state` of the last response the mapping accepted: a success or
//!   a partial batch response), `shardId`, `eventSourceARN`, `isFinalInvokeForWindow` and
//!   `isWindowTerminatedEarly`. A response without a `state` object is a failed invocation,
//!   handled as a function error (retried with the same state, bisected if configured). A
//!   window ends with a final invocation without records, retried whole with the same
//!   state while it fails, before the shard goes on. An accepted state over 1 MB
//!   serialized ends the window early: the next invocation is a final one with
//!   `isWindowTerminatedEarly`, and later records continue the window from `{}`.
//!
//! **Per-key order across lanes needs plain records, not KPL aggregates.** With a
//! `ParallelizationFactor` above 1, Lambda spreads a shard's records over lanes by the
//! Kinesis record's partition key. A KPL aggregate holds user records of many partition
//! keys under its first one's key, so the user records of one key can sit in aggregates of
//! different lanes and run at the same time, out of order. The report counts what it sees
//! ([`MappingReport::order_violations`]): user records delivered while an earlier record
//! of their key, in another lane, was unfinished. With a factor of 1, or plain records (or
//! aggregates of one key each), it is zero.
//!
//! The report also counts responses that named an `itemIdentifier` not in the batch
//! ([`MappingReport::unknown_item_identifiers`]), which fail the whole batch by default.
//!
//! Where AWS does not say, the simulator takes the stricter reading, so that a test errs
//! towards failing: every partial batch response uses one of `MaximumRetryAttempts`, also
//! when the checkpoint moved forward.
//!
//! **Tumbling windows: what AWS does not say, and what the simulator assumes.**
//! - The final invocation is always one without records (`Records: []`): AWS documents the
//!   flag, not whether the last batch can carry it. A window gets one only if records of it
//!   were invoked.
//! - The stream is filled before the run, so a window closes when its lane reaches a record
//!   of another window, or runs out of records (as if its end had passed). A record put
//!   with an earlier arrival than the one before it opens its window anew, with `{}`.
//! - "Tumbling windows fully support the existing retry policies": a failing final
//!   invocation is retried until it succeeds, or until `MaximumRetryAttempts` retries or
//!   the window's newest record passing `MaximumRecordAgeInSeconds` end its retries. Then
//!   the window is abandoned ([`MappingReport::windows_abandoned`]): its final processing
//!   is lost, and the shard goes on.
//! - A `state` that is null or not a JSON object counts as missing.
//! - The final invocation of a window terminated early gets the state over 1 MB; a state
//!   of exactly 1 MB is within the limit. The state travels in the event, so a batch
//!   leaves room for it under 6 MB.
//! - With a `ParallelizationFactor` above 1, each lane carries its own windows and state,
//!   with its own final invocations.

mod config;
mod function;
mod lanes;
mod order;
mod payload;
mod report;
mod stream;
mod window;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Instant;

pub use config::{EventSourceMapping, UnknownItemIdentifier};
pub use function::{FnFunction, Function, InvocationResult};
pub use report::{MappingReport, OnFailureRecord};
pub use stream::{Put, SimulatedStream, StreamRecord};

use super::MemoryDeadLetter;
use lanes::{join_all, lane_records, Lane, Shared};
use order::OrderWatch;
use report::Log;

/// The most an invocation payload holds: 6 MB.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

impl EventSourceMapping {
    /// Drives `function` over every shard of `stream` until all are drained.
    pub async fn run(&self, stream: &SimulatedStream, function: &impl Function) -> MappingReport {
        let started = Instant::now();
        let shared = Shared {
            deliveries: (0..stream.shard_count())
                .map(|shard| vec![0; stream.records(shard).len()])
                .collect::<Vec<_>>()
                .into(),
            log: Mutex::new(Log::default()),
            order: Mutex::new(OrderWatch::new(stream, self.parallelization_factor)),
            stalled: AtomicBool::new(false),
        };
        let lanes: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = (0..stream.shard_count())
            .flat_map(|shard| (0..self.parallelization_factor).map(move |lane| (shard, lane)))
            .map(|(shard, lane)| {
                let records = lane_records(stream, shard, lane, self.parallelization_factor);
                let lane = Lane {
                    mapping: self,
                    stream,
                    shard,
                    records,
                    function,
                    shared: &shared,
                    window: None,
                };
                Box::pin(lane.drain()) as Pin<Box<dyn Future<Output = ()> + '_>>
            })
            .collect();
        join_all(lanes).await;
        let log = shared.log.into_inner().unwrap_or_else(|e| e.into_inner());
        let deliveries = shared.deliveries.into_inner().unwrap_or_else(|e| e.into_inner());
        MappingReport {
            deliveries: deliveries
                .into_iter()
                .enumerate()
                .flat_map(|(shard, counts)| {
                    let records = stream.records(shard);
                    counts
                        .into_iter()
                        .enumerate()
                        .map(move |(i, n)| (records[i].sequence_number.clone(), n))
                })
                .collect(),
            stalled: shared.stalled.into_inner(),
            log,
            dead_letters: self
                .dead_letters
                .as_ref()
                .map(MemoryDeadLetter::records)
                .unwrap_or_default(),
            wall_time: started.elapsed(),
        }
    }
}
