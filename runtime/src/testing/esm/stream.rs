//! [`SimulatedStream`]: a Kinesis data stream in memory: shards owning ranges of the hash
//! key space, records routed by the MD5 of their partition key (or their explicit hash
//! key), growing 56-digit sequence numbers per shard, and a retention period.

use std::time::{Duration, SystemTime};

use crate::aggregation::UserRecord;
use crate::testing::hash_key_of;

/// One record in a shard.
#[derive(Clone, Debug)]
pub struct StreamRecord {
    /// Its 56-digit sequence number, growing within the shard.
    pub sequence_number: String,
    /// The partition key it was put with.
    pub partition_key: String,
    /// The explicit hash key it was put with, if any: it chose the shard, and Lambda's
    /// event does not carry it.
    pub explicit_hash_key: Option<String>,
    /// Its data.
    pub data: Vec<u8>,
    /// When the stream accepted it.
    pub arrival: SystemTime,
}

/// Where a put record went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put {
    /// The shard that holds it.
    pub shard_id: String,
    /// Its sequence number.
    pub sequence_number: String,
}

#[derive(Debug)]
struct Shard {
    id: String,
    /// The last hash key of the shard's range (the ranges split the 128-bit space evenly).
    end_hash_key: u128,
    records: Vec<StreamRecord>,
}

/// A Kinesis data stream held in memory.
///
/// ```
/// use kinesis_processor::testing::SimulatedStream;
///
/// let mut stream = SimulatedStream::new("clicks", 4);
/// let first = stream.put("user-1", b"a");
/// let second = stream.put("user-1", b"b");
/// assert_eq!(first.shard_id, second.shard_id, "one key, one shard");
/// assert!(second.sequence_number > first.sequence_number);
/// assert_eq!(first.sequence_number.len(), 56);
/// ```
#[derive(Debug)]
pub struct SimulatedStream {
    arn: String,
    shards: Vec<Shard>,
    retention: Duration,
}

impl SimulatedStream {
    /// A stream `name` with `shards` shards (at least one) and the default retention of
    /// 24 hours.
    pub fn new(name: &str, shards: usize) -> Self {
        let count = shards.max(1) as u128;
        let width = u128::MAX / count;
        let shards = (0..count)
            .map(|index| Shard {
                id: format!("shardId-{index:012}"),
                end_hash_key: if index + 1 == count { u128::MAX } else { width * (index + 1) - 1 },
                records: Vec::new(),
            })
            .collect();
        SimulatedStream {
            arn: format!("arn:aws:kinesis:us-east-1:123456789012:stream/{name}"),
            shards,
            retention: Duration::from_secs(24 * 3600),
        }
    }

    /// Sets how long records stay readable (Kinesis: 24 hours to 365 days).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The stream's ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// How long records stay readable.
    pub fn retention_period(&self) -> Duration {
        self.retention
    }

    /// The shard ids, in order.
    pub fn shard_ids(&self) -> impl Iterator<Item = &str> {
        self.shards.iter().map(|shard| shard.id.as_str())
    }

    /// The records of shard `index`, oldest first.
    pub fn records(&self, index: usize) -> &[StreamRecord] {
        &self.shards[index].records
    }

    /// How many shards the stream has.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Every record of every shard.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.records.len()).sum()
    }

    /// Whether the stream holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts a record with `partition_key`, arriving now.
    pub fn put(&mut self, partition_key: &str, data: &[u8]) -> Put {
        self.put_record(partition_key, None, data, SystemTime::now())
    }

    /// Puts a record, with an explicit hash key and an arrival time of the caller's choice.
    ///
    /// # Panics
    ///
    /// When `explicit_hash_key` is not a decimal number below 2^128.
    pub fn put_record(
        &mut self,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data: &[u8],
        arrival: SystemTime,
    ) -> Put {
        let hash_key = match explicit_hash_key {
            Some(key) => {
                key.parse::<u128>().expect("an explicit hash key is a decimal number below 2^128")
            }
            None => hash_key_of(partition_key),
        };
        let index = self.shard_for(hash_key);
        let shard = &mut self.shards[index];
        let sequence_number = sequence_number(index, shard.records.len());
        shard.records.push(StreamRecord {
            sequence_number: sequence_number.clone(),
            partition_key: partition_key.to_owned(),
            explicit_hash_key: explicit_hash_key.map(str::to_owned),
            data: data.to_vec(),
            arrival,
        });
        Put { shard_id: shard.id.clone(), sequence_number }
    }

    /// Puts `records` as one KPL aggregate, with the aggregate's partition and explicit
    /// hash keys (those of its first user record), as a producer would.
    ///
    /// # Panics
    ///
    /// When the records do not fit in one Kinesis record.
    pub fn put_aggregate(&mut self, records: &[UserRecord<'_>], arrival: SystemTime) -> Put {
        let mut aggregates =
            crate::testing::aggregate(records.iter().copied()).expect("user records fit");
        assert_eq!(aggregates.len(), 1, "the user records need more than one aggregate");
        let aggregate = aggregates.remove(0);
        self.put_record(
            &aggregate.partition_key,
            Some(&aggregate.explicit_hash_key),
            &aggregate.data,
            arrival,
        )
    }

    /// The shard whose hash key range holds `hash_key`.
    fn shard_for(&self, hash_key: u128) -> usize {
        self.shards
            .iter()
            .position(|shard| hash_key <= shard.end_hash_key)
            .unwrap_or(self.shards.len() - 1)
    }

    /// The shard a partition key (and optional explicit hash key) is routed to.
    pub fn shard_of(&self, partition_key: &str, explicit_hash_key: Option<&str>) -> usize {
        let hash_key = explicit_hash_key
            .and_then(|key| key.parse().ok())
            .unwrap_or_else(|| hash_key_of(partition_key));
        self.shard_for(hash_key)
    }
}

/// The `position`-th sequence number of shard `shard`: 56 digits, growing within the shard
/// and unique across shards.
fn sequence_number(shard: usize, position: usize) -> String {
    format!("4959033827149025660855969253836{:03}{:022}", shard % 1000, position as u128 * 1000 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_to_the_shard_owning_their_md5() {
        let stream = SimulatedStream::new("s", 4);
        for key in ["a", "b", "user-17", "ключ"] {
            let hash = hash_key_of(key);
            let expected = (hash / (u128::MAX / 4)).min(3) as usize;
            assert_eq!(stream.shard_of(key, None), expected, "{key}");
        }
        assert_eq!(stream.shard_of("anything", Some("0")), 0);
        assert_eq!(stream.shard_of("anything", Some(&u128::MAX.to_string())), 3);
    }

    #[test]
    fn sequence_numbers_have_56_digits_and_grow_per_shard() {
        let a = sequence_number(3, 0);
        let b = sequence_number(3, 1);
        assert_eq!(a.len(), 56);
        assert_eq!(sequence_number(7, 123_456_789).len(), 56);
        assert!(b > a);
        assert_ne!(sequence_number(2, 5), sequence_number(3, 5));
    }
}
