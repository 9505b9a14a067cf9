//! The hostile-input corpus of `tests/data/bad-input/`: every payload gives the outcome
//! its manifest names (a per-record decode failure, or an invocation error with a clear
//! message), never a panic, never a lost record.

mod answers;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::testing::aggregate;
use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{kinesis_processor, BatchOutcome, BatchReport, Error, RecordError};
use md5::Digest as _;
use serde_json::Value;

#[kinesis_processor(format = bytes, retries = 0)]
async fn bytes(_data: Vec<u8>) -> Result<(), RecordError> {
    Ok(())
}

#[kinesis_processor(format = text, retries = 0)]
async fn text(_line: String) -> Result<(), RecordError> {
    Ok(())
}

#[kinesis_processor(format = json, retries = 0)]
async fn json(_value: Value) -> Result<(), RecordError> {
    Ok(())
}

fn corpus() -> Vec<Value> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/bad-input/manifest.json");
    let manifest: Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    manifest["cases"].as_array().unwrap().clone()
}

fn payload(case: &Value) -> Vec<u8> {
    if let Some(file) = case["file"].as_str() {
        return std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("data/bad-input").join(file),
        )
        .unwrap();
    }
    generate(case["generate"].as_str().unwrap())
}

/// The cases too large to commit, or built from aggregates.
fn generate(name: &str) -> Vec<u8> {
    let around =
        |middle: &[u8]| TestBatch::new().text("before").bytes(middle).text("after").build();
    match name {
        "ten-megabyte-record" => around(&vec![b'x'; 10 * 1024 * 1024]),
        "ten-thousand-records" => {
            (0..10_000).fold(TestBatch::new(), |b, n| b.text(&n.to_string())).build()
        }
        "ten-thousand-and-one-records" => {
            (0..10_001).fold(TestBatch::new(), |b, n| b.text(&n.to_string())).build()
        }
        // 6 MB, as much as Lambda sends, of the smallest records JSON can write.
        "two-million-empty-records" => {
            let mut payload = b"{\"Records\":[{}".to_vec();
            payload.extend(",{}".repeat(1_999_999).bytes());
            payload.extend(b"]}");
            payload
        }
        "kpl-truncated" => {
            let full = good_aggregate();
            around(&sealed(&full[4..full.len() - 16 - 3]))
        }
        "kpl-md5-corrupted" => {
            let mut corrupted = good_aggregate();
            *corrupted.last_mut().unwrap() ^= 0x55;
            around(&corrupted)
        }
        "kpl-partition-key-index-out-of-range" => {
            around(&sealed(&body(&[(9, None, b"x")], &["k"], &[])))
        }
        "kpl-explicit-hash-key-index-out-of-range" => {
            around(&sealed(&body(&[(0, Some(4), b"x")], &["k"], &["1"])))
        }
        "kpl-no-user-records" => around(&sealed(&body(&[], &["k"], &[]))),
        other => panic!("no generator for {other}"),
    }
}

fn good_aggregate() -> Vec<u8> {
    let records = [
        UserRecord { partition_key: "a", explicit_hash_key: None, data: b"first user record" },
        UserRecord { partition_key: "b", explicit_hash_key: None, data: b"second user record" },
    ];
    aggregate(records).unwrap().remove(0).data
}

/// Magic, `body`, and the MD5 of `body`.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut data = vec![0xF3, 0x89, 0x9A, 0xC2];
    data.extend_from_slice(body);
    data.extend_from_slice(&md5::Md5::digest(body));
    data
}

