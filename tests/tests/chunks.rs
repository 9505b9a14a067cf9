//! Chunk functions: up to N records per call, in stream order, with failures still per
//! record. One test (at least) per rule: how chunks form, what is retried and how, what is
//! dead-lettered, the checkpoint, concurrency by key, the deadline, panics, KPL and the
//! counts.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::dead_letter::DeadLetterReason;
use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{
    kinesis_processor, BatchReport, Chunk, ChunkError, OnRetriesExhausted, Outcome, RecordError,
};
use serde::Deserialize;

/// A downstream that takes lines `id:behaviour` in bulk and answers by behaviour:
/// `ok`; `retry-once` (unprocessed on its first call); `retry-always`; `reject`;
/// `down-once` (the whole call fails once); `poison` (the whole call is rejected);
/// `panic-once` (the call panics once); `outside` (names a record the chunk lacks).
#[derive(Default)]
struct Downstream {
    /// The ids of each call, in order.
    calls: Mutex<Vec<Vec<String>>>,
    /// Calls that held each id.
    seen: Mutex<HashMap<String, u32>>,
}

impl Downstream {
    fn write(&self, lines: &Chunk<'_, String>) -> Result<(), ChunkError> {
        let ids: Vec<String> = lines.payloads().map(|line| id(line).to_owned()).collect();
        self.calls.lock().unwrap().push(ids);
        let mut seen = self.seen.lock().unwrap();
        let mut first_call = false;
        for line in lines.payloads() {
            let count = seen.entry(id(line).to_owned()).or_default();
            *count += 1;
            first_call |= *count == 1;
        }
        drop(seen);
        let any = |behaviour: &str| lines.payloads().any(|line| line.ends_with(behaviour));
        if any(":panic-once") && first_call {
            panic!("the bulk client panicked");
        }
        if any(":down-once") && first_call {
            return Err(std::io::Error::other("connection reset").into());
        }
        if any(":poison") {
            return Err(RecordError::reject("the request is malformed").into());
        }
        if any(":outside") {
            return Err(ChunkError::records([(99, RecordError::retry("no such record"))]));
        }
        let seen = self.seen.lock().unwrap();
        lines.fail_where(|record| {
            let line = record.payload();
            match line.split_once(':').map(|(_, behaviour)| behaviour) {
                Some("retry-once") if seen[id(line)] == 1 => {
                    Some(RecordError::retry("unprocessed"))
                }
                Some("retry-always") => Some(RecordError::retry("unprocessed")),
                Some("reject") => Some(RecordError::reject("an item over the size limit")),
                _ => None,
            }
        })
    }

    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }
}

fn id(line: &str) -> &str {
    line.split_once(':').map_or(line, |(id, _)| id)
}

#[kinesis_processor(format = text, chunk = 3, retries = 2)]
async fn write(lines: Chunk<String>, downstream: &Downstream) -> Result<(), ChunkError> {
    downstream.write(&lines)
}

fn batch(lines: &[&str]) -> TestBatch {
    lines.iter().fold(TestBatch::new(), |batch, line| batch.text(line))
}

fn outcomes(report: &BatchReport) -> Vec<Outcome> {
    report.records().map(|record| record.outcome()).collect()
}

fn attempts(report: &BatchReport) -> Vec<u32> {
    report.records().map(|record| record.attempts()).collect()
}

fn reported(report: &BatchReport) -> Vec<String> {
    let failures = &report.response().batch_item_failures;
    failures.iter().map(|f| f.item_identifier.clone().unwrap()).collect()
}

fn ids(calls: &[&[&str]]) -> Vec<Vec<String>> {
    calls.iter().map(|call| call.iter().map(|id| id.to_string()).collect()).collect()
}

#[tokio::test]
async fn chunks_hold_up_to_n_records_in_stream_order() {
    let processor = write().state(Downstream::default());
    let lines = ["a:ok", "b:ok", "c:ok", "d:ok", "e:ok", "f:ok", "g:ok"];
    let report = processor.process(batch(&lines).build()).await.unwrap();
    let calls = processor.shared_state().calls();
    assert_eq!(calls, ids(&[&["a", "b", "c"], &["d", "e", "f"], &["g"]]));
    assert_eq!(outcomes(&report), [Outcome::Succeeded; 7]);
    assert_eq!(attempts(&report), [1; 7]);
    let summary = report.summary();
    assert_eq!((summary.chunks, summary.chunk_records, summary.partial_chunk_failures), (3, 7, 0));
    assert!(reported(&report).is_empty());
}

