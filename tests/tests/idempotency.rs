//! Idempotency over the in-memory store: duplicates skipped, claims made, released and
//! completed as the rules say, and the store's failures failing closed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::idempotency::{Claim, IdempotencyStore, StoreError};
use kinesis_processor::testing::{MemoryDeadLetter, MemoryIdempotency, StoreCalls, TestBatch};
use kinesis_processor::{kinesis_processor, Outcome, RecordError, RecordMeta, Window};
use serde_json::json;

/// How often the function ran, per line.
#[derive(Default)]
struct Runs(Mutex<BTreeMap<String, u32>>);

impl Runs {
    fn of(&self, line: &str) -> u32 {
        self.0.lock().unwrap().get(line).copied().unwrap_or(0)
    }

    fn total(&self) -> u32 {
        self.0.lock().unwrap().values().sum()
    }
}

#[kinesis_processor(format = text, retries = 1)]
async fn charge(line: String, runs: &Runs) -> Result<(), RecordError> {
    *runs.0.lock().unwrap().entry(line.clone()).or_default() += 1;
    match line.as_str() {
        "fail" => Err(RecordError::retry("the payment service is down")),
        "poison" => Err(RecordError::reject("not an order")),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn lines(lines: &[&str]) -> TestBatch {
    lines.iter().fold(TestBatch::new(), |batch, line| batch.text(line))
}

fn outcomes(report: &kinesis_processor::BatchReport) -> Vec<Outcome> {
    report.records().map(|record| record.outcome()).collect()
}

#[tokio::test]
async fn a_record_done_before_is_skipped_as_a_duplicate() {
    let store = MemoryIdempotency::new();
    let processor = charge().state(Runs::default()).idempotency(store.clone());
    let batch = lines(&["a", "b"]).build();
    let first = processor.process(&batch).await.unwrap();
    assert_eq!(outcomes(&first), [Outcome::Succeeded, Outcome::Succeeded]);
    let again = processor.process(&batch).await.unwrap();
    assert_eq!(outcomes(&again), [Outcome::Duplicate, Outcome::Duplicate]);
    assert!(again.response().batch_item_failures.is_empty(), "duplicates are never reported");
    assert_eq!(again.summary().duplicates, 2);
    assert_eq!(processor.shared_state().total(), 2, "each record ran once");
}

#[tokio::test]
async fn keys_are_the_records_identity_by_default_so_aggregated_user_records_are_their_own() {
    let store = MemoryIdempotency::new();
    let processor = charge().state(Runs::default()).idempotency(store.clone());
    let user = |data: &'static str| UserRecord {
        partition_key: "k",
        explicit_hash_key: None,
        data: data.as_bytes(),
    };
    let batch = TestBatch::new().aggregate(&[user("a"), user("a")]).text("a");
    let sequence_numbers = batch.sequence_numbers();
    let report = processor.process(batch.build()).await.unwrap();
    assert!(report.records().all(|record| record.outcome() == Outcome::Succeeded));
    let mut keys = store.keys();
    keys.sort();
    let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/test-stream";
    let expected = [
        format!("charge#{arn}#{}#0", sequence_numbers[0]),
        format!("charge#{arn}#{}#1", sequence_numbers[0]),
        format!("charge#{arn}#{}#0", sequence_numbers[1]),
    ];
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(keys, expected);
}

// A key function takes the payload by reference as the runtime holds it: here a `String`.
#[allow(clippy::ptr_arg)]
fn order_id(line: &String, _: &RecordMeta) -> String {
    line.split(':').next().unwrap_or_default().to_owned()
}

#[kinesis_processor(format = text, idempotency_key = order_id)]
async fn charge_order(line: String, runs: &Runs) -> Result<(), RecordError> {
    *runs.0.lock().unwrap().entry(line).or_default() += 1;
    Ok(())
}

#[tokio::test]
async fn a_payload_key_catches_a_producer_retry_under_a_new_sequence_number() {
    let store = MemoryIdempotency::new();
    let processor = charge_order().state(Runs::default()).idempotency(store.clone());
    // The producer put order 1 twice; order 2 once.
    let batch = lines(&["1:first put", "2:only put", "1:retried put"]).build();
    let report = processor.process(batch).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Succeeded, Outcome::Succeeded, Outcome::Duplicate]);
    assert_eq!(processor.shared_state().of("1:retried put"), 0);
    let retry_later = lines(&["1:a third put"]).build();
    let report = processor.process(retry_later).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Duplicate]);
    assert!(store.keys().contains(&"charge_order#1".to_owned()));
}

