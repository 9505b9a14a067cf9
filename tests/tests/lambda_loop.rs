//! A processor served by `lambda_runtime`'s own loops through its tower `Service`:
//! `lambda_runtime::run`, a `Runtime` with a layer of the user's own, and
//! `run_concurrent` (OpenTelemetry's layer is in `lambda_otel.rs`). Each test serves real
//! invocations through a Lambda Runtime API on 127.0.0.1 (`runtime_api`), so nothing here
//! needs a service installed.

mod runtime_api;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{kinesis_processor, Invocation, RecordError, RecordMeta};
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{LambdaInvocation, Runtime};
use runtime_api::{configure_environment, Answer, Invoke, RuntimeApi, ENVIRONMENT};
use serde_json::json;

/// What the function saw, for the test to check: each record's invocation and shard.
#[derive(Default)]
struct Seen {
    records: Mutex<Vec<SeenRecord>>,
    /// Two records that must run at once, from two invocations (see `run_concurrent`).
    meeting: Option<tokio::sync::Barrier>,
}

#[derive(Clone, Debug)]
struct SeenRecord {
    line: String,
    shard: String,
    request_id: String,
    function_arn: Option<String>,
    trace_id: Option<String>,
    remaining: Duration,
}

/// `poison` is rejected, `down` fails (retryable), `meet` waits for its partner in
/// another invocation; anything else succeeds.
#[kinesis_processor(format = text, retries = 0)]
async fn note(
    line: String,
    invocation: &Invocation,
    seen: &Seen,
    meta: &RecordMeta,
) -> Result<(), RecordError> {
    seen.records.lock().unwrap().push(SeenRecord {
        line: line.clone(),
        shard: meta.shard_id().unwrap_or_default().to_owned(),
        request_id: invocation.request_id().to_owned(),
        function_arn: invocation.function_arn().map(str::to_owned),
        trace_id: invocation.xray_trace_id().map(str::to_owned),
        remaining: invocation.remaining(),
    });
    match line.as_str() {
        "poison" => Err(RecordError::reject("poison")),
        "down" => Err(RecordError::retry("downstream unavailable")),
        "meet" => {
            let barrier = seen.meeting.as_ref().expect("a meeting is set up");
            tokio::time::timeout(Duration::from_secs(10), barrier.wait())
                .await
                .map(drop)
                .map_err(|_| RecordError::retry("the other invocation never ran at the same time"))
        }
        _ => Ok(()),
    }
}

