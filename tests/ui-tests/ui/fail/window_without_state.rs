use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(window(minutes = 1), format = text)]
async fn count(_line: String) -> Result<(), RecordError> {
    Ok(())
}

#[kinesis_processor(window, format = text)]
async fn total(_line: String, _total: &u64) -> Result<(), RecordError> {
    Ok(())
}

fn main() {
    let _ = count();
    let _ = total();
}
