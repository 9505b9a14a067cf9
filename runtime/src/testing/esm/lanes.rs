//! The lanes: each shard (or each parallel lane of one) drained batch by batch under the
//! mapping's retry, bisect and checkpoint rules.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::config::{EventSourceMapping, UnknownItemIdentifier};
use super::order::{lane_of, OrderWatch};
use super::payload::{event_overhead, event_payload, iso8601, record_json_size, SEPARATOR};
use super::report::{Log, OnFailureRecord};
use super::window::{response_state, window_start, OpenWindow};
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
    /// With tumbling windows, a response without a `state`: a failed invocation.
    MissingState,
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
    /// The lane's open tumbling window; each lane carries its own.
    pub(super) window: Option<OpenWindow>,
}

/// A run of consecutive lane records, with the retries it has used.
struct Work {
    start: usize,
    end: usize,
    retries: i64,
}

impl<'a, F: Function> Lane<'a, F> {
    pub(super) async fn drain(mut self) {
        let mut position = 0;
        while position < self.records.len() {
            if self.out_of_invocations() {
                return;
            }
            position = self.skip_expired_by_retention(position);
            if position >= self.records.len() {
                break;
            }
            if !self.enter_window_of(position).await {
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
        // The stream was filled before the run: once drained, every window's end has passed.
        self.close_window().await;
    }

    /// Opens the window of the record at `position`, closing the open one if it is another
    /// window; false when the invocations ran out on the way.
    async fn enter_window_of(&mut self, position: usize) -> bool {
        let Some(length) = self.mapping.tumbling_window else { return true };
        let start = window_start(self.record(position).arrival, length);
        if self.window.as_ref().is_some_and(|window| window.start == start) {
            return true;
        }
        if !self.close_window().await {
            return false;
        }
        self.window = Some(OpenWindow::new(start, length));
        true
    }

    /// Ends the open window with its final invocation; false when the invocations ran out.
    async fn close_window(&mut self) -> bool {
        let closed = self.final_invocation(false).await;
        if closed {
            self.window = None;
        }
        closed
    }

    /// Runs the open window's final invocation (when records of it were invoked) until it
    /// succeeds or is given up; false when the invocations ran out first.
    async fn final_invocation(&mut self, terminated_early: bool) -> bool {
        let Some(window) = &self.window else { return true };
        if !window.invoked {
            return true;
        }
        let newest_arrival = window.newest_arrival;
        let mut retries = 0;
        loop {
            if self.out_of_invocations() {
                return false;
            }
            let too_old = self
                .mapping
                .maximum_record_age
                .is_some_and(|max_age| age_of(newest_arrival, SystemTime::now()) > max_age);
            let limit = self.mapping.maximum_retry_attempts;
            if too_old || (limit >= 0 && retries > limit) {
                self.shared.log.lock().unwrap().windows_abandoned += 1;
                return true;
            }
            if self.invoke_final(terminated_early).await {
                let mut log = self.shared.log.lock().unwrap();
                log.windows_closed += 1;
                log.windows_terminated_early += usize::from(terminated_early);
                return true;
            }
            retries += 1;
        }
    }

    /// Ends the open window early, its state having passed 1 MB: a final invocation with
    /// `isWindowTerminatedEarly`, then the same window again from `{}`.
    async fn terminate_window_early(&mut self) {
        if self.final_invocation(true).await {
            if let Some(window) = &mut self.window {
                window.restart();
            }
        }
    }

    /// The open window's fields for an event, if windows are on.
    fn window_fields(&self, is_final: bool, terminated_early: bool) -> Option<Map<String, Value>> {
        let shard_id = self.stream.shard_ids().nth(self.shard).unwrap_or_default();
        let window = self.window.as_ref()?;
        Some(window.fields(shard_id, self.stream.arn(), is_final, terminated_early))
    }

    /// Invokes the open window's final invocation once: no records, the window's state;
    /// answers whether it succeeded.
    async fn invoke_final(&mut self, terminated_early: bool) -> bool {
        let shard_id = self.stream.shard_ids().nth(self.shard).unwrap_or_default();
        let fields = self.window_fields(true, terminated_early);
        let payload = event_payload(&[], shard_id, self.stream.arn(), fields.as_ref());
        {
            let mut log = self.shared.log.lock().unwrap();
            log.invocations += 1;
            log.window_invocations += 1;
            log.final_invocations += 1;
        }
        let invocation = self.function.invoke(payload, self.mapping.function_timeout).await;
        let verdict = self.judge(invocation, &[]);
        matches!(verdict, Verdict::Success)
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

    fn record(&self, lane_position: usize) -> &'a StreamRecord {
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
    /// payload would pass 6 MB or the next record is of another tumbling window.
    fn batch_end(&self, start: usize) -> usize {
        let shard_id = self.stream.shard_ids().nth(self.shard).unwrap_or_default();
        let mut size = event_overhead(self.window_fields(false, false).as_ref());
        let window_of = |position| {
            self.mapping
                .tumbling_window
                .map(|length| window_start(self.record(position).arrival, length))
        };
        let mut end = start;
        while end < self.records.len() && end - start < self.mapping.batch_size {
            if end > start && window_of(end) != window_of(start) {
                break;
            }
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
    async fn attempt(&mut self, mut work: Work) -> Vec<Work> {
        work.start = self.discard_too_old(work.start, work.end);
        if work.start >= work.end {
            return Vec::new();
        }
        let verdict = self.invoke(work.start, work.end).await;
        if self.window.as_ref().is_some_and(|window| window.over_limit) {
            self.terminate_window_early().await;
        }
        let (retry_from, failed_invocation, function_error) = match verdict {
            Verdict::Success => {
                self.finish(work.start, work.end);
                return Vec::new();
            }
            Verdict::PartialFrom(offset) => {
                self.finish(work.start, work.start + offset);
                (work.start + offset, false, None)
            }
            Verdict::WholeFailure => (work.start, false, None),
            Verdict::FunctionError(kind) => (work.start, true, Some(kind)),
            Verdict::MissingState => (work.start, true, None),
        };
        // Splitting a failed batch does not consume the retry quota.
        if failed_invocation
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

    async fn invoke(&mut self, start: usize, end: usize) -> Verdict {
        let batch: Vec<&StreamRecord> =
            (start..end).map(|position| self.record(position)).collect();
        let shard_id = self.stream.shard_ids().nth(self.shard).unwrap_or_default();
        let fields = self.window_fields(false, false);
        let payload = event_payload(&batch, shard_id, self.stream.arn(), fields.as_ref());
        if let Some(window) = &mut self.window {
            window.invoked = true;
            let newest = batch.iter().map(|record| record.arrival).max();
            window.newest_arrival = window.newest_arrival.max(newest.unwrap_or(UNIX_EPOCH));
        }
        {
            let mut deliveries = self.shared.deliveries.lock().unwrap();
            for position in start..end {
                deliveries[self.shard][self.records[position]] += 1;
            }
            let violations =
                self.shared.order.lock().unwrap().deliver(self.shard, &self.records[start..end]);
            let mut log = self.shared.log.lock().unwrap();
            log.invocations += 1;
            log.window_invocations += usize::from(self.window.is_some());
            log.order_violations += violations;
        }
        let invocation = self.function.invoke(payload, self.mapping.function_timeout).await;
        self.judge(invocation, &batch)
    }

    /// Applies the mapping's rules to how an invocation of `batch` ended, counting what the
    /// report shows; with a window, takes the state of an accepted response.
    fn judge(&mut self, invocation: InvocationResult, batch: &[&StreamRecord]) -> Verdict {
        let shared = self.shared;
        let mut log = shared.log.lock().unwrap();
        let state = match (&invocation, &self.window) {
            (InvocationResult::Response(response), Some(_)) => match response_state(response) {
                Some(state) => Some(state.clone()),
                None => {
                    log.missing_states += 1;
                    return Verdict::MissingState;
                }
            },
            _ => None,
        };
        let verdict = match invocation {
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
                    interpret(&response, batch, self.mapping.unknown_item_identifier);
                if unknown {
                    log.unknown_item_identifiers += 1;
                }
                if let Verdict::PartialFrom(_) = verdict {
                    log.partial_responses += 1;
                }
                verdict
            }
        };
        if let (Some(state), Some(window)) = (state, &mut self.window) {
            if matches!(verdict, Verdict::Success | Verdict::PartialFrom(_)) {
                window.accept(state);
            }
        }
        verdict
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
    age_of(record.arrival, now)
}

fn age_of(arrival: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(arrival).unwrap_or_default()
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
