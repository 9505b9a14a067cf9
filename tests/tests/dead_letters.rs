//! Poison records go to the dead-letter sink and the batch moves on; without a sink they
//! are reported; a sink that refuses a letter turns it into the reported failure.

use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::dead_letter::{
    DeadLetter, DeadLetterReason, DeadLetterSink, SinkError, ENVELOPE_VERSION,
};
use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{kinesis_processor, Outcome, RecordError, RecordMeta};
use serde::Deserialize;

#[derive(Deserialize)]
struct Click {
    url: String,
}

#[kinesis_processor(retries = 0)]
async fn track(click: Click) -> Result<(), RecordError> {
    match click.url.as_str() {
        "" => Err(RecordError::reject("a click without a url")),
        "/down" => Err(RecordError::retry("downstream unavailable")),
        _ => Ok(()),
    }
}

fn click(url: &str) -> serde_json::Value {
    serde_json::json!({ "url": url })
}

#[tokio::test]
async fn rejected_and_undecodable_records_are_dead_lettered_and_the_batch_moves_on() {
    let dlq = MemoryDeadLetter::default();
    let batch =
        TestBatch::new().json(&click("/a")).bytes(b"not json").json(&click("")).json(&click("/b"));
    let sequence_numbers = batch.sequence_numbers();
    let report = track().dead_letter(dlq.clone()).process(batch.build()).await.unwrap();

    assert!(report.response().batch_item_failures.is_empty());
    let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Succeeded,
            Outcome::DeadLettered(DeadLetterReason::DecodeError),
            Outcome::DeadLettered(DeadLetterReason::Rejected),
            Outcome::Succeeded,
        ]
    );
    let letters = dlq.records();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].reason, DeadLetterReason::DecodeError);
    assert_eq!(letters[0].sequence_number.as_deref(), Some(sequence_numbers[1].as_str()));
    assert_eq!(letters[0].data_bytes().unwrap(), b"not json");
    assert_eq!(letters[0].attempts, 0);
    assert!(letters[0].error.contains("expected ident"), "{}", letters[0].error);
    assert_eq!(letters[1].reason, DeadLetterReason::Rejected);
    assert_eq!(letters[1].error, "a click without a url");
    assert_eq!(letters[1].attempts, 1);
}

#[tokio::test]
async fn the_envelope_carries_every_field_of_the_record() {
    let dlq = MemoryDeadLetter::default();
    let arrival = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_607_497_475_500);
    let event = TestBatch::new().json(&click("")).partition_key("user-17").arrival(arrival).build();
    track().dead_letter(dlq.clone()).process(event).await.unwrap();
    let letter = &dlq.records()[0];
    let json = serde_json::to_value(letter).unwrap();
    assert_eq!(json["version"], ENVELOPE_VERSION);
    assert_eq!(json["reason"], "rejected");
    assert_eq!(json["functionName"], "track");
    assert!(json["requestId"].as_str().unwrap().starts_with("local-"));
    assert_eq!(json["eventSourceArn"], "arn:aws:kinesis:us-east-1:123456789012:stream/test-stream");
    assert_eq!(json["shardId"], "shardId-000000000006");
    assert_eq!(json["sequenceNumber"].as_str().unwrap().len(), 56);
    assert_eq!(json["subSequenceNumber"], serde_json::Value::Null);
    assert_eq!(json["partitionKey"], "user-17");
    assert_eq!(json["explicitHashKey"], serde_json::Value::Null, "Lambda sends none");
    assert_eq!(json["approximateArrivalTimestamp"], 1607497475.5);
    assert_eq!(json["aggregated"], false);
    assert_eq!(letter.data_bytes().unwrap(), br#"{"url":""}"#);
    // The envelope reads back into the same value.
    let back: DeadLetter = serde_json::from_value(json).unwrap();
    assert_eq!(&back, letter);
}

