//! The clickstream example, built and served by `cargo lambda watch` (the real Runtime API
//! emulator, through `lambda_runtime`), invoked with `cargo lambda invoke`.

mod moto;
mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use moto::Moto;
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
#[cfg_attr(not(services), ignore = "needs cargo-lambda: ./scripts/test-all installs it")]
fn clickstream_answers_lambda_with_the_first_failed_record() {
    if !cargo_lambda_available() {
        unavailable(
            "clickstream_answers_lambda_with_the_first_failed_record",
            "cargo-lambda is not on PATH",
        );
    }
    // No dead-letter sink: the undecodable fourth record is reported, and nothing starts
    // after it. The third record (user-17) was waiting for the first one of its user, so
    // it is unfinished too: Lambda resumes the shard from it, the lowest unfinished record.
    let watch = LambdaWatch::start("clickstream", &[("DEAD_LETTERS", "none")]);
    let response: Value = serde_json::from_str(&watch.invoke(&batch_file())).unwrap();
    let expected = json!({"batchItemFailures": [{"itemIdentifier": sequence_number(2)}]});
    assert_eq!(response, expected, "{}", watch.log());

    // The process keeps serving: a second invocation gets the same answer.
    let again: Value = serde_json::from_str(&watch.invoke(&batch_file())).unwrap();
    assert_eq!(again, response);
}

#[test]
#[cfg_attr(not(services), ignore = "needs cargo-lambda: ./scripts/test-all installs it")]
fn clickstream_dead_letters_poison_records_and_acknowledges_the_batch() {
    if !cargo_lambda_available() {
        unavailable(
            "clickstream_dead_letters_poison_records_and_acknowledges_the_batch",
            "cargo-lambda is not on PATH",
        );
    }
    let watch = LambdaWatch::start("clickstream", &[("DEAD_LETTERS", "log")]);
    let response: Value = serde_json::from_str(&watch.invoke(&batch_file())).unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}), "{}", watch.log());
    let log = watch.log();
    assert!(log.contains("dead letter"), "the log sink logged the poison records:\n{log}");

    // The invocation's metrics are one EMF object on a line of the function's output.
    let emf = emf_line(&watch);
    assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Clickstream");
    assert_eq!(emf["FunctionName"], "clickstream");
    assert_eq!(emf["StreamName"], "clicks");
    for (metric, value) in [
        ("RecordsReceived", 6.0),
        ("RecordsSucceeded", 4.0),
        ("DeadLettered", 2.0),
        ("DeadLettered.decode_error", 1.0),
        ("DeadLettered.rejected", 1.0),
        ("ReportedFailures", 0.0),
    ] {
        assert_eq!(emf[metric], value, "{metric}");
    }
    assert!(emf["IteratorAge"].as_f64().unwrap() > 0.0);
}

/// The first EMF object the function printed, waiting a little for its output to arrive.
fn emf_line(watch: &LambdaWatch) -> Value {
    emf_lines(watch, 1).remove(0)
}

