//! The driver: runs a batch's units (or a chunk function's chunks) to their outcomes in
//! one task, up to the concurrency limit, sending dead letters as they accumulate and
//! stopping at the deadline.

use std::future::{poll_fn, Future};
use std::task::{Context as TaskContext, Poll};

use tokio::time::{sleep_until, Instant};

use super::attempt::{self, attempt, RetryPolicy, Run};
use super::chunks::{attempt_chunk, ChunkAttempted, ChunkTally};
use super::deadline;
use super::fold::Fold;
use super::guard::Guard;
use super::ledger::Ledger;
use super::slots::Slots;
use super::Context;
use crate::batch::Unit;
use crate::dead_letter::{SendFuture, SinkError};
use crate::handler::Handler;

/// Runs the units to their outcomes: one at a time per slot, or a chunk function's
/// chunks.
pub(super) async fn drive<'u, 'c, H: Handler>(
    handler: &'u H,
    state: &'u H::State,
    fold: &Fold<H::Window>,
    guard: Option<&Guard<'_>>,
    units: &'u [Unit<'u>],
    ledger: &mut Ledger<'u, 'c>,
    cx: &Context<'_>,
) {
    let bounds = Bounds::of(cx);
    let policy = RetryPolicy {
        retries: cx.settings.retries,
        backoff: cx.settings.backoff,
        stop_at: bounds.stop_at,
    };
    // A window processor's records make no claims.
    let guard = guard.filter(|_| !H::WINDOWED);
    let run = Run { handler, state, fold, guard, invocation: cx.invocation, policy };
    let mut scratch = Vec::new();
    // Each future is built where it is placed: moved out through a return value, a
    // record's future cost a copy of a few hundred bytes per record.
    if H::CHUNKED {
        let size = handler.chunk_size();
        let tally = ChunkTally::default();
        let start = |ledger: &mut Ledger<'u, 'c>, slots: &mut Slots<_>| {
            let Some((members, payloads)) = next_chunk(&run, units, ledger, size, &mut scratch, cx)
            else {
                return false;
            };
            slots.place(members[0], attempt_chunk(&run, &tally, units, members, payloads));
            true
        };
        let finish = |ledger: &mut Ledger<'u, 'c>, _, done: ChunkAttempted| {
            ledger.finish_chunk(done.finished)
        };
        run_to_end(ledger, cx, &bounds, start, finish).await;
        ledger.chunks_called(tally.counts());
    } else {
        let start = |ledger: &mut Ledger<'u, 'c>, slots: &mut Slots<_>| {
            let Some((unit, payload)) = next_unit(&run, units, ledger, &mut scratch, cx) else {
                return false;
            };
            slots.place(unit, attempt(&run, unit, &units[unit as usize], payload));
            true
        };
        let finish = |ledger: &mut Ledger<'u, 'c>, unit, attempted| ledger.finish(unit, attempted);
        run_to_end(ledger, cx, &bounds, start, finish).await;
    }
}

/// When the batch stops, and when the dead-letter sends must end.
struct Bounds {
    stop_at: Instant,
    sends_end: Instant,
}

impl Bounds {
    fn of(cx: &Context<'_>) -> Self {
        let margin = cx.settings.deadline_margin;
        let deadline = cx.invocation.deadline_instant();
        // Dead letters may still be sent after the stop, until a quarter of the margin is
        // left for the response itself.
        Bounds {
            stop_at: deadline.checked_sub(margin).unwrap_or_else(Instant::now),
            sends_end: deadline.checked_sub(margin / 4).unwrap_or_else(Instant::now),
        }
    }
}

