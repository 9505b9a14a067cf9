//! Lambda Kinesis event records, built one way for [`TestBatch`](super::TestBatch) and the
//! event source mapping simulator.
//!
//! A record carries what Lambda's event carries: no `explicitHashKey`, even when the record
//! was put with one (only the user records inside a KPL aggregate keep theirs, in the
//! aggregate's protobuf).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Value};

/// The fields of one record of a Lambda Kinesis event.
pub(crate) struct EventRecord<'a> {
    pub partition_key: &'a str,
    pub sequence_number: &'a str,
    /// The `data` field: base64 text, as sent.
    pub data: &'a str,
    /// `approximateArrivalTimestamp`: epoch seconds with milliseconds.
    pub arrival: f64,
    pub shard_id: &'a str,
    pub stream_arn: &'a str,
}

/// The record as Lambda writes it in the event.
pub(crate) fn record_json(record: &EventRecord<'_>) -> Value {
    let kinesis = json!({
        "kinesisSchemaVersion": "1.0",
        "partitionKey": record.partition_key,
        "sequenceNumber": record.sequence_number,
        "data": record.data,
        "approximateArrivalTimestamp": record.arrival,
    });
    json!({
        "kinesis": kinesis,
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": event_id(record.shard_id, record.sequence_number),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
        "awsRegion": "us-east-1",
        "eventSourceARN": record.stream_arn,
    })
}

/// A record's `eventID`: `shardId-...:sequence`.
pub(crate) fn event_id(shard_id: &str, sequence_number: &str) -> String {
    format!("{shard_id}:{sequence_number}")
}

/// The invocation payload: `{"Records": [...]}`.
pub(crate) fn payload(records: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({ "Records": records })).expect("JSON values serialize")
}

/// Bytes as the event's `data` field holds them: standard base64, padded.
pub(crate) fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A time as the event writes it: epoch seconds with a fraction of milliseconds.
pub(crate) fn epoch_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as f64 / 1000.0
}
