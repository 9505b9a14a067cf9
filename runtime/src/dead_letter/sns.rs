//! [`SnsDeadLetter`]: dead letters published to an SNS topic.

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use super::aws::{all_failed, call_failed, sdk_config, stream_and_shard, target_from_env};
use super::batching::{answers, send_in_calls, MAX_ENTRIES};
use super::{DeadLetter, DeadLetterSink, SinkError};
use crate::error::Error;

/// The largest SNS message, and the most one `PublishBatch` call carries: 256 KiB.
pub const SNS_MAX_MESSAGE: usize = 256 * 1024;

/// Publishes each dead letter as one SNS message (the JSON envelope, the reason as the
/// `reason` message attribute, so that subscriptions can filter on it), ten to a
/// `PublishBatch` call. An envelope over 256 KiB is a reported failure. A FIFO topic (ARN
/// ending in `.fifo`) gets the shard id as message group and the sequence number as
/// deduplication id.
///
/// IAM: `sns:Publish` on the topic (it also authorizes `PublishBatch`); with a
/// KMS-encrypted topic, `kms:GenerateDataKey` and `kms:Decrypt` on its key.
///
/// ```no_run
/// use kinesis_processor::dead_letter::SnsDeadLetter;
/// # async fn main_() -> Result<(), kinesis_processor::Error> {
/// let sink = SnsDeadLetter::from_env("DEAD_LETTER_TOPIC_ARN").await?;
/// # let _ = sink; Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SnsDeadLetter {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsDeadLetter {
    /// Publishes to the topic `topic_arn` with `client`.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsDeadLetter { client, topic_arn: topic_arn.into() }
    }

    /// Publishes to the topic whose ARN is in environment variable `var`, with a client
    /// configured from the environment.
    pub async fn from_env(var: &str) -> Result<Self, Error> {
        let topic_arn = target_from_env(var, "dead-letter topic's ARN")?;
        Ok(Self::new(aws_sdk_sns::Client::new(&sdk_config().await), topic_arn))
    }

    fn entry(
        &self,
        index: usize,
        letter: &DeadLetter,
    ) -> Result<PublishBatchRequestEntry, SinkError> {
        let message = serde_json::to_string(letter).map_err(SinkError::new)?;
        let size = message_size(&message, letter);
        if size > SNS_MAX_MESSAGE {
            return Err(SinkError::new(format!(
                "the dead letter takes {size} bytes, more than the {SNS_MAX_MESSAGE} an SNS message holds"
            )));
        }
        let reason = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(letter.reason.as_str())
            .build()
            .map_err(SinkError::new)?;
        let mut entry = PublishBatchRequestEntry::builder()
            .id(index.to_string())
            .message(message)
            .message_attributes("reason", reason);
        if self.topic_arn.ends_with(".fifo") {
            let (_, shard) = stream_and_shard(letter);
            let sequence = letter.sequence_number.as_deref().unwrap_or("unknown");
            let deduplication = format!("{sequence}-{}", letter.sub_sequence_number.unwrap_or(0));
            entry = entry.message_group_id(shard).message_deduplication_id(deduplication);
        }
        entry.build().map_err(SinkError::new)
    }

    async fn publish_call(
        &self,
        entries: Vec<PublishBatchRequestEntry>,
    ) -> Vec<Result<(), SinkError>> {
        let count = entries.len();
        let mut request = self.client.publish_batch().topic_arn(&self.topic_arn);
        for (id, mut entry) in entries.into_iter().enumerate() {
            entry.id = id.to_string();
            request = request.publish_batch_request_entries(entry);
        }
        match request.send().await {
            Ok(output) => answers(
                count,
                output.successful().iter().filter_map(|entry| entry.id()),
                output.failed().iter().map(|entry| {
                    let message = entry.message().unwrap_or("no message");
                    (entry.id(), format!("SNS refused the message: {}: {message}", entry.code()))
                }),
            ),
            Err(error) => all_failed(count, call_failed(error)),
        }
    }
}

/// What SNS counts against the message size: the message and the attributes.
fn message_size(message: &str, letter: &DeadLetter) -> usize {
    message.len() + "reason".len() + "String".len() + letter.reason.as_str().len()
}

impl DeadLetterSink for SnsDeadLetter {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), SinkError>> {
        let prepared = letters
            .iter()
            .enumerate()
            .map(|(index, letter)| {
                self.entry(index, letter).map(|entry| {
                    let size = entry.message().len() + 20;
                    (entry, size)
                })
            })
            .collect();
        send_in_calls(prepared, SNS_MAX_MESSAGE, |entries| self.publish_call(entries)).await
    }

    fn batch_size(&self) -> usize {
        MAX_ENTRIES
    }
}
