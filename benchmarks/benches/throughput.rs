//! Throughput from invocation payload bytes to response bytes, with no-op business logic
//! that reads every field: the framework (concurrency 1), the loop a careful user writes
//! by hand today (`aws_lambda_events::KinesisEvent`, `serde_json` per record,
//! `KinesisEventResponse`), and the irreducible work (scan the envelope, base64-decode and
//! typed-decode each payload, nothing else), side by side in one run. The same clicks
//! KPL-aggregated go through the framework too.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kinesis_processor_benchmarks::contenders::{baseline, irreducible, noop, REMAINING};
use kinesis_processor_benchmarks::inputs::Shape;

fn throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let processor = noop();
    for shape in Shape::ALL {
        let payload = shape.event();
        let mut group = c.benchmark_group(format!("throughput/{}", shape.name()));
        group.throughput(Throughput::Elements(shape.records() as u64));
        group.sample_size(30);
        let framework = |payload: &[u8]| {
            let report =
                runtime.block_on(processor.respond(payload, "benchmark", REMAINING)).unwrap();
            assert!(report.response().batch_item_failures.is_empty());
            serde_json::to_vec(report.response()).unwrap()
        };
        group.bench_function(BenchmarkId::from_parameter("framework"), |b| {
            b.iter(|| framework(std::hint::black_box(&payload)))
        });
        group.bench_function(BenchmarkId::from_parameter("baseline"), |b| {
            b.iter(|| baseline(std::hint::black_box(&payload)))
        });
        let mut buffer = Vec::new();
        group.bench_function(BenchmarkId::from_parameter("irreducible"), |b| {
            b.iter(|| irreducible(std::hint::black_box(&payload), &mut buffer))
        });
        let aggregated = shape.aggregated_event();
        group.bench_function(BenchmarkId::from_parameter("framework-kpl"), |b| {
            b.iter(|| framework(std::hint::black_box(&aggregated)))
        });
        group.finish();
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
