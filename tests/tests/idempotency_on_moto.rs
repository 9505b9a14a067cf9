//! `DynamoDbIdempotency` with the real `aws-sdk-dynamodb` client against moto on 127.0.0.1:
//! claims, completions, expiry by the `expiration` attribute against the `now` passed in,
//! releases, batched reads, unprocessed keys sent again, and every way a call can fail (a
//! missing table, throttling, a refused connection) as a `StoreError` naming the table.
//! The DynamoDB calls are counted by an interceptor on the client.

mod moto;
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use kinesis_processor::idempotency::{Claim, DynamoDbIdempotency, IdempotencyStore};
use kinesis_processor::testing::TestBatch;
use kinesis_processor::{kinesis_processor, Outcome, RecordError};
use moto::faults::{Fault, Faulty};
use moto::Moto;
use support::{free_port, unavailable};

macro_rules! moto_or_skip {
    ($test:literal) => {
        match Moto::from_env() {
            Some(moto) => moto,
            None => unavailable($test, "no moto server (KINESIS_PROCESSOR_MOTO_ENDPOINT is unset)"),
        }
    };
}

/// The DynamoDB requests a client sent (every attempt), by operation.
#[derive(Clone, Debug, Default)]
struct Calls(Arc<Mutex<BTreeMap<String, u32>>>);

impl Calls {
    fn get(&self, operation: &str) -> u32 {
        self.0.lock().unwrap().get(operation).copied().unwrap_or(0)
    }

    fn all(&self) -> BTreeMap<String, u32> {
        self.0.lock().unwrap().clone()
    }

    fn reset(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "Calls"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // `X-Amz-Target: DynamoDB_20120810.PutItem`
        let target = context.request().headers().get("x-amz-target").unwrap_or("unknown");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self.0.lock().unwrap().entry(operation).or_default() += 1;
        Ok(())
    }
}

/// A DynamoDB client on `moto` that counts its requests, through `http` if given.
async fn client(moto: &Moto, http: Option<SharedHttpClient>) -> (aws_sdk_dynamodb::Client, Calls) {
    let calls = Calls::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&moto.config(http).await)
        .interceptor(calls.clone())
        .build();
    (aws_sdk_dynamodb::Client::from_conf(config), calls)
}

/// A table as the store's documentation asks for: `id` (S) as the partition key.
async fn create_table(moto: &Moto) -> String {
    moto.create_idempotency_table("idempotency").await
}

/// A store on a new table, and its client's call counts.
async fn store(moto: &Moto) -> (DynamoDbIdempotency, Calls, String) {
    let table = create_table(moto).await;
    let (dynamodb, calls) = client(moto, None).await;
    (DynamoDbIdempotency::new(dynamodb, &table), calls, table)
}

