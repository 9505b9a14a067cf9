//! What a window processor costs per record: the no-op per-record processor beside two
//! window processors over the same clicks, interleaved round by round. One folds into a
//! total (`u64`: the fold's own machinery), one into views per page (a map that grows to
//! 131 pages: each attempt folds into a copy of it, kept only if the record succeeds).
//!
//! `cargo bench -p kinesis-processor-benchmarks --bench window`.

use std::collections::BTreeMap;
use std::time::Duration;

use kinesis_processor::testing::TestBatch;
use kinesis_processor::{kinesis_processor, RecordError};
use kinesis_processor_benchmarks::contenders::{noop, touch, Click, REMAINING};
use kinesis_processor_benchmarks::inputs::Shape;
use kinesis_processor_benchmarks::timing::{interleaved, median, paired_ratio, Contender};

/// Batch sizes.
const SIZES: [usize; 2] = [1_000, 5_000];

/// How long the rounds of one batch size take in all, about.
const BUDGET: Duration = Duration::from_secs(4);

/// Folds a click into the window's total.
#[kinesis_processor(window, retries = 0)]
async fn total(click: Click, total: &mut u64) -> Result<(), RecordError> {
    *total += std::hint::black_box(touch(&click)) as u64 & 1;
    Ok(())
}

/// Folds a click into the window's views per page.
#[kinesis_processor(window, retries = 0)]
async fn pages(click: Click, views: &mut BTreeMap<String, u64>) -> Result<(), RecordError> {
    std::hint::black_box(touch(&click));
    *views.entry(click.url).or_default() += 1;
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for records in SIZES {
        let plain_batch = batch(records, false);
        let window_batch = batch(records, true);
        let (plain, total, pages) = (noop(), total(), pages());
        let run = |payload: &[u8], outcome: kinesis_processor::BatchOutcome| {
            assert!(outcome.response().batch_item_failures.is_empty());
            assert_eq!(outcome.summary().succeeded, records, "{}", payload.len());
            records
        };
        let mut contenders: Vec<Contender<'_>> = vec![
            (
                "per-record",
                Box::new(|| {
                    let outcome = runtime.block_on(plain.respond(&plain_batch, "b", REMAINING));
                    run(&plain_batch, outcome.unwrap())
                }),
            ),
            (
                "window total",
                Box::new(|| {
                    let outcome = runtime.block_on(total.respond(&window_batch, "b", REMAINING));
                    run(&window_batch, outcome.unwrap())
                }),
            ),
            (
                "window pages",
                Box::new(|| {
                    let outcome = runtime.block_on(pages.respond(&window_batch, "b", REMAINING));
                    let outcome = outcome.unwrap();
                    let pages = outcome.window_state().unwrap()["value"].as_object().unwrap().len();
                    assert_eq!(pages, 131.min(records));
                    run(&window_batch, outcome)
                }),
            ),
        ];
        let times = interleaved(&mut contenders, BUDGET, 5..=201);
        for (name, column) in &times {
            let median = median(column.iter().map(Duration::as_secs_f64));
            println!(
                "{records:>6} records  {name:<13} {:>9.3} ms  {:>7.1} ns a record",
                median * 1e3,
                median * 1e9 / records as f64
            );
        }
        for of in ["window total", "window pages"] {
            let ratio = paired_ratio(&times, of, "per-record");
            println!("{records:>6} records  {of}/per-record paired {ratio:.2}");
        }
    }
}

/// A batch of `records` ~400-byte clicks over 131 pages, as a window's event or not.
fn batch(records: usize, window: bool) -> Vec<u8> {
    let batch = (0..records).fold(TestBatch::new(), |batch, n| {
        batch.bytes(&Shape::Large.click(n)).partition_key(&Shape::Large.partition_key(n))
    });
    if !window {
        return batch.build();
    }
    batch.window("2026-12-04T18:00:00Z", "2026-12-04T18:01:00Z", serde_json::json!({})).build()
}
