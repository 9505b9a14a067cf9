//! The ledger: what has become of every unit, the rules that move a unit from one state
//! to the next, and the checkpoint. It holds no futures; the driver feeds it events.
//!
//! A unit ends in exactly one of: succeeded; dead-lettered (the sink confirmed it); or
//! unfinished (failed, timed out, never started, or a dead letter withheld because its
//! record is redelivered anyway), in which case the response's checkpoint is at or
//! before it. Nothing is marked done before its outcome is final.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use super::attempt::{AttemptResult, Attempted, Undecodable};
use super::outcome::{ChunkCounts, Outcome, Settled};
use super::schedule::Scheduler;
use super::Context;
use crate::batch::Unit;
use crate::dead_letter::{DeadLetter, DeadLetterReason, SinkError, ENVELOPE_VERSION};
use crate::error::Error;
use crate::sequence;
use crate::settings::OnRetriesExhausted;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Pending,
    Running,
    /// Waiting for the sink to confirm its dead letter.
    Lettering(DeadLetterReason),
    Succeeded,
    DeadLettered(DeadLetterReason),
    Failed,
    TimedOut,
    /// Its dead letter was not sent: a failure before it means Lambda delivers it again.
    Withheld,
    /// Done in an earlier invocation (its idempotency key): skipped.
    Duplicate,
}

/// A dead letter waiting to be sent.
struct Pending {
    unit: u32,
    letter: DeadLetter,
    /// Whether the unit's partition key waits for the confirmation (see [`Ledger::letter`]).
    holds_key: bool,
}

pub(crate) struct Ledger<'u, 'c> {
    units: &'u [Unit<'u>],
    cx: &'c Context<'c>,
    status: Vec<Status>,
    attempts: Vec<u32>,
    /// The last error of each unit that has one: few do, so a map.
    errors: HashMap<u32, String>,
    /// The dead-letter reason of each unit that got one, even if its letter then failed.
    reasons: Vec<Option<DeadLetterReason>>,
    /// For errors that may quote the payload: what the logs say instead.
    redacted: HashMap<u32, String>,
    scheduler: Scheduler,
    /// Dead letters waiting to be sent, in the order they were written.
    pending: VecDeque<Pending>,
    /// How many pending letters hold their partition key: counted, not scanned, since the
    /// driver asks after every event.
    pending_holding_keys: usize,
    /// The checkpoint the pending letters were last withheld against (see
    /// [`Ledger::letters_due`]), so that they are checked again only when it moves.
    withheld_against: Option<u32>,
    /// Set by a reported failure or the deadline: no unit starts any more.
    stopped: bool,
    /// The unfinished unit (failed, timed out, or never to start) with the lowest sequence
    /// number known so far: everything at or after it is delivered again.
    lowest_unfinished: Option<u32>,
    retried_attempts: u64,
    chunks: ChunkCounts,
}

