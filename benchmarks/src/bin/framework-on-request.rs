//! Times the framework on request, so that `benchmarks/run` can pair every Powertools timing
//! with one of the framework taken the moment after, as `compare` pairs the Rust contenders.
//! Timed minutes apart in separate passes, the Powertools ratio on 100 records swung from
//! 6.5x to 27x between the passes of one run, with the load of this shared machine.
//!
//! Reads the path of an event file per line on standard input; for each, runs the
//! benchmark's no-op processor once over the file's bytes (read once, then kept) through
//! `Processor::respond`, as `compare` does, and prints the seconds it took on a line.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::Instant;

use kinesis_processor_benchmarks::contenders::{noop, REMAINING};

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let processor = noop();
    let mut events: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let path = line.expect("a line on standard input");
        let payload = events.entry(path).or_insert_with_key(|path| {
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
        });
        let start = Instant::now();
        let report = runtime.block_on(processor.respond(payload, "benchmark", REMAINING));
        let response = serde_json::to_vec(report.expect("a Kinesis batch").response()).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        assert_eq!(response, br#"{"batchItemFailures":[]}"#, "every record succeeds");
        writeln!(out, "{seconds}").and_then(|()| out.flush()).expect("standard output");
    }
}
