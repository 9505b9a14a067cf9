//! log-filter: plain-text system log lines in; the critical ones (syslog severity
//! emergency, alert or critical) are forwarded to an SNS topic, the rest dropped. Producers
//! send the lines KPL-aggregated; the runtime de-aggregates them.
//!
//! A line with no severity at all is rejected: it goes to the dead-letter topic with its
//! data, and the batch moves on.

use kinesis_processor::dead_letter::{LogDeadLetter, SnsDeadLetter};
use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};

/// Where critical lines go: an SNS topic when `ALERT_TOPIC_ARN` names one, the log
/// otherwise (running locally).
enum Alerts {
    Topic { client: aws_sdk_sns::Client, topic_arn: String },
    Log,
}

impl Alerts {
    async fn from_env() -> Alerts {
        match std::env::var("ALERT_TOPIC_ARN") {
            Ok(topic_arn) => {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                Alerts::Topic { client: aws_sdk_sns::Client::new(&config), topic_arn }
            }
            Err(_) => Alerts::Log,
        }
    }

    async fn forward(&self, line: &str, host: &str) -> Result<(), RecordError> {
        match self {
            Alerts::Topic { client, topic_arn } => {
                // A failed publish is retried, then reported: the line is not lost.
                client
                    .publish()
                    .topic_arn(topic_arn)
                    .subject(format!("critical: {host}"))
                    .message(line)
                    .send()
                    .await?;
            }
            Alerts::Log => tracing::warn!(host, alert = line, "critical log line"),
        }
        Ok(())
    }
}

/// The syslog severities, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

impl Severity {
    fn is_critical(self) -> bool {
        self <= Severity::Critical
    }

    fn from_code(code: u32) -> Severity {
        [
            Severity::Emergency,
            Severity::Alert,
            Severity::Critical,
            Severity::Error,
            Severity::Warning,
            Severity::Notice,
            Severity::Informational,
            Severity::Debug,
        ][(code % 8) as usize]
    }
}

/// The severity of a line: its syslog priority (`<PRI>`, severity = PRI mod 8), or else a
/// level word (`CRITICAL`, `ERROR`, ...).
fn severity(line: &str) -> Option<Severity> {
    if let Some(rest) = line.strip_prefix('<') {
        let priority: u32 = rest.split_once('>')?.0.parse().ok()?;
        return Some(Severity::from_code(priority));
    }
    let words = [
        ("EMERG", Severity::Emergency),
        ("PANIC", Severity::Emergency),
        ("ALERT", Severity::Alert),
        ("FATAL", Severity::Critical),
        ("CRIT", Severity::Critical),
        ("ERR", Severity::Error),
        ("WARN", Severity::Warning),
        ("NOTICE", Severity::Notice),
        ("INFO", Severity::Informational),
        ("DEBUG", Severity::Debug),
    ];
    line.split(|c: char| !c.is_ascii_alphabetic()).find_map(|word| {
        words.iter().find(|(name, _)| word.starts_with(name)).map(|(_, severity)| *severity)
    })
}

/// Forwards a critical line, drops the others; a line without a severity is rejected.
#[kinesis_processor(format = text, concurrency = 8, metrics_namespace = "LogFilter")]
async fn filter(line: String, meta: &RecordMeta, alerts: &Alerts) -> Result<(), RecordError> {
    let severity = severity(&line)
        .ok_or_else(|| RecordError::reject("no syslog priority or level in the line"))?;
    if severity.is_critical() {
        alerts.forward(&line, meta.partition_key()).await?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), kinesis_processor::Error> {
    let processor = filter().state(Alerts::from_env().await);
    if std::env::var_os("DEAD_LETTER_TOPIC_ARN").is_some() {
        let topic = SnsDeadLetter::from_env("DEAD_LETTER_TOPIC_ARN").await?;
        return processor.dead_letter(topic).run().await;
    }
    processor.dead_letter(LogDeadLetter::new()).run().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_come_from_the_priority_or_a_level_word() {
        assert_eq!(
            severity("<2>Nov 26 05:00:01 db1 kernel: Out of memory"),
            Some(Severity::Critical)
        );
        assert_eq!(
            severity("<134>Nov 26 05:00:01 web1 nginx: GET /"),
            Some(Severity::Informational)
        );
        assert_eq!(
            severity("2026-11-26T05:00:01Z api1 CRITICAL disk full"),
            Some(Severity::Critical)
        );
        assert_eq!(
            severity("2026-11-26T05:00:01Z api1 [error] timeout"),
            None,
            "level words are upper case"
        );
        assert_eq!(severity("2026-11-26T05:00:01Z api1 ERROR timeout"), Some(Severity::Error));
        assert_eq!(severity("just some words"), None);
        assert!(Severity::Alert.is_critical() && !Severity::Error.is_critical());
    }
}
