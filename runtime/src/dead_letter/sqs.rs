//! [`SqsDeadLetter`]: dead letters as messages on an SQS queue.

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::aws::{all_failed, call_failed, sdk_config, stream_and_shard, target_from_env};
use super::batching::{answers, send_in_calls, MAX_ENTRIES};
use super::{DeadLetter, DeadLetterSink, SinkError};
use crate::error::Error;

/// The default largest message: 256 KiB, which every SQS queue accepts.
pub const SQS_DEFAULT_MAX_MESSAGE: usize = 256 * 1024;

/// Sends each dead letter as one SQS message (the JSON envelope as its body, the reason as
/// the `reason` message attribute), ten to a `SendMessageBatch` call.
///
/// An envelope larger than the queue takes (256 KiB unless
/// [`max_message_size`](Self::max_message_size) says more) is stored whole through the S3
/// sink given with [`overflow_to`](Self::overflow_to) (feature `s3`), and a pointer message
/// (the envelope without its data, with `dataLocation`) goes to the queue; without one, the
/// record is a reported failure. A FIFO queue (URL ending in `.fifo`) gets the shard id as
/// message group and the sequence number as deduplication id.
///
/// IAM: `sqs:SendMessage` on the queue (it also authorizes `SendMessageBatch`); with a
/// KMS-encrypted queue, `kms:GenerateDataKey` and `kms:Decrypt` on its key.
///
/// ```no_run
/// # use kinesis_processor::{kinesis_processor, RecordError};
/// use kinesis_processor::dead_letter::SqsDeadLetter;
/// # #[kinesis_processor(format = text)]
/// # async fn track(line: String) -> Result<(), RecordError> { Ok(()) }
///
/// # async fn main_() -> Result<(), kinesis_processor::Error> {
/// let dlq = SqsDeadLetter::from_env("DEAD_LETTER_QUEUE_URL").await?;
/// track().dead_letter(dlq).run().await
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SqsDeadLetter {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    max_message_size: usize,
    #[cfg(feature = "s3")]
    overflow: Option<super::S3DeadLetter>,
}

impl SqsDeadLetter {
    /// Sends to the queue at `queue_url` with `client`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsDeadLetter {
            client,
            queue_url: queue_url.into(),
            max_message_size: SQS_DEFAULT_MAX_MESSAGE,
            #[cfg(feature = "s3")]
            overflow: None,
        }
    }

    /// Sends to the queue whose URL is in environment variable `var`, with a client
    /// configured from the environment.
    pub async fn from_env(var: &str) -> Result<Self, Error> {
        let queue_url = target_from_env(var, "dead-letter queue's URL")?;
        Ok(Self::new(aws_sdk_sqs::Client::new(&sdk_config().await), queue_url))
    }

    /// The largest message the queue takes, in bytes (its `MaximumMessageSize`, at most
    /// 1 MiB); also the most one `SendMessageBatch` call carries.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Stores envelopes too large for the queue through `s3`, sending a pointer message.
    #[cfg(feature = "s3")]
    #[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
    pub fn overflow_to(mut self, s3: super::S3DeadLetter) -> Self {
        self.overflow = Some(s3);
        self
    }

    /// One queue entry for `letter`: the envelope, or a pointer to it in S3, or why neither
    /// fits.
    async fn entry(
        &self,
        index: usize,
        letter: &DeadLetter,
    ) -> Result<SendMessageBatchRequestEntry, SinkError> {
        let body = serde_json::to_string(letter).map_err(SinkError::new)?;
        let body = if message_size(&body, letter) <= self.max_message_size {
            body
        } else {
            self.pointer(letter, body.len()).await?
        };
        let reason = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(letter.reason.as_str())
            .build()
            .map_err(SinkError::new)?;
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(index.to_string())
            .message_body(body)
            .message_attributes("reason", reason);
        if self.queue_url.ends_with(".fifo") {
            let (_, shard) = stream_and_shard(letter);
            entry =
                entry.message_group_id(shard).message_deduplication_id(deduplication_id(letter));
        }
        entry.build().map_err(SinkError::new)
    }

    #[cfg(feature = "s3")]
    async fn pointer(&self, letter: &DeadLetter, size: usize) -> Result<String, SinkError> {
        let Some(s3) = &self.overflow else { return Err(too_large(size, self.max_message_size)) };
        let location = s3.store_one(letter).await?;
        // The whole envelope is in S3: the pointer keeps the coordinates and a bounded error.
        let error = truncate(&letter.error, POINTER_ERROR_LIMIT);
        let pointer =
            DeadLetter { data: None, data_location: Some(location), error, ..letter.clone() };
        let body = serde_json::to_string(&pointer).map_err(SinkError::new)?;
        if message_size(&body, letter) > self.max_message_size {
            return Err(too_large(body.len(), self.max_message_size));
        }
        Ok(body)
    }

    #[cfg(not(feature = "s3"))]
    async fn pointer(&self, _letter: &DeadLetter, size: usize) -> Result<String, SinkError> {
        Err(too_large(size, self.max_message_size))
    }
}

/// How much of the error text a pointer message keeps.
#[cfg(feature = "s3")]
const POINTER_ERROR_LIMIT: usize = 4096;

/// `text` cut to at most `limit` bytes on a character boundary, marked when cut.
#[cfg(feature = "s3")]
fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... (cut; the whole error is in the stored envelope)", &text[..end])
}

fn too_large(size: usize, max: usize) -> SinkError {
    SinkError::new(format!(
        "the dead letter takes {size} bytes, more than the queue's {max}; give the SQS sink an \
         S3 sink for large letters (`overflow_to`)"
    ))
}

/// What SQS counts against the message size: the body and the attributes.
fn message_size(body: &str, letter: &DeadLetter) -> usize {
    body.len() + "reason".len() + "String".len() + letter.reason.as_str().len()
}

/// A FIFO deduplication id: the record's place in the stream.
fn deduplication_id(letter: &DeadLetter) -> String {
    let sequence = letter.sequence_number.as_deref().unwrap_or("unknown");
    format!("{sequence}-{}", letter.sub_sequence_number.unwrap_or(0))
}

impl DeadLetterSink for SqsDeadLetter {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), SinkError>> {
        let mut prepared = Vec::with_capacity(letters.len());
        for (index, letter) in letters.iter().enumerate() {
            let entry = self.entry(index, letter).await;
            prepared.push(entry.map(|entry| {
                let size = entry.message_body().len() + "reason".len() + "String".len() + 20;
                (entry, size)
            }));
        }
        send_in_calls(prepared, self.max_message_size, |entries| self.send_call(entries)).await
    }

    fn batch_size(&self) -> usize {
        MAX_ENTRIES
    }
}

impl SqsDeadLetter {
    /// One `SendMessageBatch` call; entry ids are renumbered from 0 within the call.
    async fn send_call(
        &self,
        entries: Vec<SendMessageBatchRequestEntry>,
    ) -> Vec<Result<(), SinkError>> {
        let count = entries.len();
        let mut request = self.client.send_message_batch().queue_url(&self.queue_url);
        for (id, mut entry) in entries.into_iter().enumerate() {
            entry.id = id.to_string();
            request = request.entries(entry);
        }
        match request.send().await {
            Ok(output) => answers(
                count,
                output.successful().iter().map(|entry| entry.id()),
                output.failed().iter().map(|entry| {
                    let message = entry.message().unwrap_or("no message");
                    (entry.id(), format!("SQS refused the message: {}: {message}", entry.code()))
                }),
            ),
            Err(error) => all_failed(count, call_failed(error)),
        }
    }
}
