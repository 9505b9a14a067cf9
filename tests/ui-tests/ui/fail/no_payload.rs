use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor]
async fn nothing() -> Result<(), RecordError> {
    Ok(())
}

fn main() {}
