//! The event source mapping simulator, one rule per test, each citing the AWS
//! documentation it follows.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::testing::{
    EventSourceMapping, FnFunction, InvocationResult, MemoryDeadLetter, SimulatedStream,
    UnknownItemIdentifier, MAX_PAYLOAD,
};
use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
use serde_json::{json, Value};

/// The sequence numbers of each invocation's batch, in order.
type Batches = Arc<Mutex<Vec<Vec<String>>>>;

fn sequence_numbers(payload: &[u8]) -> Vec<String> {
    let event: Value = serde_json::from_slice(payload).unwrap();
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kinesis"]["sequenceNumber"].as_str().unwrap().to_owned())
        .collect()
}

/// A function that records its batches and answers with `respond(batch, invocation)`.
fn scripted(
    batches: &Batches,
    respond: impl Fn(&[String], usize) -> InvocationResult,
) -> FnFunction<impl Fn(Vec<u8>) -> std::future::Ready<InvocationResult>> {
    let batches = batches.clone();
    FnFunction(move |payload: Vec<u8>| {
        let batch = sequence_numbers(&payload);
        let mut all = batches.lock().unwrap();
        all.push(batch.clone());
        std::future::ready(respond(&batch, all.len()))
    })
}

fn stream_of(records: usize) -> (SimulatedStream, Vec<String>) {
    let mut stream = SimulatedStream::new("rules", 1);
    let sequence_numbers =
        (0..records).map(|n| stream.put(&format!("key-{n}"), b"x").sequence_number).collect();
    (stream, sequence_numbers)
}

fn ok() -> InvocationResult {
    InvocationResult::Response(json!({ "batchItemFailures": [] }))
}

fn failing_at(sequence_number: &str) -> InvocationResult {
    InvocationResult::Response(
        json!({ "batchItemFailures": [{ "itemIdentifier": sequence_number }] }),
    )
}

fn sizes(batches: &Batches) -> Vec<usize> {
    batches.lock().unwrap().iter().map(Vec::len).collect()
}

/// services-kinesis-parameters: "BatchSize ... Default 100 ... Maximum: 10,000".
#[tokio::test]
async fn batches_hold_batch_size_records() {
    let (stream, _) = stream_of(250);
    let batches = Batches::default();
    let report = EventSourceMapping::new().run(&stream, &scripted(&batches, |_, _| ok())).await;
    assert_eq!(sizes(&batches), [100, 100, 50], "the default batch size is 100");
    assert_eq!(report.invocations(), 3);

    let batches = Batches::default();
    EventSourceMapping::new()
        .batch_size(10_000)
        .run(&stream, &scripted(&batches, |_, _| ok()))
        .await;
    assert_eq!(sizes(&batches), [250]);
    let refused = std::panic::catch_unwind(|| EventSourceMapping::new().batch_size(10_001));
    assert!(refused.is_err(), "BatchSize above 10,000 is refused");
}

/// Lambda quotas: "Invocation payload (request and response) 6 MB each for synchronous".
#[tokio::test]
async fn a_run_stalls_only_when_invocations_run_out_with_records_left() {
    let (stream, _) = stream_of(3);
    let batches = Batches::default();
    let drained_on_the_last = EventSourceMapping::new()
        .batch_size(3)
        .max_invocations(1)
        .run(&stream, &scripted(&batches, |_, _| ok()))
        .await;
    assert_eq!((drained_on_the_last.invocations(), drained_on_the_last.never_delivered()), (1, 0));
    assert!(!drained_on_the_last.stalled(), "the one allowed invocation drained the stream");
    let cut_short = EventSourceMapping::new()
        .batch_size(2)
        .max_invocations(1)
        .run(&stream, &scripted(&Batches::default(), |_, _| ok()))
        .await;
    assert!(cut_short.stalled(), "one record was left undelivered");
}

#[tokio::test]
async fn a_batch_never_passes_the_6_mb_payload_limit() {
    let mut stream = SimulatedStream::new("big", 1);
    for n in 0..10 {
        stream.put(&format!("key-{n}"), &vec![b'x'; 1_000_000]);
    }
    let payload_sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = payload_sizes.clone();
    let function = FnFunction(move |payload: Vec<u8>| {
        seen.lock().unwrap().push(payload.len());
        std::future::ready(ok())
    });
    EventSourceMapping::new().batch_size(100).run(&stream, &function).await;
    let payload_sizes = payload_sizes.lock().unwrap();
    assert!(
        payload_sizes.len() >= 3,
        "ten 1 MB records need several invocations: {payload_sizes:?}"
    );
    assert!(payload_sizes.iter().all(|size| *size <= MAX_PAYLOAD), "{payload_sizes:?}");
}

