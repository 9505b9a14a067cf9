//! The lenient Kinesis event model.
//!
//! The invocation payload is parsed once, borrowing every string from it, record by
//! record: each record's fields are kept as they came, judged as soon as the record is
//! parsed, and handed to a sink as a [`Judged`] record. A field of the wrong type or a
//! missing field is not a parse error but a fact about that one record, which then fails
//! alone (it becomes a decode failure of that record). Only a payload that is not a Kinesis
//! batch at all is an invocation error.
//!
//! No list of parsed records is kept: one scratch record is reused for every element of
//! `Records`, and the sink builds what the engine needs from it while its bytes are still
//! in cache. A list of them (304 bytes a record) was written, read back to build work
//! units and read again to free it: three passes over memory per record.

use std::fmt;
use std::marker::PhantomData;

use bumpalo::Bump;
use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::error::Error;
use crate::report::{self, Copied};
use crate::sequence;

/// What parsing an invocation found besides its records, which went to the sink.
pub(crate) struct Parsed {
    /// How many elements `Records` held.
    pub records: usize,
    /// The start of the report's text: what was copied for it while parsing ([`Copied`]).
    pub text: String,
    /// Where each record's strings are in `text`, by index in `Records`; empty when
    /// nothing was copied.
    pub copied: Vec<Copied>,
    /// The earliest arrival of a valid record, in milliseconds since 1970: the iterator
    /// age's start, noted while each record is in cache so that the end of the batch need
    /// not read every unit again.
    pub oldest_arrival: Option<u64>,
}

/// One element of `Records`, judged as soon as it was parsed. Its strings borrow from the
/// payload, or, when JSON escapes made them differ from it, from the parse's arena.
#[derive(Debug)]
pub(crate) enum Judged<'b> {
    /// Every field processing needs is there.
    Valid(CheckedRecord<'b>),
    /// The record cannot be processed: why, and whatever its envelope holds.
    Broken(BrokenRecord<'b>),
}

/// A record whose envelope holds everything processing needs.
#[derive(Debug)]
pub(crate) struct CheckedRecord<'b> {
    pub sequence_number: &'b str,
    pub partition_key: &'b str,
    pub explicit_hash_key: Option<&'b str>,
    /// The `data` field as sent: base64 text.
    pub data: &'b str,
    /// When Kinesis accepted it, in milliseconds since 1970.
    pub arrival_millis: u64,
    pub shard_id: &'b str,
    pub event_source_arn: &'b str,
    /// Whether `data` may be a KPL aggregate: it starts as the base64 of the magic bytes.
    pub may_be_aggregate: bool,
}

/// A record that cannot be processed: what is wrong, and each field that is usable.
#[derive(Debug)]
pub(crate) struct BrokenRecord<'b> {
    pub problem: String,
    /// The sequence number, when it is a valid one.
    pub sequence_number: Option<&'b str>,
    pub partition_key: Option<&'b str>,
    pub explicit_hash_key: Option<&'b str>,
    pub data: Option<&'b str>,
    /// In milliseconds since 1970.
    pub arrival_millis: Option<u64>,
    pub shard_id: Option<&'b str>,
    pub event_source_arn: Option<&'b str>,
}

/// One element of `Records` while it is parsed, every field as it came.
#[derive(Default)]
struct EventRecord<'p> {
    /// `Some(kind)` when the element is not a JSON object at all.
    not_an_object: Option<&'static str>,
    kinesis: KinesisFields<'p>,
    event_source: Field<'p>,
    event_source_arn: Field<'p>,
    event_id: Field<'p>,
}

/// The first five characters of any base64 text whose bytes open with
/// [`aggregation::MAGIC`](crate::aggregation::MAGIC).
const MAGIC_BASE64: &str = "84maw";

/// The `kinesis` member of a record, every field as it came.
#[derive(Default)]
struct KinesisFields<'p> {
    /// Whether the member is an object.
    shape: Member,
    sequence_number: Field<'p>,
    partition_key: Field<'p>,
    explicit_hash_key: Field<'p>,
    data: Field<'p>,
    approximate_arrival_timestamp: Field<'p>,
    encryption_type: Field<'p>,
}

/// Whether a member that must be an object is one.
#[derive(Default, Clone, Copy)]
enum Member {
    #[default]
    Absent,
    Object,
    /// Another JSON type, named for error messages.
    Not(&'static str),
}

/// One JSON value, kept only as far as the envelope needs it.
#[derive(Default)]
enum Field<'p> {
    #[default]
    Absent,
    Null,
    /// Borrowed from the payload, or unescaped into the parse's arena.
    Str(&'p str),
    Number(f64),
    /// Another JSON type, named for error messages ("an object", "a boolean", ...).
    Other(&'static str),
}

impl<'p> Field<'p> {
    fn as_str(&self) -> Option<&'p str> {
        match self {
            Field::Str(text) => Some(text),
            _ => None,
        }
    }

    /// What the field is, for messages: "missing", "null", "a string", ...
    fn describe(&self) -> &'static str {
        match self {
            Field::Absent => "missing",
            Field::Null => "null",
            Field::Str(_) => "a string",
            Field::Number(_) => "a number",
            Field::Other(kind) => kind,
        }
    }

