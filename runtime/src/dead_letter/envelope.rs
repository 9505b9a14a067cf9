//! The dead-letter envelope: one JSON document per record, shared by every sink.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The version of the envelope's shape; it changes only when a field changes meaning or
/// goes away (adding a field does not change it).
pub const ENVELOPE_VERSION: u32 = 1;

/// Why a record was dead-lettered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The record could not be decoded: bad base64, bad JSON or schema, invalid UTF-8, a
    /// undecodable envelope or a KPL aggregate whose contents cannot be decoded.
    DecodeError,
    /// The processing function rejected it with [`RecordError::reject`](crate::RecordError::reject).
    Rejected,
    /// It failed with retryable errors until its retries ran out
    /// (`on_retries_exhausted = dead_letter`).
    RetriesExhausted,
    /// It was older than `max_record_age` and was not processed.
    Expired,
}

impl DeadLetterReason {
    /// The reason as it appears in the envelope and in metrics, e.g. `"decode_error"`.
    ///
    /// ```
    /// use kinesis_processor::dead_letter::DeadLetterReason;
    /// assert_eq!(DeadLetterReason::RetriesExhausted.as_str(), "retries_exhausted");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::DecodeError => "decode_error",
            DeadLetterReason::Rejected => "rejected",
            DeadLetterReason::RetriesExhausted => "retries_exhausted",
            DeadLetterReason::Expired => "expired",
        }
    }

    /// Every reason, in a fixed order.
    pub const ALL: [DeadLetterReason; 4] = [
        DeadLetterReason::DecodeError,
        DeadLetterReason::Rejected,
        DeadLetterReason::RetriesExhausted,
        DeadLetterReason::Expired,
    ];
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dead-lettered record: why, where it came from, and its data.
///
/// Serialized as one JSON object with camelCase names; the Kinesis fields keep the names
/// and forms of the Lambda event, so a record can be put back on a stream as it was:
///
/// ```json
/// {
///   "version": 1,
///   "reason": "rejected",
///   "error": "unroutable ip",
///   "attempts": 1,
///   "functionName": "clickstream",
///   "requestId": "c6af9ac6-7b61-11e6-9a41-93e812345678",
///   "eventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/clicks",
///   "shardId": "shardId-000000000006",
///   "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
///   "subSequenceNumber": null,
///   "partitionKey": "user-17",
///   "explicitHashKey": null,
///   "approximateArrivalTimestamp": 1607497475.5,
///   "aggregated": false,
///   "data": "eyJ1c2VyX2lkIjoidXNlci0xNyJ9"
/// }
/// ```
///
/// A field the record did not have (an undecodable envelope) is `null`. An envelope too large for
/// its sink (SQS takes 256 KiB) can be stored whole in S3 and sent as a pointer: `data` is
/// then `null` and `dataLocation` says where the envelope is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeadLetter {
    /// The envelope's version, [`ENVELOPE_VERSION`].
    pub version: u32,
    /// Why the record was dead-lettered.
    pub reason: DeadLetterReason,
    /// The error and its causes, as one line.
    pub error: String,
    /// How many times the processing function was called for the record (0 when it never
    /// was: undecodable or expired).
    pub attempts: u32,
    /// The Lambda function's name (`AWS_LAMBDA_FUNCTION_NAME`), or the processor's name
    /// outside Lambda.
    pub function_name: String,
    /// The Lambda request id of the invocation that dead-lettered it.
    pub request_id: String,
    /// The stream's ARN (`eventSourceARN`).
    pub event_source_arn: Option<String>,
    /// The shard, e.g. `shardId-000000000006`.
    pub shard_id: Option<String>,
    /// The Kinesis sequence number (for a user record of a KPL aggregate, its parent's).
    pub sequence_number: Option<String>,
    /// The user record's 0-based position in its KPL aggregate; `null` for plain records.
    pub sub_sequence_number: Option<u64>,
    /// The partition key (the user record's own, for aggregated records).
    pub partition_key: Option<String>,
    /// The explicit hash key, when there was one.
    pub explicit_hash_key: Option<String>,
    /// When Kinesis accepted the record: epoch seconds with milliseconds, as in the event.
    pub approximate_arrival_timestamp: Option<f64>,
    /// Whether the record is a user record of a KPL aggregate.
    pub aggregated: bool,
    /// The record's data, base64 (standard alphabet, padded). For a plain record it is the
    /// event's `data` field as received, even when that is not valid base64.
    pub data: Option<String>,
    /// The record's JSON text as received, when it was not a JSON object at all (a
    /// string, `null`, an array) and so has no `data`: its first 32 KiB at most, so that
    /// an operator sees what arrived. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_record: Option<String>,
    /// Where the whole envelope is stored when it was too large for the sink itself (an
    /// `s3://bucket/key` URI); then `data` is `null` here. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_location: Option<String>,
}

impl DeadLetter {
    /// The record's data, decoded from base64; `None` when absent or not valid base64.
    ///
    /// ```
    /// # use kinesis_processor::dead_letter::DeadLetter;
    /// let letter: DeadLetter = serde_json::from_str(r#"{"version":1,"reason":"rejected",
    ///     "error":"e","attempts":1,"functionName":"f","requestId":"r","eventSourceArn":null,
    ///     "shardId":null,"sequenceNumber":"1","subSequenceNumber":null,"partitionKey":"k",
    ///     "explicitHashKey":null,"approximateArrivalTimestamp":1.5,"aggregated":false,
    ///     "data":"aGk="}"#).unwrap();
    /// assert_eq!(letter.data_bytes().unwrap(), b"hi");
    /// ```
    pub fn data_bytes(&self) -> Option<Vec<u8>> {
        let data = self.data.as_deref()?;
        base64::engine::general_purpose::STANDARD.decode(data).ok()
    }
}
