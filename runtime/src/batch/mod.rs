//! The batch: an invocation payload read into units, leniently.
//!
//! The payload is parsed once, borrowing every string from it ([`visitors`]); each record
//! is checked as soon as it is parsed ([`record`]) and becomes a unit ([`units`]), KPL
//! aggregates expanded into their user records. A field of the wrong type or a missing
//! field is a fact about that one record, which then fails alone; only a payload that is
//! not a Kinesis batch at all is an invocation error.

pub(crate) mod base64;
mod decoded;
mod raw;
mod record;
mod scan;
#[cfg(test)]
mod tests;
pub(crate) mod units;
mod visitors;

use bumpalo::Bump;
use serde::de::DeserializeSeed;

use crate::error::Error;
use record::{Checked, EventRecord, KINESIS};
pub(crate) use units::Unit;
use visitors::{Document, DocumentSeed, Records};

/// A batch read from its payload: its units in stream order, and what the parse noted.
pub(crate) struct Batch<'b> {
    /// How many elements `Records` held.
    pub records: usize,
    /// The units, KPL aggregates expanded.
    pub units: Vec<Unit<'b>>,
    /// The earliest arrival of a valid record, in milliseconds since 1970: the start of the
    /// iterator age.
    pub oldest_arrival: Option<u64>,
}

/// Reads a payload into a batch, keeping what its units borrow besides the payload
/// (unescaped strings, decoded data, decode errors) in `arena`.
pub(crate) fn read<'b>(payload: &'b [u8], arena: &'b Bump) -> Result<Batch<'b>, Error> {
    let payload = without_byte_order_mark(payload);
    let mut builder = units::Builder::for_payload(payload, arena);
    let parsed = parse(payload, arena, &mut |index, record| builder.push(index, record))?;
    let mut units = builder.finish();
    if !parsed.not_objects.is_empty() {
        for (index, text) in raw::records(payload, &parsed.not_objects) {
            units::attach_raw_record(&mut units, index, text, arena);
        }
    }
    Ok(Batch { records: parsed.records, units, oldest_arrival: parsed.oldest_arrival })
}

/// The payload without the UTF-8 byte-order mark that some tools write before JSON.
fn without_byte_order_mark(payload: &[u8]) -> &[u8] {
    payload.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(payload)
}

/// What parsing an invocation found besides its records, which went to the sink.
pub(crate) struct Parsed {
    /// How many elements `Records` held.
    pub records: usize,
    /// The earliest arrival of a valid record, in milliseconds since 1970.
    pub oldest_arrival: Option<u64>,
    /// The indexes of the records that are not JSON objects.
    pub not_objects: Vec<usize>,
}

/// Where checked records go: called with each record's index in `Records`, in order.
pub(crate) type Sink<'s, 'b> = dyn FnMut(usize, Checked<'b>) + 's;

/// Parses an invocation payload, handing each record to `sink` as soon as it is checked.
/// Fails only when the payload is not a Kinesis batch; the records already handed over
/// then mean nothing. Strings that JSON escapes made differ from the payload are copied
/// into `arena`.
pub(crate) fn parse<'b>(
    payload: &'b [u8],
    arena: &'b Bump,
    sink: &mut Sink<'_, 'b>,
) -> Result<Parsed, Error> {
    let mut collector = Collector {
        sink,
        arena,
        records: 0,
        other_source: None,
        previous_shard: None,
        oldest_arrival: None,
        not_objects: Vec::new(),
        too_many: false,
    };
    let document = parse_document(payload, &mut collector);
    if collector.too_many {
        return Err(Error::InvalidEvent(format!(
            "the payload holds more than {MAX_RECORDS} records, the most Lambda sends in one \
             invocation; none was processed"
        )));
    }
    let document =
        document.map_err(|e| Error::InvalidEvent(format!("the payload is not valid JSON: {e}")))?;
    match document {
        Document::NotAnObject(kind) => Err(Error::InvalidEvent(format!(
            "expected a JSON object with a `Records` array, found {kind}"
        ))),
        Document::Object(Records::Absent) => Err(Error::InvalidEvent(
            "the payload has no `Records` array; a Kinesis batch is \
             `{\"Records\": [{\"kinesis\": {...}, ...}]}`"
                .into(),
        )),
        Document::Object(Records::NotAnArray(kind)) => {
            Err(Error::InvalidEvent(format!("`Records` is {kind}, expected an array")))
        }
        Document::Object(Records::Repeated) => Err(Error::InvalidEvent(
            "the payload has more than one `Records` member; a Kinesis batch has one".into(),
        )),
        // Events of other sources (SQS, SNS, DynamoDB Streams, S3) also have `Records`;
        // their records would all be malformed Kinesis records, so say what they are.
        Document::Object(Records::List) => match collector.other_source {
            Some((index, source)) => Err(Error::InvalidEvent(format!(
                "record {index} comes from `{source}`, not `{KINESIS}`: this function \
                 processes Kinesis batches"
            ))),
            None => Ok(Parsed {
                records: collector.records,
                oldest_arrival: collector.oldest_arrival,
                not_objects: collector.not_objects,
            }),
        },
    }
}

