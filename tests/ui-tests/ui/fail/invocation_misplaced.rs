use kinesis_processor::{kinesis_processor, Invocation, RecordError};

#[kinesis_processor(format = text)]
async fn first(invocation: &Invocation, line: String) -> Result<(), RecordError> {
    let _ = (invocation, line);
    Ok(())
}

#[kinesis_processor(format = text)]
async fn twice(line: String, a: &Invocation, b: &Invocation) -> Result<(), RecordError> {
    let _ = (line, a, b);
    Ok(())
}

fn main() {
    let _ = first();
    let _ = twice();
}
