//! Test support (feature `testing`): Kinesis events built in code, KPL aggregates built as
//! producers build them, an in-memory dead-letter sink, and the event source mapping
//! simulator. Nothing here needs AWS or a network.
//!
//! ```
//! use kinesis_processor::{kinesis_processor, RecordError};
//! use kinesis_processor::testing::{MemoryDeadLetter, TestBatch};
//!
//! #[derive(serde::Deserialize)]
//! struct Click { url: String }
//!
//! #[kinesis_processor]
//! async fn track(click: Click) -> Result<(), RecordError> {
//!     if click.url.is_empty() { Err(RecordError::reject("no url")) } else { Ok(()) }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dlq = MemoryDeadLetter::default();
//! let event = TestBatch::new()
//!     .json(&serde_json::json!({"url": "/a"}))
//!     .bytes(b"not json")
//!     .json(&serde_json::json!({"url": ""}))
//!     .build();
//! let report = track().dead_letter(dlq.clone()).process(event).await.unwrap();
//! assert!(report.response().batch_item_failures.is_empty());
//! assert_eq!(dlq.records().len(), 2);
//! # });
//! ```

mod batch;
mod esm;
mod event;
mod idempotency;
mod memory;

pub use crate::aggregation::producer::{
    aggregate, hash_key_of, AggregatedRecord, Aggregator, TooLarge,
};
pub use batch::TestBatch;
pub use esm::{
    EventSourceMapping, FnFunction, Function, InvocationResult, MappingReport, OnFailureRecord,
    Put, SimulatedStream, StreamRecord, UnknownItemIdentifier, MAX_PAYLOAD,
};
pub use idempotency::{MemoryIdempotency, StoreCalls};
pub use memory::MemoryDeadLetter;
