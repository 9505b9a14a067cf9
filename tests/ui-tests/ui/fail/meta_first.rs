use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};

#[kinesis_processor(format = text)]
async fn store(meta: &RecordMeta, line: String) -> Result<(), RecordError> {
    let _ = (meta, line);
    Ok(())
}

fn main() {}
