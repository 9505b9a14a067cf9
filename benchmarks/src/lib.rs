//! Shared inputs for the benchmarks: generated records and events, the same for every
//! contender in a run.

use kinesis_processor::aggregation::{Aggregator, UserRecord};

/// A ~500-byte JSON click, varied by `n`.
pub fn click(n: usize) -> Vec<u8> {
    let padding = "x".repeat(380 + n % 40);
    format!(
        r#"{{"user_id":"user-{}","ip":"203.0.113.{}","url":"/page/{}","referrer":"https://example.com/{padding}","ts":{}}}"#,
        n % 977,
        n % 250,
        n % 131,
        1_764_126_000_000u64 + n as u64
    )
    .into_bytes()
}

/// One full aggregate (up to 1 MiB) of ~500-byte clicks, and how many it holds.
pub fn full_aggregate() -> (Vec<u8>, usize) {
    let mut aggregator = Aggregator::new();
    let keys: Vec<String> = (0..100).map(|k| format!("user-{k}")).collect();
    for n in 0.. {
        let data = click(n);
        let record = UserRecord {
            partition_key: &keys[n % keys.len()],
            explicit_hash_key: None,
            data: &data,
        };
        if let Some(full) = aggregator.add(record).expect("a click fits") {
            return (full.data, full.user_records);
        }
    }
    unreachable!()
}
