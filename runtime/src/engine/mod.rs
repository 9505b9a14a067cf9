//! The engine: a batch's units run to their outcomes, and the checkpoint decided.
//!
//! The [`driver`] starts units as the [`schedule`] allows, runs each through its
//! [`attempt`]s in the in-flight [`slots`] (a window processor's records each into a copy
//! of its [`fold`]; a chunk function's units a chunk at a time, in [`chunks`]), and stops
//! at the [`deadline`]; the [`ledger`]
//! decides what becomes of each unit and owns the checkpoint; the batch ends as a
//! [`Settled`] answer, from which the report, the response and the metrics are built. A
//! window processor's batch then [`close`]s: its window state, and the window end.

mod attempt;
mod chunks;
mod close;
mod deadline;
mod driver;
mod fold;
mod guard;
mod ledger;
mod outcome;
mod schedule;
mod slots;

use std::time::SystemTime;

use bumpalo::Bump;
use tokio::time::Instant;

use crate::batch::{self, Unit};
use crate::dead_letter::ErasedSink;
use crate::error::Error;
use crate::handler::Handler;
use crate::invocation::Invocation;
use crate::settings::Settings;
use crate::window::WindowEvent;
use fold::Fold;
use guard::Guard;
pub(crate) use guard::Guarding;
use ledger::Ledger;
pub use outcome::Outcome;
pub(crate) use outcome::{Conclude, Settled};

/// What one invocation runs with.
pub(crate) struct Context<'c> {
    /// The invocation: request id, deadline, trace.
    pub invocation: &'c Invocation,
    pub function_name: &'c str,
    /// The wall-clock time the invocation started, for record ages.
    pub started: SystemTime,
    pub settings: &'c Settings,
    pub sink: Option<&'c dyn ErasedSink>,
    /// A window processor's batch: in order, one unit at a time, each letter confirmed
    /// before the next unit starts.
    pub windowed: bool,
    /// A chunk function's batch: its units start a chunk at a time.
    pub chunked: bool,
}

/// Processes one invocation payload and concludes it as `R`.
pub(crate) async fn process_batch<H: Handler, R: Conclude>(
    handler: &H,
    state: &H::State,
    guarding: Option<&Guarding<H::Payload>>,
    payload: &[u8],
    cx: &Context<'_>,
) -> Result<R, Error> {
    let clock = Instant::now();
    let arena = Bump::new();
    let batch = batch::read(payload, &arena)?;
    let window = H::WINDOWED.then(|| WindowEvent::<H::Window>::read(payload)).transpose()?;
    describe_batch(batch.records, &batch.units);
    let (fold, window) = match window {
        Some(event) => (Fold::new(event.state), Some(event.opened)),
        None => (Fold::new(H::Window::default()), None),
    };
    let guard = match guarding {
        Some(guarding) => {
            Some(Guard::open(guarding, handler, handler.name(), &batch.units, cx).await)
        }
        None => None,
    };
    let mut ledger = Ledger::new(&batch.units, cx);
    driver::drive(handler, state, &fold, guard.as_ref(), &batch.units, &mut ledger, cx).await;
    let mut settled = ledger.settle(batch.records, batch.oldest_arrival, clock.elapsed())?;
    if let Some(guard) = &guard {
        // Bounded like the dead letters: a quarter of the margin stays for the response.
        let margin = cx.settings.deadline_margin / 4;
        let end = cx.invocation.deadline_instant().checked_sub(margin);
        let closed = tokio::time::timeout_at(
            end.unwrap_or_else(Instant::now),
            guard.close(&settled.outcomes),
        );
        if closed.await.is_err() {
            tracing::warn!(
                "the idempotency store did not take the batch's completions before the \
                 deadline; their claims expire at it"
            );
        }
    }
    if let Some(window) = window {
        let folded = fold.answer(checkpoint_record(&settled));
        close::close(handler, state, window, folded, guard.as_ref(), &mut settled, cx).await?;
    }
    Ok(R::conclude(settled))
}

/// The Kinesis record (by position in the payload) of an aggregated unit at the checkpoint.
fn checkpoint_record(settled: &Settled<'_>) -> Option<usize> {
    let checkpoint = settled.checkpoint?;
    let at = settled.units.iter().find(|unit| unit.checkpoint() == Some(checkpoint))?;
    at.meta.is_aggregated().then_some(at.record)
}

/// Fills in the invocation span's fields, now that the batch is known.
fn describe_batch(records: usize, units: &[Unit<'_>]) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    span.record("batch_size", records);
    span.record("units", units.len());
    if let Some(named) = units.iter().find(|unit| unit.meta.source.event_source_arn.is_some()) {
        span.record("stream", named.meta.stream_name());
        span.record("shard_id", named.meta.shard_id());
    }
    let mut sequence_numbers = units.iter().filter_map(|unit| unit.checkpoint());
    if let Some(first) = sequence_numbers.next() {
        span.record("first_sequence_number", first);
        span.record("last_sequence_number", sequence_numbers.next_back().unwrap_or(first));
    }
}
