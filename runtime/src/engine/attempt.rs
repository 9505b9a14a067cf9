//! One record's processing: the call, panic isolation, and in-process retries with
//! backoff that never sleeps past the deadline.

use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio::time::Instant;

use super::fold::Fold;
use super::guard::{Claimed, Guard};
use crate::batch::Unit;
use crate::error::RecordError;
use crate::handler::Handler;
use crate::invocation::Invocation;
use crate::settings::Backoff;

/// How a unit's attempts are bounded.
pub(crate) struct RetryPolicy {
    pub retries: u32,
    pub backoff: Backoff,
    /// No retry waits past this instant.
    pub stop_at: Instant,
}

impl RetryPolicy {
    /// The wait before the next attempt, after `attempts` that failed retryably; or why
    /// there is none: `true` when the wait would pass the stop at the deadline, `false`
    /// when the retries ran out.
    pub fn next_retry(&self, attempts: u32) -> Result<Duration, bool> {
        if attempts > self.retries {
            return Err(false);
        }
        let delay = self.backoff.delay(attempts);
        if Instant::now() + delay >= self.stop_at {
            return Err(true);
        }
        Ok(delay)
    }
}

/// How a unit's processing ended.
pub(crate) struct Attempted {
    pub attempts: u32,
    pub result: AttemptResult,
}

pub(crate) enum AttemptResult {
    Succeeded,
    /// The function rejected the record: permanent.
    Rejected(RecordError),
    /// Retryable failures until the retries ran out, or until the next retry would have
    /// passed the stop at the deadline (`stop_near`).
    Exhausted {
        error: RecordError,
        stop_near: bool,
    },
    /// The payload could not be decoded again for a retry.
    Undecodable(Undecodable),
    /// Its idempotency key was done before its claim: it did not run.
    Duplicate,
    /// No idempotency claim could be made (held elsewhere, or the store failed): it did not
    /// run, and is reported.
    Unguarded(String),
}

/// Why a payload could not be decoded: the whole error for the dead letter, and, when that
/// text may quote the payload, a version without it for the logs.
pub(crate) struct Undecodable {
    pub error: String,
    pub redacted: Option<String>,
}

impl From<String> for Undecodable {
    fn from(error: String) -> Self {
        Undecodable { error, redacted: None }
    }
}

/// What every unit of a batch runs with.
pub(crate) struct Run<'a, H: Handler> {
    pub handler: &'a H,
    pub state: &'a H::State,
    /// A window processor's window state.
    pub fold: &'a Fold<H::Window>,
    /// The idempotency guard, when units are claimed before they run.
    pub guard: Option<&'a Guard<'a>>,
    pub invocation: &'a Invocation,
    pub policy: RetryPolicy,
}

/// Processes one unit (`index` in the batch): claims it if it is guarded, then calls the
/// function, retrying retryable failures.
///
/// The first call runs in this future; what follows a failure runs in a boxed one, so that
/// the future moved into a slot for every unit stays small: most calls succeed first time.
pub(crate) async fn attempt<'a, H: Handler>(
    run: &'a Run<'a, H>,
    index: u32,
    unit: &'a Unit<'a>,
    payload: H::Payload,
) -> Attempted {
    if let Some(guard) = run.guard {
        match Box::pin(guard.claim(index, &unit.meta, &run.policy)).await {
            Claimed::Run => {}
            Claimed::Duplicate => {
                return Attempted { attempts: 0, result: AttemptResult::Duplicate }
            }
            Claimed::Refused(why) => {
                return Attempted { attempts: 0, result: AttemptResult::Unguarded(why) }
            }
        }
    }
    let attempted = match call(run, unit, payload, 1).await {
        Ok(()) => Attempted { attempts: 1, result: AttemptResult::Succeeded },
        Err(error) => Box::pin(after_failure(run, unit, error)).await,
    };
    if let (Some(guard), AttemptResult::Succeeded) = (run.guard, &attempted.result) {
        guard.succeeded(index);
    }
    attempted
}

/// After the first call failed: rejected, or retried with backoff until a call succeeds,
/// the retries run out, or the next retry would pass the deadline.
async fn after_failure<'a, H: Handler>(
    run: &'a Run<'a, H>,
    unit: &'a Unit<'a>,
    mut error: RecordError,
) -> Attempted {
    let policy = &run.policy;
    let mut attempts = 1;
    loop {
        if error.is_permanent() {
            return Attempted { attempts, result: AttemptResult::Rejected(error) };
        }
        let delay = match policy.next_retry(attempts) {
            Ok(delay) => delay,
            Err(stop_near) => {
                let result = AttemptResult::Exhausted { error, stop_near };
                return Attempted { attempts, result };
            }
        };
        tracing::info!(
            sequence_number = unit.meta.sequence_number,
            sub_sequence_number = unit.meta.sub_sequence_number(),
            partition_key = unit.meta.partition_key,
            attempt = attempts,
            error = %error.chain(),
            "attempt failed; retrying in {} ms",
            delay.as_millis()
        );
        tokio::time::sleep(delay).await;
        let payload = match decode(run.handler, unit, &mut Vec::new()) {
            Ok(payload) => payload,
            Err(undecodable) => {
                return Attempted { attempts, result: AttemptResult::Undecodable(undecodable) }
            }
        };
        attempts += 1;
        match call(run, unit, payload, attempts).await {
            Ok(()) => return Attempted { attempts, result: AttemptResult::Succeeded },
            Err(failure) => error = failure,
        }
    }
}

