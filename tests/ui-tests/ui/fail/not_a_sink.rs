use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(format = text)]
async fn store(line: String) -> Result<(), RecordError> {
    let _ = line;
    Ok(())
}

fn main() {
    let _ = store().dead_letter("my-queue");
}
