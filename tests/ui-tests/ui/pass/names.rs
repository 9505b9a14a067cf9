//! Every public name that issue 2 fixes is reachable from a crate outside the workspace
//! (trybuild builds each case as its own crate, depending on `kinesis-processor` by path).
use kinesis_processor::dead_letter::{DeadLetterSink, LogDeadLetter};
use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
use kinesis_processor::{kinesis_processor, BatchReport, Error, Processor, RecordError, RecordMeta};

#[kinesis_processor(format = text, retries = 1)]
async fn probe(line: String, meta: &RecordMeta) -> Result<(), RecordError> {
    let _: (&str, Option<u64>, &str, Option<&str>, Option<&str>, &str, std::time::SystemTime) = (
        meta.sequence_number(),
        meta.sub_sequence_number(),
        meta.partition_key(),
        meta.explicit_hash_key(),
        meta.shard_id(),
        meta.event_source_arn(),
        meta.approximate_arrival(),
    );
    match line.as_str() {
        "retry" => Err(RecordError::retry("try again")),
        "reject" => Err(RecordError::reject(String::from("never"))),
        _ => Ok(()),
    }
}

fn sink_bound<S: DeadLetterSink + Clone>(sink: S) -> S {
    sink.clone()
}

async fn uses(processor: &Processor<impl kinesis_processor::Handler>) -> Result<BatchReport, Error> {
    let payload: Vec<u8> = TestBatch::new().json(&1).text("a").bytes(b"b").build();
    processor.process(payload).await
}

fn main() {
    let memory = sink_bound(MemoryDeadLetter::default());
    let _: Vec<kinesis_processor::dead_letter::DeadLetter> = memory.records();
    let processor = probe().dead_letter(memory).dead_letter(LogDeadLetter::new());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = runtime.block_on(uses(&processor)).unwrap();
    let response: &aws_lambda_events::event::streams::KinesisEventResponse = report.response();
    assert!(response.batch_item_failures.is_empty());
    let _run = processor.run();
}
