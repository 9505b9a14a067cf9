//! The local runner behaves like a command-line tool: `--help` prints the usage, errors are
//! one readable line, and the exit status says whether every event file was processed.

use std::path::PathBuf;
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Runs the clickstream example locally with `args`.
fn clickstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args(["run", "--quiet", "-p", "clickstream", "--"])
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("DEAD_LETTER_QUEUE_URL")
        .env_remove("DEAD_LETTERS")
        .output()
        .expect("cargo runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    let output = clickstream(&["--help"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let usage = text(&output.stdout);
    assert!(usage.contains("give it Kinesis event files"), "{usage}");
    assert!(usage.contains("exits with status 1"), "{usage}");
    // An option alone names no file to process: the usage again, not a silent success.
    let output = clickstream(&["--arrivals-now"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("give it Kinesis event files"));
}

#[test]
fn an_unreadable_file_fails_the_run_after_the_others_are_processed() {
    let output = clickstream(&["no-such-file.json", "examples/clickstream/events/batch.json"]);
    assert_eq!(output.status.code(), Some(1));
    let printed = text(&output.stdout);
    assert!(printed.contains("no-such-file.json: cannot read it:"), "{printed}");
    assert!(printed.contains("events/batch.json: 6 records"), "{printed}");
    let error = text(&output.stderr);
    let last = error.lines().last().unwrap_or_default();
    assert_eq!(
        last, "Error: 1 of 2 event files could not be processed: no-such-file.json",
        "one readable line: {error}"
    );
}

#[test]
fn a_payload_that_would_be_an_invocation_error_fails_the_run() {
    let output = clickstream(&["tests/data/bad-input/no-records.json"]);
    assert_eq!(output.status.code(), Some(1));
    let printed = text(&output.stdout);
    assert!(printed.contains("invocation error: not a Kinesis event"), "{printed}");
}

#[test]
fn an_unknown_option_is_named() {
    let output = clickstream(&["--verbose"]);
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert!(error.contains("`--verbose` is not an option; run with --help"), "{error}");
}

#[test]
fn arrivals_now_makes_a_sample_batch_young() {
    let age = |args: &[&str]| {
        let output = clickstream(args);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let printed = text(&output.stdout);
        let metrics = printed.lines().find(|line| line.starts_with("metrics:")).unwrap().to_owned();
        metrics.split("iterator age ").nth(1).unwrap().split(',').next().unwrap().to_owned()
    };
    let batch = "examples/clickstream/events/batch.json";
    assert!(age(&[batch]).contains('d'), "the sample batch is days old");
    let young = age(&["--arrivals-now", batch]);
    assert!(!young.contains('d') && !young.contains('h'), "{young}");
}

#[test]
fn log_lines_lead_with_the_message_and_leave_out_the_batch_span() {
    let output = clickstream(&["examples/clickstream/events/batch.json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let log = text(&output.stderr);
    let letters: Vec<&str> = log.lines().filter(|line| line.contains("dead letter")).collect();
    assert_eq!(letters.len(), 2, "each of the two dead letters is logged once: {log}");
    assert!(!log.contains("dead-lettering record"), "the log sink's line is the only one: {log}");
    for letter in letters {
        assert!(letter.starts_with(" WARN dead letter sequence_number="), "{letter}");
        assert!(letter.contains("partition_key="), "{letter}");
    }
    assert!(!log.contains("kinesis_batch{"), "no span context locally: {log}");
}