impl<'u, 'c> Ledger<'u, 'c> {
    pub fn new(units: &'u [Unit<'u>], cx: &'c Context<'c>) -> Self {
        Ledger {
            units,
            cx,
            status: vec![Status::Pending; units.len()],
            attempts: vec![0; units.len()],
            errors: HashMap::new(),
            reasons: vec![None; units.len()],
            redacted: HashMap::new(),
            scheduler: Scheduler::new(
                units,
                if cx.windowed { 1 } else { cx.settings.concurrency },
                cx.chunked,
            ),
            pending: VecDeque::new(),
            pending_holding_keys: 0,
            withheld_against: None,
            stopped: false,
            lowest_unfinished: None,
            retried_attempts: 0,
            chunks: ChunkCounts::default(),
        }
    }

    /// The units that [`next_startable`](Self::next_startable) gives from now on form a
    /// new chunk.
    pub fn begin_chunk(&mut self) {
        self.scheduler.begin_chunk();
    }

    /// A chunk's attempts have ended: each of its units, in stream order.
    pub fn finish_chunk(&mut self, finished: Vec<(u32, Attempted)>) {
        for (unit, attempted) in finished {
            self.finish(unit, attempted);
        }
    }

    /// The batch's calls of its chunk function.
    pub fn chunks_called(&mut self, counts: ChunkCounts) {
        self.chunks = counts;
    }

    /// The deadline's stop: every unit still running times out.
    pub fn time_out_running(&mut self) {
        self.stop();
        for unit in 0..self.units.len() as u32 {
            if self.status[unit as usize] == Status::Running {
                self.timed_out(unit);
            }
        }
    }

    /// The next unit allowed to start, unless a failure has stopped the batch.
    pub fn next_startable(&mut self) -> Option<u32> {
        if self.stopped {
            return None;
        }
        self.scheduler.next()
    }

    /// Stops starting units (a failure, or the deadline). Units that will now never start
    /// are unfinished, so they lower the checkpoint like failures do.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        for unit in 0..self.units.len() as u32 {
            if self.status[unit as usize] == Status::Pending {
                self.mark_unfinished(unit);
            }
        }
    }

    /// Settles a unit that cannot be processed before it starts: undecodable as received
    /// (its envelope or aggregate) or expired. Returns `false` when the unit is ready to run.
    pub fn settle_before_start(&mut self, unit: u32, started: SystemTime) -> bool {
        let u = &self.units[unit as usize];
        if let Some(decode_error) = u.decode_error() {
            self.letter(unit, DeadLetterReason::DecodeError, decode_error.to_owned(), false);
            return true;
        }
        if let Some(max_age) = self.cx.settings.max_record_age {
            let age = u.age_at(started);
            if age > max_age {
                let why = format!(
                    "the record is {} ms old, older than max_record_age ({} ms)",
                    age.as_millis(),
                    max_age.as_millis()
                );
                self.letter(unit, DeadLetterReason::Expired, why, false);
                return true;
            }
        }
        false
    }

    /// The payload of a unit about to run could not be decoded.
    pub fn undecodable(&mut self, unit: u32, undecodable: Undecodable) {
        if let Some(redacted) = undecodable.redacted {
            self.redacted.insert(unit, redacted);
        }
        self.letter(unit, DeadLetterReason::DecodeError, undecodable.error, false);
    }

    /// What a log line may say of a unit's error: the error, or its redacted version when
    /// it may quote the payload and payloads stay out of logs.
    fn loggable<'e>(&'e self, unit: u32, error: &'e str) -> &'e str {
        match self.redacted.get(&unit) {
            Some(redacted) if !self.cx.settings.log_payloads => redacted,
            _ => error,
        }
    }

    /// A unit whose idempotency key is done: it is skipped, and done.
    pub fn duplicate(&mut self, unit: u32) {
        self.status[unit as usize] = Status::Duplicate;
        self.scheduler.release(unit);
    }

    pub fn running(&mut self, unit: u32) {
        self.status[unit as usize] = Status::Running;
    }

    /// A unit's attempts have ended.
    pub fn finish(&mut self, unit: u32, attempted: Attempted) {
        let index = unit as usize;
        self.attempts[index] = attempted.attempts;
        self.retried_attempts += u64::from(attempted.attempts.saturating_sub(1));
        match attempted.result {
            AttemptResult::Succeeded => {
                self.status[index] = Status::Succeeded;
                self.scheduler.release(unit);
            }
            AttemptResult::Rejected(error) => {
                self.letter(unit, DeadLetterReason::Rejected, error.chain(), false)
            }
            AttemptResult::Undecodable(undecodable) => self.undecodable(unit, undecodable),
            AttemptResult::Duplicate => self.duplicate(unit),
            AttemptResult::Unguarded(why) => self.fail(unit, why),
            AttemptResult::Exhausted { error, stop_near: true } => self.fail(
                unit,
                format!("{} (no time left before the deadline to retry)", error.chain()),
            ),
            AttemptResult::Exhausted { error, stop_near: false } => {
                match self.cx.settings.on_retries_exhausted {
                    OnRetriesExhausted::Report => self.fail(unit, error.chain()),
                    // The record may succeed when delivered again, so its key waits for the
                    // sink: if the letter is refused, later records of the key must not have
                    // run before it.
                    OnRetriesExhausted::DeadLetter => {
                        self.letter(unit, DeadLetterReason::RetriesExhausted, error.chain(), true)
                    }
                }
            }
        }
    }

    /// A running unit timed out at the deadline.
    pub fn timed_out(&mut self, unit: u32) {
        self.mark_unfinished(unit);
        self.status[unit as usize] = Status::TimedOut;
        self.errors.insert(unit, "timed out at the deadline before it finished".into());
        tracing::warn!(
            sequence_number = self.units[unit as usize].meta.sequence_number,
            partition_key = self.units[unit as usize].meta.partition_key,
            "record timed out at the deadline; it will be delivered again"
        );
    }

    /// Queues a dead letter, or reports the unit when there is no sink.
    ///
    /// A permanent reason (undecodable, rejected, expired) releases the unit's key at once:
    /// the record will never be processed successfully, so later records of its key cannot
    /// overtake it. `holds_key` keeps the key until the sink confirms.
    /// A window processor's letters all hold the batch: a record after a refused letter
    /// must not have been folded into the window state.
    fn letter(&mut self, unit: u32, reason: DeadLetterReason, error: String, holds_key: bool) {
        let holds_key = holds_key || self.cx.windowed;
        let index = unit as usize;
        let meta = &self.units[index].meta;
        self.reasons[index] = Some(reason);
        if self.cx.sink.is_none() {
            let why =
                format!("{error} ({} and no dead-letter sink is configured)", reason.as_str());
            self.fail(unit, why);
            return;
        }
        let letter = self.envelope(unit, reason, &error);
        // A sink that logs each letter itself (the log sink) is its one log line.
        if !self.cx.sink.is_some_and(|sink| sink.logs_each_letter()) {
            let data = letter.data.as_deref().filter(|_| self.cx.settings.log_payloads);
            tracing::warn!(
                sequence_number = meta.sequence_number,
                sub_sequence_number = meta.sub_sequence_number(),
                partition_key = meta.partition_key,
                reason = reason.as_str(),
                error = %self.loggable(unit, &error),
                data,
                "dead-lettering record"
            );
        }
        self.errors.insert(unit, error);
        if self.redelivered_anyway(unit) {
            self.status[index] = Status::Withheld;
        } else {
            self.status[index] = Status::Lettering(reason);
            self.pending_holding_keys += usize::from(holds_key);
            self.pending.push_back(Pending { unit, letter, holds_key });
        }
        if !holds_key {
            self.scheduler.release(unit);
        }
    }

    /// Marks a unit as a reported failure: the batch stops starting units.
    fn fail(&mut self, unit: u32, error: String) {
        let index = unit as usize;
        let meta = &self.units[index].meta;
        tracing::error!(
            sequence_number = meta.sequence_number,
            sub_sequence_number = meta.sub_sequence_number(),
            partition_key = meta.partition_key,
            attempts = self.attempts[index],
            error = %self.loggable(unit, &error),
            "record failed; reporting it so that Lambda delivers it again"
        );
        self.status[index] = Status::Failed;
        self.errors.insert(unit, error);
        self.mark_unfinished(unit);
        self.stop();
    }

    /// `unit` will be delivered again: so will everything at or after it.
    fn mark_unfinished(&mut self, unit: u32) {
        let nameable = self.units[unit as usize].checkpoint().is_some();
        if nameable && !self.redelivered_anyway(unit) {
            self.lowest_unfinished = Some(unit);
        }
    }

    /// Whether a unit will be delivered again whatever happens to it now.
    fn redelivered_anyway(&self, unit: u32) -> bool {
        let lowest = self.lowest_unfinished.and_then(|low| self.units[low as usize].checkpoint());
        at_or_after(&self.units[unit as usize], lowest)
    }

    /// The next batch of dead letters to send, if one is due.
    ///
    /// Letters go out when a sink batch is full, or sooner when `urgent` (nothing else is
    /// running, or the deadline has come) or when a partition key waits for one. Letters
    /// of records that a failure has put after the checkpoint are withheld: Lambda
    /// delivers those records again, and sending them now would dead-letter them twice.
    pub fn letters_due(
        &mut self,
        batch_size: usize,
        urgent: bool,
    ) -> Option<(Vec<u32>, Vec<DeadLetter>)> {
        if self.lowest_unfinished != self.withheld_against {
            self.withhold_redelivered();
        }
        let key_waits = self.pending_holding_keys > 0;
        if self.pending.is_empty() || !(urgent || key_waits || self.pending.len() >= batch_size) {
            return None;
        }
        let take = self.pending.len().min(batch_size);
        let mut units = Vec::with_capacity(take);
        let mut letters = Vec::with_capacity(take);
        for pending in self.pending.drain(..take) {
            self.pending_holding_keys -= usize::from(pending.holds_key);
            units.push(pending.unit);
            letters.push(pending.letter);
        }
        Some((units, letters))
    }

    /// Withholds the pending letters that the checkpoint has put after it; letters queued
    /// later are checked as they are queued.
    fn withhold_redelivered(&mut self) {
        self.withheld_against = self.lowest_unfinished;
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for pending in std::mem::take(&mut self.pending) {
            if self.redelivered_anyway(pending.unit) {
                self.status[pending.unit as usize] = Status::Withheld;
            } else {
                kept.push_back(pending);
            }
        }
        self.pending = kept;
        self.pending_holding_keys = self.pending.iter().filter(|p| p.holds_key).count();
    }

    pub fn has_pending_letters(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The sink answered for a batch of letters.
    pub fn sent(&mut self, units: Vec<u32>, answers: Vec<Result<(), SinkError>>) {
        let mut answers = answers.into_iter();
        for unit in units {
            match answers.next() {
                Some(Ok(())) => self.confirmed(unit),
                Some(Err(error)) => {
                    self.refused(unit, &format!("the dead-letter sink refused it: {error}"))
                }
                None => self.refused(unit, "the dead-letter sink did not answer for it"),
            }
        }
    }

    /// The sink did not answer in time, or could not be called.
    pub fn unsent(&mut self, units: Vec<u32>, why: &str) {
        for unit in units {
            self.refused(unit, why);
        }
    }

    fn confirmed(&mut self, unit: u32) {
        let index = unit as usize;
        if let Status::Lettering(reason) = self.status[index] {
            self.status[index] = Status::DeadLettered(reason);
            if reason == DeadLetterReason::RetriesExhausted || self.cx.windowed {
                self.scheduler.release(unit);
            }
        }
    }

    fn refused(&mut self, unit: u32, why: &str) {
        let error = match self.errors.remove(&unit) {
            Some(original) => format!("{original}; {why}"),
            None => why.to_owned(),
        };
        self.fail(unit, error);
    }

    /// Pending letters that can no longer be sent (the deadline has passed).
    pub fn abandon_pending(&mut self, why: &str) {
        self.pending_holding_keys = 0;
        for pending in std::mem::take(&mut self.pending) {
            self.refused(pending.unit, why);
        }
    }

    /// The batch's end, once the driver is done: every unit's outcome and the checkpoint.
    /// Fails when an unfinished unit has no sequence number to report.
    pub fn settle(
        self,
        records: usize,
        oldest_arrival: Option<u64>,
        duration: Duration,
    ) -> Result<Settled<'u>, Error> {
        let outcomes: Vec<Outcome> = self.outcomes().collect();
        let checkpoint = checkpoint(self.units, &outcomes)?;
        Ok(Settled {
            records,
            units: self.units,
            outcomes,
            attempts: self.attempts,
            errors: self.errors,
            reasons: self.reasons,
            retried_attempts: self.retried_attempts,
            chunks: self.chunks,
            checkpoint,
            oldest_arrival,
            started: self.cx.started,
            duration,
            state: None,
        })
    }

    /// The public outcome of each unit.
    fn outcomes(&self) -> impl Iterator<Item = Outcome> + '_ {
        self.status.iter().map(|status| match *status {
            Status::Succeeded => Outcome::Succeeded,
            Status::Duplicate => Outcome::Duplicate,
            Status::DeadLettered(reason) => Outcome::DeadLettered(reason),
            Status::TimedOut | Status::Running => Outcome::TimedOut,
            Status::Failed | Status::Lettering(_) => Outcome::Failed,
            Status::Pending | Status::Withheld => Outcome::NotStarted,
        })
    }

    /// The dead-letter envelope of a unit.
    fn envelope(&self, unit: u32, reason: DeadLetterReason, error: &str) -> DeadLetter {
        let u = &self.units[unit as usize];
        let meta = &u.meta;
        let arrival = u.arrival_millis().map(|millis| millis as f64 / 1000.0);
        DeadLetter {
            version: ENVELOPE_VERSION,
            reason,
            error: error.to_owned(),
            attempts: self.attempts[unit as usize],
            function_name: self.cx.function_name.to_owned(),
            request_id: self.cx.invocation.request_id().to_owned(),
            event_source_arn: meta.source.event_source_arn.map(str::to_owned),
            shard_id: meta.shard_id().map(str::to_owned),
            sequence_number: u.checkpoint().map(str::to_owned),
            sub_sequence_number: meta.sub_sequence_number(),
            partition_key: meta.partition_key.map(str::to_owned),
            explicit_hash_key: meta.explicit_hash_key.map(str::to_owned),
            approximate_arrival_timestamp: arrival,
            aggregated: meta.is_aggregated(),
            data: u.data.to_base64(),
            raw_record: u.raw_record().map(str::to_owned),
            data_location: None,
        }
    }
}

