//! The producer side of KPL aggregation: user records packed into aggregates, as the KPL
//! writes them. For tests and simulators; a consumer only de-aggregates.

use std::collections::HashMap;
use std::fmt;

use md5::{Digest, Md5};

use super::wire;
use super::{UserRecord, DIGEST_SIZE, MAGIC, MAX_RECORD_SIZE};

/// One finished aggregate, ready for `PutRecord`/`PutRecords`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatedRecord {
    /// The partition key to put it with: its first user record's.
    pub partition_key: String,
    /// The explicit hash key to put it with: its first user record's, or the hash of that
    /// record's partition key (as the KPL does), so that the aggregate lands on the shard
    /// its first user record would have.
    pub explicit_hash_key: String,
    /// The record's data: magic, protobuf, digest.
    pub data: Vec<u8>,
    /// How many user records it holds.
    pub user_records: usize,
}

/// A user record too large for any Kinesis record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooLarge {
    /// The bytes an aggregate holding only this record would take.
    pub size: usize,
    /// The limit.
    pub max: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a user record needs {} bytes aggregated, more than the {} a record holds",
            self.size, self.max
        )
    }
}

impl std::error::Error for TooLarge {}

/// Packs user records into aggregates of at most [`MAX_RECORD_SIZE`] bytes (data and
/// partition key together, as Kinesis counts them).
///
/// ```
/// use kinesis_processor::aggregation::UserRecord;
/// use kinesis_processor::testing::Aggregator;
///
/// let mut aggregator = Aggregator::new();
/// let mut out = Vec::new();
/// for n in 0..10_000u32 {
///     let data = n.to_string().repeat(20);
///     let record = UserRecord { partition_key: "k", explicit_hash_key: None, data: data.as_bytes() };
///     out.extend(aggregator.add(record).unwrap());
/// }
/// out.extend(aggregator.finish());
/// assert_eq!(out.iter().map(|a| a.user_records).sum::<usize>(), 10_000);
/// assert!(out.iter().all(|a| a.data.len() + a.partition_key.len() <= 1024 * 1024));
/// ```
#[derive(Clone, Debug)]
pub struct Aggregator {
    max_size: usize,
    partition_keys: KeyTable,
    explicit_hash_keys: KeyTable,
    records: Vec<u8>,
    user_records: usize,
    first_partition_key: String,
    first_explicit_hash_key: Option<String>,
}

/// A table of keys, encoded as repeated string fields as they are added.
#[derive(Clone, Debug, Default)]
struct KeyTable {
    index: HashMap<String, u64>,
    encoded: Vec<u8>,
}

impl KeyTable {
    /// The key's index, and the bytes adding it would cost (0 when it is known).
    fn probe(&self, key: &str) -> (u64, usize) {
        match self.index.get(key) {
            Some(&index) => (index, 0),
            None => (self.index.len() as u64, wire::bytes_field_len(key.len())),
        }
    }

    fn insert(&mut self, field: u64, key: &str) -> u64 {
        if let Some(&index) = self.index.get(key) {
            return index;
        }
        let index = self.index.len() as u64;
        self.index.insert(key.to_owned(), index);
        wire::put_bytes(&mut self.encoded, field, key.as_bytes());
        index
    }
}

impl Default for Aggregator {
    fn default() -> Self {
        Self::new()
    }
}

impl Aggregator {
    /// An empty aggregator for Kinesis's 1 MiB records.
    pub fn new() -> Self {
        Self::with_max_size(MAX_RECORD_SIZE)
    }

    /// An empty aggregator whose aggregates stay within `max_size` bytes.
    pub fn with_max_size(max_size: usize) -> Self {
        Aggregator {
            max_size,
            partition_keys: KeyTable::default(),
            explicit_hash_keys: KeyTable::default(),
            records: Vec::new(),
            user_records: 0,
            first_partition_key: String::new(),
            first_explicit_hash_key: None,
        }
    }

    /// User records in the aggregate being built.
    pub fn len(&self) -> usize {
        self.user_records
    }

    /// Whether the aggregate being built is empty.
    pub fn is_empty(&self) -> bool {
        self.user_records == 0
    }

