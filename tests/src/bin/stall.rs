//! A processor whose downstream call hangs on records that say `hang`. The end-to-end test
//! of deadline-aware checkpoints runs it under `cargo lambda watch` with a 3-second timeout.

use kinesis_processor::{kinesis_processor, RecordError};

/// Processes a line; `hang` never returns, like a call to a downstream that stopped
/// answering.
#[kinesis_processor(format = text, retries = 0)]
async fn stall(line: String) -> Result<(), RecordError> {
    if line == "hang" {
        std::future::pending::<()>().await;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), kinesis_processor::Error> {
    stall().run().await
}
