//! The invocation payload the mapping sends: a Lambda Kinesis event, and its size.

use std::time::SystemTime;

use serde_json::{Map, Value};

use super::StreamRecord;
use crate::testing::event::{self, EventRecord};

/// `{"Records":[` and `]}`.
pub(super) const EVENT_OVERHEAD: usize = 14;

/// The comma between two records of the event.
pub(super) const SEPARATOR: usize = 1;

/// The record as the event holds it.
fn record_value(record: &StreamRecord, shard_id: &str, arn: &str) -> Value {
    event::record_json(&EventRecord {
        partition_key: &record.partition_key,
        sequence_number: &record.sequence_number,
        data: &event::base64(&record.data),
        arrival: event::epoch_seconds(record.arrival),
        shard_id,
        stream_arn: arn,
    })
}

/// The bytes one record takes in the event, exactly: its serialized JSON, every field
/// counted. A batch of `n` records takes [`EVENT_OVERHEAD`], the records' sizes, and
/// `n - 1` separators.
pub(super) fn record_json_size(record: &StreamRecord, shard_id: &str, arn: &str) -> usize {
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, &record_value(record, shard_id, arn))
        .expect("JSON values serialize");
    counter.0
}

/// A writer that only counts.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The invocation payload for `batch`: a Lambda Kinesis event, with a tumbling window's
/// fields beside `Records` when there are any.
pub(super) fn event_payload(
    batch: &[&StreamRecord],
    shard_id: &str,
    arn: &str,
    window: Option<&Map<String, Value>>,
) -> Vec<u8> {
    let records = batch.iter().map(|record| record_value(record, shard_id, arn)).collect();
    match window {
        None => event::payload(records),
        Some(fields) => {
            let mut event = fields.clone();
            event.insert("Records".into(), Value::Array(records));
            serde_json::to_vec(&event).expect("JSON values serialize")
        }
    }
}

/// The bytes of the event around its records: [`EVENT_OVERHEAD`] without a window, more
/// with one. A batch of `n` records takes this, the records' sizes and `n - 1` separators.
pub(super) fn event_overhead(window: Option<&Map<String, Value>>) -> usize {
    match window {
        None => EVENT_OVERHEAD,
        Some(_) => event_payload(&[], "", "", window).len(),
    }
}

/// `2019-11-14T18:16:05.271Z`, as Lambda's on-failure records write times.
pub(super) fn iso8601(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::super::window::OpenWindow;
    use super::*;

    /// The size the mapping packs batches by is the payload's length, to the byte, for
    /// keys and data of every kind (escaped characters, multi-byte text, empty data), with
    /// and without a tumbling window's fields.
    #[test]
    fn the_size_estimate_is_the_serialized_length() {
        let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/sizes";
        let at = |millis| UNIX_EPOCH + Duration::from_millis(millis);
        let records: Vec<StreamRecord> = [
            ("user-1", &b"{\"id\":1}"[..], at(1_607_497_475_500)),
            ("quote\"back\\slash\ttab\u{1}", &b""[..], at(1_607_497_475_000)),
            ("ключ-λ-🦀", &[0xff; 1000][..], at(1_607_497_475_123)),
            ("k", &b"12"[..], at(0)),
        ]
        .into_iter()
        .enumerate()
        .map(|(n, (key, data, arrival))| StreamRecord {
            sequence_number: format!("{:056}", 49_590_338_271_490_256_608_u128 + n as u128),
            partition_key: key.to_owned(),
            explicit_hash_key: Some("340282366920938463463374607431768211455".to_owned()),
            data: data.to_vec(),
            arrival,
        })
        .collect();
        let mut window = OpenWindow::new(1_607_497_440, Duration::from_secs(120));
        window.accept(serde_json::json!({ "version": 1, "value": { "ключ\"": [1, 2.5, null] } }));
        let window = window.fields("shardId-000000000003", arn, false, false);
        for fields in [None, Some(&window)] {
            for count in 0..=records.len() {
                let batch: Vec<&StreamRecord> = records[..count].iter().collect();
                let payload = event_payload(&batch, "shardId-000000000003", arn, fields);
                let estimate = event_overhead(fields)
                    + batch
                        .iter()
                        .map(|r| record_json_size(r, "shardId-000000000003", arn))
                        .sum::<usize>()
                    + SEPARATOR * count.saturating_sub(1);
                assert_eq!(
                    estimate,
                    payload.len(),
                    "{count} records, window: {}",
                    fields.is_some()
                );
            }
        }
        assert_eq!(event_overhead(None), EVENT_OVERHEAD);
    }

    #[test]
    fn dates_are_iso_8601_in_utc_with_milliseconds() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let at = UNIX_EPOCH + Duration::from_millis(1_573_755_365_271);
        assert_eq!(iso8601(at), "2019-11-14T18:16:05.271Z");
    }
}
