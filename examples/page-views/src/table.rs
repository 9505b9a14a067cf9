//! The page-view table in DynamoDB: one item per page and window, keyed by the page
//! (`page`, partition key) and the window's start (`window_start`, sort key, RFC 3339).
//!
//! A window is counted per shard (each shard has its own window state), and a shard's
//! window may come in parts (Lambda ends a window early when its state grows too big). An
//! item holds one attribute per part, `part:<shard id>:<first sequence number>`, with that
//! part's count, and `views`, the sum of its parts. A part is added in one conditional
//! write: its attribute is set and its count added to `views` only if the attribute is not
//! there yet. Writing the same part again (a retried window end) changes nothing.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use kinesis_processor::{BoxError, Window};
use tokio::task::JoinSet;

/// The partition key: the page's path.
pub const PAGE: &str = "page";
/// The sort key: the window's start, RFC 3339 (`2026-11-26T05:00:00Z`).
pub const WINDOW_START: &str = "window_start";
/// The page's views in the window: the sum of its parts' counts.
pub const VIEWS: &str = "views";
/// When DynamoDB's TTL may delete the item, in seconds since the Unix epoch.
pub const EXPIRES_AT: &str = "expires_at";
/// How long after its window an item is kept.
pub const RETENTION: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// Writes in flight at once while a window is published.
const WRITES_AT_ONCE: usize = 16;

/// A DynamoDB table of page views per window.
#[derive(Clone, Debug)]
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

/// One part of one shard's window, as the table records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowPart {
    /// The window's start, RFC 3339: the items' sort key.
    pub start: String,
    /// The attribute that holds this part's count: `part:<shard id>:<first sequence number>`.
    pub attribute: String,
    /// When the items may expire (TTL), in seconds since the Unix epoch.
    pub expires_at: u64,
}

impl WindowPart {
    /// The part of `window` whose first counted record has `first_sequence_number`.
    pub fn new(window: &Window, first_sequence_number: &str) -> Result<WindowPart, BoxError> {
        let start = DateTime::from(window.start()).fmt(DateTimeFormat::DateTime)?;
        let shard = window.shard_id().unwrap_or("unknown-shard");
        let expires_at = (window.end() + RETENTION).duration_since(UNIX_EPOCH)?.as_secs();
        Ok(WindowPart {
            start,
            attribute: format!("part:{shard}:{first_sequence_number}"),
            expires_at,
        })
    }
}

/// What writing one page's count found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The count was added to the page's views.
    Added,
    /// The table already held this part with the same count: a retried write.
    AlreadyThere,
}

/// Why a page's count was not written.
#[derive(Debug)]
pub enum WriteError {
    /// The table holds this part of the window with another count: it was kept. Writing
    /// again cannot change that, so the window end does not fail for it; it is logged.
    Conflict {
        /// The count the table holds (`None` if DynamoDB did not say).
        stored: Option<u64>,
        /// The count that was refused.
        refused: u64,
    },
    /// DynamoDB refused the write or could not be reached, after the SDK's retries.
    Service(BoxError),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Conflict { stored: Some(stored), refused } => {
                write!(f, "the table holds {stored} views for this part, not {refused}")
            }
            WriteError::Conflict { stored: None, refused } => {
                write!(f, "the table holds another count for this part than {refused}")
            }
            WriteError::Service(error) => write!(f, "DynamoDB: {}", error_chain(&**error)),
        }
    }
}

impl std::error::Error for WriteError {}

/// What publishing a window did, page by page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Pages whose count was added.
    pub added: usize,
    /// Pages that already held this part with the same count.
    pub already_there: usize,
    /// Pages that hold this part with another count (kept, and logged).
    pub conflicts: usize,
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

    /// Adds `views`, this part's count of `page`, to the page's views in the window,
    /// unless the table holds the part already.
    pub async fn add(
        &self,
        page: &str,
        part: &WindowPart,
        views: u64,
    ) -> Result<Written, WriteError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(PAGE, AttributeValue::S(page.to_owned()))
            .key(WINDOW_START, AttributeValue::S(part.start.clone()))
            .update_expression("SET #part = :views, #expires = :expires ADD #views :views")
            .condition_expression("attribute_not_exists(#part)")
            .expression_attribute_names("#part", &part.attribute)
            .expression_attribute_names("#views", VIEWS)
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_values(":views", AttributeValue::N(views.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(part.expires_at.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Written::Added),
            Err(error) => error,
        };
        if let SdkError::ServiceError(service) = &error {
            if let UpdateItemError::ConditionalCheckFailedException(failed) = service.err() {
                let stored = failed
                    .item()
                    .and_then(|item| item.get(&part.attribute))
                    .and_then(|count| count.as_n().ok())
                    .and_then(|count| count.parse().ok());
                return match stored {
                    Some(stored) if stored == views => Ok(Written::AlreadyThere),
                    stored => Err(WriteError::Conflict { stored, refused: views }),
                };
            }
        }
        Err(WriteError::Service(error.into()))
    }

    /// Adds every page's count of this part, a few at a time. A conflict is logged and
    /// counted; the first other error is returned once the writes under way are done.
    pub async fn publish(
        &self,
        by_page: BTreeMap<String, u64>,
        part: &WindowPart,
    ) -> Result<Published, WriteError> {
        let mut pages = by_page.into_iter();
        let mut writes = JoinSet::new();
        let mut published = Published::default();
        let mut failed = None;
        loop {
            while failed.is_none() && writes.len() < WRITES_AT_ONCE {
                let Some((page, views)) = pages.next() else { break };
                let (table, part) = (self.clone(), part.clone());
                writes.spawn(async move {
                    let written = table.add(&page, &part, views).await;
                    (page, written)
                });
            }
            let Some(joined) = writes.join_next().await else { break };
            let (page, written) = joined.map_err(|error| WriteError::Service(error.into()))?;
            match written {
                Ok(Written::Added) => published.added += 1,
                Ok(Written::AlreadyThere) => published.already_there += 1,
                Err(conflict @ WriteError::Conflict { .. }) => {
                    published.conflicts += 1;
                    tracing::error!(
                        page,
                        window_start = %part.start,
                        part = %part.attribute,
                        error = %conflict,
                        "conflicting page-view total: the stored count is kept"
                    );
                }
                Err(error) => {
                    failed.get_or_insert(error);
                }
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(published),
        }
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
