//! Generated records and events.

use kinesis_processor::aggregation::UserRecord;
use kinesis_processor::testing::Aggregator;
use kinesis_processor::testing::TestBatch;

/// A ~500-byte JSON click, varied by `n`.
pub fn click(n: usize) -> Vec<u8> {
    sized_click(n, 380 + n % 40)
}

/// A JSON click whose referrer carries `padding` extra bytes (about 100 + `padding` in all).
fn sized_click(n: usize, padding: usize) -> Vec<u8> {
    let padding = "x".repeat(padding);
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

/// The batches of the throughput comparison.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// 5,000 clicks of ~400 bytes: about 5.5 MB of event, near the 6 MB invocation limit.
    Large,
    /// 10,000 clicks of ~60 bytes.
    Small,
    /// 100 clicks of ~400 bytes.
    Hundred,
}

impl Shape {
    /// Every shape, in table order.
    pub const ALL: [Shape; 3] = [Shape::Large, Shape::Small, Shape::Hundred];

    /// The shape's name in tables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Large => "5000x400B",
            Shape::Small => "10000x60B",
            Shape::Hundred => "100x400B",
        }
    }

    /// How many records the batch holds.
    pub fn records(self) -> usize {
        match self {
            Shape::Large => 5_000,
            Shape::Small => 10_000,
            Shape::Hundred => 100,
        }
    }

    /// The click of record `n`: ~400 bytes, or ~60 for [`Shape::Small`].
    pub fn click(self, n: usize) -> Vec<u8> {
        match self {
            Shape::Small => compact_click(n),
            Shape::Large | Shape::Hundred => sized_click(n, 280 + n % 40),
        }
    }

    /// The partition key of record `n`: one of 977 users.
    pub fn partition_key(self, n: usize) -> String {
        format!("user-{}", n % 977)
    }

    /// The Lambda event: the shape's clicks in a realistic Kinesis envelope.
    pub fn event(self) -> Vec<u8> {
        (0..self.records())
            .fold(TestBatch::new(), |batch, n| {
                batch.bytes(&self.click(n)).partition_key(&self.partition_key(n))
            })
            .build()
    }

    /// The same clicks KPL-aggregated: full aggregates of up to 1 MiB, one Kinesis record
    /// each.
    pub fn aggregated_event(self) -> Vec<u8> {
        let mut aggregator = Aggregator::new();
        let mut batch = TestBatch::new();
        for n in 0..self.records() {
            let (data, key) = (self.click(n), self.partition_key(n));
            let record = UserRecord { partition_key: &key, explicit_hash_key: None, data: &data };
            if let Some(full) = aggregator.add(record).expect("a click fits") {
                batch = batch.bytes(&full.data);
            }
        }
        if let Some(last) = aggregator.finish() {
            batch = batch.bytes(&last.data);
        }
        batch.build()
    }
}

/// A ~60-byte click: short values, an empty referrer. Ten thousand of them in their
/// envelopes come to just under Lambda's 6 MiB invocation limit.
fn compact_click(n: usize) -> Vec<u8> {
    format!(
        r#"{{"user_id":"u{}","ip":"10.0.0.{}","url":"/{}","referrer":"","ts":{}}}"#,
        n % 100,
        n % 10,
        n % 10,
        n % 100
    )
    .into_bytes()
}
