//! The soak: a million user records across eight shards, plain and KPL-aggregated, under
//! the simulated event source mapping, with faults injected everywhere the framework has
//! to keep its promises. It proves at scale that nothing is lost and per-key order holds.
//!
//! Release mode only: `scripts/test-all` runs it with
//! `cargo test --release -p kinesis-processor --features testing --test soak -- --ignored`.
#![cfg(feature = "testing")]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::testing::{EventSourceMapping, MemoryDeadLetter, SimulatedStream};
use kinesis_processor::{kinesis_processor, RecordError};
use serde::Deserialize;

const USER_RECORDS: usize = 1_000_000;
const SHARDS: usize = 8;
const KEYS: u64 = 10_000;

/// What a record does, decided by its id: fixed fractions of each fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Rejected every time: 0.5%.
    Poison,
    /// Panics on its first attempt: 0.05%.
    Panics,
    /// Fails its first attempt, then succeeds: 5%.
    Transient,
    /// Hangs past the deadline on its first delivery, so its batch is cut: 0.005%.
    Slow,
    /// Waits 1 ms on a simulated downstream: 5%.
    Latent,
    Good,
}

fn kind(id: u64) -> Kind {
    match splitmix(id) % 100_000 {
        0..500 => Kind::Poison,
        500..550 => Kind::Panics,
        550..5_550 => Kind::Transient,
        5_550..5_555 => Kind::Slow,
        5_555..10_555 => Kind::Latent,
        _ => Kind::Good,
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// What the processing function observed, by record id.
struct Observed {
    attempts: Vec<AtomicU32>,
    /// The order of each record's first success (0: never succeeded).
    first_success: Vec<AtomicU64>,
    clock: AtomicU64,
}

#[derive(Deserialize)]
struct Event {
    id: u64,
}

#[kinesis_processor(concurrency = 16, deadline_margin = "500ms")]
async fn soak_processor(event: Event, observed: &Arc<Observed>) -> Result<(), RecordError> {
    let id = event.id as usize;
    let attempt = observed.attempts[id].fetch_add(1, Ordering::Relaxed) + 1;
    match kind(event.id) {
        Kind::Poison => return Err(RecordError::reject("poison record")),
        Kind::Panics if attempt == 1 => panic!("injected panic"),
        Kind::Transient if attempt == 1 => return Err(RecordError::retry("transient error")),
        Kind::Slow if attempt == 1 => tokio::time::sleep(Duration::from_secs(2)).await,
        Kind::Latent => tokio::time::sleep(Duration::from_millis(1)).await,
        _ => {}
    }
    let order = observed.clock.fetch_add(1, Ordering::Relaxed) + 1;
    let _ =
        observed.first_success[id].compare_exchange(0, order, Ordering::Relaxed, Ordering::Relaxed);
    Ok(())
}

/// Puts the user records: per key in id order, 30% of them in KPL aggregates of 2 to 12
/// records of one key (as a producer batching per user would).
fn fill(stream: &mut SimulatedStream) -> Vec<u64> {
    let mut keys = Vec::with_capacity(USER_RECORDS);
    let mut id = 0u64;
    let mut roll = 7u64;
    let now = SystemTime::now();
    while (id as usize) < USER_RECORDS {
        roll = splitmix(roll);
        let key = roll % KEYS;
        let partition_key = format!("user-{key}");
        let group = if roll % 10 < 3 { 2 + (roll >> 8) % 11 } else { 1 };
        let group = group.min(USER_RECORDS as u64 - id);
        let data: Vec<Vec<u8>> =
            (id..id + group).map(|n| format!(r#"{{"id":{n}}}"#).into_bytes()).collect();
        if group == 1 {
            stream.put_record(&partition_key, None, &data[0], now);
        } else {
            let records: Vec<UserRecord<'_>> = data
                .iter()
                .map(|d| UserRecord {
                    partition_key: &partition_key,
                    explicit_hash_key: None,
                    data: d,
                })
                .collect();
            stream.put_aggregate(&records, now);
        }
        keys.extend(std::iter::repeat_n(key, group as usize));
        id += group;
    }
    keys
}

/// A sink that refuses 2% of the letters it is sent.
fn refusing_sink() -> MemoryDeadLetter {
    let roll = AtomicU64::new(11);
    MemoryDeadLetter::refusing(move |_| {
        let x = splitmix(roll.fetch_add(1, Ordering::Relaxed));
        (x % 100 < 2).then(|| "throttled".to_owned())
    })
}

#[test]
#[ignore = "release-mode soak of a million records; scripts/test-all runs it"]
fn a_million_records_under_faults_lose_nothing_and_keep_per_key_order() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("injected panic") {
            default_hook(info);
        }
    }));

    let mut stream = SimulatedStream::new("soak", SHARDS);
    let keys = fill(&mut stream);
    let observed = Arc::new(Observed {
        attempts: (0..USER_RECORDS).map(|_| AtomicU32::new(0)).collect(),
        first_success: (0..USER_RECORDS).map(|_| AtomicU64::new(0)).collect(),
        clock: AtomicU64::new(0),
    });
    let sink = refusing_sink();
    let processor = soak_processor().state(observed.clone()).dead_letter(sink.clone());
    let mapping = EventSourceMapping::new()
        .batch_size(500)
        .parallelization_factor(2)
        .bisect_batch_on_function_error(true)
        .function_timeout(Duration::from_millis(1500))
        .dead_letters(sink);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = runtime.block_on(mapping.run(&stream, &processor));

    assert!(!report.stalled(), "the stream drained");
    assert!(report.discarded().is_empty(), "nothing reached the on-failure destination");
    assert_eq!(report.never_delivered(), 0);

    // Every poison record is in the dead-letter sink with its data; no good record is.
    let mut lettered = vec![false; USER_RECORDS];
    for letter in report.dead_letters() {
        let data = letter.data_bytes().expect("the letter carries the data");
        let id =
            serde_json::from_slice::<serde_json::Value>(&data).unwrap()["id"].as_u64().unwrap();
        assert_eq!(kind(id), Kind::Poison, "good record {id} was dead-lettered");
        lettered[id as usize] = true;
    }
    let mut poison = 0;
    for id in 0..USER_RECORDS as u64 {
        let first = observed.first_success[id as usize].load(Ordering::Relaxed);
        if kind(id) == Kind::Poison {
            poison += 1;
            assert!(lettered[id as usize], "poison record {id} is not in the sink");
            assert_eq!(first, 0);
        } else {
            assert!(first > 0, "good record {id} ({:?}) never succeeded", kind(id));
        }
    }

    // The slow records' batches were cut at the deadline, and the records delivered again.
    for id in (0..USER_RECORDS as u64).filter(|id| kind(*id) == Kind::Slow) {
        assert!(
            observed.attempts[id as usize].load(Ordering::Relaxed) >= 2,
            "slow record {id} was not cut"
        );
    }
    assert!(report.partial_responses() > 0);

    // Per partition key, first successes follow stream order.
    let mut last_of_key = vec![0u64; KEYS as usize];
    for (id, key) in keys.iter().enumerate() {
        let first = observed.first_success[id].load(Ordering::Relaxed);
        if first == 0 {
            continue;
        }
        let key = *key as usize;
        assert!(
            first > last_of_key[key],
            "user-{key}: record {id} succeeded before an earlier one"
        );
        last_of_key[key] = first;
    }

    println!(
        "soak: {USER_RECORDS} user records in {} Kinesis records over {SHARDS} shards; {} invocations \
         ({} partial), {} duplicate deliveries, {} dead letters ({poison} poison records), wall time {:.1} s",
        stream.len(),
        report.invocations(),
        report.partial_responses(),
        report.duplicates(),
        report.dead_letters().len(),
        report.wall_time().as_secs_f64()
    );
}
