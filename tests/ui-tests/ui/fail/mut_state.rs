use kinesis_processor::{kinesis_processor, RecordError};

struct Counter(u64);

#[kinesis_processor(format = text)]
async fn count(line: String, counter: &mut Counter) -> Result<(), RecordError> {
    let _ = line;
    counter.0 += 1;
    Ok(())
}

fn main() {}
