use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(retries = 1, format = text, retries = 2)]
async fn store(line: String) -> Result<(), RecordError> {
    let _ = line;
    Ok(())
}

fn main() {}