    /// The field as a required string, or a message saying what is wrong with it.
    fn required_str(&self, name: &str) -> Result<&'p str, String> {
        self.as_str().ok_or_else(|| match self {
            Field::Absent => format!("`{name}` is missing"),
            other => format!("`{name}` is {}, expected a string", other.describe()),
        })
    }
}

impl<'p> EventRecord<'p> {
    /// The shard id that opens `eventID` (`shardId-...:sequence`), when there is one.
    fn shard_id(&self) -> Option<&'p str> {
        let id = self.event_id.as_str()?;
        let colon = first_colon(id.as_bytes())?;
        (colon > 0).then(|| &id[..colon])
    }

    /// The arrival time, when the field is a valid timestamp.
    fn arrival_millis(&self) -> Option<u64> {
        match self.kinesis.approximate_arrival_timestamp {
            Field::Number(seconds) => arrival_time(seconds),
            _ => None,
        }
    }

    /// Whether `eventSource` names another service.
    fn comes_from_another_service(&self) -> bool {
        self.event_source.as_str().is_some_and(|source| source != KINESIS)
    }

    /// Judges the record: every field processing needs, or the first reason it cannot be
    /// processed with whatever fields are usable.
    fn judge(&self) -> Judged<'p> {
        match self.check() {
            Ok(checked) => Judged::Valid(checked),
            Err(problem) => Judged::Broken(self.broken(problem)),
        }
    }

    /// Every field that processing needs, or the first reason the record cannot be
    /// processed.
    fn check(&self) -> Result<CheckedRecord<'p>, String> {
        if let Some(kind) = self.not_an_object {
            return Err(format!("the record is {kind}, expected an object"));
        }
        match self.kinesis.shape {
            Member::Object => {}
            Member::Absent => return Err("`kinesis` is missing".into()),
            Member::Not(kind) => return Err(format!("`kinesis` is {kind}, expected an object")),
        }
        let sequence_number =
            self.kinesis.sequence_number.required_str("kinesis.sequenceNumber")?;
        if !sequence::is_valid(sequence_number) {
            return Err(format!(
                "`kinesis.sequenceNumber` {sequence_number:?} is not a decimal number"
            ));
        }
        let partition_key = self.kinesis.partition_key.required_str("kinesis.partitionKey")?;
        let explicit_hash_key = match &self.kinesis.explicit_hash_key {
            Field::Absent | Field::Null => None,
            Field::Str(key) => Some(*key),
            other => {
                return Err(format!(
                    "`kinesis.explicitHashKey` is {}, expected a string",
                    other.describe()
                ))
            }
        };
        self.check_encryption_type()?;
        let data = self.kinesis.data.required_str("kinesis.data")?;
        let arrival_millis = self.checked_arrival()?;
        let event_source_arn = self.event_source_arn.required_str("eventSourceARN")?;
        let event_id = self.event_id.as_str().ok_or_else(|| match &self.event_id {
            Field::Absent => "`eventID` is missing".to_owned(),
            other => format!("`eventID` is {}, expected a string", other.describe()),
        })?;
        let shard_id = self.shard_id().ok_or_else(|| {
            format!("`eventID` {event_id:?} does not name a shard (`shardId-...:sequence`)")
        })?;
        Ok(CheckedRecord {
            sequence_number,
            partition_key,
            explicit_hash_key,
            data,
            arrival_millis,
            shard_id,
            event_source_arn,
            may_be_aggregate: data.starts_with(MAGIC_BASE64),
        })
    }

    /// A broken record: the problem, and each field that is usable as it is.
    fn broken(&self, problem: String) -> BrokenRecord<'p> {
        let kinesis = &self.kinesis;
        BrokenRecord {
            problem,
            sequence_number: kinesis
                .sequence_number
                .as_str()
                .filter(|number| sequence::is_valid(number)),
            partition_key: kinesis.partition_key.as_str(),
            explicit_hash_key: kinesis.explicit_hash_key.as_str(),
            data: kinesis.data.as_str(),
            arrival_millis: self.arrival_millis(),
            shard_id: self.shard_id(),
            event_source_arn: self.event_source_arn.as_str(),
        }
    }

    fn check_encryption_type(&self) -> Result<(), String> {
        match &self.kinesis.encryption_type {
            // Lambda hands server-side encrypted records over decrypted, marked `KMS`.
            Field::Absent | Field::Null => Ok(()),
            Field::Str(kind) if *kind == "NONE" || *kind == "KMS" => Ok(()),
            Field::Str(kind) => Err(format!(
                "unknown `kinesis.encryptionType` {kind:?} (expected \"NONE\" or \"KMS\")"
            )),
            other => {
                Err(format!("`kinesis.encryptionType` is {}, expected a string", other.describe()))
            }
        }
    }

    fn checked_arrival(&self) -> Result<u64, String> {
        const NAME: &str = "kinesis.approximateArrivalTimestamp";
        match &self.kinesis.approximate_arrival_timestamp {
            Field::Number(seconds) => arrival_time(*seconds)
                .ok_or_else(|| format!("`{NAME}` {seconds} is not a time since 1970")),
            Field::Absent => Err(format!("`{NAME}` is missing")),
            other => Err(format!("`{NAME}` is {}, expected a number", other.describe())),
        }
    }
}

