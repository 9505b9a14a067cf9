//! [`EventSourceMapping`]: Lambda's Kinesis event source mapping, simulated in process, to
//! see what a processor does under Lambda's retry and checkpoint rules without deploying.
//!
//! The rules follow the AWS documentation; each has a test that cites it:
//! - *Lambda parameters for Kinesis event source mappings*: `BatchSize` (default 100, at
//!   most 10,000), `MaximumBatchingWindowInSeconds`, `MaximumRetryAttempts` and
//!   `MaximumRecordAgeInSeconds` (-1: infinite), `ParallelizationFactor` (1 to 10),
//!   `BisectBatchOnFunctionError`, `FunctionResponseTypes`.
//! - *Configuring partial batch response with Kinesis Data Streams and Lambda*: the lowest
//!   reported sequence number is the checkpoint; an empty or null list (or response) is a
//!   complete success; an empty or null `itemIdentifier`, or one under a wrong key name, is
//!   a complete failure; without `ReportBatchItemFailures` the response is ignored; a
//!   partial response with bisection splits the batch at the reported record.
//! - *Retain discarded batch records for a Kinesis Data Streams event source*: a function
//!   error (or timeout) retries the whole batch until the retries or the record age run
//!   out, then the records are discarded to the on-failure destination; splitting a batch
//!   does not consume the retry quota.
//! - *Lambda quotas*: an invocation payload holds at most 6 MB.
//! - *Using Lambda with Kinesis*: records with one partition key are processed in order,
//!   also with a parallelization factor above 1.

mod function;
mod stream;

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Value};

pub use function::{FnFunction, Function, Invocation};
pub use stream::{Put, SimulatedStream, StreamRecord};

use super::MemoryDeadLetter;
use crate::dead_letter::DeadLetter;
use crate::sequence;

/// The most an invocation payload holds: 6 MB.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// What the mapping does with a reported `itemIdentifier` that is not in the batch. AWS
/// does not document it; a whole-batch failure is the safe reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownItemIdentifier {
    /// Retry the whole batch (the default).
    #[default]
    WholeBatchFailure,
    /// Ignore the identifier.
    Ignore,
}

/// Lambda's Kinesis event source mapping, with its real parameters.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use kinesis_processor::{kinesis_processor, RecordError};
/// use kinesis_processor::testing::{EventSourceMapping, SimulatedStream};
///
/// #[kinesis_processor(format = text)]
/// async fn count(_line: String) -> Result<(), RecordError> { Ok(()) }
///
/// let mut stream = SimulatedStream::new("lines", 2);
/// for n in 0..250 {
///     stream.put(&format!("key-{}", n % 7), format!("line {n}").as_bytes());
/// }
/// let report = EventSourceMapping::new().batch_size(100).run(&stream, &count()).await;
/// assert_eq!(report.duplicates(), 0);
/// assert!(report.discarded().is_empty());
/// assert!(report.invocations() >= 3);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct EventSourceMapping {
    batch_size: usize,
    maximum_batching_window: Duration,
    maximum_retry_attempts: i64,
    maximum_record_age: Option<Duration>,
    bisect_batch_on_function_error: bool,
    report_batch_item_failures: bool,
    parallelization_factor: usize,
    function_timeout: Duration,
    unknown_item_identifier: UnknownItemIdentifier,
    max_invocations: usize,
    dead_letters: Option<MemoryDeadLetter>,
}

impl Default for EventSourceMapping {
    fn default() -> Self {
        Self::new()
    }
}

impl EventSourceMapping {
    /// A mapping with `ReportBatchItemFailures` on and AWS's defaults otherwise: batches
    /// of 100, no batching window, infinite retries and record age, no bisection, one batch
    /// per shard at a time, and a 3-second function timeout (Lambda's default).
    pub fn new() -> Self {
        EventSourceMapping {
            batch_size: 100,
            maximum_batching_window: Duration::ZERO,
            maximum_retry_attempts: -1,
            maximum_record_age: None,
            bisect_batch_on_function_error: false,
            report_batch_item_failures: true,
            parallelization_factor: 1,
            function_timeout: Duration::from_secs(3),
            unknown_item_identifier: UnknownItemIdentifier::default(),
            max_invocations: 1_000_000,
            dead_letters: None,
        }
    }