/// The 6 MB limit counts every byte of the event: a batch cut by size is as full as the
/// limit allows (its next record would not have fitted), so the simulator's estimate is
/// the serialized size, not a guess that cuts batches early or lets them pass 6 MB.
#[tokio::test]
async fn a_batch_cut_by_size_is_as_full_as_6_mb_allows() {
    let mut stream = SimulatedStream::new("full", 1);
    for n in 0..9_000 {
        stream.put(&format!("user-{}", n % 97), &vec![b'a' + (n % 26) as u8; 1_000 + n % 7]);
    }
    let payloads = Arc::new(Mutex::new(Vec::new()));
    let seen = payloads.clone();
    let function = FnFunction(move |payload: Vec<u8>| {
        seen.lock().unwrap().push(payload);
        std::future::ready(ok())
    });
    EventSourceMapping::new().batch_size(10_000).run(&stream, &function).await;
    let payloads = payloads.lock().unwrap();
    assert!(payloads.len() >= 2, "9,000 records of 1 kB pass 6 MB");
    for pair in payloads.windows(2) {
        let next: Value = serde_json::from_slice(&pair[1]).unwrap();
        let next_record = serde_json::to_vec(&next["Records"][0]).unwrap().len();
        assert!(pair[0].len() <= MAX_PAYLOAD, "{} bytes", pair[0].len());
        assert!(
            pair[0].len() + 1 + next_record > MAX_PAYLOAD,
            "{} bytes and a record of {next_record} would have fitted in {MAX_PAYLOAD}",
            pair[0].len()
        );
    }
}

/// Lambda's Kinesis event has no `explicitHashKey`, even for a record put with one: the
/// simulator sends what Lambda sends.
#[tokio::test]
async fn delivered_records_carry_no_explicit_hash_key() {
    let mut stream = SimulatedStream::new("keys", 2);
    stream.put_record("a", Some("12345"), b"x", SystemTime::now());
    stream.put_aggregate(
        &[
            UserRecord { partition_key: "b", explicit_hash_key: Some("9"), data: b"1" },
            UserRecord { partition_key: "c", explicit_hash_key: None, data: b"2" },
        ],
        SystemTime::now(),
    );
    let records = Arc::new(Mutex::new(Vec::new()));
    let seen = records.clone();
    let function = FnFunction(move |payload: Vec<u8>| {
        let event: Value = serde_json::from_slice(&payload).unwrap();
        seen.lock().unwrap().extend(event["Records"].as_array().unwrap().iter().cloned());
        std::future::ready(ok())
    });
    EventSourceMapping::new().run(&stream, &function).await;
    let records = records.lock().unwrap();
    assert_eq!(records.len(), 2);
    for record in records.iter() {
        assert!(record["kinesis"].get("explicitHashKey").is_none(), "{record}");
    }
}

/// services-kinesis-batchfailurereporting: "If the batchItemFailures array contains
/// multiple items, Lambda uses the record with the lowest sequence number as the
/// checkpoint. Lambda then retries all records starting from that checkpoint."
#[tokio::test]
async fn the_lowest_reported_sequence_number_is_the_checkpoint() {
    let (stream, sequence_numbers) = stream_of(6);
    let batches = Batches::default();
    let (third, fifth) = (sequence_numbers[2].clone(), sequence_numbers[4].clone());
    let function = scripted(&batches, move |_, n| {
        if n == 1 {
            InvocationResult::Response(
                json!({ "batchItemFailures": [{ "itemIdentifier": fifth }, { "itemIdentifier": third }] }),
            )
        } else {
            ok()
        }
    });
    let report = EventSourceMapping::new().run(&stream, &function).await;
    assert_eq!(batches.lock().unwrap()[1], sequence_numbers[2..], "retried from the third record");
    assert_eq!(report.deliveries(&sequence_numbers[1]), 1);
    assert_eq!(report.deliveries(&sequence_numbers[2]), 2);
    assert_eq!(report.duplicates(), 4);
}