/// A KPL user record keeps its own partition key, explicit hash key and sub-sequence
/// number in its letter, whatever the aggregate was put with.
#[tokio::test]
async fn a_user_records_letter_carries_its_own_keys() {
    let dlq = MemoryDeadLetter::default();
    let (good, poison) = (click("/a").to_string(), click("").to_string());
    let event = TestBatch::new()
        .aggregate(&[
            UserRecord { partition_key: "user-1", explicit_hash_key: None, data: good.as_bytes() },
            UserRecord {
                partition_key: "user-17",
                explicit_hash_key: Some("12345"),
                data: poison.as_bytes(),
            },
        ])
        .build();
    track().dead_letter(dlq.clone()).process(event).await.unwrap();
    let letters = dlq.records();
    assert_eq!(letters.len(), 1);
    let json = serde_json::to_value(&letters[0]).unwrap();
    assert_eq!(json["partitionKey"], "user-17");
    assert_eq!(json["explicitHashKey"], "12345");
    assert_eq!(json["subSequenceNumber"], 1);
    assert_eq!(json["aggregated"], true);
    assert_eq!(letters[0].data_bytes().unwrap(), poison.as_bytes());
}

#[tokio::test]
async fn without_a_sink_poison_records_are_reported_not_dropped() {
    let batch = TestBatch::new().json(&click("/a")).json(&click("")).json(&click("/b"));
    let sequence_numbers = batch.sequence_numbers();
    let report = track().process(batch.build()).await.unwrap();
    let reported = &report.response().batch_item_failures;
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].item_identifier.as_deref(), Some(sequence_numbers[1].as_str()));
    let second = report.records().nth(1).unwrap();
    assert_eq!(second.outcome(), Outcome::Failed);
    assert!(second.error().unwrap().contains("no dead-letter sink is configured"));
    assert_eq!(report.records().nth(2).unwrap().outcome(), Outcome::NotStarted);
}

#[tokio::test]
async fn a_letter_the_sink_refuses_becomes_the_reported_failure() {
    let dlq = MemoryDeadLetter::refusing(|letter| {
        (letter.reason == DeadLetterReason::DecodeError).then(|| "throttled".to_owned())
    });
    let batch = TestBatch::new().json(&click("/a")).bytes(b"{").json(&click("")).json(&click("/b"));
    let sequence_numbers = batch.sequence_numbers();
    let report = track().dead_letter(dlq.clone()).process(batch.build()).await.unwrap();

    let reported = &report.response().batch_item_failures;
    assert_eq!(reported[0].item_identifier.as_deref(), Some(sequence_numbers[1].as_str()));
    let refused = report.records().nth(1).unwrap();
    assert_eq!(refused.outcome(), Outcome::Failed);
    assert!(refused.error().unwrap().contains("refused it: throttled"), "{:?}", refused.error());
    // Nothing the sink did not confirm counts as done, and no record is both
    // dead-lettered and reported.
    for letter in dlq.records() {
        assert_ne!(letter.sequence_number.as_deref(), Some(sequence_numbers[1].as_str()));
    }
}

/// A sink that answers for fewer letters than it was given.
struct Forgetful;

impl DeadLetterSink for Forgetful {
    async fn send(&self, _letters: &[DeadLetter]) -> Vec<Result<(), SinkError>> {
        Vec::new()
    }
}

#[tokio::test]
async fn a_letter_the_sink_does_not_answer_for_is_not_acknowledged() {
    let batch = TestBatch::new().json(&click("")).json(&click("/b"));
    let first = batch.sequence_numbers()[0].clone();
    let report = track().dead_letter(Forgetful).process(batch.build()).await.unwrap();
    assert_eq!(report.checkpoint(), Some(first.as_str()));
    let record = report.records().next().unwrap();
    assert!(record.error().unwrap().contains("did not answer"), "{:?}", record.error());
}

#[tokio::test]
async fn a_retryable_failure_is_reported_not_dead_lettered_by_default() {
    let dlq = MemoryDeadLetter::default();
    let batch = TestBatch::new().json(&click("/down")).json(&click("/b"));
    let first = batch.sequence_numbers()[0].clone();
    let report = track().dead_letter(dlq.clone()).process(batch.build()).await.unwrap();
    assert_eq!(report.checkpoint(), Some(first.as_str()));
    assert!(dlq.records().is_empty());
}

#[kinesis_processor(format = text, retries = 0)]
async fn reject_marked(line: String, meta: &RecordMeta) -> Result<(), RecordError> {
    if line == "reject" {
        return Err(RecordError::reject(format!("rejected at {}", meta.sequence_number())));
    }
    if line == "fail" {
        return Err(RecordError::retry("transient"));
    }
    Ok(())
}

