//! CloudWatch metrics in the Embedded Metric Format (EMF): one JSON object per invocation,
//! written on its own line to standard output, where the Lambda log agent turns it into
//! metrics without any API call.
//!
//! Written by hand rather than through a metrics facade crate: the runtime emits one object
//! per invocation from counts it already keeps, which needs no global recorder, and the
//! format is a few fields of JSON.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::dead_letter::DeadLetterReason;
use crate::report::BatchSummary;

/// The namespace when neither the processor nor the environment names one.
pub const DEFAULT_NAMESPACE: &str = "KinesisProcessor";

/// The environment variable that names the namespace, when the processor does not.
pub const NAMESPACE_ENV: &str = "KINESIS_PROCESSOR_METRICS_NAMESPACE";

/// The environment variable that turns metrics off when set to `off` (or `false`, `0`).
pub const METRICS_ENV: &str = "KINESIS_PROCESSOR_METRICS";

/// How a processor emits metrics.
#[derive(Clone, Debug, Default)]
pub(crate) struct MetricsSettings {
    /// `None`: decided by the environment (on unless `KINESIS_PROCESSOR_METRICS=off`).
    pub enabled: Option<bool>,
    pub namespace: Option<String>,
    pub shard_dimension: bool,
}

impl MetricsSettings {
    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or_else(|| {
            let off = std::env::var(METRICS_ENV).map(|v| v.trim().to_ascii_lowercase());
            !matches!(off.as_deref(), Ok("off" | "false" | "0"))
        })
    }

    pub fn namespace(&self) -> String {
        self.namespace
            .clone()
            .or_else(|| std::env::var(NAMESPACE_ENV).ok().filter(|n| !n.trim().is_empty()))
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
    }
}

/// One metric of the invocation.
struct Metric {
    name: String,
    unit: &'static str,
    value: f64,
}

/// The metrics of one invocation, in the order they are written.
fn metrics(summary: &BatchSummary) -> Vec<Metric> {
    let count = |name: &str, value: usize| Metric {
        name: name.to_owned(),
        unit: "Count",
        value: value as f64,
    };
    let millis = |name: &str, value: Duration| Metric {
        name: name.to_owned(),
        unit: "Milliseconds",
        value: value.as_secs_f64() * 1000.0,
    };
    let mut metrics = vec![
        count("RecordsReceived", summary.records),
        count("Units", summary.units),
        count("RecordsSucceeded", summary.succeeded),
        count("Duplicates", summary.duplicates),
        count("RetriedAttempts", summary.retried_attempts as usize),
        count("ReportedFailures", summary.failed),
        count("RecordsTimedOut", summary.timed_out),
        count("RecordsNotStarted", summary.not_started),
        count("RecordsRedelivered", summary.redelivered),
        count("DeadLettered", summary.dead_lettered_total()),
    ];
    for reason in DeadLetterReason::ALL {
        metrics.push(count(
            &format!("DeadLettered.{}", reason.as_str()),
            summary.dead_lettered(reason),
        ));
    }
    metrics.push(count("ExpiredRecords", summary.expired));
    metrics.push(count("DecodeErrors", summary.decode_errors));
    if let Some(per_chunk) = summary.records_per_chunk() {
        metrics.push(count("Chunks", summary.chunks));
        metrics.push(Metric { name: "RecordsPerChunk".into(), unit: "Count", value: per_chunk });
        metrics.push(count("PartialChunkFailures", summary.partial_chunk_failures));
    }
    metrics.push(millis("BatchDuration", summary.duration));
    if let Some(age) = summary.iterator_age {
        metrics.push(millis("IteratorAge", age));
    }
    metrics
}

