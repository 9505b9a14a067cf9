//! The invocation payload the mapping sends: a Lambda Kinesis event, and its size.

use std::time::SystemTime;

use super::StreamRecord;
use crate::testing::event::{self, EventRecord};

/// `{"Records":[` and `]}`.
pub(super) const EVENT_OVERHEAD: usize = 14;

/// The bytes one record takes in the event (an upper bound, for the 6 MB limit).
pub(super) fn record_json_size(record: &StreamRecord, arn: &str) -> usize {
    let data = record.data.len().div_ceil(3) * 4;
    2 * record.sequence_number.len() + record.partition_key.len() * 6 + data + 2 * arn.len() + 320
}

/// The invocation payload for `batch`: a Lambda Kinesis event.
pub(super) fn event_payload(batch: &[&StreamRecord], shard_id: &str, arn: &str) -> Vec<u8> {
    let records = batch.iter().map(|record| {
        event::record_json(&EventRecord {
            partition_key: &record.partition_key,
            sequence_number: &record.sequence_number,
            data: &event::base64(&record.data),
            arrival: event::epoch_seconds(record.arrival),
            explicit_hash_key: record.explicit_hash_key.as_deref(),
            shard_id,
            stream_arn: arn,
        })
    });
    event::payload(records.collect())
}

/// `2019-11-14T18:16:05.271Z`, as Lambda's on-failure records write times.
pub(super) fn iso8601(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn dates_are_iso_8601_in_utc_with_milliseconds() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let at = UNIX_EPOCH + Duration::from_millis(1_573_755_365_271);
        assert_eq!(iso8601(at), "2019-11-14T18:16:05.271Z");
    }
}
