//! Work units: the records of a batch as the engine schedules them.
//!
//! A plain record is one unit. A KPL aggregate becomes one unit per user record (see
//! [`crate::aggregation`]), each with its own partition key and its parent's sequence
//! number. A record whose envelope cannot be decoded is still a unit, so that it is accounted for:
//! it carries the reason and is dead-lettered as undecodable.
//!
//! A record's data is base64-decoded as the parser hands the record over, while its text
//! is in cache ([`super::decoded`]): the driver reaches a unit only once the whole payload
//! is parsed.

use std::time::SystemTime;

use bumpalo::Bump;

use super::base64 as base64_data;
use super::decoded::DecodedData;
use super::record::{Checked, UndecodableRecord, ValidRecord};
use crate::aggregation::{self, Deaggregated, UserRecord};
use crate::meta::{RecordMeta, Source, NOT_AGGREGATED};

/// One record to process.
pub(crate) struct Unit<'b> {
    /// Index of the Kinesis record in the batch that carried it.
    pub record: usize,
    pub meta: RecordMeta<'b>,
    pub data: Data<'b>,
}

/// Where a unit's bytes are.
#[derive(Clone, Copy)]
pub(crate) enum Data<'b> {
    /// The event's `data` field, still base64: text that is not canonical base64, decoded
    /// (or refused, with the reason) when the unit runs.
    Base64(&'b str),
    /// Decoded bytes: a record's data, or a user record's inside an aggregate. Their base64,
    /// `padded` or not, is a record's `data` field exactly as received (only canonical text
    /// is decoded ahead), and a user record's in the usual padded form.
    Bytes { bytes: &'b [u8], padded: bool },
    /// The unit cannot be processed (an undecodable envelope or aggregate). Kept in the batch's
    /// arena, so that a unit owns nothing (the units are freed without visiting each) and
    /// the rare undecodable unit costs a pointer, not a field in every unit.
    Undecodable(&'b UndecodableData<'b>),
}

/// Why a unit cannot be processed, and what it came with.
pub(crate) struct UndecodableData<'b> {
    pub decode_error: &'b str,
    /// `None` when the envelope has no usable `data`.
    pub data: Option<Data<'b>>,
    /// When Kinesis accepted it, in milliseconds since 1970, if the envelope says.
    pub arrival_millis: Option<u64>,
    /// The record's JSON text as received, when it is not a JSON object (so has no `data`
    /// at all): its start, at most [`RAW_RECORD_LIMIT`] bytes.
    pub raw_record: Option<&'b str>,
}

/// The most of a record's JSON text a dead letter carries: small enough that the letter
/// fits every sink (SNS and SQS take 256 KiB), even with every byte escaped.
pub(crate) const RAW_RECORD_LIMIT: usize = 32 * 1024;

impl<'b> Data<'b> {
    /// The data of a record's `data` field: decoded when the text is canonical base64, the
    /// text otherwise.
    fn of_field(text: &'b str, decoded: &mut DecodedData<'b>) -> Self {
        match decoded.decode(text) {
            Some(bytes) => Data::Bytes { bytes, padded: text.len() % 4 == 0 },
            None => Data::Base64(text),
        }
    }

    /// Data that cannot be processed, kept in `arena`.
    fn undecodable(
        decode_error: &str,
        data: Option<Data<'b>>,
        arrival_millis: Option<u64>,
        arena: &'b Bump,
    ) -> Self {
        let decode_error = arena.alloc_str(decode_error);
        Data::Undecodable(arena.alloc(UndecodableData {
            decode_error,
            data,
            arrival_millis,
            raw_record: None,
        }))
    }

    /// The unit's bytes: decoded into `buffer` when base64, borrowed otherwise.
    pub fn bytes<'s>(&'s self, buffer: &'s mut Vec<u8>) -> Result<&'s [u8], String> {
        match self {
            Data::Base64(text) => {
                buffer.clear();
                base64_data::decode_into(text.as_bytes(), buffer)
                    .map_err(|e| format!("`kinesis.data` is not valid base64: {e}"))?;
                Ok(buffer)
            }
            Data::Bytes { bytes, .. } => Ok(bytes),
            Data::Undecodable(undecodable) => Err(undecodable.decode_error.to_owned()),
        }
    }

    /// The data as base64 for a dead letter: a plain record's field exactly as received.
    pub fn to_base64(self) -> Option<String> {
        match self {
            Data::Base64(text) => Some(text.to_owned()),
            Data::Bytes { bytes, padded } => Some(base64_data::encode(bytes, padded)),
            Data::Undecodable(undecodable) => undecodable.data.and_then(Data::to_base64),
        }
    }
}

/// Builds the units of a batch from its records as the parser hands them over
/// ([`super::parse`]): one unit per record, aggregates expanded afterwards.
pub(crate) struct Builder<'b> {
    units: Vec<Unit<'b>>,
    /// Where the text of decode errors, each record source and aggregates decoded whole go.
    arena: &'b Bump,
    /// The source of the previous valid record, which the next one most likely shares.
    source: &'b Source<'b>,
    /// The units whose data opens as a KPL aggregate, by position, with their bytes.
    aggregates: Vec<(usize, &'b [u8])>,
    /// Where the records' data is decoded to.
    decoded: DecodedData<'b>,
}

