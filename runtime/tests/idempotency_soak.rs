//! The idempotency soak: a processor guarded by [`MemoryIdempotency`] under the simulated
//! event source mapping, with every fault that makes Lambda deliver records again: records
//! slow past the deadline (their batch is cut, the records after them that already ran are
//! delivered again), records failing past the processor's retries while records of other
//! keys run beside them, invocations whose answer is lost after the batch ran (a function
//! error or a timeout, which the mapping retries by bisecting the batch), panics, transient
//! errors, and poison records through a sink that refuses some letters. Plain records and
//! KPL aggregates. Twice: keyed by the records' place in the stream, and keyed by an id in
//! the payload while the producer puts some events twice under new sequence numbers.
//!
//! The function counts a run only when it returns `Ok`, and a slow record's success comes
//! after its sleep, which the deadline cuts: idempotency does not promise that an attempt
//! that fails or is cut never runs again (see `kinesis_processor::idempotency`), only that
//! a record done is not run again.
//!
//! The fast tests run in every `cargo test`; the bigger run is release-only:
//! `cargo test --release -p kinesis-processor --features testing --test idempotency_soak -- --ignored`.
//!
//! Its checks are one function of a run, [`check`]; [`each_check_fails_on_a_broken_processor`]
//! shows that none of them passes whatever happens.
#![cfg(feature = "testing")]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::{pick, quiet_injected_panics, refusing_sink, splitmix};
use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::idempotency::{Claim, IdempotencyStore, StoreError};
use kinesis_processor::testing::{
    EventSourceMapping, Function, InvocationResult, MappingReport, MemoryIdempotency,
    SimulatedStream,
};
use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
use serde::Deserialize;
use serde_json::Value;

/// How many records, over how many shards and keys, with which faults.
#[derive(Clone, Copy, Debug)]
struct Scale {
    user_records: usize,
    shards: usize,
    keys: u64,
    /// `BatchSize`.
    batch_size: usize,
    faults: Faults,
}

/// The fast tests' size: a few thousand records, every fault occurring several times.
const SMALL: Scale =
    Scale { user_records: 4_000, shards: 2, keys: 60, batch_size: 100, faults: Faults::SMALL };

/// The broken processors' runs: smaller, with every fault still occurring.
const BROKEN: Scale = Scale { user_records: 2_000, ..SMALL };

/// The release-mode run.
const SOAK: Scale = Scale {
    user_records: 200_000,
    shards: 4,
    keys: 5_000,
    batch_size: 500,
    faults: Faults {
        stubborn_per_100k: 100,
        slow_per_100k: 5,
        lost_per_100k: 100,
        refused_per_100k: 2_000,
        ..Faults::SMALL
    },
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
    /// Fails its first three attempts (past the processor's two retries), so that Lambda
    /// delivers it again, with the records after it that already ran.
    Stubborn,
    /// Hangs past the deadline on its first attempt, so that its batch is cut.
    Slow,
    /// Waits 1 ms on a simulated downstream: in flight when a batch is cut.
    Latent,
    Good,
}

/// The share of each fault, per 100,000 records (answers lost: per 100,000 Kinesis
/// records; producer retries: per 100,000 puts).
#[derive(Clone, Copy, Debug)]
struct Faults {
    poison_per_100k: u64,
    panics_per_100k: u64,
    transient_per_100k: u64,
    stubborn_per_100k: u64,
    slow_per_100k: u64,
    latent_per_100k: u64,
    /// The first invocation holding such a Kinesis record loses its answer after the batch
    /// ran: a function error or a timeout, half each.
    lost_per_100k: u64,
    /// Dead letters the sink refuses.
    refused_per_100k: u64,
    /// Puts the producer makes twice, under a new sequence number (payload keys only).
    reput_per_100k: u64,
}