#[tokio::test]
async fn only_the_records_that_failed_are_called_again_as_a_smaller_chunk() {
    let processor = write().state(Downstream::default());
    let lines = ["a:ok", "b:retry-once", "c:retry-once"];
    let report = processor.process(batch(&lines).build()).await.unwrap();
    let calls = processor.shared_state().calls();
    assert_eq!(calls, ids(&[&["a", "b", "c"], &["b", "c"]]));
    assert_eq!(outcomes(&report), [Outcome::Succeeded; 3]);
    assert_eq!(attempts(&report), [1, 2, 2]);
    let summary = report.summary();
    assert_eq!(
        (summary.chunks, summary.partial_chunk_failures, summary.retried_attempts),
        (2, 1, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_like_a_records_and_the_checkpoint_is_the_first_not_done() {
    let processor = write().state(Downstream::default());
    let sent = batch(&["a:ok", "b:retry-always", "c:ok", "d:ok"]);
    let sequence_numbers = sent.sequence_numbers();
    let started = tokio::time::Instant::now();
    let report = processor.process(sent.build()).await.unwrap();
    // Two pauses, as for a record: 25-50 ms, then 50-100 ms.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(75) && waited <= Duration::from_millis(150),
        "{waited:?}"
    );
    let calls = processor.shared_state().calls();
    assert_eq!(calls, ids(&[&["a", "b", "c"], &["b"], &["b"]]), "d's chunk never starts");
    assert_eq!(
        outcomes(&report),
        [Outcome::Succeeded, Outcome::Failed, Outcome::Succeeded, Outcome::NotStarted]
    );
    assert_eq!(attempts(&report), [1, 3, 1, 0]);
    assert_eq!(reported(&report), [sequence_numbers[1].clone()]);
    let redelivered: Vec<bool> = report.records().map(|record| record.redelivered()).collect();
    assert_eq!(redelivered, [false, true, true, true], "c ran, and comes again");
    assert_eq!(report.summary().redelivered, 3);
}

#[tokio::test]
async fn a_rejected_record_is_dead_lettered_at_once_and_not_called_again() {
    let dlq = MemoryDeadLetter::new();
    let processor = write().state(Downstream::default()).dead_letter(dlq.clone());
    let lines = ["a:ok", "b:reject", "c:retry-once", "d:ok"];
    let report = processor.process(batch(&lines).build()).await.unwrap();
    let calls = processor.shared_state().calls();
    assert_eq!(calls, ids(&[&["a", "b", "c"], &["c"], &["d"]]));
    let rejected = Outcome::DeadLettered(DeadLetterReason::Rejected);
    let expected = [Outcome::Succeeded, rejected, Outcome::Succeeded, Outcome::Succeeded];
    assert_eq!(outcomes(&report), expected);
    let letters = dlq.records();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, DeadLetterReason::Rejected);
    assert!(letters[0].error.contains("over the size limit"), "{}", letters[0].error);
    assert!(reported(&report).is_empty());
}

#[tokio::test]
async fn an_error_fails_the_whole_chunk_retryably() {
    let processor = write().state(Downstream::default());
    let report = processor.process(batch(&["a:ok", "b:down-once"]).build()).await.unwrap();
    assert_eq!(processor.shared_state().calls(), ids(&[&["a", "b"], &["a", "b"]]));
    assert_eq!(outcomes(&report), [Outcome::Succeeded; 2]);
    assert_eq!(attempts(&report), [2, 2]);
    assert_eq!(report.summary().partial_chunk_failures, 0, "a whole failure is not partial");
}

#[tokio::test]
async fn a_whole_chunk_rejection_dead_letters_every_record_of_it() {
    let dlq = MemoryDeadLetter::new();
    let processor = write().state(Downstream::default()).dead_letter(dlq.clone());
    let lines = ["a:ok", "b:poison", "c:ok", "d:ok"];
    let report = processor.process(batch(&lines).build()).await.unwrap();
    let rejected = Outcome::DeadLettered(DeadLetterReason::Rejected);
    assert_eq!(outcomes(&report), [rejected, rejected, rejected, Outcome::Succeeded]);
    let letters = dlq.records();
    assert_eq!(letters.len(), 3);
    assert!(letters.iter().all(|letter| letter.error == "the request is malformed"));
}

#[tokio::test]
async fn a_panic_fails_the_chunk_retryably() {
    let processor = write().state(Downstream::default());
    let report = processor.process(batch(&["a:panic-once", "b:ok"]).build()).await.unwrap();
    assert_eq!(processor.shared_state().calls().len(), 2);
    assert_eq!(outcomes(&report), [Outcome::Succeeded; 2]);
    assert_eq!(attempts(&report), [2, 2]);
}

#[tokio::test]
async fn a_chunk_that_always_panics_is_reported_with_the_panic() {
    #[kinesis_processor(format = text, chunk = 2, retries = 1)]
    async fn crash(_lines: Chunk<String>) -> Result<(), ChunkError> {
        panic!("out of memory in the encoder")
    }
    let report = crash().process(batch(&["a", "b", "c"]).build()).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Failed, Outcome::Failed, Outcome::NotStarted]);
    let error = report.records().next().unwrap().error().unwrap().to_owned();
    assert!(error.contains("panicked: out of memory in the encoder"), "{error}");
}

