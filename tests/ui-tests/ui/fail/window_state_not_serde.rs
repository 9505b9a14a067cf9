use kinesis_processor::{kinesis_processor, RecordError};

#[derive(Clone, Default)]
struct Totals(u64);

#[kinesis_processor(window, format = text)]
async fn count(_line: String, totals: &mut Totals) -> Result<(), RecordError> {
    totals.0 += 1;
    Ok(())
}

fn main() {}
