//! Bulk processing: one I/O-bound downstream written to record by record, and 25 records at
//! a time by a chunk function (`#[kinesis_processor(chunk = 25)]`).
//!
//! The downstream is a bulk API: each call costs the same simulated latency (a tokio sleep
//! of 2 ms, about 3 ms with the timer's millisecond ticks) whatever it carries, and it takes
//! up to 25 items a call. One invocation payload of 10,000 JSON records under 100 partition
//! keys, with the 15 minutes of `process`. Four configurations: per record with concurrency
//! 1 and 32, in chunks of 25 with concurrency 1 and 4.
//!
//! Every run checks what it measures: every record succeeded, every item reached the
//! downstream exactly once, each key's items in stream order, no call carried more than 25
//! items, and the framework's chunk counts agree with the downstream's calls. It panics
//! otherwise.
//!
//! Per record with concurrency 1 is 10,000 calls one after another, about 30 s: it runs
//! once. The three others run in turn, round after round, and each shows its median.
//!
//! `cargo bench -p kinesis-processor-benchmarks --bench bulk`, or with `--json FILE` for
//! `benchmarks/run`'s table. Without `--bench` (`cargo test --benches`) a quick run of
//! per record with concurrency 32 and chunks with concurrency 4, checked the same way.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kinesis_processor::testing::TestBatch;
use kinesis_processor::{kinesis_processor, BatchReport, Chunk, ChunkError, Outcome, RecordError};
use serde::Deserialize;

const RECORDS: usize = 10_000;
const KEYS: usize = 100;
/// The most items one downstream call takes; the `chunk` of [`store`].
const MOST_ITEMS: usize = 25;
/// What one downstream call waits, whatever it carries.
const LATENCY: Duration = Duration::from_millis(2);
/// Rounds of the three quicker configurations.
const ROUNDS: usize = 5;

/// One record's payload.
#[derive(Deserialize)]
struct Item {
    seq: usize,
    account: String,
    amount_cents: u64,
}

/// The simulated bulk API, which counts its calls and what reached it.
struct Downstream {
    calls: AtomicUsize,
    /// Calls refused for carrying more than [`MOST_ITEMS`] items.
    refused: AtomicUsize,
    /// How many times each item was written, by `seq`.
    written: Mutex<Vec<u32>>,
    /// The last `seq` written per key, to check stream order.
    last: Mutex<Vec<Option<usize>>>,
    /// Items written before an earlier item of their key.
    out_of_order: AtomicUsize,
}

impl Downstream {
    fn new() -> Self {
        Downstream {
            calls: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            written: Mutex::new(vec![0; RECORDS]),
            last: Mutex::new(vec![None; KEYS]),
            out_of_order: AtomicUsize::new(0),
        }
    }

    /// Writes up to [`MOST_ITEMS`] items in one call of [`LATENCY`].
    async fn write(&self, items: &[&Item]) -> Result<(), std::io::Error> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if items.len() > MOST_ITEMS {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(std::io::Error::other(format!("{} items in one call", items.len())));
        }
        tokio::time::sleep(LATENCY).await;
        let (mut written, mut last) = (self.written.lock().unwrap(), self.last.lock().unwrap());
        for item in items {
            std::hint::black_box((item.account.len(), item.amount_cents));
            written[item.seq] += 1;
            let key = item.seq % KEYS;
            if last[key].is_some_and(|previous| previous > item.seq) {
                self.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            last[key] = Some(item.seq);
        }
        Ok(())
    }
}

/// Per record: one downstream call each.
#[kinesis_processor(retries = 0)]
async fn put(item: Item, downstream: &Downstream) -> Result<(), RecordError> {
    downstream.write(&[&item]).await.map_err(RecordError::retry)
}

/// In chunks: one downstream call per chunk of up to 25.
#[kinesis_processor(chunk = 25, retries = 0)]
async fn store(items: Chunk<Item>, downstream: &Downstream) -> Result<(), ChunkError> {
    let batch: Vec<&Item> = items.payloads().collect();
    downstream.write(&batch).await?;
    Ok(())
}

/// One configuration's run: its time and its counts.
#[derive(Clone, Copy)]
struct Run {
    time: Duration,
    calls: usize,
    chunks: usize,
    chunk_records: usize,
    partial_chunk_failures: usize,
}

/// The configurations, in table order: name, chunked, concurrency.
const CONFIGURATIONS: [(&str, bool, usize); 4] = [
    ("per-record c1", false, 1),
    ("per-record c32", false, 32),
    ("bulk c1", true, 1),
    ("bulk c4", true, 4),
];

