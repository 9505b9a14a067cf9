use kinesis_processor::{kinesis_processor};

/// Not a std::error::Error, and no conversion into RecordError.
struct Oops;

#[kinesis_processor(format = text)]
async fn store(line: String) -> Result<(), Oops> {
    if line.is_empty() {
        return Err(Oops);
    }
    Ok(())
}

fn main() {}