    /// `BatchSize`: records per invocation, 1 to 10,000.
    ///
    /// # Panics
    ///
    /// Outside 1 to 10,000, as the API refuses it.
    pub fn batch_size(mut self, records: usize) -> Self {
        assert!((1..=10_000).contains(&records), "BatchSize is 1 to 10,000");
        self.batch_size = records;
        self
    }

    /// `MaximumBatchingWindowInSeconds`: how long to wait for a full batch, 0 to 300 s. The
    /// simulated stream is filled before the mapping runs, so a batch never waits: this is
    /// checked and kept for the record.
    ///
    /// # Panics
    ///
    /// Above 300 seconds.
    pub fn maximum_batching_window(mut self, window: Duration) -> Self {
        assert!(window <= Duration::from_secs(300), "MaximumBatchingWindowInSeconds is 0 to 300");
        self.maximum_batching_window = window;
        self
    }

    /// `MaximumRetryAttempts`: -1 (infinite, the default) to 10,000.
    ///
    /// # Panics
    ///
    /// Outside -1 to 10,000.
    pub fn maximum_retry_attempts(mut self, attempts: i64) -> Self {
        assert!((-1..=10_000).contains(&attempts), "MaximumRetryAttempts is -1 to 10,000");
        self.maximum_retry_attempts = attempts;
        self
    }

    /// `MaximumRecordAgeInSeconds`: records older than this are discarded; `None` is -1,
    /// infinite (the default). Otherwise 60 s to 604,800 s.
    ///
    /// # Panics
    ///
    /// Outside 60 to 604,800 seconds.
    pub fn maximum_record_age(mut self, age: Option<Duration>) -> Self {
        if let Some(age) = age {
            assert!(
                (Duration::from_secs(60)..=Duration::from_secs(604_800)).contains(&age),
                "MaximumRecordAgeInSeconds is -1 or 60 to 604,800"
            );
        }
        self.maximum_record_age = age;
        self
    }

    /// `BisectBatchOnFunctionError`.
    pub fn bisect_batch_on_function_error(mut self, bisect: bool) -> Self {
        self.bisect_batch_on_function_error = bisect;
        self
    }

    /// `FunctionResponseTypes: [ReportBatchItemFailures]` (on by default here).
    pub fn report_batch_item_failures(mut self, report: bool) -> Self {
        self.report_batch_item_failures = report;
        self
    }

    /// `ParallelizationFactor`: concurrent batches per shard, 1 to 10; records of one
    /// partition key stay in one of them, in order.
    ///
    /// # Panics
    ///
    /// Outside 1 to 10.
    pub fn parallelization_factor(mut self, factor: usize) -> Self {
        assert!((1..=10).contains(&factor), "ParallelizationFactor is 1 to 10");
        self.parallelization_factor = factor;
        self
    }

    /// The function's timeout, given to each invocation as its time left.
    pub fn function_timeout(mut self, timeout: Duration) -> Self {
        self.function_timeout = timeout;
        self
    }

    /// What to do with a reported identifier that is not in the batch.
    pub fn unknown_item_identifier(mut self, rule: UnknownItemIdentifier) -> Self {
        self.unknown_item_identifier = rule;
        self
    }

    /// Stops after this many invocations (default a million), so that a function that
    /// never succeeds under infinite retries ends the run; the report says it stalled.
    pub fn max_invocations(mut self, invocations: usize) -> Self {
        self.max_invocations = invocations;
        self
    }