fn payload() -> Vec<u8> {
    (0..RECORDS)
        .fold(TestBatch::new(), |batch, seq| {
            let account = format!("acct-{}", seq % KEYS);
            let item = serde_json::json!({
                "seq": seq,
                "account": account,
                "amount_cents": 100 + (seq * 37) % 10_000,
            });
            batch.json(&item).partition_key(&account)
        })
        .build()
}

/// Processes the payload once in this configuration, and checks everything.
fn run(
    runtime: &tokio::runtime::Runtime,
    payload: &[u8],
    chunked: bool,
    concurrency: usize,
) -> Run {
    let name =
        format!("{} with concurrency {concurrency}", if chunked { "chunks" } else { "per record" });
    if chunked {
        let processor = store().state(Downstream::new()).concurrency(concurrency);
        let started = Instant::now();
        let report = runtime.block_on(processor.process(payload)).expect("a Kinesis batch");
        checked(&name, started.elapsed(), &report, processor.shared_state(), chunked)
    } else {
        let processor = put().state(Downstream::new()).concurrency(concurrency);
        let started = Instant::now();
        let report = runtime.block_on(processor.process(payload)).expect("a Kinesis batch");
        checked(&name, started.elapsed(), &report, processor.shared_state(), chunked)
    }
}

/// The run, once everything it did is checked: panics unless every record succeeded and
/// reached the downstream exactly once, in its key's order.
fn checked(
    name: &str,
    time: Duration,
    report: &BatchReport,
    downstream: &Downstream,
    chunked: bool,
) -> Run {
    let summary = report.summary();
    let check = |ok: bool, what: &str| assert!(ok, "{name}: {what}\n{summary:#?}");
    check(report.records().len() == RECORDS, "not every record has a row");
    check(
        report.records().all(|row| row.outcome() == Outcome::Succeeded),
        "a record did not succeed",
    );
    check(summary.succeeded == RECORDS, "not every record succeeded");
    check(report.response().batch_item_failures.is_empty(), "the response reports a failure");
    let calls = downstream.calls.load(Ordering::Relaxed);
    let refused = downstream.refused.load(Ordering::Relaxed);
    check(refused == 0, &format!("{refused} downstream calls carried more than {MOST_ITEMS}"));
    let written = downstream.written.lock().unwrap();
    let not_once: Vec<(usize, u32)> =
        written.iter().copied().enumerate().filter(|&(_, n)| n != 1).take(5).collect();
    check(
        not_once.is_empty(),
        &format!("items not written exactly once (seq, times): {not_once:?}"),
    );
    let out_of_order = downstream.out_of_order.load(Ordering::Relaxed);
    check(out_of_order == 0, &format!("{out_of_order} items written out of their key's order"));
    if chunked {
        check(summary.chunks == calls, "chunk calls differ from downstream calls");
        check(summary.chunk_records == RECORDS, "chunks carried other than every record once");
        check(summary.partial_chunk_failures == 0, "a chunk failed in part");
        check(calls >= RECORDS.div_ceil(MOST_ITEMS), "fewer calls than 25 items each allow");
    } else {
        check(calls == RECORDS, "per record, not one downstream call a record");
        check(summary.chunks == 0, "chunk calls counted for a per-record function");
    }
    Run {
        time,
        calls,
        chunks: summary.chunks,
        chunk_records: summary.chunk_records,
        partial_chunk_failures: summary.partial_chunk_failures,
    }
}

fn median(numbers: impl Iterator<Item = f64>) -> f64 {
    let mut numbers: Vec<f64> = numbers.collect();
    numbers.sort_by(f64::total_cmp);
    numbers[numbers.len() / 2]
}

