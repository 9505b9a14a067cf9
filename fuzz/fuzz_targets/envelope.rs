//! Arbitrary invocation payloads through the whole engine: never a panic, and never a lost
//! record. With a sink that takes everything and a function that accepts everything, every
//! record of a Kinesis batch must end succeeded or dead-lettered; anything that is not a
//! Kinesis batch must be an invocation error. The path the Lambda loop runs (`respond`, no
//! row per record) must answer and count alike.
#![no_main]

use std::time::Duration;

use kinesis_processor::testing::MemoryDeadLetter;
use kinesis_processor::{kinesis_processor, BatchSummary, Error, RecordError};
use libfuzzer_sys::fuzz_target;

#[kinesis_processor(format = bytes, retries = 0)]
async fn accept(_data: Vec<u8>) -> Result<(), RecordError> {
    Ok(())
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
}

/// A summary without what two runs of one batch do not share: their durations, and the
/// iterator age, which each measures from its own start.
fn comparable(summary: &BatchSummary) -> BatchSummary {
    let mut summary = summary.clone();
    summary.duration = Duration::ZERO;
    summary.iterator_age = summary.iterator_age.map(|_| Duration::ZERO);
    summary
}

fuzz_target!(|payload: &[u8]| {
    let processor = accept().dead_letter(MemoryDeadLetter::default());
    let (report, outcome) = RUNTIME.with(|runtime| {
        let report = runtime.block_on(processor.process(payload));
        let remaining = Duration::from_secs(900);
        (report, runtime.block_on(processor.respond(payload, "fuzz", remaining)))
    });
    match (report, outcome) {
        (Ok(report), Ok(outcome)) => {
            assert!(report.response().batch_item_failures.is_empty());
            assert!(report.records().all(|record| record.outcome().is_finished()));
            assert!(outcome.response().batch_item_failures.is_empty());
            assert_eq!(comparable(report.summary()), comparable(outcome.summary()));
        }
        (Err(Error::InvalidEvent(a)), Err(Error::InvalidEvent(b))) => assert_eq!(a, b),
        (report, outcome) => panic!("unexpected: {report:?} and {outcome:?}"),
    }
});
