//! [`RecordMeta`]: where a record sits in the stream, handed to the processing function.

use std::time::SystemTime;

/// The coordinates of one record: where it sits in the stream and when it arrived.
///
/// A processing function receives it by reference when it asks for it:
///
/// ```
/// use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
///
/// #[kinesis_processor(format = text)]
/// async fn audit(line: String, meta: &RecordMeta) -> Result<(), RecordError> {
///     println!("{} {}: {line}", meta.shard_id(), meta.sequence_number());
///     Ok(())
/// }
/// # let _ = audit();
/// ```
///
/// It borrows from the invocation's payload, so building it costs no allocation; copy what
/// must outlive the call.
#[derive(Clone, Debug)]
pub struct RecordMeta<'a> {
    pub(crate) sequence_number: &'a str,
    pub(crate) sub_sequence_number: Option<u64>,
    pub(crate) partition_key: &'a str,
    pub(crate) explicit_hash_key: Option<&'a str>,
    pub(crate) shard_id: &'a str,
    pub(crate) event_source_arn: &'a str,
    pub(crate) approximate_arrival: SystemTime,
    pub(crate) aggregated: bool,
}

impl<'a> RecordMeta<'a> {
    /// The Kinesis sequence number (a decimal string of about 56 digits). For a user
    /// record of a KPL aggregate, the sequence number of the Kinesis record that carried it.
    pub fn sequence_number(&self) -> &'a str {
        self.sequence_number
    }

    /// The 0-based position of a user record inside its KPL aggregate; `None` for a plain
    /// record.
    pub fn sub_sequence_number(&self) -> Option<u64> {
        self.sub_sequence_number
    }

    /// The partition key (for a user record of an aggregate, the user record's own key).
    pub fn partition_key(&self) -> &'a str {
        self.partition_key
    }

    /// The explicit hash key, when the producer set one.
    pub fn explicit_hash_key(&self) -> Option<&'a str> {
        self.explicit_hash_key
    }

    /// The shard the record was read from, e.g. `shardId-000000000006`.
    pub fn shard_id(&self) -> &'a str {
        self.shard_id
    }

    /// The ARN of the stream, e.g. `arn:aws:kinesis:us-east-1:123456789012:stream/clicks`.
    pub fn event_source_arn(&self) -> &'a str {
        self.event_source_arn
    }

    /// The stream's name, the last part of [`event_source_arn`](Self::event_source_arn).
    pub fn stream_name(&self) -> &'a str {
        stream_name(self.event_source_arn)
    }

    /// When Kinesis accepted the record (millisecond precision).
    pub fn approximate_arrival(&self) -> SystemTime {
        self.approximate_arrival
    }

    /// Whether the record is a user record de-aggregated from a KPL aggregate.
    pub fn is_aggregated(&self) -> bool {
        self.aggregated
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
    use super::stream_name;

    #[test]
    fn stream_name_is_the_arn_suffix() {
        assert_eq!(stream_name("arn:aws:kinesis:us-east-1:123456789012:stream/clicks"), "clicks");
        assert_eq!(stream_name("not-an-arn"), "not-an-arn");
    }
}
