use kinesis_processor::{kinesis_processor, Chunk, ChunkError};

#[kinesis_processor(chunk = 0, format = text)]
async fn none(_lines: Chunk<String>) -> Result<(), ChunkError> {
    Ok(())
}

#[kinesis_processor(chunk = 10001, format = text)]
async fn too_many(_lines: Chunk<String>) -> Result<(), ChunkError> {
    Ok(())
}

#[kinesis_processor(chunk = "25", format = text)]
async fn text(_lines: Chunk<String>) -> Result<(), ChunkError> {
    Ok(())
}

fn main() {
    let _ = (none(), too_many(), text());
}
