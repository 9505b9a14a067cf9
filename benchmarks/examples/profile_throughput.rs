//! Runs the framework over one throughput batch a number of times, for a profiler:
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*'
//! target/release/examples/profile_throughput small framework 3`.

use kinesis_processor_benchmarks::contenders::{baseline, irreducible, noop};
use kinesis_processor_benchmarks::inputs::Shape;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: profile_throughput [small|large|hundred] \
                 [framework|baseline|irreducible] [ROUNDS]";
    let shape = match args.next().as_deref() {
        None | Some("small") => Shape::Small,
        Some("large") => Shape::Large,
        Some("hundred") => Shape::Hundred,
        Some(other) => exit(&format!("unknown batch {other:?}; {usage}")),
    };
    let contender = args.next().unwrap_or_else(|| "framework".into());
    if !["framework", "baseline", "irreducible"].contains(&contender.as_str()) {
        exit(&format!("unknown contender {contender:?}; {usage}"));
    }
    let rounds = match args.next() {
        None => 3,
        Some(n) => n.parse().unwrap_or_else(|_| exit(&format!("{n:?} is not a count; {usage}"))),
    };
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

fn exit(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2)
}
