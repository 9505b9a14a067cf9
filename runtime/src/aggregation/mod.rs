//! KPL aggregation: many small user records packed into one Kinesis record.
//!
//! The Kinesis Producer Library (and the `aws-kinesis-agg` libraries) write an aggregate
//! as the magic bytes `F3 89 9A C2`, a protobuf `AggregatedRecord` (a table of partition
//! keys, a table of explicit hash keys, and the user records pointing into them) and the
//! MD5 digest of the protobuf bytes. The engine de-aggregates every record before
//! scheduling; this module is also public, for producers and tests.
//!
//! ```
//! use kinesis_processor::aggregation::{aggregate, deaggregate, Deaggregated, UserRecord};
//!
//! let records = [
//!     UserRecord { partition_key: "user-1", explicit_hash_key: None, data: b"first" },
//!     UserRecord { partition_key: "user-2", explicit_hash_key: Some("42"), data: b"second" },
//! ];
//! let aggregates = aggregate(records).unwrap();
//! assert_eq!(aggregates.len(), 1);
//! assert_eq!(aggregates[0].partition_key, "user-1");
//!
//! let Ok(Deaggregated::Aggregate(back)) = deaggregate(&aggregates[0].data) else { panic!() };
//! assert_eq!(back, records);
//! ```
//!
//! What is an aggregate: the magic, a body longer than the digest, and a matching MD5.
//! Anything else (a mismatched digest, too short a body, a body that is not protobuf) is a
//! plain record, as the KCL and the official libraries decide. An aggregate whose digest
//! matches but whose contents are broken (a truncated message, a key index outside its
//! table, a missing required field, no user records at all) is [`BrokenAggregate`]: the
//! engine dead-letters it whole rather than process part of it. (The official Python
//! library stops at such an error and drops the remaining user records.)
//!
//! A user record without an `explicit_hash_key_index` has no explicit hash key, as the
//! KCL reads it. (The official Python library reads the absent index as 0 and hands such a
//! record the first key of the aggregate's table, when the table is not empty: a key the
//! producer never gave it.)

mod wire;

use std::collections::HashMap;
use std::fmt;

use md5::{Digest, Md5};

use wire::{Fields, Value, WireError};

/// The four bytes that open an aggregate.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// The size of the MD5 digest that closes an aggregate.
const DIGEST_SIZE: usize = 16;

/// The most a Kinesis record may hold: its data and its partition key together, 1 MiB.
pub const MAX_RECORD_SIZE: usize = 1024 * 1024;

/// One user record: what a producer put, before or after aggregation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRecord<'a> {
    /// Its partition key.
    pub partition_key: &'a str,
    /// Its explicit hash key, if the producer set one.
    pub explicit_hash_key: Option<&'a str>,
    /// Its data.
    pub data: &'a [u8],
}

/// What a Kinesis record's data turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deaggregated<'a> {
    /// Not an aggregate: process the record as it is.
    Plain,
    /// An aggregate's user records, in order (their sub-sequence numbers are their
    /// positions), borrowing from the record's data.
    Aggregate(Vec<UserRecord<'a>>),
}

/// An aggregate whose digest matches but whose contents cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenAggregate {
    reason: String,
}

impl fmt::Display for BrokenAggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a KPL aggregate with a valid checksum is broken: {}", self.reason)
    }
}

impl std::error::Error for BrokenAggregate {}

fn broken(reason: impl Into<String>) -> BrokenAggregate {
    BrokenAggregate { reason: reason.into() }
}

/// Whether `data` opens with the aggregate magic (a cheap test before [`deaggregate`]).
pub fn has_magic(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// Reads a Kinesis record's data as a KPL aggregate, if it is one.
///
/// ```
/// use kinesis_processor::aggregation::{deaggregate, Deaggregated};
/// assert_eq!(deaggregate(b"just a record"), Ok(Deaggregated::Plain));
/// ```
pub fn deaggregate(data: &[u8]) -> Result<Deaggregated<'_>, BrokenAggregate> {
    let Some(body) = checked_body(data) else { return Ok(Deaggregated::Plain) };
    match read_aggregate(body) {
        Ok(records) => Ok(Deaggregated::Aggregate(records)),
        Err(Unreadable::NotProtobuf) => Ok(Deaggregated::Plain),
        Err(Unreadable::Broken(error)) => Err(error),
    }
}

/// The protobuf body of an aggregate whose magic and digest check out.
fn checked_body(data: &[u8]) -> Option<&[u8]> {
    let rest = data.strip_prefix(&MAGIC)?;
    if rest.len() <= DIGEST_SIZE {
        return None;
    }
    let (body, digest) = rest.split_at(rest.len() - DIGEST_SIZE);
    (Md5::digest(body).as_slice() == digest).then_some(body)
}

