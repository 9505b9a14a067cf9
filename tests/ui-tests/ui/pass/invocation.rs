//! `&Invocation` is accepted in any position after the payload, like `&RecordMeta` and the
//! state, by name or by path.
use kinesis_processor::{kinesis_processor, Invocation, RecordError, RecordMeta};

pub struct Db;

#[kinesis_processor(format = text)]
async fn invocation_only(line: String, invocation: &Invocation) -> Result<(), RecordError> {
    let _ = (line, invocation.request_id(), invocation.remaining());
    Ok(())
}

#[kinesis_processor(format = text)]
async fn invocation_between(
    line: String,
    meta: &RecordMeta,
    invocation: &kinesis_processor::Invocation,
    db: &Db,
) -> Result<(), RecordError> {
    let _ = (line, meta.sequence_number(), invocation.xray_trace_id(), db);
    Ok(())
}

#[kinesis_processor(format = text)]
async fn invocation_last(line: String, db: &Db, meta: &RecordMeta, invocation: &Invocation) -> Result<(), RecordError> {
    let _ = (line, db, meta.partition_key(), invocation.function_arn(), invocation.deadline());
    Ok(())
}

fn main() {
    let _ = invocation_only();
    let _ = invocation_between().state(Db);
    let _ = invocation_last().state(Db);
}
