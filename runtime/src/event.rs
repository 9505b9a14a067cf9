//! The lenient Kinesis event model.
//!
//! The invocation payload is parsed once, borrowing every string from it, into records
//! whose fields are kept as they came: a field of the wrong type or a missing field is not
//! a parse error but a fact about that one record, which then fails alone (it becomes a
//! decode failure of that record). Only a payload that is not a Kinesis batch at all is an
//! invocation error.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::error::Error;
use crate::report::{self, Copied};
use crate::sequence;

/// A parsed invocation: the records in the order Lambda sent them.
pub(crate) struct Batch<'p> {
    pub records: Vec<EventRecord<'p>>,
    /// The start of the report's text: what was copied for it while parsing ([`Copied`]).
    pub text: String,
}

/// One element of `Records`, every field as it came.
#[derive(Default)]
pub(crate) struct EventRecord<'p> {
    /// `Some(kind)` when the element is not a JSON object at all.
    not_an_object: Option<&'static str>,
    kinesis: KinesisFields<'p>,
    event_source: Field<'p>,
    event_source_arn: Field<'p>,
    event_id: Field<'p>,
    /// What the record's checks found, worked out as soon as it is parsed (see [`Verdict`]).
    verdict: Verdict<'p>,
    /// Whether `data` may be a KPL aggregate, also seen at parse time.
    may_be_aggregate: bool,
    /// Whether `eventSource` names another service, also seen at parse time.
    from_other_source: bool,
}

/// What checking a record found, worked out right after parsing it, while its bytes are
/// still in cache. Reading them again once the whole payload is parsed costs a trip to
/// memory per field for a batch of megabytes: profiled on the 5,000 x 400-byte benchmark
/// batch, the first byte of each sequence number read after parsing took 5% of the time.
#[derive(Default)]
enum Verdict<'p> {
    /// Not judged (the parser judges every record): `check` reads the fields themselves.
    #[default]
    Unjudged,
    Valid(Facts<'p>),
    /// Why the record cannot be processed.
    Broken(String),
}

/// What a valid record's fields say beyond their text.
struct Facts<'p> {
    approximate_arrival: SystemTime,
    /// The shard id that opens `eventID`, cut out while parsing: cutting it later would
    /// read the text again (to find a character boundary).
    shard_id: Cow<'p, str>,
    copied: Copied,
}

