//! Metrics and logs: every count of the EMF object matches the batch's actual outcomes;
//! outcome events come at the right level with the error chain; no payload reaches a log
//! line unless the processor opts in.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kinesis_processor::dead_letter::DeadLetterReason;
use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{kinesis_processor, Chunk, ChunkError, Outcome, RecordError};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Order {
    item: String,
    quantity: u32,
}

#[derive(Debug)]
struct Downstream(std::io::Error);

impl std::fmt::Display for Downstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("warehouse call failed")
    }
}

impl std::error::Error for Downstream {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[kinesis_processor(retries = 1, max_record_age = "1h", metrics_namespace = "Orders")]
async fn place(order: Order, attempts: &Arc<Mutex<Vec<String>>>) -> Result<(), RecordError> {
    let seen = {
        let mut attempts = attempts.lock().unwrap();
        attempts.push(order.item.clone());
        attempts.iter().filter(|item| **item == order.item).count()
    };
    match order.item.as_str() {
        "banned" => Err(RecordError::reject(format!("item banned, {} requested", order.quantity))),
        "flaky" if seen == 1 => Err(RecordError::retry("blip")),
        "down" => Err(Downstream(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ))
        .into()),
        _ => Ok(()),
    }
}

fn order(item: &str, quantity: u32) -> Value {
    serde_json::json!({ "item": item, "quantity": quantity })
}

/// A batch with one record of every kind of outcome before the failure.
fn mixed_batch() -> TestBatch {
    TestBatch::new()
        .json(&order("apple", 1))
        .json(&order("flaky", 2))
        .json(&order("banned", 3))
        .bytes(br#"{"item": "pear", "quantity": "secret-quantity-42"}"#)
        .json(&order("old", 5))
        .arrival(SystemTime::now() - Duration::from_secs(7200))
        .json(&order("down", 6))
        .json(&order("never", 7))
}

#[tokio::test]
async fn every_metric_matches_the_outcomes_of_the_batch() {
    let _one_at_a_time = CAPTURING.lock().await;
    let processor = place().state(Arc::default()).dead_letter(MemoryDeadLetter::default());
    let report = processor.process(mixed_batch().build()).await.unwrap();
    let emf = processor.emf(report.summary());

    let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
    let count =
        |wanted: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| wanted(o)).count() as f64;
    let dead_lettered = |reason| count(&|o| *o == Outcome::DeadLettered(reason));
    let retried: u32 = report.records().map(|r| r.attempts().saturating_sub(1)).sum();
    let redelivered = report.records().filter(|r| r.redelivered()).count() as f64;

    assert_eq!(emf["RecordsReceived"], 7.0);
    assert_eq!(emf["Units"], 7.0);
    assert_eq!(emf["RecordsSucceeded"], count(&|o| *o == Outcome::Succeeded));
    assert_eq!(emf["RetriedAttempts"], f64::from(retried));
    assert_eq!(emf["ReportedFailures"], count(&|o| *o == Outcome::Failed));
    assert_eq!(emf["RecordsNotStarted"], count(&|o| *o == Outcome::NotStarted));
    assert_eq!(emf["RecordsTimedOut"], count(&|o| *o == Outcome::TimedOut));
    assert_eq!(emf["RecordsRedelivered"], redelivered);
    assert_eq!(emf["DeadLettered"], count(&|o| matches!(o, Outcome::DeadLettered(_))));
    for reason in DeadLetterReason::ALL {
        assert_eq!(emf[format!("DeadLettered.{reason}")], dead_lettered(reason), "{reason}");
    }
    assert_eq!(emf["ExpiredRecords"], dead_lettered(DeadLetterReason::Expired));
    assert_eq!(emf["DecodeErrors"], dead_lettered(DeadLetterReason::DecodeError));
    // The oldest record is two hours old.
    let age = emf["IteratorAge"].as_f64().unwrap();
    assert!((7_200_000.0..7_260_000.0).contains(&age), "{age}");
    assert!(emf["BatchDuration"].as_f64().unwrap() >= 0.0);
    assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Orders");
    assert_eq!(emf["StreamName"], "test-stream");
    assert_eq!(emf["FunctionName"], "place");

    // The batch holds each outcome the metrics name.
    assert_eq!(
        outcomes,
        [
            Outcome::Succeeded,
            Outcome::Succeeded,
            Outcome::DeadLettered(DeadLetterReason::Rejected),
            Outcome::DeadLettered(DeadLetterReason::DecodeError),
            Outcome::DeadLettered(DeadLetterReason::Expired),
            Outcome::Failed,
            Outcome::NotStarted,
        ]
    );
}