/// A whole number with thousands separators: `10,000`.
fn thousands(number: f64) -> String {
    let digits = format!("{:.0}", number.round());
    let mut text = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants a
    // quick run.
    let quick = !args.iter().any(|arg| arg == "--bench");
    let json = args.iter().position(|a| a == "--json").and_then(|i| args.get(i + 1));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let payload = payload();
    if quick {
        for (name, chunked, concurrency) in [CONFIGURATIONS[1], CONFIGURATIONS[3]] {
            let run = run(&runtime, &payload, chunked, concurrency);
            println!("{name} (smoke run): {} calls, {:.1} ms", run.calls, ms(run.time));
        }
        return;
    }
    println!(
        "{RECORDS} JSON records under {KEYS} keys in one invocation; the downstream waits \
         {} ms a call (tokio sleep) and takes up to {MOST_ITEMS} items",
        LATENCY.as_millis()
    );
    println!("per-record c1 runs once; the others in turn, {ROUNDS} rounds, median");
    let mut runs: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    let (name, chunked, concurrency) = CONFIGURATIONS[0];
    runs.entry(name).or_default().push(run(&runtime, &payload, chunked, concurrency));
    for _ in 0..ROUNDS {
        for (name, chunked, concurrency) in &CONFIGURATIONS[1..] {
            runs.entry(name).or_default().push(run(&runtime, &payload, *chunked, *concurrency));
        }
    }

    let mut results = BTreeMap::new();
    println!();
    println!(
        "| configuration | runs | downstream calls | chunk calls | records per chunk | \
         partial chunk failures | wall time (median) | fastest, slowest |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, _, _) in CONFIGURATIONS {
        let column = &runs[name];
        let time = median(column.iter().map(|run| ms(run.time)));
        let (fastest, slowest) = column.iter().fold((f64::MAX, 0f64), |(low, high), run| {
            (low.min(ms(run.time)), high.max(ms(run.time)))
        });
        let calls = median(column.iter().map(|run| run.calls as f64));
        let (least, most) = (
            column.iter().map(|run| run.calls).min().unwrap(),
            column.iter().map(|run| run.calls).max().unwrap(),
        );
        let calls_text = if least == most {
            thousands(least as f64)
        } else {
            format!("{} ({}-{})", thousands(calls), thousands(least as f64), thousands(most as f64))
        };
        let chunks = median(column.iter().map(|run| run.chunks as f64));
        let per_chunk = if chunks > 0.0 {
            median(column.iter().map(|run| run.chunk_records as f64 / run.chunks as f64))
        } else {
            0.0
        };
        let partial: usize = column.iter().map(|run| run.partial_chunk_failures).sum();
        let chunk_cells = if chunks > 0.0 {
            format!("{chunks:.0} | {per_chunk:.2} | {partial}")
        } else {
            "- | - | -".to_string()
        };
        println!(
            "| {name} | {} | {calls_text} | {chunk_cells} | {} ms | {}, {} |",
            column.len(),
            thousands(time),
            thousands(fastest),
            thousands(slowest)
        );
        let mut numbers = BTreeMap::new();
        numbers.insert("runs".to_string(), column.len() as f64);
        numbers.insert("calls".to_string(), calls);
        numbers.insert("calls least".to_string(), least as f64);
        numbers.insert("calls most".to_string(), most as f64);
        numbers.insert("chunks".to_string(), chunks);
        numbers.insert("records per chunk".to_string(), per_chunk);
        numbers.insert("partial chunk failures".to_string(), partial as f64);
        numbers.insert("ms".to_string(), time);
        numbers.insert("ms fastest".to_string(), fastest);
        numbers.insert("ms slowest".to_string(), slowest);
        results.insert(name.to_string(), numbers);
    }

    let number = |name: &str, key: &str| results[name][key];
    let one_call = number("per-record c1", "ms") / RECORDS as f64;
    let calls_ratio = |a: &str, b: &str| number(a, "calls") / number(b, "calls");
    // Within a round the two ran one after the other: the median of those ratios, as
    // `benchmarks/src/timing.rs` pairs contenders.
    let paired = median(
        runs["per-record c32"]
            .iter()
            .zip(&runs["bulk c4"])
            .map(|(of, to)| of.time.as_secs_f64() / to.time.as_secs_f64()),
    );
    let of_medians = number("per-record c32", "ms") / number("bulk c4", "ms");
    let sequential = number("per-record c1", "ms") / number("bulk c1", "ms");
    println!();
    println!("one downstream call, as per-record c1 measures it: {one_call:.2} ms");
    println!(
        "calls, per-record / bulk: {:.1}x at c1, {:.1}x at c32 against c4 (target: at least 20x)",
        calls_ratio("per-record c1", "bulk c1"),
        calls_ratio("per-record c32", "bulk c4"),
    );
    println!(
        "time, per-record c32 / bulk c4: {paired:.2}x paired within rounds, {of_medians:.2}x \
         of the medians (target: above 1, bulk c4 faster)"
    );
    println!("time, per-record c1 / bulk c1: {sequential:.1}x");
    let mut ratios = BTreeMap::new();
    ratios.insert("one call ms".to_string(), one_call);
    ratios.insert("calls c1/c1".to_string(), calls_ratio("per-record c1", "bulk c1"));
    ratios.insert("calls c32/c4".to_string(), calls_ratio("per-record c32", "bulk c4"));
    ratios.insert("time c32/c4 paired".to_string(), paired);
    ratios.insert("time c32/c4 medians".to_string(), of_medians);
    ratios.insert("time c1/c1".to_string(), sequential);
    results.insert("ratios".to_string(), ratios);
    if let Some(path) = json {
        let json = serde_json::to_vec_pretty(&results).unwrap();
        std::fs::write(path, json).unwrap_or_else(|error| panic!("writing {path}: {error}"));
    }
}