/// A record whose envelope holds everything processing needs.
#[derive(Debug)]
pub(crate) struct CheckedRecord<'r> {
    pub sequence_number: &'r str,
    pub partition_key: &'r str,
    pub explicit_hash_key: Option<&'r str>,
    /// The `data` field as sent: base64 text.
    pub data: &'r str,
    pub approximate_arrival: SystemTime,
    pub shard_id: &'r str,
    pub event_source_arn: &'r str,
    /// Its sequence number and partition key in the report's text, when already copied.
    pub copied: Copied,
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
    Str(Cow<'p, str>),
    Number(f64),
    /// Another JSON type, named for error messages ("an object", "a boolean", ...).
    Other(&'static str),
}

impl<'p> Field<'p> {
    fn as_str(&self) -> Option<&str> {
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
    fn required_str(&self, name: &str) -> Result<&str, String> {
        self.as_str().ok_or_else(|| match self {
            Field::Absent => format!("`{name}` is missing"),
            other => format!("`{name}` is {}, expected a string", other.describe()),
        })
    }
}

impl<'p> EventRecord<'p> {
    /// The record's sequence number, when it has a valid one: the checkpoint that names it.
    pub fn sequence_number(&self) -> Option<&str> {
        self.kinesis.sequence_number.as_str().filter(|s| sequence::is_valid(s))
    }

    /// The partition key, when it is a string.
    pub fn partition_key(&self) -> Option<&str> {
        self.kinesis.partition_key.as_str()
    }

    /// The explicit hash key, when it is a string.
    pub fn explicit_hash_key(&self) -> Option<&str> {
        self.kinesis.explicit_hash_key.as_str()
    }

    /// The `data` field as sent, when it is a string.
    pub fn data(&self) -> Option<&str> {
        self.kinesis.data.as_str()
    }

    /// Whether the data may be a KPL aggregate: it is a string that starts as the base64
    /// of the aggregate's magic bytes does.
    pub fn may_be_aggregate(&self) -> bool {
        self.may_be_aggregate
    }

    /// The stream ARN, when it is a string.
    pub fn event_source_arn(&self) -> Option<&str> {
        self.event_source_arn.as_str()
    }

    /// The shard id named in `eventID` (`shardId-...:sequence`), when there is one.
    pub fn shard_id(&self) -> Option<&str> {
        let id = self.event_id.as_str()?;
        let (shard, _) = id.split_once(':')?;
        (!shard.is_empty()).then_some(shard)
    }

    /// The arrival time, when the field is a valid timestamp.
    pub fn approximate_arrival(&self) -> Option<SystemTime> {
        match self.kinesis.approximate_arrival_timestamp {
            Field::Number(seconds) => arrival_time(seconds),
            _ => None,
        }
    }

    /// The `eventSource`, when it is a string.
    fn event_source(&self) -> Option<&str> {
        self.event_source.as_str()
    }

    /// Every field that processing needs, or the first reason the record cannot be
    /// processed, from the verdict reached when the record was parsed.
    pub fn check(&self) -> Result<CheckedRecord<'_>, String> {
        let facts = match &self.verdict {
            Verdict::Valid(facts) => facts,
            Verdict::Broken(problem) => return Err(problem.clone()),
            Verdict::Unjudged => return self.check_fields(),
        };
        Ok(CheckedRecord {
            sequence_number: judged_str(&self.kinesis.sequence_number),
            partition_key: judged_str(&self.kinesis.partition_key),
            explicit_hash_key: self.explicit_hash_key(),
            data: judged_str(&self.kinesis.data),
            approximate_arrival: facts.approximate_arrival,
            shard_id: &facts.shard_id,
            event_source_arn: judged_str(&self.event_source_arn),
            copied: facts.copied,
        })
    }

    /// Reaches the record's verdict; called once, as soon as the record is parsed. A valid
    /// record's sequence number and partition key are copied to `text` for the report.
    fn judge(&mut self, text: &mut String) {
        self.may_be_aggregate = self.data().is_some_and(|text| text.starts_with(MAGIC_BASE64));
        self.from_other_source = self.event_source().is_some_and(|source| source != KINESIS);
        self.verdict = match self.check_fields() {
            Ok(checked) => Verdict::Valid(Facts {
                copied: Copied {
                    sequence_number: Some(report::push(text, checked.sequence_number)),
                    partition_key: Some(report::push(text, checked.partition_key)),
                },
                approximate_arrival: checked.approximate_arrival,
                shard_id: match &self.event_id {
                    Field::Str(Cow::Borrowed(id)) => Cow::Borrowed(&id[..checked.shard_id.len()]),
                    _ => Cow::Owned(checked.shard_id.to_owned()),
                },
            }),
            Err(problem) => Verdict::Broken(problem),
        };
    }

    /// Points this record's shard id at the previous record's when they are equal, as they
    /// are for every record of a batch from one shard: the report then stores it once by
    /// recognizing the same slice, without reading the text again (see `report::Repeated`).
    fn share_shard_id(&mut self, previous: &EventRecord<'p>) {
        if let (Verdict::Valid(facts), Verdict::Valid(earlier)) =
            (&mut self.verdict, &previous.verdict)
        {
            if let (Cow::Borrowed(own), Cow::Borrowed(shared)) =
                (&facts.shard_id, &earlier.shard_id)
            {
                if own == shared {
                    facts.shard_id = Cow::Borrowed(shared);
                }
            }
        }
    }

    /// A record that is not a JSON object at all.
    fn not_an_object(kind: &'static str) -> Self {
        EventRecord { not_an_object: Some(kind), ..EventRecord::default() }
    }

    /// [`check`](Self::check) from the fields themselves.
    fn check_fields(&self) -> Result<CheckedRecord<'_>, String> {
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
            Field::Str(key) => Some(&**key),
            other => {
                return Err(format!(
                    "`kinesis.explicitHashKey` is {}, expected a string",
                    other.describe()
                ))
            }
        };
        self.check_encryption_type()?;
        let data = self.kinesis.data.required_str("kinesis.data")?;
        let approximate_arrival = self.checked_arrival()?;
        let event_source_arn = self.event_source_arn.required_str("eventSourceARN")?;
        let event_id = self.event_id.required_str("eventID")?;
        let shard_id = self.shard_id().ok_or_else(|| {
            format!("`eventID` {event_id:?} does not name a shard (`shardId-...:sequence`)")
        })?;
        Ok(CheckedRecord {
            sequence_number,
            partition_key,
            explicit_hash_key,
            data,
            approximate_arrival,
            shard_id,
            event_source_arn,
            copied: Copied::default(),
        })
    }

    fn check_encryption_type(&self) -> Result<(), String> {
        match &self.kinesis.encryption_type {
            // Lambda hands server-side encrypted records over decrypted, marked `KMS`.
            Field::Absent | Field::Null => Ok(()),
            Field::Str(kind) if kind == "NONE" || kind == "KMS" => Ok(()),
            Field::Str(kind) => Err(format!(
                "unknown `kinesis.encryptionType` {kind:?} (expected \"NONE\" or \"KMS\")"
            )),
            other => {
                Err(format!("`kinesis.encryptionType` is {}, expected a string", other.describe()))
            }
        }
    }

    fn checked_arrival(&self) -> Result<SystemTime, String> {
        const NAME: &str = "kinesis.approximateArrivalTimestamp";
        match &self.kinesis.approximate_arrival_timestamp {
            Field::Number(seconds) => arrival_time(*seconds)
                .ok_or_else(|| format!("`{NAME}` {seconds} is not a time since 1970")),
            Field::Absent => Err(format!("`{NAME}` is missing")),
            other => Err(format!("`{NAME}` is {}, expected a number", other.describe())),
        }
    }
}