/// services-kinesis-batchfailurereporting: "Lambda treats a batch as a complete success if
/// you return: an empty batchItemFailure list, a null batchItemFailure list, an empty
/// EventResponse, a null EventResponse".
#[tokio::test]
async fn empty_or_null_responses_are_complete_successes() {
    for response in [
        json!({ "batchItemFailures": [] }),
        json!({ "batchItemFailures": null }),
        json!({}),
        Value::Null,
    ] {
        let (stream, _) = stream_of(5);
        let batches = Batches::default();
        let answer = response.clone();
        let report = EventSourceMapping::new()
            .run(
                &stream,
                &scripted(&batches, move |_, _| InvocationResult::Response(answer.clone())),
            )
            .await;
        assert_eq!(report.invocations(), 1, "{response}");
        assert_eq!(report.duplicates(), 0, "{response}");
    }
}

/// services-kinesis-batchfailurereporting: "Lambda treats a batch as a complete failure if
/// you return: an empty string itemIdentifier, a null itemIdentifier, an itemIdentifier
/// with a bad key name".
#[tokio::test]
async fn empty_null_or_misnamed_identifiers_fail_the_whole_batch() {
    let malformed = [
        json!({ "batchItemFailures": [{ "itemIdentifier": "" }] }),
        json!({ "batchItemFailures": [{ "itemIdentifier": null }] }),
        json!({ "batchItemFailures": [{ "itemIdentifer": "123" }] }),
        json!({ "batchItemFailures": [{ "itemIdentifier": 42 }] }),
        json!({ "batchItemFailures": "everything" }),
    ];
    for response in malformed {
        let (stream, sequence_numbers) = stream_of(5);
        let batches = Batches::default();
        let answer = response.clone();
        let function = scripted(&batches, move |_, n| {
            if n == 1 {
                InvocationResult::Response(answer.clone())
            } else {
                ok()
            }
        });
        EventSourceMapping::new().run(&stream, &function).await;
        assert_eq!(
            batches.lock().unwrap()[1],
            sequence_numbers,
            "{response}: the whole batch again"
        );
    }
}

/// Not documented by AWS: an identifier that is not in the batch. The simulator fails the
/// whole batch by default, and can be told to ignore it.
#[tokio::test]
async fn an_identifier_not_in_the_batch_fails_the_whole_batch_unless_ignored() {
    let stranger = failing_at("49590338271490256608559692538361571095921575989136500000");
    let (stream, sequence_numbers) = stream_of(4);
    let batches = Batches::default();
    let answer = stranger.clone();
    let function = scripted(&batches, move |_, n| if n == 1 { answer.clone() } else { ok() });
    let report = EventSourceMapping::new().run(&stream, &function).await;
    assert_eq!(batches.lock().unwrap()[1], sequence_numbers);
    assert_eq!(report.unknown_item_identifiers(), 1);

    let batches = Batches::default();
    let function = scripted(&batches, move |_, n| if n == 1 { stranger.clone() } else { ok() });
    let report = EventSourceMapping::new()
        .unknown_item_identifier(UnknownItemIdentifier::Ignore)
        .run(&stream, &function)
        .await;
    assert_eq!(report.invocations(), 1);
    assert_eq!(report.unknown_item_identifiers(), 1, "counted though ignored");
}

