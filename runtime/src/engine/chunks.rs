//! One chunk's processing: calls of the chunk function with panics caught, and retries of
//! the records that failed retryably, alone, as a smaller chunk, with the backoff and the
//! retries of a record.

use std::future::poll_fn;
use std::pin::pin;

use super::attempt::{self, AttemptResult, Attempted, Run};
use super::ledger::ChunkCounts;
use crate::batch::Unit;
use crate::chunk::Chunk;
use crate::error::RecordError;
use crate::handler::Handler;
use crate::invocation::Invocation;

/// How a chunk's processing ended: each unit's attempts, in stream order, and the calls.
pub(crate) struct ChunkAttempted {
    pub finished: Vec<(u32, Attempted)>,
    pub counts: ChunkCounts,
}

/// Processes the chunk of `members` (units of the batch, in stream order, with their
/// decoded payloads), retrying the records that fail retryably.
pub(crate) async fn attempt_chunk<'a, H: Handler>(
    run: &'a Run<'a, H>,
    units: &'a [Unit<'a>],
    mut members: Vec<u32>,
    mut payloads: Vec<H::Payload>,
) -> ChunkAttempted {
    let mut finished = Vec::with_capacity(members.len());
    let mut counts = ChunkCounts::default();
    let mut attempts = 1;
    loop {
        let failures = call(run, units, &members, payloads, attempts, &mut counts).await;
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
    ChunkAttempted { finished, counts }
}

/// One call of the chunk function, in its span, with panics caught: each member's
/// failure, by position (`None` for those that succeeded).
async fn call<'a, H: Handler>(
    run: &'a Run<'a, H>,
    units: &'a [Unit<'a>],
    members: &[u32],
    payloads: Vec<H::Payload>,
    attempts: u32,
    counts: &mut ChunkCounts,
) -> Vec<Option<RecordError>> {
    let chunk = Chunk::new(payloads, members.iter().map(|&unit| &units[unit as usize].meta));
    let span = chunk_span(units, members, run.invocation, attempts);
    let result = {
        let mut call = pin!(run.handler.call_chunk(chunk, run.invocation, run.state));
        poll_fn(|task| attempt::poll_in_span(call.as_mut(), &span, task)).await
    };
    counts.calls += 1;
    counts.records += members.len() as u64;
    match result {
        Ok(()) => members.iter().map(|_| None).collect(),
        Err(error) => {
            counts.partial_failures += u64::from(error.is_partial());
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