fn failures(answer: &Answer) -> Vec<String> {
    let Answer::Response(response) = answer else {
        panic!("expected a response, got {answer:?}");
    };
    response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failure| failure["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

const TRACE_ID: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_runtime_run_serves_the_processor_service() {
    let _environment = ENVIRONMENT.lock().await;
    let api = RuntimeApi::start().await;
    configure_environment(&api, None);
    let sink = MemoryDeadLetter::default();
    let service = note().state(Seen::default()).dead_letter(sink.clone()).into_service();
    let seen = service.clone();
    let runtime = tokio::spawn(lambda_runtime::run(service));

    // Every record succeeds or is dead-lettered: nothing to report.
    let batch = TestBatch::new().text("a").text("poison").text("b");
    let answer = api.invoke(Invoke::new("request-1", batch.build()).traced(TRACE_ID)).await;
    assert_eq!(answer, Answer::Response(json!({"batchItemFailures": []})));
    assert_eq!(sink.records().len(), 1);
    assert_eq!(sink.records()[0].request_id, "request-1");

    // A retryable failure is the checkpoint.
    let batch = TestBatch::new().text("c").text("down").text("d");
    let down = batch.sequence_numbers()[1].clone();
    let answer = api.invoke(Invoke::new("request-2", batch.build())).await;
    assert_eq!(failures(&answer), [down]);

    // Not a Kinesis event: an invocation error, so that Lambda retries the whole batch.
    let answer = api.invoke(Invoke::new("request-3", b"{\"nope\": 1}".to_vec())).await;
    let Answer::Error(error) = answer else { panic!("expected an error, got {answer:?}") };
    assert_eq!(error["errorType"], "kinesis_processor::InvalidEvent");
    assert!(error["errorMessage"].as_str().unwrap().contains("not a Kinesis event"), "{error}");

    // The record function saw each invocation as Lambda sent it.
    let records = seen.processor().shared_state().records.lock().unwrap().clone();
    let first = &records[0];
    assert_eq!((first.line.as_str(), first.request_id.as_str()), ("a", "request-1"));
    assert_eq!(first.trace_id.as_deref(), Some(TRACE_ID));
    assert_eq!(
        first.function_arn.as_deref(),
        Some("arn:aws:lambda:eu-west-1:123456789012:function:processor")
    );
    assert!(first.remaining > Duration::from_secs(50), "{:?}", first.remaining);
    assert!(first.remaining <= Duration::from_secs(60), "{:?}", first.remaining);
    let later = records.iter().find(|record| record.line == "c").unwrap();
    assert_eq!((later.request_id.as_str(), later.trace_id.as_deref()), ("request-2", None));
    runtime.abort();
}

/// A layer of the user's own around the runtime's service: it counts invocations.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

impl<S> Layer<S> for Counting {
    type Service = CountingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountingService { inner, count: Arc::clone(&self.0) }
    }
}

struct CountingService<S> {
    inner: S,
    count: Arc<AtomicUsize>,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for CountingService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> S::Future {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.call(invocation)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_with_a_layer_of_the_users_own_serves_the_processor() {
    let _environment = ENVIRONMENT.lock().await;
    let api = RuntimeApi::start().await;
    configure_environment(&api, None);
    let counting = Counting::default();
    let service = note().state(Seen::default()).into_service();
    let runtime = Runtime::new(service).layer(counting.clone());
    let runtime = tokio::spawn(runtime.run());

    for n in 1..=3 {
        let batch = TestBatch::new().text("a").text("down");
        let down = batch.sequence_numbers()[1].clone();
        let answer = api.invoke(Invoke::new(&format!("layered-{n}"), batch.build())).await;
        assert_eq!(failures(&answer), [down]);
        assert_eq!(counting.0.load(Ordering::SeqCst), n);
    }
    runtime.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_concurrent_answers_overlapping_invocations_from_two_shards() {
    let _environment = ENVIRONMENT.lock().await;
    let api = Arc::new(RuntimeApi::start().await);
    configure_environment(&api, Some(2));
    let sink = MemoryDeadLetter::default();
    let seen = Seen { meeting: Some(tokio::sync::Barrier::new(2)), ..Seen::default() };
    let service = note().state(seen).dead_letter(sink.clone()).into_service();
    let state = service.clone();
    let runtime = tokio::spawn(lambda_runtime::run_concurrent(service));

    // Each batch has a record that waits for the other batch's: they must overlap.
    let first =
        TestBatch::new().shard_id("shardId-000000000001").text("a").text("meet").text("poison");
    let second =
        TestBatch::new().shard_id("shardId-000000000002").text("meet").text("down").text("b");
    let down = second.sequence_numbers()[1].clone();
    let (one, two) = tokio::join!(
        api.invoke(Invoke::new("shard-1", first.build())),
        api.invoke(Invoke::new("shard-2", second.build())),
    );

    // Each invocation keeps its own checkpoint.
    assert_eq!(one, Answer::Response(json!({"batchItemFailures": []})));
    assert_eq!(failures(&two), [down]);
    // One state and one sink for both.
    let records = state.processor().shared_state().records.lock().unwrap().clone();
    let shards: Vec<(&str, &str)> =
        records.iter().map(|r| (r.request_id.as_str(), r.shard.as_str())).collect();
    assert!(shards.contains(&("shard-1", "shardId-000000000001")), "{shards:?}");
    assert!(shards.contains(&("shard-2", "shardId-000000000002")), "{shards:?}");
    assert_eq!(records.iter().filter(|r| r.line == "meet").count(), 2);
    let letters = sink.records();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].request_id, "shard-1");
    runtime.abort();
}
