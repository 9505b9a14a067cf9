//! The order in which units start: stream order, one unit per partition key at a time.
//!
//! A unit may start when every earlier unit with the same partition key has been
//! *released* (its outcome is final, or it is a dead letter whose record will never be
//! processed again). Among the units that may start, the earliest in the stream goes
//! first, so the lowest sequence numbers finish first and a checkpoint covers as much as
//! possible. With concurrency 1 there is a single cursor: the whole batch in order.
//!
//! A chunk function's units start a chunk at a time ([`Chunks`]): the earliest units whose
//! key is not in another chunk in flight, several of one key together, in stream order.

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
    /// A chunk function's units, a chunk at a time.
    Chunks(Chunks),
}

impl Scheduler {
    pub fn new(units: &[Unit<'_>], concurrency: usize, chunked: bool) -> Self {
        let len = units.len() as u32;
        if chunked {
            return Scheduler::Chunks(Chunks::new(units));
        }
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
            Scheduler::Chunks(chunks) => chunks.next(),
        }
    }

    /// The units that `next` gives from now on form a new chunk.
    pub fn begin_chunk(&mut self) {
        if let Scheduler::Chunks(chunks) = self {
            chunks.begin();
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
            Scheduler::Chunks(chunks) => chunks.release(unit),
        }
    }
}

/// The order of a chunk function's units. A key is *busy* while a unit of it has started
/// and is not released; a chunk takes, in stream order, the units whose key is not busy
/// (or busy only in this chunk), and skips a key for the rest of the chunk once it has
/// skipped one of its units, so that each key starts in stream order.
pub(crate) struct Chunks {
    /// Each unit's partition key, numbered.
    key_of: Vec<u32>,
    started: Vec<bool>,
    /// Units started and not released, per key.
    busy: Vec<u32>,
    /// The first unit not started.
    cursor: u32,
    /// Where the chunk being formed has looked up to.
    scan: u32,
    /// The chunk being formed, numbered from 1.
    chunk: u32,
    /// The chunk each key last joined, and the chunk each key was last skipped in.
    joined: Vec<u32>,
    skipped: Vec<u32>,
}

impl Chunks {
    fn new(units: &[Unit<'_>]) -> Self {
        let mut keys: HashMap<Option<&str>, u32> = HashMap::with_capacity(units.len().min(1024));
        let key_of: Vec<u32> = units
            .iter()
            .map(|unit| {
                let next = keys.len() as u32;
                *keys.entry(unit.meta.partition_key).or_insert(next)
            })
            .collect();
        let (len, key_count) = (units.len(), keys.len());
        Chunks {
            key_of,
            started: vec![false; len],
            busy: vec![0; key_count],
            cursor: 0,
            scan: 0,
            chunk: 0,
            joined: vec![0; key_count],
            skipped: vec![0; key_count],
        }
    }

    fn begin(&mut self) {
        self.chunk += 1;
        self.scan = self.cursor;
    }

    /// The next unit of the chunk being formed.
    fn next(&mut self) -> Option<u32> {
        while (self.scan as usize) < self.started.len() {
            let unit = self.scan;
            self.scan += 1;
            if self.started[unit as usize] {
                continue;
            }
            let key = self.key_of[unit as usize] as usize;
            let free = self.busy[key] == 0 || self.joined[key] == self.chunk;
            if self.skipped[key] == self.chunk || !free {
                self.skipped[key] = self.chunk;
                continue;
            }
            self.started[unit as usize] = true;
            self.busy[key] += 1;
            self.joined[key] = self.chunk;
            while self.started.get(self.cursor as usize) == Some(&true) {
                self.cursor += 1;
            }
            return Some(unit);
        }
        None
    }

    fn release(&mut self, unit: u32) {
        let key = self.key_of[unit as usize] as usize;
        self.busy[key] -= 1;
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
        let mut scheduler = Scheduler::new(&units, 1, false);
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
        let mut scheduler = Scheduler::new(&units, 4, false);
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
        let mut scheduler = Scheduler::new(&units, 2, false);
        assert_eq!(scheduler.next(), Some(0));
        assert_eq!(scheduler.next(), Some(2));
        scheduler.release(2);
        scheduler.release(0);
        assert_eq!(scheduler.next(), Some(1), "1 precedes 3 in the stream");
        assert_eq!(scheduler.next(), Some(3));
    }

    /// Forms a chunk of at most `size` units.
    fn chunk(scheduler: &mut Scheduler, size: usize) -> Vec<u32> {
        scheduler.begin_chunk();
        std::iter::from_fn(|| scheduler.next()).take(size).collect()
    }

    #[test]
    fn a_chunk_takes_the_earliest_units_and_several_of_one_key() {
        let units = units(&["a", "a", "b", "a", "c"]);
        let mut scheduler = Scheduler::new(&units, 1, true);
        assert_eq!(chunk(&mut scheduler, 4), [0, 1, 2, 3]);
        assert_eq!(chunk(&mut scheduler, 4), [4], "c's key is free");
        assert!(chunk(&mut scheduler, 4).is_empty());
    }

    #[test]
    fn a_key_busy_in_a_chunk_in_flight_waits_and_keeps_its_order() {
        let units = units(&["a", "b", "a", "c", "b", "d"]);
        let mut scheduler = Scheduler::new(&units, 2, true);
        assert_eq!(chunk(&mut scheduler, 2), [0, 1]);
        assert_eq!(chunk(&mut scheduler, 3), [3, 5], "a and b are in the first chunk");
        scheduler.release(0);
        assert_eq!(chunk(&mut scheduler, 3), [2], "b is still busy with 1");
        scheduler.release(1);
        assert_eq!(chunk(&mut scheduler, 3), [4]);
    }

    #[test]
    fn a_key_skipped_once_in_a_chunk_stays_skipped_in_it() {
        let units = units(&["a", "b", "a", "b"]);
        let mut scheduler = Scheduler::new(&units, 2, true);
        assert_eq!(chunk(&mut scheduler, 1), [0]);
        // 1 (b) joins; 2 (a) is skipped, busy in the first chunk; 3 (b) joins its key.
        assert_eq!(chunk(&mut scheduler, 3), [1, 3]);
        scheduler.release(0);
        assert_eq!(chunk(&mut scheduler, 3), [2]);
    }
}
