//! [`Processor::run`]: the Lambda loop through `lambda_runtime`, or, outside Lambda, the
//! local runner ([`super::local`]); and how one Lambda invocation is answered.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::LambdaEvent;
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::processor::{function_name, HasState, Processor};
use crate::error::Error;
use crate::handler::Handler;
use crate::invocation::Invocation;
use crate::metrics;
use crate::report::{BatchOutcome, BatchSummary};

impl<H: Handler, S> Processor<H, S> {
    /// Runs the processor.
    ///
    /// In Lambda (`AWS_LAMBDA_RUNTIME_API` is set) it serves invocations through
    /// `lambda_runtime::run(self.into_service())` until the environment shuts down. Outside
    /// Lambda it processes the event files named on the command line, printing each
    /// record's coordinates and outcome and then the response, so that a batch can be
    /// replayed on a laptop:
    ///
    /// ```text
    /// cargo run -p clickstream -- examples/clickstream/events/batch.json
    /// ```
    ///
    /// Either way it first installs a `tracing` subscriber that honours
    /// `AWS_LAMBDA_LOG_FORMAT` (`JSON` or text) and `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`),
    /// unless the program has set one. To put tower layers around the processor or to use
    /// Lambda's concurrent mode, serve [`into_service`](Self::into_service) yourself.
    // Boxed so that a missing `.state(..)` is one compile error, not three.
    pub fn run(self) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>
    where
        S: HasState<H::State>,
    {
        Box::pin(self.ready().run_ready())
    }
}

impl<H: Handler> Processor<H> {
    async fn run_ready(self) -> Result<(), Error> {
        let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
        install_default_subscriber(!in_lambda);
        if in_lambda {
            lambda_runtime::run(self.into_service()).await.map_err(Error::Other)
        } else {
            let files: Vec<String> = std::env::args().skip(1).collect();
            self.run_locally(&files).await
        }
    }

    /// Answers one Lambda invocation: the response, the invocation's metrics written, or
    /// the error logged.
    pub(crate) async fn answer(
        &self,
        event: &LambdaEvent<Box<RawValue>>,
    ) -> Result<serde_json::Value, Error> {
        let context = &event.context;
        let invocation = Invocation::new(&context.request_id, deadline_of(context.deadline))
            .with_function_arn(context.invoked_function_arn.clone())
            .with_xray_trace_id(context.xray_trace_id.clone());
        let outcome: BatchOutcome = self
            .invoke(event.payload.get().as_bytes(), &invocation)
            .await
            .inspect_err(|error| {
                let message = "invocation failed; Lambda retries the whole batch";
                tracing::error!(error = %error, "{message}");
            })?;
        self.write_metrics(outcome.summary());
        Ok(outcome.lambda_response())
    }

    /// Writes the invocation's EMF object on its own line of standard output.
    fn write_metrics(&self, summary: &BatchSummary) {
        if !self.metrics.enabled() {
            return;
        }
        let document = self.emf(summary);
        let mut out = std::io::stdout().lock();
        // A failed write to stdout loses a metric, not a record: nothing to report.
        let _ = writeln!(out, "{document}").and_then(|()| out.flush());
    }
}

impl<H: Handler, S> Processor<H, S> {
    /// The CloudWatch Embedded Metric Format object that [`run`](Self::run) writes to
    /// standard output after an invocation in Lambda: the counts of `summary` (of a
    /// [`BatchReport`](crate::BatchReport) or a [`BatchOutcome`]) as metrics in the processor's
    /// namespace, with the function and stream names as dimensions.
    ///
    /// Useful to a program that calls [`process`](Self::process) or
    /// [`respond`](Self::respond) itself and wants the same metrics.
    pub fn emf(&self, summary: &BatchSummary) -> serde_json::Value {
        let function_name = function_name(self.name());
        metrics::emf_document(
            summary,
            &function_name,
            &self.metrics.namespace(),
            self.metrics.shard_dimension,
            SystemTime::now(),
        )
    }
}

/// The invocation's deadline as a monotonic instant, from `Lambda-Runtime-Deadline-Ms`.
///
/// Lambda sends the deadline as epoch milliseconds. Local emulators differ:
/// `cargo lambda watch` sends a fixed `600000`, and SAM's emulator sets
/// `AWS_LAMBDA_FUNCTION_TIMEOUT` (seconds). A value too small to be a date since 2001 is
/// therefore not a date: the function's timeout comes from `AWS_LAMBDA_FUNCTION_TIMEOUT`
/// when set, and otherwise the value is read as milliseconds from now.
fn deadline_of(header_ms: u64) -> Instant {
    let now = SystemTime::now();
    let remaining = if header_ms >= PLAUSIBLE_EPOCH_MS {
        (UNIX_EPOCH + Duration::from_millis(header_ms)).duration_since(now).unwrap_or_default()
    } else {
        configured_timeout().unwrap_or(Duration::from_millis(header_ms))
    };
    Instant::now() + remaining
}

/// 2001-09-09, when epoch milliseconds reached 13 digits.
const PLAUSIBLE_EPOCH_MS: u64 = 1_000_000_000_000;

/// `AWS_LAMBDA_FUNCTION_TIMEOUT` in seconds, as emulators set it.
fn configured_timeout() -> Option<Duration> {
    let seconds: f64 = std::env::var("AWS_LAMBDA_FUNCTION_TIMEOUT").ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Installs `lambda_runtime`'s default subscriber unless the program set one. Locally,
/// logs go to standard error so that standard output shows the records.
fn install_default_subscriber(local: bool) {
    if tracing::dispatcher::has_been_set() {
        return;
    }
    if local {
        super::local::init_subscriber();
    } else {
        lambda_runtime::tracing::init_default_subscriber();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_deadline_is_the_time_left_until_it() {
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        let millis = in_a_minute.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let left = deadline_of(millis) - Instant::now();
        assert!(left > Duration::from_secs(58) && left <= Duration::from_secs(60), "{left:?}");
    }

    #[test]
    fn an_emulator_duration_is_read_from_now() {
        // `cargo lambda watch` sends 600000; without a configured timeout that is 10 minutes.
        if std::env::var_os("AWS_LAMBDA_FUNCTION_TIMEOUT").is_none() {
            let left = deadline_of(600_000) - Instant::now();
            assert!(
                left > Duration::from_secs(599) && left <= Duration::from_secs(600),
                "{left:?}"
            );
        }
    }
}
