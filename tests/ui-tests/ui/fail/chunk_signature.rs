use kinesis_processor::{kinesis_processor, Chunk, ChunkError, RecordError, RecordMeta};

// A chunk size, and a payload that is not a chunk.
#[kinesis_processor(chunk = 25, format = text)]
async fn one(_line: String) -> Result<(), ChunkError> {
    Ok(())
}

// A chunk, and no chunk size.
#[kinesis_processor(format = text)]
async fn many(_lines: Chunk<String>) -> Result<(), RecordError> {
    Ok(())
}

// Each record's metadata is in the chunk.
#[kinesis_processor(chunk = 25, format = text)]
async fn meta(_lines: Chunk<String>, _meta: &RecordMeta) -> Result<(), ChunkError> {
    Ok(())
}

// Not with a window, nor keyed for idempotency.
#[kinesis_processor(chunk = 25, window, format = text, idempotency_key = key)]
async fn both(_lines: Chunk<String>) -> Result<(), ChunkError> {
    Ok(())
}

fn key(line: &String, _: &RecordMeta) -> String {
    line.clone()
}

fn main() {
    let _ = (one(), many(), meta(), both());
}
