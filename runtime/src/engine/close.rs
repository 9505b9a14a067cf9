//! The close of a window processor's invocation: the window state it answers with, and,
//! on the window's final invocation, the window end.
//!
//! The state answered is the fold of the records before the checkpoint. When it cannot be
//! answered (over Lambda's 1 MB) or the window end fails, the batch is redelivered from its
//! first record with the state it came with, so that nothing is counted twice.

use std::future::poll_fn;
use std::pin::pin;

use serde_json::value::RawValue;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::attempt::isolate_panics;
use super::guard::Guard;
use super::{Context, Settled};
use crate::error::{Error, RecordError};
use crate::handler::Handler;
use crate::window::{encode_state, Opened, Window};

/// Sets the settled batch's state, running the window end on a final invocation.
pub(super) async fn close<H: Handler>(
    handler: &H,
    state: &H::State,
    opened: Opened,
    folded: H::Window,
    guard: Option<&Guard<'_>>,
    settled: &mut Settled<'_>,
    cx: &Context<'_>,
) -> Result<(), Error> {
    let answer = match encode_state(&folded) {
        Ok(answer) => answer,
        Err(why) => return redeliver(settled, opened.given, why),
    };
    if opened.is_final && settled.checkpoint.is_none() {
        let span = tracing::info_span!(
            "window_end",
            window_start = %humantime::format_rfc3339(opened.window.start()),
            terminated_early = opened.window.terminated_early(),
        );
        let ended = async {
            let end = end_window(handler, state, folded, &opened.window, cx);
            match guard {
                Some(guard) => guard.once(&window_key(&opened.window), end).await.map(drop),
                None => end.await,
            }
        };
        if let Err(why) = ended.instrument(span).await {
            return redeliver(settled, opened.given, why);
        }
    }
    settled.state = Some(answer);
    Ok(())
}

/// The idempotency key of a window's end: its stream, shard and start.
fn window_key(window: &Window) -> String {
    let start = window.start().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let arn = window.event_source_arn().unwrap_or_default();
    let shard = window.shard_id().unwrap_or_default();
    format!("window#{arn}#{shard}#{}", start.as_secs())
}

/// Runs the window-end function, retrying retryable failures as a record's are retried,
/// until the deadline less its margin.
async fn end_window<H: Handler>(
    handler: &H,
    state: &H::State,
    finished: H::Window,
    window: &Window,
    cx: &Context<'_>,
) -> Result<(), String> {
    let settings = cx.settings;
    let stop_at = cx.invocation.deadline_instant().checked_sub(settings.deadline_margin);
    let stop_at = stop_at.unwrap_or_else(Instant::now);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut call = pin!(handler.end_window(finished.clone(), window, state));
        let ended =
            tokio::time::timeout_at(stop_at, poll_fn(|task| isolate_panics(call.as_mut(), task)));
        let error = match ended.await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error,
            Err(_) => return Err("it did not finish before the deadline".into()),
        };
        let delay = settings.backoff.delay(attempts);
        if !retry(&error, attempts, settings.retries) || Instant::now() + delay >= stop_at {
            return Err(format!("{} (after {attempts} attempts)", error.chain()));
        }
        tracing::info!(attempt = attempts, error = %error.chain(), "window end failed; retrying");
        tokio::time::sleep(delay).await;
    }
}

fn retry(error: &RecordError, attempts: u32, retries: u32) -> bool {
    error.is_retryable() && attempts <= retries
}

/// Reports the batch from its first record, answering with the state it came with: Lambda
/// then delivers the whole batch again. Without records, the invocation fails instead.
fn redeliver(settled: &mut Settled<'_>, given: Box<RawValue>, why: String) -> Result<(), Error> {
    tracing::error!(error = %why, "window closing failed; the batch is delivered again");
    let Some(first) = settled.units.iter().find_map(|unit| unit.checkpoint()) else {
        return Err(Error::WindowEnd(why));
    };
    settled.checkpoint = Some(first);
    settled.state = Some(given);
    Ok(())
}
