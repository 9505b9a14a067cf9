//! Dead-lettered records against good ones: a batch of poison records (data that is not
//! JSON, each dead-lettered) beside a batch of as many good records, interleaved round by
//! round, at several batch sizes, so that the time per record shows whether each path is
//! linear in the records. Records that do not decode are dead-lettered before they run, for
//! each of the runtime's sink batch sizes: 10 a call (SQS, SNS), 100 (the log sink) and all
//! at once (S3), the sink accepting every letter at once. Records that the function rejects
//! are dead-lettered as they finish, four running at a time, to the sink that takes all.
//!
//! `cargo bench -p kinesis-processor-benchmarks --bench poison`, or with `--json FILE` for
//! `benchmarks/run`'s table.

use std::collections::BTreeMap;
use std::time::Duration;

use kinesis_processor::dead_letter::{DeadLetter, DeadLetterSink, SinkError};
use kinesis_processor::testing::TestBatch;
use kinesis_processor::{kinesis_processor, Processor, RecordError};
use kinesis_processor_benchmarks::contenders::{noop, touch, Click, REMAINING};
use kinesis_processor_benchmarks::inputs::Shape;
use kinesis_processor_benchmarks::timing::{interleaved, median, paired_ratio, Contender};

/// Batch sizes: the largest is the most an event source mapping sends in one invocation.
const SIZES: [usize; 3] = [2_500, 5_000, 10_000];

/// How long the rounds of one batch size take in all, about.
const BUDGET: Duration = Duration::from_secs(4);

/// A sink that takes `batch_size` letters a call and accepts each at once: what is timed is
/// the runtime's handling of letters, not a service.
struct Accepting {
    batch_size: usize,
}

impl DeadLetterSink for Accepting {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), SinkError>> {
        vec![Ok(()); letters.len()]
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

/// Rejects every click, after reading it as the no-op function does.
#[kinesis_processor(concurrency = 4, retries = 0)]
async fn reject(click: Click) -> Result<(), RecordError> {
    std::hint::black_box(touch(&click));
    Err(RecordError::reject("not wanted"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().position(|a| a == "--json").and_then(|i| args.get(i + 1));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sinks = [("sink-10", 10), ("sink-100", 100), ("sink-all", usize::MAX)];
    let mut results = BTreeMap::new();
    for records in SIZES {
        let good = batch(records, |n| Shape::Small.click(n));
        let poison = batch(records, |n| format!("not json {n}").into_bytes());
        let processors: Vec<(&str, _)> = sinks
            .iter()
            .map(|&(name, batch_size)| (name, noop().dead_letter(Accepting { batch_size })))
            .collect();
        let good_four = noop().concurrency(4).dead_letter(Accepting { batch_size: usize::MAX });
        let rejecting = reject().dead_letter(Accepting { batch_size: usize::MAX });
        let mut contenders: Vec<Contender<'_>> = vec![
            ("good", Box::new(|| respond(&runtime, &processors[0].1, &good, 0))),
            ("good-4", Box::new(|| respond(&runtime, &good_four, &good, 0))),
            ("rejected-4", Box::new(|| respond(&runtime, &rejecting, &good, records))),
        ];
        for (name, processor) in &processors {
            let run = || respond(&runtime, processor, &poison, records);
            contenders.push((name, Box::new(run)));
        }
        let times = interleaved(&mut contenders, BUDGET, 5..=201);
        let mut numbers = BTreeMap::new();
        for (name, column) in &times {
            let median = median(column.iter().map(Duration::as_secs_f64));
            println!(
                "{records:>6} records  {name:<9} {:>9.3} ms  {:>7.1} ns a record",
                median * 1e3,
                median * 1e9 / records as f64
            );
            numbers.insert(name.to_string(), median);
        }
        let pairs = sinks.iter().map(|(name, _)| (*name, "good"));
        for (of, to) in pairs.chain([("rejected-4", "good-4")]) {
            let ratio = paired_ratio(&times, of, to);
            println!("{records:>6} records  {of}/{to} paired {ratio:.2}");
            numbers.insert(format!("paired {of}/{to}"), ratio);
        }
        results.insert(records.to_string(), numbers);
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&results).unwrap()).unwrap();
    }
}

/// A batch of `records` records with the data `data(n)`, under Shape::Small's keys.
fn batch(records: usize, data: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    (0..records)
        .fold(TestBatch::new(), |batch, n| {
            batch.bytes(&data(n)).partition_key(&Shape::Small.partition_key(n))
        })
        .build()
}

/// One invocation; checks that `letters` records were dead-lettered and nothing reported.
fn respond<H, S>(
    runtime: &tokio::runtime::Runtime,
    processor: &Processor<H, S>,
    payload: &[u8],
    letters: usize,
) -> usize
where
    H: kinesis_processor::Handler,
    S: kinesis_processor::HasState<H::State>,
{
    let outcome = runtime.block_on(processor.respond(payload, "benchmark", REMAINING)).unwrap();
    assert!(outcome.response().batch_item_failures.is_empty(), "nothing is reported");
    assert_eq!(outcome.summary().dead_lettered_total(), letters);
    outcome.summary().units
}