/// The most records an event source mapping sends in one invocation: a payload with more
/// did not come from Lambda, and parsing stops at the record over it.
pub(crate) const MAX_RECORDS: usize = 10_000;

/// How many records a payload of Lambda's holds at most (see [`SMALLEST_RECORD`]), for
/// sizing what is built from them; a list sized with it only grows for smaller records.
pub(crate) fn estimated_records(payload: &[u8]) -> usize {
    payload.len() / SMALLEST_RECORD
}

/// The smallest a Lambda Kinesis record's envelope gets, in bytes: lists of records are
/// sized from the payload's length with it, so that they never grow (and move) while
/// parsing. Capacity that stays unused is address space only; its pages are never touched.
const SMALLEST_RECORD: usize = 400;

fn parse_document<'b>(
    payload: &'b [u8],
    collector: &mut Collector<'_, '_, 'b>,
) -> Result<Document, serde_json::Error> {
    // One UTF-8 check over the whole payload runs word by word over long ASCII stretches;
    // parsing from bytes would instead check every string it borrows, one short string at
    // a time, which was the largest single cost of parsing an envelope. A payload that is
    // not UTF-8 is parsed from bytes, for serde_json's error with its position.
    match std::str::from_utf8(payload) {
        Ok(text) => finish(collector, serde_json::Deserializer::from_str(text)),
        Err(_) => finish(collector, serde_json::Deserializer::from_slice(payload)),
    }
}

fn finish<'b, R: serde_json::de::Read<'b>>(
    collector: &mut Collector<'_, '_, 'b>,
    mut deserializer: serde_json::Deserializer<R>,
) -> Result<Document, serde_json::Error> {
    let document = DocumentSeed(collector).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(document)
}

/// What the parse gathers while it hands records to the sink.
struct Collector<'c, 's, 'b> {
    sink: &'c mut Sink<'s, 'b>,
    arena: &'b Bump,
    /// Records handed over so far.
    records: usize,
    /// The first record from another service: its index and `eventSource`.
    other_source: Option<(usize, String)>,
    /// The previous valid record's shard id.
    previous_shard: Option<&'b str>,
    /// The earliest arrival of a valid record so far.
    oldest_arrival: Option<u64>,
    /// The records so far that are not JSON objects.
    not_objects: Vec<usize>,
    /// Set when `Records` holds more than [`MAX_RECORDS`]: the parse stopped there.
    too_many: bool,
}

impl<'b> Collector<'_, '_, 'b> {
    /// Judges a parsed record and hands it over.
    fn take(&mut self, record: &EventRecord<'b>) {
        let index = self.records;
        self.records += 1;
        if self.other_source.is_none() && record.comes_from_another_service() {
            let source = record.event_source.as_str().unwrap_or_default().to_owned();
            self.other_source = Some((index, source));
        }
        if record.not_an_object.is_some() {
            self.not_objects.push(index);
        }
        let mut checked = record.check();
        if let Checked::Valid(valid) = &mut checked {
            if let Some(shard_id) = &mut valid.shard_id {
                self.share_shard_id(shard_id);
            }
            let arrival = valid.arrival_millis;
            self.oldest_arrival = Some(self.oldest_arrival.map_or(arrival, |old| old.min(arrival)));
        }
        (self.sink)(index, checked);
    }

    /// Points a record's shard id at the previous record's when they are equal, as they
    /// are for every record of a batch from one shard, so that later steps can tell them
    /// the same by address alone.
    fn share_shard_id(&mut self, shard_id: &mut &'b str) {
        match self.previous_shard {
            Some(previous) if previous == *shard_id => *shard_id = previous,
            _ => self.previous_shard = Some(*shard_id),
        }
    }
}