#[tokio::test]
async fn a_position_outside_the_chunk_fails_it_whole() {
    let processor = write().state(Downstream::default()).retries(0);
    let report = processor.process(batch(&["a:ok", "b:outside"]).build()).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Failed, Outcome::Failed]);
    let error = report.records().next().unwrap().error().unwrap().to_owned();
    assert!(error.contains("named record 99 of a chunk of 2"), "{error}");
}

#[tokio::test]
async fn exhausted_records_can_be_dead_lettered_and_the_batch_moves_on() {
    let dlq = MemoryDeadLetter::new();
    let processor = write()
        .state(Downstream::default())
        .dead_letter(dlq.clone())
        .on_retries_exhausted(OnRetriesExhausted::DeadLetter);
    let report = processor
        .process(batch(&["a:retry-always", "b:ok", "c:ok", "d:ok"]).build())
        .await
        .unwrap();
    let exhausted = Outcome::DeadLettered(DeadLetterReason::RetriesExhausted);
    let expected = [exhausted, Outcome::Succeeded, Outcome::Succeeded, Outcome::Succeeded];
    assert_eq!(outcomes(&report), expected);
    assert_eq!(dlq.records().len(), 1);
    assert!(reported(&report).is_empty());
}

#[derive(Deserialize)]
struct Item {
    id: u32,
}

#[kinesis_processor(chunk = 10)]
async fn items(items: Chunk<Item>, calls: &Mutex<Vec<Vec<u32>>>) -> Result<(), ChunkError> {
    calls.lock().unwrap().push(items.payloads().map(|item| item.id).collect());
    Ok(())
}

#[tokio::test]
async fn records_that_do_not_decode_or_are_too_old_never_enter_a_chunk() {
    let dlq = MemoryDeadLetter::new();
    let processor = items()
        .state(Mutex::default())
        .dead_letter(dlq.clone())
        .max_record_age(Duration::from_secs(60));
    let old = SystemTime::now() - Duration::from_secs(3600);
    let sent = TestBatch::new()
        .json(&serde_json::json!({"id": 1}))
        .text("not json")
        .json(&serde_json::json!({"id": 3}))
        .arrival(old)
        .json(&serde_json::json!({"id": 4}));
    let report = processor.process(sent.build()).await.unwrap();
    assert_eq!(*processor.shared_state().lock().unwrap(), [vec![1, 4]]);
    let expected = [
        Outcome::Succeeded,
        Outcome::DeadLettered(DeadLetterReason::DecodeError),
        Outcome::DeadLettered(DeadLetterReason::Expired),
        Outcome::Succeeded,
    ];
    assert_eq!(outcomes(&report), expected);
    assert_eq!(report.summary().chunk_records, 2);
}

