use kinesis_processor::testing::MemoryIdempotency;
use kinesis_processor::{kinesis_processor, Chunk, ChunkError};

#[kinesis_processor(chunk = 25, format = text)]
async fn store(_lines: Chunk<String>) -> Result<(), ChunkError> {
    Ok(())
}

fn main() {
    let _ = store().idempotency(MemoryIdempotency::new());
}