impl Faults {
    const SMALL: Faults = Faults {
        poison_per_100k: 1_000,
        panics_per_100k: 200,
        transient_per_100k: 2_000,
        stubborn_per_100k: 300,
        slow_per_100k: 100,
        latent_per_100k: 5_000,
        lost_per_100k: 600,
        refused_per_100k: 3_000,
        reput_per_100k: 3_000,
    };

    /// Poison records (and producer retries) only, every letter accepted: what a processor
    /// meets in any case.
    fn poison_only(self) -> Faults {
        Faults {
            panics_per_100k: 0,
            transient_per_100k: 0,
            stubborn_per_100k: 0,
            slow_per_100k: 0,
            latent_per_100k: 0,
            lost_per_100k: 0,
            refused_per_100k: 0,
            ..self
        }
    }

    fn kind(&self, id: u64) -> Kind {
        pick(
            splitmix(id),
            [
                (self.poison_per_100k, Kind::Poison),
                (self.panics_per_100k, Kind::Panics),
                (self.transient_per_100k, Kind::Transient),
                (self.stubborn_per_100k, Kind::Stubborn),
                (self.slow_per_100k, Kind::Slow),
                (self.latent_per_100k, Kind::Latent),
            ],
            Kind::Good,
        )
    }

    /// How the first invocation holding the Kinesis record `sequence_number` ends, if it
    /// loses its answer.
    fn loss(&self, sequence_number: &str) -> Option<InvocationResult> {
        let roll = sequence_number.bytes().fold(3, |x, b| splitmix(x ^ u64::from(b)));
        (roll % 100_000 < self.lost_per_100k).then(|| match (roll >> 32) % 2 {
            0 => InvocationResult::Error("the runtime crashed after the batch ran".to_owned()),
            _ => InvocationResult::TimedOut,
        })
    }
}

/// What keys the records, and how the producer puts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keying {
    /// The records' identity in the stream (the default); plain records and KPL aggregates
    /// of one key, over two lanes per shard.
    Stream,
    /// The event's id (`idempotency_key`); plain records and KPL aggregates of many keys
    /// over one lane, some put twice by the producer.
    Payload,
}

/// How the processor is broken, for showing that the checks catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    /// The real processor.
    No,
    /// Has no idempotency store.
    Unguarded,
    /// Its store answers every key done.
    StoreSaysDone,
    /// Keys by the records' identity in the stream where the producer repeats events.
    KeyedByStream,
    /// Keys by partition key: one key for many events.
    KeyedByPartitionKey,
    /// Injects no fault but poison records and producer retries.
    NoFaults,
    /// Fails this good record every time, with a retryable error.
    StallsOn(u64),
    /// Fails every record, with a retryable error.
    FailsEverything,
    /// Processes poison records as good ones.
    PoisonSucceeds,
    /// Rejects this good record.
    RejectsGood(u64),
}

/// What the function observed, by event id.
struct Soak {
    faults: Faults,
    broken: Broken,
    attempts: Vec<AtomicU32>,
    /// Runs of the function that returned `Ok`.
    successes: Vec<AtomicU32>,
}

