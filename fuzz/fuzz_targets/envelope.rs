//! Arbitrary invocation payloads through the whole engine: never a panic, and never a lost
//! record. With a sink that takes everything and a function that accepts everything, every
//! record of a Kinesis batch must end succeeded or dead-lettered; anything that is not a
//! Kinesis batch must be an invocation error.
#![no_main]

use kinesis_processor::testing::MemoryDeadLetter;
use kinesis_processor::{kinesis_processor, Error, RecordError};
use libfuzzer_sys::fuzz_target;

#[kinesis_processor(format = bytes, retries = 0)]
async fn accept(_data: Vec<u8>) -> Result<(), RecordError> {
    Ok(())
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
}

fuzz_target!(|payload: &[u8]| {
    let processor = accept().dead_letter(MemoryDeadLetter::default());
    let outcome = RUNTIME.with(|runtime| runtime.block_on(processor.process(payload)));
    match outcome {
        Ok(report) => {
            assert!(report.response().batch_item_failures.is_empty());
            assert!(report.records().all(|record| record.outcome().is_finished()));
        }
        Err(Error::InvalidEvent(_)) => {}
        Err(other) => panic!("unexpected invocation error: {other}"),
    }
});
