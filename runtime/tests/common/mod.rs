//! What the soaks share: their deterministic rolls, the stream a producer fills, the sink
//! that refuses some letters, and quiet injected panics. Each soak is a test crate of its
//! own and uses a part of this module.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::SystemTime;

use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::testing::{MemoryDeadLetter, SimulatedStream};

/// A roll of 64 bits from `x`: the same `x`, the same roll, so every run is the same run.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The value whose share (per 100,000) `roll` falls in, in order; `otherwise` past them.
pub fn pick<T: Copy, const N: usize>(roll: u64, shares: [(u64, T); N], otherwise: T) -> T {
    let mut roll = roll % 100_000;
    for (share, value) in shares {
        if roll < share {
            return value;
        }
        roll -= share;
    }
    otherwise
}

/// How the producer put the user records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Producer {
    /// Plain records, and 30% of the user records in KPL aggregates of 2 to 12 records of
    /// one key (as a producer batching per user would).
    PerKey,
    /// Plain records, and 30% of the user records in KPL aggregates of 2 to 12 records of
    /// many keys, all of one shard, under the first one's key (as the KPL packs them).
    Kpl,
}

/// Puts `user_records` records over keys `user-0` to `user-{keys - 1}`, per key in id
/// order, record `n` holding `data(n)`; answers each record's key.
pub fn fill(
    stream: &mut SimulatedStream,
    (user_records, keys): (usize, u64),
    producer: Producer,
    data: impl Fn(u64) -> Vec<u8>,
) -> Vec<u64> {
    let mut keys_of_shard = vec![Vec::new(); stream.shard_count()];
    for key in 0..keys {
        keys_of_shard[stream.shard_of(&format!("user-{key}"), None)].push(key);
    }
    let mut key_of = Vec::with_capacity(user_records);
    let mut id = 0u64;
    let mut roll = 7u64;
    let now = SystemTime::now();
    while (id as usize) < user_records {
        roll = splitmix(roll);
        let first = roll % keys;
        let group = if roll % 10 < 3 { 2 + (roll >> 8) % 11 } else { 1 };
        let group = group.min(user_records as u64 - id);
        let members: Vec<u64> = (0..group)
            .map(|n| match (producer, n) {
                (Producer::PerKey, _) | (Producer::Kpl, 0) => first,
                (Producer::Kpl, _) => {
                    let shard = &keys_of_shard[stream.shard_of(&format!("user-{first}"), None)];
                    shard[(splitmix(roll ^ n) % shard.len() as u64) as usize]
                }
            })
            .collect();
        let partition_keys: Vec<String> = members.iter().map(|k| format!("user-{k}")).collect();
        let data: Vec<Vec<u8>> = (id..id + group).map(&data).collect();
        if group == 1 {
            stream.put_record(&partition_keys[0], None, &data[0], now);
        } else {
            let records: Vec<UserRecord<'_>> = partition_keys
                .iter()
                .zip(&data)
                .map(|(key, data)| UserRecord { partition_key: key, explicit_hash_key: None, data })
                .collect();
            stream.put_aggregate(&records, now);
        }
        key_of.extend(members);
        id += group;
    }
    key_of
}

/// A sink that refuses `per_100k` of the letters it is sent.
pub fn refusing_sink(per_100k: u64) -> MemoryDeadLetter {
    let roll = AtomicU64::new(11);
    MemoryDeadLetter::refusing(move |_| {
        let x = splitmix(roll.fetch_add(1, Ordering::Relaxed));
        (x % 100_000 < per_100k).then(|| "throttled".to_owned())
    })
}

/// Keeps the panics the soaks inject (their message says "injected panic") out of the
/// output; any other panic prints as usual.
pub fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.to_string().contains("injected panic") {
                default_hook(info);
            }
        }));
    });
}
