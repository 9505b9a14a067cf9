use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(format = text)]
async fn store(line: &str) -> Result<(), RecordError> {
    let _ = line;
    Ok(())
}

fn main() {}
