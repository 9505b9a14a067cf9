//! The AWS dead-letter sinks with the real `aws-sdk-*` clients against moto on 127.0.0.1:
//! poison records arrive with their envelope and data; every way a send can fail (an
//! oversized record, a missing queue, a stopped server, throttling, 500s, a refused entry)
//! turns the affected record into the reported failure, and nothing is lost.

mod moto;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kinesis_processor::dead_letter::{
    DeadLetter, DeadLetterReason, S3DeadLetter, SnsDeadLetter, SqsDeadLetter,
};
use kinesis_processor::testing::TestBatch;
use kinesis_processor::{kinesis_processor, BatchReport, Outcome, RecordError};
use moto::faults::{Fault, Faulty};
use moto::{Moto, OwnServer};
use support::unavailable;

/// What the function does with each line: `poison...` is rejected, `wait` pauses (so that
/// pending dead letters go out), `stop` stops the test's own moto server.
#[derive(Default)]
struct Script {
    server: Mutex<Option<OwnServer>>,
}

#[kinesis_processor(format = text, retries = 0)]
async fn judge(line: String, script: &Arc<Script>) -> Result<(), RecordError> {
    match line.as_str() {
        "wait" => tokio::time::sleep(Duration::from_millis(1500)).await,
        "stop" => {
            if let Some(server) = script.server.lock().unwrap().as_mut() {
                server.stop();
            }
        }
        poison if poison.starts_with("poison") => {
            return Err(RecordError::reject(format!("bad line {poison}")))
        }
        _ => {}
    }
    Ok(())
}

fn processor() -> kinesis_processor::Processor<impl kinesis_processor::Handler<State = Arc<Script>>>
{
    judge().state(Arc::new(Script::default()))
}

/// A batch of good and poison lines; `poison-N` lines carry their number.
fn batch(lines: &[&str]) -> TestBatch {
    lines.iter().fold(TestBatch::new(), |batch, line| batch.text(line))
}

fn letters_of(messages: &[aws_sdk_sqs::types::Message]) -> Vec<DeadLetter> {
    messages.iter().map(|m| serde_json::from_str(m.body().unwrap()).expect("an envelope")).collect()
}

/// No record is both dead-lettered (in the sink) and the reported failure.
fn assert_not_both(report: &BatchReport, letters: &[DeadLetter]) {
    if let Some(checkpoint) = report.checkpoint() {
        assert!(
            letters.iter().all(|l| l.sequence_number.as_deref() != Some(checkpoint)),
            "the reported record {checkpoint} is also in the sink"
        );
    }
}

/// Every record is finished or at/after the checkpoint.
fn assert_nothing_lost(report: &BatchReport) {
    for record in report.records() {
        assert!(record.outcome().is_finished() || record.redelivered(), "{record:?} is lost");
    }
}