    /// The processor's in-memory dead-letter sink, whose letters the report then lists.
    pub fn dead_letters(mut self, sink: MemoryDeadLetter) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// Drives `function` over every shard of `stream` until all are drained.
    pub async fn run(&self, stream: &SimulatedStream, function: &impl Function) -> MappingReport {
        let started = Instant::now();
        let shared = Shared {
            deliveries: (0..stream.shard_count())
                .map(|shard| vec![0; stream.records(shard).len()])
                .collect::<Vec<_>>()
                .into(),
            log: Mutex::new(Log::default()),
        };
        let lanes: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = (0..stream.shard_count())
            .flat_map(|shard| (0..self.parallelization_factor).map(move |lane| (shard, lane)))
            .map(|(shard, lane)| {
                let records = lane_records(stream, shard, lane, self.parallelization_factor);
                let lane =
                    Lane { mapping: self, stream, shard, records, function, shared: &shared };
                Box::pin(lane.drain()) as Pin<Box<dyn Future<Output = ()> + '_>>
            })
            .collect();
        join_all(lanes).await;
        let log = shared.log.into_inner().unwrap_or_else(|e| e.into_inner());
        let deliveries = shared.deliveries.into_inner().unwrap_or_else(|e| e.into_inner());
        MappingReport {
            deliveries: deliveries
                .into_iter()
                .enumerate()
                .flat_map(|(shard, counts)| {
                    let records = stream.records(shard);
                    counts
                        .into_iter()
                        .enumerate()
                        .map(move |(i, n)| (records[i].sequence_number.clone(), n))
                })
                .collect(),
            invocations: log.invocations,
            function_errors: log.function_errors,
            timeouts: log.timeouts,
            partial_responses: log.partial_responses,
            discarded: log.discarded,
            expired_by_retention: log.expired_by_retention,
            stalled: log.invocations >= self.max_invocations,
            dead_letters: self
                .dead_letters
                .as_ref()
                .map(MemoryDeadLetter::records)
                .unwrap_or_default(),
            wall_time: started.elapsed(),
        }
    }
}

/// The indexes of a shard's records that belong to one of its parallel lanes: records of
/// a partition key always land in the same lane.
fn lane_records(stream: &SimulatedStream, shard: usize, lane: usize, lanes: usize) -> Vec<usize> {
    stream
        .records(shard)
        .iter()
        .enumerate()
        .filter(|(_, record)| {
            lanes == 1
                || (crate::testing::hash_key_of(&record.partition_key) % lanes as u128) as usize
                    == lane
        })
        .map(|(index, _)| index)
        .collect()
}

/// What the lanes share while they run.
struct Shared {
    /// Deliveries per record, per shard.
    deliveries: Mutex<Vec<Vec<u32>>>,
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    invocations: usize,
    function_errors: usize,
    timeouts: usize,
    partial_responses: usize,
    discarded: Vec<OnFailureRecord>,
    expired_by_retention: usize,
}

/// What became of one invocation, for the mapping's rules.
enum Verdict {
    Success,
    /// Retry from this position of the batch.
    PartialFrom(usize),
    /// The response's checkpoint is unusable: the whole batch failed.
    WholeFailure,
    /// The function failed or timed out.
    FunctionError(&'static str),
}

/// One shard (or one parallel lane of it) being drained.
struct Lane<'a, F> {
    mapping: &'a EventSourceMapping,
    stream: &'a SimulatedStream,
    shard: usize,
    /// Indexes into the shard's records, in order.
    records: Vec<usize>,
    function: &'a F,
    shared: &'a Shared,
}

/// A run of consecutive lane records, with the retries it has used.
struct Work {
    start: usize,
    end: usize,
    retries: i64,
}

