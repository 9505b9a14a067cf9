//! The clicks-to-dynamodb example (a chunk function writing clicks with `BatchWriteItem`,
//! 25 per call): its processor with the real aws-sdk-dynamodb client against moto on
//! 127.0.0.1, and its binary on the sample batch.
//!
//! Moto writes every item it is given, so DynamoDB's partial answers are made below the
//! SDK: an HTTP client ([`Injector`]) that forwards a `BatchWriteItem` call to moto with
//! some items held back and adds those to moto's answer as `UnprocessedItems`, as DynamoDB
//! does for a partition over its throughput; it can also answer calls with a throttle, and
//! it records the click ids of every call the SDK sends.

mod moto;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use clicks_to_dynamodb::{Destination, Table};
use kinesis_processor::dead_letter::{DeadLetter, DeadLetterReason, SqsDeadLetter};
use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{BatchReport, Outcome};
use moto::faults::{json_response, set_json_body, Intercept, Intercepting};
use moto::Moto;
use serde_json::{json, Map, Value};
use support::{unavailable, workspace};

macro_rules! moto_or_skip {
    ($test:literal) => {
        match Moto::from_env() {
            Some(moto) => moto,
            None => unavailable($test, "no moto server (KINESIS_PROCESSOR_MOTO_ENDPOINT is unset)"),
        }
    };
}

/// The `x-amz-target` of a `BatchWriteItem` call.
const BATCH_WRITE_ITEM: &str = "DynamoDB_20120810.BatchWriteItem";

/// What the injector does, shared by its clones and connectors.
#[derive(Debug, Default)]
struct Plan {
    /// Click ids to leave unprocessed, each with the number of calls still to leave it out of.
    hold_back: HashMap<String, u32>,
    /// How many more calls to answer with a throttle, without reaching moto.
    throttles: u32,
    /// The click ids of each call the SDK sent, in order (throttled ones included).
    calls: Vec<Vec<String>>,
}

impl Plan {
    /// Records a call and decides on it: whether to throttle it, and the write requests
    /// taken out of `body` to answer as unprocessed, by table.
    fn on_call(&mut self, body: &mut Value) -> (bool, Map<String, Value>) {
        let tables = body["RequestItems"].as_object_mut().expect("RequestItems");
        let ids = tables.values().flat_map(|requests| requests.as_array().unwrap()).map(click_id);
        self.calls.push(ids.collect());
        if self.throttles > 0 {
            self.throttles -= 1;
            return (true, Map::new());
        }
        let mut held = Map::new();
        for (table, requests) in tables.iter_mut() {
            let requests = requests.as_array_mut().unwrap();
            let (out, kept): (Vec<Value>, Vec<Value>) =
                requests.drain(..).partition(|request| self.holds_back(&click_id(request)));
            *requests = kept;
            if !out.is_empty() {
                held.insert(table.clone(), Value::Array(out));
            }
        }
        (false, held)
    }

    /// Whether to leave this click out of the call (counting the call against it).
    fn holds_back(&mut self, id: &str) -> bool {
        match self.hold_back.get_mut(id) {
            Some(times) if *times > 0 => {
                *times -= 1;
                true
            }
            _ => false,
        }
    }
}

/// The click id of a write request as the SDK sends it.
fn click_id(request: &Value) -> String {
    request["PutRequest"]["Item"]["click_id"]["S"].as_str().unwrap_or("").to_owned()
}

/// An HTTP client below the SDK that alters `BatchWriteItem` calls as its [`Plan`] says.
type Injector = Intercepting<Mutex<Plan>>;

impl Injector {
    fn new() -> Injector {
        Intercepting::with(Mutex::default())
    }

    /// Leaves these clicks unprocessed in the next `times` calls that carry each.
    fn hold_back(&self, click_ids: &[String], times: u32) {
        let mut plan = self.intercept.lock().unwrap();
        plan.hold_back.extend(click_ids.iter().map(|id| (id.clone(), times)));
    }

    /// Answers the next `calls` calls with a throttle.
    fn throttle(&self, calls: u32) {
        self.intercept.lock().unwrap().throttles = calls;
    }

    /// The click ids of every call so far.
    fn calls(&self) -> Vec<Vec<String>> {
        self.intercept.lock().unwrap().calls.clone()
    }