impl Soak {
    fn new(scale: Scale, broken: Broken) -> Self {
        let faults =
            if broken == Broken::NoFaults { scale.faults.poison_only() } else { scale.faults };
        Soak {
            faults,
            broken,
            attempts: (0..scale.user_records).map(|_| AtomicU32::new(0)).collect(),
            successes: (0..scale.user_records).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn successes(&self, id: u64) -> u32 {
        self.successes[id as usize].load(Ordering::Relaxed)
    }
}

#[derive(Deserialize)]
struct Event {
    id: u64,
}

/// The event's id: the payload key.
fn event_id(event: &Event, _: &RecordMeta) -> String {
    event.id.to_string()
}

#[kinesis_processor(concurrency = 16, deadline_margin = "500ms")]
async fn guarded(event: Event, soak: &Arc<Soak>) -> Result<(), RecordError> {
    process(event, soak).await
}

#[kinesis_processor(concurrency = 16, deadline_margin = "500ms", idempotency_key = event_id)]
async fn guarded_by_event(event: Event, soak: &Arc<Soak>) -> Result<(), RecordError> {
    process(event, soak).await
}

/// Runs an event with its faults; counts the run only once it is about to return `Ok`.
async fn process(event: Event, soak: &Soak) -> Result<(), RecordError> {
    let id = event.id;
    let attempt = soak.attempts[id as usize].fetch_add(1, Ordering::Relaxed) + 1;
    match soak.broken {
        Broken::StallsOn(stuck) if stuck == id => return Err(RecordError::retry("stuck")),
        Broken::FailsEverything => return Err(RecordError::retry("downstream is down")),
        Broken::RejectsGood(good) if good == id => return Err(RecordError::reject("wrongly")),
        _ => {}
    }
    let kind = match (soak.broken, soak.faults.kind(id)) {
        (Broken::PoisonSucceeds, Kind::Poison) => Kind::Good,
        (_, kind) => kind,
    };
    match kind {
        Kind::Poison => return Err(RecordError::reject("poison record")),
        Kind::Panics if attempt == 1 => panic!("injected panic"),
        Kind::Transient if attempt == 1 => return Err(RecordError::retry("transient error")),
        Kind::Stubborn if attempt <= 3 => return Err(RecordError::retry("stubborn error")),
        Kind::Slow if attempt == 1 => tokio::time::sleep(Duration::from_secs(2)).await,
        Kind::Latent => tokio::time::sleep(Duration::from_millis(1)).await,
        _ => {}
    }
    soak.successes[id as usize].fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The processor's store: [`MemoryIdempotency`], counting the duplicates it answers.
struct Watched {
    memory: MemoryIdempotency,
    /// Broken: answers every key done.
    says_done: bool,
    /// Keys answered done by a read or a claim.
    skipped: AtomicU64,
}

impl IdempotencyStore for Watched {
    async fn find_done(&self, keys: &[String], now: SystemTime) -> Result<Vec<bool>, StoreError> {
        let done = if self.says_done {
            vec![true; keys.len()]
        } else {
            self.memory.find_done(keys, now).await?
        };
        let skipped = done.iter().filter(|done| **done).count() as u64;
        self.skipped.fetch_add(skipped, Ordering::Relaxed);
        Ok(done)
    }

    async fn claim(
        &self,
        key: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<Claim, StoreError> {
        let claim = self.memory.claim(key, now, until).await?;
        if claim == Claim::Done {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(claim)
    }

    async fn complete(&self, keys: &[String], keep_until: SystemTime) -> Result<(), StoreError> {
        self.memory.complete(keys, keep_until).await
    }

    async fn release(&self, keys: &[String]) -> Result<(), StoreError> {
        self.memory.release(keys).await
    }
}

/// A function that loses the answer of the first invocation holding a Kinesis record whose
/// [`Faults::loss`] says so, after the batch ran: the mapping sees a function error or a
/// timeout, and retries the batch (bisecting it).
struct LosesAnswers<F> {
    function: F,
    faults: Faults,
    lost: Mutex<HashSet<String>>,
}

impl<F: Function> Function for LosesAnswers<F> {
    async fn invoke(&self, payload: Vec<u8>, timeout: Duration) -> InvocationResult {
        let loss = self.loss(&payload);
        let answer = self.function.invoke(payload, timeout).await;
        loss.unwrap_or(answer)
    }
}

impl<F> LosesAnswers<F> {
    fn loss(&self, payload: &[u8]) -> Option<InvocationResult> {
        let event: Value = serde_json::from_slice(payload).unwrap();
        let mut lost = self.lost.lock().unwrap();
        let mut loss = None;
        for record in event["Records"].as_array().unwrap() {
            let sequence_number = record["kinesis"]["sequenceNumber"].as_str().unwrap();
            if let Some(how) = self.faults.loss(sequence_number) {
                if lost.insert(sequence_number.to_owned()) {
                    loss = Some(how);
                }
            }
        }
        loss
    }
}

/// One put of the producer: consecutive event ids, each with its key; an aggregate when
/// more than one.
struct Group {
    first_id: u64,
    keys: Vec<u64>,
}

/// Puts the events, per key in id order, 30% of the puts KPL aggregates of 2 to 12. With
/// payload keys the producer puts some groups twice, the second time up to three times
/// `BatchSize` puts later: in the same batch or a later one.
fn fill(stream: &mut SimulatedStream, scale: Scale, keying: Keying, faults: Faults) {
    let mut keys_of_shard = vec![Vec::new(); stream.shard_count()];
    for key in 0..scale.keys {
        keys_of_shard[stream.shard_of(&format!("user-{key}"), None)].push(key);
    }
    let mut groups = Vec::new();
    let mut id = 0u64;
    let mut roll = 7u64;
    while (id as usize) < scale.user_records {
        roll = splitmix(roll);
        let first = roll % scale.keys;
        let size = if roll % 10 < 3 { 2 + (roll >> 8) % 11 } else { 1 };
        let size = size.min(scale.user_records as u64 - id);
        let keys = (0..size)
            .map(|n| match (keying, n) {
                (Keying::Stream, _) | (Keying::Payload, 0) => first,
                (Keying::Payload, _) => {
                    let shard = &keys_of_shard[stream.shard_of(&format!("user-{first}"), None)];
                    shard[(splitmix(roll ^ n) % shard.len() as u64) as usize]
                }
            })
            .collect();
        groups.push(Group { first_id: id, keys });
        id += size;
    }
    // (position, group): a repeat goes after the originals of its position.
    let mut puts: Vec<(usize, usize)> = (0..groups.len()).map(|g| (2 * g, g)).collect();
    if keying == Keying::Payload {
        for g in 0..groups.len() {
            let roll = splitmix(g as u64 ^ 0x5eed);
            if roll % 100_000 < faults.reput_per_100k {
                let later = (roll >> 20) as usize % (3 * scale.batch_size);
                puts.push((2 * (g + later) + 1, g));
            }
        }
        puts.sort_unstable();
    }
    let now = SystemTime::now();
    for (_, g) in puts {
        let group = &groups[g];
        let partition_keys: Vec<String> = group.keys.iter().map(|k| format!("user-{k}")).collect();
        let data: Vec<Vec<u8>> = (0..group.keys.len() as u64)
            .map(|n| format!(r#"{{"id":{}}}"#, group.first_id + n).into_bytes())
            .collect();
        if data.len() == 1 {
            stream.put_record(&partition_keys[0], None, &data[0], now);
        } else {
            let records: Vec<UserRecord<'_>> = partition_keys
                .iter()
                .zip(&data)
                .map(|(key, data)| UserRecord { partition_key: key, explicit_hash_key: None, data })
                .collect();
            stream.put_aggregate(&records, now);
        }
    }
}

/// How the run is set up.
#[derive(Clone, Copy, Debug)]
struct Setup {
    scale: Scale,
    keying: Keying,
    broken: Broken,
}

impl Setup {
    fn real(scale: Scale, keying: Keying) -> Self {
        Setup { scale, keying, broken: Broken::No }
    }

    fn broken(self, broken: Broken) -> Self {
        Setup { broken, ..self }
    }
}

/// One run of the mapping over a filled stream, and what the function and the store saw.
struct Run {
    scale: Scale,
    report: MappingReport,
    soak: Arc<Soak>,
    /// Keys the store answered done: duplicates skipped.
    skipped: u64,
    kinesis_records: usize,
    /// Kinesis records delivered more than once.
    redelivered_records: usize,
}

/// Fills a stream and runs the processor over it: batches of 100 (500 in the release run),
/// bisection on, ten retries, a record age of an hour, a 1.5 s timeout against the
/// processor's margin of 0.5 s and the slow records' 2 s; and an invocation budget of five
/// per batch, where a healthy run needs about two and a processor that fails every
/// batch needs eleven.
fn run(setup: Setup) -> Run {
    quiet_injected_panics();
    let Setup { scale, keying, broken } = setup;
    let soak = Arc::new(Soak::new(scale, broken));
    let faults = soak.faults;
    let mut stream = SimulatedStream::new("idempotency-soak", scale.shards);
    fill(&mut stream, scale, keying, faults);
    let store = Arc::new(Watched {
        memory: MemoryIdempotency::new(),
        says_done: broken == Broken::StoreSaysDone,
        skipped: AtomicU64::new(0),
    });
    let sink = refusing_sink(faults.refused_per_100k);
    let factor = match keying {
        Keying::Stream => 2,
        Keying::Payload => 1,
    };
    let batches = stream.len().div_ceil(scale.batch_size) + scale.shards * factor;
    let mapping = EventSourceMapping::new()
        .batch_size(scale.batch_size)
        .parallelization_factor(factor)
        .bisect_batch_on_function_error(true)
        .maximum_retry_attempts(10)
        .maximum_record_age(Some(Duration::from_secs(3600)))
        .function_timeout(Duration::from_millis(1500))
        .max_invocations(5 * batches)
        .dead_letters(sink.clone());
    let by_partition_key = |_: &Event, meta: &RecordMeta| meta.partition_key().to_owned();
    let processor = || guarded().state(soak.clone()).dead_letter(sink.clone());
    let report = match (keying, broken) {
        (_, Broken::Unguarded) => simulate(&mapping, &stream, processor(), faults),
        (_, Broken::KeyedByPartitionKey) => {
            let keyed = processor().idempotency(store.clone()).idempotency_key(by_partition_key);
            simulate(&mapping, &stream, keyed, faults)
        }
        (Keying::Stream, _) | (Keying::Payload, Broken::KeyedByStream) => {
            simulate(&mapping, &stream, processor().idempotency(store.clone()), faults)
        }
        (Keying::Payload, _) => {
            let by_event =
                guarded_by_event().state(soak.clone()).dead_letter(sink).idempotency(store.clone());
            simulate(&mapping, &stream, by_event, faults)
        }
    };
    let redelivered_records = (0..stream.shard_count())
        .flat_map(|shard| stream.records(shard))
        .filter(|record| report.deliveries(&record.sequence_number) > 1)
        .count();
    Run {
        scale,
        report,
        soak,
        skipped: store.skipped.load(Ordering::Relaxed),
        kinesis_records: stream.len(),
        redelivered_records,
    }
}

/// Runs `function`, losing some answers, over the stream on a runtime of its own.
fn simulate(
    mapping: &EventSourceMapping,
    stream: &SimulatedStream,
    function: impl Function,
    faults: Faults,
) -> MappingReport {
    let function = LosesAnswers { function, faults, lost: Mutex::default() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(mapping.run(stream, &function))
}

/// What the soak asserts of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Check {
    /// The stream drained within the invocation budget, every record delivered.
    Drained,
    /// Nothing reached the on-failure destination.
    NothingDiscarded,
    /// The faults made Lambda deliver records again, and the store answered some done:
    /// slow records cut, partial responses, answers lost as function errors and timeouts.
    Redelivered,
    /// No event's function returned `Ok` twice.
    RanOnce,
    /// Every good event's function returned `Ok`.
    EveryGoodRan,
    /// Every poison event is in the sink exactly once.
    PoisonLetteredOnce,
    /// Only poison events are in the sink.
    OnlyPoisonLettered,
}

const CHECKS: [Check; 7] = [
    Check::Drained,
    Check::NothingDiscarded,
    Check::Redelivered,
    Check::RanOnce,
    Check::EveryGoodRan,
    Check::PoisonLetteredOnce,
    Check::OnlyPoisonLettered,
];

/// The checks a run fails, each with what was seen; empty when it kept every promise.
fn check(run: &Run) -> Vec<(Check, String)> {
    let Run { scale, report, soak, skipped, .. } = run;
    let ids = 0..scale.user_records as u64;
    let poison = |id: &u64| soak.faults.kind(*id) == Kind::Poison;
    let mut failed = Vec::new();
    let mut fail = |check, what: String| failed.push((check, what));

    if report.stalled() || report.never_delivered() > 0 {
        fail(
            Check::Drained,
            format!(
                "stalled: {} after {} invocations; {} records never delivered",
                report.stalled(),
                report.invocations(),
                report.never_delivered()
            ),
        );
    }
    if !report.discarded().is_empty() {
        let records: usize = report.discarded().iter().map(|d| d.sequence_numbers.len()).sum();
        fail(
            Check::NothingDiscarded,
            format!("{} batches ({records} records) discarded", report.discarded().len()),
        );
    }

    let slow: Vec<u64> = ids.clone().filter(|id| soak.faults.kind(*id) == Kind::Slow).collect();
    let cut = slow.iter().any(|id| soak.attempts[*id as usize].load(Ordering::Relaxed) >= 2);
    let exercised = [
        report.duplicates() > 0,
        *skipped > 0,
        cut,
        report.partial_responses() > 0,
        report.function_errors() > 0,
        report.timeouts() > 0,
    ];
    if exercised.contains(&false) {
        fail(
            Check::Redelivered,
            format!(
                "duplicate deliveries {}, duplicates skipped {skipped}, slow records cut: {cut}, \
                 partial responses {}, function errors {}, timeouts {}",
                report.duplicates(),
                report.partial_responses(),
                report.function_errors(),
                report.timeouts()
            ),
        );
    }

    let twice: Vec<(u64, u32)> = ids
        .clone()
        .map(|id| (id, soak.successes(id)))
        .filter(|(_, successes)| *successes > 1)
        .collect();
    if !twice.is_empty() {
        let first: Vec<_> = twice.iter().take(10).collect();
        fail(
            Check::RanOnce,
            format!("{} events ran more than once, first (id, runs) {first:?}", twice.len()),
        );
    }
    let never: Vec<u64> =
        ids.clone().filter(|id| !poison(id) && soak.successes(*id) == 0).collect();
    if !never.is_empty() {
        let first: Vec<_> = never.iter().take(10).collect();
        fail(
            Check::EveryGoodRan,
            format!("{} good events never ran, first {first:?}", never.len()),
        );
    }

    let mut letters = vec![0u32; scale.user_records];
    let mut not_poison = Vec::new();
    for letter in report.dead_letters() {
        let id = letter
            .data_bytes()
            .and_then(|data| serde_json::from_slice::<Value>(&data).ok())
            .and_then(|event| event["id"].as_u64());
        match id {
            Some(id) if poison(&id) => letters[id as usize] += 1,
            other => not_poison.push(other),
        }
    }
    let wrong: Vec<(u64, u32)> = ids
        .clone()
        .filter(poison)
        .map(|id| (id, letters[id as usize]))
        .filter(|(_, letters)| *letters != 1)
        .collect();
    if !wrong.is_empty() {
        let first: Vec<_> = wrong.iter().take(10).collect();
        fail(
            Check::PoisonLetteredOnce,
            format!(
                "{} poison events not lettered once, first (id, letters) {first:?}",
                wrong.len()
            ),
        );
    }
    if !not_poison.is_empty() {
        fail(Check::OnlyPoisonLettered, format!("letters of other records: {not_poison:?}"));
    }
    failed
}

fn summary(name: &str, run: &Run) -> String {
    let report = &run.report;
    format!(
        "idempotency soak, {name}: {} events in {} Kinesis records over {} shards; {} \
         invocations ({} partial, {} function errors, {} timeouts), {} Kinesis records \
         delivered again ({} duplicate deliveries), {} duplicates skipped, {} dead letters, \
         wall time {:.1} s",
        run.scale.user_records,
        run.kinesis_records,
        run.scale.shards,
        report.invocations(),
        report.partial_responses(),
        report.function_errors(),
        report.timeouts(),
        run.redelivered_records,
        report.duplicates(),
        run.skipped,
        report.dead_letters().len(),
        report.wall_time().as_secs_f64()
    )
}

/// Runs setups side by side: they share nothing.
fn run_all<T: Copy + Send + Sync>(setups: &[(T, Setup)]) -> Vec<(T, Run)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            setups.iter().map(|(name, setup)| scope.spawn(move || (*name, run(*setup)))).collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    })
}

#[test]
#[ignore = "release-mode idempotency soak; run it with --release -- --ignored"]
fn two_hundred_thousand_events_under_redelivery_run_once_each() {
    let runs = run_all(&[
        ("stream keys", Setup::real(SOAK, Keying::Stream)),
        ("payload keys, producer retries", Setup::real(SOAK, Keying::Payload)),
    ]);
    for (name, run) in &runs {
        println!("{}", summary(name, run));
    }
    for (name, run) in &runs {
        assert_eq!(check(run), [], "{name}");
    }
}

/// The checks pass on a small run of the real processor, both ways it is keyed.
#[test]
fn the_checks_pass_on_a_small_run() {
    let runs = run_all(&[
        ("stream keys", Setup::real(SMALL, Keying::Stream)),
        ("payload keys, producer retries", Setup::real(SMALL, Keying::Payload)),
    ]);
    for (name, run) in &runs {
        println!("{}", summary(name, run));
        assert_eq!(check(run), [], "{name}");
    }
}

/// Each check fails on a processor broken in the way it guards against, and every check
/// is shown failing by one of them.
#[test]
fn each_check_fails_on_a_broken_processor() {
    let good = (0..BROKEN.user_records as u64)
        .find(|id| BROKEN.faults.kind(*id) == Kind::Good)
        .expect("a good record");
    let stream = Setup::real(BROKEN, Keying::Stream);
    let payload = Setup::real(BROKEN, Keying::Payload);
    let cases: Vec<(&str, Setup, Vec<Check>)> = vec![
        ("has no store", stream.broken(Broken::Unguarded), vec![Check::RanOnce]),
        (
            "has a store that answers every key done",
            stream.broken(Broken::StoreSaysDone),
            vec![Check::EveryGoodRan, Check::PoisonLetteredOnce],
        ),
        (
            "keys by the stream where the producer repeats events",
            payload.broken(Broken::KeyedByStream),
            vec![Check::RanOnce],
        ),
        (
            "keys by partition key",
            payload.broken(Broken::KeyedByPartitionKey),
            vec![Check::EveryGoodRan],
        ),
        ("injects no fault", stream.broken(Broken::NoFaults), vec![Check::Redelivered]),
        (
            "stalls on a record",
            stream.broken(Broken::StallsOn(good)),
            vec![Check::NothingDiscarded, Check::EveryGoodRan],
        ),
        ("fails everything", stream.broken(Broken::FailsEverything), vec![Check::Drained]),
        (
            "processes poison",
            stream.broken(Broken::PoisonSucceeds),
            vec![Check::PoisonLetteredOnce],
        ),
        (
            "rejects a good record",
            payload.broken(Broken::RejectsGood(good)),
            vec![Check::OnlyPoisonLettered, Check::EveryGoodRan],
        ),
    ];
    let setups: Vec<(&str, Setup)> = cases.iter().map(|(name, setup, _)| (*name, *setup)).collect();
    let runs = run_all(&setups);
    let mut shown = HashSet::new();
    for ((name, run), (_, _, expected)) in runs.iter().zip(&cases) {
        let failed = check(run);
        let failed_checks: HashSet<Check> = failed.iter().map(|(check, _)| *check).collect();
        for check in expected {
            assert!(failed_checks.contains(check), "{name}: {check:?} passed; failed: {failed:?}");
            shown.insert(*check);
        }
    }
    let not_shown: Vec<_> = CHECKS.iter().filter(|check| !shown.contains(check)).collect();
    assert!(not_shown.is_empty(), "never shown failing: {not_shown:?}");
}
