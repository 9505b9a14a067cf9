use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(format = text)]
async fn count(line: u64) -> Result<(), RecordError> {
    let _ = line;
    Ok(())
}

fn main() {}