    /// The table `name` on moto, reached through this client.
    async fn table(&self, moto: &Moto, name: &str) -> Table {
        let config = moto.config(Some(self.shared())).await;
        Table::new(aws_sdk_dynamodb::Client::new(&config), name)
    }
}

impl Intercept for Mutex<Plan> {
    fn call(&self, mut request: HttpRequest, inner: &SharedHttpConnector) -> HttpConnectorFuture {
        if request.headers().get("x-amz-target") != Some(BATCH_WRITE_ITEM) {
            return inner.call(request);
        }
        let body = request.body().bytes().expect("an in-memory body");
        let mut json: Value = serde_json::from_slice(body).expect("a JSON request");
        let (throttled, held) = self.lock().unwrap().on_call(&mut json);
        if throttled {
            return HttpConnectorFuture::ready(Ok(throttle()));
        }
        if held.is_empty() {
            return inner.call(request);
        }
        if is_empty_call(&json) {
            // DynamoDB refuses an empty call: answer for moto, with nothing written.
            let answer = json!({"UnprocessedItems": held});
            return HttpConnectorFuture::ready(Ok(json_response(200, &answer)));
        }
        set_json_body(&mut request, &json);
        let call = inner.call(request);
        HttpConnectorFuture::new(async move {
            let response = call.await?;
            Ok(with_unprocessed(response, held).await)
        })
    }
}

/// Whether a call's body puts no item (all of them were held back).
fn is_empty_call(body: &Value) -> bool {
    let tables = body["RequestItems"].as_object().unwrap();
    tables.values().all(|requests| requests.as_array().unwrap().is_empty())
}

/// DynamoDB's answer to a call over the table's throughput, which the SDK retries.
fn throttle() -> HttpResponse {
    let error = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "injected: the table's throughput is exceeded"
    });
    json_response(400, &error)
}

/// Moto's answer with the held-back write requests added to its `UnprocessedItems`.
async fn with_unprocessed(mut response: HttpResponse, held: Map<String, Value>) -> HttpResponse {
    if !response.status().is_success() {
        return response;
    }
    let body = ByteStream::new(response.take_body()).collect().await.expect("moto's answer");
    let mut answer: Value = serde_json::from_slice(&body.into_bytes()).expect("JSON");
    let unprocessed = answer["UnprocessedItems"].as_object_mut().expect("UnprocessedItems");
    for (table, requests) in held {
        let into = unprocessed.entry(table).or_insert_with(|| json!([]));
        into.as_array_mut().unwrap().extend(requests.as_array().unwrap().iter().cloned());
    }
    let bytes = serde_json::to_vec(&answer).unwrap();
    response.headers_mut().insert("content-length", bytes.len().to_string());
    response.headers_mut().remove("x-amz-crc32");
    *response.body_mut() = SdkBody::from(bytes);
    response
}

/// A table keyed as the example's template keys its own: `click_id`, a string.
async fn create_clicks_table(moto: &Moto, name: &str) -> String {
    let table = moto::unique(name);
    let key = KeySchemaElement::builder()
        .attribute_name("click_id")
        .key_type(KeyType::Hash)
        .build()
        .unwrap();
    let attribute = AttributeDefinition::builder()
        .attribute_name("click_id")
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap();
    moto.dynamodb()
        .await
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key)
        .attribute_definitions(attribute)
        .send()
        .await
        .expect("table");
    table
}

type Item = HashMap<String, AttributeValue>;

/// Every item of the table, by click id.
async fn items(moto: &Moto, table: &str) -> BTreeMap<String, Item> {
    let output = moto.dynamodb().await.scan().table_name(table).send().await.expect("scan");
    assert!(output.last_evaluated_key().is_none(), "one page holds the test's items");
    let by_id = output.items().iter().map(|item| (string(item, "click_id"), item.clone()));
    by_id.collect()
}

fn string(item: &Item, name: &str) -> String {
    item[name].as_s().unwrap_or_else(|_| panic!("{name} is a string: {item:?}")).clone()
}

/// Click number `n`.
fn click(n: usize) -> Value {
    json!({
        "click_id": click_id_of(n),
        "user_id": format!("user-{}", n % 7),
        "url": format!("/page/{}", n % 5),
        "at": format!("2026-11-26T05:{:02}:{:02}Z", n / 60, n % 60),
    })
}

