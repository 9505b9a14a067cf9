//! The chunk soak: a chunk function (`chunk = 25`, several chunks at once, in-process
//! retries) writing to a downstream that takes a random part of every call, under the
//! simulated event source mapping over several shards and many partition keys, with the
//! faults a bulk writer meets: records the downstream does not take (answered as retryable
//! failures of those records), poison records the function rejects, records that do not
//! decode, panics, calls that fail whole, and calls slow past the deadline (their chunks are
//! cut, and Lambda delivers the records again). Plain records and KPL aggregates, twice as
//! the per-record soak runs them: aggregates of one key over two lanes per shard, and
//! aggregates of many keys (as the KPL packs them) over one lane.
//!
//! The function keeps per-key order itself, as a bulk writer must: the downstream takes at
//! most one record of a key per call (as `BatchWriteItem` takes one write of an item), and
//! when it does not take one, the later records of that key in the chunk are not sent and
//! fail with it. The checks see what the downstream took and what the function was called
//! with: nothing lost, per-key order of the downstream's first acceptances, no key in two
//! chunks at once, no chunk over 25 records, every chunk in stream order, no undecodable
//! record in a chunk, and the summaries' counts agreeing with what happened.
//!
//! The fast tests run in every `cargo test`; the bigger run is release-only:
//! `cargo test --release -p kinesis-processor --features testing --test chunk_soak -- --ignored`.
//!
//! Its checks are one function of a run, [`check`]; [`each_check_fails_on_a_broken_processor`]
//! shows that none of them passes whatever happens.
#![cfg(feature = "testing")]

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use common::{fill, pick, quiet_injected_panics, refusing_sink, splitmix, Producer};
use kinesis_processor::dead_letter::{DeadLetter, DeadLetterReason, DeadLetterSink};
use kinesis_processor::testing::{
    EventSourceMapping, Function, InvocationResult, MappingReport, MemoryDeadLetter,
    SimulatedStream,
};
use kinesis_processor::{
    kinesis_processor, BatchSummary, Chunk, ChunkError, Handler, Invocation, Processor,
    RecordError, RecordMeta,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// The most records a chunk may hold: the processors' `chunk`.
const CHUNK: usize = 25;

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
    Scale { user_records: 3_000, shards: 3, keys: 600, batch_size: 100, faults: Faults::SMALL };

/// The broken processors' runs: smaller, with every fault still occurring.
const BROKEN: Scale = Scale { user_records: 2_000, ..SMALL };

/// The release-mode run.
const SOAK: Scale =
    Scale { user_records: 200_000, shards: 8, keys: 10_000, batch_size: 100, faults: Faults::SOAK };

/// What a record does, decided by its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Rejected by the function every time: dead-lettered.
    Poison,
    /// Its data does not decode as an [`Event`]: dead-lettered before any chunk.
    Undecodable,
    /// The first call that holds it panics, after the downstream took its first round.
    Panics,
    /// The first call that holds it waits on the downstream past the deadline: cut.
    Slow,
    Good,
}

/// The share of each fault, per 100,000 records (the downstream's: per 100,000 records
/// sent, or calls).
#[derive(Clone, Copy, Debug)]
struct Faults {
    poison_per_100k: u64,
    undecodable_per_100k: u64,
    panics_per_100k: u64,
    slow_per_100k: u64,
    /// Records of a call the downstream does not take.
    refused_per_100k: u64,
    /// Calls the downstream fails whole (throttled).
    call_errors_per_100k: u64,
}

impl Faults {
    /// One record in 25 not taken by a call, so that two chunks in three have a partial
    /// failure and a retry, and few records still fail after three retries (their batch
    /// needs a second invocation).
    const SMALL: Faults = Faults {
        poison_per_100k: 1_000,
        undecodable_per_100k: 1_000,
        panics_per_100k: 300,
        slow_per_100k: 20,
        refused_per_100k: 4_000,
        call_errors_per_100k: 1_000,
    };

    /// Slow calls rarer: each holds its lane for a second.
    const SOAK: Faults = Faults {
        poison_per_100k: 500,
        undecodable_per_100k: 300,
        panics_per_100k: 50,
        slow_per_100k: 3,
        ..Faults::SMALL
    };

    /// Poison and undecodable records only: what a processor meets in any case.
    fn bad_records_only(self) -> Faults {
        Faults {
            panics_per_100k: 0,
            slow_per_100k: 0,
            refused_per_100k: 0,
            call_errors_per_100k: 0,
            ..self
        }
    }

    fn kind(&self, id: u64) -> Kind {
        pick(
            splitmix(id),
            [
                (self.poison_per_100k, Kind::Poison),
                (self.undecodable_per_100k, Kind::Undecodable),
                (self.panics_per_100k, Kind::Panics),
                (self.slow_per_100k, Kind::Slow),
            ],
            Kind::Good,
        )
    }
}

