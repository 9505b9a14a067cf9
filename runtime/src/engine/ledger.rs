//! The ledger: what has become of every unit, and the rules that move a unit from one
//! state to the next. It holds no futures; the driver feeds it events.
//!
//! A unit ends in exactly one of: succeeded; dead-lettered (the sink confirmed it); or
//! unfinished (failed, timed out, never started, or a dead letter withheld because its
//! record is redelivered anyway), in which case the response's checkpoint is at or
//! before it. Nothing is marked done before its outcome is final.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::SystemTime;

use super::attempt::{AttemptResult, Attempted, Undecodable};
use super::schedule::Scheduler;
use super::units::Unit;
use super::Context;
use crate::dead_letter::{DeadLetter, DeadLetterReason, SinkError, ENVELOPE_VERSION};
use crate::report::Outcome;
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
    pub status: Vec<Status>,
    pub attempts: Vec<u32>,
    /// The last error of each unit that has one. Few units do, so a map: a list with a
    /// slot per unit was written, read and freed for every batch.
    pub errors: HashMap<u32, String>,
    /// The dead-letter reason of each unit that got one, even if its letter then failed.
    reasons: Vec<Option<DeadLetterReason>>,
    /// For errors that may quote the payload: what the logs say instead.
    redacted: HashMap<u32, String>,
    scheduler: Scheduler,
    pending: Vec<Pending>,
    /// Set by a reported failure or the deadline: no unit starts any more.
    stopped: bool,
    /// The unfinished unit (failed, timed out, or never to start) with the lowest sequence
    /// number known so far: everything at or after it is delivered again.
    floor: Option<u32>,
    pub retried_attempts: u64,
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
            scheduler: Scheduler::new(units, cx.settings.concurrency),
            pending: Vec::new(),
            stopped: false,
            floor: None,
            retried_attempts: 0,
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
                self.lower_floor(unit);
            }
        }
    }

    /// Settles a unit that cannot be processed before it starts: broken, expired or
    /// undecodable. Returns `false` when the unit is ready to run.
    pub fn settle_before_start(&mut self, unit: u32, started: SystemTime) -> bool {
        let u = &self.units[unit as usize];
        if let Some(problem) = u.problem() {
            self.letter(unit, DeadLetterReason::DecodeError, problem.to_owned(), false);
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
    pub fn undecodable(&mut self, unit: u32, problem: Undecodable) {
        if let Some(redacted) = problem.redacted {
            self.redacted.insert(unit, redacted);
        }
        self.letter(unit, DeadLetterReason::DecodeError, problem.error, false);
    }

    /// What a log line may say of a unit's error: the error, or its redacted version when
    /// it may quote the payload and payloads stay out of logs.
    fn loggable<'e>(&'e self, unit: u32, error: &'e str) -> &'e str {
        match self.redacted.get(&unit) {
            Some(redacted) if !self.cx.settings.log_payloads => redacted,
            _ => error,
        }
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
            AttemptResult::Undecodable(problem) => self.undecodable(unit, problem),
            AttemptResult::Exhausted { error, cut_short: true } => self.fail(
                unit,
                format!("{} (no time left before the deadline to retry)", error.chain()),
            ),
            AttemptResult::Exhausted { error, cut_short: false } => {
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

    /// The deadline cut a running unit.
    pub fn timed_out(&mut self, unit: u32) {
        self.lower_floor(unit);
        self.status[unit as usize] = Status::TimedOut;
        self.errors.insert(unit, "cut at the deadline before it finished".into());
        tracing::warn!(
            sequence_number = self.units[unit as usize].meta.sequence_number,
            partition_key = self.units[unit as usize].meta.partition_key,
            "record cut at the deadline; it will be delivered again"
        );
    }

    /// Queues a dead letter, or reports the unit when there is no sink.
    ///
    /// A permanent reason (undecodable, rejected, expired) releases the unit's key at once:
    /// the record will never be processed successfully, so later records of its key cannot
    /// overtake it. `holds_key` keeps the key until the sink confirms.
    fn letter(&mut self, unit: u32, reason: DeadLetterReason, error: String, holds_key: bool) {
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
        self.errors.insert(unit, error);
        self.status[index] = Status::Lettering(reason);
        self.pending.push(Pending { unit, letter, holds_key });
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
        self.lower_floor(unit);
        self.stop();
    }

    /// `unit` will be delivered again: so will everything at or after it.
    fn lower_floor(&mut self, unit: u32) {
        let Some(sequence) = self.units[unit as usize].checkpoint() else { return };
        let lower = match self.floor {
            Some(floor) => self.compare_to_unit(sequence, floor) == Ordering::Less,
            None => true,
        };
        if lower {
            self.floor = Some(unit);
        }
    }

    fn compare_to_unit(&self, sequence: &str, unit: u32) -> Ordering {
        let other = self.units[unit as usize].checkpoint().unwrap_or("");
        sequence::compare(sequence, other)
    }

    /// Whether a unit will be delivered again whatever happens to it now.
    fn redelivered_anyway(&self, unit: u32) -> bool {
        match (self.floor, self.units[unit as usize].checkpoint()) {
            (Some(floor), Some(sequence)) => {
                self.compare_to_unit(sequence, floor) != Ordering::Less
            }
            _ => false,
        }
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
        if self.floor.is_some() {
            let mut kept = Vec::with_capacity(self.pending.len());
            for pending in std::mem::take(&mut self.pending) {
                if self.redelivered_anyway(pending.unit) {
                    self.status[pending.unit as usize] = Status::Withheld;
                } else {
                    kept.push(pending);
                }
            }
            self.pending = kept;
        }
        let key_waits = self.pending.iter().any(|p| p.holds_key);
        if self.pending.is_empty() || !(urgent || key_waits || self.pending.len() >= batch_size) {
            return None;
        }
        let take = self.pending.len().min(batch_size);
        let (units, letters) = self.pending.drain(..take).map(|p| (p.unit, p.letter)).unzip();
        Some((units, letters))
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
            if reason == DeadLetterReason::RetriesExhausted {
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
        for pending in std::mem::take(&mut self.pending) {
            self.refused(pending.unit, why);
        }
    }

    /// The public outcome of each unit, once the driver is done.
    pub fn outcomes(&self) -> impl Iterator<Item = Outcome> + '_ {
        self.status.iter().map(|status| match *status {
            Status::Succeeded => Outcome::Succeeded,
            Status::DeadLettered(reason) => Outcome::DeadLettered(reason),
            Status::TimedOut | Status::Running => Outcome::TimedOut,
            Status::Failed | Status::Lettering(_) => Outcome::Failed,
            Status::Pending | Status::Withheld => Outcome::NotStarted,
        })
    }

    /// The dead-letter reason a unit was given, if any.
    pub fn reason(&self, index: usize) -> Option<DeadLetterReason> {
        self.reasons[index]
    }

    /// The dead-letter envelope of a unit.
    fn envelope(&self, unit: u32, reason: DeadLetterReason, error: &str) -> DeadLetter {
        let u = &self.units[unit as usize];
        let meta = &u.meta;
        let present = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        let arrival = (meta.arrival_millis != 0).then(|| meta.arrival_millis as f64 / 1000.0);
        DeadLetter {
            version: ENVELOPE_VERSION,
            reason,
            error: error.to_owned(),
            attempts: self.attempts[unit as usize],
            function_name: self.cx.function_name.to_owned(),
            request_id: self.cx.request_id.to_owned(),
            event_source_arn: present(meta.event_source_arn()),
            shard_id: present(meta.shard_id()),
            sequence_number: u.checkpoint().map(str::to_owned),
            sub_sequence_number: meta.sub_sequence_number(),
            partition_key: if u.problem().is_some() {
                present(meta.partition_key)
            } else {
                Some(meta.partition_key.to_owned())
            },
            explicit_hash_key: meta.explicit_hash_key.map(str::to_owned),
            approximate_arrival_timestamp: arrival,
            aggregated: meta.is_aggregated(),
            data: u.data.to_base64(),
            data_location: None,
        }
    }
}
