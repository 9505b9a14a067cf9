//! The processor and where it runs: [`Processor`] (builder, `process`, `respond`), and
//! [`run`](Processor::run), the Lambda loop or, outside Lambda, the local runner.

mod local;
mod processor;
mod run;

pub use processor::{Processor, SYNTHETIC_TIMEOUT};
