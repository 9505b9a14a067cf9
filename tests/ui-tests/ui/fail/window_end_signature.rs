use kinesis_processor::{kinesis_processor, RecordError, Window};

#[kinesis_processor(window, format = text)]
async fn count(_line: String, total: &mut u64) -> Result<(), RecordError> {
    *total += 1;
    Ok(())
}

async fn publish(total: &u64, _window: &Window) -> Result<(), RecordError> {
    let _ = total;
    Ok(())
}

fn main() {
    let _ = count().on_window_end(publish);
}