/// Where the first `:` is, eight bytes at a time: in an `eventID` it comes after about twenty
/// (`shardId-000000000006:...`), and searching byte by byte was a sixth of judging a record
/// (callgrind, 120 instructions a record).
fn first_colon(bytes: &[u8]) -> Option<usize> {
    const COLONS: u64 = 0x3a3a_3a3a_3a3a_3a3a;
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    for (index, word) in (&mut words).enumerate() {
        // A byte of `word ^ COLONS` is zero where `word` holds a colon; the lowest byte
        // flagged by the zero-byte test is the first such byte (flags above a zero byte
        // may be false, flags below one never are).
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ COLONS;
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(index * 8 + zeros.trailing_zeros() as usize / 8);
        }
    }
    let rest = words.remainder();
    let at = rest.iter().position(|&byte| byte == b':')?;
    Some(bytes.len() - rest.len() + at)
}

/// The `eventSource` of Kinesis records.
const KINESIS: &str = "aws:kinesis";

/// Epoch seconds with a fraction (`1607497475.5` is 500 ms past the second), in the
/// milliseconds since 1970 that Kinesis records.
fn arrival_time(seconds: f64) -> Option<u64> {
    let millis = (seconds * 1000.0).round();
    (0.0..1e17).contains(&millis).then_some(millis as u64)
}

/// Where judged records go: called with each record's index in `Records`, in order.
pub(crate) type Sink<'s, 'b> = dyn FnMut(usize, Judged<'b>) + 's;

/// Parses an invocation payload, handing each record to `sink` as soon as it is judged.
/// Fails only when the payload is not a Kinesis batch; the records already handed over
/// then mean nothing. Strings that JSON escapes made differ from the payload are copied
/// into `arena`; with `copy_for_report`, valid records' strings also go to the report's
/// text ([`Copied`]).
pub(crate) fn parse<'b>(
    payload: &'b [u8],
    arena: &'b Bump,
    copy_for_report: bool,
    sink: &mut Sink<'_, 'b>,
) -> Result<Parsed, Error> {
    let records = if copy_for_report { estimated_records(payload) } else { 0 };
    let mut collector = Collector {
        sink,
        arena,
        copy_for_report,
        text: String::with_capacity(records * COPIED_PER_RECORD),
        copied: Vec::with_capacity(records),
        records: 0,
        other_source: None,
        previous_shard: None,
        oldest_arrival: None,
    };
    let document = parse_document(payload, &mut collector)
        .map_err(|e| Error::InvalidEvent(format!("the payload is not valid JSON: {e}")))?;
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
                text: collector.text,
                copied: collector.copied,
                oldest_arrival: collector.oldest_arrival,
            }),
        },
    }
}

/// How many records a payload of Lambda's holds at most (see [`SMALLEST_RECORD`]), for
/// sizing what is built from them; a list sized with it only grows for smaller records.
pub(crate) fn estimated_records(payload: &[u8]) -> usize {
    payload.len() / SMALLEST_RECORD
}

/// The smallest a Lambda Kinesis record's envelope gets, in bytes: lists of records are
/// sized from the payload's length with it, so that they never grow (and move) while
/// parsing. Capacity that stays unused is address space only; its pages are never touched.
const SMALLEST_RECORD: usize = 400;

/// About what [`EventRecord::judge`] copies per record for the report: a 56-digit sequence
/// number and a partition key. The text grows if records need more.
const COPIED_PER_RECORD: usize = 80;

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
    /// Whether the report keeps a row per record, and so its text.
    copy_for_report: bool,
    /// The report's text (see [`Copied`]).
    text: String,
    /// Where each record's strings are in `text`.
    copied: Vec<Copied>,
    /// Records handed over so far.
    records: usize,
    /// The first record from another service: its index and `eventSource`.
    other_source: Option<(usize, String)>,
    /// The previous valid record's shard id.
    previous_shard: Option<&'b str>,
    /// The earliest arrival of a valid record so far.
    oldest_arrival: Option<u64>,
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
        let mut judged = record.judge();
        if self.copy_for_report {
            self.copy_strings(&judged);
        }
        if let Judged::Valid(checked) = &mut judged {
            self.share_shard_id(&mut checked.shard_id);
            let arrival = checked.arrival_millis;
            self.oldest_arrival = Some(self.oldest_arrival.map_or(arrival, |old| old.min(arrival)));
        }
        (self.sink)(index, judged);
    }

    /// Copies a valid record's sequence number and partition key to the report's text while
    /// they are in cache. The report copies a broken record's itself, from its unit.
    fn copy_strings(&mut self, judged: &Judged<'b>) {
        let copied = match judged {
            Judged::Valid(checked) => Copied::both(
                report::push(&mut self.text, checked.sequence_number),
                report::push(&mut self.text, checked.partition_key),
            ),
            Judged::Broken(_) => Copied::default(),
        };
        self.copied.push(copied);
    }

    /// Points a record's shard id at the previous record's when they are equal, as they
    /// are for every record of a batch from one shard: the report then stores it once by
    /// recognizing the same slice, without reading the text again (see `report::Repeated`).
    fn share_shard_id(&mut self, shard_id: &mut &'b str) {
        match self.previous_shard {
            Some(previous) if previous == *shard_id => *shard_id = previous,
            _ => self.previous_shard = Some(*shard_id),
        }
    }
}

// ---- serde plumbing: a single pass over the payload, borrowing strings -------------------