/// How the processor is broken, for showing that the checks catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    /// The real processor.
    No,
    /// Answers success for the records the downstream did not take.
    DropsUntaken,
    /// Answers success for poison records, without writing or rejecting them.
    SwallowsPoison,
    /// Rejects the records the downstream did not take, instead of failing them retryably.
    RejectsUntaken,
    /// Sends its whole chunk in one call, several records of a key together.
    WholeChunkPerCall,
    /// Writes in a task of its own and returns at once: its keys are still being written
    /// when their next chunk starts.
    ReturnsBeforeWritesLand,
    /// Built with `chunk = 50`.
    ChunksOfFifty,
    /// Takes the batch's records newest first (a front that reverses the event).
    ReadsNewestFirst,
    /// Decodes a payload type that accepts the undecodable records.
    Lenient,
    /// Sends poison records to the dead-letter sink itself and answers success.
    LettersPoisonItself,
    /// Fails every chunk whole, with a retryable error (and no in-process retries).
    FailsEverything,
    /// Injects no fault but poison and undecodable records.
    NoFaults,
}

/// A user record's data.
#[derive(Deserialize)]
struct Event {
    id: u64,
    #[allow(dead_code)]
    amount: u64,
}

/// What the broken processor decodes: any amount, so the undecodable records decode.
#[derive(Deserialize)]
struct LenientEvent {
    id: u64,
    #[allow(dead_code)]
    amount: Value,
}

trait Identified {
    fn id(&self) -> u64;
}

impl Identified for Event {
    fn id(&self) -> u64 {
        self.id
    }
}

impl Identified for LenientEvent {
    fn id(&self) -> u64 {
        self.id
    }
}

/// The downstream: takes a random part of each call, or fails it whole; keeps the order of
/// each record's first acceptance.
struct Downstream {
    refused_per_100k: u64,
    call_errors_per_100k: u64,
    calls: AtomicU64,
    call_errors: AtomicU64,
    clock: AtomicU64,
    /// The order of each record's first acceptance, by id (0: never taken).
    first_taken: Vec<AtomicU64>,
}

/// The downstream failed a whole call.
#[derive(Debug)]
struct Throttled;

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the downstream throttled the call")
    }
}

impl std::error::Error for Throttled {}

impl Downstream {
    /// Writes the records `ids` in one call: answers which it took, in order.
    async fn write(&self, ids: &[u64]) -> Result<Vec<bool>, Throttled> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let roll = splitmix(self.calls.fetch_add(1, Ordering::Relaxed) ^ 0xd0e5);
        if roll % 100_000 < self.call_errors_per_100k {
            self.call_errors.fetch_add(1, Ordering::Relaxed);
            return Err(Throttled);
        }
        let taken = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let taken = splitmix(roll ^ (n as u64 + 1)) % 100_000 >= self.refused_per_100k;
                if taken {
                    let order = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
                    let _ = self.first_taken[*id as usize].compare_exchange(
                        0,
                        order,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                taken
            })
            .collect();
        Ok(taken)
    }

    fn first_taken(&self, id: u64) -> u64 {
        self.first_taken[id as usize].load(Ordering::Relaxed)
    }
}

/// Calls of the chunk function that started, in one invocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Calls {
    calls: usize,
    records: usize,
    /// Calls that answered failures of some of their records.
    partial: usize,
}

/// What the function saw of its chunks.
#[derive(Default)]
struct Observed {
    /// By invocation (request id).
    calls: HashMap<String, Calls>,
    /// Sizes of chunks over [`CHUNK`] records, or empty.
    wrong_sizes: Vec<usize>,
    /// Chunks not in stream order: the first pair of records out of order in each.
    out_of_order: Vec<(String, String)>,
    /// Undecodable records the function was called with.
    undecodable_seen: Vec<u64>,
    /// Keys found in a call while another call held them.
    keys_in_two_chunks: Vec<String>,
    /// Calls that panicked.
    panics: usize,
    /// Records of KPL aggregates the function was called with.
    aggregated: usize,
}

