//! [`BatchOutcome`]: what one invocation tells Lambda, and its counts.

use aws_lambda_events::event::streams::KinesisEventResponse;

use super::summary::BatchSummary;
use crate::engine::{Conclude, Settled};

/// What one invocation tells Lambda, and its counts: a [`BatchReport`](crate::BatchReport) without a row per
/// record. It is what the Lambda loop builds, since nothing there reads the rows; see
/// [`Processor::respond`](crate::Processor::respond).
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use std::time::Duration;
/// use kinesis_processor::{kinesis_processor, RecordError};
/// use kinesis_processor::testing::TestBatch;
///
/// #[kinesis_processor(format = text, retries = 0)]
/// async fn shout(line: String) -> Result<(), RecordError> {
///     if line.is_empty() { Err(RecordError::retry("empty")) } else { Ok(()) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let event = TestBatch::new().text("a").text("").text("b").build();
/// let outcome = shout().respond(event, "request-1", Duration::from_secs(60)).await.unwrap();
/// assert_eq!(outcome.summary().succeeded, 1);
/// assert_eq!(outcome.summary().not_started, 1);
/// assert_eq!(outcome.response().batch_item_failures.len(), 1);
/// # });
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BatchOutcome {
    response: KinesisEventResponse,
    summary: BatchSummary,
    state: Option<serde_json::Value>,
}

impl BatchOutcome {
    /// The response and the counts of a settled batch.
    pub(crate) fn of(settled: &Settled<'_>) -> Self {
        let mut response = KinesisEventResponse::default();
        if let Some(sequence_number) = settled.checkpoint {
            response.add_failure(sequence_number);
        }
        let state = settled
            .state
            .as_ref()
            .map(|state| serde_json::from_str(state.get()).expect("the window state is JSON"));
        BatchOutcome { response, summary: BatchSummary::of(settled), state }
    }

    /// The response for Lambda: at most one `batchItemFailures` entry, the first record
    /// not finished. Empty when the whole batch is done.
    pub fn response(&self) -> &KinesisEventResponse {
        &self.response
    }

    /// The response, by value.
    pub fn into_response(self) -> KinesisEventResponse {
        self.response
    }

    /// A window processor's `state`, as the response carries it to the window's next
    /// invocation: `{"version": 1, "value": ..}` (see [`window`](crate::window)). `None`
    /// for other processors.
    pub fn window_state(&self) -> Option<&serde_json::Value> {
        self.state.as_ref()
    }

    /// The JSON the function answers Lambda with: `batchItemFailures`, and a window
    /// processor's `state` beside it.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use std::time::Duration;
    /// use kinesis_processor::{kinesis_processor, RecordError};
    /// use kinesis_processor::testing::TestBatch;
    ///
    /// #[kinesis_processor(format = text)]
    /// async fn accept(_line: String) -> Result<(), RecordError> {
    ///     Ok(())
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let event = TestBatch::new().text("a").build();
    /// let outcome = accept().respond(event, "request-1", Duration::from_secs(60)).await.unwrap();
    /// assert_eq!(outcome.lambda_response(), serde_json::json!({"batchItemFailures": []}));
    /// # });
    /// # }
    /// ```
    pub fn lambda_response(&self) -> serde_json::Value {
        let mut response =
            serde_json::json!({ "batchItemFailures": self.response.batch_item_failures });
        if let Some(state) = &self.state {
            response["state"] = state.clone();
        }
        response
    }

    /// The sequence number Lambda will resume the shard from, if any.
    pub fn checkpoint(&self) -> Option<&str> {
        self.response.batch_item_failures.first()?.item_identifier.as_deref()
    }

    /// Counts over the invocation.
    pub fn summary(&self) -> &BatchSummary {
        &self.summary
    }
}

impl Conclude for BatchOutcome {
    fn conclude(settled: Settled<'_>) -> Self {
        BatchOutcome::of(&settled)
    }
}