/// Log lines written by the processor, in a buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// One test at a time: a thread-local subscriber set while another test thread runs with
/// none can find callsite interest cached as "never" and miss lines (seen in CI).
static CAPTURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What `work` logs with a subscriber that takes events up to `level`.
async fn logged_at(level: tracing::Level, work: impl std::future::Future<Output = ()>) -> String {
    let _one_at_a_time = CAPTURING.lock().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(level)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    work.await;
    captured.text()
}

async fn logs_of(log_payloads: bool) -> String {
    let processor = place()
        .state(Arc::default())
        .dead_letter(MemoryDeadLetter::default())
        .log_payloads(log_payloads);
    logged_at(tracing::Level::INFO, async {
        processor.process(mixed_batch().build()).await.unwrap();
    })
    .await
}

fn line_with<'a>(logs: &'a str, needle: &str) -> &'a str {
    logs.lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{logs}"))
}

#[tokio::test]
async fn outcomes_are_logged_at_their_level_with_the_error_chain() {
    let logs = logs_of(false).await;
    let rejected = line_with(&logs, "reason=\"rejected\"");
    assert!(rejected.contains(" WARN "), "{rejected}");
    assert!(rejected.contains("dead-lettering record"), "{rejected}");
    let failed = line_with(&logs, "record failed");
    assert!(failed.contains("ERROR"), "{failed}");
    assert!(failed.contains("warehouse call failed: connection refused"), "the chain: {failed}");
    // The invocation span names the batch on every line.
    for field in [
        "request_id=\"local-",
        "stream=\"test-stream\"",
        "shard_id=\"shardId-000000000006\"",
        "batch_size=7",
        "units=7",
        "first_sequence_number=",
        "last_sequence_number=",
    ] {
        assert!(failed.contains(field), "{field} missing from {failed}");
    }
}

#[tokio::test]
async fn no_payload_reaches_the_logs_unless_asked() {
    let logs = logs_of(false).await;
    assert!(!logs.contains("secret-quantity-42"), "a payload value leaked:\n{logs}");
    let decode = line_with(&logs, "reason=\"decode_error\"");
    assert!(decode.contains("does not fit the payload type at line 1 column"), "{decode}");
    assert!(!decode.contains(" data="), "{decode}");

    let logs = logs_of(true).await;
    assert!(logs.contains("secret-quantity-42"), "log_payloads(true) logs the full error:\n{logs}");
    assert!(line_with(&logs, "reason=\"rejected\"").contains("data="));
}

#[kinesis_processor(format = text)]
async fn announce(line: String) -> Result<(), RecordError> {
    tracing::info!("processing {line}");
    Ok(())
}

/// What `announce` logs with the subscriber taking events up to `level`.
async fn record_lines_at(level: tracing::Level) -> String {
    let batch = TestBatch::new().text("hello").partition_key("user-7").build();
    logged_at(level, async {
        announce().process(batch).await.unwrap();
    })
    .await
}

#[tokio::test]
async fn each_record_runs_in_a_debug_span_naming_it() {
    let logs = record_lines_at(tracing::Level::DEBUG).await;
    let line = line_with(&logs, "processing hello");
    for field in ["record{", "partition_key=\"user-7\"", "sequence_number=", "attempt=1"] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
    // Without debug spans, the same event comes without the record span.
    let logs = record_lines_at(tracing::Level::INFO).await;
    let line = line_with(&logs, "processing hello");
    assert!(!line.contains("record{"), "{line}");
}

#[kinesis_processor(format = text, chunk = 2)]
async fn announce_chunk(lines: Chunk<String>) -> Result<(), ChunkError> {
    tracing::info!("writing {} lines", lines.len());
    Ok(())
}

#[tokio::test]
async fn each_chunk_runs_in_a_debug_span_naming_its_first_and_last_records() {
    let sent = TestBatch::new().text("a").text("b").text("c");
    let sequence_numbers = sent.sequence_numbers();
    let logs = logged_at(tracing::Level::DEBUG, async {
        announce_chunk().process(sent.build()).await.unwrap();
    })
    .await;
    let line = line_with(&logs, "writing 2 lines");
    for field in [
        "chunk{records=2".to_owned(),
        format!("first_sequence_number=\"{}\"", sequence_numbers[0]),
        format!("last_sequence_number=\"{}\"", sequence_numbers[1]),
        "attempt=1".to_owned(),
    ] {
        assert!(line.contains(&field), "{field} missing from {line}");
    }
    let line = line_with(&logs, "writing 1 lines");
    let third = format!("first_sequence_number=\"{}\"", sequence_numbers[2]);
    assert!(line.contains(&third), "{line}");
}