/// What the processor shares: the faults, the downstream, and what it saw.
struct Soak {
    faults: Faults,
    broken: Broken,
    /// Calls of the chunk function that held each record, by id.
    attempts: Vec<AtomicU32>,
    downstream: Downstream,
    observed: Mutex<Observed>,
    /// Keys of the calls (and of the writes, for [`Broken::ReturnsBeforeWritesLand`]) in
    /// flight, with how many hold each.
    in_flight: Mutex<HashMap<String, u32>>,
    /// Writes still running after their call returned.
    outstanding: AtomicU64,
    /// The dead-letter sink, for [`Broken::LettersPoisonItself`].
    sink: MemoryDeadLetter,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Soak {
    fn new(scale: Scale, broken: Broken, sink: MemoryDeadLetter) -> Self {
        let faults = match broken {
            Broken::NoFaults => scale.faults.bad_records_only(),
            _ => scale.faults,
        };
        Soak {
            faults,
            broken,
            attempts: (0..scale.user_records).map(|_| AtomicU32::new(0)).collect(),
            downstream: Downstream {
                refused_per_100k: faults.refused_per_100k,
                call_errors_per_100k: faults.call_errors_per_100k,
                calls: AtomicU64::new(0),
                call_errors: AtomicU64::new(0),
                clock: AtomicU64::new(0),
                first_taken: (0..scale.user_records).map(|_| AtomicU64::new(0)).collect(),
            },
            observed: Mutex::default(),
            in_flight: Mutex::default(),
            outstanding: AtomicU64::new(0),
            sink,
        }
    }

    fn kind(&self, id: u64) -> Kind {
        self.faults.kind(id)
    }

    fn attempts(&self, id: u64) -> u32 {
        self.attempts[id as usize].load(Ordering::Relaxed)
    }
}

/// Holds keys in flight while it lives, noting any key another holder already has.
struct KeysInFlight {
    soak: Arc<Soak>,
    keys: Vec<String>,
}

impl KeysInFlight {
    fn enter(soak: &Arc<Soak>, keys: Vec<String>) -> Self {
        let mut taken = Vec::new();
        {
            let mut in_flight = lock(&soak.in_flight);
            for key in &keys {
                let holders = in_flight.entry(key.clone()).or_default();
                if *holders > 0 {
                    taken.push(key.clone());
                }
                *holders += 1;
            }
        }
        if !taken.is_empty() {
            lock(&soak.observed).keys_in_two_chunks.extend(taken);
        }
        KeysInFlight { soak: Arc::clone(soak), keys }
    }
}

impl Drop for KeysInFlight {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.soak.in_flight);
        for key in &self.keys {
            if let Some(holders) = in_flight.get_mut(key) {
                *holders -= 1;
                if *holders == 0 {
                    in_flight.remove(key);
                }
            }
        }
    }
}

/// One call of the chunk function: counted when it ends, however it ends (it returns,
/// panics, or the deadline cuts it); its partial failure only if it returned one.
struct Call {
    soak: Arc<Soak>,
    request_id: String,
    records: usize,
    partial: bool,
    returned: bool,
}

impl Drop for Call {
    fn drop(&mut self) {
        let mut observed = lock(&self.soak.observed);
        let calls = observed.calls.entry(std::mem::take(&mut self.request_id)).or_default();
        calls.calls += 1;
        calls.records += self.records;
        calls.partial += usize::from(self.returned && self.partial);
    }
}

/// Where a unit is in the stream: its sequence number (as a number: by length, then
/// digits) and sub-sequence number.
fn stream_position<'m>(meta: &RecordMeta<'m>) -> (usize, &'m str, Option<u64>) {
    let sequence_number = meta.sequence_number();
    (sequence_number.len(), sequence_number, meta.sub_sequence_number())
}

/// Notes what a call was given: its size, its order, undecodable and aggregated records,
/// each record's attempt; answers the call's guards.
fn begin<T: Identified>(
    items: &Chunk<'_, T>,
    invocation: &Invocation,
    soak: &Arc<Soak>,
) -> (Call, KeysInFlight) {
    let mut keys: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for record in items {
        let key = record.meta().partition_key();
        if seen.insert(key) {
            keys.push(key.to_owned());
        }
        soak.attempts[record.payload().id() as usize].fetch_add(1, Ordering::Relaxed);
    }
    {
        let mut observed = lock(&soak.observed);
        if items.is_empty() || items.len() > CHUNK {
            observed.wrong_sizes.push(items.len());
        }
        let positions: Vec<_> = items.iter().map(|record| stream_position(record.meta())).collect();
        if let Some(pair) = positions.windows(2).find(|pair| pair[0] >= pair[1]) {
            observed.out_of_order.push((format!("{:?}", pair[0]), format!("{:?}", pair[1])));
        }
        for record in items {
            let id = record.payload().id();
            if soak.kind(id) == Kind::Undecodable {
                observed.undecodable_seen.push(id);
            }
            observed.aggregated += usize::from(record.meta().is_aggregated());
        }
    }
    let call = Call {
        soak: Arc::clone(soak),
        request_id: invocation.request_id().to_owned(),
        records: items.len(),
        partial: false,
        returned: false,
    };
    (call, KeysInFlight::enter(soak, keys))
}

/// A record to write: its position in the chunk, id and key.
#[derive(Clone, Debug)]
struct Item {
    position: usize,
    id: u64,
    key: String,
}

