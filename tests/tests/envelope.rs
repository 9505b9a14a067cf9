//! The lenient envelope: one malformed record fails alone; a payload that is not a
//! Kinesis batch is an invocation error; payload formats fail per record.

use std::time::UNIX_EPOCH;

use kinesis_processor::dead_letter::DeadLetterReason;
use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{kinesis_processor, Error, Outcome, RecordError, RecordMeta};
use serde_json::json;

#[kinesis_processor(format = bytes)]
async fn accept(_data: Vec<u8>, meta: &RecordMeta) -> Result<(), RecordError> {
    // Arrival times reach the function to the millisecond.
    let millis = meta.approximate_arrival().duration_since(UNIX_EPOCH).unwrap().as_millis();
    if meta.partition_key() == "half" && millis % 1000 != 500 {
        return Err(RecordError::reject(format!("arrival {millis} lost its fraction")));
    }
    Ok(())
}

fn outcomes(report: &kinesis_processor::BatchReport) -> Vec<Outcome> {
    report.records().map(|r| r.outcome()).collect()
}

const DECODE: Outcome = Outcome::DeadLettered(DeadLetterReason::DecodeError);

#[tokio::test]
async fn malformed_records_fail_alone() {
    let dlq = MemoryDeadLetter::default();
    let event = TestBatch::new()
        .text("good")
        .base64("@@not base64@@")
        .text("unknown encryption")
        .kinesis_field("encryptionType", json!("ROT13"))
        .text("no partition key")
        .kinesis_field("partitionKey", serde_json::Value::Null)
        .text("wrong arrival type")
        .kinesis_field("approximateArrivalTimestamp", json!("yesterday"))
        .text("good too")
        .build();
    let report = accept().dead_letter(dlq.clone()).process(event).await.unwrap();
    assert_eq!(
        outcomes(&report),
        [Outcome::Succeeded, DECODE, DECODE, DECODE, DECODE, Outcome::Succeeded]
    );
    assert!(report.response().batch_item_failures.is_empty());
    let errors: Vec<String> = dlq.records().into_iter().map(|l| l.error).collect();
    assert!(errors[0].contains("not valid base64"), "{}", errors[0]);
    assert!(errors[1].contains("unknown `kinesis.encryptionType` \"ROT13\""), "{}", errors[1]);
    assert!(errors[2].contains("`kinesis.partitionKey` is null"), "{}", errors[2]);
    assert!(
        errors[3].contains("`kinesis.approximateArrivalTimestamp` is a string"),
        "{}",
        errors[3]
    );
    // The invalid base64 is kept verbatim in the envelope: nothing is lost.
    assert_eq!(dlq.records()[0].data.as_deref(), Some("@@not base64@@"));
}

#[tokio::test]
async fn unpadded_base64_is_accepted() {
    let event = TestBatch::new().base64("aGk").build();
    let report = accept().process(event).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Succeeded]);
}

#[kinesis_processor(format = bytes)]
async fn refuse(data: Vec<u8>) -> Result<(), RecordError> {
    Err(RecordError::reject(format!("refused {:?}", String::from_utf8_lossy(&data))))
}

#[tokio::test]
async fn a_dead_letter_carries_the_data_exactly_as_it_came() {
    // Padded, unpadded, partly padded (accepted, though no encoder writes it), empty: the
    // data is decoded for the function and dead-lettered as the very text received.
    let texts = ["aGk=", "aGk", "aGVsbA==", "aGVsbA", "aGVsbA=", ""];
    let event = texts.iter().fold(TestBatch::new(), |batch, text| batch.base64(text)).build();
    let dlq = MemoryDeadLetter::default();
    refuse().dead_letter(dlq.clone()).process(event).await.unwrap();
    let letters = dlq.records();
    let data: Vec<_> = letters.iter().map(|letter| letter.data.as_deref().unwrap()).collect();
    assert_eq!(data, texts);
    let errors: Vec<_> = letters.iter().map(|letter| letter.error.as_str()).collect();
    for (error, decoded) in errors.iter().zip(["hi", "hi", "hell", "hell", "hell", ""]) {
        assert!(error.contains(&format!("refused {decoded:?}")), "{error}");
    }
}

