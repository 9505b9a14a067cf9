//! The stop at the deadline (less its margin), checked before every unit starts.
//!
//! The stop timer fires only when the driver's task yields, and calls that never wait (CPU
//! work) do not let it, so the driver also reads the clock before it starts each unit.
//! The exact clock (`Instant::now()`) is fenced and costly per unit, so between units that
//! never waited Linux's coarse monotonic clock answers instead: a plain load, but behind
//! by a few milliseconds. It only says whether the stop is still more than [`NEAR`] away;
//! nearer, or after the driver waited, the exact clock decides. After a wait it must: tokio's clock, which tests may pause,
//! moves only across waits, and the coarse clock is the machine's.

use tokio::time::Instant;

/// How close to the stop the exact clock takes over from the coarse one: several times the
/// coarse clock's largest lag seen. Should the coarse clock ever lag more, a unit may
/// start up to that excess past the stop, inside the deadline margin kept for what follows.
#[cfg(target_os = "linux")]
const NEAR: std::time::Duration = std::time::Duration::from_millis(50);

/// The moment after which no unit starts: the deadline less its margin.
pub(crate) struct Stop {
    at: Instant,
    /// The coarse clock's reading when the stop was made, just before the exact one.
    #[cfg(target_os = "linux")]
    coarse_start: std::time::Duration,
    /// How long after `coarse_start` the stop is still more than [`NEAR`] away.
    #[cfg(target_os = "linux")]
    far_for: std::time::Duration,
}

impl Stop {
    /// A stop at `at`, on tokio's clock.
    pub(crate) fn new(at: Instant) -> Self {
        #[cfg(target_os = "linux")]
        {
            // Coarse first: a delay between the two reads then makes the check stricter,
            // never later.
            let coarse_start = coarse_now();
            let left = at.saturating_duration_since(Instant::now());
            Stop { at, coarse_start, far_for: left.saturating_sub(NEAR) }
        }
        #[cfg(not(target_os = "linux"))]
        Stop { at }
    }

    /// Whether the stop has come. `waited`: whether the driver waited since it last asked.
    pub(crate) fn passed(&self, waited: bool) -> bool {
        // Real time elapsed, by the coarse clock: without a wait, tokio's clock moved
        // with it.
        #[cfg(target_os = "linux")]
        if !waited && coarse_now().saturating_sub(self.coarse_start) < self.far_for {
            return false;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = waited;
        Instant::now() >= self.at
    }
}

/// The coarse monotonic clock.
#[cfg(target_os = "linux")]
fn coarse_now() -> std::time::Duration {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    let seconds = u64::try_from(time.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(time.tv_nsec).unwrap_or(0);
    std::time::Duration::new(seconds, nanos)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_cut_in_the_past_has_passed() {
        let now = Instant::now();
        for waited in [false, true] {
            assert!(Stop::new(now).passed(waited));
            if let Some(earlier) = now.checked_sub(Duration::from_secs(5)) {
                assert!(Stop::new(earlier).passed(waited));
            }
        }
    }

    /// Whether a stop `wait` from now has passed when asked right away. `None` when the
    /// machine took so long between the two that the stop had come anyway.
    fn passed_right_away(wait: Duration, waited: bool) -> Option<bool> {
        let created = Instant::now();
        let passed = Stop::new(created + wait).passed(waited);
        (created.elapsed() < wait).then_some(passed)
    }

    #[test]
    fn a_cut_still_to_come_has_not_passed() {
        // Near the stop from the start (the exact clock decides), and far from it (the
        // coarse clock does, unless the driver waited).
        for wait in [Duration::from_millis(30), Duration::from_secs(1)] {
            for waited in [false, true] {
                let passed = passed_right_away(wait, waited);
                assert_ne!(passed, Some(true), "{wait:?} before the stop, waited: {waited}");
            }
        }
    }

    #[test]
    fn the_cut_has_passed_once_its_time_has_come() {
        for wait in [Duration::from_millis(30), Duration::from_millis(120)] {
            let stop = Stop::new(Instant::now() + wait);
            std::thread::sleep(wait);
            assert!(stop.passed(false), "{wait:?} after the stop was due");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_wait_paused_time_decides() {
        let stop = Stop::new(Instant::now() + Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(10)).await;
        // No real time passed: only the exact clock, tokio's, knows the stop has come.
        assert!(stop.passed(true));
    }
}