impl<'b> Builder<'b> {
    /// A builder with room for every record `payload` may hold, keeping text in `arena`.
    pub fn for_payload(payload: &[u8], arena: &'b Bump) -> Self {
        Builder {
            units: Vec::with_capacity(super::estimated_records(payload)),
            arena,
            source: &Source::UNKNOWN,
            aggregates: Vec::new(),
            decoded: DecodedData::new(arena),
        }
    }

    /// Adds the unit of the record at `index`.
    pub fn push(&mut self, index: usize, record: Checked<'b>) {
        let unit = match record {
            Checked::Valid(valid) => {
                let source = self.source_of(&valid);
                let unit = plain_unit(index, &valid, source, &mut self.decoded);
                if valid.may_be_aggregate {
                    self.note_if_aggregate(&unit);
                }
                unit
            }
            Checked::Undecodable(record) => undecodable_unit(index, record, self.arena),
        };
        self.units.push(unit);
    }

    /// The record's shard and stream, as one shared value for all records of a shard.
    fn source_of(&mut self, valid: &ValidRecord<'b>) -> &'b Source<'b> {
        // The parser hands every record of a shard the same shard id slice.
        let same_shard = match (self.source.shard_id, valid.shard_id) {
            (Some(ours), Some(theirs)) => std::ptr::eq(ours, theirs),
            (ours, theirs) => ours.is_none() && theirs.is_none(),
        };
        let same = same_shard && self.source.event_source_arn == Some(valid.event_source_arn);
        if !same {
            self.source = self.arena.alloc(Source {
                shard_id: valid.shard_id,
                event_source_arn: Some(valid.event_source_arn),
            });
        }
        self.source
    }

    /// Notes the unit about to be pushed when its data opens as an aggregate. Text that
    /// is not canonical base64 is decoded here whole, as the driver would decode it.
    fn note_if_aggregate(&mut self, unit: &Unit<'b>) {
        let bytes = match unit.data {
            Data::Bytes { bytes, .. } => bytes,
            Data::Base64(text) => match base64_data::decode(text.as_bytes()) {
                Ok(bytes) => &*self.arena.alloc_slice_copy(&bytes),
                Err(_) => return,
            },
            Data::Undecodable(_) => return,
        };
        if aggregation::has_magic(bytes) {
            self.aggregates.push((self.units.len(), bytes));
        }
    }

    /// The units, KPL aggregates expanded into their user records.
    pub fn finish(self) -> Vec<Unit<'b>> {
        if self.aggregates.is_empty() {
            return self.units;
        }
        expand(self.units, &self.aggregates, self.arena)
    }
}

/// The units with each aggregate of `aggregates` (by position) replaced by its user records.
fn expand<'b>(
    units: Vec<Unit<'b>>,
    aggregates: &[(usize, &'b [u8])],
    arena: &'b Bump,
) -> Vec<Unit<'b>> {
    let mut expanded = Vec::with_capacity(units.len());
    let mut aggregates = aggregates.iter().peekable();
    for (at, mut unit) in units.into_iter().enumerate() {
        let Some(&(_, bytes)) = aggregates.next_if(|(position, _)| *position == at) else {
            expanded.push(unit);
            continue;
        };
        match aggregation::deaggregate(bytes) {
            // Not an aggregate after all (as KCL decides): processed as it is.
            Ok(Deaggregated::Plain) => expanded.push(unit),
            Ok(Deaggregated::Aggregate(users)) => {
                expanded.extend(
                    users
                        .into_iter()
                        .enumerate()
                        .map(|(sub, user)| user_record_unit(&unit, sub as u32, user)),
                );
            }
            Err(undecodable) => {
                // Dead-lettered whole, with the record's data as it came.
                let arrival = Some(unit.meta.arrival_millis);
                unit.data =
                    Data::undecodable(&undecodable.to_string(), Some(unit.data), arrival, arena);
                expanded.push(unit);
            }
        }
    }
    expanded
}

/// A record processed as it is.
fn plain_unit<'b>(
    index: usize,
    valid: &ValidRecord<'b>,
    source: &'b Source<'b>,
    decoded: &mut DecodedData<'b>,
) -> Unit<'b> {
    Unit {
        record: index,
        meta: RecordMeta {
            sequence_number: Some(valid.sequence_number),
            partition_key: Some(valid.partition_key),
            explicit_hash_key: valid.explicit_hash_key,
            source,
            arrival_millis: valid.arrival_millis,
            sub_sequence: NOT_AGGREGATED,
        },
        data: Data::of_field(valid.data, decoded),
    }
}

/// A user record of an aggregate: its own keys, its parent's sequence number.
fn user_record_unit<'b>(parent: &Unit<'b>, sub_sequence: u32, user: UserRecord<'b>) -> Unit<'b> {
    Unit {
        record: parent.record,
        meta: RecordMeta {
            partition_key: Some(user.partition_key),
            explicit_hash_key: user.explicit_hash_key,
            sub_sequence,
            ..parent.meta.clone()
        },
        data: Data::Bytes { bytes: user.data, padded: true },
    }
}