/// The text of a field that the record's verdict found to be a string: only where it is
/// is read, not its bytes.
fn judged_str<'r>(field: &'r Field<'_>) -> &'r str {
    field.as_str().unwrap_or_default()
}

/// The `eventSource` of Kinesis records.
const KINESIS: &str = "aws:kinesis";

/// Epoch seconds with a fraction (`1607497475.5` is 500 ms past the second), to the
/// millisecond that Kinesis records.
fn arrival_time(seconds: f64) -> Option<SystemTime> {
    let millis = (seconds * 1000.0).round();
    (0.0..1e17).contains(&millis).then(|| UNIX_EPOCH + Duration::from_millis(millis as u64))
}

/// Parses an invocation payload. Fails only when the payload is not a Kinesis batch.
pub(crate) fn parse(payload: &[u8]) -> Result<Batch<'_>, Error> {
    let document = parse_document(payload)
        .map_err(|e| Error::InvalidEvent(format!("the payload is not valid JSON: {e}")))?;
    let (records, text) = match document {
        Document::NotAnObject(kind) => {
            return Err(Error::InvalidEvent(format!(
                "expected a JSON object with a `Records` array, found {kind}"
            )))
        }
        Document::Object(Field::Absent) => {
            return Err(Error::InvalidEvent(
                "the payload has no `Records` array; a Kinesis batch is \
                 `{\"Records\": [{\"kinesis\": {...}, ...}]}`"
                    .into(),
            ))
        }
        Document::Object(other) => {
            return Err(Error::InvalidEvent(format!(
                "`Records` is {}, expected an array",
                other.describe()
            )))
        }
        Document::Records(records, text) => (records, text),
    };
    reject_other_sources(&records)?;
    Ok(Batch { records, text })
}

/// The smallest a Lambda Kinesis record's envelope gets, in bytes: the record list is
/// sized from the payload's length with it, so that it never grows (and moves) while
/// parsing. Capacity that stays unused is address space only; its pages are never touched.
const SMALLEST_RECORD: usize = 400;

/// About what [`EventRecord::judge`] copies per record for the report: a 56-digit sequence
/// number and a partition key. The text grows if records need more.
const COPIED_PER_RECORD: usize = 80;

fn parse_document(payload: &[u8]) -> Result<Document<'_>, serde_json::Error> {
    let seed = DocumentSeed { records: payload.len() / SMALLEST_RECORD };
    // One UTF-8 check over the whole payload runs word by word over long ASCII stretches;
    // parsing from bytes would instead check every string it borrows, one short string at
    // a time, which was the largest single cost of parsing an envelope. A payload that is
    // not UTF-8 is parsed from bytes, for serde_json's error with its position.
    match std::str::from_utf8(payload) {
        Ok(text) => finish(seed, serde_json::Deserializer::from_str(text)),
        Err(_) => finish(seed, serde_json::Deserializer::from_slice(payload)),
    }
}

fn finish<'p, R: serde_json::de::Read<'p>>(
    seed: DocumentSeed,
    mut deserializer: serde_json::Deserializer<R>,
) -> Result<Document<'p>, serde_json::Error> {
    let document = seed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(document)
}

