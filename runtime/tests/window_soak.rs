//! The window soak: a window processor counting user records per key in Lambda's tumbling
//! windows, under the simulated event source mapping with faults injected everywhere the
//! framework must keep a window's count exact: transient errors, panics, records slow past
//! the deadline (their batch is cut and delivered again), records that stay failing until
//! Lambda redelivers them, poison records (dead-lettered, through a sink that refuses some
//! letters), and window-end functions whose writes fail, land without acknowledgement, or
//! are refused so that Lambda retries the final invocation. Plain records and KPL
//! aggregates. Every attempt folds into the window state before its fault strikes, so a
//! failed attempt that left a trace would show in the totals.
//!
//! The fast tests run in every `cargo test`; the bigger run is release-only:
//! `cargo test --release -p kinesis-processor --features testing --test window_soak -- --ignored`.
//!
//! Its checks are one function of a run, [`check`]; [`each_check_fails_on_a_broken_processor`]
//! shows that none of them passes whatever happens.
#![cfg(feature = "testing")]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{pick, quiet_injected_panics, refusing_sink, splitmix};
use kinesis_processor::aggregation::{deaggregate, Deaggregated, UserRecord};
use kinesis_processor::testing::{
    EventSourceMapping, Function, InvocationResult, MappingReport, SimulatedStream,
};
use kinesis_processor::{kinesis_processor, RecordError, RecordMeta, Window};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `TumblingWindowInSeconds`.
const WINDOW_SECONDS: u64 = 2;

/// How many records, over how many shards, keys and windows, with which faults.
#[derive(Clone, Copy, Debug)]
struct Scale {
    user_records: usize,
    shards: usize,
    keys: u64,
    /// The windows the records' arrivals span, per shard.
    windows: u64,
    /// `BatchSize`: small, so that a window takes several batches and its state travels.
    batch_size: usize,
    faults: Faults,
}

/// The fast tests' size: about 600 windows of ten user records each.
const SMALL: Scale = Scale {
    user_records: 6_000,
    shards: 3,
    keys: 24,
    windows: 200,
    batch_size: 4,
    faults: Faults::SMALL,
};

/// The broken processors' runs: smaller, with every fault still occurring.
const BROKEN: Scale = Scale { user_records: 2_400, shards: 2, windows: 100, ..SMALL };

/// The release-mode run.
const SOAK: Scale = Scale {
    user_records: 200_000,
    shards: 4,
    keys: 500,
    windows: 2_500,
    batch_size: 10,
    faults: Faults { slow_per_100k: 5, ..Faults::SMALL },
};

/// What a record does, decided by its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Rejected every time: dead-lettered.
    Poison,
    /// Panics on its first attempt.
    Panics,
    /// Fails its first attempt, then succeeds.
    Transient,
    /// Fails its first three attempts (past the processor's two retries), so Lambda
    /// delivers it again, and then succeeds.
    Stubborn,
    /// Hangs past the deadline on its first attempt, so its batch is cut.
    Slow,
    Good,
}

/// What a window end does, decided by its shard and start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EndFault {
    /// The first write fails before it lands (a retryable error).
    Lost,
    /// The first write lands, and then fails (a retryable error): published twice.
    AckLost,
    /// The first write lands, and then is refused (not retryable): the final invocation
    /// fails and Lambda invokes it again.
    Refused,
    None,
}

/// The share of each fault, per 100,000 records (or window ends).
#[derive(Clone, Copy, Debug)]
struct Faults {
    poison_per_100k: u64,
    panics_per_100k: u64,
    transient_per_100k: u64,
    stubborn_per_100k: u64,
    slow_per_100k: u64,
    lost_per_100k: u64,
    ack_lost_per_100k: u64,
    refused_per_100k: u64,
}