/// A unit for a record that cannot be processed: whatever its envelope says, and why.
fn undecodable_unit<'b>(index: usize, record: UndecodableRecord<'b>, arena: &'b Bump) -> Unit<'b> {
    let source = match (record.shard_id, record.event_source_arn) {
        (None, None) => &Source::UNKNOWN,
        (shard_id, event_source_arn) => &*arena.alloc(Source { shard_id, event_source_arn }),
    };
    Unit {
        record: index,
        meta: RecordMeta {
            sequence_number: record.sequence_number,
            partition_key: record.partition_key,
            explicit_hash_key: record.explicit_hash_key,
            source,
            // Not read for an undecodable unit: `Unit::arrival_millis` answers from `UndecodableData`.
            arrival_millis: 0,
            sub_sequence: NOT_AGGREGATED,
        },
        data: Data::undecodable(
            &record.decode_error,
            record.data.map(Data::Base64),
            record.arrival_millis,
            arena,
        ),
    }
}

/// Gives the undecodable unit of record `index` the record's JSON text, cut to
/// [`RAW_RECORD_LIMIT`] bytes.
pub(crate) fn attach_raw_record<'b>(
    units: &mut [Unit<'b>],
    index: usize,
    text: &'b str,
    arena: &'b Bump,
) {
    let Ok(at) = units.binary_search_by_key(&index, |unit| unit.record) else { return };
    let Data::Undecodable(undecodable) = units[at].data else { return };
    let mut end = text.len().min(RAW_RECORD_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let raw_record = Some(&text[..end]);
    units[at].data = Data::Undecodable(arena.alloc(UndecodableData { raw_record, ..*undecodable }));
}

impl<'b> Unit<'b> {
    /// A plain unit for tests of the engine: this sequence number (`""`: none valid) and
    /// partition key, empty data.
    #[cfg(test)]
    pub(crate) fn for_test(sequence_number: &'static str, partition_key: &'static str) -> Self {
        Unit {
            record: 0,
            meta: RecordMeta {
                sequence_number: Some(sequence_number).filter(|number| !number.is_empty()),
                partition_key: Some(partition_key),
                explicit_hash_key: None,
                source: &Source::UNKNOWN,
                arrival_millis: 0,
                sub_sequence: NOT_AGGREGATED,
            },
            data: Data::Bytes { bytes: b"", padded: true },
        }
    }

    /// The sequence number that names it in a response; `None` when it has no valid one.
    pub fn checkpoint(&self) -> Option<&'b str> {
        self.meta.sequence_number
    }

    /// When Kinesis accepted it, in milliseconds since 1970, when known.
    pub fn arrival_millis(&self) -> Option<u64> {
        match self.data {
            Data::Undecodable(undecodable) => undecodable.arrival_millis,
            _ => Some(self.meta.arrival_millis),
        }
    }

    /// Its JSON text as received, when it was not a JSON object.
    pub fn raw_record(&self) -> Option<&'b str> {
        match self.data {
            Data::Undecodable(undecodable) => undecodable.raw_record,
            _ => None,
        }
    }

    /// Why it cannot be processed, when it cannot.
    pub fn decode_error(&self) -> Option<&'b str> {
        match self.data {
            Data::Undecodable(undecodable) => Some(undecodable.decode_error),
            _ => None,
        }
    }

    /// How long the record had been in the stream at `now`.
    pub fn age_at(&self, now: SystemTime) -> std::time::Duration {
        now.duration_since(self.meta.approximate_arrival()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked<'b>(shard_id: &'b str, event_source_arn: &'b str) -> Checked<'b> {
        Checked::Valid(ValidRecord {
            sequence_number: "1",
            partition_key: "k",
            explicit_hash_key: None,
            data: "aGk=",
            arrival_millis: 0,
            shard_id: Some(shard_id),
            event_source_arn,
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
        let units = builder.finish();
        let sources: Vec<_> = units.iter().map(|unit| unit.meta.source).collect();
        assert!(std::ptr::eq(sources[0], sources[1]));
        assert!(!std::ptr::eq(sources[1], sources[2]));
        assert!(!std::ptr::eq(sources[2], sources[3]));
        let names: Vec<_> =
            units.iter().map(|u| (u.meta.shard_id(), u.meta.stream_name())).collect();
        assert_eq!(
            names,
            [
                (Some("shardId-1"), "s"),
                (Some("shardId-1"), "s"),
                (Some("shardId-1"), "other"),
                (Some("shardId-2"), "other")
            ]
        );
    }

    #[test]
    fn a_unit_stays_small() {
        // The driver reads every unit after the whole payload is parsed, from memory: its
        // size is bytes fetched per record. 104 bytes since the shard and stream are shared,
        // and what only an undecodable unit or a report with rows needs is kept elsewhere.
        assert_eq!(std::mem::size_of::<Data<'_>>(), 24);
        assert!(std::mem::size_of::<Unit<'_>>() <= 104, "{}", std::mem::size_of::<Unit<'_>>());
    }
}