#[tokio::test]
async fn a_record_in_progress_elsewhere_is_a_retryable_failure() {
    let store = MemoryIdempotency::new();
    let processor = charge().state(Runs::default()).idempotency(store.clone()).retries(0);
    let batch = lines(&["a", "b"]);
    let key = format!(
        "charge#arn:aws:kinesis:us-east-1:123456789012:stream/test-stream#{}#0",
        batch.sequence_numbers()[0]
    );
    // Another invocation claimed `a` until a minute from now.
    let now = SystemTime::now();
    store.claim(&key, now, now + Duration::from_secs(60)).await.unwrap();
    let report = processor.process(batch.build()).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Failed, Outcome::NotStarted]);
    assert!(report
        .records()
        .next()
        .unwrap()
        .error()
        .unwrap()
        .contains("in progress in another invocation"));
    assert_eq!(processor.shared_state().total(), 0);

    // Its claim expires: the next delivery takes it over.
    store.claim(&key, now + Duration::from_secs(61), now - Duration::from_secs(1)).await.unwrap();
    let report = processor.process(lines(&["a", "b"]).build()).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Succeeded, Outcome::Succeeded]);
}

#[tokio::test]
async fn a_failed_record_has_its_claim_released_and_runs_again_at_once() {
    let store = MemoryIdempotency::new();
    let processor = charge().state(Runs::default()).idempotency(store.clone()).retries(0);
    let batch = lines(&["a", "fail", "b"]).build();
    let report = processor.process(&batch).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Succeeded, Outcome::Failed, Outcome::NotStarted]);
    assert_eq!(store.calls(), StoreCalls { reads: 1, claims: 2, completions: 1, releases: 1 });
    // Lambda delivers the batch again: `a` is a duplicate, `fail` runs again at once, and
    // `b` (never started, never claimed) runs for the first time.
    let again = processor.process(&batch).await.unwrap();
    assert_eq!(outcomes(&again), [Outcome::Duplicate, Outcome::Failed, Outcome::NotStarted]);
    assert_eq!(processor.shared_state().of("fail"), 2);
    assert_eq!(processor.shared_state().of("b"), 0);
}

#[tokio::test]
async fn a_dead_lettered_record_is_done_once_the_sink_confirms_it() {
    let store = MemoryIdempotency::new();
    let sink = MemoryDeadLetter::new();
    let processor =
        charge().state(Runs::default()).idempotency(store.clone()).dead_letter(sink.clone());
    let batch = lines(&["poison", "a"]).build();
    processor.process(&batch).await.unwrap();
    let again = processor.process(&batch).await.unwrap();
    assert_eq!(outcomes(&again), [Outcome::Duplicate, Outcome::Duplicate]);
    assert_eq!(sink.records().len(), 1, "dead-lettered once");

    let refusing = MemoryDeadLetter::refusing(|_| Some("the queue is gone".into()));
    let store = MemoryIdempotency::new();
    let processor =
        charge().state(Runs::default()).idempotency(store.clone()).dead_letter(refusing);
    let report = processor.process(&batch).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Failed, Outcome::Succeeded]);
    assert_eq!(store.keys().len(), 1, "a refused letter's claim is released; `a` is done");
    let again = processor.process(&batch).await.unwrap();
    assert_eq!(outcomes(&again), [Outcome::Failed, Outcome::Duplicate]);
    assert_eq!(processor.shared_state().of("poison"), 2, "the poison record runs again");
}

