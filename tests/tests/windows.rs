//! Window processors: the state answered is the fold of exactly the records before the
//! checkpoint, and the window end runs once everything of the final invocation is done.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{kinesis_processor, Error, Outcome, RecordError, Window};
use serde_json::{json, Value};

const START: &str = "2020-12-09T07:04:00Z";
const END: &str = "2020-12-09T07:05:00Z";

type Counts = BTreeMap<String, u64>;

/// What the tests' window end saw, and how it should answer.
#[derive(Default)]
struct Published {
    windows: Mutex<Vec<(Counts, Window)>>,
    /// Calls of the window end left to fail.
    failures: AtomicU32,
    /// Attempts per line, for the lines that fail once.
    attempts: Mutex<BTreeMap<String, u32>>,
}

/// Counts lines by text; the text says how to misbehave, always after changing the state.
#[kinesis_processor(window, format = text, retries = 1)]
async fn count(
    line: String,
    counts: &mut Counts,
    published: &Published,
) -> Result<(), RecordError> {
    *counts.entry(line.clone()).or_default() += 1;
    let attempt = {
        let mut attempts = published.attempts.lock().unwrap();
        let attempt = attempts.entry(line.clone()).or_default();
        *attempt += 1;
        *attempt
    };
    match line.as_str() {
        "fail" => Err(RecordError::retry("always fails")),
        "fail once" if attempt == 1 => Err(RecordError::retry("fails the first time")),
        "panic once" if attempt == 1 => panic!("panics the first time"),
        "poison" => Err(RecordError::reject("a poison record")),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn publish(
    counts: Counts,
    window: &Window,
    published: &Published,
) -> Result<(), RecordError> {
    let fail = published
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1));
    if fail.is_ok() {
        return Err(RecordError::retry("the table is throttled"));
    }
    published.windows.lock().unwrap().push((counts, window.clone()));
    Ok(())
}

fn lines(lines: &[&str]) -> TestBatch {
    lines.iter().fold(TestBatch::new(), |batch, line| batch.text(line))
}

fn state_of(counts: &[(&str, u64)]) -> Value {
    let value: BTreeMap<&str, u64> = counts.iter().copied().collect();
    json!({"version": 1, "value": value})
}

#[tokio::test]
async fn the_state_is_the_fold_of_the_records_before_the_checkpoint() {
    let processor = count().on_window_end(publish).state(Published::default());
    let batch = lines(&["a", "b", "fail", "c"]).window(START, END, state_of(&[("a", 5)]));
    let report = processor.process(batch.build()).await.unwrap();
    let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
    assert_eq!(
        outcomes,
        [Outcome::Succeeded, Outcome::Succeeded, Outcome::Failed, Outcome::NotStarted]
    );
    assert_eq!(report.window_state(), Some(&state_of(&[("a", 6), ("b", 1)])));
    // The response carries the state beside the checkpoint: Lambda needs both.
    let response = report.outcome().lambda_response();
    assert_eq!(response["state"], state_of(&[("a", 6), ("b", 1)]));
    assert_eq!(
        response["batchItemFailures"][0]["itemIdentifier"],
        report.records().nth(2).unwrap().sequence_number().unwrap()
    );
}

#[tokio::test]
async fn a_checkpoint_in_an_aggregate_answers_the_state_from_before_it() {
    let processor = count().on_window_end(publish).state(Published::default());
    let user = |data: &'static str| UserRecord {
        partition_key: "k",
        explicit_hash_key: None,
        data: data.as_bytes(),
    };
    // Lambda redelivers the whole aggregate from its sequence number: the user records
    // before the failed one must not be in the state it comes back with.
    let batch = lines(&["a"]).aggregate(&[user("b"), user("c"), user("fail"), user("d")]);
    let report = processor.process(batch.window(START, END, json!({})).build()).await.unwrap();
    let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
    let expected = [
        Outcome::Succeeded,
        Outcome::Succeeded,
        Outcome::Succeeded,
        Outcome::Failed,
        Outcome::NotStarted,
    ];
    assert_eq!(outcomes, expected);
    assert_eq!(report.checkpoint(), report.records().nth(1).unwrap().sequence_number());
    assert_eq!(report.window_state(), Some(&state_of(&[("a", 1)])));
}

