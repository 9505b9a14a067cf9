//! Work units: the records of a batch as the engine schedules them.
//!
//! A plain record is one unit. A KPL aggregate becomes one unit per user record (see
//! [`crate::aggregation`]), each with its own partition key and its parent's sequence
//! number. A record whose envelope is broken is still a unit, so that it is accounted for:
//! it carries the reason and is dead-lettered as undecodable.

use std::time::SystemTime;

use base64::Engine as _;
use bumpalo::Bump;

use crate::aggregation::{self, Deaggregated, UserRecord};
use crate::base64_data;
use crate::event::{BrokenRecord, CheckedRecord, Judged};
use crate::meta::{RecordMeta, Source, NOT_AGGREGATED};
use crate::report::Copied;

/// One record to process.
pub(crate) struct Unit<'b> {
    /// Index of the Kinesis record in the batch that carried it.
    pub record: usize,
    pub meta: RecordMeta<'b>,
    pub data: Data<'b>,
    /// Why the unit cannot be processed, when its envelope is broken. Kept in the batch's
    /// arena, so that a unit owns nothing: the list of units is freed without visiting
    /// each one again (a pass over cold memory that perf showed at the end of every batch).
    pub problem: Option<&'b str>,
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

/// Builds the units of a batch from its records as the parser hands them over
/// ([`crate::event::parse`]): one unit per record, aggregates expanded afterwards.
pub(crate) struct Builder<'b> {
    units: Vec<Unit<'b>>,
    /// Where the text of problems and each record source go.
    arena: &'b Bump,
    /// The source of the previous valid record, which the next one most likely shares.
    source: &'b Source<'b>,
    /// Units whose data may be a KPL aggregate, by position.
    maybe_aggregates: Vec<usize>,
}

impl<'b> Builder<'b> {
    /// A builder with room for every record `payload` may hold, keeping text in `arena`.
    pub fn for_payload(payload: &[u8], arena: &'b Bump) -> Self {
        Builder {
            units: Vec::with_capacity(crate::event::estimated_records(payload)),
            arena,
            source: &Source::UNKNOWN,
            maybe_aggregates: Vec::new(),
        }
    }

    /// Adds the unit of the record at `index`.
    pub fn push(&mut self, index: usize, record: Judged<'b>) {
        let unit = match record {
            Judged::Valid(checked) => {
                if checked.may_be_aggregate {
                    self.maybe_aggregates.push(self.units.len());
                }
                let source = self.source_of(&checked);
                plain_unit(index, &checked, source)
            }
            Judged::Broken(broken) => broken_unit(index, broken, self.arena),
        };
        self.units.push(unit);
    }

    /// The record's shard and stream, as one shared value for all records of a shard.
    fn source_of(&mut self, checked: &CheckedRecord<'b>) -> &'b Source<'b> {
        let same = std::ptr::eq(self.source.shard_id, checked.shard_id)
            && self.source.event_source_arn == checked.event_source_arn;
        if !same {
            self.source = self.arena.alloc(Source {
                shard_id: checked.shard_id,
                event_source_arn: checked.event_source_arn,
            });
        }
        self.source
    }

    /// The units, KPL aggregates expanded into their user records. The user records borrow
    /// from `decoded`, which [`Builder::decode_aggregates`] fills.
    pub fn finish<'d>(self, decoded: &'d mut Vec<(usize, Vec<u8>)>) -> Vec<Unit<'d>>
    where
        'b: 'd,
    {
        self.decode_aggregates(decoded);
        if decoded.is_empty() {
            return self.units;
        }
        expand(self.units, decoded, self.arena)
    }

    /// Decodes the data of every unit that may be a KPL aggregate, keeping what is one, by
    /// unit position.
    fn decode_aggregates(&self, decoded: &mut Vec<(usize, Vec<u8>)>) {
        for &at in &self.maybe_aggregates {
            let Data::Base64(text) = self.units[at].data else { continue };
            if let Ok(bytes) = base64_data::decode(text.as_bytes()) {
                if aggregation::has_magic(&bytes) {
                    decoded.push((at, bytes));
                }
            }
        }
    }
}

/// The units with each aggregate of `decoded` (by position) replaced by its user records.
fn expand<'d>(
    units: Vec<Unit<'d>>,
    decoded: &'d [(usize, Vec<u8>)],
    arena: &'d Bump,
) -> Vec<Unit<'d>> {
    let mut expanded = Vec::with_capacity(units.len());
    let mut aggregates = decoded.iter().peekable();
    for (at, mut unit) in units.into_iter().enumerate() {
        let Some((_, bytes)) = aggregates.next_if(|(position, _)| *position == at) else {
            expanded.push(unit);
            continue;
        };
        match aggregation::deaggregate(bytes) {
            Ok(Deaggregated::Plain) => {
                unit.data = Data::Raw(bytes);
                expanded.push(unit);
            }
            Ok(Deaggregated::Aggregate(users)) => {
                expanded.extend(
                    users
                        .into_iter()
                        .enumerate()
                        .map(|(sub, user)| user_record_unit(&unit, sub as u32, user)),
                );
            }
            Err(broken) => {
                // Dead-lettered whole, with the record's data as it came.
                unit.problem = Some(arena.alloc_str(&broken.to_string()));
                expanded.push(unit);
            }
        }
    }
    expanded
}

