//! The clickstream example, built and served by `cargo lambda watch` (the real Runtime API
//! emulator, through `lambda_runtime`), invoked with `cargo lambda invoke`.

mod support;

use serde_json::{json, Value};
use support::{cargo_lambda_available, unavailable, workspace, LambdaWatch};

fn batch_file() -> std::path::PathBuf {
    workspace().join("examples/clickstream/events/batch.json")
}

fn sequence_number(index: usize) -> String {
    let event: Value = serde_json::from_slice(&std::fs::read(batch_file()).unwrap()).unwrap();
    event["Records"][index]["kinesis"]["sequenceNumber"].as_str().unwrap().to_owned()
}

#[test]
fn clickstream_answers_lambda_with_the_first_failed_record() {
    if !cargo_lambda_available() {
        return unavailable(
            "clickstream_answers_lambda_with_the_first_failed_record",
            "cargo-lambda is not on PATH",
        );
    }
    // No dead-letter sink: the undecodable fourth record is reported, and Lambda would
    // resume the shard from it.
    let watch = LambdaWatch::start("clickstream", &[("DEAD_LETTERS", "none")]);
    let response: Value = serde_json::from_str(&watch.invoke(&batch_file())).unwrap();
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": sequence_number(3)}]}),
        "{}",
        watch.log()
    );

    // The process keeps serving: a second invocation gets the same answer.
    let again: Value = serde_json::from_str(&watch.invoke(&batch_file())).unwrap();
    assert_eq!(again, response);
}

#[test]
fn clickstream_dead_letters_poison_records_and_acknowledges_the_batch() {
    if !cargo_lambda_available() {
        return unavailable(
            "clickstream_dead_letters_poison_records_and_acknowledges_the_batch",
            "cargo-lambda is not on PATH",
        );
    }
    let watch = LambdaWatch::start("clickstream", &[("DEAD_LETTERS", "log")]);
    let response: Value = serde_json::from_str(&watch.invoke(&batch_file())).unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}), "{}", watch.log());
    let log = watch.log();
    assert!(log.contains("dead letter"), "the log sink logged the poison records:\n{log}");
}
