//! [`DynamoDbIdempotency`]: idempotency keys in a DynamoDB table.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, PutRequest, ReturnValuesOnConditionCheckFailure,
    WriteRequest,
};
use aws_smithy_types::error::display::DisplayErrorContext;

use super::{Claim, IdempotencyStore, StoreError};
use crate::dead_letter::aws::{sdk_config, target_from_env};
use crate::error::Error;

/// The most keys one `BatchGetItem` call takes.
const MAX_READ: usize = 100;
/// The most items one `BatchWriteItem` call takes.
const MAX_WRITE: usize = 25;
/// Calls made for one batch while DynamoDB leaves keys or items unprocessed.
const BATCH_ATTEMPTS: u32 = 6;
/// The first pause before resending unprocessed keys; it doubles, with jitter.
const BACKOFF: Duration = Duration::from_millis(25);

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

/// An [`IdempotencyStore`] on a DynamoDB table: one item per key.
///
/// | attribute | type | value |
/// |---|---|---|
/// | `id` | S, the partition key | the idempotency key |
/// | `status` | S | `IN_PROGRESS` (claimed) or `COMPLETED` (done) |
/// | `expiration` | N, epoch seconds | a claim's expiry, or how long a completion is kept |
///
/// Make `expiration` the table's TTL attribute, so that DynamoDB deletes old items. TTL
/// deletes lazily (up to days later), so expiry is never left to it: every read and claim
/// compares `expiration` with the invocation's clock. Times are whole seconds, a `now`
/// rounded down and expiries rounded up: an entry holds at most a second longer than asked,
/// never shorter. The key is the item's `id`, so it must fit DynamoDB's 2048 bytes.
///
/// ```yaml
/// IdempotencyTable:
///   Type: AWS::DynamoDB::Table
///   Properties:
///     BillingMode: PAY_PER_REQUEST
///     AttributeDefinitions:
///       - AttributeName: id
///         AttributeType: S
///     KeySchema:
///       - AttributeName: id
///         KeyType: HASH
///     TimeToLiveSpecification:
///       AttributeName: expiration
///       Enabled: true
/// ```
///
/// Calls: [`find_done`](IdempotencyStore::find_done) is a `BatchGetItem` (strongly
/// consistent) per 100 keys; a claim is a conditional `PutItem` (`attribute_not_exists(id)
/// OR expiration <= :now`), which returns the item holding the key when it fails (a
/// `GetItem` when the answer lacks it); completions are `BatchWriteItem` calls of 25; a
/// release is a `DeleteItem` per key, on condition that the entry is still a claim. Keys
/// or items that DynamoDB leaves unprocessed are sent again, 6 calls at most, with a short
/// jittered backoff. If the item that failed a claim has gone (released, or expired) by
/// the time it is read, the claim is tried once more, and then answers `InProgress` (a
/// retryable failure: the record comes again). A failed call (throttled past the SDK's
/// retries, a missing table, no connection, an item without its fields) is a
/// [`StoreError`] naming the table and the operation.
///
/// IAM: `dynamodb:BatchGetItem`, `dynamodb:GetItem`, `dynamodb:PutItem`,
/// `dynamodb:BatchWriteItem` and `dynamodb:DeleteItem` on the table (SAM's
/// `DynamoDBCrudPolicy` has them all).
///
/// ```no_run
/// # use kinesis_processor::{kinesis_processor, RecordError};
/// use kinesis_processor::idempotency::DynamoDbIdempotency;
/// # #[kinesis_processor(format = text)]
/// # async fn charge(order: String) -> Result<(), RecordError> { Ok(()) }
///
/// # async fn main_() -> Result<(), kinesis_processor::Error> {
/// let store = DynamoDbIdempotency::from_env("IDEMPOTENCY_TABLE").await?;
/// charge().idempotency(store).run().await
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DynamoDbIdempotency {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbIdempotency {
    /// Keeps keys in table `table` with `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoDbIdempotency { client, table: table.into() }
    }

    /// Keeps keys in the table named in environment variable `var`, with a client
    /// configured from the environment (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn from_env(var: &str) -> Result<Self, Error> {
        let table = target_from_env(var, "idempotency table")?;
        Ok(Self::new(aws_sdk_dynamodb::Client::new(&sdk_config().await), table))
    }

    /// A failure of `operation` on the table.
    fn error(&self, operation: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::new(format!(
            "DynamoDB idempotency table `{}`: {operation} failed: {detail}",
            self.table
        ))
    }

    fn sdk_error<E, R>(&self, operation: &str, error: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        self.error(operation, DisplayErrorContext(error))
    }

    /// Reads up to [`MAX_READ`] distinct keys, adding those done at `now` to `done`.
    async fn read_done(
        &self,
        keys: &[&str],
        now: u64,
        done: &mut HashSet<String>,
    ) -> Result<(), StoreError> {
        let operation = "BatchGetItem (find_done)";
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(|key| key_of(key)).collect()))
            .consistent_read(true)
            .projection_expression("#id, #s, #e")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#e", "expiration")
            .build()
            .map_err(|error| self.error(operation, error))?;
        let mut pending = HashMap::from([(self.table.clone(), request)]);
        for attempt in 0..BATCH_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let output = self
                .client
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(|error| self.sdk_error(operation, error))?;
            let items = output.responses().and_then(|tables| tables.get(&self.table));
            for item in items.into_iter().flatten() {
                let entry = Entry::read(item).map_err(|error| self.error(operation, error))?;
                if entry.done && entry.expiration > now {
                    done.insert(entry.id);
                }
            }
            pending = output.unprocessed_keys.unwrap_or_default();
            pending.retain(|table, keys| *table == self.table && !keys.keys().is_empty());
            if pending.is_empty() {
                return Ok(());
            }
        }
        let left = pending.values().map(|keys| keys.keys().len()).sum::<usize>();
        Err(self.error(
            operation,
            format!("{left} keys still unprocessed after {BATCH_ATTEMPTS} calls (throttled?)"),
        ))
    }

    /// One claim attempt: `None` when the item that refused it has gone since.
    async fn try_claim(
        &self,
        key: &str,
        now: u64,
        until: u64,
    ) -> Result<Option<Claim>, StoreError> {
        let operation = "PutItem (claim)";
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(key.to_owned()))
            .item("status", AttributeValue::S(IN_PROGRESS.to_owned()))
            .item("expiration", AttributeValue::N(until.to_string()))
            .condition_expression("attribute_not_exists(#id) OR #e <= :now")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#e", "expiration")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let held = match result {
            Ok(_) => return Ok(Some(Claim::Claimed)),
            Err(error) => match error.as_service_error() {
                // The item that holds the key, returned with the refusal (`ALL_OLD`).
                Some(PutItemError::ConditionalCheckFailedException(failed))
                    if failed.item().is_some() =>
                {
                    failed.item().cloned()
                }
                Some(PutItemError::ConditionalCheckFailedException(_)) => self.get(key).await?,
                _ => return Err(self.sdk_error(operation, error)),
            },
        };
        let Some(item) = held else { return Ok(None) };
        let entry = Entry::read(&item).map_err(|error| self.error(operation, error))?;
        Ok(match entry {
            Entry { expiration, .. } if expiration <= now => None,
            Entry { done: true, .. } => Some(Claim::Done),
            Entry { done: false, .. } => Some(Claim::InProgress),
        })
    }

    /// The item of `key`, read consistently.
    async fn get(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| self.sdk_error("GetItem (claim)", error))?;
        Ok(output.item)
    }

    /// Writes up to [`MAX_WRITE`] requests for distinct keys.
    async fn write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        let operation = "BatchWriteItem (complete)";
        let mut pending = HashMap::from([(self.table.clone(), requests)]);
        for attempt in 0..BATCH_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let output = self
                .client
                .batch_write_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(|error| self.sdk_error(operation, error))?;
            pending = output.unprocessed_items.unwrap_or_default();
            pending.retain(|table, items| *table == self.table && !items.is_empty());
            if pending.is_empty() {
                return Ok(());
            }
        }
        let left = pending.values().map(Vec::len).sum::<usize>();
        Err(self.error(
            operation,
            format!("{left} items still unprocessed after {BATCH_ATTEMPTS} calls (throttled?)"),
        ))
    }

    /// Deletes `key`'s entry if it is still a claim.
    async fn release_one(&self, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .condition_expression("#s = :in_progress")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Gone, or done: not this invocation's claim any more.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(self.sdk_error("DeleteItem (release)", error)),
        }
    }
}

