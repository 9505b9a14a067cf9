//! page-views: views per page per minute. Lambda's event source mapping groups the clicks
//! of each shard into one-minute tumbling windows (`TumblingWindowInSeconds: 60`); `count`
//! folds each click into the window's state, which Lambda carries from one invocation to
//! the next, and when the window ends, `publish` writes each page's total to DynamoDB,
//! keyed by the page and the window's start.
//!
//! The numbers are exact, not at-least-once: a click's change to the state is kept only
//! when it is counted successfully, and the state each response returns is the fold of
//! exactly the clicks before the checkpoint. A click that fails is delivered again with the
//! state from before it; a dead-lettered click (not JSON, no page) is not counted.
//!
//! The window-end function can run more than once for the same window: when it fails (the
//! table is unreachable) the final invocation is retried, and Lambda may retry one whose
//! response it did not get. So the write is idempotent: each shard's count of a window is
//! added to the page's item by a conditional write that does nothing when the table holds
//! that count already (see `table.rs`). A different count for the same part is refused and
//! logged as an error: the stored number is kept.
//!
//! Locally, without `PAGE_VIEWS_TABLE`, the totals are logged instead of written.

use kinesis_processor::dead_letter::{DynDeadLetterSink, LogDeadLetter, SqsDeadLetter};
use page_views::{count, publish, Totals};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), kinesis_processor::Error> {
    let totals = Totals::from_env().await?;
    count().on_window_end(publish).state(totals).dead_letter(dead_letters().await?).run().await
}

/// Where poison clicks go: the SQS queue the template creates, when deployed; the log
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
