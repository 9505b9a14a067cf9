//! The soak: a million user records across eight shards, plain and KPL-aggregated, under
//! the simulated event source mapping with the example templates' settings (bounded
//! retries and record age, bisection on), with faults injected everywhere the framework
//! has to keep its promises. It proves at scale that nothing is lost and per-key order
//! holds, twice: with plain records and aggregates of one key over two lanes per shard,
//! and with aggregates as a KPL producer packs them (many keys each) over one lane.
//!
//! Release mode only: `scripts/test-all` runs it with
//! `cargo test --release -p kinesis-processor --features testing --test soak -- --ignored`.
//!
//! Its checks are one function of a run, [`check`]. The fast tests below run them on a
//! small stream: they pass with the real processor, and each check fails on a processor
//! broken in the way it guards against, so that none of them passes whatever happens.
#![cfg(feature = "testing")]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{fill, quiet_injected_panics, refusing_sink, splitmix, Producer};
use kinesis_processor::testing::{
    EventSourceMapping, Function, InvocationResult, MappingReport, SimulatedStream,
};
use kinesis_processor::{kinesis_processor, RecordError};
use serde::Deserialize;
use serde_json::Value;

/// How many records, over how many shards and partition keys, with which faults.
#[derive(Clone, Copy, Debug)]
struct Scale {
    user_records: usize,
    shards: usize,
    keys: u64,
    faults: Faults,
    /// `BatchSize`.
    batch_size: usize,
}

/// The soak's size.
const SOAK: Scale = Scale {
    user_records: 1_000_000,
    shards: 8,
    keys: 10_000,
    faults: Faults::SOAK,
    batch_size: 500,
};

/// The fast tests' size: the same faults, with slow records frequent enough that a few
/// thousand records hold some, and batches small enough that each lane has several.
const SMALL: Scale = Scale {
    user_records: 4_000,
    shards: 2,
    keys: 60,
    faults: Faults { slow_per_100k: 50, ..Faults::SOAK },
    batch_size: 100,
};

/// What a record does, decided by its id: fixed fractions of each fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Rejected every time.
    Poison,
    /// Panics on its first attempt.
    Panics,
    /// Fails its first attempt, then succeeds.
    Transient,
    /// Hangs past the deadline on its first delivery, so its batch is cut.
    Slow,
    /// Waits 1 ms on a simulated downstream.
    Latent,
    Good,
}

/// The share of each fault, per 100,000 records.
#[derive(Clone, Copy, Debug)]
struct Faults {
    poison_per_100k: u64,
    panics_per_100k: u64,
    transient_per_100k: u64,
    slow_per_100k: u64,
    latent_per_100k: u64,
}

impl Faults {
    /// 0.5% poison, 0.05% panics, 5% transient, 0.005% slow, 5% latent. All but poison
    /// are transient: the processor's own retries (two) and the deadline cut get past
    /// them, so few batches need a second invocation and none comes near the mapping's
    /// ten retries.
    const SOAK: Faults = Faults {
        poison_per_100k: 500,
        panics_per_100k: 50,
        transient_per_100k: 5_000,
        slow_per_100k: 5,
        latent_per_100k: 5_000,
    };

    fn kind(&self, id: u64) -> Kind {
        let mut roll = splitmix(id) % 100_000;
        for (share, kind) in [
            (self.poison_per_100k, Kind::Poison),
            (self.panics_per_100k, Kind::Panics),
            (self.transient_per_100k, Kind::Transient),
            (self.slow_per_100k, Kind::Slow),
            (self.latent_per_100k, Kind::Latent),
        ] {
            if roll < share {
                return kind;
            }
            roll -= share;
        }
        Kind::Good
    }
}

/// How the processor is broken, for showing that the checks catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    /// The real processor.
    No,
    /// Fails this (good) record every time, with a retryable error.
    StallsOn(u64),
    /// Fails every record, with a retryable error.
    FailsEverything,
    /// Answers success for this record without processing it.
    Drops(u64),
    /// Rejects this good record.
    RejectsGood(u64),
    /// Processes poison records as good ones.
    PoisonSucceeds,
    /// Injects no fault: nothing is slow, nothing fails.
    NoFaults,
    /// Acknowledges this record at once and completes it only after the next record of
    /// its key (the second id) has succeeded.
    AcksEarly(u64, u64),
}