impl Faults {
    /// Few enough in-process retries (each waits out a backoff of tens of milliseconds,
    /// one record after another) that the fast run takes seconds.
    const SMALL: Faults = Faults {
        poison_per_100k: 1_000,
        panics_per_100k: 200,
        transient_per_100k: 500,
        stubborn_per_100k: 100,
        slow_per_100k: 100,
        lost_per_100k: 2_000,
        ack_lost_per_100k: 2_000,
        refused_per_100k: 3_000,
    };

    /// Poison records only: what a processor must handle in any case.
    const POISON_ONLY: Faults = Faults {
        poison_per_100k: Faults::SMALL.poison_per_100k,
        panics_per_100k: 0,
        transient_per_100k: 0,
        stubborn_per_100k: 0,
        slow_per_100k: 0,
        lost_per_100k: 0,
        ack_lost_per_100k: 0,
        refused_per_100k: 0,
    };

    fn kind(&self, id: u64) -> Kind {
        pick(
            splitmix(id),
            [
                (self.poison_per_100k, Kind::Poison),
                (self.panics_per_100k, Kind::Panics),
                (self.transient_per_100k, Kind::Transient),
                (self.stubborn_per_100k, Kind::Stubborn),
                (self.slow_per_100k, Kind::Slow),
            ],
            Kind::Good,
        )
    }

    /// The fault of a shard's window, by its place among the run's windows: a run's windows
    /// start at the wall clock, and seeded by their start the faults a run met were
    /// chance (a broken processor's run met no lost write about once in fifty).
    fn end_fault(&self, shard: &str, window: u64) -> EndFault {
        let seed = shard.bytes().fold(window, |x, b| splitmix(x ^ u64::from(b)));
        pick(
            seed,
            [
                (self.lost_per_100k, EndFault::Lost),
                (self.ack_lost_per_100k, EndFault::AckLost),
                (self.refused_per_100k, EndFault::Refused),
            ],
            EndFault::None,
        )
    }
}

/// How the processor is broken, for showing that the checks catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    /// The real processor.
    No,
    /// Counts into a map of its own, outside the framework, and publishes that: the
    /// changes of failed attempts stay.
    FoldsOutside,
    /// Counts a record twice when it is retried.
    DoubleCountsRetries,
    /// Adds each window's totals to a running total per window at its end and publishes
    /// that: a second run of a window end publishes double.
    PublishIsNotIdempotent,
    /// Answers success when its write fails, so the window is never published.
    SwallowsWriteErrors,
    /// Rejects this good record.
    RejectsGood(u64),
    /// Fails this good record every time, with a retryable error.
    StallsOn(u64),
    /// Fails every record, with a retryable error.
    FailsEverything,
    /// Fails the end of every window of this shard, every time.
    EndAlwaysFails(usize),
    /// Answers without the window state.
    DropsState,
    /// Injects no fault.
    NoFaults,
}

/// A window end's write, as the store received it.
#[derive(Clone, Debug)]
struct Publication {
    shard: String,
    /// Seconds since the epoch.
    start: u64,
    totals: BTreeMap<String, u64>,
}

/// A window of a shard: its shard id and start (seconds since the epoch).
type WindowKey = (String, u64);

/// What the processor shares: the faults, what it saw, and the store it publishes to.
struct Soak {
    faults: Faults,
    broken: Broken,
    attempts: Vec<AtomicU32>,
    end_attempts: Mutex<HashMap<WindowKey, u32>>,
    published: Mutex<Vec<Publication>>,
    /// For the broken processors: counts kept outside the window state.
    outside: Mutex<HashMap<WindowKey, BTreeMap<String, u64>>>,
    /// How many windows the run's records span.
    windows: u64,
}

impl Soak {
    fn new(scale: Scale, broken: Broken) -> Self {
        let faults = if broken == Broken::NoFaults { Faults::POISON_ONLY } else { scale.faults };
        Soak {
            faults,
            broken,
            attempts: (0..scale.user_records).map(|_| AtomicU32::new(0)).collect(),
            end_attempts: Mutex::default(),
            published: Mutex::default(),
            outside: Mutex::default(),
            windows: scale.windows,
        }
    }
}