impl IdempotencyStore for DynamoDbIdempotency {
    async fn find_done(&self, keys: &[String], now: SystemTime) -> Result<Vec<bool>, StoreError> {
        let now = seconds_down(now);
        let mut done = HashSet::new();
        // BatchGetItem refuses a key asked twice.
        for chunk in distinct(keys).chunks(MAX_READ) {
            self.read_done(chunk, now, &mut done).await?;
        }
        Ok(keys.iter().map(|key| done.contains(key)).collect())
    }

    async fn claim(
        &self,
        key: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<Claim, StoreError> {
        let (now, until) = (seconds_down(now), seconds_up(until));
        for _ in 0..2 {
            if let Some(claim) = self.try_claim(key, now, until).await? {
                return Ok(claim);
            }
        }
        Ok(Claim::InProgress)
    }

    async fn complete(&self, keys: &[String], keep_until: SystemTime) -> Result<(), StoreError> {
        let expiration = AttributeValue::N(seconds_up(keep_until).to_string());
        for chunk in distinct(keys).chunks(MAX_WRITE) {
            let requests = chunk
                .iter()
                .map(|key| {
                    let put = PutRequest::builder()
                        .item("id", AttributeValue::S((*key).to_owned()))
                        .item("status", AttributeValue::S(COMPLETED.to_owned()))
                        .item("expiration", expiration.clone())
                        .build()
                        .map_err(|error| self.error("BatchWriteItem (complete)", error))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.write(requests).await?;
        }
        Ok(())
    }

    async fn release(&self, keys: &[String]) -> Result<(), StoreError> {
        // Every key is tried; the first failure is answered.
        let mut first_error = None;
        for key in distinct(keys) {
            if let Err(error) = self.release_one(key).await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn read_batch_size(&self) -> usize {
        MAX_READ
    }
}

/// An item as the store writes it.
struct Entry {
    id: String,
    done: bool,
    expiration: u64,
}

impl Entry {
    fn read(item: &HashMap<String, AttributeValue>) -> Result<Entry, String> {
        let id = match item.get("id") {
            Some(AttributeValue::S(id)) => id.clone(),
            _ => return Err("an item without a string `id`".to_owned()),
        };
        let done = match item.get("status") {
            Some(AttributeValue::S(status)) if status == COMPLETED => true,
            Some(AttributeValue::S(status)) if status == IN_PROGRESS => false,
            Some(other) => return Err(format!("item `{id}` has status {other:?}")),
            None => return Err(format!("item `{id}` has no `status`")),
        };
        let expiration = match item.get("expiration") {
            Some(AttributeValue::N(number)) => number
                .parse::<u64>()
                .ok()
                .or_else(|| number.parse::<f64>().ok().filter(|n| n.is_finite()).map(|n| n as u64))
                .ok_or_else(|| format!("item `{id}` has expiration {number:?}"))?,
            Some(other) => return Err(format!("item `{id}` has expiration {other:?}")),
            None => return Err(format!("item `{id}` has no `expiration`")),
        };
        Ok(Entry { id, done, expiration })
    }
}

/// The key of `key`'s item.
fn key_of(key: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("id".to_owned(), AttributeValue::S(key.to_owned()))])
}

/// `keys` without repeats, in their first order.
fn distinct(keys: &[String]) -> Vec<&str> {
    let mut seen = HashSet::with_capacity(keys.len());
    keys.iter().map(String::as_str).filter(|key| seen.insert(*key)).collect()
}

/// Epoch seconds, rounded down (a `now`).
fn seconds_down(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// Epoch seconds, rounded up (an expiry).
fn seconds_up(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() + u64::from(since.subsec_nanos() > 0))
}

/// The pause before call `attempt` (1, 2, ...) of a batch: exponential, full jitter.
async fn backoff(attempt: u32) {
    let cap = (BACKOFF * 2u32.pow(attempt - 1)).as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(fastrand::u64(cap / 2..=cap))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_now_down_and_expiries_up() {
        let time = UNIX_EPOCH + Duration::from_millis(10_500);
        assert_eq!(seconds_down(time), 10);
        assert_eq!(seconds_up(time), 11);
        assert_eq!(seconds_up(UNIX_EPOCH + Duration::from_secs(10)), 10);
        assert_eq!(seconds_down(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }

    #[test]
    fn distinct_keeps_the_first_order() {
        let keys = ["b", "a", "b", "c", "a"].map(String::from);
        assert_eq!(distinct(&keys), ["b", "a", "c"]);
    }

    #[test]
    fn entries_need_their_fields() {
        let item = |fields: &[(&str, AttributeValue)]| -> HashMap<String, AttributeValue> {
            fields.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect()
        };
        let id = ("id", AttributeValue::S("k".into()));
        let done = ("status", AttributeValue::S(COMPLETED.into()));
        let expiration = ("expiration", AttributeValue::N("12".into()));
        let entry = Entry::read(&item(&[id.clone(), done.clone(), expiration.clone()])).unwrap();
        assert!(entry.done && entry.expiration == 12 && entry.id == "k");
        let odd = ("status", AttributeValue::S("MAYBE".into()));
        assert!(Entry::read(&item(&[id.clone(), odd, expiration.clone()])).is_err());
        assert!(Entry::read(&item(&[id.clone(), done.clone()])).is_err());
        assert!(Entry::read(&item(&[done, expiration])).is_err());
    }
}
