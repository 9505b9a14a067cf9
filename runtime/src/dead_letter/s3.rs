//! [`S3DeadLetter`]: dead letters as JSON-lines objects in an S3 bucket.

use aws_sdk_s3::primitives::ByteStream;

use super::aws::{all_failed, call_failed, sdk_config, stream_and_shard, target_from_env};
use super::{DeadLetter, DeadLetterSink, SinkError};
use crate::error::Error;

/// Writes an invocation's dead letters as one JSON-lines object (one envelope per line),
/// at `{prefix}{stream}/{shard}/{first sequence number}-{first sub-sequence number}.jsonl`.
/// A retry of the same batch writes the same key, so it overwrites rather than duplicates.
///
/// The default prefix is `dead-letters/`. It also stores, one object each, the envelopes
/// too large for an SQS queue ([`SqsDeadLetter::overflow_to`](super::SqsDeadLetter::overflow_to)).
///
/// IAM: `s3:PutObject` on `arn:aws:s3:::BUCKET/PREFIX*`; with SSE-KMS,
/// `kms:GenerateDataKey` on the bucket's key.
///
/// ```no_run
/// use kinesis_processor::dead_letter::S3DeadLetter;
/// # async fn main_() -> Result<(), kinesis_processor::Error> {
/// let sink = S3DeadLetter::from_env("DEAD_LETTER_BUCKET").await?.prefix("poison/");
/// # let _ = sink; Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct S3DeadLetter {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3DeadLetter {
    /// Writes to `bucket` with `client`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3DeadLetter { client, bucket: bucket.into(), prefix: "dead-letters/".into() }
    }

    /// Writes to the bucket named in environment variable `var`, with a client configured
    /// from the environment. With a custom endpoint (`AWS_ENDPOINT_URL`, as for a local S3),
    /// buckets are addressed by path rather than by host name.
    pub async fn from_env(var: &str) -> Result<Self, Error> {
        let bucket = target_from_env(var, "dead-letter bucket")?;
        let config = sdk_config().await;
        let custom_endpoint = config.endpoint_url().is_some();
        let s3_config =
            aws_sdk_s3::config::Builder::from(&config).force_path_style(custom_endpoint).build();
        Ok(Self::new(aws_sdk_s3::Client::from_conf(s3_config), bucket))
    }

    /// Puts objects under `prefix` (e.g. `"poison/"`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The object key for letters starting with `first`.
    fn key(&self, first: &DeadLetter, extension: &str) -> String {
        let (stream, shard) = stream_and_shard(first);
        let sequence = first.sequence_number.as_deref().unwrap_or("unknown");
        let sub = first.sub_sequence_number.unwrap_or(0);
        format!("{}{stream}/{shard}/{sequence}-{sub}.{extension}", self.prefix)
    }

    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), SinkError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(call_failed)
    }

    /// Stores one envelope as its own object; answers its `s3://` location. (Used by the SQS
    /// sink for envelopes too large for a queue.)
    #[cfg_attr(not(feature = "sqs"), allow(dead_code))]
    pub(crate) async fn store_one(&self, letter: &DeadLetter) -> Result<String, SinkError> {
        let key = self.key(letter, "json");
        let body = serde_json::to_vec(letter).map_err(SinkError::new)?;
        self.put(&key, body, "application/json").await?;
        Ok(format!("s3://{}/{key}", self.bucket))
    }
}

impl DeadLetterSink for S3DeadLetter {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), SinkError>> {
        let Some(first) = letters.first() else { return Vec::new() };
        let mut body = Vec::new();
        for letter in letters {
            if let Err(error) = serde_json::to_writer(&mut body, letter) {
                return all_failed(letters.len(), SinkError::new(error));
            }
            body.push(b'\n');
        }
        match self.put(&self.key(first, "jsonl"), body, "application/x-ndjson").await {
            Ok(()) => vec![Ok(()); letters.len()],
            Err(error) => all_failed(letters.len(), error),
        }
    }

    /// All of an invocation's letters in one object: sent when processing is done.
    fn batch_size(&self) -> usize {
        usize::MAX
    }
}
