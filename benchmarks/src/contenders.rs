//! The code under comparison, shared by the criterion benches, the Lambda handlers and the
//! profiling example: the framework with a no-op function, the loop a careful user writes
//! by hand today, and the irreducible work.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use kinesis_processor::aggregation::{deaggregate, Deaggregated};
use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
use serde::Deserialize;

/// The business record: every field owned, as users write it.
#[derive(Deserialize)]
pub struct Click {
    /// Who clicked.
    pub user_id: String,
    /// From where.
    pub ip: String,
    /// What.
    pub url: String,
    /// Coming from.
    pub referrer: String,
    /// When, in epoch milliseconds.
    pub ts: u64,
}

/// Reads every field, as business logic would, without doing anything with them.
pub fn touch(click: &Click) -> usize {
    click.user_id.len()
        + click.ip.len()
        + click.url.len()
        + click.referrer.len()
        + (click.ts as usize & 1)
}

/// The time left before the deadline that the framework is given: the most a Lambda
/// invocation has, as `process` gives. The benchmarks call
/// [`Processor::respond`](kinesis_processor::Processor::respond), which is what the Lambda
/// loop runs: the response and the counts, without the per-record rows of `process`.
pub const REMAINING: std::time::Duration = kinesis_processor::SYNTHETIC_TIMEOUT;

/// The framework with no-op business logic (`concurrency = 1`, the default).
#[kinesis_processor(retries = 0)]
pub async fn noop(click: Click, meta: &RecordMeta) -> Result<(), RecordError> {
    std::hint::black_box(touch(&click) + meta.partition_key().len() + meta.sequence_number().len());
    Ok(())
}

/// The hand-written handler: `serde_json` into `aws_lambda_events::KinesisEvent`, a
/// `serde_json` decode per record, and a `KinesisEventResponse` that reports the first
/// record that fails (and so every record after it).
pub fn baseline_response(event: &KinesisEvent) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    for record in &event.records {
        match serde_json::from_slice::<Click>(&record.kinesis.data.0) {
            Ok(click) => {
                let key = record.kinesis.partition_key.len();
                std::hint::black_box(touch(&click) + key);
            }
            Err(_) => {
                response.add_failure(record.kinesis.sequence_number.clone());
                break;
            }
        }
    }
    response
}

/// [`baseline_response`] from payload bytes to response bytes.
pub fn baseline(payload: &[u8]) -> Vec<u8> {
    let event: KinesisEvent = serde_json::from_slice(payload).expect("a Kinesis event");
    serde_json::to_vec(&baseline_response(&event)).expect("a response")
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    kinesis: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    data: &'a str,
}

/// Each record's `data` field (base64 text), found by scanning the envelope for it alone:
/// one UTF-8 check of the payload, then `serde_json` borrowing from the text, as the
/// framework parses.
pub fn data_fields(payload: &[u8]) -> Vec<&str> {
    let text = std::str::from_utf8(payload).expect("UTF-8");
    let envelope: Envelope<'_> = serde_json::from_str(text).expect("a Kinesis event");
    envelope.records.into_iter().map(|entry| entry.kinesis.data).collect()
}

/// The irreducible work, with the very primitives the framework uses: scan the envelope for
/// each `data` ([`data_fields`]), base64-decode it into a reused buffer with `base64-simd`,
/// check it is UTF-8 and decode the click from the text; nothing else. The ratio of the
/// framework to it is the cost of the framework itself, not of faster or slower parts.
pub fn irreducible(payload: &[u8], buffer: &mut Vec<u8>) -> usize {
    let mut total = 0;
    for data in data_fields(payload) {
        buffer.clear();
        base64_simd::STANDARD.decode_append(data, buffer).expect("base64");
        let text = std::str::from_utf8(buffer).expect("UTF-8");
        total += touch(&serde_json::from_str::<Click>(text).expect("a click"));
    }
    total
}

