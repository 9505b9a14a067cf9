//! Chunk functions, with and without a shared state or the invocation, compile under
//! `#![deny(warnings)]`.
#![deny(warnings)]
#![deny(unused, unused_qualifications, unused_lifetimes)]

use kinesis_processor::{kinesis_processor, Chunk, ChunkError, Invocation, RecordError};

pub struct Table;

/// Writes up to 25 lines per call; the ones not taken are failed, retryable.
#[kinesis_processor(chunk = 25, format = text, concurrency = 4, retries = 1)]
pub async fn store(lines: Chunk<String>, table: &Table, invocation: &Invocation) -> Result<(), ChunkError> {
    let _ = (table, invocation.request_id());
    lines.fail_where(|record| record.payload().is_empty().then(|| RecordError::reject("empty")))
}

/// A plain `fn`, the lifetime written out, and any error type that converts.
#[kinesis_processor(chunk = 10000, format = bytes)]
fn count(records: Chunk<'_, Vec<u8>>) -> Result<(), std::io::Error> {
    let _ = records.len();
    Ok(())
}

fn main() {
    let _ = store().state(Table).concurrency(8);
    let _ = count().into_service();
}