impl<F: Function> Lane<'_, F> {
    async fn drain(self) {
        let mut position = 0;
        while position < self.records.len() {
            if self.stalled() {
                return;
            }
            position = self.skip_expired_by_retention(position);
            if position >= self.records.len() {
                return;
            }
            let end = self.batch_end(position);
            let mut queue = vec![Work { start: position, end, retries: 0 }];
            while let Some(work) = queue.pop() {
                if self.stalled() {
                    return;
                }
                queue.extend(self.attempt(work).await.into_iter().rev());
            }
            position = end;
        }
    }

    fn stalled(&self) -> bool {
        self.shared.log.lock().unwrap().invocations >= self.mapping.max_invocations
    }

    fn record(&self, lane_position: usize) -> &StreamRecord {
        &self.stream.records(self.shard)[self.records[lane_position]]
    }

    /// Records past the stream's retention are gone before anyone reads them.
    fn skip_expired_by_retention(&self, mut position: usize) -> usize {
        let now = SystemTime::now();
        let retention = self.stream.retention_period();
        while position < self.records.len() && age(self.record(position), now) > retention {
            self.shared.log.lock().unwrap().expired_by_retention += 1;
            position += 1;
        }
        position
    }

    /// The end of the batch starting at `start`: `BatchSize` records, or fewer when the
    /// payload would pass 6 MB.
    fn batch_end(&self, start: usize) -> usize {
        let mut size = EVENT_OVERHEAD;
        let mut end = start;
        while end < self.records.len() && end - start < self.mapping.batch_size {
            let next = record_json_size(self.record(end), self.stream.arn());
            if end > start && size + next > MAX_PAYLOAD {
                break;
            }
            size += next;
            end += 1;
        }
        end
    }

    /// Invokes the function with one run of records; answers the runs still to do.
    async fn attempt(&self, mut work: Work) -> Vec<Work> {
        work.start = self.discard_too_old(work.start, work.end);
        if work.start >= work.end {
            return Vec::new();
        }
        let verdict = self.invoke(work.start, work.end).await;
        let (retry_from, function_error) = match verdict {
            Verdict::Success => return Vec::new(),
            Verdict::PartialFrom(offset) => (work.start + offset, None),
            Verdict::WholeFailure => (work.start, None),
            Verdict::FunctionError(kind) => (work.start, Some(kind)),
        };
        // Splitting a failed batch does not consume the retry quota.
        if function_error.is_some()
            && self.mapping.bisect_batch_on_function_error
            && work.end - work.start > 1
        {
            let middle = work.start + (work.end - work.start) / 2;
            return vec![
                Work { start: work.start, end: middle, retries: work.retries },
                Work { start: middle, end: work.end, retries: work.retries },
            ];
        }
        let limit = self.mapping.maximum_retry_attempts;
        if limit >= 0 && work.retries >= limit {
            self.discard(
                retry_from,
                work.end,
                "RetryAttemptsExhausted",
                function_error,
                work.retries + 1,
            );
            return Vec::new();
        }
        vec![Work { start: retry_from, end: work.end, retries: work.retries + 1 }]
    }

    /// Discards the leading records older than `MaximumRecordAgeInSeconds`.
    fn discard_too_old(&self, start: usize, end: usize) -> usize {
        let Some(max_age) = self.mapping.maximum_record_age else { return start };
        let now = SystemTime::now();
        let mut first_young = start;
        while first_young < end && age(self.record(first_young), now) > max_age {
            first_young += 1;
        }
        if first_young > start {
            self.discard(start, first_young, "RecordAgeExceeded", None, 0);
        }
        first_young
    }

    async fn invoke(&self, start: usize, end: usize) -> Verdict {
        let batch: Vec<&StreamRecord> =
            (start..end).map(|position| self.record(position)).collect();
        let shard_id = self.stream.shard_ids().nth(self.shard).unwrap_or_default();
        let payload = event_payload(&batch, shard_id, self.stream.arn());
        {
            let mut deliveries = self.shared.deliveries.lock().unwrap();
            for position in start..end {
                deliveries[self.shard][self.records[position]] += 1;
            }
            self.shared.log.lock().unwrap().invocations += 1;
        }
        let invocation = self.function.invoke(payload, self.mapping.function_timeout).await;
        let mut log = self.shared.log.lock().unwrap();
        match invocation {
            Invocation::Error(_) => {
                log.function_errors += 1;
                Verdict::FunctionError("Unhandled")
            }
            Invocation::TimedOut => {
                log.timeouts += 1;
                Verdict::FunctionError("Unhandled")
            }
            Invocation::Response(_) if !self.mapping.report_batch_item_failures => Verdict::Success,
            Invocation::Response(response) => {
                let verdict = interpret(&response, &batch, self.mapping.unknown_item_identifier);
                if let Verdict::PartialFrom(_) = verdict {
                    log.partial_responses += 1;
                }
                verdict
            }
        }
    }

    /// Sends the records `start..end` to the on-failure destination.
    fn discard(
        &self,
        start: usize,
        end: usize,
        condition: &str,
        function_error: Option<&str>,
        invocations: i64,
    ) {
        let first = self.record(start);
        let last = self.record(end - 1);
        let shard_id = self.stream.shard_ids().nth(self.shard).unwrap_or_default().to_owned();
        let mut response_context = json!({ "statusCode": 200, "executedVersion": "$LATEST" });
        if let Some(kind) = function_error {
            response_context["functionError"] = json!(kind);
        }
        let document = json!({
            "requestContext": {
                "requestId": format!("simulated-{}-{}", shard_id, first.sequence_number),
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:simulated",
                "condition": condition,
                "approximateInvokeCount": invocations,
            },
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": iso8601(SystemTime::now()),
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first.sequence_number,
                "endSequenceNumber": last.sequence_number,
                "approximateArrivalOfFirstRecord": iso8601(first.arrival),
                "approximateArrivalOfLastRecord": iso8601(last.arrival),
                "batchSize": end - start,
                "streamArn": self.stream.arn(),
            },
        });
        let sequence_numbers =
            (start..end).map(|p| self.record(p).sequence_number.clone()).collect();
        self.shared
            .log
            .lock()
            .unwrap()
            .discarded
            .push(OnFailureRecord { document, sequence_numbers });
    }
}

