use kinesis_processor::{kinesis_processor, RecordError};

struct Db;

#[kinesis_processor(format = text)]
async fn store(line: String, db: &Db) -> Result<(), RecordError> {
    let _ = (line, db);
    Ok(())
}

fn main() {
    // The state has the wrong type.
    let _ = store().state(42_u32);
}