/// Writes `items` (in stream order) in rounds of at most one record per key, a key's next
/// record only once the downstream took the one before: answers the items not taken (not
/// taken, or held back behind one of their key that was not taken). With `panics`, panics
/// after the first round.
async fn write_in_rounds(
    soak: &Soak,
    items: &[Item],
    panics: bool,
) -> Result<Vec<usize>, Throttled> {
    let mut queue_of: HashMap<&str, usize> = HashMap::new();
    let mut queues: Vec<VecDeque<usize>> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let queue = *queue_of.entry(&item.key).or_insert_with(|| {
            queues.push(VecDeque::new());
            queues.len() - 1
        });
        queues[queue].push_back(index);
    }
    let mut not_taken = Vec::new();
    let mut rounds = 0;
    loop {
        let mut round: Vec<(usize, usize)> = queues
            .iter()
            .enumerate()
            .filter_map(|(queue, items)| items.front().map(|index| (*index, queue)))
            .collect();
        if round.is_empty() {
            break;
        }
        round.sort_unstable();
        let ids: Vec<u64> = round.iter().map(|(index, _)| items[*index].id).collect();
        let taken = soak.downstream.write(&ids).await?;
        for ((_, queue), taken) in round.into_iter().zip(taken) {
            if taken {
                queues[queue].pop_front();
            } else {
                not_taken.extend(queues[queue].drain(..));
            }
        }
        rounds += 1;
        if panics && rounds == 1 {
            break;
        }
    }
    if panics {
        lock(&soak.observed).panics += 1;
        panic!("injected panic");
    }
    Ok(not_taken)
}

/// The chunk function's work, for every processor of the soak.
async fn write_chunk<T: Identified>(
    items: Chunk<'_, T>,
    invocation: &Invocation,
    soak: &Arc<Soak>,
) -> Result<(), ChunkError> {
    let (mut call, keys) = begin(&items, invocation, soak);
    let result = store_items(&items, soak, invocation, keys).await;
    call.partial = result.as_ref().is_err_and(|(partial, _)| *partial);
    call.returned = true;
    result.map_err(|(_, error)| error)
}

