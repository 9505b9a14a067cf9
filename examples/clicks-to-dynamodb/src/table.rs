//! The click table in DynamoDB: one item per click, keyed by its id (`click_id`, the
//! partition key), written with `BatchWriteItem`, up to 25 items per call.
//!
//! An item holds the click's fields and the sequence number of the record it came from,
//! all strings. Writing a click again (Lambda delivers records again) puts the same item
//! under the same key: the writes are idempotent, and each click is in the table once.
//!
//! `BatchWriteItem` may write some items of a call and return the others in
//! `UnprocessedItems` (a partition over its throughput): [`Table::write`] returns their
//! click ids, so that only those are written again.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use kinesis_processor::BoxError;

use crate::Click;

/// The partition key: the click's id.
pub const CLICK_ID: &str = "click_id";
/// Who clicked.
pub const USER_ID: &str = "user_id";
/// What was clicked: the page's URL.
pub const URL: &str = "url";
/// When the click happened, as the web tier wrote it (RFC 3339).
pub const AT: &str = "at";
/// The sequence number of the Kinesis record the click came from.
pub const SEQUENCE_NUMBER: &str = "sequence_number";
/// The most items one `BatchWriteItem` call may put: DynamoDB's limit.
pub const MAX_ITEMS_PER_CALL: usize = 25;
/// The largest item DynamoDB stores: 400 KB, attribute names and values together.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// The longest partition key value DynamoDB accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 2048;

/// One item of the table: attribute name to value.
pub type Item = HashMap<String, AttributeValue>;

/// Why a click cannot be an item: writing it again cannot help, so it is rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidClick {
    /// The click id is empty, and DynamoDB refuses an empty key.
    EmptyClickId,
    /// The click id is longer than a partition key may be ([`MAX_KEY_BYTES`]).
    ClickIdTooLong {
        /// The click id's length, in bytes.
        bytes: usize,
    },
    /// The item would be larger than DynamoDB stores ([`MAX_ITEM_BYTES`]).
    ItemTooLarge {
        /// The item's size as DynamoDB counts it, in bytes.
        bytes: usize,
    },
}

impl std::fmt::Display for InvalidClick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidClick::EmptyClickId => f.write_str("the click has an empty click_id"),
            InvalidClick::ClickIdTooLong { bytes } => {
                write!(f, "the click_id is {bytes} bytes, over DynamoDB's {MAX_KEY_BYTES}")
            }
            InvalidClick::ItemTooLarge { bytes } => {
                write!(f, "the click's item is {bytes} bytes, over DynamoDB's {MAX_ITEM_BYTES}")
            }
        }
    }
}

impl std::error::Error for InvalidClick {}

/// The item of `click`, read from the record with `sequence_number`; an error when
/// DynamoDB would refuse it (checked here, since one refused item fails the whole call).
pub fn item(click: &Click, sequence_number: &str) -> Result<Item, InvalidClick> {
    match click.click_id.len() {
        0 => return Err(InvalidClick::EmptyClickId),
        bytes if bytes > MAX_KEY_BYTES => return Err(InvalidClick::ClickIdTooLong { bytes }),
        _ => {}
    }
    let attributes = [
        (CLICK_ID, click.click_id.as_str()),
        (USER_ID, click.user_id.as_str()),
        (URL, click.url.as_str()),
        (AT, click.at.as_str()),
        (SEQUENCE_NUMBER, sequence_number),
    ];
    // DynamoDB counts a string attribute as its name's and its value's UTF-8 bytes.
    let bytes = attributes.iter().map(|(name, value)| name.len() + value.len()).sum();
    if bytes > MAX_ITEM_BYTES {
        return Err(InvalidClick::ItemTooLarge { bytes });
    }
    let item = attributes.map(|(name, value)| (name.to_owned(), AttributeValue::S(value.into())));
    Ok(item.into_iter().collect())
}

/// The click id of an item (empty if it has none).
pub fn click_id(item: &Item) -> &str {
    item.get(CLICK_ID).and_then(|id| id.as_s().ok()).map_or("", String::as_str)
}

