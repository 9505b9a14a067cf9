//! [`TestBatch`]: Lambda Kinesis events built in code.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::{json, Value};

use super::event::{self, EventRecord};
use crate::aggregation::UserRecord;

/// A Lambda Kinesis event under construction: records with realistic 56-digit sequence
/// numbers, a shard id, a stream ARN and arrival times.
///
/// Each record gets the partition key `key-N` (N its position) unless
/// [`partition_key`](Self::partition_key) sets another; the methods that describe a record
/// apply to the record added last.
///
/// ```
/// use kinesis_processor::testing::TestBatch;
/// use std::time::{Duration, SystemTime};
///
/// let payload = TestBatch::new()
///     .json(&serde_json::json!({"user": "ada"}))
///     .partition_key("user-ada")
///     .text("plain words")
///     .arrival(SystemTime::now() - Duration::from_secs(3600))
///     .bytes(&[0xff, 0x00])
///     .build();
/// let event: serde_json::Value = serde_json::from_slice(&payload).unwrap();
/// assert_eq!(event["Records"].as_array().unwrap().len(), 3);
/// assert_eq!(event["Records"][0]["kinesis"]["partitionKey"], "user-ada");
/// ```
#[derive(Clone, Debug)]
pub struct TestBatch {
    shard_id: String,
    stream_arn: String,
    arrival: f64,
    records: Vec<Value>,
    /// The tumbling-window fields beside `Records`, if any.
    window: Option<serde_json::Map<String, Value>>,
}

/// The first sequence number a test batch hands out (a real one, from the AWS docs).
const FIRST_SEQUENCE: &str = "49590338271490256608559692538361571095921575989136588898";

impl Default for TestBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl TestBatch {
    /// An empty batch from `shardId-000000000006` of the stream `test-stream`, its records
    /// arriving now.
    pub fn new() -> Self {
        TestBatch {
            shard_id: "shardId-000000000006".into(),
            stream_arn: "arn:aws:kinesis:us-east-1:123456789012:stream/test-stream".into(),
            arrival: event::epoch_seconds(SystemTime::now()),
            records: Vec::new(),
            window: None,
        }
    }

    /// Makes the event a tumbling window's, as Lambda sends it with
    /// `TumblingWindowInSeconds`: the window from `start` to `end` (RFC 3339), the `state`
    /// the window's previous invocation returned (`{}` on its first), not final.
    ///
    /// ```
    /// use kinesis_processor::testing::TestBatch;
    ///
    /// let payload = TestBatch::new()
    ///     .window("2020-12-09T07:04:00Z", "2020-12-09T07:06:00Z", serde_json::json!({}))
    ///     .final_invocation()
    ///     .build();
    /// let event: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    /// assert_eq!(event["isFinalInvokeForWindow"], true);
    /// assert_eq!(event["window"]["end"], "2020-12-09T07:06:00Z");
    /// ```
    pub fn window(mut self, start: &str, end: &str, state: Value) -> Self {
        let fields = json!({
            "window": {"start": start, "end": end},
            "state": state,
            "shardId": self.shard_id,
            "eventSourceARN": self.stream_arn,
            "isFinalInvokeForWindow": false,
            "isWindowTerminatedEarly": false,
        });
        self.window = fields.as_object().cloned();
        self
    }

    /// Marks a window's event as its final invocation (`isFinalInvokeForWindow`).
    pub fn final_invocation(self) -> Self {
        self.window_field("isFinalInvokeForWindow", json!(true))
    }

    /// Marks a window's event as ended early (`isWindowTerminatedEarly`).
    pub fn terminated_early(self) -> Self {
        self.window_field("isWindowTerminatedEarly", json!(true))
    }

    fn window_field(mut self, name: &str, value: Value) -> Self {
        let window = self.window.as_mut().expect("call `window(..)` first");
        window.insert(name.to_owned(), value);
        self
    }

    /// Sets the shard of every record.
    pub fn shard_id(mut self, shard_id: &str) -> Self {
        self.shard_id = shard_id.to_owned();
        for record in &mut self.records {
            let sequence = record["kinesis"]["sequenceNumber"].as_str().unwrap_or("").to_owned();
            record["eventID"] = json!(event::event_id(shard_id, &sequence));
        }
        self
    }

    /// Sets the stream ARN of every record.
    pub fn stream_arn(mut self, arn: &str) -> Self {
        self.stream_arn = arn.to_owned();
        for record in &mut self.records {
            record["eventSourceARN"] = json!(arn);
        }
        self
    }

