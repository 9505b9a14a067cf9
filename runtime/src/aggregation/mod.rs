//! KPL aggregation: many small user records packed into one Kinesis record.
//!
//! The Kinesis Producer Library (and the `aws-kinesis-agg` libraries) write an aggregate
//! as the magic bytes `F3 89 9A C2`, a protobuf `AggregatedRecord` (a table of partition
//! keys, a table of explicit hash keys, and the user records pointing into them) and the
//! MD5 digest of the protobuf bytes. The batch de-aggregates every record before the
//! engine sees it; this module is public for programs that de-aggregate records
//! themselves. The producer side (building aggregates) is under the `testing` feature:
//! [`testing::aggregate`](crate::testing::aggregate).
//!
//! ```
//! # #[cfg(feature = "testing")] {
//! use kinesis_processor::aggregation::{deaggregate, Deaggregated, UserRecord};
//! use kinesis_processor::testing::aggregate;
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
//! # }
//! ```
//!
//! What is an aggregate: the magic, a body longer than the digest, and a matching MD5.
//! Anything else (a mismatched digest, too short a body, a body that is not protobuf) is a
//! plain record, as the KCL and the official libraries decide. An aggregate whose digest
//! matches but whose contents cannot be decoded (a truncated message, a key index outside its
//! table, a missing required field, no user records at all) is [`UndecodableAggregate`]: the
//! engine dead-letters it whole rather than process part of it. (The official Python
//! library stops at such an error and drops the remaining user records.)
//!
//! A user record without an `explicit_hash_key_index` has no explicit hash key, as the
//! KCL reads it. (The official Python library reads the absent index as 0 and hands such a
//! record the first key of the aggregate's table, when the table is not empty: a key the
//! producer never gave it.)

pub(crate) mod wire;

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
pub struct UndecodableAggregate {
    reason: String,
}

impl fmt::Display for UndecodableAggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a KPL aggregate with a valid checksum cannot be decoded: {}", self.reason)
    }
}

impl std::error::Error for UndecodableAggregate {}

fn undecodable_aggregate(reason: impl Into<String>) -> UndecodableAggregate {
    UndecodableAggregate { reason: reason.into() }
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
pub fn deaggregate(data: &[u8]) -> Result<Deaggregated<'_>, UndecodableAggregate> {
    let Some(body) = checked_body(data) else { return Ok(Deaggregated::Plain) };
    match read_aggregate(body) {
        Ok(records) => Ok(Deaggregated::Aggregate(records)),
        Err(Unreadable::NotProtobuf) => Ok(Deaggregated::Plain),
        Err(Unreadable::Undecodable(error)) => Err(error),
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
    Undecodable(UndecodableAggregate),
}

impl From<WireError> for Unreadable {
    fn from(error: WireError) -> Self {
        match error {
            WireError::Malformed => Unreadable::NotProtobuf,
            WireError::Truncated => {
                Unreadable::Undecodable(undecodable_aggregate("the protobuf message is truncated"))
            }
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
        return Err(Unreadable::Undecodable(undecodable_aggregate("it holds no user records")));
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
    let missing = |field: &str| {
        Unreadable::Undecodable(undecodable_aggregate(format!(
            "user record {index} has no {field}"
        )))
    };
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
        Unreadable::Undecodable(undecodable_aggregate(format!(
            "user record {record} points at {what} {key}, outside its table of {}",
            table.len()
        )))
    })
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, Unreadable> {
    std::str::from_utf8(bytes).map_err(|_| {
        Unreadable::Undecodable(undecodable_aggregate(format!("a {what} is not UTF-8")))
    })
}

#[cfg(feature = "testing")]
pub(crate) mod producer;

#[cfg(all(test, feature = "testing"))]
mod tests;
