//! The engine: one invocation, from payload bytes to a [`BatchReport`].
//!
//! Parsing ([`crate::event`]) hands over the records one by one, and [`units`] makes each a
//! work unit (de-aggregating KPL records afterwards); the [`ledger`] decides what becomes of
//! each unit; the driver below runs units concurrently up to the configured limit in one
//! task (no task per record, no allocation per record once the slots exist), sends dead
//! letters as they accumulate, and enforces the deadline.

mod attempt;
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
use crate::report::BatchReport;
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

/// Processes one invocation payload.
pub(crate) async fn process_batch<H: Handler>(
    handler: &H,
    state: &H::State,
    payload: &[u8],
    cx: &Context<'_>,
) -> Result<BatchReport, Error> {
    let clock = Instant::now();
    // Text of the batch that is not in the payload: strings that JSON escapes made differ
    // from it, and why broken records are broken. Usually it stays empty.
    let arena = Bump::new();
    let mut builder = units::Builder::for_payload(payload, &arena);
    let parsed = event::parse(payload, &arena, &mut |index, record| builder.push(index, record))?;
    let mut aggregates = Vec::new();
    let units = builder.finish(&mut aggregates);
    describe_batch(parsed.records, &units);
    let mut ledger = Ledger::new(&units, cx);
    drive(handler, state, &units, &mut ledger, cx).await;
    BatchReport::new(parsed.records, parsed.text, &units, ledger, cx, clock.elapsed())
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
    let mut cut = Instant::now() >= cut_at;
    if cut {
        ledger.stop();
    }

    loop {
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
        while let Some((batch_units, letters)) = ledger.letters_due(batch_size, urgent) {
            match cx.sink {
                Some(sink) => sends.push((batch_units, sink.send_owned(letters))),
                None => ledger.unsent(batch_units, "no dead-letter sink is configured"),
            }
        }
        if slots.running() == 0 && sends.is_empty() && !ledger.has_pending_letters() {
            break;
        }
        let event = poll_fn(|task| {
            if !cut && cut_timer.as_mut().poll(task).is_ready() {
                return Poll::Ready(Event::Cut);
            }
            if !sends.is_empty() && give_up_timer.as_mut().poll(task).is_ready() {
                return Poll::Ready(Event::GiveUp);
            }
            // Sends first: a unit that never waits would otherwise keep them from starting.
            if let Poll::Ready(event) = poll_sends(&mut sends, task) {
                return Poll::Ready(event);
            }
            slots.poll_next(task).map(|(unit, attempted)| Event::Finished(unit, attempted))
        })
        .await;
        match event {
            Event::Finished(unit, attempted) => ledger.finish(unit, attempted),
            Event::Sent(batch_units, answers) => ledger.sent(batch_units, answers),
            Event::Cut => {
                cut = true;
                ledger.stop();
                for unit in slots.cut() {
                    ledger.timed_out(unit);
                }
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
struct Slots<F> {
    slots: Vec<(Option<u32>, Slot<F>)>,
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
        self.running += 1;
        match self.slots.iter_mut().find(|(occupant, _)| occupant.is_none()) {
            Some((occupant, slot)) => {
                *occupant = Some(unit);
                slot.set(Some(future));
            }
            None => self.slots.push((Some(unit), Box::pin(Some(future)))),
        }
    }

    /// Polls every running unit; the first that finishes frees its slot.
    fn poll_next(&mut self, task: &mut TaskContext<'_>) -> Poll<(u32, F::Output)> {
        for (occupant, slot) in &mut self.slots {
            let Some(unit) = *occupant else { continue };
            let Some(future) = slot.as_mut().as_pin_mut() else {
                continue;
            };
            if let Poll::Ready(output) = future.poll(task) {
                slot.set(None);
                *occupant = None;
                self.running -= 1;
                return Poll::Ready((unit, output));
            }
        }
        Poll::Pending
    }

    /// Drops every running unit's future, returning the units.
    fn cut(&mut self) -> Vec<u32> {
        let mut cut = Vec::new();
        for (occupant, slot) in &mut self.slots {
            if let Some(unit) = occupant.take() {
                slot.set(None);
                cut.push(unit);
            }
        }
        self.running = 0;
        cut
    }
}
