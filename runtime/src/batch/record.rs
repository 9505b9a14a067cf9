//! Record checks: one element of `Records` as it was parsed, found valid (every field
//! processing needs) or undecodable (why, and each field that is usable).

use super::scan::first_colon;
use crate::sequence;

/// One element of `Records`, checked as soon as it was parsed. Its strings borrow from the
/// payload, or, when JSON escapes made them differ from it, from the parse's arena.
#[derive(Debug)]
pub(crate) enum Checked<'b> {
    /// Every field processing needs is there.
    Valid(ValidRecord<'b>),
    /// The record cannot be processed: why, and whatever its envelope holds.
    Undecodable(UndecodableRecord<'b>),
}

/// A record whose envelope holds everything processing needs.
#[derive(Debug)]
pub(crate) struct ValidRecord<'b> {
    pub sequence_number: &'b str,
    pub partition_key: &'b str,
    pub explicit_hash_key: Option<&'b str>,
    /// The `data` field as sent: base64 text.
    pub data: &'b str,
    /// When Kinesis accepted it, in milliseconds since 1970.
    pub arrival_millis: u64,
    /// `None` when the record has no `eventID`.
    pub shard_id: Option<&'b str>,
    pub event_source_arn: &'b str,
    /// Whether `data` may be a KPL aggregate: it starts as the base64 of the magic bytes.
    pub may_be_aggregate: bool,
}

/// A record that cannot be processed: what is wrong, and each field that is usable.
#[derive(Debug)]
pub(crate) struct UndecodableRecord<'b> {
    pub decode_error: String,
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
pub(super) struct EventRecord<'p> {
    /// `Some(kind)` when the element is not a JSON object at all.
    pub(super) not_an_object: Option<&'static str>,
    pub(super) kinesis: KinesisFields<'p>,
    pub(super) event_source: Field<'p>,
    pub(super) event_source_arn: Field<'p>,
    pub(super) event_id: Field<'p>,
}

/// The first five characters of any base64 text whose bytes open with
/// [`aggregation::MAGIC`](crate::aggregation::MAGIC).
pub(super) const MAGIC_BASE64: &str = "84maw";

/// The `kinesis` member of a record, every field as it came.
#[derive(Default)]
pub(super) struct KinesisFields<'p> {
    /// Whether the member is an object.
    pub(super) shape: Member,
    pub(super) sequence_number: Field<'p>,
    pub(super) partition_key: Field<'p>,
    pub(super) explicit_hash_key: Field<'p>,
    pub(super) data: Field<'p>,
    pub(super) approximate_arrival_timestamp: Field<'p>,
    pub(super) encryption_type: Field<'p>,
    /// Where some sample events (the KPL aggregation library's) put `eventID`.
    pub(super) event_id: Field<'p>,
}

/// Whether a member that must be an object is one.
#[derive(Default, Clone, Copy)]
pub(super) enum Member {
    #[default]
    Absent,
    Object,
    /// Another JSON type, named for error messages.
    Not(&'static str),
}

/// One JSON value, kept only as far as the envelope needs it.
#[derive(Default)]
pub(super) enum Field<'p> {
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
    pub(super) fn as_str(&self) -> Option<&'p str> {
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
    /// `eventID`, at the record's top level as Lambda sends it, or inside `kinesis`.
    fn event_id(&self) -> &Field<'p> {
        match (&self.event_id, &self.kinesis.event_id) {
            (Field::Absent, inner) => inner,
            (outer, _) => outer,
        }
    }

    /// The shard id and sequence number of `eventID` (`shardId-...:sequence`), when it is
    /// shaped so.
    fn event_id_parts(&self) -> Option<(&'p str, &'p str)> {
        let id = self.event_id().as_str()?;
        let colon = first_colon(id.as_bytes())?;
        (colon > 0).then(|| (&id[..colon], &id[colon + 1..]))
    }

    /// The shard id that opens `eventID`, when there is one.
    fn shard_id(&self) -> Option<&'p str> {
        self.event_id_parts().map(|(shard_id, _)| shard_id)
    }

    /// The sequence number, when valid: `kinesis.sequenceNumber`, or for a record without
    /// `kinesis` the one its `eventID` names.
    fn valid_sequence_number(&self) -> Option<&'p str> {
        let named = match self.kinesis.shape {
            Member::Object => self.kinesis.sequence_number.as_str(),
            _ => self.event_id_parts().map(|(_, sequence_number)| sequence_number),
        };
        named.filter(|number| sequence::is_valid(number))
    }

    /// The arrival time, when the field is a valid timestamp.
    fn arrival_millis(&self) -> Option<u64> {
        match self.kinesis.approximate_arrival_timestamp {
            Field::Number(seconds) => arrival_time(seconds),
            _ => None,
        }
    }

    /// Whether `eventSource` names another service.
    pub(super) fn comes_from_another_service(&self) -> bool {
        self.event_source.as_str().is_some_and(|source| source != KINESIS)
    }

    /// Judges the record: every field processing needs, or the first reason it cannot be
    /// processed with whatever fields are usable.
    pub(super) fn check(&self) -> Checked<'p> {
        match self.validate() {
            Ok(checked) => Checked::Valid(checked),
            Err(decode_error) => Checked::Undecodable(self.undecodable(decode_error)),
        }
    }

    /// Every field that processing needs, or the first reason the record cannot be
    /// processed.
    fn validate(&self) -> Result<ValidRecord<'p>, String> {
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
        let shard_id = match self.event_id() {
            Field::Absent => None,
            Field::Str(event_id) => Some(self.shard_id().ok_or_else(|| {
                format!("`eventID` {event_id:?} does not name a shard (`shardId-...:sequence`)")
            })?),
            other => return Err(format!("`eventID` is {}, expected a string", other.describe())),
        };
        Ok(ValidRecord {
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

    /// An undecodable record: why, and each field that is usable as it is.
    fn undecodable(&self, decode_error: String) -> UndecodableRecord<'p> {
        let kinesis = &self.kinesis;
        UndecodableRecord {
            decode_error,
            sequence_number: self.valid_sequence_number(),
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

/// The `eventSource` of Kinesis records.
pub(super) const KINESIS: &str = "aws:kinesis";

/// Epoch seconds with a fraction (`1607497475.5` is 500 ms past the second), in the
/// milliseconds since 1970 that Kinesis records.
fn arrival_time(seconds: f64) -> Option<u64> {
    let millis = (seconds * 1000.0).round();
    (0.0..1e17).contains(&millis).then_some(millis as u64)
}
