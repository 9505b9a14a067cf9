use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(window, format = text)]
async fn count(_line: String, total: &mut u64) -> Result<(), RecordError> {
    *total += 1;
    Ok(())
}

fn main() {
    let _ = count().concurrency(4);
}