/// A fixed time far from the real clock: the store must compare with the `now` it is given.
fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000_000 + seconds)
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_claim_holds_the_key_until_it_expires() {
    let moto = moto_or_skip!("a_claim_holds_the_key_until_it_expires");
    let (store, calls, _) = store(&moto).await;
    assert_eq!(store.claim("k", at(0), at(60)).await.unwrap(), Claim::Claimed);
    assert_eq!(store.find_done(&keys(&["k"]), at(1)).await.unwrap(), [false]);
    assert_eq!(store.claim("k", at(1), at(61)).await.unwrap(), Claim::InProgress);
    assert_eq!(store.claim("k", at(59), at(120)).await.unwrap(), Claim::InProgress);
    // moto returns the holding item with the refusal: no GetItem needed.
    assert_eq!(calls.get("GetItem"), 0, "{:?}", calls.all());
    assert_eq!(calls.get("PutItem"), 3, "{:?}", calls.all());
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_completed_key_is_done_and_cannot_be_claimed() {
    let moto = moto_or_skip!("a_completed_key_is_done_and_cannot_be_claimed");
    let (store, _, _) = store(&moto).await;
    assert_eq!(store.claim("k", at(0), at(60)).await.unwrap(), Claim::Claimed);
    store.complete(&keys(&["k"]), at(3600)).await.unwrap();
    assert_eq!(store.find_done(&keys(&["k", "other"]), at(10)).await.unwrap(), [true, false]);
    assert_eq!(store.claim("k", at(10), at(70)).await.unwrap(), Claim::Done);
    // After the claim's own expiry, the completion still holds.
    assert_eq!(store.claim("k", at(600), at(660)).await.unwrap(), Claim::Done);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn expiry_is_the_expiration_attribute_against_the_given_now() {
    let moto = moto_or_skip!("expiry_is_the_expiration_attribute_against_the_given_now");
    let (store, _, _) = store(&moto).await;
    // An expired claim is taken over, at its expiry exactly and after.
    assert_eq!(store.claim("claimed", at(0), at(10)).await.unwrap(), Claim::Claimed);
    assert_eq!(store.claim("claimed", at(9), at(20)).await.unwrap(), Claim::InProgress);
    assert_eq!(store.claim("claimed", at(10), at(30)).await.unwrap(), Claim::Claimed);
    assert_eq!(store.claim("claimed", at(29), at(40)).await.unwrap(), Claim::InProgress);

    // An expired completion is not done, and its key can be claimed again.
    store.complete(&keys(&["done"]), at(100)).await.unwrap();
    assert_eq!(store.find_done(&keys(&["done"]), at(99)).await.unwrap(), [true]);
    assert_eq!(store.find_done(&keys(&["done"]), at(100)).await.unwrap(), [false]);
    assert_eq!(store.claim("done", at(99), at(200)).await.unwrap(), Claim::Done);
    assert_eq!(store.claim("done", at(101), at(200)).await.unwrap(), Claim::Claimed);

    // Times are whole seconds: a `now` rounds down, an expiry up (held a little longer).
    let half = Duration::from_millis(500);
    assert_eq!(store.claim("half", at(0), at(10) + half).await.unwrap(), Claim::Claimed);
    assert_eq!(store.claim("half", at(10) + half, at(20)).await.unwrap(), Claim::InProgress);
    assert_eq!(store.claim("half", at(11), at(20)).await.unwrap(), Claim::Claimed);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_released_claim_can_be_claimed_at_once_but_a_completion_stays() {
    let moto = moto_or_skip!("a_released_claim_can_be_claimed_at_once_but_a_completion_stays");
    let (store, calls, _) = store(&moto).await;
    assert_eq!(store.claim("k", at(0), at(60)).await.unwrap(), Claim::Claimed);
    store.release(&keys(&["k"])).await.unwrap();
    assert_eq!(store.claim("k", at(1), at(61)).await.unwrap(), Claim::Claimed);

    // A release of a completed key (someone else's) or of no entry is not an error.
    store.complete(&keys(&["done"]), at(3600)).await.unwrap();
    calls.reset();
    store.release(&keys(&["done", "never-claimed", "done"])).await.unwrap();
    assert_eq!(calls.get("DeleteItem"), 2, "one per distinct key: {:?}", calls.all());
    assert_eq!(store.find_done(&keys(&["done"]), at(2)).await.unwrap(), [true]);
    assert_eq!(store.claim("k", at(2), at(62)).await.unwrap(), Claim::InProgress);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn find_done_reads_a_hundred_keys_a_call_and_answers_in_order() {
    let moto = moto_or_skip!("find_done_reads_a_hundred_keys_a_call_and_answers_in_order");
    let (store, calls, _) = store(&moto).await;
    assert_eq!(store.read_batch_size(), 100);
    let all: Vec<String> = (0..250).map(|n| format!("key-{n:03}")).collect();
    // Every third key done, every fifth one claimed (one is both: done).
    let done: Vec<String> = all.iter().step_by(3).cloned().collect();
    store.complete(&done, at(3600)).await.unwrap();
    for key in all.iter().skip(1).step_by(5).filter(|key| !done.contains(key)) {
        assert_eq!(store.claim(key, at(0), at(60)).await.unwrap(), Claim::Claimed);
    }
    assert_eq!(calls.get("BatchWriteItem"), 4, "84 completions, 25 a call: {:?}", calls.all());

    calls.reset();
    let mut asked = all.clone();
    asked.reverse(); // the answers follow the order asked, not the table's
    let answers = store.find_done(&asked, at(10)).await.unwrap();
    let expected: Vec<bool> = asked.iter().map(|key| done.contains(key)).collect();
    assert_eq!(answers, expected);
    assert_eq!(calls.get("BatchGetItem"), 3, "{:?}", calls.all());
    assert_eq!(calls.all().len(), 1, "{:?}", calls.all());

    // A key asked twice (BatchGetItem refuses repeats) gets both answers.
    let twice = keys(&["key-000", "key-001", "key-000"]);
    assert_eq!(store.find_done(&twice, at(10)).await.unwrap(), [true, false, true]);
    assert_eq!(store.find_done(&[], at(10)).await.unwrap(), Vec::<bool>::new());
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_refusal_without_the_item_reads_it_and_a_vanished_one_is_claimed_again() {
    let moto =
        moto_or_skip!("a_refusal_without_the_item_reads_it_and_a_vanished_one_is_claimed_again");
    let table = create_table(&moto).await;
    // As DynamoDB answers a refused condition when it does not return the item.
    let refused = Fault::Answer {
        status: 400,
        error_type: "ConditionalCheckFailedException",
        message: "The conditional request failed",
    };
    let (pass, refuse) = (Fault::Pass, || refused.clone());
    let plan = vec![pass.clone(), refuse(), refuse(), pass, refuse(), refuse()];
    let faults = Faulty::new("DynamoDB_20120810.PutItem", plan, Fault::Pass);
    let (dynamodb, calls) = client(&moto, Some(faults.shared())).await;
    let store = DynamoDbIdempotency::new(dynamodb, &table);
    // Refused without the item: a consistent GetItem finds the claim.
    assert_eq!(store.claim("held", at(0), at(60)).await.unwrap(), Claim::Claimed);
    assert_eq!(store.claim("held", at(1), at(60)).await.unwrap(), Claim::InProgress);
    assert_eq!(calls.get("GetItem"), 1, "{:?}", calls.all());
    // Refused, then nothing there: tried once more, and claimed.
    assert_eq!(store.claim("vanished", at(1), at(60)).await.unwrap(), Claim::Claimed);
    // Refused twice with nothing there: in progress (the record comes again).
    assert_eq!(store.claim("flapping", at(1), at(60)).await.unwrap(), Claim::InProgress);
    assert_eq!(calls.get("GetItem"), 4, "{:?}", calls.all());
    assert_eq!(faults.seen(), 6);
}

/// An HTTP client that answers the first `first` BatchGetItem requests, and as many
/// BatchWriteItem requests, itself, leaving all their keys or items unprocessed; it
/// forwards the rest to moto.
#[derive(Clone, Debug)]
struct Unprocessed {
    inner: SharedHttpClient,
    first: u32,
    seen: Arc<Mutex<BTreeMap<&'static str, u32>>>,
}

impl Unprocessed {
    fn new(first: u32) -> Unprocessed {
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build_https();
        Unprocessed { inner, first, seen: Arc::default() }
    }
}

impl HttpClient for Unprocessed {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(UnprocessedConnector { inner, client: self.clone() })
    }
}

#[derive(Debug)]
struct UnprocessedConnector {
    inner: SharedHttpConnector,
    client: Unprocessed,
}

impl HttpConnector for UnprocessedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let field = match request.headers().get("x-amz-target") {
            Some("DynamoDB_20120810.BatchGetItem") => "UnprocessedKeys",
            Some("DynamoDB_20120810.BatchWriteItem") => "UnprocessedItems",
            _ => return self.inner.call(request),
        };
        let seen = {
            let mut seen = self.client.seen.lock().unwrap();
            let seen = seen.entry(field).or_default();
            *seen += 1;
            *seen
        };
        if seen > self.client.first {
            return self.inner.call(request);
        }
        let body = request.body().bytes().expect("an in-memory body");
        let json: serde_json::Value = serde_json::from_slice(body).expect("a JSON request");
        let answer = serde_json::json!({ "Responses": {}, field: json["RequestItems"] });
        let mut response =
            Response::new(StatusCode::try_from(200).unwrap(), SdkBody::from(answer.to_string()));
        response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
        HttpConnectorFuture::ready(Ok(response))
    }
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn unprocessed_keys_and_items_are_sent_again() {
    let moto = moto_or_skip!("unprocessed_keys_and_items_are_sent_again");
    let table = create_table(&moto).await;
    let http = Unprocessed::new(1);
    let (dynamodb, calls) = client(&moto, Some(SharedHttpClient::new(http))).await;
    let store = DynamoDbIdempotency::new(dynamodb, &table);
    store.complete(&keys(&["a", "b"]), at(3600)).await.unwrap();
    assert_eq!(calls.get("BatchWriteItem"), 2, "{:?}", calls.all());
    assert_eq!(store.find_done(&keys(&["b", "c", "a"]), at(0)).await.unwrap(), [true, false, true]);
    assert_eq!(calls.get("BatchGetItem"), 2, "{:?}", calls.all());

    // Unprocessed every time: a bounded number of calls, then an error.
    let http = Unprocessed::new(u32::MAX);
    let (dynamodb, calls) = client(&moto, Some(SharedHttpClient::new(http))).await;
    let store = DynamoDbIdempotency::new(dynamodb, &table);
    let started = Instant::now();
    let error = store.find_done(&keys(&["a"]), at(0)).await.unwrap_err().to_string();
    assert!(error.contains(&table) && error.contains("BatchGetItem"), "{error}");
    assert!(error.contains("unprocessed"), "{error}");
    let error = store.complete(&keys(&["a"]), at(0)).await.unwrap_err().to_string();
    assert!(error.contains(&table) && error.contains("BatchWriteItem"), "{error}");
    assert_eq!(calls.get("BatchGetItem"), 6, "{:?}", calls.all());
    assert_eq!(calls.get("BatchWriteItem"), 6, "{:?}", calls.all());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_missing_table_is_an_error_naming_it() {
    let moto = moto_or_skip!("a_missing_table_is_an_error_naming_it");
    let table = moto::unique("no-such-table");
    let (dynamodb, _) = client(&moto, None).await;
    let store = DynamoDbIdempotency::new(dynamodb, &table);
    let errors = [
        store.find_done(&keys(&["k"]), at(0)).await.unwrap_err(),
        store.claim("k", at(0), at(60)).await.unwrap_err(),
        store.complete(&keys(&["k"]), at(60)).await.unwrap_err(),
        store.release(&keys(&["k"])).await.unwrap_err(),
    ];
    for (error, operation) in
        errors.iter().zip(["BatchGetItem", "PutItem", "BatchWriteItem", "DeleteItem"])
    {
        let error = error.to_string();
        assert!(error.contains(&table) && error.contains(operation), "{error}");
        assert!(error.contains("ResourceNotFound"), "{error}");
    }
    println!("a missing table: {}", errors[1]);
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn throttling_past_the_sdk_retries_is_an_error() {
    let moto = moto_or_skip!("throttling_past_the_sdk_retries_is_an_error");
    let table = create_table(&moto).await;
    let faults = Faulty::new("DynamoDB_20120810.PutItem", vec![], Fault::throttle());
    let (dynamodb, _) = client(&moto, Some(faults.shared())).await;
    let store = DynamoDbIdempotency::new(dynamodb, &table);
    let error = store.claim("k", at(0), at(60)).await.unwrap_err().to_string();
    assert!(error.contains(&table) && error.contains("PutItem"), "{error}");
    assert!(error.contains("ThrottlingException"), "{error}");
    assert_eq!(faults.seen(), 3, "the SDK's three attempts");
}

#[tokio::test]
async fn a_refused_connection_is_an_error_not_a_hang() {
    // Nobody listens there; the SDK tries twice, each connection refused at once.
    let moto = Moto { endpoint: format!("http://127.0.0.1:{}", free_port()) };
    let config = aws_sdk_dynamodb::config::Builder::from(&moto.config(None).await)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_timeout(Duration::from_secs(3))
                .build(),
        )
        .build();
    let store = DynamoDbIdempotency::new(aws_sdk_dynamodb::Client::from_conf(config), "refused");
    let started = Instant::now();
    let error = store.claim("k", at(0), at(60)).await.unwrap_err().to_string();
    assert!(error.contains("`refused`") && error.contains("PutItem"), "{error}");
    let error = store.find_done(&keys(&["k"]), at(0)).await.unwrap_err().to_string();
    assert!(error.contains("`refused`") && error.contains("BatchGetItem"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    println!("a refused connection: {error}");
}

// --- A processor guarded by the store ----------------------------------------------------

#[kinesis_processor(format = text)]
async fn charge(_order: String, runs: &Arc<AtomicUsize>) -> Result<(), RecordError> {
    runs.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test]
#[cfg_attr(not(services), ignore = "needs a moto server: ./scripts/test-all starts one")]
async fn a_processor_guarded_by_dynamodb_runs_each_record_once() {
    let moto = moto_or_skip!("a_processor_guarded_by_dynamodb_runs_each_record_once");
    let table = create_table(&moto).await;
    let (dynamodb, calls) = client(&moto, None).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let processor =
        charge().state(runs.clone()).idempotency(DynamoDbIdempotency::new(dynamodb, &table));
    let records = 500;
    let batch = (0..records).fold(TestBatch::new(), |batch, n| batch.text(&format!("order-{n}")));
    let sequence_numbers = batch.sequence_numbers();
    assert_eq!(
        sequence_numbers.iter().collect::<std::collections::HashSet<_>>().len(),
        records,
        "distinct sequence numbers"
    );
    let batch = batch.build();

    let report = processor.process(&batch).await.unwrap();
    let outcomes: Vec<Outcome> = report.records().map(|record| record.outcome()).collect();
    assert!(outcomes.iter().all(|outcome| *outcome == Outcome::Succeeded), "{outcomes:?}");
    assert!(report.response().batch_item_failures.is_empty());
    let ran = runs.load(Ordering::SeqCst);
    assert_eq!(ran, records);
    let first = calls.all();
    let reads = calls.get("BatchGetItem");
    let writes = calls.get("PutItem") + calls.get("BatchWriteItem") + calls.get("DeleteItem");
    println!(
        "first pass, {records} records, {ran} ran: {reads} reads, {writes} writes \
         ({:.2} a record that ran); by operation {first:?}",
        f64::from(writes) / ran as f64
    );
    assert!(reads <= records.div_ceil(100) as u32, "{first:?}");
    assert!(writes as usize <= 2 * ran, "{first:?}");

    calls.reset();
    let again = processor.process(&batch).await.unwrap();
    let outcomes: Vec<Outcome> = again.records().map(|record| record.outcome()).collect();
    assert!(outcomes.iter().all(|outcome| *outcome == Outcome::Duplicate), "{outcomes:?}");
    assert!(again.response().batch_item_failures.is_empty());
    assert_eq!(runs.load(Ordering::SeqCst), records, "the function ran once per record");
    println!("second pass, all {records} duplicates: by operation {:?}", calls.all());
    assert_eq!(calls.get("BatchGetItem"), 5, "{:?}", calls.all());
    assert_eq!(calls.all().len(), 1, "reads only: {:?}", calls.all());
}
