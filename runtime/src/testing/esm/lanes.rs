//! The lanes: each shard (or each parallel lane of one) drained batch by batch under the
//! mapping's retry, bisect and checkpoint rules.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::config::{EventSourceMapping, UnknownItemIdentifier};
use super::order::{lane_of, OrderWatch};
use super::payload::{event_payload, iso8601, record_json_size, EVENT_OVERHEAD, SEPARATOR};
use super::report::{Log, OnFailureRecord};
use super::{Function, InvocationResult, SimulatedStream, StreamRecord, MAX_PAYLOAD};
use crate::sequence;

/// The indexes of a shard's records that belong to one of its parallel lanes: records of
/// a partition key always land in the same lane.
pub(super) fn lane_records(
    stream: &SimulatedStream,
    shard: usize,
    lane: usize,
    lanes: usize,
) -> Vec<usize> {
    stream
        .records(shard)
        .iter()
        .enumerate()
        .filter(|(_, record)| lane_of(&record.partition_key, lanes) == lane)
        .map(|(index, _)| index)
        .collect()
}

/// What the lanes share while they run.
pub(super) struct Shared {
    /// Deliveries per record, per shard.
    pub(super) deliveries: Mutex<Vec<Vec<u32>>>,
    pub(super) log: Mutex<Log>,
    pub(super) order: Mutex<OrderWatch>,
    /// Set by a lane that stopped at `max_invocations` with records still to deliver.
    pub(super) stalled: AtomicBool,
}

/// What became of one invocation, for the mapping's rules.
enum Verdict {
    Success,
    /// Retry from this position of the batch.
    PartialFrom(usize),
    /// The response names no checkpoint that can be used: the whole batch failed.
    WholeFailure,
    /// The function failed or timed out.
    FunctionError(&'static str),
}

/// One shard (or one parallel lane of it) being drained.
pub(super) struct Lane<'a, F> {
    pub(super) mapping: &'a EventSourceMapping,
    pub(super) stream: &'a SimulatedStream,
    pub(super) shard: usize,
    /// Indexes into the shard's records, in order.
    pub(super) records: Vec<usize>,
    pub(super) function: &'a F,
    pub(super) shared: &'a Shared,
}

/// A run of consecutive lane records, with the retries it has used.
struct Work {
    start: usize,
    end: usize,
    retries: i64,
}

