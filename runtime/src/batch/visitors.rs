//! The serde visitors: one pass over the payload, borrowing strings, handing each record
//! to the [`Collector`] as soon as it is parsed.

use std::fmt;
use std::marker::PhantomData;

use bumpalo::Bump;
use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use super::record::{EventRecord, Field, KinesisFields, Member};
use super::{Collector, MAX_RECORDS};

pub(super) enum Document {
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
    EventId,
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
            "eventID" => KinesisKey::EventId,
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
pub(super) struct DocumentSeed<'r, 'c, 's, 'b>(pub(super) &'r mut Collector<'c, 's, 'b>);

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
pub(super) enum Records {
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
                    if self.0.records == MAX_RECORDS {
                        self.0.too_many = true;
                        return Err(de::Error::custom("more records than Lambda sends"));
                    }
                    self.0.take(&scratch);
                }
                Ok(Records::List)
            }
        }
        deserializer.deserialize_any(RecordsVisitor(self.0))
    }
}

/// Deserializes one record in place, over whatever the previous one left, so that a record
/// (a few hundred bytes) is not copied through every layer of the deserializer.
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
                        KinesisKey::EventId => &mut fields.event_id,
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