#[tokio::test]
async fn an_undecodable_record_is_done_once_dead_lettered() {
    let store = MemoryIdempotency::new();
    let sink = MemoryDeadLetter::new();
    let processor =
        charge().state(Runs::default()).idempotency(store.clone()).dead_letter(sink.clone());
    let batch = TestBatch::new().bytes(&[0xff, 0xfe]).text("a").build();
    let first = processor.process(&batch).await.unwrap();
    assert!(matches!(outcomes(&first)[0], Outcome::DeadLettered(_)));
    assert_eq!(store.calls().claims, 1, "only the record that runs is claimed");
    let again = processor.process(&batch).await.unwrap();
    assert_eq!(outcomes(&again), [Outcome::Duplicate, Outcome::Duplicate]);
    assert_eq!(sink.records().len(), 1, "dead-lettered once");
}

#[tokio::test]
async fn an_unreachable_store_fails_closed() {
    let store = MemoryIdempotency::new();
    store.fail(true);
    let processor = charge().state(Runs::default()).idempotency(store.clone()).retries(1);
    let report = processor.process(lines(&["a", "b"]).build()).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Failed, Outcome::NotStarted]);
    let error = report.records().next().unwrap().error().unwrap();
    assert!(
        error.contains("failing on purpose") && error.contains("does not run unguarded"),
        "{error}"
    );
    assert_eq!(processor.shared_state().total(), 0, "the function never ran unguarded");
    assert_eq!(store.calls().claims, 2, "the claim was retried like a record");
}

/// A memory store whose reads, or whose completions, never answer.
struct Hanging {
    memory: MemoryIdempotency,
    reads: bool,
}

impl IdempotencyStore for Hanging {
    async fn find_done(&self, keys: &[String], now: SystemTime) -> Result<Vec<bool>, StoreError> {
        if self.reads {
            std::future::pending::<()>().await;
        }
        self.memory.find_done(keys, now).await
    }

    async fn claim(
        &self,
        key: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<Claim, StoreError> {
        self.memory.claim(key, now, until).await
    }

    async fn complete(&self, keys: &[String], keep_until: SystemTime) -> Result<(), StoreError> {
        if !self.reads {
            std::future::pending::<()>().await;
        }
        self.memory.complete(keys, keep_until).await
    }

    async fn release(&self, keys: &[String]) -> Result<(), StoreError> {
        self.memory.release(keys).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_read_that_never_answers_stops_at_the_deadline_and_records_are_delivered_again() {
    let memory = MemoryIdempotency::new();
    let store = Hanging { memory: memory.clone(), reads: true };
    let processor = charge().state(Runs::default()).idempotency(store);
    let batch = lines(&["a", "b"]).build();
    let report = processor.process_with_deadline(batch, Duration::from_secs(10)).await.unwrap();
    // The read used the invocation's time: nothing starts after the deadline, and the
    // records are delivered again rather than run unguarded or lost.
    assert_eq!(outcomes(&report), [Outcome::NotStarted, Outcome::NotStarted]);
    assert!(report.checkpoint().is_some());
    assert_eq!(processor.shared_state().total(), 0);
    assert_eq!(memory.calls().claims, 0);
}

#[tokio::test(start_paused = true)]
async fn completions_that_never_answer_still_let_the_invocation_answer_before_its_deadline() {
    let store = Hanging { memory: MemoryIdempotency::new(), reads: false };
    let processor = charge().state(Runs::default()).idempotency(store);
    let started = tokio::time::Instant::now();
    let batch = lines(&["a", "b"]).build();
    let report = processor.process_with_deadline(batch, Duration::from_secs(10)).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Succeeded, Outcome::Succeeded]);
    assert!(report.checkpoint().is_none());
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test]
async fn failing_open_runs_records_unguarded() {
    let store = MemoryIdempotency::new();
    store.fail(true);
    let processor = charge().state(Runs::default()).idempotency(store).idempotency_fail_open(true);
    let report = processor.process(lines(&["a", "b"]).build()).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Succeeded, Outcome::Succeeded]);
    assert_eq!(processor.shared_state().total(), 2);
}