/// The EMF object for one invocation, with the function name and stream name as
/// dimensions (and the shard id as a second dimension set when asked for).
pub(crate) fn emf_document(
    summary: &BatchSummary,
    function_name: &str,
    namespace: &str,
    shard_dimension: bool,
    at: SystemTime,
) -> Value {
    let stream = summary.stream_name.as_deref().unwrap_or("unknown");
    let mut root = Map::new();
    let mut dimension_sets = vec![json!(["FunctionName", "StreamName"])];
    root.insert("FunctionName".into(), json!(function_name));
    root.insert("StreamName".into(), json!(stream));
    if shard_dimension {
        dimension_sets.push(json!(["FunctionName", "StreamName", "ShardId"]));
        root.insert("ShardId".into(), json!(summary.shard_id.as_deref().unwrap_or("unknown")));
    }
    let metrics = metrics(summary);
    let definitions: Vec<Value> =
        metrics.iter().map(|m| json!({ "Name": m.name, "Unit": m.unit })).collect();
    for metric in metrics {
        root.insert(metric.name, json!(metric.value));
    }
    let timestamp = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimension_sets,
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(root)
}

/// The same metrics as a line for people, for the local runner.
pub(crate) fn summary_line(summary: &BatchSummary) -> String {
    let reasons: Vec<String> = DeadLetterReason::ALL
        .iter()
        .filter(|reason| summary.dead_lettered(**reason) > 0)
        .map(|reason| format!("{} {}", reason.as_str(), summary.dead_lettered(*reason)))
        .collect();
    let dead_lettered = if reasons.is_empty() {
        summary.dead_lettered_total().to_string()
    } else {
        format!("{} ({})", summary.dead_lettered_total(), reasons.join(", "))
    };
    let age = summary.iterator_age.map_or("n/a".to_owned(), humanize);
    let chunks = match summary.records_per_chunk() {
        Some(per_chunk) => format!(
            ", chunks {} ({per_chunk:.1} records each), partial chunk failures {}",
            summary.chunks, summary.partial_chunk_failures
        ),
        None => String::new(),
    };
    format!(
        "metrics: records {}, units {}, succeeded {}, duplicates {}, dead-lettered {dead_lettered}, \
         failed {}, timed out {}, not started {}, redelivered {}, retried attempts {}, \
         decode errors {}, expired {}{chunks}, iterator age {age}, duration {} ms",
        summary.records,
        summary.units,
        summary.succeeded,
        summary.duplicates,
        summary.failed,
        summary.timed_out,
        summary.not_started,
        summary.redelivered,
        summary.retried_attempts,
        summary.decode_errors,
        summary.expired,
        summary.duration.as_millis(),
    )
}