/// Writes the chunk's records and rejects its poison; answers whether only some records
/// failed, with the error.
async fn store_items<T: Identified>(
    items: &Chunk<'_, T>,
    soak: &Arc<Soak>,
    invocation: &Invocation,
    keys: KeysInFlight,
) -> Result<(), (bool, ChunkError)> {
    let broken = soak.broken;
    let whole = |error: RecordError| (false, ChunkError::whole(error));
    if broken == Broken::FailsEverything {
        return Err(whole(RecordError::retry("the downstream is down")));
    }
    let first_call = |id: u64, kind: Kind| soak.kind(id) == kind && soak.attempts(id) == 1;
    if items.payloads().any(|payload| first_call(payload.id(), Kind::Slow)) {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let panics = items.payloads().any(|payload| first_call(payload.id(), Kind::Panics));
    let mut failures = Vec::new();
    let mut to_write = Vec::new();
    for (position, record) in items.iter().enumerate() {
        let id = record.payload().id();
        if soak.kind(id) == Kind::Poison {
            match broken {
                Broken::SwallowsPoison => {}
                Broken::LettersPoisonItself => {
                    letter_itself(soak, record.meta(), id, invocation).await
                }
                _ => failures.push((position, RecordError::reject("poison record"))),
            }
            continue;
        }
        let key = record.meta().partition_key().to_owned();
        to_write.push(Item { position, id, key });
    }
    let not_taken: Vec<usize> = match broken {
        Broken::ReturnsBeforeWritesLand => {
            write_later(soak, to_write.clone(), keys);
            Vec::new()
        }
        Broken::WholeChunkPerCall => {
            let ids: Vec<u64> = to_write.iter().map(|item| item.id).collect();
            let taken = soak.downstream.write(&ids).await.map_err(|e| whole(e.into()))?;
            (0..to_write.len()).filter(|index| !taken[*index]).collect()
        }
        _ => write_in_rounds(soak, &to_write, panics).await.map_err(|e| whole(e.into()))?,
    };
    for index in not_taken {
        let position = to_write[index].position;
        match broken {
            Broken::DropsUntaken => {}
            Broken::RejectsUntaken => {
                failures.push((position, RecordError::reject("the downstream did not take it")))
            }
            _ => failures.push((position, RecordError::retry("the downstream did not take it"))),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err((true, ChunkError::records(failures)))
    }
}

/// [`Broken::ReturnsBeforeWritesLand`]: writes the items in a task of its own, until the
/// downstream took them all, holding their keys until then.
fn write_later(soak: &Arc<Soak>, mut items: Vec<Item>, keys: KeysInFlight) {
    let soak = Arc::clone(soak);
    soak.outstanding.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        while !items.is_empty() {
            if let Ok(not_taken) = write_in_rounds(&soak, &items, false).await {
                items = not_taken.into_iter().map(|index| items[index].clone()).collect();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(keys);
        soak.outstanding.fetch_sub(1, Ordering::Relaxed);
    });
}

/// [`Broken::LettersPoisonItself`]: sends a poison record's letter to the sink by itself.
async fn letter_itself(soak: &Soak, meta: &RecordMeta<'_>, id: u64, invocation: &Invocation) {
    let data = base64::engine::general_purpose::STANDARD.encode(format!(r#"{{"id":{id}}}"#));
    let letter: DeadLetter = serde_json::from_value(json!({
        "version": 1,
        "reason": "rejected",
        "error": "poison record",
        "attempts": 1,
        "functionName": "store",
        "requestId": invocation.request_id(),
        "eventSourceArn": null,
        "shardId": null,
        "sequenceNumber": meta.sequence_number(),
        "subSequenceNumber": meta.sub_sequence_number(),
        "partitionKey": meta.partition_key(),
        "explicitHashKey": null,
        "approximateArrivalTimestamp": null,
        "aggregated": meta.is_aggregated(),
        "data": data,
    }))
    .expect("a dead letter");
    let _ = soak.sink.send(&[letter]).await;
}

/// The soak's processor.
#[kinesis_processor(chunk = 25, concurrency = 4, retries = 3, deadline_margin = "500ms")]
async fn store(
    items: Chunk<Event>,
    invocation: &Invocation,
    soak: &Arc<Soak>,
) -> Result<(), ChunkError> {
    write_chunk(items, invocation, soak).await
}

/// [`Broken::ChunksOfFifty`].
#[kinesis_processor(chunk = 50, concurrency = 4, retries = 3, deadline_margin = "500ms")]
async fn store_fifty(
    items: Chunk<Event>,
    invocation: &Invocation,
    soak: &Arc<Soak>,
) -> Result<(), ChunkError> {
    write_chunk(items, invocation, soak).await
}

/// [`Broken::Lenient`].
#[kinesis_processor(chunk = 25, concurrency = 4, retries = 3, deadline_margin = "500ms")]
async fn store_lenient(
    items: Chunk<LenientEvent>,
    invocation: &Invocation,
    soak: &Arc<Soak>,
) -> Result<(), ChunkError> {
    write_chunk(items, invocation, soak).await
}

/// A user record's data: an [`Event`], or for an undecodable record, one whose amount is
/// not a number.
fn data_of(id: u64, faults: &Faults) -> Vec<u8> {
    match faults.kind(id) {
        Kind::Undecodable => format!(r#"{{"id":{id},"amount":"{id} units"}}"#).into_bytes(),
        _ => format!(r#"{{"id":{id},"amount":{}}}"#, id % 1_000).into_bytes(),
    }
}

/// A processor answering as the Lambda loop does (as [`Function`] for [`Processor`]
/// does), each invocation with a request id of its own, keeping each invocation's summary.
struct Summarised<H: Handler> {
    processor: Processor<H>,
    invocations: AtomicU64,
    summaries: Mutex<Vec<(String, BatchSummary)>>,
}

impl<H: Handler> Function for Summarised<H> {
    async fn invoke(&self, payload: Vec<u8>, timeout: Duration) -> InvocationResult {
        let request_id = format!("invocation-{}", self.invocations.fetch_add(1, Ordering::Relaxed));
        let respond = self.processor.respond(payload, &request_id, timeout);
        match tokio::time::timeout(timeout, respond).await {
            Ok(Ok(outcome)) => {
                let response = outcome.lambda_response();
                lock(&self.summaries).push((request_id, outcome.summary().clone()));
                InvocationResult::Response(response)
            }
            Ok(Err(error)) => InvocationResult::Error(error.to_string()),
            Err(_) => InvocationResult::TimedOut,
        }
    }
}

/// A front that hands the processor the batch's records newest first.
struct NewestFirst<'f, F>(&'f F);

impl<F: Function> Function for NewestFirst<'_, F> {
    async fn invoke(&self, payload: Vec<u8>, timeout: Duration) -> InvocationResult {
        let mut event: Value = serde_json::from_slice(&payload).unwrap();
        if let Some(records) = event["Records"].as_array_mut() {
            records.reverse();
        }
        self.0.invoke(serde_json::to_vec(&event).unwrap(), timeout).await
    }
}

/// How the run is set up.
#[derive(Clone, Copy, Debug)]
struct Setup {
    scale: Scale,
    producer: Producer,
    parallelization_factor: usize,
    broken: Broken,
}

impl Setup {
    fn real(scale: Scale, producer: Producer, parallelization_factor: usize) -> Self {
        Setup { scale, producer, parallelization_factor, broken: Broken::No }
    }

    fn broken(self, broken: Broken) -> Self {
        Setup { broken, ..self }
    }
}

/// One run of the mapping over a filled stream, and what the function and the downstream
/// saw.
struct Run {
    scale: Scale,
    report: MappingReport,
    soak: Arc<Soak>,
    /// Each user record's key, by id.
    keys: Vec<u64>,
    /// Each invocation's request id and summary.
    summaries: Vec<(String, BatchSummary)>,
    kinesis_records: usize,
    /// Deliveries of Kinesis records over the run.
    deliveries: u64,
    lanes: usize,
}

/// Fills a stream and runs a processor over it: batches of 100, bisection on, ten retries,
/// a record age of an hour, a 1.5 s timeout against the processor's margin of 0.5 s and
/// the slow calls' 2 s; and an invocation budget of three per batch, where a healthy run
/// needs about 1.2.
fn run(setup: Setup) -> Run {
    quiet_injected_panics();
    let Setup { scale, producer, parallelization_factor, broken } = setup;
    let sink = refusing_sink(2_000);
    let soak = Arc::new(Soak::new(scale, broken, sink.clone()));
    let mut stream = SimulatedStream::new("chunk-soak", scale.shards);
    let keys = fill(&mut stream, (scale.user_records, scale.keys), producer, |id| {
        data_of(id, &soak.faults)
    });
    let lanes = scale.shards * parallelization_factor;
    let batches = stream.len().div_ceil(scale.batch_size) + lanes;
    let mapping = EventSourceMapping::new()
        .batch_size(scale.batch_size)
        .parallelization_factor(parallelization_factor)
        .bisect_batch_on_function_error(true)
        .maximum_retry_attempts(10)
        .maximum_record_age(Some(Duration::from_secs(3600)))
        .function_timeout(Duration::from_millis(1500))
        .max_invocations(3 * batches + 20)
        .dead_letters(sink.clone());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (report, summaries) = match broken {
        Broken::ChunksOfFifty => {
            let processor = store_fifty().state(soak.clone()).dead_letter(sink);
            simulate_on(&runtime, &mapping, &stream, processor, false)
        }
        Broken::Lenient => {
            let processor = store_lenient().state(soak.clone()).dead_letter(sink);
            simulate_on(&runtime, &mapping, &stream, processor, false)
        }
        _ => {
            let processor = store().state(soak.clone()).dead_letter(sink);
            // Without in-process retries, failing chunks cost no backoff: the run stalls fast.
            let processor =
                if broken == Broken::FailsEverything { processor.retries(0) } else { processor };
            let newest_first = broken == Broken::ReadsNewestFirst;
            simulate_on(&runtime, &mapping, &stream, processor, newest_first)
        }
    };
    // Writes still running after their calls returned land before the checks.
    runtime.block_on(async {
        while soak.outstanding.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let deliveries = (0..stream.shard_count())
        .flat_map(|shard| stream.records(shard))
        .map(|record| u64::from(report.deliveries(&record.sequence_number)))
        .sum();
    Run { scale, report, soak, keys, summaries, kinesis_records: stream.len(), deliveries, lanes }
}

/// Runs `processor`, through [`Summarised`] (and [`NewestFirst`]), over the stream.
fn simulate_on<H: Handler>(
    runtime: &tokio::runtime::Runtime,
    mapping: &EventSourceMapping,
    stream: &SimulatedStream,
    processor: Processor<H>,
    newest_first: bool,
) -> (MappingReport, Vec<(String, BatchSummary)>) {
    let function =
        Summarised { processor, invocations: AtomicU64::new(0), summaries: Mutex::default() };
    let report = if newest_first {
        runtime.block_on(mapping.run(stream, &NewestFirst(&function)))
    } else {
        runtime.block_on(mapping.run(stream, &function))
    };
    (report, function.summaries.into_inner().unwrap_or_else(PoisonError::into_inner))
}

/// What the soak asserts of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Check {
    /// The stream drained within the invocation budget, every record delivered.
    Drained,
    /// Nothing reached the on-failure destination.
    NothingDiscarded,
    /// Every record was taken by the downstream or is in the dead-letter sink.
    NothingLost,
    /// Only poison records (reason `rejected`) and undecodable ones (`decode_error`) are in
    /// the sink.
    OnlyBadLettered,
    /// Per key, the downstream first took the records in stream order.
    PerKeyOrder,
    /// No key was in two chunks in flight at once.
    OneChunkPerKey,
    /// No chunk held more than 25 records (or none).
    ChunkSize,
    /// Every chunk's records were in stream order.
    ChunkInStreamOrder,
    /// No undecodable record reached the function.
    UndecodableNeverInChunk,
    /// The summaries agree with what happened: Kinesis records with the mapping's
    /// deliveries, chunk calls, their records and partial failures with what the function
    /// saw in each invocation, dead-lettered records with the sink.
    SummariesAgree,
    /// The faults happened: partial chunk failures, calls failed whole, panics, slow calls
    /// cut at the deadline, partial responses, redeliveries, letters of both kinds, KPL
    /// aggregates' user records in chunks.
    FaultsExercised,
}

const CHECKS: [Check; 11] = [
    Check::Drained,
    Check::NothingDiscarded,
    Check::NothingLost,
    Check::OnlyBadLettered,
    Check::PerKeyOrder,
    Check::OneChunkPerKey,
    Check::ChunkSize,
    Check::ChunkInStreamOrder,
    Check::UndecodableNeverInChunk,
    Check::SummariesAgree,
    Check::FaultsExercised,
];

/// The first few of a list, for a failure's message.
fn first<T: std::fmt::Debug>(items: &[T]) -> String {
    format!("{} in all, first {:?}", items.len(), &items[..items.len().min(5)])
}

/// The checks a run fails, each with what was seen; empty when it kept every promise.
fn check(run: &Run) -> Vec<(Check, String)> {
    let Run { scale, report, soak, keys, summaries, deliveries, .. } = run;
    let ids = 0..scale.user_records as u64;
    let downstream = &soak.downstream;
    let observed = lock(&soak.observed);
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

    let mut lettered = vec![false; scale.user_records];
    let mut wrong_letters = Vec::new();
    let mut letters_of = HashMap::new();
    for letter in report.dead_letters() {
        *letters_of.entry(letter.reason).or_insert(0usize) += 1;
        let id = letter
            .data_bytes()
            .and_then(|data| serde_json::from_slice::<Value>(&data).ok())
            .and_then(|event| event["id"].as_u64())
            .filter(|id| *id < scale.user_records as u64);
        if let Some(id) = id {
            lettered[id as usize] = true;
        }
        match (id.map(|id| soak.kind(id)), letter.reason) {
            (Some(Kind::Poison), DeadLetterReason::Rejected)
            | (Some(Kind::Undecodable), DeadLetterReason::DecodeError) => {}
            (_, reason) => wrong_letters.push((id, reason)),
        }
    }
    let lost: Vec<u64> = ids
        .clone()
        .filter(|id| !lettered[*id as usize] && downstream.first_taken(*id) == 0)
        .collect();
    if !lost.is_empty() {
        fail(Check::NothingLost, format!("records neither taken nor lettered: {}", first(&lost)));
    }
    if !wrong_letters.is_empty() {
        fail(
            Check::OnlyBadLettered,
            format!("other letters (id, kind): {}", first(&wrong_letters)),
        );
    }

    let mut last_of_key = vec![0u64; scale.keys as usize];
    let mut out_of_order = Vec::new();
    for (id, key) in keys.iter().enumerate() {
        let taken = downstream.first_taken(id as u64);
        if taken == 0 {
            continue;
        }
        let key = *key as usize;
        if taken < last_of_key[key] {
            out_of_order.push((format!("user-{key}"), id));
        }
        last_of_key[key] = last_of_key[key].max(taken);
    }
    if !out_of_order.is_empty() {
        fail(
            Check::PerKeyOrder,
            format!("records taken before an earlier one of their key: {}", first(&out_of_order)),
        );
    }
    if !observed.keys_in_two_chunks.is_empty() {
        fail(
            Check::OneChunkPerKey,
            format!("keys in two chunks at once: {}", first(&observed.keys_in_two_chunks)),
        );
    }
    if !observed.wrong_sizes.is_empty() {
        fail(Check::ChunkSize, format!("chunks of these sizes: {}", first(&observed.wrong_sizes)));
    }
    if !observed.out_of_order.is_empty() {
        fail(
            Check::ChunkInStreamOrder,
            format!("chunks out of stream order: {}", first(&observed.out_of_order)),
        );
    }
    if !observed.undecodable_seen.is_empty() {
        fail(
            Check::UndecodableNeverInChunk,
            format!("undecodable records in chunks: {}", first(&observed.undecodable_seen)),
        );
    }

    let mut disagreements = Vec::new();
    let records: u64 = summaries.iter().map(|(_, summary)| summary.records as u64).sum();
    if records != *deliveries {
        disagreements.push(format!("{records} Kinesis records summed, {deliveries} delivered"));
    }
    let by_request: HashMap<&str, &BatchSummary> =
        summaries.iter().map(|(id, summary)| (id.as_str(), summary)).collect();
    for (request_id, calls) in &observed.calls {
        let Some(summary) = by_request.get(request_id.as_str()) else {
            disagreements.push(format!("{request_id}: calls {calls:?} and no summary"));
            continue;
        };
        let counted = Calls {
            calls: summary.chunks,
            records: summary.chunk_records,
            partial: summary.partial_chunk_failures,
        };
        if counted != *calls {
            disagreements
                .push(format!("{request_id}: summary {counted:?}, function saw {calls:?}"));
        }
    }
    for (request_id, summary) in summaries {
        if summary.chunks > 0 && !observed.calls.contains_key(request_id) {
            disagreements.push(format!(
                "a summary of {} chunk calls the function never saw",
                summary.chunks
            ));
        }
    }
    for reason in [DeadLetterReason::Rejected, DeadLetterReason::DecodeError] {
        let summed: usize =
            summaries.iter().map(|(_, summary)| summary.dead_lettered(reason)).sum();
        let in_sink = letters_of.get(&reason).copied().unwrap_or(0);
        if summed != in_sink {
            disagreements.push(format!(
                "{summed} records {} summed, {in_sink} in the sink",
                reason.as_str()
            ));
        }
    }
    if !disagreements.is_empty() {
        fail(Check::SummariesAgree, first(&disagreements));
    }

    let summed = |count: fn(&BatchSummary) -> usize| -> usize {
        summaries.iter().map(|(_, summary)| count(summary)).sum()
    };
    let of_kind = |kind| ids.clone().filter(move |id| soak.kind(*id) == kind);
    let slow: Vec<u64> = of_kind(Kind::Slow).collect();
    let uncut: Vec<u64> = slow.iter().copied().filter(|id| soak.attempts(*id) < 2).collect();
    let exercised = [
        ("partial chunk failures", summed(|s| s.partial_chunk_failures)),
        ("calls failed whole", downstream.call_errors.load(Ordering::Relaxed) as usize),
        ("panics", observed.panics),
        ("slow records", slow.len()),
        ("records timed out", summed(|s| s.timed_out)),
        ("partial responses", report.partial_responses()),
        ("duplicate deliveries", report.duplicates() as usize),
        ("poison letters", letters_of.get(&DeadLetterReason::Rejected).copied().unwrap_or(0)),
        (
            "undecodable letters",
            letters_of.get(&DeadLetterReason::DecodeError).copied().unwrap_or(0),
        ),
        ("aggregated records in chunks", observed.aggregated),
    ];
    if exercised.iter().any(|(_, n)| *n == 0) || !uncut.is_empty() {
        fail(Check::FaultsExercised, format!("{exercised:?}; slow records never cut: {uncut:?}"));
    }
    failed
}

fn summary(name: &str, run: &Run) -> String {
    let report = &run.report;
    let summed = |count: fn(&BatchSummary) -> usize| -> usize {
        run.summaries.iter().map(|(_, summary)| count(summary)).sum()
    };
    let (chunks, chunk_records) = (summed(|s| s.chunks), summed(|s| s.chunk_records));
    format!(
        "chunk soak, {name}: {} user records in {} Kinesis records over {} shards ({} lanes); \
         {} invocations ({} partial), {chunks} chunk calls of {:.1} records on average ({} \
         partial failures), {} downstream calls ({} failed whole), {} panics, {} records \
         timed out, {} duplicate deliveries, {} dead letters, wall time {:.1} s",
        run.scale.user_records,
        run.kinesis_records,
        run.scale.shards,
        run.lanes,
        report.invocations(),
        report.partial_responses(),
        chunk_records as f64 / chunks.max(1) as f64,
        summed(|s| s.partial_chunk_failures),
        run.soak.downstream.calls.load(Ordering::Relaxed),
        run.soak.downstream.call_errors.load(Ordering::Relaxed),
        lock(&run.soak.observed).panics,
        summed(|s| s.timed_out),
        report.duplicates(),
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
#[ignore = "release-mode chunk soak; scripts/test-all runs it"]
fn two_hundred_thousand_records_in_chunks_lose_nothing_and_keep_per_key_order() {
    let runs = run_all(&[
        ("plain and per-key aggregates, two lanes", Setup::real(SOAK, Producer::PerKey, 2)),
        ("KPL aggregates of many keys, one lane", Setup::real(SOAK, Producer::Kpl, 1)),
    ]);
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
    let runs = run_all(&[
        ("plain and per-key aggregates, two lanes", Setup::real(SMALL, Producer::PerKey, 2)),
        ("KPL aggregates of many keys, one lane", Setup::real(SMALL, Producer::Kpl, 1)),
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
    let plain = Setup::real(BROKEN, Producer::PerKey, 2);
    let cases: Vec<(&str, Broken, Vec<Check>)> = vec![
        ("drops what the downstream did not take", Broken::DropsUntaken, vec![Check::NothingLost]),
        ("swallows poison records", Broken::SwallowsPoison, vec![Check::NothingLost]),
        (
            "rejects what the downstream did not take",
            Broken::RejectsUntaken,
            vec![Check::OnlyBadLettered],
        ),
        ("sends its whole chunk in one call", Broken::WholeChunkPerCall, vec![Check::PerKeyOrder]),
        (
            "returns before its writes land",
            Broken::ReturnsBeforeWritesLand,
            vec![Check::OneChunkPerKey],
        ),
        ("takes chunks of 50", Broken::ChunksOfFifty, vec![Check::ChunkSize]),
        ("reads the batch newest first", Broken::ReadsNewestFirst, vec![Check::ChunkInStreamOrder]),
        (
            "decodes what its payload type should refuse",
            Broken::Lenient,
            vec![Check::UndecodableNeverInChunk],
        ),
        (
            "dead-letters poison itself and answers success",
            Broken::LettersPoisonItself,
            vec![Check::SummariesAgree],
        ),
        (
            "fails everything",
            Broken::FailsEverything,
            vec![Check::Drained, Check::NothingDiscarded, Check::NothingLost],
        ),
        ("injects no fault", Broken::NoFaults, vec![Check::FaultsExercised]),
    ];
    let setups: Vec<(&str, Setup)> =
        cases.iter().map(|(name, broken, _)| (*name, plain.broken(*broken))).collect();
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
