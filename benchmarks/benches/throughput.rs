//! Throughput from invocation payload bytes to response bytes, with no-op business logic
//! that reads every field: the framework (concurrency 1), the loop a careful user writes
//! by hand today (`aws_lambda_events::KinesisEvent`, `serde_json` per record,
//! `KinesisEventResponse`), and the irreducible work (scan the envelope, base64-decode and
//! typed-decode each payload, nothing else), side by side in one run.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kinesis_processor::testing::TestBatch;
use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
use serde::Deserialize;

#[derive(Deserialize)]
struct Click {
    user_id: String,
    ip: String,
    url: String,
    referrer: String,
    ts: u64,
}

/// Reads every field, as business logic would, without doing anything with them.
fn touch(click: &Click) -> usize {
    click.user_id.len()
        + click.ip.len()
        + click.url.len()
        + click.referrer.len()
        + (click.ts as usize & 1)
}

#[kinesis_processor(retries = 0)]
async fn noop(click: Click, meta: &RecordMeta) -> Result<(), RecordError> {
    std::hint::black_box(touch(&click) + meta.partition_key().len() + meta.sequence_number().len());
    Ok(())
}

fn baseline(payload: &[u8]) -> Vec<u8> {
    let event: KinesisEvent = serde_json::from_slice(payload).unwrap();
    let mut response = KinesisEventResponse::default();
    for record in &event.records {
        match serde_json::from_slice::<Click>(&record.kinesis.data.0) {
            Ok(click) => {
                let key = record.kinesis.partition_key.len();
                std::hint::black_box(touch(&click) + key);
            }
            Err(_) => {
                response.add_failure(record.kinesis.sequence_number.clone());
                break;
            }
        }
    }
    serde_json::to_vec(&response).unwrap()
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    kinesis: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    data: &'a str,
}

fn irreducible(payload: &[u8], buffer: &mut Vec<u8>) -> usize {
    let envelope: Envelope<'_> = serde_json::from_slice(payload).unwrap();
    let mut total = 0;
    for entry in &envelope.records {
        buffer.clear();
        base64::engine::general_purpose::STANDARD.decode_vec(entry.kinesis.data, buffer).unwrap();
        total += touch(&serde_json::from_slice::<Click>(buffer).unwrap());
    }
    total
}

fn click(n: usize, padding: usize) -> serde_json::Value {
    serde_json::json!({
        "user_id": format!("user-{}", n % 977),
        "ip": format!("203.0.113.{}", n % 250),
        "url": format!("/page/{}", n % 131),
        "referrer": "x".repeat(padding),
        "ts": 1_764_126_000_000u64 + n as u64,
    })
}

fn batch(records: usize, padding: usize) -> Vec<u8> {
    (0..records)
        .fold(TestBatch::new(), |b, n| {
            b.json(&click(n, padding)).partition_key(&format!("user-{}", n % 977))
        })
        .build()
}

fn throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let processor = noop();
    for (name, records, padding) in
        [("5,000 x ~400 B", 5_000, 300), ("10,000 x ~60 B", 10_000, 0), ("100 x ~400 B", 100, 300)]
    {
        let payload = batch(records, padding);
        let mut group = c.benchmark_group(format!("{name} ({} KB)", payload.len() / 1024));
        group.throughput(Throughput::Elements(records as u64));
        group.sample_size(30);
        group.bench_function(BenchmarkId::from_parameter("framework"), |b| {
            b.iter(|| {
                let report =
                    runtime.block_on(processor.process(std::hint::black_box(&payload))).unwrap();
                serde_json::to_vec(report.response()).unwrap()
            })
        });
        group.bench_function(BenchmarkId::from_parameter("hand-written baseline"), |b| {
            b.iter(|| baseline(std::hint::black_box(&payload)))
        });
        let mut buffer = Vec::new();
        group.bench_function(BenchmarkId::from_parameter("irreducible"), |b| {
            b.iter(|| irreducible(std::hint::black_box(&payload), &mut buffer))
        });
        group.finish();
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
