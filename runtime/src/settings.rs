//! The knobs of a processor, set by the attribute and overridable with the builder.

use std::time::Duration;

/// What happens to a record whose in-process retries run out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnRetriesExhausted {
    /// Report it to Lambda (the default): the shard resumes from it, so it is delivered
    /// again, and later records wait. Right when failures are transient.
    #[default]
    Report,
    /// Dead-letter it with reason `retries_exhausted` and move on. Right when a record
    /// that keeps failing must not hold up its shard.
    DeadLetter,
}

/// The default in-process retries: two more attempts after the first.
pub const DEFAULT_RETRIES: u32 = 2;

/// The default `deadline_margin`.
///
/// When less than this is left of the invocation, no new record starts and running ones
/// time out where they wait. (A call that never waits, CPU work, runs to its end once
/// polled: nothing starts after it.) One second leaves room for what must still happen
/// before the deadline: the final dead-letter sends (an SQS `SendMessageBatch` answers in tens of milliseconds; the
/// SDK's retries of a throttled call take a few hundred) and the response itself. With
/// Lambda's default 3-second timeout it still leaves two seconds of processing.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub retries: u32,
    pub backoff: Backoff,
    pub concurrency: usize,
    pub max_record_age: Option<Duration>,
    pub on_retries_exhausted: OnRetriesExhausted,
    pub deadline_margin: Duration,
    /// Whether log lines may carry record data.
    pub log_payloads: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retries: DEFAULT_RETRIES,
            backoff: Backoff::default(),
            concurrency: 1,
            max_record_age: None,
            on_retries_exhausted: OnRetriesExhausted::Report,
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
            log_payloads: false,
        }
    }
}

/// Jittered exponential backoff between in-process attempts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        // Short: a retry holds up its partition key (and, at concurrency 1, the shard).
        Backoff { initial: Duration::from_millis(50), max: Duration::from_secs(2) }
    }
}

impl Backoff {
    /// The pause before retry number `retry` (1 for the first retry): the exponential
    /// step with "equal jitter", uniformly between half the step and the whole step, so
    /// that records failing together do not retry in lockstep.
    pub fn delay(&self, retry: u32) -> Duration {
        let step = self.initial.saturating_mul(1 << retry.saturating_sub(1).min(16)).min(self.max);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_cap() {
        let backoff = Backoff::default();
        for _ in 0..100 {
            let first = backoff.delay(1);
            assert!(first >= Duration::from_millis(25) && first <= Duration::from_millis(50));
            let third = backoff.delay(3);
            assert!(third >= Duration::from_millis(100) && third <= Duration::from_millis(200));
            let late = backoff.delay(40);
            assert!(late >= Duration::from_secs(1) && late <= Duration::from_secs(2));
        }
    }
}
