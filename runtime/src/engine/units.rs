//! Work units: the records of a batch as the engine schedules them.
//!
//! A plain record is one unit. A KPL aggregate becomes one unit per user record (see
//! [`crate::aggregation`]), each with its own partition key and its parent's sequence
//! number. A record whose envelope is broken is still a unit, so that it is accounted for:
//! it carries the reason and is dead-lettered as undecodable.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::aggregation::{self, Deaggregated, UserRecord};
use crate::base64_data;
use crate::event::{Batch, CheckedRecord, EventRecord};
use crate::meta::RecordMeta;
use crate::report::Copied;

/// One record to process.
pub(crate) struct Unit<'b> {
    /// Index of the Kinesis record in the batch that carried it.
    pub record: usize,
    pub meta: RecordMeta<'b>,
    pub data: Data<'b>,
    /// Why the unit cannot be processed, when its envelope is broken.
    pub problem: Option<String>,
    /// The sequence number that names it in a response; `None` when it has no valid one.
    pub checkpoint: Option<&'b str>,
    /// Its strings that the parser already copied for the report.
    pub copied: Copied,
}

/// Where a unit's bytes are.
pub(crate) enum Data<'b> {
    /// The event's `data` field, still base64.
    Base64(&'b str),
    /// Bytes already decoded (a user record inside an aggregate).
    Raw(&'b [u8]),
    /// No usable data (a broken envelope).
    Missing,
}

impl<'b> Data<'b> {
    /// The unit's bytes: decoded into `buffer` when base64, borrowed otherwise.
    pub fn bytes<'s>(&'s self, buffer: &'s mut Vec<u8>) -> Result<&'s [u8], String> {
        match self {
            Data::Base64(text) => {
                buffer.clear();
                base64_data::decode_into(text.as_bytes(), buffer)
                    .map_err(|e| format!("`kinesis.data` is not valid base64: {e}"))?;
                Ok(buffer)
            }
            Data::Raw(bytes) => Ok(bytes),
            Data::Missing => Err("the record has no data".into()),
        }
    }

    /// The data as base64 for a dead letter: a plain record's field exactly as received.
    pub fn to_base64(&self) -> Option<String> {
        match self {
            Data::Base64(text) => Some((*text).to_owned()),
            Data::Raw(bytes) => Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            Data::Missing => None,
        }
    }
}

/// The decoded data of every record that may be a KPL aggregate, by record index. User
/// records borrow from these bytes, so they are decoded before any unit is built and live
/// as long as the batch.
pub(crate) fn decode_aggregates(batch: &Batch<'_>) -> Vec<(usize, Vec<u8>)> {
    let mut decoded = Vec::new();
    for (index, record) in batch.records.iter().enumerate() {
        // Only data that starts as the base64 of the magic bytes can be an aggregate.
        let Some(text) = record.data().filter(|_| record.may_be_aggregate()) else {
            continue;
        };
        if let Ok(bytes) = base64_data::decode(text.as_bytes()) {
            if aggregation::has_magic(&bytes) {
                decoded.push((index, bytes));
            }
        }
    }
    decoded
}

/// The units of a batch, in stream order; `decoded` is from [`decode_aggregates`].
pub(crate) fn expand<'b>(batch: &'b Batch<'_>, decoded: &'b [(usize, Vec<u8>)]) -> Vec<Unit<'b>> {
    let mut units = Vec::with_capacity(batch.records.len());
    let mut aggregates = decoded.iter().peekable();
    for (index, record) in batch.records.iter().enumerate() {
        let bytes = aggregates.next_if(|(at, _)| *at == index).map(|(_, bytes)| bytes.as_slice());
        let checked = match record.check() {
            Ok(checked) => checked,
            Err(problem) => {
                units.push(broken_unit(index, record, problem));
                continue;
            }
        };
        let Some(bytes) = bytes else {
            units.push(plain_unit(index, &checked, Data::Base64(checked.data)));
            continue;
        };
        match aggregation::deaggregate(bytes) {
            Ok(Deaggregated::Plain) => units.push(plain_unit(index, &checked, Data::Raw(bytes))),
            Ok(Deaggregated::Aggregate(users)) => {
                units.extend(
                    users
                        .into_iter()
                        .enumerate()
                        .map(|(sub, user)| user_record_unit(index, &checked, sub as u64, user)),
                );
            }
            Err(broken) => {
                // Dead-lettered whole, with the record's data as it came.
                let mut unit = plain_unit(index, &checked, Data::Base64(checked.data));
                unit.problem = Some(broken.to_string());
                units.push(unit);
            }
        }
    }
    units
}

/// A record processed as it is.
fn plain_unit<'b>(index: usize, checked: &CheckedRecord<'b>, data: Data<'b>) -> Unit<'b> {
    Unit {
        record: index,
        meta: RecordMeta {
            sequence_number: checked.sequence_number,
            sub_sequence_number: None,
            partition_key: checked.partition_key,
            explicit_hash_key: checked.explicit_hash_key,
            shard_id: checked.shard_id,
            event_source_arn: checked.event_source_arn,
            approximate_arrival: checked.approximate_arrival,
            aggregated: false,
        },
        data,
        problem: None,
        checkpoint: Some(checked.sequence_number),
        copied: checked.copied,
    }
}

/// A user record of an aggregate: its own keys, its parent's sequence number.
fn user_record_unit<'b>(
    index: usize,
    parent: &CheckedRecord<'b>,
    sub_sequence_number: u64,
    user: UserRecord<'b>,
) -> Unit<'b> {
    Unit {
        record: index,
        meta: RecordMeta {
            sequence_number: parent.sequence_number,
            sub_sequence_number: Some(sub_sequence_number),
            partition_key: user.partition_key,
            explicit_hash_key: user.explicit_hash_key,
            shard_id: parent.shard_id,
            event_source_arn: parent.event_source_arn,
            approximate_arrival: parent.approximate_arrival,
            aggregated: true,
        },
        data: Data::Raw(user.data),
        problem: None,
        checkpoint: Some(parent.sequence_number),
        // Its own partition key was not in the envelope; the sequence number is the parent's.
        copied: Copied { partition_key: None, ..parent.copied },
    }
}

/// A unit for a record that cannot be processed: whatever its envelope says, and why.
pub(crate) fn broken_unit<'b>(
    index: usize,
    record: &'b EventRecord<'_>,
    problem: String,
) -> Unit<'b> {
    let checkpoint = record.sequence_number();
    Unit {
        record: index,
        meta: RecordMeta {
            sequence_number: checkpoint.unwrap_or(""),
            sub_sequence_number: None,
            partition_key: record.partition_key().unwrap_or(""),
            explicit_hash_key: record.explicit_hash_key(),
            shard_id: record.shard_id().unwrap_or(""),
            event_source_arn: record.event_source_arn().unwrap_or(""),
            approximate_arrival: record.approximate_arrival().unwrap_or(UNIX_EPOCH),
            aggregated: false,
        },
        data: record.data().map_or(Data::Missing, Data::Base64),
        problem: Some(problem),
        checkpoint,
        copied: Copied::default(),
    }
}

impl Unit<'_> {
    /// How long the record had been in the stream at `now`.
    pub fn age_at(&self, now: SystemTime) -> std::time::Duration {
        now.duration_since(self.meta.approximate_arrival).unwrap_or_default()
    }
}