/// The next unit ready to run, with its payload, after settling those that cannot run.
fn next_unit<H: Handler>(
    run: &Run<'_, H>,
    units: &[Unit<'_>],
    ledger: &mut Ledger<'_, '_>,
    scratch: &mut Vec<u8>,
    cx: &Context<'_>,
) -> Option<(u32, H::Payload)> {
    loop {
        let unit = ledger.next_startable()?;
        if H::WINDOWED {
            run.fold.reach(&units[unit as usize]);
        }
        if run.guard.is_some_and(|guard| guard.is_done(unit)) {
            ledger.duplicate(unit);
            continue;
        }
        if ledger.settle_before_start(unit, cx.started) {
            continue;
        }
        match attempt::decode(run.handler, &units[unit as usize], scratch) {
            Ok(payload) => {
                ledger.running(unit);
                return Some((unit, payload));
            }
            Err(undecodable) => ledger.undecodable(unit, undecodable),
        }
    }
}

/// The next chunk: up to `size` units ready to run, in stream order, with their
/// payloads; undecodable and expired units are settled and never join one.
fn next_chunk<H: Handler>(
    run: &Run<'_, H>,
    units: &[Unit<'_>],
    ledger: &mut Ledger<'_, '_>,
    size: usize,
    scratch: &mut Vec<u8>,
    cx: &Context<'_>,
) -> Option<(Vec<u32>, Vec<H::Payload>)> {
    ledger.begin_chunk();
    let mut members = Vec::with_capacity(size.min(units.len()));
    let mut payloads = Vec::with_capacity(members.capacity());
    while members.len() < size {
        let Some(unit) = ledger.next_startable() else {
            break;
        };
        if ledger.settle_before_start(unit, cx.started) {
            continue;
        }
        match attempt::decode(run.handler, &units[unit as usize], scratch) {
            Ok(payload) => {
                ledger.running(unit);
                members.push(unit);
                payloads.push(payload);
            }
            Err(undecodable) => ledger.undecodable(unit, undecodable),
        }
    }
    (!members.is_empty()).then_some((members, payloads))
}

/// Starts work as `start` places it in a slot (answering whether it did), up to the
/// concurrency limit, hands each finished slot's output to `finish`, sends dead letters as
/// they accumulate, and stops at the deadline.
async fn run_to_end<'u, 'c, F: Future>(
    ledger: &mut Ledger<'u, 'c>,
    cx: &Context<'_>,
    bounds: &Bounds,
    mut start: impl FnMut(&mut Ledger<'u, 'c>, &mut Slots<F>) -> bool,
    mut finish: impl FnMut(&mut Ledger<'u, 'c>, u32, F::Output),
) {
    let concurrency = cx.settings.concurrency.max(1);
    let batch_size = cx.sink.map_or(1, |sink| sink.batch_size());

    let mut slots = Slots::new();
    let mut sends: Vec<(Vec<u32>, SendFuture<'_>)> = Vec::new();
    let mut stop_timer = std::pin::pin!(sleep_until(bounds.stop_at));
    let mut sends_timer = std::pin::pin!(sleep_until(bounds.sends_end));
    let mut stopped = false;
    let stop = deadline::Stop::new(bounds.stop_at);
    // Whether the last pass waited, which moves tokio's clock (see `deadline`).
    let mut waited = false;

    loop {
        // The stop timer fires only when the task yields, and calls that never wait (CPU
        // work) do not let it: the clock is read here too, after each event and before
        // units start. (Units already placed still get their first poll in the same pass.)
        if !stopped && stop.passed(std::mem::take(&mut waited)) {
            stopped = true;
            time_out_running(&mut slots, ledger);
        }
        while !stopped && slots.running() < concurrency {
            if !start(ledger, &mut slots) {
                break;
            }
        }
        let urgent = stopped || slots.running() == 0;
        // Asked only when there are letters: most units are not dead letters.
        while ledger.has_pending_letters() {
            let Some((batch_units, letters)) = ledger.letters_due(batch_size, urgent) else {
                break;
            };
            match cx.sink {
                Some(sink) => sends.push((batch_units, sink.send_owned(letters))),
                None => ledger.unsent(batch_units, "no dead-letter sink is configured"),
            }
        }
        if slots.running() == 0 && sends.is_empty() && !ledger.has_pending_letters() {
            break;
        }
        let event = poll_fn(|task| {
            // Sends first: a unit that never waits would otherwise keep them from starting.
            if !sends.is_empty() {
                if let Poll::Ready(event) = poll_sends(&mut sends, task) {
                    return Poll::Ready(event);
                }
            }
            // Then the units, before the timers: a unit that finished in this pass counts as
            // finished even at the deadline, and most finish on their first poll, before any
            // timer needs registering.
            if let Poll::Ready((id, output)) = slots.poll_next(task) {
                return Poll::Ready(Event::Finished(id, output));
            }
            if !stopped && stop_timer.as_mut().poll(task).is_ready() {
                return Poll::Ready(Event::Stop);
            }
            if !sends.is_empty() && sends_timer.as_mut().poll(task).is_ready() {
                return Poll::Ready(Event::SendsLate);
            }
            waited = true;
            Poll::Pending
        })
        .await;
        match event {
            Event::Finished(id, output) => finish(ledger, id, output),
            Event::Sent(batch_units, answers) => ledger.sent(batch_units, answers),
            Event::Stop => {
                stopped = true;
                time_out_running(&mut slots, ledger);
            }
            Event::SendsLate => {
                let why = "the dead-letter sink did not answer before the deadline";
                for (batch_units, _) in sends.drain(..) {
                    ledger.unsent(batch_units, why);
                }
                ledger.abandon_pending(why);
                break;
            }
        }
    }
}

/// The stop at the deadline: nothing starts any more, and the units running time out.
fn time_out_running<F: Future>(slots: &mut Slots<F>, ledger: &mut Ledger<'_, '_>) {
    slots.drop_running();
    ledger.time_out_running();
}

enum Event<T> {
    /// A slot's work finished, with its output.
    Finished(u32, T),
    Sent(Vec<u32>, Vec<Result<(), SinkError>>),
    /// The deadline less the margin: processing stops.
    Stop,
    /// The last moment to wait for dead-letter sends has passed.
    SendsLate,
}

fn poll_sends<T>(
    sends: &mut Vec<(Vec<u32>, SendFuture<'_>)>,
    task: &mut TaskContext<'_>,
) -> Poll<Event<T>> {
    for index in 0..sends.len() {
        if let Poll::Ready(answers) = sends[index].1.as_mut().poll(task) {
            let (units, _) = sends.swap_remove(index);
            return Poll::Ready(Event::Sent(units, answers));
        }
    }
    Poll::Pending
}