#[tokio::test]
async fn failed_and_panicking_attempts_leave_no_trace() {
    let processor = count().on_window_end(publish).state(Published::default());
    let batch = lines(&["fail once", "panic once", "a"]).window(START, END, json!({}));
    let report = processor.process(batch.build()).await.unwrap();
    assert!(report.records().all(|r| r.outcome() == Outcome::Succeeded && r.attempts() <= 2));
    let expected = state_of(&[("a", 1), ("fail once", 1), ("panic once", 1)]);
    assert_eq!(report.window_state(), Some(&expected));
}

#[tokio::test]
async fn dead_lettered_records_do_not_count() {
    let sink = MemoryDeadLetter::new();
    let processor =
        count().on_window_end(publish).state(Published::default()).dead_letter(sink.clone());
    let batch = lines(&["a", "poison", "b"]).window(START, END, json!({}));
    let report = processor.process(batch.build()).await.unwrap();
    assert!(report.checkpoint().is_none());
    assert_eq!(sink.records().len(), 1);
    assert_eq!(report.window_state(), Some(&state_of(&[("a", 1), ("b", 1)])));
}

#[tokio::test]
async fn a_refused_dead_letter_stops_the_fold_before_it() {
    let sink = MemoryDeadLetter::refusing(|_| Some("the queue is gone".into()));
    let processor = count().on_window_end(publish).state(Published::default()).dead_letter(sink);
    let batch = lines(&["a", "poison", "b"]).window(START, END, json!({}));
    let report = processor.process(batch.build()).await.unwrap();
    let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
    // The record after the poison one waited for the sink's answer, and so never started.
    assert_eq!(outcomes, [Outcome::Succeeded, Outcome::Failed, Outcome::NotStarted]);
    assert_eq!(report.window_state(), Some(&state_of(&[("a", 1)])));
}

#[tokio::test(start_paused = true)]
async fn a_record_cut_at_the_deadline_leaves_no_trace() {
    let processor = count().on_window_end(publish).state(Published::default());
    let batch = lines(&["a", "slow", "b"]).window(START, END, json!({}));
    let report =
        processor.process_with_deadline(batch.build(), Duration::from_secs(10)).await.unwrap();
    let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
    assert_eq!(outcomes, [Outcome::Succeeded, Outcome::TimedOut, Outcome::NotStarted]);
    assert_eq!(report.window_state(), Some(&state_of(&[("a", 1)])));
}

#[tokio::test]
async fn the_window_end_runs_on_the_final_invocation_with_the_finished_state() {
    let processor = count().on_window_end(publish).state(Published::default());
    let first = lines(&["a"]).window(START, END, json!({})).build();
    let state = processor.process(first).await.unwrap().window_state().unwrap().clone();
    assert!(processor.shared_state().windows.lock().unwrap().is_empty(), "not final yet");

    let last = lines(&["b", "a"]).window(START, END, state).final_invocation().terminated_early();
    let report = processor.process(last.build()).await.unwrap();
    assert!(report.checkpoint().is_none());
    let windows = processor.shared_state().windows.lock().unwrap();
    let [(counts, window)] = windows.as_slice() else { panic!("one publication: {windows:?}") };
    assert_eq!(counts, &Counts::from([("a".into(), 2), ("b".into(), 1)]));
    assert_eq!(window.end().duration_since(window.start()).unwrap(), Duration::from_secs(60));
    assert_eq!(window.start(), SystemTime::UNIX_EPOCH + Duration::from_secs(1_607_497_440));
    assert_eq!(window.shard_id(), Some("shardId-000000000006"));
    assert!(window.terminated_early());
}

#[tokio::test]
async fn an_empty_final_invocation_closes_the_window() {
    let processor = count().on_window_end(publish).state(Published::default());
    let close = TestBatch::new().window(START, END, state_of(&[("a", 3)])).final_invocation();
    let report = processor.process(close.build()).await.unwrap();
    assert_eq!(report.records().len(), 0);
    assert_eq!(report.window_state(), Some(&state_of(&[("a", 3)])));
    let windows = processor.shared_state().windows.lock().unwrap();
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0].0, Counts::from([("a".into(), 3)]));
}

