//! Tumbling windows: the window a record falls in, and the window a lane has open with the
//! state the mapping carries between its invocations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// The most state Lambda carries per shard: 1 MB serialized. Stated here apart from the
/// processor's own limit, so that the simulator checks that limit rather than share it.
pub(super) const MAX_STATE: usize = 1024 * 1024;

/// The start of the window of `length` that `arrival` falls in, in seconds since the epoch:
/// `floor(arrival / length) * length`.
pub(super) fn window_start(arrival: SystemTime, length: Duration) -> u64 {
    let seconds = arrival.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let length = length.as_secs();
    seconds / length * length
}

/// A window a lane has open: its bounds, the state of its last accepted response, and what
/// its final invocation needs.
#[derive(Debug)]
pub(super) struct OpenWindow {
    /// Seconds since the epoch.
    pub(super) start: u64,
    /// Seconds.
    pub(super) length: u64,
    /// `{}` until a response is accepted, then that response's `state`.
    pub(super) state: Value,
    /// Whether an invocation with records ran since the window opened (or was terminated
    /// early): only then does it get a final invocation.
    pub(super) invoked: bool,
    /// The newest arrival among the window's delivered records, for `MaximumRecordAge` on
    /// the final invocation.
    pub(super) newest_arrival: SystemTime,
    /// Set when an accepted state passed 1 MB: the window ends early.
    pub(super) over_limit: bool,
}

impl OpenWindow {
    /// The window starting at `start` (seconds), with the fresh state `{}`.
    pub(super) fn new(start: u64, length: Duration) -> Self {
        OpenWindow {
            start,
            length: length.as_secs(),
            state: json!({}),
            invoked: false,
            newest_arrival: UNIX_EPOCH,
            over_limit: false,
        }
    }

    /// Takes an accepted response's state; marks the window over its limit when the state
    /// passes 1 MB serialized.
    pub(super) fn accept(&mut self, state: Value) {
        let size = serde_json::to_vec(&state).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
        self.over_limit = size > MAX_STATE;
        self.state = state;
    }

    /// Starts the window over after an early termination: same bounds, fresh state.
    pub(super) fn restart(&mut self) {
        self.state = json!({});
        self.invoked = false;
        self.over_limit = false;
    }

    /// The event's fields beside `Records`, as Lambda writes them.
    pub(super) fn fields(
        &self,
        shard_id: &str,
        arn: &str,
        is_final: bool,
        terminated_early: bool,
    ) -> Map<String, Value> {
        let at = |seconds| {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
        };
        let mut fields = Map::new();
        let bounds = json!({ "start": at(self.start), "end": at(self.start + self.length) });
        fields.insert("window".into(), bounds);
        fields.insert("state".into(), self.state.clone());
        fields.insert("shardId".into(), shard_id.into());
        fields.insert("eventSourceARN".into(), arn.into());
        fields.insert("isFinalInvokeForWindow".into(), is_final.into());
        fields.insert("isWindowTerminatedEarly".into(), terminated_early.into());
        fields
    }
}

/// The response's `state`, when it has one Lambda takes: present and a JSON object.
pub(super) fn response_state(response: &Value) -> Option<&Value> {
    response.get("state").filter(|state| state.is_object())
}