/// The first `count` EMF objects the function printed (one per invocation), waiting a
/// little for its output to arrive.
fn emf_lines(watch: &LambdaWatch, count: usize) -> Vec<Value> {
    for _ in 0..50 {
        let log = watch.log();
        let lines: Vec<&str> =
            log.lines().filter(|line| line.starts_with('{') && line.contains("\"_aws\"")).collect();
        if lines.len() >= count {
            return lines[..count]
                .iter()
                .map(|line| serde_json::from_str(line).expect("the EMF line is JSON"))
                .collect();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("fewer than {count} EMF lines in the function's output:\n{}", watch.log());
}

#[test]
#[cfg_attr(
    not(services),
    ignore = "needs cargo-lambda and a moto server: ./scripts/test-all provides them"
)]
fn clickstream_with_an_idempotency_table_skips_a_redelivered_batch() {
    let test = "clickstream_with_an_idempotency_table_skips_a_redelivered_batch";
    if !cargo_lambda_available() {
        unavailable(test, "cargo-lambda is not on PATH");
    }
    let moto = Moto::from_env().unwrap_or_else(|| {
        unavailable(test, "no moto server (KINESIS_PROCESSOR_MOTO_ENDPOINT is unset)")
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let table = runtime.block_on(moto.create_idempotency_table("clickstream-idempotency"));
    // As the template configures the function, with moto as DynamoDB.
    let watch = LambdaWatch::start(
        "clickstream",
        &[
            ("DEAD_LETTERS", "log"),
            ("IDEMPOTENCY_TABLE", table.as_str()),
            ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );

    // The sample batch, then the same batch again: a retry after a timeout, say.
    let first: Value = serde_json::from_str(&watch.invoke(&batch_file())).unwrap();
    assert_eq!(first, json!({"batchItemFailures": []}), "{}", watch.log());
    let again: Value = serde_json::from_str(&watch.invoke(&batch_file())).unwrap();
    assert_eq!(again, json!({"batchItemFailures": []}), "{}", watch.log());

    let emf = emf_lines(&watch, 2);
    let log = watch.log();
    let metric = |invocation: usize, metric: &str| emf[invocation][metric].as_f64().unwrap();
    // The second time, the four enriched clicks and the two dead-lettered ones (done once
    // their letters were confirmed, the one that is not JSON too) are duplicates.
    for (name, first, second) in [
        ("RecordsReceived", 6.0, 6.0),
        ("RecordsSucceeded", 4.0, 0.0),
        ("Duplicates", 0.0, 6.0),
        ("DeadLettered", 2.0, 0.0),
        ("DeadLettered.rejected", 1.0, 0.0),
        ("DeadLettered.decode_error", 1.0, 0.0),
        ("ReportedFailures", 0.0, 0.0),
    ] {
        assert_eq!((metric(0, name), metric(1, name)), (first, second), "{name}:\n{log}");
    }
    // Nothing emitted twice: four enriched clicks in all, and one letter of each reason.
    let enriched = log.lines().filter(|line| line.contains(": enriched click=")).count();
    assert_eq!(enriched, 4, "{log}");
    let letters = |reason: &str| {
        let reason = format!("reason=\"{reason}\"");
        log.lines().filter(|line| line.contains("dead letter") && line.contains(&reason)).count()
    };
    assert_eq!((letters("rejected"), letters("decode_error")), (1, 1), "{log}");

    // The six records are done in the table, under the processor's name.
    let items = runtime.block_on(async {
        let dynamodb = moto.dynamodb().await;
        dynamodb.scan().table_name(&table).send().await.expect("scan").items.unwrap_or_default()
    });
    let text = |item: &std::collections::HashMap<String, AttributeValue>, name: &str| {
        item[name].as_s().cloned().unwrap_or_default()
    };
    let mut ids: Vec<String> = items.iter().map(|item| text(item, "id")).collect();
    ids.sort();
    assert_eq!(ids.len(), 6, "{ids:?}");
    for item in &items {
        assert_eq!(text(item, "status"), "COMPLETED", "{item:?}");
        assert!(item["expiration"].as_n().is_ok(), "{item:?}");
    }
    for index in 0..6 {
        let sequence_number = sequence_number(index);
        assert!(
            ids.iter().any(|id| id.starts_with("enrich#") && id.contains(&sequence_number)),
            "{sequence_number} in {ids:?}"
        );
    }
    println!("second invocation: Duplicates {}; table items {ids:?}", metric(1, "Duplicates"));
}

#[test]
#[cfg_attr(not(services), ignore = "needs cargo-lambda: ./scripts/test-all installs it")]
fn a_hung_call_returns_a_partial_response_before_a_three_second_timeout() {
    if !cargo_lambda_available() {
        unavailable("a_hung_call_returns_a_partial_response", "cargo-lambda is not on PATH");
    }
    // cargo lambda's emulator sends no real deadline; the function reads its timeout from
    // AWS_LAMBDA_FUNCTION_TIMEOUT, as under SAM's emulator.
    let watch = LambdaWatch::start_bin(
        "kinesis-processor-tests",
        "stall",
        &[("AWS_LAMBDA_FUNCTION_TIMEOUT", "3")],
    );
    let dir = std::env::temp_dir();
    let warm_up = dir.join(format!("kp-stall-warm-{}.json", std::process::id()));
    let hanging = dir.join(format!("kp-stall-hang-{}.json", std::process::id()));
    std::fs::write(&warm_up, kinesis_processor::testing::TestBatch::new().text("fine").build())
        .unwrap();
    let batch = kinesis_processor::testing::TestBatch::new().text("fine").text("hang").text("fine");
    let hung = batch.sequence_numbers()[1].clone();
    std::fs::write(&hanging, batch.build()).unwrap();

    // The first invocation builds and starts the function.
    assert_eq!(
        serde_json::from_str::<Value>(&watch.invoke(&warm_up)).unwrap(),
        json!({"batchItemFailures": []})
    );
    let started = std::time::Instant::now();
    let response: Value = serde_json::from_str(&watch.invoke(&hanging)).unwrap();
    let elapsed = started.elapsed();
    std::fs::remove_file(warm_up).unwrap();
    std::fs::remove_file(hanging).unwrap();

    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": hung}]}),
        "{}",
        watch.log()
    );
    // Cut one second (the default margin) before the three-second deadline.
    assert!(elapsed >= std::time::Duration::from_millis(1900), "{elapsed:?}");
    assert!(elapsed < std::time::Duration::from_secs(3), "answered after the timeout: {elapsed:?}");
}

fn example_event(example: &str, file: &str) -> std::path::PathBuf {
    workspace().join("examples").join(example).join("events").join(file)
}

#[test]
#[cfg_attr(not(services), ignore = "needs cargo-lambda: ./scripts/test-all installs it")]
fn log_filter_deaggregates_its_sample_and_acknowledges_it() {
    if !cargo_lambda_available() {
        unavailable(
            "log_filter_deaggregates_its_sample_and_acknowledges_it",
            "cargo-lambda is not on PATH",
        );
    }
    let watch = LambdaWatch::start("log-filter", &[]);
    let response: Value =
        serde_json::from_str(&watch.invoke(&example_event("log-filter", "syslog-aggregated.json")))
            .unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}), "{}", watch.log());
    let emf = emf_line(&watch);
    assert_eq!(emf["RecordsReceived"], 3.0);
    assert_eq!(emf["Units"], 9.0, "two aggregates of four lines and a plain record");
    assert_eq!(emf["RecordsSucceeded"], 8.0);
    assert_eq!(emf["DeadLettered.rejected"], 1.0, "the line without a severity");
    let log = watch.log();
    for critical in [
        "Out of memory",
        "will fail within 24 hours",
        "payment provider unreachable",
        "job backup failed",
    ] {
        assert!(log.contains(critical), "{critical} was forwarded:\n{log}");
    }
    assert!(
        !log.contains("request served in 12 ms\" \"critical"),
        "a non-critical line was forwarded"
    );
}