/// The checkpoint: the lowest sequence number among units not finished.
///
/// Lambda resumes the shard from it and delivers everything after it again, so naming any
/// later record would lose the unfinished ones before it. An unfinished unit with no valid
/// sequence number cannot be named at all: the batch must fail whole.
pub(super) fn checkpoint<'u>(
    units: &[Unit<'u>],
    outcomes: &[Outcome],
) -> Result<Option<&'u str>, Error> {
    let mut lowest: Option<&'u str> = None;
    for (unit, outcome) in units.iter().zip(outcomes) {
        if outcome.is_finished() {
            continue;
        }
        let Some(sequence_number) = unit.checkpoint() else {
            return Err(Error::Uncheckpointable(format!(
                "record {} ({}) is {outcome} and has no valid sequence number to report",
                unit.record,
                unit.decode_error().unwrap_or("no decode error recorded"),
            )));
        };
        if lowest.is_none_or(|low| sequence::compare(sequence_number, low) == Ordering::Less) {
            lowest = Some(sequence_number);
        }
    }
    Ok(lowest)
}

/// Whether Lambda delivers `unit` again when it resumes from `checkpoint`: it is at or
/// after it. A unit without a sequence number is never at a checkpoint.
pub(super) fn at_or_after(unit: &Unit<'_>, checkpoint: Option<&str>) -> bool {
    match (checkpoint, unit.checkpoint()) {
        (Some(at), Some(own)) => sequence::compare(own, at) != Ordering::Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dead_letter::{ErasedSink, LogDeadLetter};
    use crate::error::RecordError;
    use crate::invocation::Invocation;
    use crate::settings::Settings;

    /// A unit of its own key with this sequence number (`""`: none that is valid).
    fn unit(sequence_number: &'static str) -> Unit<'static> {
        Unit::for_test(sequence_number, sequence_number)
    }

    fn context<'c>(settings: &'c Settings, sink: Option<&'c dyn ErasedSink>) -> Context<'c> {
        // One invocation for every test of the thread: contexts borrow it.
        thread_local! {
            static INVOCATION: &'static Invocation =
                Box::leak(Box::new(Invocation::local(Duration::from_secs(60))));
        }
        Context {
            invocation: INVOCATION.with(|invocation| *invocation),
            function_name: "function",
            started: SystemTime::now(),
            settings,
            sink,
            windowed: false,
            chunked: false,
        }
    }

    fn succeeded() -> Attempted {
        Attempted { attempts: 1, result: AttemptResult::Succeeded }
    }

    fn exhausted() -> Attempted {
        let error = RecordError::retry("down");
        Attempted { attempts: 3, result: AttemptResult::Exhausted { error, stop_near: false } }
    }

    fn rejected() -> Attempted {
        Attempted { attempts: 1, result: AttemptResult::Rejected(RecordError::reject("bad")) }
    }

    /// Starts units in order and finishes each with what `run` gives it, until the ledger
    /// stops starting them.
    fn run_in_order(ledger: &mut Ledger<'_, '_>, mut run: impl FnMut(u32) -> Attempted) {
        while let Some(unit) = ledger.next_startable() {
            ledger.running(unit);
            ledger.finish(unit, run(unit));
        }
    }

    /// Starts units `0..count`, which must be startable together and in that order.
    fn start_all(ledger: &mut Ledger<'_, '_>, count: u32) {
        for unit in 0..count {
            assert_eq!(ledger.next_startable(), Some(unit));
            ledger.running(unit);
        }
    }

    fn settle(ledger: Ledger<'_, '_>) -> Result<(Vec<Outcome>, Option<String>), Error> {
        let settled = ledger.settle(0, None, Duration::ZERO)?;
        Ok((settled.outcomes.clone(), settled.checkpoint.map(str::to_owned)))
    }

    #[test]
    fn a_batch_done_whole_names_no_checkpoint() {
        let (units, settings) = ([unit("1"), unit("2")], Settings::default());
        let cx = context(&settings, None);
        let mut ledger = Ledger::new(&units, &cx);
        run_in_order(&mut ledger, |_| succeeded());
        let (outcomes, checkpoint) = settle(ledger).unwrap();
        assert_eq!(outcomes, [Outcome::Succeeded, Outcome::Succeeded]);
        assert_eq!(checkpoint, None);
    }

    #[test]
    fn the_checkpoint_is_the_failed_record_and_later_records_do_not_start() {
        let (units, settings) = ([unit("1"), unit("2"), unit("3")], Settings::default());
        let cx = context(&settings, None);
        let mut ledger = Ledger::new(&units, &cx);
        run_in_order(&mut ledger, |unit| if unit == 1 { exhausted() } else { succeeded() });
        let settled = ledger.settle(3, None, Duration::ZERO).unwrap();
        assert_eq!(settled.outcomes, [Outcome::Succeeded, Outcome::Failed, Outcome::NotStarted]);
        assert_eq!(settled.checkpoint, Some("2"));
        let redelivered: Vec<bool> = units.iter().map(|u| settled.redelivered(u)).collect();
        assert_eq!(redelivered, [false, true, true]);
    }

    #[test]
    fn the_checkpoint_is_the_lowest_unfinished_sequence_number_compared_as_numbers() {
        // "10" sorts before "9" as text; Lambda compares numbers.
        let (units, settings) = ([unit("9"), unit("10")], Settings::default());
        let cx = context(&settings, None);
        let mut ledger = Ledger::new(&units, &cx);
        ledger.running(0);
        ledger.running(1);
        ledger.finish(1, exhausted());
        ledger.timed_out(0);
        let (outcomes, checkpoint) = settle(ledger).unwrap();
        assert_eq!(outcomes, [Outcome::TimedOut, Outcome::Failed]);
        assert_eq!(checkpoint.as_deref(), Some("9"));
    }

    #[test]
    fn user_records_of_one_aggregate_share_their_parents_checkpoint() {
        let (units, settings) = ([unit("1"), unit("5"), unit("5"), unit("5")], Settings::default());
        let cx = context(&settings, None);
        let mut ledger = Ledger::new(&units, &cx);
        run_in_order(&mut ledger, |unit| if unit == 2 { exhausted() } else { succeeded() });
        let settled = ledger.settle(2, None, Duration::ZERO).unwrap();
        assert_eq!(settled.checkpoint, Some("5"));
        let redelivered: Vec<bool> = units.iter().map(|u| settled.redelivered(u)).collect();
        assert_eq!(redelivered, [false, true, true, true], "a succeeded sibling comes again");
    }

    #[test]
    fn an_unfinished_record_without_a_sequence_number_cannot_be_checkpointed() {
        let (units, settings) = ([unit("1"), unit("")], Settings::default());
        let cx = context(&settings, None);
        let mut ledger = Ledger::new(&units, &cx);
        run_in_order(&mut ledger, |unit| if unit == 1 { exhausted() } else { succeeded() });
        let error = settle(ledger).unwrap_err();
        assert!(matches!(error, Error::Uncheckpointable(_)), "{error}");
        assert!(error.to_string().contains("no valid sequence number"), "{error}");
    }

    #[test]
    fn without_a_sink_a_rejected_record_is_the_reported_failure() {
        let (units, settings) = ([unit("1"), unit("2")], Settings::default());
        let cx = context(&settings, None);
        let mut ledger = Ledger::new(&units, &cx);
        run_in_order(&mut ledger, |_| rejected());
        assert!(!ledger.has_pending_letters());
        let (outcomes, checkpoint) = settle(ledger).unwrap();
        assert_eq!(outcomes, [Outcome::Failed, Outcome::NotStarted]);
        assert_eq!(checkpoint.as_deref(), Some("1"));
    }

    #[test]
    fn a_confirmed_letter_is_done_and_a_refused_one_is_the_reported_failure() {
        let (units, settings) = ([unit("1"), unit("2"), unit("3")], Settings::default());
        let sink = LogDeadLetter::new();
        let cx = context(&settings, Some(&sink));
        let mut ledger = Ledger::new(&units, &cx);
        run_in_order(&mut ledger, |unit| if unit == 2 { succeeded() } else { rejected() });
        let (letters, _) = ledger.letters_due(10, true).expect("two letters are due");
        assert_eq!(letters, [0, 1]);
        ledger.sent(letters, vec![Ok(()), Err(SinkError::new("full"))]);
        let settled = ledger.settle(3, None, Duration::ZERO).unwrap();
        let rejected = Outcome::DeadLettered(DeadLetterReason::Rejected);
        assert_eq!(settled.outcomes, [rejected, Outcome::Failed, Outcome::Succeeded]);
        assert_eq!(settled.checkpoint, Some("2"));
        assert!(settled.errors[&1].contains("refused"), "{:?}", settled.errors);
    }

    #[test]
    fn a_letter_after_the_checkpoint_is_withheld_not_sent() {
        let settings = Settings { concurrency: 2, ..Settings::default() };
        let units = [unit("1"), unit("2")];
        let sink = LogDeadLetter::new();
        let cx = context(&settings, Some(&sink));
        let mut ledger = Ledger::new(&units, &cx);
        start_all(&mut ledger, 2);
        ledger.finish(1, rejected());
        ledger.finish(0, exhausted());
        assert!(ledger.letters_due(10, true).is_none(), "Lambda delivers record 2 again");
        let (outcomes, checkpoint) = settle(ledger).unwrap();
        assert_eq!(outcomes, [Outcome::Failed, Outcome::NotStarted]);
        assert_eq!(checkpoint.as_deref(), Some("1"));
    }

    #[test]
    fn a_letter_written_after_a_failure_before_it_is_withheld() {
        let settings = Settings { concurrency: 2, ..Settings::default() };
        let units = [unit("1"), unit("2")];
        let sink = LogDeadLetter::new();
        let cx = context(&settings, Some(&sink));
        let mut ledger = Ledger::new(&units, &cx);
        start_all(&mut ledger, 2);
        ledger.finish(0, exhausted());
        assert!(ledger.letters_due(10, true).is_none(), "nothing is lettered yet");
        ledger.finish(1, rejected());
        assert!(!ledger.has_pending_letters(), "Lambda delivers record 2 again");
        let (outcomes, checkpoint) = settle(ledger).unwrap();
        assert_eq!(outcomes, [Outcome::Failed, Outcome::NotStarted]);
        assert_eq!(checkpoint.as_deref(), Some("1"));
    }

    #[test]
    fn a_checkpoint_that_moves_lower_withholds_the_letters_queued_before() {
        let settings = Settings { concurrency: 3, ..Settings::default() };
        let units = [unit("1"), unit("2"), unit("3")];
        let sink = LogDeadLetter::new();
        let cx = context(&settings, Some(&sink));
        let mut ledger = Ledger::new(&units, &cx);
        start_all(&mut ledger, 3);
        ledger.finish(2, exhausted());
        assert!(ledger.letters_due(10, false).is_none());
        ledger.finish(1, rejected());
        assert!(ledger.has_pending_letters(), "record 2 is before the checkpoint, 3");
        ledger.finish(0, exhausted());
        assert!(ledger.letters_due(10, true).is_none(), "the checkpoint moved to 1");
        let (outcomes, checkpoint) = settle(ledger).unwrap();
        assert_eq!(outcomes, [Outcome::Failed, Outcome::NotStarted, Outcome::Failed]);
        assert_eq!(checkpoint.as_deref(), Some("1"));
    }

    #[test]
    fn a_key_is_held_only_until_its_letter_is_sent() {
        let settings = Settings {
            on_retries_exhausted: OnRetriesExhausted::DeadLetter,
            ..Settings::default()
        };
        let units = [unit("1"), unit("2")];
        let sink = LogDeadLetter::new();
        let cx = context(&settings, Some(&sink));
        let mut ledger = Ledger::new(&units, &cx);
        start_all(&mut ledger, 1);
        ledger.finish(0, exhausted());
        assert_eq!(ledger.letters_due(10, false).map(|(units, _)| units), Some(vec![0]), "due");
        assert_eq!(ledger.pending_holding_keys, 0);
        assert!(ledger.letters_due(10, false).is_none());
    }

    #[test]
    fn letters_go_out_in_sink_batches_in_the_order_they_were_written() {
        let settings = Settings { concurrency: 4, ..Settings::default() };
        let units: Vec<Unit<'_>> = ["1", "2", "3", "4", "5"].into_iter().map(unit).collect();
        let sink = LogDeadLetter::new();
        let cx = context(&settings, Some(&sink));
        let mut ledger = Ledger::new(&units, &cx);
        for unit in [0, 1, 2, 3, 4] {
            assert_eq!(ledger.next_startable(), Some(unit));
            ledger.running(unit);
            ledger.finish(unit, rejected());
        }
        assert!(ledger.letters_due(10, false).is_none(), "not a full batch, nothing urgent");
        assert_eq!(ledger.letters_due(2, false).map(|(units, _)| units), Some(vec![0, 1]));
        assert_eq!(ledger.letters_due(2, false).map(|(units, _)| units), Some(vec![2, 3]));
        assert!(ledger.letters_due(2, false).is_none(), "one letter is not a full batch");
        assert_eq!(ledger.letters_due(2, true).map(|(units, _)| units), Some(vec![4]));
        assert!(!ledger.has_pending_letters());
    }

    #[test]
    fn the_deadline_times_out_running_records_and_starts_no_more() {
        let settings = Settings { concurrency: 2, ..Settings::default() };
        let units = [unit("1"), unit("2"), unit("3")];
        let cx = context(&settings, None);
        let mut ledger = Ledger::new(&units, &cx);
        ledger.next_startable();
        ledger.running(0);
        ledger.stop();
        ledger.timed_out(0);
        assert_eq!(ledger.next_startable(), None);
        let (outcomes, checkpoint) = settle(ledger).unwrap();
        assert_eq!(outcomes, [Outcome::TimedOut, Outcome::NotStarted, Outcome::NotStarted]);
        assert_eq!(checkpoint.as_deref(), Some("1"));
    }
}
