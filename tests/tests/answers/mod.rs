//! The two ways to process a batch must answer alike: `process`, whose report has a row per
//! record, and `respond`, what the Lambda loop runs, which keeps no rows.

use std::time::Duration;

use kinesis_processor::{BatchOutcome, BatchReport, BatchSummary};

/// The summary without what two runs of one batch do not share: how long each took, and
/// the iterator age, which each run measures from its own start.
fn comparable(summary: &BatchSummary) -> BatchSummary {
    let mut summary = summary.clone();
    summary.duration = Duration::ZERO;
    summary.iterator_age = summary.iterator_age.map(|_| Duration::ZERO);
    summary
}

/// Asserts that `outcome` answers Lambda as `report` does and counts the same.
pub fn assert_same_answer(report: &BatchReport, outcome: &BatchOutcome, case: &str) {
    let response = |r| serde_json::to_value(r).unwrap();
    assert_eq!(response(report.response()), response(outcome.response()), "{case}");
    assert_eq!(comparable(report.summary()), comparable(outcome.summary()), "{case}");
    assert_eq!(report.checkpoint(), outcome.checkpoint(), "{case}");
}
