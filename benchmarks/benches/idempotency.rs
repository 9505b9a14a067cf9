//! What idempotency costs per record, over the in-memory store: the no-op processor
//! without idempotency beside the same processor with `MemoryIdempotency`, interleaved
//! round by round, at several batch sizes. Guarded twice: with a fresh store each run, so
//! that every record is new (its key read, claimed and completed, and the function run),
//! and with a store that holds every record done, so that every record is a duplicate (its
//! key read, the function not run). Each run builds its processor, guarded or not, so
//! that building one falls on every side.
//!
//! The store answers at once: what is timed is the runtime's part (keys, reads, claims,
//! completions), not a service's round trips.
//!
//! `cargo bench -p kinesis-processor-benchmarks --bench idempotency`, or with `--json FILE`
//! for `benchmarks/run`'s table.

use std::collections::BTreeMap;
use std::time::Duration;

use kinesis_processor::testing::{MemoryIdempotency, TestBatch};
use kinesis_processor::Processor;
use kinesis_processor_benchmarks::contenders::{noop, REMAINING};
use kinesis_processor_benchmarks::inputs::Shape;
use kinesis_processor_benchmarks::timing::{interleaved, median, paired_ratio, Contender};

/// Batch sizes: the largest is the most an event source mapping sends in one invocation.
const SIZES: [usize; 3] = [100, 1_000, 10_000];

/// How long the rounds of one batch size take in all, about.
const BUDGET: Duration = Duration::from_secs(4);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().position(|a| a == "--json").and_then(|i| args.get(i + 1));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut results = BTreeMap::new();
    for records in SIZES {
        let payload = batch(records);
        // Every record done: the store after one run of the batch.
        let done = MemoryIdempotency::new();
        let first = respond(&runtime, &noop().idempotency(done.clone()), &payload);
        assert_eq!(first, Counts { succeeded: records, duplicates: 0 });
        let mut contenders: Vec<Contender<'_>> = vec![
            (
                "plain",
                Box::new(|| {
                    let counts = respond(&runtime, &noop(), &payload);
                    assert_eq!(counts, Counts { succeeded: records, duplicates: 0 });
                    counts.succeeded
                }),
            ),
            (
                "new",
                Box::new(|| {
                    let guarded = noop().idempotency(MemoryIdempotency::new());
                    let counts = respond(&runtime, &guarded, &payload);
                    assert_eq!(counts, Counts { succeeded: records, duplicates: 0 });
                    counts.succeeded
                }),
            ),
            (
                "duplicates",
                Box::new(|| {
                    let guarded = noop().idempotency(done.clone());
                    let counts = respond(&runtime, &guarded, &payload);
                    assert_eq!(counts, Counts { succeeded: 0, duplicates: records });
                    counts.duplicates
                }),
            ),
        ];
        let times = interleaved(&mut contenders, BUDGET, 5..=201);
        let mut numbers = BTreeMap::new();
        for (name, column) in &times {
            let median = median(column.iter().map(Duration::as_secs_f64));
            println!(
                "{records:>6} records  {name:<10} {:>9.3} ms  {:>7.1} ns a record",
                median * 1e3,
                median * 1e9 / records as f64
            );
            numbers.insert(name.to_string(), median);
        }
        for of in ["new", "duplicates"] {
            let ratio = paired_ratio(&times, of, "plain");
            println!("{records:>6} records  {of}/plain paired {ratio:.2}");
            numbers.insert(format!("paired {of}/plain"), ratio);
        }
        results.insert(records.to_string(), numbers);
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&results).unwrap()).unwrap();
    }
}

/// A batch of `records` clicks under Shape::Small's keys.
fn batch(records: usize) -> Vec<u8> {
    (0..records)
        .fold(TestBatch::new(), |batch, n| {
            batch.bytes(&Shape::Small.click(n)).partition_key(&Shape::Small.partition_key(n))
        })
        .build()
}

/// What became of a batch's records.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    succeeded: usize,
    duplicates: usize,
}

/// One invocation, nothing reported; its counts.
fn respond<H, S>(
    runtime: &tokio::runtime::Runtime,
    processor: &Processor<H, S>,
    payload: &[u8],
) -> Counts
where
    H: kinesis_processor::Handler,
    S: kinesis_processor::HasState<H::State>,
{
    let outcome = runtime.block_on(processor.respond(payload, "benchmark", REMAINING)).unwrap();
    assert!(outcome.response().batch_item_failures.is_empty(), "nothing is reported");
    let summary = outcome.summary();
    Counts { succeeded: summary.succeeded, duplicates: summary.duplicates }
}
