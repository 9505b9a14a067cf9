//! The engine: one invocation, from payload bytes to a [`BatchReport`](crate::BatchReport) or, in
//! Lambda, a [`BatchOutcome`](crate::BatchOutcome).
//!
//! Parsing ([`crate::event`]) hands over the records one by one, and [`units`] makes each a
//! work unit (de-aggregating KPL records afterwards); the [`ledger`] decides what becomes of
//! each unit; the driver below runs units concurrently up to the configured limit in one
//! task (no task per record, no allocation per record once the slots exist), sends dead
//! letters as they accumulate, and enforces the deadline.

mod attempt;
mod cutoff;
mod decoded;
mod ledger;
mod schedule;
pub(crate) mod units;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::SystemTime;

use bumpalo::Bump;
use tokio::time::{sleep_until, Instant};

use crate::dead_letter::{ErasedSink, SendFuture};
use crate::error::Error;
use crate::event;
use crate::handler::Handler;
use crate::report::Report;
use crate::settings::Settings;
use attempt::{attempt, Attempted, RetryPolicy};
pub(crate) use ledger::Ledger;

/// What one invocation runs with.
pub(crate) struct Context<'c> {
    pub request_id: &'c str,
    pub function_name: &'c str,
    /// When Lambda ends the invocation.
    pub deadline: Instant,
    /// The wall-clock time the invocation started, for record ages.
    pub started: SystemTime,
    pub settings: &'c Settings,
    pub sink: Option<&'c dyn ErasedSink>,
}

/// Processes one invocation payload into a report of kind `R`.
pub(crate) async fn process_batch<H: Handler, R: Report>(
    handler: &H,
    state: &H::State,
    payload: &[u8],
    cx: &Context<'_>,
) -> Result<R, Error> {
    let clock = Instant::now();
    // What the batch's units borrow that is not in the payload: the records' decoded data,
    // strings that JSON escapes made differ from it, and why broken records are broken.
    let arena = Bump::new();
    let mut builder = units::Builder::for_payload(payload, &arena);
    let mut sink = |index, record| builder.push(index, record);
    let parsed = event::parse(payload, &arena, R::ROWS, &mut sink)?;
    let units = builder.finish();
    describe_batch(parsed.records, &units);
    let mut ledger = Ledger::new(&units, cx);
    drive(handler, state, &units, &mut ledger, cx).await;
    R::build(parsed, &units, ledger, cx, clock.elapsed())
}

