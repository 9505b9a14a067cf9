use kinesis_processor::{kinesis_processor, Chunk};

#[kinesis_processor(chunk = 25, format = text)]
async fn store(_lines: Chunk<String>) -> Result<(), String> {
    Ok(())
}

fn main() {
    let _ = store();
}