/// A function that names its failure by something other than the sequence number (here
/// the `eventID`, `shardId-...:sequence`) fails whole batches, silently but for the
/// report's count; a processor names sequence numbers, and the count stays at zero.
#[tokio::test]
async fn unknown_identifiers_are_counted_and_a_processor_gives_none() {
    let (stream, _) = stream_of(30);
    let by_event_id = FnFunction(|payload: Vec<u8>| {
        let event: Value = serde_json::from_slice(&payload).unwrap();
        let first = &event["Records"][0];
        assert!(first["eventID"].as_str().unwrap().starts_with("shardId-"));
        std::future::ready(InvocationResult::Response(
            json!({ "batchItemFailures": [{ "itemIdentifier": first["eventID"] }] }),
        ))
    });
    let report = EventSourceMapping::new()
        .batch_size(10)
        .maximum_retry_attempts(2)
        .run(&stream, &by_event_id)
        .await;
    assert_eq!(report.invocations(), 9, "three batches, each tried three times whole");
    assert_eq!(report.unknown_item_identifiers(), 9);
    assert_eq!(report.discarded().len(), 3, "then discarded: the records are lost");

    #[kinesis_processor(format = text, retries = 0)]
    async fn fails_once(line: String, seen: &Arc<Mutex<Vec<String>>>) -> Result<(), RecordError> {
        let mut seen = seen.lock().unwrap();
        let first = !seen.contains(&line);
        seen.push(line);
        if first {
            Err(RecordError::retry("first attempt"))
        } else {
            Ok(())
        }
    }
    let mut stream = SimulatedStream::new("named", 1);
    for n in 0..30 {
        stream.put(&format!("key-{n}"), format!("line-{n}").as_bytes());
    }
    let report = EventSourceMapping::new()
        .batch_size(10)
        .run(&stream, &fails_once().state(Arc::default()))
        .await;
    assert!(report.partial_responses() > 0);
    assert_eq!(report.unknown_item_identifiers(), 0);
}

/// services-kinesis-batchfailurereporting: "Even when your function code returns partial
/// batch failure responses, these responses will not be processed by Lambda unless the
/// ReportBatchItemFailures feature is explicitly turned on".
#[tokio::test]
async fn without_report_batch_item_failures_the_response_is_ignored() {
    let (stream, sequence_numbers) = stream_of(5);
    let batches = Batches::default();
    let third = sequence_numbers[2].clone();
    let function = scripted(&batches, move |_, _| failing_at(&third));
    let report =
        EventSourceMapping::new().report_batch_item_failures(false).run(&stream, &function).await;
    assert_eq!(report.invocations(), 1, "a returned response is a success");
}

