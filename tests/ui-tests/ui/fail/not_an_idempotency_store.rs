use kinesis_processor::{kinesis_processor, RecordError};

#[kinesis_processor(format = text, idempotency_key = "order_id")]
async fn charge(_order: String) -> Result<(), RecordError> {
    Ok(())
}

struct Redis;

fn main() {
    let _ = charge().idempotency(Redis);
}
