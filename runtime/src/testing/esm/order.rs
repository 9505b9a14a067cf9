//! Per-key order across a shard's parallel lanes: which user records the mapping delivers
//! while an earlier record of their partition key, in another lane, is not yet finished.

use std::collections::{HashMap, HashSet};

use super::SimulatedStream;
use crate::aggregation::{deaggregate, Deaggregated};

/// The lane of a shard (of `lanes`) that a record goes to: by its partition key, so that
/// records put with one key always share a lane.
pub(super) fn lane_of(partition_key: &str, lanes: usize) -> usize {
    if lanes == 1 {
        0
    } else {
        (crate::testing::hash_key_of(partition_key) % lanes as u128) as usize
    }
}

/// What the lanes need to see order violations.
#[derive(Debug, Default)]
pub(super) struct OrderWatch {
    /// Per shard: for a record index, each of its user records (by sub-sequence number)
    /// with the latest earlier record of the same user key in another lane.
    hazards: Vec<HashMap<usize, Vec<(u32, usize)>>>,
    /// Per shard and record index: whether the record is finished (succeeded, or given up).
    finished: Vec<Vec<bool>>,
    /// The user records counted already: shard, record index, sub-sequence number.
    counted: HashSet<(usize, usize, u32)>,
}

impl OrderWatch {
    /// Reads every record's user keys (de-aggregating KPL aggregates) and notes, for each
    /// user record, the earlier records of its key in the other lanes of its shard.
    pub(super) fn new(stream: &SimulatedStream, lanes: usize) -> Self {
        if lanes == 1 {
            return OrderWatch::default();
        }
        let mut hazards = Vec::with_capacity(stream.shard_count());
        let mut finished = Vec::with_capacity(stream.shard_count());
        for shard in 0..stream.shard_count() {
            let records = stream.records(shard);
            let mut latest: HashMap<String, Vec<Option<usize>>> = HashMap::new();
            let mut of_shard: HashMap<usize, Vec<(u32, usize)>> = HashMap::new();
            for (index, record) in records.iter().enumerate() {
                let lane = lane_of(&record.partition_key, lanes);
                let users: Vec<(u32, &str)> = match deaggregate(&record.data) {
                    Ok(Deaggregated::Aggregate(users)) => users
                        .iter()
                        .enumerate()
                        .map(|(sub, user)| (sub as u32, user.partition_key))
                        .collect(),
                    _ => vec![(0, record.partition_key.as_str())],
                };
                for (sub, key) in users {
                    let lanes_of_key =
                        latest.entry(key.to_owned()).or_insert_with(|| vec![None; lanes]);
                    for (other, earlier) in lanes_of_key.iter().enumerate() {
                        if let (true, Some(earlier)) = (other != lane, earlier) {
                            of_shard.entry(index).or_default().push((sub, *earlier));
                        }
                    }
                    lanes_of_key[lane] = Some(index);
                }
            }
            hazards.push(of_shard);
            finished.push(vec![false; records.len()]);
        }
        OrderWatch { hazards, finished, counted: HashSet::new() }
    }

    /// The user records of the shard's records `indexes`, about to be delivered, that an
    /// unfinished earlier record of their key precedes in another lane (each counted once
    /// over the run).
    pub(super) fn deliver(&mut self, shard: usize, indexes: &[usize]) -> usize {
        let Some(hazards) = self.hazards.get(shard) else { return 0 };
        let mut violations = 0;
        for &index in indexes {
            for &(sub, earlier) in hazards.get(&index).into_iter().flatten() {
                if !self.finished[shard][earlier] && self.counted.insert((shard, index, sub)) {
                    violations += 1;
                }
            }
        }
        violations
    }

    /// Marks the shard's records `indexes` finished.
    pub(super) fn finish(&mut self, shard: usize, indexes: &[usize]) {
        if let Some(finished) = self.finished.get_mut(shard) {
            for &index in indexes {
                finished[index] = true;
            }
        }
    }
}