#[tokio::test]
async fn a_fractional_arrival_timestamp_is_milliseconds() {
    let event = TestBatch::new()
        .text("x")
        .partition_key("half")
        .kinesis_field("approximateArrivalTimestamp", json!(1607497475.5))
        .build();
    let report = accept().process(event).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Succeeded]);
}

#[tokio::test]
async fn an_event_without_records_is_an_invocation_error() {
    let err = accept().process(br#"{"foo": 1}"#).await.unwrap_err();
    assert!(matches!(err, Error::InvalidEvent(_)));
    assert!(err.to_string().contains("no `Records` array"), "{err}");
}

#[tokio::test]
async fn an_empty_records_array_is_an_empty_response() {
    let report = accept().process(br#"{"Records": []}"#).await.unwrap();
    assert_eq!(report.records().len(), 0);
    assert!(report.response().batch_item_failures.is_empty());
}

#[tokio::test]
async fn events_of_other_sources_are_invocation_errors_naming_the_source() {
    let sqs = json!({"Records": [{"messageId": "1", "body": "hi", "eventSource": "aws:sqs"}]});
    let err = accept().process(serde_json::to_vec(&sqs).unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("`aws:sqs`"), "{err}");
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Click {
    url: String,
}

#[kinesis_processor]
async fn json_clicks(_click: Click) -> Result<(), RecordError> {
    Ok(())
}

#[kinesis_processor(format = text)]
async fn text_lines(_line: String) -> Result<(), RecordError> {
    Ok(())
}

#[tokio::test]
async fn json_that_is_invalid_or_of_the_wrong_shape_is_a_decode_error() {
    let dlq = MemoryDeadLetter::default();
    let event = TestBatch::new()
        .text("{\"url\":")
        .text("{\"link\": \"/a\"}")
        .text("{\"url\": \"/a\"}")
        .build();
    let report = json_clicks().dead_letter(dlq.clone()).process(event).await.unwrap();
    assert_eq!(outcomes(&report), [DECODE, DECODE, Outcome::Succeeded]);
    let letters = dlq.records();
    assert!(letters[0].error.contains("EOF while parsing"), "{}", letters[0].error);
    assert!(letters[1].error.contains("missing field `url`"), "{}", letters[1].error);
}

#[tokio::test]
async fn text_that_is_not_utf8_is_a_decode_error() {
    let dlq = MemoryDeadLetter::default();
    let event = TestBatch::new().bytes(&[b'o', b'k', 0xff, 0xfe]).text("fine").build();
    let report = text_lines().dead_letter(dlq.clone()).process(event).await.unwrap();
    assert_eq!(outcomes(&report), [DECODE, Outcome::Succeeded]);
    assert!(dlq.records()[0].error.contains("invalid utf-8"), "{}", dlq.records()[0].error);
}

#[tokio::test]
async fn the_report_names_every_record_by_its_own_strings() {
    use kinesis_processor::aggregation::UserRecord;
    let users = [
        UserRecord { partition_key: "user-a", explicit_hash_key: None, data: b"a" },
        UserRecord { partition_key: "user-b", explicit_hash_key: None, data: b"b" },
    ];
    let batch = TestBatch::new()
        .text("plain")
        .partition_key("plain-key")
        .aggregate(&users)
        .text("escaped")
        .partition_key("say \"hi\"")
        .text("undecodable")
        .partition_key("undecodable-key")
        .kinesis_field("sequenceNumber", json!(5));
    let sequence_numbers = batch.sequence_numbers();
    let dlq = MemoryDeadLetter::default();
    let report = accept().dead_letter(dlq).process(batch.build()).await.unwrap();

    let rows: Vec<_> = report
        .records()
        .map(|r| (r.sequence_number(), r.sub_sequence_number(), r.partition_key(), r.shard_id()))
        .collect();
    let shard = Some("shardId-000000000006");
    assert_eq!(
        rows,
        [
            (Some(sequence_numbers[0].as_str()), None, Some("plain-key"), shard),
            (Some(sequence_numbers[1].as_str()), Some(0), Some("user-a"), shard),
            (Some(sequence_numbers[1].as_str()), Some(1), Some("user-b"), shard),
            (Some(sequence_numbers[2].as_str()), None, Some("say \"hi\""), shard),
            // No valid sequence number to name it by; its key and shard still come through.
            (None, None, Some("undecodable-key"), shard),
        ]
    );
    assert_eq!(outcomes(&report)[4], DECODE);
}