/// Applies the partial batch response rules to a response.
fn interpret(response: &Value, batch: &[&StreamRecord], unknown: UnknownItemIdentifier) -> Verdict {
    let failures = match response {
        Value::Null => return Verdict::Success,
        Value::Object(object) => match object.get("batchItemFailures") {
            None | Some(Value::Null) => return Verdict::Success,
            Some(Value::Array(failures)) if failures.is_empty() => return Verdict::Success,
            Some(Value::Array(failures)) => failures,
            Some(_) => return Verdict::WholeFailure,
        },
        _ => return Verdict::WholeFailure,
    };
    let mut lowest: Option<usize> = None;
    for failure in failures {
        let identifier = match failure.get("itemIdentifier") {
            Some(Value::String(identifier)) if !identifier.is_empty() => identifier,
            // Null, empty, not a string, or under a wrong key name.
            _ => return Verdict::WholeFailure,
        };
        let Some(position) = batch.iter().position(|record| &record.sequence_number == identifier)
        else {
            match unknown {
                UnknownItemIdentifier::WholeBatchFailure => return Verdict::WholeFailure,
                UnknownItemIdentifier::Ignore => continue,
            }
        };
        let lower = lowest.is_none_or(|low| {
            sequence::compare(&batch[position].sequence_number, &batch[low].sequence_number).is_lt()
        });
        if lower {
            lowest = Some(position);
        }
    }
    match lowest {
        Some(position) => Verdict::PartialFrom(position),
        None => Verdict::Success,
    }
}

fn age(record: &StreamRecord, now: SystemTime) -> Duration {
    now.duration_since(record.arrival).unwrap_or_default()
}

/// `{"Records":[` and `]}`.
const EVENT_OVERHEAD: usize = 14;

/// The bytes one record takes in the event (an upper bound, for the 6 MB limit).
fn record_json_size(record: &StreamRecord, arn: &str) -> usize {
    let data = record.data.len().div_ceil(3) * 4;
    2 * record.sequence_number.len() + record.partition_key.len() * 6 + data + 2 * arn.len() + 320
}