/// The irreducible work done as each record is found: the same scan, base64 and click
/// decoding as [`irreducible`], but each record's data decoded the moment the scan reaches
/// it, while its text is in cache, instead of after the whole envelope is scanned. The
/// least the work can cost; the framework, which must parse the whole batch before it runs
/// the first record, decodes the base64 at that moment too.
pub fn irreducible_streaming(payload: &[u8], buffer: &mut Vec<u8>) -> usize {
    let text = std::str::from_utf8(payload).expect("UTF-8");
    let mut total = 0;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut found = Found { buffer, total: &mut total };
    serde::de::DeserializeSeed::deserialize(EnvelopeSeed(&mut found), &mut deserializer)
        .expect("a Kinesis event");
    total
}

/// Where [`irreducible_streaming`] decodes each record it finds.
struct Found<'f> {
    buffer: &'f mut Vec<u8>,
    total: &'f mut usize,
}

impl Found<'_> {
    fn record(&mut self, data: &str) {
        self.buffer.clear();
        base64_simd::STANDARD.decode_append(data, self.buffer).expect("base64");
        let text = std::str::from_utf8(self.buffer).expect("UTF-8");
        *self.total += touch(&serde_json::from_str::<Click>(text).expect("a click"));
    }
}

/// Visits the one member a seed looks for in an object, and skips the others.
macro_rules! member_seed {
    ($seed:ident, $name:literal, |$found:ident, $map:ident| $take:expr) => {
        struct $seed<'s, 'f>(&'s mut Found<'f>);

        impl<'de> serde::de::DeserializeSeed<'de> for $seed<'_, '_> {
            type Value = ();

            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_map(self)
            }
        }

        impl<'de> serde::de::Visitor<'de> for $seed<'_, '_> {
            type Value = ();

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut $map: A) -> Result<(), A::Error> {
                let $found = self.0;
                while let Some(key) = $map.next_key::<&str>()? {
                    if key == $name {
                        $take;
                    } else {
                        $map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(())
            }
        }
    };
}

member_seed!(EnvelopeSeed, "Records", |found, map| map.next_value_seed(RecordsSeed(found))?);
member_seed!(EntrySeed, "kinesis", |found, map| map.next_value_seed(DataSeed(found))?);
member_seed!(DataSeed, "data", |found, map| found.record(map.next_value::<&str>()?));

struct RecordsSeed<'s, 'f>(&'s mut Found<'f>);

impl<'de> serde::de::DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(EntrySeed(self.0))?.is_some() {}
        Ok(())
    }
}

/// The irreducible work as first written here, with the usual crates and none of the
/// framework's choices: `serde_json` from bytes (each borrowed string UTF-8-checked on its
/// own), the `base64` crate, the click from bytes. Kept beside [`irreducible`] so that the
/// table shows how much of the framework's ratio to it is the yardstick.
pub fn irreducible_usual(payload: &[u8], buffer: &mut Vec<u8>) -> usize {
    use base64::Engine as _;
    let envelope: Envelope<'_> = serde_json::from_slice(payload).expect("a Kinesis event");
    let mut total = 0;
    for entry in envelope.records {
        buffer.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(entry.kinesis.data, buffer)
            .expect("base64");
        total += touch(&serde_json::from_slice::<Click>(buffer).expect("a click"));
    }
    total
}

/// KPL de-aggregation alone, as the Python deaggregator does it: find each record's `data`,
/// base64-decode it, verify and split the aggregate, read every user record's key and
/// data. Panics unless it finds `expected` user records.
pub fn deaggregate_only(payload: &[u8], expected: usize) -> usize {
    let (mut users, mut bytes) = (0, 0);
    for data in data_fields(payload) {
        let data = base64_simd::STANDARD.decode_to_vec(data).expect("base64");
        match deaggregate(&data).expect("a valid aggregate") {
            Deaggregated::Aggregate(records) => {
                users += records.len();
                bytes +=
                    records.iter().map(|r| r.partition_key.len() + r.data.len()).sum::<usize>();
            }
            Deaggregated::Plain => users += 1,
        }
    }
    assert_eq!(users, expected, "user records found");
    bytes
}
