//! The processor and where it runs: [`Processor`] (builder, `process`, `respond`), the
//! tower [`ProcessorService`] that `lambda_runtime` serves, and [`run`](Processor::run),
//! the Lambda loop on that service or, outside Lambda, the local runner.

mod local;
mod processor;
mod run;
mod service;

pub use processor::{HasState, NeedsState, Processor, SYNTHETIC_TIMEOUT};
pub use service::ProcessorService;
