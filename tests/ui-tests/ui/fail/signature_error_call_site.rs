use kinesis_processor::{kinesis_processor, RecordError};

struct Db;

// One error, at its cause: the call sites below add none.
#[kinesis_processor(format = text)]
async fn store(line: String, db: &mut Db) -> Result<(), RecordError> {
    let _ = (line, db);
    Ok(())
}

fn main() {
    let _ = store().state(Db).retries(2);
}