/// Events of other sources (SQS, SNS, DynamoDB Streams, S3) also have `Records`; their
/// records would all be malformed Kinesis records, so say what they are instead.
fn reject_other_sources(records: &[EventRecord<'_>]) -> Result<(), Error> {
    let Some((index, record)) = records.iter().enumerate().find(|(_, r)| r.from_other_source)
    else {
        return Ok(());
    };
    let source = record.event_source().unwrap_or_default();
    Err(Error::InvalidEvent(format!(
        "record {index} comes from `{source}`, not `{KINESIS}`: this function processes \
         Kinesis batches"
    )))
}

// ---- serde plumbing: a single pass over the payload, borrowing strings -------------------

enum Document<'p> {
    NotAnObject(&'static str),
    /// An object whose `Records` member is absent or not an array.
    Object(Field<'p>),
    Records(Vec<EventRecord<'p>>, String),
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

/// Deserializes a [`Document`], sizing its record list for about `records` records.
struct DocumentSeed {
    records: usize,
}

impl<'de> DeserializeSeed<'de> for DocumentSeed {
    type Value = Document<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Document<'de>, D::Error> {
        struct DocumentVisitor(usize);
        impl<'de> Visitor<'de> for DocumentVisitor {
            type Value = Document<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kinesis event")
            }
            scalars_as!(Document<'de>, |kind| Document::NotAnObject(kind));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq)?;
                Ok(Document::NotAnObject("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut records = Records::Absent;
                while let Some(Key(key)) = map.next_key::<Key<DocumentKey>>()? {
                    match key {
                        DocumentKey::Records => {
                            records = map.next_value_seed(RecordsSeed(self.0))?
                        }
                        DocumentKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(match records {
                    Records::Absent => Document::Object(Field::Absent),
                    Records::NotAnArray(kind) => Document::Object(Field::Other(kind)),
                    Records::List(list, text) => Document::Records(list, text),
                })
            }
        }
        deserializer.deserialize_any(DocumentVisitor(self.records))
    }
}

enum Records<'p> {
    Absent,
    NotAnArray(&'static str),
    List(Vec<EventRecord<'p>>, String),
}

/// Deserializes [`Records`] into a list with room for the given number of records.
struct RecordsSeed(usize);

impl<'de> DeserializeSeed<'de> for RecordsSeed {
    type Value = Records<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Records<'de>, D::Error> {
        struct RecordsVisitor(usize);
        impl<'de> Visitor<'de> for RecordsVisitor {
            type Value = Records<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of records")
            }
            scalars_as!(Records<'de>, |kind| Records::NotAnArray(kind));
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)?;
                Ok(Records::NotAnArray("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let records = seq.size_hint().unwrap_or(self.0);
                let mut list = Vec::with_capacity(records);
                let mut text = String::with_capacity(records * COPIED_PER_RECORD);
                while seq
                    .next_element_seed(RecordInto { list: &mut list, text: &mut text })?
                    .is_some()
                {}
                Ok(Records::List(list, text))
            }
        }
        deserializer.deserialize_any(RecordsVisitor(self.0))
    }
}

/// Deserializes one record straight into the end of the record list. Records are built
/// where they stay: returned by value instead, each (a few hundred bytes) was copied
/// through every layer of the deserializer, 7% of the time on a batch of small records.
struct RecordInto<'l, 'p> {
    list: &'l mut Vec<EventRecord<'p>>,
    /// The report's text, where [`EventRecord::judge`] copies what the report needs.
    text: &'l mut String,
}

impl<'de> DeserializeSeed<'de> for RecordInto<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        struct RecordVisitor<'r, 'p>(&'r mut EventRecord<'p>);
        impl<'de> Visitor<'de> for RecordVisitor<'_, 'de> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kinesis record")
            }
            scalars_as!((), |this, kind| *this.0 = EventRecord::not_an_object(kind));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
                drain_seq(seq)?;
                *self.0 = EventRecord::not_an_object("an array");
                Ok(())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                let record = self.0;
                while let Some(Key(key)) = map.next_key::<Key<RecordKey>>()? {
                    match key {
                        RecordKey::Kinesis => {
                            map.next_value_seed(KinesisInto(&mut record.kinesis))?
                        }
                        RecordKey::EventSource => record.event_source = map.next_value()?,
                        RecordKey::EventSourceArn => record.event_source_arn = map.next_value()?,
                        RecordKey::EventId => record.event_id = map.next_value()?,
                        RecordKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(())
            }
        }
        let RecordInto { list, text } = self;
        list.push(EventRecord::default());
        let record = list.last_mut().expect("just pushed");
        deserializer.deserialize_any(RecordVisitor(record))?;
        record.judge(text);
        if let [.., previous, record] = &mut list[..] {
            record.share_shard_id(previous);
        }
        Ok(())
    }
}

/// Deserializes the `kinesis` member of a record in place.
struct KinesisInto<'r, 'p>(&'r mut KinesisFields<'p>);

impl<'de> DeserializeSeed<'de> for KinesisInto<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        struct KinesisVisitor<'r, 'p>(&'r mut KinesisFields<'p>);
        impl<'de> Visitor<'de> for KinesisVisitor<'_, 'de> {
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
                let fields = self.0;
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
                    *slot = map.next_value()?;
                }
                Ok(())
            }
        }
        // A repeated `kinesis` member replaces the earlier one whole, as JSON parsers do.
        *self.0 = KinesisFields::default();
        deserializer.deserialize_any(KinesisVisitor(self.0))
    }
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(text)))
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
        deserializer.deserialize_any(FieldVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kinesis: &str) -> String {
        format!(
            r#"{{"Records":[{{"kinesis":{kinesis},"eventSource":"aws:kinesis",
            "eventID":"shardId-000000000006:1","eventSourceARN":"arn:aws:kinesis:us-east-1:1:stream/s"}}]}}"#
        )
    }

    const GOOD: &str = r#"{"sequenceNumber":"1","partitionKey":"k","data":"aGk=","approximateArrivalTimestamp":1607497475.5}"#;

    #[test]
    fn a_good_record_checks_out_with_every_field() {
        let payload = record(GOOD);
        let batch = parse(payload.as_bytes()).unwrap();
        let checked = batch.records[0].check().unwrap();
        assert_eq!(checked.sequence_number, "1");
        assert_eq!(checked.partition_key, "k");
        assert_eq!(checked.data, "aGk=");
        assert_eq!(checked.shard_id, "shardId-000000000006");
        assert_eq!(checked.explicit_hash_key, None);
        assert_eq!(checked.event_source_arn, "arn:aws:kinesis:us-east-1:1:stream/s");
    }

    #[test]
    fn fractional_arrival_seconds_are_milliseconds() {
        let payload = record(GOOD);
        let batch = parse(payload.as_bytes()).unwrap();
        let arrival = batch.records[0].check().unwrap().approximate_arrival;
        let since = arrival.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(since, Duration::from_millis(1_607_497_475_500));
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let payload = record(
            r#"{"sequenceNumber":"1","partitionKey":"a\/b","data":"aGk=","approximateArrivalTimestamp":1}"#,
        );
        let batch = parse(payload.as_bytes()).unwrap();
        assert!(matches!(batch.records[0].kinesis.data, Field::Str(Cow::Borrowed(_))));
        assert_eq!(batch.records[0].check().unwrap().partition_key, "a/b");
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
            let payload = record(kinesis);
            let batch = parse(payload.as_bytes()).expect(kinesis);
            let problem = batch.records[0].check().expect_err(kinesis);
            assert!(problem.contains(expected), "{kinesis}: {problem}");
        }
    }

    #[test]
    fn kms_and_none_encryption_types_are_accepted() {
        for kind in ["\"NONE\"", "\"KMS\"", "null"] {
            let kinesis = GOOD.replace('}', &format!(",\"encryptionType\":{kind}}}"));
            let payload = record(&kinesis);
            assert!(parse(payload.as_bytes()).unwrap().records[0].check().is_ok(), "{kind}");
        }
    }

    #[test]
    fn a_record_that_is_not_an_object_fails_alone() {
        let payload = format!(r#"{{"Records":[7,{}]}}"#, &record(GOOD)[12..record(GOOD).len() - 2]);
        let batch = parse(payload.as_bytes()).unwrap();
        assert_eq!(batch.records.len(), 2);
        assert!(batch.records[0].check().unwrap_err().contains("is a number"));
        assert!(batch.records[1].check().is_ok());
    }

    #[test]
    fn payloads_that_are_not_kinesis_batches_are_invocation_errors() {
        let cases = [
            (&b"not json"[..], "not valid JSON"),
            (b"[1,2]", "found an array"),
            (b"{}", "no `Records` array"),
            (b"{\"Records\":{}}", "`Records` is an object"),
            (b"{\"Records\":[{\"eventSource\":\"aws:sqs\",\"body\":\"x\"}]}", "`aws:sqs`"),
            (b"{\"Records\":[{\"EventSource\":\"aws:sns\"}]}", "`aws:sns`"),
        ];
        for (payload, expected) in cases {
            let err = parse(payload).err().expect("an error");
            assert!(matches!(err, Error::InvalidEvent(_)));
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn a_payload_that_is_not_utf8_is_an_invocation_error_with_its_position() {
        let mut payload = record(GOOD).into_bytes();
        let at = payload.iter().position(|b| *b == b'k').unwrap();
        payload[at] = 0xff;
        let err = parse(&payload).err().expect("an error");
        assert!(matches!(err, Error::InvalidEvent(_)));
        assert!(err.to_string().contains("not valid JSON") && err.to_string().contains("line 1"));
    }

    #[test]
    fn escaped_strings_are_unescaped_when_parsed_from_text() {
        let payload = record(
            r#"{"sequenceNumber":"1","partitionKey":"été","data":"aGk=","approximateArrivalTimestamp":1}"#,
        );
        let batch = parse(payload.as_bytes()).unwrap();
        assert_eq!(batch.records[0].check().unwrap().partition_key, "été");
    }

    #[test]
    fn an_escaped_event_id_still_names_its_shard() {
        let payload = record(GOOD).replace("shardId-", "shardId\\u002d");
        assert!(payload.contains("\\u002d"));
        let batch = parse(payload.as_bytes()).unwrap();
        assert_eq!(batch.records[0].check().unwrap().shard_id, "shardId-000000000006");
    }

    #[test]
    fn the_verdict_reached_while_parsing_is_what_the_fields_say() {
        let escaped = GOOD.replace("\"k\"", "\"\\u006b\"");
        let broken = GOOD.replace("\"1\"", "\"x\"");
        for kinesis in [GOOD, &escaped, &broken, "7"] {
            let payload = record(kinesis);
            let batch = parse(payload.as_bytes()).unwrap();
            let record = &batch.records[0];
            assert!(!matches!(record.verdict, Verdict::Unjudged), "{kinesis}");
            let mut judged = record.check();
            if let Ok(checked) = &mut judged {
                // What was copied for the report is the fields' text.
                let copied = std::mem::take(&mut checked.copied);
                assert_eq!(
                    copied.sequence_number.unwrap().of(&batch.text),
                    checked.sequence_number
                );
                assert_eq!(copied.partition_key.unwrap().of(&batch.text), checked.partition_key);
            }
            assert_eq!(format!("{judged:?}"), format!("{:?}", record.check_fields()), "{kinesis}");
        }
    }

    #[test]
    fn aggregates_are_spotted_by_their_base64_magic_even_in_broken_records() {
        let aggregate = GOOD.replace("aGk=", "84mawgo=");
        let broken_aggregate = aggregate.replace("\"1\"", "\"x\"");
        for (kinesis, expected) in [(GOOD, false), (&*aggregate, true), (&broken_aggregate, true)] {
            let payload = record(kinesis);
            assert_eq!(parse(payload.as_bytes()).unwrap().records[0].may_be_aggregate(), expected);
        }
    }

    #[test]
    fn a_repeated_kinesis_member_replaces_the_earlier_one_whole() {
        let kinesis = format!(r#"{GOOD},"kinesis":{{"partitionKey":"later"}}"#);
        let payload = record(&kinesis);
        let batch = parse(payload.as_bytes()).unwrap();
        let problem = batch.records[0].check().unwrap_err();
        assert_eq!(problem, "`kinesis.sequenceNumber` is missing");
        assert_eq!(batch.records[0].partition_key(), Some("later"));
    }

    #[test]
    fn records_of_one_shard_share_one_shard_id_slice() {
        let one = &record(GOOD)[12..record(GOOD).len() - 2];
        let other = one.replace("shardId-000000000006", "shardId-000000000007");
        let payload = format!(r#"{{"Records":[{one},{one},{other}]}}"#);
        let batch = parse(payload.as_bytes()).unwrap();
        let shards: Vec<&str> = batch.records.iter().map(|r| r.check().unwrap().shard_id).collect();
        assert_eq!(
            shards,
            ["shardId-000000000006", "shardId-000000000006", "shardId-000000000007"]
        );
        assert!(std::ptr::eq(shards[0], shards[1]), "equal shard ids are one slice");
    }

    #[test]
    fn an_empty_records_array_is_an_empty_batch() {
        assert!(parse(b"{\"Records\":[]}").unwrap().records.is_empty());
    }
}
