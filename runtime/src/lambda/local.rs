//! The local runner: outside Lambda, `run()` processes event files named on the command
//! line and shows what happened to each record.

use crate::error::Error;
use crate::handler::Handler;
use crate::metrics;
use crate::report::BatchReport;

use super::processor::Processor;

impl<H: Handler> Processor<H> {
    /// Processes event files one after another and prints what happened.
    pub(super) async fn run_locally(&self, files: &[String]) -> Result<(), Error> {
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
    let response = serde_json::to_string(report.response()).map_err(Error::other)?;
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
