//! What the AWS sinks (and the DynamoDB idempotency store) share: reading their target from
//! the environment, loading the SDK configuration, and turning SDK errors into sink errors.

use aws_config::{BehaviorVersion, SdkConfig};

#[cfg(any(feature = "sqs", feature = "sns", feature = "s3"))]
use super::SinkError;
use crate::error::Error;

/// The value of environment variable `var`, which names a sink's target.
pub(crate) fn target_from_env(var: &str, what: &str) -> Result<String, Error> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
        Ok(_) => Err(Error::Config(format!("{var} is empty; it must name the {what}"))),
        Err(_) => Err(Error::Config(format!("{var} is not set; it must name the {what}"))),
    }
}

/// The SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`).
pub(crate) async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// An SDK error with its whole chain of causes, for every entry of the failed call.
#[cfg(any(feature = "sqs", feature = "sns", feature = "s3"))]
pub(crate) fn call_failed(error: impl std::error::Error + Send + Sync + 'static) -> SinkError {
    SinkError::new(format!("{}", aws_smithy_types::error::display::DisplayErrorContext(error)))
}

/// A failed call answers for each of its entries.
#[cfg(any(feature = "sqs", feature = "sns", feature = "s3"))]
pub(crate) fn all_failed(entries: usize, error: SinkError) -> Vec<Result<(), SinkError>> {
    vec![Err(error); entries]
}

/// The stream name and shard of a letter, for object keys and message groups.
#[cfg(any(feature = "sqs", feature = "sns", feature = "s3"))]
pub(crate) fn stream_and_shard(letter: &super::DeadLetter) -> (&str, &str) {
    let stream =
        letter.event_source_arn.as_deref().map_or("unknown-stream", crate::meta::stream_name);
    let shard = letter.shard_id.as_deref().unwrap_or("unknown-shard");
    (stream, shard)
}
