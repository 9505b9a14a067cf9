//! The order in which units start: stream order, one unit per partition key at a time.
//!
//! A unit may start when every earlier unit with the same partition key has been
//! *released* (its outcome is final, or it is a dead letter whose record will never be
//! processed again). Among the units that may start, the earliest in the stream goes
//! first, so the lowest sequence numbers finish first and a checkpoint covers as much as
//! possible. With concurrency 1 there is a single cursor: the whole batch in order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::batch::Unit;

const NONE: u32 = u32::MAX;

pub(crate) enum Scheduler {
    /// Concurrency 1: units start one after another, each after the previous is released.
    Sequential { next: u32, len: u32, outstanding: bool },
    /// Concurrency above 1: per-key chains, and the heads ready to start.
    ByKey {
        /// For each unit, the next unit with the same partition key.
        next_of_key: Vec<u32>,
        /// Units whose key is free, by stream position.
        ready: BinaryHeap<Reverse<u32>>,
    },
}

impl Scheduler {
    pub fn new(units: &[Unit<'_>], concurrency: usize) -> Self {
        let len = units.len() as u32;
        if concurrency <= 1 {
            return Scheduler::Sequential { next: 0, len, outstanding: false };
        }
        let mut next_of_key = vec![NONE; units.len()];
        let mut last_of_key: HashMap<Option<&str>, u32> =
            HashMap::with_capacity(units.len().min(1024));
        let mut ready = BinaryHeap::new();
        for (index, unit) in units.iter().enumerate() {
            let index = index as u32;
            match last_of_key.insert(unit.meta.partition_key, index) {
                Some(previous) => next_of_key[previous as usize] = index,
                None => ready.push(Reverse(index)),
            }
        }
        Scheduler::ByKey { next_of_key, ready }
    }

    /// The next unit that may start, if any.
    pub fn next(&mut self) -> Option<u32> {
        match self {
            Scheduler::Sequential { next, len, outstanding } => {
                if *outstanding || *next >= *len {
                    return None;
                }
                *outstanding = true;
                *next += 1;
                Some(*next - 1)
            }
            Scheduler::ByKey { ready, .. } => ready.pop().map(|Reverse(index)| index),
        }
    }

    /// The unit's outcome is settled: its key may start its next unit.
    pub fn release(&mut self, unit: u32) {
        match self {
            Scheduler::Sequential { outstanding, .. } => *outstanding = false,
            Scheduler::ByKey { next_of_key, ready } => {
                let next = next_of_key[unit as usize];
                if next != NONE {
                    ready.push(Reverse(next));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(keys: &[&'static str]) -> Vec<Unit<'static>> {
        keys.iter().map(|key| Unit::for_test("1", key)).collect()
    }

    #[test]
    fn sequential_waits_for_each_release() {
        let units = units(&["a", "b", "c"]);
        let mut scheduler = Scheduler::new(&units, 1);
        assert_eq!(scheduler.next(), Some(0));
        assert_eq!(scheduler.next(), None);
        scheduler.release(0);
        assert_eq!(scheduler.next(), Some(1));
        scheduler.release(1);
        assert_eq!(scheduler.next(), Some(2));
        scheduler.release(2);
        assert_eq!(scheduler.next(), None);
    }

    #[test]
    fn by_key_starts_distinct_keys_and_holds_repeated_ones() {
        let units = units(&["a", "b", "a", "c", "b"]);
        let mut scheduler = Scheduler::new(&units, 4);
        assert_eq!(scheduler.next(), Some(0));
        assert_eq!(scheduler.next(), Some(1));
        assert_eq!(scheduler.next(), Some(3));
        assert_eq!(scheduler.next(), None, "a and b are busy");
        scheduler.release(1);
        assert_eq!(scheduler.next(), Some(4));
        scheduler.release(0);
        assert_eq!(scheduler.next(), Some(2));
        assert_eq!(scheduler.next(), None);
    }

    #[test]
    fn ready_units_start_in_stream_order() {
        let units = units(&["a", "a", "b", "b"]);
        let mut scheduler = Scheduler::new(&units, 2);
        assert_eq!(scheduler.next(), Some(0));
        assert_eq!(scheduler.next(), Some(2));
        scheduler.release(2);
        scheduler.release(0);
        assert_eq!(scheduler.next(), Some(1), "1 precedes 3 in the stream");
        assert_eq!(scheduler.next(), Some(3));
    }
}