/// An `AggregatedRecord` written by hand: (partition key index, explicit hash key index,
/// data) per record, and the two key tables.
fn body(
    records: &[(u64, Option<u64>, &[u8])],
    partition_keys: &[&str],
    hash_keys: &[&str],
) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push(n as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    fn bytes_field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
        varint(out, number << 3 | 2);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    for key in partition_keys {
        bytes_field(&mut out, 1, key.as_bytes());
    }
    for key in hash_keys {
        bytes_field(&mut out, 2, key.as_bytes());
    }
    for (pk, ehk, data) in records {
        let mut inner = Vec::new();
        varint(&mut inner, 1 << 3);
        varint(&mut inner, *pk);
        if let Some(ehk) = ehk {
            varint(&mut inner, 2 << 3);
            varint(&mut inner, *ehk);
        }
        bytes_field(&mut inner, 3, data);
        bytes_field(&mut out, 3, &inner);
    }
    out
}

async fn process(
    format: &str,
    payload: &[u8],
    with_sink: Option<MemoryDeadLetter>,
) -> Result<BatchReport, Error> {
    match (format, with_sink) {
        ("bytes", Some(sink)) => bytes().dead_letter(sink).process(payload).await,
        ("bytes", None) => bytes().process(payload).await,
        ("text", Some(sink)) => text().dead_letter(sink).process(payload).await,
        ("text", None) => text().process(payload).await,
        ("json", Some(sink)) => json().dead_letter(sink).process(payload).await,
        ("json", None) => json().process(payload).await,
        (other, _) => panic!("unknown format {other}"),
    }
}

/// What the Lambda loop runs: [`process`] without the per-record rows.
async fn respond(
    format: &str,
    payload: &[u8],
    with_sink: Option<MemoryDeadLetter>,
) -> Result<BatchOutcome, Error> {
    let remaining = Duration::from_secs(900);
    match (format, with_sink) {
        ("bytes", Some(sink)) => {
            bytes().dead_letter(sink).respond(payload, "bad-input", remaining).await
        }
        ("bytes", None) => bytes().respond(payload, "bad-input", remaining).await,
        ("text", Some(sink)) => {
            text().dead_letter(sink).respond(payload, "bad-input", remaining).await
        }
        ("text", None) => text().respond(payload, "bad-input", remaining).await,
        ("json", Some(sink)) => {
            json().dead_letter(sink).respond(payload, "bad-input", remaining).await
        }
        ("json", None) => json().respond(payload, "bad-input", remaining).await,
        (other, _) => panic!("unknown format {other}"),
    }
}

#[tokio::test]
async fn the_lambda_loop_answers_every_hostile_payload_as_process_does() {
    for case in &corpus() {
        let name = case["file"].as_str().or(case["generate"].as_str()).unwrap();
        let format = case["format"].as_str().unwrap();
        let payload = payload(case);
        for sink in [None, Some(MemoryDeadLetter::default())] {
            let case = format!("{name}, with a sink: {}", sink.is_some());
            let report = process(format, &payload, sink.clone()).await;
            match (report, respond(format, &payload, sink).await) {
                (Ok(report), Ok(outcome)) => answers::assert_same_answer(&report, &outcome, &case),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{case}"),
                (a, b) => panic!("{case}: process gave {a:?}, respond {b:?}"),
            }
        }
    }
}

