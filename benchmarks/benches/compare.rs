//! The throughput comparison behind `benchmarks/run`'s table: every contender over the same
//! events, interleaved round by round (framework, baseline, irreducible, ...), so that the
//! noise of a shared machine falls on all of them alike. Prints the median of each, and the
//! median of the framework's time over the irreducible loop's and the baseline's in the same
//! round; and,
//! with `--json FILE`, writes them for the table; with `--events DIR` it also writes the
//! events, for the Python contenders to read the very same bytes; `--budget SECONDS` sets how
//! long each batch's rounds take (8 s by default).
//!
//! `cargo bench -p kinesis-processor-benchmarks --bench compare`

use std::collections::BTreeMap;
use std::time::Duration;

use kinesis_processor_benchmarks::contenders::{
    baseline, deaggregate_only, irreducible, irreducible_streaming, irreducible_usual, noop,
    REMAINING,
};
use kinesis_processor_benchmarks::inputs::Shape;
use kinesis_processor_benchmarks::timing::{interleaved, median, paired_ratio, Contender};

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
            let report =
                runtime.block_on(processor.respond(payload, "benchmark", REMAINING)).unwrap();
            assert!(report.response().batch_item_failures.is_empty(), "every record succeeds");
            assert_eq!(report.summary().units, shape.records());
            serde_json::to_vec(report.response()).unwrap().len()
        };
        let (mut buffer, mut usual_buffer, mut streaming_buffer) =
            (Vec::new(), Vec::new(), Vec::new());
        let read = irreducible(&event, &mut buffer);
        assert_eq!(irreducible_streaming(&event, &mut streaming_buffer), read, "same work");
        assert_eq!(irreducible_usual(&event, &mut usual_buffer), read, "same work");
        // The framework and the loops it is compared with run back to back in every round.
        let mut contenders: Vec<Contender<'_>> = vec![
            ("framework", Box::new(|| framework(&event))),
            ("irreducible", Box::new(|| irreducible(&event, &mut buffer))),
            ("baseline", Box::new(|| baseline(&event).len())),
            ("irreducible-usual", Box::new(|| irreducible_usual(&event, &mut usual_buffer))),
            (
                "irreducible-streaming",
                Box::new(|| irreducible_streaming(&event, &mut streaming_buffer)),
            ),
            ("framework-kpl", Box::new(|| framework(&aggregated))),
            ("deaggregate-only", Box::new(|| deaggregate_only(&aggregated, shape.records()))),
        ];
        let times = interleaved(&mut contenders, budget, 11..=2001);
        let mut numbers = BTreeMap::new();
        for (name, column) in &times {
            let median = median(column.iter().map(Duration::as_secs_f64));
            println!("{:<10} {:<26} {:>12.3} ms", shape.name(), name, median * 1e3);
            numbers.insert(name.to_string(), median);
        }
        for against in ["irreducible", "baseline", "irreducible-streaming"] {
            let ratio = paired_ratio(&times, "framework", against);
            println!(
                "{:<10} {:<26} {:>12.3}",
                shape.name(),
                format!("framework/{against} paired"),
                ratio
            );
            numbers.insert(format!("paired framework/{against}"), ratio);
        }
        results.insert(shape.name(), numbers);
    }
    if let Some(path) = option("--json") {
        std::fs::write(path, serde_json::to_vec_pretty(&results).unwrap()).unwrap();
    }
}