/// kinesis-on-failure-destination: "If the function is invoked but returns an error, Lambda
/// retries until the records expire, exceed the maximum age, or reach the configured retry
/// quota (MaximumRetryAttempts) ... Lambda discards the records and continues processing".
#[tokio::test]
async fn function_errors_retry_the_whole_batch_then_discard_it_to_the_destination() {
    let (stream, sequence_numbers) = stream_of(3);
    let batches = Batches::default();
    let function = scripted(&batches, |_, _| InvocationResult::Error("boom".into()));
    let report = EventSourceMapping::new().maximum_retry_attempts(2).run(&stream, &function).await;
    assert_eq!(sizes(&batches), [3, 3, 3], "the first attempt and two retries, whole");
    assert_eq!(report.function_errors(), 3);
    let discarded = report.discarded();
    assert_eq!(discarded.len(), 1);
    assert_eq!(discarded[0].sequence_numbers, sequence_numbers);
    let document = &discarded[0].document;
    assert_eq!(document["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(document["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(document["responseContext"]["functionError"], "Unhandled");
    assert_eq!(document["version"], "1.0");
    let info = &document["KinesisBatchInfo"];
    assert_eq!(info["shardId"], "shardId-000000000000");
    assert_eq!(info["startSequenceNumber"], sequence_numbers[0]);
    assert_eq!(info["endSequenceNumber"], sequence_numbers[2]);
    assert_eq!(info["batchSize"], 3);
    assert_eq!(info["streamArn"], stream.arn());
    assert!(info["approximateArrivalOfFirstRecord"].as_str().unwrap().ends_with('Z'));
}

/// kinesis-on-failure-destination: a timeout is a function error: the whole batch again.
#[tokio::test]
async fn a_timeout_retries_the_whole_batch() {
    let (stream, _) = stream_of(4);
    let batches = Batches::default();
    let function =
        scripted(&batches, |_, n| if n == 1 { InvocationResult::TimedOut } else { ok() });
    let report = EventSourceMapping::new().run(&stream, &function).await;
    assert_eq!(sizes(&batches), [4, 4]);
    assert_eq!(report.timeouts(), 1);
}

/// kinesis-on-failure-destination: "BisectBatchOnFunctionError ... splits a failed batch into
/// two smaller batches, isolating bad records ... Splitting a batch does not consume the
/// retry quota."
#[tokio::test]
async fn bisection_isolates_the_bad_record_without_spending_retries() {
    let (stream, sequence_numbers) = stream_of(8);
    let poison = sequence_numbers[5].clone();
    let batches = Batches::default();
    let function = scripted(&batches, move |batch, _| {
        if batch.contains(&poison) {
            InvocationResult::Error("poison inside".into())
        } else {
            ok()
        }
    });
    let report = EventSourceMapping::new()
        .bisect_batch_on_function_error(true)
        .maximum_retry_attempts(1)
        .run(&stream, &function)
        .await;
    // Halves in stream order: [0,8) [0,4) [4,8) [4,6) [4,5) [5,6) retried once, then [6,8).
    assert_eq!(sizes(&batches), [8, 4, 4, 2, 1, 1, 1, 2]);
    let discarded = report.discarded();
    assert_eq!(discarded.len(), 1);
    assert_eq!(
        discarded[0].sequence_numbers,
        [sequence_numbers[5].clone()],
        "only the bad record is discarded"
    );
    for (n, sequence_number) in sequence_numbers.iter().enumerate() {
        assert!(report.deliveries(sequence_number) >= 1, "record {n}");
    }
}

/// services-kinesis-batchfailurereporting: "If your function receives a partial success
/// response and both BisectBatchOnFunctionError and ReportBatchItemFailures are turned on,
/// the batch is bisected at the returned sequence number and Lambda retries only the
/// remaining records."
#[tokio::test]
async fn a_partial_response_with_bisection_retries_only_the_remaining_records() {
    let (stream, sequence_numbers) = stream_of(6);
    let batches = Batches::default();
    let fourth = sequence_numbers[3].clone();
    let function = scripted(&batches, move |_, n| if n == 1 { failing_at(&fourth) } else { ok() });
    EventSourceMapping::new().bisect_batch_on_function_error(true).run(&stream, &function).await;
    assert_eq!(batches.lock().unwrap()[1], sequence_numbers[3..]);
}

/// kinesis-on-failure-destination and services-kinesis-parameters: "MaximumRecordAgeInSeconds
/// ... -1 means infinite ... Maximum: 604,800": older records are discarded, not delivered.
#[tokio::test]
async fn records_older_than_maximum_record_age_are_discarded_unread() {
    let mut stream = SimulatedStream::new("ages", 1);
    let old = stream
        .put_record("a", None, b"old", SystemTime::now() - Duration::from_secs(7200))
        .sequence_number;
    let young = stream.put("b", b"young").sequence_number;
    let batches = Batches::default();
    let report = EventSourceMapping::new()
        .maximum_record_age(Some(Duration::from_secs(3600)))
        .run(&stream, &scripted(&batches, |_, _| ok()))
        .await;
    assert_eq!(report.deliveries(&old), 0);
    assert_eq!(report.deliveries(&young), 1);
    assert_eq!(report.discarded()[0].document["requestContext"]["condition"], "RecordAgeExceeded");
    assert_eq!(report.discarded()[0].sequence_numbers, [old]);
}

/// Kinesis data retention: records past the stream's retention period cannot be read.
#[tokio::test]
async fn records_past_retention_are_never_delivered() {
    let mut stream = SimulatedStream::new("retention", 1).retention(Duration::from_secs(24 * 3600));
    let gone = stream
        .put_record("a", None, b"x", SystemTime::now() - Duration::from_secs(25 * 3600))
        .sequence_number;
    stream.put("b", b"y");
    let report =
        EventSourceMapping::new().run(&stream, &scripted(&Batches::default(), |_, _| ok())).await;
    assert_eq!(report.deliveries(&gone), 0);
    assert_eq!(report.expired_by_retention(), 1);
}

/// with-kinesis: "Lambda ... can process up to 10 batches in each shard simultaneously ...
/// Lambda still ensures in-order processing at the partition-key level."
#[tokio::test]
async fn a_parallelization_factor_keeps_each_keys_order() {
    type Seen = Arc<Mutex<Vec<(String, u32)>>>;
    #[kinesis_processor(format = text, retries = 0)]
    async fn in_order(line: String, meta: &RecordMeta, seen: &Seen) -> Result<(), RecordError> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        seen.lock().unwrap().push((meta.partition_key().to_owned(), line.parse().unwrap()));
        Ok(())
    }
    let mut stream = SimulatedStream::new("parallel", 2);
    for n in 0..400u32 {
        stream.put(&format!("key-{}", n % 13), n.to_string().as_bytes());
    }
    let seen = Seen::default();
    let report = EventSourceMapping::new()
        .parallelization_factor(4)
        .batch_size(20)
        .run(&stream, &in_order().state(seen.clone()))
        .await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 400);
    assert_eq!(report.duplicates(), 0);
    assert_eq!(report.order_violations(), 0, "plain records keep their key's lane");
    for key in 0..13 {
        let order: Vec<u32> =
            seen.iter().filter(|(k, _)| *k == format!("key-{key}")).map(|(_, n)| *n).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "key-{key}: {order:?}");
    }
}

