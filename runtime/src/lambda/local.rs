//! The local runner: outside Lambda, `run()` processes event files named on the command
//! line and shows what happened to each record.

use lambda_runtime::tracing::subscriber::fmt::format::Writer;
use lambda_runtime::tracing::subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use lambda_runtime::tracing::subscriber::registry::LookupSpan;

use crate::error::Error;
use crate::handler::Handler;
use crate::metrics;
use crate::report::BatchReport;

use super::processor::Processor;

impl<H: Handler> Processor<H> {
    /// Processes the event files named by `args` one after another and prints what
    /// happened. Fails when an argument is not a file to process, or when a file could not
    /// be read or would be an invocation error (after the others were processed).
    pub(super) async fn run_locally(&self, args: &[String]) -> Result<(), Error> {
        let shift_to_now = args.iter().any(|arg| arg == ARRIVALS_NOW);
        let files: Vec<&String> = args.iter().filter(|arg| *arg != ARRIVALS_NOW).collect();
        if files.is_empty() || files.iter().any(|arg| *arg == "--help" || *arg == "-h") {
            println!("{}", usage(self.name()));
            return Ok(());
        }
        if let Some(option) = files.iter().find(|arg| arg.starts_with('-')) {
            let hint = format!("`{option}` is not an option; run with --help for the usage");
            return Err(Error::LocalRun(hint));
        }
        let mut failed = Vec::new();
        for file in &files {
            let outcome = match std::fs::read(file) {
                Ok(payload) if shift_to_now => self.process(arrivals_now(payload)).await,
                Ok(payload) => self.process(&payload).await,
                Err(error) => {
                    println!("{file}: cannot read it: {error}");
                    failed.push(file.as_str());
                    continue;
                }
            };
            if outcome.is_err() {
                failed.push(file.as_str());
            }
            // Locked only once processing is done: the function may print too, from any task.
            print_outcome(&mut std::io::stdout().lock(), file, &outcome)?;
        }
        match failed.as_slice() {
            [] => Ok(()),
            failed => Err(Error::LocalRun(format!(
                "{} of {} event files could not be processed: {}",
                failed.len(),
                files.len(),
                failed.join(", ")
            ))),
        }
    }
}

/// Installs the local runner's subscriber: one short line per event on standard error
/// (level, message, the event's own fields such as the record's sequence number and key),
/// without the batch span's fields that Lambda's JSON log lines carry. The level comes from
/// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`, as in Lambda; `INFO` by default.
pub(super) fn init_subscriber() {
    use lambda_runtime::tracing::subscriber::{filter::LevelFilter, fmt, EnvFilter};
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG"));
    let level = level.ok().and_then(|level| level.parse().ok()).unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    fmt().event_format(Line).with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// A log line without the spans it happened in.
struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "{:>5} ", event.metadata().level())?;
        context.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The option that moves a sample batch's arrival times to now.
const ARRIVALS_NOW: &str = "--arrivals-now";

/// The payload with its records' arrival times shifted so that the newest arrived now, the
/// gaps between them kept: a sample batch recorded long ago is then not expired by
/// `max_record_age`. A payload that is not a JSON batch is left as it is.
fn arrivals_now(payload: Vec<u8>) -> Vec<u8> {
    let Ok(mut event) = serde_json::from_slice::<serde_json::Value>(&payload) else {
        return payload;
    };
    let Some(records) = event.get_mut("Records").and_then(|records| records.as_array_mut()) else {
        return payload;
    };
    let arrival =
        |record: &serde_json::Value| record["kinesis"]["approximateArrivalTimestamp"].as_f64();
    let Some(newest) = records.iter().filter_map(arrival).reduce(f64::max) else {
        return payload;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as f64
        / 1000.0;
    for record in records.iter_mut() {
        if let Some(at) = arrival(record) {
            let shifted = ((at + now - newest) * 1000.0).round() / 1000.0;
            record["kinesis"]["approximateArrivalTimestamp"] = serde_json::json!(shifted);
        }
    }
    serde_json::to_vec(&event).unwrap_or(payload)
}

fn usage(name: &str) -> String {
    format!(
        "{name}: a Kinesis record processor for AWS Lambda.\n\n\
         In Lambda it serves invocations. Here, give it Kinesis event files to process:\n\n    \
         cargo run -- [--arrivals-now] events/batch.json [more.json ...]\n\n\
         It prints what happened to each record and the response Lambda would receive, and\n\
         exits with status 1 if a file cannot be read or would be an invocation error.\n\
         --arrivals-now shifts the records' arrival times so that the newest is now, for\n\
         sample batches that `max_record_age` would otherwise expire."
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
        let sub = record.sub_sequence_number().map(|sub| format!("/{sub}")).unwrap_or_default();
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
    let response =
        serde_json::to_string(&report.outcome().lambda_response()).map_err(Error::other)?;
    writeln!(out, "response: {response}")?;
    writeln!(out, "{}", metrics::summary_line(report.summary()))?;
    Ok(())
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
