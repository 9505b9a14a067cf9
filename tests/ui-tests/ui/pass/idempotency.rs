//! A payload key named on the attribute compiles under `#![deny(warnings)]`.
#![deny(warnings)]

use kinesis_processor::testing::MemoryIdempotency;
use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};

#[derive(serde::Deserialize)]
pub struct Order {
    pub order_id: String,
}

fn order_id(order: &Order, _: &RecordMeta) -> String {
    order.order_id.clone()
}

/// Charges each order once.
#[kinesis_processor(idempotency_key = order_id, concurrency = 4)]
pub async fn charge(order: Order) -> Result<(), RecordError> {
    let _ = order.order_id;
    Ok(())
}

fn main() {
    let _ = charge().idempotency(MemoryIdempotency::new()).idempotency_fail_open(false);
}
