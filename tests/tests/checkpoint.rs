//! The response names the first record not finished, and nothing starts after a failure.

use std::sync::{Arc, Mutex};

use kinesis_processor::testing::TestBatch;
use kinesis_processor::{kinesis_processor, BatchReport, Error, Outcome, RecordError};

/// What the function was called with, shared with the test.
type Seen = Arc<Mutex<Vec<String>>>;

/// Fails records whose text says so.
#[kinesis_processor(format = text, retries = 0)]
async fn scripted(line: String, seen: &Seen) -> Result<(), RecordError> {
    seen.lock().unwrap().push(line.clone());
    match line.as_str() {
        "fail" => Err(RecordError::retry("downstream unavailable")),
        _ => Ok(()),
    }
}

fn failures(report: &BatchReport) -> Vec<String> {
    report
        .response()
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().expect("an identifier"))
        .collect()
}

#[tokio::test]
async fn an_all_good_batch_has_an_empty_response() {
    let event = TestBatch::new().text("a").text("b").text("c").build();
    let report = scripted().state(Seen::default()).process(event).await.unwrap();
    assert!(failures(&report).is_empty());
    assert!(report.records().all(|r| r.outcome() == Outcome::Succeeded));
    assert_eq!(serde_json::to_string(report.response()).unwrap(), r#"{"batchItemFailures":[]}"#);
}

#[tokio::test]
async fn the_response_names_only_the_first_failed_record_and_nothing_later_starts() {
    let batch = TestBatch::new().text("a").text("fail").text("b").text("fail").text("c");
    let sequence_numbers = batch.sequence_numbers();
    let seen = Seen::default();
    let report = scripted().state(seen.clone()).process(batch.build()).await.unwrap();

    assert_eq!(failures(&report), [sequence_numbers[1].clone()]);
    assert_eq!(*seen.lock().unwrap(), ["a", "fail"], "nothing after the failure was called");
    let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Succeeded,
            Outcome::Failed,
            Outcome::NotStarted,
            Outcome::NotStarted,
            Outcome::NotStarted
        ]
    );
    let redelivered: Vec<bool> = report.records().map(|r| r.redelivered()).collect();
    assert_eq!(redelivered, [false, true, true, true, true]);
    assert_eq!(report.checkpoint(), Some(sequence_numbers[1].as_str()));
}

#[tokio::test]
async fn the_checkpoint_is_the_lowest_sequence_number_as_a_big_integer() {
    // Out of order on purpose: as text "1000" < "999", as numbers it is the other way.
    let event = TestBatch::new()
        .text("fail")
        .sequence_number("1000")
        .text("b")
        .sequence_number("999")
        .build();
    let report = scripted().state(Seen::default()).process(event).await.unwrap();
    assert_eq!(failures(&report), ["999"]);
}

#[tokio::test]
async fn sequence_numbers_wider_than_u128_compare_correctly() {
    let low = "49590338271490256608559692538361571095921575989136588898";
    let high = "49590338271490256608559692538361571095921575989136588899";
    assert!(low.parse::<u128>().is_err());
    let event =
        TestBatch::new().text("fail").sequence_number(high).text("x").sequence_number(low).build();
    let report = scripted().state(Seen::default()).process(event).await.unwrap();
    assert_eq!(failures(&report), [low]);
}

#[tokio::test]
async fn an_unfinished_record_without_a_sequence_number_fails_the_whole_batch() {
    // No sink: the undecodable record is reported, but it cannot be named.
    let event = TestBatch::new()
        .text("a")
        .raw_record(serde_json::json!({"kinesis": {"data": "aGk="}, "eventSource": "aws:kinesis"}))
        .build();
    let err = scripted().state(Seen::default()).process(event).await.unwrap_err();
    assert!(matches!(err, Error::Uncheckpointable(_)), "{err}");
    assert!(err.to_string().contains("no valid sequence number"), "{err}");
}