impl<F: Function> Lane<'_, F> {
    pub(super) async fn drain(self) {
        let mut position = 0;
        while position < self.records.len() {
            if self.out_of_invocations() {
                return;
            }
            position = self.skip_expired_by_retention(position);
            if position >= self.records.len() {
                return;
            }
            let end = self.batch_end(position);
            let mut queue = vec![Work { start: position, end, retries: 0 }];
            while let Some(work) = queue.pop() {
                if self.out_of_invocations() {
                    return;
                }
                queue.extend(self.attempt(work).await.into_iter().rev());
            }
            position = end;
        }
    }

    /// Whether `max_invocations` is used up; called with work left, so that a lane that
    /// drains on the last allowed invocation has not stalled.
    fn out_of_invocations(&self) -> bool {
        let out = self.shared.log.lock().unwrap().invocations >= self.mapping.max_invocations;
        if out {
            self.shared.stalled.store(true, Ordering::Relaxed);
        }
        out
    }

    fn record(&self, lane_position: usize) -> &StreamRecord {
        &self.stream.records(self.shard)[self.records[lane_position]]
    }

    /// Records past the stream's retention are gone before anyone reads them.
    fn skip_expired_by_retention(&self, mut position: usize) -> usize {
        let now = SystemTime::now();
        let retention = self.stream.retention_period();
        let start = position;
        while position < self.records.len() && age(self.record(position), now) > retention {
            self.shared.log.lock().unwrap().expired_by_retention += 1;
            position += 1;
        }
        self.finish(start, position);
        position
    }

    /// The end of the batch starting at `start`: `BatchSize` records, or fewer when the
    /// payload would pass 6 MB.
    fn batch_end(&self, start: usize) -> usize {
        let shard_id = self.stream.shard_ids().nth(self.shard).unwrap_or_default();
        let mut size = EVENT_OVERHEAD;
        let mut end = start;
        while end < self.records.len() && end - start < self.mapping.batch_size {
            let separator = if end > start { SEPARATOR } else { 0 };
            let next = separator + record_json_size(self.record(end), shard_id, self.stream.arn());
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
            Verdict::Success => {
                self.finish(work.start, work.end);
                return Vec::new();
            }
            Verdict::PartialFrom(offset) => {
                self.finish(work.start, work.start + offset);
                (work.start + offset, None)
            }
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

    /// Marks the lane's records `start..end` finished, for the order watch.
    fn finish(&self, start: usize, end: usize) {
        self.shared.order.lock().unwrap().finish(self.shard, &self.records[start..end]);
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
            let violations =
                self.shared.order.lock().unwrap().deliver(self.shard, &self.records[start..end]);
            let mut log = self.shared.log.lock().unwrap();
            log.invocations += 1;
            log.order_violations += violations;
        }
        let invocation = self.function.invoke(payload, self.mapping.function_timeout).await;
        let mut log = self.shared.log.lock().unwrap();
        match invocation {
            InvocationResult::Error(_) => {
                log.function_errors += 1;
                Verdict::FunctionError("Unhandled")
            }
            InvocationResult::TimedOut => {
                log.timeouts += 1;
                Verdict::FunctionError("Unhandled")
            }
            InvocationResult::Response(_) if !self.mapping.report_batch_item_failures => {
                Verdict::Success
            }
            InvocationResult::Response(response) => {
                let (verdict, unknown) =
                    interpret(&response, &batch, self.mapping.unknown_item_identifier);
                if unknown {
                    log.unknown_item_identifiers += 1;
                }
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
        self.finish(start, end);
        self.shared
            .log
            .lock()
            .unwrap()
            .discarded
            .push(OnFailureRecord { document, sequence_numbers });
    }
}

/// Applies the partial batch response rules to a response; says too whether it named an
/// `itemIdentifier` that is not in the batch.
fn interpret(
    response: &Value,
    batch: &[&StreamRecord],
    unknown: UnknownItemIdentifier,
) -> (Verdict, bool) {
    let failures = match response {
        Value::Null => return (Verdict::Success, false),
        Value::Object(object) => match object.get("batchItemFailures") {
            None | Some(Value::Null) => return (Verdict::Success, false),
            Some(Value::Array(failures)) if failures.is_empty() => {
                return (Verdict::Success, false)
            }
            Some(Value::Array(failures)) => failures,
            Some(_) => return (Verdict::WholeFailure, false),
        },
        _ => return (Verdict::WholeFailure, false),
    };
    let mut lowest: Option<usize> = None;
    let mut named_unknown = false;
    for failure in failures {
        let identifier = match failure.get("itemIdentifier") {
            Some(Value::String(identifier)) if !identifier.is_empty() => identifier,
            // Null, empty, not a string, or under a wrong key name.
            _ => return (Verdict::WholeFailure, named_unknown),
        };
        let Some(position) = batch.iter().position(|record| &record.sequence_number == identifier)
        else {
            named_unknown = true;
            match unknown {
                UnknownItemIdentifier::WholeBatchFailure => return (Verdict::WholeFailure, true),
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
    let verdict = match lowest {
        Some(position) => Verdict::PartialFrom(position),
        None => Verdict::Success,
    };
    (verdict, named_unknown)
}

fn age(record: &StreamRecord, now: SystemTime) -> Duration {
    now.duration_since(record.arrival).unwrap_or_default()
}

/// Runs futures together on the current task until all are done.
pub(super) async fn join_all(mut futures: Vec<Pin<Box<dyn Future<Output = ()> + '_>>>) {
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
