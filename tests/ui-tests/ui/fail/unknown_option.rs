use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(format = text, retires = 3)]
async fn store(line: String) -> Result<(), RecordError> {
    let _ = line;
    Ok(())
}

fn main() {}