type Seen = Arc<Mutex<Vec<(String, u32)>>>;

#[kinesis_processor(format = text, retries = 0)]
async fn note_order(line: String, meta: &RecordMeta, seen: &Seen) -> Result<(), RecordError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    seen.lock().unwrap().push((meta.partition_key().to_owned(), line.parse().unwrap()));
    Ok(())
}

/// A stream as a KPL producer fills it: plain records, and aggregates holding user records
/// of several keys under the first one's partition key (all of one shard, as the KPL
/// packs them). Data: each user record's number, growing per key.
fn kpl_stream() -> SimulatedStream {
    let mut stream = SimulatedStream::new("kpl", 1);
    let keys: Vec<String> = (0..12).map(|k| format!("user-{k}")).collect();
    let mut n = 0u32;
    let mut roll = 17usize;
    while n < 600 {
        roll = roll.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let size = (1 + (roll >> 33) % 6).min(600 - n as usize);
        let data: Vec<(String, Vec<u8>)> = (0..size)
            .map(|i| {
                let key = keys[(roll >> (8 + 4 * i)) % keys.len()].clone();
                n += 1;
                (key, n.to_string().into_bytes())
            })
            .collect();
        if size == 1 {
            stream.put(&data[0].0, &data[0].1);
        } else {
            let users: Vec<UserRecord<'_>> = data
                .iter()
                .map(|(key, data)| UserRecord { partition_key: key, explicit_hash_key: None, data })
                .collect();
            stream.put_aggregate(&users, SystemTime::now());
        }
    }
    stream
}

fn inversions(seen: &[(String, u32)]) -> usize {
    let mut last = std::collections::HashMap::new();
    let mut inversions = 0;
    for (key, n) in seen {
        if let Some(before) = last.insert(key.clone(), *n) {
            inversions += usize::from(before > *n);
        }
    }
    inversions
}

/// with-kinesis: with a ParallelizationFactor, "Lambda still ensures in-order processing at
/// the partition-key level", by the Kinesis record's key. KPL aggregates hold user records
/// of many keys under their first one's key: with one lane per shard each user key keeps its
/// order; with several, a user key's records sit in different lanes and the mapping
/// reports the order violations it causes. Per-key order across lanes needs plain records.
#[tokio::test]
async fn kpl_aggregates_keep_user_key_order_with_one_lane_only() {
    let stream = kpl_stream();
    assert!(stream.len() < 400, "many records are aggregates");

    let seen = Seen::default();
    let report = EventSourceMapping::new()
        .batch_size(20)
        .run(&stream, &note_order().state(seen.clone()))
        .await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 600);
        assert_eq!(inversions(&seen), 0, "one lane: each user key in order");
        assert_eq!(report.order_violations(), 0);
    }

    let seen = Seen::default();
    let report = EventSourceMapping::new()
        .batch_size(20)
        .parallelization_factor(4)
        .run(&stream, &note_order().state(seen.clone()))
        .await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 600);
    assert!(report.order_violations() > 0, "four lanes and mixed-key aggregates");
    assert!(
        report.order_violations() >= inversions(&seen),
        "every inversion seen is counted: {} < {}",
        report.order_violations(),
        inversions(&seen)
    );
    assert!(inversions(&seen) > 0, "and user keys did run out of order");
}

/// Attempts and successes per line.
#[derive(Default)]
struct Tally {
    attempts: std::collections::HashMap<String, u32>,
    succeeded: std::collections::HashSet<String>,
}

#[kinesis_processor(format = text, retries = 0)]
async fn sometimes(line: String, tally: &Arc<Mutex<Tally>>) -> Result<(), RecordError> {
    let mut tally = tally.lock().unwrap();
    let attempt = {
        let n = tally.attempts.entry(line.clone()).or_insert(0);
        *n += 1;
        *n
    };
    if line.starts_with("poison") {
        return Err(RecordError::reject("poison"));
    }
    if line.starts_with("flaky") && attempt == 1 {
        return Err(RecordError::retry("first attempt fails"));
    }
    if line.starts_with("stuck") {
        return Err(RecordError::retry("never succeeds"));
    }
    tally.succeeded.insert(line);
    Ok(())
}

