use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(format = text, max_record_age = "15 parsecs", on_retries_exhausted = drop)]
async fn store(line: String) -> Result<(), RecordError> {
    let _ = line;
    Ok(())
}

#[kinesis_processor(format = text, max_record_age = 900, concurrency = 0, deadline_margin = "0s", metrics_namespace = "AWS/Lambda")]
async fn store_again(line: String) -> Result<(), RecordError> {
    let _ = line;
    Ok(())
}

fn main() {}
