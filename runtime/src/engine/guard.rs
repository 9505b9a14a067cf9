//! The idempotency guard of one batch: each unit's key, the units found done before the
//! batch runs, the claims made while it runs, and their completion or release at its end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::attempt::{self, RetryPolicy};
use super::outcome::Outcome;
use super::Context;
use crate::batch::Unit;
use crate::handler::Handler;
use crate::idempotency::{Claim, ErasedStore, StoreError};
use crate::meta::RecordMeta;

/// How a processor guards its records: the store, and what keys records by.
pub(crate) struct Guarding<P> {
    pub store: Box<dyn ErasedStore>,
    /// A key from the payload; the record's identity in the stream when `None`.
    pub key: Option<PayloadKey<P>>,
    pub keep_for: Duration,
    pub fail_open: bool,
}

impl<P> Guarding<P> {
    /// Settings without a store yet: a store that refuses every call, so that a processor
    /// given a key but no store fails closed rather than running unguarded.
    pub fn default_for() -> Self {
        Guarding {
            store: Box::new(NoStore),
            key: None,
            keep_for: DEFAULT_KEEP_FOR,
            fail_open: false,
        }
    }
}

/// How long a record marked done stays done by default: 1 hour.
pub(crate) const DEFAULT_KEEP_FOR: Duration = Duration::from_secs(3600);

/// The store of idempotency settings given before (or without) `.idempotency(store)`.
struct NoStore;

impl crate::idempotency::IdempotencyStore for NoStore {
    async fn find_done(&self, _: &[String], _: SystemTime) -> Result<Vec<bool>, StoreError> {
        Err(StoreError::new("no idempotency store is configured: call `.idempotency(store)`"))
    }

    async fn claim(&self, _: &str, _: SystemTime, _: SystemTime) -> Result<Claim, StoreError> {
        Err(StoreError::new("no idempotency store is configured: call `.idempotency(store)`"))
    }

