//! [`Processor::run`]: the Lambda loop through `lambda_runtime`, or, outside Lambda, a
//! local runner that processes event files and shows what happened to each record.

use std::time::SystemTime;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::error::Error;
use crate::handler::Handler;
use crate::processor::Processor;
use crate::report::BatchReport;

impl<H: Handler> Processor<H> {
    /// Runs the processor.
    ///
    /// In Lambda (`AWS_LAMBDA_RUNTIME_API` is set) it serves invocations through
    /// `lambda_runtime` until the environment shuts down. Outside Lambda it processes the
    /// event files named on the command line, printing each record's coordinates and
    /// outcome and then the response, so that a batch can be replayed on a laptop:
    ///
    /// ```text
    /// cargo run -p clickstream -- examples/clickstream/events/batch.json
    /// ```
    ///
    /// Either way it first installs a `tracing` subscriber that honours
    /// `AWS_LAMBDA_LOG_FORMAT` (`JSON` or text) and `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`),
    /// unless the program has set one.
    pub async fn run(self) -> Result<(), Error> {
        self.checked_state()?;
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
            install_default_subscriber(false);
            self.serve_lambda().await
        } else {
            install_default_subscriber(true);
            let files: Vec<String> = std::env::args().skip(1).collect();
            self.run_locally(&files).await
        }
    }

    async fn serve_lambda(&self) -> Result<(), Error> {
        let handler = service_fn(|event: LambdaEvent<Box<RawValue>>| async move {
            let deadline = instant_of(event.context.deadline());
            let report = self
                .invoke(
                    event.payload.get().as_bytes(),
                    &event.context.request_id,
                    deadline,
                )
                .await
                .map_err(|error| -> lambda_runtime::Error { Box::new(error) })?;
            Ok::<_, lambda_runtime::Error>(report.into_response())
        });
        lambda_runtime::run(handler).await.map_err(Error::Other)
    }

    /// Processes event files one after another and prints what happened.
    async fn run_locally(&self, files: &[String]) -> Result<(), Error> {
        if files.is_empty() {
            eprintln!("{}", usage(self.name()));
            return Ok(());
        }
        for file in files {
            let payload = std::fs::read(file)
                .map_err(|e| Error::Config(format!("cannot read event file {file}: {e}")))?;
            let outcome = self.process(&payload).await;
            let mut out = std::io::stdout().lock();
            print_outcome(&mut out, file, &outcome)?;
        }
        Ok(())
    }
}

fn usage(name: &str) -> String {
    format!(
        "{name}: a Kinesis record processor for AWS Lambda.\n\n\
         In Lambda it serves invocations. Here, give it Kinesis event files to process:\n\n    \
         cargo run -- events/batch.json [more.json ...]\n\n\
         It prints what happened to each record and the response Lambda would receive."
    )
}

/// Prints one invocation's records and response.
fn print_outcome(
    out: &mut impl std::io::Write,
    file: &str,
    outcome: &Result<BatchReport, Error>,
) -> Result<(), Error> {
    let report = match outcome {
        Ok(report) => report,
        Err(error) => {
            writeln!(out, "{file}: invocation error: {error}")?;
            writeln!(out, "  Lambda would retry the whole batch.")?;
            return Ok(());
        }
    };
    writeln!(out, "{file}: {} records", report.records().len())?;
    for record in report.records() {
        let sequence = record.sequence_number().unwrap_or("(no sequence number)");
        let sub = record
            .sub_sequence_number()
            .map(|sub| format!("/{sub}"))
            .unwrap_or_default();
        write!(
            out,
            "  {} {sequence}{sub} key={} -> {}",
            record.shard_id().unwrap_or("(no shard)"),
            record.partition_key().unwrap_or("(none)"),
            record.outcome()
        )?;
        if record.attempts() > 1 {
            write!(out, " after {} attempts", record.attempts())?;
        }
        if let Some(error) = record.error() {
            write!(out, ": {error}")?;
        }
        if record.redelivered() {
            write!(out, " [delivered again]")?;
        }
        writeln!(out)?;
    }
    let response = serde_json::to_string(report.response()).map_err(Error::other)?;
    writeln!(out, "response: {response}")?;
    Ok(())
}

/// Lambda's deadline as a monotonic instant.
fn instant_of(deadline: SystemTime) -> Instant {
    let remaining = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Instant::now() + remaining
}

/// Installs `lambda_runtime`'s default subscriber unless the program set one. Locally,
/// logs go to standard error so that standard output shows the records.
fn install_default_subscriber(local: bool) {
    if tracing::dispatcher::has_been_set() {
        return;
    }
    if local {
        lambda_runtime::tracing::init_default_subscriber_with_writer(std::io::stderr);
    } else {
        lambda_runtime::tracing::init_default_subscriber();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_error_is_printed_with_its_consequence() {
        let mut out = Vec::new();
        let outcome = Err(Error::InvalidEvent("no `Records`".into()));
        print_outcome(&mut out, "x.json", &outcome).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("x.json: invocation error: not a Kinesis event: no `Records`"));
        assert!(text.contains("retry the whole batch"));
    }

    #[test]
    fn usage_names_the_processor_and_the_command() {
        let text = usage("enrich");
        assert!(text.starts_with("enrich: "));
        assert!(text.contains("events/batch.json"));
    }
}
