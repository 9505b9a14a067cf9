use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor]
async fn track<T: serde::de::DeserializeOwned>(event: T) -> Result<(), RecordError> {
    let _ = event;
    Ok(())
}

fn main() {}
