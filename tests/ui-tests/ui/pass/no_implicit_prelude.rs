//! Generated code names everything by absolute path.
#![no_implicit_prelude]

extern crate kinesis_processor;
extern crate std;

use kinesis_processor::{kinesis_processor, RecordError, RecordMeta};
use std::result::Result::{self, Ok};
use std::string::String;

#[kinesis_processor(format = text, retries = 2)]
async fn store(line: String, meta: &RecordMeta) -> Result<(), RecordError> {
    let _ = (line, meta);
    Ok(())
}

fn main() {
    let _ = store();
}
