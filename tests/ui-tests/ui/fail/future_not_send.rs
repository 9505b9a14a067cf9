use std::rc::Rc;

use kinesis_processor::{kinesis_processor, RecordError};

async fn write(_line: &str) {}

#[kinesis_processor(format = text)]
async fn store(line: String) -> Result<(), RecordError> {
    // An `Rc` held across an await makes the future not `Send`.
    let shared = Rc::new(line);
    write(&shared).await;
    Ok(())
}

fn main() {
    let _ = store();
}