    /// Adds a user record. When it does not fit in the aggregate being built, that
    /// aggregate is finished and returned, and a new one starts with the record.
    pub fn add(&mut self, record: UserRecord<'_>) -> Result<Option<AggregatedRecord>, TooLarge> {
        let alone =
            Aggregator::with_max_size(self.max_size).size_with(&record, record.partition_key);
        if alone > self.max_size {
            return Err(TooLarge { size: alone, max: self.max_size });
        }
        let finished = if !self.is_empty()
            && self.size_with(&record, &self.first_partition_key) > self.max_size
        {
            self.finish()
        } else {
            None
        };
        self.push(record);
        Ok(finished)
    }

    /// The size of the finished record (data and partition key) if `record` were added.
    pub(crate) fn size_with(&self, record: &UserRecord<'_>, container_key: &str) -> usize {
        let (pk_index, pk_cost) = self.partition_keys.probe(record.partition_key);
        let mut inner = 1 + wire::varint_len(pk_index) + wire::bytes_field_len(record.data.len());
        let mut ehk_cost = 0;
        if let Some(key) = record.explicit_hash_key {
            let (ehk_index, cost) = self.explicit_hash_keys.probe(key);
            inner += 1 + wire::varint_len(ehk_index);
            ehk_cost = cost;
        }
        let body = self.partition_keys.encoded.len()
            + pk_cost
            + self.explicit_hash_keys.encoded.len()
            + ehk_cost
            + self.records.len()
            + wire::bytes_field_len(inner);
        MAGIC.len() + body + DIGEST_SIZE + container_key.len()
    }

    pub(crate) fn push(&mut self, record: UserRecord<'_>) {
        if self.is_empty() {
            self.first_partition_key = record.partition_key.to_owned();
            self.first_explicit_hash_key = record.explicit_hash_key.map(str::to_owned);
        }
        let pk_index = self.partition_keys.insert(1, record.partition_key);
        let mut inner = Vec::with_capacity(record.data.len() + 16);
        wire::put_uint(&mut inner, 1, pk_index);
        if let Some(key) = record.explicit_hash_key {
            let ehk_index = self.explicit_hash_keys.insert(2, key);
            wire::put_uint(&mut inner, 2, ehk_index);
        }
        wire::put_bytes(&mut inner, 3, record.data);
        wire::put_bytes(&mut self.records, 3, &inner);
        self.user_records += 1;
    }

    /// Finishes the aggregate being built, if it holds any record, and starts afresh.
    pub fn finish(&mut self) -> Option<AggregatedRecord> {
        if self.is_empty() {
            return None;
        }
        let done = std::mem::replace(self, Aggregator::with_max_size(self.max_size));
        let body_len = done.partition_keys.encoded.len()
            + done.explicit_hash_keys.encoded.len()
            + done.records.len();
        let mut data = Vec::with_capacity(MAGIC.len() + body_len + DIGEST_SIZE);
        data.extend_from_slice(&MAGIC);
        data.extend_from_slice(&done.partition_keys.encoded);
        data.extend_from_slice(&done.explicit_hash_keys.encoded);
        data.extend_from_slice(&done.records);
        let digest = Md5::digest(&data[MAGIC.len()..]);
        data.extend_from_slice(&digest);
        let explicit_hash_key = done
            .first_explicit_hash_key
            .unwrap_or_else(|| hash_key_of(&done.first_partition_key).to_string());
        Some(AggregatedRecord {
            partition_key: done.first_partition_key,
            explicit_hash_key,
            data,
            user_records: done.user_records,
        })
    }
}

/// The hash key Kinesis derives from a partition key: its MD5 as a 128-bit integer,
/// big-endian. Kinesis routes a record to the shard whose range holds it.
pub fn hash_key_of(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// Packs `records`, in order, into as few aggregates as fit.
pub fn aggregate<'a>(
    records: impl IntoIterator<Item = UserRecord<'a>>,
) -> Result<Vec<AggregatedRecord>, TooLarge> {
    let mut aggregator = Aggregator::new();
    let mut out = Vec::new();
    for record in records {
        out.extend(aggregator.add(record)?);
    }
    out.extend(aggregator.finish());
    Ok(out)
}