/// A duration as people read it: `3h 2m 1s`, `850ms`.
fn humanize(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        return format!("{}ms", duration.as_millis());
    }
    let seconds = duration.as_secs();
    let (days, hours, minutes, seconds) =
        (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    let parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")];
    let text: Vec<String> =
        parts.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}{unit}")).collect();
    text.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> BatchSummary {
        BatchSummary {
            records: 5,
            units: 9,
            succeeded: 6,
            retried_attempts: 3,
            failed: 1,
            not_started: 1,
            redelivered: 2,
            dead_lettered: [1, 0, 0, 0],
            decode_errors: 1,
            iterator_age: Some(Duration::from_millis(1500)),
            duration: Duration::from_micros(2500),
            stream_name: Some("clicks".into()),
            shard_id: Some("shardId-000000000001".into()),
            ..BatchSummary::default()
        }
    }

    fn document(summary: &BatchSummary, by_shard: bool) -> Value {
        emf_document(
            summary,
            "enrich",
            "Clicks",
            by_shard,
            UNIX_EPOCH + Duration::from_millis(1_764_126_000_123),
        )
    }

    /// The rules of the EMF specification that a document must keep.
    fn assert_valid(document: &Value) {
        let root = document.as_object().unwrap();
        let aws = &root["_aws"];
        assert!(aws["Timestamp"].is_u64(), "Timestamp is an integer of milliseconds");
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert!(!directives.is_empty());
        for directive in directives {
            assert!(directive["Namespace"]
                .as_str()
                .is_some_and(|n| !n.is_empty() && n.len() <= 255));
            let metrics = directive["Metrics"].as_array().unwrap();
            assert!(metrics.len() <= 100, "at most 100 metrics per directive");
            for metric in metrics {
                let name = metric["Name"].as_str().unwrap();
                let value = &root[name];
                let numeric = value.is_number()
                    || value.as_array().is_some_and(|a| a.iter().all(Value::is_number));
                assert!(numeric, "{name} is a number (or numbers) at the root: {value}");
                let unit = metric["Unit"].as_str().unwrap();
                assert!(["Count", "Milliseconds"].contains(&unit), "{unit}");
            }
            for set in directive["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(!set.is_empty() && set.len() <= 30, "1 to 30 dimensions per set");
                for dimension in set {
                    let name = dimension.as_str().unwrap();
                    assert!(root[name].is_string(), "dimension {name} is a string at the root");
                }
            }
        }
    }

    #[test]
    fn the_document_follows_the_specification() {
        assert_valid(&document(&summary(), false));
        assert_valid(&document(&summary(), true));
        assert_valid(&document(&BatchSummary::default(), false));
    }

    #[test]
    fn every_count_is_a_metric_with_its_value() {
        let document = document(&summary(), false);
        assert_eq!(document["_aws"]["Timestamp"], 1_764_126_000_123u64);
        assert_eq!(document["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Clicks");
        assert_eq!(document["FunctionName"], "enrich");
        assert_eq!(document["StreamName"], "clicks");
        for (name, value) in [
            ("RecordsReceived", 5.0),
            ("Units", 9.0),
            ("RecordsSucceeded", 6.0),
            ("RetriedAttempts", 3.0),
            ("ReportedFailures", 1.0),
            ("RecordsNotStarted", 1.0),
            ("RecordsRedelivered", 2.0),
            ("DeadLettered", 1.0),
            ("DeadLettered.decode_error", 1.0),
            ("DeadLettered.rejected", 0.0),
            ("ExpiredRecords", 0.0),
            ("DecodeErrors", 1.0),
            ("BatchDuration", 2.5),
            ("IteratorAge", 1500.0),
        ] {
            assert_eq!(document[name], value, "{name}");
        }
    }

    #[test]
    fn the_shard_is_a_dimension_only_when_asked_for() {
        assert!(document(&summary(), false).get("ShardId").is_none());
        let by_shard = document(&summary(), true);
        assert_eq!(by_shard["ShardId"], "shardId-000000000001");
        assert_eq!(
            by_shard["_aws"]["CloudWatchMetrics"][0]["Dimensions"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn without_records_there_is_no_iterator_age() {
        let document = document(&BatchSummary::default(), false);
        assert!(document.get("IteratorAge").is_none());
        let names: Vec<&str> = document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert!(!names.contains(&"IteratorAge"));
    }

    #[test]
    fn the_summary_line_reads_as_words() {
        let line = summary_line(&summary());
        assert!(line.starts_with("metrics: records 5, units 9, succeeded 6,"), "{line}");
        assert!(line.contains("dead-lettered 1 (decode_error 1)"), "{line}");
        assert!(line.contains("iterator age 1s"), "{line}");
        assert_eq!(humanize(Duration::from_secs(3 * 3600 + 62)), "3h 1m 2s");
        assert_eq!(humanize(Duration::from_millis(850)), "850ms");
    }

    #[test]
    fn the_namespace_comes_from_the_processor_then_the_environment() {
        let named =
            MetricsSettings { namespace: Some("Mine".into()), ..MetricsSettings::default() };
        assert_eq!(named.namespace(), "Mine");
        if std::env::var_os(NAMESPACE_ENV).is_none() {
            assert_eq!(MetricsSettings::default().namespace(), DEFAULT_NAMESPACE);
        }
        let off = MetricsSettings { enabled: Some(false), ..MetricsSettings::default() };
        assert!(!off.enabled());
    }
}
