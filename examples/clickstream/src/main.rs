//! Clickstream enrichment: each click gets the country and city of its IP address from a
//! lookup table loaded once at cold start, and goes downstream as an enriched event.
//!
//! A click that is not JSON is dead-lettered as undecodable; a click whose IP is not in
//! the table is rejected (dead-lettered) and the batch moves on.

use kinesis_processor::dead_letter::{DynDeadLetterSink, LogDeadLetter, SqsDeadLetter};
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
    enrich().state(geo).dead_letter(dead_letters().await?).run().await
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
