use kinesis_processor::{kinesis_processor, RecordError};

struct Db;

// rustc's own error, inside the body, and nothing about the attribute or the call site.
#[kinesis_processor(format = text)]
async fn store(line: String, db: &Db) -> Result<(), RecordError> {
    let _ = (line, db);
    let length = line.len() +;
    Ok(())
}

fn main() {
    let _ = store().state(Db);
}