/// The invocation payload for `batch`: a Lambda Kinesis event.
fn event_payload(batch: &[&StreamRecord], shard_id: &str, arn: &str) -> Vec<u8> {
    let records: Vec<Value> = batch
        .iter()
        .map(|record| {
            let mut kinesis = json!({
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record.partition_key,
                "sequenceNumber": record.sequence_number,
                "data": base64::engine::general_purpose::STANDARD.encode(&record.data),
                "approximateArrivalTimestamp": epoch_seconds(record.arrival),
            });
            if let Some(key) = &record.explicit_hash_key {
                kinesis["explicitHashKey"] = json!(key);
            }
            json!({
                "kinesis": kinesis,
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard_id}:{}", record.sequence_number),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
                "awsRegion": "us-east-1",
                "eventSourceARN": arn,
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "Records": records })).expect("an event serializes")
}

fn epoch_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as f64 / 1000.0
}

/// `2019-11-14T18:16:05.271Z`.
fn iso8601(at: SystemTime) -> String {
    let millis = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    let (days, ms_of_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let seconds = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        ms_of_day % 1000
    )
}

/// The calendar date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Runs futures together on the current task until all are done.
async fn join_all(mut futures: Vec<Pin<Box<dyn Future<Output = ()> + '_>>>) {
    poll_fn(|cx| {
        futures.retain_mut(|future| future.as_mut().poll(cx).is_pending());
        if futures.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// A record of a batch Lambda gave up on, as its on-failure destination receives it.
#[derive(Clone, Debug)]
pub struct OnFailureRecord {
    /// The JSON document Lambda sends: `requestContext`, `responseContext`, `version`,
    /// `timestamp`, `KinesisBatchInfo`.
    pub document: Value,
    /// The sequence numbers of the discarded records.
    pub sequence_numbers: Vec<String>,
}

/// What a simulated run did.
#[derive(Clone, Debug)]
pub struct MappingReport {
    deliveries: HashMap<String, u32>,
    invocations: usize,
    function_errors: usize,
    timeouts: usize,
    partial_responses: usize,
    discarded: Vec<OnFailureRecord>,
    expired_by_retention: usize,
    stalled: bool,
    dead_letters: Vec<DeadLetter>,
    wall_time: Duration,
}

impl MappingReport {
    /// How many times the record with `sequence_number` was delivered.
    pub fn deliveries(&self, sequence_number: &str) -> u32 {
        self.deliveries.get(sequence_number).copied().unwrap_or(0)
    }

    /// Deliveries beyond each record's first, over the run.
    pub fn duplicates(&self) -> u64 {
        self.deliveries.values().map(|n| u64::from(n.saturating_sub(1))).sum()
    }

    /// Records never delivered (discarded for age, lost to retention, or not reached).
    pub fn never_delivered(&self) -> usize {
        self.deliveries.values().filter(|n| **n == 0).count()
    }

    /// Invocations of the function.
    pub fn invocations(&self) -> usize {
        self.invocations
    }

    /// Invocations that ended in a function error.
    pub fn function_errors(&self) -> usize {
        self.function_errors
    }

    /// Invocations that ran past the function timeout.
    pub fn timeouts(&self) -> usize {
        self.timeouts
    }

    /// Invocations whose response named a record to resume from (a partial batch).
    pub fn partial_responses(&self) -> usize {
        self.partial_responses
    }

    /// What the on-failure destination received.
    pub fn discarded(&self) -> &[OnFailureRecord] {
        &self.discarded
    }

    /// Records that passed the stream's retention before they were read.
    pub fn expired_by_retention(&self) -> usize {
        self.expired_by_retention
    }

    /// Whether the run stopped at `max_invocations` rather than draining the stream.
    pub fn stalled(&self) -> bool {
        self.stalled
    }

    /// The dead letters of the sink given with [`EventSourceMapping::dead_letters`].
    pub fn dead_letters(&self) -> &[DeadLetter] {
        &self.dead_letters
    }

    /// How long the run took.
    pub fn wall_time(&self) -> Duration {
        self.wall_time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_8601_in_utc() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let at = UNIX_EPOCH + Duration::from_millis(1_573_755_365_271);
        assert_eq!(iso8601(at), "2019-11-14T18:16:05.271Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&iso8601(leap)[..10], "2000-02-29");
    }
}