#[tokio::test]
async fn the_user_records_of_aggregates_join_chunks_like_records() {
    let processor = items().state(Mutex::default());
    let (one, two, three) = (br#"{"id": 1}"#, br#"{"id": 2}"#, br#"{"id": 3}"#);
    let user =
        |data: &'static [u8]| UserRecord { partition_key: "k", explicit_hash_key: None, data };
    let sent = TestBatch::new()
        .aggregate(&[user(one), user(two)])
        .json(&serde_json::json!({"id": 10}))
        .aggregate(&[user(three)]);
    let report = processor.process(sent.build()).await.unwrap();
    assert_eq!(*processor.shared_state().lock().unwrap(), [vec![1, 2, 10, 3]]);
    assert_eq!(report.summary().units, 4);
    assert_eq!(outcomes(&report), [Outcome::Succeeded; 4]);
}

/// Chunks in flight by partition key, to find any key in two at once.
#[derive(Default)]
struct InFlight {
    keys: Mutex<HashSet<String>>,
    /// Chunks running together, at most, and keys found in two chunks at once.
    most: Mutex<(usize, Vec<String>)>,
    running: Mutex<usize>,
    /// Each key's records, in the order calls began.
    order: Mutex<HashMap<String, Vec<u32>>>,
}

#[kinesis_processor(chunk = 4, concurrency = 4)]
async fn slow(items: Chunk<Item>, flight: &InFlight) -> Result<(), ChunkError> {
    let keys: HashSet<String> =
        items.iter().map(|record| record.meta().partition_key().to_owned()).collect();
    {
        let mut in_flight = flight.keys.lock().unwrap();
        let mut most = flight.most.lock().unwrap();
        most.1.extend(keys.iter().filter(|key| in_flight.contains(*key)).cloned());
        in_flight.extend(keys.iter().cloned());
        let mut running = flight.running.lock().unwrap();
        *running += 1;
        most.0 = most.0.max(*running);
        let mut order = flight.order.lock().unwrap();
        for record in items.iter() {
            let key = record.meta().partition_key().to_owned();
            order.entry(key).or_default().push(record.payload().id);
        }
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    *flight.running.lock().unwrap() -= 1;
    let mut in_flight = flight.keys.lock().unwrap();
    keys.iter().for_each(|key| {
        in_flight.remove(key);
    });
    Ok(())
}

#[tokio::test]
async fn chunks_run_at_once_but_a_key_is_never_in_two_and_each_key_keeps_its_order() {
    let processor = slow().state(InFlight::default());
    // 48 records over 6 keys, each key's ids rising in stream order.
    let sent = (0..48u32).fold(TestBatch::new(), |batch, id| {
        batch.json(&serde_json::json!({ "id": id })).partition_key(&format!("key-{}", id % 6))
    });
    let report = processor.process(sent.build()).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::Succeeded; 48]);
    let flight = processor.shared_state();
    let (most, overlaps) = flight.most.lock().unwrap().clone();
    assert!(overlaps.is_empty(), "keys in two chunks at once: {overlaps:?}");
    assert!(most > 1, "chunks ran one at a time");
    for (key, ids) in flight.order.lock().unwrap().iter() {
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{key}: {ids:?}");
        assert_eq!(ids.len(), 8, "{key}");
    }
    assert!(report.summary().chunks >= 12, "{:?}", report.summary());
}

#[kinesis_processor(format = text, chunk = 2, deadline_margin = "50ms")]
async fn stalls(lines: Chunk<String>) -> Result<(), ChunkError> {
    if lines.payloads().any(|line| line == "slow") {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_deadline_times_out_a_running_chunk_and_starts_no_more() {
    let sent = batch(&["a", "b", "slow", "c", "d"]);
    let sequence_numbers = sent.sequence_numbers();
    let report =
        stalls().process_with_deadline(sent.build(), Duration::from_millis(500)).await.unwrap();
    let expected = [
        Outcome::Succeeded,
        Outcome::Succeeded,
        Outcome::TimedOut,
        Outcome::TimedOut,
        Outcome::NotStarted,
    ];
    assert_eq!(outcomes(&report), expected);
    assert_eq!(reported(&report), [sequence_numbers[2].clone()]);
}

#[tokio::test]
async fn the_metrics_count_chunks_records_per_chunk_and_partial_failures() {
    let processor = write().state(Downstream::default());
    let lines = ["a:ok", "b:retry-once", "c:ok", "d:ok"];
    let report = processor.process(batch(&lines).build()).await.unwrap();
    let emf = processor.emf(report.summary());
    // Calls: [a b c], [b], [d].
    assert_eq!(emf["Chunks"], 3.0);
    assert!((emf["RecordsPerChunk"].as_f64().unwrap() - 5.0 / 3.0).abs() < 1e-9, "{emf}");
    assert_eq!(emf["PartialChunkFailures"], 1.0);
    let names = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"].to_string();
    assert!(names.contains("\"Chunks\"") && names.contains("RecordsPerChunk"), "{names}");
    // A per-record function writes none of them.
    let per_record = processor.emf(&Default::default());
    assert!(per_record.get("Chunks").is_none(), "{per_record}");
}

#[kinesis_processor(format = text, chunk = 2, retries = 3, deadline_margin = "100ms")]
async fn cut(lines: Chunk<String>, calls: &std::sync::atomic::AtomicU32) -> Result<(), ChunkError> {
    use std::sync::atomic::Ordering;
    if calls.fetch_add(1, Ordering::Relaxed) == 0 {
        return Err(ChunkError::records([(1, RecordError::retry("not taken"))]));
    }
    let _ = lines;
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_chunk_cut_at_the_deadline_still_counts_the_calls_it_made() {
    let processor = cut().state(std::sync::atomic::AtomicU32::new(0));
    let sent = batch(&["a", "b"]).build();
    let report = processor.process_with_deadline(sent, Duration::from_millis(600)).await.unwrap();
    assert_eq!(outcomes(&report), [Outcome::TimedOut, Outcome::TimedOut]);
    let summary = report.summary();
    assert_eq!((summary.chunks, summary.chunk_records, summary.partial_chunk_failures), (2, 3, 1));
}
