//! A processor behind `lambda_runtime`'s OpenTelemetry layer, served through a Lambda
//! Runtime API on 127.0.0.1: the exported spans nest as they should. A test binary of its
//! own, since the subscriber it installs must see every span of the process.

mod runtime_api;

use std::time::Duration;

use kinesis_processor::testing::TestBatch;
use kinesis_processor::{kinesis_processor, RecordError};
use lambda_runtime::Runtime;
use runtime_api::{configure_environment, Answer, Invoke, RuntimeApi, ENVIRONMENT};
use serde_json::json;

#[kinesis_processor(format = text)]
async fn accept(line: String) -> Result<(), RecordError> {
    tracing::info!(%line, "accepted");
    Ok(())
}

const TRACE_ID: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

#[test]
fn the_opentelemetry_layer_holds_the_batch_and_record_spans_with_the_trace_id() {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt as _;

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("kinesis-processor")));
    // The whole test on one thread, so that the subscriber sees every span of the function.
    let _default = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let _environment = ENVIRONMENT.lock().await;
        let api = RuntimeApi::start().await;
        configure_environment(&api, None);
        let flushed = provider.clone();
        let layer = lambda_runtime::layers::OpenTelemetryLayer::new(move || {
            let _ = flushed.force_flush();
        });
        let service = accept().into_service();
        let serving = tokio::spawn(Runtime::new(service).layer(layer).run());

        let batch = TestBatch::new().text("a").text("b");
        let answer = api.invoke(Invoke::new("traced-1", batch.build()).traced(TRACE_ID)).await;
        assert_eq!(answer, Answer::Response(json!({"batchItemFailures": []})));
        // The invocation span ends (and the layer flushes) just after the response is sent.
        for _ in 0..100 {
            let spans = exporter.get_finished_spans().unwrap();
            if spans.iter().any(|span| span.name == "processor") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        serving.abort();
    });

    let spans = exporter.get_finished_spans().unwrap();
    let named = |name: &'static str| spans.iter().filter(move |span| span.name == name);
    let names: Vec<_> = spans.iter().map(|span| &span.name).collect();
    // The layer names the invocation span after the function (`otel.name`).
    let invocation = named("processor").next().expect("the invocation span");
    let batch = named("kinesis_batch").next().expect("the batch span");
    let records: Vec<_> = named("record").collect();
    assert_eq!(records.len(), 2, "{names:?}");

    // One trace: the batch under the invocation, the records under the batch.
    let trace = invocation.span_context.trace_id();
    assert_eq!(batch.span_context.trace_id(), trace);
    assert_eq!(batch.parent_span_id, invocation.span_context.span_id());
    for record in &records {
        assert_eq!(record.span_context.trace_id(), trace);
        assert_eq!(record.parent_span_id, batch.span_context.span_id());
    }
    // The invocation's X-Ray trace id and request id are on the spans.
    let attribute = |span: &opentelemetry_sdk::trace::SpanData, key: &str| {
        span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute(invocation, "faas.invocation_id").as_deref(), Some("traced-1"));
    assert_eq!(attribute(batch, "request_id").as_deref(), Some("traced-1"));
    assert_eq!(attribute(batch, "xray_trace_id").as_deref(), Some(TRACE_ID));
    for record in &records {
        assert_eq!(attribute(record, "xray_trace_id").as_deref(), Some(TRACE_ID));
    }
}