enum Document {
    NotAnObject(&'static str),
    /// An object, and what its `Records` member is.
    Object(Records),
}

/// Maps an object key to one of a fixed set of names, without allocating.
trait KeySet: Sized {
    fn from_name(name: &str) -> Self;
}

struct Key<K>(K);

impl<'de, K: KeySet> Deserialize<'de> for Key<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<K>(PhantomData<K>);
        impl<K: KeySet> Visitor<'_> for KeyVisitor<K> {
            type Value = Key<K>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key<K>, E> {
                Ok(Key(K::from_name(name)))
            }
        }
        deserializer.deserialize_identifier(KeyVisitor(PhantomData))
    }
}

enum DocumentKey {
    Records,
    Other,
}

impl KeySet for DocumentKey {
    fn from_name(name: &str) -> Self {
        match name {
            "Records" => DocumentKey::Records,
            _ => DocumentKey::Other,
        }
    }
}

enum RecordKey {
    Kinesis,
    EventSource,
    EventSourceArn,
    EventId,
    Other,
}

impl KeySet for RecordKey {
    fn from_name(name: &str) -> Self {
        match name {
            "kinesis" => RecordKey::Kinesis,
            // SNS spells it with a capital E; both say where the record came from.
            "eventSource" | "EventSource" => RecordKey::EventSource,
            "eventSourceARN" => RecordKey::EventSourceArn,
            "eventID" => RecordKey::EventId,
            _ => RecordKey::Other,
        }
    }
}

enum KinesisKey {
    SequenceNumber,
    PartitionKey,
    ExplicitHashKey,
    Data,
    ApproximateArrivalTimestamp,
    EncryptionType,
    Other,
}

impl KeySet for KinesisKey {
    fn from_name(name: &str) -> Self {
        match name {
            "sequenceNumber" => KinesisKey::SequenceNumber,
            "partitionKey" => KinesisKey::PartitionKey,
            "explicitHashKey" => KinesisKey::ExplicitHashKey,
            "data" => KinesisKey::Data,
            "approximateArrivalTimestamp" => KinesisKey::ApproximateArrivalTimestamp,
            "encryptionType" => KinesisKey::EncryptionType,
            _ => KinesisKey::Other,
        }
    }
}

/// Skips the rest of a map or sequence, so that a value of an unexpected type is recorded
/// rather than failing the parse.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the scalar half of a visitor: every JSON type other than objects (and, for
/// some, arrays) is mapped to a value of the visitor's type.
macro_rules! scalars_as {
    ($value:ty, |$kind:ident| $wrap:expr) => {
        scalars_as!($value, |_this, $kind| $wrap);
    };
    ($value:ty, |$this:ident, $kind:ident| $wrap:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            let $kind = "a boolean";
            let $this = self;
            Ok($wrap)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            let $kind = "a number";
            let $this = self;
            Ok($wrap)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$value, E> {
            let $kind = "a number";
            let $this = self;
            Ok($wrap)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            let $kind = "a number";
            let $this = self;
            Ok($wrap)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<$value, E> {
            let $kind = "a string";
            let $this = self;
            Ok($wrap)
        }
        fn visit_unit<E: de::Error>(self) -> Result<$value, E> {
            let $kind = "null";
            let $this = self;
            Ok($wrap)
        }
    };
}

/// Deserializes a [`Document`], handing its records to the collector.
struct DocumentSeed<'r, 'c, 's, 'b>(&'r mut Collector<'c, 's, 'b>);

impl<'de: 'b, 'b> DeserializeSeed<'de> for DocumentSeed<'_, '_, '_, 'b> {
    type Value = Document;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Document, D::Error> {
        struct DocumentVisitor<'r, 'c, 's, 'b>(&'r mut Collector<'c, 's, 'b>);
        impl<'de: 'b, 'b> Visitor<'de> for DocumentVisitor<'_, '_, '_, 'b> {
            type Value = Document;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kinesis event")
            }
            scalars_as!(Document, |kind| Document::NotAnObject(kind));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq)?;
                Ok(Document::NotAnObject("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut records = Records::Absent;
                while let Some(Key(key)) = map.next_key::<Key<DocumentKey>>()? {
                    match key {
                        // The records of the first `Records` already went to the sink, so
                        // a second one cannot replace it as JSON parsers would: the
                        // payload is refused instead of processed twice over.
                        DocumentKey::Records if !matches!(records, Records::Absent) => {
                            map.next_value::<IgnoredAny>()?;
                            records = Records::Repeated;
                        }
                        DocumentKey::Records => {
                            records = map.next_value_seed(RecordsSeed(&mut *self.0))?
                        }
                        DocumentKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Document::Object(records))
            }
        }
        deserializer.deserialize_any(DocumentVisitor(self.0))
    }
}

/// What the `Records` member of the payload is.
enum Records {
    Absent,
    NotAnArray(&'static str),
    /// An array, whose records went to the collector.
    List,
    /// More than one `Records` member.
    Repeated,
}

/// Deserializes [`Records`], handing each record to the collector.
struct RecordsSeed<'r, 'c, 's, 'b>(&'r mut Collector<'c, 's, 'b>);

impl<'de: 'b, 'b> DeserializeSeed<'de> for RecordsSeed<'_, '_, '_, 'b> {
    type Value = Records;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Records, D::Error> {
        struct RecordsVisitor<'r, 'c, 's, 'b>(&'r mut Collector<'c, 's, 'b>);
        impl<'de: 'b, 'b> Visitor<'de> for RecordsVisitor<'_, '_, '_, 'b> {
            type Value = Records;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of records")
            }
            scalars_as!(Records, |kind| Records::NotAnArray(kind));
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)?;
                Ok(Records::NotAnArray("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // One record is parsed at a time, into the same place, while still in cache.
                let mut scratch = EventRecord::default();
                while seq.next_element_seed(RecordInto(&mut scratch, self.0.arena))?.is_some() {
                    self.0.take(&scratch);
                }
                Ok(Records::List)
            }
        }
        deserializer.deserialize_any(RecordsVisitor(self.0))
    }
}

/// Deserializes one record in place, over whatever the previous one left. Returned by
/// value instead, each record (a few hundred bytes) was copied through every layer of the
/// deserializer: 7% of the time on a batch of small records.
struct RecordInto<'r, 'b>(&'r mut EventRecord<'b>, &'b Bump);

impl<'de: 'b, 'b> DeserializeSeed<'de> for RecordInto<'_, 'b> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        struct RecordVisitor<'r, 'b>(&'r mut EventRecord<'b>, &'b Bump);
        impl<'de: 'b, 'b> Visitor<'de> for RecordVisitor<'_, 'b> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kinesis record")
            }
            scalars_as!((), |this, kind| this.0.not_an_object = Some(kind));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
                drain_seq(seq)?;
                self.0.not_an_object = Some("an array");
                Ok(())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                let RecordVisitor(record, arena) = self;
                while let Some(Key(key)) = map.next_key::<Key<RecordKey>>()? {
                    let slot = match key {
                        RecordKey::Kinesis => {
                            map.next_value_seed(KinesisInto(&mut record.kinesis, arena))?;
                            continue;
                        }
                        RecordKey::EventSource => &mut record.event_source,
                        RecordKey::EventSourceArn => &mut record.event_source_arn,
                        RecordKey::EventId => &mut record.event_id,
                        RecordKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value_seed(FieldSeed(arena))?;
                }
                Ok(())
            }
        }
        // Its fields only borrow, so this overwrites them without freeing anything.
        *self.0 = EventRecord::default();
        deserializer.deserialize_any(RecordVisitor(self.0, self.1))
    }
}

