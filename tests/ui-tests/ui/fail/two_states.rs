use kinesis_processor::{kinesis_processor, RecordError};

struct Db;
struct Cache;

#[kinesis_processor(format = text)]
async fn store(line: String, db: &Db, cache: &Cache) -> Result<(), RecordError> {
    let _ = (line, db, cache);
    Ok(())
}

fn main() {}