/// One call of the function, in its span, with panics caught. A window function folds
/// into a copy of the window state, kept only if the call succeeds.
async fn call<'a, H: Handler>(
    run: &'a Run<'a, H>,
    unit: &'a Unit<'a>,
    payload: H::Payload,
    attempts: u32,
) -> Result<(), RecordError> {
    let Run { handler, state, fold, invocation, .. } = *run;
    let span = record_span(unit, invocation, attempts);
    let mut working = if H::WINDOWED { fold.copy() } else { H::Window::default() };
    let result = {
        let mut call = pin!(handler.call(payload, &mut working, &unit.meta, invocation, state));
        poll_fn(|task| poll_in_span(call.as_mut(), &span, task)).await
    };
    if H::WINDOWED && result.is_ok() {
        fold.keep(working);
    }
    result
}

/// Polls a call inside its span, with panics caught. The call is polled where it was
/// built: wrapping it (`Instrumented` around a panic-catching future) moved it a few
/// hundred bytes at a time through every layer, once per record. Unlike `Instrumented`,
/// the span is not entered while a call timed out at the deadline is dropped; what the call logs
/// while it runs is in the span as before.
pub(super) fn poll_in_span<F, E>(
    call: Pin<&mut F>,
    span: &tracing::Span,
    task: &mut TaskContext<'_>,
) -> Poll<F::Output>
where
    F: Future<Output = Result<(), E>>,
    E: From<Panicked>,
{
    let _entered = span.enter();
    isolate_panics(call, task)
}

/// The span of one attempt; `Span::none()` when no subscriber takes debug spans, since
/// the macro's disabled span still asks `log` on every enter and exit (`lambda_runtime`
/// turns on `tracing`'s `log` feature).
fn record_span(unit: &Unit<'_>, invocation: &Invocation, attempts: u32) -> tracing::Span {
    if !tracing::level_enabled!(tracing::Level::DEBUG) {
        return tracing::Span::none();
    }
    tracing::debug_span!(
        "record",
        sequence_number = unit.meta.sequence_number,
        sub_sequence_number = unit.meta.sub_sequence_number(),
        partition_key = unit.meta.partition_key,
        attempt = attempts,
        xray_trace_id = invocation.xray_trace_id(),
    )
}

/// Decodes a unit's payload; a decoder's panic is a decode failure, not a crash.
pub(crate) fn decode<H: Handler>(
    handler: &H,
    unit: &Unit<'_>,
    buffer: &mut Vec<u8>,
) -> Result<H::Payload, Undecodable> {
    let bytes = unit.data.bytes(buffer)?;
    match catch_unwind(AssertUnwindSafe(|| handler.decode(bytes))) {
        Ok(Ok(payload)) => Ok(payload),
        Ok(Err(error)) => Err(Undecodable {
            error: crate::error::error_chain(&*error),
            redacted: error.downcast_ref::<serde_json::Error>().and_then(redact_json_error),
        }),
        Err(panic) => Err(format!("the decoder panicked: {}", panic_message(&*panic)).into()),
    }
}

/// A JSON error without the payload values that serde quotes in some messages (`invalid
/// type: string "..."`, `unknown variant `...``); `None` when the message quotes nothing.
fn redact_json_error(error: &serde_json::Error) -> Option<String> {
    use serde_json::error::Category;
    let message = error.to_string();
    let quotes_nothing = matches!(error.classify(), Category::Syntax | Category::Eof)
        || message.starts_with("missing field");
    if quotes_nothing {
        return None;
    }
    Some(format!(
        "the JSON does not fit the payload type at line {} column {} (the full error, which \
         quotes the data, is in the dead letter)",
        error.line(),
        error.column()
    ))
}

/// Polls a future, turning a panic inside it into a retryable error.
pub(super) fn isolate_panics<F, E>(
    future: Pin<&mut F>,
    task: &mut TaskContext<'_>,
) -> Poll<F::Output>
where
    F: Future<Output = Result<(), E>>,
    E: From<Panicked>,
{
    match catch_unwind(AssertUnwindSafe(|| future.poll(task))) {
        Ok(poll) => poll,
        Err(panic) => Poll::Ready(Err(Panicked(panic_message(&*panic)).into())),
    }
}

/// A panic in the processing function, as an error: retryable.
#[derive(Debug)]
pub(super) struct Panicked(String);

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the processing function panicked: {}", self.0)
    }
}

impl std::error::Error for Panicked {}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}