    async fn complete(&self, _: &[String], _: SystemTime) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release(&self, _: &[String]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A function that keys a record by its payload.
pub(crate) type PayloadKey<P> = Box<dyn Fn(&P, &RecordMeta<'_>) -> String + Send + Sync>;

/// What came of claiming a unit before it runs.
pub(crate) enum Claimed {
    /// The unit may run: claimed, or unguarded by choice (`fail_open`).
    Run,
    /// Done in an earlier invocation: skip it.
    Duplicate,
    /// No claim could be made: the unit must not run.
    Refused(String),
}

/// One batch's guard.
pub(crate) struct Guard<'g> {
    store: &'g dyn ErasedStore,
    prefix: &'g str,
    /// Each unit's key; `None` for units that cannot be keyed.
    keys: Vec<Option<String>>,
    /// Units found done before the batch ran.
    done: Vec<bool>,
    /// Units this invocation holds a claim on.
    claimed: Vec<AtomicBool>,
    /// For each unit, an earlier unit of the batch with the same key, if any.
    earlier: Vec<Option<u32>>,
    /// Units whose function succeeded in this invocation.
    succeeded: Vec<AtomicBool>,
    /// When claims expire: the invocation's deadline.
    until: SystemTime,
    keep_for: Duration,
    fail_open: bool,
    /// Whether running unguarded has been logged in this invocation.
    warned: AtomicBool,
}

impl<'g> Guard<'g> {
    /// Keys the units and finds those already done, `read_batch_size` keys a call. A
    /// window processor's units get no keys: its window end is guarded instead.
    pub async fn open<H: Handler>(
        guarding: &'g Guarding<H::Payload>,
        handler: &H,
        prefix: &'g str,
        units: &[Unit<'_>],
        cx: &Context<'_>,
    ) -> Guard<'g> {
        let keys = if H::WINDOWED {
            vec![None; units.len()]
        } else {
            keys(guarding, handler, prefix, units)
        };
        let mut guard = Guard {
            store: &*guarding.store,
            prefix,
            done: vec![false; units.len()],
            claimed: units.iter().map(|_| AtomicBool::new(false)).collect(),
            earlier: earlier_of_key(&keys),
            succeeded: units.iter().map(|_| AtomicBool::new(false)).collect(),
            keys,
            until: cx.invocation.deadline(),
            keep_for: guarding.keep_for,
            fail_open: guarding.fail_open,
            warned: AtomicBool::new(false),
        };
        // The read is bounded like the records: at the deadline less its margin.
        let margin = cx.settings.deadline_margin;
        let stop_at = cx.invocation.deadline_instant().checked_sub(margin);
        let stop_at = stop_at.unwrap_or_else(Instant::now);
        if tokio::time::timeout_at(stop_at, guard.find_done()).await.is_err() {
            tracing::warn!(
                "the idempotency store did not answer the read before the deadline; each \
                 record's claim decides instead"
            );
        }
        guard
    }

    /// Marks the units whose keys are done. A failed read is logged and left to the
    /// claims, which fail closed.
    async fn find_done(&mut self) {
        let keyed: Vec<(usize, String)> = (self.keys.iter().enumerate())
            .filter_map(|(unit, key)| Some((unit, key.clone()?)))
            .collect();
        let now = SystemTime::now();
        for chunk in keyed.chunks(self.store.read_batch_size()) {
            let keys: Vec<String> = chunk.iter().map(|(_, key)| key.clone()).collect();
            match self.store.find_done(&keys, now).await {
                Ok(done) if done.len() == keys.len() => {
                    for ((unit, _), done) in chunk.iter().zip(done) {
                        self.done[*unit] = done;
                    }
                }
                Ok(done) => tracing::warn!(
                    keys = keys.len(),
                    answers = done.len(),
                    "the idempotency store answered a read with the wrong number of keys; \
                     each record's claim decides instead"
                ),
                Err(error) => tracing::warn!(
                    error = %error,
                    "the idempotency store could not be read; each record's claim decides instead"
                ),
            }
        }
    }

    /// Whether the unit was found done before the batch ran.
    pub fn is_done(&self, unit: u32) -> bool {
        self.done[unit as usize]
    }

    /// The function succeeded for a unit: a later unit of the batch with its key is a
    /// duplicate.
    pub fn succeeded(&self, unit: u32) {
        self.succeeded[unit as usize].store(true, Ordering::Relaxed);
    }

    /// Claims a unit before it runs, retrying a claim held elsewhere or a failed call as a
    /// record's failures are retried. A key an earlier unit of the batch holds is waited
    /// for the same way, and is a duplicate once that unit succeeded.
    pub async fn claim(&self, unit: u32, meta: &RecordMeta<'_>, policy: &RetryPolicy) -> Claimed {
        let Some(key) = &self.keys[unit as usize] else {
            return self.unguarded("the record has no identity to key it by (no sequence number)");
        };
        let earlier = self.earlier[unit as usize];
        let mut attempts = 0;
        loop {
            attempts += 1;
            let claimed = match earlier {
                Some(earlier) if self.succeeded[earlier as usize].load(Ordering::Relaxed) => {
                    Ok(Claim::Done)
                }
                Some(earlier) if self.claimed[earlier as usize].load(Ordering::Relaxed) => {
                    Ok(Claim::InProgress)
                }
                _ => self.store.claim(key, SystemTime::now(), self.until).await,
            };
            let why = match claimed {
                Ok(Claim::Claimed) => {
                    self.claimed[unit as usize].store(true, Ordering::Relaxed);
                    return Claimed::Run;
                }
                Ok(Claim::Done) => return Claimed::Duplicate,
                Ok(Claim::InProgress) => {
                    Why::InProgress(format!("`{key}` is in progress in another invocation"))
                }
                Err(error) => Why::Store(error),
            };
            let delay = policy.backoff.delay(attempts);
            if attempts > policy.retries || Instant::now() + delay >= policy.stop_at {
                return match why {
                    Why::InProgress(why) => Claimed::Refused(why),
                    Why::Store(error) => {
                        self.unguarded(&format!("the idempotency store failed: {error}"))
                    }
                };
            }
            tracing::info!(
                sequence_number = meta.sequence_number,
                attempt = attempts,
                "claim not made ({}); retrying in {} ms",
                why.text(),
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// A unit that cannot be claimed: refused, or run unguarded when the processor chose
    /// to fail open (logged once per invocation).
    fn unguarded(&self, why: &str) -> Claimed {
        if !self.fail_open {
            return Claimed::Refused(format!("{why}; the record does not run unguarded"));
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = why, "running records without idempotency (fail open)");
        }
        Claimed::Run
    }

    /// Completes the claims of units that finished and releases the others. A keyed unit
    /// dead-lettered before it could run (undecodable, expired) is marked done too, so that
    /// a redelivery does not dead-letter it again.
    pub async fn close(&self, outcomes: &[Outcome]) {
        let (mut done, mut unfinished) = (Vec::new(), Vec::new());
        for (unit, outcome) in outcomes.iter().enumerate() {
            let claimed = self.claimed[unit].load(Ordering::Relaxed);
            let lettered = matches!(outcome, Outcome::DeadLettered(_));
            let Some(key) = self.keys[unit].clone().filter(|_| claimed || lettered) else {
                continue;
            };
            if outcome.is_finished() {
                done.push(key)
            } else {
                unfinished.push(key)
            }
        }
        self.complete(done).await;
        self.release(unfinished).await;
    }

    async fn complete(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        if let Err(error) = self.store.complete(&keys, SystemTime::now() + self.keep_for).await {
            tracing::warn!(
                error = %error,
                records = keys.len(),
                "finished records could not be marked done; their claims expire at the deadline"
            );
        }
    }

    async fn release(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        if let Err(error) = self.store.release(&keys).await {
            tracing::warn!(
                error = %error,
                records = keys.len(),
                "claims could not be released; they expire at the deadline"
            );
        }
    }

    /// Runs `end` under a claim on `key` (a window end): `Ok(false)` when it was done
    /// before, and so is not run again.
    pub async fn once<F>(&self, key: &str, end: F) -> Result<bool, String>
    where
        F: std::future::Future<Output = Result<(), String>>,
    {
        let key = format!("{}#{key}", self.prefix);
        match self.store.claim(&key, SystemTime::now(), self.until).await {
            Ok(Claim::Claimed) => {}
            Ok(Claim::Done) => return Ok(false),
            Ok(Claim::InProgress) => {
                return Err(format!("`{key}` is in progress in another invocation"))
            }
            Err(error) if self.fail_open => {
                self.unguarded(&error.to_string());
                return end.await.map(|()| true);
            }
            Err(error) => return Err(format!("the idempotency store failed: {error}")),
        }
        let ended = end.await;
        match &ended {
            Ok(()) => self.complete(vec![key]).await,
            Err(_) => self.release(vec![key]).await,
        }
        ended.map(|()| true)
    }
}

enum Why {
    InProgress(String),
    Store(StoreError),
}

impl Why {
    fn text(&self) -> String {
        match self {
            Why::InProgress(why) => why.clone(),
            Why::Store(error) => error.to_string(),
        }
    }
}

/// For each unit, the first earlier unit with the same key.
fn earlier_of_key(keys: &[Option<String>]) -> Vec<Option<u32>> {
    let mut first: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    (keys.iter().enumerate())
        .map(|(unit, key)| {
            let key = key.as_deref()?;
            let first = *first.entry(key).or_insert(unit as u32);
            (first != unit as u32).then_some(first)
        })
        .collect()
}

/// Each unit's key: `PREFIX#` and the payload's key, or the stream ARN, sequence number
/// and sub-sequence number. A unit whose payload cannot be decoded gets none.
fn keys<H: Handler>(
    guarding: &Guarding<H::Payload>,
    handler: &H,
    prefix: &str,
    units: &[Unit<'_>],
) -> Vec<Option<String>> {
    let mut buffer = Vec::new();
    units
        .iter()
        .map(|unit| match &guarding.key {
            Some(key) => {
                let payload = attempt::decode(handler, unit, &mut buffer).ok()?;
                Some(format!("{prefix}#{}", key(&payload, &unit.meta)))
            }
            None => {
                let sequence_number = unit.checkpoint()?;
                let arn = unit.meta.source.event_source_arn.unwrap_or_default();
                let sub = unit.meta.sub_sequence_number().unwrap_or(0);
                Some(format!("{prefix}#{arn}#{sequence_number}#{sub}"))
            }
        })
        .collect()
}