/// A user record's data.
#[derive(Deserialize)]
struct Event {
    id: u64,
    key: String,
}

/// The window state: user records per key.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Totals {
    by_key: BTreeMap<String, u64>,
}

fn epoch_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn window_start(arrival: SystemTime) -> u64 {
    epoch_seconds(arrival) / WINDOW_SECONDS * WINDOW_SECONDS
}

/// Counts a record. It counts before its fault strikes: the framework must drop the
/// change of an attempt that fails, panics, times out, or is dead-lettered.
#[kinesis_processor(window, deadline_margin = "100ms")]
async fn count(
    event: Event,
    totals: &mut Totals,
    meta: &RecordMeta,
    soak: &Arc<Soak>,
) -> Result<(), RecordError> {
    let id = event.id;
    let attempt = soak.attempts[id as usize].fetch_add(1, Ordering::Relaxed) + 1;
    let by = match soak.broken {
        Broken::DoubleCountsRetries if attempt > 1 => 2,
        _ => 1,
    };
    if soak.broken == Broken::FoldsOutside {
        let window =
            (meta.shard_id().unwrap().to_owned(), window_start(meta.approximate_arrival()));
        let mut outside = soak.outside.lock().unwrap();
        *outside.entry(window).or_default().entry(event.key.clone()).or_default() += 1;
    }
    *totals.by_key.entry(event.key).or_default() += by;
    match soak.broken {
        Broken::RejectsGood(good) if good == id => return Err(RecordError::reject("wrongly")),
        Broken::StallsOn(stuck) if stuck == id => return Err(RecordError::retry("stuck")),
        Broken::FailsEverything => return Err(RecordError::retry("the downstream is down")),
        _ => {}
    }
    match soak.faults.kind(id) {
        Kind::Poison => Err(RecordError::reject("poison record")),
        Kind::Panics if attempt == 1 => panic!("injected panic"),
        Kind::Transient if attempt == 1 => Err(RecordError::retry("transient error")),
        Kind::Stubborn if attempt <= 3 => Err(RecordError::retry("stubborn error")),
        Kind::Slow if attempt == 1 => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Publishes a window's totals to the store, with the window end's faults.
async fn publish(totals: Totals, window: &Window, soak: &Arc<Soak>) -> Result<(), RecordError> {
    let shard = window.shard_id().expect("Lambda names the shard").to_owned();
    let start = epoch_seconds(window.start());
    let key = (shard.clone(), start);
    let attempt = {
        let mut attempts = soak.end_attempts.lock().unwrap();
        let attempt = attempts.entry(key.clone()).or_default();
        *attempt += 1;
        *attempt
    };
    if let Broken::EndAlwaysFails(index) = soak.broken {
        if shard == shard_id(index) {
            return Err(RecordError::reject("the store is gone"));
        }
    }
    let totals = match soak.broken {
        Broken::FoldsOutside => soak.outside.lock().unwrap().get(&key).cloned().unwrap_or_default(),
        Broken::PublishIsNotIdempotent => {
            let mut running = soak.outside.lock().unwrap();
            let running = running.entry(key).or_default();
            for (k, n) in totals.by_key {
                *running.entry(k).or_default() += n;
            }
            running.clone()
        }
        _ => totals.by_key,
    };
    let write = || {
        soak.published.lock().unwrap().push(Publication {
            shard: shard.clone(),
            start,
            totals: totals.clone(),
        })
    };
    // Consecutive windows: their starts modulo the run's window count are its places.
    let place = start / WINDOW_SECONDS % soak.windows;
    match soak.faults.end_fault(&shard, place) {
        EndFault::Lost if attempt == 1 && soak.broken == Broken::SwallowsWriteErrors => Ok(()),
        EndFault::Lost if attempt == 1 => Err(RecordError::retry("the write timed out")),
        EndFault::AckLost if attempt == 1 => {
            write();
            Err(RecordError::retry("the write's acknowledgement was lost"))
        }
        EndFault::Refused if attempt == 1 => {
            write();
            Err(RecordError::reject("the store refused the second half of the write"))
        }
        _ => {
            write();
            Ok(())
        }
    }
}

fn shard_id(index: usize) -> String {
    format!("shardId-{index:012}")
}

/// Puts the user records, arrivals spread evenly over the scale's windows (ending a minute
/// ago), 30% of them in KPL aggregates of 2 to 12 user records of any keys.
fn fill(stream: &mut SimulatedStream, scale: Scale) {
    let span = Duration::from_secs(scale.windows * WINDOW_SECONDS);
    let first = window_start(SystemTime::now() - span - Duration::from_secs(60));
    let arrival = |id: u64| {
        let offset = span.as_millis() as u64 * id / scale.user_records as u64;
        UNIX_EPOCH + Duration::from_secs(first) + Duration::from_millis(offset)
    };
    let mut id = 0u64;
    let mut roll = 7u64;
    while (id as usize) < scale.user_records {
        roll = splitmix(roll);
        let group = if roll % 10 < 3 { 2 + (roll >> 8) % 11 } else { 1 };
        let group = group.min(scale.user_records as u64 - id);
        let keys: Vec<String> =
            (0..group).map(|n| format!("user-{}", splitmix(roll ^ n) % scale.keys)).collect();
        let data: Vec<Vec<u8>> = (id..id + group)
            .zip(&keys)
            .map(|(n, key)| format!(r#"{{"id":{n},"key":"{key}"}}"#).into_bytes())
            .collect();
        if group == 1 {
            stream.put_record(&keys[0], None, &data[0], arrival(id));
        } else {
            let records: Vec<UserRecord<'_>> = keys
                .iter()
                .zip(&data)
                .map(|(key, data)| UserRecord { partition_key: key, explicit_hash_key: None, data })
                .collect();
            stream.put_aggregate(&records, arrival(id));
        }
        id += group;
    }
}

/// Each user record of the stream: its id and key, by window.
fn user_records_by_window(stream: &SimulatedStream) -> BTreeMap<WindowKey, Vec<(u64, String)>> {
    let mut windows: BTreeMap<WindowKey, Vec<(u64, String)>> = BTreeMap::new();
    for (index, shard) in stream.shard_ids().enumerate() {
        for record in stream.records(index) {
            let data: Vec<&[u8]> = match deaggregate(&record.data).unwrap() {
                Deaggregated::Plain => vec![&record.data],
                Deaggregated::Aggregate(users) => users.iter().map(|user| user.data).collect(),
            };
            let window =
                windows.entry((shard.to_owned(), window_start(record.arrival))).or_default();
            for data in data {
                let event: Value = serde_json::from_slice(data).unwrap();
                let key = event["key"].as_str().unwrap().to_owned();
                window.push((event["id"].as_u64().unwrap(), key));
            }
        }
    }
    windows
}

/// A function that answers without the window state.
struct DropsState<F>(F);

impl<F: Function> Function for DropsState<F> {
    async fn invoke(&self, payload: Vec<u8>, timeout: Duration) -> InvocationResult {
        match self.0.invoke(payload, timeout).await {
            InvocationResult::Response(mut response) => {
                if let Some(response) = response.as_object_mut() {
                    response.remove("state");
                }
                InvocationResult::Response(response)
            }
            other => other,
        }
    }
}

/// One run of the mapping over a filled stream.
struct Run {
    scale: Scale,
    report: MappingReport,
    soak: Arc<Soak>,
    windows: BTreeMap<WindowKey, Vec<(u64, String)>>,
    kinesis_records: usize,
}

/// Fills a stream and runs the window processor over it: bisection on, ten retries, a
/// record age of six hours, a 400 ms function timeout, and an invocation budget of three
/// per batch and per window, where a healthy run needs about 1.2.
fn run(scale: Scale, broken: Broken) -> Run {
    quiet_injected_panics();
    let mut stream = SimulatedStream::new("window-soak", scale.shards);
    fill(&mut stream, scale);
    let windows = user_records_by_window(&stream);
    let soak = Arc::new(Soak::new(scale, broken));
    let sink = refusing_sink(2_000);
    let processor =
        count().on_window_end(publish).state(soak.clone()).dead_letter(sink.clone()).metrics(false);
    // Without in-process retries, failing records cost no backoff: the run stalls fast.
    let processor =
        if broken == Broken::FailsEverything { processor.retries(0) } else { processor };
    let batches = stream.len().div_ceil(scale.batch_size) + windows.len();
    let mapping = EventSourceMapping::new()
        .tumbling_window(Duration::from_secs(WINDOW_SECONDS))
        .batch_size(scale.batch_size)
        .bisect_batch_on_function_error(true)
        .maximum_retry_attempts(10)
        .maximum_record_age(Some(Duration::from_secs(6 * 3600)))
        .function_timeout(Duration::from_millis(400))
        .max_invocations(3 * (batches + windows.len()) + 50)
        .dead_letters(sink);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = if broken == Broken::DropsState {
        runtime.block_on(mapping.run(&stream, &DropsState(processor)))
    } else {
        runtime.block_on(mapping.run(&stream, &processor))
    };
    Run { scale, report, soak, windows, kinesis_records: stream.len() }
}

/// What the soak asserts of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Check {
    /// The stream drained within the invocation budget.
    Drained,
    /// Nothing reached the on-failure destination.
    NothingDiscarded,
    /// Every response carried the window state.
    NoMissingStates,
    /// Every window's final invocation succeeded in the end.
    NoWindowAbandoned,
    /// The dead-lettered records are exactly the poison ones (a record may be lettered
    /// twice: the sink is at-least-once, as in the per-record soak).
    DeadLettersArePoison,
    /// For every window and key, the published total is the count of the window's user
    /// records of that key in the stream, less the dead-lettered ones.
    TotalsExact,
    /// Every publication of one window carries the same totals.
    SameTotals,
    /// Every window with records was published at least once.
    EveryWindowPublished,
    /// The faults happened: batches cut at the deadline, partial responses, final
    /// invocations retried, windows published more than once.
    FaultsExercised,
}

const CHECKS: [Check; 9] = [
    Check::Drained,
    Check::NothingDiscarded,
    Check::NoMissingStates,
    Check::NoWindowAbandoned,
    Check::DeadLettersArePoison,
    Check::TotalsExact,
    Check::SameTotals,
    Check::EveryWindowPublished,
    Check::FaultsExercised,
];

/// The checks a run fails, each with what was seen; empty when it kept every promise.
fn check(run: &Run) -> Vec<(Check, String)> {
    let Run { scale, report, soak, windows, .. } = run;
    let mut failed = Vec::new();
    let mut fail = |check, what: String| failed.push((check, what));

    if report.stalled() {
        fail(Check::Drained, format!("stopped after {} invocations", report.invocations()));
    }
    if !report.discarded().is_empty() {
        let records: usize = report.discarded().iter().map(|d| d.sequence_numbers.len()).sum();
        fail(Check::NothingDiscarded, format!("{records} records discarded"));
    }
    if report.missing_states() > 0 {
        fail(
            Check::NoMissingStates,
            format!("{} responses without state", report.missing_states()),
        );
    }
    if report.windows_abandoned() > 0 {
        fail(Check::NoWindowAbandoned, format!("{} windows abandoned", report.windows_abandoned()));
    }

    let lettered: HashSet<u64> = report
        .dead_letters()
        .iter()
        .filter_map(|letter| letter.data_bytes())
        .filter_map(|data| serde_json::from_slice::<Value>(&data).ok())
        .filter_map(|event| event["id"].as_u64())
        .collect();
    let poison: HashSet<u64> =
        (0..scale.user_records as u64).filter(|id| soak.faults.kind(*id) == Kind::Poison).collect();
    if lettered != poison {
        let wrongly: Vec<_> = lettered.difference(&poison).take(5).collect();
        let missing: Vec<_> = poison.difference(&lettered).take(5).collect();
        fail(
            Check::DeadLettersArePoison,
            format!(
                "{} poison records; lettered but not poison: {wrongly:?}, not lettered: \
                 {missing:?}",
                poison.len()
            ),
        );
    }

    let published = soak.published.lock().unwrap();
    let mut by_window: HashMap<WindowKey, Vec<&BTreeMap<String, u64>>> = HashMap::new();
    for publication in published.iter() {
        by_window
            .entry((publication.shard.clone(), publication.start))
            .or_default()
            .push(&publication.totals);
    }
    let (mut wrong, mut differing, mut unpublished) = (Vec::new(), Vec::new(), Vec::new());
    for (window, records) in windows {
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for (id, key) in records {
            if !lettered.contains(id) {
                *expected.entry(key.clone()).or_default() += 1;
            }
        }
        let Some(publications) = by_window.get(window) else {
            unpublished.push(window.clone());
            continue;
        };
        let nonzero =
            |totals: &BTreeMap<String, u64>| totals.iter().filter(|(_, n)| **n > 0).count();
        for totals in publications {
            let exact = expected.iter().all(|(key, n)| totals.get(key) == Some(n));
            if !exact || nonzero(totals) != expected.len() {
                wrong.push((window.clone(), expected.clone(), (*totals).clone()));
            }
        }
        if publications.iter().any(|totals| *totals != publications[0]) {
            differing.push((window.clone(), publications.len()));
        }
    }
    if !wrong.is_empty() {
        let first = &wrong[0];
        fail(
            Check::TotalsExact,
            format!(
                "{} publications off; first, window {:?}: expected {:?}, published {:?}",
                wrong.len(),
                first.0,
                first.1,
                first.2
            ),
        );
    }
    if !differing.is_empty() {
        let first: Vec<_> = differing.iter().take(3).collect();
        fail(
            Check::SameTotals,
            format!("{} windows published differently: {first:?}", differing.len()),
        );
    }
    if !unpublished.is_empty() {
        let first: Vec<_> = unpublished.iter().take(3).collect();
        fail(
            Check::EveryWindowPublished,
            format!(
                "{} of {} windows never published: {first:?}",
                unpublished.len(),
                windows.len()
            ),
        );
    }

    let slow: Vec<u64> =
        (0..scale.user_records as u64).filter(|id| soak.faults.kind(*id) == Kind::Slow).collect();
    let cut = slow.iter().any(|id| soak.attempts[*id as usize].load(Ordering::Relaxed) >= 2);
    let republished = by_window.values().any(|publications| publications.len() > 1);
    let final_retried = report.final_invocations() > report.windows_closed();
    if !cut || report.partial_responses() == 0 || !republished || !final_retried {
        fail(
            Check::FaultsExercised,
            format!(
                "slow records cut: {cut}; partial responses: {}; a window published twice: \
                 {republished}; a final invocation retried: {final_retried}",
                report.partial_responses()
            ),
        );
    }
    failed
}

fn summary(run: &Run) -> String {
    let report = &run.report;
    let published = run.soak.published.lock().unwrap().len();
    format!(
        "window soak: {} user records in {} Kinesis records over {} shards, {} windows; {} \
         invocations ({} final, {} partial), {} publications, {} dead letters, wall time \
         {:.1} s",
        run.scale.user_records,
        run.kinesis_records,
        run.scale.shards,
        run.windows.len(),
        report.invocations(),
        report.final_invocations(),
        report.partial_responses(),
        published,
        report.dead_letters().len(),
        report.wall_time().as_secs_f64()
    )
}

#[test]
#[ignore = "release-mode window soak; scripts/test-all runs it"]
fn two_hundred_thousand_records_in_windows_count_exactly() {
    let run = run(SOAK, Broken::No);
    println!("{}", summary(&run));
    assert_eq!(check(&run), []);
}

/// The checks pass on a small run of the real processor.
#[test]
fn the_checks_pass_on_a_small_run() {
    let run = run(SMALL, Broken::No);
    println!("{}", summary(&run));
    assert_eq!(check(&run), []);
    assert!(run.windows.len() >= 500, "{} windows", run.windows.len());
}

/// Each check fails on a processor broken in the way it guards against, and every check
/// is shown failing by one of them.
#[test]
fn each_check_fails_on_a_broken_processor() {
    let good = (0..BROKEN.user_records as u64)
        .find(|id| BROKEN.faults.kind(*id) == Kind::Good)
        .expect("a good record");
    let cases: Vec<(&str, Broken, Vec<Check>)> = vec![
        ("keeps failed attempts' counts", Broken::FoldsOutside, vec![Check::TotalsExact]),
        ("double-counts retries", Broken::DoubleCountsRetries, vec![Check::TotalsExact]),
        (
            "publishes a running total",
            Broken::PublishIsNotIdempotent,
            vec![Check::SameTotals, Check::TotalsExact],
        ),
        ("swallows write errors", Broken::SwallowsWriteErrors, vec![Check::EveryWindowPublished]),
        ("rejects a good record", Broken::RejectsGood(good), vec![Check::DeadLettersArePoison]),
        (
            "stalls on a record",
            Broken::StallsOn(good),
            vec![Check::NothingDiscarded, Check::TotalsExact],
        ),
        ("fails every record", Broken::FailsEverything, vec![Check::Drained, Check::TotalsExact]),
        (
            "fails a shard's window ends",
            Broken::EndAlwaysFails(1),
            vec![Check::NoWindowAbandoned, Check::EveryWindowPublished],
        ),
        ("answers without state", Broken::DropsState, vec![Check::NoMissingStates]),
        ("injects no fault", Broken::NoFaults, vec![Check::FaultsExercised]),
    ];
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(name, broken, expected)| {
                scope.spawn(move || (name, expected, check(&run(BROKEN, *broken))))
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    let mut shown = HashSet::new();
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

/// The user records of a KPL aggregate share its sequence number, so a partial response
/// naming one has Lambda deliver the whole aggregate again: those before the failed one,
/// already counted, must not be counted twice.
#[test]
fn user_records_before_a_failed_one_in_an_aggregate_count_once() {
    let soak = Arc::new(Soak::new(SMALL, Broken::No));
    let of_kind =
        |kind| (0..SMALL.user_records as u64).filter(move |id| SMALL.faults.kind(*id) == kind);
    let good: Vec<u64> = of_kind(Kind::Good).take(2).collect();
    // Its three attempts fail: the processor reports it, and Lambda delivers it again.
    let stubborn = of_kind(Kind::Stubborn).next().unwrap();
    let data: Vec<Vec<u8>> = [good[0], good[1], stubborn]
        .iter()
        .map(|id| format!(r#"{{"id":{id},"key":"k"}}"#).into_bytes())
        .collect();
    let records: Vec<UserRecord<'_>> = data
        .iter()
        .map(|data| UserRecord { partition_key: "k", explicit_hash_key: None, data })
        .collect();
    let mut stream = SimulatedStream::new("aggregate", 1);
    stream.put_aggregate(&records, SystemTime::now() - Duration::from_secs(60));
    let processor = count().on_window_end(publish).state(soak.clone()).metrics(false);
    let mapping = EventSourceMapping::new().tumbling_window(Duration::from_secs(WINDOW_SECONDS));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = runtime.block_on(mapping.run(&stream, &processor));
    assert_eq!(report.partial_responses(), 1, "the stubborn record was reported once");
    let published = soak.published.lock().unwrap();
    assert!(!published.is_empty(), "the window was published");
    for publication in published.iter() {
        assert_eq!(publication.totals, BTreeMap::from([("k".to_owned(), 3)]));
    }
}
