//! De-aggregation of arbitrary bytes: never panics, and whatever reads as an aggregate
//! packs back into aggregates that read as the same user records.
//!
//! Each input is tried as a record's data and, sealed with the magic and a valid digest,
//! as an aggregate's protobuf body, so that the fuzzer reaches the decoder without having
//! to find MD5 collisions.
#![no_main]

use kinesis_processor::aggregation::{deaggregate, Deaggregated, MAGIC};
use kinesis_processor::testing::aggregate;
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut sealed = MAGIC.to_vec();
    sealed.extend_from_slice(data);
    sealed.extend_from_slice(&Md5::digest(data));
    check(&sealed);
});

fn check(data: &[u8]) {
    let Ok(Deaggregated::Aggregate(records)) = deaggregate(data) else { return };
    assert!(!records.is_empty(), "an aggregate always holds user records");
    let Ok(again) = aggregate(records.iter().copied()) else { return };
    let mut back = Vec::new();
    for aggregate in &again {
        match deaggregate(&aggregate.data) {
            Ok(Deaggregated::Aggregate(user_records)) => back.extend(user_records),
            other => panic!("our own aggregate did not read back: {other:?}"),
        }
    }
    assert_eq!(back, records);
}