#[test]
#[cfg_attr(not(services), ignore = "needs cargo-lambda: ./scripts/test-all installs it")]
fn log_to_json_writes_a_document_per_line_and_dead_letters_the_rest() {
    if !cargo_lambda_available() {
        unavailable("log_to_json_writes_a_document_per_line", "cargo-lambda is not on PATH");
    }
    let watch = LambdaWatch::start("log-to-json", &[]);
    let response: Value =
        serde_json::from_str(&watch.invoke(&example_event("log-to-json", "access-log.json")))
            .unwrap();
    assert_eq!(response, json!({"batchItemFailures": []}), "{}", watch.log());
    let emf = emf_line(&watch);
    assert_eq!(emf["RecordsSucceeded"], 3.0);
    assert_eq!(emf["DeadLettered.rejected"], 1.0);
    let log = watch.log();
    assert!(log.contains("logs/access-logs/shardId-000000000002/"), "{log}");
    assert!(
        log.contains(r#"\"path\":\"/signup\""#) || log.contains(r#""path":"/signup""#),
        "{log}"
    );
}

#[test]
fn the_readme_shows_what_the_first_command_prints() {
    let output = std::process::Command::new("cargo")
        .current_dir(workspace())
        .args([
            "run",
            "--quiet",
            "-p",
            "clickstream",
            "--",
            "examples/clickstream/events/batch.json",
        ])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("DEAD_LETTER_QUEUE_URL")
        .env_remove("DEAD_LETTERS")
        .env_remove("IDEMPOTENCY_TABLE")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let shown = readme
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows the output in a text block");
    // The iterator age and the duration depend on when it runs.
    let steady = |text: &str| -> String {
        text.lines()
            .map(|line| match line.find(", iterator age") {
                Some(at) => &line[..at],
                None => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(steady(&printed).trim(), steady(shown).trim());
}