enum Unreadable {
    NotProtobuf,
    Broken(BrokenAggregate),
}

impl From<WireError> for Unreadable {
    fn from(error: WireError) -> Self {
        match error {
            WireError::Malformed => Unreadable::NotProtobuf,
            WireError::Truncated => Unreadable::Broken(broken("the protobuf message is truncated")),
        }
    }
}

/// Decodes `AggregatedRecord { repeated string partition_key_table = 1; repeated string
/// explicit_hash_key_table = 2; repeated Record records = 3; }`. Fields may come in any
/// order, so the tables are collected before the records are resolved against them.
fn read_aggregate(body: &[u8]) -> Result<Vec<UserRecord<'_>>, Unreadable> {
    let mut partition_keys = Vec::new();
    let mut explicit_hash_keys = Vec::new();
    let mut records = Vec::new();
    let mut fields = Fields::new(body);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Value::Bytes(key)) => partition_keys.push(utf8(key, "partition key")?),
            (2, Value::Bytes(key)) => explicit_hash_keys.push(utf8(key, "explicit hash key")?),
            (3, Value::Bytes(record)) => records.push(record),
            // Unknown fields, and known numbers with another wire type, are skipped.
            _ => {}
        }
    }
    if records.is_empty() {
        return Err(Unreadable::Broken(broken("it holds no user records")));
    }
    records
        .into_iter()
        .enumerate()
        .map(|(index, record)| read_record(index, record, &partition_keys, &explicit_hash_keys))
        .collect()
}

/// Decodes `Record { required uint64 partition_key_index = 1; optional uint64
/// explicit_hash_key_index = 2; required bytes data = 3; repeated Tag tags = 4; }`.
fn read_record<'a>(
    index: usize,
    record: &'a [u8],
    partition_keys: &[&'a str],
    explicit_hash_keys: &[&'a str],
) -> Result<UserRecord<'a>, Unreadable> {
    let mut partition_key_index = None;
    let mut explicit_hash_key_index = None;
    let mut data = None;
    let mut fields = Fields::new(record);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Value::Varint(n)) => partition_key_index = Some(n),
            (2, Value::Varint(n)) => explicit_hash_key_index = Some(n),
            (3, Value::Bytes(bytes)) => data = Some(bytes),
            _ => {}
        }
    }
    let missing =
        |field: &str| Unreadable::Broken(broken(format!("user record {index} has no {field}")));
    let partition_key_index = partition_key_index.ok_or_else(|| missing("partition key index"))?;
    let data = data.ok_or_else(|| missing("data"))?;
    let partition_key = lookup(partition_keys, partition_key_index, index, "partition key")?;
    let explicit_hash_key = match explicit_hash_key_index {
        Some(key) => Some(lookup(explicit_hash_keys, key, index, "explicit hash key")?),
        None => None,
    };
    Ok(UserRecord { partition_key, explicit_hash_key, data })
}

fn lookup<'a>(
    table: &[&'a str],
    key: u64,
    record: usize,
    what: &str,
) -> Result<&'a str, Unreadable> {
    usize::try_from(key).ok().and_then(|key| table.get(key)).copied().ok_or_else(|| {
        Unreadable::Broken(broken(format!(
            "user record {record} points at {what} {key}, outside its table of {}",
            table.len()
        )))
    })
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, Unreadable> {
    std::str::from_utf8(bytes)
        .map_err(|_| Unreadable::Broken(broken(format!("a {what} is not UTF-8"))))
}

// ---- the producer side -------------------------------------------------------------------

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
/// use kinesis_processor::aggregation::{Aggregator, UserRecord};
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
    fn size_with(&self, record: &UserRecord<'_>, container_key: &str) -> usize {
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

    fn push(&mut self, record: UserRecord<'_>) {
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
        let explicit_hash_key =
            done.first_explicit_hash_key.unwrap_or_else(|| hash_key_of(&done.first_partition_key));
        Some(AggregatedRecord {
            partition_key: done.first_partition_key,
            explicit_hash_key,
            data,
            user_records: done.user_records,
        })
    }
}

/// The hash key Kinesis derives from a partition key: its MD5 as a 128-bit integer.
pub fn hash_key_of(partition_key: &str) -> String {
    let digest: [u8; 16] = Md5::digest(partition_key.as_bytes()).into();
    u128::from_be_bytes(digest).to_string()
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

#[cfg(test)]
mod tests;
