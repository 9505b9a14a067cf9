use std::cell::Cell;

use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(format = text)]
async fn count(_line: String, seen: &Cell<u64>) -> Result<(), RecordError> {
    seen.set(seen.get() + 1);
    Ok(())
}

fn main() {
    // A state shared by concurrent records and invocations must be `Sync`.
    let _ = count().state(Cell::new(0));
}