/// A record processed as it is.
fn plain_unit<'b>(index: usize, checked: &CheckedRecord<'b>, source: &'b Source<'b>) -> Unit<'b> {
    Unit {
        record: index,
        meta: RecordMeta {
            sequence_number: checked.sequence_number,
            partition_key: checked.partition_key,
            explicit_hash_key: checked.explicit_hash_key,
            source,
            arrival_millis: checked.arrival_millis,
            sub_sequence: NOT_AGGREGATED,
        },
        data: Data::Base64(checked.data),
        problem: None,
        copied: checked.copied,
    }
}

/// A user record of an aggregate: its own keys, its parent's sequence number.
fn user_record_unit<'b>(parent: &Unit<'b>, sub_sequence: u32, user: UserRecord<'b>) -> Unit<'b> {
    Unit {
        record: parent.record,
        meta: RecordMeta {
            partition_key: user.partition_key,
            explicit_hash_key: user.explicit_hash_key,
            sub_sequence,
            ..parent.meta.clone()
        },
        data: Data::Raw(user.data),
        problem: None,
        // Its own partition key was not in the envelope; the sequence number is the parent's.
        copied: parent.copied.without_partition_key(),
    }
}

/// A unit for a record that cannot be processed: whatever its envelope says, and why.
fn broken_unit<'b>(index: usize, record: BrokenRecord<'b>, arena: &'b Bump) -> Unit<'b> {
    let source = match (record.shard_id, record.event_source_arn) {
        (None, None) => &Source::UNKNOWN,
        (shard_id, event_source_arn) => &*arena.alloc(Source {
            shard_id: shard_id.unwrap_or(""),
            event_source_arn: event_source_arn.unwrap_or(""),
        }),
    };
    Unit {
        record: index,
        meta: RecordMeta {
            sequence_number: record.sequence_number.unwrap_or(""),
            partition_key: record.partition_key.unwrap_or(""),
            explicit_hash_key: record.explicit_hash_key,
            source,
            arrival_millis: record.arrival_millis.unwrap_or(0),
            sub_sequence: NOT_AGGREGATED,
        },
        data: record.data.map_or(Data::Missing, Data::Base64),
        problem: Some(arena.alloc_str(&record.problem)),
        copied: Copied::default(),
    }
}

impl<'b> Unit<'b> {
    /// The sequence number that names it in a response; `None` when it has no valid one
    /// (its `meta` then holds an empty one: only valid sequence numbers are kept).
    pub fn checkpoint(&self) -> Option<&'b str> {
        Some(self.meta.sequence_number).filter(|number| !number.is_empty())
    }

    /// How long the record had been in the stream at `now`.
    pub fn age_at(&self, now: SystemTime) -> std::time::Duration {
        now.duration_since(self.meta.approximate_arrival()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked<'b>(shard_id: &'b str, event_source_arn: &'b str) -> Judged<'b> {
        Judged::Valid(CheckedRecord {
            sequence_number: "1",
            partition_key: "k",
            explicit_hash_key: None,
            data: "aGk=",
            arrival_millis: 0,
            shard_id,
            event_source_arn,
            copied: Copied::default(),
            may_be_aggregate: false,
        })
    }

    #[test]
    fn records_of_one_shard_share_one_source() {
        let arena = Bump::new();
        let mut builder = Builder::for_payload(&[0; 4000], &arena);
        let shard = "shardId-1";
        builder.push(0, checked(shard, "arn:x:stream/s"));
        builder.push(1, checked(shard, "arn:x:stream/s"));
        builder.push(2, checked(shard, "arn:x:stream/other"));
        builder.push(3, checked("shardId-2", "arn:x:stream/other"));
        let mut aggregates = Vec::new();
        let units = builder.finish(&mut aggregates);
        let sources: Vec<_> = units.iter().map(|unit| unit.meta.source).collect();
        assert!(std::ptr::eq(sources[0], sources[1]));
        assert!(!std::ptr::eq(sources[1], sources[2]));
        assert!(!std::ptr::eq(sources[2], sources[3]));
        let names: Vec<_> =
            units.iter().map(|u| (u.meta.shard_id(), u.meta.stream_name())).collect();
        assert_eq!(
            names,
            [
                ("shardId-1", "s"),
                ("shardId-1", "s"),
                ("shardId-1", "other"),
                ("shardId-2", "other")
            ]
        );
    }

    #[test]
    fn a_unit_stays_small() {
        // The driver reads every unit after the whole payload is parsed, from memory: its
        // size is bytes fetched per record. 136 bytes since the shard and stream are shared.
        assert!(std::mem::size_of::<Unit<'_>>() <= 136, "{}", std::mem::size_of::<Unit<'_>>());
    }
}