#[tokio::test]
async fn a_letter_queued_before_a_failure_is_still_sent() {
    // The first record's letter is still pending (batched) when the second record fails;
    // it precedes the checkpoint, so it must go out before the response.
    let dlq = MemoryDeadLetter::default();
    let batch = TestBatch::new().text("reject").text("fail").text("reject");
    let sequence_numbers = batch.sequence_numbers();
    let report = reject_marked().dead_letter(dlq.clone()).process(batch.build()).await.unwrap();
    assert_eq!(report.checkpoint(), Some(sequence_numbers[1].as_str()));
    let letters = dlq.records();
    assert_eq!(letters.len(), 1, "only the record before the checkpoint is dead-lettered");
    assert_eq!(letters[0].sequence_number.as_deref(), Some(sequence_numbers[0].as_str()));
}

/// Records, for each call, how many letters it carried and how many records the function
/// had processed by then.
#[derive(Clone, Default)]
struct Recording {
    calls: std::sync::Arc<std::sync::Mutex<Vec<(usize, usize)>>>,
    processed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    delay: std::time::Duration,
}

impl DeadLetterSink for Recording {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), SinkError>> {
        let processed = self.processed.load(std::sync::atomic::Ordering::SeqCst);
        self.calls.lock().unwrap().push((letters.len(), processed));
        tokio::time::sleep(self.delay).await;
        letters.iter().map(|_| Ok(())).collect()
    }
}

#[kinesis_processor(format = text, retries = 0)]
async fn count_and_reject(
    line: String,
    processed: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Result<(), RecordError> {
    processed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if line.starts_with("poison") {
        return Err(RecordError::reject("poison"));
    }
    Ok(())
}

#[tokio::test]
async fn dead_letters_go_out_in_batches_as_they_occur() {
    let sink = Recording::default();
    let batch = (0..25).fold(TestBatch::new(), |b, n| b.text(&format!("poison-{n}"))).text("good");
    let report = count_and_reject()
        .state(sink.processed.clone())
        .dead_letter(sink.clone())
        .process(batch.build())
        .await
        .unwrap();
    assert!(report.response().batch_item_failures.is_empty());
    let calls = sink.calls.lock().unwrap().clone();
    assert_eq!(calls.iter().map(|(letters, _)| letters).collect::<Vec<_>>(), [&10, &10, &5]);
    // Each batch went out as soon as it was full, while records were still being processed.
    assert!(calls[0].1 <= 11 && calls[1].1 <= 21, "{calls:?}");
}

#[tokio::test(start_paused = true)]
async fn the_response_waits_for_the_sink_to_answer() {
    let sink = Recording { delay: std::time::Duration::from_secs(30), ..Recording::default() };
    let started = tokio::time::Instant::now();
    let report = count_and_reject()
        .state(sink.processed.clone())
        .dead_letter(sink.clone())
        .process(TestBatch::new().text("poison").text("good").build())
        .await
        .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_secs(30));
    assert_eq!(
        report.records().next().unwrap().outcome(),
        Outcome::DeadLettered(DeadLetterReason::Rejected)
    );
}

#[tokio::test]
async fn a_sink_chosen_at_run_time_works_boxed_or_optional() {
    use kinesis_processor::dead_letter::DynDeadLetterSink;

    let batch = TestBatch::new().json(&click("/a")).json(&click(""));
    let poison = batch.sequence_numbers()[1].clone();
    let payload = batch.build();

    // A boxed sink takes the letters as the sink inside it would.
    let memory = MemoryDeadLetter::default();
    let boxed: Box<dyn DynDeadLetterSink> = Box::new(memory.clone());
    let report = track().dead_letter(boxed).process(&payload).await.unwrap();
    assert!(report.response().batch_item_failures.is_empty());
    assert_eq!(memory.records().len(), 1);

    // `Some(sink)` is the sink.
    let memory = MemoryDeadLetter::default();
    let report = track().dead_letter(Some(memory.clone())).process(&payload).await.unwrap();
    assert!(report.response().batch_item_failures.is_empty());
    assert_eq!(memory.records().len(), 1);

    // `None` is no sink at all: the poison record is reported, as without `.dead_letter`.
    let none: Option<Box<dyn DynDeadLetterSink>> = None;
    let report = track().dead_letter(none).process(&payload).await.unwrap();
    let without = track().process(&payload).await.unwrap();
    let failures = |report: &kinesis_processor::BatchReport| {
        report
            .response()
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(failures(&report), [Some(poison)]);
    assert_eq!(failures(&report), failures(&without));
    assert_eq!(
        report.records().nth(1).unwrap().outcome(),
        without.records().nth(1).unwrap().outcome()
    );
}