#[tokio::test]
async fn a_key_without_a_store_fails_closed() {
    let processor = charge_order().state(Runs::default());
    let report = processor.process(lines(&["1:a"]).build()).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Failed]);
    assert!(report.records().next().unwrap().error().unwrap().contains("no idempotency store"));
}

#[tokio::test(start_paused = true)]
async fn records_the_deadline_stops_are_never_claimed() {
    let store = MemoryIdempotency::new();
    let processor = charge().state(Runs::default()).idempotency(store.clone());
    let batch = lines(&["a", "slow", "b", "c"]).build();
    let report = processor.process_with_deadline(batch, Duration::from_secs(10)).await.unwrap();
    let expected =
        [Outcome::Succeeded, Outcome::TimedOut, Outcome::NotStarted, Outcome::NotStarted];
    assert_eq!(outcomes(&report), expected);
    assert_eq!(store.calls().claims, 2, "only the records that started");
    assert_eq!(store.keys().len(), 1, "the timed-out record's claim is released");
}

#[tokio::test]
async fn a_batch_of_500_reads_5_times_and_writes_at_most_twice_per_record() {
    let store = MemoryIdempotency::new();
    let processor = charge().state(Runs::default()).idempotency(store.clone()).concurrency(16);
    let names: Vec<String> = (0..500).map(|n| format!("order {n}")).collect();
    let batch =
        names.iter().fold(TestBatch::new(), |batch, name| batch.text(name).partition_key(name));
    let report = processor.process(batch.build()).await.unwrap();
    assert_eq!(report.summary().succeeded, 500);
    let calls = store.calls();
    assert_eq!(calls.reads, 5, "one read per 100 keys");
    assert_eq!(calls.claims, 500);
    assert_eq!(calls.completions + calls.releases, 1, "completions are written together");
}

/// Counts lines into a window; the window end records its totals.
#[kinesis_processor(window, format = text)]
async fn tally(_line: String, total: &mut u64, _published: &Published) -> Result<(), RecordError> {
    *total += 1;
    Ok(())
}

#[derive(Default)]
struct Published(AtomicU32);

async fn publish(_total: u64, _window: &Window, published: &Published) -> Result<(), RecordError> {
    published.0.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test]
async fn a_window_processor_guards_its_window_end_not_its_records() {
    let store = MemoryIdempotency::new();
    let processor =
        tally().on_window_end(publish).state(Published::default()).idempotency(store.clone());
    let start = "2020-12-09T07:04:00Z";
    let last =
        lines(&["a", "b"]).window(start, "2020-12-09T07:05:00Z", json!({})).final_invocation();
    let report = processor.process(last.clone().build()).await.unwrap();
    let errors: Vec<_> = report.records().filter_map(|record| record.error()).collect();
    assert!(report.checkpoint().is_none(), "{errors:?}");
    // A record marked done whose fold was lost with a timed-out invocation would be
    // skipped and undercounted: the only key is the window end's.
    let keys = store.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("tally#window#"), "{keys:?}");
    assert_eq!(store.calls().claims, 1);

    // Lambda retries the final invocation (its response was lost): the records fold
    // again, and the window end does not publish twice.
    let again = processor.process(last.build()).await.unwrap();
    assert_eq!(again.summary().succeeded, 2, "records are not duplicates in a window");
    assert_eq!(processor.shared_state().0.load(Ordering::SeqCst), 1);
}