fn click_id_of(n: usize) -> String {
    format!("click-{n:03}")
}

/// A batch of these clicks, each under its own partition key (`key-N`), so that chunks
/// form in stream order: 25, 25, 10 for 60 clicks.
fn batch(clicks: &[Value]) -> TestBatch {
    clicks.iter().fold(TestBatch::new(), |batch, click| batch.json(click))
}

fn processor(
    table: Table,
) -> kinesis_processor::Processor<impl kinesis_processor::Handler<State = Destination>> {
    clicks_to_dynamodb::store().state(Destination::Table(table))
}

/// The attempts of each record, in stream order.
fn attempts(report: &BatchReport) -> Vec<u32> {
    report.records().map(|record| record.attempts()).collect()
}

fn assert_all_succeeded(report: &BatchReport) {
    assert!(report.response().batch_item_failures.is_empty(), "{:?}", report.response());
    for record in report.records() {
        assert_eq!(record.outcome(), Outcome::Succeeded, "{record:?}");
    }
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn sixty_clicks_land_in_three_calls_and_again_in_the_same_items() {
    let moto = moto_or_skip!("sixty_clicks_land_in_three_calls_and_again_in_the_same_items");
    let name = create_clicks_table(&moto, "clicks").await;
    let injector = Injector::new();
    let processor = processor(injector.table(&moto, &name).await);
    let clicks: Vec<Value> = (0..60).map(click).collect();
    let batch = batch(&clicks);
    let sequence_numbers = batch.sequence_numbers();
    let payload = batch.build();

    let report = processor.process(&payload).await.expect("processed");
    assert_all_succeeded(&report);
    assert_eq!(attempts(&report), [1; 60]);
    let calls = injector.calls();
    let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
    assert_eq!(sizes, [25, 25, 10], "one BatchWriteItem call per chunk of 25");
    let summary = report.summary();
    assert_eq!((summary.chunks, summary.chunk_records), (3, 60), "{summary:?}");
    assert_eq!(summary.partial_chunk_failures, 0);

    let stored = items(&moto, &name).await;
    assert_eq!(stored.len(), 60);
    for (n, click) in clicks.iter().enumerate() {
        let item = &stored[&click_id_of(n)];
        for field in ["user_id", "url", "at"] {
            assert_eq!(string(item, field), click[field].as_str().unwrap(), "{n}: {field}");
        }
        assert_eq!(string(item, "sequence_number"), sequence_numbers[n], "{n}");
    }

    // Lambda delivers the batch again: the same items, overwritten with the same values.
    let again = processor.process(&payload).await.expect("processed again");
    assert_all_succeeded(&again);
    assert_eq!(injector.calls().len(), 6);
    assert_eq!(items(&moto, &name).await, stored, "redelivery leaves the same items");
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn only_the_items_dynamodb_left_unprocessed_are_written_again() {
    let moto = moto_or_skip!("only_the_items_dynamodb_left_unprocessed_are_written_again");
    let name = create_clicks_table(&moto, "clicks-unprocessed").await;
    let injector = Injector::new();
    // One from the first chunk, two from the second, one from the third.
    let held: Vec<String> = [3, 27, 28, 59].map(click_id_of).to_vec();
    injector.hold_back(&held, 1);
    let dead_letters = MemoryDeadLetter::new();
    let processor = processor(injector.table(&moto, &name).await).dead_letter(dead_letters.clone());
    let clicks: Vec<Value> = (0..60).map(click).collect();

    let report = processor.process(batch(&clicks).build()).await.expect("processed");
    assert_all_succeeded(&report);
    let expected: Vec<u32> =
        (0..60).map(|n| if held.contains(&click_id_of(n)) { 2 } else { 1 }).collect();
    assert_eq!(attempts(&report), expected, "the held-back clicks were written on a retry");
    assert_eq!(items(&moto, &name).await.len(), 60, "every click is in the table");
    assert!(dead_letters.records().is_empty());

    // Three full calls, then one retry per chunk with exactly the clicks it left behind.
    let calls = injector.calls();
    assert_eq!(calls.iter().map(Vec::len).take(3).collect::<Vec<_>>(), [25, 25, 10]);
    let mut retries: Vec<Vec<String>> = calls[3..].to_vec();
    retries.sort();
    assert_eq!(retries, [vec![held[0].clone()], held[1..3].to_vec(), vec![held[3].clone()]]);
    let summary = report.summary();
    assert_eq!((summary.chunks, summary.chunk_records), (6, 64), "{summary:?}");
    assert_eq!(summary.partial_chunk_failures, 3);
    assert_eq!(summary.retried_attempts, 4);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_call_whose_items_are_all_left_unprocessed_is_written_on_the_retry() {
    let moto = moto_or_skip!("a_call_whose_items_are_all_left_unprocessed_is_written_on_the_retry");
    let name = create_clicks_table(&moto, "clicks-all-unprocessed").await;
    let injector = Injector::new();
    let held: Vec<String> = (0..5).map(click_id_of).collect();
    injector.hold_back(&held, 1);
    let processor = processor(injector.table(&moto, &name).await);
    let clicks: Vec<Value> = (0..5).map(click).collect();

    let report = processor.process(batch(&clicks).build()).await.expect("processed");
    assert_all_succeeded(&report);
    assert_eq!(attempts(&report), [2; 5]);
    assert_eq!(injector.calls(), [held.clone(), held], "the whole chunk, then again");
    assert_eq!(report.summary().partial_chunk_failures, 1, "an answer by record");
    assert_eq!(items(&moto, &name).await.len(), 5);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_click_left_unprocessed_past_its_retries_is_reported_and_delivered_again() {
    let moto =
        moto_or_skip!("a_click_left_unprocessed_past_its_retries_is_reported_and_delivered_again");
    let name = create_clicks_table(&moto, "clicks-exhausted").await;
    let injector = Injector::new();
    // The first call and all 3 retries leave it out.
    injector.hold_back(&[click_id_of(7)], 4);
    let processor = processor(injector.table(&moto, &name).await);
    let clicks: Vec<Value> = (0..10).map(click).collect();
    let batch = batch(&clicks);
    let sequence_numbers = batch.sequence_numbers();

    let report = processor.process(batch.build()).await.expect("processed");
    assert_eq!(report.checkpoint(), Some(sequence_numbers[7].as_str()));
    let held = report.records().nth(7).unwrap();
    assert_eq!((held.outcome(), held.attempts()), (Outcome::Failed, 4), "{held:?}");
    let stored = items(&moto, &name).await;
    assert_eq!(stored.len(), 9, "the others are written");
    assert!(!stored.contains_key(&click_id_of(7)));
    assert_eq!(injector.calls().len(), 4);

    // Lambda delivers it again from the checkpoint, and DynamoDB takes it now.
    let from_checkpoint = (7..10).map(click).collect::<Vec<_>>();
    let again = processor.process(batch_from(&from_checkpoint, 7).build()).await.unwrap();
    assert_all_succeeded(&again);
    assert_eq!(items(&moto, &name).await.len(), 10);
}

/// These clicks, numbered from `first`, under the partition keys of a batch from click 0.
fn batch_from(clicks: &[Value], first: usize) -> TestBatch {
    clicks.iter().enumerate().fold(TestBatch::new(), |batch, (n, click)| {
        batch.json(click).partition_key(&format!("key-{}", first + n))
    })
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_click_that_cannot_be_an_item_is_dead_lettered_and_the_rest_written() {
    let moto =
        moto_or_skip!("a_click_that_cannot_be_an_item_is_dead_lettered_and_the_rest_written");
    let name = create_clicks_table(&moto, "clicks-rejected").await;
    let queue = moto.create_queue("clicks-dead-letters").await;
    let injector = Injector::new();
    let processor = processor(injector.table(&moto, &name).await)
        .dead_letter(SqsDeadLetter::new(moto.sqs().await, &queue));
    let mut clicks: Vec<Value> = (0..30).map(click).collect();
    clicks[5]["click_id"] = json!("");
    clicks[12]["click_id"] = json!("x".repeat(3000));
    let batch = batch(&clicks);
    let sequence_numbers = batch.sequence_numbers();

    let report = processor.process(batch.build()).await.expect("processed");
    assert!(report.response().batch_item_failures.is_empty(), "{:?}", report.response());
    for (n, record) in report.records().enumerate() {
        let expected = match n {
            5 | 12 => Outcome::DeadLettered(DeadLetterReason::Rejected),
            _ => Outcome::Succeeded,
        };
        assert_eq!((record.outcome(), record.attempts()), (expected, 1), "{n}: {record:?}");
    }
    let stored = items(&moto, &name).await;
    assert_eq!(stored.len(), 28, "the rest of the chunk is written");
    assert!(stored.keys().all(|id| id.starts_with("click-")));
    let sizes: Vec<usize> = injector.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes, [23, 5], "the invalid clicks never reach DynamoDB");

    let messages = moto.drain(&queue, 2).await;
    let mut letters: Vec<DeadLetter> =
        messages.iter().map(|m| serde_json::from_str(m.body().unwrap()).unwrap()).collect();
    letters.sort_by_key(|letter| letter.sequence_number.clone());
    assert_eq!(letters.len(), 2, "{letters:?}");
    for (letter, n) in letters.iter().zip([5, 12]) {
        assert_eq!(letter.reason, DeadLetterReason::Rejected);
        assert_eq!(letter.sequence_number.as_deref(), Some(sequence_numbers[n].as_str()));
        let data: Value = serde_json::from_slice(&letter.data_bytes().unwrap()).unwrap();
        assert_eq!(data, clicks[n], "the dead letter carries the click");
    }
    assert!(letters[0].error.contains("empty click_id"), "{}", letters[0].error);
    assert!(letters[1].error.contains("3000 bytes"), "{}", letters[1].error);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_call_that_fails_whole_reports_the_batch_from_its_first_click() {
    let moto = moto_or_skip!("a_call_that_fails_whole_reports_the_batch_from_its_first_click");
    let missing = moto::unique("no-such-table");
    let injector = Injector::new();
    let dead_letters = MemoryDeadLetter::new();
    let processor =
        processor(injector.table(&moto, &missing).await).dead_letter(dead_letters.clone());
    let clicks: Vec<Value> = (0..60).map(click).collect();
    let batch = batch(&clicks);
    let sequence_numbers = batch.sequence_numbers();

    let report = processor.process(batch.build()).await.expect("processed");
    assert_eq!(report.checkpoint(), Some(sequence_numbers[0].as_str()));
    let first = report.records().next().unwrap();
    assert_eq!((first.outcome(), first.attempts()), (Outcome::Failed, 4), "{first:?}");
    assert!(first.error().unwrap().contains("ResourceNotFound"), "{first:?}");
    for record in report.records() {
        assert!(record.redelivered() && !record.outcome().is_finished(), "{record:?}");
    }
    assert!(dead_letters.records().is_empty(), "nothing is dead-lettered");
    // Each chunk was called 4 times (3 retries), whole each time.
    let sizes: Vec<usize> = injector.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes.len(), 12, "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 4 * 60, "{sizes:?}");
    let tables = moto.dynamodb().await.list_tables().send().await.unwrap();
    assert!(!tables.table_names().contains(&missing), "nothing created, nothing written");
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_table_that_throttles_every_call_is_left_untouched_and_the_batch_reported() {
    let moto =
        moto_or_skip!("a_table_that_throttles_every_call_is_left_untouched_and_the_batch_reported");
    let name = create_clicks_table(&moto, "clicks-throttled").await;
    let injector = Injector::new();
    injector.throttle(u32::MAX);
    let processor = processor(injector.table(&moto, &name).await);
    let clicks: Vec<Value> = (0..60).map(click).collect();
    let batch = batch(&clicks);
    let first = batch.sequence_numbers()[0].clone();

    let report = processor.process(batch.build()).await.expect("processed");
    assert_eq!(report.checkpoint(), Some(first.as_str()));
    assert!(report.records().all(|record| record.redelivered()));
    assert!(items(&moto, &name).await.is_empty(), "nothing written, at or after the checkpoint");
    // The SDK's 3 attempts for each of the processor's 4, for each of 3 chunks.
    assert_eq!(injector.calls().len(), 3 * 4 * 3);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_throttled_chunk_is_retried_whole_and_lands() {
    let moto = moto_or_skip!("a_throttled_chunk_is_retried_whole_and_lands");
    let name = create_clicks_table(&moto, "clicks-throttled-once").await;
    let injector = Injector::new();
    // Past the SDK's 3 attempts: the call fails, and the processor retries the chunk.
    injector.throttle(3);
    let processor = processor(injector.table(&moto, &name).await);
    let clicks: Vec<Value> = (0..10).map(click).collect();

    let report = processor.process(batch(&clicks).build()).await.expect("processed");
    assert_all_succeeded(&report);
    assert_eq!(attempts(&report), [2; 10]);
    assert_eq!(injector.calls().len(), 4);
    assert_eq!(report.summary().partial_chunk_failures, 0, "a whole failure is not partial");
    assert_eq!(items(&moto, &name).await.len(), 10);
}

/// The sample batch, as its file holds it.
fn sample_payload() -> Vec<u8> {
    std::fs::read(workspace().join("examples/clicks-to-dynamodb/events/clicks.json")).unwrap()
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn the_sample_batch_writes_one_item_per_click_id() {
    let moto = moto_or_skip!("the_sample_batch_writes_one_item_per_click_id");
    let name = create_clicks_table(&moto, "clicks-sample").await;
    let injector = Injector::new();
    let dead_letters = MemoryDeadLetter::new();
    let processor = processor(injector.table(&moto, &name).await).dead_letter(dead_letters.clone());
    for _ in 0..2 {
        let report = processor.process(sample_payload()).await.expect("processed");
        assert!(report.response().batch_item_failures.is_empty(), "{:?}", report.response());
        assert_eq!(report.summary().succeeded, 28, "{:?}", report.summary());
        assert_eq!(report.summary().dead_lettered_total(), 2);
    }
    let stored = items(&moto, &name).await;
    assert_eq!(stored.len(), 27, "a producer's retry of a click is the same item");
    assert!(stored.contains_key("click-1023") && !stored.contains_key("click-1024"));
    let sizes: Vec<usize> = injector.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes, [23, 4, 23, 4], "one call per chunk; no key twice in a call");
    assert_eq!(dead_letters.records().len(), 4, "two dead letters per run");
}

/// Runs the example's binary on the sample batch, outside Lambda, with `env`.
fn run_locally(env: &[(&str, &str)]) -> Output {
    let events = PathBuf::from("examples/clicks-to-dynamodb/events/clicks.json");
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(workspace())
        .args(["run", "--quiet", "-p", "clicks-to-dynamodb", "--"])
        .arg(&events)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove(clicks_to_dynamodb::TABLE_VAR)
        .env_remove("DEAD_LETTER_QUEUE_URL")
        .env_remove("DEAD_LETTERS");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("cargo runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn locally_the_sample_batch_is_logged_a_call_per_chunk() {
    let output = run_locally(&[]);
    let (printed, log) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{printed}\n{log}");
    assert!(printed.contains("clicks.json: 30 records"), "{printed}");
    assert_eq!(printed.matches("-> succeeded").count(), 28, "{printed}");
    assert!(printed.contains("-> dead-lettered (rejected): the click has an empty click_id"));
    assert!(printed.contains("-> dead-lettered (decode_error)"), "{printed}");
    assert!(printed.contains("chunks 2"), "{printed}");
    let calls: Vec<&str> = log.lines().filter(|line| line.contains("BatchWriteItem")).collect();
    assert_eq!(calls.len(), 2, "{log}");
    assert!(calls[0].contains("items=23") && calls[1].contains("items=4"), "{calls:?}");
}

#[test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
fn the_binary_writes_to_the_table_the_environment_names() {
    let moto = moto_or_skip!("the_binary_writes_to_the_table_the_environment_names");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let name = runtime.block_on(create_clicks_table(&moto, "clicks-binary"));
    let env = [
        (clicks_to_dynamodb::TABLE_VAR, name.as_str()),
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    for run in 0..2 {
        let output = run_locally(&env);
        let (printed, log) = (text(&output.stdout), text(&output.stderr));
        assert!(output.status.success(), "run {run}: {printed}\n{log}");
        assert_eq!(printed.matches("-> succeeded").count(), 28, "run {run}: {printed}");
        assert_eq!(runtime.block_on(items(&moto, &name)).len(), 27, "run {run}");
    }
}
