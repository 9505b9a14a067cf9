use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(format = text)]
async fn count(line: String) -> Result<usize, RecordError> {
    Ok(line.len())
}

fn main() {}
