//! The throughput comparison behind `benchmarks/run`'s table: every contender over the same
//! events, interleaved round by round (framework, baseline, irreducible, ...), so that the
//! noise of a shared machine falls on all of them alike. Prints the median of each and,
//! with `--json FILE`, writes them for the table; with `--events DIR` it also writes the
//! events, for the Python contenders to read the very same bytes; `--budget SECONDS` sets how
//! long each batch's rounds take (8 s by default).
//!
//! `cargo bench -p kinesis-processor-benchmarks --bench compare`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kinesis_processor_benchmarks::contenders::{
    baseline, deaggregate_only, irreducible, irreducible_usual, noop,
};
use kinesis_processor_benchmarks::inputs::Shape;

/// How long each shape's interleaved rounds take in all, about, unless `--budget` says.
const BUDGET: Duration = Duration::from_secs(8);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let option = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let processor = noop();
    let budget = match option("--budget") {
        None => BUDGET,
        Some(seconds) => Duration::from_secs_f64(seconds.parse().unwrap_or_else(|_| {
            eprintln!("--budget takes seconds, not {seconds:?}");
            std::process::exit(2)
        })),
    };
    let mut results = BTreeMap::new();
    for shape in Shape::ALL {
        let event = shape.event();
        let aggregated = shape.aggregated_event();
        if let Some(dir) = option("--events") {
            std::fs::create_dir_all(dir).expect("the events directory");
            std::fs::write(format!("{dir}/{}.json", shape.name()), &event).unwrap();
            std::fs::write(format!("{dir}/{}-kpl.json", shape.name()), &aggregated).unwrap();
        }
        let framework = |payload: &[u8]| {
            let report = runtime.block_on(processor.process(payload)).unwrap();
            assert!(report.response().batch_item_failures.is_empty(), "every record succeeds");
            assert_eq!(report.summary().user_records, shape.records());
            serde_json::to_vec(report.response()).unwrap().len()
        };
        let (mut buffer, mut usual_buffer) = (Vec::new(), Vec::new());
        let mut contenders: Vec<Contender<'_>> = vec![
            ("framework", Box::new(|| framework(&event))),
            ("baseline", Box::new(|| baseline(&event).len())),
            ("irreducible", Box::new(|| irreducible(&event, &mut buffer))),
            ("irreducible-usual", Box::new(|| irreducible_usual(&event, &mut usual_buffer))),
            ("framework-kpl", Box::new(|| framework(&aggregated))),
            ("deaggregate-only", Box::new(|| deaggregate_only(&aggregated, shape.records()))),
        ];
        let medians = interleaved(&mut contenders, budget);
        for (name, median) in &medians {
            println!("{:<10} {:<18} {:>12.3} ms", shape.name(), name, median.as_secs_f64() * 1e3);
        }
        results.insert(shape.name(), medians);
    }
    if let Some(path) = option("--json") {
        let json: BTreeMap<_, BTreeMap<_, f64>> = results
            .iter()
            .map(|(shape, medians)| {
                (*shape, medians.iter().map(|(name, d)| (*name, d.as_secs_f64())).collect())
            })
            .collect();
        std::fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    }
}

/// A contender's name and one run of it.
type Contender<'c> = (&'static str, Box<dyn FnMut() -> usize + 'c>);

/// Runs the contenders in turn, round after round, and returns each one's median time.
fn interleaved(
    contenders: &mut [Contender<'_>],
    budget: Duration,
) -> BTreeMap<&'static str, Duration> {
    let count = contenders.len();
    let names: Vec<&'static str> = contenders.iter().map(|(name, _)| *name).collect();
    let mut round = || -> Vec<Duration> {
        contenders
            .iter_mut()
            .map(|(_, run)| {
                let start = Instant::now();
                std::hint::black_box(run());
                start.elapsed()
            })
            .collect()
    };
    let warm_up = round();
    let per_round: Duration = warm_up.iter().sum();
    let rounds = (budget.as_secs_f64() / per_round.as_secs_f64()).clamp(11.0, 2001.0) as usize;
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); count];
    for _ in 0..rounds {
        for (column, time) in times.iter_mut().zip(round()) {
            column.push(time);
        }
    }
    names
        .into_iter()
        .zip(times)
        .map(|(name, mut column)| {
            column.sort();
            (name, column[column.len() / 2])
        })
        .collect()
}
