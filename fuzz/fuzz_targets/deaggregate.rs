//! De-aggregation of arbitrary bytes: never panics, and whatever reads as an aggregate
//! packs back into aggregates that read as the same user records.
#![no_main]

use kinesis_processor::aggregation::{aggregate, deaggregate, Deaggregated};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
