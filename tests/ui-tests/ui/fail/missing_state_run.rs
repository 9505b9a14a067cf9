use kinesis_processor::{kinesis_processor, RecordError};

struct Db;

#[kinesis_processor(format = text)]
async fn store(line: String, db: &Db) -> Result<(), RecordError> {
    let _ = (line, db);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `.state(..)` is missing: the processor cannot run, serve or process.
    let _ = store().run().await;
    let _ = store().into_service();
}