/// Deserializes the `kinesis` member of a record in place.
struct KinesisInto<'r, 'b>(&'r mut KinesisFields<'b>, &'b Bump);

impl<'de: 'b, 'b> DeserializeSeed<'de> for KinesisInto<'_, 'b> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        struct KinesisVisitor<'r, 'b>(&'r mut KinesisFields<'b>, &'b Bump);
        impl<'de: 'b, 'b> Visitor<'de> for KinesisVisitor<'_, 'b> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the `kinesis` member of a record")
            }
            scalars_as!((), |this, kind| this.0.shape = Member::Not(kind));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
                drain_seq(seq)?;
                self.0.shape = Member::Not("an array");
                Ok(())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                let KinesisVisitor(fields, arena) = self;
                fields.shape = Member::Object;
                while let Some(Key(key)) = map.next_key::<Key<KinesisKey>>()? {
                    let slot = match key {
                        KinesisKey::SequenceNumber => &mut fields.sequence_number,
                        KinesisKey::PartitionKey => &mut fields.partition_key,
                        KinesisKey::ExplicitHashKey => &mut fields.explicit_hash_key,
                        KinesisKey::Data => &mut fields.data,
                        KinesisKey::ApproximateArrivalTimestamp => {
                            &mut fields.approximate_arrival_timestamp
                        }
                        KinesisKey::EncryptionType => &mut fields.encryption_type,
                        KinesisKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value_seed(FieldSeed(arena))?;
                }
                Ok(())
            }
        }
        // A repeated `kinesis` member replaces the earlier one whole, as JSON parsers do.
        *self.0 = KinesisFields::default();
        deserializer.deserialize_any(KinesisVisitor(self.0, self.1))
    }
}

/// Deserializes a [`Field`]: a string borrows from the payload, or, when JSON escapes make
/// it differ from the payload's text (rare), is unescaped into the arena. Either way it
/// lives as long as the batch, and a parsed record owns nothing to free.
struct FieldSeed<'b>(&'b Bump);

