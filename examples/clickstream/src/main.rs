//! Clickstream enrichment: each click gets the country and city of its IP address from a
//! lookup table loaded once at cold start, and goes downstream as an enriched event.
//!
//! A click that is not JSON is dead-lettered as undecodable; a click whose IP is not in
//! the table is rejected (dead-lettered) and the batch moves on. Deployed, each click is
//! enriched and emitted once even when Lambda delivers it again (see `idempotency`).

use kinesis_processor::dead_letter::{DynDeadLetterSink, LogDeadLetter, SqsDeadLetter};
use kinesis_processor::idempotency::DynamoDbIdempotency;
use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
use serde::{Deserialize, Serialize};

/// A click as the web tier writes it to the stream.
#[derive(Deserialize)]
struct Click {
    user_id: String,
    ip: String,
    url: String,
}

/// A click with its location, as it goes downstream.
#[derive(Serialize)]
struct EnrichedClick<'a> {
    user_id: &'a str,
    url: &'a str,
    country: &'a str,
    city: &'a str,
    sequence_number: &'a str,
}

/// Where an IP address is, by address prefix.
struct GeoTable {
    entries: Vec<GeoEntry>,
}

struct GeoEntry {
    prefix: String,
    country: String,
    city: String,
}

impl GeoTable {
    /// Parses `prefix,country,city` lines; `#` starts a comment.
    fn parse(csv: &str) -> Result<Self, kinesis_processor::Error> {
        let mut entries = Vec::new();
        for (number, line) in csv.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [prefix, country, city] = fields[..] else {
                let why = format!("geo.csv line {}: expected prefix,country,city", number + 1);
                return Err(kinesis_processor::Error::Config(why));
            };
            entries.push(GeoEntry {
                prefix: prefix.into(),
                country: country.into(),
                city: city.into(),
            });
        }
        Ok(GeoTable { entries })
    }

    fn lookup(&self, ip: &str) -> Option<&GeoEntry> {
        self.entries.iter().find(|entry| ip.starts_with(&entry.prefix))
    }
}

/// Enriches one click with its location and sends it downstream.
#[kinesis_processor(concurrency = 16, retries = 2, metrics_namespace = "Clickstream")]
async fn enrich(click: Click, meta: &RecordMeta, geo: &GeoTable) -> Result<(), RecordError> {
    let location = geo
        .lookup(&click.ip)
        .ok_or_else(|| RecordError::reject(format!("no location known for ip {}", click.ip)))?;
    let enriched = EnrichedClick {
        user_id: &click.user_id,
        url: &click.url,
        country: &location.country,
        city: &location.city,
        sequence_number: meta.sequence_number(),
    };
    // Downstream is the function's log here; a real deployment writes to a store or stream.
    tracing::info!(click = %serde_json::to_string(&enriched)?, "enriched");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), kinesis_processor::Error> {
    // Cold-start set-up: the lookup table is read once, not per record.
    let geo = GeoTable::parse(include_str!("../geo.csv"))?;
    let mut processor = enrich().state(geo).dead_letter(dead_letters().await?);
    if let Some(store) = idempotency().await? {
        processor = processor.idempotency(store);
    }
    processor.run().await
}

/// The idempotency store: the DynamoDB table the template creates, when deployed; none
/// locally (no `IDEMPOTENCY_TABLE`), where nothing is delivered twice.
///
/// What it buys: Lambda delivers records again after a timeout or a crash (the whole
/// batch, or halves of it when it bisects), and after a reported failure it resumes the
/// shard at the first unfinished record, so that clicks of other users that finished after
/// it (16 run at once) come again. Each click is claimed in the table before it is enriched
/// and marked done after it is emitted (or dead-lettered: rejected, or not JSON); one that
/// comes again is skipped as a duplicate (the `Duplicates` metric), not enriched, emitted
/// or dead-lettered twice.
///
/// What it does not: a click is keyed by its place in the stream (stream, sequence number), so a producer that
/// puts one click twice gets it enriched twice (clicks carry no id to key by;
/// `idempotency_key` would take one from the payload). An enrichment that fails after
/// emitting (or is cut at the deadline) runs again, since its claim is released; a
/// completion that cannot be written leaves its claim until the invocation's deadline,
/// after which a redelivery runs again. A click stays done for an hour (the default
/// `idempotency_keep_for`), as long as the template's `MaximumRecordAgeInSeconds` lets
/// Lambda deliver it again, but not for a replay from the stream after that. And the table
/// is checked fail closed: while DynamoDB cannot be reached, clicks are reported failures,
/// retried by Lambda, and hold up their shard (the iterator-age alarm fires).
async fn idempotency() -> Result<Option<DynamoDbIdempotency>, kinesis_processor::Error> {
    if std::env::var_os("IDEMPOTENCY_TABLE").is_none() {
        return Ok(None);
    }
    Ok(Some(DynamoDbIdempotency::from_env("IDEMPOTENCY_TABLE").await?))
}

/// Where poison clicks go: the SQS queue the template creates, when deployed; the log
/// locally. `DEAD_LETTERS=none` reports them to Lambda instead (no sink), so that they are
/// delivered again (and hold up their shard until they expire).
async fn dead_letters() -> Result<Option<Box<dyn DynDeadLetterSink>>, kinesis_processor::Error> {
    if std::env::var_os("DEAD_LETTER_QUEUE_URL").is_some() {
        let queue = SqsDeadLetter::from_env("DEAD_LETTER_QUEUE_URL").await?;
        return Ok(Some(Box::new(queue)));
    }
    match std::env::var("DEAD_LETTERS").as_deref() {
        Ok("none") => Ok(None),
        Ok("log") | Err(_) => Ok(Some(Box::new(LogDeadLetter::new()))),
        Ok(other) => Err(kinesis_processor::Error::Config(format!(
            "DEAD_LETTERS={other}: expected `log` or `none`"
        ))),
    }
}
