//! `max_record_age` and `on_retries_exhausted`, on the attribute and on the builder.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kinesis_processor::dead_letter::DeadLetterReason;
use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{kinesis_processor, OnRetriesExhausted, Outcome, RecordError};

type Calls = Arc<AtomicU32>;

#[kinesis_processor(format = text, max_record_age = "15m")]
async fn fresh_only(_line: String, calls: &Calls) -> Result<(), RecordError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

fn ago(seconds: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(seconds)
}

#[tokio::test]
async fn records_older_than_max_record_age_are_dead_lettered_unprocessed() {
    let calls = Calls::default();
    let dlq = MemoryDeadLetter::default();
    let event = TestBatch::new()
        .text("new")
        .arrival(ago(60))
        .text("old")
        .arrival(ago(3600))
        .text("new too")
        .arrival(ago(10))
        .build();
    let report =
        fresh_only().state(calls.clone()).dead_letter(dlq.clone()).process(event).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the old record was never processed");
    let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
    assert_eq!(
        outcomes,
        [Outcome::Succeeded, Outcome::DeadLettered(DeadLetterReason::Expired), Outcome::Succeeded]
    );
    let letter = &dlq.records()[0];
    assert_eq!(letter.reason, DeadLetterReason::Expired);
    assert_eq!(letter.attempts, 0);
    assert_eq!(letter.data_bytes().unwrap(), b"old");
    assert!(letter.error.contains("older than max_record_age (900000 ms)"), "{}", letter.error);
    assert_eq!(report.summary().expired, 1);
}

#[tokio::test]
async fn without_a_sink_an_expired_record_is_reported() {
    let event = TestBatch::new().text("old").arrival(ago(3600)).build();
    let report = fresh_only().state(Calls::default()).process(event).await.unwrap();
    assert_eq!(report.records().next().unwrap().outcome(), Outcome::Failed);
    assert!(report.checkpoint().is_some());
}

#[tokio::test]
async fn the_builder_sets_max_record_age() {
    let calls = Calls::default();
    let dlq = MemoryDeadLetter::default();
    let event = TestBatch::new().text("a minute old").arrival(ago(60)).build();
    fresh_only()
        .state(calls.clone())
        .max_record_age(Duration::from_secs(30))
        .dead_letter(dlq.clone())
        .process(event)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(dlq.records()[0].reason, DeadLetterReason::Expired);
}

#[kinesis_processor(format = text, retries = 1, on_retries_exhausted = dead_letter)]
async fn gives_up(line: String, calls: &Calls) -> Result<(), RecordError> {
    calls.fetch_add(1, Ordering::SeqCst);
    if line == "flaky" {
        return Err(RecordError::retry("still failing"));
    }
    Ok(())
}

#[tokio::test]
async fn exhausted_retries_are_dead_lettered_and_the_batch_moves_on() {
    let calls = Calls::default();
    let dlq = MemoryDeadLetter::default();
    let event = TestBatch::new().text("flaky").text("fine").build();
    let report =
        gives_up().state(calls.clone()).dead_letter(dlq.clone()).process(event).await.unwrap();
    assert!(report.response().batch_item_failures.is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 3, "two attempts, then the next record");
    let letter = &dlq.records()[0];
    assert_eq!(letter.reason, DeadLetterReason::RetriesExhausted);
    assert_eq!(letter.attempts, 2);
    assert_eq!(letter.error, "still failing");
}

#[tokio::test]
async fn a_refused_exhausted_letter_is_reported_and_nothing_after_it_runs() {
    let calls = Calls::default();
    let dlq = MemoryDeadLetter::refusing(|_| Some("throttled".into()));
    let batch = TestBatch::new().text("flaky").text("fine");
    let first = batch.sequence_numbers()[0].clone();
    let report =
        gives_up().state(calls.clone()).dead_letter(dlq).process(batch.build()).await.unwrap();
    assert_eq!(report.checkpoint(), Some(first.as_str()));
    // The record may succeed when delivered again, so the next one waited for the sink.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(report.records().nth(1).unwrap().outcome(), Outcome::NotStarted);
}

#[tokio::test]
async fn the_builder_sets_on_retries_exhausted() {
    let dlq = MemoryDeadLetter::default();
    let batch = TestBatch::new().text("flaky");
    let report = gives_up()
        .state(Calls::default())
        .on_retries_exhausted(OnRetriesExhausted::Report)
        .dead_letter(dlq.clone())
        .process(batch.build())
        .await
        .unwrap();
    assert_eq!(report.records().next().unwrap().outcome(), Outcome::Failed);
    assert!(dlq.records().is_empty());
}
