use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(format = text)]
async fn store(line: String, limit: usize) -> Result<(), RecordError> {
    let _ = (line, limit);
    Ok(())
}

fn main() {}
