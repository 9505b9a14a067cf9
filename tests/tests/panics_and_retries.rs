//! A panic is caught per record and retried; retries back off and are bounded.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{kinesis_processor, Outcome, RecordError};

#[derive(Default)]
struct Attempts(AtomicU32);

#[kinesis_processor(format = text, retries = 3)]
async fn flaky(line: String, attempts: &Arc<Attempts>) -> Result<(), RecordError> {
    let attempt = attempts.0.fetch_add(1, Ordering::SeqCst) + 1;
    match line.as_str() {
        "panic once" if attempt == 1 => panic!("index out of bounds"),
        "panic always" => panic!("always"),
        "fail twice" if attempt <= 2 => Err(RecordError::retry("connection reset")),
        _ => Ok(()),
    }
}

#[tokio::test]
async fn a_panic_is_caught_and_the_record_retried() {
    let attempts = Arc::new(Attempts::default());
    let processor = flaky().state(attempts.clone());
    let report = processor.process(TestBatch::new().text("panic once").build()).await.unwrap();
    let record = report.records().next().unwrap();
    assert_eq!(record.outcome(), Outcome::Succeeded);
    assert_eq!(record.attempts(), 2);
    assert_eq!(attempts.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_record_that_always_panics_is_reported_and_the_processor_keeps_serving() {
    let processor = flaky().state(Arc::new(Attempts::default()));
    let report =
        processor.process(TestBatch::new().text("panic always").text("ok").build()).await.unwrap();
    let record = report.records().next().unwrap();
    assert_eq!(record.outcome(), Outcome::Failed);
    assert_eq!(record.attempts(), 4, "the first attempt and three retries");
    assert!(record.error().unwrap().contains("panicked: always"), "{:?}", record.error());
    assert_eq!(report.response().batch_item_failures.len(), 1);

    // The same processor handles the next invocation.
    let next = processor.process(TestBatch::new().text("ok").build()).await.unwrap();
    assert!(next.response().batch_item_failures.is_empty());
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_with_jitter() {
    let attempts = Arc::new(Attempts::default());
    let started = tokio::time::Instant::now();
    let report =
        flaky().state(attempts).process(TestBatch::new().text("fail twice").build()).await.unwrap();
    assert_eq!(report.records().next().unwrap().attempts(), 3);
    // Two pauses: 25-50 ms, then 50-100 ms (the paused clock advances exactly by them).
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(75) && waited <= Duration::from_millis(150),
        "{waited:?}"
    );
}

#[kinesis_processor(format = text, retries = 0)]
async fn once(_line: String, attempts: &Arc<Attempts>) -> Result<(), RecordError> {
    attempts.0.fetch_add(1, Ordering::SeqCst);
    Err(RecordError::retry("no"))
}

#[tokio::test]
async fn retries_zero_means_one_attempt() {
    let attempts = Arc::new(Attempts::default());
    let report =
        once().state(attempts.clone()).process(TestBatch::new().text("x").build()).await.unwrap();
    assert_eq!(attempts.0.load(Ordering::SeqCst), 1);
    assert_eq!(report.records().next().unwrap().outcome(), Outcome::Failed);
}

#[tokio::test]
async fn the_builder_overrides_the_attribute() {
    let attempts = Arc::new(Attempts::default());
    once()
        .state(attempts.clone())
        .retries(2)
        .process(TestBatch::new().text("x").build())
        .await
        .unwrap();
    assert_eq!(attempts.0.load(Ordering::SeqCst), 3);
}

#[kinesis_processor(format = text, retries = 5)]
async fn poison(_line: String) -> Result<(), RecordError> {
    Err(RecordError::reject("never valid"))
}

#[tokio::test]
async fn a_rejected_record_is_never_retried() {
    let dlq = MemoryDeadLetter::default();
    let report = poison()
        .dead_letter(dlq.clone())
        .process(TestBatch::new().text("x").build())
        .await
        .unwrap();
    assert_eq!(report.records().next().unwrap().attempts(), 1);
    assert_eq!(dlq.records()[0].attempts, 1);
}

/// A plain function works as well as an async one.
#[kinesis_processor(format = text, retries = 0)]
fn synchronous(line: String) -> Result<(), RecordError> {
    if line == "boom" {
        panic!("sync panic");
    }
    Ok(())
}

#[tokio::test]
async fn a_plain_function_is_processed_and_its_panics_caught() {
    let report =
        synchronous().process(TestBatch::new().text("a").text("boom").build()).await.unwrap();
    let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
    assert_eq!(outcomes, [Outcome::Succeeded, Outcome::Failed]);
}
