//! Shared inputs, contenders and timing for the benchmarks: generated records and events, the same
//! for every contender in a run, and the hand-written code the framework is measured
//! against.

pub mod contenders;
pub mod inputs;
pub mod timing;

pub use inputs::{click, full_aggregate};
