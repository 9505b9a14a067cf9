//! Runs the framework over one throughput batch a number of times, for a profiler:
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*'
//! target/release/examples/profile_throughput small framework 3`. Prints the mean time of a
//! round (the runtime's start included), wall clock and CPU, for comparing builds side by
//! side on a shared machine.

use kinesis_processor_benchmarks::contenders::{
    baseline, irreducible, irreducible_streaming, noop, REMAINING,
};
use kinesis_processor_benchmarks::inputs::Shape;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: profile_throughput [small|large|hundred] \
                 [framework|baseline|irreducible|irreducible-streaming] [ROUNDS]";
    let shape = match args.next().as_deref() {
        None | Some("small") => Shape::Small,
        Some("large") => Shape::Large,
        Some("hundred") => Shape::Hundred,
        Some(other) => exit(&format!("unknown batch {other:?}; {usage}")),
    };
    let contender = args.next().unwrap_or_else(|| "framework".into());
    let contenders = ["framework", "baseline", "irreducible", "irreducible-streaming"];
    if !contenders.contains(&contender.as_str()) {
        exit(&format!("unknown contender {contender:?}; {usage}"));
    }
    let rounds = match args.next() {
        None => 3,
        Some(n) => n.parse().unwrap_or_else(|_| exit(&format!("{n:?} is not a count; {usage}"))),
    };
    let payload = shape.event();
    let (started, cpu_started) = (std::time::Instant::now(), cpu_ticks());
    measured(&payload, &contender, rounds);
    let per_round = |total: f64| total / rounds.max(1) as f64;
    let wall = per_round(started.elapsed().as_secs_f64() * 1e3);
    match (cpu_started, cpu_ticks()) {
        // Clock ticks are 10 ms on Linux: over a second or more of rounds, about 1%.
        (Some(before), Some(after)) => {
            let cpu = per_round((after - before) as f64 * 10.0);
            eprintln!("{contender}: {wall:.3} ms per round, {cpu:.3} ms of CPU");
        }
        _ => eprintln!("{contender}: {wall:.3} ms per round"),
    }
}

/// The process's user and system CPU time in clock ticks, from `/proc/self/stat` (Linux):
/// on a shared machine it leaves out the time other processes held the core.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let user: u64 = fields.nth(11)?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
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
            "irreducible-streaming" => irreducible_streaming(payload, &mut buffer),
            _ => {
                let report =
                    runtime.block_on(processor.respond(payload, "benchmark", REMAINING)).unwrap();
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