/// What the processing function observed, by record id.
struct Observed {
    faults: Faults,
    broken: Broken,
    attempts: Vec<AtomicU32>,
    /// The order of each record's first success (0: never succeeded).
    first_success: Vec<AtomicU64>,
    clock: AtomicU64,
}

impl Observed {
    fn new(scale: Scale, broken: Broken) -> Self {
        Observed {
            faults: scale.faults,
            broken,
            attempts: (0..scale.user_records).map(|_| AtomicU32::new(0)).collect(),
            first_success: (0..scale.user_records).map(|_| AtomicU64::new(0)).collect(),
            clock: AtomicU64::new(0),
        }
    }

    fn kind(&self, id: u64) -> Kind {
        self.faults.kind(id)
    }

    fn succeed(&self, id: u64) {
        let order = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.first_success[id as usize].compare_exchange(
            0,
            order,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn succeeded(&self, id: u64) -> bool {
        self.first_success[id as usize].load(Ordering::Relaxed) > 0
    }
}

#[derive(Deserialize)]
struct Event {
    id: u64,
}

#[kinesis_processor(concurrency = 16, deadline_margin = "500ms")]
async fn soak_processor(event: Event, observed: &Arc<Observed>) -> Result<(), RecordError> {
    let id = event.id;
    let attempt = observed.attempts[id as usize].fetch_add(1, Ordering::Relaxed) + 1;
    match observed.broken {
        Broken::StallsOn(stuck) if stuck == id => return Err(RecordError::retry("stuck")),
        Broken::FailsEverything => return Err(RecordError::retry("downstream is down")),
        Broken::Drops(dropped) if dropped == id => return Ok(()),
        Broken::RejectsGood(good) if good == id => return Err(RecordError::reject("wrongly")),
        Broken::AcksEarly(early, next) if early == id => {
            let observed = Arc::clone(observed);
            tokio::spawn(async move {
                for _ in 0..5_000 {
                    if observed.succeeded(next) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                observed.succeed(early);
            });
            return Ok(());
        }
        _ => {}
    }
    let kind = match (observed.broken, observed.kind(id)) {
        (Broken::NoFaults, _) | (Broken::PoisonSucceeds, Kind::Poison) => Kind::Good,
        (_, kind) => kind,
    };
    match kind {
        Kind::Poison => return Err(RecordError::reject("poison record")),
        Kind::Panics if attempt == 1 => panic!("injected panic"),
        Kind::Transient if attempt == 1 => return Err(RecordError::retry("transient error")),
        Kind::Slow if attempt == 1 => tokio::time::sleep(Duration::from_secs(2)).await,
        Kind::Latent => tokio::time::sleep(Duration::from_millis(1)).await,
        _ => {}
    }
    observed.succeed(id);
    Ok(())
}

/// A function that names its failures by `eventID` instead of sequence number.
struct ByEventId<F>(F);

impl<F: Function> Function for ByEventId<F> {
    async fn invoke(&self, payload: Vec<u8>, timeout: Duration) -> InvocationResult {
        let event: Value = serde_json::from_slice(&payload).unwrap();
        let event_id = event["Records"][0]["eventID"].as_str().unwrap().to_owned();
        let shard = event_id.split(':').next().unwrap().to_owned();
        match self.0.invoke(payload, timeout).await {
            InvocationResult::Response(mut response) => {
                if let Some(failures) = response["batchItemFailures"].as_array_mut() {
                    for failure in failures {
                        let sequence = failure["itemIdentifier"].as_str().unwrap().to_owned();
                        failure["itemIdentifier"] = format!("{shard}:{sequence}").into();
                    }
                }
                InvocationResult::Response(response)
            }
            other => other,
        }
    }
}

/// One run of the mapping over a filled stream, and what the function observed.
struct Run {
    scale: Scale,
    report: MappingReport,
    observed: Arc<Observed>,
    /// Each user record's key, by id.
    keys: Vec<u64>,
    kinesis_records: usize,
}

/// How the run is set up.
#[derive(Clone, Copy, Debug)]
struct Setup {
    scale: Scale,
    producer: Producer,
    parallelization_factor: usize,
    broken: Broken,
    /// The function names its failures by `eventID`.
    by_event_id: bool,
}

impl Setup {
    fn real(scale: Scale, producer: Producer, parallelization_factor: usize) -> Self {
        Setup { scale, producer, parallelization_factor, broken: Broken::No, by_event_id: false }
    }

    fn broken(self, broken: Broken) -> Self {
        Setup { broken, ..self }
    }
}

/// A user record's data: the event with its id.
fn event_data(id: u64) -> Vec<u8> {
    format!(r#"{{"id":{id}}}"#).into_bytes()
}

/// Fills a stream and runs the processor over it under the templates' mapping settings
/// (clickstream's): batches of 500 (100 in the small runs), bisection on, ten retries, a
/// record age of an hour; a 1.5 s timeout; and an invocation budget of three per batch and
/// two batches' worth of retries, where a healthy run needs about 1.2 per batch and a
/// processor that fails every batch needs eleven.
fn run(setup: Setup) -> Run {
    quiet_injected_panics();
    let scale = setup.scale;
    let mut stream = SimulatedStream::new("soak", scale.shards);
    let keys = fill(&mut stream, (scale.user_records, scale.keys), setup.producer, event_data);
    let observed = Arc::new(Observed::new(scale, setup.broken));
    let sink = refusing_sink(2_000);
    let processor = soak_processor().state(observed.clone()).dead_letter(sink.clone());
    let lanes = scale.shards * setup.parallelization_factor;
    let batches = stream.len().div_ceil(scale.batch_size) + lanes;
    let mapping = EventSourceMapping::new()
        .batch_size(scale.batch_size)
        .parallelization_factor(setup.parallelization_factor)
        .bisect_batch_on_function_error(true)
        .maximum_retry_attempts(10)
        .maximum_record_age(Some(Duration::from_secs(3600)))
        .function_timeout(Duration::from_millis(1500))
        .max_invocations(3 * batches + 22)
        .dead_letters(sink);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = if setup.by_event_id {
        runtime.block_on(mapping.run(&stream, &ByEventId(processor)))
    } else {
        runtime.block_on(mapping.run(&stream, &processor))
    };
    Run { scale, report, observed, keys, kinesis_records: stream.len() }
}

/// What the soak asserts of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Check {
    /// The stream drained within the invocation budget.
    Drained,
    /// Nothing reached the on-failure destination.
    NothingDiscarded,
    /// Every record was delivered.
    AllDelivered,
    /// Every response named records of its batch.
    NoUnknownIdentifiers,
    /// The mapping saw no user record run before an earlier one of its key. A guard on the
    /// run's setup, not on the processor: it fails when aggregates of many keys go over
    /// several lanes, which no processor can put right (shown below with that setup).
    NoOrderViolations,
    /// Only poison records are in the dead-letter sink.
    OnlyPoisonLettered,
    /// Every poison record is in the sink, with its data.
    PoisonLettered,
    /// No poison record succeeded.
    PoisonNeverSucceeds,
    /// Every other record succeeded.
    GoodSucceeded,
    /// The slow records' batches were cut at the deadline and delivered again.
    SlowRecordsCut,
    /// Some responses named a record to resume from.
    PartialResponses,
    /// Per key, first successes follow stream order.
    PerKeyOrder,
}

const CHECKS: [Check; 12] = [
    Check::Drained,
    Check::NothingDiscarded,
    Check::AllDelivered,
    Check::NoUnknownIdentifiers,
    Check::NoOrderViolations,
    Check::OnlyPoisonLettered,
    Check::PoisonLettered,
    Check::PoisonNeverSucceeds,
    Check::GoodSucceeded,
    Check::SlowRecordsCut,
    Check::PartialResponses,
    Check::PerKeyOrder,
];

/// The checks a run fails, each with what was seen; empty when it kept every promise.
fn check(run: &Run) -> Vec<(Check, String)> {
    let Run { scale, report, observed, keys, .. } = run;
    let ids = 0..scale.user_records as u64;
    let mut failed = Vec::new();
    let mut fail = |check, what: String| failed.push((check, what));

    if report.stalled() {
        fail(Check::Drained, format!("stopped after {} invocations", report.invocations()));
    }
    if !report.discarded().is_empty() {
        let records: usize = report.discarded().iter().map(|d| d.sequence_numbers.len()).sum();
        fail(
            Check::NothingDiscarded,
            format!("{} batches ({records} records) discarded", report.discarded().len()),
        );
    }
    if report.never_delivered() > 0 {
        fail(Check::AllDelivered, format!("{} records never delivered", report.never_delivered()));
    }
    if report.unknown_item_identifiers() > 0 {
        let n = report.unknown_item_identifiers();
        fail(Check::NoUnknownIdentifiers, format!("{n} responses named records not in the batch"));
    }
    if report.order_violations() > 0 {
        let n = report.order_violations();
        fail(Check::NoOrderViolations, format!("{n} user records ran before an earlier one"));
    }

    let mut lettered = vec![false; scale.user_records];
    let mut good_lettered = Vec::new();
    for letter in report.dead_letters() {
        let id = letter
            .data_bytes()
            .and_then(|data| serde_json::from_slice::<Value>(&data).ok())
            .and_then(|event| event["id"].as_u64());
        match id {
            Some(id) if observed.kind(id) == Kind::Poison => lettered[id as usize] = true,
            other => good_lettered.push(other),
        }
    }
    if !good_lettered.is_empty() {
        fail(Check::OnlyPoisonLettered, format!("letters of other records: {good_lettered:?}"));
    }
    let poison: Vec<u64> = ids.clone().filter(|id| observed.kind(*id) == Kind::Poison).collect();
    let unlettered: Vec<u64> =
        poison.iter().copied().filter(|id| !lettered[*id as usize]).collect();
    if !unlettered.is_empty() {
        fail(Check::PoisonLettered, format!("poison records not in the sink: {unlettered:?}"));
    }
    let succeeded: Vec<u64> = poison.iter().copied().filter(|id| observed.succeeded(*id)).collect();
    if !succeeded.is_empty() {
        fail(Check::PoisonNeverSucceeds, format!("poison records succeeded: {succeeded:?}"));
    }
    let failed_good: Vec<u64> = ids
        .clone()
        .filter(|id| observed.kind(*id) != Kind::Poison && !observed.succeeded(*id))
        .collect();
    if !failed_good.is_empty() {
        let first: Vec<u64> = failed_good.iter().copied().take(10).collect();
        fail(
            Check::GoodSucceeded,
            format!("{} good records never succeeded, first {first:?}", failed_good.len()),
        );
    }

    let slow: Vec<u64> = ids.clone().filter(|id| observed.kind(*id) == Kind::Slow).collect();
    let uncut: Vec<u64> = slow
        .iter()
        .copied()
        .filter(|id| observed.attempts[*id as usize].load(Ordering::Relaxed) < 2)
        .collect();
    if slow.is_empty() || !uncut.is_empty() {
        fail(Check::SlowRecordsCut, format!("of the slow records {slow:?}, not cut: {uncut:?}"));
    }
    if report.partial_responses() == 0 {
        fail(Check::PartialResponses, "no response named a record to resume from".to_owned());
    }

    let mut last_of_key = vec![0u64; scale.keys as usize];
    let mut out_of_order = Vec::new();
    for (id, key) in keys.iter().enumerate() {
        let first = observed.first_success[id].load(Ordering::Relaxed);
        if first == 0 {
            continue;
        }
        let key = *key as usize;
        if first < last_of_key[key] {
            out_of_order.push((format!("user-{key}"), id));
        }
        last_of_key[key] = last_of_key[key].max(first);
    }
    if !out_of_order.is_empty() {
        let first: Vec<_> = out_of_order.iter().take(5).collect();
        fail(
            Check::PerKeyOrder,
            format!(
                "{} records succeeded before an earlier one of their key, first {first:?}",
                out_of_order.len()
            ),
        );
    }
    failed
}

fn summary(name: &str, run: &Run) -> String {
    let report = &run.report;
    format!(
        "soak, {name}: {} user records in {} Kinesis records over {} shards; {} invocations \
         ({} partial), {} duplicate deliveries, {} dead letters, wall time {:.1} s",
        run.scale.user_records,
        run.kinesis_records,
        run.scale.shards,
        report.invocations(),
        report.partial_responses(),
        report.duplicates(),
        report.dead_letters().len(),
        report.wall_time().as_secs_f64()
    )
}

#[test]
#[ignore = "release-mode soak of a million records; scripts/test-all runs it"]
fn a_million_records_under_faults_lose_nothing_and_keep_per_key_order() {
    let setups = [
        ("plain and per-key aggregates, two lanes", Setup::real(SOAK, Producer::PerKey, 2)),
        ("KPL aggregates of many keys, one lane", Setup::real(SOAK, Producer::Kpl, 1)),
    ];
    // The two runs share nothing: side by side, the soak takes as long as the slower one.
    let runs: Vec<(&str, Run)> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            setups.iter().map(|(name, setup)| scope.spawn(move || (*name, run(*setup)))).collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    for (name, run) in &runs {
        println!("{}", summary(name, run));
    }
    for (name, run) in &runs {
        assert_eq!(check(run), [], "{name}");
    }
}

/// The checks pass on a small run of the real processor, both ways the soak runs.
#[test]
fn the_checks_pass_on_a_small_run() {
    for setup in [Setup::real(SMALL, Producer::PerKey, 2), Setup::real(SMALL, Producer::Kpl, 1)] {
        let run = run(setup);
        assert_eq!(check(&run), [], "{setup:?}");
    }
}

/// The first good record (not poison, nor slow) of a key whose next record is good too,
/// with that next record.
fn good_record_and_next_of_its_key(scale: Scale, producer: Producer) -> (u64, u64) {
    let mut stream = SimulatedStream::new("soak", scale.shards);
    let keys = fill(&mut stream, (scale.user_records, scale.keys), producer, event_data);
    let good = |id: u64| matches!(scale.faults.kind(id), Kind::Good | Kind::Latent);
    (0..keys.len())
        .filter(|id| good(*id as u64))
        .find_map(|id| {
            let next = (id + 1..keys.len()).find(|n| keys[*n] == keys[id])?;
            good(next as u64).then_some((id as u64, next as u64))
        })
        .expect("a key with two good records")
}

/// Each check fails on a processor broken the way it guards against (or, for the order
/// violations the mapping reports, on KPL aggregates over two lanes), and every check is
/// shown failing by one of them.
#[test]
fn each_check_fails_on_a_broken_processor() {
    let plain = Setup::real(SMALL, Producer::PerKey, 2);
    let (good, next) = good_record_and_next_of_its_key(SMALL, Producer::PerKey);
    let cases: Vec<(&str, Setup, Vec<Check>)> = vec![
        (
            "stalls on a record",
            plain.broken(Broken::StallsOn(good)),
            vec![Check::NothingDiscarded, Check::GoodSucceeded],
        ),
        (
            "fails everything",
            plain.broken(Broken::FailsEverything),
            vec![Check::Drained, Check::AllDelivered, Check::GoodSucceeded],
        ),
        ("drops a record", plain.broken(Broken::Drops(good)), vec![Check::GoodSucceeded]),
        (
            "rejects a good record",
            plain.broken(Broken::RejectsGood(good)),
            vec![Check::OnlyPoisonLettered, Check::GoodSucceeded],
        ),
        (
            "processes poison",
            plain.broken(Broken::PoisonSucceeds),
            vec![Check::PoisonLettered, Check::PoisonNeverSucceeds],
        ),
        (
            "injects no fault",
            plain.broken(Broken::NoFaults),
            vec![Check::SlowRecordsCut, Check::PartialResponses],
        ),
        (
            "acknowledges before its write lands",
            plain.broken(Broken::AcksEarly(good, next)),
            vec![Check::PerKeyOrder],
        ),
        (
            "names failures by eventID",
            Setup { by_event_id: true, ..plain },
            vec![Check::NoUnknownIdentifiers],
        ),
        (
            "KPL aggregates of many keys over two lanes",
            Setup::real(SMALL, Producer::Kpl, 2),
            vec![Check::NoOrderViolations],
        ),
    ];
    let mut shown = HashSet::new();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(name, setup, expected)| {
                scope.spawn(move || (name, expected, check(&run(*setup))))
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    for (name, expected, failed) in results {
        let failed_checks: HashSet<Check> = failed.iter().map(|(check, _)| *check).collect();
        for check in expected {
            assert!(failed_checks.contains(check), "{name}: {check:?} passed; failed: {failed:?}");
            shown.insert(*check);
        }
    }
    let not_shown: Vec<_> = CHECKS.iter().filter(|check| !shown.contains(check)).collect();
    assert!(not_shown.is_empty(), "never shown failing: {not_shown:?}");
}
