//! log-to-json: access-log lines (Common Log Format) in, one JSON document per line out,
//! written to S3 under a key made of the record's position in the stream, so that a
//! redelivered record overwrites its own document instead of duplicating it.
//!
//! A line that does not parse is rejected: it is dead-lettered to S3 with its data.

use kinesis_processor::dead_letter::{LogDeadLetter, S3DeadLetter};
use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
use serde::Serialize;

/// One access-log line: `host ident user [time] "method path protocol" status bytes`.
#[derive(Debug, PartialEq, Serialize)]
struct AccessLog<'a> {
    host: &'a str,
    user: Option<&'a str>,
    time: &'a str,
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    status: u16,
    bytes: Option<u64>,
}

fn parse(line: &str) -> Option<AccessLog<'_>> {
    let (host, rest) = line.split_once(' ')?;
    let (_ident, rest) = rest.split_once(' ')?;
    let (user, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('[')?;
    let (time, rest) = rest.split_once("] \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut request = request.splitn(3, ' ');
    let (method, path, protocol) = (request.next()?, request.next()?, request.next()?);
    let (status, bytes) = rest.trim_end().split_once(' ')?;
    Some(AccessLog {
        host,
        user: (user != "-").then_some(user),
        time,
        method,
        path,
        protocol,
        status: status.parse().ok()?,
        bytes: if bytes == "-" { None } else { Some(bytes.parse().ok()?) },
    })
}

/// Where documents go: a bucket when `OUTPUT_BUCKET` names one, the log otherwise.
enum Output {
    Bucket { client: aws_sdk_s3::Client, bucket: String },
    Log,
}

impl Output {
    async fn from_env() -> Output {
        match std::env::var("OUTPUT_BUCKET") {
            Ok(bucket) => {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                Output::Bucket { client: aws_sdk_s3::Client::new(&config), bucket }
            }
            Err(_) => Output::Log,
        }
    }

    async fn write(&self, key: &str, document: Vec<u8>) -> Result<(), RecordError> {
        match self {
            Output::Bucket { client, bucket } => {
                let body = aws_sdk_s3::primitives::ByteStream::from(document);
                client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type("application/json")
                    .body(body)
                    .send()
                    .await?;
            }
            Output::Log => {
                tracing::info!(key, document = %String::from_utf8_lossy(&document), "document")
            }
        }
        Ok(())
    }
}

/// Parses a line and writes its document; a line that does not parse is rejected.
#[kinesis_processor(format = text, concurrency = 16, metrics_namespace = "LogToJson")]
async fn to_json(line: String, meta: &RecordMeta, output: &Output) -> Result<(), RecordError> {
    let entry = parse(&line).ok_or_else(|| RecordError::reject("not a Common Log Format line"))?;
    let document = serde_json::to_vec(&entry)?;
    let key = format!(
        "logs/{}/{}/{}-{}.json",
        meta.stream_name(),
        meta.shard_id().unwrap_or("unknown-shard"),
        meta.sequence_number(),
        meta.sub_sequence_number().unwrap_or(0)
    );
    output.write(&key, document).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), kinesis_processor::Error> {
    let processor = to_json().state(Output::from_env().await);
    if std::env::var_os("DEAD_LETTER_BUCKET").is_some() {
        let bucket = S3DeadLetter::from_env("DEAD_LETTER_BUCKET").await?;
        return processor.dead_letter(bucket).run().await;
    }
    processor.dead_letter(LogDeadLetter::new()).run().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_common_log_format_line_parses_field_by_field() {
        let line =
            r#"203.0.113.9 - ada [26/Nov/2026:05:00:01 +0000] "GET /pricing HTTP/1.1" 200 5120"#;
        assert_eq!(
            parse(line),
            Some(AccessLog {
                host: "203.0.113.9",
                user: Some("ada"),
                time: "26/Nov/2026:05:00:01 +0000",
                method: "GET",
                path: "/pricing",
                protocol: "HTTP/1.1",
                status: 200,
                bytes: Some(5120),
            })
        );
        let anonymous = r#"198.51.100.7 - - [26/Nov/2026:05:00:02 +0000] "HEAD / HTTP/2" 304 -"#;
        assert_eq!(parse(anonymous).map(|e| (e.user, e.bytes)), Some((None, None)));
        assert_eq!(parse("garbage"), None);
        assert_eq!(parse(r#"h - - [t] "GET / HTTP/1.1" abc 1"#), None);
    }
}
