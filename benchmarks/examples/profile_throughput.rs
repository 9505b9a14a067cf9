//! Runs the framework over one throughput batch a number of times, for a profiler:
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*'
//! target/release/examples/profile_throughput small framework 3`.

use kinesis_processor_benchmarks::contenders::{baseline, irreducible, noop};
use kinesis_processor_benchmarks::inputs::Shape;

fn main() {
    let mut args = std::env::args().skip(1);
    let shape = match args.next().as_deref() {
        Some("large") => Shape::Large,
        Some("hundred") => Shape::Hundred,
        _ => Shape::Small,
    };
    let contender = args.next().unwrap_or_else(|| "framework".into());
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
    let payload = shape.event();
    measured(&payload, &contender, rounds);
}

/// The rounds alone, so that a profiler can leave out building the event:
/// `--collect-atstart=no --toggle-collect='*measured*'`.
#[inline(never)]
fn measured(payload: &[u8], contender: &str, rounds: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let processor = noop();
    let mut buffer = Vec::new();
    for _ in 0..rounds {
        let bytes = match contender {
            "baseline" => baseline(payload).len(),
            "irreducible" => irreducible(payload, &mut buffer),
            _ => {
                let report = runtime.block_on(processor.process(payload)).unwrap();
                serde_json::to_vec(report.response()).unwrap().len()
            }
        };
        std::hint::black_box(bytes);
    }
}