    /// Adds a record holding `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let bytes = serde_json::to_vec(value).expect("the test value serializes to JSON");
        self.bytes(&bytes)
    }

    /// Adds a record holding `text` as UTF-8.
    pub fn text(self, text: &str) -> Self {
        self.bytes(text.as_bytes())
    }

    /// Adds a record holding `data`.
    pub fn bytes(self, data: &[u8]) -> Self {
        self.base64(&event::base64(data))
    }

    /// Adds a record whose `data` field is `text` verbatim, valid base64 or not.
    pub fn base64(mut self, text: &str) -> Self {
        let index = self.records.len();
        let record = event::record_json(&EventRecord {
            partition_key: &format!("key-{index}"),
            sequence_number: &sequence_number(index),
            data: text,
            arrival: self.arrival,
            shard_id: &self.shard_id,
            stream_arn: &self.stream_arn,
        });
        self.records.push(record);
        self
    }

    /// Adds one KPL aggregate holding `records` (of one partition key or many, as a KPL
    /// producer packs them), under the partition key of the first. Each user record keeps
    /// its own partition key and explicit hash key in the aggregate's key tables; the
    /// Kinesis record itself carries no `explicitHashKey` in the event, as Lambda sends none.
    ///
    /// # Panics
    ///
    /// When the records do not fit in one Kinesis record.
    ///
    /// ```
    /// use kinesis_processor::aggregation::UserRecord;
    /// use kinesis_processor::testing::TestBatch;
    ///
    /// let batch = TestBatch::new().aggregate(&[
    ///     UserRecord { partition_key: "a", explicit_hash_key: None, data: b"1" },
    ///     UserRecord { partition_key: "b", explicit_hash_key: None, data: b"2" },
    /// ]);
    /// assert_eq!(batch.sequence_numbers().len(), 1);
    /// ```
    pub fn aggregate(self, records: &[UserRecord<'_>]) -> Self {
        let mut aggregates = crate::testing::aggregate(records.iter().copied())
            .expect("each test user record fits in a Kinesis record");
        assert_eq!(aggregates.len(), 1, "the test user records need more than one aggregate");
        let aggregate = aggregates.remove(0);
        self.bytes(&aggregate.data).partition_key(&aggregate.partition_key)
    }

    /// Adds `record` as an element of `Records` exactly as given, for malformed envelopes.
    pub fn raw_record(mut self, record: Value) -> Self {
        self.records.push(record);
        self
    }

    /// Sets the partition key of the last record.
    pub fn partition_key(self, key: &str) -> Self {
        self.set_kinesis("partitionKey", json!(key))
    }

    /// Sets the arrival time of the last record.
    pub fn arrival(self, at: SystemTime) -> Self {
        self.set_kinesis("approximateArrivalTimestamp", json!(event::epoch_seconds(at)))
    }

    /// Sets the sequence number of the last record (and its `eventID`).
    pub fn sequence_number(mut self, sequence_number: &str) -> Self {
        let shard = self.shard_id.clone();
        if let Some(record) = self.records.last_mut() {
            record["eventID"] = json!(event::event_id(&shard, sequence_number));
        }
        self.set_kinesis("sequenceNumber", json!(sequence_number))
    }

    /// Sets a field of the last record's `kinesis` member to any JSON value (including
    /// fields Lambda never sends, such as `explicitHashKey`, to test a lenient reader).
    pub fn kinesis_field(self, name: &str, value: Value) -> Self {
        self.set_kinesis(name, value)
    }

    fn set_kinesis(mut self, name: &str, value: Value) -> Self {
        let record = self.records.last_mut().expect("add a record before describing it");
        record["kinesis"][name] = value;
        self
    }

    /// The sequence numbers of the records so far, in order.
    pub fn sequence_numbers(&self) -> Vec<String> {
        self.records
            .iter()
            .map(|r| r["kinesis"]["sequenceNumber"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// The invocation payload: `{"Records": [...]}` as Lambda sends it, with the window
    /// fields beside them if it is a window's.
    pub fn build(self) -> Vec<u8> {
        let Some(mut fields) = self.window else {
            return event::payload(self.records);
        };
        fields.insert("Records".to_owned(), Value::Array(self.records));
        serde_json::to_vec(&fields).expect("JSON values serialize")
    }
}

/// The `index`-th sequence number of a test batch: 56 digits, growing with the index.
fn sequence_number(index: usize) -> String {
    let (prefix, tail) = FIRST_SEQUENCE.split_at(FIRST_SEQUENCE.len() - 24);
    let tail: u128 = tail.parse().expect("digits");
    format!("{prefix}{:024}", tail + 1_000_000 * index as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_have_56_digits_and_grow() {
        let first = sequence_number(0);
        assert_eq!(first, FIRST_SEQUENCE);
        let later = sequence_number(12_345);
        assert_eq!(later.len(), 56);
        assert!(later > first);
    }

    /// Lambda's Kinesis event has no `explicitHashKey`: neither a plain record nor an
    /// aggregate carries one, though the aggregate's user records keep theirs inside it.
    #[test]
    fn records_carry_no_explicit_hash_key_as_lambda_sends_none() {
        let payload = TestBatch::new()
            .text("plain")
            .aggregate(&[
                UserRecord { partition_key: "a", explicit_hash_key: Some("7"), data: b"1" },
                UserRecord { partition_key: "b", explicit_hash_key: None, data: b"2" },
            ])
            .build();
        let event: Value = serde_json::from_slice(&payload).unwrap();
        for record in event["Records"].as_array().unwrap() {
            let kinesis = record["kinesis"].as_object().unwrap();
            let mut fields: Vec<&str> = kinesis.keys().map(String::as_str).collect();
            fields.sort_unstable();
            assert_eq!(
                fields,
                [
                    "approximateArrivalTimestamp",
                    "data",
                    "kinesisSchemaVersion",
                    "partitionKey",
                    "sequenceNumber"
                ]
            );
        }
        assert_eq!(event["Records"][1]["kinesis"]["partitionKey"], "a");
        let data = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            event["Records"][1]["kinesis"]["data"].as_str().unwrap(),
        )
        .unwrap();
        let crate::aggregation::Deaggregated::Aggregate(users) =
            crate::aggregation::deaggregate(&data).unwrap()
        else {
            panic!("an aggregate")
        };
        assert_eq!(users[0].explicit_hash_key, Some("7"));
        assert_eq!(users[1].partition_key, "b");
        assert_eq!(users[1].explicit_hash_key, None);
    }
}