/// Fills in the invocation span's fields, now that the batch is known.
fn describe_batch(records: usize, units: &[units::Unit<'_>]) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    span.record("batch_size", records);
    span.record("user_records", units.len());
    if let Some(named) = units.iter().find(|unit| !unit.meta.event_source_arn().is_empty()) {
        span.record("stream", named.meta.stream_name());
        span.record("shard_id", named.meta.shard_id());
    }
    let mut sequence_numbers = units.iter().filter_map(|unit| unit.checkpoint());
    if let Some(first) = sequence_numbers.next() {
        span.record("first_sequence_number", first);
        span.record("last_sequence_number", sequence_numbers.next_back().unwrap_or(first));
    }
}

/// Runs the units to their outcomes.
async fn drive<'u, H: Handler>(
    handler: &'u H,
    state: &'u H::State,
    units: &'u [units::Unit<'u>],
    ledger: &mut Ledger<'u, '_>,
    cx: &Context<'_>,
) {
    let margin = cx.settings.deadline_margin;
    let cut_at = cx.deadline.checked_sub(margin).unwrap_or_else(Instant::now);
    // Dead letters may still be sent after the cut, until a quarter of the margin is left
    // for the response itself.
    let give_up_at = cx.deadline.checked_sub(margin / 4).unwrap_or_else(Instant::now);
    let policy = RetryPolicy { retries: cx.settings.retries, backoff: cx.settings.backoff, cut_at };
    let concurrency = cx.settings.concurrency.max(1);
    let batch_size = cx.sink.map_or(1, |sink| sink.batch_size());

    let mut scratch = Vec::new();
    let mut slots = Slots::new();
    let mut sends: Vec<(Vec<u32>, SendFuture<'_>)> = Vec::new();
    let mut cut_timer = std::pin::pin!(sleep_until(cut_at));
    let mut give_up_timer = std::pin::pin!(sleep_until(give_up_at));
    let mut cut = false;
    let cutoff = cutoff::Cutoff::new(cut_at);
    // Whether the last pass waited, which moves tokio's clock (see `cutoff`).
    let mut waited = false;

    loop {
        // The cut timer fires only when the task yields, and calls that never wait (CPU
        // work) do not let it: the clock is read here too, after each event and before
        // units start. (Units already placed still get their first poll in the same pass.)
        if !cut && cutoff.passed(std::mem::take(&mut waited)) {
            cut = true;
            cut_running(&mut slots, ledger);
        }
        while !cut && slots.running() < concurrency {
            let Some(unit) = ledger.next_startable() else {
                break;
            };
            if ledger.settle_before_start(unit, cx.started) {
                continue;
            }
            match attempt::decode(handler, &units[unit as usize], &mut scratch) {
                Ok(payload) => {
                    ledger.running(unit);
                    slots.place(
                        unit,
                        attempt(handler, state, &units[unit as usize], payload, &policy),
                    );
                }
                Err(problem) => ledger.undecodable(unit, problem),
            }
        }
        let urgent = cut || slots.running() == 0;
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
            if let Poll::Ready((unit, attempted)) = slots.poll_next(task) {
                return Poll::Ready(Event::Finished(unit, attempted));
            }
            if !cut && cut_timer.as_mut().poll(task).is_ready() {
                return Poll::Ready(Event::Cut);
            }
            if !sends.is_empty() && give_up_timer.as_mut().poll(task).is_ready() {
                return Poll::Ready(Event::GiveUp);
            }
            waited = true;
            Poll::Pending
        })
        .await;
        match event {
            Event::Finished(unit, attempted) => ledger.finish(unit, attempted),
            Event::Sent(batch_units, answers) => ledger.sent(batch_units, answers),
            Event::Cut => {
                cut = true;
                cut_running(&mut slots, ledger);
            }
            Event::GiveUp => {
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

/// The deadline's cut: nothing starts any more, and the units running are timed out.
fn cut_running<F: Future>(slots: &mut Slots<F>, ledger: &mut Ledger<'_, '_>) {
    ledger.stop();
    for unit in slots.cut() {
        ledger.timed_out(unit);
    }
}

enum Event {
    Finished(u32, Attempted),
    Sent(Vec<u32>, Vec<Result<(), crate::dead_letter::SinkError>>),
    Cut,
    GiveUp,
}

fn poll_sends(
    sends: &mut Vec<(Vec<u32>, SendFuture<'_>)>,
    task: &mut TaskContext<'_>,
) -> Poll<Event> {
    for index in 0..sends.len() {
        if let Poll::Ready(answers) = sends[index].1.as_mut().poll(task) {
            let (units, _) = sends.swap_remove(index);
            return Poll::Ready(Event::Sent(units, answers));
        }
    }
    Poll::Pending
}

/// A pinned place for one unit's future, reused by the next unit.
type Slot<F> = Pin<Box<Option<F>>>;

/// The units in flight, each in a reusable pinned slot: once the slots for the
/// concurrency limit exist, starting a unit allocates nothing.
///
/// Running units are polled in stream order. A call that never waits runs whole when it is
/// polled, so the order of polls is the order of work: polled by slot, later units in a low
/// slot ran ahead of earlier ones, and a deadline then cut the earlier ones, which moved the
/// checkpoint back past work already done.
struct Slots<F> {
    /// The running units' slots first, by unit, then the free slots.
    slots: Vec<(u32, Slot<F>)>,
    running: usize,
}

impl<F: Future> Slots<F> {
    fn new() -> Self {
        Slots { slots: Vec::new(), running: 0 }
    }

    fn running(&self) -> usize {
        self.running
    }

    fn place(&mut self, unit: u32, future: F) {
        // Free slots are at the end.
        let slot = if self.slots.len() > self.running {
            let (_, mut slot) = self.slots.pop().expect("a free slot");
            slot.set(Some(future));
            slot
        } else {
            Box::pin(Some(future))
        };
        let at = self.slots[..self.running].partition_point(|(running, _)| *running < unit);
        self.slots.insert(at, (unit, slot));
        self.running += 1;
    }

    /// Polls the running units in stream order; the first that finishes frees its slot.
    fn poll_next(&mut self, task: &mut TaskContext<'_>) -> Poll<(u32, F::Output)> {
        for index in 0..self.running {
            let (unit, slot) = &mut self.slots[index];
            let future = slot.as_mut().as_pin_mut().expect("a running slot holds its future");
            if let Poll::Ready(output) = future.poll(task) {
                let unit = *unit;
                self.free(index);
                return Poll::Ready((unit, output));
            }
        }
        Poll::Pending
    }

    /// Drops the future in a running slot and moves the slot among the free ones.
    fn free(&mut self, index: usize) {
        let mut entry = self.slots.remove(index);
        entry.1.set(None);
        self.slots.push(entry);
        self.running -= 1;
    }

    /// Drops every running unit's future, returning the units.
    fn cut(&mut self) -> Vec<u32> {
        let cut = self.slots[..self.running].iter().map(|(unit, _)| *unit).collect();
        for (_, slot) in &mut self.slots[..self.running] {
            slot.set(None);
        }
        self.running = 0;
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Call = Pin<Box<dyn Future<Output = &'static str>>>;

    fn ready(label: &'static str) -> Call {
        Box::pin(std::future::ready(label))
    }

    #[test]
    fn slots_poll_in_stream_order_and_reuse_freed_slots() {
        let mut task = TaskContext::from_waker(std::task::Waker::noop());
        let mut slots = Slots::new();
        slots.place(5, ready("five"));
        slots.place(2, ready("two"));
        slots.place(7, Box::pin(std::future::pending()));
        assert_eq!(slots.running(), 3);
        assert_eq!(slots.poll_next(&mut task), Poll::Ready((2, "two")), "placed later, earlier");
        assert_eq!(slots.poll_next(&mut task), Poll::Ready((5, "five")));
        assert_eq!(slots.poll_next(&mut task), Poll::Pending);
        slots.place(3, ready("three"));
        assert_eq!(slots.slots.len(), 3, "a freed slot is reused");
        assert_eq!(slots.poll_next(&mut task), Poll::Ready((3, "three")));
        assert_eq!(slots.cut(), [7]);
        assert_eq!(slots.running(), 0);
        slots.place(1, ready("one"));
        assert_eq!(slots.poll_next(&mut task), Poll::Ready((1, "one")));
        assert_eq!((slots.running(), slots.slots.len()), (0, 3));
    }
}
