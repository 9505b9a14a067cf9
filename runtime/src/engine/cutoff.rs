//! The deadline's cut, checked before every unit starts.
//!
//! The cut timer fires only when the driver's task yields, and calls that never wait (CPU
//! work) do not let it, so the driver also reads the clock before it starts each unit.
//! `Instant::now()` reads the CPU's time-stamp counter behind a fence that keeps the CPU
//! from overlapping one record's work with the next: 33 ns a read on the benchmark machine,
//! and 2% of the time of a 10,000-record batch of small records in perf.
//!
//! Linux's coarse monotonic clock is the kernel's time at its last tick: a plain load, no
//! fence, but behind by a few milliseconds (3 to 11 ms on the benchmark machine, with both
//! cores busy). So it only says whether the cut is still far off; within [`NEAR`] of it,
//! the exact clock decides, as it did for every unit before.

use std::time::Duration;

use tokio::time::Instant;

/// How close to the cut the exact clock takes over: several times the coarse clock's
/// largest lag seen, and small beside any deadline margin (one second by default).
#[cfg(target_os = "linux")]
const NEAR: Duration = Duration::from_millis(50);

/// The moment after which no unit starts.
pub(crate) struct Cutoff {
    cut_at: Instant,
    /// The coarse clock's reading when the exact clock read `cut_at` minus `far_for`.
    #[cfg(target_os = "linux")]
    coarse_start: Duration,
    /// How long after `coarse_start` the cut is surely not yet near.
    #[cfg(target_os = "linux")]
    far_for: Duration,
}

impl Cutoff {
    /// A cutoff at `cut_at`, on tokio's clock (which tests may pause).
    pub(crate) fn new(cut_at: Instant) -> Self {
        #[cfg(target_os = "linux")]
        {
            let left = cut_at.saturating_duration_since(Instant::now());
            Cutoff { cut_at, coarse_start: coarse_now(), far_for: left.saturating_sub(NEAR) }
        }
        #[cfg(not(target_os = "linux"))]
        Cutoff { cut_at }
    }

    /// Whether the cut has come.
    pub(crate) fn passed(&self) -> bool {
        #[cfg(target_os = "linux")]
        if coarse_now().saturating_sub(self.coarse_start) < self.far_for {
            return false;
        }
        Instant::now() >= self.cut_at
    }
}

/// The coarse monotonic clock.
#[cfg(target_os = "linux")]
fn coarse_now() -> Duration {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    let seconds = u64::try_from(time.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(time.tv_nsec).unwrap_or(0);
    Duration::new(seconds, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_in_the_past_has_passed() {
        let now = Instant::now();
        assert!(Cutoff::new(now).passed());
        assert!(Cutoff::new(now - Duration::from_secs(5)).passed());
    }

    #[test]
    fn a_cut_a_second_away_has_not_passed() {
        let cutoff = Cutoff::new(Instant::now() + Duration::from_secs(1));
        assert!(!cutoff.passed());
    }

    #[test]
    fn the_cut_has_passed_once_its_time_has_come() {
        // Near the cut from the start, and far from it at first.
        for wait in [Duration::from_millis(30), Duration::from_millis(120)] {
            let cutoff = Cutoff::new(Instant::now() + wait);
            assert!(!cutoff.passed(), "{wait:?} before the cut");
            std::thread::sleep(wait);
            assert!(cutoff.passed(), "{wait:?} after the cut was due");
        }
    }
}
