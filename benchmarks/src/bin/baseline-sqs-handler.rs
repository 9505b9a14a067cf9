//! `examples/clickstream`'s job written by hand, without the framework: the like-for-like
//! contender of that example in `benchmarks/run` (stripped binary size, cold start).
//!
//! The loop of `baseline-handler` (the `KinesisEvent` through `aws_lambda_events`, whose
//! `data` comes base64-decoded, then a `serde_json` decode of each click) with the
//! example's work and its dead-letter queue: each click gets the country and city of its
//! IP address from the example's own lookup table and goes to the log as an enriched
//! event; a click that does not decode, or whose IP is not in the table, is a dead letter.
//! Dead letters go to the SQS queue whose URL is in `DEAD_LETTER_QUEUE_URL` (the variable
//! the example's template sets), with `aws-sdk-sqs` configured by `aws-config` from the
//! environment when the function starts, ten to a `SendMessageBatch` call as the
//! framework's SQS sink sends them; without that variable they go to the log. A letter the
//! queue does not take is reported in `batchItemFailures`, so that Lambda delivers the
//! batch again from that record.

use aws_config::BehaviorVersion;
use aws_lambda_events::encodings::{Base64Data, SecondTimestamp};
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use lambda_runtime::{service_fn, tracing, Error, LambdaEvent};
use serde::{Deserialize, Serialize};

/// The example's lookup table, the same file.
const GEO_CSV: &str = include_str!("../../../examples/clickstream/geo.csv");

/// The most entries one `SendMessageBatch` call takes.
const MAX_ENTRIES: usize = 10;

/// The most bytes one `SendMessageBatch` call carries: the default maximum message size,
/// which every queue accepts.
const MAX_CALL_BYTES: usize = 256 * 1024;

/// A click as the web tier writes it to the stream.
#[derive(Deserialize)]
struct Click {
    user_id: String,
    ip: String,
    url: String,
}

/// A click with its location, as it goes downstream.
#[derive(Serialize)]
struct EnrichedClick<'a> {
    user_id: &'a str,
    url: &'a str,
    country: &'a str,
    city: &'a str,
    sequence_number: &'a str,
}

/// One row of the lookup table: where the addresses starting with `prefix` are.
struct GeoEntry {
    prefix: &'static str,
    country: &'static str,
    city: &'static str,
}

/// Parses `prefix,country,city` lines; `#` starts a comment.
fn geo_table(csv: &'static str) -> Result<Vec<GeoEntry>, Error> {
    let mut entries = Vec::new();
    for (number, line) in csv.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [prefix, country, city] = fields[..] else {
            return Err(format!("geo.csv line {}: expected prefix,country,city", number + 1).into());
        };
        entries.push(GeoEntry { prefix, country, city });
    }
    Ok(entries)
}

/// A record that will not be processed, as the message that goes to the queue: why, where
/// it came from, and its data in base64, so that it can be inspected and replayed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeadLetter<'a> {
    reason: &'static str,
    error: String,
    request_id: &'a str,
    event_source_arn: Option<&'a str>,
    #[serde(rename = "eventID")]
    event_id: Option<&'a str>,
    sequence_number: &'a str,
    partition_key: &'a str,
    approximate_arrival_timestamp: &'a SecondTimestamp,
    data: &'a Base64Data,
}

impl<'a> DeadLetter<'a> {
    fn new(
        reason: &'static str,
        error: String,
        request_id: &'a str,
        record: &'a KinesisEventRecord,
    ) -> Self {
        DeadLetter {
            reason,
            error,
            request_id,
            event_source_arn: record.event_source_arn.as_deref(),
            event_id: record.event_id.as_deref(),
            sequence_number: &record.kinesis.sequence_number,
            partition_key: &record.kinesis.partition_key,
            approximate_arrival_timestamp: &record.kinesis.approximate_arrival_timestamp,
            data: &record.kinesis.data,
        }
    }
}

/// Where dead letters go.
enum DeadLetterQueue {
    /// The SQS queue at `queue_url`.
    Sqs { client: aws_sdk_sqs::Client, queue_url: String },
    /// The function's log, when no queue is configured (running locally).
    Log,
}

impl DeadLetterQueue {
    /// The queue named by `DEAD_LETTER_QUEUE_URL`, with a client configured from the
    /// environment (region, credentials, `AWS_ENDPOINT_URL`); the log without it.
    async fn from_env() -> Result<Self, Error> {
        let Ok(queue_url) = std::env::var("DEAD_LETTER_QUEUE_URL") else {
            return Ok(DeadLetterQueue::Log);
        };
        if queue_url.trim().is_empty() {
            return Err("DEAD_LETTER_QUEUE_URL is empty; it must name the dead-letter queue".into());
        }
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let client = aws_sdk_sqs::Client::new(&config);
        Ok(DeadLetterQueue::Sqs { client, queue_url: queue_url.trim().to_owned() })
    }

