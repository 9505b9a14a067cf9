//! An I/O-bound processor: 10,000 records under 100 partition keys, 2 ms of simulated
//! downstream latency each. The framework at concurrency 1, 32 and 100 (one record per key
//! at a time, in stream order), against unordered runs of the same work with no ordering
//! at all: every record at once (`join_all`), and 32 at a time (`buffer_unordered`).
//!
//! A bench binary rather than criterion: one sequential run takes over 20 s. Each variant
//! runs three times in this process; the table shows the median.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::kinesis::KinesisEvent;
use futures_util::stream::{self, StreamExt};
use kinesis_processor::testing::TestBatch;
use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
use serde::Deserialize;

const RECORDS: usize = 10_000;
const KEYS: usize = 100;
const LATENCY: Duration = Duration::from_millis(2);
const RUNS: usize = 3;

#[derive(Deserialize)]
struct Click {
    seq: usize,
}

/// The last record started per key, to check stream order.
type Order = Arc<Mutex<HashMap<String, usize>>>;

#[kinesis_processor(retries = 0)]
async fn io_bound(click: Click, meta: &RecordMeta, order: &Order) -> Result<(), RecordError> {
    if let Some(previous) = order.lock().unwrap().insert(meta.partition_key().to_owned(), click.seq)
    {
        assert!(previous < click.seq, "key {} out of order", meta.partition_key());
    }
    tokio::time::sleep(LATENCY).await;
    Ok(())
}

fn payload() -> Vec<u8> {
    (0..RECORDS)
        .fold(TestBatch::new(), |batch, seq| {
            batch
                .json(&serde_json::json!({ "seq": seq }))
                .partition_key(&format!("user-{}", seq % KEYS))
        })
        .build()
}

async fn framework(payload: &[u8], concurrency: usize) -> Duration {
    let started = Instant::now();
    let report =
        io_bound().state(Order::default()).concurrency(concurrency).process(payload).await.unwrap();
    assert!(report.response().batch_item_failures.is_empty());
    assert_eq!(report.summary().succeeded, RECORDS);
    started.elapsed()
}

/// The same work with no order at all.
async fn unordered(payload: &[u8], limit: Option<usize>) -> Duration {
    let started = Instant::now();
    let event: KinesisEvent = serde_json::from_slice(payload).unwrap();
    let work = event.records.iter().map(|record| async move {
        let click: Click = serde_json::from_slice(&record.kinesis.data.0).unwrap();
        tokio::time::sleep(LATENCY).await;
        click.seq
    });
    let done: Vec<usize> = match limit {
        None => futures_util::future::join_all(work).await,
        Some(limit) => stream::iter(work).buffer_unordered(limit).collect().await,
    };
    assert_eq!(done.len(), RECORDS);
    started.elapsed()
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants a
    // quick run.
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let runs = if quick { 1 } else { RUNS };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let payload = payload();
    let measure = |name: &str, run: &dyn Fn() -> Duration| {
        let time = median((0..runs).map(|_| run()).collect());
        println!("{name:<38} {:>10.1} ms", time.as_secs_f64() * 1000.0);
        time
    };
    if quick {
        measure("framework, concurrency 32 (smoke run)", &|| {
            runtime.block_on(framework(&payload, 32))
        });
        return;
    }
    println!(
        "{RECORDS} records, {KEYS} keys, {} ms each; median of {runs} runs",
        LATENCY.as_millis()
    );
    let sequential =
        measure("framework, concurrency 1", &|| runtime.block_on(framework(&payload, 1)));
    let c32 = measure("framework, concurrency 32", &|| runtime.block_on(framework(&payload, 32)));
    let c100 =
        measure("framework, concurrency 100", &|| runtime.block_on(framework(&payload, 100)));
    let join_all = measure("unordered, join_all (all at once)", &|| {
        runtime.block_on(unordered(&payload, None))
    });
    let bounded =
        measure("unordered, 32 at a time", &|| runtime.block_on(unordered(&payload, Some(32))));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "sequential / concurrency 32:             {:>6.1}x (target >= 20)",
        ratio(sequential, c32)
    );
    println!(
        "concurrency 32 / unordered 32 at a time: {:>6.2}x (target <= 1.5)",
        ratio(c32, bounded)
    );
    println!("concurrency 32 / unordered join_all:     {:>6.1}x", ratio(c32, join_all));
    println!("concurrency 100 / unordered join_all:    {:>6.1}x", ratio(c100, join_all));
}
