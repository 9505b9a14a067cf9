//! [`RecordMeta`]: where a record sits in the stream, handed to the processing function.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The coordinates of one record: where it sits in the stream and when it arrived.
///
/// A processing function receives it by reference when it asks for it:
///
/// ```
/// use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
///
/// #[kinesis_processor(format = text)]
/// async fn audit(line: String, meta: &RecordMeta) -> Result<(), RecordError> {
///     println!("{} {}: {line}", meta.stream_name(), meta.sequence_number());
///     Ok(())
/// }
/// # let _ = audit();
/// ```
///
/// It borrows from the invocation's payload, so building it costs no allocation; copy what
/// must outlive the call.
#[derive(Clone)]
pub struct RecordMeta<'a> {
    /// `None` only for an undecodable record without a valid one.
    pub(crate) sequence_number: Option<&'a str>,
    /// `None` only for an undecodable record without one.
    pub(crate) partition_key: Option<&'a str>,
    pub(crate) explicit_hash_key: Option<&'a str>,
    /// Where it was read from, shared by the records of a shard.
    pub(crate) source: &'a Source<'a>,
    /// Milliseconds since 1970 (Kinesis records no finer).
    pub(crate) arrival_millis: u64,
    /// Its position in its KPL aggregate, or [`NOT_AGGREGATED`].
    pub(crate) sub_sequence: u32,
}

/// The shard and stream of records. A batch comes from one shard, so its records share
/// one: a work unit then holds a pointer rather than two strings, which keeps the units of
/// a large batch a quarter smaller (they are read from memory once per record).
#[derive(Debug)]
pub(crate) struct Source<'a> {
    /// `None` when the record's `eventID` did not name one.
    pub shard_id: Option<&'a str>,
    /// `None` only for an undecodable record without one.
    pub event_source_arn: Option<&'a str>,
}

impl Source<'_> {
    /// The source of a record whose envelope named none.
    pub(crate) const UNKNOWN: Source<'static> = Source { shard_id: None, event_source_arn: None };
}

/// [`RecordMeta::sub_sequence`] of a plain record. An aggregate holds at most a megabyte,
/// far fewer user records than this.
pub(crate) const NOT_AGGREGATED: u32 = u32::MAX;

impl<'a> RecordMeta<'a> {
    /// The Kinesis sequence number (a decimal string of about 56 digits). For a user
    /// record of a KPL aggregate, the sequence number of the Kinesis record that carried it.
    pub fn sequence_number(&self) -> &'a str {
        // Every record the function is called with has one.
        self.sequence_number.unwrap_or_default()
    }

    /// The 0-based position of a user record inside its KPL aggregate; `None` for a plain
    /// record.
    pub fn sub_sequence_number(&self) -> Option<u64> {
        (self.sub_sequence != NOT_AGGREGATED).then_some(u64::from(self.sub_sequence))
    }

    /// The partition key (for a user record of an aggregate, the user record's own key).
    pub fn partition_key(&self) -> &'a str {
        // Every record the function is called with has one.
        self.partition_key.unwrap_or_default()
    }

    /// The explicit hash key, when the producer set one.
    pub fn explicit_hash_key(&self) -> Option<&'a str> {
        self.explicit_hash_key
    }

    /// The shard the record was read from, e.g. `shardId-000000000006`, as the record's
    /// `eventID` (`shardId-...:sequence`) names it. Lambda's events always carry it; `None`
    /// for a record without an `eventID` (some hand-written or sample events), which is
    /// processed all the same.
    pub fn shard_id(&self) -> Option<&'a str> {
        self.source.shard_id
    }

    /// The ARN of the stream, e.g. `arn:aws:kinesis:us-east-1:123456789012:stream/clicks`.
    pub fn event_source_arn(&self) -> &'a str {
        // Every record the function is called with has one.
        self.source.event_source_arn.unwrap_or_default()
    }

    /// The stream's name, the last part of [`event_source_arn`](Self::event_source_arn).
    pub fn stream_name(&self) -> &'a str {
        stream_name(self.event_source_arn())
    }

    /// When Kinesis accepted the record (millisecond precision).
    pub fn approximate_arrival(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.arrival_millis)
    }

    /// Whether the record is a user record de-aggregated from a KPL aggregate.
    pub fn is_aggregated(&self) -> bool {
        self.sub_sequence != NOT_AGGREGATED
    }
}

impl fmt::Debug for RecordMeta<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordMeta")
            .field("sequence_number", &self.sequence_number())
            .field("sub_sequence_number", &self.sub_sequence_number())
            .field("partition_key", &self.partition_key())
            .field("explicit_hash_key", &self.explicit_hash_key)
            .field("shard_id", &self.shard_id())
            .field("event_source_arn", &self.event_source_arn())
            .field("approximate_arrival", &self.approximate_arrival())
            .field("aggregated", &self.is_aggregated())
            .finish()
    }
}

/// The stream name in a Kinesis stream ARN (`...:stream/NAME`), or the whole text when it
/// is not shaped like one.
pub(crate) fn stream_name(arn: &str) -> &str {
    match arn.rfind(":stream/") {
        Some(at) => &arn[at + ":stream/".len()..],
        None => arn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_every_accessor_by_name() {
        let source =
            Source { shard_id: Some("shardId-1"), event_source_arn: Some("arn:x:stream/s") };
        let meta = RecordMeta {
            sequence_number: Some("42"),
            partition_key: Some("k"),
            explicit_hash_key: None,
            source: &source,
            arrival_millis: 1_500,
            sub_sequence: 3,
        };
        let shown = format!("{meta:?}");
        for part in [
            "sequence_number: \"42\"",
            "sub_sequence_number: Some(3)",
            "partition_key: \"k\"",
            "explicit_hash_key: None",
            "shard_id: Some(\"shardId-1\")",
            "event_source_arn: \"arn:x:stream/s\"",
            "approximate_arrival: SystemTime",
            "aggregated: true",
        ] {
            assert!(shown.contains(part), "{part} in {shown}");
        }
        assert_eq!(meta.approximate_arrival(), UNIX_EPOCH + Duration::from_millis(1_500));
        let plain = RecordMeta { sub_sequence: NOT_AGGREGATED, ..meta };
        assert_eq!((plain.sub_sequence_number(), plain.is_aggregated()), (None, false));
    }

    #[test]
    fn stream_name_is_the_arn_suffix() {
        assert_eq!(stream_name("arn:aws:kinesis:us-east-1:123456789012:stream/clicks"), "clicks");
        assert_eq!(stream_name("not-an-arn"), "not-an-arn");
    }
}
