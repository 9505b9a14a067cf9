//! clicks-to-dynamodb: each click of a Kinesis stream becomes one DynamoDB item, keyed by
//! its click id, written 25 at a time with `BatchWriteItem`. The binary (`src/main.rs`)
//! says how failures go; this library holds the pieces, so that the workspace's tests can
//! run them.

#![warn(missing_docs)]

pub mod table;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use kinesis_processor::{kinesis_processor, Chunk, ChunkError, RecordError};
use serde::Deserialize;

pub use table::Table;
use table::{InvalidClick, Item, WriteError};

/// The environment variable that names the table.
pub const TABLE_VAR: &str = "CLICKS_TABLE";

/// A click as the web tier writes it to the stream.
#[derive(Clone, Debug, Deserialize)]
pub struct Click {
    /// The click's own id, unique per click: the table's key.
    pub click_id: String,
    /// Who clicked.
    pub user_id: String,
    /// The page's URL.
    pub url: String,
    /// When, as the web tier wrote it (RFC 3339).
    pub at: String,
}

/// Where clicks go: a DynamoDB table, or the log when running locally.
#[derive(Debug)]
pub enum Destination {
    /// The table that [`TABLE_VAR`] names.
    Table(Table),
    /// The log: no table configured.
    Log,
}

impl Destination {
    /// The table [`TABLE_VAR`] names, else the log.
    pub async fn from_env() -> Result<Destination, kinesis_processor::Error> {
        Ok(match Table::from_env(TABLE_VAR).await? {
            Some(table) => Destination::Table(table),
            None => Destination::Log,
        })
    }

    /// Writes `items` (see [`Table::write`]); returns the click ids left unprocessed.
    pub async fn write(&self, items: Vec<Item>) -> Result<HashSet<String>, WriteError> {
        match self {
            Destination::Table(table) => table.write(items).await,
            Destination::Log if items.is_empty() => Ok(HashSet::new()),
            Destination::Log => {
                tracing::info!(items = items.len(), "one BatchWriteItem call (no table: logged)");
                for item in &items {
                    let url = item.get(table::URL).and_then(|url| url.as_s().ok());
                    tracing::info!(click_id = table::click_id(item), url, "click (no table)");
                }
                Ok(HashSet::new())
            }
        }
    }
}

/// Writes up to 25 clicks with one `BatchWriteItem` call, and answers for each click: the
/// ones DynamoDB left unprocessed are retried alone, the ones that cannot be items are
/// rejected (dead-lettered), and every other one is written.
#[kinesis_processor(
    chunk = 25,
    concurrency = 4,
    retries = 3,
    metrics_namespace = "ClicksToDynamoDb"
)]
pub async fn store(clicks: Chunk<Click>, destination: &Destination) -> Result<(), ChunkError> {
    let (items, invalid) = items_of(&clicks);
    // A failed call (throttled past the SDK's retries, unreachable) fails the whole chunk,
    // retryably: an invalid click goes with it, and is rejected on the retry.
    let unprocessed = destination.write(items).await?;
    answer(&clicks, invalid, &unprocessed)
}

/// The items of a chunk's clicks, one per click id, and the positions of the clicks that
/// cannot be items. One call may not put a key twice, so a later click with the same id
/// (a producer's retry) replaces the earlier one's item, as its write would.
fn items_of(clicks: &Chunk<'_, Click>) -> (Vec<Item>, Vec<(usize, InvalidClick)>) {
    let mut items: Vec<Item> = Vec::with_capacity(clicks.len());
    let mut slots: HashMap<&str, usize> = HashMap::new();
    let mut invalid = Vec::new();
    for (position, record) in clicks.iter().enumerate() {
        let click = record.payload();
        match table::item(click, record.meta().sequence_number()) {
            Ok(item) => match slots.entry(&click.click_id) {
                Entry::Occupied(slot) => items[*slot.get()] = item,
                Entry::Vacant(slot) => {
                    slot.insert(items.len());
                    items.push(item);
                }
            },
            Err(why) => invalid.push((position, why)),
        }
    }
    (items, invalid)
}

/// The chunk's answer once its items were written: invalid clicks rejected, clicks left
/// unprocessed retried (every click with such an id), the others succeeded.
fn answer(
    clicks: &Chunk<'_, Click>,
    invalid: Vec<(usize, InvalidClick)>,
    unprocessed: &HashSet<String>,
) -> Result<(), ChunkError> {
    let rejected = invalid.into_iter().map(|(position, why)| (position, RecordError::reject(why)));
    let retried = clicks
        .iter()
        .enumerate()
        .filter(|(_, record)| unprocessed.contains(&record.payload().click_id))
        .map(|(position, _)| (position, RecordError::retry("DynamoDB left it unprocessed")));
    // Rejections first: a position named twice keeps its first error.
    let failures: Vec<(usize, RecordError)> = rejected.chain(retried).collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ChunkError::records(failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_click_reads_as_the_web_tier_writes_it() {
        let click: Click = serde_json::from_str(
            r#"{"click_id": "c-1", "user_id": "user-17", "url": "/pricing",
                "at": "2026-11-26T05:00:01Z", "ip": "203.0.113.9"}"#,
        )
        .unwrap();
        assert_eq!((click.click_id.as_str(), click.url.as_str()), ("c-1", "/pricing"));
        assert!(serde_json::from_str::<Click>(r#"{"click_id": "c-1"}"#).is_err());
    }
}