/// The tumbling-window rules, each citing the AWS documentation it follows: *Using AWS
/// Lambda with Amazon Kinesis*, "Time windows" (quoted as `windows`), and the
/// `CreateEventSourceMapping` API reference.
#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde_json::{json, Value};

    use super::{window_start, MAX_STATE};
    use crate::testing::{
        EventSourceMapping, FnFunction, InvocationResult, SimulatedStream, MAX_PAYLOAD,
    };

    type Events = Arc<Mutex<Vec<Value>>>;

    /// A function that keeps each event and answers `respond(event, invocation)`.
    fn scripted(
        events: &Events,
        respond: impl Fn(&Value, usize) -> InvocationResult,
    ) -> FnFunction<impl Fn(Vec<u8>) -> std::future::Ready<InvocationResult>> {
        let events = events.clone();
        FnFunction(move |payload: Vec<u8>| {
            let event: Value = serde_json::from_slice(&payload).unwrap();
            let mut all = events.lock().unwrap();
            all.push(event.clone());
            std::future::ready(respond(&event, all.len()))
        })
    }

    /// A success whose state is the event's `count` raised by its records.
    fn count(event: &Value) -> InvocationResult {
        let records = event["Records"].as_array().unwrap().len() as u64;
        let total = event["state"]["count"].as_u64().unwrap_or(0) + records;
        InvocationResult::Response(json!({ "state": { "count": total }, "batchItemFailures": [] }))
    }

    fn error() -> InvocationResult {
        InvocationResult::Error("boom".into())
    }

    /// The start (epoch seconds) of the window of `length` seconds that began an hour ago,
    /// well inside the stream's retention.
    fn hour_ago(length: u64) -> u64 {
        window_start(SystemTime::now() - Duration::from_secs(3600), Duration::from_secs(length))
    }

    /// One shard with a record arriving at each of `offsets` seconds after `start`.
    fn stream_at(start: u64, offsets: &[u64]) -> SimulatedStream {
        let mut stream = SimulatedStream::new("windows", 1);
        for (n, offset) in offsets.iter().enumerate() {
            let arrival = UNIX_EPOCH + Duration::from_secs(start + offset);
            stream.put_record(&format!("key-{n}"), None, b"x", arrival);
        }
        stream
    }

    fn rfc3339(seconds: u64) -> String {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
    }

    /// Each event as (records, state, final, terminated early).
    fn shapes(events: &Events) -> Vec<(usize, Value, bool, bool)> {
        let events = events.lock().unwrap();
        events
            .iter()
            .map(|event| {
                (
                    event["Records"].as_array().unwrap().len(),
                    event["state"].clone(),
                    event["isFinalInvokeForWindow"].as_bool().unwrap(),
                    event["isWindowTerminatedEarly"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    /// windows: "Lambda determines tumbling window boundaries based on the time when
    /// records were inserted into the stream"; the KinesisTimeWindowEvent example carries
    /// `window`, `state`, `shardId`, `eventSourceARN`, `isFinalInvokeForWindow` and
    /// `isWindowTerminatedEarly` beside `Records`. A batch holds records of one window, and
    /// each window ends with a final invocation (AWS does not document whether the last
    /// batch can carry the flag: here the final invocation is always one without records).
    #[tokio::test]
    async fn events_carry_their_window_and_a_batch_stays_in_one() {
        let start = hour_ago(120);
        let stream = stream_at(start, &[1, 2, 119, 120, 130, 250]);
        let events = Events::default();
        let report = EventSourceMapping::new()
            .tumbling_window(Duration::from_secs(120))
            .run(&stream, &scripted(&events, |event, _| count(event)))
            .await;
        let state = |count: u64| json!({ "count": count });
        assert_eq!(
            shapes(&events),
            [
                (3, json!({}), false, false),
                (0, state(3), true, false),
                (2, json!({}), false, false),
                (0, state(2), true, false),
                (1, json!({}), false, false),
                (0, state(1), true, false),
            ]
        );
        let events = events.lock().unwrap();
        for (event, window) in events.iter().zip([0, 0, 1, 1, 2, 2]) {
            let bounds = json!({
                "start": rfc3339(start + 120 * window),
                "end": rfc3339(start + 120 * (window + 1)),
            });
            assert_eq!(event["window"], bounds);
            assert_eq!(event["shardId"], "shardId-000000000000");
            assert_eq!(event["eventSourceARN"], stream.arn());
        }
        assert!(rfc3339(start).ends_with(":00Z"), "whole seconds, as Lambda writes them");
        assert_eq!((report.invocations(), report.window_invocations()), (6, 6));
        assert_eq!((report.final_invocations(), report.windows_closed()), (3, 3));
        assert_eq!(report.duplicates(), 0);
    }

    /// windows: "Each invocation receives a state"; a retry after a function error or a
    /// timeout gets the state the failed try got; a partial batch response's state is
    /// kept with its checkpoint; a response that fails the whole batch keeps nothing.
    #[tokio::test]
    async fn the_state_of_the_last_accepted_response_is_carried() {
        let stream = stream_at(hour_ago(60), &[0, 1, 2, 3, 4]);
        let events = Events::default();
        let respond = |event: &Value, invocation| match invocation {
            2 => error(),
            3 => {
                let second = &event["Records"][1]["kinesis"]["sequenceNumber"];
                let state = json!({ "count": 3 });
                InvocationResult::Response(
                    json!({ "state": state, "batchItemFailures": [{ "itemIdentifier": second }] }),
                )
            }
            4 => InvocationResult::Response(
                json!({ "state": { "count": 99 }, "batchItemFailures": [{ "itemIdentifier": "" }] }),
            ),
            5 => InvocationResult::TimedOut,
            _ => count(event),
        };
        let report = EventSourceMapping::new()
            .batch_size(2)
            .tumbling_window(Duration::from_secs(60))
            .run(&stream, &scripted(&events, respond))
            .await;
        let states: Vec<Value> = shapes(&events).into_iter().map(|shape| shape.1).collect();
        let count = |n: u64| json!({ "count": n });
        assert_eq!(
            states,
            [json!({}), count(2), count(2), count(3), count(3), count(3), count(4), count(5)]
        );
        assert_eq!((report.function_errors(), report.timeouts()), (1, 1));
        assert_eq!(report.partial_responses(), 1);
    }

    /// windows: "your Lambda function response must contain a `state` property. If the
    /// response does not contain a `state` property, Lambda considers this a failed
    /// invocation" (a null response, and a `state` that is null or not an object, too;
    /// also without `ReportBatchItemFailures`). Retried whole with the same state, and
    /// discarded as a function error's batch would be once the retries run out.
    #[tokio::test]
    async fn a_response_without_state_is_a_failed_invocation() {
        let stream = stream_at(hour_ago(60), &[0, 1]);
        let events = Events::default();
        let respond = |event: &Value, invocation| match invocation {
            1 => InvocationResult::Response(json!({ "batchItemFailures": [] })),
            2 => InvocationResult::Response(Value::Null),
            3 => InvocationResult::Response(json!({ "state": null })),
            4 => InvocationResult::Response(json!({ "state": [1] })),
            _ => count(event),
        };
        let report = EventSourceMapping::new()
            .report_batch_item_failures(false)
            .tumbling_window(Duration::from_secs(60))
            .run(&stream, &scripted(&events, respond))
            .await;
        let shapes = shapes(&events);
        assert_eq!(shapes.len(), 6, "four failed tries, a success, the final invocation");
        assert!(shapes[..5].iter().all(|shape| shape.0 == 2 && shape.1 == json!({})));
        assert_eq!(shapes[5], (0, json!({ "count": 2 }), true, false));
        assert_eq!((report.missing_states(), report.function_errors()), (4, 0));
        assert!(report.discarded().is_empty());

        let always_without = |_: &Value, _| InvocationResult::Response(json!({}));
        let report = EventSourceMapping::new()
            .maximum_retry_attempts(1)
            .tumbling_window(Duration::from_secs(60))
            .run(&stream, &scripted(&Events::default(), always_without))
            .await;
        assert_eq!(report.discarded().len(), 1, "the batch goes to the on-failure destination");
        let document = &report.discarded()[0].document;
        assert_eq!(document["requestContext"]["condition"], "RetryAttemptsExhausted");
        assert_eq!(document["responseContext"].get("functionError"), None, "the function returned");
        // The window's records were invoked, so it ends: its final invocation fails alike.
        assert_eq!((report.final_invocations(), report.windows_abandoned()), (2, 1));
        assert_eq!(report.missing_states(), 4);
    }

    /// A response without a state fails the invocation as a function error would, so
    /// `BisectBatchOnFunctionError` splits the batch (without spending retries).
    #[tokio::test]
    async fn a_response_without_state_bisects_as_a_function_error_would() {
        let stream = stream_at(hour_ago(60), &[0, 1, 2, 3]);
        let events = Events::default();
        let respond = |event: &Value, _| match event["Records"].as_array().unwrap().len() {
            0 | 1 => count(event),
            _ => InvocationResult::Response(json!({ "batchItemFailures": [] })),
        };
        let report = EventSourceMapping::new()
            .bisect_batch_on_function_error(true)
            .maximum_retry_attempts(0)
            .tumbling_window(Duration::from_secs(60))
            .run(&stream, &scripted(&events, respond))
            .await;
        let sizes: Vec<usize> = shapes(&events).iter().map(|shape| shape.0).collect();
        assert_eq!(sizes, [4, 2, 1, 1, 2, 1, 1, 0]);
        assert_eq!(report.missing_states(), 3);
        assert!(report.discarded().is_empty());
        assert_eq!(shapes(&events)[7].1, json!({ "count": 4 }));
    }

    /// Lambda quotas: "Invocation payload (request and response) 6 MB each": the state
    /// travels in the event, so a batch leaves room for it.
    #[tokio::test]
    async fn a_batch_leaves_room_for_the_state() {
        let mut stream = SimulatedStream::new("windows", 1);
        let arrival = UNIX_EPOCH + Duration::from_secs(hour_ago(60));
        for n in 0..12 {
            stream.put_record(&format!("key-{n}"), None, &vec![b'x'; 1_000_000], arrival);
        }
        let big = json!({ "s": "x".repeat(MAX_STATE - 8) });
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let function = FnFunction(move |payload: Vec<u8>| {
            seen.lock().unwrap().push(payload.len());
            std::future::ready(InvocationResult::Response(json!({ "state": big })))
        });
        let report = EventSourceMapping::new()
            .batch_size(10_000)
            .tumbling_window(Duration::from_secs(60))
            .run(&stream, &function)
            .await;
        let sizes = sizes.lock().unwrap();
        assert!(sizes.iter().all(|size| *size <= MAX_PAYLOAD), "{sizes:?}");
        assert!(sizes[1] > sizes[0] - 1_000_000, "{sizes:?}: the second batch holds the state");
        assert_eq!(report.never_delivered(), 0);
    }

    /// windows: "Your final processing is synchronously invoked. After successful
    /// invocation, your function checkpoints the sequence number and stream processing
    /// continues. If invocation is unsuccessful, your Lambda function suspends further
    /// processing until a successful invocation": the shard's next window waits while the
    /// final invocation is retried, whole, with the same state.
    #[tokio::test]
    async fn a_failed_final_invocation_holds_the_shard_until_it_succeeds() {
        let stream = stream_at(hour_ago(60), &[0, 1, 60]);
        let events = Events::default();
        let respond = |event: &Value, invocation| match invocation {
            2 => error(),
            3 => InvocationResult::TimedOut,
            4 => InvocationResult::Response(json!({ "batchItemFailures": [] })),
            _ => count(event),
        };
        let report = EventSourceMapping::new()
            .tumbling_window(Duration::from_secs(60))
            .run(&stream, &scripted(&events, respond))
            .await;
        let done = (0, json!({ "count": 2 }), true, false);
        assert_eq!(
            shapes(&events),
            [
                (2, json!({}), false, false),
                done.clone(),
                done.clone(),
                done.clone(),
                done,
                (1, json!({}), false, false),
                (0, json!({ "count": 1 }), true, false),
            ]
        );
        assert_eq!((report.final_invocations(), report.windows_closed()), (5, 2));
        assert_eq!(report.windows_abandoned(), 0);
    }

    /// windows: "Tumbling windows fully support the existing retry policies
    /// `maxRetryAttempts` and `maxRecordAge`". AWS does not say how they apply to a final
    /// invocation; the stricter reading is that they end its retries too, and the window's
    /// final processing is lost.
    #[tokio::test]
    async fn a_final_invocation_out_of_retries_abandons_its_window() {
        let stream = stream_at(hour_ago(60), &[0, 60]);
        let events = Events::default();
        let respond = |event: &Value, _| {
            let first_window = event["window"]["start"] == rfc3339(hour_ago(60));
            if event["isFinalInvokeForWindow"] == true && first_window {
                error()
            } else {
                count(event)
            }
        };
        let report = EventSourceMapping::new()
            .maximum_retry_attempts(2)
            .tumbling_window(Duration::from_secs(60))
            .run(&stream, &scripted(&events, respond))
            .await;
        let finals: Vec<bool> = shapes(&events).iter().map(|shape| shape.2).collect();
        assert_eq!(finals, [false, true, true, true, false, true], "a try and two retries");
        assert_eq!(report.windows_abandoned(), 1);
        assert_eq!(report.windows_closed(), 1);
        assert!(!report.stalled());
    }

    /// The record age bound of the rule above: a final invocation whose window's newest
    /// record passed `MaximumRecordAgeInSeconds` is not retried.
    #[tokio::test]
    async fn a_final_invocation_past_the_record_age_abandons_its_window() {
        let mut stream = SimulatedStream::new("windows", 1);
        stream.put_record("key", None, b"x", SystemTime::now() - Duration::from_millis(59_400));
        let invocations = Arc::new(Mutex::new(Vec::new()));
        let seen = invocations.clone();
        let function = FnFunction(move |payload: Vec<u8>| {
            let event: Value = serde_json::from_slice(&payload).unwrap();
            let is_final = event["isFinalInvokeForWindow"] == true;
            seen.lock().unwrap().push(is_final);
            async move {
                if is_final {
                    // The record passes 60 s of age while the final invocation fails.
                    tokio::time::sleep(Duration::from_millis(900)).await;
                    error()
                } else {
                    count(&event)
                }
            }
        });
        let report = EventSourceMapping::new()
            .maximum_record_age(Some(Duration::from_secs(60)))
            .tumbling_window(Duration::from_secs(900))
            .run(&stream, &function)
            .await;
        assert_eq!(*invocations.lock().unwrap(), [false, true], "no retry of the final one");
        assert_eq!((report.windows_abandoned(), report.windows_closed()), (1, 0));
    }

    /// windows: "Your state can be a maximum of 1 MB per shard. If it exceeds that size,
    /// Lambda terminates the window early"; AWS's event types (aws-lambda-go's
    /// `TimeWindowProperties`): `isWindowTerminatedEarly` is "set to true if window is
    /// terminated prematurely. Subsequent invoke will continue the same window with a
    /// fresh state". Assumed: the state over 1 MB is the one the final invocation gets, and
    /// a state of exactly 1 MB is within the limit.
    #[tokio::test]
    async fn a_state_over_1_mb_ends_the_window_early() {
        let stream = stream_at(hour_ago(60), &[0, 1, 2, 3]);
        // `{"s":"` and `"}` around the text: 8 bytes.
        let sized = |bytes: usize| json!({ "s": "x".repeat(bytes - 8) });
        let events = Events::default();
        let respond = move |event: &Value, invocation| match invocation {
            1 => InvocationResult::Response(json!({ "state": sized(MAX_STATE) })),
            2 => InvocationResult::Response(json!({ "state": sized(MAX_STATE + 1) })),
            _ => count(event),
        };
        let report = EventSourceMapping::new()
            .batch_size(1)
            .tumbling_window(Duration::from_secs(60))
            .run(&stream, &scripted(&events, respond))
            .await;
        assert_eq!(serde_json::to_vec(&sized(MAX_STATE)).unwrap().len(), MAX_STATE);
        assert_eq!(
            shapes(&events),
            [
                (1, json!({}), false, false),
                (1, sized(MAX_STATE), false, false),
                (0, sized(MAX_STATE + 1), true, true),
                (1, json!({}), false, false),
                (1, json!({ "count": 1 }), false, false),
                (0, json!({ "count": 2 }), true, false),
            ]
        );
        let events = events.lock().unwrap();
        assert!(events.iter().all(|event| event["window"] == events[0]["window"]), "one window");
        assert_eq!((report.windows_terminated_early(), report.windows_closed()), (1, 2));
    }

    /// AWS does not say how windows go with a `ParallelizationFactor` above 1: here each
    /// lane carries its own windows and state, and ends each with its own final invocation.
    #[tokio::test]
    async fn each_lane_carries_its_own_window_state() {
        let stream = stream_at(hour_ago(60), &(0..40).collect::<Vec<_>>());
        let events = Events::default();
        let report = EventSourceMapping::new()
            .parallelization_factor(2)
            .tumbling_window(Duration::from_secs(60))
            .run(&stream, &scripted(&events, |event, _| count(event)))
            .await;
        let shapes = shapes(&events);
        let finals: Vec<u64> = shapes
            .iter()
            .filter(|shape| shape.2)
            .map(|shape| shape.1["count"].as_u64().unwrap())
            .collect();
        assert_eq!(finals.len(), 2, "one final invocation per lane");
        assert_eq!(finals.iter().sum::<u64>(), 40);
        assert!(finals.iter().all(|count| *count < 40), "{finals:?}: each lane counts its own");
        assert_eq!(report.windows_closed(), 2);
    }

    /// `CreateEventSourceMapping`: "TumblingWindowInSeconds ... A value of 0 seconds
    /// indicates no tumbling window ... Minimum value of 0. Maximum value of 900."
    #[tokio::test]
    async fn tumbling_windows_take_0_to_900_whole_seconds() {
        for refused in [Duration::from_secs(901), Duration::from_millis(1_500)] {
            let result =
                std::panic::catch_unwind(|| EventSourceMapping::new().tumbling_window(refused));
            assert!(result.is_err(), "{refused:?} is refused");
        }
        let _ = EventSourceMapping::new().tumbling_window(Duration::from_secs(900));
        let stream = stream_at(hour_ago(60), &[0, 1]);
        let events = Events::default();
        let report = EventSourceMapping::new()
            .tumbling_window(Duration::ZERO)
            .run(&stream, &scripted(&events, |_, _| InvocationResult::Response(Value::Null)))
            .await;
        let events = events.lock().unwrap();
        assert_eq!(*events, [json!({ "Records": events[0]["Records"] })], "no window fields");
        assert_eq!((report.window_invocations(), report.missing_states()), (0, 0));
    }
}