impl<'de: 'b, 'b> DeserializeSeed<'de> for FieldSeed<'b> {
    type Value = Field<'b>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Field<'b>, D::Error> {
        struct FieldVisitor<'b>(&'b Bump);
        impl<'de: 'b, 'b> Visitor<'de> for FieldVisitor<'b> {
            type Value = Field<'b>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Field::Str(text))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Field::Str(self.0.alloc_str(text)))
            }
            fn visit_f64<E: de::Error>(self, number: f64) -> Result<Self::Value, E> {
                Ok(Field::Number(number))
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Self::Value, E> {
                Ok(Field::Number(number as f64))
            }
            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Self::Value, E> {
                Ok(Field::Number(number as f64))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Field::Other("a boolean"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Field::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)?;
                Ok(Field::Other("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq)?;
                Ok(Field::Other("an array"))
            }
        }
        deserializer.deserialize_any(FieldVisitor(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, Just};

    fn record(kinesis: &str) -> String {
        format!(
            r#"{{"Records":[{{"kinesis":{kinesis},"eventSource":"aws:kinesis",
            "eventID":"shardId-000000000006:1","eventSourceARN":"arn:aws:kinesis:us-east-1:1:stream/s"}}]}}"#
        )
    }

    const GOOD: &str = r#"{"sequenceNumber":"1","partitionKey":"k","data":"aGk=","approximateArrivalTimestamp":1607497475.5}"#;

    /// Parses a payload, keeping every record the sink is handed, in order.
    fn parse_all<'b>(
        payload: &'b [u8],
        arena: &'b Bump,
    ) -> Result<(Parsed, Vec<Judged<'b>>), Error> {
        let mut records = Vec::new();
        let parsed = parse(payload, arena, true, &mut |index, record| {
            assert_eq!(index, records.len(), "records are handed over in order");
            records.push(record);
        })?;
        assert_eq!(parsed.records, records.len());
        Ok((parsed, records))
    }

    fn valid<'r, 'b>(record: &'r Judged<'b>) -> &'r CheckedRecord<'b> {
        match record {
            Judged::Valid(checked) => checked,
            Judged::Broken(broken) => panic!("a broken record: {}", broken.problem),
        }
    }

    fn broken<'r, 'b>(record: &'r Judged<'b>) -> &'r BrokenRecord<'b> {
        match record {
            Judged::Broken(broken) => broken,
            Judged::Valid(checked) => panic!("a valid record: {checked:?}"),
        }
    }

    #[test]
    fn the_oldest_arrival_is_that_of_the_earliest_valid_record() {
        let record = |arrival: &str, data: &str| {
            format!(
                r#"{{"kinesis":{{"sequenceNumber":"1","partitionKey":"k",{data}
                "approximateArrivalTimestamp":{arrival}}},"eventSource":"aws:kinesis",
                "eventID":"shardId-000000000006:1","eventSourceARN":"arn:aws:kinesis:us-east-1:1:stream/s"}}"#
            )
        };
        let payload = format!(
            r#"{{"Records":[{},{},{},{}]}}"#,
            record("1607497475.5", r#""data":"aGk=","#),
            record("1607490000.25", r#""data":"aGk=","#),
            // Older still, but without data: broken, so it is not counted.
            record("1500000000", ""),
            record("1607499999", r#""data":"aGk=","#),
        );
        let arena = Bump::new();
        let (parsed, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        assert_eq!(records.iter().filter(|r| matches!(r, Judged::Valid(_))).count(), 3);
        assert_eq!(parsed.oldest_arrival, Some(1_607_490_000_250));

        let none_valid = format!(r#"{{"Records":[{}]}}"#, record("1500000000", ""));
        let (parsed, _) = parse_all(none_valid.as_bytes(), &arena).unwrap();
        assert_eq!(parsed.oldest_arrival, None);
    }

    #[test]
    fn a_good_record_checks_out_with_every_field() {
        let (payload, arena) = (record(GOOD), Bump::new());
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        let checked = valid(&records[0]);
        assert_eq!(checked.sequence_number, "1");
        assert_eq!(checked.partition_key, "k");
        assert_eq!(checked.data, "aGk=");
        assert_eq!(checked.shard_id, "shardId-000000000006");
        assert_eq!(checked.explicit_hash_key, None);
        assert_eq!(checked.event_source_arn, "arn:aws:kinesis:us-east-1:1:stream/s");
        assert!(!checked.may_be_aggregate);
    }

    #[test]
    fn fractional_arrival_seconds_are_milliseconds() {
        let (payload, arena) = (record(GOOD), Bump::new());
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        assert_eq!(valid(&records[0]).arrival_millis, 1_607_497_475_500);
    }

    proptest::proptest! {
        #[test]
        fn the_first_colon_is_found_wherever_it_is(bytes in proptest::collection::vec(
            proptest::prop_oneof![Just(b':'), Just(b';'), any::<u8>()], 0..40)) {
            let expected = bytes.iter().position(|&byte| byte == b':');
            proptest::prop_assert_eq!(first_colon(&bytes), expected);
        }
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let payload = record(
            r#"{"sequenceNumber":"1","partitionKey":"a\/b","data":"aGk=","approximateArrivalTimestamp":1}"#,
        );
        let arena = Bump::new();
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        let checked = valid(&records[0]);
        let in_payload = |text: &str| payload.as_bytes().as_ptr_range().contains(&text.as_ptr());
        assert!(in_payload(checked.data) && in_payload(checked.shard_id));
        assert_eq!(checked.partition_key, "a/b");
        assert!(!in_payload(checked.partition_key), "the unescaped key is in the arena");
        assert!(arena.allocated_bytes() > 0);

        // Nothing is copied when nothing is escaped.
        let (payload, arena) = (record(GOOD), Bump::new());
        parse_all(payload.as_bytes(), &arena).unwrap();
        assert_eq!(arena.allocated_bytes(), 0);
    }

    #[test]
    fn each_wrong_field_fails_its_record_with_a_message_naming_it() {
        let cases = [
            (
                r#"{"partitionKey":"k","data":"","approximateArrivalTimestamp":1}"#,
                "`kinesis.sequenceNumber` is missing",
            ),
            (
                r#"{"sequenceNumber":5,"partitionKey":"k","data":"","approximateArrivalTimestamp":1}"#,
                "`kinesis.sequenceNumber` is a number, expected a string",
            ),
            (
                r#"{"sequenceNumber":"x1","partitionKey":"k","data":"","approximateArrivalTimestamp":1}"#,
                "is not a decimal number",
            ),
            (
                r#"{"sequenceNumber":"1","partitionKey":[],"data":"","approximateArrivalTimestamp":1}"#,
                "`kinesis.partitionKey` is an array",
            ),
            (
                r#"{"sequenceNumber":"1","partitionKey":"k","data":null,"approximateArrivalTimestamp":1}"#,
                "`kinesis.data` is null",
            ),
            (
                r#"{"sequenceNumber":"1","partitionKey":"k","data":"","approximateArrivalTimestamp":"1"}"#,
                "is a string, expected a number",
            ),
            (
                r#"{"sequenceNumber":"1","partitionKey":"k","data":"","approximateArrivalTimestamp":-5}"#,
                "is not a time since 1970",
            ),
            (
                r#"{"sequenceNumber":"1","partitionKey":"k","data":"","approximateArrivalTimestamp":1,"encryptionType":"ROT13"}"#,
                "unknown `kinesis.encryptionType` \"ROT13\"",
            ),
            (
                r#"{"sequenceNumber":"1","partitionKey":"k","data":"","approximateArrivalTimestamp":1,"explicitHashKey":{}}"#,
                "`kinesis.explicitHashKey` is an object",
            ),
            ("true", "`kinesis` is a boolean"),
            ("null", "`kinesis` is null"),
        ];
        for (kinesis, expected) in cases {
            let (payload, arena) = (record(kinesis), Bump::new());
            let (_, records) = parse_all(payload.as_bytes(), &arena).expect(kinesis);
            let problem = &broken(&records[0]).problem;
            assert!(problem.contains(expected), "{kinesis}: {problem}");
        }
    }

    #[test]
    fn an_event_id_that_names_no_shard_fails_its_record() {
        for (event_id, expected) in [
            (r#""eventID":"shardId-000000000006:1","#, "`eventID` is missing"),
            (r#""eventID":7,"#, "`eventID` is a number, expected a string"),
            (r#""eventID":"no-colon","#, "`eventID` \"no-colon\" does not name a shard"),
            (r#""eventID":":1","#, "`eventID` \":1\" does not name a shard"),
        ] {
            let payload = record(GOOD).replace(r#""eventID":"shardId-000000000006:1","#, "");
            let payload = match expected {
                "`eventID` is missing" => payload,
                _ => payload.replace(r#""eventSource""#, &format!(r#"{event_id}"eventSource""#)),
            };
            let arena = Bump::new();
            let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
            let problem = &broken(&records[0]).problem;
            assert!(problem.contains(expected), "{event_id}: {problem}");
        }
    }

    #[test]
    fn a_broken_record_keeps_each_usable_field() {
        let kinesis = r#"{"sequenceNumber":"12","partitionKey":"\u006b","data":"aGk=","approximateArrivalTimestamp":1,"encryptionType":"ROT13"}"#;
        let (payload, arena) = (record(kinesis), Bump::new());
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        let kept = broken(&records[0]);
        assert!(kept.problem.contains("encryptionType"), "{}", kept.problem);
        assert_eq!(kept.sequence_number, Some("12"));
        assert_eq!(kept.partition_key, Some("k"));
        assert_eq!(kept.data, Some("aGk="));
        assert_eq!(kept.shard_id, Some("shardId-000000000006"));
        assert_eq!(kept.arrival_millis, Some(1000));

        // A sequence number that is not one is not kept: it must not name a checkpoint.
        let (payload, arena) = (record(&kinesis.replace("\"12\"", "\"1x\"")), Bump::new());
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        assert_eq!(broken(&records[0]).sequence_number, None);
    }

    #[test]
    fn kms_and_none_encryption_types_are_accepted() {
        for kind in ["\"NONE\"", "\"KMS\"", "null"] {
            let kinesis = GOOD.replace('}', &format!(",\"encryptionType\":{kind}}}"));
            let (payload, arena) = (record(&kinesis), Bump::new());
            let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
            valid(&records[0]);
        }
    }

    #[test]
    fn a_record_that_is_not_an_object_fails_alone() {
        let payload = format!(r#"{{"Records":[7,{}]}}"#, &record(GOOD)[12..record(GOOD).len() - 2]);
        let arena = Bump::new();
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        assert_eq!(records.len(), 2);
        assert!(broken(&records[0]).problem.contains("is a number"));
        valid(&records[1]);
    }

    #[test]
    fn a_record_after_one_that_is_not_an_object_starts_afresh() {
        // The scratch record is reused: nothing of the element before may leak into it.
        let one = &record(GOOD)[12..record(GOOD).len() - 2];
        let payload = format!(r#"{{"Records":[{one},[1],{{"kinesis":{{}}}}]}}"#);
        let arena = Bump::new();
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        valid(&records[0]);
        assert_eq!(broken(&records[1]).problem, "the record is an array, expected an object");
        let last = broken(&records[2]);
        assert_eq!(last.problem, "`kinesis.sequenceNumber` is missing");
        assert_eq!((last.partition_key, last.shard_id, last.event_source_arn), (None, None, None));
    }

    #[test]
    fn payloads_that_are_not_kinesis_batches_are_invocation_errors() {
        let cases = [
            (&b"not json"[..], "not valid JSON"),
            (b"[1,2]", "found an array"),
            (b"{}", "no `Records` array"),
            (b"{\"Records\":{}}", "`Records` is an object"),
            (
                b"{\"Records\":[{\"eventSource\":\"aws:sqs\",\"body\":\"x\"}]}",
                "record 0 comes from `aws:sqs`",
            ),
            (b"{\"Records\":[{\"EventSource\":\"aws:sns\"}]}", "`aws:sns`"),
            (b"{\"Records\":[{},{\"eventSource\":\"aws:s3\"}]}", "record 1 comes from `aws:s3`"),
            (b"{\"Records\":[{}]} x", "not valid JSON"),
            (b"{\"Records\":[{}],\"Records\":[{}]}", "more than one `Records` member"),
            (b"{\"Records\":[{}],\"Records\":7}", "more than one `Records` member"),
            (b"{\"Records\":7,\"Records\":[{}]}", "more than one `Records` member"),
        ];
        for (payload, expected) in cases {
            let err = parse_all(payload, &Bump::new()).err().expect("an error");
            assert!(matches!(err, Error::InvalidEvent(_)));
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn a_payload_that_is_not_utf8_is_an_invocation_error_with_its_position() {
        let mut payload = record(GOOD).into_bytes();
        let at = payload.iter().position(|b| *b == b'k').unwrap();
        payload[at] = 0xff;
        let err = parse_all(&payload, &Bump::new()).err().expect("an error");
        assert!(matches!(err, Error::InvalidEvent(_)));
        assert!(err.to_string().contains("not valid JSON") && err.to_string().contains("line 1"));
    }

    #[test]
    fn escaped_strings_are_unescaped_when_parsed_from_text() {
        let payload = record(
            r#"{"sequenceNumber":"1","partitionKey":"\u00e9t\u00e9","data":"aGk=","approximateArrivalTimestamp":1}"#,
        );
        let arena = Bump::new();
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        assert_eq!(valid(&records[0]).partition_key, "été");
    }

    #[test]
    fn an_escaped_event_id_still_names_its_shard() {
        let payload = record(GOOD).replace("shardId-", "shardId\\u002d");
        assert!(payload.contains("\\u002d"));
        let arena = Bump::new();
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        assert_eq!(valid(&records[0]).shard_id, "shardId-000000000006");
    }

    #[test]
    fn what_is_copied_for_the_report_is_each_valid_records_text() {
        let escaped = GOOD.replace("\"k\"", "\"\\u006b\"");
        let one = |kinesis: &str| record(kinesis)[12..record(kinesis).len() - 2].to_owned();
        let payload = format!(r#"{{"Records":[{},{},{}]}}"#, one(GOOD), one("7"), one(&escaped));
        let arena = Bump::new();
        let (parsed, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        for index in [0, 2] {
            let checked = valid(&records[index]);
            let copied = parsed.copied[index];
            assert_eq!(copied.sequence_number().unwrap().of(&parsed.text), checked.sequence_number);
            assert_eq!(copied.partition_key().unwrap().of(&parsed.text), "k");
        }
        broken(&records[1]);
        let nothing = parsed.copied[1];
        assert_eq!((nothing.sequence_number(), nothing.partition_key()), (None, None));
    }

    #[test]
    fn nothing_is_copied_for_a_report_without_rows() {
        let (payload, arena) = (record(GOOD), Bump::new());
        let mut records = Vec::new();
        let parsed = parse(payload.as_bytes(), &arena, false, &mut |_, record| {
            records.push(record);
        })
        .unwrap();
        assert!(parsed.text.is_empty());
        assert!(parsed.copied.is_empty());
        valid(&records[0]);
    }

    #[test]
    fn aggregates_are_spotted_by_their_base64_magic() {
        let aggregate = GOOD.replace("aGk=", "84mawgo=");
        for (kinesis, expected) in [(GOOD, false), (&*aggregate, true)] {
            let (payload, arena) = (record(kinesis), Bump::new());
            let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
            assert_eq!(valid(&records[0]).may_be_aggregate, expected);
        }
    }

    #[test]
    fn a_repeated_kinesis_member_replaces_the_earlier_one_whole() {
        let kinesis = format!(r#"{GOOD},"kinesis":{{"partitionKey":"later"}}"#);
        let (payload, arena) = (record(&kinesis), Bump::new());
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        let last = broken(&records[0]);
        assert_eq!(last.problem, "`kinesis.sequenceNumber` is missing");
        assert_eq!(last.partition_key, Some("later"));
    }

    #[test]
    fn records_of_one_shard_share_one_shard_id_slice() {
        let one = &record(GOOD)[12..record(GOOD).len() - 2];
        let other = one.replace("shardId-000000000006", "shardId-000000000007");
        let payload = format!(r#"{{"Records":[{one},{one},{other},{one}]}}"#);
        let arena = Bump::new();
        let (_, records) = parse_all(payload.as_bytes(), &arena).unwrap();
        let shards: Vec<&str> = records.iter().map(|r| valid(r).shard_id).collect();
        assert_eq!(
            shards,
            [
                "shardId-000000000006",
                "shardId-000000000006",
                "shardId-000000000007",
                "shardId-000000000006"
            ]
        );
        assert!(std::ptr::eq(shards[0], shards[1]), "equal shard ids are one slice");
    }

    #[test]
    fn an_empty_records_array_is_an_empty_batch() {
        let arena = Bump::new();
        let (parsed, records) = parse_all(b"{\"Records\":[]}", &arena).unwrap();
        assert!(records.is_empty());
        assert_eq!(parsed.records, 0);
    }
}