    /// Sends `letters`, in order; returns whether each was sent.
    async fn send(&self, letters: &[DeadLetter<'_>]) -> Vec<bool> {
        let mut sent = vec![false; letters.len()];
        let (client, queue_url) = match self {
            DeadLetterQueue::Sqs { client, queue_url } => (client, queue_url),
            DeadLetterQueue::Log => {
                for (letter, sent) in letters.iter().zip(&mut sent) {
                    match serde_json::to_string(letter) {
                        Ok(body) => {
                            tracing::warn!(letter = %body, "dead letter");
                            *sent = true;
                        }
                        Err(error) => tracing::error!(%error, "cannot write a dead letter"),
                    }
                }
                return sent;
            }
        };
        // One call per run of at most MAX_ENTRIES letters and MAX_CALL_BYTES of bodies; a
        // letter that cannot be written, or is larger than a call, is not sent.
        let mut call: Vec<(usize, SendMessageBatchRequestEntry)> = Vec::new();
        let mut call_bytes = 0;
        for (index, letter) in letters.iter().enumerate() {
            let entry = match entry(letter) {
                Ok(entry) => entry,
                Err(error) => {
                    let sequence_number = letter.sequence_number;
                    tracing::error!(%error, sequence_number, "cannot write a dead letter");
                    continue;
                }
            };
            // What SQS counts: the body and the attribute's name, type and value.
            let bytes = entry.message_body().len() + "reasonString".len() + letter.reason.len();
            if bytes > MAX_CALL_BYTES {
                tracing::error!(
                    bytes,
                    sequence_number = letter.sequence_number,
                    "dead letter too large for the queue"
                );
                continue;
            }
            if call.len() == MAX_ENTRIES || call_bytes + bytes > MAX_CALL_BYTES {
                send_call(client, queue_url, std::mem::take(&mut call), &mut sent).await;
                call_bytes = 0;
            }
            call.push((index, entry));
            call_bytes += bytes;
        }
        if !call.is_empty() {
            send_call(client, queue_url, call, &mut sent).await;
        }
        sent
    }
}

/// The queue message for `letter`: its JSON as the body, its reason as an attribute (for
/// filtering without reading the body). The entry id is set by the call that sends it.
fn entry(letter: &DeadLetter<'_>) -> Result<SendMessageBatchRequestEntry, Error> {
    let reason =
        MessageAttributeValue::builder().data_type("String").string_value(letter.reason).build()?;
    let entry = SendMessageBatchRequestEntry::builder()
        .id("0")
        .message_body(serde_json::to_string(letter)?)
        .message_attributes("reason", reason)
        .build()?;
    Ok(entry)
}

/// One `SendMessageBatch` call, each entry's id its place in `entries`; marks in `sent` the
/// letters the queue took.
async fn send_call(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    entries: Vec<(usize, SendMessageBatchRequestEntry)>,
    sent: &mut [bool],
) {
    let letters: Vec<usize> = entries.iter().map(|(index, _)| *index).collect();
    let mut request = client.send_message_batch().queue_url(queue_url);
    for (id, (_, mut entry)) in entries.into_iter().enumerate() {
        entry.id = id.to_string();
        request = request.entries(entry);
    }
    match request.send().await {
        Ok(output) => {
            for done in output.successful() {
                if let Some(&index) = done.id().parse::<usize>().ok().and_then(|id| letters.get(id))
                {
                    sent[index] = true;
                }
            }
            for failed in output.failed() {
                let message = failed.message().unwrap_or("no message");
                tracing::error!(code = failed.code(), message, "SQS refused a dead letter");
            }
        }
        Err(error) => {
            let error = aws_sdk_sqs::error::DisplayErrorContext(error);
            tracing::error!(%error, "SendMessageBatch failed");
        }
    }
}

/// What the handler keeps from one invocation to the next.
struct State {
    geo: Vec<GeoEntry>,
    dead_letters: DeadLetterQueue,
}

/// Enriches one click and logs it; the dead letter's reason and error if it cannot.
fn enrich(record: &KinesisEventRecord, geo: &[GeoEntry]) -> Result<(), (&'static str, String)> {
    let click: Click = serde_json::from_slice(&record.kinesis.data)
        .map_err(|error| ("decode_error", error.to_string()))?;
    let Some(location) = geo.iter().find(|entry| click.ip.starts_with(entry.prefix)) else {
        return Err(("rejected", format!("no location known for ip {}", click.ip)));
    };
    let enriched = EnrichedClick {
        user_id: &click.user_id,
        url: &click.url,
        country: location.country,
        city: location.city,
        sequence_number: &record.kinesis.sequence_number,
    };
    let enriched =
        serde_json::to_string(&enriched).map_err(|error| ("rejected", error.to_string()))?;
    // Downstream is the function's log here, as in the example.
    tracing::info!(click = %enriched, "enriched");
    Ok(())
}

/// One invocation: every click enriched or made a dead letter, then the dead letters sent.
async fn handle(
    event: LambdaEvent<KinesisEvent>,
    state: &State,
) -> Result<KinesisEventResponse, Error> {
    let request_id = event.context.request_id.as_str();
    let mut letters = Vec::new();
    for record in &event.payload.records {
        if let Err((reason, error)) = enrich(record, &state.geo) {
            letters.push(DeadLetter::new(reason, error, request_id, record));
        }
    }
    let sent = state.dead_letters.send(&letters).await;
    // Lambda starts the batch again from the lowest sequence number reported: the first
    // letter not sent, and every record after it, is delivered again.
    let mut response = KinesisEventResponse::default();
    if let Some((letter, _)) = letters.iter().zip(&sent).find(|(_, sent)| !**sent) {
        response.add_failure(letter.sequence_number);
    }
    Ok(response)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let state =
        State { geo: geo_table(GEO_CSV)?, dead_letters: DeadLetterQueue::from_env().await? };
    let state = &state;
    lambda_runtime::run(service_fn(move |event| handle(event, state))).await
}