#[tokio::test]
async fn the_window_end_waits_while_a_record_is_reported() {
    let processor = count().on_window_end(publish).state(Published::default());
    let batch = lines(&["a", "fail"]).window(START, END, json!({})).final_invocation();
    let report = processor.process(batch.build()).await.unwrap();
    assert!(report.checkpoint().is_some());
    assert!(processor.shared_state().windows.lock().unwrap().is_empty());
    // Lambda redelivers from the failed record with the fold of the ones before it.
    assert_eq!(report.window_state(), Some(&state_of(&[("a", 1)])));
}

#[tokio::test(start_paused = true)]
async fn a_window_end_failure_is_retried_in_process_then_redelivers_the_final_invocation() {
    let published = Published { failures: AtomicU32::new(1), ..Published::default() };
    let processor = count().on_window_end(publish).state(published);
    let batch = lines(&["a"]).window(START, END, json!({})).final_invocation();
    let report = processor.process(batch.build()).await.unwrap();
    assert!(report.checkpoint().is_none(), "the second attempt succeeded");
    assert_eq!(processor.shared_state().windows.lock().unwrap().len(), 1);

    let published = Published { failures: AtomicU32::new(5), ..Published::default() };
    let processor = count().on_window_end(publish).state(published);
    let given = state_of(&[("z", 9)]);
    let batch = lines(&["a", "b"]).window(START, END, given.clone()).final_invocation();
    let first = batch.sequence_numbers()[0].clone();
    let report = processor.process(batch.build()).await.unwrap();
    // The whole batch again, with the state it came with: nothing is counted twice.
    assert_eq!(report.checkpoint(), Some(first.as_str()));
    assert_eq!(report.window_state(), Some(&given));
    assert!(processor.shared_state().windows.lock().unwrap().is_empty());

    // Without records there is nothing to report: the invocation fails.
    let close = TestBatch::new().window(START, END, given).final_invocation();
    let error = processor.process(close.build()).await.unwrap_err();
    assert!(matches!(error, Error::WindowEnd(_)), "{error}");
    assert!(error.to_string().contains("the table is throttled"), "{error}");
}

#[tokio::test]
async fn a_state_over_a_megabyte_is_refused_before_lambda_sees_it() {
    let processor = count().on_window_end(publish).state(Published::default());
    let long = "x".repeat(600 * 1024);
    let batch = lines(&["a", &long, &format!("{long}y")]).window(START, END, state_of(&[("a", 1)]));
    let first = batch.sequence_numbers()[0].clone();
    let report = processor.process(batch.build()).await.unwrap();
    assert_eq!(report.checkpoint(), Some(first.as_str()));
    assert_eq!(report.window_state(), Some(&state_of(&[("a", 1)])));
}

#[tokio::test]
async fn malformed_window_fields_are_invocation_errors() {
    let processor = count().on_window_end(publish).state(Published::default());
    let cases = [
        (lines(&["a"]).build(), "has no `window`"),
        (lines(&["a"]).window("noon", END, json!({})).build(), "not an RFC 3339 time"),
        (
            lines(&["a"]).window(START, END, json!({"1": 282})).build(),
            "not a state this processor wrote",
        ),
        (
            lines(&["a"]).window(START, END, json!({"version": 1, "value": [1]})).build(),
            "not a state",
        ),
    ];
    for (payload, expected) in cases {
        let error = processor.process(payload).await.unwrap_err();
        assert!(matches!(error, Error::InvalidWindow(_)), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
    }
    assert!(processor.shared_state().attempts.lock().unwrap().is_empty(), "no record ran");
}

/// A window function without a shared state, and without a window end.
#[kinesis_processor(window, format = text)]
fn total(_line: String, total: &mut u64) -> Result<(), RecordError> {
    *total += 1;
    Ok(())
}

#[tokio::test]
async fn a_window_function_needs_neither_a_state_nor_a_window_end() {
    let batch = lines(&["a", "b"]).window(START, END, json!({"version": 1, "value": 40}));
    let report = total().process(batch.final_invocation().build()).await.unwrap();
    assert_eq!(report.window_state(), Some(&json!({"version": 1, "value": 42})));
}
