//! clicks-to-dynamodb: clicks from a Kinesis stream, written to a DynamoDB table 25 at a
//! time. `store` takes chunks of up to 25 clicks (DynamoDB's `BatchWriteItem` limit) and
//! writes each chunk with one call, up to 4 chunks at once; each click is one item, keyed
//! by its click id, so a click Lambda delivers again overwrites its own item: the table
//! holds each click once.
//!
//! Failures stay per click:
//! - the items DynamoDB returns in `UnprocessedItems` fail retryably, and only their clicks
//!   are written again, as a smaller chunk, with backoff (3 retries), while the rest of
//!   the chunk counts as done;
//! - a click that cannot be an item (an empty click id, over DynamoDB's size limits) is
//!   rejected and goes to the dead-letter queue, and the rest of its chunk is written;
//! - a call that fails whole (throttled past the SDK's retries, unreachable, no table)
//!   fails its chunk, retryably; when the retries run out, the batch is reported from its
//!   first unwritten click and Lambda delivers it again.
//!
//! Locally, without `CLICKS_TABLE`, the clicks are logged instead of written.

use clicks_to_dynamodb::{store, Destination};
use kinesis_processor::dead_letter::{DynDeadLetterSink, LogDeadLetter, SqsDeadLetter};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), kinesis_processor::Error> {
    let destination = Destination::from_env().await?;
    store().state(destination).dead_letter(dead_letters().await?).run().await
}

/// Where rejected clicks go: the SQS queue the template creates, when deployed; the log
/// locally. `DEAD_LETTERS=none` reports them to Lambda instead (no sink).
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