/// Runs `lines` (put under five keys over two shards) through `sometimes` under the
/// settings of the example templates: bounded retries and record age, bisection on. Answers
/// what went wrong; nothing, for a processor that loses nothing.
///
/// Each reported failure costs the batch a retry here (its checkpoint moves, its retries
/// stay counted), and `sometimes` retries nothing in-process: a batch of 25 holds up to six
/// flaky records, within the ten retries.
async fn run_lines(lines: &[String]) -> Vec<String> {
    let mut stream = SimulatedStream::new("mixed", 2);
    for (n, line) in lines.iter().enumerate() {
        stream.put(&format!("key-{}", n % 5), line.as_bytes());
    }
    let dlq = MemoryDeadLetter::default();
    let tally = Arc::<Mutex<Tally>>::default();
    let processor = sometimes().state(Arc::clone(&tally)).dead_letter(dlq.clone());
    let report = EventSourceMapping::new()
        .batch_size(25)
        .maximum_retry_attempts(10)
        .maximum_record_age(Some(Duration::from_secs(600)))
        .bisect_batch_on_function_error(true)
        .dead_letters(dlq)
        .run(&stream, &processor)
        .await;
    let mut wrong = Vec::new();
    if !report.discarded().is_empty() {
        wrong.push(format!(
            "{} batches reached the on-failure destination",
            report.discarded().len()
        ));
    }
    if report.never_delivered() > 0 || report.stalled() {
        wrong.push("records were never delivered".to_owned());
    }
    let poison = lines.iter().filter(|line| line.starts_with("poison")).count();
    if report.dead_letters().len() != poison {
        wrong.push(format!(
            "{} dead letters for {poison} poison records",
            report.dead_letters().len()
        ));
    }
    let tally = tally.lock().unwrap();
    for line in lines.iter().filter(|line| !line.starts_with("poison")) {
        if !tally.succeeded.contains(line) {
            wrong.push(format!("{line} never succeeded"));
        }
    }
    wrong
}

fn lines(stuck: Option<usize>) -> Vec<String> {
    (0..60)
        .map(|n| match n % 10 {
            _ if Some(n) == stuck => format!("stuck-{n}"),
            3 => format!("flaky-{n}"),
            7 => format!("poison-{n}"),
            _ => format!("good-{n}"),
        })
        .collect()
}

/// A processor under the mapping: a reported failure is delivered again, a poison record
/// is dead-lettered, and nothing is lost or sent to the on-failure destination, though the
/// mapping's retries are bounded as in the templates.
#[tokio::test]
async fn a_processor_loses_nothing_under_the_mapping() {
    assert_eq!(run_lines(&lines(None)).await, Vec::<String>::new());
}

/// The same checks catch a processor that stalls on a record: with bounded retries the
/// mapping gives up on its batch (the on-failure destination gets it) and the records from
/// the stuck one on never succeed.
#[tokio::test]
async fn a_processor_stalling_on_a_record_fails_those_checks() {
    let wrong = run_lines(&lines(Some(21))).await;
    assert!(wrong[0].ends_with("reached the on-failure destination"), "{wrong:?}");
    assert!(wrong.contains(&"stuck-21 never succeeded".to_owned()), "{wrong:?}");
}

/// services-kinesis-parameters: "MaximumBatchingWindowInSeconds ... Default 0", at most
/// 300. A filled stream never waits for a batch: the window changes nothing here.
#[tokio::test]
async fn the_batching_window_is_checked_and_a_filled_stream_does_not_wait() {
    assert!(std::panic::catch_unwind(
        || EventSourceMapping::new().maximum_batching_window(Duration::from_secs(301))
    )
    .is_err());
    let (stream, _) = stream_of(150);
    let batches = Batches::default();
    let started = std::time::Instant::now();
    EventSourceMapping::new()
        .maximum_batching_window(Duration::from_secs(300))
        .run(&stream, &scripted(&batches, |_, _| ok()))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(sizes(&batches), [100, 50]);
}