#[tokio::test]
async fn every_hostile_payload_has_its_expected_outcome() {
    let cases = corpus();
    assert!(cases.len() >= 40, "the corpus holds {} cases", cases.len());
    for case in &cases {
        let name = case["file"].as_str().or(case["generate"].as_str()).unwrap();
        let format = case["format"].as_str().unwrap();
        let payload = payload(case);
        let expect = &case["expect"];
        let sink = MemoryDeadLetter::default();
        let outcome = process(format, &payload, Some(sink.clone())).await;
        if let Some(contains) = expect["invocation_error"].as_str() {
            let error =
                outcome.err().unwrap_or_else(|| panic!("{name}: expected an invocation error"));
            assert!(matches!(error, Error::InvalidEvent(_)), "{name}: {error:?}");
            assert!(error.to_string().contains(contains), "{name}: {error} lacks {contains:?}");
            continue;
        }
        let report = outcome.unwrap_or_else(|error| panic!("{name}: {error}"));
        let total = expect["records"].as_u64().unwrap() as usize;
        let decode_errors = expect["decode_errors"].as_u64().unwrap() as usize;
        assert_eq!(report.records().len(), total, "{name}");
        assert_eq!(report.summary().decode_errors, decode_errors, "{name}");
        assert!(
            report.records().all(|r| r.outcome().is_finished()),
            "{name}: every record is done"
        );
        assert!(report.response().batch_item_failures.is_empty(), "{name}");
        let letters = sink.records();
        assert_eq!(letters.len(), decode_errors, "{name}: each decode failure is dead-lettered");
        for letter in &letters {
            assert!(!letter.error.is_empty(), "{name}: a reason is given");
            assert_eq!(
                letter.reason,
                kinesis_processor::dead_letter::DeadLetterReason::DecodeError,
                "{name}"
            );
        }
        if let Some(unknown) = expect["unknown_shards"].as_u64() {
            let count = report.records().filter(|r| r.shard_id().is_none()).count();
            assert_eq!(count as u64, unknown, "{name}: records whose shard is unknown");
        }
        if let Some(fields) = expect.get("dead_letter") {
            let letter = &letters[0];
            if let Some(sequence_number) = fields["sequence_number"].as_str() {
                assert_eq!(letter.sequence_number.as_deref(), Some(sequence_number), "{name}");
            }
            if let Some(raw_record) = fields["raw_record"].as_str() {
                assert_eq!(letter.raw_record.as_deref(), Some(raw_record), "{name}");
            }
        }
    }
}

/// Counts the records it is given.
#[kinesis_processor(format = text, retries = 0)]
async fn counted(_line: String, seen: &AtomicUsize) -> Result<(), RecordError> {
    seen.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[tokio::test]
async fn a_payload_over_ten_thousand_records_is_refused_before_any_record_runs() {
    let processor = counted().state(AtomicUsize::new(0));
    let at_most = (0..10_000).fold(TestBatch::new(), |b, n| b.text(&n.to_string())).build();
    let report = processor.process(&at_most).await.unwrap();
    assert_eq!(report.summary().succeeded, 10_000);
    let over = (0..10_001).fold(TestBatch::new(), |b, n| b.text(&n.to_string())).build();
    let error = processor.process(&over).await.unwrap_err();
    assert!(matches!(error, Error::InvalidEvent(_)), "{error:?}");
    assert!(error.to_string().contains("more than 10000 records"), "{error}");
    assert_eq!(processor.shared_state().load(Ordering::Relaxed), 10_000, "none of 10,001 ran");
}

#[tokio::test]
async fn a_record_without_kinesis_is_reported_by_the_sequence_number_of_its_event_id() {
    let case = corpus().into_iter().find(|case| case["file"] == "missing-kinesis.json").unwrap();
    let report = bytes().process(payload(&case)).await.unwrap();
    let expected = case["expect"]["dead_letter"]["sequence_number"].as_str();
    assert_eq!(report.checkpoint(), expected, "without a sink, the failure names it");
}

#[tokio::test]
async fn without_a_sink_nothing_is_dropped_either() {
    for case in &corpus() {
        let name = case["file"].as_str().or(case["generate"].as_str()).unwrap();
        let format = case["format"].as_str().unwrap();
        match process(format, &payload(case), None).await {
            Ok(report) => {
                for record in report.records() {
                    assert!(
                        record.outcome().is_finished() || record.redelivered(),
                        "{name}: {record:?} is lost"
                    );
                }
                let failed = report.records().any(|r| !r.outcome().is_finished());
                assert_eq!(failed, report.checkpoint().is_some(), "{name}: a failure is reported");
            }
            // The whole batch is retried: nothing is lost.
            Err(Error::InvalidEvent(_) | Error::Uncheckpointable(_)) => {}
            Err(other) => panic!("{name}: unexpected {other:?}"),
        }
    }
}
