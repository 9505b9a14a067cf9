//! Generated code compiles under `#![deny(warnings)]` (and clippy's default lints).
#![deny(warnings)]
#![deny(unused, unused_qualifications, unused_lifetimes)]

use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};

pub struct State;

/// A documented public processor.
#[kinesis_processor(format = text, retries = 1)]
pub async fn documented(line: String, meta: &RecordMeta, state: &State) -> Result<(), RecordError> {
    let _ = (line, meta, state);
    Ok(())
}

#[kinesis_processor(format = text)]
fn plain(line: String) -> Result<(), RecordError> {
    let _ = line;
    Ok(())
}

fn main() {
    let _ = documented().state(State);
    let _ = plain();
}
