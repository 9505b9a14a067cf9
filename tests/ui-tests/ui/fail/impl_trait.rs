use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(format = text)]
async fn track(line: String, sink: &impl std::io::Write) -> Result<(), RecordError> {
    let _ = (line, sink);
    Ok(())
}

fn main() {}
