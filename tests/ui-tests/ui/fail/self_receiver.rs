use kinesis_processor::{kinesis_processor, RecordError};

struct Service;

impl Service {
    #[kinesis_processor(format = text)]
    async fn handle(&self, line: String) -> Result<(), RecordError> {
        let _ = line;
        Ok(())
    }
}

fn main() {}