/// A call to DynamoDB failed: throttled past the SDK's retries, unreachable, refused.
#[derive(Debug)]
pub struct WriteError(BoxError);

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DynamoDB BatchWriteItem: {}", error_chain(&*self.0))
    }
}

impl std::error::Error for WriteError {}

/// The DynamoDB table of clicks.
#[derive(Clone, Debug)]
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

impl Table {
    /// The table `name`, reached with `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, name: impl Into<String>) -> Table {
        Table { client, name: name.into() }
    }

    /// The table the environment variable `var` names, with a client configured from the
    /// environment (`AWS_ENDPOINT_URL` included); `None` when `var` is not set.
    pub async fn from_env(var: &str) -> Result<Option<Table>, kinesis_processor::Error> {
        match std::env::var(var) {
            Ok(name) if !name.is_empty() => {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                Ok(Some(Table::new(aws_sdk_dynamodb::Client::new(&config), name)))
            }
            Err(std::env::VarError::NotPresent) => Ok(None),
            _ => Err(kinesis_processor::Error::Config(format!("{var} names no table"))),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Puts `items` (each click id at most once), [`MAX_ITEMS_PER_CALL`] per
    /// `BatchWriteItem` call, and returns the click ids of those DynamoDB left
    /// unprocessed. An error means a call failed: items of earlier calls may be written.
    pub async fn write(&self, items: Vec<Item>) -> Result<HashSet<String>, WriteError> {
        let mut unprocessed = HashSet::new();
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let call: Vec<Item> = items.by_ref().take(MAX_ITEMS_PER_CALL).collect();
            unprocessed.extend(self.write_once(call).await?);
        }
        Ok(unprocessed)
    }

    /// One `BatchWriteItem` call: the click ids of the items it left unprocessed.
    async fn write_once(&self, items: Vec<Item>) -> Result<Vec<String>, WriteError> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item)).build();
                put.map(|put| WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| WriteError(error.into()))?;
        let output = self
            .client
            .batch_write_item()
            .request_items(&self.name, requests)
            .send()
            .await
            .map_err(|error| WriteError(error.into()))?;
        let unprocessed = output.unprocessed_items().and_then(|tables| tables.get(&self.name));
        Ok(unprocessed
            .into_iter()
            .flatten()
            .filter_map(|request| request.put_request())
            .map(|put| click_id(put.item()).to_owned())
            .collect())
    }
}

/// An error's message and its causes', as one line (the SDK's own message is terse).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(click_id: &str, url: &str) -> Click {
        Click {
            click_id: click_id.into(),
            user_id: "user-1".into(),
            url: url.into(),
            at: "2026-11-26T05:00:01Z".into(),
        }
    }

    #[test]
    fn an_item_holds_the_click_and_its_sequence_number() {
        let item = item(&click("c-1", "/pricing"), "4959").unwrap();
        assert_eq!(click_id(&item), "c-1");
        assert_eq!(item[URL].as_s().unwrap(), "/pricing");
        assert_eq!(item[SEQUENCE_NUMBER].as_s().unwrap(), "4959");
        assert_eq!(item.len(), 5);
    }

    #[test]
    fn a_click_dynamodb_would_refuse_is_invalid() {
        assert_eq!(item(&click("", "/"), "1"), Err(InvalidClick::EmptyClickId));
        let long_id = "x".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(
            item(&click(&long_id, "/"), "1"),
            Err(InvalidClick::ClickIdTooLong { bytes: MAX_KEY_BYTES + 1 })
        );
        let huge = click("c-1", &"/".repeat(MAX_ITEM_BYTES));
        assert!(matches!(item(&huge, "1"), Err(InvalidClick::ItemTooLarge { .. })));
        // Just at the limit: names and values together make exactly 400 KB.
        let names = CLICK_ID.len() + USER_ID.len() + URL.len() + AT.len() + SEQUENCE_NUMBER.len();
        let fixed = names + "c-1".len() + "user-1".len() + "2026-11-26T05:00:01Z".len() + 1;
        assert!(item(&click("c-1", &"/".repeat(MAX_ITEM_BYTES - fixed)), "1").is_ok());
    }
}
