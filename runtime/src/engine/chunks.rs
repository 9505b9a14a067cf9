//! One chunk's processing: calls of the chunk function with panics caught, and retries of
//! the records that failed retryably, alone, as a smaller chunk, with the backoff and the
//! retries of a record.

use std::future::poll_fn;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};

use super::attempt::{self, AttemptResult, Attempted, Run};
use super::outcome::ChunkCounts;
use crate::batch::Unit;
use crate::chunk::Chunk;
use crate::error::RecordError;
use crate::handler::Handler;
use crate::invocation::Invocation;

/// How a chunk's processing ended: each unit's attempts, in stream order.
pub(crate) struct ChunkAttempted {
    pub finished: Vec<(u32, Attempted)>,
}

/// A batch's calls of its chunk function, counted as each starts, so that a chunk cut at
/// the deadline still counts the calls it made.
#[derive(Default)]
pub(crate) struct ChunkTally {
    calls: AtomicU64,
    records: AtomicU64,
    partial_failures: AtomicU64,
}

impl ChunkTally {
    fn called(&self, records: usize) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records as u64, Ordering::Relaxed);
    }

    fn partially_failed(&self) {
        self.partial_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn counts(&self) -> ChunkCounts {
        ChunkCounts {
            calls: self.calls.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            partial_failures: self.partial_failures.load(Ordering::Relaxed),
        }
    }
}

/// Processes the chunk of `members` (units of the batch, in stream order, with their
/// decoded payloads), retrying the records that fail retryably.
pub(crate) async fn attempt_chunk<'a, H: Handler>(
    run: &'a Run<'a, H>,
    tally: &'a ChunkTally,
    units: &'a [Unit<'a>],
    mut members: Vec<u32>,
    mut payloads: Vec<H::Payload>,
) -> ChunkAttempted {
    let mut finished = Vec::with_capacity(members.len());
    let mut attempts = 1;
    loop {
        let failures = call(run, tally, units, &members, payloads, attempts).await;
        let mut retryable = Vec::new();
        for (unit, failure) in members.into_iter().zip(failures) {
            let result = match failure {
                None => AttemptResult::Succeeded,
                Some(error) if error.is_permanent() => AttemptResult::Rejected(error),
                Some(error) => {
                    retryable.push((unit, error));
                    continue;
                }
            };
            finished.push((unit, Attempted { attempts, result }));
        }
        if retryable.is_empty() {
            break;
        }
        let delay = match run.policy.next_retry(attempts) {
            Ok(delay) => delay,
            Err(stop_near) => {
                finished.extend(retryable.into_iter().map(|(unit, error)| {
                    (
                        unit,
                        Attempted {
                            attempts,
                            result: AttemptResult::Exhausted { error, stop_near },
                        },
                    )
                }));
                break;
            }
        };
        tracing::info!(
            records = retryable.len(),
            attempt = attempts,
            error = %retryable[0].1.chain(),
            "records of a chunk failed; retrying them in {} ms",
            delay.as_millis()
        );
        tokio::time::sleep(delay).await;
        attempts += 1;
        (members, payloads) = decode_again(run.handler, units, retryable, attempts, &mut finished);
        if members.is_empty() {
            break;
        }
    }
    finished.sort_unstable_by_key(|(unit, _)| *unit);
    ChunkAttempted { finished }
}

/// One call of the chunk function, in its span, with panics caught: each member's
/// failure, by position (`None` for those that succeeded).
async fn call<'a, H: Handler>(
    run: &'a Run<'a, H>,
    tally: &ChunkTally,
    units: &'a [Unit<'a>],
    members: &[u32],
    payloads: Vec<H::Payload>,
    attempts: u32,
) -> Vec<Option<RecordError>> {
    let chunk = Chunk::new(payloads, members.iter().map(|&unit| &units[unit as usize].meta));
    let span = chunk_span(units, members, run.invocation, attempts);
    tally.called(members.len());
    let result = {
        let mut call = pin!(run.handler.call_chunk(chunk, run.invocation, run.state));
        poll_fn(|task| attempt::poll_in_span(call.as_mut(), &span, task)).await
    };
    match result {
        Ok(()) => members.iter().map(|_| None).collect(),
        Err(error) => {
            if error.is_partial() {
                tally.partially_failed();
            }
            error.into_failures(members.len())
        }
    }
}

/// The payloads of the records to retry, decoded again (the last call consumed them); a
/// record that no longer decodes is finished as undecodable.
fn decode_again<H: Handler>(
    handler: &H,
    units: &[Unit<'_>],
    retryable: Vec<(u32, RecordError)>,
    attempts: u32,
    finished: &mut Vec<(u32, Attempted)>,
) -> (Vec<u32>, Vec<H::Payload>) {
    let mut scratch = Vec::new();
    let mut members = Vec::with_capacity(retryable.len());
    let mut payloads = Vec::with_capacity(retryable.len());
    for (unit, _) in retryable {
        match attempt::decode(handler, &units[unit as usize], &mut scratch) {
            Ok(payload) => {
                members.push(unit);
                payloads.push(payload);
            }
            Err(undecodable) => {
                let result = AttemptResult::Undecodable(undecodable);
                finished.push((unit, Attempted { attempts: attempts - 1, result }));
            }
        }
    }
    (members, payloads)
}

/// The span of one call of a chunk function: its records' first and last sequence
/// numbers; `Span::none()` when no subscriber takes debug spans.
fn chunk_span(
    units: &[Unit<'_>],
    members: &[u32],
    invocation: &Invocation,
    attempts: u32,
) -> tracing::Span {
    if !tracing::level_enabled!(tracing::Level::DEBUG) {
        return tracing::Span::none();
    }
    let sequence_number =
        |at: Option<&u32>| at.and_then(|&unit| units[unit as usize].meta.sequence_number);
    tracing::debug_span!(
        "chunk",
        records = members.len(),
        first_sequence_number = sequence_number(members.first()),
        last_sequence_number = sequence_number(members.last()),
        attempt = attempts,
        xray_trace_id = invocation.xray_trace_id(),
    )
}