macro_rules! moto_or_skip {
    ($test:literal) => {
        match Moto::from_env() {
            Some(moto) => moto,
            None => unavailable($test, "no moto server (KINESIS_PROCESSOR_MOTO_ENDPOINT is unset)"),
        }
    };
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn sqs_poison_records_arrive_with_their_envelope_and_data() {
    let moto = moto_or_skip!("sqs_poison_records_arrive_with_their_envelope_and_data");
    let queue = moto.create_queue("poison").await;
    let lines: Vec<String> = (0..25)
        .map(|n| if n % 2 == 0 { format!("poison-{n}") } else { format!("good-{n}") })
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let batch = batch(&lines).bytes(&[0xff, 0xfe]); // not UTF-8: undecodable
    let sequence_numbers = batch.sequence_numbers();
    let report = processor()
        .dead_letter(SqsDeadLetter::new(moto.sqs().await, &queue))
        .process(batch.build())
        .await
        .unwrap();
    assert!(report.response().batch_item_failures.is_empty(), "{:?}", report.response());

    let messages = moto.drain(&queue, 14).await;
    assert_eq!(messages.len(), 14, "13 rejected and 1 undecodable");
    let mut letters = letters_of(&messages);
    letters.sort_by_key(|l| l.sequence_number.clone());
    for (letter, message) in letters.iter().zip(&messages) {
        let index = sequence_numbers
            .iter()
            .position(|s| Some(s) == letter.sequence_number.as_ref())
            .unwrap();
        match index {
            25 => {
                assert_eq!(letter.reason, DeadLetterReason::DecodeError);
                assert_eq!(letter.data_bytes().unwrap(), [0xff, 0xfe]);
            }
            _ => {
                assert_eq!(letter.reason, DeadLetterReason::Rejected);
                assert_eq!(letter.data_bytes().unwrap(), format!("poison-{index}").as_bytes());
                assert_eq!(letter.error, format!("bad line poison-{index}"));
            }
        }
        let attributes = message.message_attributes().unwrap();
        assert!(attributes["reason"].string_value().is_some());
    }
    assert_nothing_lost(&report);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn sns_poison_records_arrive_on_a_queue_subscription() {
    let moto = moto_or_skip!("sns_poison_records_arrive_on_a_queue_subscription");
    let sns = moto.sns().await;
    let topic = sns
        .create_topic()
        .name(moto::unique("poison"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let queue = moto.create_queue("subscriber").await;
    let queue_arn = moto
        .sqs()
        .await
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();

    let lines: Vec<String> = (0..12).map(|n| format!("poison-{n}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let report = processor()
        .dead_letter(SnsDeadLetter::new(sns, &topic))
        .process(batch(&lines).text("fine").build())
        .await
        .unwrap();
    assert!(report.response().batch_item_failures.is_empty());
    let letters = letters_of(&moto.drain(&queue, 12).await);
    assert_eq!(letters.len(), 12);
    let mut data: Vec<Vec<u8>> = letters.iter().map(|l| l.data_bytes().unwrap()).collect();
    data.sort();
    let mut expected: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
    expected.sort();
    assert_eq!(data, expected);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn s3_gets_one_json_lines_object_per_invocation_and_a_retry_overwrites_it() {
    let moto =
        moto_or_skip!("s3_gets_one_json_lines_object_per_invocation_and_a_retry_overwrites_it");
    let bucket = moto.create_bucket("poison").await;
    let payload = batch(&["good", "poison-1", "good", "poison-3", "poison-4"]).build();
    let processor = processor().dead_letter(S3DeadLetter::new(moto.s3().await, &bucket));
    for _ in 0..2 {
        let report = processor.process(&payload).await.unwrap();
        assert!(report.response().batch_item_failures.is_empty());
    }
    let s3 = moto.s3().await;
    let listing = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let objects = listing.contents();
    assert_eq!(objects.len(), 1, "the retry overwrote the same key");
    let key = objects[0].key().unwrap();
    assert!(key.starts_with("dead-letters/test-stream/shardId-000000000006/"), "{key}");
    let body = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    let lines: Vec<DeadLetter> = body
        .into_bytes()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let data: Vec<Vec<u8>> = lines.iter().map(|l| l.data_bytes().unwrap()).collect();
    assert_eq!(data, [b"poison-1".to_vec(), b"poison-3".to_vec(), b"poison-4".to_vec()]);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn an_oversized_record_without_an_s3_overflow_is_reported() {
    let moto = moto_or_skip!("an_oversized_record_without_an_s3_overflow_is_reported");
    let queue = moto.create_queue("oversize").await;
    let big = format!("poison-{}", "x".repeat(300 * 1024));
    let batch = batch(&["poison-0", &big, "good"]);
    let sequence_numbers = batch.sequence_numbers();
    let report = processor()
        .dead_letter(SqsDeadLetter::new(moto.sqs().await, &queue))
        .process(batch.build())
        .await
        .unwrap();
    assert_eq!(report.checkpoint(), Some(sequence_numbers[1].as_str()));
    let failed = report.records().nth(1).unwrap();
    assert_eq!(failed.outcome(), Outcome::Failed);
    assert!(
        failed.error().unwrap().contains("more than the queue's 262144"),
        "{:?}",
        failed.error()
    );
    let letters = letters_of(&moto.drain(&queue, 1).await);
    assert_eq!(letters.len(), 1);
    assert_not_both(&report, &letters);
    assert_nothing_lost(&report);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn an_oversized_record_goes_to_s3_with_a_pointer_on_the_queue() {
    let moto = moto_or_skip!("an_oversized_record_goes_to_s3_with_a_pointer_on_the_queue");
    let queue = moto.create_queue("overflow").await;
    let bucket = moto.create_bucket("overflow").await;
    let big = format!("poison-{}", "y".repeat(400 * 1024));
    let sink = SqsDeadLetter::new(moto.sqs().await, &queue)
        .overflow_to(S3DeadLetter::new(moto.s3().await, &bucket));
    let report =
        processor().dead_letter(sink).process(batch(&[&big, "good"]).build()).await.unwrap();
    assert!(report.response().batch_item_failures.is_empty());
    let pointers = letters_of(&moto.drain(&queue, 1).await);
    assert_eq!(pointers.len(), 1);
    assert_eq!(pointers[0].data, None);
    let location = pointers[0].data_location.clone().expect("a pointer");
    let key = location.strip_prefix(&format!("s3://{bucket}/")).expect("in the bucket");
    let object = moto.s3().await.get_object().bucket(&bucket).key(key).send().await.unwrap();
    let stored: DeadLetter =
        serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(stored.data_bytes().unwrap(), big.as_bytes());
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_queue_that_does_not_exist_fails_every_letter() {
    let moto = moto_or_skip!("a_queue_that_does_not_exist_fails_every_letter");
    let missing = format!("{}/123456789012/{}", moto.endpoint, moto::unique("missing"));
    let batch = batch(&["good", "poison-1", "good", "poison-3"]);
    let sequence_numbers = batch.sequence_numbers();
    let report = processor()
        .dead_letter(SqsDeadLetter::new(moto.sqs().await, missing))
        .process(batch.build())
        .await
        .unwrap();
    assert_eq!(report.checkpoint(), Some(sequence_numbers[1].as_str()));
    let error = report.records().nth(1).unwrap().error().unwrap().to_owned();
    assert!(error.contains("NonExistentQueue") || error.contains("QueueDoesNotExist"), "{error}");
    assert_nothing_lost(&report);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn the_server_stopped_mid_batch_fails_the_letters_it_did_not_confirm() {
    let Some(server) = OwnServer::start() else {
        unavailable("the_server_stopped_mid_batch", "moto_server is not on PATH");
    };
    let moto = server.moto.clone();
    let queue = moto.create_queue("stopping").await;
    let script = Arc::new(Script { server: Mutex::new(Some(server)) });
    // Ten letters go out while `wait` runs; `stop` then stops the server; the next five
    // letters meet a refused connection.
    let mut lines: Vec<String> = (0..10).map(|n| format!("poison-{n}")).collect();
    lines.extend(["wait".into(), "stop".into()]);
    lines.extend((12..17).map(|n| format!("poison-{n}")));
    lines.push("good".into());
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let batch = batch(&lines);
    let sequence_numbers = batch.sequence_numbers();
    let report = judge()
        .state(script)
        .dead_letter(SqsDeadLetter::new(moto.sqs().await, &queue))
        .process(batch.build())
        .await
        .unwrap();

    let outcomes: Vec<Outcome> = report.records().map(|r| r.outcome()).collect();
    assert!(
        outcomes[..10].iter().all(|o| *o == Outcome::DeadLettered(DeadLetterReason::Rejected)),
        "{outcomes:?}"
    );
    assert_eq!(report.checkpoint(), Some(sequence_numbers[12].as_str()));
    assert!(outcomes[12..17].iter().all(|o| !o.is_finished()), "{outcomes:?}");
    let error = report.records().nth(12).unwrap().error().unwrap().to_owned();
    assert!(error.contains("dead-letter sink refused it"), "{error}");
    assert_nothing_lost(&report);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn throttling_that_outlasts_the_sdk_retries_is_a_reported_failure() {
    let moto = moto_or_skip!("throttling_that_outlasts_the_sdk_retries_is_a_reported_failure");
    let queue = moto.create_queue("throttled").await;
    let faults = Faulty::new("AmazonSQS.SendMessageBatch", vec![], Fault::throttle());
    let sqs = aws_sdk_sqs::Client::new(&moto.config(Some(faults.shared())).await);
    let batch = batch(&["good", "poison-1", "poison-2"]);
    let sequence_numbers = batch.sequence_numbers();
    let report = processor()
        .dead_letter(SqsDeadLetter::new(sqs, &queue))
        .process(batch.build())
        .await
        .unwrap();
    assert_eq!(faults.seen(), 3, "the SDK's three attempts");
    assert_eq!(report.checkpoint(), Some(sequence_numbers[1].as_str()));
    let error = report.records().nth(1).unwrap().error().unwrap().to_owned();
    assert!(error.contains("ThrottlingException"), "{error}");
    assert!(moto.drain(&queue, 0).await.is_empty());
    assert_nothing_lost(&report);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_500_that_the_sdk_retries_away_still_dead_letters() {
    let moto = moto_or_skip!("a_500_that_the_sdk_retries_away_still_dead_letters");
    let queue = moto.create_queue("flaky").await;
    let faults =
        Faulty::new("AmazonSQS.SendMessageBatch", vec![Fault::internal_error()], Fault::Pass);
    let sqs = aws_sdk_sqs::Client::new(&moto.config(Some(faults.shared())).await);
    let report = processor()
        .dead_letter(SqsDeadLetter::new(sqs, &queue))
        .process(batch(&["poison-0", "good"]).build())
        .await
        .unwrap();
    assert_eq!(faults.seen(), 2);
    assert!(report.response().batch_item_failures.is_empty());
    assert_eq!(moto.drain(&queue, 1).await.len(), 1);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn persistent_500s_are_a_reported_failure() {
    let moto = moto_or_skip!("persistent_500s_are_a_reported_failure");
    let queue = moto.create_queue("broken").await;
    let faults = Faulty::new("AmazonSQS.SendMessageBatch", vec![], Fault::internal_error());
    let sqs = aws_sdk_sqs::Client::new(&moto.config(Some(faults.shared())).await);
    let batch = batch(&["poison-0", "good"]);
    let first = batch.sequence_numbers()[0].clone();
    let report = processor()
        .dead_letter(SqsDeadLetter::new(sqs, &queue))
        .process(batch.build())
        .await
        .unwrap();
    assert_eq!(report.checkpoint(), Some(first.as_str()));
    assert!(report.records().next().unwrap().error().unwrap().contains("InternalFailure"));
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn an_entry_the_service_refuses_is_the_reported_failure_and_the_rest_arrive() {
    let moto =
        moto_or_skip!("an_entry_the_service_refuses_is_the_reported_failure_and_the_rest_arrive");
    let queue = moto.create_queue("partial").await;
    // The second entry of the call is refused by moto itself (an invalid DelaySeconds).
    let faults = Faulty::new(
        "AmazonSQS.SendMessageBatch",
        vec![Fault::InvalidDelayForEntry("1")],
        Fault::Pass,
    );
    let sqs = aws_sdk_sqs::Client::new(&moto.config(Some(faults.shared())).await);
    let batch = batch(&["poison-0", "poison-1", "poison-2", "good"]);
    let sequence_numbers = batch.sequence_numbers();
    let report = processor()
        .dead_letter(SqsDeadLetter::new(sqs, &queue))
        .process(batch.build())
        .await
        .unwrap();
    assert_eq!(report.checkpoint(), Some(sequence_numbers[1].as_str()));
    let refused = report.records().nth(1).unwrap();
    assert!(refused.error().unwrap().contains("SQS refused the message"), "{:?}", refused.error());
    let letters = letters_of(&moto.drain(&queue, 2).await);
    assert_eq!(letters.len(), 2, "the two entries the service took");
    assert_not_both(&report, &letters);
    assert_nothing_lost(&report);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn from_env_reads_the_target_and_the_endpoint_from_the_environment() {
    let moto = moto_or_skip!("from_env_reads_the_target_and_the_endpoint_from_the_environment");
    let queue = moto.create_queue("from-env").await;
    // The process environment is shared by the tests of this binary: only this test sets
    // these variables, and only to the same values.
    std::env::set_var("KP_TEST_DLQ_URL", &queue);
    std::env::set_var("AWS_ENDPOINT_URL", &moto.endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    let sink = SqsDeadLetter::from_env("KP_TEST_DLQ_URL").await.unwrap();
    let report = processor().dead_letter(sink).process(batch(&["poison-0"]).build()).await.unwrap();
    assert!(report.response().batch_item_failures.is_empty());
    assert_eq!(moto.drain(&queue, 1).await.len(), 1);

    let missing = SqsDeadLetter::from_env("KP_TEST_UNSET_VARIABLE").await.unwrap_err();
    assert!(missing.to_string().contains("KP_TEST_UNSET_VARIABLE is not set"), "{missing}");
}
