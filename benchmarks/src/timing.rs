//! Interleaved timing, shared by the bench binaries: contenders run in turn, round after
//! round, so that a change of load on a shared machine falls on all of them alike, and
//! ratios are taken within a round.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// A contender's name and one run of it (what it returns is kept from the optimiser).
pub type Contender<'c> = (&'c str, Box<dyn FnMut() -> usize + 'c>);

/// Runs the contenders in turn, round after round, as many rounds as fit in `budget` within
/// `rounds`, after one warm-up round; returns each one's time in every round.
pub fn interleaved<'c>(
    contenders: &mut [Contender<'c>],
    budget: Duration,
    rounds: RangeInclusive<usize>,
) -> BTreeMap<&'c str, Vec<Duration>> {
    let names: Vec<&'c str> = contenders.iter().map(|(name, _)| *name).collect();
    let mut round = || -> Vec<Duration> {
        contenders
            .iter_mut()
            .map(|(_, run)| {
                let start = Instant::now();
                std::hint::black_box(run());
                start.elapsed()
            })
            .collect()
    };
    let per_round: Duration = round().iter().sum();
    let fitting = (budget.as_secs_f64() / per_round.as_secs_f64()) as usize;
    let count = fitting.clamp(*rounds.start(), *rounds.end());
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(count); names.len()];
    for _ in 0..count {
        for (column, time) in times.iter_mut().zip(round()) {
            column.push(time);
        }
    }
    names.into_iter().zip(times).collect()
}

/// The median of some numbers.
pub fn median(numbers: impl Iterator<Item = f64>) -> f64 {
    let mut numbers: Vec<f64> = numbers.collect();
    numbers.sort_by(f64::total_cmp);
    numbers[numbers.len() / 2]
}

/// The median over rounds of `of`'s time divided by `to`'s in the same round. The two run
/// back to back, so a change of load mostly falls on both: on this shared machine the ratio
/// of the two medians moved by a third between runs of the same code, this one far less.
pub fn paired_ratio(times: &BTreeMap<&str, Vec<Duration>>, of: &str, to: &str) -> f64 {
    let pairs = times[of].iter().zip(&times[to]);
    median(pairs.map(|(of, to)| of.as_secs_f64() / to.as_secs_f64()))
}
